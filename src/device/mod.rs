//! The virtual ESP32: the board and the MQTT library (a [`Profile`]: PubSubClient 2.8, esp-mqtt,
//! this project's client) running a device application ([`crate::app::App`]; by default the
//! reference sketch, [`ReferenceSketch`]). The device owns what the library and the board do: the
//! WiFi join, the TCP connection, the connect attempts and their timeouts, the MQTT client with
//! the profile's rules (blocking connect, outbox, resend, expiry, buffer), the application's
//! timers; the application decides what to publish, subscribe and print. The simulator,
//! `mqsim device` / `mqsim_sim::tcp` (real TCP) and the ESP32-C3 firmware drive the same code.
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
//! # The reference sketch on this device, step by step
//! (The WiFi wait loop and the connect attempts are the device's; the lines printed and the
//! readings are the sketch's, [`crate::app::reference`].)
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
//! 4. A lost connection ([`DeviceEvent::ConnectionLost`]) is retried `reconnect_after_loss_ms`
//!    after the loss (PubSubClient: at once, the sketch's `if (!client.connected())
//!    reconnect();`) and then `reconnect_interval_ms` after each failed attempt (the sketch's
//!    `delay(2000)`), while the loop goes on.
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
pub(crate) mod runtime;
mod serial;
#[cfg(all(test, target_has_atomic = "ptr"))]
mod tests;

pub use profile::{Profile, ProfileParams};
pub use runtime::SERIAL_LINE_MAX_CHARS;
pub use serial::{
    failed_line, humidity_line, parse_tag, payload_value, tag_payload, temperature_line,
    SerialLine, WallClock, LINE_MQTT_CONNECTED, LINE_MQTT_CONNECTING, LINE_PUBLISH,
    LINE_SENSOR_FAILED, LINE_WIFI_CONNECTED, LINE_WIFI_CONNECTING, TAG_SEPARATOR,
};

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::app::reference::ReferenceSketch;
use crate::app::{App, Ctx, Event, Library, Value};
use crate::client::{
    Client, ClientConfig, ClientError, Event as ClientEvent, LastWill, LostReason,
};
use crate::codec::{Oversized, QoS};
use crate::driver::Endpoint;
use crate::limits;
use crate::time::{Duration, Instant};
use profile::ms;
use runtime::{Rules, Runtime};

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
    /// Degrees Celsius.
    pub temperature_c: f32,
    /// Relative humidity, percent.
    pub humidity_pct: f32,
}

/// The board and its MQTT library: everything of a device except its application. Build with
/// [`DeviceConfig::new`], change fields, then [`Device::new`] validates everything in one place.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The MQTT library.
    pub profile: Profile,
    /// The profile's numbers; [`Profile::params`] by default.
    pub params: ProfileParams,
    /// Names the device in payload tags and in the caller's logs.
    pub device_index: u32,
    /// Default `ESP32Client`, the reference sketch's (several devices need distinct ids).
    pub client_id: String,
    /// The power-on WiFi wait loop's period (the sketch's `delay(500)`), in ms.
    pub wifi_poll_ms: u64,
    /// Append `U+001F d<device_index>.s<seq>` to every payload (see [`parse_tag`]): how the
    /// simulator names each message without changing what the application sees.
    pub tag_payloads: bool,
    /// A last will, sent in CONNECT (`connect(id, willTopic, willQos, willRetain, willMessage)`).
    pub will: Option<LastWill>,
}

impl DeviceConfig {
    /// A device on `profile`'s library, with its defaults.
    pub fn new(profile: Profile) -> DeviceConfig {
        DeviceConfig {
            profile,
            params: profile.params(),
            device_index: 0,
            client_id: "ESP32Client".to_string(),
            wifi_poll_ms: 500,
            tag_payloads: false,
            will: None,
        }
    }

