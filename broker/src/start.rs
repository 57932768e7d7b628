//! The broker's start-up: one path for every place the broker runs.
//!
//! [`serve`] is the whole life of a broker process after its configuration is read: the
//! `starting` line, the configuration's notices, the password and ACL files, the TLS keys, the
//! listening sockets, the persistence journal (restored, or a fresh one), the broker task, the
//! `running` line, then accepting connections until it is asked to stop. `mqsim broker` runs it
//! on a [`RealHost`] (TCP sockets in an epoll set of its own, files, signals: [`run`]); the simulator runs it on its
//! simulated broker host (turmoil's sockets under the link model, a modelled disk, no signals).
//! The simulated broker is therefore the real one from its first log line; only the [`Host`]
//! differs, and nothing past it knows which one it runs on.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinSet;

use mqsim::broker::{Broker, Config, ListenerId, ListenerSecurity, Recovery, RestoreError};
use mqsim::Instant;

use crate::adapter::{spawn_broker, spawn_broker_with_journal, BrokerHandle, JournalStore};
use crate::config::{log_type, BrokerSettings, Listener};
use crate::security::SecurityFiles;
use crate::tls::TlsListener;

/// Where a log line goes: `<unix seconds>: <text>` on the real host, the simulator's trace with
/// simulated time on the simulated one. Multi-line texts are one line per line.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A listening socket of a [`Host`], its port, and its TLS set-up if it is a TLS listener.
pub type Bound<L> = (L, u16, Option<Arc<TlsListener>>);

/// What the operator asks of a running broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Stop cleanly (SIGINT, SIGTERM): the journal's last records are synced first.
    Stop,
    /// Read `password_file` and `acl_file` again (SIGHUP).
    Reload,
}

/// Everything the broker needs from the machine it runs on: sockets, the journal's storage,
/// the operator's requests. Implemented by [`RealHost`] and by the simulator's broker host.
pub trait Host {
    /// A listening socket.
    type Listener;
    /// Where journal writes go.
    type Journal: JournalStore;

