//! A deterministic in-memory driver in virtual time: one [`Broker`] and any number of
//! [`Client`]s wired together without sockets (after quinn-proto's `tests/util.rs` `Pair`).
//!
//! [`MemNet::step`] moves bytes both ways and drains every output (with [`super::drain_all`]) until
//! nothing moves; [`MemNet::run_until`] jumps virtual time to the earliest timeout, fires it, and
//! steps again. It keeps the contract as a socket driver must: bytes the broker hands out are
//! reported back with `handle_sent` once delivered, a connection the broker pauses
//! ([`broker::Event::PauseRead`]) is not read until it resumes (its client's bytes wait), and a
//! closed connection is reported to the other side.
//!
//! Links can lose bytes in either direction (all of them, a partition; or whole packets of one
//! type, a lost acknowledgement), and deliver them in chunks of a fixed size; every byte moved is
//! recorded, dropped or not, for determinism checks. Nothing here reads a clock or draws a random
//! number: the same calls give the same trace.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;
use core::fmt;

use super::{drain_all, Drained};
use crate::broker::{self, Broker, ConnId};
use crate::client::{Client, ClientConfig, ClientError, Event};
use crate::codec;
use crate::time::{Duration, Instant};

/// Rounds of [`MemNet::step`] before it gives up: a livelock, not a long transfer (each round
/// moves everything that is ready).
pub const STEP_ROUNDS_MAX: usize = 100_000;
/// Timeouts [`MemNet::run_until`] fires before it gives up.
pub const TIMEOUTS_MAX: usize = 10_000_000;

/// What a link loses in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Nothing: every byte arrives.
    Nothing,
    /// Every byte, and the closing of the connection (a partition).
    All,
    /// Whole packets of this MQTT packet type (5 = PUBREC, 7 = PUBCOMP, ...).
    PacketType(u8),
}

/// A direction on a client's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
}

/// Bytes one side sent, and what of them got through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When it was sent (the network's clock; delivery is instant).
    pub at: Instant,
    /// Index of the client in [`MemNet::nodes`] whose link carried it.
    pub node: usize,
    /// Which way it went.
    pub dir: Dir,
    /// The bytes as sent.
    pub bytes: Vec<u8>,
    /// What of them arrived after the link's [`Loss`]: all, none, or with packets cut out.
    pub delivered: Vec<u8>,
}

/// One client and its link to the broker.
#[derive(Debug)]
pub struct Node {
    /// The client state machine.
    pub client: Client,
    /// The broker's id for this client's live transport.
    pub conn: Option<ConnId>,
    /// Everything the client reported, with the time.
    pub events: Vec<(Instant, Event)>,
    /// What the link loses from the client to the broker.
    pub up: Loss,
    /// What the link loses from the broker to the client.
    pub down: Loss,
    /// Bytes per `handle_bytes` call on either side; 0 = as they came.
    pub chunk: usize,
    /// Reconnect this long after the transport goes (the ESP32 sketch's policy).
    pub reconnect_after: Option<Duration>,
    /// When the pending reconnect (after `reconnect_after`) happens, if one is pending.
    pub reconnect_at: Option<Instant>,
    /// The broker paused reading this connection: the client's bytes wait here.
    paused: bool,
    held: VecDeque<u8>,
}

/// [`MemNet::step`] or [`MemNet::run_until`] did not settle within its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stalled {
    /// Bytes kept moving for [`STEP_ROUNDS_MAX`] rounds.
    Step,
    /// More than [`TIMEOUTS_MAX`] timeouts fired.
    Timeouts,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stalled::Step => write!(f, "bytes still moving after {STEP_ROUNDS_MAX} rounds"),
            Stalled::Timeouts => write!(f, "more than {TIMEOUTS_MAX} timeouts fired"),
        }
    }
}

/// The broker and its clients in memory. See the module documentation.
#[derive(Debug)]
pub struct MemNet {
    /// The network's clock: the time of the last input fed to the broker and the clients.
    pub now: Instant,
    /// The broker every client connects to.
    pub broker: Broker,
    /// The clients, in the order [`MemNet::add_client`] added them (their index is their id).
    pub nodes: Vec<Node>,
    /// Every transfer, when `record_trace` is on (the default).
    pub trace: Vec<Record>,
    /// Record every transfer in `trace`; off for long runs that would hold every byte.
    pub record_trace: bool,
    /// Connections the broker closed (its `Event::Close`), with the time.
    pub broker_closed: Vec<(Instant, ConnId)>,
    /// The broker's log lines, with the time.
    pub broker_log: Vec<(Instant, alloc::string::String)>,
    buf: Vec<u8>,
}

