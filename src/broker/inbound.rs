//! Packets from a connection after CONNECT: the dispatch of each by type, PUBLISH (its ACL check,
//! size limit, routing and acknowledgement, withheld while the publisher is paused), SUBSCRIBE
//! (its ACL check, then the retained messages it matches) and UNSUBSCRIBE.

use alloc::format;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::persist::{IdEvent, RecordArgs};
use super::session::{Message, Retain};
use super::{log, Access, Ack, Broker, CloseReason, ConnId, ConnState, Event, Flow, SessionId};
use crate::codec::{
    Packet, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe, SUBACK_FAILURE,
};
use crate::limits;
use crate::topic;

impl Broker {
    /// Returns false when the connection was closed.
    pub(super) fn handle_packet(&mut self, conn: ConnId, p: Packet<'_>) -> Flow {
        let Some(c) = self.conns.get(&conn) else {
            return Flow::Closed;
        };
        if self.config.verbose && !matches!(p, Packet::Connect(_) | Packet::Publish(_)) {
            let line = log::received(&c.client_id, &p);
            self.events.push_back(Event::Log(line));
        }
        let sid = match (c.state, &p) {
            (ConnState::AwaitingConnect, Packet::Connect(connect)) => {
                return self.on_connect(conn, connect)
            }
            (ConnState::AwaitingConnect, _) => {
                // MQTT-3.1.0-1: the first packet must be CONNECT.
                let label = c.peer.clone();
                self.log(|| {
                    format!(
                        "Socket from {label} sent {} before CONNECT, disconnecting.",
                        p.name()
                    )
                });
                self.close(conn, CloseReason::ProtocolError);
                return Flow::Closed;
            }
            (ConnState::Active(sid), _) => sid,
        };
        match p {
            Packet::Publish(publish) => {
                if self.publish_refused(conn, &publish) {
                    return Flow::Closed;
                }
                self.on_publish(conn, sid, &publish)
            }
            Packet::PubAck(id) => self.on_ack(sid, id, Ack::PubAck),
            Packet::PubRec(id) => self.on_pubrec(conn, sid, id),
            Packet::PubRel(id) => {
                let held = match self.sessions.get_mut(&sid) {
                    Some(s) => {
                        s.incoming_qos2.on_pubrel(id);
                        s.held_qos2.remove(&id).flatten()
                    }
                    None => None,
                };
                if let Some((msg, retain)) = held {
                    // `qos2_forward_on_pubrel`: released now, as mosquitto's
                    // db__message_release_incoming (database.c:1020).
                    self.forward(&msg, QoS::ExactlyOnce, retain);
                }
                self.record_session(sid, || RecordArgs::Id(IdEvent::Qos2Released, id));
                // Answer even an unknown id, so the client can finish (MQTT-4.3.3).
                self.send(conn, &Packet::PubComp(id));
            }
            Packet::PubComp(id) => self.on_ack(sid, id, Ack::PubComp),
            Packet::Subscribe(s) => return self.on_subscribe(conn, sid, &s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(conn, sid, &u),
            Packet::PingReq => self.send(conn, &Packet::PingResp),
            Packet::Disconnect => {
                self.close(conn, CloseReason::Disconnect);
                return Flow::Closed;
            }
            Packet::Connect(_) => {
                // MQTT-3.1.0-2: a second CONNECT is a protocol violation.
                self.close(conn, CloseReason::ProtocolError);
                return Flow::Closed;
            }
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.close(conn, CloseReason::ProtocolError);
                return Flow::Closed;
            }
        }
        Flow::Open
    }

    /// Whether session `sid`'s client may read or write `topic` (the ACL; always without one).
    pub(super) fn may(&self, sid: SessionId, topic: &str, access: Access) -> bool {
        if self.security.acl.is_none() && self.listeners.is_empty() {
            return true;
        }
        self.acl_allows(sid, |sec, id, user| sec.allows(id, user, topic, access))
    }

    pub(super) fn may_subscribe(&self, sid: SessionId, filter: &str) -> bool {
        if self.security.acl.is_none() && self.listeners.is_empty() {
            return true;
        }
        self.acl_allows(sid, |sec, id, user| sec.can_subscribe(id, user, filter))
    }

