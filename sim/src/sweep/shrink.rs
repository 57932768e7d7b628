//! Shrinking a failing seed's scenario (`mqsim sim FILE --seed N --shrink`): the same seed, a
//! smaller scenario, the same failure. Greedy, in the manner of delta debugging (Zeller and
//! Hildebrandt, "Simplifying and Isolating Failure-Inducing Input", 2002): try each smaller
//! candidate in turn, keep the first that still fails with the same name
//! ([`super::outcome::SeedFailure::name`]: the same invariant, or the same `[expect]` check),
//! and start again from it, until no candidate fails or the run budget is spent.
//!
//! The candidates, largest cut first: half the safety phase (`duration_s`, faults and inputs
//! cut to fit), each device group without, each group at half its count, each subscriber
//! without, each fault without, each fault at half its duration, each input without. What names
//! a removed device or subscriber (a fault's target, an input, an `[expect]` scope) goes with
//! it. Each candidate is written as a file and read back before it runs
//! ([`Scenario::to_toml`]), so the result is always a file that parses.

use crate::run::{run, RunOptions};
use crate::scenario::{FaultKind, InputSchedule, Scenario, Scope};

use super::outcome::failure_of;

/// Runs a shrink may make, by default.
pub const MAX_RUNS: u32 = 400;
/// Faults are not shortened below this.
const MIN_FAULT_MS: u64 = 100;
/// Nor the safety phase.
const MIN_DURATION_MS: u64 = 1_000;

/// The smallest failing scenario found.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub scenario: Scenario,
    /// The failure it keeps: `invariant qos0`, `expect lost`.
    pub name: String,
    /// Its detail in the smallest scenario.
    pub detail: String,
    /// Each step taken, in words.
    pub steps: Vec<String>,
    /// Runs made, the first (the original) included.
    pub runs: u32,
}

/// Shrinks `scenario` (its seed is the failing seed) while it fails the way it does. `Err` when
/// it does not fail at all, or cannot run.
pub fn shrink(scenario: &Scenario, opts: &RunOptions, max_runs: u32) -> Result<Shrunk, String> {
    let fails = |s: &Scenario| -> Result<Option<(String, String)>, String> {
        run(s, opts).map(|out| failure_of(&out))
    };
    let Some((name, mut detail)) = fails(scenario)? else {
        return Err(format!(
            "{} with seed {} does not fail: nothing to shrink",
            scenario.file, scenario.seed
        ));
    };
    let mut best = scenario.clone();
    let mut steps = Vec::new();
    let mut runs = 1;
    'outer: while runs < max_runs {
        for (what, candidate) in candidates(&best) {
            // Only what reads back from a file: the result is written as one.
            let Ok(candidate) = Scenario::parse(&candidate.to_toml(), &best.file) else {
                continue;
            };
            if candidate == best {
                continue;
            }
            runs += 1;
            if let Ok(Some((n, d))) = fails(&candidate) {
                if n == name {
                    best = candidate;
                    detail = d;
                    steps.push(what);
                    continue 'outer;
                }
            }
            if runs >= max_runs {
                break 'outer;
            }
        }
        break;
    }
    Ok(Shrunk {
        scenario: best,
        name,
        detail,
        steps,
        runs,
    })
}

/// Every one-step-smaller scenario, largest cut first, each with what was cut.
fn candidates(s: &Scenario) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    if s.duration_ms / 2 >= MIN_DURATION_MS {
        let d = s.duration_ms / 2;
        let mut c = s.clone().with_duration_ms(d);
        c.inputs.retain(|i| match i.schedule {
            InputSchedule::At { at_ms, .. } => at_ms < d,
            InputSchedule::Toggle { .. } => true,
        });
        c.faults
            .retain(|f| f.kind.targets_broker() || f.duration_ms > 0 || f.kind == FaultKind::Reset);
        out.push((
            format!("duration_s {} -> {}", secs(s.duration_ms), secs(d)),
            c,
        ));
    }
    if s.devices.len() > 1 {
        for (i, d) in s.devices.iter().enumerate() {
            let mut c = s.clone();
            c.devices.remove(i);
            out.push((format!("device {} removed", d.name), forget_missing(c)));
        }
    }
    for (i, d) in s.devices.iter().enumerate() {
        if d.count > 1 {
            let mut c = s.clone();
            c.devices[i].count = d.count / 2;
            out.push((
                format!("device {} count {} -> {}", d.name, d.count, d.count / 2),
                forget_missing(c),
            ));
        }
    }
    for (i, sub) in s.subscribers.iter().enumerate() {
        let mut c = s.clone();
        c.subscribers.remove(i);
        out.push((
            format!("subscriber {} removed", sub.name),
            forget_missing(c),
        ));
    }
    for (i, f) in s.faults.iter().enumerate() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push((
            format!("fault {} at {} removed", kind(f.kind), secs(f.at_ms)),
            c,
        ));
    }
    for (i, f) in s.faults.iter().enumerate() {
        if f.kind != FaultKind::Reset && f.duration_ms / 2 >= MIN_FAULT_MS {
            let mut c = s.clone();
            c.faults[i].duration_ms = f.duration_ms / 2;
            out.push((
                format!(
                    "fault {} at {} for {} -> {}",
                    kind(f.kind),
                    secs(f.at_ms),
                    secs(f.duration_ms),
                    secs(f.duration_ms / 2)
                ),
                c,
            ));
        }
    }
    for (i, input) in s.inputs.iter().enumerate() {
        let mut c = s.clone();
        c.inputs.remove(i);
        out.push((
            format!("input {} of {} removed", input.name, input.target),
            c,
        ));
    }
    out
}