    /// Opens a listening socket at `addr` and returns it with its port.
    fn listen(
        &mut self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<(Self::Listener, u16)>>;
    /// Starts accepting connections on every listener, each handed to the broker through
    /// `handle` (after the TLS handshake on a TLS listener); the loops stop when the set is
    /// dropped.
    fn accept(
        &mut self,
        listeners: Vec<Bound<Self::Listener>>,
        handle: BrokerHandle,
        verbose: bool,
        log: Log,
    ) -> JoinSet<()>;
    /// The journal file's bytes, `None` when there is none.
    fn read_journal(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Keeps a copy of a damaged journal beside it (the broker's first write replaces it) and
    /// returns where.
    fn keep_damaged(&mut self, path: &Path, bytes: &[u8]) -> io::Result<PathBuf>;
    /// The store the broker's journal writes go to.
    fn journal(&mut self, path: PathBuf) -> Self::Journal;
    /// Installs whatever delivers the operator's requests (signal handlers), before `running`
    /// is logged so that none is lost.
    fn install_requests(&mut self) -> io::Result<()>;
    /// The operator's next request; never resolves on a host without an operator.
    fn next_request(&mut self) -> impl Future<Output = Request>;
}

/// Where the configuration came from, for the second line of the log.
#[derive(Clone, Debug)]
pub enum Source {
    /// No configuration file: mosquitto's defaults.
    Default,
    /// Read from this file.
    File(PathBuf),
}

/// Why a broker stopped other than on request, or could not start; already logged.
#[derive(Debug)]
pub struct Failed;

/// The broker's life after its configuration is read, on `host`: see the module doc. Returns
/// when it was asked to stop and has stopped cleanly; [`Failed`] (already logged) when it could
/// not start or stopped by itself (its journal could not be written).
pub async fn serve<H: Host>(
    host: &mut H,
    mut settings: BrokerSettings,
    source: Source,
    log: Log,
    packet_log: LogSink,
) -> Result<(), Failed> {
    let say = |text: &str| log(text);
    for line in starting_lines(&settings, &source) {
        say(&line);
    }
    let mut security =
        match SecurityFiles::open(settings.password_file.clone(), settings.acl_file.clone()) {
            Ok(s) => s,
            Err(e) => {
                say(&format!("Error: {e}."));
                return Err(Failed);
            }
        };
    // `per_listener_settings true`: each listener's own files, loaded the same way.
    let mut per_listener = Vec::new();
    if settings.per_listener_settings {
        for (i, l) in settings.listeners.iter().enumerate() {
            match ListenerFiles::open(i, l) {
                Ok(f) => per_listener.push(f),
                Err(e) => {
                    say(&format!("Error: {e}."));
                    return Err(Failed);
                }
            }
        }
    }
    // TLS files are read before any socket opens; a bad one stops the broker at its line.
    let mut tls = Vec::new();
    for l in &settings.listeners {
        match l.tls.as_ref().map(TlsListener::load).transpose() {
            Ok(t) => tls.push(t.map(Arc::new)),
            Err(e) => {
                let file = match &source {
                    Source::File(p) => p.display().to_string(),
                    Source::Default => String::from("-"),
                };
                say(&format!("Error in config file {file}: {e}."));
                return Err(Failed);
            }
        }
    }
    let mut listeners: Vec<(Bound<H::Listener>, ListenerId)> = Vec::new();
    for (i, (listener, tls)) in settings.listeners.iter().zip(tls).enumerate() {
        for addr in listener.listen_addrs() {
            let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
            match host.listen(addr).await {
                Ok((l, port)) => {
                    say(&listening_line(addr, port));
                    listeners.push(((l, port, tls.clone()), listener_id(i)));
                }
                // An IPv6 twin on a host without IPv6 is not fatal; the address asked for is.
                Err(e) if addr != listener.bind => say(&format!(
                    "Warning: Unable to open {family} listen socket on {addr}: {e}."
                )),
                Err(e) => {
                    say(&format!("Error: Unable to listen on {addr}: {e}."));
                    return Err(Failed);
                }
            }
        }
    }
    let by_certificate = settings
        .listeners
        .iter()
        .any(|l| l.tls.as_ref().is_some_and(|t| t.use_identity_as_username));
    for (f, l) in per_listener.iter().zip(&settings.listeners) {
        let tls = l.tls.as_ref();
        if !f.allow_anonymous && l.auth.password_file.is_none() {
            let port = l.bind.port();
            say(&if tls.is_some_and(|t| t.use_identity_as_username) {
                format!("Every client on port {port} not known by its certificate is refused: allow_anonymous false and no password_file.")
            } else {
                format!("Every client on port {port} is refused: allow_anonymous false and no password_file.")
            });
        }
    }
    if per_listener.is_empty() {
        if let Some(line) = refused_line(&settings, by_certificate) {
            say(line);
        }
    }
    let journal = settings.persistence_path();
    let verbose = settings.broker.verbose;
    let config = std::mem::take(&mut settings.broker);
    let broker = match &journal {
        None => Broker::new(config, Instant::ZERO).map_err(|e| format!("Error: {e}.")),
        Some(path) => load_journal(host, path, config, &say),
    };
    let broker = match broker {
        Ok(mut b) => {
            b.set_security(Instant::ZERO, security.current().clone());
            for f in &per_listener {
                b.set_listener_security(Instant::ZERO, f.id, f.settings());
            }
            b
        }
        Err(line) => {
            say(&line);
            return Err(Failed);
        }
    };
    let (handle, mut task) = match journal {
        None => {
            let (h, t) = spawn_broker(broker, packet_log);
            (h, tokio::spawn(async move { t.await.map(|b| (b, None)) }))
        }
        Some(path) => {
            let (h, t) = spawn_broker_with_journal(broker, packet_log, host.journal(path));
            (h, tokio::spawn(t))
        }
    };
    if let Err(e) = host.install_requests() {
        say(&format!("Error: cannot install signal handlers: {e}"));
        return Err(Failed);
    }
    say(&running_line());
    // One accept set per listener, each handing its streams over as that listener's.
    let mut accepting = Vec::new();
    let mut ids: Vec<ListenerId> = listeners.iter().map(|(_, id)| *id).collect();
    ids.dedup();
    for id in ids {
        let (mine, rest): (Vec<_>, Vec<_>) = listeners.into_iter().partition(|(_, l)| *l == id);
        listeners = rest;
        let bound = mine.into_iter().map(|(b, _)| b).collect();
        accepting.push(host.accept(bound, handle.on_listener(id), verbose, log.clone()));
    }
    let stopped = loop {
        // The broker stops by itself only when its journal cannot be written.
        let request = tokio::select! {
            biased;
            r = host.next_request() => r,
            r = &mut task => break Some(r),
        };
        match request {
            Request::Stop => break None,
            Request::Reload => {
                let errors = security.reload();
                // Queued before anything that arrives after this line: a client connecting
                // once it is logged meets the new tables.
                handle.set_security(security.current().clone()).await;
                let mut errors = errors;
                for f in &mut per_listener {
                    errors.extend(f.files.reload());
                    handle.set_listener_security(f.id, f.settings()).await;
                }
                say("Reloading config.");
                for e in errors {
                    say(&format!("Error: {e}; keeping the previous one."));
                }
            }
        }
    };
    drop(accepting);
    say(&terminating_line());
    let result = match stopped {
        Some(r) => r,
        None => {
            handle.shutdown().await;
            task.await
        }
    };
    match result {
        Ok(Ok((_, None))) => Ok(()),
        _ => Err(Failed),
    }
}

/// The first lines [`serve`] logs: the version starting, where the configuration came from,
/// its notices and the options it ignored. Also the simulator's direct engine's, which runs
/// the broker without this start-up path but must read the same.
pub fn starting_lines(settings: &BrokerSettings, source: &Source) -> Vec<String> {
    let version = env!("CARGO_PKG_VERSION");
    let mut lines = vec![
        format!("mqsim version {version} starting"),
        match source {
            Source::Default => String::from("Using default config."),
            Source::File(p) => format!("Config loaded from {}.", p.display()),
        },
    ];
    lines.extend(settings.notices.iter().cloned());
    for (line, key) in &settings.ignored {
        lines.push(format!(
            "Warning: unsupported option '{key}' on line {line} ignored."
        ));
    }
    lines
}

/// The line [`serve`] logs once a listening socket at `addr` is open on `port`.
pub fn listening_line(addr: SocketAddr, port: u16) -> String {
    let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
    format!("Opening {family} listen socket on port {port}.")
}

/// The warning [`serve`] logs when every client is refused (no anonymous clients and no
/// password file), without per-listener settings; `by_certificate`: a TLS listener takes
/// identities from certificates.
pub fn refused_line(settings: &BrokerSettings, by_certificate: bool) -> Option<&'static str> {
    if settings.broker.allow_anonymous || settings.password_file.is_some() {
        return None;
    }
    Some(if by_certificate {
        "Every client not known by its certificate is refused: allow_anonymous false and no password_file."
    } else {
        "Every client is refused: allow_anonymous false and no password_file."
    })
}

/// The line [`serve`] logs once the broker runs.
pub fn running_line() -> String {
    format!("mqsim version {} running", env!("CARGO_PKG_VERSION"))
}

/// The line [`serve`] logs when a clean stop begins (mosquitto's "mosquitto version X
/// terminating", src/mosquitto.c:577); also the simulator's direct engine's at a clean restart.
pub fn terminating_line() -> String {
    format!("mqsim version {} terminating", env!("CARGO_PKG_VERSION"))
}

/// One listener's own security files and settings (`per_listener_settings true`).
struct ListenerFiles {
    id: ListenerId,
    files: SecurityFiles,
    allow_anonymous: bool,
    max_connections: usize,
}

/// The broker's number for the `i`th listener of the configuration.
fn listener_id(i: usize) -> ListenerId {
    ListenerId::try_from(i).unwrap_or(ListenerId::MAX)
}

impl ListenerFiles {
    fn open(i: usize, l: &Listener) -> Result<Self, String> {
        let files = SecurityFiles::open(l.auth.password_file.clone(), l.auth.acl_file.clone())?;
        Ok(ListenerFiles {
            id: listener_id(i),
            files,
            allow_anonymous: l.auth.allow_anonymous.unwrap_or(false),
            max_connections: l.auth.max_connections.unwrap_or(usize::MAX),
        })
    }

    fn settings(&self) -> ListenerSecurity {
        ListenerSecurity {
            allow_anonymous: self.allow_anonymous,
            max_connections: self.max_connections,
            security: self.files.current().clone(),
        }
    }
}

/// The adapter's log sink (the broker task's lines).
pub use crate::adapter::LogSink;

/// The broker the journal at `path` describes (a fresh one if there is none), with a log line
/// saying what was restored and what, if anything, was dropped; or the error line. A journal cut
/// short or damaged gives the state up to the damage and is first kept aside, since the broker's
/// first write replaces it; a file that is not a journal at all stops the start.
pub fn load_journal<H: Host>(
    host: &mut H,
    path: &Path,
    config: Config,
    say: &impl Fn(&str),
) -> Result<Broker, String> {
    let shown = path.display();
    let bytes = match host.read_journal(path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            let b = Broker::new(config, Instant::ZERO).map_err(|e| format!("Error: {e}."))?;
            say(&format!("Persistence: new journal at {shown}."));
            return Ok(b);
        }
        Err(e) => return Err(format!("Error: cannot read {shown}: {e}.")),
    };
    let unreadable = |e: RestoreError| {
        format!("Error: {shown}: {e}; refusing to start rather than overwrite it.")
    };
    let (broker, recovery): (Broker, Recovery) =
        Broker::restore(config, Instant::ZERO, &bytes).map_err(unreadable)?;
    let kept = match &recovery.damage {
        None => None,
        Some(_) => Some(host.keep_damaged(path, &bytes).map_err(|e| {
            format!(
                "Error: {shown} is damaged and could not be copied aside ({e}); refusing to start."
            )
        })?),
    };
    say(&format!("Persistence: {recovery} from {shown}."));
    if let (Some(d), Some(k)) = (&recovery.damage, kept) {
        say(&format!(
            "Warning: {shown} is damaged at byte {} ({}): the {} bytes from there are dropped; the file as found is kept as {}.",
            d.offset,
            d.reason,
            d.dropped_bytes,
            k.display()
        ));
    }
    Ok(broker)
}

/// `mqsim broker`'s options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// mosquitto-style config file.
    pub config: Option<PathBuf>,
    /// Overrides the port of the config file's first listener (0 picks a free port).
    pub port: Option<u16>,
    /// Log every packet, as `mosquitto -v`.
    pub verbose: bool,
}

