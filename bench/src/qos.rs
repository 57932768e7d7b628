//! The bench's own model of the MQTT 3.1.1 QoS 1 and 2 exchanges, both ends: which packet ids a
//! publisher has in flight and at which step, which ids a subscriber owes a PUBCOMP for, and what
//! each end answers.
//!
//! # Deliberately independent
//!
//! This is a second, minimal implementation of the protocol, kept apart on purpose from the
//! crate's client (`mqsim::client`) and broker: the bench measures other brokers too (mosquitto,
//! rumqttd, ...), so a misreading of the specification in our client must not be shared by the
//! yardstick, where it would make our broker look right to itself and other brokers look wrong
//! (or the other way round). Only the codec (bytes to [`Packet`]) is shared. Keep it that way: do
//! not replace this file with calls into `mqsim::client`, and do not "fix" one from the other
//! without checking the specification.
//!
//! It is also strict: any acknowledgement that does not match an id in the expected step (a
//! duplicate PUBACK, a PUBCOMP before PUBREC, a PUBACK at QoS 2) is a protocol error of the broker,
//! reported by the caller as `unexpected <packet>`.

use mqsim::codec::Packet;
use mqsim::QoS;

/// Packet ids, 1 to 65,535, indexed directly (id 0 is never used).
const ID_SLOTS: usize = 1 << 16;

/// Where a publisher's packet id is in its exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Not in use: may be given to the next PUBLISH.
    Free,
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent,
    /// PUBREL sent, waiting for PUBCOMP (QoS 2).
    Released,
}

/// A packet the broker sent that does not fit the exchange (the caller names it in its error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unexpected;

/// What a publisher answers to a packet from the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublisherReply {
    /// Nothing to send (a PUBACK or PUBCOMP freed its id, or a PINGRESP).
    Nothing,
    /// PUBREC received: send PUBREL with this id.
    PubRel(u16),
}

/// A publisher's packet ids at QoS 1 or 2: which are in flight, and at which step.
#[derive(Clone, Debug)]
pub struct PublisherIds {
    qos: QoS,
    slots: Vec<Slot>,
    /// The id given last; the next search starts after it.
    last_id: u16,
    in_flight: usize,
}

impl PublisherIds {
    /// No id in use, for PUBLISHes at `qos`.
    pub fn new(qos: QoS) -> PublisherIds {
        PublisherIds {
            qos,
            slots: vec![Slot::Free; ID_SLOTS],
            last_id: 0,
            in_flight: 0,
        }
    }

    /// Ids given and not yet freed by PUBACK or PUBCOMP.
    #[inline]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes the next free id after the last one given (wrapping, never 0) for a PUBLISH.
    ///
    /// The caller keeps `in_flight()` below 65,535, so that a free id exists.
    #[inline]
    pub fn take(&mut self) -> u16 {
        debug_assert!(self.in_flight < ID_SLOTS - 1, "no free packet id");
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0 && self.slots[usize::from(self.last_id)] == Slot::Free {
                break;
            }
        }
        self.slots[usize::from(self.last_id)] = Slot::Sent;
        self.in_flight += 1;
        self.last_id
    }

    /// A packet from the broker: PUBACK (QoS 1) or PUBREC and PUBCOMP (QoS 2) for an id in the
    /// matching step, or PINGRESP. Anything else is [`Unexpected`].
    #[inline]
    pub fn on_packet(&mut self, packet: &Packet<'_>) -> Result<PublisherReply, Unexpected> {
        let (id, from, to, reply) = match (packet, self.qos) {
            (Packet::PubAck(id), QoS::AtLeastOnce) => {
                (*id, Slot::Sent, Slot::Free, PublisherReply::Nothing)
            }
            // A repeated PUBREC (the broker did not see our PUBREL) gets the PUBREL again.
            (Packet::PubRec(id), QoS::ExactlyOnce) => {
                let from = match self.slots[usize::from(*id)] {
                    Slot::Free => return Err(Unexpected),
                    step => step,
                };
                (*id, from, Slot::Released, PublisherReply::PubRel(*id))
            }
            (Packet::PubComp(id), QoS::ExactlyOnce) => {
                (*id, Slot::Released, Slot::Free, PublisherReply::Nothing)
            }
            (Packet::PingResp, _) => return Ok(PublisherReply::Nothing),
            _ => return Err(Unexpected),
        };
        let slot = &mut self.slots[usize::from(id)];
        if *slot != from {
            return Err(Unexpected);
        }
        *slot = to;
        if to == Slot::Free {
            self.in_flight -= 1;
        }
        Ok(reply)
    }
}

/// What a subscriber answers to a PUBLISH at `qos` with packet id `pkid`, when it keeps no state
/// (the messages a kept session delivers before the SUBACK): PUBACK, PUBREC, or nothing.
#[inline]
pub fn reply_to_publish(qos: QoS, pkid: u16) -> Option<Packet<'static>> {
    match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce => Some(Packet::PubAck(pkid)),
        QoS::ExactlyOnce => Some(Packet::PubRec(pkid)),
    }
}

/// A subscriber's QoS 2 ids: PUBREC sent, PUBREL not yet received (so a PUBCOMP is owed).
#[derive(Clone, Debug)]
pub struct SubscriberIds {
    awaiting_rel: Vec<bool>,
    count: usize,
}

