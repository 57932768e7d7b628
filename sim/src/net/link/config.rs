//! What a link is given: its delay, jitter and loss model, TCP's parameters, and their validation.

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

/// When a receiver acknowledges in-order data at once rather than after its delayed-ACK timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckEvery {
    /// At the n-th unacknowledged in-order segment (lwIP: the second, `tcp_receive()` →
    /// `tcp_ack()` sends at once when `TF_ACK_DELAY` is already set, tcp_priv.h:452-461).
    Segments(u32),
    /// Once more than this many bytes are unacknowledged (Linux `__tcp_ack_snd_check()`: more
    /// than `rcv_mss`, which starts at `TCP_MSS_DEFAULT` 536 and grows only with full-sized
    /// segments, so small MQTT packets collect up to 536 bytes; smoltcp: more than one MSS,
    /// src/socket/tcp.rs:2316-2322).
    Bytes(u64),
}

/// How a stack turns RTT samples into its retransmission timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtoFormula {
    /// Linux: `srtt + max(4 mdev, rto_min)`. `tcp_rtt_estimator()` keeps `rttvar_us` at least
    /// `tcp_rto_min_us()` and `tcp_set_rto()` → `__tcp_set_rto()` returns `(srtt_us >> 3) +
    /// rttvar_us` (net/ipv4/tcp_input.c, include/net/tcp.h), so the floor is added to the
    /// smoothed RTT, not compared with it: a 300 ms path gets a 500 ms RTO. (Linux also holds
    /// `rttvar` at the largest `mdev` of the last RTT before it decays; here `rttvar` is RFC
    /// 6298's per-sample average.)
    Linux,
    /// RFC 6298 2.4 with a clock-granularity term G and the floor applied to the sum:
    /// `max(srtt + max(G, 4 rttvar), rto_min)`, capped at `rto_max`. smoltcp v0.13
    /// src/socket/tcp.rs `RttEstimator::sample()` (:200-216): G = `RTTE_MIN_MARGIN` 5 ms,
    /// clamped to `[RTTE_MIN_RTO, RTTE_MAX_RTO]` (:147-162).
    Clamped { granularity_ms: u64 },
    /// lwIP: Van Jacobson's integer estimator in slow-timer ticks (`rto_tick_ms`):
    /// `m` = whole ticks between the send and the ACK, `m -= sa >> 3; sa += m; m = |m| -
    /// (sv >> 2); sv += m; rto = (sa >> 3) + sv` (esp-lwip 2.1.3-esp src/core/tcp_in.c:1361-1377,
    /// `tcp_receive()`), starting from `sa = 0`, `sv = rto = rto_initial / tick` (src/core/tcp.c:
    /// 1913-1914). On a LAN `m` is 0, so `sv` shrinks by `sv >> 2` per sample and stops at 3
    /// ticks (1.5 s): no explicit floor.
    LwipTicks,
}

