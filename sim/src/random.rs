//! Random scenarios: a seeded generator of valid scenario files, so that a failure found by a
//! sweep is a file and a seed (`mqsim sim --random N` writes each failing one to keep).
//!
//! Drawn as a new user would write them: device groups of every profile and QoS (PubSubClient
//! publishes QoS 0 only), clean and persistent sessions, wills and retained messages, links with
//! independent or bursty loss and jitter, subscribers with `#`, `+` and exact filters, and faults
//! (partition, half-open, reset, WiFi drop, broker restart and power cut) that never overlap.
//! `max_queued_messages` is raised so that announced queue drops do not count as losses. Sizes are
//! kept small (a run takes well under a second in release).

use std::fmt::Write as _;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

struct Draw(ChaCha8Rng);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The text of random scenario number `index` (any u64), named `name`: always valid.
pub fn scenario_text(index: u64, name: &str) -> String {
    let mut d = Draw(ChaCha8Rng::seed_from_u64(index ^ 0x005e_ed24));
    let mut t = String::new();
    let duration_s = *d.pick(&[30u64, 60, 90, 120]);
    let heal_s = *d.pick(&[60u64, 90, 120]);
    let _ = writeln!(t, "description = \"random scenario {name}\"");
    let _ = writeln!(t, "duration_s = {duration_s}");
    let _ = writeln!(t, "heal_s = {heal_s}");
    let _ = writeln!(t, "tick_ms = {}", d.pick(&[1u64, 2, 5]));
    let persistence = d.chance(40);
    let _ = writeln!(t, "[broker]\nmax_queued_messages = 100000");
    if persistence {
        let _ = writeln!(t, "persistence = true");
    }
    if d.chance(20) {
        let _ = writeln!(t, "max_inflight_messages = {}", d.pick(&[1u64, 5, 20]));
    }
    let links = 1 + d.below(3);
    for l in 0..links {
        let _ = writeln!(t, "[link.l{l}]");
        let _ = writeln!(t, "latency_ms = {}", d.pick(&[1u64, 5, 20, 80, 200]));
        let _ = writeln!(t, "jitter_ms = {}", d.pick(&[0u64, 0, 5, 30]));
        match d.below(3) {
            0 => {
                let _ = writeln!(t, "loss = {}", d.pick(&["0.0", "0.01", "0.05", "0.1"]));
            }
            1 => {
                let _ = writeln!(t, "[link.l{l}.gilbert_elliott]");
                let _ = writeln!(t, "p_good_to_bad = {}", d.pick(&["0.01", "0.05"]));
                let _ = writeln!(t, "p_bad_to_good = {}", d.pick(&["0.1", "0.3"]));
                let _ = writeln!(t, "loss_good = {}", d.pick(&["0.0", "0.01"]));
                let _ = writeln!(t, "loss_bad = {}", d.pick(&["0.5", "0.9"]));
            }
            _ => {}
        }
    }
    let mut targets = Vec::new();
    let groups = 1 + d.below(3);
    for g in 0..groups {
        let name = format!("dev{g}");
        let count = *d.pick(&[1u64, 1, 2, 5]);
        let profile = *d.pick(&["pubsubclient", "esp-mqtt", "mqsim"]);
        let qos = if profile == "pubsubclient" {
            0
        } else {
            d.below(3)
        };
        let _ = writeln!(t, "[[device]]\nname = \"{name}\"\ncount = {count}");
        let _ = writeln!(t, "profile = \"{profile}\"\nqos = {qos}");
        let _ = writeln!(t, "interval_ms = {}", d.pick(&[500u64, 1000, 2000, 5000]));
        let _ = writeln!(t, "link = \"l{}\"", d.below(links));
        let _ = writeln!(t, "clean_session = {}", d.chance(50));
        if d.chance(25) {
            let _ = writeln!(t, "retain = true");
        }
        if d.chance(25) {
            let _ = writeln!(
                t,
                "will = {{ topic = \"W/{{id}}\", payload = \"gone\", qos = {}, retain = {} }}",
                d.below(2),
                d.chance(50)
            );
        }
        targets.push(name);
    }
    let subs = 1 + d.below(2);
    for s in 0..subs {
        let name = format!("sub{s}");
        let filter = *d.pick(&["#", "ESP32/#", "ESP32/+/TEM", "+/+", "ESP32/TEM"]);
        let _ = writeln!(
            t,
            "[[subscriber]]\nname = \"{name}\"\nfilter = \"{filter}\""
        );
        let _ = writeln!(t, "qos = {}\nclean_session = {}", d.below(3), d.chance(50));
        let _ = writeln!(t, "link = \"l{}\"", d.below(links));
        targets.push(name);
    }
    // Faults one after the other, each over before the next starts, all within the run.
    let mut at = 5 + d.below(10);
    for _ in 0..d.below(4) {
        let kind = *d.pick(&[
            "partition",
            "half-open",
            "reset",
            "wifi-drop",
            "broker-restart",
            "broker-power-cut",
        ]);
        let len = *d.pick(&[2u64, 5, 10, 30]);
        if at + len + 2 >= duration_s {
            break;
        }
        let _ = writeln!(t, "[[fault]]\nkind = \"{kind}\"\nat_s = {at}");
        if kind != "reset" {
            let _ = writeln!(t, "duration_s = {len}");
        }
        if kind == "half-open" {
            let _ = writeln!(t, "direction = \"{}\"", d.pick(&["up", "down"]));
        }
        if !kind.starts_with("broker") && (kind == "reset" || d.chance(70)) {
            let _ = writeln!(t, "target = \"{}\"", d.pick(&targets));
        }
        at += len + 2 + d.below(10);
    }
    t
}

/// One failing random scenario: its index, the failing seed, the first problem, and the file's
/// text with that seed (kept as is, it replays the failure).
#[derive(Debug)]
pub struct Failure {
    pub index: u64,
    pub seed: u64,
    pub why: String,
    pub text: String,
}

/// Runs random scenarios `a..b`, seeds `1..=seeds` each, on `jobs` threads; returns how many
/// runs there were and every failing (scenario, seed).
pub fn sweep(
    (a, b): (u64, u64),
    seeds: u64,
    jobs: usize,
    opts: &crate::run::RunOptions,
) -> (u64, Vec<Failure>) {
    let mut runs = 0;
    let mut failures = Vec::new();
    for index in a..b {
        let name = format!("random-{index}");
        let text = scenario_text(index, &name);
        let scenario = match crate::scenario::Scenario::parse(&text, &format!("{name}.toml")) {
            Ok(s) => s,
            Err(e) => {
                failures.push(Failure {
                    index,
                    seed: 0,
                    why: format!("generator produced an invalid file: {e}"),
                    text,
                });
                continue;
            }
        };
        let s = crate::sweep::sweep(&scenario, opts, (1, 1 + seeds), jobs);
        runs += s.runs;
        for (seed, why) in s.failed {
            let text = format!("seed = {seed}\n{text}");
            failures.push(Failure {
                index,
                seed,
                why,
                text,
            });
        }
    }
    (runs, failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn every_drawn_scenario_is_valid_and_the_same_for_its_index() {
        for i in 0..300 {
            let text = scenario_text(i, "r");
            assert_eq!(text, scenario_text(i, "r"));
            if let Err(e) = Scenario::parse(&text, "r.toml") {
                panic!("random scenario {i} refused: {e}\n{text}");
            }
        }
    }
}
