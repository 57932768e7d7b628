//! The sweep side of `mqsim sim`: `--seeds A..B` with its progress bar and table, `--shard`,
//! `--out`, `--json`, `--swarm` and `--shrink` (the library half is `mqsim_sim::sweep`).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use mqsim_sim::run::{run, RunOptions};
use mqsim_sim::scenario::Scenario;
use mqsim_sim::sweep::outcome::SeedOutcome;
use mqsim_sim::sweep::shard::{ScenarioId, Shard, ShardFile, FORMAT};
use mqsim_sim::sweep::table::Table;
use mqsim_sim::sweep::{map_seeds, shrink, swarm};
use serde::Serialize;

use super::sim::{SimArgs, DEFAULT_SCENARIO, DEFAULT_SCENARIO_TEXT};

#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// With --seeds: run only shard I of N (seeds A+I, A+I+N, ...). Without it, the index is
    /// taken from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) when set.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse, requires = "seeds")]
    pub shard: Option<Shard>,
    /// The shard count N when the index comes from JOB_COMPLETION_INDEX (default:
    /// MQSIM_SHARD_COUNT).
    #[arg(long, value_name = "N", requires = "seeds", conflicts_with = "shard")]
    pub shard_count: Option<u64>,
    /// With --seeds: write each seed's outcome (JSON) for `mqsim sim merge`. With --shrink: where
    /// the minimal scenario goes (default: beside the scenario, NAME.shrunk-seedN.toml).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Swarm testing: each seed also draws which fault kinds are on (loss, partition, reset,
    /// half-open, broker-restart, each with p = 1/2) and how hard they hit; `--swarm --seed N`
    /// replays one.
    #[arg(long, conflicts_with_all = ["random", "bench"])]
    pub swarm: bool,
    /// Shrink the failing seed (`--seed N`, else the file's): cut faults, devices, subscribers
    /// and duration while the same invariant still fails, and write the minimal scenario.
    #[arg(long, conflicts_with_all = ["seeds", "random", "bench", "pcap", "trace", "explain"])]
    pub shrink: bool,
}

/// The scenario's identity in shard files: the path given and a hash of the text it was read
/// from.
fn identity(args: &SimArgs, scenario: &Scenario) -> ScenarioId {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SCENARIO));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| DEFAULT_SCENARIO_TEXT.to_string());
    ScenarioId::of(&scenario.file, &text)
}

/// The replay command of a swarm run (`{seed}` for the seed), with the options of `opts` that
/// change the run.
fn swarm_replay(scenario: &Scenario, opts: &RunOptions) -> String {
    let mut r = format!(
        "cargo run --release -- sim {} --swarm --seed {{seed}}",
        scenario.file
    );
    if let Some(d) = opts.duration_s {
        r.push_str(&format!(" --duration {d}"));
    }
    if let Some(p) = opts.broker_profile {
        r.push_str(&format!(" --broker-profile {}", p.name()));
    }
    r
}

/// One run with `--swarm`: the scenario with the seed's draw, the draw in words, and the options
/// whose replay line says `--swarm`.
pub fn swarm_one(
    scenario: &Scenario,
    opts: &RunOptions,
    seed: u64,
) -> (Scenario, String, RunOptions) {
    let base = match opts.duration_s {
        Some(d) => scenario.clone().with_duration_ms(d * 1000),
        None => scenario.clone(),
    };
    let (sc, words) = swarm::apply(&base, seed);
    let opts = RunOptions {
        seed: Some(seed),
        replay: Some(swarm_replay(scenario, opts)),
        ..opts.clone()
    };
    (sc, words, opts)
}

/// What `--json` prints.
#[derive(Serialize)]
struct SweepJson<'a> {
    scenario: &'a ScenarioId,
    seeds: [u64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<Shard>,
    swarm: bool,
    #[serde(flatten)]
    table: &'a Table,
}

