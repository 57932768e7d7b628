//! proptest strategies for fault schedules (feature `proptest`): draw the faults a world runs
//! with, and let proptest shrink a failing schedule to the fewest, shortest faults.
//!
//! ```no_run
//! use mqsim_sim::proptest::{fault_schedule, FaultChoice};
//! use mqsim_sim::world::World;
//! use proptest::prelude::*;
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
//!     #[test]
//!     fn alarms_survive_any_outage(
//!         seed in 1u64..1_000,
//!         faults in fault_schedule(&["door"], &FaultChoice::ALL, 5_000..100_000, 3),
//!     ) {
//!         let mut world = World::from_file("tests/door.toml").unwrap();
//!         for f in faults {
//!             world = world.fault(f);
//!         }
//!         // The failure text lists the seed, the faults as [[fault]] tables, the replay line.
//!         if let Err(failure) = world.check(seed) {
//!             return Err(TestCaseError::fail(failure.text));
//!         }
//!     }
//! }
//! ```

use std::ops::Range;

use proptest::prelude::*;

use crate::scenario::{FaultKind, FaultSpec};

/// The kinds of fault a schedule draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultChoice {
    /// Both directions of a target's link lose everything (silently).
    Partition,
    /// A target's WiFi drops (its socket with it) and rejoins.
    WifiDrop,
    /// A target's connection is reset.
    Reset,
    /// The broker stops cleanly and starts again.
    BrokerRestart,
}

impl FaultChoice {
    /// Every kind.
    pub const ALL: [FaultChoice; 4] = [
        FaultChoice::Partition,
        FaultChoice::WifiDrop,
        FaultChoice::Reset,
        FaultChoice::BrokerRestart,
    ];
}

/// Longest fault a schedule draws, in ms.
pub const FAULT_MAX_MS: u64 = 60_000;

/// Up to `max_faults` faults, one after another (never overlapping), inside `window_ms`
/// (simulated ms; keep its end at or before the scenario's `duration_s`), each of a kind of
/// `kinds` on one of `targets` (device or subscriber names; broker faults take none).
pub fn fault_schedule(
    targets: &[&str],
    kinds: &[FaultChoice],
    window_ms: Range<u64>,
    max_faults: usize,
) -> impl Strategy<Value = Vec<FaultSpec>> {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let kinds: Vec<FaultChoice> = kinds.to_vec();
    let n_targets = targets.len().max(1);
    let n_kinds = kinds.len().max(1);
    let one = (
        0u64..20_000,
        1_000u64..FAULT_MAX_MS,
        0..n_kinds,
        0..n_targets,
    );
    proptest::collection::vec(one, 0..=max_faults).prop_map(move |drawn| {
        let mut at = window_ms.start;
        let mut out = Vec::new();
        for (gap, duration, k, t) in drawn {
            let Some(kind) = kinds.get(k).copied() else {
                continue;
            };
            let (kind, duration_ms, target) = match kind {
                FaultChoice::Partition => (FaultKind::Partition, duration, targets.get(t)),
                FaultChoice::WifiDrop => (FaultKind::WifiDrop, duration, targets.get(t)),
                FaultChoice::Reset => (FaultKind::Reset, 0, targets.get(t)),
                FaultChoice::BrokerRestart => {
                    (FaultKind::BrokerRestart, 1_000 + duration % 9_000, None)
                }
            };
            let start = at + gap;
            let end = start + duration_ms;
            if end > window_ms.end {
                break;
            }
            out.push(FaultSpec {
                at_ms: start,
                duration_ms,
                kind,
                target: target.cloned(),
            });
            at = end + 1;
        }
        out
    })
}
