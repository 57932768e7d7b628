//! `--idle-connections N`: clients that connect (CONNECT, CONNACK) and then say nothing for the
//! whole run, to measure what a mostly idle fleet costs the broker in memory and whether it slows
//! the busy clients down.
//!
//! They are opened before the subscribers, by `--idle-concurrency` workers that each open one
//! connection at a time (so at most that many handshakes are under way at once), with client ids
//! `bench-idle-{i}`, clean session and `--idle-keep-alive` (0, the default, asks the broker never to
//! time them out). A connection that fails is counted, not retried, and the run goes on. After the
//! run each one is looked at without blocking: end of stream or an error means the broker closed it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;

use super::client;

/// The idle connections of a run.
#[derive(Debug, Default)]
pub struct IdleSet {
    streams: Vec<TcpStream>,
    /// Connections that could not be opened.
    pub failed: u32,
    /// The first of their errors.
    pub first_error: Option<String>,
}

impl IdleSet {
    /// Opens `n` idle connections to `addr`, at most `concurrency` handshakes at a time.
    pub async fn open(addr: SocketAddr, n: u32, keep_alive_s: u16, concurrency: u32) -> IdleSet {
        let next = Arc::new(AtomicU32::new(0));
        let workers: Vec<_> = (0..concurrency.clamp(1, n.max(1)))
            .map(|_| {
                let next = next.clone();
                tokio::spawn(async move {
                    let mut set = IdleSet::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return set;
                        }
                        let id = format!("bench-idle-{i}");
                        match client::connect_idle(addr, &id, keep_alive_s).await {
                            Ok(s) => set.streams.push(s),
                            Err(e) => set.fail(e),
                        }
                    }
                })
            })
            .collect();
        let mut all = IdleSet::default();
        for w in workers {
            match w.await {
                Ok(set) => all.merge(set),
                Err(e) => all.fail(io::Error::other(e)),
            }
        }
        all
    }

    fn fail(&mut self, e: io::Error) {
        self.failed += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }

    fn merge(&mut self, other: IdleSet) {
        self.streams.extend(other.streams);
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Connections that got their CONNACK.
    pub fn accepted(&self) -> u32 {
        u32::try_from(self.streams.len()).unwrap_or(u32::MAX)
    }

    /// How many of the accepted connections the broker has closed (end of stream or an error on a
    /// non-blocking read). A connection that received bytes is still open: it counts as open.
    pub fn closed_by_broker(&self) -> u32 {
        let mut buf = [0u8; 64];
        let closed = self
            .streams
            .iter()
            .filter(|s| match s.try_read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            })
            .count();
        u32::try_from(closed).unwrap_or(u32::MAX)
    }
}

/// What became of the `--idle-connections`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleOutcome {
    pub requested: u32,
    /// Got their CONNACK.
    pub accepted: u32,
    /// Of those, closed by the broker by the end of the run.
    pub closed: u32,
    /// The broker's `VmRSS` once they were open, before the other clients connected.
    pub broker_rss_kb: Option<u64>,
}
