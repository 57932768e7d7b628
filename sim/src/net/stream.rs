//! The modelled link at the byte edge, over turmoil.
//!
//! turmoil still does the addressing (hosts, listeners, connect/accept, refused connections), but
//! the bytes of a wrapped connection travel through its [`Link`]: a write goes into the link, and
//! the peer reads the bytes when the link delivers them, at their simulated time. So unchanged
//! code over `AsyncRead + AsyncWrite` (the broker's `BrokerHandle::serve`, a device client) sees
//! loss as delay, a reset as `ConnectionReset`, a FIN as EOF and a power cut as silence.
//!
//! Use:
//! - client: `let s = net.connect("broker:1883", link_config).await?` (or
//!   `net.wrap_client(turmoil_stream, link_config)`), which returns once the modelled handshake
//!   completes (after SYN retries) or fails with `TimedOut`;
//! - server: accept with turmoil, then in a task per connection `net.wrap_server(stream).await`,
//!   which returns once the client's handshake completed (a failed handshake is an error: drop it);
//! - faults from the driver: [`Net::partition`], [`Net::half_open`], [`Net::reset`],
//!   [`Net::power_cut`]; observation: [`Net::trace_lines`], [`Net::pcap_bytes`].
//!
//! Time is turmoil's simulated time (`turmoil::sim_elapsed`, zero outside a simulation); waits
//! use `tokio::time::sleep`, which turmoil drives. Set turmoil's own latency to a small fixed value
//! and never use its `fail_rate`. The link is driven by whichever end polls; events are processed
//! at their own instants, so the trace does not depend on the turmoil tick, only delivery to the
//! application is rounded up to it. Everything lives behind one mutex (turmoil runs every host on
//! one thread), the wrappers hold it only inside a poll.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use mqsim::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::link::{Dir, Link, LinkConfig, NetLine, Output, Side, TraceTime, Wire};
use super::pcap::{to_pcap_bytes, ConnAddrs};

/// A connection's number in its [`Net`], in the order connections were created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

/// Which connections a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    All,
    Conn(ConnId),
    /// Every connection opened with this tag ([`Net::connect_tagged`]): one simulated device or
    /// subscriber, whose connections come and go.
    Tag(u32),
    /// Every connection with this address at either end (a device's WiFi, a broker's uplink).
    Host(IpAddr),
}

/// What the registry knows about one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub id: ConnId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub established: bool,
    pub reset: bool,
}

