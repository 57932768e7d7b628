//! Device applications: the sketch-level logic of a device, written once and run unchanged in
//! the simulator, over real TCP against a real broker, and on the ESP32-C3.
//!
//! An application is a value implementing [`App`]. It decides *what* the device does: which
//! topics it publishes on and at which QoS, what it keeps while offline, which commands it
//! subscribes to and how it applies them, when it reads its inputs, what it prints on the serial
//! port, how long it waits before reconnecting. The [`Device`](crate::device::Device) it runs in
//! owns the rest, as the MQTT library and the board do on a real device: the WiFi join, the TCP
//! connection, the MQTT client with the library profile's behaviour (PubSubClient 2.8's blocking
//! `connect()` and missing outbox, esp-mqtt's outbox, resends and expiry, this project's own
//! client), keep-alive, packet identifiers and retransmission.
//!
//! # The programming model, and why
//! An application is a state machine with callbacks: [`App::setup`] once at power-on, then
//! [`App::handle`] for every [`Event`] (a timer it set, the connection coming or going, a
//! message, a publish completed, an input), each with a [`Ctx`] through which it acts (publish,
//! subscribe, print, set timers, ask for a reading). Nothing in it waits: a callback returns,
//! and the device goes on.
//!
//! Embedded Rust users often write async tasks (embassy). An `async fn` application would need an
//! executor inside every engine that runs it, the simulator's included, and every `.await` on a
//! timer or a socket would become a point where the simulator must decide, deterministically,
//! which task runs next; a blocking wait would stop the whole simulated world. A callback
//! interface has none of that: the same value is driven by the simulator's loop, by the tokio
//! runner and by the firmware's one embassy task, and its behaviour depends only on the events it
//! is given. This matches what the libraries offer on the device too: PubSubClient calls the
//! sketch back from `loop()`, esp-mqtt posts events to a handler. No async layer is offered yet.
//!
//! # Determinism
//! Time is [`Ctx::now`]; inputs (sensor readings, a door switch, a button) come from the world
//! as events. An application that reads no clock and draws no unseeded random number behaves
//! the same for the same events: in the simulator, the same seed gives the same run.
//!
//! # The reference sketch
//! [`reference::ReferenceSketch`] is the seed's ESP32 (`ESP32/TEM` and `ESP32/HUM` every 2 s,
//! its serial lines): one application among others.

pub mod reference;

use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::QoS;
use crate::device::runtime::Runtime;
use crate::device::{DeviceError, LossReason, Profile, ProfileParams, Reading};
use crate::time::{Duration, Instant};

/// A device application. See the module documentation.
pub trait App {
    /// Power-on, the sketch's `setup()`: runs once, before the WiFi join starts.
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }

    /// One event, in the order they happen.
    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event);

    /// Checks the application's settings against the library it runs on (the QoS it can
    /// publish, its buffer); called once by [`Device::new`](crate::device::Device::new).
    fn check(&self, library: Library) -> Result<(), DeviceError> {
        let _ = library;
        Ok(())
    }
}

impl<A: App + ?Sized> App for alloc::boxed::Box<A> {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        (**self).setup(ctx)
    }
    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        (**self).handle(ctx, event)
    }
    fn check(&self, library: Library) -> Result<(), DeviceError> {
        (**self).check(library)
    }
}

/// The MQTT library an application runs on, for [`App::check`].
#[derive(Clone, Copy, Debug)]
pub struct Library<'a> {
    /// Which library.
    pub profile: Profile,
    /// Its numbers.
    pub params: &'a ProfileParams,
}

/// Names a timer of the application; setting a timer again moves it.
pub type TimerId = u32;

/// Names a publish call: the device's publish calls are numbered from 1, in order.
pub type PublishId = u64;

