//! The ledger: what QoS 0/1/2 really delivered, checked against facts seen only at the edges.
//!
//! A simulation driver feeds it what it observes at the devices' and subscribers' client APIs and
//! on the wire (decoded packets): publish calls and completions, (re)connections, subscriptions,
//! receipts (the message identity parsed from a payload tag), packet ids, broker restarts, and the
//! phase changes `heal` and `finish`. It never looks inside the broker. Topic matching is done
//! here again, independently of the code under test ([`filter::matches`]).
//!
//! Each invariant lives in its own file and is checked when its facts arrive (safety) or at
//! `finish` (liveness); every failure is a [`Violation`]:
//! - [`qos0`]: a QoS 0 message is never duplicated at a subscriber;
//! - [`qos1`]: what the publisher got PUBACK for reaches every subscriber whose session covered it;
//! - [`qos2`]: exactly once;
//! - [`order`]: per publisher and topic, first receipts arrive in publish order;
//! - [`filter`]: nothing arrives that the subscriber's filters do not match;
//! - [`published`]: nothing arrives that was never published;
//! - [`packet_id`]: a packet id is never reused while in flight;
//! - [`liveness`]: after `heal`, every QoS 1/2 publish settles at its publisher (or is still
//!   waiting for an acknowledgement withheld while the broker drains its backlog).
//!
//! A broker restart without persistence legitimately loses what only the broker held: such
//! messages are counted apart (`lost_with_broker`), never as violations.
//!
//! What a client library does that MQTT does not forbid is not blamed on the broker either: it is
//! counted as a named behaviour ([`Behaviours`]): a message reordered by its publisher's re-send
//! (esp-mqtt re-sends its outbox behind newer messages), a subscriber that gave up on its first
//! connect (`mosquitto_sub` exits), and, at the end, messages still queued behind a backlog that
//! was still draining (no later message of their stream arrived, the subscriber still receiving)
//! and publishes whose acknowledgement the broker still withholds (backpressure) while it keeps
//! forwarding its backlog ([`liveness`]).

use std::collections::BTreeMap;

use crate::scenario::Scenario;

pub mod accounting;
pub mod causes;
pub mod filter;
pub mod liveness;
pub mod order;
pub mod packet_id;
pub mod published;
pub mod qos0;
pub mod qos1;
pub mod qos2;
pub mod records;
pub mod takeover;

pub use accounting::{Behaviours, Summary, Tally};
pub use causes::{Cause, Causes, Notice};
pub use records::{
    ConnState, ConnectionChange, Delivery, DeviceReceipt, Loss, PublishRecord, Records,
};

/// Simulated time, microseconds since the start of the run.
pub type Micros = u64;

/// A publishing client (one instance of a `[[device]]` group), in registration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub u32);

/// A subscribing client, in registration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberId(pub u32);

/// A message's identity, carried in its payload tag: the publisher and its publish-call number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    pub device: DeviceId,
    pub seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientRef {
    Device(DeviceId),
    Subscriber(SubscriberId),
}

/// Who picks the packet id: the client (its PUBLISH, SUBSCRIBE) or the broker (its PUBLISH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    ClientToBroker,
    BrokerToClient,
}

/// One packet-id space: one client's session, one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub client: ClientRef,
    pub flow: Flow,
}

/// An invariant that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at: Micros,
    /// The invariant's file name: "qos0", "qos1", "qos2", "order", "filter", "published",
    /// "packet_id", "liveness".
    pub invariant: &'static str,
    pub msg: Option<MsgId>,
    pub detail: String,
}

/// One receiving subscriber's view of one message.
#[derive(Clone, Debug, Default)]
struct Receipt {
    first_at: Option<Micros>,
    /// The first receipt was a retained message (sent on subscribe, not routed live).
    first_retained: bool,
    /// Non-retained receipts beyond the first.
    duplicates: u64,
}

/// A subscriber whose session covered the message when it was published.
#[derive(Clone, Copy, Debug)]
struct Coverage {
    /// min(publish QoS, highest granted QoS of the matching filters).
    qos: u8,
    connection_epoch: u64,
    session_epoch: u64,
    /// Acknowledged to the publisher and still undelivered when a broker without persistence
    /// lost its state.
    lost_with_broker: bool,
    /// That loss came after the broker's last autosave ([`BrokerMemory::Autosave`]).
    unsaved: bool,
}

