//! A sans-IO, seeded, deterministic model of one TCP connection (both directions).
//!
//! Contract (quinn-proto / str0m style):
//! - inputs are `handle_*(now, ..)`, plus the fault setters `set_partition` / `set_dead`;
//! - after every input, drain [`Link::poll_output`] until it returns `None`;
//! - [`Link::poll_timeout`] is the next instant at which to call [`Link::handle_timeout`];
//!   a spurious or early `handle_timeout` is a no-op, an older `now` counts as the newest seen;
//! - nothing here panics on any input, reads a clock or draws randomness other than the
//!   caller-seeded `ChaCha8Rng`.
//!
//! Every scheduled event is processed at its own instant (not at the `now` of the call that
//! reached it), so outputs carry exact simulated times whatever the caller's time resolution.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use mqsim::time::{Duration, Instant};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Direction of a byte stream: `Up` is client → server, `Down` is server → client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    Up,
    Down,
}

impl Dir {
    pub fn opposite(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
    /// The side that sends in this direction.
    pub fn sender(self) -> Side {
        match self {
            Dir::Up => Side::Client,
            Dir::Down => Side::Server,
        }
    }
    /// The side that receives in this direction.
    pub fn receiver(self) -> Side {
        self.sender().peer()
    }
    fn idx(self) -> usize {
        match self {
            Dir::Up => 0,
            Dir::Down => 1,
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::Up => "up",
            Dir::Down => "down",
        })
    }
}

/// One end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    /// The direction in which this side sends.
    pub fn sending(self) -> Dir {
        match self {
            Side::Client => Dir::Up,
            Side::Server => Dir::Down,
        }
    }
    fn idx(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}

/// Loss of each transmitted segment (data, FIN, SYN, SYN-ACK, pure ACK), per direction.
#[derive(Clone, Debug, PartialEq)]
pub enum LossModel {
    None,
    /// Independent drops with probability `loss` (0.0 ..= 1.0).
    Bernoulli {
        loss: f64,
    },
    /// Two-state bursty loss (WiFi): each transmission is lost with the current state's rate,
    /// then the state moves with the transition probabilities. Every direction starts good.
    GilbertElliott {
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

/// Parameters of one modelled TCP connection. Units are in the names.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency_ms: u64,
    /// Extra one-way delay, uniform in `0 ..= jitter_ms` (microsecond resolution), per packet.
    pub jitter_ms: u64,
    /// Largest payload of one segment.
    pub mss_bytes: usize,
    pub loss: LossModel,
    /// RFC 6298 bounds (Linux: 200 ms minimum, 1 s initial, 120 s maximum).
    pub rto_min_ms: u64,
    pub rto_initial_ms: u64,
    pub rto_max_ms: u64,
    /// Consecutive retransmission timeouts without progress before the connection resets (Linux
    /// `tcp_retries2` = 15).
    pub retries_max: u32,
    /// SYN retransmissions before connect fails (Linux `tcp_syn_retries` = 6: retries after
    /// 1, 3, 7, 15, 31, 63 s, failure at 127 s with a 1 s initial RTO).
    pub syn_retries_max: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency_ms: 5,
            jitter_ms: 0,
            mss_bytes: 1460,
            loss: LossModel::None,
            rto_min_ms: 200,
            rto_initial_ms: 1_000,
            rto_max_ms: 120_000,
            retries_max: 15,
            syn_retries_max: 6,
        }
    }
}

/// Largest values the validation accepts (keeps every sum and shift far from overflow).
pub const LATENCY_MS_MAX: u64 = 3_600_000;
pub const RTO_MS_MAX: u64 = 3_600_000;
pub const RETRIES_MAX: u32 = 64;
pub const MSS_BYTES_MAX: usize = 65_495;

fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be a probability in 0.0..=1.0, got {p}"
        ))
    }
}

impl LinkConfig {
    /// Every bad value gets its own message.
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_ms > LATENCY_MS_MAX {
            return Err(format!(
                "latency_ms must be <= {LATENCY_MS_MAX}, got {}",
                self.latency_ms
            ));
        }
        if self.jitter_ms > LATENCY_MS_MAX {
            return Err(format!(
                "jitter_ms must be <= {LATENCY_MS_MAX}, got {}",
                self.jitter_ms
            ));
        }
        if self.mss_bytes == 0 || self.mss_bytes > MSS_BYTES_MAX {
            return Err(format!(
                "mss_bytes must be in 1..={MSS_BYTES_MAX}, got {}",
                self.mss_bytes
            ));
        }
        if self.rto_min_ms == 0 {
            return Err("rto_min_ms must be > 0".into());
        }
        if self.rto_initial_ms < self.rto_min_ms {
            return Err(format!(
                "rto_initial_ms ({}) must be >= rto_min_ms ({})",
                self.rto_initial_ms, self.rto_min_ms
            ));
        }
        if self.rto_max_ms < self.rto_initial_ms || self.rto_max_ms > RTO_MS_MAX {
            return Err(format!(
                "rto_max_ms ({}) must be in rto_initial_ms ({})..={RTO_MS_MAX}",
                self.rto_max_ms, self.rto_initial_ms
            ));
        }
        if self.retries_max > RETRIES_MAX {
            return Err(format!(
                "retries_max must be <= {RETRIES_MAX}, got {}",
                self.retries_max
            ));
        }
        if self.syn_retries_max > RETRIES_MAX {
            return Err(format!(
                "syn_retries_max must be <= {RETRIES_MAX}, got {}",
                self.syn_retries_max
            ));
        }
        match self.loss {
            LossModel::None => Ok(()),
            LossModel::Bernoulli { loss } => check_probability("loss", loss),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                check_probability("p_good_to_bad", p_good_to_bad)?;
                check_probability("p_bad_to_good", p_bad_to_good)?;
                check_probability("loss_good", loss_good)?;
                check_probability("loss_bad", loss_bad)
            }
        }
    }
}

