//! Broker settings: [`Config`], plain data with public fields, checked in one place
//! ([`Config::validate`], which [`super::Broker::new`] and [`super::Broker::restore`] run).
//!
//! One way to set it: fields over [`Config::default`], with struct-update syntax
//! (`Config { persistence: true, ..Config::default() }`) or one assignment per setting, as the
//! mosquitto.conf reader does, which then calls [`Config::validate`] itself to point at the
//! offending line. Public fields rather than a builder because the settings are independent
//! values with no invariant between them that setters could keep; callers read them back as
//! often as they write them (the front end's `-v` flags, a scenario's overrides, the tests), which
//! a builder would need a getter per field for; and a broker is never built from a `Config` that
//! has not been validated, so a separate `build()` step would check nothing more.

use core::fmt;

use crate::limits;
use crate::time::Duration;

/// Broker settings. Names follow mosquitto.conf where one exists; every bound has its unit.
#[derive(Clone, Debug)]
pub struct Config {
    /// Whole-packet limit, checked from the fixed header (mosquitto `max_packet_size`).
    pub max_packet_bytes: usize,
    /// PUBLISH payloads above this are dropped (and acknowledged); 0 = no limit beyond the packet
    /// size (mosquitto `message_size_limit`).
    pub message_size_limit_bytes: usize,
    /// QoS 1/2 messages in flight to one client (mosquitto `max_inflight_messages`, 1..=65535).
    pub max_inflight_messages: usize,
    /// QoS 1/2 messages queued per session behind the window or while offline
    /// (mosquitto `max_queued_messages`); 0 = unbounded.
    pub max_queued_messages: usize,
    /// Byte bound (topic + payload) on that queue (mosquitto `max_queued_bytes`); 0 = unbounded.
    pub max_queued_bytes: usize,
    /// Bytes handed to a connection's socket but not yet written, past which QoS 0 messages to it
    /// are dropped (counted).
    pub max_outgoing_bytes: usize,
    /// Bytes of QoS 1/2 PUBLISH packets a publisher paused for a backed-up subscriber may send
    /// with their acknowledgements withheld before the broker stops reading it (its QoS 0 is
    /// dropped, counted, past it); see [`limits::PAUSED_INPUT_DEFAULT_MAX_BYTES`].
    pub max_paused_input_bytes: usize,
    /// Concurrent connections (mosquitto `max_connections`).
    pub max_connections: usize,
    /// Retained topics kept; a new one beyond this is not retained (counted as dropped).
    pub max_retained_messages: usize,
    /// Accept clients without a user name. Without a password file (see
    /// [`super::Broker::set_security`]) it decides for every client, user name or not, so false
    /// refuses everyone with CONNACK 0x05, as mosquitto does with no `password_file`.
    pub allow_anonymous: bool,
    /// A socket must send CONNECT within this time.
    pub connect_timeout: Duration,
    /// How often `$SYS/broker/...` is refreshed; zero turns `$SYS` off.
    pub sys_interval: Duration,
    /// Emit a log line per packet, as `mosquitto -v`.
    pub verbose: bool,
    /// Emit the lines mosquitto logs at notice level without `-v`: connections coming, going and
    /// refused (`verbose` implies them).
    pub log_notices: bool,
    /// Keep retained messages and persistent sessions in a journal the caller writes
    /// (mosquitto `persistence`): acknowledgements then wait until what they acknowledge is
    /// durable. See [`super::Broker::poll_journal`].
    pub persistence: bool,
    /// The journal is rewritten from a snapshot of the state once it is larger than this and
    /// than twice the last snapshot.
    pub journal_compact_min_bytes: usize,
    /// Largest keep alive a client may ask for, seconds; a client asking for more, or for 0
    /// (never), is refused with CONNACK 2. 0 = no limit (mosquitto `max_keepalive`).
    pub max_keepalive_s: u16,
    /// Accept an empty client id (with clean session) and assign one; false refuses it with
    /// CONNACK 2 (mosquitto `allow_zero_length_clientid`).
    pub allow_zero_length_clientid: bool,
    /// Deliver at the subscription's granted QoS even when the message was published lower
    /// (mosquitto `upgrade_outgoing_qos`; not MQTT conformant, off by default).
    pub upgrade_outgoing_qos: bool,
    /// Retained messages allowed; when false a PUBLISH or a will with RETAIN set closes the
    /// connection (mosquitto `retain_available`).
    pub retain_available: bool,
    /// Pause the publishers feeding a connected subscriber that falls behind (their
    /// acknowledgements withheld until its queue drains) instead of dropping past
    /// `max_queued_messages`. Off: a full queue drops the message, announced with "Outgoing
    /// messages are being dropped for client X.", and the publisher is acknowledged at once, as
    /// mosquitto 2.0 does (src/database.c:525-537 `db__message_insert`; handle_publish.c:333-337
    /// sends PUBACK whatever the queueing did). No mosquitto.conf key: mosquitto has no such
    /// choice. Default on (this broker's behaviour).
    pub queue_backpressure: bool,
    /// Forward an incoming QoS 2 message to the subscribers only when its PUBREL arrives, as
    /// mosquitto 2.0 does: handle_publish.c:345-347 stores it in the client's incoming messages
    /// (`db__message_insert(.., mosq_md_in, ..)`, state `mosq_ms_wait_for_pubrel`) and
    /// lib/handle_pubrel.c:96 `db__message_release_incoming` (database.c:990-1020) queues it to
    /// the subscribers. Off (this broker): forwarded on PUBLISH, like QoS 1, which the
    /// specification allows (MQTT 3.1.1 figure 4.3, method B). A message held for its PUBREL is
    /// not journalled: lost at a restart (mosquitto saves it only with its next autosave).
    /// With `queue_backpressure`, a message released by PUBREL is not held back (its PUBREC
    /// already went): past the bound it is dropped. No mosquitto.conf key.
    pub qos2_forward_on_pubrel: bool,
    /// Keep-alive expiry is checked by a scan of every connection this often, as mosquitto 2.0
    /// does (src/keepalive.c:40 `if(last_keepalive_check + 5 < db.now_s)`, whole seconds, so every
    /// 6 s, from the main loop, loop.c:198), and judged in whole seconds (keepalive.c:49:
    /// `now_s - last_msg_in <= keepalive*3/2`, integer arithmetic). A silent client is then
    /// closed up to one period (plus up to 1 s of truncation) after 1.5 x its keep alive. Zero
    /// (this broker): a timer per connection, closed at 1.5 x keep alive exactly. No
    /// mosquitto.conf key.
    pub keepalive_check_period: Duration,
    /// With `persistence`: zero (this broker) = the write-ahead journal (every acknowledgement
    /// waits for what it acknowledges to be durable). Non-zero = mosquitto's way: the state
    /// lives in memory, acknowledgements go out at once, and a whole snapshot is handed to
    /// [`super::Broker::poll_journal`] every this long (a timer in
    /// [`super::Broker::poll_timeout`]), with the line "Saving in-memory database."
    /// (persist_write.c:335); nothing in between, so a power cut loses what changed since the
    /// last save. mosquitto saves when `last_backup + autosave_interval < db.now_s` (loop.c:217,
    /// whole seconds): every `autosave_interval` + 1 s, so the mosquitto profile sets 1,801 s for
    /// its default 1,800 (conf.c:156). It also saves at a clean stop (mosquitto.c:588
    /// `persist__backup(true)`): [`super::Broker::save_now`]. mosquitto.conf's
    /// `autosave_interval` is accepted by the real broker but not mapped here: a copied
    /// mosquitto.conf must not make it lossy.
    pub autosave_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_packet_bytes: limits::PACKET_SIZE_DEFAULT_MAX_BYTES,
            message_size_limit_bytes: limits::MESSAGE_DEFAULT_MAX_BYTES,
            max_inflight_messages: limits::INFLIGHT_DEFAULT_MAX_MESSAGES,
            max_queued_messages: limits::QUEUED_DEFAULT_MAX_MESSAGES,
            max_queued_bytes: limits::QUEUED_DEFAULT_MAX_BYTES,
            max_outgoing_bytes: limits::OUTGOING_DEFAULT_MAX_BYTES,
            max_paused_input_bytes: limits::PAUSED_INPUT_DEFAULT_MAX_BYTES,
            max_connections: limits::CONNECTIONS_DEFAULT_MAX,
            max_retained_messages: 100_000,
            allow_anonymous: true,
            connect_timeout: Duration::from_millis(limits::CONNECT_TIMEOUT_DEFAULT_MS),
            sys_interval: Duration::from_secs(limits::SYS_INTERVAL_DEFAULT_S),
            verbose: false,
            log_notices: false,
            persistence: false,
            journal_compact_min_bytes: limits::JOURNAL_COMPACT_DEFAULT_MIN_BYTES,
            max_keepalive_s: 0,
            allow_zero_length_clientid: true,
            upgrade_outgoing_qos: false,
            retain_available: true,
            queue_backpressure: true,
            qos2_forward_on_pubrel: false,
            keepalive_check_period: Duration::ZERO,
            autosave_interval: Duration::ZERO,
        }
    }
}

