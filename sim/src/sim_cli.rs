//! `mqsim sim [FILE] [--seed N] [--duration S] [--pcap F] [--trace F] [--show net] [--quiet]`:
//! one deterministic run of a scenario, printed as one stream in simulated time, then the
//! report. Exit 1, with the seed, what broke and a replay line, when an invariant or an
//! expectation fails; exit 2 when the scenario file is refused.

use std::path::PathBuf;
use std::process::ExitCode;

use mqsim_sim::run::{run, trace_tail, RunOptions};
use mqsim_sim::scenario::Scenario;

/// The scenario `mqsim sim` runs without a file: the reference ESP32 at QoS 0 over lossy WiFi.
pub const DEFAULT_SCENARIO: &str = "scenarios/esp32-qos0-lossy-wifi.toml";
/// Its text, built in, so the command works from any directory.
const DEFAULT_SCENARIO_TEXT: &str = include_str!("../../scenarios/esp32-qos0-lossy-wifi.toml");
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
}

pub fn main(args: SimArgs) -> ExitCode {
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
        show_net,
        capture: args.pcap.is_some(),
    };
    let out = match run(&scenario, &opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mqsim sim: {e}");
            return ExitCode::from(1);
        }
    };
    if !args.quiet {
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
    print!("{}", out.report.render());
    print!("{}", out.report.render_speed());
    if let Some(path) = &args.trace {
        if let Err(e) = std::fs::write(path, out.trace()) {
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
        eprintln!("FAILED: {} with seed {}", out.scenario.file, out.scenario.seed);
        for v in &out.violations {
            eprintln!(
                "  invariant {} broken at {}.{:03} s: {}",
                v.invariant,
                v.at / 1_000_000,
                (v.at / 1_000) % 1_000,
                v.detail
            );
        }
        for u in &out.unmet {
            eprintln!("  expectation not met: {u}");
        }
        eprintln!("last lines of the trace:");
        eprint!("{}", trace_tail(&out, FAILURE_TAIL_LINES));
        eprintln!("replay: {}", out.replay_line());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
