//! The simulator as a library, for your own `cargo test`: a world built from a scenario (a file,
//! TOML text, or a [`Scenario`] value), devices that run your applications, one seed or many, the
//! ledger's verdict, the report, the trace and the records of what was delivered.
//!
//! ```no_run
//! use mqsim::app::reference::ReferenceSketch;
//! use mqsim_sim::world::World;
//!
//! // A scenario whose devices say `app = "sketch"`.
//! let world = World::from_file("scenarios/my-device.toml")
//!     .unwrap()
//!     .app("sketch", |_device| ReferenceSketch::default());
//! // Seeds 1 to 49 on every core: Err (printed by unwrap) names each failing seed with
//! // what broke and its replay line.
//! world.check_seeds(1..50).unwrap();
//! // One run, for checks of your own.
//! let outcome = world.check(7).unwrap();
//! assert!(outcome.records.publishes.iter().all(|p| p.accepted));
//! ```
//!
//! A world can be built in code too ([`build::Builder`]: links, broker settings, devices given an
//! application, subscribers, faults, inputs), checked by the same parser as a file.
//!
//! # Replaying a failing seed
//! A failure's replay line is `MQSIM_SEED=N cargo test NAME`, where NAME is the test that ran it:
//! with `MQSIM_SEED` set, [`World::check_seeds`] runs that seed alone (and `--nocapture` shows
//! its trace's tail). A world made only of a scenario file and the reference sketch replays with
//! `cargo run --release -- sim FILE --seed N` instead.
//!
//! # Faults in code
//! [`World::fault`] adds a fault to the scenario's own (a partition, a WiFi drop, a broker
//! restart, ...), so that a property test can draw fault schedules
//! (`mqsim_sim::proptest::fault_schedule`, with the `proptest` feature) and shrink a failing one
//! to the fewest faults; a failure then lists the faults it ran with as `[[fault]]` tables to
//! paste into a scenario file.

pub mod build;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use mqsim::app::App;

use crate::run::{run, AppDevice, Engine, RunOptions, RunOutcome};
use crate::scenario::{FaultKind, FaultSpec, Scenario};
use crate::sweep::{sweep_with, Check};

/// Lines of the trace's tail a failure shows.
pub const FAILURE_TAIL_LINES: usize = 40;

/// A simulated world: a scenario and the applications its devices run. See the module
/// documentation.
#[derive(Clone, Debug)]
pub struct World {
    scenario: Scenario,
    opts: RunOptions,
    /// Faults added in code, for the failure text.
    added: Vec<FaultSpec>,
}

/// A run that broke an invariant or an expectation, or could not run.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The failing seed (the first one, for a sweep).
    pub seed: u64,
    /// What broke, the trace's tail, the faults added in code, and the replay line.
    pub text: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Failure {}

impl World {
    /// The world of a scenario file (see [`crate::scenario`] for the format).
    pub fn from_file(path: impl AsRef<Path>) -> Result<World, String> {
        Scenario::load(path)
            .map(World::new)
            .map_err(|e| e.to_string())
    }

    /// The world of a scenario given as TOML text; `name` stands for the file in messages.
    pub fn from_toml(name: &str, text: &str) -> Result<World, String> {
        Scenario::parse(text, name)
            .map(World::new)
            .map_err(|e| e.to_string())
    }

    /// The world of a scenario value. It runs on the engine `MQSIM_ENGINE` names (`direct`,
    /// the default, or `turmoil`), so a user's tests run on either engine unchanged.
    pub fn new(scenario: Scenario) -> World {
        let engine = std::env::var("MQSIM_ENGINE")
            .ok()
            .and_then(|e| Engine::by_name(&e))
            .unwrap_or_default();
        World {
            scenario,
            opts: RunOptions {
                engine,
                ..RunOptions::default()
            },
            added: Vec::new(),
        }
    }

