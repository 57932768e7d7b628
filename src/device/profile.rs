//! The MQTT libraries a virtual ESP32 can run, with their numbers and where each comes from.

use crate::codec::QoS;
use crate::limits;
use crate::time::Duration;

/// Which MQTT library the device's firmware uses. The profile decides behaviour (blocking
/// connect, outbox, inbound drop); the numbers live in [`ProfileParams`], defaults from
/// [`Profile::params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Arduino PubSubClient 2.8, the reference device of the seed: QoS 0 publishes only, no
    /// outbox (a publish while disconnected returns false and is lost), `connect()` blocks the
    /// sketch until CONNACK or the socket timeout, packets over the buffer are dropped on read.
    PubSubClient,
    /// ESP-IDF esp-mqtt: QoS 0/1/2, reconnects by itself, QoS 1/2 publishes queue in the outbox
    /// while disconnected (QoS 0 ones are dropped: "Losing qos0 data when client not
    /// connected"), the application never blocks on connect.
    EspMqtt,
    /// This project's own client ([`crate::client::Client`]) with its defaults, as the firmware
    /// and a backend on a PC run it: QoS 0/1/2, QoS 1/2 publishes queue while disconnected and
    /// are resent on reconnect (MQTT 3.1.1 §4.4), never re-sent while connected, never deleted
    /// unacknowledged; the application never blocks on connect.
    Mqsim,
}

/// A profile's numbers. Every bound has its unit in its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileParams {
    /// Keep alive sent in CONNECT.
    /// PubSubClient: `MQTT_KEEPALIVE` 15. esp-mqtt: `MQTT_KEEPALIVE_TICK` 120.
    pub keep_alive_s: u16,
    /// Clean session in CONNECT. PubSubClient: always 1 in `connect(id)`; esp-mqtt:
    /// `disable_clean_session` defaults to false.
    pub clean_session: bool,
    /// Highest QoS the library can publish with. PubSubClient: 0 (`publish()` has no QoS
    /// argument). esp-mqtt: 2.
    pub max_publish_qos: QoS,
    /// Highest QoS the library can subscribe with. PubSubClient: 1 ("subscribe QoS 0/1").
    /// esp-mqtt: 2.
    pub max_subscribe_qos: QoS,
    /// The packet buffer, header included. PubSubClient: `MQTT_MAX_PACKET_SIZE` 256: a larger
    /// inbound packet is read and dropped, a larger publish refused. esp-mqtt: 1024
    /// (`MQTT_BUFFER_SIZE_BYTE`); larger messages are fragmented, not dropped, so for esp-mqtt
    /// this number does not limit packets.
    pub buffer_bytes: usize,
    /// Bound on the TCP connect. PubSubClient runs over arduino-esp32's `WiFiClient`, whose
    /// `connect()` gives up after 3 s (`WIFI_CLIENT_DEF_CONN_TIMEOUT_MS`). esp-mqtt: the
    /// network timeout, 10 s (`MQTT_NETWORK_TIMEOUT_MS`).
    pub tcp_connect_timeout_ms: u64,
    /// Wait for CONNACK after CONNECT. PubSubClient: `MQTT_SOCKET_TIMEOUT` 15 s (it blocks the
    /// sketch all that time, even when the socket is already dead). esp-mqtt: 10 s.
    pub connack_timeout_ms: u64,
    /// Wait after a failed attempt before the next one. PubSubClient has no retry of its own:
    /// this is the reference sketch's (`reconnect()`: `while (!client.connected()) { ... if
    /// (client.connect(..)) ... else { ...; delay(2000); } }`, sim/sketches/reference/
    /// reference.ino, the seed tutorial's connect loop), 2 s. esp-mqtt: `MQTT_RECON_DEFAULT_MS`
    /// 10 s.
    pub reconnect_interval_ms: u64,
    /// Wait after a lost connection before the first attempt. PubSubClient: 0, the reference
    /// sketch's `loop()`: `if (!client.connected()) reconnect();` tries at once. esp-mqtt: the
    /// same 10 s (`esp_mqtt_client` waits `reconnect_timeout_ms` after a disconnect).
    pub reconnect_after_loss_ms: u64,
    /// esp-mqtt resends unacknowledged QoS > 0 PUBLISH (DUP = 1) and PUBREL this often while
    /// connected (`MQTT_DEFAULT_RETRANSMIT_TIMEOUT_MS` 1000). PubSubClient: none.
    pub resend_interval_ms: Option<u64>,
    /// esp-mqtt deletes outbox messages unacknowledged this long (`OUTBOX_EXPIRED_TIMEOUT_MS`
    /// 30 s). PubSubClient: no outbox.
    pub outbox_expiry_ms: Option<u64>,
    /// A write to the socket that cannot complete (the TCP send buffer is full because nothing
    /// is acknowledged) gives the connection up after this long. PubSubClient over arduino-esp32's
    /// `WiFiClient`: 10 retries of a 1 s `select()` (`WIFI_CLIENT_MAX_WRITE_RETRY`,
    /// `WIFI_CLIENT_SELECT_TIMEOUT_US`). esp-mqtt: the network timeout, 10 s.
    pub write_timeout_ms: u64,
    /// The TCP send buffer of the device's network stack: lwIP's `TCP_SND_BUF` in ESP-IDF's
    /// default configuration, 4 x 1436-byte MSS = 5,744 bytes. Writes wait when it is full.
    pub tcp_send_buffer_bytes: usize,
    /// Messages the library holds before `publish` fails. PubSubClient: 0 (it writes at once or
    /// returns false). esp-mqtt: the outbox is unbounded by default (`outbox_limit` 0); bounded
    /// here by the core's default queue.
    pub max_queued_messages: usize,
}

