//! Many seeds of one scenario on every core: each thread takes the next seed, runs it, and
//! keeps what failed with its replay line. Behind `mqsim sim --seeds A..B` and
//! [`crate::world::World::check_seeds`]. Each run is deterministic on its own; the threads only
//! decide which seed runs when, and results are put back in seed order ([`map_seeds`]).
//!
//! The parts of a sweep past the plain pass/fail: each seed's outcome summary ([`outcome`]), the
//! table of their distributions ([`table`]), shards and their files ([`shard`]), swarm testing
//! ([`swarm`]) and the shrinking of a failing seed's scenario ([`shrink`]).

pub mod outcome;
pub mod shard;
pub mod shrink;
pub mod swarm;
pub mod table;

use crate::run::{run, RunOptions, RunOutcome};
use crate::scenario::Scenario;

/// What a sweep found.
#[derive(Debug)]
pub struct Sweep {
    /// Seeds run.
    pub runs: u64,
    /// Each failing seed, with its first problem and its replay line.
    pub failed: Vec<(u64, String)>,
    /// Wall time of the whole sweep.
    pub wall: std::time::Duration,
    /// Simulated time of all runs together.
    pub simulated_ms: u64,
}

/// Runs seeds `a..b` of `scenario` on `jobs` threads; each thread takes the next seed.
pub fn sweep(scenario: &Scenario, opts: &RunOptions, (a, b): (u64, u64), jobs: usize) -> Sweep {
    sweep_with(scenario, opts, (a, b), jobs, &|_| Ok(()))
}

/// A check of the caller's own on a run that passed every invariant and expectation: `Err`
/// says what it found.
pub type Check<'a> = &'a (dyn Fn(&RunOutcome) -> Result<(), String> + Sync);

/// [`sweep`], with `check` applied to every run that passed the invariants and expectations.
pub fn sweep_with(
    scenario: &Scenario,
    opts: &RunOptions,
    (a, b): (u64, u64),
    jobs: usize,
    check: Check<'_>,
) -> Sweep {
    let next = std::sync::atomic::AtomicU64::new(a);
    let started = std::time::Instant::now();
    let results = std::sync::Mutex::new((Vec::new(), 0u64, 0u64));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= b {
                    return;
                }
                let o = RunOptions {
                    seed: Some(seed),
                    ..opts.clone()
                };
                let (fail, sim_ms) = match run(scenario, &o) {
                    Ok(out) if out.failed() => {
                        let why = out
                            .violations
                            .iter()
                            .map(|v| format!("{} at {} us: {}", v.invariant, v.at, v.detail))
                            .chain(out.unmet.iter().cloned())
                            .next()
                            .unwrap_or_default();
                        (
                            Some(format!("{why}\n  replay: {}", out.replay_line())),
                            out.simulated_ms,
                        )
                    }
                    Ok(out) => match check(&out) {
                        Ok(()) => (None, out.simulated_ms),
                        Err(why) => (
                            Some(format!("{why}\n  replay: {}", out.replay_line())),
                            out.simulated_ms,
                        ),
                    },
                    Err(e) => (Some(e), 0),
                };
                let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
                g.1 += 1;
                g.2 += sim_ms;
                if let Some(f) = fail {
                    g.0.push((seed, f));
                }
            });
        }
    });
    let (mut failed, runs, simulated_ms) = results.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort();
    Sweep {
        runs,
        failed,
        wall: started.elapsed(),
        simulated_ms,
    }
}

/// Runs `f` on each of `seeds` on `jobs` threads (each thread takes the next seed) and returns
/// the results in the order of `seeds`, whichever thread finished first. `done` is called after
/// each seed, from the thread that ran it (a progress bar).
pub fn map_seeds<T: Send>(
    seeds: &[u64],
    jobs: usize,
    f: &(dyn Fn(u64) -> T + Sync),
    done: &(dyn Fn(&T) + Sync),
) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, seeds.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { return };
                let r = f(seed);
                done(&r);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_seeds_keeps_the_order_of_the_seeds_on_any_number_of_threads() {
        let seeds: Vec<u64> = (0..200).rev().collect();
        let count = std::sync::atomic::AtomicU64::new(0);
        for jobs in [1, 3, 8] {
            count.store(0, std::sync::atomic::Ordering::Relaxed);
            let out = super::map_seeds(&seeds, jobs, &|s| s * 2, &|_| {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            assert_eq!(out, seeds.iter().map(|s| s * 2).collect::<Vec<_>>());
            assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), 200);
        }
    }
}