/// TCP header flags, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, name) in [
            (Self::SYN, "SYN"),
            (Self::FIN, "FIN"),
            (Self::RST, "RST"),
            (Self::PSH, "PSH"),
            (Self::ACK, "ACK"),
        ] {
            if self.has(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One packet put on the wire (lost or not), for the capture. Sequence numbers are byte-exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    pub at: Instant,
    pub dir: Dir,
    pub flags: TcpFlags,
    pub seq: u32,
    /// Zero when the ACK flag is not set.
    pub ack: u32,
    pub payload: Vec<u8>,
    pub lost: bool,
}

impl Wire {
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }
}

/// Why a connection reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// `handle_reset` (an application abort, a broker kicking a client).
    Requested,
    /// A segment in `dir` was retransmitted `retries_max` times without an ACK.
    RetriesExhausted { dir: Dir },
    /// A segment reached a host that lost power and came back: it knows no such connection
    /// and answers RST (RFC 793, "reset generation").
    PeerRebooted { side: Side },
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetReason::Requested => f.write_str("requested"),
            ResetReason::RetriesExhausted { dir } => write!(f, "retries exhausted {dir}"),
            ResetReason::PeerRebooted { side } => write!(f, "{side:?} rebooted, RST").map(|_| ()),
        }
    }
}

/// A decision of the model, for the trace. Sequence numbers are relative (first data byte = 1,
/// as Wireshark shows them); durations are in milliseconds with three fixed decimals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    SynSent {
        attempt: u32,
    },
    SynLost {
        attempt: u32,
    },
    SynAckLost {
        attempt: u32,
    },
    Established {
        rtt_us: u64,
    },
    ConnectFailed {
        attempts: u32,
    },
    SegmentLost {
        dir: Dir,
        seq: u64,
        len: usize,
        attempt: u32,
    },
    Retransmit {
        dir: Dir,
        seq: u64,
        len: usize,
        attempt: u32,
        after_us: u64,
        by: Recovery,
    },
    AckLost {
        dir: Dir,
        ack: u64,
    },
    /// A segment reached a side that had lost power: no ACK, no delivery.
    Unanswered {
        dir: Dir,
        seq: u64,
        len: usize,
    },
    FinSent {
        dir: Dir,
    },
    Reset {
        reason: ResetReason,
    },
    Partition {
        on: bool,
    },
    Dead {
        dir: Dir,
        on: bool,
    },
    Aborted {
        side: Side,
    },
}

struct Ms(u64);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}ms", self.0 / 1_000, self.0 % 1_000)
    }
}

impl fmt::Display for NetEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetEvent::SynSent { attempt } => write!(f, "syn sent attempt={attempt}"),
            NetEvent::SynLost { attempt } => write!(f, "syn lost attempt={attempt}"),
            NetEvent::SynAckLost { attempt } => write!(f, "syn-ack lost attempt={attempt}"),
            NetEvent::Established { rtt_us } => write!(f, "established rtt={}", Ms(*rtt_us)),
            NetEvent::ConnectFailed { attempts } => {
                write!(f, "connect failed after {attempts} syns")
            }
            NetEvent::SegmentLost {
                dir,
                seq,
                len,
                attempt,
            } => {
                write!(
                    f,
                    "{dir} segment lost seq={seq} len={len} attempt={attempt}"
                )
            }
            NetEvent::Retransmit {
                dir,
                seq,
                len,
                attempt,
                after_us,
                by,
            } => write!(
                f,
                "{dir} retransmit seq={seq} len={len} attempt={attempt} after={} by={by}",
                Ms(*after_us)
            ),
            NetEvent::AckLost { dir, ack } => write!(f, "{dir} ack lost ack={ack}"),
            NetEvent::Unanswered { dir, seq, len } => {
                write!(
                    f,
                    "{dir} segment unanswered (receiver down) seq={seq} len={len}"
                )
            }
            NetEvent::FinSent { dir } => write!(f, "{dir} fin sent"),
            NetEvent::Reset { reason } => write!(f, "reset: {reason}"),
            NetEvent::Partition { on } => {
                write!(f, "partition {}", if *on { "on" } else { "healed" })
            }
            NetEvent::Dead { dir, on } => {
                write!(f, "{dir} dead {}", if *on { "on" } else { "healed" })
            }
            NetEvent::Aborted { side } => write!(f, "{side} power cut"),
        }
    }
}

/// A trace line: the instant and the decision. Displays as `12.345678 <event>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetLine {
    pub at: Instant,
    pub event: NetEvent,
}

impl fmt::Display for NetLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", TraceTime(self.at), self.event)
    }
}

/// A simulated instant as the trace's lines begin with it: seconds and microseconds, `S.UUUUUU`.
pub struct TraceTime(pub Instant);

impl fmt::Display for TraceTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{:06}", us / 1_000_000, us % 1_000_000)
    }
}

