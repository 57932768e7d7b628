//! The sans-IO MQTT 3.1.1 broker.
//!
//! # Contract (after quinn-proto's `Connection`)
//! * Inputs: [`Broker::handle_accept`], [`Broker::handle_bytes`], [`Broker::handle_sent`],
//!   [`Broker::handle_closed`], [`Broker::handle_timeout`]. Each takes `now`.
//! * Outputs, drained after every input in this order: [`Broker::poll_transmit`] (bytes for a
//!   connection, moved into the caller's buffer), [`Broker::poll_event`] (close a connection,
//!   log lines), then [`Broker::poll_timeout`] (when to call `handle_timeout` next).
//! * A spurious `handle_timeout` is a no-op; a `now` older than one already seen counts as the
//!   newest. No input panics; bad input closes that connection with a reason.
//!
//! Everything is ordered (`BTreeMap`, `VecDeque`, a timer heap keyed by time then id), so the same
//! inputs give the same outputs byte for byte: what the simulator relies on.

mod acl;
#[cfg(feature = "auth")]
mod auth;
mod config;
mod file;
mod conformance;
mod identity;
mod log;
mod persist;
mod route;
use route::Release;
mod security;
mod session;
mod sys;

use alloc::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::codec::{
    self, ConnAck, Connect, ConnectReturnCode, FeedStop, FrameBuffer, Packet, Protocol, Publish,
    QoS, SubAck, Subscribe, Take, UnsubAck, Unsubscribe, SUBACK_FAILURE,
};
use crate::driver::{Endpoint, Output};
use crate::limits;
use crate::time::{Duration, Instant};
use crate::topic::{self, SubscriptionTree};

pub use acl::{Access, AclFile};
#[cfg(feature = "auth")]
pub use auth::PasswordFile;
pub use config::{Config, ConfigBuilder, ConfigError};
pub use file::{file_lines, FileError};
pub use identity::Identity;
pub use persist::{Damage, JournalWrite, Lsn, Recovery, RestoreError};
use persist::{IdEvent, Journal, RecordArgs};
pub use security::Security;
pub use session::Message;
use session::{Retain, Session};

/// A connection, numbered by the broker in [`Broker::handle_accept`]. Never reused.
pub type ConnId = u64;
type SessionId = u64;

/// What the broker asks of its caller besides sending bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Close this connection once the bytes already handed over for it are written.
    Close(ConnId),
    /// Stop reading this connection's socket: its peer does not read what the broker sends
    /// (`max_outgoing_bytes`), or, paused for a backed-up subscriber, it went on publishing past
    /// `max_paused_input_bytes`. Bytes already read may still be handed to
    /// [`Broker::handle_bytes`]; they are kept, not processed.
    PauseRead(ConnId),
    /// Read this connection's socket again.
    ResumeRead(ConnId),
    /// A log line in `mosquitto -v` wording, without the timestamp prefix.
    Log(String),
}

/// Counters behind `$SYS/broker/...`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Control packets of any type received / sent.
    pub messages_received: u64,
    pub messages_sent: u64,
    /// PUBLISH packets received / sent.
    pub publish_received: u64,
    pub publish_sent: u64,
    /// Messages not delivered to a subscriber because a bound was reached (queue full, QoS 0 to
    /// a backed-up connection, over `message_size_limit`, retained store full).
    pub messages_dropped: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub clients_connected: u64,
    pub clients_maximum: u64,
}

#[derive(Debug)]
struct OwnedWill {
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    AwaitingConnect,
    Active(SessionId),
}

#[derive(Debug)]
struct Conn {
    peer: String,
    state: ConnState,
    client_id: String,
    /// The CONNECT's user name and password, kept to check again when the password file is
    /// reloaded (as mosquitto does).
    username: Option<String>,
    password: Option<Vec<u8>>,
    rx: FrameBuffer,
    tx: Vec<u8>,
    /// In the dirty list (has `tx` bytes the caller has not taken).
    dirty: bool,
    /// Bytes handed to the caller and not yet reported written via `handle_sent`.
    unsent_bytes: usize,
    accepted_at: Instant,
    last_rx: Instant,
    /// 1.5 x keep alive (MQTT-3.1.2-24); zero = off.
    keepalive_grace: Duration,
    will: Option<OwnedWill>,
    /// The deadline of this connection's live entry in the timer heap.
    timer_at: Option<Instant>,
    /// Closed by the broker; kept until its last bytes are taken and [`Event::Close`] is polled.
    closing: bool,
    /// Paused as a publisher (backpressure): sessions it fed past their queue bound. Until every
    /// one has drained, its PUBACKs / PUBRECs are withheld (its own in-flight window then stops
    /// it) while the rest of its input is read and handled as usual.
    blocked_on: BTreeSet<SessionId>,
    /// PUBACK / PUBREC withheld while paused, in the order of their PUBLISHes; sent on resume.
    /// Later ones queue behind them, so acknowledgements never overtake each other.
    deferred_acks: VecDeque<Packet<'static>>,
    /// Bytes of the QoS 1/2 PUBLISH packets behind `deferred_acks`.
    deferred_bytes: usize,
    /// Paused, with `deferred_bytes` at `max_paused_input_bytes`: its next QoS 1/2 PUBLISH is
    /// left undecoded, and its socket unread, until it resumes.
    input_full: bool,
    /// More than `max_outgoing_bytes` handed out and not written: the peer is not reading what
    /// we send, so we stop reading what it sends (its responses would pile up without bound).
    out_full: bool,
    /// Its socket is not read ([`Event::PauseRead`] given): `out_full` or `input_full`. Bytes
    /// that still arrive are kept undecoded; the keep-alive does not count this silence.
    read_paused: bool,
    /// `tx` goes out only once the journal is durable up to here (the write-ahead rule).
    tx_needs: Lsn,
    /// In the broker's `held` list, waiting for the journal.
    held: bool,
    /// Where the user name comes from (a TLS client certificate, or CONNECT).
    identity: Identity,
}

