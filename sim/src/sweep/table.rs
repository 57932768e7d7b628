//! The end of a sweep: how the outcomes spread over its seeds. Per publish QoS, lost, duplicated,
//! reconnects and each run's p50 and p99 latency, each as min / p50 / p99 / max over the seeds
//! (nearest rank); for the whole run, the loss causes that occurred and the costs (packets,
//! segments, bytes and energy per delivered message, battery days); the share of runs in which a
//! connection broke; the failing seeds with their replay lines. Computed from the outcomes alone, in seed order, so the same seeds give the same
//! table whatever ran them: one machine or shards merged, any number of threads.

use std::fmt::Write as _;

use serde::Serialize;

use super::outcome::{SeedFailure, SeedOutcome};

/// One row: a number of each run, spread over the runs that measured it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub qos: u8,
    /// `lost`, `duplicated`, `reconnects`, `p50_us`, `p99_us`.
    pub metric: &'static str,
    /// Runs that measured it (published at this QoS; for latencies, received something).
    pub runs: u64,
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// A failing seed in the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failing {
    pub seed: u64,
    #[serde(flatten)]
    pub failure: SeedFailure,
}

/// The distributions of a sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Table {
    pub runs: u64,
    pub failed: u64,
    /// Runs in which a connection broke ([`SeedOutcome::broken`]).
    pub broken: u64,
    pub rows: Vec<Row>,
    /// The whole run's causes (those that occurred in some run) and costs, spread the same way.
    pub whole: Vec<WholeRow>,
    pub failing: Vec<Failing>,
}

/// A whole-run figure ([`super::outcome::WHOLE_RUN_METRICS`]) over the runs that measured it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WholeRow {
    /// Its `[expect]` key.
    pub metric: String,
    pub runs: u64,
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Nearest-rank percentile of sorted values (`pct` in 1..=100), as the report's latencies.
fn rank(sorted: &[u64], pct: usize) -> u64 {
    let n = sorted.len();
    sorted[(n * pct).div_ceil(100).clamp(1, n) - 1]
}

impl Table {
    /// The table of `outcomes` (in any order: it is sorted by seed first).
    pub fn of(outcomes: &[SeedOutcome]) -> Table {
        let mut sorted: Vec<&SeedOutcome> = outcomes.iter().collect();
        sorted.sort_by_key(|o| o.seed);
        let mut rows = Vec::new();
        type Get = fn(&super::outcome::QosOutcome) -> Option<u64>;
        let metrics: [(&'static str, Get); 5] = [
            ("lost", |q| Some(q.lost)),
            ("duplicated", |q| Some(q.duplicated)),
            ("reconnects", |q| Some(q.reconnects)),
            ("p50_us", |q| q.p50_us),
            ("p99_us", |q| q.p99_us),
        ];
        for qos in 0..3u8 {
            for (metric, get) in metrics {
                let mut values: Vec<u64> = sorted
                    .iter()
                    .filter_map(|o| o.qos[usize::from(qos)].as_ref())
                    .filter_map(get)
                    .collect();
                if values.is_empty() {
                    continue;
                }
                values.sort_unstable();
                rows.push(Row {
                    qos,
                    metric,
                    runs: values.len() as u64,
                    min: values[0],
                    p50: rank(&values, 50),
                    p99: rank(&values, 99),
                    max: values[values.len() - 1],
                });
            }
        }
        let failing: Vec<Failing> = sorted
            .iter()
            .filter_map(|o| {
                o.failure.clone().map(|failure| Failing {
                    seed: o.seed,
                    failure,
                })
            })
            .collect();
        let mut whole = Vec::new();
        for m in super::outcome::WHOLE_RUN_METRICS {
            let key = m.key();
            let mut values: Vec<u64> = sorted
                .iter()
                .filter_map(|o| o.whole.get(key).copied())
                .collect();
            // A cause that never occurred is left out; a cost is shown when measured.
            let cause = key.starts_with("lost_");
            if values.is_empty() || (cause && values.iter().all(|v| *v == 0)) {
                continue;
            }
            values.sort_unstable();
            whole.push(WholeRow {
                metric: key.to_string(),
                runs: values.len() as u64,
                min: values[0],
                p50: rank(&values, 50),
                p99: rank(&values, 99),
                max: values[values.len() - 1],
            });
        }
        Table {
            runs: sorted.len() as u64,
            failed: failing.len() as u64,
            broken: sorted.iter().filter(|o| o.broken).count() as u64,
            rows,
            whole,
            failing,
        }
    }

    /// The table as text, under the line `head` (what was swept), within 80 columns but for the
    /// failures' own lines.
    pub fn render(&self, head: &str) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{head}: {} runs, {} failed", self.runs, self.failed);
        let _ = writeln!(
            t,
            "{:<18} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "over seeds", "runs", "min", "p50", "p99", "max"
        );
        for r in &self.rows {
            let (label, value): (String, fn(u64) -> String) = match r.metric {
                "p50_us" => (format!("qos{} p50 ms", r.qos), ms),
                "p99_us" => (format!("qos{} p99 ms", r.qos), ms),
                m => (format!("qos{} {m}", r.qos), |v| v.to_string()),
            };
            let _ = writeln!(
                t,
                "{label:<18} {:>7} {:>9} {:>9} {:>9} {:>9}",
                r.runs,
                value(r.min),
                value(r.p50),
                value(r.p99),
                value(r.max)
            );
        }
        if !self.whole.is_empty() {
            let _ = writeln!(
                t,
                "{:<24} {:>7} {:>9} {:>9} {:>9} {:>9}",
                "whole run", "runs", "min", "p50", "p99", "max"
            );
        }
        for r in &self.whole {
            let _ = writeln!(
                t,
                "{:<24} {:>7} {:>9} {:>9} {:>9} {:>9}",
                r.metric, r.runs, r.min, r.p50, r.p99, r.max
            );
        }
        let _ = writeln!(
            t,
            "broken connection: {} of {} runs ({:.1} %)",
            self.broken,
            self.runs,
            self.broken as f64 * 100.0 / self.runs.max(1) as f64
        );
        if !self.failing.is_empty() {
            let _ = writeln!(t, "failing seeds:");
        }
        for f in &self.failing {
            let _ = writeln!(t, "seed {}: {}", f.seed, f.failure.detail);
            if let Some(s) = &f.failure.swarm {
                let _ = writeln!(t, "  swarm: {s}");
            }
            let _ = writeln!(t, "  replay: {}", f.failure.replay);
        }
        t
    }
}

