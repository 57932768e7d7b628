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
//!
//! The module's parts: [`config`] (what a link is given), [`trace`] (what it records: the trace's
//! decisions and the wire's packets, which the capture writes), the connection's state and its
//! public interface here, the TCP machinery in `tcp` (handshake, segments, timers, event
//! processing) and in `recovery` (arrivals, ACKs and loss recovery: RACK, TLP, RTO).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use mqsim::time::{Duration, Instant};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

pub mod config;
mod recovery;
mod tcp;
pub mod trace;

pub use config::{
    AckEvery, LinkConfig, LossModel, RtoFormula, Stack, LATENCY_US_MAX, LINUX_FIN_WAIT2_MS,
    LINUX_ORPHAN_RETRIES, LWIP_FIN_WAIT2_MS, LWIP_ORPHAN_RETRIES, MSS_BYTES_MAX, RETRIES_MAX,
    RTO_MS_MAX,
};
pub use trace::{NetEvent, NetLine, Recovery, ResetReason, TcpFlags, TraceTime, Wire};

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
    /// `side`'s stack gave up retransmitting without a RST (lwIP `TCP_MAXRTX`): its
    /// application sees the connection aborted; its peer sees nothing until it sends (then a
    /// RST, [`Output::Reset`]).
    GaveUp { side: Side },
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
    /// `side`'s FIN-WAIT-2 timer (its application closed, its FIN acknowledged).
    FinWait2 {
        side: Side,
    },
    /// The zero-window probe timer of data a local drop kept unsent with nothing in flight
    /// (Linux `tcp_probe_timer()`); stale if `gen` differs.
    Probe0 {
        dir: Dir,
        gen: u64,
    },
    /// The delayed ACK of data received in `dir`; stale if `gen` differs.
    DelAck {
        dir: Dir,
        gen: u64,
    },
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
    /// Marked lost by an RTO and waiting for the congestion window to be sent again.
    lost: bool,
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
    /// The FIN was sent (it counts in `snd_nxt`).
    fin_queued: bool,
    /// The application closed: the FIN follows once `unsent` is sent.
    fin_wanted: bool,
    /// Written by the application, not yet segmented (Nagle, the windows).
    unsent: VecDeque<u8>,
    /// Congestion window and slow-start threshold in bytes (`u64::MAX`: no congestion control).
    cwnd: u64,
    ssthresh: u64,
    /// In fast recovery until the cumulative ACK reaches this offset.
    recover: Option<u64>,
    /// First data RTO after a handshake without an RTT sample (Linux `TCP_TIMEOUT_FALLBACK`).
    rto_fallback_us: Option<u64>,
    /// Receiver side: in-order segments and bytes received and not acknowledged yet.
    ack_pending: u32,
    ack_pending_bytes: u64,
    /// Generation of the armed delayed-ACK timer; older `Ev::DelAck`s are stale.
    delack_gen: u64,
    /// Receiver side: quick ACKs left (Linux quick-ACK mode).
    quick_left: u32,
    /// Receiver side: when the last data segment arrived.
    last_rcv: Option<Instant>,
    /// Receiver side ([`Stack::pingpong_thresh`]): this end's replies within the delayed-ACK
    /// time of a receipt (pingpong mode at the threshold), and small segments received since
    /// its last ACK (Linux ICSK_ACK_PUSHED / PUSHED2).
    pingpong: u32,
    pushed: u32,
    segs: VecDeque<Seg>,
    /// Bytes and FIN accepted before the handshake completed.
    pending: Vec<u8>,
    pending_fin: bool,
    srtt_us: Option<u64>,
    rttvar_us: u64,
    /// lwIP's estimator ([`RtoFormula::LwipTicks`]): `sa` (8 x srtt) and `sv` in ticks, and
    /// whether a sample was taken (before: the initial RTO).
    lwip_sa: i64,
    lwip_sv: i64,
    lwip_sampled: bool,
    /// A first transmission was dropped in the sender's own firewall
    /// ([`LinkConfig::loss_at_sender`]): nothing more is tried until the next chance.
    xmit_failed: bool,
    /// Generation of the armed probe timer for data kept unsent by such a drop.
    probe0_gen: u64,
    /// The probe timer is sending (a drop now backs it off).
    probing: bool,
    ge_bad: bool,
    /// The faults (by key) that make this direction lose everything (half-open); it is dead
    /// while any is on, so overlapping faults end independently.
    dead: BTreeSet<u32>,
    rcv_nxt: u64,
    ooo: BTreeMap<u64, (Vec<u8>, bool)>,
    /// RFC 6298 consecutive timeouts without progress (the exponent of the backoff); with
    /// [`Stack::backoff_until_sample`], timeouts since the last RTT sample.
    backoff: u32,
    /// The next RTT sample starts the estimator afresh ([`Stack::rtt_forget_after_timeouts`]).
    rtt_forget: bool,
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
            fin_wanted: false,
            unsent: VecDeque::new(),
            cwnd: u64::MAX,
            ssthresh: u64::MAX,
            recover: None,
            rto_fallback_us: None,
            ack_pending: 0,
            ack_pending_bytes: 0,
            delack_gen: 0,
            quick_left: 0,
            last_rcv: None,
            pingpong: 0,
            pushed: 0,
            segs: VecDeque::new(),
            pending: Vec::new(),
            pending_fin: false,
            srtt_us: None,
            rttvar_us: 0,
            lwip_sa: 0,
            lwip_sv: 0,
            lwip_sampled: false,
            xmit_failed: false,
            probe0_gen: 0,
            probing: false,
            ge_bad: false,
            dead: BTreeSet::new(),
            rcv_nxt: 0,
            ooo: BTreeMap::new(),
            backoff: 0,
            rtt_forget: false,
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
    /// lwIP `tcp_receive()`'s update with a sample of `m` whole ticks (see
    /// [`RtoFormula::LwipTicks`]).
    fn lwip_sample(&mut self, ticks: i64) {
        let mut m = ticks - (self.lwip_sa >> 3);
        self.lwip_sa += m;
        m = m.abs() - (self.lwip_sv >> 2);
        self.lwip_sv += m;
        self.lwip_sampled = true;
    }
    fn rtt_sample(&mut self, r_us: u64) {
        self.min_rtt_us = Some(self.min_rtt_us.map_or(r_us, |m| m.min(r_us)));
        if std::mem::take(&mut self.rtt_forget) {
            self.srtt_us = None;
        }
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
    /// The faults (by key) partitioning the connection; partitioned while any is on.
    partition: BTreeSet<u32>,
    aborted: [bool; 2],
    /// While a segment carrying data and an ACK is processed: new data its ACK released waits
    /// until its data is taken (`Some(direction)` once released), as in Linux
    /// `tcp_rcv_established()`: `tcp_ack()`, then `tcp_data_queue()`, then
    /// `tcp_data_snd_check()`, so that data carries the ACK of the data that came in.
    send_after_data: Option<Option<Dir>>,
    /// An aborted side that is back up (a new host): it answers the next segment with RST.
    rebooted: [bool; 2],
    /// The side's application closed its socket: it reads nothing more (data arriving for it
    /// is answered with RST) and its retransmissions are limited by `orphan_retries_max`.
    app_closed: [bool; 2],
    /// The client's application gave up the connect while it was in SYN-SENT.
    abandoned: bool,
    /// The side's FIN-WAIT-2 timer is armed.
    fin_wait2_armed: [bool; 2],
    /// The FIN of `dir` (index) reached its receiver.
    peer_fin: [bool; 2],
    /// The side forgot the connection (FIN-WAIT-2 timeout): the next segment for it gets RST.
    forgot: [bool; 2],
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
        let mut streams = [Stream::new(isn_up), Stream::new(isn_down)];
        for dir in [Dir::Up, Dir::Down] {
            let (snd, rcv) = match dir {
                Dir::Up => (&cfg.client, &cfg.server),
                Dir::Down => (&cfg.server, &cfg.client),
            };
            let s = &mut streams[dir.idx()];
            s.cwnd = snd.initial_cwnd_bytes.unwrap_or(u64::MAX);
            // lwIP tcp_alloc(): sv = rto = the initial RTO in ticks (src/core/tcp.c:1913-1914).
            s.lwip_sv = (snd.rto_initial_ms / snd.rto_tick_ms.max(1)) as i64;
            s.quick_left = rcv.quickacks;
        }
        Ok(Link {
            cfg,
            rng,
            now: Instant::ZERO,
            state: State::Idle,
            streams,
            syn_tx_at: Instant::ZERO,
            syn_attempt: 0,
            partition: BTreeSet::new(),
            aborted: [false; 2],
            send_after_data: None,
            rebooted: [false; 2],
            app_closed: [false; 2],
            abandoned: false,
            fin_wait2_armed: [false; 2],
            peer_fin: [false; 2],
            forgot: [false; 2],
            events: BTreeMap::new(),
            ev_counter: 0,
            out: VecDeque::new(),
        })
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }
    /// `side`'s stack.
    pub fn stack(&self, side: Side) -> &Stack {
        match side {
            Side::Client => &self.cfg.client,
            Side::Server => &self.cfg.server,
        }
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
            + s.unsent.len() as u64
    }
    /// The sender's current RTO for new segments in `dir`.
    pub fn rto(&self, dir: Dir) -> Duration {
        let s = &self.streams[dir.idx()];
        let st = self.stack(dir.sender());
        let min = st.rto_min_ms.saturating_mul(1_000);
        let max = st.rto_max_ms.saturating_mul(1_000);
        let initial = s
            .rto_fallback_us
            .unwrap_or(st.rto_initial_ms.saturating_mul(1_000));
        let us = match (st.rto_formula, s.srtt_us) {
            (RtoFormula::LwipTicks, _) if !s.lwip_sampled => initial,
            (RtoFormula::LwipTicks, _) => {
                let ticks = ((s.lwip_sa >> 3) + s.lwip_sv).max(1) as u64;
                ticks.saturating_mul(st.rto_tick_ms.saturating_mul(1_000))
            }
            (_, None) => initial,
            (RtoFormula::Linux, Some(srtt)) => {
                srtt.saturating_add(s.rttvar_us.saturating_mul(4).max(min))
            }
            (RtoFormula::Clamped { granularity_ms }, Some(srtt)) => {
                let g = granularity_ms.saturating_mul(1_000);
                srtt.saturating_add(s.rttvar_us.saturating_mul(4).max(g))
                    .max(min)
            }
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

    /// Queue `bytes` from the sender of `dir`; cut into MSS segments and sent as the sender's
    /// stack allows (Nagle, the congestion and receive windows). Ignored after a reset, after
    /// that side's FIN or power cut.
    pub fn handle_send(&mut self, now: Instant, dir: Dir, bytes: &[u8]) {
        self.advance(now);
        if bytes.is_empty()
            || self.is_dead()
            || self.aborted[dir.sender().idx()]
            || self.streams[dir.idx()].fin_queued
            || self.streams[dir.idx()].fin_wanted
        {
            return;
        }
        if self.state != State::Established {
            self.streams[dir.idx()].pending.extend_from_slice(bytes);
            return;
        }
        let st = &mut self.streams[dir.idx()];
        st.unsent.extend(bytes.iter().copied());
        // A write is a new chance for data a local drop kept unsent (Linux tcp_push()).
        st.xmit_failed = false;
        let at = self.now;
        self.try_send(at, dir);
    }

    /// FIN from the sender of `dir`, after its queued bytes. A second call is a no-op.
    pub fn handle_close(&mut self, now: Instant, dir: Dir) {
        self.advance(now);
        if self.is_dead() || self.aborted[dir.sender().idx()] {
            return;
        }
        let s = &mut self.streams[dir.idx()];
        if s.fin_queued || s.fin_wanted || s.pending_fin {
            return;
        }
        if self.state != State::Established {
            s.pending_fin = true;
            return;
        }
        s.fin_wanted = true;
        s.xmit_failed = false;
        let at = self.now;
        self.try_send(at, dir);
    }

    /// RST from the client now: both ends see the connection reset.
    pub fn handle_reset(&mut self, now: Instant) {
        self.advance(now);
        if self.is_dead() {
            return;
        }
        let at = self.now;
        self.send_rst(at, Side::Client);
        self.reset(at, ResetReason::Requested);
    }

    /// `side`'s application closed its socket for good (`close()`, or dropping it): a graceful
    /// close. What it wrote and is not acknowledged yet is still retransmitted, then its FIN
    /// follows (Linux `tcp_close()` → `tcp_send_fin()`, net/ipv4/tcp.c; lwIP `tcp_close()` →
    /// `tcp_close_shutdown_fin()`, src/core/tcp.c: both keep the send queue). From now on it
    /// reads nothing: data arriving for it is answered with RST (Linux `tcp_rcv_state_process()`
    /// in FIN-WAIT-1/2, LINUX_MIB_TCPABORTONDATA, net/ipv4/tcp_input.c; lwIP `tcp_input()`,
    /// `TF_RXCLOSED` → `tcp_abort()`, src/core/tcp_in.c), its retransmissions give up after
    /// `orphan_retries_max` timeouts and it waits `fin_wait2_ms` for the peer's FIN. A close
    /// while the connect is still in progress frees the attempt instead
    /// ([`Link::handle_abandon`]); a close with unread received data is an abort (the caller
    /// checks its buffer and calls [`Link::handle_rst`]).
    pub fn handle_app_close(&mut self, now: Instant, side: Side) {
        self.advance(now);
        if self.state == State::SynSent && side == Side::Client {
            self.abandon();
            return;
        }
        if self.is_dead() || self.aborted[side.idx()] || self.app_closed[side.idx()] {
            return;
        }
        self.app_closed[side.idx()] = true;
        self.net(self.now, NetEvent::AppClosed { side });
        self.handle_close(now, side.sending());
        self.check_fin_wait2(self.now, side);
    }

    /// The client's application gave up the connect in progress (a connect timeout, then
    /// `close()`): in SYN-SENT the attempt is freed silently, no RST, no FIN, no more SYNs. In
    /// esp-lwip (2.1.3-esp, f7922143) the socket's close reaches `lwip_netconn_do_delconn()`
    /// (src/api/api_msg.c:1194-1245), which runs for a non-blocking connect in progress, then
    /// `lwip_netconn_do_close_internal()` → `tcp_close_ext(pcb, 1)` (api_msg.c:1053-1058) →
    /// `tcp_close_shutdown()`: the RST for unread data is only for ESTABLISHED and CLOSE_WAIT
    /// (src/core/tcp.c:352), and the SYN_SENT case removes the PCB and frees it (tcp.c:
    /// 397-401). (`tcp_abort()` would send a RST even in SYN_SENT, `tcp_abandon(pcb, 1)`,
    /// tcp.c:569-628, 644; only `SO_LINGER` 0 takes that path, api_msg.c:1028-1033, and
    /// Arduino's `WiFiClient` and esp-tls close with a plain `close(fd)`,
    /// ../shared/notes/tcp-stacks.md sections 2 and 3.) Linux: `__tcp_close()` moves SYN_SENT to CLOSE without a
    /// FIN (`tcp_close_state()`, net/ipv4/tcp.c). A SYN-ACK still on its way then matches no
    /// PCB and is answered with a RST (`tcp_input()`, "no PCB match found, resetting",
    /// src/core/tcp_in.c:585-594; Linux `tcp_v4_send_reset()`). After the handshake completed
    /// this is [`Link::handle_app_close`]. Tested by the link tests
    /// `an_abandoned_connect_sends_no_more_syns_and_never_completes` and
    /// `a_late_syn_ack_to_an_abandoned_connect_is_answered_with_rst`, and by
    /// scenarios/regression-abandoned-connect-half-open.toml (issue 19).
    pub fn handle_abandon(&mut self, now: Instant) {
        self.handle_app_close(now, Side::Client);
    }

    /// `side` aborts: RST now, both ends see the connection reset, whatever was queued is
    /// dropped (`SO_LINGER` 0, lwIP `tcp_abort()`, or a close with unread received data: Linux
    /// `__tcp_close()` "data_was_unread" → `tcp_send_active_reset()`, net/ipv4/tcp.c; lwIP
    /// `tcp_close_shutdown()` with `rst_on_unacked_data`, src/core/tcp.c).
    pub fn handle_rst(&mut self, now: Instant, side: Side) {
        self.advance(now);
        if self.state == State::SynSent && side == Side::Client {
            self.abandon();
            return;
        }
        if self.is_dead() || self.aborted[side.idx()] {
            return;
        }
        let at = self.now;
        self.send_rst(at, side);
        self.reset(at, ResetReason::Rst { side });
    }

    /// The application of `side` closed its socket.
    pub fn is_app_closed(&self, side: Side) -> bool {
        self.app_closed[side.idx()]
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

    /// Both directions lose every transmission while `on` (fault key 0; see
    /// [`Link::set_partition_by`]).
    pub fn set_partition(&mut self, now: Instant, on: bool) {
        self.set_partition_by(now, 0, on);
    }

    /// Fault `key` partitions the connection while `on`: both directions lose every
    /// transmission while any key is on, so one fault's end does not end another's.
    pub fn set_partition_by(&mut self, now: Instant, key: u32, on: bool) {
        self.advance(now);
        let was = !self.partition.is_empty();
        if on {
            self.partition.insert(key);
        } else {
            self.partition.remove(&key);
        }
        let is = !self.partition.is_empty();
        if was != is {
            self.net(self.now, NetEvent::Partition { on: is });
        }
    }

    /// From now on, transmissions are lost by `loss` (the heal phase sets `LossModel::None`).
    pub fn set_loss(&mut self, now: Instant, loss: LossModel) {
        self.advance(now);
        self.cfg.loss = loss;
    }

    /// `dir` loses every transmission while `on` (half-open link; fault key 0).
    pub fn set_dead(&mut self, now: Instant, dir: Dir, on: bool) {
        self.set_dead_by(now, dir, 0, on);
    }

    /// Fault `key` makes `dir` lose every transmission while `on`; dead while any key is on.
    pub fn set_dead_by(&mut self, now: Instant, dir: Dir, key: u32, on: bool) {
        self.advance(now);
        let set = &mut self.streams[dir.idx()].dead;
        let was = !set.is_empty();
        if on {
            set.insert(key);
        } else {
            set.remove(&key);
        }
        let is = !set.is_empty();
        if was != is {
            self.net(self.now, NetEvent::Dead { dir, on: is });
        }
    }

    /// Every partition and half-open fault ends at once (the heal).
    pub fn clear_faults(&mut self, now: Instant) {
        self.advance(now);
        for key in self.partition.clone() {
            self.set_partition_by(now, key, false);
        }
        for dir in [Dir::Up, Dir::Down] {
            for key in self.streams[dir.idx()].dead.clone() {
                self.set_dead_by(now, dir, key, false);
            }
        }
    }
}

#[cfg(test)]
mod tests;