impl Profile {
    /// The library's defaults.
    pub fn params(self) -> ProfileParams {
        match self {
            Profile::PubSubClient => ProfileParams {
                keep_alive_s: 15,
                clean_session: true,
                max_publish_qos: QoS::AtMostOnce,
                max_subscribe_qos: QoS::AtLeastOnce,
                buffer_bytes: 256,
                tcp_connect_timeout_ms: 3_000,
                connack_timeout_ms: 15_000,
                reconnect_interval_ms: 2_000,
                reconnect_after_loss_ms: 0,
                resend_interval_ms: None,
                outbox_expiry_ms: None,
                write_timeout_ms: 10_000,
                tcp_send_buffer_bytes: 5_744,
                max_queued_messages: 0,
            },
            Profile::EspMqtt => ProfileParams {
                keep_alive_s: 120,
                clean_session: true,
                max_publish_qos: QoS::ExactlyOnce,
                max_subscribe_qos: QoS::ExactlyOnce,
                buffer_bytes: 1024,
                tcp_connect_timeout_ms: 10_000,
                connack_timeout_ms: 10_000,
                reconnect_interval_ms: 10_000,
                reconnect_after_loss_ms: 10_000,
                resend_interval_ms: Some(1_000),
                outbox_expiry_ms: Some(30_000),
                write_timeout_ms: 10_000,
                tcp_send_buffer_bytes: 5_744,
                max_queued_messages: limits::QUEUED_DEFAULT_MAX_MESSAGES,
            },
            // The core client's own defaults (`ClientConfig::default`, src/limits.rs); the
            // connection numbers are this project's choices for its firmware.
            Profile::Mqsim => ProfileParams {
                keep_alive_s: 60,
                clean_session: true,
                max_publish_qos: QoS::ExactlyOnce,
                max_subscribe_qos: QoS::ExactlyOnce,
                buffer_bytes: limits::PACKET_SIZE_DEFAULT_MAX_BYTES,
                tcp_connect_timeout_ms: limits::CONNECT_TIMEOUT_DEFAULT_MS,
                connack_timeout_ms: limits::CONNECT_TIMEOUT_DEFAULT_MS,
                reconnect_interval_ms: limits::RECONNECT_DEFAULT_MS,
                reconnect_after_loss_ms: limits::RECONNECT_DEFAULT_MS,
                resend_interval_ms: None,
                outbox_expiry_ms: None,
                write_timeout_ms: 10_000,
                // The firmware's embassy-net socket transmit buffer (firmware/src/main.rs,
                // TCP_TX_BYTES).
                tcp_send_buffer_bytes: 2_048,
                max_queued_messages: limits::QUEUED_DEFAULT_MAX_MESSAGES,
            },
        }
    }

    /// The three profiles.
    pub const ALL: [Profile; 3] = [Profile::PubSubClient, Profile::EspMqtt, Profile::Mqsim];

    /// `connect()` blocks the application loop until CONNACK, refusal or timeout.
    pub fn blocking_connect(self) -> bool {
        matches!(self, Profile::PubSubClient)
    }

    /// QoS 1/2 publishes are accepted while disconnected (the outbox).
    pub fn queues_while_disconnected(self) -> bool {
        matches!(self, Profile::EspMqtt | Profile::Mqsim)
    }

    /// Inbound packets over `buffer_bytes` are read and dropped, the connection stays up.
    pub fn drops_oversized_inbound(self) -> bool {
        matches!(self, Profile::PubSubClient)
    }

    /// The name used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Profile::PubSubClient => "pubsubclient",
            Profile::EspMqtt => "esp-mqtt",
            Profile::Mqsim => "mqsim",
        }
    }
}

/// Milliseconds as a [`Duration`].
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
