//! Why a message did not arrive: one cause per (message, subscriber) pair that a subscription
//! covered and that was never received, and per publish call the library refused. Attributed
//! from the edges (publish calls, completions, connections, SUBACKs, receipts) and from what the
//! broker says publicly (its log lines), never from its insides.
//!
//! Two kinds of loss:
//! - *announced*: the broker logged that it dropped the message under a limit it was configured
//!   with ("Outgoing messages are being dropped for client X." when a session's queue is full,
//!   "Dropped PUBLISH from X to 'T': N bytes exceeds message_size_limit.", "Denied PUBLISH from X"
//!   by the ACL). Counted, expectable in `[expect]`, never a violation: mosquitto does the same.
//! - *silent*: everything the rules below do not explain. A silent loss of what was acknowledged
//!   to its publisher is a violation ([`super::qos1`], [`super::qos2`]).
//!
//! The rules, first match wins:
//! 1. the broker announced dropping it (above): [`Cause::Dropped`];
//! 2. a broker restart without persistence lost it: [`Cause::BrokerState`]; one with
//!    mosquitto's persistence (a snapshot every `autosave_interval`, acknowledgements sent from
//!    memory) lost it because it came after the last "Saving in-memory database.":
//!    [`Cause::BrokerUnsaved`];
//! 3. the publisher's library deleted it from its outbox unacknowledged: [`Cause::Expired`];
//! 4. a connection on its way broke: at QoS 0 (no retransmission above TCP), the publisher's or
//!    the subscriber's connection broke after the call before anything later of that publisher
//!    reached the subscriber, or the subscriber was offline when it was published; at QoS 1/2 the
//!    subscriber's session ended (clean session) or the publisher lost its session while it was
//!    in flight: [`Cause::Connection`];
//! 5. owed at the end and queued behind a backlog still draining: [`Cause::StillQueued`];
//! 6. still in flight at the end, its acknowledgement withheld by the broker's backpressure while
//!    it kept forwarding its backlog ([`super::liveness`]): [`Cause::AckWithheld`];
//! 7. else [`Cause::Unexplained`].
//!
//! Apart from those (not in the report's `lost` column): publish calls refused by the library
//! ([`Cause::Refused`]) and messages published before the subscriber held a matching
//! subscription it took later ([`Cause::NotSubscribed`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{filter, DeviceId, Ledger, Micros, MsgId, SubscriberId};

/// How long after a QoS 0 publish call the broker may still route it (a queue-full drop
/// announced later is not this message's).
pub const QOS0_ROUTE_WINDOW_US: Micros = 10_000_000;

/// What a broker that autosaves logs at each save (mosquitto persist_write.c:335 names its
/// file; this broker's core does not know it).
pub const AUTOSAVE_LINE: &str = "Saving in-memory database.";

/// Why a message did not reach a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The library refused the publish call (not connected, outbox full).
    Refused,
    /// Lost in the network with a connection that broke (QoS 0), or with a session that ended.
    Connection,
    /// Deleted unacknowledged from the library's outbox (esp-mqtt's `outbox_expired_timeout`).
    Expired,
    /// Dropped by the broker under a configured limit, and announced in its log.
    Dropped,
    /// Lost with the state of a broker restarted without persistence.
    BrokerState,
    /// Lost with the state of a broker that saves a snapshot every `autosave_interval`
    /// (mosquitto's persistence, the `mosquitto-2.0` profile) and acknowledges before saving:
    /// restarted after acknowledging it and before its next save. Announced (the broker logs each
    /// save) and configured behaviour, so never a violation; a cause of its own because it is
    /// the loss the configuration chose, not the absence of persistence.
    BrokerUnsaved,
    /// Published before the subscriber held the subscription it took later.
    NotSubscribed,
    /// Owed at the end, queued behind a backlog still draining.
    StillQueued,
    /// In flight at the end, its acknowledgement withheld by the broker's backpressure while it
    /// kept forwarding its backlog.
    AckWithheld,
    /// None of the above: a silent loss.
    Unexplained,
}

impl Cause {
    pub const ALL: [Cause; 10] = [
        Cause::Refused,
        Cause::Connection,
        Cause::Expired,
        Cause::Dropped,
        Cause::BrokerState,
        Cause::BrokerUnsaved,
        Cause::NotSubscribed,
        Cause::StillQueued,
        Cause::AckWithheld,
        Cause::Unexplained,
    ];

