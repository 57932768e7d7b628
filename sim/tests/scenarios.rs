//! Every `scenarios/*.toml` as its own named test (`cargo test --test scenarios -- NAME`).
//!
//! Each test runs its scenario on the default engine (direct) with the file's seed twice and
//! compares the whole trace (every serial, subscriber, broker and net line, and the report) and
//! the capture byte for byte; runs it with the next seed and requires a different trace; fails
//! with the seed, what broke, when, the trace tail and a replay line when an invariant or an
//! `[expect]` range breaks; and checks the report against its snapshot in `snapshots/` (`cargo
//! insta review`, or `INSTA_UPDATE=always`, after an intended change).
//!
//! Each scenario is also a `turmoil/NAME` test on the turmoil engine (`--engine turmoil`, the
//! real tokio adapters): the same checks but the snapshot. The two engines draw the same seeds
//! but reach different interleavings (docs/simulator.md, "Engines"), so a second snapshot set
//! would pin turmoil's numbers without checking more than the ranges. A scenario whose
//! `engines` leaves out direct (none today) takes its snapshot from turmoil.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use mqsim_sim::run::{run, Engine, RunOptions};
use mqsim_sim::scenario::Scenario;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// One engine's run of `path`: verdict and expectations, determinism (the trace; on direct the
/// capture too), the seed reaching the run, and the snapshot of the default engine's report.
fn check(path: &Path, engine: Engine) -> Result<(), Failed> {
    let mut scenario = Scenario::load(path).map_err(|e| e.to_string())?;
    // Named as a user types it at the repository's root, for the replay line.
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        scenario.file = format!("scenarios/{name}");
    }
    // `engines = [...]`: a scenario too large for some engine in `cargo test` names the others.
    if !runs_on(&scenario, engine.name()) {
        return Ok(());
    }
    let opts = RunOptions {
        engine,
        capture: engine == Engine::Direct,
        ..RunOptions::default()
    };
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
            "{} engine, same seed {}, different traces from line {}:\n  {}\n  {}",
            engine.name(),
            a.scenario.seed,
            first + 1,
            a.trace().lines().nth(first).unwrap_or(""),
            b.trace().lines().nth(first).unwrap_or("")
        )
        .into());
    }
    if opts.capture && (a.pcap != b.pcap || a.pcap.as_ref().is_none_or(|p| p.len() <= 24)) {
        return Err(format!(
            "{} engine, same seed {}: different or empty captures",
            engine.name(),
            a.scenario.seed
        )
        .into());
    }
    let other = RunOptions {
        seed: Some(a.scenario.seed.wrapping_add(1)),
        ..opts.clone()
    };
    let c = run(&scenario, &other)?;
    if c.trace() == a.trace() {
        return Err(format!(
            "{} engine: seeds {} and {} gave the same trace: the seed does not reach the run",
            engine.name(),
            a.scenario.seed,
            c.scenario.seed
        )
        .into());
    }
    // The snapshot is the direct engine's report; turmoil's only for a scenario direct skips.
    if engine == Engine::Direct || !scenario.engines.iter().any(|e| e == "direct") {
        snapshot(path, &a.report.render());
    }
    Ok(())
}

/// Whether `cargo test` runs `scenario` on `engine` (its `engines`); says so when it does not.
fn runs_on(scenario: &Scenario, engine: &str) -> bool {
    let on = scenario.engines.iter().any(|e| e == engine);
    if !on {
        println!(
            "note: {} runs on {:?} only (its `engines`): not run on {engine}",
            scenario.file, scenario.engines
        );
    }
    on
}

/// Checks `report` against the scenario's snapshot in `snapshots/`.
fn snapshot(path: &Path, report: &str) {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    // A mismatch panics; libtest-mimic reports the panic as this test's failure.
    settings.bind(|| insta::assert_snapshot!(name, report));
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
        .flat_map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_string();
            let direct = path.clone();
            [
                Trial::test(name.clone(), move || check(&direct, Engine::Direct)),
                Trial::test(format!("turmoil/{name}"), move || {
                    check(&path, Engine::Turmoil)
                }),
            ]
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
