//! The one MQTT codec in the repository: all 14 MQTT 3.1.1 control packets (and protocol level 3,
//! "MQIsdp"), decoded zero-copy from a byte slice and encoded into a caller-owned buffer.
//!
//! * [`decode`] returns [`Decoded::NeedMore`] until a whole packet is present, then the packet and
//!   the bytes it consumed. The packet size limit is checked from the fixed header, before any of
//!   the body has to be buffered.
//! * [`encode`] writes into `&mut [u8]` and reports [`EncodeError::BufferTooSmall`] with the size it
//!   needs; [`encode_to_vec`] (feature `alloc`) appends to a `Vec`.
//!
//! Validation is strict (reserved flags, QoS 3, packet id 0, UTF-8 without U+0000, lengths that do
//! not add up) and no input panics: every error is a [`DecodeError`] the caller turns into a closed
//! connection.

mod connect;
mod frame;
#[cfg(feature = "alloc")]
mod framing;
mod publish;
mod subscribe;

pub use connect::{ConnAck, Connect, ConnectReturnCode, Protocol, Will};
pub use frame::{parse_fixed_header, remaining_len_bytes, FixedHeader};
#[cfg(feature = "alloc")]
pub use framing::{FeedStop, Frame, FrameBuffer, Oversized, Take};
pub use publish::Publish;
pub use subscribe::{
    SubAck, SubAckCodes, Subscribe, SubscribeFilters, UnsubAck, Unsubscribe, UnsubscribeTopics,
    SUBACK_FAILURE,
};

use core::fmt;

/// Quality of service level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0: delivered at most once, never acknowledged or resent.
    AtMostOnce = 0,
    /// QoS 1: acknowledged by PUBACK, resent until then, so possibly duplicated.
    AtLeastOnce = 1,
    /// QoS 2: the PUBREC / PUBREL / PUBCOMP handshake, delivered once.
    ExactlyOnce = 2,
}