/// One end's TCP stack: what it does as a sender (segments, Nagle, congestion window, timers,
/// limits) and as a receiver (delayed ACK, receive window). Every number's source is given
/// where the profile is built ([`Stack::linux`], [`Stack::lwip_esp_idf`],
/// [`Stack::lwip_arduino`], [`Stack::smoltcp_embassy`]); ../shared/notes/tcp-stacks.md lists
/// them with file and line.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack {
    /// Profile name for the trace and the docs.
    pub name: &'static str,
    /// Largest payload of one segment this end sends.
    pub mss_bytes: usize,
    /// How RTT samples become the RTO ([`RtoFormula`]).
    pub rto_formula: RtoFormula,
    /// RTO bounds: the floor of [`Stack::rto_formula`]; `rto_initial_ms` before any sample;
    /// backed off RTOs are capped at `rto_max_ms`.
    pub rto_min_ms: u64,
    pub rto_initial_ms: u64,
    pub rto_max_ms: u64,
    /// The retransmission timer's granularity: 0 = exact (Linux, smoltcp); lwIP counts whole
    /// 500 ms slow-timer ticks from the send, so an RTO of N ticks fires (N-1)*0.5 to N*0.5 s
    /// after it.
    pub rto_tick_ms: u64,
    /// The backoff doubles at most this many times (lwIP's `tcp_backoff` table tops at x128: 7).
    pub backoff_shift_max: u32,
    /// The backed-off RTO outlives the recovery: it stays doubled until the next RTT sample (a
    /// segment sent once and acknowledged), instead of ending at the first ACK of new data (RFC
    /// 6298 5.7, Linux's `icsk_backoff = 0` in `tcp_ack()`, lwIP's `nrtx = 0` in
    /// `tcp_receive()`). smoltcp v0.13 keeps the backoff in the RTO itself:
    /// `RttEstimator::on_retransmit()` sets `rto = min(rto * 2, 60 s)` (src/socket/tcp.rs:
    /// 251-260) and only `sample()` computes it afresh (:200-226); the ACK that ends a recovery
    /// re-arms the timer with that doubled `rto` (:2102-2106), and the retransmitted segments
    /// give no sample (`on_retransmit()` drops the running one, :252-255; `on_send()` times only
    /// new sequence numbers, :228-240).
    pub backoff_until_sample: bool,
    /// After this many retransmission timeouts without an RTT sample the smoothed RTT and its
    /// variance are forgotten, and the next sample starts them again as a first one (RFC 6298
    /// 5.7's MAY; smoltcp: `rto_count >= 3` clears `have_measurement`, src/socket/tcp.rs:262-273;
    /// the doubled RTO itself is kept until that sample). 0 = never (Linux, lwIP).
    pub rtt_forget_after_timeouts: u32,
    /// Consecutive retransmission timeouts without progress before the sender gives up
    /// (Linux `tcp_retries2` = 15, lwIP `TCP_MAXRTX` = 12; smoltcp has no count: 64 here, the
    /// validation maximum, is "never" in any scenario).
    pub retries_max: u32,
    /// Whether giving up sends a RST (Linux: the model's choice so far; lwIP `tcp_slowtmr()`
    /// purges the PCB without one, src/core/tcp.c:1390-1420).
    pub rst_on_give_up: bool,
    /// SYN retransmissions before the connect fails.
    pub syn_retries_max: u32,
    /// SYN retransmissions back off (Linux, smoltcp) or keep the initial RTO's spacing (lwIP:
    /// no backoff in SYN_SENT, src/core/tcp.c:1293-1301).
    pub syn_backoff: bool,
    /// After a handshake that needed a retransmitted SYN (no RTT sample), the first data RTO
    /// is this (Linux `TCP_TIMEOUT_FALLBACK` 3 s, RFC 6298 5.7, `tcp_init_transfer()`); `None` =
    /// the initial RTO.
    pub syn_fallback_rto_ms: Option<u64>,
    /// Retransmission timeouts of a connection its application has closed (an orphan) before
    /// it gives up. Linux: `tcp_orphan_retries` = 0, which `tcp_orphan_retries()`
    /// (net/ipv4/tcp_timer.c) turns into 8. lwIP has no orphan limit: `TCP_MAXRTX` applies.
    pub orphan_retries_max: u32,
    /// How long a side whose application closed waits in FIN-WAIT-2 for the peer's FIN.
    pub fin_wait2_ms: u64,
    /// Nagle's algorithm: a segment smaller than the MSS waits while anything is unacknowledged.
    pub nagle: bool,
    /// Delayed ACK: in-order data is acknowledged after this long unless [`Stack::ack_every`]
    /// or data going the other way (piggyback) comes first; 0 = at once.
    pub delack_ms: u64,
    /// The delayed ACK goes out at the next tick of a timer with this period instead
    /// (lwIP's 250 ms fast timer: 0-250 ms); 0 = `delack_ms` after the segment.
    pub delack_tick_ms: u64,
    pub ack_every: AckEvery,
    /// Linux quick-ACK mode: this many ACKs go out at once at the start of a connection and
    /// after a receive gap longer than the RTO (`tcp_event_data_recv()`, `TCP_MAX_QUICKACKS`).
    pub quickacks: u32,
    /// Linux's ACK at the application's read and its pingpong (interactive) mode; 0 = neither
    /// (every other stack). A small in-order segment (under [`LINUX_RCV_MSS_INITIAL_BYTES`], and
    /// every segment of this model is pushed) marks the ACK "pushed" (`tcp_measure_rcv_mss()`,
    /// net/ipv4/tcp_input.c: ICSK_ACK_PUSHED, a second one ICSK_ACK_PUSHED2); the application's
    /// read, which here is the delivery itself, then sends the ACK at once unless the socket is
    /// in pingpong mode, and at the second pushed segment in any mode (`__tcp_cleanup_rbuf()`,
    /// net/ipv4/tcp.c). Pingpong mode: this end sent new data within the delayed-ACK time
    /// (`ato`, [`Stack::delack_ms`] here) of its last receipt this many times
    /// (`tcp_event_data_sent()`, net/ipv4/tcp_output.c; `sysctl_tcp_pingpong_thresh` = 1,
    /// `tcp_sk_init()`, net/ipv4/tcp_ipv4.c); it is left when a delayed ACK fires
    /// (`tcp_delack_timer_handler()`, net/ipv4/tcp_timer.c) or on out-of-order or duplicate
    /// data (`tcp_enter_quickack_mode()`), and quick ACKs wait while it lasts
    /// (`tcp_in_quickack_mode()`, net/ipv4/tcp_input.c). Not modelled: `ato`'s adaptation
    /// (`tcp_event_data_recv()`, and its doubling when a delayed ACK fires outside pingpong
    /// mode), which with ACKs at the read and a 2 ms RTT keeps the 40 ms floor here.
    pub pingpong_thresh: u32,
    /// Initial congestion window in bytes; `None` = no congestion control (smoltcp as
    /// embassy-net builds it). Reno-style: slow start, one MSS after an RTO, halved once per
    /// fast recovery.
    pub initial_cwnd_bytes: Option<u64>,
    /// The receive window this end advertises (its peer's flight is at most this).
    pub rcv_wnd_bytes: u64,
    /// RACK loss detection and tail-loss probes (Linux `tcp_recovery` = 1, `tcp_early_retrans`
    /// = 3); without, only three duplicate ACKs (fast retransmit) or the RTO.
    pub rack_tlp: bool,
    /// An RTO marks everything outstanding lost, to be sent again as the window opens
    /// (Linux `tcp_enter_loss()`, lwIP `tcp_rexmit_rto()`, smoltcp's go-back-N); `false` (plain)
    /// resends only the oldest segment and leaves the rest to RACK.
    pub rto_resend_all: bool,
}

