//! What a link records: its decisions for the trace ([`NetLine`], [`NetEvent`], stamped with
//! [`TraceTime`]) and its packets for the capture ([`Wire`], [`TcpFlags`]).

use std::fmt;

use mqsim::time::Instant;

use super::{Dir, Side};

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
    /// `side` closed or aborted its socket and sent RST: an abort, a close with unread received
    /// data, or data arriving after its application closed (see [`super::Link::handle_rst`]).
    Rst { side: Side },
    /// The client gave up a connect still in progress and a late SYN-ACK reached it: it no
    /// longer knows the connection and answers RST.
    LateSynAck,
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetReason::Requested => f.write_str("requested"),
            ResetReason::RetriesExhausted { dir } => write!(f, "retries exhausted {dir}"),
            ResetReason::PeerRebooted { side } => write!(f, "{side:?} rebooted, RST").map(|_| ()),
            ResetReason::Rst { side } => write!(f, "RST from {side}"),
            ResetReason::LateSynAck => f.write_str("late SYN-ACK to an abandoned connect, RST"),
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
    /// The client's application gave up the connect in progress: the attempt is freed silently.
    ConnectAbandoned,
    /// `side`'s stack gave up retransmitting and dropped the connection without a RST.
    GaveUp {
        side: Side,
    },
    /// `side`'s application closed its socket (no more reads or writes; what was written is
    /// still delivered, then FIN).
    AppClosed {
        side: Side,
    },
    /// `side` waited `fin_wait2_ms` in FIN-WAIT-2 for its peer's FIN and forgot the connection.
    FinWait2Timeout {
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
            NetEvent::ConnectAbandoned => f.write_str("connect abandoned, attempt freed"),
            NetEvent::GaveUp { side } => {
                write!(
                    f,
                    "{side} gave up retransmitting, connection dropped without RST"
                )
            }
            NetEvent::AppClosed { side } => write!(f, "{side} closed"),
            NetEvent::FinWait2Timeout { side } => {
                write!(f, "{side} fin-wait-2 timeout, connection forgotten")
            }
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
