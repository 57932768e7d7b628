//! The part of a device an application reaches through its [`Ctx`](crate::app::Ctx): the MQTT
//! client with the library's publish rules, the serial port, the application's timers, and the
//! outputs they make, in the order they are made.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};

use super::serial::tag_payload;
use super::{DeviceEvent, SerialLine};
use crate::app::{PublishError, PublishId, TimerId};
use crate::client::{Client, PublishId as ClientPublishId};
use crate::codec::QoS;
use crate::time::{Duration, Instant};

/// Characters per serial line before a new line starts: a sketch that prints without ending
/// its line (the WiFi wait loop's dots, forever when WiFi never comes) would otherwise hold one
/// line forever.
pub const SERIAL_LINE_MAX_CHARS: usize = 80;

#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) now: Instant,
    pub(crate) client: Client,
    /// MQTT connected (CONNACK accepted, not lost since).
    pub(crate) connected: bool,
    /// The library keeps QoS 1/2 publishes while disconnected (esp-mqtt's outbox).
    queues_offline: bool,
    /// The highest QoS the library publishes with.
    max_publish_qos: QoS,
    /// The highest QoS the library subscribes with.
    max_subscribe_qos: QoS,
    /// Tag payloads with this device index (the simulator's message identity).
    tag: Option<u32>,
    /// Publish calls so far.
    pub(crate) seq: u64,
    /// The publish call behind each of the client's in-flight publishes.
    pub(crate) seqs: BTreeMap<ClientPublishId, u64>,
    pub(crate) timers: BTreeMap<TimerId, Instant>,
    pub(crate) awaiting_reading: bool,
    pub(crate) reconnect_delay: Option<Duration>,
    /// The serial line being printed: when its first character was, and its text.
    partial: Option<(Instant, String)>,
    /// The last line was ended by the length bound: the application's own `println` that
    /// follows ends nothing more.
    wrapped: bool,
    pub(crate) events: VecDeque<DeviceEvent>,
}

/// What [`Runtime::new`] needs to know of the library.
pub(crate) struct Rules {
    pub queues_offline: bool,
    pub max_publish_qos: QoS,
    pub max_subscribe_qos: QoS,
    pub tag: Option<u32>,
}

impl Runtime {
    pub(crate) fn new(client: Client, rules: Rules, now: Instant) -> Runtime {
        Runtime {
            now,
            client,
            connected: false,
            queues_offline: rules.queues_offline,
            max_publish_qos: rules.max_publish_qos,
            max_subscribe_qos: rules.max_subscribe_qos,
            tag: rules.tag,
            seq: 0,
            seqs: BTreeMap::new(),
            timers: BTreeMap::new(),
            awaiting_reading: false,
            reconnect_delay: None,
            partial: None,
            wrapped: false,
            events: VecDeque::new(),
        }
    }

    pub(crate) fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<PublishId, PublishError> {
        self.seq += 1;
        let seq = self.seq;
        let given = payload;
        let tagged;
        let payload = match self.tag {
            Some(device) => {
                tagged = tag_payload(payload, device, seq);
                &tagged[..]
            }
            None => payload,
        };
        let verdict = if qos > self.max_publish_qos {
            Err(PublishError::QosUnsupported)
        } else if !(self.connected || (qos != QoS::AtMostOnce && self.queues_offline)) {
            Err(PublishError::NotConnected)
        } else {
            match self.client.publish(self.now, topic, payload, qos, retain) {
                Ok(id) => {
                    self.seqs.insert(id, seq);
                    Ok(seq)
                }
                Err(_) => Err(PublishError::Refused),
            }
        };
        self.events.push_back(DeviceEvent::PublishCalled {
            seq,
            topic: topic.to_string(),
            payload: given.to_vec(),
            qos,
            accepted: verdict.is_ok(),
        });
        verdict
    }

    pub(crate) fn subscribe(&mut self, filter: &str, qos: QoS) -> bool {
        if qos > self.max_subscribe_qos || !self.connected {
            return false;
        }
        self.client.subscribe(self.now, &[(filter, qos)]).is_ok()
    }

    pub(crate) fn read_sensor(&mut self) {
        self.awaiting_reading = true;
        self.events.push_back(DeviceEvent::ReadSensor);
    }

    /// `Serial.print`.
    pub(crate) fn print(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.wrapped = false;
        let now = self.now;
        let (_, line) = self.partial.get_or_insert_with(|| (now, String::new()));
        line.push_str(text);
        if line.chars().count() >= SERIAL_LINE_MAX_CHARS {
            self.end_line();
            self.wrapped = true;
        }
    }

    /// `Serial.println`.
    pub(crate) fn println(&mut self, text: &str) {
        if text.is_empty() && self.partial.is_none() && self.wrapped {
            self.wrapped = false;
            return;
        }
        self.wrapped = false;
        let now = self.now;
        let (_, line) = self.partial.get_or_insert_with(|| (now, String::new()));
        line.push_str(text);
        self.end_line();
    }

    fn end_line(&mut self) {
        if let Some((at, text)) = self.partial.take() {
            self.events
                .push_back(DeviceEvent::Serial(SerialLine { at, text }));
        }
    }

    /// The earliest timer due at `now`, removed.
    pub(crate) fn take_due_timer(&mut self) -> Option<TimerId> {
        let now = self.now;
        let (&id, _) = self
            .timers
            .iter()
            .filter(|(_, &at)| at <= now)
            .min_by_key(|(&id, &at)| (at, id))?;
        self.timers.remove(&id);
        Some(id)
    }

    /// When the next timer is due.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.values().min().copied()
    }
}