    /// What the report prints for it.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::Refused => "refused at the device (publish calls)",
            Cause::Connection => "lost with a connection that broke (QoS 0, clean session)",
            Cause::Expired => "expired in the library's outbox",
            Cause::Dropped => "dropped by the broker under a limit (announced)",
            Cause::BrokerState => "lost with the broker's state (no persistence)",
            Cause::BrokerUnsaved => "lost with the broker's state (not yet autosaved)",
            Cause::NotSubscribed => "not subscribed yet when published",
            Cause::StillQueued => "still queued at the end (owed, not lost)",
            Cause::AckWithheld => "in flight at the end, ack withheld by backpressure",
            Cause::Unexplained => "unexplained (silent)",
        }
    }

    /// A short word, for one message's explanation.
    pub fn key(self) -> &'static str {
        match self {
            Cause::Refused => "refused",
            Cause::Connection => "connection",
            Cause::Expired => "expired",
            Cause::Dropped => "dropped",
            Cause::BrokerState => "broker_state",
            Cause::BrokerUnsaved => "broker_unsaved",
            Cause::NotSubscribed => "not_subscribed",
            Cause::StillQueued => "still_queued",
            Cause::AckWithheld => "ack_withheld",
            Cause::Unexplained => "unexplained",
        }
    }
}

/// Counts per cause (pairs; `refused`: publish calls).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Causes {
    pub refused: u64,
    pub connection: u64,
    pub expired: u64,
    pub dropped: u64,
    pub broker_state: u64,
    pub broker_unsaved: u64,
    pub not_subscribed: u64,
    pub still_queued: u64,
    pub ack_withheld: u64,
    pub unexplained: u64,
}

impl Causes {
    pub fn get(&self, c: Cause) -> u64 {
        match c {
            Cause::Refused => self.refused,
            Cause::Connection => self.connection,
            Cause::Expired => self.expired,
            Cause::Dropped => self.dropped,
            Cause::BrokerState => self.broker_state,
            Cause::BrokerUnsaved => self.broker_unsaved,
            Cause::NotSubscribed => self.not_subscribed,
            Cause::StillQueued => self.still_queued,
            Cause::AckWithheld => self.ack_withheld,
            Cause::Unexplained => self.unexplained,
        }
    }

    pub fn add(&mut self, c: Cause) {
        let n = match c {
            Cause::Refused => &mut self.refused,
            Cause::Connection => &mut self.connection,
            Cause::Expired => &mut self.expired,
            Cause::Dropped => &mut self.dropped,
            Cause::BrokerState => &mut self.broker_state,
            Cause::BrokerUnsaved => &mut self.broker_unsaved,
            Cause::NotSubscribed => &mut self.not_subscribed,
            Cause::StillQueued => &mut self.still_queued,
            Cause::AckWithheld => &mut self.ack_withheld,
            Cause::Unexplained => &mut self.unexplained,
        };
        *n += 1;
    }

    pub fn is_empty(&self) -> bool {
        *self == Causes::default()
    }
}

/// What the broker said publicly about a message it did not forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// "Outgoing messages are being dropped for client X." (a session's queue is full).
    QueueFull { client: String },
    /// "Dropped PUBLISH from X to 'T': N bytes exceeds message_size_limit."
    TooLarge { from: String, topic: String },
    /// "Denied PUBLISH from X (d0, q1, r0, m1, 'T', ...)" (the ACL; first copies only).
    Denied { from: String, topic: String },
}

