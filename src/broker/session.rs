//! A client session: subscriptions, the outgoing in-flight window and queue, and the incoming
//! QoS 2 packet ids awaiting PUBREL. It outlives its connection when clean session is 0.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::ConnId;
use crate::codec::QoS;
use crate::qos::{IncomingQos2, Window};
use crate::time::Instant;

/// A message as routed: shared by every subscriber's queue, never copied per subscriber.
#[derive(Debug)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// The message body, shared by every copy.
    pub payload: Vec<u8>,
    /// With persistence: no copy goes out before the journal is durable up to this LSN (the
    /// record of its receipt from a persistent QoS 2 publisher, whose resend after a power cut
    /// would otherwise be taken for a new message). 0: at once.
    pub forward_after: u64,
}

impl Message {
    /// Bytes this message charges against a queue's byte bound.
    pub fn cost_bytes(&self) -> usize {
        self.topic.len() + self.payload.len()
    }
}

/// What a session keeps of a message it delivers at QoS 1/2: the shared message and whether it
/// goes out as retained (a retained message sent on a new subscription, MQTT-3.3.1-8).
#[derive(Debug)]
pub struct Outgoing {
    pub retain: Retain,
    pub msg: Arc<Message>,
}

/// The RETAIN flag of an outgoing PUBLISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retain {
    /// Normal forwarding clears RETAIN (MQTT-3.3.1-9).
    No,
    /// Sent because of a new subscription (MQTT-3.3.1-8).
    Yes,
}

impl Retain {
    pub fn flag(self) -> bool {
        self == Retain::Yes
    }
}

#[derive(Debug)]
pub struct Queued {
    pub qos: QoS,
    pub retain: Retain,
    pub msg: Arc<Message>,
}

#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    /// The user name of its last CONNECT, for the ACL while it is offline too.
    pub username: Option<Box<str>>,
    pub clean: bool,
    /// Its connection, if it has one ([`Session::conn`]): 8 bytes as a non-zero id (connection
    /// numbers start at 1) where an `Option<ConnId>` takes 16, which keeps the record in a
    /// smaller malloc size class.
    conn: Option<core::num::NonZeroU64>,
    /// The listener of its last connection (per-listener ACLs), when the caller named one; not
    /// journalled (see `Broker::acl_allows`).
    pub listener: Option<super::ListenerId>,
    /// Filter -> granted QoS; mirrors this session's entries in the subscription tree.
    pub subs: BTreeMap<String, QoS>,
    /// Outgoing QoS 1/2 messages awaiting acknowledgement, in the order they were first sent.
    pub inflight: Window<Outgoing>,
    /// Outgoing QoS 1/2 messages waiting for the window or for the client to come back.
    pub queue: VecDeque<Queued>,
    pub queued_bytes: usize,
    /// The longest the queue has been, in messages and in bytes (for tests and `$SYS`).
    /// (32 bits each, saturating: they are statistics, and the record is 8 bytes smaller.)
    pub queue_peak_messages: u32,
    pub queue_peak_bytes: u32,
    /// Incoming QoS 2 packet ids delivered but not yet released (MQTT-4.3.3-2).
    pub incoming_qos2: IncomingQos2,
    /// With `qos2_forward_on_pubrel`: incoming QoS 2 messages kept until their PUBREL, by packet
    /// id, with their RETAIN flag (`None`: acknowledged but not to be forwarded: denied or too
    /// large). Not journalled.
    /// (Boxed while empty, as most sessions never hold one: see [`RareMap`].)
    pub held_qos2: RareMap<u16, Option<(Arc<Message>, bool)>>,
    /// Publishing connections paused until this session's queue drains (backpressure).
    pub blocking: RareSet<ConnId>,
}

impl Session {
    pub fn new(client_id: Arc<str>, clean: bool) -> Self {
        Session {
            client_id,
            username: None,
            clean,
            conn: None,
            listener: None,
            subs: BTreeMap::new(),
            inflight: Window::default(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            queue_peak_messages: 0,
            queue_peak_bytes: 0,
            incoming_qos2: IncomingQos2::default(),
            held_qos2: RareMap::default(),
            blocking: RareSet::default(),
        }
    }

    /// Puts a QoS 1/2 message into the in-flight window under a fresh packet id, awaiting its
    /// first acknowledgement; returns the id to send it with. The caller checked the window has
    /// room (at most 65,535 long), so an id is free.
    pub fn start_inflight(
        &mut self,
        now: Instant,
        qos: QoS,
        retain: Retain,
        msg: &Arc<Message>,
    ) -> Option<u16> {
        let out = Outgoing {
            retain,
            msg: msg.clone(),
        };
        self.inflight.start(now, qos, out).ok()
    }

    /// Its connection, if it has one.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn.map(core::num::NonZeroU64::get)
    }

    /// Attaches it to a connection (numbered from 1), or detaches it.
    pub fn set_conn(&mut self, conn: Option<ConnId>) {
        self.conn = conn.and_then(core::num::NonZeroU64::new);
    }

    pub fn push_queue(&mut self, q: Queued) {
        self.queued_bytes += q.msg.cost_bytes();
        self.queue.push_back(q);
        let saturate = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.queue_peak_messages = self.queue_peak_messages.max(saturate(self.queue.len()));
        self.queue_peak_bytes = self.queue_peak_bytes.max(saturate(self.queued_bytes));
    }

    pub fn pop_queue(&mut self) -> Option<Queued> {
        let q = self.queue.pop_front()?;
        self.queued_bytes -= q.msg.cost_bytes();
        Some(q)
    }
}

/// An ordered set that is usually empty: one word until its first element (boxed), and back to
/// one word once emptied.
// The box is the point: absent, the set is one word instead of a `BTreeSet`'s three.
#[allow(clippy::box_collection)]
#[derive(Debug)]
pub struct RareSet<T>(Option<Box<BTreeSet<T>>>);

impl<T> Default for RareSet<T> {
    fn default() -> Self {
        RareSet(None)
    }
}

impl<T: Ord> RareSet<T> {
    pub fn insert(&mut self, v: T) -> bool {
        self.0.get_or_insert_with(Default::default).insert(v)
    }

    pub fn remove(&mut self, v: &T) -> bool {
        let Some(set) = self.0.as_mut() else {
            return false;
        };
        let removed = set.remove(v);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|s| s.is_empty())
    }
}

impl<T> IntoIterator for RareSet<T> {
    type Item = T;
    type IntoIter = core::iter::Flatten<core::option::IntoIter<BTreeSet<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|b| *b).into_iter().flatten()
    }
}

/// An ordered map that is usually empty: one word until its first entry (boxed), and back to one
/// word once emptied.
// The box is the point: absent, the map is one word instead of a `BTreeMap`'s three.
#[allow(clippy::box_collection)]
#[derive(Debug)]
pub struct RareMap<K, V>(Option<Box<BTreeMap<K, V>>>);

impl<K, V> Default for RareMap<K, V> {
    fn default() -> Self {
        RareMap(None)
    }
}

impl<K: Ord, V> RareMap<K, V> {
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.0.get_or_insert_with(Default::default).insert(k, v)
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let map = self.0.as_mut()?;
        let v = map.remove(k);
        if map.is_empty() {
            self.0 = None;
        }
        v
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.0.as_ref().is_some_and(|m| m.contains_key(k))
    }
}