#[derive(Debug)]
struct Retained {
    qos: QoS,
    msg: Arc<Message>,
}

/// Why the broker closes a connection: decides the log line and whether the will is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    /// DISCONNECT received: will discarded (MQTT-3.14.4-3).
    Disconnect,
    /// The peer's socket closed or failed.
    SocketClosed,
    KeepAliveTimeout,
    ConnectTimeout,
    ProtocolError,
    /// A new connection took over the client id (MQTT-3.1.4-2).
    TakenOver,
    /// Refused in CONNACK.
    Refused,
    /// Bad user name or password, at CONNECT or when the password file was reloaded: no will.
    NotAuthorised,
}

/// Whether a connection is still open after one of its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    Closed,
}

/// The acknowledgement that finishes an outgoing QoS 1/2 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    PubAck,
    PubComp,
}

/// The DUP flag of an outgoing PUBLISH: set on a re-send (MQTT-3.3.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dup {
    No,
    Yes,
}

/// The broker state machine. See the module documentation for the calling contract.
#[derive(Debug)]
pub struct Broker {
    config: Config,
    now: Instant,
    started_at: Instant,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    sessions: BTreeMap<SessionId, Session>,
    by_client_id: BTreeMap<String, SessionId>,
    next_session: SessionId,
    next_auto_id: u64,
    tree: SubscriptionTree<SessionId>,
    retained: BTreeMap<String, Retained>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    next_sys: Option<Instant>,
    dirty: VecDeque<ConnId>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Reused scratch for routing.
    matches: Vec<(SessionId, QoS)>,
    /// The connection whose PUBLISH is being routed, for backpressure.
    publishing: Option<(ConnId, SessionId)>,
    /// Paused connections whose blockers have drained, resumed at the end of the current input.
    to_resume: VecDeque<ConnId>,
    journal: Journal,
    /// Connections with bytes waiting for the journal to be durable.
    held: Vec<ConnId>,
    /// Users and ACLs ([`Broker::set_security`]).
    security: Security,
}

