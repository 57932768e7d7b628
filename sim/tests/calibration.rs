//! Calibration: the model's distribution over seeds against the real runs it mirrors.
//!
//! For every cell of `scenarios/calibration-loss{10,30}.toml` (QoS 0, 1, 2) the real runs' p50
//! and p99 latency and delivered counts (`sim/tests/data/real-lossy-link/calibration.csv`, 8
//! runs per cell, provenance in the README beside it) must fall inside the model's min-max over
//! the seeds, and the model's median p50 must be within 2x of the real median. A cell that still
//! misses a check is listed in [`KNOWN_MISSES`] with the reason (docs/simulator.md
//! "Calibration" says more); with the default seeds, a listed miss that is met fails the test
//! too, so the list stays true.
//!
//! Seeds: 1..=8 by default (16 runs, one thread per file); `MQSIM_CALIBRATION_SEEDS=40` gives the
//! full sweep of docs/simulator.md (`sim/sweep-calibration.sh` prints the same over 40 seeds).
//! The table is printed with `-- --nocapture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mqsim_sim::run::{run, RunOptions};
use mqsim_sim::scenario::{Metric, Scenario, Scope};

const DEFAULT_SEEDS: u64 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    /// The real p50s lie within the model's p50 range over seeds.
    P50Range,
    /// The same for p99.
    P99Range,
    /// The same for the delivered counts.
    Delivered,
    /// The model's median p50 is within 2x of the real median (either way).
    MedianP50,
}

/// (loss %, QoS, check, why): the cells the model still misses with the default seeds (8);
/// each reason gives the 8-seed figures, the 40-seed ones (`MQSIM_CALIBRATION_SEEDS=40`) and
/// what is known of the gap (docs/simulator.md "Calibration" says more).
const KNOWN_MISSES: &[(u32, u8, Check, &str)] = &[
    (
        10,
        0,
        Check::P50Range,
        "model 6-53 ms (40 seeds 2-86) vs real 32-706: real run 6 alone (p50 706, p99 2,115) \
         had a stall of seconds no seed reaches; the other seven are 32-66",
    ),
    (
        10,
        0,
        Check::P99Range,
        "model 261-1343 ms (40 seeds 208-1638) vs real 310-2115: the same run 6",
    ),
    (
        10,
        1,
        Check::P50Range,
        "model 2-52 ms (40 seeds 2-52) vs real 0.7-21: real runs 1-3 (0.7-0.9 ms) are under \
         the model's floor of two 1 ms application ticks (the veth itself is 0.025 ms now)",
    ),
    (
        10,
        1,
        Check::P99Range,
        "model 192-318 ms (40 seeds 159-447) vs real 207-472: one probe at the RTO; the real \
         tails reach two",
    ),
    (
        10,
        2,
        Check::P50Range,
        "model 104-155 ms (40 seeds 78-155, median x1.07) vs real 61-110: slower",
    ),
    (
        10,
        2,
        Check::P99Range,
        "model 440-625 ms vs real 353-480 (40 seeds 258-805: met)",
    ),
    (
        30,
        0,
        Check::P50Range,
        "model 218-1045 ms vs real 504-1800 (40 seeds 102-5101: met)",
    ),
    (
        30,
        0,
        Check::MedianP50,
        "model median 327 ms (40 seeds 427, x0.51: met) vs real 835",
    ),
    (
        30,
        1,
        Check::P50Range,
        "model 102-167 ms (40 seeds 102-27976) vs real 101.3-178: 101.3 is 0.7 ms under the \
         model's 102 (the same floor of two 1 ms ticks)",
    ),
    (
        30,
        1,
        Check::P99Range,
        "model 552-1926 ms vs real 605-1983 (40 seeds 451-32241: met)",
    ),
    (
        30,
        2,
        Check::P50Range,
        "model 345-759 ms (40 seeds 274-2350, median x1.69) vs real 253-508: slower",
    ),
    (
        30,
        2,
        Check::P99Range,
        "model 1234-6693 ms (40 seeds 770-8203) vs real 742-2010: slower",
    ),
];

/// One run's figures for one QoS (real or modelled); no latency when nothing was delivered.
#[derive(Clone, Copy, Debug)]
struct Sample {
    delivered: f64,
    p50: Option<f64>,
    p99: Option<f64>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real runs by (loss %, QoS), from the copied CSV (columns by header name).
fn real_runs() -> BTreeMap<(u32, u8), Vec<Sample>> {
    let path = repo().join("sim/tests/data/real-lossy-link/calibration.csv");
    let text = std::fs::read_to_string(&path).expect("the real runs' CSV is in the repository");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name} in {}", path.display()))
    };
    let (loss, qos, delivered, p50, p99) = (
        col("loss_pct"),
        col("qos"),
        col("delivered"),
        col("lat_ms_p50"),
        col("lat_ms_p99"),
    );
    let mut out: BTreeMap<(u32, u8), Vec<Sample>> = BTreeMap::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> f64 {
            f.get(c)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{}:{}: column {c}", path.display(), i + 2))
        };
        out.entry((num(loss) as u32, num(qos) as u8))
            .or_default()
            .push(Sample {
                delivered: num(delivered),
                p50: Some(num(p50)),
                p99: Some(num(p99)),
            });
    }
    out
}

