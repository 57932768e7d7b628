//! What a [`Client`] reports: its connection state, the events its caller polls,
//! why a connection was lost, and the errors of its commands.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::codec::{ConnectReturnCode, DecodeError, EncodeError, QoS};
use crate::limits;

// Names the doc comments link to.
#[cfg(doc)]
use super::Client;
#[cfg(doc)]
use crate::codec::Oversized;

/// Names one [`Client::publish`] call, from 1 upwards in call order, never reused. Unlike the
/// packet identifier it survives a re-send as new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishId(pub u64);

/// Where the client is with its current transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No transport: before the first [`Client::handle_connected`] or after
    /// [`Client::handle_disconnected`].
    Disconnected,
    /// CONNECT sent, CONNACK awaited.
    Connecting,
    /// CONNACK 0 received.
    Connected,
    /// Finished with this transport (connection lost or refused, or DISCONNECT sent): nothing
    /// more is read, sent or timed until the next [`Client::handle_connected`].
    Closed,
}

/// What the client reports to its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// CONNACK 0.
    Connected {
        /// The broker resumed a stored session (only possible without clean session).
        session_present: bool,
    },
    /// CONNACK with a refusal; the broker closes the connection.
    ConnectionRefused(ConnectReturnCode),
    /// An application message from the broker.
    Message {
        /// The topic it was published to.
        topic: String,
        /// The message body.
        payload: Vec<u8>,
        /// QoS it arrived at: the lower of the publisher's and the subscription's.
        qos: QoS,
        /// Sent because of a new subscription, from the broker's retained store.
        retain: bool,
        /// The broker re-sent it (QoS 1 may then be a duplicate already reported).
        dup: bool,
    },
    /// A publish completed: QoS 0 handed to `poll_transmit`, QoS 1 PUBACK, QoS 2 PUBCOMP (or the
    /// broker's PUBREC before a reconnect without session; see the module documentation).
    Published(PublishId),
    /// SUBACK: granted QoS per filter, in request order, `None` where refused.
    Subscribed {
        /// The packet identifier [`Client::subscribe`] returned.
        ///
        /// [`Client::subscribe`]: super::Client::subscribe
        pkid: u16,
        /// One entry per filter of the request, in its order.
        granted: Vec<Option<QoS>>,
    },
    /// UNSUBACK.
    Unsubscribed(u16),
    /// The connection is unusable; the caller closes the transport.
    ConnectionLost(LostReason),
    /// A QoS 1/2 message deleted unacknowledged after `outbox_expiry`: it may or may not have
    /// reached the broker.
    Expired(PublishId),
    /// A packet over `max_packet_bytes` skipped under [`Oversized::Drop`] (its whole size).
    InboundDropped {
        /// Bytes of the whole packet skipped.
        bytes: usize,
    },
}

/// Why a connection was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// [`Client::handle_disconnected`] (or `handle_connected` again) while connecting or connected.
    TransportClosed,
    /// Nothing arrived within keep alive after a PINGREQ.
    KeepAliveTimeout,
    /// No CONNACK within `connect_timeout`.
    ConnAckTimeout,
    /// The broker sent bytes the codec rejects (including a packet over `max_packet_bytes`).
    Decode(DecodeError),
    /// The broker sent a well-formed packet that breaks the protocol.
    Protocol(ProtocolViolation),
}

/// A broker's breach of MQTT 3.1.1, seen by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolViolation {
    /// A packet the server never sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT), a
    /// second CONNACK, or anything but CONNACK first (MQTT-3.2.0-1). Names the packet.
    UnexpectedPacket(&'static str),
    /// Session present with a clean session requested (MQTT-3.2.2-1).
    SessionPresentWithCleanSession,
    /// A SUBACK whose return codes do not match the SUBSCRIBE's filters (MQTT-3.9.3-1).
    SubAckCodeCount {
        /// Filters in the SUBSCRIBE.
        expected: usize,
        /// Return codes in the SUBACK.
        got: usize,
    },
}

/// Why a command was refused. Nothing was queued or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// Empty, with a wildcard or U+0000 (MQTT-3.3.2-2, MQTT-4.7.3-1).
    InvalidTopicName,
    /// Not a valid topic filter (MQTT-4.7.1).
    InvalidTopicFilter,
    /// SUBSCRIBE/UNSUBSCRIBE without filters (MQTT-3.8.3-3, MQTT-3.10.3-2).
    NoTopicFilters,
    /// More filters in one request than the broker accepts ([`limits::SUBSCRIBE_FILTERS_MAX`]).
    TooManyTopicFilters(usize),
    /// The packet would exceed `max_packet_bytes`.
    PacketTooLarge {
        /// Bytes the whole packet would take.
        size: usize,
        /// The limit, `max_packet_bytes`.
        max: usize,
    },
    /// A field the codec cannot encode (e.g. longer than 65,535 bytes).
    Encode(EncodeError),
    /// The in-flight window and the queue behind it are full.
    QueueFull,
    /// `max_inflight_messages` SUBSCRIBE/UNSUBSCRIBE requests await acknowledgement already.
    TooManyRequests,
    /// [`Client::new`]: the configuration cannot produce a valid CONNECT.
    InvalidConfig(&'static str),
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::TransportClosed => f.write_str("transport closed"),
            LostReason::KeepAliveTimeout => f.write_str("no answer to PINGREQ within keep alive"),
            LostReason::ConnAckTimeout => f.write_str("no CONNACK within the connect timeout"),
            LostReason::Decode(e) => write!(f, "malformed packet from the broker: {e}"),
            LostReason::Protocol(v) => write!(f, "protocol error by the broker: {v}"),
        }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::UnexpectedPacket(name) => write!(f, "unexpected {name}"),
            ProtocolViolation::SessionPresentWithCleanSession => {
                f.write_str("session present after a clean session request")
            }
            ProtocolViolation::SubAckCodeCount { expected, got } => {
                write!(f, "SUBACK with {got} return codes for {expected} filters")
            }
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidTopicName => f.write_str("invalid topic name"),
            ClientError::InvalidTopicFilter => f.write_str("invalid topic filter"),
            ClientError::NoTopicFilters => f.write_str("no topic filters"),
            ClientError::TooManyTopicFilters(n) => write!(
                f,
                "{n} topic filters in one request (max {})",
                limits::SUBSCRIBE_FILTERS_MAX
            ),
            ClientError::PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the limit of {max} bytes")
            }
            ClientError::Encode(e) => write!(f, "cannot encode: {e}"),
            ClientError::QueueFull => f.write_str("in-flight window and queue are full"),
            ClientError::TooManyRequests => {
                f.write_str("too many SUBSCRIBE/UNSUBSCRIBE awaiting acknowledgement")
            }
            ClientError::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClientError {}