    /// Every check of the board and library settings, one error per bad value (the
    /// application's own are [`App::check`]'s).
    pub fn validate(&self) -> Result<(), DeviceError> {
        let p = &self.params;
        if self.wifi_poll_ms == 0 {
            return Err(DeviceError::WifiPollZero);
        }
        if p.reconnect_interval_ms == 0 {
            return Err(DeviceError::ReconnectIntervalZero);
        }
        if p.tcp_connect_timeout_ms == 0 || p.connack_timeout_ms == 0 {
            return Err(DeviceError::ConnectTimeoutZero);
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
    PublishQosUnsupported {
        /// The library.
        profile: Profile,
        /// The QoS asked for.
        qos: QoS,
    },
    /// A subscription QoS above what the library can request (QoS 2 on PubSubClient).
    SubscribeQosUnsupported {
        /// The library.
        profile: Profile,
        /// The QoS asked for.
        qos: QoS,
    },
    /// Not a valid topic name (empty, wildcard, U+0000).
    InvalidTopic(String),
    /// Not a valid topic filter.
    InvalidFilter(String),
    /// The largest publish would not fit the library's buffer.
    BufferTooSmall {
        /// The library's buffer, header included.
        buffer_bytes: usize,
        /// The largest publish's size.
        needed: usize,
    },
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
    ConnectFailed {
        /// PubSubClient's `state()` code ([`state`]).
        state: i8,
    },
    /// An established connection was lost.
    ConnectionLost {
        /// Why.
        reason: LossReason,
    },
    /// The application called publish: `accepted: false` means the library refused it (not
    /// connected, no outbox, buffer too small): the message is lost at the device.
    PublishCalled {
        /// The call's number, from 1.
        seq: u64,
        /// Its topic.
        topic: String,
        /// The payload as the application gave it (without the simulator's tag).
        payload: Vec<u8>,
        /// Its QoS.
        qos: QoS,
        /// The library took it.
        accepted: bool,
    },
    /// The library reports that publish done: QoS 0 written to the transport, QoS 1 PUBACK,
    /// QoS 2 PUBCOMP.
    PublishCompleted {
        /// The publish call's number.
        seq: u64,
    },
    /// A message from a subscription, handed to the sketch's callback.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload as it came (with the simulator's tag, when there is one).
        payload: Vec<u8>,
    },
    /// An inbound packet over the buffer was read and dropped (PubSubClient).
    InboundDropped {
        /// The packet's size.
        bytes: usize,
    },
    /// The library deleted an unacknowledged message from its outbox (esp-mqtt's expiry): it
    /// may or may not have reached the broker.
    PublishExpired {
        /// The publish call's number.
        seq: u64,
    },
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

/// The virtual ESP32: the board, the MQTT library (its [`Profile`]) and an application `A`. See
/// the module documentation for the contract.
#[derive(Debug)]
pub struct Device<A = ReferenceSketch> {
    config: DeviceConfig,
    app: A,
    rt: Runtime,
    phase: Phase,
    link: Link,
    wifi_up: bool,
    /// OpenTransport asked and not yet closed, failed or abandoned.
    transport_open: bool,
    /// Next WiFi wait-loop tick (power-on only).
    next_dot: Option<Instant>,
    /// When the last connection was lost or the last attempt failed, while `Link::Idle`: the
    /// next attempt is the reconnect delay after it.
    retry_from: Option<Instant>,
    /// `retry_from` is a loss (not a failed attempt).
    retry_after_loss: bool,
    /// Values the world set while the application could not run (a blocking connect).
    inputs: VecDeque<(String, Value)>,
}

impl<A: App> Device<A> {
    /// Powers the device on at `now`: the application's `setup()`, then the WiFi join.
    pub fn new(config: DeviceConfig, app: A, now: Instant) -> Result<Device<A>, DeviceError> {
        config.validate()?;
        app.check(Library {
            profile: config.profile,
            params: &config.params,
        })?;
        let client = Client::new(client_config(&config), now).map_err(DeviceError::Client)?;
        let rules = Rules {
            queues_offline: config.profile.queues_while_disconnected(),
            max_publish_qos: config.params.max_publish_qos,
            max_subscribe_qos: config.params.max_subscribe_qos,
            tag: config.tag_payloads.then_some(config.device_index),
        };
        let mut d = Device {
            next_dot: Some(now + ms(config.wifi_poll_ms)),
            config,
            app,
            rt: Runtime::new(client, rules, now),
            phase: Phase::JoiningWifi,
            link: Link::Idle,
            wifi_up: false,
            transport_open: false,
            retry_from: None,
            retry_after_loss: false,
            inputs: VecDeque::new(),
        };
        d.app.setup(&mut Ctx { rt: &mut d.rt });
        d.drain_client();
        d.rt.events.push_back(DeviceEvent::JoinWifi);
        Ok(d)
    }

    /// The board's and library's settings.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }
    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }
    /// MQTT connected (CONNACK 0 and not lost since).
    pub fn is_connected(&self) -> bool {
        self.link == Link::Up
    }
    /// Inside a blocking `connect()` (PubSubClient): the application does not run.
    pub fn is_blocked(&self) -> bool {
        self.config.profile.blocking_connect() && self.attempting()
    }
    /// Publish calls so far (the last `seq`).
    pub fn publish_calls(&self) -> u64 {
        self.rt.seq
    }
    /// The MQTT client inside, for inspection.
    pub fn client(&self) -> &Client {
        &self.rt.client
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
            // Up: noticed by the wait loop at its next turn, or by the next connect attempt.
            return;
        }
        if self.transport_open {
            self.transport_open = false;
            self.rt.events.push_back(DeviceEvent::CloseTransport);
        }
        self.transport_gone(true);
        self.rt.events.push_back(DeviceEvent::JoinWifi);
    }

