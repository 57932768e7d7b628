//! Routing: a message to every matching session at the right QoS, the retained store, each
//! session's in-flight window and queue, and the backpressure that pauses publishers feeding a
//! backed-up subscriber (their acknowledgements withheld) instead of dropping their messages.

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::persist::{IdEvent, RecordArgs};
use super::session::{Queued, Retain};
use super::{Access, Ack, Broker, ConnId, Dup, Message, Retained, SessionId};
use crate::codec::{Packet, QoS};
use crate::limits;
use crate::qos::{PubRecOutcome, Resend};

/// When the publishers paused for a session's queue may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Release {
    /// Once the queue is down to half its pause point.
    WhenDrained,
    /// Now: the session went offline or away, its bound drops instead of blocking.
    Now,
}

impl Broker {
    pub(super) fn retain(&mut self, msg: &Arc<Message>, qos: QoS) {
        if msg.payload.is_empty() {
            // MQTT-3.3.1-10: a zero-byte retained message deletes the retained one.
            if self.retained.remove(&msg.topic).is_some() {
                self.record_retain(&msg.topic, qos, &[]);
            }
            return;
        }
        if !self.retained.contains_key(&msg.topic)
            && self.retained.len() >= self.config.max_retained_messages
        {
            self.stats.messages_dropped += 1;
            let t = msg.topic.clone();
            self.log(|| format!("Not retaining '{t}': max_retained_messages reached."));
            return;
        }
        self.retained.insert(
            msg.topic.clone(),
            Retained {
                qos,
                msg: msg.clone(),
            },
        );
        self.record_retain(&msg.topic, qos, &msg.payload);
    }

    /// Sends `msg` to every matching subscription: once per session at the highest granted QoS
    /// over its overlapping filters, capped by the publish QoS.
    pub(super) fn route(&mut self, msg: &Arc<Message>, qos: QoS) {
        let mut matches = core::mem::take(&mut self.matches);
        matches.clear();
        self.tree.matches(&msg.topic, &mut matches);
        matches.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        matches.dedup_by_key(|m| m.0);
        for &(sid, granted) in &matches {
            // As mosquitto, the ACL is asked again at every delivery.
            if !self.may(sid, &msg.topic, Access::Read) {
                continue;
            }
            self.deliver(sid, msg, self.outgoing_qos(qos, granted), Retain::No);
        }
        self.matches = matches;
    }

    pub(super) fn deliver(&mut self, sid: SessionId, msg: &Arc<Message>, qos: QoS, retain: Retain) {
        let now = self.now;
        let max_inflight = self.config.max_inflight_messages;
        let max_queued = self.config.max_queued_messages;
        let max_queued_bytes = self.config.max_queued_bytes;
        let pause_at = self.online_pause_messages();
        let backpressure = self.config.queue_backpressure;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let conn = s.conn();
        if qos == QoS::AtMostOnce {
            let Some(conn) = conn else { return }; // offline: QoS 0 is not queued
            let backed_up = self
                .conns
                .get(&conn)
                .is_some_and(|c| c.tx.len() + c.unsent_bytes > self.config.max_outgoing_bytes);
            if backed_up {
                self.stats.messages_dropped += 1;
                let id = s.client_id.clone();
                self.log(|| format!("Dropped QoS 0 message for {id}: outgoing buffer full."));
                return;
            }
            self.send_publish(conn, msg, qos, retain, Dup::No, 0);
            return;
        }
        if let Some(conn) = conn {
            if s.inflight.has_room(max_inflight) && s.queue.is_empty() {
                if let Some(pkid) = s.start_inflight(now, qos, retain, msg) {
                    self.record_session(sid, || RecordArgs::Enqueue(qos, retain, msg.clone()));
                    self.record_session(sid, || RecordArgs::Id(IdEvent::Send, pkid));
                    self.send_publish(conn, msg, qos, retain, Dup::No, pkid);
                    return;
                }
            }
        }
        let full_count = max_queued != 0 && s.queue.len() >= max_queued;
        let full_bytes =
            max_queued_bytes != 0 && s.queued_bytes + msg.cost_bytes() > max_queued_bytes;
        // An online subscriber that falls behind slows its publishers down instead of losing
        // messages: keep this one and withhold the publisher's acknowledgements until the queue
        // drains (its in-flight window then stops it; each of its messages in that window may
        // land here, one over the bound each, within `max_paused_input_bytes`). That starts at
        // a few windows' worth of queue, since a longer queue for a connected client only adds
        // latency. Not when the subscriber is the publisher itself or waits on other
        // subscribers: waiting on each other's acknowledgements, neither would ever go on.
        // Without `queue_backpressure` (mosquitto), the queue fills to its bound and drops.
        if backpressure
            && (full_count || full_bytes || (conn.is_some() && s.queue.len() >= pause_at))
        {
            if let (Some(sub_conn), Some((pub_conn, pub_sid))) = (conn, self.publishing) {
                // Paused only for its own unread output is fine: that drains by itself.
                let sub_waits = self
                    .conns
                    .get(&sub_conn)
                    .and_then(|c| c.withheld.as_ref())
                    .is_some_and(|w| !w.blocked_on.is_empty());
                if pub_sid != sid && !sub_waits {
                    s.push_queue(Queued {
                        qos,
                        retain,
                        msg: msg.clone(),
                    });
                    s.blocking.insert(pub_conn);
                    // Its acknowledgements are withheld from now on; it is still read.
                    if let Some(pc) = self.conns.get_mut(&pub_conn) {
                        let w = pc.withheld.get_or_insert_with(alloc::boxed::Box::default);
                        w.blocked_on.insert(sid);
                    }
                    self.record_session(sid, || RecordArgs::Enqueue(qos, retain, msg.clone()));
                    return;
                }
            }
        }
        if full_count || full_bytes {
            self.stats.messages_dropped += 1;
            let id = s.client_id.clone();
            self.notice(|| format!("Outgoing messages are being dropped for client {id}."));
            return;
        }
        s.push_queue(Queued {
            qos,
            retain,
            msg: msg.clone(),
        });
        self.record_session(sid, || RecordArgs::Enqueue(qos, retain, msg.clone()));
    }

