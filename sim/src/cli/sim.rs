//! `mqsim sim [FILE] [--seed N] [--duration S] [--broker-profile NAME] [--pcap F] [--trace F] [--timeline F] [--show net] [--quiet]`:
//! one deterministic run of a scenario, printed as one stream in simulated time, then the
//! report. Exit 1, with the seed, what broke and a replay line, when an invariant or an
//! expectation fails; exit 2 when the scenario file is refused. Sweeps (`--seeds`, `--shard`,
//! `--swarm`, `--shrink`) are in `cli/sweep.rs`, `mqsim sim merge` in `cli/merge.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use mqsim_sim::run::{run, Engine, RunOptions};
use mqsim_sim::scenario::Scenario;
use mqsim_sim::sweep::sweep;

use super::merge::SimCommand;
use super::sweep::SweepArgs;

/// The scenario `mqsim sim` runs without a file: the reference ESP32 at QoS 0 over lossy WiFi.
pub const DEFAULT_SCENARIO: &str = "scenarios/esp32-qos0-lossy-wifi.toml";
/// Its text, built in, so the command works from any directory.
pub const DEFAULT_SCENARIO_TEXT: &str =
    include_str!("../../../scenarios/esp32-qos0-lossy-wifi.toml");
/// Lines of trace shown with a failure.
const FAILURE_TAIL_LINES: usize = 30;

#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Scenario file (default: the reference ESP32 at QoS 0 over lossy WiFi).
    pub file: Option<PathBuf>,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated seconds before the heal phase (default: the scenario's `duration_s`).
    #[arg(long, value_name = "S")]
    pub duration: Option<u64>,
    /// Write the link model's packets as a pcap (Ethernet/IPv4/TCP, for Wireshark/tshark).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Write the whole deterministic trace (every line, net decisions included, and the report).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Also show `net`: the link's decisions (segment lost, retransmitted, reset).
    #[arg(long, value_name = "WHAT", value_parser = ["net"])]
    pub show: Vec<String>,
    /// Only the report (and failures).
    #[arg(long)]
    pub quiet: bool,
    /// The report as JSON on stdout instead of the text (no trace lines; failures still go to
    /// stderr): `mqsim_sim::report::json::ReportJson`. With --seeds, the sweep's table as JSON.
    #[arg(long)]
    pub json: bool,
    /// Which `tracing` events of the devices' applications to show: an env-filter-style
    /// directive (`info`, `door_alarm=debug`); default `MQSIM_LOG`, else `info`.
    #[arg(long, value_name = "DIRECTIVE")]
    pub log: Option<String>,
    /// Sweep: run every seed of `A..B` (end excluded) on all cores, with a progress bar; print
    /// the distributions of the outcomes and each failing seed with its replay line.
    #[arg(long, value_name = "A..B", value_parser = parse_range, conflicts_with_all = ["seed", "pcap", "trace"])]
    pub seeds: Option<(u64, u64)>,
    /// Random scenarios: run generated scenarios `A..B` (each index is one valid file, the same
    /// on every machine), seeds 1..=5 each; every failure is written as a scenario file with its
    /// seed to `--keep` and listed. A benchmark-like sweep, longer than `cargo test`'s fixed set.
    #[arg(long, value_name = "A..B", value_parser = parse_range, conflicts_with_all = ["file", "seed", "seeds", "pcap", "trace", "bench"])]
    pub random: Option<(u64, u64)>,
    /// Where `--random` writes failing scenarios (default `random-failures/`).
    #[arg(long, value_name = "DIR", requires = "random")]
    pub keep: Option<PathBuf>,
    /// Threads for a sweep (default: every core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Measure the simulator: simulated seconds per wall second for one device over a simulated
    /// hour at 5 % loss, and the default scenario's seeds per minute on every core.
    #[arg(long, conflicts_with_all = ["seed", "seeds", "pcap", "trace"])]
    pub bench: bool,
    /// Tell one message's life after the report: its publish call, the link's losses and
    /// retransmissions of the segments carrying it, the broker's receipt and acknowledgement,
    /// each forwarding and receipt, or where and why it ended. DEVICE is the client id
    /// (`node-0`), SEQ its publish-call number.
    #[arg(long, value_name = "DEVICE:SEQ", value_parser = mqsim_sim::run::explain::parse_target, conflicts_with_all = ["seeds", "random", "bench"])]
    pub explain: Option<(String, u64)>,
    /// Run the broker as NAME reproduces it, over the scenario's `[broker] profile`: `mqsim`
    /// (this broker) or `mosquitto-2.0` (docs/simulator.md, "Broker profiles").
    #[arg(long, value_name = "NAME", value_parser = parse_profile)]
    pub broker_profile: Option<mqsim::broker::Profile>,
    /// Draw the run: a lane per device and subscriber in simulated time (connection state,
    /// each reading coloured by what became of it, faults, reconnects) as SVG, or as one
    /// self-contained HTML page with the report when FILE ends in `.html`. With --seeds: the
    /// sweep's distributions as SVG (a row per figure: min-max, p50-p99, p50).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["random", "bench"])]
    pub timeline: Option<PathBuf>,
    /// The engine: `direct` (the sans-IO state machines on an event queue, the default) or
    /// `turmoil` (the real tokio adapters on simulated hosts, tick by tick; also what runs a
    /// scenario with an Arduino sketch). See docs/simulator.md, "Engines".
    #[arg(long, value_name = "ENGINE", default_value = "direct", value_parser = parse_engine)]
    pub engine: Engine,
    #[command(flatten)]
    pub sweep: SweepArgs,
    #[command(subcommand)]
    pub command: Option<SimCommand>,
}

