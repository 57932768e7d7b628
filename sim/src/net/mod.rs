//! The simulator's network: a modelled lossy TCP link at the byte edge, above turmoil.
//!
//! turmoil's TCP never loses, reorders or retransmits (and its `fail_rate` breaks streams for
//! good), so loss is modelled here, above it, the way real TCP shows loss to an application: as
//! *delay* and head-of-line blocking, never as a gap, until the connection gives up and resets.
//!
//! - [`link`]: a sans-IO, seeded model of one TCP connection ([`link::Link`]): handshake with SYN
//!   retries (1, 3, 7, 15, 31, 63 s, failure at 127 s), MSS segmentation, per-transmission loss
//!   (none, Bernoulli, Gilbert-Elliott, per direction), RFC 6298 RTO (srtt/rttvar from the
//!   handshake and later samples, Karn's rule, 200 ms minimum, doubling per retry of a segment,
//!   120 s cap), in-order delivery behind holes, reset after `retries_max` (15) retransmissions,
//!   FIN, RST, partitions, half-open links and power cuts. Every decision is a trace line
//!   ([`link::NetLine`]) and every packet a [`link::Wire`] record with byte-exact sequence numbers.
//! - [`pcap`]: writes those records as Ethernet/IPv4/TCP frames into a pcap that tshark decodes
//!   (MQTT on 1883, lost segments followed by `tcp.analysis.retransmission`).
//! - [`stream`]: [`stream::Net`], a registry of links, and [`stream::LinkStream`], an
//!   `AsyncRead + AsyncWrite` wrapper around a turmoil `TcpStream`, so the broker's tokio adapter
//!   and a device client run unchanged and see loss as delay, a reset as an error, a FIN as EOF and
//!   a power cut as silence.
//!
//! # What is modelled
//! - One-way delay = `latency_ms` + uniform jitter, per packet; arrivals may reorder, the receiver
//!   reassembles and releases bytes in order only.
//! - Each lost data/FIN segment is retransmitted by its own timer (RTO at first send, doubled per
//!   retry of that segment). Each arriving segment is answered by an immediate pure ACK (no delayed
//!   ACK), itself subject to loss; the sender treats the ACK as cumulative plus a selective ACK of
//!   the segment that triggered it (SACK-like; the SACK option is not written to the capture). A lost
//!   ACK therefore causes a spurious retransmission, as on a real link.
//! - Faults: partition (both directions lose everything, backoff continues, the next
//!   retransmission after healing gets through), one dead direction (half-open), RST, FIN, power cut
//!   of one side (it sends nothing and acknowledges nothing; its peer backs off and resets after
//!   `retries_max`, or waits forever if it had nothing outstanding).
//!
//! # What is not modelled
//! - No congestion window, slow start, Nagle, receive window or flow control: every write is sent at
//!   once, cut into MSS segments (as with `TCP_NODELAY` and an unlimited window). The wrapper's send
//!   buffer is unbounded.
//! - No fast retransmit, duplicate-ACK counting, tail-loss probe or RACK: every loss costs a full RTO.
//!   This is pessimistic for bulk traffic and right for sparse MQTT traffic (the notes' case).
//! - Retransmission timers are per segment, not one per connection; the backoff is not shared with
//!   later segments.
//! - The SYN-ACK is not retransmitted by the server; a lost SYN-ACK is recovered by the client's
//!   next SYN. A lost handshake ACK has no effect (data segments carry the ACK).
//! - Latency is symmetric; the client's handshake RTT seeds both directions' estimators.
//! - A reset is seen by both ends at once, even when the RST itself is lost on the wire (the
//!   `lost` flag of its [`link::Wire`] record says so). TIME_WAIT, keepalive probes and
//!   `tcp_retries1` route refresh are absent; 32-bit sequence wrap-around is handled on the wire.

pub mod link;
pub mod pcap;
pub mod stream;