/// Stack of the runtime's blocking thread (the journal's writes and syncs, nothing deep).
const BLOCKING_THREAD_STACK_BYTES: usize = 256 * 1024;

/// `mqsim broker`: reads the configuration, starts logging where it says, and [`serve`]s on a
/// [`RealHost`] until SIGINT or SIGTERM. Exit code 1 for every failure to start (mosquitto
/// exits 3 for a bad config file).
pub fn run(opts: Options) -> ExitCode {
    let line = crate::log::line;
    // As mosquitto: the file is read first (its errors go to stderr), then logging starts.
    let (mut settings, source) = match &opts.config {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    line(&format!(
                        "Error: Unable to open config file {}: {e}.",
                        path.display()
                    ));
                    return ExitCode::from(1);
                }
            };
            match BrokerSettings::parse(&text) {
                Ok(s) => (s, Source::File(path.clone())),
                Err(e) => {
                    // mosquitto's two lines (conf.c:629).
                    line(&format!("Error: {}.", e.message));
                    line(&format!("Error found at {}:{}.", path.display(), e.line));
                    return ExitCode::from(1);
                }
            }
        }
        None => (BrokerSettings::default(), Source::Default),
    };
    // `-v` logs everything, whatever `log_type` says (conf.c:524); `log_type debug` logs the
    // packets as `-v` does.
    let types = if opts.verbose {
        log_type::ALL
    } else {
        settings.log.types
    };
    crate::log::init(&settings.log, types);
    if let (Some(p), Some(first)) = (opts.port, settings.listeners.first_mut()) {
        first.bind.set_port(p);
    }
    settings.broker.verbose = types & log_type::DEBUG != 0;
    settings.broker.log_notices = types & (log_type::NOTICE | log_type::INFORMATION) != 0;
    // One thread runs everything: the broker is one task, and the connections' I/O on a second
    // core bought no throughput (docs/performance.md). So one allocator arena, no worker stacks;
    // the journal's syncs run on one blocking thread with a small stack.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .thread_stack_size(BLOCKING_THREAD_STACK_BYTES)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            line(&format!("Error: cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let log: Log = Arc::new(crate::log::line);
    let done = runtime.block_on(async move {
        serve(
            &mut RealHost::default(),
            settings,
            source,
            log,
            Box::new(crate::log::broker_line),
        )
        .await
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::from(1),
    }
}