/// Parameters of one modelled TCP connection: the path, and each end's stack.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay, in µs (a scenario's `latency_ms`, which may be a fraction).
    pub latency_us: u64,
    /// Extra one-way delay, uniform in `0 ..= jitter_us`, per packet, in µs (a scenario's
    /// `jitter_ms`).
    pub jitter_us: u64,
    pub loss: LossModel,
    /// Losses happen in the sending host's own firewall (an nftables or iptables rule on its
    /// output hook, as in shared/data/real-lossy-link) rather than on the wire. Linux's IP layer
    /// then returns an error to TCP (`nf_hook_slow()` → -EPERM, net/netfilter/core.c), and a
    /// segment sent for the first time is kept unsent (`tcp_write_xmit()` breaks before
    /// `tcp_event_new_data_sent()`, net/ipv4/tcp_output.c): it goes out at the next chance (the
    /// application's next write, the next ACK, or the zero-window probe timer when nothing is
    /// in flight, `tcp_check_probe_timer()`: max(RTO, 200 ms), doubling). Retransmissions,
    /// pure ACKs, SYNs and FINs dropped this way are lost as on the wire.
    pub loss_at_sender: bool,
    /// The client's stack (the device or the subscriber).
    pub client: Stack,
    /// The server's stack (the broker).
    pub server: Stack,
}