/// What a broker keeps of its state across a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerMemory {
    /// Nothing: no persistence.
    Volatile,
    /// Everything acknowledged: a write-ahead journal (this broker's persistence).
    Journal,
    /// The state as of its last save, announced by [`causes::AUTOSAVE_LINE`] (mosquitto's
    /// persistence, the `mosquitto-2.0` profile); everything before the first save is gone.
    Autosave,
}

#[derive(Clone, Debug)]
struct Message {
    topic: String,
    qos: u8,
    called_at: Micros,
    accepted: bool,
    completed_at: Option<Micros>,
    abandoned: bool,
    /// A broker restart without persistence, or a clean-session reconnect of the publisher,
    /// happened while the message was in flight: MQTT no longer promises exactly once.
    session_lost: bool,
    covered: BTreeMap<SubscriberId, Coverage>,
    receipts: BTreeMap<SubscriberId, Receipt>,
    /// The broker's receipts of copies of this PUBLISH (QoS > 0, from the wire), as indices in
    /// the order of all such arrivals: the first and the latest.
    first_arrival: Option<u64>,
    last_arrival: Option<u64>,
}

#[derive(Clone, Debug)]
struct Device {
    name: String,
    group: String,
    connected: bool,
    connects: u64,
}

#[derive(Clone, Debug)]
struct Subscriber {
    name: String,
    clean_session: bool,
    connected: bool,
    connects: u64,
    /// Bumped on every connect.
    connection_epoch: u64,
    /// Bumped whenever the broker's session for it is gone (session_present = false, or a
    /// broker restart without persistence).
    session_epoch: u64,
    /// Filter -> granted QoS, in the current session.
    filters: BTreeMap<String, u8>,
    /// Filters of SUBSCRIBEs sent and not yet acknowledged: the broker may already deliver what
    /// they cover (MQTT-3.8.4), also after a reconnect that re-sent them.
    requested: std::collections::BTreeSet<String>,
    /// Filters the broker held when it restarted without persistence while this connection was
    /// up: what it sent on this connection before the restart may still arrive after it (the old
    /// connection's bytes, retransmitted by the broker host's TCP after the process died), until
    /// the subscriber's connection ends.
    before_restart: std::collections::BTreeSet<String>,
    /// Gave up on its first connect (`mosquitto_sub` exits): not expected back.
    gave_up: bool,
    /// The last first receipt (not retained).
    last_receipt_at: Option<Micros>,
}