    /// Lets the publishers blocked on `sid` go once its queue is down to half its bound
    /// ([`Release::WhenDrained`]), or at once ([`Release::Now`]: the session went offline or away).
    pub(super) fn release_blocked(&mut self, sid: SessionId, when: Release) {
        let max_b = self.config.max_queued_bytes;
        let low_water = self.online_pause_messages() / 2;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.blocking.is_empty() {
            return;
        }
        let drained = s.queue.len() <= low_water && (max_b == 0 || s.queued_bytes <= max_b / 2);
        if when == Release::WhenDrained && !drained {
            return;
        }
        for p in core::mem::take(&mut s.blocking) {
            if let Some(c) = self.conns.get_mut(&p) {
                let drained = c.withheld.as_mut().is_none_or(|w| {
                    w.blocked_on.remove(&sid);
                    w.blocked_on.is_empty()
                });
                if drained {
                    self.to_resume.push_back(p);
                }
            }
        }
    }

    /// Queue length at which the publishers feeding a connected subscriber are paused:
    /// `QUEUE_ONLINE_PAUSE_WINDOWS` in-flight windows, or `max_queued_messages` if smaller.
    pub(super) fn online_pause_messages(&self) -> usize {
        let windows = limits::QUEUE_ONLINE_PAUSE_WINDOWS * self.config.max_inflight_messages;
        match self.config.max_queued_messages {
            0 => windows,
            n => n.min(windows),
        }
    }

    /// Moves queued messages into the in-flight window while it has room and the client is here.
    pub(super) fn pump(&mut self, sid: SessionId) {
        self.pump_window(sid);
        self.release_blocked(sid, Release::WhenDrained);
    }

    pub(super) fn pump_window(&mut self, sid: SessionId) {
        let max_inflight = self.config.max_inflight_messages;
        let now = self.now;
        loop {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let Some(conn) = s.conn() else { return };
            if !s.inflight.has_room(max_inflight) {
                return;
            }
            let Some(q) = s.pop_queue() else { return };
            let Some(pkid) = s.start_inflight(now, q.qos, q.retain, &q.msg) else {
                return;
            };
            self.record_session(sid, || RecordArgs::Id(IdEvent::Send, pkid));
            self.send_publish(conn, &q.msg, q.qos, q.retain, Dup::No, pkid);
        }
    }

    /// PUBACK (expecting `Ack`) or PUBCOMP (expecting `Comp`): the message is done.
    pub(super) fn on_ack(&mut self, sid: SessionId, pkid: u16, ack: Ack) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let done = match ack {
            Ack::PubAck => s.inflight.on_puback(pkid),
            Ack::PubComp => s.inflight.on_pubcomp(pkid),
        };
        match done {
            Some(_) => {
                self.record_session(sid, || RecordArgs::Id(IdEvent::Done, pkid));
                self.pump(sid)
            }
            None => {
                let id = s.client_id.clone();
                self.log(|| {
                    format!("Ignoring unexpected acknowledgement of mid {pkid} from {id}.")
                });
            }
        }
    }

    pub(super) fn on_pubrec(&mut self, conn: ConnId, sid: SessionId, pkid: u16) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match s.inflight.on_pubrec(now, pkid).0 {
            PubRecOutcome::SendPubRel => {
                self.record_session(sid, || RecordArgs::Id(IdEvent::PubRec, pkid));
                self.send(conn, &Packet::PubRel(pkid));
            }
            PubRecOutcome::Unknown => {
                let id = s.client_id.clone();
                self.log(|| format!("Ignoring PUBREC for unknown mid {pkid} from {id}."));
            }
        }
    }

    pub(super) fn resend_inflight(&mut self, conn: ConnId, sid: SessionId) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let out: Vec<(Resend, u16, QoS, Retain, Arc<Message>)> = s
            .inflight
            .resend(now, None)
            .map(|(what, f)| (what, f.pkid, f.qos, f.msg.retain, f.msg.msg.clone()))
            .collect();
        if !out.is_empty() {
            // What was recorded about them is remembered before the client sees them again.
            self.hold_for_journal(conn);
        }
        for (what, pkid, qos, retain, msg) in out {
            match what {
                Resend::Publish => self.send_publish(conn, &msg, qos, retain, Dup::Yes, pkid),
                Resend::PubRel => self.send(conn, &Packet::PubRel(pkid)),
            }
        }
    }
}
