//! SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (MQTT 3.1.1 sections 3.8 to 3.11).
//!
//! Lists are kept as the validated wire bytes after decoding (no allocation) or as a caller's slice
//! for encoding; both iterate the same way.

use super::frame::{string_len, Reader, Writer};
use super::{read_pkid, DecodeError, EncodeError, QoS};

/// SUBACK return code for a refused filter (MQTT 3.9.3).
pub const SUBACK_FAILURE: u8 = 0x80;

/// The filters of a SUBSCRIBE with their requested QoS: the decoded wire bytes or the caller's
/// list, iterated the same way.
#[derive(Clone, Copy, Debug)]
pub enum SubscribeFilters<'a> {
    /// Validated payload bytes of a decoded SUBSCRIBE.
    Wire(&'a [u8]),
    /// Filters and requested QoS to encode.
    List(&'a [(&'a str, QoS)]),
}

impl<'a> SubscribeFilters<'a> {
    /// Each filter with its requested QoS, in packet order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, QoS)> + 'a {
        let (wire, list): (&'a [u8], &'a [(&'a str, QoS)]) = match *self {
            SubscribeFilters::Wire(b) => (b, &[]),
            SubscribeFilters::List(l) => (&[], l),
        };
        let mut r = Reader::new(wire);
        let from_wire = core::iter::from_fn(move || {
            if r.remaining() == 0 {
                return None;
            }
            // Validated when decoded: errors here are impossible, and end the iteration if not.
            let f = r.string().ok()?;
            let q = QoS::from_u8(r.u8().ok()?)?;
            Some((f, q))
        });
        from_wire.chain(list.iter().copied())
    }
    /// Number of filters (walks the list).
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// No filters: a SUBSCRIBE may not be sent or accepted so (MQTT-3.8.3-3).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// SUBSCRIBE: a client asks for the messages of one or more topic filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier, non-zero; the SUBACK carries it back.
    pub pkid: u16,
    /// Topic filters with their requested QoS; at least one.
    pub filters: SubscribeFilters<'a>,
}

impl<'a> Subscribe<'a> {
    pub(super) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let pkid = read_pkid(r)?;
        let payload = r.rest();
        let mut v = Reader::new(payload);
        if v.remaining() == 0 {
            return Err(DecodeError::NoTopicFilters);
        }
        while v.remaining() > 0 {
            v.string()?;
            let opts = v.u8()?;
            if opts & !0b11 != 0 {
                return Err(DecodeError::InvalidSubscribeOptions);
            }
            QoS::from_u8(opts).ok_or(DecodeError::InvalidQoS)?;
        }
        Ok(Subscribe {
            pkid,
            filters: SubscribeFilters::Wire(payload),
        })
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        if self.pkid == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        let mut n = 2;
        let mut count = 0;
        for (f, _) in self.filters.iter() {
            n += string_len(f)? + 1;
            count += 1;
        }
        if count == 0 {
            return Err(EncodeError::NoTopicFilters);
        }
        Ok(n)
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.pkid);
        for (f, q) in self.filters.iter() {
            w.binary(f.as_bytes());
            w.u8(q.as_u8());
        }
    }
}

/// SUBACK return codes: one byte per filter, `0`, `1`, `2` (granted QoS) or `0x80` (failure).
pub type SubAckCodes<'a> = &'a [u8];

/// SUBACK: the broker's answer to a SUBSCRIBE, one return code per filter in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// The identifier of the SUBSCRIBE this answers.
    pub pkid: u16,
    /// One return code per filter of the SUBSCRIBE, in the same order.
    pub codes: SubAckCodes<'a>,
}

impl<'a> SubAck<'a> {
    /// Granted QoS per filter, `None` where the subscription failed.
    pub fn granted(&self) -> impl Iterator<Item = Option<QoS>> + 'a {
        self.codes.iter().map(|&c| QoS::from_u8(c))
    }

    pub(super) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let pkid = read_pkid(r)?;
        let codes = r.rest();
        if let Some(&bad) = codes.iter().find(|&&c| !valid_suback(c)) {
            return Err(DecodeError::InvalidSubAckCode(bad));
        }
        Ok(SubAck { pkid, codes })
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        if self.pkid == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        if self.codes.iter().any(|&c| !valid_suback(c)) {
            return Err(EncodeError::InvalidField);
        }
        Ok(2 + self.codes.len())
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.pkid);
        w.bytes(self.codes);
    }
}

fn valid_suback(c: u8) -> bool {
    matches!(c, 0 | 1 | 2 | SUBACK_FAILURE)
}

/// The filters of an UNSUBSCRIBE: the decoded wire bytes or the caller's list, iterated the
/// same way.
#[derive(Clone, Copy, Debug)]
pub enum UnsubscribeTopics<'a> {
    /// Validated payload bytes of a decoded UNSUBSCRIBE.
    Wire(&'a [u8]),
    /// Filters to encode.
    List(&'a [&'a str]),
}

impl<'a> UnsubscribeTopics<'a> {
    /// Each filter, in packet order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (wire, list): (&'a [u8], &'a [&'a str]) = match *self {
            UnsubscribeTopics::Wire(b) => (b, &[]),
            UnsubscribeTopics::List(l) => (&[], l),
        };
        let mut r = Reader::new(wire);
        let from_wire = core::iter::from_fn(move || {
            if r.remaining() == 0 {
                None
            } else {
                r.string().ok()
            }
        });
        from_wire.chain(list.iter().copied())
    }
}

/// UNSUBSCRIBE: a client drops subscriptions, named by the exact filters it subscribed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier, non-zero; the UNSUBACK carries it back.
    pub pkid: u16,
    /// The filters to remove; at least one.
    pub topics: UnsubscribeTopics<'a>,
}

impl<'a> Unsubscribe<'a> {
    pub(super) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let pkid = read_pkid(r)?;
        let payload = r.rest();
        let mut v = Reader::new(payload);
        if v.remaining() == 0 {
            return Err(DecodeError::NoTopicFilters);
        }
        while v.remaining() > 0 {
            v.string()?;
        }
        Ok(Unsubscribe {
            pkid,
            topics: UnsubscribeTopics::Wire(payload),
        })
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        if self.pkid == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        let mut n = 2;
        let mut count = 0;
        for t in self.topics.iter() {
            n += string_len(t)?;
            count += 1;
        }
        if count == 0 {
            return Err(EncodeError::NoTopicFilters);
        }
        Ok(n)
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.pkid);
        for t in self.topics.iter() {
            w.binary(t.as_bytes());
        }
    }
}

/// UNSUBACK: the broker's answer to an UNSUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// The identifier of the UNSUBSCRIBE this answers.
    pub pkid: u16,
}

/// Equal when they list the same filters, whether decoded or built.
impl PartialEq for SubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for SubscribeFilters<'_> {}

/// Equal when they list the same filters, whether decoded or built.
impl PartialEq for UnsubscribeTopics<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for UnsubscribeTopics<'_> {}