impl QoS {
    /// QoS from its two-bit value; 3 is invalid (MQTT-3.3.1-4).
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
    /// The two-bit value as on the wire (0, 1 or 2).
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A control packet. Borrowed from the decode buffer; encoding takes the same type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Client to broker: open a session (section 3.1).
    Connect(Connect<'a>),
    /// Broker to client: the answer to CONNECT (3.2).
    ConnAck(ConnAck),
    /// Either way: an application message (3.3).
    Publish(Publish<'a>),
    /// QoS 1 acknowledgement of the PUBLISH with this packet identifier (3.4).
    PubAck(u16),
    /// QoS 2, step 1: the PUBLISH with this identifier is received (3.5).
    PubRec(u16),
    /// QoS 2, step 2: the sender releases the identifier (3.6).
    PubRel(u16),
    /// QoS 2, step 3: the exchange for this identifier is complete (3.7).
    PubComp(u16),
    /// Client to broker: add subscriptions (3.8).
    Subscribe(Subscribe<'a>),
    /// Broker to client: the QoS granted per filter of a SUBSCRIBE (3.9).
    SubAck(SubAck<'a>),
    /// Client to broker: remove subscriptions (3.10).
    Unsubscribe(Unsubscribe<'a>),
    /// Broker to client: the UNSUBSCRIBE is done (3.11).
    UnsubAck(UnsubAck),
    /// Client to broker: keep-alive probe (3.12).
    PingReq,
    /// Broker to client: the answer to PINGREQ (3.13).
    PingResp,
    /// Client to broker: a clean close; the will is discarded (3.14).
    Disconnect,
}

impl Packet<'_> {
    /// The packet's name as the MQTT specification and `mosquitto -v` spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect => "DISCONNECT",
        }
    }
}

/// Result of [`decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not a whole packet yet; at least this many more bytes are needed.
    NeedMore(usize),
    /// A packet and the number of bytes it took from the front of the buffer.
    Packet(Packet<'a>, usize),
}

/// Why bytes could not be decoded. Every variant means: close the connection (after a CONNACK for
/// [`DecodeError::UnsupportedProtocolLevel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A fifth remaining-length byte, or a continuation bit on the fourth (MQTT 2.2.3).
    MalformedRemainingLength,
    /// The fixed header announces more than the configured limit (checked before buffering).
    PacketTooLarge {
        /// Bytes of the whole packet, as its fixed header announces.
        size: usize,
        /// The limit it exceeds, bytes.
        max: usize,
    },
    /// Packet type 0 or 15 (reserved in 3.1.1).
    ReservedPacketType(u8),
    /// Fixed-header flags that 3.1.1 reserves for this packet type (MQTT-2.2.2-1, -2).
    InvalidFlags {
        /// The packet type, 1 to 14.
        packet_type: u8,
        /// The low nibble of the first byte as received.
        flags: u8,
    },
    /// QoS 3 in a PUBLISH, will, or subscription (MQTT-3.3.1-4, MQTT-3.1.2-14, MQTT-3-8.3-4).
    InvalidQoS,
    /// PUBLISH at QoS 0 with DUP set (MQTT-3.3.1-2).
    DupOnQoS0,
    /// The body ended before a field it announced.
    Truncated,
    /// The body is longer than its fields (remaining length disagrees with the content).
    TrailingBytes(usize),
    /// A string is not well-formed UTF-8 (MQTT-1.5.3-1).
    InvalidUtf8,
    /// A string contains U+0000 (MQTT-1.5.3-2).
    NullCharacter,
    /// A packet identifier of 0 (MQTT-2.3.1-1).
    ZeroPacketId,
    /// CONNECT protocol name is neither "MQTT" (level 4) nor "MQIsdp" (level 3) (MQTT-3.1.2-1).
    InvalidProtocolName,
    /// A known protocol name with a level we don't speak: answer CONNACK 0x01 (MQTT-3.1.2-2).
    UnsupportedProtocolLevel(u8),
    /// CONNECT reserved flag bit set (MQTT-3.1.2-3).
    ConnectReservedFlag,
    /// Will QoS or retain set without the will flag (MQTT-3.1.2-11, -13, -15).
    WillFlagsWithoutWill,
    /// Password flag without user name flag (MQTT-3.1.2-22).
    PasswordWithoutUsername,
    /// CONNACK flags other than session present, or an unknown return code.
    InvalidConnAck,
    /// PUBLISH topic name empty or containing a wildcard (MQTT-4.7.3-1, MQTT-3.3.2-2).
    InvalidTopicName,
    /// SUBSCRIBE/UNSUBSCRIBE without a single filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    NoTopicFilters,
    /// SUBSCRIBE requested-QoS byte with reserved bits set (MQTT-3-8.3-4).
    InvalidSubscribeOptions,
    /// SUBACK return code other than 0, 1, 2, 0x80 (MQTT-3.9.3-2).
    InvalidSubAckCode(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            MalformedRemainingLength => {
                f.write_str("malformed remaining length (more than 4 bytes)")
            }
            PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the limit of {max} bytes")
            }
            ReservedPacketType(t) => write!(f, "reserved packet type {t}"),
            InvalidFlags { packet_type, flags } => {
                write!(
                    f,
                    "invalid fixed-header flags {flags:#06b} for packet type {packet_type}"
                )
            }
            InvalidQoS => f.write_str("invalid QoS 3"),
            DupOnQoS0 => f.write_str("DUP flag set on a QoS 0 PUBLISH"),
            Truncated => f.write_str("packet body shorter than its fields"),
            TrailingBytes(n) => write!(f, "{n} unexpected bytes after the last field"),
            InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            NullCharacter => f.write_str("string contains U+0000"),
            ZeroPacketId => f.write_str("packet identifier 0"),
            InvalidProtocolName => f.write_str("protocol name is not MQTT or MQIsdp"),
            UnsupportedProtocolLevel(l) => write!(f, "unsupported protocol level {l}"),
            ConnectReservedFlag => f.write_str("CONNECT reserved flag set"),
            WillFlagsWithoutWill => f.write_str("will QoS/retain set without will flag"),
            PasswordWithoutUsername => f.write_str("password flag set without user name flag"),
            InvalidConnAck => f.write_str("invalid CONNACK flags or return code"),
            InvalidTopicName => f.write_str("topic name empty or contains a wildcard"),
            NoTopicFilters => f.write_str("SUBSCRIBE/UNSUBSCRIBE without topic filters"),
            InvalidSubscribeOptions => f.write_str("reserved bits set in requested QoS"),
            InvalidSubAckCode(c) => write!(f, "invalid SUBACK return code {c:#04x}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Why a packet could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer is too small; `required` bytes would fit the whole packet.
    BufferTooSmall {
        /// Bytes the whole encoded packet needs.
        required: usize,
    },
    /// A string or binary field longer than 65,535 bytes.
    FieldTooLong(usize),
    /// Remaining length beyond 268,435,455 bytes.
    PacketTooLarge(usize),
    /// A string with U+0000, which the receiver must reject.
    NullCharacter,
    /// Packet identifier 0 where one is required.
    ZeroPacketId,
    /// A SUBSCRIBE or UNSUBSCRIBE with no filters.
    NoTopicFilters,
    /// A field the receiver would reject (topic with wildcard, DUP on QoS 0, bad SUBACK code).
    InvalidField,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { required } => {
                write!(f, "buffer too small: {required} bytes required")
            }
            EncodeError::FieldTooLong(n) => write!(f, "field of {n} bytes exceeds 65535"),
            EncodeError::PacketTooLarge(n) => write!(f, "remaining length {n} exceeds 268435455"),
            EncodeError::NullCharacter => f.write_str("string contains U+0000"),
            EncodeError::ZeroPacketId => f.write_str("packet identifier 0"),
            EncodeError::NoTopicFilters => f.write_str("no topic filters"),
            EncodeError::InvalidField => f.write_str("field would be rejected by the receiver"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// Decodes one packet from the front of `buf`. `max_packet_bytes` bounds the whole frame and is
/// checked as soon as the fixed header is readable.
pub fn decode(buf: &[u8], max_packet_bytes: usize) -> Result<Decoded<'_>, DecodeError> {
    decode_as(buf, max_packet_bytes, Dialect::V311)
}

/// Which fixed-header flags a stream may carry besides 3.1.1's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// MQTT 3.1.1's rules (MQTT-2.2.2-1, -2).
    #[default]
    V311,
    /// An MQTT 3.1 connection: PUBREL, SUBSCRIBE and UNSUBSCRIBE may also carry DUP (flags
    /// 0b1010), which 3.1 clients set on a retry (3.1 gave these packets QoS 1 and a DUP flag).
    V31,
}

/// [`decode`] under `dialect`'s flag rules.
pub fn decode_as(
    buf: &[u8],
    max_packet_bytes: usize,
    dialect: Dialect,
) -> Result<Decoded<'_>, DecodeError> {
    let Some(h) = parse_fixed_header(buf)? else {
        // 1 type byte + at least 1 length byte.
        return Ok(Decoded::NeedMore(2usize.saturating_sub(buf.len()).max(1)));
    };
    let size = h.frame_len();
    if size > max_packet_bytes {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_bytes,
        });
    }
    // Reject impossible headers before waiting for their bodies.
    check_flags(h.packet_type(), h.flags(), dialect)?;
    if buf.len() < size {
        return Ok(Decoded::NeedMore(size - buf.len()));
    }
    let body = &buf[h.header_len..size];
    let packet = decode_body(h.packet_type(), h.flags(), body)?;
    Ok(Decoded::Packet(packet, size))
}