fn parse_profile(s: &str) -> Result<mqsim::broker::Profile, String> {
    mqsim::broker::Profile::from_name(s).ok_or_else(|| {
        let names: Vec<_> = mqsim::broker::Profile::ALL.map(|p| p.name()).into();
        format!(
            "unknown broker profile {s:?} (one of: {})",
            names.join(", ")
        )
    })
}

fn parse_engine(s: &str) -> Result<Engine, String> {
    Engine::by_name(s).ok_or_else(|| format!("unknown engine `{s}`: turmoil or direct"))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a.parse().map_err(|_| format!("bad start {a:?}"))?;
    let b: u64 = b.parse().map_err(|_| format!("bad end {b:?}"))?;
    if b <= a {
        return Err(format!("empty range {s}"));
    }
    Ok((a, b))
}

fn jobs(args: &SimArgs) -> usize {
    args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Seeds each random scenario runs with.
const RANDOM_SEEDS: u64 = 5;

/// `--random A..B`: generated scenarios, failures kept as files.
fn random(args: &SimArgs, range: (u64, u64)) -> ExitCode {
    let jobs = jobs(args);
    let started = std::time::Instant::now();
    let opts = RunOptions::default();
    let (runs, failures) = mqsim_sim::random::sweep(range, RANDOM_SEEDS, jobs, &opts);
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| PathBuf::from("random-failures"));
    let mut scenarios = std::collections::BTreeSet::new();
    for f in &failures {
        scenarios.insert(f.index);
        let path = dir.join(format!("random-{}-seed{}.toml", f.index, f.seed));
        let kept = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, &f.text));
        match kept {
            Ok(()) => println!(
                "random-{} seed {}: {}\n  kept: {}",
                f.index,
                f.seed,
                f.why,
                path.display()
            ),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        }
    }
    println!(
        "random scenarios {}..{}: {} runs ({RANDOM_SEEDS} seeds each), {} failed in {} scenarios, {:.2} s wall on {jobs} threads",
        range.0,
        range.1,
        runs,
        failures.len(),
        scenarios.len(),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--bench`: the two figures the README quotes.
fn bench(args: &SimArgs) -> ExitCode {
    let Ok(one) = Scenario::parse(BENCH_ONE_DEVICE_HOUR, "bench: one device, 1 h, 5 % loss") else {
        return ExitCode::from(2);
    };
    for tick in [1u64, 10] {
        let mut sc = one.clone();
        sc.tick_ms = tick;
        let opts = RunOptions {
            engine: args.engine,
            ..RunOptions::default()
        };
        match run(&sc, &opts) {
            Ok(out) => println!(
                "engine {:?}: one esp-mqtt device, QoS 1, 5 % loss, {} simulated s, tick {tick} ms: wall {:.2} s, {:.0} simulated s per wall s ({} violations)",
                args.engine,
                out.simulated_ms / 1000,
                out.wall.as_secs_f64(),
                out.simulated_ms as f64 / 1000.0 / out.wall.as_secs_f64(),
                out.violations.len()
            ),
            Err(e) => {
                eprintln!("mqsim sim --bench: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let Ok(default) = Scenario::parse(DEFAULT_SCENARIO_TEXT, DEFAULT_SCENARIO) else {
        return ExitCode::from(2);
    };
    let jobs = jobs(args);
    let seeds = 200;
    let opts = RunOptions {
        engine: args.engine,
        ..RunOptions::default()
    };
    let seeds = if args.engine == Engine::Direct {
        5_000
    } else {
        seeds
    };
    let s = sweep(&default, &opts, (1, 1 + seeds), jobs);
    println!(
        "engine {:?}: {DEFAULT_SCENARIO} (tick {} ms, {} simulated s a run): {} seeds on {jobs} threads in {:.2} s = {:.0} seeds per minute, {:.0} simulated s per wall s ({} failed)",
        args.engine,
        default.tick_ms,
        s.simulated_ms / 1000 / s.runs.max(1),
        s.runs,
        s.wall.as_secs_f64(),
        s.runs as f64 * 60.0 / s.wall.as_secs_f64(),
        s.simulated_ms as f64 / 1000.0 / s.wall.as_secs_f64(),
        s.failed.len()
    );
    ExitCode::SUCCESS
}

/// The benchmark's long run: one esp-mqtt device at QoS 1, 5 % independent loss, one hour.
const BENCH_ONE_DEVICE_HOUR: &str = r#"
description = "bench: one device, one simulated hour, 5 % loss"
duration_s = 3600
heal_s = 30
[link.wifi]
latency_ms = 15
jitter_ms = 5
loss = 0.05
[[device]]
name = "esp32"
profile = "esp-mqtt"
qos = 1
link = "wifi"
[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 1
"#;

/// The process's peak resident memory (`VmHWM` of /proc/self/status, Linux), in KiB.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak memory, and per simulated client: what a fleet costs. Not deterministic, so it goes on
/// the wall-time line, the one line of the output a replay does not reproduce.
fn peak_memory(sc: &Scenario) -> Option<String> {
    let kib = peak_memory_kib()?;
    let devices: u64 = sc.devices.iter().map(|d| u64::from(d.count)).sum();
    let mib = kib as f64 / 1024.0;
    // Per device only where a fleet makes it mean something (the process's own floor is ~7 MiB).
    Some(if devices >= 10 {
        format!(
            "peak memory {mib:.1} MiB (VmHWM), {:.1} KiB per device ({devices} devices)",
            kib as f64 / devices as f64
        )
    } else {
        format!("peak memory {mib:.1} MiB (VmHWM)")
    })
}

/// A closed stdout (`mqsim sim | head`) ends the process as it ends any Unix tool, by SIGPIPE,
/// rather than by a panic in `println!` (Rust starts with SIGPIPE ignored). Only `mqsim sim`
/// does this: the broker keeps ignoring it (its sockets write with MSG_NOSIGNAL anyway).
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: sets one signal's disposition to its default; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn main(args: SimArgs) -> ExitCode {
    quiet_on_closed_pipe();
    if let Some(SimCommand::Merge(m)) = &args.command {
        return super::merge::main(m);
    }
    if args.bench {
        return bench(&args);
    }
    if let Some(range) = args.random {
        return random(&args, range);
    }
    let scenario = match &args.file {
        Some(path) => Scenario::load(path),
        None => match std::fs::read_to_string(DEFAULT_SCENARIO) {
            Ok(text) => Scenario::parse(&text, DEFAULT_SCENARIO),
            Err(_) => Scenario::parse(DEFAULT_SCENARIO_TEXT, DEFAULT_SCENARIO),
        },
    };
    let scenario = match scenario {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let show_net = args.show.iter().any(|s| s == "net");
    let opts = RunOptions {
        seed: args.seed,
        duration_s: args.duration,
        capture: args.pcap.is_some(),
        log: args.log.clone(),
        explain: args.explain.clone(),
        broker_profile: args.broker_profile,
        engine: args.engine,
        ..RunOptions::default()
    };
    if let Some(range) = args.seeds {
        return super::sweep::sweep(&args, &scenario, &opts, range);
    }
    if args.sweep.shrink {
        return super::sweep::shrink(&args, &scenario, &opts);
    }
    // `--swarm --seed N`: the seed's drawn faults, replayed.
    let (scenario, opts, swarm) = if args.sweep.swarm {
        let seed = args.seed.unwrap_or(scenario.seed);
        let (sc, words, o) = super::sweep::swarm_one(&scenario, &opts, seed);
        (sc, o, Some(words))
    } else {
        (scenario, opts, None)
    };
    if let (Some(w), false) = (&swarm, args.quiet) {
        println!("# swarm: {w}");
    }
    let out = match run(&scenario, &opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mqsim sim: {e}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        println!("{}", out.report.render_json());
    }
    if !args.quiet && !args.json {
        println!(
            "# {} — {} (seed {}, tick {} ms)",
            out.scenario.file, out.scenario.description, out.scenario.seed, out.scenario.tick_ms
        );
        println!("# simulated s  source         | the device's serial monitor, the subscribers' mosquitto_sub -v lines, the broker's -v log");
        for l in out.visible_lines(show_net) {
            println!("{}", l.render());
        }
        println!();
    }
    if !args.json {
        print!("{}", out.report.render());
        let speed = out.report.render_speed();
        match peak_memory(&out.scenario) {
            Some(mem) => println!("{}  {mem}", speed.trim_end()),
            None => print!("{speed}"),
        }
    }
    match &out.explanation {
        Some(Ok(text)) => print!("\n{text}"),
        Some(Err(e)) => eprintln!("mqsim sim: {e}"),
        None => {}
    }
    if let Some(path) = &args.trace {
        if let Err(e) = std::fs::write(path, out.trace()) {
            eprintln!("mqsim sim: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if let Some(path) = &args.timeline {
        let html = path.extension().is_some_and(|e| e == "html" || e == "htm");
        let text = if html {
            mqsim_sim::picture::html(&out)
        } else {
            mqsim_sim::picture::svg(&out)
        };
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("mqsim sim: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if let (Some(path), Some(bytes)) = (&args.pcap, &out.pcap) {
        if let Err(e) = std::fs::write(path, bytes) {
            eprintln!("mqsim sim: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if out.failed() {
        eprintln!();
        eprint!("{}", out.failure_text(FAILURE_TAIL_LINES));
        if let Some(w) = &swarm {
            eprintln!("swarm: {w}");
        }
        // The first violated message's life: the same run again (same seed, same bytes), this
        // time keeping what its explanation needs.
        let first = out.violations.iter().find_map(|v| v.msg);
        if let (Some(id), None) = (first, &opts.explain) {
            let device = out.device_name(id.device.0);
            if let Some(device) = device {
                let again = RunOptions {
                    explain: Some((device, id.seq)),
                    ..opts.clone()
                };
                if let Ok(Some(Ok(text))) = run(&scenario, &again).map(|o| o.explanation) {
                    eprint!("{text}");
                }
            }
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
