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
mod close;
mod config;
mod conformance;
mod connect;
mod file;
mod identity;
mod inbound;
mod listener;
mod log;
mod peer;
mod persist;
mod route;
mod scan;
mod security;
mod session;
mod sys;

use peer::Peer;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::codec::{
    self, ConnectReturnCode, Dialect, FeedStop, FrameBuffer, Packet, Protocol, Publish, QoS, Take,
};
use crate::driver::{Endpoint, Output};
use crate::time::{Duration, Instant};
use crate::topic::SubscriptionTree;

pub use acl::{Access, AclFile};
#[cfg(feature = "auth")]
pub use auth::PasswordFile;
pub use config::{Config, ConfigError, Profile};
pub use file::{file_lines, FileError};
pub use identity::Identity;
use listener::ListenerState;
pub use listener::{ListenerId, ListenerSecurity};
use persist::Journal;
pub use persist::{Damage, JournalWrite, Lsn, Recovery, RestoreError};
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
    /// Control packets of any type decoded from clients (`$SYS/broker/messages/received`).
    pub messages_received: u64,
    /// Control packets of any type encoded for clients (`$SYS/broker/messages/sent`).
    pub messages_sent: u64,
    /// PUBLISH packets received from clients, QoS 0 to 2, duplicates included.
    pub publish_received: u64,
    /// PUBLISH packets sent to subscribers, re-sends included.
    pub publish_sent: u64,
    /// Messages not delivered to a subscriber because a bound was reached (queue full, QoS 0 to
    /// a backed-up connection, over `message_size_limit`, retained store full).
    pub messages_dropped: u64,
    /// Bytes read from every connection (handed to [`Broker::handle_bytes`]).
    pub bytes_received: u64,
    /// Bytes taken by the caller through [`Broker::poll_transmit`].
    pub bytes_sent: u64,
    /// Clients connected now (CONNECT accepted, not yet closed).
    pub clients_connected: u64,
    /// The most clients connected at once since the broker started.
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

/// A connection's login: see `Conn::login`.
#[derive(Debug, Default)]
struct Login {
    /// Where the user name comes from (a TLS client certificate, or CONNECT).
    identity: Identity,
    username: Option<String>,
    password: Option<Box<[u8]>>,
}

#[derive(Debug)]
struct Conn {
    peer: Peer,
    state: ConnState,
    /// One allocation shared with the session and the broker's index by client id.
    client_id: Arc<str>,
    /// Where the user name comes from, and CONNECT's user name and password (kept to check
    /// again when the password file is reloaded, as mosquitto does). Boxed, and absent for the
    /// usual anonymous client over plain TCP.
    login: Option<Box<Login>>,
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
    /// Boxed: most clients have none.
    will: Option<Box<OwnedWill>>,
    /// The deadline of this connection's live entry in the timer heap.
    timer_at: Option<Instant>,
    /// Closed by the broker; kept until its last bytes are taken and [`Event::Close`] is polled.
    closing: bool,
    /// Paused as a publisher (backpressure): what it waits for and what it is owed. Rare, so
    /// boxed and only while in use: an idle connection pays one word for it.
    withheld: Option<Box<Withheld>>,
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
    /// The listener it came through, when the caller said ([`Broker::handle_accept_on`]).
    listener: Option<ListenerId>,
}

/// A connection paused as a publisher (backpressure): until every session in `blocked_on` has
/// drained, its PUBACKs / PUBRECs are withheld (its own in-flight window then stops it) while
/// the rest of its input is read and handled as usual.
#[derive(Debug, Default)]
struct Withheld {
    /// The sessions it fed past their queue bound.
    blocked_on: BTreeSet<SessionId>,
    /// PUBACK / PUBREC withheld while paused, in the order of their PUBLISHes; sent on resume.
    /// Later ones queue behind them, so acknowledgements never overtake each other.
    deferred_acks: VecDeque<Packet<'static>>,
    /// Bytes of the QoS 1/2 PUBLISH packets behind `deferred_acks`.
    deferred_bytes: usize,
    /// The packet ids of `deferred_acks`: a PUBLISH with one of them is a resend of a message
    /// already taken (the client may not reuse an id before its acknowledgement), absorbed.
    withheld_ids: BTreeSet<u16>,
}

#[derive(Debug)]
struct Retained {
    qos: QoS,
    msg: Arc<Message>,
}

