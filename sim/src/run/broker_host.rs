//! The simulated broker host: the real broker started through the real start-up path
//! ([`mqsim_broker::serve`]), on a [`Host`] whose sockets are turmoil's under the link model,
//! whose disk is the modelled one, and whose operator never sends a signal.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::JoinSet;

use mqsim_broker::config::{BrokerSettings, Listener};
use mqsim_broker::start::{Bound, Log, Request, Source as ConfigSource};
use mqsim_broker::{BrokerHandle, Host};

use super::timeline::BrokerPower;
use super::{Lines, Source, BROKER_HOST, EPOCH_UNIX_MS};
use crate::disk::{Disk, DiskJournal};
use crate::net::stream::{sim_now, Net};

/// The broker host's machine: the network (each accepted connection goes through its link
/// model), with persistence its disk, which outlives the host's incarnations, and its operator's
/// one request, a clean stop.
pub struct SimHost {
    net: Net,
    disk: Option<Disk>,
    stop: StopSignal,
}

/// A clean stop of the broker host (SIGTERM, a `broker-restart` fault) asked by the timeline and
/// carried out by the broker's own start-up path: [`SimHost::next_request`] hands it
/// [`Request::Stop`], [`mqsim_broker::serve`] stops accepting, the adapter saves what the broker
/// holds in memory and syncs its journal (`Broker::save_now`, as mosquitto's
/// `persist__backup(true)` after its main loop, src/mosquitto.c:588) and closes every
/// connection; then the host reports itself stopped and the timeline takes it down.
#[derive(Clone, Debug, Default)]
pub(crate) struct StopSignal {
    requested: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl StopSignal {
    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
    fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
    /// A new incarnation: no stop asked of it yet.
    fn reset(&self) {
        self.requested.store(false, Ordering::SeqCst);
        self.stopped.store(false, Ordering::SeqCst);
    }
}

/// The broker host under turmoil as the timeline's faults see it: turmoil's crash and bounce,
/// and a clean stop through [`StopSignal`].
pub(crate) struct TurmoilBroker<'s, 'a> {
    pub(crate) sim: &'s mut turmoil::Sim<'a>,
    pub(crate) stop: &'s StopSignal,
}

impl BrokerPower for TurmoilBroker<'_, '_> {
    fn crash(&mut self) {
        self.sim.crash(BROKER_HOST);
    }
    fn bounce(&mut self) {
        self.stop.reset();
        self.sim.bounce(BROKER_HOST);
    }
    fn stop(&mut self) -> bool {
        if !self.sim.is_host_running(BROKER_HOST) {
            return true;
        }
        self.stop.request();
        false
    }
    fn stopped(&mut self) -> bool {
        self.stop.is_stopped() || !self.sim.is_host_running(BROKER_HOST)
    }
}

/// The broker's settings in the simulator: mosquitto's defaults with the scenario's limits, one
/// listener on every IPv4 interface of the host at `port` (the devices are other hosts).
pub(crate) fn settings(broker: mqsim::broker::Config, port: u16) -> BrokerSettings {
    BrokerSettings {
        listeners: vec![Listener::new(
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
            false,
            0,
        )],
        broker,
        ..BrokerSettings::default()
    }
}

/// The seconds since the Unix epoch that mosquitto's log lines begin with.
fn unix_seconds(at: mqsim::Instant) -> u64 {
    (EPOCH_UNIX_MS + at.as_millis()) / 1_000
}

/// Adds the broker host to `sim`: every start (the first and each restart after a crash) runs
/// the broker's start-up path on a [`SimHost`]. The broker's lines go to `lines`, each stamped
/// with simulated time, as mosquitto prints them.
pub(super) fn add(
    sim: &mut turmoil::Sim<'_>,
    config: mqsim::broker::Config,
    port: u16,
    net: Net,
    lines: Lines,
    disk: Option<Disk>,
    stop: StopSignal,
) {
    sim.host(BROKER_HOST, move || {
        let host = SimHost {
            net: net.clone(),
            disk: disk.clone(),
            stop: stop.clone(),
        };
        run(
            host,
            settings(config.clone(), port),
            broker_log(lines.clone()),
        )
    });
}

/// The broker's log: its lines to `lines`, each stamped with simulated time, one line per
/// line, as mosquitto prints them.
pub(crate) fn broker_log(lines: Lines) -> Log {
    std::sync::Arc::new(move |l: &str| {
        let now = sim_now();
        for part in l.split('\n') {
            lines.push(
                now,
                Source::Broker,
                format!("{}: {part}", unix_seconds(now)),
            );
        }
    })
}

/// Runs the broker on `host` until the host is crashed or bounced by a fault. After a clean
/// stop ([`StopSignal`]) the host stays up, its sockets closed, until the timeline takes it down.
async fn run(
    mut host: SimHost,
    settings: BrokerSettings,
    log: Log,
) -> Result<(), Box<dyn std::error::Error>> {
    let sink = log.clone();
    let stop = host.stop.clone();
    let served = mqsim_broker::serve(
        &mut host,
        settings,
        ConfigSource::Default,
        log,
        Box::new(move |l: &str| sink(l)),
    )
    .await;
    if !stop.is_requested() {
        return served.map_err(|_| "the broker stopped (see its log)".into());
    }
    stop.stopped.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
    Ok(())
}

impl Host for SimHost {
    type Listener = turmoil::net::TcpListener;
    type Journal = DiskJournal;

