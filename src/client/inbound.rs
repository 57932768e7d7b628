//! Packets from the broker: CONNACK, incoming PUBLISH (QoS 2 deduplicated until PUBREL), the
//! acknowledgements that finish outgoing QoS 1/2 messages, SUBACK and UNSUBACK. A packet that
//! breaks the protocol loses the connection with its [`LostReason`].

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;

impl Client {
    /// One packet from the broker. `Err` loses the connection.
    pub(super) fn handle_packet(&mut self, p: Packet<'_>) -> Result<(), LostReason> {
        self.last_rx = self.now;
        // Any packet shows the broker is alive (not only PINGRESP).
        self.ping_deadline = None;
        if self.state == ConnectionState::Connecting {
            return match p {
                Packet::ConnAck(ca) => self.on_connack(ca),
                other => Err(unexpected(&other)),
            };
        }
        match p {
            Packet::Publish(publish) => self.on_publish(&publish),
            Packet::PubAck(id) => {
                let done = self.inflight.on_puback(id);
                self.on_done(done);
            }
            Packet::PubRec(id) => self.on_pubrec(id),
            Packet::PubRel(id) => {
                self.incoming_qos2.on_pubrel(id);
                if let Some(m) = self.held_qos2.remove(&id) {
                    self.events.push_back(m);
                }
                // Answer even an unknown id, so the broker can finish (MQTT-4.3.3).
                self.send(&Packet::PubComp(id));
            }
            Packet::PubComp(id) => {
                let done = self.inflight.on_pubcomp(id);
                self.on_done(done);
            }
            Packet::SubAck(s) => return self.on_suback(&s),
            Packet::UnsubAck(u) => self.on_unsuback(u.pkid),
            Packet::PingResp => {}
            other @ (Packet::ConnAck(_)
            | Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect) => return Err(unexpected(&other)),
        }
        Ok(())
    }

    pub(super) fn on_connack(&mut self, ca: ConnAck) -> Result<(), LostReason> {
        if ca.code != ConnectReturnCode::Accepted {
            self.events.push_back(Event::ConnectionRefused(ca.code));
            self.reset_transport();
            self.state = ConnectionState::Closed;
            return Ok(());
        }
        if ca.session_present && self.config.clean_session {
            return Err(LostReason::Protocol(
                ProtocolViolation::SessionPresentWithCleanSession,
            ));
        }
        self.state = ConnectionState::Connected;
        self.connack_deadline = None;
        self.events.push_back(Event::Connected {
            session_present: ca.session_present,
        });
        if ca.session_present {
            // MQTT-4.4.0-1: re-send with the original identifiers, in the original order.
            self.resend(None);
        } else {
            // A new session on the broker: its packet identifiers mean nothing any more, and
            // no PUBREL will come for a held message.
            self.incoming_qos2.clear();
            self.held_qos2.clear();
            let mut again = Vec::new();
            for f in self.inflight.drain() {
                match f.awaiting {
                    // PUBREC received: the broker owns the message (MQTT-4.3.3).
                    Awaiting::PubComp => self.events.push_back(Event::Published(f.msg.id)),
                    Awaiting::PubAck | Awaiting::PubRec => again.push(f.msg),
                }
            }
            for m in again.into_iter().rev() {
                self.queue.push_front(m);
            }
        }
        let requests = core::mem::take(&mut self.requests);
        for r in &requests {
            self.send_request(r);
        }
        self.requests = requests;
        self.pump();
        Ok(())
    }

    pub(super) fn on_publish(&mut self, p: &Publish<'_>) {
        let deliver = match p.qos {
            QoS::AtMostOnce | QoS::AtLeastOnce => true,
            // A duplicate of an id not yet released is acknowledged, not delivered again.
            QoS::ExactlyOnce => self.incoming_qos2.on_publish(p.pkid),
        };
        if deliver {
            let m = Event::Message {
                topic: p.topic.to_string(),
                payload: p.payload.to_vec(),
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
            };
            let hold = p.qos == QoS::ExactlyOnce
                && self.config.qos2_delivery == Qos2Delivery::AtPubrel
                && self.held_qos2.len() < self.config.max_held_qos2_messages;
            if hold {
                self.held_qos2.insert(p.pkid, m);
            } else {
                self.events.push_back(m);
            }
        }
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(p.pkid)),
            QoS::ExactlyOnce => self.send(&Packet::PubRec(p.pkid)),
        }
    }

    /// After PUBACK or PUBCOMP: `done` is the finished message (`None` for an unknown or
    /// unexpected identifier, which is ignored).
    pub(super) fn on_done(&mut self, done: Option<InFlight<OutMessage>>) {
        if let Some(f) = done {
            self.events.push_back(Event::Published(f.msg.id));
        }
        self.pump();
    }

    pub(super) fn on_pubrec(&mut self, pkid: u16) {
        // A PUBREC for a QoS 1 message or an unknown id is ignored.
        if let (PubRecOutcome::SendPubRel, Some(m)) = self.inflight.on_pubrec(self.now, pkid) {
            m.payload = Vec::new(); // the broker owns the message now
            self.send(&Packet::PubRel(pkid));
        }
    }

    pub(super) fn on_suback(&mut self, s: &SubAck<'_>) -> Result<(), LostReason> {
        let Some(i) = self
            .requests
            .iter()
            .position(|r| matches!(r, Request::Subscribe { pkid, .. } if *pkid == s.pkid))
        else {
            return Ok(());
        };
        if let Some(Request::Subscribe { filters, .. }) = self.requests.get(i) {
            if filters.len() != s.codes.len() {
                return Err(LostReason::Protocol(ProtocolViolation::SubAckCodeCount {
                    expected: filters.len(),
                    got: s.codes.len(),
                }));
            }
        }
        self.requests.remove(i);
        self.inflight.ids().release(s.pkid);
        self.events.push_back(Event::Subscribed {
            pkid: s.pkid,
            granted: s.granted().collect(),
        });
        Ok(())
    }

    pub(super) fn on_unsuback(&mut self, pkid: u16) {
        let Some(i) = self
            .requests
            .iter()
            .position(|r| matches!(r, Request::Unsubscribe { .. }) && r.pkid() == pkid)
        else {
            return;
        };
        self.requests.remove(i);
        self.inflight.ids().release(pkid);
        self.events.push_back(Event::Unsubscribed(pkid));
    }
}

pub(super) fn unexpected(p: &Packet<'_>) -> LostReason {
    LostReason::Protocol(ProtocolViolation::UnexpectedPacket(p.name()))
}
