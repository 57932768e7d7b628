//! Every `scenarios/*.toml` as its own named test (`cargo test --test scenarios -- NAME`).
//!
//! Each test runs its scenario with the file's seed twice and compares the whole trace (every
//! serial, subscriber, broker and net line, and the report) byte for byte; runs it with the next
//! seed and requires a different trace; fails with the seed, what broke, when, the trace tail
//! and a replay line when an invariant or an `[expect]` range breaks; and checks the report
//! against its snapshot in `snapshots/` (`cargo insta review`, or `INSTA_UPDATE=always`, after
//! an intended change).

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use mqsim_sim::run::{run, RunOptions, AVAILABLE_ENGINES};
use mqsim_sim::scenario::Scenario;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn check(path: &Path) -> Result<(), Failed> {
    let mut scenario = Scenario::load(path).map_err(|e| e.to_string())?;
    // Named as a user types it at the repository's root, for the replay line.
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        scenario.file = format!("scenarios/{name}");
    }
    // `engines = [...]`: a scenario too large for some engine in `cargo test` names the others.
    let here: Vec<&String> = scenario
        .engines
        .iter()
        .filter(|e| AVAILABLE_ENGINES.contains(&e.as_str()))
        .collect();
    if here.is_empty() {
        println!(
            "note: {} runs on {:?} only (its `engines`), which this build does not have (it has \
             {AVAILABLE_ENGINES:?}): not run",
            scenario.file, scenario.engines
        );
        return Ok(());
    }
    let opts = RunOptions::default();
    let a = run(&scenario, &opts)?;
    if a.failed() {
        return Err(format!("{}{}", a.failure_text(25), a.report.render()).into());
    }
    let b = run(&scenario, &opts)?;
    if a.trace() != b.trace() {
        let first = a
            .trace()
            .lines()
            .zip(b.trace().lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        return Err(format!(
            "same seed {}, different traces from line {}:\n  {}\n  {}",
            a.scenario.seed,
            first + 1,
            a.trace().lines().nth(first).unwrap_or(""),
            b.trace().lines().nth(first).unwrap_or("")
        )
        .into());
    }
    let other = RunOptions {
        seed: Some(a.scenario.seed.wrapping_add(1)),
        ..RunOptions::default()
    };
    let c = run(&scenario, &other)?;
    if c.trace() == a.trace() {
        return Err(format!(
            "seeds {} and {} gave the same trace: the seed does not reach the run",
            a.scenario.seed, c.scenario.seed
        )
        .into());
    }
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let report = a.report.render();
    // A mismatch panics; libtest-mimic reports the panic as this test's failure.
    settings.bind(|| insta::assert_snapshot!(name, report));
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {:?}", scenarios_dir());
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_string();
            Trial::test(name, move || check(&path))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