    async fn listen(&mut self, addr: SocketAddr) -> io::Result<(Self::Listener, u16)> {
        let l = turmoil::net::TcpListener::bind(addr).await?;
        Ok((l, addr.port()))
    }

    fn accept(
        &mut self,
        listeners: Vec<Bound<Self::Listener>>,
        handle: BrokerHandle,
        _verbose: bool,
        _log: Log,
    ) -> JoinSet<()> {
        let mut loops = JoinSet::new();
        for (listener, port, _tls) in listeners {
            let (net, handle) = (self.net.clone(), handle.clone());
            loops.spawn_local(async move {
                while let Ok((tcp, peer)) = listener.accept().await {
                    let (net, handle) = (net.clone(), handle.clone());
                    tokio::task::spawn_local(async move {
                        if let Ok(stream) = net.wrap_server(tcp).await {
                            handle.serve(stream, format!("{peer} on port {port}")).await;
                        }
                    });
                }
            });
        }
        loops
    }

    fn read_journal(&mut self, _path: &Path) -> io::Result<Option<Vec<u8>>> {
        read_disk(self.disk.as_ref())
    }

    fn keep_damaged(&mut self, path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
        keep_damaged_on(self.disk.as_ref(), path, bytes)
    }

    fn journal(&mut self, _path: PathBuf) -> Self::Journal {
        match &self.disk {
            Some(d) => d.store(),
            // Persistence is on only with a disk (run/mod.rs): a broker without one never asks.
            None => Disk::new(0, 0).store(),
        }
    }

    fn install_requests(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn next_request(&mut self) -> Request {
        loop {
            if self.stop.is_requested() {
                return Request::Stop;
            }
            self.stop.wake.notified().await;
        }
    }
}

/// The broker host's journal as its modelled disk holds it (both engines' hosts): `None` when
/// empty or when the broker has no disk.
pub(crate) fn read_disk(disk: Option<&Disk>) -> io::Result<Option<Vec<u8>>> {
    let bytes = disk.map(Disk::contents).unwrap_or_default();
    Ok((!bytes.is_empty()).then_some(bytes))
}

/// Keeps a damaged journal beside it on the modelled disk, as the real host renames it to
/// `FILE.damaged`; returns that name for the broker's log line.
pub(crate) fn keep_damaged_on(
    disk: Option<&Disk>,
    path: &Path,
    bytes: &[u8],
) -> io::Result<PathBuf> {
    if let Some(d) = disk {
        d.keep_damaged(bytes);
    }
    let mut k = path.as_os_str().to_owned();
    k.push(".damaged");
    Ok(PathBuf::from(k))
}