    /// Runs on `engine` (see docs/simulator.md, "Engines").
    pub fn engine(mut self, engine: Engine) -> World {
        self.opts.engine = engine;
        self
    }

    /// Gives the devices whose `[[device]]` says `app = "NAME"` the application `make` returns,
    /// one per device (`make` sees its client id, group, index and a seed of its own).
    pub fn app<A, F>(mut self, name: &str, make: F) -> World
    where
        A: App + 'static,
        F: Fn(&AppDevice<'_>) -> A + Send + Sync + 'static,
    {
        self.opts
            .apps
            .insert(name, Arc::new(move |d| Box::new(make(d)) as Box<dyn App>));
        self
    }

    /// Adds a fault to the scenario's own. It must end by the scenario's `duration_s` and name a
    /// device or subscriber of it (or none: every client, or the broker).
    pub fn fault(mut self, fault: FaultSpec) -> World {
        self.added.push(fault.clone());
        self.scenario.faults.push(fault);
        self.scenario.faults.sort_by_key(|f| f.at_ms);
        self
    }

    /// Which `tracing` events of the applications land in the trace: an env-filter-style
    /// directive (`info`, `door_alarm=debug`); default `MQSIM_LOG`, else `info`.
    pub fn log(mut self, directive: &str) -> World {
        self.opts.log = Some(directive.to_string());
        self
    }

    /// The scenario as it runs (with the faults added in code).
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Runs seed `seed` once. `Err` only when the run could not be made (an application the
    /// scenario names and the world was not given, say); a run that broke something is an
    /// `Ok` whose [`RunOutcome::failed`] is true.
    pub fn run(&self, seed: u64) -> Result<RunOutcome, String> {
        run(&self.scenario, &self.options(Some(seed)))
    }

    /// Runs seed `seed` and requires it to pass: every invariant, every `[expect]` range.
    pub fn check(&self, seed: u64) -> Result<RunOutcome, Failure> {
        self.check_with(seed, &|_| Ok(()))
    }

    /// [`World::check`], and `check` of your own on the outcome (an application-level property
    /// over [`RunOutcome::records`] and its lines): its `Err` fails the run with the same text
    /// and replay line.
    pub fn check_with(&self, seed: u64, check: Check<'_>) -> Result<RunOutcome, Failure> {
        let seed = env_seed().unwrap_or(seed);
        match self.run(seed) {
            Ok(o) if o.failed() => Err(Failure {
                seed,
                text: self.failure_text(&o, None),
            }),
            Ok(o) => match check(&o) {
                Ok(()) => Ok(o),
                Err(why) => Err(Failure {
                    seed,
                    text: self.failure_text(&o, Some(&why)),
                }),
            },
            Err(e) => Err(Failure { seed, text: e }),
        }
    }

    /// Runs every seed of `seeds` on every core and requires each to pass; the `Err` lists every
    /// failing seed with what broke and its replay line, then the first one's trace tail. With
    /// `MQSIM_SEED` set, runs that seed alone.
    pub fn check_seeds(&self, seeds: Range<u64>) -> Result<(), Failure> {
        self.check_seeds_with(seeds, &|_| Ok(()))
    }

    /// [`World::check_seeds`] with a check of your own on every run (see [`World::check_with`]).
    pub fn check_seeds_with(&self, seeds: Range<u64>, check: Check<'_>) -> Result<(), Failure> {
        if let Some(seed) = env_seed() {
            return self.check_with(seed, check).map(|_| ());
        }
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        let s = sweep_with(
            &self.scenario,
            &self.options(None),
            (seeds.start, seeds.end),
            jobs,
            check,
        );
        let Some((first, _)) = s.failed.first() else {
            return Ok(());
        };
        let mut text = format!(
            "{} of {} seeds failed ({}):\n",
            s.failed.len(),
            s.runs,
            self.scenario.file
        );
        for (seed, why) in &s.failed {
            text.push_str(&format!("seed {seed}: {why}\n"));
        }
        if let Err(f) = self.check_with(*first, check) {
            text.push_str(&format!("\nthe first failing seed, {first}:\n{f}"));
        }
        Err(Failure { seed: *first, text })
    }

    /// The command that replays seed `seed` of this world.
    pub fn replay_line(&self, seed: u64) -> String {
        match &self.options(Some(seed)).replay {
            Some(r) => r.replace("{seed}", &seed.to_string()),
            None => format!(
                "cargo run --release -- sim {} --seed {seed}",
                self.scenario.file
            ),
        }
    }

    fn options(&self, seed: Option<u64>) -> RunOptions {
        let mut opts = RunOptions {
            seed,
            ..self.opts.clone()
        };
        // A test's world replays through its test; a scenario file alone through `mqsim sim`.
        let from_file_alone = self.opts.apps.names().next().is_none() && self.added.is_empty();
        if !from_file_alone {
            // Cargo names the package of the test it runs in the test's environment.
            let package = std::env::var("CARGO_PKG_NAME")
                .map(|p| format!(" -p {p}"))
                .unwrap_or_default();
            let engine = match Engine::for_scenario(self.opts.engine, &self.scenario) {
                Engine::Direct => "",
                Engine::Turmoil => "MQSIM_ENGINE=turmoil ",
            };
            opts.replay = Some(match test_name() {
                Some(t) => format!(
                    "{engine}MQSIM_SEED={{seed}} cargo test{package} {t} -- --exact --nocapture"
                ),
                None => format!("{engine}MQSIM_SEED={{seed}} cargo test{package}"),
            });
        }
        opts
    }

    fn failure_text(&self, o: &RunOutcome, check: Option<&str>) -> String {
        let mut text = match check {
            None => o.failure_text(FAILURE_TAIL_LINES),
            Some(why) => format!(
                "FAILED: {} with seed {}\n  check: {why}\nlast lines of the trace:\n{}replay: {}\n",
                o.scenario.file,
                o.scenario.seed,
                crate::run::trace_tail(o, FAILURE_TAIL_LINES),
                o.replay_line()
            ),
        };
        if !self.added.is_empty() {
            text.push_str("faults added in code (as scenario tables):\n");
            for f in &self.added {
                text.push_str(&fault_toml(f));
            }
        }
        text
    }
}

/// `MQSIM_SEED`, when set to a number.
fn env_seed() -> Option<u64> {
    std::env::var("MQSIM_SEED").ok()?.trim().parse().ok()
}

/// The running test's name: libtest names each test's thread after it.
fn test_name() -> Option<String> {
    let t = std::thread::current();
    let name = t.name()?;
    (name != "main").then(|| name.to_string())
}

/// A fault as the `[[fault]]` table that makes it.
pub fn fault_toml(f: &FaultSpec) -> String {
    let kind = match f.kind {
        FaultKind::Partition => "partition",
        FaultKind::HalfOpen(_) => "half-open",
        FaultKind::Reset => "reset",
        FaultKind::WifiDrop => "wifi-drop",
        FaultKind::BrokerPowerCut => "broker-power-cut",
        FaultKind::BrokerRestart => "broker-restart",
    };
    let mut t = format!(
        "[[fault]]\nat_s = {}\nkind = \"{kind}\"\n",
        seconds(f.at_ms)
    );
    // Every kind but a reset has a duration (a broker's down-time may be 0).
    if f.kind != FaultKind::Reset {
        t.push_str(&format!("duration_s = {}\n", seconds(f.duration_ms)));
    }
    if let FaultKind::HalfOpen(d) = f.kind {
        let d = match d {
            crate::scenario::Direction::Up => "up",
            crate::scenario::Direction::Down => "down",
        };
        t.push_str(&format!("direction = \"{d}\"\n"));
    }
    if let Some(target) = &f.target {
        t.push_str(&format!("target = \"{target}\"\n"));
    }
    t
}

fn seconds(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}
