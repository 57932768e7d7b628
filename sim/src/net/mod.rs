//! The simulator's network: a modelled lossy TCP link at the byte edge, above turmoil.
//!
//! turmoil's TCP never loses, reorders or retransmits (and its `fail_rate` breaks streams for
//! good), so loss is modelled here, above it, the way real TCP shows loss to an application: as
//! *delay* and head-of-line blocking, never as a gap, until the connection gives up and resets.
//!
//! - [`link`]: a sans-IO, seeded model of one TCP connection ([`link::Link`]): handshake with SYN
//!   retries (1, 3, 7, 15, 31, 63 s, failure at 127 s), MSS segmentation, per-transmission loss
//!   (none, Bernoulli, Gilbert-Elliott, per direction), loss recovery as Linux does it (fast
//!   retransmit / RACK, tail-loss probe, one RTO per connection: see below), in-order delivery
//!   behind holes, reset after `retries_max` (15) consecutive timeouts, FIN, RST, partitions,
//!   half-open links and power cuts. Every decision is a trace line
//!   ([`link::NetLine`]) and every packet a [`link::Wire`] record with byte-exact sequence numbers.
//! - [`pcap`]: writes those records as Ethernet/IPv4/TCP frames into a pcap that tshark decodes
//!   (MQTT on 1883, lost segments followed by `tcp.analysis.retransmission`).
//! - [`stream`]: [`stream::Net`], a registry of links, and [`stream::LinkStream`], an
//!   `AsyncRead + AsyncWrite` wrapper around a turmoil `TcpStream`, so the broker's tokio adapter
//!   and a device client run unchanged and see loss as delay, a reset as an error, a FIN as EOF and
//!   a power cut as silence.
//!
//! # What is modelled
//! - One-way delay = `latency_us` + uniform jitter (µs), per packet; arrivals may reorder, the
//!   receiver reassembles and releases bytes in order only.
//! - Each arriving segment is answered by an immediate pure ACK (no delayed ACK), itself subject to
//!   loss; the sender treats the ACK as cumulative plus a selective ACK of the segment that
//!   triggered it (SACK-like; the SACK option is not written to the capture). Data segments carry
//!   the cumulative ACK of the other direction (piggyback).
//! - Fast retransmit (RFC 5681 3.2, RFC 6675 DupThresh = 3) and RACK (RFC 8985 6.2): an
//!   unacknowledged segment sent before the most recently sent delivered one is lost once 3 later
//!   segments are acknowledged, or once RACK.rtt + reo_wnd (min_rtt / 4) has passed since it was
//!   sent (reordering timer); it is resent at once. A loss followed by more traffic thus costs about
//!   one RTT after the next segment, not an RTO. An ACK arriving sooner than min_rtt after a
//!   retransmission is taken for the original's (no timestamps) and does not advance RACK.
//! - Tail-loss probe (RFC 8985 7, Linux TLP): after new data, or an ACK with news, the probe timer
//!   is PTO = 2 x SRTT, at least 10 ms; with one segment in flight PTO = 2 x SRTT + WCDelAckT
//!   (200 ms; Linux adds `TCP_RTO_MIN`), capped at the RTO instant, where the probe fires in the
//!   RTO's place without doubling the backoff (RFC 8985 7.2, Linux `tcp_schedule_loss_probe()`).
//!   On expiry new data waiting behind Nagle (or a local drop) is sent if the windows allow, past
//!   Nagle, else the last unacknowledged segment is resent; its SACK lets RACK resend the holes
//!   before it. One probe per episode; none while the RTO is backed off.
//! - RTO (RFC 6298): one timer per connection direction, started when data goes out with none
//!   running (5.1), restarted when an ACK acknowledges new data (5.3); on expiry the oldest
//!   unacknowledged segment is resent and the backoff doubles (5.4-5.6), from the stack's RTO
//!   formula ([`link::RtoFormula`]; Linux and `plain`: SRTT + max(4 RTTVAR, 200 ms), Karn's rule,
//!   1 s initial, 120 s cap). An ACK of new data (a successful
//!   retransmission's, say) ends the backoff (RFC 6298 5.7; Linux resets `icsk_backoff`).
//!   `retries_max` (Linux `tcp_retries2`) counts consecutive timeouts without progress.
//! - Where loss happens: on the wire, or (`loss_at_sender`) in each sender's own firewall, where
//!   a data segment's first transmission stays unsent until the next chance
//!   ([`link::LinkConfig::loss_at_sender`]).
//! - Faults: partition (both directions lose everything, backoff continues, the next
//!   retransmission after healing gets through), one dead direction (half-open), RST, FIN, power cut
//!   of one side (it sends nothing and acknowledges nothing; its peer backs off and resets after
//!   `retries_max`, or waits forever if it had nothing outstanding).
//!
//! # What is not modelled
//! - In the `plain` stack (the default; the profiles in [`link::Stack`] model these, opt-in):
//!   no congestion window, slow start, Nagle, receive window or flow control: every write is sent at
//!   once, cut into MSS segments (as with `TCP_NODELAY` and an unlimited window). The wrapper's send
//!   buffer is unbounded unless bounded per end ([`stream::LinkStream::set_send_buffer`]: the
//!   simulated ESP32s use lwIP's 5,744 bytes, so a write blocks once that much is unacknowledged).
//! - In `plain`, no delayed ACKs and no Nagle either (the profiles have both; the calibration
//!   scenarios run them). No F-RTO,
//!   no DSACK-driven reo_wnd adaptation; on an RTO only the oldest segment is resent at once, the
//!   others follow by RACK when its ACK comes.
//! - The SYN-ACK is not retransmitted by the server; a lost SYN-ACK is recovered by the client's
//!   next SYN. A lost handshake ACK has no effect (data segments carry the ACK).
//! - Latency is symmetric; the client's handshake RTT seeds both directions' estimators.
//! - A reset is seen by both ends at once, even when the RST itself is lost on the wire (the
//!   `lost` flag of its [`link::Wire`] record says so). TIME_WAIT, keepalive probes and
//!   `tcp_retries1` route refresh are absent; 32-bit sequence wrap-around is handled on the wire.

pub mod link;
pub mod pcap;
pub mod stream;