impl Conn {
    fn identity(&self) -> &Identity {
        static FROM_CONNECT: Identity = Identity::FromConnect;
        self.login.as_ref().map_or(&FROM_CONNECT, |l| &l.identity)
    }
    fn username(&self) -> Option<&str> {
        self.login.as_ref().and_then(|l| l.username.as_deref())
    }
    fn password(&self) -> Option<&[u8]> {
        self.login.as_ref().and_then(|l| l.password.as_deref())
    }
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
    /// Boxed: a B-tree node holds 11 entries and is often half full, so the records themselves
    /// stay out of it (an idle connection then costs one record, not two).
    conns: BTreeMap<ConnId, Box<Conn>>,
    next_conn: ConnId,
    sessions: BTreeMap<SessionId, Box<Session>>,
    by_client_id: BTreeMap<Arc<str>, SessionId>,
    next_session: SessionId,
    next_auto_id: u64,
    tree: SubscriptionTree<SessionId>,
    retained: BTreeMap<String, Retained>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    next_sys: Option<Instant>,
    /// The next autosave (`autosave_interval`, with persistence), see `scan.rs`.
    next_autosave: Option<Instant>,
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
    /// Listeners with their own security ([`Broker::set_listener_security`]).
    listeners: BTreeMap<ListenerId, ListenerState>,
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
        let next_autosave = journal.autosave().then(|| now + config.autosave_interval);
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
            next_autosave,
            dirty: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            matches: Vec::new(),
            publishing: None,
            to_resume: VecDeque::new(),
            journal,
            held: Vec::new(),
            security: Security::default(),
            listeners: BTreeMap::new(),
        };
        // `$SYS` values exist (retained) from the start, not only after the first interval.
        b.handle_timeout(now);
        Ok(b)
    }

    /// The settings the broker was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The counters behind `$SYS`, current (not only as last published).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Open connections, CONNECT received or not, including those closing.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
    /// Sessions held: of connected clients, and persistent ones (clean session 0) offline.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
    /// Topics with a retained message, `$SYS` topics included.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }
    /// (filter, session) subscription pairs over every session.
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
        Some((s.queue_peak_messages as usize, s.queue_peak_bytes as usize))
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
        self.recheck_logins(None);
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
        self.accept(peer, identity, None)
    }

    fn accept(
        &mut self,
        peer: &str,
        identity: Identity,
        listener: Option<ListenerId>,
    ) -> Option<ConnId> {
        if self.conns.len() >= self.config.max_connections {
            self.notice(|| format!("Refusing connection from {peer}: max_connections reached."));
            return None;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let deadline = self.now + self.config.connect_timeout;
        self.conns.insert(
            id,
            Box::new(Conn {
                peer: Peer::new(peer),
                state: ConnState::AwaitingConnect,
                client_id: Arc::from("<unknown>"),
                login: match identity {
                    Identity::FromConnect => None,
                    identity => Some(Box::new(Login {
                        identity,
                        ..Login::default()
                    })),
                },
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
                withheld: None,
                input_full: false,
                out_full: false,
                read_paused: false,
                tx_needs: 0,
                held: false,
                listener,
            }),
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
        let mut now_v31 = false;
        let fed = rx.feed_or_keep(data, max, |p| {
            if self.input_over_budget(conn, &p) {
                return Take::Keep(Flow::Open);
            }
            let v31 = matches!(&p, Packet::Connect(c) if c.protocol == Protocol::V31);
            self.stats.messages_received += 1;
            let journal_at = self.journal.end;
            let flow = self.handle_packet(conn, p);
            if self.journal.end > journal_at {
                // What this packet is answered with acknowledges what it recorded.
                self.hold_for_journal(conn);
            }
            match flow {
                Flow::Closed => Take::Stop(Flow::Closed),
                // An MQTT 3.1 client, accepted: what follows is decoded under 3.1's flag rules.
                Flow::Open if v31 => {
                    now_v31 = true;
                    Take::Stop(Flow::Open)
                }
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
                    if now_v31 {
                        c.rx.set_dialect(Dialect::V31);
                        self.drive_rx(conn, &[]);
                    }
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
        if self.is_withheld_resend(conn, publish) {
            return false; // costs nothing: absorbed (`on_publish`)
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
            if c.withheld.as_ref().is_none_or(|w| w.blocked_on.is_empty()) {
                c.input_full = false;
                let acks = c
                    .withheld
                    .take()
                    .map(|w| w.deferred_acks)
                    .unwrap_or_default();
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
            Some(c) if c.closing => self.forget_conn(conn),
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
                    match self.config.keepalive_check_period {
                        Duration::ZERO => Some(c.last_rx + c.keepalive_grace),
                        p => Some(scan::keepalive_scan_deadline(
                            c.last_rx,
                            c.keepalive_grace,
                            p,
                        )),
                    }
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
        self.autosave_due();
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

    /// The next thing the broker asks of the caller (close or pause a connection, a log line),
    /// oldest first; `None` when there is none. Drain after [`Broker::poll_transmit`], so a close
    /// comes after the bytes it must not cut off.
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Event::Close(conn) = ev {
            self.forget_conn(conn);
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
        [t, self.next_sys, self.next_autosave]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- sending -----

    fn client_label(&self, conn: ConnId) -> Arc<str> {
        self.conns
            .get(&conn)
            .map(|c| c.client_id.clone())
            .unwrap_or_else(|| Arc::from("<unknown>"))
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
