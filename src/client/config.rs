//! What a [`Client`] is built from: its CONNECT fields (client id, keep alive,
//! clean session, will, credentials) and its bounds and timers, each with its unit.

use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::{Oversized, QoS};
use crate::limits;
use crate::time::Duration;

// Names the doc comments link to.
#[cfg(doc)]
use super::{Client, Event};

/// The last will, owned by the configuration: published by the broker if the connection is lost
/// without DISCONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastWill {
    /// Topic the broker publishes the will to; no wildcards.
    pub topic: String,
    /// The will's body (at most 65,535 bytes: a length-prefixed CONNECT field).
    pub payload: Vec<u8>,
    /// QoS the broker publishes it at.
    pub qos: QoS,
    /// Whether the broker retains it when it publishes it.
    pub retain: bool,
}

/// When an incoming QoS 2 message is handed to the application ([`Event::Message`]). MQTT 3.1.1
/// allows either (4.3.3, Figure 4.3, methods A and B); neither delivers a message twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Qos2Delivery {
    /// At its PUBLISH, keeping only its packet identifier until PUBREL (method B; this client's
    /// default).
    #[default]
    AtPublish,
    /// At its PUBREL, the message held until then (method A), as libmosquitto, which
    /// `mosquitto_sub` runs on, and paho-mqtt do: libmosquitto 2.0.11 lib/handle_publish.c:158-166
    /// queues it with PUBREC and lib/handle_pubrel.c:95-108 calls `on_message` after PUBCOMP;
    /// paho-mqtt 1.6.1 client.py:3332-3337 stores it and `_handle_pubrel` (:3351-3356) delivers
    /// it. A message whose PUBREL never comes is never delivered. At most
    /// [`ClientConfig::max_held_qos2_messages`] are held.
    AtPubrel,
}

/// Client settings. Every bound has its unit in its name.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// May be empty with `clean_session` (the broker assigns one), MQTT-3.1.3-6.
    pub client_id: String,
    /// Keep alive in seconds, sent in CONNECT; 0 turns pings and their timeout off.
    pub keep_alive_s: u16,
    /// Ask for a new session discarded at disconnect (true), or to resume the broker's stored
    /// session, its subscriptions and queued QoS 1/2 messages included (false).
    pub clean_session: bool,
    /// Sent in CONNECT; the broker publishes it if this connection is lost without DISCONNECT.
    pub will: Option<LastWill>,
    /// User name sent in CONNECT, for the broker's password file.
    pub username: Option<String>,
    /// Only with a user name (MQTT-3.1.2-22).
    pub password: Option<Vec<u8>>,
    /// QoS 1/2 messages sent and not yet acknowledged (1..=65535; 0 counts as 1). Also bounds the
    /// SUBSCRIBE/UNSUBSCRIBE requests awaiting their acknowledgement.
    pub max_inflight_messages: usize,
    /// Messages accepted by [`Client::publish`] and waiting for the window or for a connection.
    /// 0 = no waiting room: a publish is accepted only when it can be sent at once.
    pub max_queued_messages: usize,
    /// Largest whole packet accepted from the broker (checked from the fixed header) and the
    /// largest PUBLISH, SUBSCRIBE or UNSUBSCRIBE [`Client`] will build.
    pub max_packet_bytes: usize,
    /// CONNACK must arrive this long after [`Client::handle_connected`]; zero = wait forever.
    pub connect_timeout: Duration,
    /// While connected, re-send an unacknowledged QoS 1/2 PUBLISH (DUP = 1) or PUBREL this long
    /// after it was last sent (esp-mqtt: 1 s); zero = only on reconnect (MQTT 3.1.1's rule).
    pub resend_interval: Duration,
    /// Delete a QoS 1/2 message not completed this long after [`Client::publish`] accepted it,
    /// checked only while connected, as esp-mqtt's outbox does (30 s there); reported as
    /// [`Event::Expired`]. Zero = never.
    pub outbox_expiry: Duration,
    /// A packet from the broker over `max_packet_bytes`: lose the connection (the default), or
    /// skip it and go on as PubSubClient does with its fixed buffer ([`Event::InboundDropped`]).
    pub oversized_inbound: Oversized,
    /// When an incoming QoS 2 message is delivered: at PUBLISH (the default) or at PUBREL.
    pub qos2_delivery: Qos2Delivery,
    /// With [`Qos2Delivery::AtPubrel`], incoming QoS 2 messages held for their PUBREL; one that
    /// arrives past it is delivered at its PUBLISH instead (never dropped, never twice).
    pub max_held_qos2_messages: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: String::new(),
            keep_alive_s: 60,
            clean_session: true,
            will: None,
            username: None,
            password: None,
            max_inflight_messages: limits::INFLIGHT_DEFAULT_MAX_MESSAGES,
            max_queued_messages: limits::QUEUED_DEFAULT_MAX_MESSAGES,
            max_packet_bytes: limits::PACKET_SIZE_DEFAULT_MAX_BYTES,
            connect_timeout: Duration::from_millis(limits::CONNECT_TIMEOUT_DEFAULT_MS),
            resend_interval: Duration::ZERO,
            outbox_expiry: Duration::ZERO,
            oversized_inbound: Oversized::Refuse,
            qos2_delivery: Qos2Delivery::AtPublish,
            max_held_qos2_messages: limits::QOS2_HELD_DEFAULT_MAX_MESSAGES,
        }
    }
}

impl ClientConfig {
    /// Defaults with this client id.
    pub fn new(client_id: impl Into<String>) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            ..ClientConfig::default()
        }
    }
}
