//! `mqsim`: the command line. `mqsim sim` (the deterministic simulator), `mqsim device` (the
//! virtual ESP32s over real TCP), `mqsim broker` (the real broker) and `mqsim bench` (the load
//! generator) all drive the same core.

mod bench;
mod broker_log;
mod config;
mod device_cli;
mod persist;
mod security;
mod sim_cli;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mqsim::broker::Broker;
use mqsim::net::tokio::{spawn_broker, spawn_broker_with_journal, BrokerHandle};

use config::BrokerSettings;
use tls::TlsListener;

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
        /// Port to listen on (overrides the config file's first listener; 0 picks a free port).
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
                    // mosquitto's two lines (conf.c:629). mosquitto exits with MOSQ_ERR_INVAL (3);
                    // we exit 1, as for every other reason the broker cannot start.
                    log_line(&format!("Error: {}.", e.message));
                    log_line(&format!("Error found at {}:{}.", path.display(), e.line));
                    return ExitCode::from(1);
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
    if let (Some(p), Some(first)) = (port, settings.listeners.first_mut()) {
        first.bind.set_port(p);
    }
    let security = match security::SecurityFiles::open(
        settings.password_file.clone(),
        settings.acl_file.clone(),
    ) {
        Ok(s) => s,
        Err(e) => {
            log_line(&format!("Error: {e}."));
            return ExitCode::from(1);
        }
    };
    settings.broker.verbose = types & config::log_type::DEBUG != 0;
    settings.broker.log_notices =
        types & (config::log_type::NOTICE | config::log_type::INFORMATION) != 0;
    let packet_log = settings.broker.verbose;
    // TLS files are read before any socket opens; a bad one stops the broker at its line.
    let mut tls = Vec::new();
    for l in &settings.listeners {
        match l.tls.as_ref().map(TlsListener::load).transpose() {
            Ok(t) => tls.push(t.map(Arc::new)),
            Err(e) => {
                let file = config.as_deref().unwrap_or(std::path::Path::new("-"));
                log_line(&format!("Error in config file {}: {e}.", file.display()));
                return ExitCode::from(1);
            }
        }
    }
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
        for (listener, tls) in settings.listeners.iter().zip(tls) {
            for addr in listener.listen_addrs() {
                let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
                match listen(addr) {
                    Ok(l) => {
                        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                        log_line(&format!("Opening {family} listen socket on port {port}."));
                        listeners.push((l, port, tls.clone()));
                    }
                    // An IPv6 twin on a host without IPv6 is not fatal; the address asked for is.
                    Err(e) if addr != listener.bind => {
                        log_line(&format!("Warning: Unable to open {family} listen socket on {addr}: {e}."))
                    }
                    Err(e) => {
                        log_line(&format!("Error: Unable to listen on {addr}: {e}."));
                        return ExitCode::from(1);
                    }
                }
            }
        }
        let by_certificate = settings
            .listeners
            .iter()
            .any(|l| l.tls.as_ref().is_some_and(|t| t.use_identity_as_username));
        if !settings.broker.allow_anonymous && settings.password_file.is_none() {
            log_line(if by_certificate {
                "Every client not known by its certificate is refused: allow_anonymous false and no password_file."
            } else {
                "Every client is refused: allow_anonymous false and no password_file."
            });
        }
        let journal = settings.persistence_path();
        let broker = match &journal {
            None => Broker::new(settings.broker.clone(), mqsim::Instant::ZERO)
                .map_err(|e| format!("Error: {e}.")),
            Some(path) => load_journal(path, settings.broker.clone()),
        };
        let broker = match broker {
            Ok(mut b) => {
                b.set_security(mqsim::Instant::ZERO, security.current().clone());
                b
            }
            Err(line) => {
                log_line(&line);
                return ExitCode::from(1);
            }
        };
        let (handle, task) = match journal {
            None => {
                let (h, t) = spawn_broker(broker, Box::new(broker_log::broker_line));
                (h, tokio::spawn(async move { t.await.map(|b| (b, None)) }))
            }
            Some(path) => {
                let (h, t) = spawn_broker_with_journal(
                    broker,
                    Box::new(broker_log::broker_line),
                    persist::FileJournal::new(path),
                );
                (h, tokio::spawn(t))
            }
        };
        let shutdown = match shutdown_signal() {
            Ok(f) => f,
            Err(e) => {
                log_line(&format!("Error: cannot install signal handlers: {e}"));
                return ExitCode::from(1);
            }
        };
        let reload = match reload_on_sighup(handle.clone(), security) {
            Ok(f) => f,
            Err(e) => {
                log_line(&format!("Error: cannot install signal handlers: {e}"));
                return ExitCode::from(1);
            }
        };
        log_line(&format!("mqsim version {version} running"));
        let mut task = task;
        let stopped = tokio::select! {
            biased;
            _ = shutdown => None,
            _ = accept_all(listeners, handle.clone(), packet_log) => None,
            _ = reload => None,
            // The broker stops by itself only when its journal cannot be written.
            r = &mut task => Some(r),
        };
        log_line(&format!("mqsim version {version} terminating"));
        let result = match stopped {
            Some(r) => r,
            None => {
                handle.shutdown().await;
                task.await
            }
        };
        match result {
            Ok(Ok((_, None))) => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        }
    })
}

