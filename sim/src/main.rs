//! `mqsim`: the command line. `mqsim sim` (the deterministic simulator), `mqsim device` (the
//! virtual ESP32s over real TCP), `mqsim broker` (the real broker) and `mqsim bench` (the load
//! generator) all drive the same core.
//!
//! This file only parses the command line and dispatches: the simulator's front end is in
//! [`cli`], the broker is `mqsim_broker::run`, the load generator `mqsim_bench::run`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "mqsim",
    version,
    about = "Deterministic MQTT simulator (virtual ESP32s, a lossy TCP-like network, a QoS ledger) and the MQTT 3.1.1 broker it runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Built once per process, from the command line: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario in the deterministic simulator: virtual ESP32s, the broker and subscribers
    /// over a seeded lossy network; prints the serial, subscriber and broker lines, then the report.
    #[command(args_conflicts_with_subcommands = true)]
    Sim(cli::sim::SimArgs),
    /// Run virtual ESP32s (the simulator's device code) over real TCP against any broker.
    Device(cli::device::DeviceArgs),
    /// Run the MQTT broker over real TCP (default 127.0.0.1:1883), like `mosquitto`.
    Broker {
        /// mosquitto-style config file (`listener 1883`, `allow_anonymous true`, ...).
        #[arg(short = 'c', long = "config-file")]
        config: Option<PathBuf>,
        /// Port to listen on (overrides the config file's first listener; 0 picks a free port).
        #[arg(short, long)]
        port: Option<u16>,
        /// Log every packet, as `mosquitto -v`.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Load generator: measure any MQTT 3.1.1 broker (ours, mosquitto, ...) with the same clients.
    Bench(mqsim_bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker {
            config,
            port,
            verbose,
        } => mqsim_broker::run(mqsim_broker::Options {
            config,
            port,
            verbose,
        }),
        Command::Bench(args) => mqsim_bench::run(args),
        Command::Sim(args) => cli::sim::main(args),
        Command::Device(args) => cli::device::main(args),
    }
}