/// A broker whose behaviour the settings reproduce: this one's own, or another one users deploy.
/// [`Profile::apply`] sets the behaviour knobs and leaves limits, persistence and logging alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// This broker ([`Config::default`]'s knobs): backpressure, QoS 2 forwarded on PUBLISH,
    /// keep alive to the millisecond, a write-ahead journal.
    #[default]
    Mqsim,
    /// mosquitto 2.0 (read at tag v2.0.20): drops past `max_queued_messages` without
    /// backpressure, forwards QoS 2 at its PUBREL, scans keep alives every 6 s, and
    /// with persistence autosaves every 1,800 s (its defaults, each knob cites its source).
    Mosquitto20,
}

impl Profile {
    /// Every profile, in the order the help lists them.
    pub const ALL: [Profile; 2] = [Profile::Mqsim, Profile::Mosquitto20];

    /// The profile's name, as a scenario or the command line gives it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Mqsim => "mqsim",
            Profile::Mosquitto20 => "mosquitto-2.0",
        }
    }

    /// The profile named `name`, if any.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Sets `config`'s behaviour knobs to this profile's.
    pub fn apply(self, config: &mut Config) {
        let ours = Config::default();
        let (backpressure, on_pubrel, period, autosave) = match self {
            Profile::Mqsim => (
                ours.queue_backpressure,
                ours.qos2_forward_on_pubrel,
                ours.keepalive_check_period,
                ours.autosave_interval,
            ),
            Profile::Mosquitto20 => (
                false,
                true,
                Duration::from_secs(limits::MOSQUITTO_KEEPALIVE_SCAN_S),
                Duration::from_secs(limits::MOSQUITTO_AUTOSAVE_DEFAULT_S),
            ),
        };
        config.queue_backpressure = backpressure;
        config.qos2_forward_on_pubrel = on_pubrel;
        config.keepalive_check_period = period;
        config.autosave_interval = autosave;
    }
}