/// Microseconds as milliseconds with one decimal.
fn ms(us: u64) -> String {
    format!("{}.{}", us / 1000, (us % 1000) / 100)
}

#[cfg(test)]
mod tests {
    use super::super::outcome::QosOutcome;
    use super::*;

    fn outcome(seed: u64, lost: u64, p99_us: Option<u64>, fail: bool) -> SeedOutcome {
        SeedOutcome {
            whole: Default::default(),
            seed,
            qos: [
                None,
                Some(QosOutcome {
                    published: 10,
                    lost,
                    p99_us,
                    p50_us: p99_us.map(|p| p / 2),
                    ..QosOutcome::default()
                }),
                None,
            ],
            broken: lost > 0,
            failure: fail.then(|| SeedFailure {
                name: "invariant qos1".into(),
                detail: format!("seed {seed} broke"),
                replay: format!("mqsim sim f --seed {seed}"),
                swarm: None,
            }),
        }
    }

    #[test]
    fn distributions_are_nearest_rank_over_the_seeds_that_measured_them() {
        // Lost 0..=99 over 100 seeds; no latency in seed 0.
        let outcomes: Vec<SeedOutcome> = (0..100)
            .map(|s| outcome(s, s, (s > 0).then_some(s * 1000), s == 42))
            .collect();
        let t = Table::of(&outcomes);
        assert_eq!((t.runs, t.failed, t.broken), (100, 1, 99));
        let lost = t.rows.iter().find(|r| r.metric == "lost").unwrap();
        assert_eq!((lost.qos, lost.runs), (1, 100));
        assert_eq!((lost.min, lost.p50, lost.p99, lost.max), (0, 49, 98, 99));
        let p99 = t.rows.iter().find(|r| r.metric == "p99_us").unwrap();
        assert_eq!((p99.runs, p99.min, p99.max), (99, 1000, 99_000));
        assert!(t.rows.iter().all(|r| r.qos == 1), "{:?}", t.rows);
        assert_eq!(t.failing[0].seed, 42);
        let text = t.render("f, seeds 0..100");
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("qos1 p99 ms"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(row[3..], ["99", "1.0", "50.0", "99.0", "99.0"], "{text}");
        assert!(
            text.contains("broken connection: 99 of 100 runs (99.0 %)"),
            "{text}"
        );
        assert!(text.contains("seed 42: seed 42 broke\n  replay: mqsim sim f --seed 42"));
        assert!(text.lines().take(9).all(|l| l.len() <= 80), "{text}");
    }

    #[test]
    fn the_table_does_not_depend_on_the_order_of_the_outcomes() {
        let outcomes: Vec<SeedOutcome> = (0..50)
            .map(|s| outcome(s, s % 7, Some(s), s % 9 == 0))
            .collect();
        let mut reversed = outcomes.clone();
        reversed.reverse();
        assert_eq!(Table::of(&outcomes), Table::of(&reversed));
    }
}