impl Default for SubscriberIds {
    fn default() -> SubscriberIds {
        SubscriberIds {
            awaiting_rel: vec![false; ID_SLOTS],
            count: 0,
        }
    }
}

impl SubscriberIds {
    /// Ids waiting for their PUBREL.
    #[inline]
    pub fn awaiting_rel(&self) -> usize {
        self.count
    }

    /// A PUBLISH arrived: returns the acknowledgement to send (PUBACK, PUBREC, or none at QoS 0).
    /// A repeated QoS 2 id is answered again and still owes one PUBCOMP.
    #[inline]
    pub fn on_publish(&mut self, qos: QoS, pkid: u16) -> Option<Packet<'static>> {
        if qos == QoS::ExactlyOnce {
            let slot = &mut self.awaiting_rel[usize::from(pkid)];
            if !*slot {
                *slot = true;
                self.count += 1;
            }
        }
        reply_to_publish(qos, pkid)
    }

    /// A PUBREL arrived: returns the PUBCOMP to send (for an unknown id too, as the protocol asks).
    #[inline]
    pub fn on_pubrel(&mut self, id: u16) -> Packet<'static> {
        let slot = &mut self.awaiting_rel[usize::from(id)];
        if *slot {
            *slot = false;
            self.count -= 1;
        }
        Packet::PubComp(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos1_ids_are_freed_by_their_puback_once() {
        let mut ids = PublisherIds::new(QoS::AtLeastOnce);
        assert_eq!((ids.take(), ids.take()), (1, 2));
        assert_eq!(ids.in_flight(), 2);
        assert_eq!(
            ids.on_packet(&Packet::PubAck(1)),
            Ok(PublisherReply::Nothing)
        );
        assert_eq!(ids.in_flight(), 1);
        // A second PUBACK for the same id, one for an id never sent, QoS 2 packets: errors.
        assert_eq!(ids.on_packet(&Packet::PubAck(1)), Err(Unexpected));
        assert_eq!(ids.on_packet(&Packet::PubAck(9)), Err(Unexpected));
        assert_eq!(ids.on_packet(&Packet::PubRec(2)), Err(Unexpected));
        assert_eq!(ids.on_packet(&Packet::PubComp(2)), Err(Unexpected));
        assert_eq!(
            ids.on_packet(&Packet::PingResp),
            Ok(PublisherReply::Nothing)
        );
        assert_eq!(ids.in_flight(), 1);
    }

    #[test]
    fn qos2_ids_go_sent_released_free() {
        let mut ids = PublisherIds::new(QoS::ExactlyOnce);
        let id = ids.take();
        // PUBCOMP before PUBREC, and PUBACK at QoS 2, are errors.
        assert_eq!(ids.on_packet(&Packet::PubComp(id)), Err(Unexpected));
        assert_eq!(ids.on_packet(&Packet::PubAck(id)), Err(Unexpected));
        assert_eq!(
            ids.on_packet(&Packet::PubRec(id)),
            Ok(PublisherReply::PubRel(id))
        );
        // A repeated PUBREC gets the PUBREL again.
        assert_eq!(
            ids.on_packet(&Packet::PubRec(id)),
            Ok(PublisherReply::PubRel(id))
        );
        assert_eq!(ids.in_flight(), 1);
        assert_eq!(
            ids.on_packet(&Packet::PubComp(id)),
            Ok(PublisherReply::Nothing)
        );
        assert_eq!(ids.in_flight(), 0);
        assert_eq!(ids.on_packet(&Packet::PubComp(id)), Err(Unexpected));
        assert_eq!(ids.on_packet(&Packet::PubRec(id)), Err(Unexpected));
    }

    #[test]
    fn ids_wrap_past_65535_skipping_zero_and_ids_in_use() {
        let mut ids = PublisherIds::new(QoS::AtLeastOnce);
        let first = ids.take();
        for _ in 1..65_534 {
            let id = ids.take();
            ids.on_packet(&Packet::PubAck(id)).unwrap();
        }
        assert_eq!(ids.take(), 65_535);
        // 1 is still in flight: the search wraps over 0 and 1 to 2.
        assert_eq!(first, 1);
        assert_eq!(ids.take(), 2);
        assert_eq!(ids.in_flight(), 3);
    }

    #[test]
    fn subscriber_owes_one_pubcomp_per_qos2_id() {
        let mut ids = SubscriberIds::default();
        assert_eq!(ids.on_publish(QoS::AtMostOnce, 0), None);
        assert_eq!(ids.on_publish(QoS::AtLeastOnce, 4), Some(Packet::PubAck(4)));
        assert_eq!(ids.awaiting_rel(), 0);
        assert_eq!(ids.on_publish(QoS::ExactlyOnce, 5), Some(Packet::PubRec(5)));
        // The same id again (a DUP): PUBREC again, still one PUBCOMP owed.
        assert_eq!(ids.on_publish(QoS::ExactlyOnce, 5), Some(Packet::PubRec(5)));
        assert_eq!(ids.awaiting_rel(), 1);
        assert_eq!(ids.on_pubrel(5), Packet::PubComp(5));
        assert_eq!(ids.awaiting_rel(), 0);
        // A PUBREL for an unknown id is still completed.
        assert_eq!(ids.on_pubrel(6), Packet::PubComp(6));
        assert_eq!(ids.awaiting_rel(), 0);
    }
}