/// Linux `TCP_MSS_DEFAULT` (include/net/tcp.h): the receiver's first `rcv_mss`
/// (`tcp_initialize_rcv_mss()`); it grows only with full-sized segments, so a smaller segment
/// counts as a small pushed one ([`Stack::pingpong_thresh`]).
pub const LINUX_RCV_MSS_INITIAL_BYTES: usize = 536;
/// Linux `tcp_orphan_retries()` with the sysctl at its default 0 (net/ipv4/tcp_timer.c).
pub const LINUX_ORPHAN_RETRIES: u32 = 8;
/// Linux `TCP_FIN_TIMEOUT` (include/net/tcp.h): 60 s.
pub const LINUX_FIN_WAIT2_MS: u64 = 60_000;
/// lwIP `TCP_MAXRTX` as ESP-IDF configures it (Kconfig `LWIP_TCP_MAXRTX` default 12): also the
/// limit of a closed connection's retransmissions.
pub const LWIP_ORPHAN_RETRIES: u32 = 12;
/// lwIP `TCP_FIN_WAIT_TIMEOUT` (src/include/lwip/priv/tcp_priv.h): 20 s.
pub const LWIP_FIN_WAIT2_MS: u64 = 20_000;

impl Stack {
    /// The model as it was before stack profiles: Linux's timers, limits and loss recovery, but
    /// every write sent at once (no Nagle, no congestion window) and every segment acknowledged
    /// at once. The default of [`LinkConfig`], for tests of the link machinery.
    pub fn plain() -> Stack {
        Stack {
            name: "plain",
            mss_bytes: 1460,
            rto_formula: RtoFormula::Linux,
            rto_min_ms: 200,
            rto_initial_ms: 1_000,
            rto_max_ms: 120_000,
            rto_tick_ms: 0,
            backoff_shift_max: 40,
            backoff_until_sample: false,
            rtt_forget_after_timeouts: 0,
            retries_max: 15,
            rst_on_give_up: true,
            syn_retries_max: 6,
            syn_backoff: true,
            syn_fallback_rto_ms: None,
            orphan_retries_max: LINUX_ORPHAN_RETRIES,
            fin_wait2_ms: LINUX_FIN_WAIT2_MS,
            nagle: false,
            delack_ms: 0,
            delack_tick_ms: 0,
            ack_every: AckEvery::Segments(1),
            quickacks: 0,
            pingpong_thresh: 0,
            initial_cwnd_bytes: None,
            rcv_wnd_bytes: 1 << 30,
            rack_tlp: true,
            rto_resend_all: false,
        }
    }