impl Notice {
    /// The notice in one broker log line (its `UNIX_SECONDS: ` stamp or not), if any.
    pub fn parse(line: &str) -> Option<Notice> {
        let text = match line.split_once(": ") {
            Some((stamp, t)) if stamp.bytes().all(|b| b.is_ascii_digit()) => t,
            _ => line,
        };
        if let Some(rest) = text.strip_prefix("Outgoing messages are being dropped for client ") {
            let client = rest.strip_suffix('.').unwrap_or(rest).to_string();
            return Some(Notice::QueueFull { client });
        }
        if let Some(rest) = text.strip_prefix("Dropped PUBLISH from ") {
            let (from, rest) = rest.split_once(" to '")?;
            let (topic, _) = rest.rsplit_once("': ")?;
            return Some(Notice::TooLarge {
                from: from.to_string(),
                topic: topic.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("Denied PUBLISH from ") {
            let (from, rest) = rest.split_once(" (")?;
            if rest.starts_with("d1") {
                return None;
            }
            let (_, rest) = rest.split_once(" '")?;
            let (topic, _) = rest.rsplit_once("', ")?;
            return Some(Notice::Denied {
                from: from.to_string(),
                topic: topic.to_string(),
            });
        }
        None
    }
}

/// What the attribution needs beyond the ledger's messages: connection changes, grants, the
/// broker's notices, and the causes found at `finish`.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Per device, the times its connection broke.
    device_breaks: BTreeMap<DeviceId, Vec<Micros>>,
    /// Per subscriber, (time, connected) transitions.
    subscriber_links: BTreeMap<SubscriberId, Vec<(Micros, bool)>>,
    /// Per subscriber, (time, filter) of every SUBACK granting it.
    grants: BTreeMap<SubscriberId, Vec<(Micros, String)>>,
    notices: Vec<(Micros, Notice)>,
    /// Pairs the broker announced dropping (found before the QoS 1/2 checks at `finish`).
    announced: BTreeSet<(MsgId, SubscriberId)>,
    /// Every cause, once the run is finished.
    found: Option<BTreeMap<(MsgId, Option<SubscriberId>), Cause>>,
}

impl History {
    pub(super) fn device_broke(&mut self, at: Micros, device: DeviceId) {
        self.device_breaks.entry(device).or_default().push(at);
    }

    pub(super) fn subscriber_link(&mut self, at: Micros, sub: SubscriberId, up: bool) {
        self.subscriber_links.entry(sub).or_default().push((at, up));
    }

    pub(super) fn granted(&mut self, at: Micros, sub: SubscriberId, filter: &str) {
        self.grants
            .entry(sub)
            .or_default()
            .push((at, filter.to_string()));
    }

    fn subscriber_offline_at(&self, sub: SubscriberId, at: Micros) -> bool {
        self.subscriber_links.get(&sub).is_some_and(|v| {
            v.iter()
                .take_while(|(t, _)| *t <= at)
                .last()
                .is_some_and(|(_, up)| !up)
        })
    }

    fn subscriber_breaks(&self, sub: SubscriberId) -> impl Iterator<Item = Micros> + '_ {
        self.subscriber_links
            .get(&sub)
            .into_iter()
            .flatten()
            .filter(|(_, up)| !up)
            .map(|(t, _)| *t)
    }

    pub(super) fn is_announced(&self, id: MsgId, sub: SubscriberId) -> bool {
        self.announced.contains(&(id, sub))
    }
}

impl Ledger {
    /// A line of the broker's log (as printed, with or without its stamp): the notices of
    /// messages it did not forward are kept for the attribution; other lines are ignored.
    pub fn broker_said(&mut self, at: Micros, line: &str) {
        let text = line.split_once(": ").map_or(line, |(_, t)| t);
        if text == AUTOSAVE_LINE {
            self.last_save = Some(at);
        }
        if let Some(n) = Notice::parse(line) {
            self.history.notices.push((at, n));
        }
    }

    /// Pairs of covered, unreceived messages the broker's notices account for, each notice
    /// accounting for one message (a queue-full notice: one pair; too large, denied: every
    /// covered pair of one message).
    fn announced_pairs(&self) -> BTreeSet<(MsgId, SubscriberId)> {
        let unreceived = |m: &super::Message, s: &SubscriberId| {
            m.receipts.get(s).is_none_or(|r| r.first_at.is_none())
        };
        let mut out = BTreeSet::new();
        let mut used_msgs: BTreeSet<MsgId> = BTreeSet::new();
        for (at, notice) in &self.history.notices {
            let at = *at;
            match notice {
                Notice::QueueFull { client } => {
                    let Some(sub) = self.subscriber_id(client) else {
                        continue;
                    };
                    // The earliest-called candidate whose routing window holds the notice.
                    let pick = self
                        .messages
                        .iter()
                        .filter(|(id, m)| {
                            let until = if m.qos == 0 {
                                m.called_at + QOS0_ROUTE_WINDOW_US
                            } else {
                                m.completed_at.unwrap_or(Micros::MAX)
                            };
                            m.accepted
                                && m.called_at <= at
                                && at <= until
                                && m.covered.contains_key(&sub)
                                && unreceived(m, &sub)
                                && !out.contains(&(**id, sub))
                        })
                        .min_by_key(|(id, m)| (m.called_at, **id))
                        .map(|(id, _)| *id);
                    if let Some(id) = pick {
                        out.insert((id, sub));
                    }
                }
                Notice::TooLarge { from, topic } | Notice::Denied { from, topic } => {
                    let Some(dev) = self.device_id(from) else {
                        continue;
                    };
                    let pick = self
                        .messages
                        .iter()
                        .filter(|(id, m)| {
                            id.device == dev
                                && &m.topic == topic
                                && m.accepted
                                && m.called_at <= at
                                && !used_msgs.contains(id)
                        })
                        .min_by_key(|(id, m)| (m.called_at, **id))
                        .map(|(id, _)| *id);
                    if let Some(id) = pick {
                        used_msgs.insert(id);
                        let m = &self.messages[&id];
                        for s in m.covered.keys().filter(|s| unreceived(m, s)) {
                            out.insert((id, *s));
                        }
                    }
                }
            }
        }
        out
    }

    /// At `finish`, before the QoS 1/2 checks: which losses the broker announced.
    pub(super) fn find_announced(&mut self) {
        self.history.announced = self.announced_pairs();
    }

    /// At `finish`, after the checks: every cause.
    pub(super) fn find_causes(&mut self, at: Micros) {
        let found = self.attribute(Some(at));
        self.history.found = Some(found);
    }

