//! The ledger's records, for checks of a test's own: every publish call with its outcome and
//! where and when it was delivered, and every message a device received. They are the facts the
//! invariants are checked against, as seen at the edges (client APIs and the wire); nothing
//! comes from inside the broker.
//!
//! ```no_run
//! # let outcome: mqsim_sim::run::RunOutcome = unimplemented!();
//! // Every alarm reached the backend within 5 s of the call.
//! for p in outcome.records.publishes.iter().filter(|p| p.topic.starts_with("alarm/")) {
//!     let d = p.delivered_to("backend").expect("delivered");
//!     assert!(d.first_at - p.called_at <= 5_000_000, "{p:?}");
//! }
//! ```

use super::{Cause, ClientRef, Ledger, Micros};

/// Everything the ledger saw, in a form a test can query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Every publish call of every device, by device then call number.
    pub publishes: Vec<PublishRecord>,
    /// Every message a device received (commands, configuration), in order of receipt.
    pub device_receipts: Vec<DeviceReceipt>,
    /// Every client's connection changes (devices and subscribers), in time order.
    pub connections: Vec<ConnectionChange>,
}

/// A client's connection state, as its edge saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnState {
    /// A connection attempt is under way (the device opened a TCP connection; no CONNACK yet).
    Connecting,
    /// CONNACK accepted, until the connection is lost.
    Connected,
    /// Neither: lost, an attempt failed, or waiting to retry.
    Down,
}

/// One change of a client's connection state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionChange {
    pub at: Micros,
    /// The client id (a device's or a subscriber's name).
    pub client: String,
    /// A subscriber (else a device).
    pub subscriber: bool,
    pub state: ConnState,
}

/// Why one message did not reach one subscriber ([`super::causes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub subscriber: String,
    pub cause: Cause,
}

/// One publish call and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishRecord {
    /// The publishing device's client id.
    pub device: String,
    /// Its publish-call number (from 1).
    pub seq: u64,
    pub topic: String,
    /// The payload as the application gave it (empty when the ledger was not told).
    pub payload: Vec<u8>,
    pub qos: u8,
    /// When the application called publish (simulated microseconds).
    pub called_at: Micros,
    /// The library took it (false: lost at the device).
    pub accepted: bool,
    /// When the library completed it (QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP).
    pub completed_at: Option<Micros>,
    /// The library gave it up (esp-mqtt's outbox expiry).
    pub abandoned: bool,
    /// Its receipts, one per subscriber that received it.
    pub deliveries: Vec<Delivery>,
    /// Every subscriber it did not reach although owed or later subscribed, with the cause
    /// (a refused call is `accepted: false`, not listed here).
    pub losses: Vec<Loss>,
}

impl PublishRecord {
    /// Its delivery to subscriber `name`, if any.
    pub fn delivered_to(&self, name: &str) -> Option<&Delivery> {
        self.deliveries.iter().find(|d| d.subscriber == name)
    }
}

/// One subscriber's receipt of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub subscriber: String,
    /// The first copy's arrival (simulated microseconds).
    pub first_at: Micros,
    /// Copies after the first (not counting a retained copy sent on subscribe).
    pub duplicates: u64,
}

/// A message a device received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceReceipt {
    /// The receiving device's client id.
    pub device: String,
    pub at: Micros,
    pub topic: String,
    /// The payload as the application saw it (without the simulator's tag).
    pub payload: Vec<u8>,
    /// The publishing device and its call number, when the sender was a device of the run.
    pub from: Option<(String, u64)>,
}

impl Ledger {
    /// The records so far; see the module documentation.
    pub fn records(&self) -> Records {
        let causes = self.loss_causes();
        let publishes = self
            .messages
            .iter()
            .map(|(id, m)| PublishRecord {
                device: self.device_name(id.device).to_string(),
                seq: id.seq,
                topic: m.topic.clone(),
                payload: self.payloads.get(id).cloned().unwrap_or_default(),
                qos: m.qos,
                called_at: m.called_at,
                accepted: m.accepted,
                completed_at: m.completed_at,
                abandoned: m.abandoned,
                deliveries: m
                    .receipts
                    .iter()
                    .filter_map(|(s, r)| {
                        Some(Delivery {
                            subscriber: self.subscriber_name(*s).to_string(),
                            first_at: r.first_at?,
                            duplicates: r.duplicates,
                        })
                    })
                    .collect(),
                losses: causes
                    .range((*id, None)..)
                    .take_while(|((m, _), _)| m == id)
                    .filter_map(|((_, s), c)| {
                        Some(Loss {
                            subscriber: self.subscriber_name((*s)?).to_string(),
                            cause: *c,
                        })
                    })
                    .collect(),
            })
            .collect();
        let mut connections: Vec<ConnectionChange> = self
            .connections
            .iter()
            .map(|(at, who, state)| ConnectionChange {
                at: *at,
                client: match who {
                    ClientRef::Device(d) => self.device_name(*d).to_string(),
                    ClientRef::Subscriber(s) => self.subscriber_name(*s).to_string(),
                },
                subscriber: matches!(who, ClientRef::Subscriber(_)),
                state: *state,
            })
            .collect();
        connections.sort_by_key(|c| c.at); // stable: feeding order within one instant
        Records {
            publishes,
            device_receipts: self.device_receipts.clone(),
            connections,
        }
    }
}