/// The ledger. Register clients, feed events in time order, call `heal` then `finish`, read
/// [`Ledger::violations`] and [`Ledger::summary`].
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    devices: Vec<Device>,
    subscribers: Vec<Subscriber>,
    messages: BTreeMap<MsgId, Message>,
    /// Packet ids in flight per space, with the message they carry (None: SUBSCRIBE etc.).
    packet_ids: BTreeMap<Endpoint, BTreeMap<u16, Option<MsgId>>>,
    /// Per (subscriber, publisher, topic): the highest seq received first so far.
    order: BTreeMap<(SubscriberId, DeviceId, String), u64>,
    untagged: BTreeMap<SubscriberId, u64>,
    heal_at: Option<Micros>,
    finish_at: Option<Micros>,
    violations: Vec<Violation>,
    /// Times of broker restarts that lost every session (without persistence, or with autosave
    /// before the first save: `true`).
    restarts: Vec<(Micros, bool)>,
    /// When the broker last said it saved its state ([`causes::AUTOSAVE_LINE`]).
    last_save: Option<Micros>,
    /// Messages devices received.
    device_receipts: Vec<DeviceReceipt>,
    /// PUBLISH copies (QoS > 0) that reached the broker so far.
    arrivals: u64,
    /// Named behaviours of the client libraries and the run, not violations.
    behaviours: Behaviours,
    /// Each publish call's payload as its application gave it, for the records.
    payloads: BTreeMap<MsgId, Vec<u8>>,
    /// What the loss causes are attributed from ([`causes`]).
    history: causes::History,
    /// Every client's connection changes, in the order fed (the timeline picture's lanes).
    connections: Vec<(Micros, ClientRef, ConnState)>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Registers every client of a scenario: devices in file order (group by group, `DeviceId`
    /// = index among `Scenario::client_ids`), then subscribers.
    pub fn for_scenario(scenario: &Scenario) -> Ledger {
        let mut ledger = Ledger::new();
        for d in &scenario.devices {
            for id in d.client_ids() {
                ledger.add_device(&id, &d.name);
            }
        }
        for s in &scenario.subscribers {
            ledger.add_subscriber(&s.name);
        }
        ledger
    }

    /// `group` is the `[[device]]` name the report aggregates by.
    pub fn add_device(&mut self, name: &str, group: &str) -> DeviceId {
        self.devices.push(Device {
            name: name.to_string(),
            group: group.to_string(),
            connected: false,
            connects: 0,
        });
        DeviceId(self.devices.len() as u32 - 1)
    }

    pub fn add_subscriber(&mut self, name: &str) -> SubscriberId {
        self.subscribers.push(Subscriber {
            name: name.to_string(),
            clean_session: true,
            connected: false,
            connects: 0,
            connection_epoch: 0,
            session_epoch: 0,
            filters: BTreeMap::new(),
            requested: Default::default(),
            before_restart: Default::default(),
            gave_up: false,
            last_receipt_at: None,
        });
        SubscriberId(self.subscribers.len() as u32 - 1)
    }

    pub fn device_id(&self, name: &str) -> Option<DeviceId> {
        self.devices
            .iter()
            .position(|d| d.name == name)
            .map(|i| DeviceId(i as u32))
    }

    pub fn subscriber_id(&self, name: &str) -> Option<SubscriberId> {
        self.subscribers
            .iter()
            .position(|s| s.name == name)
            .map(|i| SubscriberId(i as u32))
    }

    pub fn device_name(&self, device: DeviceId) -> &str {
        &self.devices[device.0 as usize].name
    }

    /// The `[[device]]` group `device` belongs to (the report's scope).
    pub fn device_group(&self, device: DeviceId) -> &str {
        &self.devices[device.0 as usize].group
    }

    pub fn subscriber_name(&self, subscriber: SubscriberId) -> &str {
        &self.subscribers[subscriber.0 as usize].name
    }

    fn violate(&mut self, at: Micros, invariant: &'static str, msg: Option<MsgId>, detail: String) {
        self.violations.push(Violation {
            at,
            invariant,
            msg,
            detail,
        });
    }

    // -- Publisher side -------------------------------------------------------------------

    /// The device's sketch called publish; `accepted` = the client took it (returned true /
    /// a message id), not refused (disconnected, outbox full).
    pub fn publish_called(
        &mut self,
        at: Micros,
        device: DeviceId,
        seq: u64,
        topic: &str,
        qos: u8,
        accepted: bool,
    ) {
        let id = MsgId { device, seq };
        let mut covered = BTreeMap::new();
        if accepted {
            for (i, s) in self.subscribers.iter().enumerate() {
                let granted = s
                    .filters
                    .iter()
                    .filter(|(f, _)| filter::matches(f, topic))
                    .map(|(_, g)| *g)
                    .max();
                if let Some(g) = granted {
                    covered.insert(
                        SubscriberId(i as u32),
                        Coverage {
                            qos: qos.min(g),
                            connection_epoch: s.connection_epoch,
                            session_epoch: s.session_epoch,
                            lost_with_broker: false,
                            unsaved: false,
                        },
                    );
                }
            }
        }
        let message = Message {
            topic: topic.to_string(),
            qos,
            called_at: at,
            accepted,
            completed_at: None,
            abandoned: false,
            session_lost: false,
            covered,
            receipts: BTreeMap::new(),
            first_arrival: None,
            last_arrival: None,
        };
        if self.messages.insert(id, message).is_some() {
            self.violate(
                at,
                published::NAME,
                Some(id),
                format!(
                    "driver error: {} seq {seq} published twice",
                    self.device_name(device)
                ),
            );
        }
    }

    /// The publisher's client reported the message done: PUBACK (QoS 1), PUBCOMP (QoS 2), or
    /// written to the socket (QoS 0).
    pub fn publish_completed(&mut self, at: Micros, device: DeviceId, seq: u64) {
        let Some(m) = self.messages.get_mut(&MsgId { device, seq }) else {
            return;
        };
        if m.completed_at.is_some() {
            return;
        }
        m.completed_at = Some(at);
        // Published before a broker restart without persistence and accepted by the broker
        // after it: a subscriber that has not subscribed again since has no subscription there
        // to deliver it to. Its subscription went with the broker's state.
        let restart = self
            .restarts
            .iter()
            .find(|&&(r, _)| m.called_at <= r && r <= at);
        if let Some(&(_, unsaved)) = restart {
            for (sub, c) in m.covered.iter_mut() {
                let got = m.receipts.get(sub).is_some_and(|r| r.first_at.is_some());
                let covered_now = self.subscribers[sub.0 as usize]
                    .filters
                    .keys()
                    .any(|f| filter::matches(f, &m.topic));
                if !got && !covered_now {
                    c.lost_with_broker = true;
                    c.unsaved = unsaved;
                }
            }
        }
    }

    /// The publisher's client dropped the message without completing it (esp-mqtt's outbox
    /// expiry, `MQTT_EVENT_DELETED`).
    pub fn publish_abandoned(&mut self, _at: Micros, device: DeviceId, seq: u64) {
        if let Some(m) = self.messages.get_mut(&MsgId { device, seq }) {
            m.abandoned = true;
        }
    }

    /// The device got CONNACK. With a clean session the broker forgot whatever the device had in
    /// flight: resending it may duplicate a QoS 2 message legitimately.
    pub fn device_connected(&mut self, at: Micros, device: DeviceId, clean_session: bool) {
        self.connections
            .push((at, ClientRef::Device(device), ConnState::Connected));
        let d = &mut self.devices[device.0 as usize];
        d.connected = true;
        d.connects += 1;
        if clean_session {
            for m in self.in_flight_of(device) {
                m.session_lost = true;
            }
        }
    }

    pub fn device_disconnected(&mut self, at: Micros, device: DeviceId) {
        self.connections
            .push((at, ClientRef::Device(device), ConnState::Down));
        self.devices[device.0 as usize].connected = false;
        self.history.device_broke(at, device);
    }

    /// The device opens a TCP connection to the broker (a connection attempt starts).
    pub fn device_connecting(&mut self, at: Micros, device: DeviceId) {
        self.connections
            .push((at, ClientRef::Device(device), ConnState::Connecting));
    }

    /// A connection attempt of the device ended without a connection.
    pub fn device_connect_failed(&mut self, at: Micros, device: DeviceId) {
        self.connections
            .push((at, ClientRef::Device(device), ConnState::Down));
    }

    fn in_flight_of(&mut self, device: DeviceId) -> impl Iterator<Item = &mut Message> {
        let lo = MsgId { device, seq: 0 };
        let hi = MsgId {
            device,
            seq: u64::MAX,
        };
        self.messages
            .range_mut(lo..=hi)
            .map(|(_, m)| m)
            .filter(|m| m.accepted && m.completed_at.is_none() && !m.abandoned)
    }

    // -- Subscriber side ------------------------------------------------------------------

    /// SUBACK granted `granted_qos` (0x80 = refused: ignored) for `filter`.
    pub fn subscribed(
        &mut self,
        at: Micros,
        subscriber: SubscriberId,
        filter: &str,
        granted_qos: u8,
        clean_session: bool,
    ) {
        let s = &mut self.subscribers[subscriber.0 as usize];
        s.clean_session = clean_session;
        s.requested.remove(filter);
        if granted_qos <= 2 {
            s.filters.insert(filter.to_string(), granted_qos);
            self.history.granted(at, subscriber, filter);
        }
    }

    /// The subscriber sent a SUBSCRIBE for `filter` (its SUBACK is `subscribed`).
    pub fn subscribe_requested(&mut self, _at: Micros, subscriber: SubscriberId, filter: &str) {
        self.subscribers[subscriber.0 as usize]
            .requested
            .insert(filter.to_string());
    }

    /// The subscriber's first connection attempt failed and it exited, as `mosquitto_sub` does:
    /// a behaviour of the client, not a liveness failure of the broker.
    pub fn subscriber_gave_up(&mut self, _at: Micros, subscriber: SubscriberId) {
        let s = &mut self.subscribers[subscriber.0 as usize];
        if !s.gave_up {
            s.gave_up = true;
            s.connected = false;
            self.behaviours.subscribers_gave_up += 1;
        }
    }

    /// CONNACK; without `session_present` the broker has no session (no subscriptions).
    pub fn subscriber_connected(
        &mut self,
        at: Micros,
        subscriber: SubscriberId,
        session_present: bool,
    ) {
        self.history.subscriber_link(at, subscriber, true);
        self.connections
            .push((at, ClientRef::Subscriber(subscriber), ConnState::Connected));
        let s = &mut self.subscribers[subscriber.0 as usize];
        s.connected = true;
        s.connects += 1;
        s.connection_epoch += 1;
        s.before_restart.clear();
        if !session_present {
            s.session_epoch += 1;
            s.filters.clear();
        }
        self.packet_ids.retain(|e, _| {
            !(e.client == ClientRef::Subscriber(subscriber)
                && e.flow == Flow::BrokerToClient
                && !session_present)
        });
    }

    pub fn subscriber_disconnected(&mut self, at: Micros, subscriber: SubscriberId) {
        self.history.subscriber_link(at, subscriber, false);
        self.connections
            .push((at, ClientRef::Subscriber(subscriber), ConnState::Down));
        let s = &mut self.subscribers[subscriber.0 as usize];
        s.connected = false;
        s.before_restart.clear();
        if s.clean_session {
            s.session_epoch += 1;
            s.filters.clear();
        }
    }

    /// A PUBLISH arrived at a subscriber; `msg` parsed from the payload tag by the driver.
    #[allow(clippy::too_many_arguments)]
    pub fn received(
        &mut self,
        at: Micros,
        subscriber: SubscriberId,
        topic: &str,
        msg: MsgId,
        qos: u8,
        dup: bool,
        retain: bool,
    ) {
        let _ = dup;
        filter::on_receipt(self, at, subscriber, topic, Some(msg));
        let Some(m) = self.messages.get_mut(&msg) else {
            published::on_unknown(self, at, subscriber, topic, msg);
            return;
        };
        let r = m.receipts.entry(subscriber).or_default();
        let first = r.first_at.is_none();
        if first {
            r.first_at = Some(at);
            r.first_retained = retain;
        } else if !retain {
            r.duplicates += 1;
        }
        let duplicate = !first && !retain;
        if first && !retain {
            self.subscribers[subscriber.0 as usize].last_receipt_at = Some(at);
            order::on_first_receipt(self, at, subscriber, topic, msg);
        }
        if duplicate {
            qos0::on_duplicate(self, at, subscriber, msg);
            qos2::on_duplicate(self, at, subscriber, msg);
        }
        let _ = qos;
    }

    /// The payload of publish call `seq` of `device`, as its application gave it.
    pub fn publish_payload(&mut self, device: DeviceId, seq: u64, payload: &[u8]) {
        self.payloads
            .insert(MsgId { device, seq }, payload.to_vec());
    }

    /// A device received a message (a command): recorded for the test's own checks.
    pub fn device_received(&mut self, at: Micros, device: DeviceId, topic: &str, payload: &[u8]) {
        let (payload, from) = match mqsim::device::parse_tag(payload) {
            Some((visible, d, seq)) => {
                let from = (d as usize) < self.devices.len();
                let from = from.then(|| (self.device_name(DeviceId(d)).to_string(), seq));
                (visible.to_vec(), from)
            }
            None => (payload.to_vec(), None),
        };
        self.device_receipts.push(DeviceReceipt {
            device: self.device_name(device).to_string(),
            at,
            topic: topic.to_string(),
            payload,
            from,
        });
    }

    /// A message without a payload tag (a will, a foreign publisher): checked against the filters
    /// and counted, nothing else.
    pub fn received_untagged(&mut self, at: Micros, subscriber: SubscriberId, topic: &str) {
        filter::on_receipt(self, at, subscriber, topic, None);
        *self.untagged.entry(subscriber).or_default() += 1;
    }

    // -- Broker and wire ------------------------------------------------------------------

    /// Marks what the broker's restart at `at` took with it, of the messages published after
    /// `since` (all when `None`): acknowledged and not yet received is lost with broker state
    /// (`unsaved`: after its last autosave); unacknowledged loses its session.
    fn lose_with_broker(&mut self, at: Micros, since: Option<Micros>, unsaved: bool) {
        for m in self.messages.values_mut() {
            if !m.accepted || m.called_at > at || since.is_some_and(|s| m.called_at <= s) {
                continue;
            }
            let acked = m.completed_at.is_some();
            if !acked && !m.abandoned {
                m.session_lost = true;
            }
            for (sub, c) in m.covered.iter_mut() {
                let got = m.receipts.get(sub).is_some_and(|r| r.first_at.is_some());
                if acked && !got {
                    c.lost_with_broker = true;
                    c.unsaved = unsaved;
                }
            }
        }
    }

    /// The broker came back. Without persistence it lost every session, subscription and
    /// queued message: what was acknowledged to its publisher and not yet delivered is counted
    /// as lost with broker state, and QoS 2 in flight loses its exactly-once promise. With a
    /// journal it lost nothing. With autosave it lost what came after its last save (before the
    /// first one: everything, as without persistence), counted as not yet autosaved. Messages
    /// published before the last save and never delivered are still owed: the snapshot has them
    /// (one that reached the broker only after the save is taken for one before it: the ledger
    /// sees publish calls, not the broker's receipts).
    pub fn broker_restarted(&mut self, at: Micros, memory: BrokerMemory) {
        let saved = match memory {
            BrokerMemory::Journal => return,
            BrokerMemory::Volatile => None,
            BrokerMemory::Autosave => self.last_save.filter(|&s| s <= at),
        };
        let unsaved = memory == BrokerMemory::Autosave;
        if let Some(saved) = saved {
            // Sessions and subscriptions are in the snapshot; what came since is not.
            self.lose_with_broker(at, Some(saved), true);
            return;
        }
        self.restarts.push((at, unsaved));
        for s in &mut self.subscribers {
            s.session_epoch += 1;
            let held = std::mem::take(&mut s.filters);
            if s.connected {
                s.before_restart.extend(held.into_keys());
            }
        }
        self.lose_with_broker(at, None, unsaved);
        self.packet_ids
            .retain(|e, _| e.flow == Flow::ClientToBroker);
    }

    /// A packet carrying `pkid` was sent in this space (PUBLISH QoS > 0, SUBSCRIBE,
    /// UNSUBSCRIBE); `msg` = the message a PUBLISH carries, so a resend (same id, same message)
    /// is not a reuse.
    pub fn packet_id_used(
        &mut self,
        at: Micros,
        endpoint: Endpoint,
        pkid: u16,
        msg: Option<MsgId>,
    ) {
        if let (ClientRef::Device(_), Flow::ClientToBroker, Some(id)) =
            (endpoint.client, endpoint.flow, msg)
        {
            let n = self.arrivals;
            self.arrivals += 1;
            if let Some(m) = self.messages.get_mut(&id) {
                m.first_arrival.get_or_insert(n);
                m.last_arrival = Some(n);
            }
        }
        packet_id::on_used(self, at, endpoint, pkid, msg);
    }

    /// A CONNACK without a session reached `client` (decoded from the wire, in order with the
    /// packets around it): the broker's session for it is new, so are the identifiers it picks
    /// (whatever the old session had in flight is gone with it, MQTT-3.1.2-6).
    pub fn broker_session_new(&mut self, _at: Micros, client: ClientRef) {
        self.packet_ids.remove(&Endpoint {
            client,
            flow: Flow::BrokerToClient,
        });
    }

    /// The exchange ended (PUBACK, PUBCOMP, SUBACK, UNSUBACK seen).
    pub fn packet_id_released(&mut self, _at: Micros, endpoint: Endpoint, pkid: u16) {
        if let Some(space) = self.packet_ids.get_mut(&endpoint) {
            space.remove(&pkid);
        }
    }

    // -- Phases ---------------------------------------------------------------------------

    /// Faults are over: the liveness phase starts.
    pub fn heal(&mut self, at: Micros) {
        self.heal_at.get_or_insert(at);
    }

    /// The run ends: the checks that need the whole run.
    pub fn finish(&mut self, at: Micros) {
        if self.finish_at.is_some() {
            return;
        }
        self.finish_at = Some(at);
        self.find_announced();
        if self.heal_at.is_some() {
            qos1::at_finish(self, at);
            qos2::at_finish(self, at);
            liveness::at_finish(self, at);
        }
        self.find_causes(at);
    }

    // -- Reading --------------------------------------------------------------------------

    /// Every violation, in the order found.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    pub fn heal_at(&self) -> Option<Micros> {
        self.heal_at
    }

    /// Is the subscriber still owed this message at the end? Covered at publish time with
    /// QoS > 0, acknowledged to the publisher, not lost with broker state, and the same session
    /// (clean: the same connection, still up; persistent: the same session, connected now).
    fn owed(&self, m: &Message, sub: SubscriberId, c: &Coverage) -> bool {
        let s = &self.subscribers[sub.0 as usize];
        let same_session = if s.clean_session {
            c.connection_epoch == s.connection_epoch
        } else {
            c.session_epoch == s.session_epoch
        };
        c.qos > 0
            && m.completed_at.is_some()
            && !c.lost_with_broker
            && same_session
            && s.connected
            && self.heal_at.is_some_and(|h| m.called_at < h)
    }
}

#[cfg(test)]
mod tests;
