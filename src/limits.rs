//! Every limit in one place, with its unit in its name. Configurable ones are defaults for
//! [`crate::broker::Config`]; the rest are protocol ceilings.

/// Largest remaining length MQTT 3.1.1 can encode (4 length bytes): 268,435,455 bytes.
pub const REMAINING_LENGTH_MAX_BYTES: usize = 268_435_455;
/// Largest whole packet the broker accepts by default (fixed header included). Checked from the
/// fixed header, before any of the body is buffered. mosquitto's `max_packet_size`.
pub const PACKET_SIZE_DEFAULT_MAX_BYTES: usize = 1024 * 1024;
/// Longest UTF-8 string or binary field: a u16 length prefix.
pub const STRING_MAX_BYTES: usize = 65_535;
/// Default number of QoS 1/2 messages in flight to one client (mosquitto `max_inflight_messages`).
pub const INFLIGHT_DEFAULT_MAX_MESSAGES: usize = 20;
/// Default number of incoming QoS 2 messages a client holds for their PUBREL when it delivers
/// at PUBREL (`ClientConfig::qos2_delivery`); past it a message is delivered at its PUBLISH.
/// A broker sends at most its in-flight window unreleased (20 by default in mosquitto,
/// src/conf.c:192, and here), so only a broker with a window over 1,000 (mosquitto's
/// `max_inflight_messages 0` is unlimited) reaches it. Each is at most `max_packet_bytes`.
pub const QOS2_HELD_DEFAULT_MAX_MESSAGES: usize = 1_000;
/// Hard ceiling on the in-flight window: packet identifiers are u16 and 0 is reserved.
pub const INFLIGHT_CEILING_MESSAGES: usize = 65_535;
/// Default queue of messages waiting behind the in-flight window, per session
/// (mosquitto `max_queued_messages`).
pub const QUEUED_DEFAULT_MAX_MESSAGES: usize = 1_000;
/// A connected subscriber's queue, in in-flight windows (`max_inflight_messages` each), at which
/// the publishers feeding it are paused (backpressure); they resume at half of it. Beyond a few
/// windows a queue only adds latency for a client that is there to receive.
pub const QUEUE_ONLINE_PAUSE_WINDOWS: usize = 8;
/// mosquitto 2.0's keep-alive scan period, s: src/keepalive.c:40 scans when
/// `last_keepalive_check + 5 < db.now_s` (whole seconds), i.e. every 6 s (tag v2.0.20).
pub const MOSQUITTO_KEEPALIVE_SCAN_S: u64 = 6;
/// mosquitto 2.0's default `autosave_interval`, s (src/conf.c:156), plus the 1 s its strict
/// comparison adds (loop.c:217 `last_backup + autosave_interval < db.now_s`): it saves every
/// 1,801 s.
pub const MOSQUITTO_AUTOSAVE_DEFAULT_S: u64 = 1_801;
/// Default byte bound on that queue (payload + topic bytes); 0 = no byte bound.
pub const QUEUED_DEFAULT_MAX_BYTES: usize = 0;
/// Default largest PUBLISH payload accepted (mosquitto `message_size_limit`); 0 = only the packet
/// size limit applies.
pub const MESSAGE_DEFAULT_MAX_BYTES: usize = 0;
/// Default ceiling on concurrent connections (mosquitto `max_connections`, where -1 is unbounded).
pub const CONNECTIONS_DEFAULT_MAX: usize = 100_000;
/// A socket that has not sent CONNECT within this many milliseconds is closed.
pub const CONNECT_TIMEOUT_DEFAULT_MS: u64 = 10_000;
/// This project's client (the `mqsim` device profile): wait after a lost connection or a failed
/// attempt before the next one, unless the application sets its own back-off.
pub const RECONNECT_DEFAULT_MS: u64 = 2_000;
/// Interval between `$SYS/broker/...` updates (mosquitto `sys_interval`), seconds.
pub const SYS_INTERVAL_DEFAULT_S: u64 = 10;
/// Most topic filters one SUBSCRIBE may carry; more is a protocol error (bounded work per packet).
pub const SUBSCRIBE_FILTERS_MAX: usize = 1_024;
/// Deepest topic name or filter, in levels, the broker accepts: mosquitto's
/// `TOPIC_HIERARCHY_LIMIT`, 200 `/` separators, so 201 levels (mosquitto 2.0
/// `lib/util_topic.c`). A deeper filter gets SUBACK 0x80; a deeper PUBLISH or will topic closes
/// the connection, as in mosquitto.
pub const TOPIC_LEVELS_MAX: usize = 201;
/// Bytes buffered for one connection's outgoing data before the broker stops feeding it and queues
/// instead (the adapter's socket write side drains it).
pub const OUTGOING_DEFAULT_MAX_BYTES: usize = 1024 * 1024;
/// A persistence journal smaller than this is never compacted (rewritten from a snapshot); past
/// it, once it is twice the last snapshot.
pub const JOURNAL_COMPACT_DEFAULT_MIN_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of QoS 1/2 PUBLISH packets (whole packets, as received) a paused publisher may have
/// accepted with their acknowledgements withheld. A publisher paused for a backed-up subscriber
/// is still read (its PINGREQs answered); its own in-flight window stops it well before this.
/// Past it (a client ignoring its window) its next QoS 1/2 PUBLISH is left unread and so is its
/// socket, and its QoS 0 PUBLISHes are dropped (counted). One packet may cross it.
pub const PAUSED_INPUT_DEFAULT_MAX_BYTES: usize = 1024 * 1024;