    /// The transport asked for with [`DeviceEvent::OpenTransport`] is up: CONNECT goes out.
    pub fn handle_transport_connected(&mut self, now: Instant) {
        self.advance(now);
        match self.link {
            Link::Tcp { .. } => {
                self.rt.client.handle_connected(self.rt.now);
                self.link = Link::ConnAck {
                    deadline: self.rt.now + ms(self.config.params.connack_timeout_ms),
                };
                self.drain_client();
            }
            // Not asked for (or abandoned): close it.
            _ => self.rt.events.push_back(DeviceEvent::CloseTransport),
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
        self.rt.client.handle_bytes(self.rt.now, data);
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

    /// `n` bytes were written to the transport. Accepted for the contract; the library does not
    /// use it (PubSubClient's writes return when the bytes are in the socket).
    pub fn handle_sent(&mut self, now: Instant, n: usize) {
        self.advance(now);
        let _ = n;
    }

    /// Timers: WiFi wait loop, TCP connect timeout, CONNACK wait, retries, the client's (keep
    /// alive), and the application's.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.rt.client.handle_timeout(self.rt.now);
        self.drain_client();
        if self.next_dot.is_some_and(|t| t <= self.rt.now) {
            self.wifi_tick();
        }
        match self.link {
            Link::Tcp { deadline } if deadline <= self.rt.now => {
                self.fail_attempt(state::CONNECT_FAILED)
            }
            Link::DeadConnAck { until } if until <= self.rt.now => {
                self.fail_attempt(state::CONNECTION_TIMEOUT)
            }
            _ => {}
        }
        if self.link == Link::Idle && self.retry_at().is_some_and(|t| t <= self.rt.now) {
            self.start_attempt();
        }
        self.run_app();
    }

    /// The answer to [`DeviceEvent::ReadSensor`], for the application ([`Event::Reading`]).
    /// Ignored when no reading was asked for.
    pub fn handle_reading(&mut self, now: Instant, reading: Reading) {
        self.advance(now);
        if !self.rt.awaiting_reading {
            return;
        }
        self.rt.awaiting_reading = false;
        self.emit(Event::Reading(reading));
    }

    /// An input of the board changed (a door switch, a button): [`Event::Input`] for the
    /// application, at once or, inside a blocking connect, when the application runs again.
    pub fn handle_input(&mut self, now: Instant, name: &str, value: Value) {
        self.advance(now);
        self.inputs.push_back((name.to_string(), value));
        self.run_app();
    }

    // ----- outputs -----

    /// The next output; call until [`Output::Timeout`]. Transmit bytes are moved into `buf`
    /// (swapped when it is empty).
    pub fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output {
        if self.rt.client.poll_transmit(buf).is_some() {
            // QoS 0 publishes complete when handed out.
            self.drain_client();
            return Output::Transmit(());
        }
        if let Some(ev) = self.rt.events.pop_front() {
            return Output::Event(ev);
        }
        Output::Timeout(self.poll_timeout())
    }

    /// When [`Device::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = match self.link {
            Link::Tcp { deadline } => Some(deadline),
            Link::DeadConnAck { until } => Some(until),
            Link::Idle => self.retry_at(),
            Link::ConnAck { .. } | Link::Up => None,
        };
        let app = if self.is_blocked() {
            None
        } else if !self.inputs.is_empty() {
            Some(self.rt.now)
        } else {
            self.rt.next_timer()
        };
        [self.next_dot, link, app, self.rt.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- internals -----

    fn advance(&mut self, now: Instant) {
        if now > self.rt.now {
            self.rt.now = now;
        }
    }

    fn attempting(&self) -> bool {
        matches!(
            self.link,
            Link::Tcp { .. } | Link::ConnAck { .. } | Link::DeadConnAck { .. }
        )
    }

    /// The next connection attempt: the application's reconnect delay after the last loss or
    /// failure; by default the library's (the sketch's, for PubSubClient) wait after a loss
    /// ([`ProfileParams::reconnect_after_loss_ms`]) or after a failed attempt
    /// ([`ProfileParams::reconnect_interval_ms`]).
    fn retry_at(&self) -> Option<Instant> {
        let p = &self.config.params;
        let default = if self.retry_after_loss {
            p.reconnect_after_loss_ms
        } else {
            p.reconnect_interval_ms
        };
        let delay = self.rt.reconnect_delay.unwrap_or(ms(default));
        self.retry_from.map(|t| t + delay)
    }

    /// Hands `event` to the application, then what its calls made the client say.
    fn emit(&mut self, event: Event) {
        self.app.handle(&mut Ctx { rt: &mut self.rt }, event);
        self.drain_client();
    }

    /// The application's timers that are due, and the inputs held for it, unless it is held in
    /// a blocking connect.
    fn run_app(&mut self) {
        while !self.is_blocked() {
            if let Some((name, value)) = self.inputs.pop_front() {
                self.emit(Event::Input { name, value });
            } else if let Some(id) = self.rt.take_due_timer() {
                self.emit(Event::Timer(id));
            } else {
                break;
            }
        }
    }

    /// One turn of the WiFi wait loop (`while (WiFi.status() != WL_CONNECTED) { delay(500);
    /// ... }`): the application's turn, then the status check.
    fn wifi_tick(&mut self) {
        self.emit(Event::WifiWait);
        if self.wifi_up {
            self.next_dot = None;
            self.emit(Event::WifiConnected);
            self.phase = Phase::Connecting;
            self.start_attempt();
            return;
        }
        self.next_dot = Some(self.rt.now + ms(self.config.wifi_poll_ms));
    }

    fn start_attempt(&mut self) {
        self.retry_from = None;
        self.emit(Event::Connecting);
        if !self.wifi_up {
            // No route: WiFiClient::connect fails at once.
            self.fail_attempt(state::CONNECT_FAILED);
            return;
        }
        self.transport_open = true;
        self.rt.events.push_back(DeviceEvent::OpenTransport);
        self.link = Link::Tcp {
            deadline: self.rt.now + ms(self.config.params.tcp_connect_timeout_ms),
        };
    }

    /// The attempt in progress ends without a connection.
    fn fail_attempt(&mut self, code: i8) {
        self.link = Link::Idle;
        // The client may still be connecting; its loss report is ignored (link is Idle).
        self.rt.client.handle_disconnected(self.rt.now);
        self.drain_client();
        if self.transport_open {
            self.transport_open = false;
            self.rt.events.push_back(DeviceEvent::CloseTransport);
        }
        self.retry_from = Some(self.rt.now);
        self.retry_after_loss = false;
        self.emit(Event::ConnectFailed { state: code });
        self.rt
            .events
            .push_back(DeviceEvent::ConnectFailed { state: code });
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
                    self.rt.client.handle_disconnected(self.rt.now);
                    self.drain_client();
                } else {
                    self.fail_attempt(state::CONNECT_FAILED);
                }
            }
            Link::Up => {
                self.link = Link::Idle;
                self.rt.connected = false;
                self.rt.client.handle_disconnected(self.rt.now);
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
        self.rt.connected = false;
        if self.transport_open {
            self.transport_open = false;
            self.rt.events.push_back(DeviceEvent::CloseTransport);
        }
        self.rt
            .events
            .push_back(DeviceEvent::ConnectionLost { reason });
        self.retry_from = Some(self.rt.now);
        self.retry_after_loss = true;
        self.emit(Event::ConnectionLost { reason });
    }