thread_local! {
    /// The simulation's time as its driver last set it, for calls made between steps, outside any
    /// host (faults, crashes), where turmoil has no current time to give.
    static OUTSIDE_NOW_US: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// A driver without turmoil (the direct engine) owns the clock on this thread: turmoil is
    /// not asked (outside a simulation, it answers with an allocated error).
    static OWN_CLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, simulated time on this thread is only what [`set_outside_now`] sets.
pub struct OwnClock(bool);

impl OwnClock {
    /// Takes the clock of this thread.
    pub fn take() -> OwnClock {
        OwnClock(OWN_CLOCK.with(|c| c.replace(true)))
    }
}

impl Drop for OwnClock {
    fn drop(&mut self) {
        OWN_CLOCK.with(|c| c.set(self.0));
    }
}

/// Simulated time now: turmoil's elapsed time inside a host; outside one, the time the driver
/// set with [`set_outside_now`] (zero by default).
pub fn sim_now() -> Instant {
    if OWN_CLOCK.with(|c| c.get()) {
        return Instant::from_micros(OUTSIDE_NOW_US.with(|c| c.get()));
    }
    let us = turmoil::sim_elapsed()
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or_else(|| OUTSIDE_NOW_US.with(|c| c.get()));
    Instant::from_micros(us)
}

/// The simulation driver says what time it is before acting between steps (a fault at its
/// scheduled instant), so that the links stamp what it causes with that time.
pub fn set_outside_now(now: Instant) {
    OUTSIDE_NOW_US.with(|c| c.set(now.as_micros()));
}

#[derive(Default)]
struct End {
    inbox: VecDeque<u8>,
    eof: bool,
    read_waker: Option<Waker>,
    /// A writer waiting for room in the send buffer.
    write_waker: Option<Waker>,
    /// This end's TCP send buffer: bytes written and not yet acknowledged, at most.
    send_buffer_bytes: Option<usize>,
    /// This end sent its FIN (shutdown, drop, or [`Net::close`]).
    fin_sent: bool,
    /// This end's application closed its socket (drop, or [`Net::close`]).
    app_closed: bool,
    /// This end's stack gave up the connection without a RST (lwIP `TCP_MAXRTX`).
    gave_up: bool,
}

struct Conn {
    id: ConnId,
    client: SocketAddr,
    server: SocketAddr,
    link: Link,
    ends: [End; 2],
    established: bool,
    failed: bool,
    reset: bool,
    powered_off: [bool; 2],
    server_taken: bool,
    connect_waker: Option<Waker>,
    tag: Option<u32>,
}

impl Conn {
    /// FIN from `side`, once (a half-close, `shutdown(SHUT_WR)`); false if it had been sent already.
    fn close_end(&mut self, now: Instant, side: Side) -> bool {
        let end = &mut self.ends[side_idx(side)];
        if end.fin_sent {
            return false;
        }
        end.fin_sent = true;
        self.link.handle_close(now, side.sending());
        true
    }

    /// `side`'s application closes its socket, once: graceful (what it wrote is still
    /// delivered, then FIN: [`Link::handle_app_close`]) unless it leaves received bytes unread,
    /// which aborts with RST on Linux and lwIP alike ([`Link::handle_rst`]). False if it had
    /// been closed already.
    fn close_app(&mut self, now: Instant, side: Side) -> bool {
        let end = &mut self.ends[side_idx(side)];
        if end.app_closed {
            return false;
        }
        end.app_closed = true;
        end.fin_sent = true;
        if end.inbox.is_empty() {
            self.link.handle_app_close(now, side);
        } else {
            self.link.handle_rst(now, side);
        }
        true
    }

    /// The link's clock: the instant of the event being routed.
    fn link_now(&self) -> Instant {
        self.link.now()
    }

    fn matches(&self, which: Which) -> bool {
        match which {
            Which::All => true,
            Which::Conn(id) => self.id == id,
            Which::Host(ip) => self.client.ip() == ip || self.server.ip() == ip,
            Which::Tag(t) => self.tag == Some(t),
        }
    }
}

struct Inner {
    seed: u64,
    conns: Vec<Conn>,
    counter: u64,
    trace: Vec<(Instant, u64, String)>,
    wires: Vec<(Instant, u64, usize, Wire)>,
    accept_wakers: Vec<Waker>,
    /// Faults that stay on for connections opened later: by tag (`Some`) or for all (`None`).
    standing: BTreeMap<Option<u32>, Standing>,
    /// The simulation is over: dropping streams records nothing more.
    frozen: bool,
    /// Bytes as they reach each receiving application, when tapping is on.
    taps: Option<Vec<Tap>>,
    /// Connections whose link said something, for a driver without wakers (the direct
    /// engine), when it asked for them ([`Net::track_touched`]).
    touched: Option<Vec<usize>>,
}

/// A line of the network's trace: the instant it happened at and its text (which begins with
/// that instant as [`TraceTime`] writes it, for the reader, not for parsing back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub at: Instant,
    pub text: String,
}

/// Bytes delivered to one end of a connection (in order, no gaps, no duplicates): what an
/// observer at the byte edge sees, for checks fed from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tap {
    pub at: Instant,
    pub conn: ConnId,
    /// The tag the client connected with ([`Net::connect_tagged`]).
    pub tag: Option<u32>,
    pub dir: Dir,
    pub bytes: Vec<u8>,
}

/// A standing fault: applied to the matching connections now and to every new one.
/// Each fault by its key, so that overlapping faults end independently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Standing {
    partition: BTreeSet<u32>,
    /// Indexed by `Dir::Up`, `Dir::Down`.
    dead: [BTreeSet<u32>; 2],
}

fn dir_idx(dir: Dir) -> usize {
    match dir {
        Dir::Up => 0,
        Dir::Down => 1,
    }
}

fn side_idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

fn standing_key(which: Which) -> Option<Option<u32>> {
    match which {
        Which::All => Some(None),
        Which::Tag(t) => Some(Some(t)),
        Which::Conn(_) | Which::Host(_) => None,
    }
}

impl Inner {
    /// Advance connection `i` to `now` and route what it says.
    fn drive(&mut self, i: usize, now: Instant) {
        if let Some(c) = self.conns.get_mut(i) {
            c.link.handle_timeout(now);
        }
        self.route(i);
    }