    /// Linux with its defaults (the broker's host, the subscribers', a device process on a PC).
    /// include/net/tcp.h (torvalds/linux 003e07a1): `TCP_RTO_MIN` 200 ms, `TCP_TIMEOUT_INIT`
    /// 1 s, `TCP_RTO_MAX` 120 s, `TCP_TIMEOUT_FALLBACK` 3 s, `TCP_DELACK_MIN` 40 ms,
    /// `TCP_MAX_QUICKACKS` 16, `TCP_INIT_CWND` 10; the ACK at the read and pingpong mode with
    /// `sysctl_tcp_pingpong_thresh` 1 ([`Stack::pingpong_thresh`]: the real bench's captures
    /// show it, e.g. shared/data/real-lossy-link/real-loss20-qos0.pcap, where the broker ACKs
    /// a PUBLISH 0.03 ms after it, but 41-44 ms after when it has just answered a PINGREQ or
    /// a CONNECT); `tcp_retries2` 15, `tcp_syn_retries` 6
    /// (exponential SYN backoff, kernels before 6.5), RACK and TLP on (`tcp_sk_init()`,
    /// net/ipv4/tcp_ipv4.c); Nagle on unless `TCP_NODELAY` (tcp(7)), which neither mosquitto
    /// (`set_tcp_nodelay` false, src/conf.c:204) nor paho-mqtt nor mosquitto_sub set. MSS 1460
    /// (Ethernet). Receive window: 64 KiB, the scaled window's first size with the default
    /// `tcp_rmem`; congestion control is cubic there, Reno here (the same slow start and RTO
    /// collapse; cubic's growth differs only over many round trips).
    pub fn linux() -> Stack {
        Stack {
            name: "linux",
            nagle: true,
            delack_ms: 40,
            ack_every: AckEvery::Bytes(536),
            quickacks: 16,
            pingpong_thresh: 1,
            initial_cwnd_bytes: Some(10 * 1460),
            rcv_wnd_bytes: 65_535,
            syn_fallback_rto_ms: Some(3_000),
            rto_resend_all: true,
            ..Stack::plain()
        }
    }

    /// lwIP as ESP-IDF 5.x configures it (esp-mqtt devices). ESP-IDF components/lwip Kconfig
    /// and port lwipopts.h (v5.5.5): `TCP_MSS` 1440, `TCP_WND` 5760, `LWIP_TCP_RTO_TIME` 1500 ms,
    /// `TCP_MAXRTX` 12, `TCP_SYNMAXRTX` 12. esp-lwip (2.1.3-esp): slow timer 500 ms
    /// (tcp_priv.h:120-128), RTT in ticks so a LAN RTO settles at 3 ticks = 1.5 s
    /// (tcp_in.c:1361-1377), backoff table to x128 (tcp.c:163-164), no backoff for SYNs
    /// (tcp.c:1293-1301), give-up without RST (tcp.c:1390-1420), delayed ACK on the 250 ms fast
    /// timer or at the second segment (tcp_priv.h:452-461), Nagle on (tcp_out.c:1344-1347),
    /// initial cwnd min(4 MSS, max(2 MSS, 4380)) = 4380 B (tcp_in.c:69, 886), cwnd one MSS
    /// after an RTO (tcp.c:1306-1318), fast retransmit at three duplicate ACKs (tcp_in.c:
    /// 1203-1233), FIN-WAIT-2 20 s. No SACK, no RACK, no TLP.
    pub fn lwip_esp_idf() -> Stack {
        Stack {
            name: "lwip-esp-idf",
            mss_bytes: 1440,
            rto_formula: RtoFormula::LwipTicks,
            // No explicit floor in lwIP: one tick, the least it counts; the estimator itself
            // settles at 3 ticks on a LAN (RtoFormula::LwipTicks).
            rto_min_ms: 500,
            rto_initial_ms: 1_500,
            rto_max_ms: RTO_MS_MAX,
            rto_tick_ms: 500,
            backoff_shift_max: 7,
            backoff_until_sample: false,
            rtt_forget_after_timeouts: 0,
            retries_max: LWIP_ORPHAN_RETRIES,
            rst_on_give_up: false,
            syn_retries_max: 12,
            syn_backoff: false,
            syn_fallback_rto_ms: None,
            orphan_retries_max: LWIP_ORPHAN_RETRIES,
            fin_wait2_ms: LWIP_FIN_WAIT2_MS,
            nagle: true,
            delack_ms: 250,
            delack_tick_ms: 250,
            ack_every: AckEvery::Segments(2),
            quickacks: 0,
            pingpong_thresh: 0,
            initial_cwnd_bytes: Some(4_380),
            rcv_wnd_bytes: 5_760,
            rack_tlp: false,
            rto_resend_all: true,
        }
    }