/// The machine the process runs on: tokio's TCP, the journal as a file, Unix signals.
#[derive(Default)]
pub struct RealHost {
    #[cfg(unix)]
    signals: Option<Signals>,
    /// The epoll set accepted sockets are polled through (see [`crate::reactor`]).
    #[cfg(unix)]
    reactor: Option<Arc<crate::reactor::Reactor>>,
}

#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl std::fmt::Debug for RealHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RealHost")
    }
}

impl Host for RealHost {
    type Listener = tokio::net::TcpListener;
    type Journal = crate::journal::FileJournal;

    async fn listen(&mut self, addr: SocketAddr) -> io::Result<(Self::Listener, u16)> {
        let l = listen(addr)?;
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        Ok((l, port))
    }

    fn accept(
        &mut self,
        listeners: Vec<Bound<Self::Listener>>,
        handle: BrokerHandle,
        verbose: bool,
        log: Log,
    ) -> JoinSet<()> {
        #[cfg(unix)]
        if self.reactor.is_none() {
            match crate::reactor::Reactor::start() {
                Ok(r) => self.reactor = Some(r),
                // tokio's own registration per socket then: more memory, same behaviour.
                Err(e) => log(&format!("Warning: cannot create an epoll set: {e}")),
            }
        }
        let mut loops = JoinSet::new();
        for (l, port, tls) in listeners {
            loops.spawn(accept_loop(
                l,
                port,
                tls,
                Accepted {
                    handle: handle.clone(),
                    #[cfg(unix)]
                    reactor: self.reactor.clone(),
                },
                verbose,
                log.clone(),
            ));
        }
        loops
    }