impl Broker {
    /// A broker with no connections. Fails, naming the setting, when `config` has a value out
    /// of range ([`Config::validate`]).
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let next_sys = if config.sys_interval == Duration::ZERO {
            None
        } else {
            Some(now)
        };
        let journal = Journal::new(&config);
        let mut b = Broker {
            config,
            now,
            started_at: now,
            conns: BTreeMap::new(),
            next_conn: 1,
            sessions: BTreeMap::new(),
            by_client_id: BTreeMap::new(),
            next_session: 1,
            next_auto_id: 1,
            tree: SubscriptionTree::new(),
            retained: BTreeMap::new(),
            timers: BinaryHeap::new(),
            next_sys,
            dirty: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            matches: Vec::new(),
            publishing: None,
            to_resume: VecDeque::new(),
            journal,
            held: Vec::new(),
            security: Security::default(),
        };
        // `$SYS` values exist (retained) from the start, not only after the first interval.
        b.handle_timeout(now);
        Ok(b)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }
    pub fn subscription_count(&self) -> usize {
        self.tree.len()
    }
    /// Messages queued (not in flight) for `client_id`'s session, if it exists.
    pub fn queued_messages(&self, client_id: &str) -> Option<usize> {
        let sid = self.by_client_id.get(client_id)?;
        Some(self.sessions.get(sid)?.queue.len())
    }
    /// The most messages and bytes `client_id`'s queue has held, if the session exists.
    pub fn queue_peak(&self, client_id: &str) -> Option<(usize, usize)> {
        let s = self.sessions.get(self.by_client_id.get(client_id)?)?;
        Some((s.queue_peak_messages, s.queue_peak_bytes))
    }
    /// Messages in flight (sent, unacknowledged) to `client_id`'s session, if it exists.
    pub fn inflight_messages(&self, client_id: &str) -> Option<usize> {
        let sid = self.by_client_id.get(client_id)?;
        Some(self.sessions.get(sid)?.inflight.len())
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    // ----- inputs -----

    /// Installs users and ACLs (the parsed `password_file` and `acl_file`), at start or on a
    /// reload. As mosquitto does on a reload, every connected client is checked again: one whose
    /// user name and password no longer pass is disconnected (without its will; a client known by
    /// its certificate is not checked again); the others stay
    /// connected and are judged by the new ACL from their next packet and delivery on.
    pub fn set_security(&mut self, now: Instant, security: Security) {
        self.advance(now);
        self.security = security;
        let refused: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, ConnState::Active(_)) && !c.closing)
            // A user name proved by a client certificate has no password to check again: it got
            // in without one (`use_identity_as_username`), and stays.
            .filter(|(_, c)| !matches!(c.identity, Identity::Certificate(_)))
            .filter(|(_, c)| {
                !self.security.authenticate(
                    self.config.allow_anonymous,
                    c.username.as_deref(),
                    c.password.as_deref(),
                )
            })
            .map(|(&id, _)| id)
            .collect();
        for conn in refused {
            self.close(conn, CloseReason::NotAuthorised);
        }
        self.run_resumes();
    }

    /// The users and ACLs in force.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// A new socket. `peer` names it in logs (e.g. "127.0.0.1:50000 on port 1883"). Returns
    /// `None`, and the caller closes the socket, when `max_connections` are open.
    pub fn handle_accept(&mut self, now: Instant, peer: &str) -> Option<ConnId> {
        self.handle_accept_as(now, peer, Identity::FromConnect)
    }

    /// [`Broker::handle_accept`] for a transport that identifies its client (a TLS listener with
    /// `use_identity_as_username`): the connection's user name is `identity`'s, not CONNECT's.
    pub fn handle_accept_as(
        &mut self,
        now: Instant,
        peer: &str,
        identity: Identity,
    ) -> Option<ConnId> {
        self.advance(now);
        if self.conns.len() >= self.config.max_connections {
            self.notice(|| format!("Refusing connection from {peer}: max_connections reached."));
            return None;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let deadline = self.now + self.config.connect_timeout;
        self.conns.insert(
            id,
            Conn {
                peer: peer.to_string(),
                state: ConnState::AwaitingConnect,
                client_id: String::from("<unknown>"),
                username: None,
                password: None,
                rx: FrameBuffer::new(),
                tx: Vec::new(),
                dirty: false,
                unsent_bytes: 0,
                accepted_at: self.now,
                last_rx: self.now,
                keepalive_grace: Duration::ZERO,
                will: None,
                timer_at: Some(deadline),
                closing: false,
                blocked_on: BTreeSet::new(),
                deferred_acks: VecDeque::new(),
                deferred_bytes: 0,
                input_full: false,
                out_full: false,
                read_paused: false,
                tx_needs: 0,
                held: false,
                identity,
            },
        );
        self.timers.push(Reverse((deadline, id)));
        self.notice(|| format!("New connection from {peer}."));
        Some(id)
    }

    /// Bytes read from `conn`'s socket. Complete packets are processed at once; a partial packet
    /// is kept (at most `max_packet_bytes`), and so is everything from the point where reading
    /// was paused ([`Event::PauseRead`]) until it resumes.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.advance(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        if !c.read_paused {
            c.last_rx = self.now;
        }
        self.stats.bytes_received += data.len() as u64;
        self.drive_rx(conn, data);
        self.run_resumes();
    }

    /// Decodes and handles packets from the connection's buffer followed by `data`, until the
    /// bytes run out, the connection pauses, or it closes; keeps what is left.
    fn drive_rx(&mut self, conn: ConnId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.read_paused {
            c.rx.hold(data);
            return;
        }
        let mut rx = core::mem::take(&mut c.rx);
        let max = self.config.max_packet_bytes;
        let fed = rx.feed_or_keep(data, max, |p| {
            if self.input_over_budget(conn, &p) {
                return Take::Keep(Flow::Open);
            }
            self.stats.messages_received += 1;
            let journal_at = self.journal.end;
            let flow = self.handle_packet(conn, p);
            if self.journal.end > journal_at {
                // What this packet is answered with acknowledges what it recorded.
                self.hold_for_journal(conn);
            }
            match flow {
                Flow::Closed => Take::Stop(Flow::Closed),
                Flow::Open if self.conns.get(&conn).is_some_and(|c| c.read_paused) => {
                    Take::Stop(Flow::Open)
                }
                Flow::Open => Take::Done,
            }
        });
        match fed {
            Ok(()) | Err(FeedStop::Handler(Flow::Open)) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.rx = rx;
                }
            }
            Err(FeedStop::Handler(Flow::Closed)) => {}
            Err(FeedStop::Malformed(e)) => {
                let id = self.client_label(conn);
                // MQTT-3.1.2-2: a first CONNECT with a level we do not speak is answered with
                // CONNACK 0x01. On a connection that already has its CONNACK it is just a
                // second CONNECT (MQTT-3.1.0-2): closed without another CONNACK.
                let awaiting = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| c.state == ConnState::AwaitingConnect);
                if matches!(e, codec::DecodeError::UnsupportedProtocolLevel(_)) && awaiting {
                    self.refuse_connect(conn, ConnectReturnCode::UnacceptableProtocolVersion);
                }
                self.notice(|| format!("Client {id} disconnected due to malformed packet: {e}."));
                self.close(conn, CloseReason::ProtocolError);
            }
        }
    }

    /// Whether `p`, from `conn`, must wait undecoded: a QoS 1/2 PUBLISH from a paused publisher
    /// whose withheld acknowledgements already cover `max_paused_input_bytes` (or every packet
    /// id). Then its socket is paused too: a client ignoring its in-flight window.
    fn input_over_budget(&mut self, conn: ConnId, p: &Packet<'_>) -> bool {
        let Packet::Publish(publish) = p else {
            return false;
        };
        if publish.qos == QoS::AtMostOnce || !self.paused_input_full(conn) {
            return false;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        c.input_full = true;
        if !c.read_paused {
            c.read_paused = true;
            self.events.push_back(Event::PauseRead(conn));
        }
        true
    }

    /// Resumes connections whose blockers drained, or whose output did, during this input:
    /// withheld acknowledgements go out in order, then what they had buffered is processed
    /// (which may pause them again).
    fn run_resumes(&mut self) {
        while let Some(conn) = self.to_resume.pop_front() {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.closing {
                continue;
            }
            if c.blocked_on.is_empty() {
                c.input_full = false;
                c.deferred_bytes = 0;
                let acks = core::mem::take(&mut c.deferred_acks);
                for ack in &acks {
                    self.send(conn, ack);
                }
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if !c.read_paused || c.out_full || c.input_full {
                continue;
            }
            c.read_paused = false;
            c.last_rx = self.now;
            self.events.push_back(Event::ResumeRead(conn));
            self.drive_rx(conn, &[]);
        }
    }

    /// The caller wrote `n` of the bytes it took for `conn` to the socket.
    pub fn handle_sent(&mut self, now: Instant, conn: ConnId, n: usize) {
        self.advance(now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.unsent_bytes = c.unsent_bytes.saturating_sub(n);
            if c.out_full && c.tx.len() + c.unsent_bytes <= self.config.max_outgoing_bytes / 2 {
                c.out_full = false;
                self.to_resume.push_back(conn);
            }
        }
        self.run_resumes();
    }

    /// `conn`'s socket closed or failed (not by a broker [`Event::Close`]). Publishes the will.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.advance(now);
        match self.conns.get(&conn) {
            Some(c) if c.closing => {
                self.conns.remove(&conn);
            }
            Some(_) => self.close(conn, CloseReason::SocketClosed),
            None => {}
        }
        self.run_resumes();
    }

    /// Timers: keep alive, connect timeout, `$SYS` refresh. Call at or after [`Broker::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        while let Some(&Reverse((at, conn))) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.closing || c.timer_at != Some(at) {
                continue; // superseded entry
            }
            let deadline = match c.state {
                // A connection we stopped reading cannot be blamed for silence; one paused only
                // as a publisher is still read, and judged by its keep-alive.
                _ if c.read_paused => {
                    Some(self.now + c.keepalive_grace.max(self.config.connect_timeout))
                }
                ConnState::AwaitingConnect => Some(c.accepted_at + self.config.connect_timeout),
                ConnState::Active(_) if c.keepalive_grace != Duration::ZERO => {
                    Some(c.last_rx + c.keepalive_grace)
                }
                ConnState::Active(_) => None,
            };
            match deadline {
                Some(d) if d <= self.now => {
                    let reason = match c.state {
                        ConnState::AwaitingConnect => CloseReason::ConnectTimeout,
                        ConnState::Active(_) => CloseReason::KeepAliveTimeout,
                    };
                    c.timer_at = None;
                    self.close(conn, reason);
                }
                Some(d) => {
                    c.timer_at = Some(d);
                    self.timers.push(Reverse((d, conn)));
                }
                None => c.timer_at = None,
            }
        }
        if let Some(at) = self.next_sys {
            if at <= self.now {
                self.publish_sys();
                // Catch up without publishing once per missed interval.
                let mut next = at + self.config.sys_interval;
                while next <= self.now {
                    next = next + self.config.sys_interval;
                }
                self.next_sys = Some(next);
            }
        }
        self.run_resumes();
    }

    // ----- outputs -----

    /// Moves the pending bytes of the next connection that has any into `buf` (which should be
    /// empty; it is swapped, not copied, when it is) and returns that connection.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<ConnId> {
        while let Some(id) = self.dirty.pop_front() {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.dirty = false;
            if c.tx.is_empty() {
                continue;
            }
            if c.tx_needs > self.journal.durable {
                if !c.held {
                    c.held = true;
                    self.held.push(id); // sent by handle_durable
                }
                continue;
            }
            if buf.is_empty() {
                core::mem::swap(buf, &mut c.tx);
            } else {
                buf.append(&mut c.tx);
            }
            c.unsent_bytes += buf.len();
            self.stats.bytes_sent += buf.len() as u64;
            return Some(id);
        }
        None
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Event::Close(conn) = ev {
            self.conns.remove(&conn);
        }
        Some(ev)
    }

    /// The next output, in the contract's order: bytes, then events, then the timeout (see
    /// [`crate::driver`]). `buf` receives the bytes of a `Transmit`.
    pub fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output<ConnId, Event> {
        if let Some(conn) = self.poll_transmit(buf) {
            return Output::Transmit(conn);
        }
        if let Some(ev) = self.poll_event() {
            return Output::Event(ev);
        }
        Output::Timeout(self.poll_timeout())
    }

    /// When [`Broker::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.timers.peek().map(|Reverse((at, _))| *at);
        match (t, self.next_sys) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- packet handling -----

    /// Returns false when the connection was closed.
    fn handle_packet(&mut self, conn: ConnId, p: Packet<'_>) -> Flow {
        let Some(c) = self.conns.get(&conn) else {
            return Flow::Closed;
        };
        if self.config.verbose && !matches!(p, Packet::Connect(_) | Packet::Publish(_)) {
            let line = log::received(&c.client_id, &p);
            self.events.push_back(Event::Log(line));
        }
        let sid = match (c.state, &p) {
            (ConnState::AwaitingConnect, Packet::Connect(connect)) => {
                return self.on_connect(conn, connect)
            }
            (ConnState::AwaitingConnect, _) => {
                // MQTT-3.1.0-1: the first packet must be CONNECT.
                let label = c.peer.clone();
                self.log(|| {
                    format!(
                        "Socket from {label} sent {} before CONNECT, disconnecting.",
                        p.name()
                    )
                });
                self.close(conn, CloseReason::ProtocolError);
                return Flow::Closed;
            }
            (ConnState::Active(sid), _) => sid,
        };
        match p {
            Packet::Publish(publish) => {
                if self.publish_refused(conn, &publish) {
                    return Flow::Closed;
                }
                self.on_publish(conn, sid, &publish)
            }
            Packet::PubAck(id) => self.on_ack(sid, id, Ack::PubAck),
            Packet::PubRec(id) => self.on_pubrec(conn, sid, id),
            Packet::PubRel(id) => {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.incoming_qos2.on_pubrel(id);
                }
                self.record_session(sid, || RecordArgs::Id(IdEvent::Qos2Released, id));
                // Answer even an unknown id, so the client can finish (MQTT-4.3.3).
                self.send(conn, &Packet::PubComp(id));
            }
            Packet::PubComp(id) => self.on_ack(sid, id, Ack::PubComp),
            Packet::Subscribe(s) => return self.on_subscribe(conn, sid, &s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(conn, sid, &u),
            Packet::PingReq => self.send(conn, &Packet::PingResp),
            Packet::Disconnect => {
                self.close(conn, CloseReason::Disconnect);
                return Flow::Closed;
            }
            Packet::Connect(_) => {
                // MQTT-3.1.0-2: a second CONNECT is a protocol violation.
                self.close(conn, CloseReason::ProtocolError);
                return Flow::Closed;
            }
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.close(conn, CloseReason::ProtocolError);
                return Flow::Closed;
            }
        }
        Flow::Open
    }

    /// CONNACK 5 and close, worded as mosquitto logs it: the CONNACK goes "to" the peer's address
    /// (there is no client id yet), then "Client <unknown> disconnected, not authorised.".
    fn refuse_not_authorised(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.client_id = log::peer_host(&c.peer).to_string();
        }
        self.refuse_connect(conn, ConnectReturnCode::NotAuthorized);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.client_id = String::from("<unknown>");
        }
        self.close(conn, CloseReason::NotAuthorised);
    }

    /// Whether session `sid`'s client may read or write `topic` (the ACL; always without one).
    fn may(&self, sid: SessionId, topic: &str, access: Access) -> bool {
        if self.security.acl.is_none() {
            return true;
        }
        self.sessions.get(&sid).is_some_and(|s| {
            self.security
                .allows(&s.client_id, s.username.as_deref(), topic, access)
        })
    }

    fn may_subscribe(&self, sid: SessionId, filter: &str) -> bool {
        if self.security.acl.is_none() {
            return true;
        }
        self.sessions.get(&sid).is_some_and(|s| {
            self.security
                .can_subscribe(&s.client_id, s.username.as_deref(), filter)
        })
    }

    fn refuse_connect(&mut self, conn: ConnId, code: ConnectReturnCode) {
        self.send(
            conn,
            &Packet::ConnAck(ConnAck {
                session_present: false,
                code,
            }),
        );
    }

    fn on_connect(&mut self, conn: ConnId, c: &Connect<'_>) -> Flow {
        if self.connect_refused(conn, c) {
            return Flow::Closed;
        }
        // The user name: a certificate's CN where the listener says so (mosquitto's
        // `use_identity_as_username`, which also skips the password and anonymous checks), else
        // CONNECT's.
        let identity = self.conns.get(&conn).map(|cn| cn.identity.clone());
        let (username, by_certificate) = match identity {
            Some(Identity::Certificate(name)) => (Some(name), true),
            Some(Identity::Missing) => {
                self.refuse_connect(conn, ConnectReturnCode::BadUserNameOrPassword);
                self.close(conn, CloseReason::Refused);
                return Flow::Closed;
            }
            _ => (c.username.map(ToString::to_string), false),
        };
        if !by_certificate
            && !self
                .security
                .authenticate(self.config.allow_anonymous, c.username, c.password)
        {
            self.refuse_not_authorised(conn);
            return Flow::Closed;
        }
        let client_id = if c.client_id.is_empty() {
            if !c.clean_session {
                // MQTT-3.1.3-8
                self.refuse_connect(conn, ConnectReturnCode::IdentifierRejected);
                self.close(conn, CloseReason::Refused);
                return Flow::Closed;
            }
            // Deterministic, unlike mosquitto's random ids: the simulator replays byte for byte.
            // Skips an id a client chose for itself.
            loop {
                let id = format!("auto-{:016X}", self.next_auto_id);
                self.next_auto_id += 1;
                if !self.by_client_id.contains_key(&id) {
                    break id;
                }
            }
        } else {
            c.client_id.to_string()
        };

        if self.keepalive_refused(conn, c, &client_id) {
            return Flow::Closed;
        }

        // Session takeover (MQTT-3.1.4-2): the old connection goes, its will is published.
        if let Some(&old_sid) = self.by_client_id.get(&client_id) {
            if let Some(old_conn) = self.sessions.get(&old_sid).and_then(|s| s.conn) {
                self.notice(|| {
                    format!("Client {client_id} already connected, closing old connection.")
                });
                // Unless both sides keep the session (clean session 0 on the old and the new
                // connection): then the session goes on and the will is not sent, as mosquitto
                // decides (handle_connect.c:193-198).
                let old_persistent = self.sessions.get(&old_sid).is_some_and(|s| !s.clean);
                if old_persistent && !c.clean_session {
                    if let Some(oc) = self.conns.get_mut(&old_conn) {
                        oc.will = None;
                    }
                }
                self.close(old_conn, CloseReason::TakenOver);
            }
        }
        if c.clean_session {
            if let Some(old_sid) = self.by_client_id.get(&client_id).copied() {
                self.destroy_session(old_sid);
            }
        }
        let (sid, session_present) = match self.by_client_id.get(&client_id) {
            Some(&sid) => (sid, true),
            None => {
                let sid = self.next_session;
                self.next_session += 1;
                self.sessions
                    .insert(sid, Session::new(client_id.clone(), c.clean_session));
                self.by_client_id.insert(client_id.clone(), sid);
                self.record_session(sid, || RecordArgs::Session);
                (sid, false)
            }
        };
        let mut username_changed = false;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.conn = Some(conn);
            s.clean = c.clean_session;
            username_changed = s.username != username;
            s.username = username.clone();
        }
        if username_changed {
            // Deliveries to the session while it is offline are checked against the ACL under
            // this name, after a restart too.
            self.record_session(sid, || RecordArgs::User);
        }
        if session_present && !c.clean_session {
            // "Session present" promises a session a power cut must not take back: the record
            // that created it (from an earlier connection) must be durable first.
            self.hold_for_journal(conn);
        }
        let keepalive_grace = Duration::from_millis(u64::from(c.keep_alive_s) * 1_500);
        let Some(cn) = self.conns.get_mut(&conn) else {
            return Flow::Closed;
        };
        cn.state = ConnState::Active(sid);
        cn.client_id = client_id.clone();
        cn.username = username.clone();
        cn.password = c.password.map(<[u8]>::to_vec);
        cn.keepalive_grace = keepalive_grace;
        cn.will = c.will.map(|w| OwnedWill {
            topic: w.topic.to_string(),
            payload: w.payload.to_vec(),
            qos: w.qos,
            retain: w.retain,
        });
        let deadline = if keepalive_grace == Duration::ZERO {
            None
        } else {
            Some(cn.last_rx + keepalive_grace)
        };
        cn.timer_at = deadline;
        let peer = cn.peer.clone();
        if let Some(d) = deadline {
            self.timers.push(Reverse((d, conn)));
        }
        // Any previous connection of this client id was closed above, which counted it out.
        self.stats.clients_connected += 1;
        self.stats.clients_maximum = self.stats.clients_maximum.max(self.stats.clients_connected);
        if self.logs_notices() {
            // mosquitto names the address here without the listener ("from 1.2.3.4:5 as id").
            let peer = peer.split(" on port ").next().unwrap_or_default();
            let p = if c.protocol == Protocol::V311 { 2 } else { 1 };
            let mut line = format!(
                "New client connected from {peer} as {client_id} (p{p}, c{}, k{}",
                u8::from(c.clean_session),
                c.keep_alive_s
            );
            if let Some(u) = &username {
                line.push_str(&format!(", u'{u}'"));
            }
            line.push_str(").");
            self.events.push_back(Event::Log(line));
        }
        if self.config.verbose {
            let will_line = match &c.will {
                None => String::from("No will message specified."),
                Some(w) => format!(
                    "Will message specified ({} bytes) (r{}, q{}).\n\t{}",
                    w.payload.len(),
                    u8::from(w.retain),
                    w.qos.as_u8(),
                    w.topic
                ),
            };
            self.events.push_back(Event::Log(will_line));
        }
        self.send(
            conn,
            &Packet::ConnAck(ConnAck {
                // 3.1 has no session-present flag: mosquitto sets it for 3.1.1 only
                // (handle_connect.c:135-137).
                session_present: session_present && c.protocol == Protocol::V311,
                code: ConnectReturnCode::Accepted,
            }),
        );
        // Redeliver what was in flight, in its original order (MQTT-4.4.0-1, MQTT-4.6.0-1..4).
        self.resend_inflight(conn, sid);
        self.pump(sid);
        Flow::Open
    }

    fn on_publish(&mut self, conn: ConnId, sid: SessionId, p: &Publish<'_>) {
        self.stats.publish_received += 1;
        if p.qos == QoS::AtMostOnce && self.paused_input_full(conn) {
            // A paused publisher that went on past its budget: its QoS 0 is dropped rather than
            // its socket left unread (QoS 1/2 from it waits undecoded: `input_over_budget`).
            self.stats.messages_dropped += 1;
            let id = self.client_label(conn);
            let t = p.topic.to_string();
            self.log(|| {
                format!(
                    "Dropped QoS 0 PUBLISH from {id} to '{t}': paused for a slow subscriber, \
                     over max_paused_input_bytes."
                )
            });
            return;
        }
        let limit = self.config.message_size_limit_bytes;
        let too_big = limit != 0 && p.payload.len() > limit;
        let deliver = match p.qos {
            QoS::AtMostOnce => true,
            QoS::AtLeastOnce => true,
            QoS::ExactlyOnce => match self.sessions.get_mut(&sid) {
                // A duplicate of an id not yet released is acknowledged, not delivered again.
                Some(s) => s.incoming_qos2.on_publish(p.pkid),
                None => false,
            },
        };
        if deliver && p.qos == QoS::ExactlyOnce {
            self.record_session(sid, || RecordArgs::Id(IdEvent::Qos2In, p.pkid));
        } else if p.qos == QoS::ExactlyOnce && self.sessions.get(&sid).is_some_and(|s| !s.clean) {
            // A duplicate appends nothing, but its PUBREC acknowledges the first copy's records,
            // which may not be durable yet: it waits for them too (the write-ahead rule).
            self.hold_for_journal(conn);
        }
        // As in mosquitto, a denied PUBLISH is logged as that instead of as received, and
        // acknowledged as usual below.
        let denied = topic::reserved_for_broker(p.topic) || !self.may(sid, p.topic, Access::Write);
        if self.config.verbose {
            let id = self.client_label(conn);
            let verb = if denied { "Denied" } else { "Received" };
            let line = format!("{verb} PUBLISH from {id} {}", log::publish_details(p));
            self.events.push_back(Event::Log(line));
        }
        let mark = self.output_mark(conn);
        if deliver {
            if denied {
                // Not routed, not retained.
            } else if too_big {
                self.stats.messages_dropped += 1;
                let id = self.client_label(conn);
                let (n, t) = (p.payload.len(), p.topic.to_string());
                self.log(|| {
                    format!(
                        "Dropped PUBLISH from {id} to '{t}': {n} bytes exceeds message_size_limit."
                    )
                });
            } else {
                // A persistent publisher's QoS 2 message is forwarded to nobody before the
                // broker will remember having received it: after a power cut, the publisher's
                // resend would otherwise be taken for a new message and forwarded again.
                let forward_after = if p.qos == QoS::ExactlyOnce
                    && self.sessions.get(&sid).is_some_and(|s| !s.clean)
                {
                    self.journal_end()
                } else {
                    0
                };
                let msg = Arc::new(Message {
                    topic: p.topic.to_string(),
                    payload: p.payload.to_vec(),
                    forward_after,
                });
                if p.retain {
                    self.retain(&msg, p.qos);
                }
                self.publishing = Some((conn, sid));
                self.route(&msg, p.qos);
                self.publishing = None;
            }
        }
        let ack = match p.qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => Packet::PubAck(p.pkid),
            QoS::ExactlyOnce => Packet::PubRec(p.pkid),
        };
        let size = Packet::Publish(*p).encoded_len().unwrap_or(0);
        match self.conns.get_mut(&conn) {
            // Backpressure: the acknowledgement waits until the subscribers have drained, and
            // behind any withheld before it (acknowledgements in the order of their PUBLISHes).
            Some(c) if !c.blocked_on.is_empty() || !c.deferred_acks.is_empty() => {
                c.deferred_acks.push_back(ack);
                c.deferred_bytes += size;
            }
            // QoS 2: PUBREC before the copy to the publisher's own subscription; QoS 1: PUBACK
            // after it. Both as mosquitto sends them (handle_publish.c:332-360).
            _ if p.qos == QoS::ExactlyOnce => self.send_at(conn, mark, &ack),
            _ => self.send(conn, &ack),
        }
    }

    /// `conn` is a paused publisher whose withheld acknowledgements cover
    /// `max_paused_input_bytes` (or every packet id).
    fn paused_input_full(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            !c.blocked_on.is_empty()
                && (c.deferred_bytes >= self.config.max_paused_input_bytes
                    || c.deferred_acks.len() >= limits::INFLIGHT_CEILING_MESSAGES)
        })
    }

    fn on_subscribe(&mut self, conn: ConnId, sid: SessionId, sub: &Subscribe<'_>) -> Flow {
        let n = sub.filters.len();
        if n > limits::SUBSCRIBE_FILTERS_MAX {
            let id = self.client_label(conn);
            self.log(|| {
                format!(
                    "Client {id} sent {n} filters in one SUBSCRIBE (max {}).",
                    limits::SUBSCRIBE_FILTERS_MAX
                )
            });
            self.close(conn, CloseReason::ProtocolError);
            return Flow::Closed;
        }
        let mut codes = Vec::with_capacity(n);
        let mut granted = Vec::with_capacity(n);
        for (filter, qos) in sub.filters.iter() {
            if !topic::valid_topic_filter(filter) || !self.may_subscribe(sid, filter) {
                codes.push(SUBACK_FAILURE);
                continue;
            }
            self.tree.insert(filter, sid, qos);
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.subs.insert(filter.to_string(), qos);
                let id = s.client_id.clone();
                self.log(|| format!("{id} {} {filter}", qos.as_u8()));
            }
            self.record_session(sid, || RecordArgs::Sub(filter.to_string(), qos));
            codes.push(qos.as_u8());
            granted.push((filter, qos));
        }
        self.send(
            conn,
            &Packet::SubAck(SubAck {
                pkid: sub.pkid,
                codes: &codes,
            }),
        );
        // Retained messages for each new or renewed subscription (MQTT-3.3.1-6, MQTT-3.8.4-3),
        // sent with RETAIN set (MQTT-3.3.1-8).
        let mut hits: Vec<(QoS, Arc<Message>)> = Vec::new();
        for (filter, qos) in granted {
            for (t, r) in &self.retained {
                if topic::matches(filter, t) && self.may(sid, t, Access::Read) {
                    hits.push((self.outgoing_qos(r.qos, qos), r.msg.clone()));
                }
            }
        }
        for (qos, msg) in hits {
            self.deliver(sid, &msg, qos, Retain::Yes);
        }
        Flow::Open
    }

    fn on_unsubscribe(&mut self, conn: ConnId, sid: SessionId, u: &Unsubscribe<'_>) {
        for filter in u.topics.iter() {
            self.tree.remove(filter, sid);
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.subs.remove(filter);
            }
            self.record_session(sid, || RecordArgs::Unsub(filter.to_string()));
        }
        self.send(conn, &Packet::UnsubAck(UnsubAck { pkid: u.pkid }));
    }

    // ----- closing -----

    /// Closes `conn`: detaches its session (destroyed if clean), publishes the will unless the
    /// client said DISCONNECT, and (unless the socket is already gone) asks the caller to close it
    /// once the bytes still pending for it, a refusing CONNACK say, are written.
    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        c.rx.clear();
        let id = c.client_id.clone();
        let state = c.state;
        let will = c.will.take();
        let username = c.username.clone();
        let peer = c.peer.clone();
        let blocked_on = core::mem::take(&mut c.blocked_on);
        match reason {
            CloseReason::Disconnect => self.notice(|| format!("Client {id} disconnected.")),
            CloseReason::SocketClosed => {
                self.notice(|| format!("Client {id} closed its connection."))
            }
            CloseReason::KeepAliveTimeout => {
                self.notice(|| format!("Client {id} has exceeded timeout, disconnecting."))
            }
            CloseReason::ConnectTimeout => self
                .notice(|| format!("Client {peer} did not send CONNECT in time, disconnecting.")),
            CloseReason::ProtocolError => {
                self.notice(|| format!("Client {id} disconnected due to protocol error."))
            }
            CloseReason::NotAuthorised => {
                self.notice(|| format!("Client {id} disconnected, not authorised."))
            }
            CloseReason::TakenOver | CloseReason::Refused => {}
        }
        if reason == CloseReason::SocketClosed {
            self.conns.remove(&conn);
        } else {
            self.events.push_back(Event::Close(conn));
        }
        for sid in blocked_on {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.blocking.remove(&conn);
            }
        }
        if let ConnState::Active(sid) = state {
            // Offline, the queue bound drops instead of blocking: let the publishers go.
            self.release_blocked(sid, Release::Now);
            let clean = match self.sessions.get_mut(&sid) {
                Some(s) if s.conn == Some(conn) => {
                    s.conn = None;
                    s.clean
                }
                _ => false,
            };
            if clean {
                self.destroy_session(sid);
            }
            self.stats.clients_connected = self.stats.clients_connected.saturating_sub(1);
        }
        if reason != CloseReason::Disconnect && reason != CloseReason::NotAuthorised {
            if let Some(w) = will.filter(|w| {
                let denied = topic::reserved_for_broker(&w.topic)
                    || !self
                        .security
                        .allows(&id, username.as_deref(), &w.topic, Access::Write);
                if denied {
                    let t = w.topic.clone();
                    self.log(|| format!("Denied will of {id} to '{t}'."));
                }
                !denied
            }) {
                let msg = Arc::new(Message {
                    topic: w.topic,
                    payload: w.payload,
                    forward_after: 0,
                });
                if w.retain {
                    self.retain(&msg, w.qos);
                }
                self.route(&msg, w.qos);
            }
        }
    }

    fn destroy_session(&mut self, sid: SessionId) {
        self.release_blocked(sid, Release::Now);
        self.record_session(sid, || RecordArgs::SessionGone);
        let Some(s) = self.sessions.remove(&sid) else {
            return;
        };
        for filter in s.subs.keys() {
            self.tree.remove(filter, sid);
        }
        if self.by_client_id.get(&s.client_id) == Some(&sid) {
            self.by_client_id.remove(&s.client_id);
        }
    }

    // ----- sending -----

    fn client_label(&self, conn: ConnId) -> String {
        self.conns
            .get(&conn)
            .map(|c| c.client_id.clone())
            .unwrap_or_else(|| String::from("<unknown>"))
    }

    /// A line `mosquitto -v` prints (mosquitto's debug level).
    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.config.verbose {
            self.events.push_back(Event::Log(line()));
        }
    }

    fn logs_notices(&self) -> bool {
        self.config.verbose || self.config.log_notices
    }

    /// A line mosquitto prints at notice level, without `-v` too: connections coming and going.
    fn notice(&mut self, line: impl FnOnce() -> String) {
        if self.logs_notices() {
            self.events.push_back(Event::Log(line()));
        }
    }

    fn send_publish(
        &mut self,
        conn: ConnId,
        msg: &Message,
        qos: QoS,
        retain: Retain,
        dup: Dup,
        pkid: u16,
    ) {
        let p = Publish {
            dup: dup == Dup::Yes,
            qos,
            retain: retain.flag(),
            topic: &msg.topic,
            pkid,
            payload: &msg.payload,
        };
        self.stats.publish_sent += 1;
        self.send(conn, &Packet::Publish(p));
        // Looked up only while the journal is behind (never with persistence off): this runs
        // for every PUBLISH sent.
        let persistent = || {
            self.conns.get(&conn).is_some_and(|c| match c.state {
                ConnState::Active(sid) => self.sessions.get(&sid).is_some_and(|s| !s.clean),
                ConnState::AwaitingConnect => false,
            })
        };
        if qos == QoS::ExactlyOnce && self.journal_behind() && persistent() {
            // A QoS 2 packet identifier must be remembered across a crash before the client
            // sees it, or a resumed session could deliver it twice under another identifier.
            self.hold_for_journal(conn);
        }
        self.hold_until(conn, msg.forward_after);
    }

    /// Encodes `p` onto `conn`'s outgoing bytes.
    fn send(&mut self, conn: ConnId, p: &Packet<'_>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing && !matches!(p, Packet::ConnAck(_)) {
            return;
        }
        // Every packet the broker builds is valid by construction, so encoding cannot fail; if it
        // ever did, the packet is skipped and logged rather than sending garbage.
        if let Err(e) = codec::encode_to_vec(p, &mut c.tx) {
            let id = c.client_id.clone();
            let name = p.name();
            self.log(|| format!("Internal error encoding {name} for {id}: {e}"));
            return;
        }
        self.stats.messages_sent += 1;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push_back(conn);
        }
        if !c.out_full && c.tx.len() + c.unsent_bytes > self.config.max_outgoing_bytes {
            c.out_full = true;
            if !c.read_paused {
                c.read_paused = true;
                self.events.push_back(Event::PauseRead(conn));
            }
        }
        if self.config.verbose {
            let line = log::sending(&c.client_id, p);
            self.events.push_back(Event::Log(line));
        }
    }
}

impl Endpoint for Broker {
    type Conn = ConnId;
    type Event = Event;
    fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        Broker::handle_bytes(self, now, conn, data);
    }
    fn handle_sent(&mut self, now: Instant, conn: ConnId, n: usize) {
        Broker::handle_sent(self, now, conn, n);
    }
    fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        Broker::handle_closed(self, now, conn);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Broker::handle_timeout(self, now);
    }
    fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output<ConnId, Event> {
        Broker::poll_output(self, buf)
    }
}

#[cfg(test)]
mod tests;