/// Prints the table (or its JSON) of a sweep; exit 1 when a seed failed.
pub fn print_table(
    scenario: &ScenarioId,
    seeds: (u64, u64),
    shard: Option<Shard>,
    swarm: bool,
    table: &Table,
    json: bool,
) -> ExitCode {
    if json {
        let j = SweepJson {
            scenario,
            seeds: [seeds.0, seeds.1],
            shard,
            swarm,
            table,
        };
        match serde_json::to_string_pretty(&j) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mqsim sim: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        let mut head = format!("{}, seeds {}..{}", scenario.file, seeds.0, seeds.1);
        if let Some(s) = shard {
            head.push_str(&format!(", shard {s}"));
        }
        if swarm {
            head.push_str(", swarm");
        }
        print!("{}", table.render(&head));
    }
    if table.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn jobs(args: &SimArgs) -> usize {
    args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// `--seeds A..B`: every seed of the range (or of this shard) on `--jobs` threads.
pub fn sweep(
    args: &SimArgs,
    scenario: &Scenario,
    opts: &RunOptions,
    range: (u64, u64),
) -> ExitCode {
    let a = &args.sweep;
    let shard = match a.shard {
        Some(s) => Some(s),
        None => match Shard::from_env(a.shard_count, |k| std::env::var(k).ok()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mqsim sim: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let seeds = shard.unwrap_or(Shard::ALL).seeds(range);
    let jobs = jobs(args);
    let id = identity(args, scenario);

    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(seeds.len() as u64);
        let style = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} seeds, {msg}, {rate} seeds/s, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}", s.per_sec());
            },
        );
        bar.set_style(style);
        bar.set_message("0 failed");
        bar
    };
    let failed = AtomicU64::new(0);
    let started = std::time::Instant::now();
    let one = |seed: u64| -> SeedOutcome {
        let swarmed = a.swarm.then(|| swarm_one(scenario, opts, seed));
        let (sc, o, words) = match &swarmed {
            Some((sc, w, o)) => (sc, o.clone(), Some(w.clone())),
            None => (
                scenario,
                RunOptions {
                    seed: Some(seed),
                    ..opts.clone()
                },
                None,
            ),
        };
        match run(sc, &o) {
            Ok(out) => {
                let mut so = SeedOutcome::of(&out);
                if let Some(f) = &mut so.failure {
                    f.swarm = words;
                }
                so
            }
            Err(e) => {
                let replay = match &o.replay {
                    Some(r) => r.replace("{seed}", &seed.to_string()),
                    None => format!("cargo run --release -- sim {} --seed {seed}", sc.file),
                };
                SeedOutcome::error(seed, e, replay)
            }
        }
    };
    let outcomes = map_seeds(&seeds, jobs, &one, &|o: &SeedOutcome| {
        if o.failure.is_some() {
            let n = failed.fetch_add(1, Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} failed"));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    if let Some(path) = &a.out {
        let file = ShardFile {
            format: FORMAT.to_string(),
            scenario: id.clone(),
            seeds: [range.0, range.1],
            shard: shard.unwrap_or(Shard::ALL),
            swarm: a.swarm,
            duration_s: opts.duration_s,
            broker_profile: opts.broker_profile.map(|p| p.name().to_string()),
            outcomes: outcomes.clone(),
        };
        let written = serde_json::to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| std::fs::write(path, t + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("mqsim sim: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if !args.quiet {
        // Wall time is not deterministic: kept out of the table, on stderr.
        eprintln!(
            "{} seeds in {wall:.2} s on {jobs} threads ({:.0} seeds per minute)",
            outcomes.len(),
            outcomes.len() as f64 * 60.0 / wall.max(1e-9)
        );
    }
    let table = Table::of(&outcomes);
    if let Some(path) = &args.timeline {
        let head = format!("{}, seeds {}..{}", id.file, range.0, range.1);
        let svg = mqsim_sim::picture::sweep::sweep_svg(&head, &table);
        if let Err(e) = std::fs::write(path, svg) {
            eprintln!("mqsim sim: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    print_table(&id, range, shard, a.swarm, &table, args.json)
}

/// `--shrink`: the failing seed's scenario, cut down while it fails the same way, written out.
pub fn shrink(args: &SimArgs, scenario: &Scenario, opts: &RunOptions) -> ExitCode {
    let seed = args.seed.unwrap_or(scenario.seed);
    let (base, words) = if args.sweep.swarm {
        let (sc, words, _) = swarm_one(scenario, opts, seed);
        (sc, Some(words))
    } else {
        let sc = match opts.duration_s {
            Some(d) => scenario.clone().with_duration_ms(d * 1000),
            None => scenario.clone(),
        };
        (sc, None)
    };
    let mut base = base.with_seed(seed);
    if let Some(p) = opts.broker_profile {
        base.broker.profile = p;
    }
    // Seed, duration and broker profile are in the scenario now, as they will be in the file.
    let opts = RunOptions {
        seed: None,
        duration_s: None,
        broker_profile: None,
        ..opts.clone()
    };
    let shrunk = match shrink::shrink(&base, &opts, shrink::MAX_RUNS) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mqsim sim --shrink: {e}");
            return ExitCode::from(2);
        }
    };
    let out = args.sweep.out.clone().unwrap_or_else(|| {
        let from = Path::new(&scenario.file);
        let stem = from
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
        let dir = from
            .parent()
            .filter(|d| d.is_dir())
            .unwrap_or(Path::new(""));
        dir.join(format!("{stem}.shrunk-seed{seed}.toml"))
    });
    let out_name = out.display().to_string();
    let text = shrink::file_text(&shrunk, &scenario.file, &out_name, words.as_deref());
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("mqsim sim: cannot write {out_name}: {e}");
        return ExitCode::from(1);
    }
    let s = &shrunk.scenario;
    println!(
        "{} seed {seed}: `{}` still fails after {} cuts ({} runs)",
        scenario.file,
        shrunk.name,
        shrunk.steps.len(),
        shrunk.runs
    );
    if let Some(w) = &words {
        println!("  swarm: {w}");
    }
    for step in &shrunk.steps {
        println!("  - {step}");
    }
    println!(
        "  left: {} s, {} device groups ({} devices), {} subscribers, {} faults",
        s.duration_ms as f64 / 1000.0,
        s.devices.len(),
        s.devices.iter().map(|d| u64::from(d.count)).sum::<u64>(),
        s.subscribers.len(),
        s.faults.len()
    );
    println!("  {}", shrunk.detail);
    println!("  wrote {out_name}");
    println!("  replay: cargo run --release -- sim {out_name} --seed {seed}");
    ExitCode::SUCCESS
}