    fn drain_client(&mut self) {
        while let Some(ev) = self.rt.client.poll_event() {
            match ev {
                ClientEvent::Connected { session_present } => {
                    if !matches!(self.link, Link::ConnAck { .. }) {
                        continue;
                    }
                    self.link = Link::Up;
                    self.rt.connected = true;
                    self.retry_from = None;
                    self.phase = Phase::Running;
                    self.rt.events.push_back(DeviceEvent::Connected);
                    self.emit(Event::Connected { session_present });
                }
                ClientEvent::ConnectionRefused(code) => {
                    if matches!(self.link, Link::ConnAck { .. }) {
                        self.fail_attempt(code as i8);
                    }
                }
                ClientEvent::ConnectionLost(reason) => match self.link {
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
                ClientEvent::Published(id) => {
                    if let Some(seq) = self.rt.seqs.remove(&id) {
                        self.rt
                            .events
                            .push_back(DeviceEvent::PublishCompleted { seq });
                        self.emit(Event::PublishDone(seq));
                    }
                }
                ClientEvent::Expired(id) => {
                    if let Some(seq) = self.rt.seqs.remove(&id) {
                        self.rt
                            .events
                            .push_back(DeviceEvent::PublishExpired { seq });
                        self.emit(Event::PublishExpired(seq));
                    }
                }
                ClientEvent::InboundDropped { bytes } => {
                    self.rt
                        .events
                        .push_back(DeviceEvent::InboundDropped { bytes });
                }
                ClientEvent::Message { topic, payload, .. } => {
                    // A tagged device's application sees payloads as the sender's application
                    // wrote them: the simulator's tag is its own business.
                    let visible = match parse_tag(&payload) {
                        Some((v, _, _)) if self.config.tag_payloads => v.to_vec(),
                        _ => payload.clone(),
                    };
                    self.rt.events.push_back(DeviceEvent::Message {
                        topic: topic.clone(),
                        payload,
                    });
                    self.emit(Event::Message {
                        topic,
                        payload: visible,
                    });
                }
                ClientEvent::Subscribed { .. } | ClientEvent::Unsubscribed(_) => {}
            }
        }
    }
}

/// The device is driven like every endpoint of the crate (one transport, `Conn = ()`); the WiFi,
/// transport, sensor and input events are its own methods.
impl<A: App> Endpoint for Device<A> {
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