/// Fixed-header flag rules (MQTT 2.2.2): PUBLISH carries DUP/QoS/RETAIN, PUBREL, SUBSCRIBE and
/// UNSUBSCRIBE must carry 0b0010, everything else 0.
fn check_flags(packet_type: u8, flags: u8, dialect: Dialect) -> Result<(), DecodeError> {
    let ok = match packet_type {
        0 | 15 => return Err(DecodeError::ReservedPacketType(packet_type)),
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::InvalidQoS);
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::DupOnQoS0);
            }
            true
        }
        6 | 8 | 10 => flags == 0b0010 || (dialect == Dialect::V31 && flags == 0b1010),
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidFlags { packet_type, flags })
    }
}

fn decode_body(packet_type: u8, flags: u8, body: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let mut r = frame::Reader::new(body);
    let packet = match packet_type {
        1 => Packet::Connect(Connect::read(&mut r)?),
        2 => Packet::ConnAck(ConnAck::read(&mut r)?),
        3 => Packet::Publish(Publish::read(flags, &mut r)?),
        4 => Packet::PubAck(read_pkid(&mut r)?),
        5 => Packet::PubRec(read_pkid(&mut r)?),
        6 => Packet::PubRel(read_pkid(&mut r)?),
        7 => Packet::PubComp(read_pkid(&mut r)?),
        8 => Packet::Subscribe(Subscribe::read(&mut r)?),
        9 => Packet::SubAck(SubAck::read(&mut r)?),
        10 => Packet::Unsubscribe(Unsubscribe::read(&mut r)?),
        11 => Packet::UnsubAck(UnsubAck {
            pkid: read_pkid(&mut r)?,
        }),
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        14 => Packet::Disconnect,
        t => return Err(DecodeError::ReservedPacketType(t)),
    };
    r.finish()?;
    Ok(packet)
}