impl MemNet {
    /// Fails when the broker's configuration does.
    pub fn new(config: broker::Config, now: Instant) -> Result<MemNet, broker::ConfigError> {
        Ok(MemNet {
            now,
            broker: Broker::new(config, now)?,
            nodes: Vec::new(),
            trace: Vec::new(),
            record_trace: true,
            broker_closed: Vec::new(),
            broker_log: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// A client, not connected yet; returns its index.
    pub fn add_client(&mut self, config: ClientConfig) -> Result<usize, ClientError> {
        self.nodes.push(Node {
            client: Client::new(config, self.now)?,
            conn: None,
            events: Vec::new(),
            up: Loss::Nothing,
            down: Loss::Nothing,
            chunk: 0,
            reconnect_after: None,
            reconnect_at: None,
            paused: false,
            held: VecDeque::new(),
        });
        Ok(self.nodes.len() - 1)
    }

    /// Opens a transport for node `i` (the broker accepts it, the client sends CONNECT) and steps.
    /// `false` when the broker refused the socket (`max_connections`).
    pub fn connect(&mut self, i: usize) -> Result<bool, Stalled> {
        let Some(conn) = self.broker.handle_accept(self.now, &format!("node{i}")) else {
            return Ok(false);
        };
        let n = &mut self.nodes[i];
        n.conn = Some(conn);
        n.reconnect_at = None;
        n.paused = false;
        n.held.clear();
        n.client.handle_connected(self.now);
        self.step()?;
        Ok(true)
    }

    /// Node `i`'s transport fails and both ends notice (bytes still in flight are gone).
    pub fn cut(&mut self, i: usize) -> Result<(), Stalled> {
        if let Some(conn) = self.nodes[i].conn.take() {
            self.broker.handle_closed(self.now, conn);
        }
        self.nodes[i].client.handle_disconnected(self.now);
        self.transport_gone(i);
        self.step()
    }

    fn transport_gone(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.conn = None;
        n.paused = false;
        n.held.clear();
        if let Some(d) = n.reconnect_after {
            n.reconnect_at = Some(self.now + d);
        }
    }

    /// The node whose live transport is `conn`.
    pub fn node_of(&self, conn: ConnId) -> Option<usize> {
        self.nodes.iter().position(|n| n.conn == Some(conn))
    }

    /// Moves bytes and drains outputs on every side until nothing moves.
    pub fn step(&mut self) -> Result<(), Stalled> {
        for _ in 0..STEP_ROUNDS_MAX {
            let mut progress = false;
            for i in 0..self.nodes.len() {
                progress |= self.step_client(i);
            }
            progress |= self.step_broker();
            if !progress {
                return Ok(());
            }
        }
        Err(Stalled::Step)
    }

    fn step_client(&mut self, i: usize) -> bool {
        let (outs, _) = drain_all(&mut self.nodes[i].client, &mut self.buf);
        let progress = !outs.is_empty();
        for out in outs {
            match out {
                Drained::Transmit((), bytes) => {
                    let n = &mut self.nodes[i];
                    let delivered = filter(n.up, &bytes);
                    if n.conn.is_some() {
                        n.held.extend(delivered.iter().copied());
                    }
                    self.record(i, Dir::Up, bytes, delivered);
                }
                Drained::Event(ev) => {
                    let done = matches!(ev, Event::ConnectionLost(_) | Event::ConnectionRefused(_));
                    self.nodes[i].events.push((self.now, ev));
                    if done {
                        // The caller closes the socket; a partitioned broker does not notice.
                        if let Some(conn) = self.nodes[i].conn {
                            if self.nodes[i].up != Loss::All {
                                self.broker.handle_closed(self.now, conn);
                            }
                        }
                        self.transport_gone(i);
                    }
                }
            }
        }
        // The broker reads what the client wrote unless it paused this connection.
        let n = &mut self.nodes[i];
        match n.conn {
            Some(conn) if !n.paused && !n.held.is_empty() => {
                let data: Vec<u8> = n.held.drain(..).collect();
                for c in chunks(&data, n.chunk) {
                    self.broker.handle_bytes(self.now, conn, c);
                }
                true
            }
            _ => progress,
        }
    }

    fn step_broker(&mut self) -> bool {
        let (outs, _) = drain_all(&mut self.broker, &mut self.buf);
        let progress = !outs.is_empty();
        for out in outs {
            match out {
                Drained::Transmit(conn, bytes) => {
                    // Written to the socket (lost or not, the socket took it).
                    self.broker.handle_sent(self.now, conn, bytes.len());
                    let Some(i) = self.node_of(conn) else {
                        continue; // the client already closed this transport
                    };
                    let n = &mut self.nodes[i];
                    let delivered = filter(n.down, &bytes);
                    for c in chunks(&delivered, n.chunk) {
                        n.client.handle_bytes(self.now, c);
                    }
                    self.record(i, Dir::Down, bytes, delivered);
                }
                Drained::Event(broker::Event::Close(conn)) => {
                    self.broker_closed.push((self.now, conn));
                    if let Some(i) = self.node_of(conn) {
                        if self.nodes[i].down != Loss::All {
                            self.nodes[i].client.handle_disconnected(self.now);
                        }
                        self.transport_gone(i);
                    }
                }
                Drained::Event(broker::Event::PauseRead(conn)) => {
                    if let Some(i) = self.node_of(conn) {
                        self.nodes[i].paused = true;
                    }
                }
                Drained::Event(broker::Event::ResumeRead(conn)) => {
                    if let Some(i) = self.node_of(conn) {
                        self.nodes[i].paused = false;
                    }
                }
                Drained::Event(broker::Event::Log(line)) => self.broker_log.push((self.now, line)),
            }
        }
        progress
    }

    fn record(&mut self, node: usize, dir: Dir, bytes: Vec<u8>, delivered: Vec<u8>) {
        if self.record_trace {
            self.trace.push(Record {
                at: self.now,
                node,
                dir,
                bytes,
                delivered,
            });
        }
    }

    /// The earliest timeout of the broker, a client, or a scheduled reconnect.
    pub fn next_timeout(&self) -> Option<Instant> {
        let mut t = self.broker.poll_timeout();
        for n in &self.nodes {
            for x in [n.client.poll_timeout(), n.reconnect_at]
                .into_iter()
                .flatten()
            {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        }
        t
    }

    /// Runs every timeout due by `until`, in time order, stepping after each; ends at `until`.
    pub fn run_until(&mut self, until: Instant) -> Result<(), Stalled> {
        self.step()?;
        for _ in 0..TIMEOUTS_MAX {
            match self.next_timeout() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
                        self.broker.handle_timeout(self.now);
                    }
                    for i in 0..self.nodes.len() {
                        if self.nodes[i]
                            .client
                            .poll_timeout()
                            .is_some_and(|t| t <= self.now)
                        {
                            self.nodes[i].client.handle_timeout(self.now);
                        }
                        if self.nodes[i].reconnect_at.is_some_and(|t| t <= self.now) {
                            self.connect(i)?;
                        }
                    }
                    self.step()?;
                }
                _ => {
                    self.now = self.now.max(until);
                    return Ok(());
                }
            }
        }
        Err(Stalled::Timeouts)
    }
}

/// Keeps the packets of `bytes` (whole packets) that `loss` lets through.
fn filter(loss: Loss, bytes: &[u8]) -> Vec<u8> {
    match loss {
        Loss::Nothing => bytes.to_vec(),
        Loss::All => Vec::new(),
        Loss::PacketType(t) => {
            let mut out = Vec::new();
            let mut rest = bytes;
            while let Ok(Some(h)) = codec::parse_fixed_header(rest) {
                let n = h.frame_len().min(rest.len());
                if h.packet_type() != t {
                    out.extend_from_slice(&rest[..n]);
                }
                rest = &rest[n..];
            }
            out.extend_from_slice(rest);
            out
        }
    }
}

fn chunks(bytes: &[u8], n: usize) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(if n == 0 { bytes.len().max(1) } else { n })
}

#[cfg(test)]
mod tests;
