//! The virtual ESP32 application: the reference sketch (join WiFi, connect to the broker, read
//! the sensor and publish it every `interval_ms`, reconnect when the connection goes) as a
//! sans-IO state machine around [`Client`]. The simulator, `mqsim device` (real TCP) and the
//! ESP32-C3 firmware drive the same code.
//!
//! # Contract (the core's, after quinn-proto / str0m)
//! * Inputs, each with `now`: [`Device::handle_wifi`] (the WiFi driver: link up or down),
//!   [`Device::handle_transport_connected`], [`Device::handle_transport_failed`] (TCP connect
//!   failed), [`Device::handle_bytes`], [`Device::handle_transport_closed`],
//!   [`Device::handle_sent`], [`Device::handle_timeout`], and [`Device::handle_reading`] (the
//!   answer to [`DeviceEvent::ReadSensor`]). Time, WiFi and the sensor are inputs: nothing in
//!   here draws a random number or reads a clock.
//! * Outputs, drained after every input with [`Device::poll_output`] until
//!   [`Output::Timeout`]: [`Output::Transmit`] (bytes for the transport), [`Output::Event`]
//!   (serial lines, transport and WiFi requests, ledger hooks), then [`Output::Timeout`] (when
//!   to call `handle_timeout` next). A `now` older than one already seen counts as the newest;
//!   a spurious `handle_timeout` does nothing.
//!
//! # The sketch, step by step
//! 1. `setup()`: prints `Connecting to WiFi`, asks for WiFi ([`DeviceEvent::JoinWifi`]), then
//!    `while (WiFi.status() != WL_CONNECTED) { delay(500); Serial.print("."); }`: a dot every
//!    `wifi_poll_ms`, all on one line (stamped with its first dot), and the link is noticed
//!    only at a dot (after printing it). Then `Connected to the WiFi network`.
//! 2. Still in `setup()`: `Connecting to MQTT...`, [`DeviceEvent::OpenTransport`]; on CONNACK
//!    `connected`, otherwise `failed with state N` and another attempt `reconnect_interval_ms`
//!    later. No readings before the first CONNACK.
//! 3. `loop()`: every `interval_ms` (first one `interval_ms` after `connected`) a reading is
//!    taken ([`DeviceEvent::ReadSensor`], answered by [`Device::handle_reading`]), printed
//!    (`Publish message:`, `Temperature : 26.70°C`, `Humidity : 52.00%`) and published to the
//!    two topics, connected or not: every call is numbered (`seq`, from 1) and reported with
//!    [`DeviceEvent::PublishCalled`] (`accepted: false` = lost at the device).
//! 4. A lost connection ([`DeviceEvent::ConnectionLost`]) is retried `reconnect_interval_ms`
//!    after the loss and then after each failed attempt, while the loop goes on.
//!
//! # The blocking connect (PubSubClient)
//! `client.connect()` blocks the sketch: from `Connecting to MQTT...` until CONNACK, refusal,
//! the TCP connect timeout (3 s) or the socket timeout (15 s after the TCP connection came up)
//! no reading is taken and nothing is published; a reading due meanwhile is taken as soon as
//! the attempt ends (`millis() - lastMsg > interval` is then true). A socket that dies while
//! CONNACK is awaited is not noticed: PubSubClient polls `available()` until the socket timeout
//! and fails with state -4. esp-mqtt connects in its own task: the loop keeps running (QoS 1/2
//! publishes queue, QoS 0 ones are lost) and a dead socket fails the attempt at once.
//!
//! # WiFi
//! [`Device::handle_wifi`] `(false)` after setup is the driver's disconnect event: the socket
//! is gone with the link ([`DeviceEvent::ConnectionLost`] with [`LossReason::WifiDown`],
//! [`DeviceEvent::CloseTransport`]) and the driver rejoins on its own
//! ([`DeviceEvent::JoinWifi`]; the caller answers with `handle_wifi(true)` when the link is
//! back). Meanwhile the loop runs on, and connect attempts fail at once with state -2 (no
//! route), without asking for a transport.
//!
//! # Run loop sketch (the simulator's or `mqsim device`'s)
//! ```ignore
//! let mut dev = Device::new(DeviceConfig::new(Profile::PubSubClient), now())?;
//! let mut buf = Vec::new();
//! loop {
//!     loop {
//!         buf.clear();
//!         match dev.poll_output(&mut buf) {
//!             Output::Transmit(_) => sock.write_all(&buf)?,
//!             Output::Event(DeviceEvent::Serial(line)) => println!("{}", clock.format_line(&line)),
//!             Output::Event(DeviceEvent::OpenTransport) => start_tcp_connect(),
//!             Output::Event(DeviceEvent::CloseTransport) => drop_socket(),
//!             Output::Event(DeviceEvent::JoinWifi) => start_wifi_join(),
//!             Output::Event(DeviceEvent::ReadSensor) => dev.handle_reading(now(), sensor.read()),
//!             Output::Event(ledger_event) => ledger.record(ledger_event),
//!             Output::Timeout(t) => { wake_at = t; break }
//!         }
//!     }
//!     match next_input(wake_at) {   // whichever comes first
//!         Input::Wifi(up) => dev.handle_wifi(now(), up),
//!         Input::TcpConnected => dev.handle_transport_connected(now()),
//!         Input::TcpFailed => dev.handle_transport_failed(now()),
//!         Input::Bytes(b) => dev.handle_bytes(now(), &b),
//!         Input::Closed => dev.handle_transport_closed(now()),
//!         Input::Timer => dev.handle_timeout(now()),
//!     }
//! }
//! ```
//! Answering `ReadSensor` inside the drain is fine: it is an input, and the drain goes on.
//!
//! # Message identity
//! With [`DeviceConfig::tag_payloads`] each payload carries `U+001F d<device>.s<seq>` after
//! the visible value ([`tag_payload`], [`parse_tag`]); serial lines never show it.