    /// Every unreceived pair's cause (refused calls keyed with no subscriber).
    pub fn loss_causes(&self) -> BTreeMap<(MsgId, Option<SubscriberId>), Cause> {
        match &self.history.found {
            Some(f) => f.clone(),
            None => self.attribute(None),
        }
    }

    /// The cause of one message's not reaching `sub` (None: it arrived, or was never owed).
    pub fn loss_cause(&self, id: MsgId, sub: Option<SubscriberId>) -> Option<Cause> {
        match &self.history.found {
            Some(f) => f.get(&(id, sub)).copied(),
            None => self.attribute(None).get(&(id, sub)).copied(),
        }
    }

    fn attribute(&self, end: Option<Micros>) -> BTreeMap<(MsgId, Option<SubscriberId>), Cause> {
        let announced = if self.history.found.is_some() || end.is_some() {
            self.history.announced.clone()
        } else {
            self.announced_pairs()
        };
        // Pairs owed at the end and missing (violations): the rest of the owed are queued.
        let mut violated: BTreeSet<(MsgId, SubscriberId)> = BTreeSet::new();
        if let Some(at) = end.or(self.finish_at) {
            for q in [1, 2] {
                violated.extend(super::qos1::missing(self, q, at).0);
            }
        }
        let mut out = BTreeMap::new();
        for (id, m) in &self.messages {
            if !m.accepted {
                out.insert((*id, None), Cause::Refused);
                continue;
            }
            for (sub, c) in &m.covered {
                if m.receipts.get(sub).is_some_and(|r| r.first_at.is_some()) {
                    continue;
                }
                let s = &self.subscribers[sub.0 as usize];
                let cause = if announced.contains(&(*id, *sub)) {
                    Cause::Dropped
                } else if c.lost_with_broker && c.unsaved {
                    Cause::BrokerUnsaved
                } else if c.lost_with_broker {
                    Cause::BrokerState
                } else if m.abandoned && m.completed_at.is_none() {
                    Cause::Expired
                } else if (c.qos == 0 && self.qos0_connection_lost(*id, m.called_at, *sub))
                    || (c.qos > 0
                        && ((s.clean_session && c.connection_epoch != s.connection_epoch)
                            || c.session_epoch != s.session_epoch
                            || (m.completed_at.is_none() && m.session_lost)))
                {
                    Cause::Connection
                } else if self.finish_at.is_some()
                    && self.owed(m, *sub, c)
                    && !violated.contains(&(*id, *sub))
                {
                    Cause::StillQueued
                } else if self.finish_at.is_some()
                    && self.heal_at.is_some_and(|h| m.called_at < h)
                    && super::liveness::ack_withheld(
                        self,
                        *id,
                        m,
                        end.or(self.finish_at).unwrap_or(0),
                    )
                {
                    Cause::AckWithheld
                } else {
                    Cause::Unexplained
                };
                out.insert((*id, Some(*sub)), cause);
            }
            // Not covered when published, subscribed to later, never received.
            for (i, _) in self.subscribers.iter().enumerate() {
                let sub = SubscriberId(i as u32);
                if m.covered.contains_key(&sub)
                    || m.receipts.get(&sub).is_some_and(|r| r.first_at.is_some())
                {
                    continue;
                }
                let later = self.history.grants.get(&sub).is_some_and(|g| {
                    g.iter()
                        .any(|(t, f)| *t >= m.called_at && filter::matches(f, &m.topic))
                });
                if later {
                    out.insert((*id, Some(sub)), Cause::NotSubscribed);
                }
            }
        }
        out
    }

    /// A QoS 0 copy lost with a connection: the publisher's or the subscriber's connection broke
    /// after the call before any later message of the publisher reached the subscriber, or the
    /// subscriber was offline when it was published.
    fn qos0_connection_lost(&self, id: MsgId, called_at: Micros, sub: SubscriberId) -> bool {
        if self.history.subscriber_offline_at(sub, called_at) {
            return true;
        }
        // The first receipt at `sub` of a later message of the same publisher.
        let next_receipt = self
            .messages
            .range(
                MsgId {
                    device: id.device,
                    seq: id.seq + 1,
                }..=MsgId {
                    device: id.device,
                    seq: u64::MAX,
                },
            )
            .filter_map(|(_, m)| m.receipts.get(&sub).and_then(|r| r.first_at))
            .min()
            .unwrap_or(Micros::MAX);
        let broke = |t: Micros| t >= called_at && t <= next_receipt;
        self.history
            .device_breaks
            .get(&id.device)
            .is_some_and(|v| v.iter().any(|t| broke(*t)))
            || self.history.subscriber_breaks(sub).any(broke)
    }
}

#[cfg(test)]
mod tests;
