//! A client session: subscriptions, the outgoing in-flight window and queue, and the incoming
//! QoS 2 packet ids awaiting PUBREL. It outlives its connection when clean session is 0.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::ConnId;
use crate::codec::QoS;

/// A message as routed: shared by every subscriber's queue, never copied per subscriber.
#[derive(Debug)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Message {
    /// Bytes this message charges against a queue's byte bound.
    pub fn cost_bytes(&self) -> usize {
        self.topic.len() + self.payload.len()
    }
}

/// Which acknowledgement an outgoing QoS 1/2 message awaits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, PUBACK awaited.
    Ack,
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    Rec,
    /// QoS 2 PUBREL sent, PUBCOMP awaited.
    Comp,
}

#[derive(Debug)]
pub struct Inflight {
    pub pkid: u16,
    pub qos: QoS,
    pub retain: bool,
    pub state: OutState,
    pub msg: Arc<Message>,
}

#[derive(Debug)]
pub struct Queued {
    pub qos: QoS,
    pub retain: bool,
    pub msg: Arc<Message>,
}

#[derive(Debug)]
pub struct Session {
    pub client_id: String,
    pub clean: bool,
    pub conn: Option<ConnId>,
    /// Filter -> granted QoS; mirrors this session's entries in the subscription tree.
    pub subs: BTreeMap<String, QoS>,
    /// Outgoing QoS 1/2 messages awaiting acknowledgement, in the order they were first sent.
    pub inflight: VecDeque<Inflight>,
    /// Outgoing QoS 1/2 messages waiting for the window or for the client to come back.
    pub queue: VecDeque<Queued>,
    pub queued_bytes: usize,
    /// The longest the queue has been, in messages and in bytes (for tests and `$SYS`).
    pub queue_peak_messages: usize,
    pub queue_peak_bytes: usize,
    /// Incoming QoS 2 packet ids delivered but not yet released (MQTT-4.3.3-2).
    pub incoming_qos2: BTreeSet<u16>,
    /// Publishing connections paused until this session's queue drains (backpressure).
    pub blocking: BTreeSet<ConnId>,
    next_pkid: u16,
}

impl Session {
    pub fn new(client_id: String, clean: bool) -> Self {
        Session {
            client_id,
            clean,
            conn: None,
            subs: BTreeMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            queue_peak_messages: 0,
            queue_peak_bytes: 0,
            incoming_qos2: BTreeSet::new(),
            blocking: BTreeSet::new(),
            next_pkid: 0,
        }
    }

    /// Next packet id not in use by the in-flight window. The window is at most 65,535 long, so
    /// a free id always exists when the caller has checked the window has room.
    pub fn alloc_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1);
            if self.next_pkid == 0 {
                continue;
            }
            let id = self.next_pkid;
            // The window is short (20 by default) and scanned from the newest end, where
            // collisions after a wrap would sit.
            if !self.inflight.iter().rev().any(|f| f.pkid == id) {
                return id;
            }
        }
    }

    /// Puts a QoS 1/2 message into the in-flight window under a fresh packet id, awaiting its
    /// first acknowledgement; returns the id to send it with.
    pub fn start_inflight(&mut self, qos: QoS, retain: bool, msg: &Arc<Message>) -> u16 {
        let pkid = self.alloc_pkid();
        let state = if qos == QoS::AtLeastOnce {
            OutState::Ack
        } else {
            OutState::Rec
        };
        self.inflight.push_back(Inflight {
            pkid,
            qos,
            retain,
            state,
            msg: msg.clone(),
        });
        pkid
    }

    pub fn find_inflight(&self, pkid: u16) -> Option<usize> {
        self.inflight.iter().position(|f| f.pkid == pkid)
    }

    pub fn push_queue(&mut self, q: Queued) {
        self.queued_bytes += q.msg.cost_bytes();
        self.queue.push_back(q);
        self.queue_peak_messages = self.queue_peak_messages.max(self.queue.len());
        self.queue_peak_bytes = self.queue_peak_bytes.max(self.queued_bytes);
    }

    pub fn pop_queue(&mut self) -> Option<Queued> {
        let q = self.queue.pop_front()?;
        self.queued_bytes -= q.msg.cost_bytes();
        Some(q)
    }
}