    pub(super) fn on_publish(&mut self, conn: ConnId, sid: SessionId, p: &Publish<'_>) {
        self.stats.publish_received += 1;
        if self.is_withheld_resend(conn, p) {
            // The same message again (esp-mqtt resends every unacknowledged one each second):
            // routed once already, its acknowledgement queued; reading it is all it costs.
            if self.config.verbose {
                let id = self.client_label(conn);
                let line = format!(
                    "Received PUBLISH from {id} {}: a resend, its acknowledgement withheld \
                     (backpressure); not routed again.",
                    log::publish_details(p)
                );
                self.events.push_back(Event::Log(line));
            }
            return;
        }
        if p.qos == QoS::AtMostOnce && self.paused_input_full(conn) {
            // A paused publisher that went on past its budget: its QoS 0 is dropped rather than
            // its socket left unread (QoS 1/2 from it waits undecoded: `input_over_budget`).
            self.stats.messages_dropped += 1;
            let id = self.client_label(conn);
            let t = p.topic.to_string();
            self.log(|| {
                format!(
                    "Dropped QoS 0 PUBLISH from {id} to '{t}': paused for a slow subscriber, \
                     over max_paused_input_bytes."
                )
            });
            return;
        }
        let limit = self.config.message_size_limit_bytes;
        let too_big = limit != 0 && p.payload.len() > limit;
        let hold = p.qos == QoS::ExactlyOnce && self.config.qos2_forward_on_pubrel;
        let deliver = match p.qos {
            QoS::AtMostOnce => true,
            QoS::AtLeastOnce => true,
            // Held for its PUBREL: a copy of an id already held is acknowledged again, not kept.
            QoS::ExactlyOnce if hold => self
                .sessions
                .get(&sid)
                .is_some_and(|s| !s.held_qos2.contains_key(&p.pkid)),
            QoS::ExactlyOnce => match self.sessions.get_mut(&sid) {
                // A duplicate of an id not yet released is acknowledged, not delivered again.
                Some(s) => s.incoming_qos2.on_publish(p.pkid),
                None => false,
            },
        };
        if hold {
            // Not journalled: a held message is not in the journal's records (see the knob).
        } else if deliver && p.qos == QoS::ExactlyOnce {
            self.record_session(sid, || RecordArgs::Id(IdEvent::Qos2In, p.pkid));
        } else if p.qos == QoS::ExactlyOnce && self.sessions.get(&sid).is_some_and(|s| !s.clean) {
            // A duplicate appends nothing, but its PUBREC acknowledges the first copy's records,
            // which may not be durable yet: it waits for them too (the write-ahead rule).
            self.hold_for_journal(conn);
        }
        // As in mosquitto, a denied PUBLISH is logged as that instead of as received, and
        // acknowledged as usual below.
        let denied = topic::reserved_for_broker(p.topic) || !self.may(sid, p.topic, Access::Write);
        if self.config.verbose {
            let id = self.client_label(conn);
            let verb = if denied { "Denied" } else { "Received" };
            let line = format!("{verb} PUBLISH from {id} {}", log::publish_details(p));
            self.events.push_back(Event::Log(line));
        }
        let mark = self.output_mark(conn);
        if deliver && hold {
            let keep = (!denied && !too_big).then(|| {
                let msg = Arc::new(Message {
                    topic: p.topic.to_string(),
                    payload: p.payload.to_vec(),
                    forward_after: 0,
                });
                (msg, p.retain)
            });
            if too_big {
                self.log_too_big(conn, p);
            }
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.held_qos2.insert(p.pkid, keep);
            }
        } else if deliver {
            if denied {
                // Not routed, not retained.
            } else if too_big {
                self.log_too_big(conn, p);
            } else {
                // A persistent publisher's QoS 2 message is forwarded to nobody before the
                // broker will remember having received it: after a power cut, the publisher's
                // resend would otherwise be taken for a new message and forwarded again.
                let forward_after = if p.qos == QoS::ExactlyOnce
                    && self.sessions.get(&sid).is_some_and(|s| !s.clean)
                {
                    self.journal_end()
                } else {
                    0
                };
                let msg = Arc::new(Message {
                    topic: p.topic.to_string(),
                    payload: p.payload.to_vec(),
                    forward_after,
                });
                self.publishing = Some((conn, sid));
                self.forward(&msg, p.qos, p.retain);
                self.publishing = None;
            }
        }
        let ack = match p.qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => Packet::PubAck(p.pkid),
            QoS::ExactlyOnce => Packet::PubRec(p.pkid),
        };
        let size = Packet::Publish(*p).encoded_len().unwrap_or(0);
        match self.conns.get_mut(&conn) {
            // Backpressure: the acknowledgement waits until the subscribers have drained, and
            // behind any withheld before it (acknowledgements in the order of their PUBLISHes).
            Some(c)
                if c.withheld
                    .as_ref()
                    .is_some_and(|w| !w.blocked_on.is_empty() || !w.deferred_acks.is_empty()) =>
            {
                let w = c.withheld.get_or_insert_with(alloc::boxed::Box::default);
                w.deferred_acks.push_back(ack);
                w.deferred_bytes += size;
                w.withheld_ids.insert(p.pkid);
            }
            // QoS 2: PUBREC before the copy to the publisher's own subscription; QoS 1: PUBACK
            // after it. Both as mosquitto sends them (handle_publish.c:332-360).
            _ if p.qos == QoS::ExactlyOnce => self.send_at(conn, mark, &ack),
            _ => self.send(conn, &ack),
        }
    }

    /// Retains `msg` if asked, then routes it to the subscribers.
    fn forward(&mut self, msg: &Arc<Message>, qos: QoS, retain: bool) {
        if retain {
            self.retain(msg, qos);
        }
        self.route(msg, qos);
    }

    fn log_too_big(&mut self, conn: ConnId, p: &Publish<'_>) {
        self.stats.messages_dropped += 1;
        let id = self.client_label(conn);
        let (n, t) = (p.payload.len(), p.topic.to_string());
        self.log(|| {
            format!("Dropped PUBLISH from {id} to '{t}': {n} bytes exceeds message_size_limit.")
        });
    }

    /// `p` is a QoS 1/2 PUBLISH whose packet id `conn` still waits for its withheld PUBACK /
    /// PUBREC: a resend of a message the broker already has.
    pub(super) fn is_withheld_resend(&self, conn: ConnId, p: &Publish<'_>) -> bool {
        p.qos != QoS::AtMostOnce
            && self
                .conns
                .get(&conn)
                .and_then(|c| c.withheld.as_ref())
                .is_some_and(|w| w.withheld_ids.contains(&p.pkid))
    }

    /// `conn` is a paused publisher whose withheld acknowledgements cover
    /// `max_paused_input_bytes` (or every packet id).
    pub(super) fn paused_input_full(&self, conn: ConnId) -> bool {
        let c = self.conns.get(&conn).and_then(|c| c.withheld.as_ref());
        c.is_some_and(|w| {
            !w.blocked_on.is_empty()
                && (w.deferred_bytes >= self.config.max_paused_input_bytes
                    || w.deferred_acks.len() >= limits::INFLIGHT_CEILING_MESSAGES)
        })
    }

    pub(super) fn on_subscribe(
        &mut self,
        conn: ConnId,
        sid: SessionId,
        sub: &Subscribe<'_>,
    ) -> Flow {
        let n = sub.filters.len();
        if n > limits::SUBSCRIBE_FILTERS_MAX {
            let id = self.client_label(conn);
            self.log(|| {
                format!(
                    "Client {id} sent {n} filters in one SUBSCRIBE (max {}).",
                    limits::SUBSCRIBE_FILTERS_MAX
                )
            });
            self.close(conn, CloseReason::ProtocolError);
            return Flow::Closed;
        }
        if self.subscribe_refused(conn, sub) {
            return Flow::Closed;
        }
        let mut codes = Vec::with_capacity(n);
        let mut granted = Vec::with_capacity(n);
        for (filter, qos) in sub.filters.iter() {
            if !topic::valid_topic_filter(filter) || !self.may_subscribe(sid, filter) {
                codes.push(SUBACK_FAILURE);
                continue;
            }
            self.tree.insert(filter, sid, qos);
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.subs.insert(filter.to_string(), qos);
                let id = s.client_id.clone();
                self.log(|| format!("{id} {} {filter}", qos.as_u8()));
            }
            self.record_session(sid, || RecordArgs::Sub(filter.to_string(), qos));
            codes.push(qos.as_u8());
            granted.push((filter, qos));
        }
        self.send(
            conn,
            &Packet::SubAck(SubAck {
                pkid: sub.pkid,
                codes: &codes,
            }),
        );
        // Retained messages for each new or renewed subscription (MQTT-3.3.1-6, MQTT-3.8.4-3),
        // sent with RETAIN set (MQTT-3.3.1-8).
        let mut hits: Vec<(QoS, Arc<Message>)> = Vec::new();
        for (filter, qos) in granted {
            for (t, r) in &self.retained {
                if topic::matches(filter, t) && self.may(sid, t, Access::Read) {
                    hits.push((self.outgoing_qos(r.qos, qos), r.msg.clone()));
                }
            }
        }
        for (qos, msg) in hits {
            self.deliver(sid, &msg, qos, Retain::Yes);
        }
        Flow::Open
    }

    pub(super) fn on_unsubscribe(&mut self, conn: ConnId, sid: SessionId, u: &Unsubscribe<'_>) {
        for filter in u.topics.iter() {
            self.tree.remove(filter, sid);
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.subs.remove(filter);
            }
            self.record_session(sid, || RecordArgs::Unsub(filter.to_string()));
        }
        self.send(conn, &Packet::UnsubAck(UnsubAck { pkid: u.pkid }));
    }
}