/// The model's samples by QoS over `seeds` runs of one calibration file.
fn model_runs(file: &str, seeds: u64) -> BTreeMap<u8, Vec<Sample>> {
    let scenario = Scenario::load(repo().join("scenarios").join(file)).expect("loads");
    let mut out: BTreeMap<u8, Vec<Sample>> = BTreeMap::new();
    for seed in 1..=seeds {
        let opts = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let r = run(&scenario, &opts).expect("runs");
        for q in 0..=2u8 {
            let scope = Scope::Qos(q);
            let get = |m| r.report.metric(&scope, m).map(|v| v as f64);
            // Latencies in ms with their fraction (the µs percentiles; `[expect]`'s whole ms
            // would floor a 0.3 ms p50 to 0), as the real runs' CSV has them.
            let tally = r.report.summary.qos.get(usize::from(q));
            let ms = |pct| {
                tally
                    .and_then(|t| t.latency_percentile_us(pct))
                    .map(|us| us as f64 / 1e3)
            };
            out.entry(q).or_default().push(Sample {
                delivered: get(Metric::Delivered).unwrap_or(0.0),
                p50: ms(50),
                p99: ms(99),
            });
        }
    }
    out
}

fn range(v: &[f64]) -> Option<(f64, f64)> {
    let lo = v.iter().copied().reduce(f64::min)?;
    let hi = v.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => s.get(n / 2).copied(),
        _ => Some((s.get(n / 2 - 1)? + s.get(n / 2)?) / 2.0),
    }
}

/// Each check of one cell: met or not, and the figures.
fn verdicts(real: &[Sample], model: &[Sample]) -> Vec<(Check, bool, String)> {
    let pick = |s: &[Sample], f: fn(&Sample) -> Option<f64>| -> Vec<f64> {
        s.iter().filter_map(f).collect()
    };
    let covers = |r: &[f64], m: &[f64]| -> (bool, String) {
        match (range(r), range(m)) {
            (Some((rl, rh)), Some((ml, mh))) => (
                ml <= rl && rh <= mh,
                format!("real {rl:.1}-{rh:.1} model {ml:.1}-{mh:.1}"),
            ),
            _ => (false, "no samples".to_string()),
        }
    };
    let mut out = Vec::new();
    for (check, f) in [
        (
            Check::P50Range,
            (|s: &Sample| s.p50) as fn(&Sample) -> Option<f64>,
        ),
        (Check::P99Range, |s: &Sample| s.p99),
        (Check::Delivered, |s: &Sample| Some(s.delivered)),
    ] {
        let (ok, text) = covers(&pick(real, f), &pick(model, f));
        out.push((check, ok, text));
    }
    let (rm, mm) = (
        median(&pick(real, |s| s.p50)),
        median(&pick(model, |s| s.p50)),
    );
    let (ok, text) = match (rm, mm) {
        (Some(r), Some(m)) if r > 0.0 && m > 0.0 => (
            m <= 2.0 * r && r <= 2.0 * m,
            format!("median real {r:.1} model {m:.1} (x{:.2})", m / r),
        ),
        _ => (false, "no samples".to_string()),
    };
    out.push((Check::MedianP50, ok, text));
    out
}

#[test]
fn calibration_cells_match_the_real_runs() {
    let seeds: u64 = std::env::var("MQSIM_CALIBRATION_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    let real = real_runs();
    // One thread per file: each run is its own deterministic simulation.
    let files = [
        (10u32, "calibration-loss10.toml"),
        (30, "calibration-loss30.toml"),
    ];
    let models: Vec<(u32, BTreeMap<u8, Vec<Sample>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|&(loss, file)| s.spawn(move || (loss, model_runs(file, seeds))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a calibration run"))
            .collect()
    });
    let mut failures = Vec::new();
    println!("calibration over seeds 1..={seeds}:");
    for (loss, by_qos) in &models {
        for (qos, model) in by_qos {
            let real_cell = real
                .get(&(*loss, *qos))
                .expect("a real cell for every model cell");
            for (check, ok, text) in verdicts(real_cell, model) {
                let known = KNOWN_MISSES
                    .iter()
                    .find(|k| (k.0, k.1, k.2) == (*loss, *qos, check));
                let mark = match (ok, known) {
                    (true, None) => "ok",
                    (false, Some(_)) => "known miss",
                    (false, None) => {
                        failures.push(format!("{loss} % QoS {qos} {check:?}: {text}"));
                        "MISS"
                    }
                    (true, Some(_)) => {
                        if seeds == DEFAULT_SEEDS {
                            failures.push(format!(
                                "{loss} % QoS {qos} {check:?} is met now ({text}): \
                                 remove it from KNOWN_MISSES"
                            ));
                        }
                        "met (listed as a miss)"
                    }
                };
                let why = known.map_or("", |k| k.3);
                println!("  {loss:>2} % QoS {qos} {check:<10?} {mark:<10} {text}  {why}");
            }
        }
    }
    assert!(failures.is_empty(), "calibration:\n{}", failures.join("\n"));
}
