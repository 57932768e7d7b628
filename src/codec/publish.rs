//! PUBLISH (MQTT 3.1.1 section 3.3). The four acknowledgements are plain packet ids in [`super::Packet`].

use super::frame::{string_len, Reader, Writer};
use super::{read_pkid, DecodeError, EncodeError, QoS};

/// PUBLISH: an application message, from a client to the broker or from the broker to a
/// subscriber; borrows its topic and payload from the buffer it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    /// DUP: this is a re-send of an earlier attempt (MQTT-3.3.1-1); always false at QoS 0.
    pub dup: bool,
    /// The QoS this hop is delivered at.
    pub qos: QoS,
    /// RETAIN: to the broker, store it as the topic's retained message (an empty payload clears
    /// it); from the broker, it was retained, sent because of a new subscription (MQTT-3.3.1-8).
    pub retain: bool,
    /// Topic name, UTF-8, no wildcards (MQTT-3.3.2-2).
    pub topic: &'a str,
    /// Packet identifier; 0 (absent on the wire) at QoS 0.
    pub pkid: u16,
    /// Message body: whatever follows the variable header, possibly empty.
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    pub(super) fn read(flags: u8, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        // Flags were checked in check_flags: QoS is 0..=2 and DUP only with QoS > 0.
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
        let topic = r.string()?;
        if !crate::topic::valid_topic_name(topic) {
            return Err(DecodeError::InvalidTopicName);
        }
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else {
            read_pkid(r)?
        };
        Ok(Publish {
            dup: flags & 0b1000 != 0,
            qos,
            retain: flags & 0b0001 != 0,
            topic,
            pkid,
            payload: r.rest(),
        })
    }

    pub(super) fn byte1(&self) -> Result<u8, EncodeError> {
        if self.qos == QoS::AtMostOnce && self.dup {
            return Err(EncodeError::InvalidField);
        }
        Ok(0x30 | (u8::from(self.dup) << 3) | (self.qos.as_u8() << 1) | u8::from(self.retain))
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        if !crate::topic::valid_topic_name(self.topic) {
            return Err(EncodeError::InvalidField);
        }
        let id = if self.qos == QoS::AtMostOnce {
            0
        } else if self.pkid == 0 {
            return Err(EncodeError::ZeroPacketId);
        } else {
            2
        };
        Ok(string_len(self.topic)? + id + self.payload.len())
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.binary(self.topic.as_bytes());
        if self.qos != QoS::AtMostOnce {
            w.u16(self.pkid);
        }
        w.bytes(self.payload);
    }
}