    /// lwIP as Arduino-ESP32 (core 3.x) configures it (PubSubClient devices): ESP-IDF's lwIP with
    /// esp32-arduino-lib-builder's overrides (configs/defconfig.common, release/v5.4:57-59):
    /// `TCP_SYNMAXRTX` 6, `TCP_MSS` 1436, `TCP_RTO_TIME` 3000 ms (so SYNs every 3 s, and a data
    /// RTO that starts at 3 s and settles at the 1.5 s floor).
    pub fn lwip_arduino() -> Stack {
        Stack {
            name: "lwip-arduino",
            mss_bytes: 1436,
            rto_initial_ms: 3_000,
            syn_retries_max: 6,
            initial_cwnd_bytes: Some(4_380),
            ..Stack::lwip_esp_idf()
        }
    }

    /// smoltcp 0.13 as embassy-net 0.9 builds it (this project's firmware, the `mqsim`
    /// profile). smoltcp src/socket/tcp.rs (v0.13.0): RTO 1 s initial and minimum, 60 s maximum
    /// (:147-162), doubling and kept doubled until the next RTT sample, srtt and rttvar
    /// forgotten after 3 timeouts (:251-271; [`Stack::backoff_until_sample`]), no retransmission limit by count and no connect
    /// timeout unless the application sets one (:582, :2216-2221; embassy-net's
    /// `TcpSocket::new` sets none), delayed ACK 10 ms, at once past one MSS (:296, :601,
    /// :2316-2322), Nagle on (:604), no congestion control (neither `socket-tcp-cubic` nor
    /// `-reno` is enabled by embassy-net), go-back-N on an RTO (:2389-2410), no RACK or TLP.
    /// Receive window: the firmware's 2048-byte socket buffer (firmware/src/lib.rs
    /// `TCP_RX_BYTES`). MSS 1460 (its peers' option on Ethernet/WiFi).
    pub fn smoltcp_embassy() -> Stack {
        Stack {
            name: "smoltcp-embassy",
            mss_bytes: 1460,
            rto_formula: RtoFormula::Clamped { granularity_ms: 5 },
            rto_min_ms: 1_000,
            rto_initial_ms: 1_000,
            rto_max_ms: 60_000,
            rto_tick_ms: 0,
            backoff_shift_max: 40,
            backoff_until_sample: true,
            rtt_forget_after_timeouts: 3,
            retries_max: RETRIES_MAX,
            rst_on_give_up: false,
            syn_retries_max: RETRIES_MAX,
            syn_backoff: true,
            syn_fallback_rto_ms: None,
            orphan_retries_max: RETRIES_MAX,
            fin_wait2_ms: RTO_MS_MAX,
            nagle: true,
            delack_ms: 10,
            delack_tick_ms: 0,
            ack_every: AckEvery::Bytes(1460),
            quickacks: 0,
            pingpong_thresh: 0,
            initial_cwnd_bytes: None,
            rcv_wnd_bytes: 2_048,
            rack_tlp: false,
            rto_resend_all: true,
        }
    }

    /// A profile by name, as scenarios write it.
    pub fn by_name(name: &str) -> Option<Stack> {
        Some(match name {
            "linux" => Stack::linux(),
            "lwip-esp-idf" => Stack::lwip_esp_idf(),
            "lwip-arduino" => Stack::lwip_arduino(),
            "smoltcp-embassy" => Stack::smoltcp_embassy(),
            "plain" => Stack::plain(),
            _ => return None,
        })
    }

    /// The names [`Stack::by_name`] knows.
    pub const NAMES: [&'static str; 5] = [
        "linux",
        "lwip-esp-idf",
        "lwip-arduino",
        "smoltcp-embassy",
        "plain",
    ];