    /// Drain connection `i`'s outputs; wake everyone waiting on it if anything happened.
    fn route(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let mut any = false;
        while let Some(o) = c.link.poll_output() {
            any = true;
            match o {
                Output::Established => c.established = true,
                Output::ConnectFailed => c.failed = true,
                Output::Deliver { dir, bytes } => {
                    if let Some(taps) = self.taps.as_mut() {
                        taps.push(Tap {
                            at: c.link_now(),
                            conn: c.id,
                            tag: c.tag,
                            dir,
                            bytes: bytes.clone(),
                        });
                    }
                    c.ends[side_idx(dir.receiver())].inbox.extend(bytes);
                }
                Output::Closed { dir } => c.ends[side_idx(dir.receiver())].eof = true,
                Output::Reset { .. } => c.reset = true,
                Output::GaveUp { side } => c.ends[side_idx(side)].gave_up = true,
                Output::Net(NetLine { at, event }) => {
                    self.counter += 1;
                    let line = format!("{} conn{} {event}", TraceTime(at), c.id.0);
                    self.trace.push((at, self.counter, line));
                }
                Output::Wire(w) => {
                    self.counter += 1;
                    self.wires.push((w.at, self.counter, i, w));
                }
            }
        }
        if any {
            if let Some(t) = self.touched.as_mut() {
                t.push(i);
            }
            for e in c.ends.iter_mut() {
                if let Some(w) = e.read_waker.take() {
                    w.wake();
                }
                if let Some(w) = e.write_waker.take() {
                    w.wake();
                }
            }
            if let Some(w) = c.connect_waker.take() {
                w.wake();
            }
            for w in self.accept_wakers.drain(..) {
                w.wake();
            }
        }
    }

    fn each(&mut self, which: Which, mut f: impl FnMut(&mut Link, Instant)) {
        let now = sim_now();
        for i in 0..self.conns.len() {
            self.drive(i, now);
            if let Some(c) = self.conns.get_mut(i) {
                if c.matches(which) {
                    f(&mut c.link, now);
                }
            }
            self.route(i);
        }
    }
}

/// The registry of modelled links. Cheap to clone; share one per simulation.
#[derive(Clone)]
pub struct Net {
    inner: Arc<Mutex<Inner>>,
}

