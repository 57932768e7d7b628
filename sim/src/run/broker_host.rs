//! The broker host (192.168.100.103): the real broker through the real tokio adapter, as
//! `mqsim broker` runs it, with its start-up lines and, with persistence, its journal restored
//! from the host's disk at every (re)start.
//!
//! Its interface is deliberately narrow (the broker's config, the network, the output lines, the
//! disk): it is the one place that starts a broker, and the broker crate's own start-up path is
//! meant to take its place.

use mqsim::broker::{self, Broker};
use mqsim::net::tokio::{spawn_broker, spawn_broker_with_journal, LogSink};
use mqsim::time::Instant;

use super::{Lines, Source, BROKER_HOST, BROKER_PORT, EPOCH_UNIX_MS};
use crate::disk::Disk;
use crate::net::stream::{sim_now, Net};

/// The seconds since the Unix epoch that mosquitto's log lines begin with.
fn unix_seconds(at: Instant) -> u64 {
    (EPOCH_UNIX_MS + at.as_millis()) / 1_000
}

/// Adds the broker host to `sim`: every start (the first and each restart after a crash) binds
/// port 1883, restores the journal from `disk` if there is one and it is not empty, and serves
/// each accepted connection through its modelled link. The broker's lines go to `lines`, each
/// with its simulated time, as mosquitto prints them.
pub(super) fn add(
    sim: &mut turmoil::Sim<'_>,
    config: broker::Config,
    net: Net,
    lines: Lines,
    disk: Option<Disk>,
) {
    sim.host(BROKER_HOST, move || {
        let (net, lines, bcfg, disk) = (net.clone(), lines.clone(), config.clone(), disk.clone());
        async move {
            let version = env!("CARGO_PKG_VERSION");
            let say = |text: String| {
                let now = sim_now();
                lines.push(
                    now,
                    Source::Broker,
                    format!("{}: {text}", unix_seconds(now)),
                );
            };
            say(format!("mqsim version {version} starting"));
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", BROKER_PORT)).await?;
            say(format!("Opening ipv4 listen socket on port {BROKER_PORT}."));
            let journal = disk.as_ref().map(|d| d.contents());
            let broker = match &journal {
                Some(bytes) if !bytes.is_empty() => {
                    let (b, recovery) = Broker::restore(bcfg, Instant::ZERO, bytes)
                        .map_err(|e| format!("persistence: {e}"))?;
                    say(format!("Persistence: {recovery}."));
                    b
                }
                _ => Broker::new(bcfg, Instant::ZERO)?,
            };
            let sink = lines.clone();
            let log: LogSink = Box::new(move |l: &str| {
                // One line per line, each with its timestamp, as mosquitto prints them.
                let now = sim_now();
                for part in l.split('\n') {
                    sink.push(
                        now,
                        Source::Broker,
                        format!("{}: {part}", unix_seconds(now)),
                    );
                }
            });
            let handle = match &disk {
                None => spawn_broker(broker, log).0,
                Some(d) => spawn_broker_with_journal(broker, log, d.store()).0,
            };
            say(format!("mqsim version {version} running"));
            loop {
                let (tcp, peer) = listener.accept().await?;
                let (net, handle) = (net.clone(), handle.clone());
                tokio::task::spawn_local(async move {
                    if let Ok(stream) = net.wrap_server(tcp).await {
                        handle
                            .serve(stream, format!("{peer} on port {BROKER_PORT}"))
                            .await;
                    }
                });
            }
        }
    });
}