    /// Every bad value gets its own message.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.name;
        if self.mss_bytes == 0 || self.mss_bytes > MSS_BYTES_MAX {
            return Err(format!(
                "{n}: mss_bytes must be in 1..={MSS_BYTES_MAX}, got {}",
                self.mss_bytes
            ));
        }
        if self.rto_min_ms == 0 {
            return Err(format!("{n}: rto_min_ms must be > 0"));
        }
        if self.rto_formula == RtoFormula::LwipTicks && self.rto_tick_ms == 0 {
            return Err(format!("{n}: the lwIP RTO formula needs rto_tick_ms > 0"));
        }
        if let RtoFormula::Clamped { granularity_ms } = self.rto_formula {
            if granularity_ms > RTO_MS_MAX {
                return Err(format!("{n}: granularity_ms must be <= {RTO_MS_MAX}"));
            }
        }
        if self.rto_initial_ms < self.rto_min_ms {
            return Err(format!(
                "{n}: rto_initial_ms ({}) must be >= rto_min_ms ({})",
                self.rto_initial_ms, self.rto_min_ms
            ));
        }
        if self.rto_max_ms < self.rto_initial_ms || self.rto_max_ms > RTO_MS_MAX {
            return Err(format!(
                "{n}: rto_max_ms ({}) must be in rto_initial_ms ({})..={RTO_MS_MAX}",
                self.rto_max_ms, self.rto_initial_ms
            ));
        }
        for (what, v) in [
            ("retries_max", self.retries_max),
            ("syn_retries_max", self.syn_retries_max),
            ("orphan_retries_max", self.orphan_retries_max),
            ("backoff_shift_max", self.backoff_shift_max),
        ] {
            if v > RETRIES_MAX {
                return Err(format!("{n}: {what} must be <= {RETRIES_MAX}, got {v}"));
            }
        }
        for (what, v) in [
            ("rto_tick_ms", self.rto_tick_ms),
            ("delack_ms", self.delack_ms),
            ("delack_tick_ms", self.delack_tick_ms),
        ] {
            if v > RTO_MS_MAX {
                return Err(format!("{n}: {what} must be <= {RTO_MS_MAX}, got {v}"));
            }
        }
        if self
            .syn_fallback_rto_ms
            .is_some_and(|v| v == 0 || v > RTO_MS_MAX)
        {
            return Err(format!(
                "{n}: syn_fallback_rto_ms must be in 1..={RTO_MS_MAX}"
            ));
        }
        if self.fin_wait2_ms == 0 || self.fin_wait2_ms > RTO_MS_MAX {
            return Err(format!(
                "{n}: fin_wait2_ms must be in 1..={RTO_MS_MAX}, got {}",
                self.fin_wait2_ms
            ));
        }
        if self.rcv_wnd_bytes == 0 || self.initial_cwnd_bytes == Some(0) {
            return Err(format!("{n}: windows must be > 0"));
        }
        if self.ack_every == AckEvery::Segments(0) {
            return Err(format!("{n}: ack_every must be at least one segment"));
        }
        Ok(())
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency_us: 5_000,
            jitter_us: 0,
            loss: LossModel::None,
            loss_at_sender: false,
            client: Stack::plain(),
            server: Stack::plain(),
        }
    }
}

impl LinkConfig {
    /// Both ends changed by `f` (tests).
    pub fn both(mut self, f: impl Fn(&mut Stack)) -> Self {
        f(&mut self.client);
        f(&mut self.server);
        self
    }
}

/// Largest values the validation accepts (keeps every sum and shift far from overflow).
/// One hour, in µs: the bound of `latency_us` and of `jitter_us`.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
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
        if self.latency_us > LATENCY_US_MAX {
            return Err(format!(
                "latency_us must be <= {LATENCY_US_MAX}, got {}",
                self.latency_us
            ));
        }
        if self.jitter_us > LATENCY_US_MAX {
            return Err(format!(
                "jitter_us must be <= {LATENCY_US_MAX}, got {}",
                self.jitter_us
            ));
        }
        self.client.validate()?;
        self.server.validate()?;
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
