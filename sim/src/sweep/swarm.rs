//! Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): rather than every run having every
//! kind of fault at a middling rate, each seed first draws which fault kinds are on at all (each
//! with probability 1/2) and how hard each one hits, so that runs with one fault kind at a high
//! rate, or a rare pair of kinds, come up often instead of almost never.
//!
//! The draw is the seed's own stream ([`Stream::Swarm`]): the same seed gives the same
//! configuration on every machine, and `mqsim sim FILE --swarm --seed N` replays it. What a seed
//! drew is added to the scenario's own faults:
//!
//! | kind | when on | range drawn |
//! |---|---|---|
//! | loss | every link a device uses loses segments independently | 1 % to 30 % |
//! | partition | 1 to 3 partitions | 1 to 20 s each |
//! | reset | 1 to 4 connection resets | instantaneous |
//! | half-open | 1 or 2, direction up or down | 2 to 30 s each |
//! | broker-restart | 1 or 2 clean broker restarts | 1 to 5 s down |
//!
//! A client fault's target is drawn among every client, each device group and each subscriber.
//! The drawn faults follow one another (never overlapping each other), from 1 s into the run, and
//! are over by the end of the safety phase; in the shuffled order, each one that no longer fits
//! is left out.

use std::fmt::Write as _;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::scenario::{Direction, FaultKind, FaultSpec, Loss, Scenario};
use crate::seed::Stream;

/// Loss rate range when loss is on, in thousandths.
const LOSS_PER_MILLE: (u64, u64) = (10, 300);
/// (count range, duration range in ms) of each fault kind when on.
const PARTITION: ((u64, u64), (u64, u64)) = ((1, 3), (1_000, 20_000));
const RESET: (u64, u64) = (1, 4);
const HALF_OPEN: ((u64, u64), (u64, u64)) = ((1, 2), (2_000, 30_000));
const BROKER_RESTART: ((u64, u64), (u64, u64)) = ((1, 2), (1_000, 5_000));
/// The drawn faults start no earlier than this, once the clients had a chance to connect.
const FIRST_FAULT_MS: u64 = 1_000;

struct Draw(ChaCha8Rng);

impl Draw {
    /// Uniform in `lo..=hi` (the modulo bias is below 2^-50 for these ranges).
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.0.next_u64() % (hi - lo + 1)
    }
    fn coin(&mut self) -> bool {
        self.0.next_u64() & 1 == 1
    }
}

/// `scenario` with what seed `seed` drew added, and the drawn configuration in words.
pub fn apply(scenario: &Scenario, seed: u64) -> (Scenario, String) {
    let mut d = Draw(ChaCha8Rng::seed_from_u64(Stream::Swarm.seed(seed)));
    let mut s = scenario.clone();
    let mut words = Vec::new();
    // Draw every kind's switch first, then its rates: a kind's draws never depend on another's.
    let on: [bool; 5] = std::array::from_fn(|_| d.coin());
    let mut targets: Vec<Option<String>> = vec![None];
    targets.extend(s.devices.iter().map(|dev| Some(dev.name.clone())));
    targets.extend(s.subscribers.iter().map(|sub| Some(sub.name.clone())));
    let target = |d: &mut Draw| targets[d.range((0, targets.len() as u64 - 1)) as usize].clone();

    if on[0] {
        let per_mille = d.range(LOSS_PER_MILLE);
        let used: std::collections::BTreeSet<String> =
            s.devices.iter().map(|dev| dev.link.clone()).collect();
        for name in &used {
            if let Some(l) = s.links.get_mut(name) {
                l.loss = Loss::Independent(per_mille as f64 / 1000.0);
            }
        }
        let links: Vec<&str> = used.iter().map(String::as_str).collect();
        words.push(format!(
            "loss {}.{} % on {}",
            per_mille / 10,
            per_mille % 10,
            links.join(", ")
        ));
    } else {
        words.push("loss off".to_string());
    }
    // (kind, duration) of each drawn fault, kind by kind.
    let mut drawn: Vec<(FaultKind, u64, Option<String>)> = Vec::new();
    let kinds: [(&str, bool); 4] = [
        ("partition", on[1]),
        ("reset", on[2]),
        ("half-open", on[3]),
        ("broker-restart", on[4]),
    ];
    for (name, on) in kinds {
        if !on {
            continue;
        }
        let (count, lens) = match name {
            "partition" => (d.range(PARTITION.0), PARTITION.1),
            "reset" => (d.range(RESET), (0, 0)),
            "half-open" => (d.range(HALF_OPEN.0), HALF_OPEN.1),
            _ => (d.range(BROKER_RESTART.0), BROKER_RESTART.1),
        };
        for _ in 0..count {
            let len = d.range(lens);
            let (kind, who) = match name {
                "partition" => (FaultKind::Partition, target(&mut d)),
                "reset" => (FaultKind::Reset, target(&mut d)),
                "half-open" => {
                    let dir = if d.coin() {
                        Direction::Up
                    } else {
                        Direction::Down
                    };
                    (FaultKind::HalfOpen(dir), target(&mut d))
                }
                _ => (FaultKind::BrokerRestart, None),
            };
            drawn.push((kind, len, who));
        }
    }
    // Shuffled (Fisher-Yates), then laid out one after another with drawn gaps.
    for i in (1..drawn.len()).rev() {
        let j = d.range((0, i as u64)) as usize;
        drawn.swap(i, j);
    }
    // In the shuffled order, each fault that still fits is kept.
    let room = s.duration_ms.saturating_sub(FIRST_FAULT_MS);
    let mut used = 0;
    drawn.retain(|f| {
        let fits = used + f.1 <= room;
        if fits {
            used += f.1;
        }
        fits
    });
    let slack = room - drawn.iter().map(|f| f.1).sum::<u64>();
    let mut gaps: Vec<u64> = drawn.iter().map(|_| d.range((0, slack))).collect();
    gaps.sort_unstable();
    let mut placed = Vec::new();
    let mut before = 0;
    for ((kind, len, target), gap) in drawn.into_iter().zip(gaps) {
        placed.push(FaultSpec {
            at_ms: FIRST_FAULT_MS + gap + before,
            duration_ms: len,
            kind,
            target,
        });
        before += len;
    }
    for (name, on) in kinds {
        let mine: Vec<String> = placed
            .iter()
            .filter(|f| kind_name(f.kind) == name)
            .map(describe)
            .collect();
        words.push(match (on, mine.len()) {
            (false, _) => format!("{name} off"),
            (true, 0) => format!("{name} x0 (none fit in the run)"),
            (true, n) => format!("{name} x{n} ({})", mine.join(", ")),
        });
    }
    s.faults.extend(placed);
    s.faults.sort_by_key(|f| f.at_ms);
    (s, words.join("; "))
}

