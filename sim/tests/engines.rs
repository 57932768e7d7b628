//! The two engines against each other: over a range of seeds, the distributions of what the
//! ledger counts (delivered, lost, duplicated, reconnects) and of the p99 latency must agree
//! within stated tolerances, for the calibration scenarios and two others. The engines draw the
//! same seeded streams but interleave differently (the turmoil engine hands bytes to the
//! applications at the next 1 ms tick, the direct engine at the instant the link delivers them;
//! docs/simulator.md, "Engines"), so single seeds differ and only distributions can be compared.

use std::path::Path;

use mqsim_sim::run::run;
use mqsim_sim::run::{Engine, RunOptions, RunOutcome};
use mqsim_sim::scenario::Scenario;
use mqsim_sim::sweep::map_seeds;

/// One run's figures (the report's `all` row).
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    published: f64,
    delivered: f64,
    lost: f64,
    duplicated: f64,
    reconnects: f64,
    p99_ms: f64,
}

fn figures(out: &RunOutcome) -> Figures {
    let all = &out.report.summary.all;
    Figures {
        published: all.published as f64,
        delivered: all.delivered as f64,
        lost: (all.lost + all.lost_with_broker) as f64,
        duplicated: all.duplicated as f64,
        reconnects: all.reconnects as f64,
        p99_ms: all.latency_percentile_us(99).unwrap_or(0) as f64 / 1_000.0,
    }
}

/// Every seed's figures on `engine`. Every run must keep the ledger's invariants and meet the
/// scenario's `[expect]` ranges (the ranges are the real measurements' widened to the model's,
/// so they hold on every seed of either engine, not only on the file's).
fn runs(sc: &Scenario, engine: Engine, seeds: (u64, u64)) -> Vec<Figures> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let list: Vec<u64> = (seeds.0..seeds.1).collect();
    // Every run, passing or not (a sweep's check sees only the passing ones).
    let outs = map_seeds(
        &list,
        jobs,
        &|seed| {
            let opts = RunOptions {
                engine,
                seed: Some(seed),
                ..RunOptions::default()
            };
            run(sc, &opts).expect("the scenario runs")
        },
        &|_| {},
    );
    let mut unmet = Vec::new();
    let mut broke = Vec::new();
    for out in &outs {
        let seed = out.scenario.seed;
        unmet.extend(out.unmet.iter().map(|m| format!("seed {seed}: {m}")));
        broke.extend(out.violations.iter().map(|v| format!("seed {seed}: {v:?}")));
    }
    eprintln!(
        "{} on {engine:?}: {} [expect] misses over {} seeds: {unmet:?}",
        sc.file,
        unmet.len(),
        seeds.1 - seeds.0
    );
    assert!(
        unmet.is_empty(),
        "{} on {engine:?}: [expect] ranges missed: {unmet:?}",
        sc.file
    );
    assert!(
        broke.is_empty(),
        "{} on {engine:?}: invariants broken: {broke:?}",
        sc.file
    );
    outs.iter().map(figures).collect()
}

fn mean(v: &[Figures], f: impl Fn(&Figures) -> f64) -> f64 {
    v.iter().map(f).sum::<f64>() / v.len().max(1) as f64
}

fn median(v: &[Figures], f: impl Fn(&Figures) -> f64) -> f64 {
    let mut xs: Vec<f64> = v.iter().map(f).collect();
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// The tolerances, stated before looking at the figures:
/// - mean delivered and mean lost per run: within 3 % of the mean publish calls;
/// - mean duplicated and mean reconnects per run: within 0.5 + 25 % of the larger mean;
/// - median of the runs' p99 latency: within 5 ms + 15 % of the larger median.
fn compare(file: &str, seeds: (u64, u64)) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let mut sc = Scenario::load(&path).expect("scenario loads");
    sc.file = file.to_string();
    let t = runs(&sc, Engine::Turmoil, seeds);
    let d = runs(&sc, Engine::Direct, seeds);
    let published = mean(&t, |f| f.published).max(1.0);
    let mut bad = Vec::new();
    let mut line = |name: &str, a: f64, b: f64, tol: f64| {
        eprintln!("{file} {name}: turmoil {a:.2}, direct {b:.2} (tolerance {tol:.2})");
        if (a - b).abs() > tol {
            bad.push(format!(
                "{name}: turmoil {a:.2}, direct {b:.2}, tolerance {tol:.2}"
            ));
        }
    };
    let three_pct = 0.03 * published;
    line(
        "delivered",
        mean(&t, |f| f.delivered),
        mean(&d, |f| f.delivered),
        three_pct,
    );
    line(
        "lost",
        mean(&t, |f| f.lost),
        mean(&d, |f| f.lost),
        three_pct,
    );
    for (name, get) in [
        (
            "duplicated",
            (|f: &Figures| f.duplicated) as fn(&Figures) -> f64,
        ),
        ("reconnects", |f: &Figures| f.reconnects),
    ] {
        let (a, b) = (mean(&t, get), mean(&d, get));
        line(name, a, b, 0.5 + 0.25 * a.max(b));
    }
    let (a, b) = (median(&t, |f| f.p99_ms), median(&d, |f| f.p99_ms));
    line("p99 ms (median)", a, b, 5.0 + 0.15 * a.max(b));
    assert!(
        bad.is_empty(),
        "{file}, seeds {}..{}: the engines disagree: {bad:?}",
        seeds.0,
        seeds.1
    );
}

#[test]
fn calibration_loss10_distributions_agree() {
    compare("scenarios/calibration-loss10.toml", (1, 41));
}

#[test]
fn calibration_loss30_distributions_agree() {
    // Known: the mean duplicates per run (turmoil 0.67, direct 4.62 over seeds 1-40, measured
    // 2026-12-06) since the broker adapter's rewrite; not explained yet (docs/simulator.md).
    compare("scenarios/calibration-loss30.toml", (1, 41));
}

#[test]
fn qos1_loss20_distributions_agree() {
    compare("scenarios/qos1-loss20.toml", (1, 21));
}

#[test]
fn broker_restart_clean_distributions_agree() {
    compare("scenarios/broker-restart-clean.toml", (1, 21));
}

/// An Arduino sketch runs as its own process, on the turmoil engine only: a scenario with one
/// goes there whatever engine is asked for, and its replay line says so.
#[test]
fn a_sketch_scenario_runs_on_turmoil() {
    let text = "description = \"a sketch\"\nduration_s = 10\n[[device]]\nname = \"esp32\"\n\
                profile = \"pubsubclient\"\nsketch = \"nowhere.ino\"\n";
    let sc = Scenario::parse(text, "sketch.toml").expect("parses");
    assert_eq!(Engine::for_scenario(Engine::Direct, &sc), Engine::Turmoil);
    let plain = Scenario::parse(
        &text.replace("sketch = \"nowhere.ino\"\n", "qos = 0\n"),
        "p.toml",
    )
    .expect("parses");
    assert_eq!(Engine::for_scenario(Engine::Direct, &plain), Engine::Direct);
    assert_eq!(
        Engine::for_scenario(Engine::Turmoil, &plain),
        Engine::Turmoil
    );
}