/// What the link tells its caller. Drain with [`Link::poll_output`] after every input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The handshake completed (the client's connect returns).
    Established,
    /// All SYN retries were lost: the client's connect fails (timed out).
    ConnectFailed,
    /// Bytes became readable, in order, at the receiver of `dir`.
    Deliver { dir: Dir, bytes: Vec<u8> },
    /// The FIN of `dir` was delivered in order: end of stream at its receiver.
    Closed { dir: Dir },
    /// The connection is gone; both ends see an error. Nothing more happens on this link.
    Reset { reason: ResetReason },
    /// A decision, for the trace.
    Net(NetLine),
    /// A packet on the wire (lost or not), for the capture.
    Wire(Wire),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    SynSent,
    Established,
    Failed,
    Reset,
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    SynTimeout {
        attempt: u32,
    },
    SynArrive {
        attempt: u32,
    },
    SynAckArrive {
        attempt: u32,
    },
    /// `ack_off`: the cumulative ACK (of the opposite direction) the segment carries.
    SegArrive {
        dir: Dir,
        off: u64,
        ack_off: u64,
    },
    AckArrive {
        dir: Dir,
        ack_off: u64,
        sack_off: u64,
    },
    /// The connection's one retransmission timer in `dir` (PTO or RTO); stale if `gen` differs.
    Timer {
        dir: Dir,
        gen: u64,
    },
    /// RACK's reordering timer in `dir`; stale if `gen` differs.
    Rack {
        dir: Dir,
        gen: u64,
    },
}

/// Why a segment was sent again (the trace's `by=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// RFC 6298 retransmission timeout (oldest unacknowledged segment, backoff doubled).
    Rto,
    /// RFC 8985 section 7 tail-loss probe (the last segment, once per episode).
    Tlp,
    /// Loss detected from the ACKs: RFC 5681/6675 duplicate-ACK threshold or RFC 8985 RACK.
    Fast,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Recovery::Rto => "rto",
            Recovery::Tlp => "tlp",
            Recovery::Fast => "fast",
        })
    }
}

/// RFC 5681 section 3.2 / RFC 6675 DupThresh: three later segments acknowledged mark a hole lost.
const DUP_THRESH: usize = 3;
/// RFC 8985 section 7.2 (and Linux before 4.13): the PTO is at least 10 ms.
const TLP_MIN_US: u64 = 10_000;
/// RFC 8985 section 7.2 WCDelAckT: with one segment in flight the PTO also waits out the peer's
/// worst-case delayed ACK, 200 ms (Linux adds `TCP_RTO_MIN`, also 200 ms).
const WC_DEL_ACK_US: u64 = 200_000;

/// RFC 8985 RACK state: the most recently sent segment known delivered.
#[derive(Clone, Copy, Debug)]
struct RackState {
    xmit: Instant,
    end: u64,
    rtt_us: u64,
}

struct Seg {
    off: u64,
    data: Vec<u8>,
    fin: bool,
    tx_count: u32,
    first_tx: Instant,
    last_tx: Instant,
    /// Cumulatively or selectively acknowledged.
    acked: bool,
}

impl Seg {
    /// Sequence space used: payload, plus one for FIN.
    fn seq_len(&self) -> u64 {
        self.data.len() as u64 + u64::from(self.fin)
    }
    fn end(&self) -> u64 {
        self.off.saturating_add(self.seq_len())
    }
}

/// Sender and receiver state of one direction.
struct Stream {
    isn: u32,
    /// Offset of the next new segment (counts the FIN once sent).
    snd_nxt: u64,
    fin_queued: bool,
    segs: VecDeque<Seg>,
    /// Bytes and FIN accepted before the handshake completed.
    pending: Vec<u8>,
    pending_fin: bool,
    srtt_us: Option<u64>,
    rttvar_us: u64,
    ge_bad: bool,
    dead: bool,
    rcv_nxt: u64,
    ooo: BTreeMap<u64, (Vec<u8>, bool)>,
    /// RFC 6298 consecutive timeouts without progress (the exponent of the backoff).
    backoff: u32,
    /// Deadline of the running RTO (RFC 6298 5.1: started when idle, 5.3: restarted on new ACK).
    rto_at: Option<Instant>,
    /// Generation of the one armed PTO/RTO timer; older `Ev::Timer`s are stale.
    timer_gen: u64,
    /// Whether the armed timer is a probe (PTO) rather than an RTO.
    timer_pto: bool,
    /// A tail-loss probe is outstanding (RFC 8985 7.3: at most one per episode).
    tlp_out: bool,
    rack: Option<RackState>,
    min_rtt_us: Option<u64>,
    rack_gen: u64,
}

impl Stream {
    fn new(isn: u32) -> Self {
        Stream {
            isn,
            snd_nxt: 0,
            fin_queued: false,
            segs: VecDeque::new(),
            pending: Vec::new(),
            pending_fin: false,
            srtt_us: None,
            rttvar_us: 0,
            ge_bad: false,
            dead: false,
            rcv_nxt: 0,
            ooo: BTreeMap::new(),
            backoff: 0,
            rto_at: None,
            timer_gen: 0,
            timer_pto: false,
            tlp_out: false,
            rack: None,
            min_rtt_us: None,
            rack_gen: 0,
        }
    }
    fn wire_seq(&self, off: u64) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(off as u32)
    }
    fn find(&self, off: u64) -> Option<usize> {
        self.segs.binary_search_by_key(&off, |s| s.off).ok()
    }
    fn rtt_sample(&mut self, r_us: u64) {
        self.min_rtt_us = Some(self.min_rtt_us.map_or(r_us, |m| m.min(r_us)));
        // RFC 6298 2.2 / 2.3 in integer microseconds.
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r_us);
                self.rttvar_us = r_us / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(r_us);
                self.rttvar_us = (3 * self.rttvar_us + diff) / 4;
                self.srtt_us = Some((7 * srtt + r_us) / 8);
            }
        }
    }
}

