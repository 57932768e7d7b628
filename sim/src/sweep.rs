//! Many seeds of one scenario on every core: each thread takes the next seed, runs it, and
//! keeps what failed with its replay line. Behind `mqsim sim --seeds A..B` and
//! [`crate::world::World::check_seeds`]. Each run is deterministic on its own; the threads only
//! decide which seed runs when.

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