pub mod glue;
mod profile;
mod serial;
#[cfg(all(test, target_has_atomic = "ptr"))]
mod tests;

pub use profile::{Profile, ProfileParams};
pub use serial::{
    failed_line, humidity_line, parse_tag, payload_value, tag_payload, temperature_line,
    SerialLine, WallClock, LINE_MQTT_CONNECTED, LINE_MQTT_CONNECTING, LINE_PUBLISH,
    LINE_SENSOR_FAILED, LINE_WIFI_CONNECTED, LINE_WIFI_CONNECTING, TAG_SEPARATOR,
};

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::client::{Client, ClientConfig, ClientError, Event, LastWill, LostReason, PublishId};
use crate::codec::{self, Oversized, QoS};
use crate::driver::Endpoint;
use crate::limits;
use crate::time::{Duration, Instant};
use crate::topic;
use profile::ms;

/// PubSubClient's `state()` codes, printed in `failed with state N` (PubSubClient.h).
pub mod state {
    /// `MQTT_CONNECTION_TIMEOUT`: no CONNACK within the socket timeout, or no answer to PINGREQ.
    pub const CONNECTION_TIMEOUT: i8 = -4;
    /// `MQTT_CONNECTION_LOST`: the socket closed while connected.
    pub const CONNECTION_LOST: i8 = -3;
    /// `MQTT_CONNECT_FAILED`: the TCP connection could not be made.
    pub const CONNECT_FAILED: i8 = -2;
    /// `MQTT_DISCONNECTED`: never connected.
    pub const DISCONNECTED: i8 = -1;
    /// `MQTT_CONNECTED`.
    pub const CONNECTED: i8 = 0;
    // 1..=5: the CONNACK return code (`MQTT_CONNECT_BAD_PROTOCOL` .. `MQTT_CONNECT_UNAUTHORIZED`).
}

/// A temperature/humidity reading, taken by the caller's sensor model when asked.
/// NaN in either field is a failed read (`Failed to read from DHT sensor!`, nothing published).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub temperature_c: f32,
    pub humidity_pct: f32,
}

/// The application's settings. Build with [`DeviceConfig::new`], change fields, then
/// [`Device::new`] validates everything in one place.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub profile: Profile,
    /// The profile's numbers; [`Profile::params`] by default.
    pub params: ProfileParams,
    /// Names the device in payload tags and in the caller's logs.
    pub device_index: u32,
    /// Default `ESP32Client`, the sketch's (several devices need distinct ids).
    pub client_id: String,
    /// Default `ESP32/TEM`.
    pub temperature_topic: String,
    /// Default `ESP32/HUM`.
    pub humidity_topic: String,
    /// QoS of both publishes; at most `params.max_publish_qos`.
    pub qos: QoS,
    /// Reading period (the sketch's `interval`), default 2000.
    pub interval_ms: u64,
    /// The WiFi wait loop's `delay(500)`.
    pub wifi_poll_ms: u64,
    /// Subscribed after every CONNACK (clean session); none in the reference sketch.
    pub subscriptions: Vec<(String, QoS)>,
    /// Append `U+001F d<device_index>.s<seq>` to every payload (see [`parse_tag`]).
    pub tag_payloads: bool,
    /// Publish the readings retained (the sketch's `publish(topic, payload, true)`).
    pub retain: bool,
    /// A last will, sent in CONNECT (`connect(id, willTopic, willQos, willRetain, willMessage)`).
    pub will: Option<LastWill>,
    /// Stop publishing after this many publish calls (a measurement run); `None` = never.
    pub max_publish_calls: Option<u64>,
}