/// A setting out of range: which one (its mosquitto.conf name where it has one) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting: its mosquitto.conf key where it has one (`max_packet_size`), else the field name.
    pub key: &'static str,
    /// What the value must be, as a sentence fragment ("must be at least 20 bytes").
    pub reason: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// Smallest `max_packet_bytes`: a CONNECT with a one-byte client id needs 15, a PUBLISH with a
/// short topic a few more; mosquitto refuses less than 20.
pub const PACKET_SIZE_MIN_BYTES: usize = 20;

impl Config {
    /// The defaults with `$SYS` off (`sys_interval` zero): a broker that sends and schedules
    /// nothing of its own, so a unit test sees only its clients' traffic and timers.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Config {
        Config {
            sys_interval: Duration::ZERO,
            ..Config::default()
        }
    }

    /// Every setting in range, or the first one that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason| Err(ConfigError { key, reason });
        // A packet is at most the largest remaining length plus a 5-byte fixed header.
        if self.max_packet_bytes < PACKET_SIZE_MIN_BYTES {
            return bad("max_packet_size", "must be at least 20 bytes");
        }
        if self.max_packet_bytes > limits::REMAINING_LENGTH_MAX_BYTES + 5 {
            return bad(
                "max_packet_size",
                "must be at most 268,435,460 bytes (MQTT's largest packet)",
            );
        }
        if self.max_inflight_messages == 0
            || self.max_inflight_messages > limits::INFLIGHT_CEILING_MESSAGES
        {
            return bad(
                "max_inflight_messages",
                "must be 1 to 65,535 (packet identifiers are 16 bits, 0 is reserved)",
            );
        }
        if self.max_connections == 0 {
            return bad(
                "max_connections",
                "must be at least 1 (or -1 for unbounded)",
            );
        }
        if self.max_outgoing_bytes == 0 {
            return bad("max_outgoing_bytes", "must be at least 1 byte");
        }
        if self.max_paused_input_bytes == 0 {
            return bad("max_paused_input_bytes", "must be at least 1 byte");
        }
        if self.connect_timeout == Duration::ZERO {
            return bad("connect_timeout", "must be longer than zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
