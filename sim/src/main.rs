//! `mqsim`: the command line. `mqsim sim` (the deterministic simulator), `mqsim device` (the
//! virtual ESP32s over real TCP), `mqsim broker` (the real broker) and `mqsim bench` (the load
//! generator) all drive the same core.

mod bench;
mod broker_log;
mod config;
mod device_cli;
mod sim_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqsim::broker::Broker;
use mqsim::net::tokio::{spawn_broker, BrokerHandle};

use config::BrokerSettings;

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

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario in the deterministic simulator: virtual ESP32s, the broker and subscribers
    /// over a seeded lossy network; prints the serial, subscriber and broker lines, then the report.
    Sim(sim_cli::SimArgs),
    /// Run virtual ESP32s (the simulator's device code) over real TCP against any broker.
    Device(device_cli::DeviceArgs),
    /// Run the MQTT broker over real TCP (default 127.0.0.1:1883), like `mosquitto`.
    Broker {
        /// mosquitto-style config file (`listener 1883`, `allow_anonymous true`, ...).
        #[arg(short = 'c', long = "config-file")]
        config: Option<PathBuf>,
        /// Port to listen on (overrides the config file; 0 picks a free port).
        #[arg(short, long)]
        port: Option<u16>,
        /// Log every packet, as `mosquitto -v`.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Load generator: measure any MQTT 3.1.1 broker (ours, mosquitto, ...) with the same clients.
    Bench(bench::BenchArgs),
}

/// Prints one log line the way mosquitto does: `<unix seconds>: <text>`, where `log_dest` says.
/// The wall clock is read there, in the real-TCP front end only; the core and the simulator
/// never see it.
fn log_line(text: &str) {
    broker_log::line(text);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker {
            config,
            port,
            verbose,
        } => run_broker(config, port, verbose),
        Command::Bench(args) => bench::run(args),
        Command::Sim(args) => sim_cli::main(args),
        Command::Device(args) => device_cli::main(args),
    }
}

fn run_broker(config: Option<PathBuf>, port: Option<u16>, verbose: bool) -> ExitCode {
    let version = env!("CARGO_PKG_VERSION");
    // As mosquitto: the file is read first (its errors go to stderr), then logging starts.
    let mut loaded = None;
    let mut settings = match &config {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    log_line(&format!(
                        "Error: Unable to open config file {}: {e}.",
                        path.display()
                    ));
                    return ExitCode::from(1);
                }
            };
            match BrokerSettings::parse(&text) {
                Ok(s) => {
                    loaded = Some(format!("Config loaded from {}.", path.display()));
                    s
                }
                Err(e) => {
                    // mosquitto's two lines (conf.c:629) and its exit code, MOSQ_ERR_INVAL (3).
                    log_line(&format!("Error: {}.", e.message));
                    log_line(&format!("Error found at {}:{}.", path.display(), e.line));
                    return ExitCode::from(3);
                }
            }
        }
        None => BrokerSettings::default(),
    };
    // `-v` logs everything, whatever `log_type` says (conf.c:524); `log_type debug` logs the
    // packets as `-v` does.
    let types = if verbose {
        config::log_type::ALL
    } else {
        settings.log.types
    };
    broker_log::init(&settings.log, types);
    log_line(&format!("mqsim version {version} starting"));
    log_line(loaded.as_deref().unwrap_or("Using default config."));
    for notice in &settings.notices {
        log_line(notice);
    }
    for (line, key) in &settings.ignored {
        log_line(&format!(
            "Warning: unsupported option '{key}' on line {line} ignored."
        ));
    }
    if let Some(p) = port {
        settings.bind.set_port(p);
    }
    settings.broker.verbose = types & config::log_type::DEBUG != 0;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log_line(&format!("Error: cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for addr in settings.listen_addrs() {
            let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
            match listen(addr) {
                Ok(l) => {
                    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    log_line(&format!("Opening {family} listen socket on port {port}."));
                    listeners.push((l, port));
                }
                // An IPv6 twin on a host without IPv6 is not fatal; the address asked for is.
                Err(e) if addr != settings.bind => {
                    log_line(&format!("Warning: Unable to open {family} listen socket on {addr}: {e}."))
                }
                Err(e) => {
                    log_line(&format!("Error: Unable to listen on {addr}: {e}."));
                    return ExitCode::from(1);
                }
            }
        }
        if !settings.broker.allow_anonymous {
            log_line("Anonymous clients are refused (allow_anonymous false); no password_file support yet.");
        }
        let broker = match Broker::new(settings.broker.clone(), mqsim::Instant::ZERO) {
            Ok(b) => b,
            Err(e) => {
                log_line(&format!("Error: {e}."));
                return ExitCode::from(1);
            }
        };
        let (handle, task) = spawn_broker(broker, Box::new(broker_log::broker_line));
        let shutdown = match shutdown_signal() {
            Ok(f) => f,
            Err(e) => {
                log_line(&format!("Error: cannot install signal handlers: {e}"));
                return ExitCode::from(1);
            }
        };
        log_line(&format!("mqsim version {version} running"));
        tokio::select! {
            biased;
            _ = shutdown => {}
            _ = accept_all(listeners, handle.clone()) => {}
        }
        log_line(&format!("mqsim version {version} terminating"));
        handle.shutdown().await;
        let _ = task.await;
        ExitCode::SUCCESS
    })
}

/// A listening socket; an IPv6 one is IPv6-only, so that `::` and `0.0.0.0` can share a port.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

async fn accept_all(listeners: Vec<(tokio::net::TcpListener, u16)>, handle: BrokerHandle) {
    let mut loops = tokio::task::JoinSet::new();
    for (l, port) in listeners {
        loops.spawn(accept_loop(l, port, handle.clone()));
    }
    while loops.join_next().await.is_some() {}
}

async fn accept_loop(listener: tokio::net::TcpListener, port: u16, handle: BrokerHandle) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let peer = format!("{} on port {port}", addr);
                if handle.serve(stream, peer).await.is_none() {
                    // Refused (max_connections): the stream was dropped, which closes it.
                }
            }
            Err(e) => {
                log_line(&format!("Error accepting a connection: {e}"));
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, before the future is
/// awaited, so a signal that arrives right after "running" is logged is not lost (it would
/// otherwise kill the process the default way, without a clean shutdown).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                biased;
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