impl DeviceConfig {
    /// The reference sketch on `profile`'s library.
    pub fn new(profile: Profile) -> DeviceConfig {
        DeviceConfig {
            profile,
            params: profile.params(),
            device_index: 0,
            client_id: "ESP32Client".to_string(),
            temperature_topic: "ESP32/TEM".to_string(),
            humidity_topic: "ESP32/HUM".to_string(),
            qos: QoS::AtMostOnce,
            interval_ms: 2_000,
            wifi_poll_ms: 500,
            subscriptions: Vec::new(),
            tag_payloads: false,
            retain: false,
            will: None,
            max_publish_calls: None,
        }
    }

    /// Every check, one error per bad value.
    pub fn validate(&self) -> Result<(), DeviceError> {
        let p = &self.params;
        if self.interval_ms == 0 {
            return Err(DeviceError::IntervalZero);
        }
        if self.wifi_poll_ms == 0 {
            return Err(DeviceError::WifiPollZero);
        }
        if p.reconnect_interval_ms == 0 {
            return Err(DeviceError::ReconnectIntervalZero);
        }
        if p.tcp_connect_timeout_ms == 0 || p.connack_timeout_ms == 0 {
            return Err(DeviceError::ConnectTimeoutZero);
        }
        if self.qos > p.max_publish_qos {
            return Err(DeviceError::PublishQosUnsupported {
                profile: self.profile,
                qos: self.qos,
            });
        }
        for t in [&self.temperature_topic, &self.humidity_topic] {
            if !topic::valid_topic_name(t) {
                return Err(DeviceError::InvalidTopic(t.clone()));
            }
        }
        for (f, q) in &self.subscriptions {
            if !topic::valid_topic_filter(f) {
                return Err(DeviceError::InvalidFilter(f.clone()));
            }
            if *q > p.max_subscribe_qos {
                return Err(DeviceError::SubscribeQosUnsupported {
                    profile: self.profile,
                    qos: *q,
                });
            }
        }
        if self.profile.drops_oversized_inbound() {
            // The largest publish: the longer topic, a 7-character value (`-100.00`), the
            // longest tag.
            let topic_len = self.temperature_topic.len().max(self.humidity_topic.len());
            let tag_len = if self.tag_payloads {
                1 + 11 + 2 + 20
            } else {
                0
            };
            let needed = publish_len(topic_len, 7 + tag_len, self.qos);
            if needed > p.buffer_bytes {
                return Err(DeviceError::BufferTooSmall {
                    buffer_bytes: p.buffer_bytes,
                    needed,
                });
            }
        }
        Ok(())
    }
}