/// One modelled TCP connection. See the module doc for the contract.
pub struct Link {
    cfg: LinkConfig,
    rng: ChaCha8Rng,
    now: Instant,
    state: State,
    streams: [Stream; 2],
    syn_tx_at: Instant,
    syn_attempt: u32,
    partition: bool,
    aborted: [bool; 2],
    /// An aborted side that is back up (a new host): it answers the next segment with RST.
    rebooted: [bool; 2],
    events: BTreeMap<(Instant, u64), Ev>,
    ev_counter: u64,
    out: VecDeque<Output>,
}

impl Link {
    /// A link in the idle state; ISNs are drawn from the seed. Fails on an invalid config.
    pub fn new(cfg: LinkConfig, seed: u64) -> Result<Link, String> {
        cfg.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let isn_up = rng.next_u32();
        let isn_down = rng.next_u32();
        Ok(Link {
            cfg,
            rng,
            now: Instant::ZERO,
            state: State::Idle,
            streams: [Stream::new(isn_up), Stream::new(isn_down)],
            syn_tx_at: Instant::ZERO,
            syn_attempt: 0,
            partition: false,
            aborted: [false; 2],
            rebooted: [false; 2],
            events: BTreeMap::new(),
            ev_counter: 0,
            out: VecDeque::new(),
        })
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }
    /// True after a reset or a failed connect: the link does nothing more.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, State::Reset | State::Failed)
    }
    /// The link's own clock: the latest instant it has processed.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Bytes (and FIN) sent in `dir` that the sender has not seen acknowledged yet.
    pub fn unacked(&self, dir: Dir) -> u64 {
        let s = &self.streams[dir.idx()];
        s.segs
            .iter()
            .filter(|g| !g.acked)
            .map(|g| g.seq_len())
            .sum::<u64>()
            + s.pending.len() as u64
    }
    /// The sender's current RTO for new segments in `dir`.
    pub fn rto(&self, dir: Dir) -> Duration {
        let s = &self.streams[dir.idx()];
        let min = self.cfg.rto_min_ms.saturating_mul(1_000);
        let max = self.cfg.rto_max_ms.saturating_mul(1_000);
        let us = match s.srtt_us {
            None => self.cfg.rto_initial_ms.saturating_mul(1_000),
            Some(srtt) => srtt.saturating_add(s.rttvar_us.saturating_mul(4)).max(min),
        };
        Duration::from_micros(us.min(max))
    }

    // ---- outputs -------------------------------------------------------------------------

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.events.keys().next().map(|k| k.0)
    }

    // ---- inputs --------------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// Start the handshake (client side). A second call is a no-op.
    pub fn handle_connect(&mut self, now: Instant) {
        self.advance(now);
        if self.state != State::Idle {
            return;
        }
        self.state = State::SynSent;
        self.send_syn(self.now, 0);
    }

    /// Queue `bytes` from the sender of `dir`; cut into MSS segments and sent now (no Nagle, no
    /// congestion window). Ignored after a reset, after that side's FIN or power cut.
    pub fn handle_send(&mut self, now: Instant, dir: Dir, bytes: &[u8]) {
        self.advance(now);
        if bytes.is_empty()
            || self.is_dead()
            || self.aborted[dir.sender().idx()]
            || self.streams[dir.idx()].fin_queued
        {
            return;
        }
        if self.state != State::Established {
            self.streams[dir.idx()].pending.extend_from_slice(bytes);
            return;
        }
        self.send_now(dir, bytes);
    }

    /// FIN from the sender of `dir`, after its queued bytes. A second call is a no-op.
    pub fn handle_close(&mut self, now: Instant, dir: Dir) {
        self.advance(now);
        if self.is_dead() || self.aborted[dir.sender().idx()] {
            return;
        }
        let s = &mut self.streams[dir.idx()];
        if s.fin_queued || s.pending_fin {
            return;
        }
        if self.state != State::Established {
            s.pending_fin = true;
            return;
        }
        self.send_fin(dir);
    }

    /// RST from the client now: both ends see the connection reset.
    pub fn handle_reset(&mut self, now: Instant) {
        self.advance(now);
        if self.is_dead() {
            return;
        }
        let at = self.now;
        let s = &self.streams[Dir::Up.idx()];
        let seq = s.wire_seq(s.snd_nxt);
        let lost = self.decide_loss(Dir::Up);
        self.wire(at, Dir::Up, TcpFlags::RST, seq, 0, Vec::new(), lost);
        self.reset(at, ResetReason::Requested);
    }

    /// `side` lost power: it sends nothing more and acknowledges nothing. Its peer keeps
    /// retransmitting what is outstanding and resets after `retries_max`; an idle peer waits.
    pub fn handle_abort(&mut self, now: Instant, side: Side) {
        self.advance(now);
        if self.is_dead() || self.aborted[side.idx()] {
            return;
        }
        self.aborted[side.idx()] = true;
        self.net(self.now, NetEvent::Aborted { side });
    }

    /// The powered-off `side` is running again, without any memory of this connection: the next
    /// segment that reaches it resets the connection, as a rebooted host's stack does.
    pub fn handle_reboot(&mut self, now: Instant, side: Side) {
        self.advance(now);
        if self.aborted[side.idx()] {
            self.rebooted[side.idx()] = true;
        }
    }

    /// Both directions lose every transmission while `on`.
    pub fn set_partition(&mut self, now: Instant, on: bool) {
        self.advance(now);
        if self.partition != on {
            self.partition = on;
            self.net(self.now, NetEvent::Partition { on });
        }
    }

    /// From now on, transmissions are lost by `loss` (the heal phase sets `LossModel::None`).
    pub fn set_loss(&mut self, now: Instant, loss: LossModel) {
        self.advance(now);
        self.cfg.loss = loss;
    }

    /// `dir` loses every transmission while `on` (half-open link).
    pub fn set_dead(&mut self, now: Instant, dir: Dir, on: bool) {
        self.advance(now);
        if self.streams[dir.idx()].dead != on {
            self.streams[dir.idx()].dead = on;
            self.net(self.now, NetEvent::Dead { dir, on });
        }
    }

    // ---- internals -----------------------------------------------------------------------

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let ((at, _), ev) = entry.remove_entry();
            self.process(at, ev);
        }
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.ev_counter += 1;
        self.events.insert((at, self.ev_counter), ev);
    }

    fn net(&mut self, at: Instant, event: NetEvent) {
        self.out.push_back(Output::Net(NetLine { at, event }));
    }

    #[allow(clippy::too_many_arguments)]
    fn wire(
        &mut self,
        at: Instant,
        dir: Dir,
        flags: u8,
        seq: u32,
        ack: u32,
        p: Vec<u8>,
        lost: bool,
    ) {
        self.out.push_back(Output::Wire(Wire {
            at,
            dir,
            flags: TcpFlags(flags),
            seq,
            ack,
            payload: p,
            lost,
        }));
    }

    /// Our own ACK number as the sender of `dir`: the next byte expected in the other direction.
    fn ack_for(&self, dir: Dir) -> u32 {
        let o = &self.streams[dir.opposite().idx()];
        o.wire_seq(o.rcv_nxt)
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            // Still draw, so a loss rate of 1.0 consumes the stream like any other.
            self.rng.next_u32();
            return true;
        }
        (self.rng.next_u32() as f64) < p * 4_294_967_296.0
    }

    fn decide_loss(&mut self, dir: Dir) -> bool {
        if self.partition || self.streams[dir.idx()].dead {
            return true;
        }
        match self.cfg.loss {
            LossModel::None => false,
            LossModel::Bernoulli { loss } => self.chance(loss),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let bad = self.streams[dir.idx()].ge_bad;
                let lost = self.chance(if bad { loss_bad } else { loss_good });
                let flip = self.chance(if bad { p_bad_to_good } else { p_good_to_bad });
                if flip {
                    self.streams[dir.idx()].ge_bad = !bad;
                }
                lost
            }
        }
    }

    fn delay(&mut self) -> Duration {
        let jitter_us = self.cfg.jitter_ms.saturating_mul(1_000);
        let extra = if jitter_us == 0 {
            0
        } else {
            self.rng.next_u64() % (jitter_us + 1)
        };
        Duration::from_micros(
            self.cfg
                .latency_ms
                .saturating_mul(1_000)
                .saturating_add(extra),
        )
    }

    fn syn_rto(&self, attempt: u32) -> Duration {
        let base = self.cfg.rto_initial_ms.saturating_mul(1_000);
        let us = base.saturating_mul(1u64 << attempt.min(40));
        Duration::from_micros(us.min(self.cfg.rto_max_ms.saturating_mul(1_000)))
    }

    fn send_syn(&mut self, at: Instant, attempt: u32) {
        self.syn_attempt = attempt;
        self.syn_tx_at = at;
        self.schedule(at + self.syn_rto(attempt), Ev::SynTimeout { attempt });
        if self.aborted[Side::Client.idx()] {
            return;
        }
        let seq = self.streams[Dir::Up.idx()].isn;
        let lost = self.decide_loss(Dir::Up);
        self.wire(at, Dir::Up, TcpFlags::SYN, seq, 0, Vec::new(), lost);
        self.net(
            at,
            NetEvent::SynSent {
                attempt: attempt + 1,
            },
        );
        if lost {
            self.net(
                at,
                NetEvent::SynLost {
                    attempt: attempt + 1,
                },
            );
        } else {
            let d = self.delay();
            self.schedule(at + d, Ev::SynArrive { attempt });
        }
    }

    fn send_now(&mut self, dir: Dir, bytes: &[u8]) {
        let mss = self.cfg.mss_bytes.max(1);
        for chunk in bytes.chunks(mss) {
            let off = self.streams[dir.idx()].snd_nxt;
            self.push_seg(dir, off, chunk.to_vec(), false);
        }
    }

    fn send_fin(&mut self, dir: Dir) {
        let s = &mut self.streams[dir.idx()];
        s.fin_queued = true;
        let off = s.snd_nxt;
        self.net(self.now, NetEvent::FinSent { dir });
        self.push_seg(dir, off, Vec::new(), true);
    }

    fn push_seg(&mut self, dir: Dir, off: u64, data: Vec<u8>, fin: bool) {
        let at = self.now;
        let s = &mut self.streams[dir.idx()];
        let seg = Seg {
            off,
            data,
            fin,
            tx_count: 0,
            first_tx: at,
            last_tx: at,
            acked: false,
        };
        s.snd_nxt = seg.end();
        s.segs.push_back(seg);
        self.transmit(at, dir, off, Recovery::Rto);
        // RFC 8985 7.2: (re)arm the probe after sending new data; RFC 6298 5.1: start the RTO
        // only if it is not running.
        self.arm_timer(at, dir, false);
    }

    /// The RTO for `dir` with the connection's backoff applied (RFC 6298 5.5), capped.
    fn rto_backed_off(&self, dir: Dir) -> Duration {
        let base = self.rto(dir).as_micros();
        let b = self.streams[dir.idx()].backoff.min(40);
        let max = self.cfg.rto_max_ms.saturating_mul(1_000);
        Duration::from_micros(base.saturating_mul(1u64 << b).min(max))
    }

    /// Arms the connection's one retransmission timer in `dir`: a tail-loss probe (RFC 8985
    /// 7.2) when allowed and earlier than the RTO, else the RTO (RFC 6298). Cancels it when
    /// nothing is outstanding. `restart_rto` restarts the RTO from `at` (RFC 6298 5.3).
    fn arm_timer(&mut self, at: Instant, dir: Dir, restart_rto: bool) {
        let rto = self.rto_backed_off(dir);
        let s = &mut self.streams[dir.idx()];
        s.timer_gen += 1;
        let flight = s.segs.iter().filter(|g| !g.acked).count();
        if flight == 0 {
            s.rto_at = None;
            return;
        }
        let rto_at = match s.rto_at {
            Some(t) if !restart_rto => t,
            _ => at + rto,
        };
        s.rto_at = Some(rto_at);
        let mut deadline = rto_at;
        s.timer_pto = false;
        if let (Some(srtt), false, 0) = (s.srtt_us, s.tlp_out, s.backoff) {
            let pto_us = if flight == 1 {
                srtt.saturating_mul(2).saturating_add(WC_DEL_ACK_US)
            } else {
                srtt.saturating_mul(2).max(TLP_MIN_US)
            };
            // RFC 8985 7.2 caps the PTO at the RTO, the probe then firing at the RTO instant in
            // its place (Linux too). Simplification: a probe that could only fire then is left
            // to the RTO (same segment, same instant, but the backoff doubles).
            let pto_at = at + Duration::from_micros(pto_us);
            if pto_at < rto_at {
                deadline = pto_at;
                s.timer_pto = true;
            }
        }
        let gen = s.timer_gen;
        self.schedule(deadline, Ev::Timer { dir, gen });
    }

    fn transmit(&mut self, at: Instant, dir: Dir, off: u64, by: Recovery) {
        let ack = self.ack_for(dir);
        let ack_off = self.streams[dir.opposite().idx()].rcv_nxt;
        let s = &mut self.streams[dir.idx()];
        let Some(i) = s.find(off) else { return };
        let Some(seg) = s.segs.get_mut(i) else { return };
        seg.tx_count = seg.tx_count.saturating_add(1);
        let attempt = seg.tx_count;
        let after_us = at.saturating_since(seg.last_tx).as_micros();
        seg.last_tx = at;
        let (payload, fin, len) = (seg.data.clone(), seg.fin, seg.data.len());
        let seq = s.wire_seq(off);
        let rel = off + 1;
        let lost = self.decide_loss(dir);
        let flags = TcpFlags::ACK | if fin { TcpFlags::FIN } else { TcpFlags::PSH };
        self.wire(at, dir, flags, seq, ack, payload, lost);
        if attempt > 1 {
            self.net(
                at,
                NetEvent::Retransmit {
                    dir,
                    seq: rel,
                    len,
                    attempt,
                    after_us,
                    by,
                },
            );
        }
        if lost {
            self.net(
                at,
                NetEvent::SegmentLost {
                    dir,
                    seq: rel,
                    len,
                    attempt,
                },
            );
        } else {
            let d = self.delay();
            self.schedule(at + d, Ev::SegArrive { dir, off, ack_off });
        }
    }

    fn reset(&mut self, at: Instant, reason: ResetReason) {
        self.state = State::Reset;
        self.events.clear();
        self.net(at, NetEvent::Reset { reason });
        self.out.push_back(Output::Reset { reason });
    }

    fn process(&mut self, at: Instant, ev: Ev) {
        if self.is_dead() {
            return;
        }
        match ev {
            Ev::SynTimeout { attempt } => {
                if self.state != State::SynSent || attempt != self.syn_attempt {
                    return;
                }
                if attempt >= self.cfg.syn_retries_max {
                    self.state = State::Failed;
                    self.events.clear();
                    self.net(
                        at,
                        NetEvent::ConnectFailed {
                            attempts: attempt + 1,
                        },
                    );
                    self.out.push_back(Output::ConnectFailed);
                } else {
                    self.send_syn(at, attempt + 1);
                }
            }
            Ev::SynArrive { attempt } => {
                if self.aborted[Side::Server.idx()] {
                    // A rebooted server answers a retransmitted SYN of a handshake begun with its
                    // previous life. A real host would accept it as a new connection; here that
                    // connection is bound to the old incarnation, so it is refused (RST) and the
                    // client connects again, at about the same moment.
                    if self.rebooted[Side::Server.idx()] {
                        self.reset(at, ResetReason::PeerRebooted { side: Side::Server });
                    }
                    return;
                }
                let seq = self.streams[Dir::Down.idx()].isn;
                let ack = self.streams[Dir::Up.idx()].isn.wrapping_add(1);
                let lost = self.decide_loss(Dir::Down);
                self.wire(
                    at,
                    Dir::Down,
                    TcpFlags::SYN | TcpFlags::ACK,
                    seq,
                    ack,
                    Vec::new(),
                    lost,
                );
                if lost {
                    self.net(
                        at,
                        NetEvent::SynAckLost {
                            attempt: attempt + 1,
                        },
                    );
                } else {
                    let d = self.delay();
                    self.schedule(at + d, Ev::SynAckArrive { attempt });
                }
            }
            Ev::SynAckArrive { attempt } => {
                if self.state != State::SynSent || self.aborted[Side::Client.idx()] {
                    return;
                }
                self.state = State::Established;
                let rtt_us = at.saturating_since(self.syn_tx_at).as_micros();
                // Karn: no sample from a retransmitted SYN. Latency is symmetric in this model,
                // so the client's sample seeds both directions' estimators.
                if attempt == 0 && attempt == self.syn_attempt {
                    self.streams[0].rtt_sample(rtt_us);
                    self.streams[1].rtt_sample(rtt_us);
                }
                let seq = self.streams[Dir::Up.idx()].wire_seq(0);
                let ack = self.streams[Dir::Down.idx()].wire_seq(0);
                let lost = self.decide_loss(Dir::Up);
                // A lost handshake ACK is harmless here: every data segment carries the ACK.
                self.wire(at, Dir::Up, TcpFlags::ACK, seq, ack, Vec::new(), lost);
                self.net(at, NetEvent::Established { rtt_us });
                self.out.push_back(Output::Established);
                let saved = self.now;
                self.now = at;
                for dir in [Dir::Up, Dir::Down] {
                    let pending = std::mem::take(&mut self.streams[dir.idx()].pending);
                    if !pending.is_empty() {
                        self.send_now(dir, &pending);
                    }
                    if std::mem::take(&mut self.streams[dir.idx()].pending_fin) {
                        self.send_fin(dir);
                    }
                }
                self.now = saved;
            }
            Ev::SegArrive { dir, off, ack_off } => {
                // The segment's ACK field acknowledges the opposite direction (piggyback).
                if !self.aborted[dir.receiver().idx()] {
                    self.ack_arrive(at, dir.opposite(), ack_off, u64::MAX);
                }
                self.seg_arrive(at, dir, off);
            }
            Ev::AckArrive {
                dir,
                ack_off,
                sack_off,
            } => self.ack_arrive(at, dir, ack_off, sack_off),
            Ev::Timer { dir, gen } => {
                if self.aborted[dir.sender().idx()] || self.streams[dir.idx()].timer_gen != gen {
                    return;
                }
                if self.streams[dir.idx()].timer_pto {
                    self.on_pto(at, dir);
                } else {
                    self.on_rto(at, dir);
                }
            }
            Ev::Rack { dir, gen } => {
                if self.aborted[dir.sender().idx()] || self.streams[dir.idx()].rack_gen != gen {
                    return;
                }
                self.detect_loss(at, dir);
            }
        }
    }

    /// RFC 8985 7.3: the probe retransmits the last unacknowledged segment (nothing new is ever
    /// queued here), then the RTO is armed afresh; no second probe until an ACK brings news.
    fn on_pto(&mut self, at: Instant, dir: Dir) {
        let s = &mut self.streams[dir.idx()];
        let Some(off) = s.segs.iter().rev().find(|g| !g.acked).map(|g| g.off) else {
            return;
        };
        s.tlp_out = true;
        self.transmit(at, dir, off, Recovery::Tlp);
        self.arm_timer(at, dir, true);
    }

    /// RFC 6298 5.4-5.6: retransmit the oldest unacknowledged segment, double the connection's
    /// backoff, restart the timer. Resets after `retries_max` consecutive timeouts
    /// (Linux `tcp_retries2`, counted per connection).
    fn on_rto(&mut self, at: Instant, dir: Dir) {
        let s = &mut self.streams[dir.idx()];
        let Some(off) = s.segs.iter().find(|g| !g.acked).map(|g| g.off) else {
            return;
        };
        if s.backoff >= self.cfg.retries_max {
            let seq = s.wire_seq(s.snd_nxt);
            let lost = self.decide_loss(dir);
            self.wire(at, dir, TcpFlags::RST, seq, 0, Vec::new(), lost);
            self.reset(at, ResetReason::RetriesExhausted { dir });
            return;
        }
        s.backoff += 1;
        self.transmit(at, dir, off, Recovery::Rto);
        self.arm_timer(at, dir, true);
    }

    /// RFC 8985 6.2 (RACK) with the RFC 5681/6675 DupThresh rule: an unacknowledged segment sent
    /// before the most recently sent delivered one is lost once `DUP_THRESH` segments above it
    /// are acknowledged, or once RACK.rtt + reo_wnd (min_rtt / 4) has passed since it was sent;
    /// it is retransmitted at once (no congestion window). Otherwise the reordering timer is set.
    fn detect_loss(&mut self, at: Instant, dir: Dir) {
        let s = &mut self.streams[dir.idx()];
        let Some(rack) = s.rack else { return };
        let reo_wnd = Duration::from_micros(s.min_rtt_us.unwrap_or(0) / 4);
        let rack_rtt = Duration::from_micros(rack.rtt_us);
        let mut lost = Vec::new();
        let mut next: Option<Instant> = None;
        let mut sacked_above = 0usize;
        for g in s.segs.iter().rev() {
            if g.acked {
                sacked_above += 1;
                continue;
            }
            let before = g.last_tx < rack.xmit || (g.last_tx == rack.xmit && g.end() < rack.end);
            if !before {
                continue;
            }
            let deadline = g.last_tx + rack_rtt + reo_wnd;
            if sacked_above >= DUP_THRESH || deadline <= at {
                lost.push(g.off);
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        s.rack_gen += 1;
        let gen = s.rack_gen;
        if let Some(t) = next {
            self.schedule(t, Ev::Rack { dir, gen });
        }
        if lost.is_empty() {
            return;
        }
        for off in lost.into_iter().rev() {
            self.transmit(at, dir, off, Recovery::Fast);
        }
        self.arm_timer(at, dir, false);
    }

    fn seg_arrive(&mut self, at: Instant, dir: Dir, off: u64) {
        let s = &self.streams[dir.idx()];
        // The sender still holds every segment that is not cumulatively acknowledged, so a
        // segment it no longer holds is a duplicate of bytes the receiver already has.
        let seg = s
            .find(off)
            .and_then(|i| s.segs.get(i))
            .map(|g| (g.data.clone(), g.fin));
        let len = seg.as_ref().map_or(0, |g| g.0.len());
        if self.aborted[dir.receiver().idx()] {
            if self.rebooted[dir.receiver().idx()] {
                self.reset(
                    at,
                    ResetReason::PeerRebooted {
                        side: dir.receiver(),
                    },
                );
                return;
            }
            self.net(
                at,
                NetEvent::Unanswered {
                    dir,
                    seq: off + 1,
                    len,
                },
            );
            return;
        }
        let s = &mut self.streams[dir.idx()];
        if let Some((data, fin)) = seg {
            if off.saturating_add(data.len() as u64 + u64::from(fin)) > s.rcv_nxt {
                s.ooo.entry(off).or_insert((data, fin));
            }
        }
        let mut delivered = Vec::new();
        let mut closed = false;
        while let Some(entry) = s.ooo.first_entry() {
            let o = *entry.key();
            if o > s.rcv_nxt {
                break;
            }
            let (data, fin) = entry.remove();
            let end = o + data.len() as u64;
            if end > s.rcv_nxt {
                let from = usize::try_from(s.rcv_nxt - o).unwrap_or(usize::MAX);
                delivered.extend_from_slice(data.get(from..).unwrap_or(&[]));
                s.rcv_nxt = end;
            }
            if fin && s.rcv_nxt == end {
                s.rcv_nxt = end + 1;
                closed = true;
            }
        }
        if !delivered.is_empty() {
            self.out.push_back(Output::Deliver {
                dir,
                bytes: delivered,
            });
        }
        if closed {
            self.out.push_back(Output::Closed { dir });
        }
        // A pure ACK back (no delayed ACKs): cumulative, plus the segment that triggered it.
        let back = dir.opposite();
        let ack_off = self.streams[dir.idx()].rcv_nxt;
        let ack = self.streams[dir.idx()].wire_seq(ack_off);
        let b = &self.streams[back.idx()];
        let seq = b.wire_seq(b.snd_nxt);
        let lost = self.decide_loss(back);
        self.wire(at, back, TcpFlags::ACK, seq, ack, Vec::new(), lost);
        if lost {
            self.net(
                at,
                NetEvent::AckLost {
                    dir: back,
                    ack: ack_off + 1,
                },
            );
        } else {
            let d = self.delay();
            self.schedule(
                at + d,
                Ev::AckArrive {
                    dir,
                    ack_off,
                    sack_off: off,
                },
            );
        }
    }

    fn ack_arrive(&mut self, at: Instant, dir: Dir, ack_off: u64, sack_off: u64) {
        if self.aborted[dir.sender().idx()] {
            return;
        }
        let s = &mut self.streams[dir.idx()];
        let una_before = s.segs.front().map(|g| g.off);
        let mut samples = Vec::new();
        let mut news = false;
        let min_rtt = s.min_rtt_us.unwrap_or(0);
        let mut rack = s.rack;
        for seg in s.segs.iter_mut() {
            if seg.acked {
                continue;
            }
            if seg.end() <= ack_off || seg.off == sack_off {
                seg.acked = true;
                news = true;
                let rtt = at.saturating_since(seg.last_tx).as_micros();
                // Karn: RTT samples only from segments sent once.
                if seg.tx_count == 1 {
                    samples.push(at.saturating_since(seg.first_tx).as_micros());
                }
                // RFC 8985 6.2 step 2: an ACK sooner than min_rtt after a retransmission is
                // taken for the original's (no timestamps here) and does not advance RACK.
                if seg.tx_count > 1 && rtt < min_rtt {
                    continue;
                }
                let newer = rack.is_none_or(|r| {
                    seg.last_tx > r.xmit || (seg.last_tx == r.xmit && seg.end() > r.end)
                });
                if newer {
                    rack = Some(RackState {
                        xmit: seg.last_tx,
                        end: seg.end(),
                        rtt_us: rtt,
                    });
                }
            }
        }
        s.rack = rack;
        for r in samples {
            s.rtt_sample(r);
        }
        while s
            .segs
            .front()
            .is_some_and(|g| g.acked && g.end() <= ack_off)
        {
            s.segs.pop_front();
        }
        if !news {
            return;
        }
        s.tlp_out = false;
        let advanced = s.segs.front().map(|g| g.off) != una_before;
        if advanced {
            // New data cumulatively acknowledged: the backoff ends (RFC 6298 5.7, Linux resets
            // icsk_backoff on such an ACK) and the RTO restarts (RFC 6298 5.3).
            s.backoff = 0;
        }
        self.arm_timer(at, dir, advanced);
        self.detect_loss(at, dir);
    }
}

#[cfg(test)]
mod tests;