/// Drops what names a device or subscriber that is no longer there: faults aimed at it, its
/// inputs, its `[expect]` scopes.
fn forget_missing(mut s: Scenario) -> Scenario {
    let ids = s.client_ids();
    let groups: Vec<String> = s
        .devices
        .iter()
        .map(|d| d.name.clone())
        .chain(s.subscribers.iter().map(|x| x.name.clone()))
        .collect();
    let known = |n: &str| ids.iter().any(|i| i == n) || groups.iter().any(|g| g == n);
    s.faults.retain(|f| f.target.as_deref().is_none_or(&known));
    s.inputs.retain(|i| known(&i.target));
    s.expect.checks.retain(|c| match &c.scope {
        Scope::Device(d) | Scope::Subscriber(d) => known(d),
        _ => true,
    });
    s
}

fn kind(k: FaultKind) -> &'static str {
    match k {
        FaultKind::Partition => "partition",
        FaultKind::HalfOpen(_) => "half-open",
        FaultKind::Reset => "reset",
        FaultKind::WifiDrop => "wifi-drop",
        FaultKind::BrokerPowerCut => "broker-power-cut",
        FaultKind::BrokerRestart => "broker-restart",
    }
}

fn secs(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    }
}

/// The file a shrink writes: a comment saying where it came from, what still fails, what was
/// cut, and its replay line, then the scenario (its `seed` the failing seed, so that a plain
/// `mqsim sim FILE` replays it).
pub fn file_text(shrunk: &Shrunk, from: &str, out_path: &str, swarm: Option<&str>) -> String {
    let mut t = format!(
        "# Shrunk by `mqsim sim --shrink` from {from} with seed {}: `{}` still fails.\n",
        shrunk.scenario.seed, shrunk.name
    );
    if let Some(s) = swarm {
        t.push_str(&format!(
            "# The seed's --swarm draw, written out below: {s}\n"
        ));
    }
    for step in &shrunk.steps {
        t.push_str(&format!("# - {step}\n"));
    }
    t.push_str(&format!("# {}\n", shrunk.detail.replace('\n', " ")));
    t.push_str(&format!(
        "# replay: cargo run --release -- sim {out_path} --seed {}\n\n",
        shrunk.scenario.seed
    ));
    let mut sc = shrunk.scenario.clone();
    if !sc.description.starts_with("shrunk: ") {
        sc.description = format!("shrunk: {}", sc.description);
    }
    t.push_str(&sc.to_toml());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_device_takes_what_names_it_along() {
        let text = r##"
description = "two groups"
duration_s = 10
[[device]]
name = "a"
profile = "esp-mqtt"
qos = 1
[[device]]
name = "b"
count = 4
profile = "esp-mqtt"
qos = 1
[[subscriber]]
name = "s"
filter = "#"
qos = 1
[[fault]]
kind = "partition"
at_s = 1
duration_s = 2
target = "b-3"
[[fault]]
kind = "reset"
at_s = 4
target = "a"
[expect.device.b]
reconnects = [0, 9]
"##;
        let s = Scenario::parse(text, "t.toml").unwrap();
        let cs = candidates(&s);
        let whats: Vec<&str> = cs.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(
            whats,
            [
                "duration_s 10 s -> 5 s",
                "device a removed",
                "device b removed",
                "device b count 4 -> 2",
                "subscriber s removed",
                "fault partition at 1 s removed",
                "fault reset at 4 s removed",
                "fault partition at 1 s for 2 s -> 1 s",
            ]
        );
        for (what, c) in &cs {
            Scenario::parse(&c.to_toml(), "t.toml").unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        let no_b = &cs[2].1;
        assert_eq!(no_b.faults.len(), 1, "the partition of b-3 goes with b");
        assert!(no_b
            .expect
            .checks
            .iter()
            .all(|c| c.scope != Scope::Device("b".into())));
        let half_b = &cs[3].1;
        assert_eq!(half_b.faults.len(), 1, "b-3 is no more with 2 devices");
    }
}