/// Why [`Device::new`] refused a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// `interval_ms` is 0.
    IntervalZero,
    /// `wifi_poll_ms` is 0.
    WifiPollZero,
    /// `params.reconnect_interval_ms` is 0 (a retry storm).
    ReconnectIntervalZero,
    /// `params.tcp_connect_timeout_ms` or `params.connack_timeout_ms` is 0.
    ConnectTimeoutZero,
    /// `qos` above what the library can publish (QoS 1/2 on PubSubClient).
    PublishQosUnsupported { profile: Profile, qos: QoS },
    /// A subscription QoS above what the library can request (QoS 2 on PubSubClient).
    SubscribeQosUnsupported { profile: Profile, qos: QoS },
    /// Not a valid topic name (empty, wildcard, U+0000).
    InvalidTopic(String),
    /// Not a valid topic filter.
    InvalidFilter(String),
    /// The largest publish would not fit the library's buffer.
    BufferTooSmall { buffer_bytes: usize, needed: usize },
    /// The client refused the derived [`ClientConfig`] (e.g. an over-long client id).
    Client(ClientError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::IntervalZero => f.write_str("interval_ms must be > 0"),
            DeviceError::WifiPollZero => f.write_str("wifi_poll_ms must be > 0"),
            DeviceError::ReconnectIntervalZero => f.write_str("reconnect_interval_ms must be > 0"),
            DeviceError::ConnectTimeoutZero => {
                f.write_str("tcp_connect_timeout_ms and connack_timeout_ms must be > 0")
            }
            DeviceError::PublishQosUnsupported { profile, qos } => write!(
                f,
                "{} cannot publish with QoS {}",
                profile.name(),
                qos.as_u8()
            ),
            DeviceError::SubscribeQosUnsupported { profile, qos } => write!(
                f,
                "{} cannot subscribe with QoS {}",
                profile.name(),
                qos.as_u8()
            ),
            DeviceError::InvalidTopic(t) => write!(f, "invalid topic name {t:?}"),
            DeviceError::InvalidFilter(t) => write!(f, "invalid topic filter {t:?}"),
            DeviceError::BufferTooSmall {
                buffer_bytes,
                needed,
            } => write!(
                f,
                "a publish needs {needed} bytes, the buffer holds {buffer_bytes}"
            ),
            DeviceError::Client(e) => write!(f, "client configuration: {e:?}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DeviceError {}

/// Why an established connection was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    /// The client gave it up (transport closed, keep-alive timeout, bad bytes from the broker).
    Client(LostReason),
    /// The WiFi driver reported the link down.
    WifiDown,
}

impl LossReason {
    /// PubSubClient's `state()` after this loss.
    pub fn state(self) -> i8 {
        match self {
            LossReason::Client(LostReason::KeepAliveTimeout)
            | LossReason::Client(LostReason::ConnAckTimeout) => state::CONNECTION_TIMEOUT,
            _ => state::CONNECTION_LOST,
        }
    }
}

/// What the device tells its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// One line on the serial port (without the newline and without a timestamp prefix; see
    /// [`WallClock::format_line`]).
    Serial(SerialLine),
    /// The WiFi driver starts joining; answer with [`Device::handle_wifi`] `(true)` when up.
    JoinWifi,
    /// Open a TCP connection to the broker; answer with [`Device::handle_transport_connected`]
    /// or [`Device::handle_transport_failed`].
    OpenTransport,
    /// Close (or abandon the opening of) the transport; no answer expected.
    CloseTransport,
    /// Take a sensor reading; answer with [`Device::handle_reading`] (at the same `now` to
    /// model the sketch, which reads and publishes in one step).
    ReadSensor,
    /// CONNACK accepted.
    Connected,
    /// A connection attempt ended without a connection; `state` is PubSubClient's code.
    ConnectFailed { state: i8 },
    /// An established connection was lost.
    ConnectionLost { reason: LossReason },
    /// The application called publish: `accepted: false` means the library refused it (not
    /// connected, no outbox, buffer too small): the message is lost at the device.
    PublishCalled {
        seq: u64,
        topic: String,
        qos: QoS,
        accepted: bool,
    },
    /// The library reports that publish done: QoS 0 written to the transport, QoS 1 PUBACK,
    /// QoS 2 PUBCOMP.
    PublishCompleted { seq: u64 },
    /// A message from a subscription, handed to the sketch's callback.
    Message { topic: String, payload: Vec<u8> },
    /// An inbound packet over the buffer was read and dropped (PubSubClient).
    InboundDropped { bytes: usize },
    /// The library deleted an unacknowledged message from its outbox (esp-mqtt's expiry): it
    /// may or may not have reached the broker.
    PublishExpired { seq: u64 },
}

/// One output of [`Device::poll_output`]: the crate's one output type
/// ([`crate::driver::Output`]), with one transport (`()`) and [`DeviceEvent`]s.
pub type Output = crate::driver::Output<(), DeviceEvent>;