/// What happens to an application.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// One turn of the WiFi wait loop at power-on (`delay(500)` while not connected): the
    /// reference sketch prints a dot.
    WifiWait,
    /// The WiFi link is up at power-on.
    WifiConnected,
    /// A connection attempt to the broker starts.
    Connecting,
    /// The broker accepted the connection (CONNACK 0).
    Connected {
        /// The broker kept a session for this client (CONNACK's session present).
        session_present: bool,
    },
    /// An attempt ended without a connection; `state` is PubSubClient's `state()` code
    /// ([`crate::device::state`]).
    ConnectFailed {
        /// PubSubClient's code.
        state: i8,
    },
    /// An established connection was lost.
    ConnectionLost {
        /// Why.
        reason: LossReason,
    },
    /// A timer set with [`Ctx::set_timer`] came due.
    Timer(TimerId),
    /// A message from a subscription.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// The library completed a publish: QoS 0 written to the transport, QoS 1 PUBACK, QoS 2
    /// PUBCOMP.
    PublishDone(PublishId),
    /// The library deleted a publish from its outbox unacknowledged (esp-mqtt's expiry): it
    /// may or may not have reached the broker.
    PublishExpired(PublishId),
    /// The answer to [`Ctx::read_sensor`].
    Reading(Reading),
    /// A value the world set: a switch, a button, a configuration jumper.
    Input {
        /// The input's name (`door`, `button`).
        name: String,
        /// Its new value.
        value: Value,
    },
}

/// The value of an input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A switch or a button: on/off, open/closed.
    Bool(bool),
    /// A measurement.
    Number(f32),
}

/// Why a publish call was refused by the library: the message is lost at the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// Not connected, and the library keeps nothing while disconnected (PubSubClient, and
    /// esp-mqtt at QoS 0).
    NotConnected,
    /// The library cannot publish at that QoS (QoS 1/2 on PubSubClient).
    QosUnsupported,
    /// The library refused it: the packet is over its buffer, the outbox is full, the topic is
    /// not a valid topic name.
    Refused,
}

/// What the device does for an application, inside a callback. Every call takes effect at once
/// and in order; what it causes later (a publish completed) comes as events.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub(crate) rt: &'a mut Runtime,
}

impl Ctx<'_> {
    /// Now, on the device's clock (since power-on).
    pub fn now(&self) -> Instant {
        self.rt.now
    }

    /// The MQTT connection is up (CONNACK accepted and not lost since).
    pub fn is_connected(&self) -> bool {
        self.rt.connected
    }

    /// The device's MQTT client id.
    pub fn client_id(&self) -> &str {
        self.rt.client.config().client_id.as_str()
    }

    /// Publish calls so far (the last [`PublishId`]).
    pub fn publish_calls(&self) -> u64 {
        self.rt.seq
    }

    /// Publishes `payload` on `topic`. `Ok` when the library took it (sent, or queued in its
    /// outbox), with the call's id: [`Event::PublishDone`] follows when the library completes
    /// it. `Err` when the library refused it: the message is lost at the device.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<PublishId, PublishError> {
        self.rt.publish(topic, payload, qos, retain)
    }

    /// Subscribes to `filter` (the broker's SUBACK is not reported); `false` when the library
    /// refused it (not connected, QoS above what it can ask for, invalid filter). With a clean
    /// session, subscribe again after every [`Event::Connected`].
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> bool {
        self.rt.subscribe(filter, qos)
    }

    /// Prints `text` on the serial port without ending the line (`Serial.print`).
    pub fn print(&mut self, text: &str) {
        self.rt.print(text);
    }

    /// Prints `text` and ends the line (`Serial.println`).
    pub fn println(&mut self, text: &str) {
        self.rt.println(text);
    }

    /// Sets timer `id` to fire at `at` ([`Event::Timer`]); replaces its previous time.
    pub fn set_timer(&mut self, id: TimerId, at: Instant) {
        self.rt.timers.insert(id, at);
    }

    /// Sets timer `id` to fire `after` from now.
    pub fn set_timer_after(&mut self, id: TimerId, after: Duration) {
        let at = self.rt.now + after;
        self.set_timer(id, at);
    }

    /// Cancels timer `id`, if set.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.rt.timers.remove(&id);
    }

    /// Asks the sensor for a reading; [`Event::Reading`] brings it.
    pub fn read_sensor(&mut self) {
        self.rt.read_sensor();
    }

    /// The wait before each following connection attempt, after a loss or a failed attempt
    /// (the application's back-off); the library's own interval until set.
    pub fn set_reconnect_delay(&mut self, delay: Duration) {
        self.rt.reconnect_delay = Some(delay);
    }
}