impl Net {
    /// `seed` (the run's [`crate::seed::Stream::Network`]) derives every link's seed, with the
    /// connection's number ([`crate::seed::link`]).
    pub fn new(seed: u64) -> Net {
        Net {
            inner: Arc::new(Mutex::new(Inner {
                seed,
                conns: Vec::new(),
                counter: 0,
                trace: Vec::new(),
                wires: Vec::new(),
                accept_wakers: Vec::new(),
                standing: BTreeMap::new(),
                frozen: false,
                taps: None,
                touched: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// turmoil connect, then the modelled handshake.
    pub async fn connect<A: turmoil::ToSocketAddrs>(
        &self,
        addr: A,
        cfg: LinkConfig,
    ) -> io::Result<LinkStream> {
        let tcp = turmoil::net::TcpStream::connect(addr).await?;
        self.wrap_client(tcp, cfg).await
    }

    /// Put a new link under a stream the client connected; returns after the modelled handshake
    /// (`TimedOut` once the SYN retries are spent, `InvalidInput` on a bad config).
    pub async fn wrap_client(
        &self,
        tcp: turmoil::net::TcpStream,
        cfg: LinkConfig,
    ) -> io::Result<LinkStream> {
        self.wrap_client_tagged(tcp, cfg, None).await
    }

    /// [`Net::connect`] for one simulated client (`tag`), so that faults aimed at it
    /// ([`Which::Tag`]) reach its later connections too.
    pub async fn connect_tagged<A: turmoil::ToSocketAddrs>(
        &self,
        addr: A,
        cfg: LinkConfig,
        tag: u32,
    ) -> io::Result<LinkStream> {
        let tcp = turmoil::net::TcpStream::connect(addr).await?;
        self.wrap_client_tagged(tcp, cfg, Some(tag)).await
    }

    async fn wrap_client_tagged(
        &self,
        tcp: turmoil::net::TcpStream,
        cfg: LinkConfig,
        tag: Option<u32>,
    ) -> io::Result<LinkStream> {
        let client = tcp.local_addr()?;
        let server = tcp.peer_addr()?;
        let i = self.open(client, server, cfg, tag)?;
        let mut sleep: Option<(Instant, Pin<Box<Sleep>>)> = None;
        // Dropped before the connect returns (the application's connect timeout): the
        // application closes the socket it was connecting.
        let mut guard = ConnectGuard {
            net: self,
            i,
            armed: true,
        };
        let r = poll_fn(|cx| {
            let now = sim_now();
            let mut g = self.lock();
            loop {
                g.drive(i, now);
                let Some(c) = g.conns.get_mut(i) else {
                    return Poll::Ready(Err(io::ErrorKind::NotFound.into()));
                };
                if c.established {
                    return Poll::Ready(Ok(()));
                }
                if c.failed || c.reset {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "modelled TCP handshake: SYN retries exhausted",
                    )));
                }
                c.connect_waker = Some(cx.waker().clone());
                let deadline = c.link.poll_timeout();
                if arm(&mut sleep, deadline, now, cx).is_pending() {
                    return Poll::Pending;
                }
            }
        })
        .await;
        guard.armed = false;
        r?;
        Ok(LinkStream::new(self.clone(), i, Side::Client, tcp))
    }

    /// Find the link of a stream the server accepted (by the client's address) and return once
    /// its handshake completed; `ConnectionRefused` if it failed.
    pub async fn wrap_server(&self, tcp: turmoil::net::TcpStream) -> io::Result<LinkStream> {
        let peer = tcp.peer_addr()?;
        let i = poll_fn(|cx| {
            let now = sim_now();
            let mut g = self.lock();
            let found = g
                .conns
                .iter()
                .rposition(|c| c.client == peer && !c.server_taken);
            if let Some(i) = found {
                g.drive(i, now);
                if let Some(c) = g.conns.get_mut(i) {
                    if c.established {
                        c.server_taken = true;
                        return Poll::Ready(Ok(i));
                    }
                    if c.failed || c.reset {
                        c.server_taken = true;
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
                    }
                }
            }
            // The client's connect drives the handshake and wakes us on every step.
            g.accept_wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        Ok(LinkStream::new(self.clone(), i, Side::Server, tcp))
    }

    /// Both directions of the chosen connections lose everything while `on`; for `All` and
    /// `Tag` also every connection opened while it stays on.
    pub fn partition(&self, which: Which, on: bool) {
        self.partition_by(which, 0, on);
    }

    /// [`Net::partition`] for fault `key`: a connection stays partitioned while any of the
    /// faults that reach it is on, so overlapping faults end independently.
    pub fn partition_by(&self, which: Which, key: u32, on: bool) {
        let mut g = self.lock();
        if let Some(k) = standing_key(which) {
            let set = &mut g.standing.entry(k).or_default().partition;
            if on {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
        g.each(which, |l, now| l.set_partition_by(now, key, on));
    }

    /// Every partition and half-open fault on the chosen connections ends (the heal), standing
    /// ones included.
    pub fn clear_faults(&self, which: Which) {
        let mut g = self.lock();
        match standing_key(which) {
            Some(None) => g.standing.clear(),
            Some(k) => {
                g.standing.remove(&k);
            }
            None => {}
        }
        g.each(which, |l, now| l.clear_faults(now));
    }

    /// One direction of the chosen connections loses everything while `on` (half-open); for
    /// `All` and `Tag` also every connection opened while it stays on.
    pub fn half_open(&self, which: Which, dir: Dir, on: bool) {
        self.half_open_by(which, dir, 0, on);
    }

    /// [`Net::half_open`] for fault `key`: `dir` stays dead while any fault that reaches it is on.
    pub fn half_open_by(&self, which: Which, dir: Dir, key: u32, on: bool) {
        let mut g = self.lock();
        if let Some(k) = standing_key(which) {
            let set = &mut g.standing.entry(k).or_default().dead[dir_idx(dir)];
            if on {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
        g.each(which, |l, now| l.set_dead_by(now, dir, key, on));
    }

    /// The chosen connections lose transmissions by `loss` from now on (the heal phase).
    pub fn set_loss(&self, which: Which, loss: super::link::LossModel) {
        self.lock()
            .each(which, |l, now| l.set_loss(now, loss.clone()));
    }

    /// `side` of the chosen connections that lost power is running again: each of those
    /// connections resets when its next segment reaches that side.
    pub fn reboot(&self, which: Which, side: Side) {
        self.lock().each(which, |l, now| l.handle_reboot(now, side));
    }

    /// The run is over: streams dropped from now on (with their hosts) send nothing, so the
    /// trace ends where the simulation did.
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// `side` of the chosen connections closes now (FIN after its queued bytes), in connection
    /// order: a host that shuts down cleanly, whatever order its runtime then drops its sockets in.
    pub fn close(&self, which: Which, side: Side) {
        let mut g = self.lock();
        let now = sim_now();
        for i in 0..g.conns.len() {
            g.drive(i, now);
            if let Some(c) = g.conns.get_mut(i) {
                if c.matches(which) && c.close_app(now, side) {
                    g.route(i);
                }
            }
        }
    }

    /// Starts recording every delivery ([`Net::take_taps`]).
    pub fn enable_taps(&self) {
        self.lock().taps.get_or_insert_with(Vec::new);
    }

    /// The deliveries recorded since the last call, in the order they happened.
    pub fn take_taps(&self) -> Vec<Tap> {
        self.lock()
            .taps
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// RST now: both ends' reads and writes fail with `ConnectionReset`.
    pub fn reset(&self, which: Which) {
        self.lock().each(which, |l, now| l.handle_reset(now));
    }

    /// `side` of the chosen connections loses power: it sends and acknowledges nothing more
    /// (its own writes vanish, its reads never complete); the peer sees silence, then a reset if
    /// it had bytes outstanding.
    pub fn power_cut(&self, which: Which, side: Side) {
        let mut g = self.lock();
        for c in g.conns.iter_mut() {
            if c.matches(which) {
                c.powered_off[side_idx(side)] = true;
            }
        }
        g.each(which, |l, now| l.handle_abort(now, side));
    }

    pub fn conns(&self) -> Vec<ConnInfo> {
        self.lock()
            .conns
            .iter()
            .map(|c| ConnInfo {
                id: c.id,
                client: c.client,
                server: c.server,
                established: c.established,
                reset: c.reset,
            })
            .collect()
    }

    /// The connection whose client end is `client` (the newest if the address was reused).
    pub fn conn_of(&self, client: SocketAddr) -> Option<ConnId> {
        self.lock()
            .conns
            .iter()
            .rev()
            .find(|c| c.client == client)
            .map(|c| c.id)
    }

    /// Every decision of every link, in time order (ties in the order they were made), each with
    /// its instant; the text reads `12.345678 conn0 up retransmit seq=1 len=20 attempt=2
    /// after=200.000ms`.
    pub fn trace_lines(&self) -> Vec<TraceLine> {
        let mut t: Vec<(Instant, u64, String)> = self.lock().trace.clone();
        t.sort_by_key(|e| (e.0, e.1));
        t.into_iter()
            .map(|(at, _, text)| TraceLine { at, text })
            .collect()
    }

    /// Every packet of every link, in time order, with its connection's addresses.
    pub fn wire_records(&self) -> Vec<(ConnAddrs, Wire)> {
        let g = self.lock();
        let mut w: Vec<&(Instant, u64, usize, Wire)> = g.wires.iter().collect();
        w.sort_by_key(|e| (e.0, e.1));
        w.into_iter()
            .filter_map(|(_, _, i, wire)| {
                let c = g.conns.get(*i)?;
                Some((
                    ConnAddrs {
                        client: v4(c.client),
                        server: v4(c.server),
                    },
                    wire.clone(),
                ))
            })
            .collect()
    }

    /// `f` over every packet of every link, in time order (as [`Net::wire_records`]), each with
    /// its connection and the tag its client connected with ([`Net::connect_tagged`]), without
    /// copying them: for counts per client at the byte edge ([`crate::cost`]).
    pub fn with_wire_records<R>(
        &self,
        f: impl FnOnce(Vec<(ConnId, Option<u32>, &Wire)>) -> R,
    ) -> R {
        let g = self.lock();
        let mut w: Vec<&(Instant, u64, usize, Wire)> = g.wires.iter().collect();
        w.sort_by_key(|e| (e.0, e.1));
        let records = w
            .into_iter()
            .filter_map(|(_, _, i, wire)| {
                let c = g.conns.get(*i)?;
                Some((c.id, c.tag, wire))
            })
            .collect();
        f(records)
    }

    /// The capture of every connection; `epoch` is the wall time simulated zero stands for.
    pub fn pcap_bytes(&self, epoch: std::time::Duration) -> Result<Vec<u8>, String> {
        let recs = self.wire_records();
        to_pcap_bytes(epoch, recs.iter().map(|(a, w)| (a, w)))
    }
}

/// Closes the client's end of a connection whose connect was given up before it returned: in
/// SYN-SENT the attempt is freed silently ([`Link::handle_abandon`]); if the handshake had
/// completed already, the socket is closed like any other ([`Conn::close_app`]).
struct ConnectGuard<'a> {
    net: &'a Net,
    i: usize,
    armed: bool,
}

impl Drop for ConnectGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.net.abandon(self.i);
        }
    }
}

/// IPv6 addresses are written as 0.0.0.0 (the capture is IPv4 only; turmoil defaults to IPv4).
fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(v) => v,
        SocketAddr::V6(v) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, v.port()),
    }
}

mod direct;
mod endpoint;
pub use direct::{ConnectState, ReadOutcome};
use endpoint::arm;
pub use endpoint::LinkStream;

#[cfg(test)]
mod tests;