/// The one place where a profile becomes the core client's configuration.
pub fn client_config(config: &DeviceConfig) -> ClientConfig {
    let p = &config.params;
    let mut c = ClientConfig::new(config.client_id.clone());
    c.keep_alive_s = p.keep_alive_s;
    c.clean_session = p.clean_session;
    c.connect_timeout = ms(p.connack_timeout_ms);
    c.max_queued_messages = p.max_queued_messages;
    if config.profile.drops_oversized_inbound() {
        // Inbound packets over the buffer are read and skipped, the connection kept; outbound
        // ones are refused by `Client::publish`, as PubSubClient does.
        c.max_packet_bytes = p.buffer_bytes;
        c.oversized_inbound = Oversized::Drop;
    } else {
        c.max_packet_bytes = limits::PACKET_SIZE_DEFAULT_MAX_BYTES;
    }
    c.will = config.will.clone();
    c.resend_interval = p.resend_interval_ms.map_or(Duration::ZERO, ms);
    c.outbox_expiry = p.outbox_expiry_ms.map_or(Duration::ZERO, ms);
    c
}

/// Where the sketch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `setup()`'s WiFi wait loop.
    JoiningWifi,
    /// `setup()`'s MQTT connect loop: no readings yet.
    Connecting,
    /// `loop()`.
    Running,
}

/// The MQTT connection, as the application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// No attempt in progress.
    Idle,
    /// OpenTransport asked; TCP connect awaited until `deadline`.
    Tcp { deadline: Instant },
    /// CONNECT sent, CONNACK awaited until `deadline` (the client's connect timeout).
    ConnAck { deadline: Instant },
    /// PubSubClient: the socket died while CONNACK was awaited; `connect()` still blocks until
    /// the socket timeout.
    DeadConnAck { until: Instant },
    /// CONNACK 0.
    Up,
}

/// Bytes of a PUBLISH with this topic and payload length.
fn publish_len(topic_len: usize, payload_len: usize, qos: QoS) -> usize {
    let rem = 2 + topic_len + payload_len + if qos == QoS::AtMostOnce { 0 } else { 2 };
    1 + codec::remaining_len_bytes(rem) + rem
}

/// The virtual ESP32. See the module documentation for the contract.
#[derive(Debug)]
pub struct Device {
    config: DeviceConfig,
    client: Client,
    now: Instant,
    phase: Phase,
    link: Link,
    wifi_up: bool,
    /// OpenTransport asked and not yet closed, failed or abandoned.
    transport_open: bool,
    /// Next WiFi wait-loop tick (`setup()` only).
    next_dot: Option<Instant>,
    /// The dot line being printed: when its first dot was printed, and how many.
    dots: Option<(Instant, usize)>,
    /// Next connect attempt (while `Link::Idle` after setup's WiFi join).
    retry_at: Option<Instant>,
    /// Next reading (`loop()` only).
    next_reading: Option<Instant>,
    awaiting_reading: bool,
    seq: u64,
    seqs: BTreeMap<PublishId, u64>,
    events: VecDeque<DeviceEvent>,
}

/// Dots per serial line before a new line starts: the sketch prints one endless line; a
/// simulated device that never gets WiFi would otherwise hold one line forever.
pub const WIFI_DOTS_PER_LINE_MAX: usize = 80;

impl Device {
    /// Powers the device on at `now`: prints `Connecting to WiFi` and asks for WiFi.
    pub fn new(config: DeviceConfig, now: Instant) -> Result<Device, DeviceError> {
        config.validate()?;
        let client = Client::new(client_config(&config), now).map_err(DeviceError::Client)?;
        let mut d = Device {
            next_dot: Some(now + ms(config.wifi_poll_ms)),
            config,
            client,
            now,
            phase: Phase::JoiningWifi,
            link: Link::Idle,
            wifi_up: false,
            transport_open: false,
            dots: None,
            retry_at: None,
            next_reading: None,
            awaiting_reading: false,
            seq: 0,
            seqs: BTreeMap::new(),
            events: VecDeque::new(),
        };
        d.print(LINE_WIFI_CONNECTING);
        d.events.push_back(DeviceEvent::JoinWifi);
        Ok(d)
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }
    /// MQTT connected (CONNACK 0 and not lost since).
    pub fn is_connected(&self) -> bool {
        self.link == Link::Up
    }
    /// Inside a blocking `connect()` (PubSubClient): the sketch's loop is stopped.
    pub fn is_blocked(&self) -> bool {
        self.config.profile.blocking_connect() && self.attempting()
    }
    /// Publish calls so far (the last `seq`).
    pub fn publish_calls(&self) -> u64 {
        self.seq
    }
    /// The MQTT client inside, for inspection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    // ----- inputs -----