/// The broker the journal at `path` describes (a fresh one if there is none), with a log line
/// saying what was restored and what, if anything, was dropped; or the error line.
fn load_journal(path: &std::path::Path, config: mqsim::broker::Config) -> Result<Broker, String> {
    let shown = path.display();
    match persist::load(path, config) {
        Ok(persist::Loaded::Fresh(b)) => {
            log_line(&format!("Persistence: new journal at {shown}."));
            Ok(b)
        }
        Ok(persist::Loaded::Restored {
            broker,
            recovery,
            kept,
        }) => {
            log_line(&format!("Persistence: {recovery} from {shown}."));
            if let (Some(d), Some(k)) = (&recovery.damage, kept) {
                log_line(&format!(
                    "Warning: {shown} is damaged at byte {} ({}): the {} bytes from there are dropped; the file as found is kept as {}.",
                    d.offset,
                    d.reason,
                    d.dropped_bytes,
                    k.display()
                ));
            }
            Ok(broker)
        }
        Err(persist::LoadError::Read(e)) => Err(format!("Error: cannot read {shown}: {e}.")),
        Err(persist::LoadError::Unreadable(e)) => Err(format!(
            "Error: {shown}: {e}; refusing to start rather than overwrite it."
        )),
        Err(persist::LoadError::KeepDamaged(e)) => Err(format!(
            "Error: {shown} is damaged and could not be copied aside ({e}); refusing to start."
        )),
    }
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

/// A listening socket, its port, and its TLS set-up if it is a TLS listener.
type Bound = (tokio::net::TcpListener, u16, Option<Arc<TlsListener>>);

async fn accept_all(listeners: Vec<Bound>, handle: BrokerHandle, verbose: bool) {
    let mut loops = tokio::task::JoinSet::new();
    for (l, port, tls) in listeners {
        loops.spawn(accept_loop(l, port, tls, handle.clone(), verbose));
    }
    while loops.join_next().await.is_some() {}
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    port: u16,
    tls: Option<Arc<TlsListener>>,
    handle: BrokerHandle,
    verbose: bool,
) {
    loop {
        // A TLS listener waits here while its handshakes are at their bound.
        let slot = match &tls {
            Some(t) => t.slot().await,
            None => None,
        };
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let peer = format!("{} on port {port}", addr);
                match (&tls, slot) {
                    // The handshake runs in its own task: neither this loop nor the broker waits.
                    (Some(t), Some(slot)) => {
                        tokio::spawn(t.clone().serve(stream, peer, handle.clone(), verbose, slot));
                    }
                    (Some(_), None) => {} // the slots are gone: shutting down
                    (None, _) => {
                        // Refused (max_connections): the stream was dropped, which closes it.
                        let _ = handle.serve(stream, peer).await;
                    }
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

/// On every SIGHUP, reads `password_file` and `acl_file` again and hands the broker the new
/// tables; connections stay (the broker drops only clients whose password no longer passes). A
/// file that fails keeps its previous table, and the log says why. Installed before "running".
fn reload_on_sighup(
    handle: BrokerHandle,
    mut files: security::SecurityFiles,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        Ok(async move {
            while hup.recv().await.is_some() {
                let errors = files.reload();
                // Queued before anything that arrives after this line: a client connecting
                // once it is logged meets the new tables.
                handle.set_security(files.current().clone()).await;
                log_line("Reloading config.");
                for e in errors {
                    log_line(&format!("Error: {e}; keeping the previous one."));
                }
            }
            std::future::pending::<()>().await
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (handle, files);
        Ok(std::future::pending::<()>())
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