pub(crate) fn read_pkid(r: &mut frame::Reader<'_>) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::ZeroPacketId),
        id => Ok(id),
    }
}

impl Packet<'_> {
    fn header_and_len(&self) -> Result<(u8, usize), EncodeError> {
        Ok(match self {
            Packet::Connect(c) => (0x10, c.body_len()?),
            Packet::ConnAck(_) => (0x20, 2),
            Packet::Publish(p) => (p.byte1()?, p.body_len()?),
            Packet::PubAck(id) => (0x40, pkid_len(*id)?),
            Packet::PubRec(id) => (0x50, pkid_len(*id)?),
            Packet::PubRel(id) => (0x62, pkid_len(*id)?),
            Packet::PubComp(id) => (0x70, pkid_len(*id)?),
            Packet::Subscribe(s) => (0x82, s.body_len()?),
            Packet::SubAck(s) => (0x90, s.body_len()?),
            Packet::Unsubscribe(u) => (0xA2, u.body_len()?),
            Packet::UnsubAck(u) => (0xB0, pkid_len(u.pkid)?),
            Packet::PingReq => (0xC0, 0),
            Packet::PingResp => (0xD0, 0),
            Packet::Disconnect => (0xE0, 0),
        })
    }

    /// Bytes [`encode`] will write for this packet.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let (_, len) = self.header_and_len()?;
        if len > crate::limits::REMAINING_LENGTH_MAX_BYTES {
            return Err(EncodeError::PacketTooLarge(len));
        }
        Ok(1 + frame::remaining_len_bytes(len) + len)
    }
}

fn pkid_len(id: u16) -> Result<usize, EncodeError> {
    if id == 0 {
        Err(EncodeError::ZeroPacketId)
    } else {
        Ok(2)
    }
}

/// Encodes `packet` into the front of `buf`, returning the number of bytes written.
pub fn encode(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let (byte1, len) = packet.header_and_len()?;
    let mut w = frame::Writer::start(buf, byte1, len)?;
    match packet {
        Packet::Connect(c) => c.write(&mut w),
        Packet::ConnAck(c) => c.write(&mut w),
        Packet::Publish(p) => p.write(&mut w),
        Packet::PubAck(id) | Packet::PubRec(id) | Packet::PubRel(id) | Packet::PubComp(id) => {
            w.u16(*id)
        }
        Packet::Subscribe(s) => s.write(&mut w),
        Packet::SubAck(s) => s.write(&mut w),
        Packet::Unsubscribe(u) => u.write(&mut w),
        Packet::UnsubAck(u) => w.u16(u.pkid),
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
    }
    Ok(w.finish())
}

/// Appends the encoded packet to `out`.
#[cfg(feature = "alloc")]
pub fn encode_to_vec(
    packet: &Packet<'_>,
    out: &mut alloc::vec::Vec<u8>,
) -> Result<usize, EncodeError> {
    let n = packet.encoded_len()?;
    let start = out.len();
    out.resize(start + n, 0);
    match encode(packet, &mut out[start..]) {
        Ok(written) => {
            debug_assert_eq!(written, n);
            Ok(written)
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;