    /// The WiFi driver: the link is up (joined, got an address) or down.
    pub fn handle_wifi(&mut self, now: Instant, up: bool) {
        self.advance(now);
        if up == self.wifi_up {
            return;
        }
        self.wifi_up = up;
        if up || self.phase == Phase::JoiningWifi {
            // Up: noticed by the wait loop at its next dot, or by the next connect attempt.
            return;
        }
        if self.transport_open {
            self.transport_open = false;
            self.events.push_back(DeviceEvent::CloseTransport);
        }
        self.transport_gone(true);
        self.events.push_back(DeviceEvent::JoinWifi);
    }

    /// The transport asked for with [`DeviceEvent::OpenTransport`] is up: CONNECT goes out.
    pub fn handle_transport_connected(&mut self, now: Instant) {
        self.advance(now);
        match self.link {
            Link::Tcp { .. } => {
                self.client.handle_connected(self.now);
                self.link = Link::ConnAck {
                    deadline: self.now + ms(self.config.params.connack_timeout_ms),
                };
                self.drain_client();
            }
            // Not asked for (or abandoned): close it.
            _ => self.events.push_back(DeviceEvent::CloseTransport),
        }
    }

    /// The TCP connect failed (refused, unreachable, timed out on the caller's side).
    pub fn handle_transport_failed(&mut self, now: Instant) {
        self.advance(now);
        if let Link::Tcp { .. } = self.link {
            self.transport_open = false;
            self.fail_attempt(state::CONNECT_FAILED);
        }
    }