    fn read_journal(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn keep_damaged(&mut self, path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
        let mut k = path.as_os_str().to_owned();
        k.push(".damaged");
        let k = PathBuf::from(k);
        std::fs::write(&k, bytes)?;
        Ok(k)
    }

    fn journal(&mut self, path: PathBuf) -> Self::Journal {
        crate::journal::FileJournal::new(path)
    }

    /// Ctrl-C, SIGTERM and SIGHUP. The handlers are installed here, before `running` is logged,
    /// so a signal that arrives right after is not lost (it would otherwise kill the process the
    /// default way, without a clean shutdown).
    fn install_requests(&mut self) -> io::Result<()> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            self.signals = Some(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            });
        }
        Ok(())
    }

    async fn next_request(&mut self) -> Request {
        #[cfg(unix)]
        {
            let Some(s) = self.signals.as_mut() else {
                return std::future::pending().await;
            };
            tokio::select! {
                biased;
                _ = s.int.recv() => Request::Stop,
                _ = s.term.recv() => Request::Stop,
                _ = s.hup.recv() => Request::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Request::Stop
        }
    }
}

/// A listening socket; an IPv6 one is IPv6-only, so that `::` and `0.0.0.0` can share a port.
fn listen(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
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

/// Where an accept loop hands its streams: the broker, through the reactor when there is one.
struct Accepted {
    handle: BrokerHandle,
    #[cfg(unix)]
    reactor: Option<Arc<crate::reactor::Reactor>>,
}

impl Accepted {
    /// Plain TCP to the broker: moved out of tokio's driver into the reactor's set.
    async fn serve(&self, stream: tokio::net::TcpStream, peer: String) {
        #[cfg(unix)]
        if let Some(r) = &self.reactor {
            // On failure the socket is closed and nothing reached the broker; refused
            // (max_connections), the stream was dropped, which closes it.
            if let Ok(s) = stream
                .into_std()
                .and_then(|s| crate::reactor::PolledTcp::new(s, r))
            {
                let _ = self.handle.serve(s, peer).await;
            }
            return;
        }
        let _ = self.handle.serve(stream, peer).await;
    }

    /// TLS: the handshake in a task of its own, then the stream to the broker.
    fn serve_tls(
        &self,
        t: &Arc<TlsListener>,
        stream: tokio::net::TcpStream,
        peer: String,
        verbose: bool,
        slot: tokio::sync::OwnedSemaphorePermit,
        log: &Log,
    ) {
        let handle = self.handle.clone();
        #[cfg(unix)]
        if let Some(r) = &self.reactor {
            if let Ok(s) = stream
                .into_std()
                .and_then(|s| crate::reactor::PolledTcp::new(s, r))
            {
                tokio::spawn(t.clone().serve(s, peer, handle, verbose, slot, log.clone()));
            }
            return;
        }
        tokio::spawn(
            t.clone()
                .serve(stream, peer, handle, verbose, slot, log.clone()),
        );
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    port: u16,
    tls: Option<Arc<TlsListener>>,
    to: Accepted,
    verbose: bool,
    log: Log,
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
                let peer = format!("{addr} on port {port}");
                match (&tls, slot) {
                    // The handshake runs in its own task: neither this loop nor the broker waits.
                    (Some(t), Some(slot)) => to.serve_tls(t, stream, peer, verbose, slot, &log),
                    (Some(_), None) => {} // the slots are gone: shutting down
                    (None, _) => to.serve(stream, peer).await,
                }
            }
            Err(e) => {
                log(&format!("Error accepting a connection: {e}"));
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