fn kind_name(k: FaultKind) -> &'static str {
    match k {
        FaultKind::Partition => "partition",
        FaultKind::HalfOpen(_) => "half-open",
        FaultKind::Reset => "reset",
        FaultKind::WifiDrop => "wifi-drop",
        FaultKind::BrokerPowerCut => "broker-power-cut",
        FaultKind::BrokerRestart => "broker-restart",
    }
}

/// `esp32 at 12.3 s for 4.0 s`, `all up at 3.0 s for 2.5 s`.
fn describe(f: &FaultSpec) -> String {
    let mut t = f.target.clone().unwrap_or_else(|| "all".to_string());
    if let FaultKind::HalfOpen(dir) = f.kind {
        t.push_str(if dir == Direction::Up { " up" } else { " down" });
    }
    let secs = |ms: u64| format!("{}.{:03} s", ms / 1000, ms % 1000);
    if f.kind.targets_broker() {
        t = String::new();
    }
    let _ = write!(
        t,
        "{}at {}",
        if t.is_empty() { "" } else { " " },
        secs(f.at_ms)
    );
    if f.kind != FaultKind::Reset {
        let _ = write!(t, " for {}", secs(f.duration_ms));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let text = include_str!("../../../scenarios/esp32-qos0-lossy-wifi.toml");
        Scenario::parse(text, "esp32-qos0-lossy-wifi.toml").unwrap()
    }

    #[test]
    fn the_same_seed_draws_the_same_configuration() {
        let s = scenario();
        for seed in 0..50 {
            assert_eq!(apply(&s, seed), apply(&s, seed));
        }
        assert_ne!(apply(&s, 1).1, apply(&s, 2).1);
    }

    #[test]
    fn each_kind_is_on_in_about_half_the_seeds_and_faults_never_overlap() {
        let s = scenario();
        let (mut loss, mut partition, mut neither) = (0, 0, 0);
        for seed in 0..400 {
            let (run, words) = apply(&s, seed);
            let has_loss = !words.contains("loss off");
            let has_partition = !words.contains("partition off");
            loss += u32::from(has_loss);
            partition += u32::from(has_partition);
            neither += u32::from(!has_loss && !has_partition);
            assert_eq!(
                run.links["wifi"].loss != s.links["wifi"].loss,
                has_loss,
                "{words}"
            );
            for w in run.faults.windows(2) {
                assert!(w[0].at_ms + w[0].duration_ms <= w[1].at_ms, "{words}");
            }
            for f in &run.faults {
                assert!(f.at_ms >= FIRST_FAULT_MS && f.at_ms + f.duration_ms <= s.duration_ms);
            }
            // What it says is what it runs: one entry per drawn fault.
            let count = |k: &str| run.faults.iter().filter(|f| kind_name(f.kind) == k).count();
            for k in ["partition", "reset", "half-open", "broker-restart"] {
                if count(k) > 0 {
                    assert!(words.contains(&format!("{k} x{}", count(k))), "{words}");
                } else {
                    let off = format!("{k} off");
                    assert!(
                        words.contains(&off) || words.contains(&format!("{k} x0")),
                        "{words}"
                    );
                }
            }
        }
        // Each on with p = 1/2 (binomial, 400 draws: 200 +- 40 is over 4 sigma).
        assert!((160..=240).contains(&loss), "{loss}");
        assert!((160..=240).contains(&partition), "{partition}");
        // Independent: both off in about a quarter.
        assert!((60..=140).contains(&neither), "{neither}");
    }

    #[test]
    fn what_is_drawn_writes_to_a_file_that_reads_back() {
        let s = scenario();
        for seed in 0..30 {
            let (run, _) = apply(&s, seed);
            let again = Scenario::parse(&run.to_toml(), "x.toml").unwrap();
            assert_eq!(again.faults, run.faults);
        }
    }
}