    /// Bytes read from the transport.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.advance(now);
        if !matches!(self.link, Link::ConnAck { .. } | Link::Up) {
            return;
        }
        // PubSubClient's buffer limit is the client's `Oversized::Drop` (see `client_config`).
        self.client.handle_bytes(self.now, data);
        self.drain_client();
    }

    /// The transport closed (by the peer, or reset).
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.advance(now);
        if !self.transport_open {
            return;
        }
        self.transport_open = false;
        self.transport_gone(false);
    }

    /// `n` bytes were written to the transport. Accepted for the contract; the application
    /// does not use it (PubSubClient's writes return when the bytes are in the socket).
    pub fn handle_sent(&mut self, now: Instant, n: usize) {
        self.advance(now);
        let _ = n;
    }

    /// Timers: WiFi wait loop, TCP connect timeout, CONNACK wait, retries, readings, and the
    /// client's (keep alive).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.client.handle_timeout(self.now);
        self.drain_client();
        if self.next_dot.is_some_and(|t| t <= self.now) {
            self.wifi_tick();
        }
        match self.link {
            Link::Tcp { deadline } if deadline <= self.now => {
                self.fail_attempt(state::CONNECT_FAILED)
            }
            Link::DeadConnAck { until } if until <= self.now => {
                self.fail_attempt(state::CONNECTION_TIMEOUT)
            }
            _ => {}
        }
        if self.link == Link::Idle && self.retry_at.is_some_and(|t| t <= self.now) {
            self.start_attempt();
        }
        if self.config.max_publish_calls.is_some_and(|m| self.seq >= m) {
            self.next_reading = None; // a measurement run: done
        }
        if !self.is_blocked() && self.next_reading.is_some_and(|t| t <= self.now) {
            self.next_reading = Some(self.now + ms(self.config.interval_ms));
            self.awaiting_reading = true;
            self.events.push_back(DeviceEvent::ReadSensor);
        }
    }

    /// The answer to [`DeviceEvent::ReadSensor`]: prints the reading and publishes it. Ignored
    /// when no reading was asked for.
    pub fn handle_reading(&mut self, now: Instant, reading: Reading) {
        self.advance(now);
        if !self.awaiting_reading {
            return;
        }
        self.awaiting_reading = false;
        if reading.temperature_c.is_nan() || reading.humidity_pct.is_nan() {
            self.print(LINE_SENSOR_FAILED);
            return;
        }
        self.print(LINE_PUBLISH);
        self.print(&temperature_line(reading.temperature_c));
        self.print(&humidity_line(reading.humidity_pct));
        let t = self.config.temperature_topic.clone();
        let h = self.config.humidity_topic.clone();
        self.publish(&t, &payload_value(reading.temperature_c));
        self.publish(&h, &payload_value(reading.humidity_pct));
    }

    // ----- outputs -----

    /// The next output; call until [`Output::Timeout`]. Transmit bytes are moved into `buf`
    /// (swapped when it is empty).
    pub fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output {
        if self.client.poll_transmit(buf).is_some() {
            // QoS 0 publishes complete when handed out.
            self.drain_client();
            return Output::Transmit(());
        }
        if let Some(ev) = self.events.pop_front() {
            return Output::Event(ev);
        }
        Output::Timeout(self.poll_timeout())
    }

    /// When [`Device::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = match self.link {
            Link::Tcp { deadline } => Some(deadline),
            Link::DeadConnAck { until } => Some(until),
            Link::Idle => self.retry_at,
            Link::ConnAck { .. } | Link::Up => None,
        };
        let reading = if self.is_blocked() {
            None
        } else {
            self.next_reading
        };
        [self.next_dot, link, reading, self.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- internals -----

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn attempting(&self) -> bool {
        matches!(
            self.link,
            Link::Tcp { .. } | Link::ConnAck { .. } | Link::DeadConnAck { .. }
        )
    }

    fn print(&mut self, text: &str) {
        self.events.push_back(DeviceEvent::Serial(SerialLine {
            at: self.now,
            text: text.to_string(),
        }));
    }

    fn flush_dots(&mut self) {
        if let Some((at, n)) = self.dots.take() {
            let text: String = core::iter::repeat_n('.', n).collect();
            self.events
                .push_back(DeviceEvent::Serial(SerialLine { at, text }));
        }
    }

    /// One turn of `while (WiFi.status() != WL_CONNECTED) { delay(500); Serial.print("."); }`.
    fn wifi_tick(&mut self) {
        let (at, n) = self.dots.unwrap_or((self.now, 0));
        self.dots = Some((at, n + 1));
        if self.wifi_up {
            self.next_dot = None;
            self.flush_dots();
            self.print(LINE_WIFI_CONNECTED);
            self.phase = Phase::Connecting;
            self.start_attempt();
            return;
        }
        if n + 1 >= WIFI_DOTS_PER_LINE_MAX {
            self.flush_dots();
        }
        self.next_dot = Some(self.now + ms(self.config.wifi_poll_ms));
    }

    fn start_attempt(&mut self) {
        self.retry_at = None;
        self.print(LINE_MQTT_CONNECTING);
        if !self.wifi_up {
            // No route: WiFiClient::connect fails at once.
            self.fail_attempt(state::CONNECT_FAILED);
            return;
        }
        self.transport_open = true;
        self.events.push_back(DeviceEvent::OpenTransport);
        self.link = Link::Tcp {
            deadline: self.now + ms(self.config.params.tcp_connect_timeout_ms),
        };
    }

    /// The attempt in progress ends without a connection.
    fn fail_attempt(&mut self, code: i8) {
        self.link = Link::Idle;
        // The client may still be connecting; its loss report is ignored (link is Idle).
        self.client.handle_disconnected(self.now);
        self.drain_client();
        if self.transport_open {
            self.transport_open = false;
            self.events.push_back(DeviceEvent::CloseTransport);
        }
        self.print(&failed_line(code));
        self.events
            .push_back(DeviceEvent::ConnectFailed { state: code });
        self.schedule_retry();
    }

    fn schedule_retry(&mut self) {
        self.retry_at = Some(self.now + ms(self.config.params.reconnect_interval_ms));
        // A reading that fell due during a blocking connect is taken now.
        if let Some(t) = self.next_reading {
            if t < self.now {
                self.next_reading = Some(self.now);
            }
        }
    }

    /// The socket is gone (closed by the peer, or with the WiFi link); `transport_open` is
    /// already false.
    fn transport_gone(&mut self, wifi: bool) {
        match self.link {
            Link::Idle | Link::DeadConnAck { .. } => {}
            Link::Tcp { .. } => self.fail_attempt(state::CONNECT_FAILED),
            Link::ConnAck { deadline } => {
                if self.config.profile.blocking_connect() {
                    self.link = Link::DeadConnAck { until: deadline };
                    self.client.handle_disconnected(self.now);
                    self.drain_client();
                } else {
                    self.fail_attempt(state::CONNECT_FAILED);
                }
            }
            Link::Up => {
                self.link = Link::Idle;
                self.client.handle_disconnected(self.now);
                self.drain_client();
                let reason = if wifi {
                    LossReason::WifiDown
                } else {
                    LossReason::Client(LostReason::TransportClosed)
                };
                self.lost(reason);
            }
        }
    }

    /// An established connection is lost.
    fn lost(&mut self, reason: LossReason) {
        self.link = Link::Idle;
        if self.transport_open {
            self.transport_open = false;
            self.events.push_back(DeviceEvent::CloseTransport);
        }
        self.events
            .push_back(DeviceEvent::ConnectionLost { reason });
        self.schedule_retry();
    }

    fn publish(&mut self, topic: &str, value: &str) {
        self.seq += 1;
        let seq = self.seq;
        let qos = self.config.qos;
        let payload = if self.config.tag_payloads {
            tag_payload(value.as_bytes(), self.config.device_index, seq)
        } else {
            value.as_bytes().to_vec()
        };
        let may = self.link == Link::Up
            || (qos != QoS::AtMostOnce && self.config.profile.queues_while_disconnected());
        let accepted = may
            && match self
                .client
                .publish(self.now, topic, &payload, qos, self.config.retain)
            {
                Ok(id) => {
                    self.seqs.insert(id, seq);
                    true
                }
                Err(_) => false,
            };
        self.events.push_back(DeviceEvent::PublishCalled {
            seq,
            topic: topic.to_string(),
            qos,
            accepted,
        });
        self.drain_client();
    }

    fn drain_client(&mut self) {
        while let Some(ev) = self.client.poll_event() {
            match ev {
                Event::Connected { .. } => {
                    if !matches!(self.link, Link::ConnAck { .. }) {
                        continue;
                    }
                    self.link = Link::Up;
                    self.retry_at = None;
                    self.print(LINE_MQTT_CONNECTED);
                    self.events.push_back(DeviceEvent::Connected);
                    if self.phase != Phase::Running {
                        self.phase = Phase::Running;
                        self.next_reading = Some(self.now + ms(self.config.interval_ms));
                    } else if let Some(t) = self.next_reading {
                        if t < self.now {
                            self.next_reading = Some(self.now);
                        }
                    }
                    self.subscribe_all();
                }
                Event::ConnectionRefused(code) => {
                    if matches!(self.link, Link::ConnAck { .. }) {
                        self.fail_attempt(code as i8);
                    }
                }
                Event::ConnectionLost(reason) => match self.link {
                    Link::ConnAck { .. } => {
                        let code = match reason {
                            LostReason::ConnAckTimeout => state::CONNECTION_TIMEOUT,
                            _ => state::CONNECT_FAILED,
                        };
                        self.fail_attempt(code);
                    }
                    Link::Up => self.lost(LossReason::Client(reason)),
                    _ => {}
                },
                Event::Published(id) => {
                    if let Some(seq) = self.seqs.remove(&id) {
                        self.events.push_back(DeviceEvent::PublishCompleted { seq });
                    }
                }
                Event::Expired(id) => {
                    if let Some(seq) = self.seqs.remove(&id) {
                        self.events.push_back(DeviceEvent::PublishExpired { seq });
                    }
                }
                Event::InboundDropped { bytes } => {
                    self.events.push_back(DeviceEvent::InboundDropped { bytes });
                }
                Event::Message { topic, payload, .. } => {
                    self.events
                        .push_back(DeviceEvent::Message { topic, payload });
                }
                Event::Subscribed { .. } | Event::Unsubscribed(_) => {}
            }
        }
    }

    fn subscribe_all(&mut self) {
        if self.config.subscriptions.is_empty() {
            return;
        }
        let filters: Vec<(&str, QoS)> = self
            .config
            .subscriptions
            .iter()
            .map(|(f, q)| (f.as_str(), *q))
            .collect();
        // Validated in `DeviceConfig::validate`; a refusal (too large) leaves it unsubscribed.
        let _ = self.client.subscribe(self.now, &filters);
        self.drain_client();
    }
}

/// The device is driven like every endpoint of the crate (one transport, `Conn = ()`); the WiFi,
/// transport and sensor inputs are its own methods.
impl Endpoint for Device {
    type Conn = ();
    type Event = DeviceEvent;
    fn handle_bytes(&mut self, now: Instant, _: (), data: &[u8]) {
        Device::handle_bytes(self, now, data);
    }
    fn handle_sent(&mut self, now: Instant, _: (), n: usize) {
        Device::handle_sent(self, now, n);
    }
    fn handle_closed(&mut self, now: Instant, _: ()) {
        self.handle_transport_closed(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Device::handle_timeout(self, now);
    }
    fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output {
        Device::poll_output(self, buf)
    }
}
