//! A door alarm: an example device application for mqsim, the one to copy when you start your
//! own. It is an [`App`]: the same value runs in the simulator (under faults, from `cargo
//! test`), over real TCP (`mqsim device`) and on the ESP32-C3 (`firmware/` next to this file,
//! flashed unchanged).
//!
//! # What it does
//! * **Alarms.** Every change of the input `door` (`Value::Bool(open)`; the first value seen
//!   counts as a change) raises an alarm, published at QoS 1 (by default) on
//!   `alarm/<client_id>/door` with the payload `open <seq>` or `closed <seq>`: `seq` numbers the
//!   device's alarms from 1 since power-on, so a receiver recognises a duplicate (QoS 1 delivers
//!   at least once) and a gap ([`parse_alarm`] reads a payload).
//! * **Heartbeat.** `heartbeat/<client_id>` at QoS 0 every `heartbeat_s` seconds while
//!   connected, the payload the uptime in seconds. Lost ones are not made up for.
//! * **Commands.** On every `Connected` (the session is clean: the broker forgot the
//!   subscription) it subscribes to `cmd/<client_id>/#`. A command is `cmd/<client_id>/<name>`
//!   with the payload `<id> <value>`; `heartbeat_s` with a whole number > 0 sets the heartbeat
//!   period. Each command is applied once: an id among the last [`RECENT_COMMANDS`] seen is a
//!   duplicate (QoS 1 redelivery) and is ignored. Give every command a fresh id (a counter).
//! * **Serial.** One line for each thing it does (`Door open: alarm 3`, `Alarm 3 acknowledged`,
//!   ...).
//!
//! # Alarms are delivered at least once, in order
//! The application owns its alarms until the library reports them done; it never relies on the
//! library's outbox, which differs between libraries (PubSubClient has none, esp-mqtt keeps
//! QoS 1 messages across reconnects and resends them, but deletes them unacknowledged after
//! 30 s: [`Event::PublishExpired`]).
//! 1. Alarms wait in a FIFO buffer of `buffer_capacity` (default 32). When it is full, the
//!    oldest alarm not yet handed to the library is dropped and counted ([`DoorAlarm::dropped`]):
//!    a gap in `seq` that the receiver sees.
//! 2. One alarm at a time is handed to the library (stop and wait), and only while connected:
//!    the head of the buffer. It leaves the buffer on [`Event::PublishDone`] (the PUBACK), and
//!    only then does the next one go. So alarms reach the broker in `seq` order.
//! 3. A publish the library refuses (outbox full, not connected) stays at the head and is tried
//!    again `retry_ms` later or at the next `Connected`.
//! 4. Expired (the library gave up on it): handed to the library again at once when connected,
//!    otherwise at the next `Connected`.
//! 5. A connection lost with the head alarm handed to the library and not acknowledged: on the
//!    next `Connected` it is handed to the library again. With a clean session the broker has
//!    forgotten the packet identifier, so a library that drops its in-flight messages with the
//!    connection would lose the alarm; esp-mqtt resends its copy itself, so the broker then
//!    gets it twice (same `seq`: a duplicate the receiver drops). Whichever copy is
//!    acknowledged first completes the alarm, and the next alarm only goes after it: order
//!    holds in both cases.
//!
//! QoS 1 needs a library that publishes at QoS 1 (esp-mqtt); on PubSubClient set `alarm_qos` to
//! QoS 0: the same logic runs, but "done" then only means "written to the socket", so an alarm
//! written just before the connection dies is lost (at most once).
//!
//! # The deliberately broken variant
//! [`DoorAlarm::forgetful`] (`resend_buffer: false`) is a common bug: on reconnect it starts
//! afresh, forgetting the alarms it held while offline and the one in flight. Tests that run it
//! under a network fault must fail; that is how you know they test something.

#![no_std]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mqsim::app::{App, Ctx, Event, Library, PublishId, TimerId, Value};
use mqsim::device::{DeviceError, TAG_SEPARATOR};
use mqsim::time::Duration;
use mqsim::QoS;

/// The heartbeat timer.
const HEARTBEAT: TimerId = 1;
/// The timer that retries a refused alarm.
const RETRY: TimerId = 2;

/// Command ids remembered to recognise a duplicate.
pub const RECENT_COMMANDS: usize = 16;

/// The input this application listens to.
pub const DOOR_INPUT: &str = "door";

/// The application's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DoorAlarmConfig {
    /// Heartbeat period in seconds (default 30); changed at run time by the `heartbeat_s`
    /// command.
    pub heartbeat_s: u32,
    /// QoS of the alarms (default 1).
    pub alarm_qos: QoS,
    /// QoS of the command subscription (default 1).
    pub command_qos: QoS,
    /// Alarms held, the one in flight included (default 32; at least 1).
    pub buffer_capacity: usize,
    /// Wait before trying a refused alarm again while connected, in ms (default 1000).
    pub retry_ms: u64,
    /// Hand the held alarms to the library again after a reconnect (default `true`); `false` is
    /// the deliberately broken variant ([`DoorAlarm::forgetful`]).
    pub resend_buffer: bool,
}

impl Default for DoorAlarmConfig {
    fn default() -> Self {
        DoorAlarmConfig {
            heartbeat_s: 30,
            alarm_qos: QoS::AtLeastOnce,
            command_qos: QoS::AtLeastOnce,
            buffer_capacity: 32,
            retry_ms: 1_000,
            resend_buffer: true,
        }
    }
}

/// One alarm: the door's new state and its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// The device's alarm number, from 1 since power-on.
    pub seq: u32,
    /// The door is open.
    pub open: bool,
}

impl Alarm {
    /// The payload: `open <seq>` or `closed <seq>`.
    pub fn payload(&self) -> String {
        format!("{} {}", if self.open { "open" } else { "closed" }, self.seq)
    }
}

/// Reads an alarm payload (`open 3`); a device tag after U+001F (the simulator's
/// `tag_payloads`) is ignored.
pub fn parse_alarm(payload: &[u8]) -> Option<Alarm> {
    let end = payload
        .iter()
        .position(|&b| b == TAG_SEPARATOR)
        .unwrap_or(payload.len());
    let text = core::str::from_utf8(&payload[..end]).ok()?;
    let (state, seq) = text.split_once(' ')?;
    let open = match state {
        "open" => true,
        "closed" => false,
        _ => return None,
    };
    Some(Alarm {
        seq: seq.parse().ok()?,
        open,
    })
}

/// The topics, named after the client id (known once the device runs).
#[derive(Clone, Debug, Default)]
struct Topics {
    alarm: String,
    heartbeat: String,
    /// `cmd/<client_id>/`.
    command_prefix: String,
    command_filter: String,
}

/// The door alarm. See the crate documentation.
#[derive(Clone, Debug)]
pub struct DoorAlarm {
    config: DoorAlarmConfig,
    topics: Topics,
    /// The door's last value.
    door: Option<bool>,
    /// Alarms raised so far (the last `seq`).
    raised: u32,
    /// Alarms not yet acknowledged, oldest first; the head may be in flight.
    pending: VecDeque<Alarm>,
    /// The library's publish calls carrying the head alarm, not yet done or expired.
    in_flight: Vec<PublishId>,
    delivered: u32,
    dropped: u32,
    heartbeats: u32,
    /// Command ids seen, newest last.
    recent: VecDeque<u32>,
}

impl DoorAlarm {
    /// The application with these settings.
    pub fn new(config: DoorAlarmConfig) -> DoorAlarm {
        DoorAlarm {
            config,
            topics: Topics::default(),
            door: None,
            raised: 0,
            pending: VecDeque::new(),
            in_flight: Vec::new(),
            delivered: 0,
            dropped: 0,
            heartbeats: 0,
            recent: VecDeque::new(),
        }
    }

    /// The deliberately broken variant: forgets its held alarms on reconnect.
    pub fn forgetful() -> DoorAlarm {
        DoorAlarm::new(DoorAlarmConfig {
            resend_buffer: false,
            ..DoorAlarmConfig::default()
        })
    }

    /// Its settings (`heartbeat_s` as changed by commands).
    pub fn config(&self) -> &DoorAlarmConfig {
        &self.config
    }
    /// The door's last value (`None` before the first).
    pub fn door(&self) -> Option<bool> {
        self.door
    }
    /// Alarms raised (the last `seq`).
    pub fn raised(&self) -> u32 {
        self.raised
    }
    /// Alarms held, not yet acknowledged, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Alarm> + '_ {
        self.pending.iter()
    }
    /// Alarms acknowledged (the library's `PublishDone`).
    pub fn delivered(&self) -> u32 {
        self.delivered
    }
    /// Alarms dropped because the buffer was full.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
    /// Heartbeats handed to the library.
    pub fn heartbeats(&self) -> u32 {
        self.heartbeats
    }

    fn door_changed(&mut self, ctx: &mut Ctx<'_>, open: bool) {
        if self.door == Some(open) {
            return;
        }
        self.door = Some(open);
        self.raised += 1;
        let alarm = Alarm {
            seq: self.raised,
            open,
        };
        ctx.println(&format!(
            "Door {}: alarm {}",
            if open { "open" } else { "closed" },
            alarm.seq
        ));
        self.pending.push_back(alarm);
        if self.pending.len() > self.config.buffer_capacity.max(1) {
            // The oldest not handed to the library (the head stays when it is in flight).
            let at = usize::from(!self.in_flight.is_empty() && self.pending.len() > 1);
            if let Some(lost) = self.pending.remove(at) {
                self.dropped += 1;
                ctx.println(&format!(
                    "Alarm buffer full: alarm {} dropped ({} dropped)",
                    lost.seq, self.dropped
                ));
            }
        }
        self.send_head(ctx);
    }

    /// Hands the head alarm to the library, when connected and nothing is in flight.
    fn send_head(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.is_connected() || !self.in_flight.is_empty() {
            return;
        }
        let Some(alarm) = self.pending.front().copied() else {
            return;
        };
        let payload = alarm.payload();
        match ctx.publish(
            &self.topics.alarm,
            payload.as_bytes(),
            self.config.alarm_qos,
            false,
        ) {
            Ok(id) => {
                self.in_flight.push(id);
                ctx.println(&format!("Alarm {} sent", alarm.seq));
            }
            Err(e) => {
                ctx.println(&format!("Alarm {} refused ({e:?}), held", alarm.seq));
                ctx.set_timer_after(RETRY, Duration::from_millis(self.config.retry_ms));
            }
        }
    }

    fn connected(&mut self, ctx: &mut Ctx<'_>) {
        ctx.println("connected");
        ctx.subscribe(&self.topics.command_filter, self.config.command_qos);
        if !self.config.resend_buffer {
            // The bug: starts afresh.
            self.pending.clear();
            self.in_flight.clear();
            return;
        }
        if !self.pending.is_empty() {
            ctx.println(&format!("{} alarms held", self.pending.len()));
        }
        if let (Some(alarm), false) = (self.pending.front().copied(), self.in_flight.is_empty()) {
            // Handed to the library on a connection now gone, not acknowledged: once more (the
            // library's own copies stay tracked; the first one done completes the alarm).
            ctx.println(&format!("Alarm {} unacknowledged, resending", alarm.seq));
            let copies = core::mem::take(&mut self.in_flight);
            self.send_head(ctx);
            self.in_flight.extend(copies);
        }
        self.send_head(ctx);
    }

    fn publish_done(&mut self, ctx: &mut Ctx<'_>, id: PublishId) {
        if !self.in_flight.contains(&id) {
            return; // a heartbeat, or a late copy of an alarm already done
        }
        self.in_flight.clear();
        if let Some(alarm) = self.pending.pop_front() {
            self.delivered += 1;
            ctx.println(&format!("Alarm {} acknowledged", alarm.seq));
        }
        self.send_head(ctx);
    }

    fn publish_expired(&mut self, ctx: &mut Ctx<'_>, id: PublishId) {
        let before = self.in_flight.len();
        self.in_flight.retain(|&i| i != id);
        if self.in_flight.len() == before || !self.in_flight.is_empty() {
            return;
        }
        if let Some(alarm) = self.pending.front() {
            ctx.println(&format!("Alarm {} expired, resending", alarm.seq));
        }
        self.send_head(ctx);
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer_after(
            HEARTBEAT,
            Duration::from_secs(u64::from(self.config.heartbeat_s)),
        );
        if !ctx.is_connected() {
            return;
        }
        let uptime_s = ctx.now().as_micros() / 1_000_000;
        let payload = format!("{uptime_s}");
        if ctx
            .publish(
                &self.topics.heartbeat,
                payload.as_bytes(),
                QoS::AtMostOnce,
                false,
            )
            .is_ok()
        {
            self.heartbeats += 1;
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_>, topic: &str, payload: &[u8]) {
        let Some(name) = topic.strip_prefix(self.topics.command_prefix.as_str()) else {
            return;
        };
        let text = core::str::from_utf8(payload).unwrap_or("");
        let Some((id, value)) = text
            .split_once(' ')
            .and_then(|(id, v)| Some((id.parse::<u32>().ok()?, v.trim())))
        else {
            ctx.println(&format!("Command {name}: bad payload {text:?}"));
            return;
        };
        if self.recent.contains(&id) {
            ctx.println(&format!("Command {id} ignored (repeated)"));
            return;
        }
        if self.recent.len() == RECENT_COMMANDS {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
        match (name, value.parse::<u32>()) {
            ("heartbeat_s", Ok(s)) if s > 0 => {
                self.config.heartbeat_s = s;
                ctx.set_timer_after(HEARTBEAT, Duration::from_secs(u64::from(s)));
                ctx.println(&format!("Command {id}: heartbeat every {s} s"));
            }
            _ => ctx.println(&format!("Command {id}: {name} {value:?} not understood")),
        }
    }
}

impl Default for DoorAlarm {
    fn default() -> Self {
        DoorAlarm::new(DoorAlarmConfig::default())
    }
}

impl App for DoorAlarm {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        let id = ctx.client_id();
        self.topics = Topics {
            alarm: format!("alarm/{id}/door"),
            heartbeat: format!("heartbeat/{id}"),
            command_prefix: format!("cmd/{id}/"),
            command_filter: format!("cmd/{id}/#"),
        };
        ctx.println(&format!(
            "Door alarm {id}: alarms on {}, heartbeat every {} s",
            self.topics.alarm, self.config.heartbeat_s
        ));
        ctx.set_timer_after(
            HEARTBEAT,
            Duration::from_secs(u64::from(self.config.heartbeat_s)),
        );
    }

    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        match event {
            Event::WifiConnected => ctx.println("WiFi connected"),
            Event::Connected { .. } => self.connected(ctx),
            Event::ConnectFailed { state } => {
                ctx.println(&format!("MQTT connect failed (state {state})"))
            }
            Event::ConnectionLost { .. } => ctx.println("connection lost"),
            Event::Input { name, value } if name == DOOR_INPUT => match value {
                Value::Bool(open) => self.door_changed(ctx, open),
                Value::Number(_) => ctx.println("door: not a switch value"),
            },
            Event::PublishDone(id) => self.publish_done(ctx, id),
            Event::PublishExpired(id) => self.publish_expired(ctx, id),
            Event::Timer(HEARTBEAT) => self.heartbeat(ctx),
            Event::Timer(RETRY) => self.send_head(ctx),
            Event::Message { topic, payload } => self.message(ctx, &topic, &payload),
            _ => {}
        }
    }

    fn check(&self, library: Library) -> Result<(), DeviceError> {
        let (c, p) = (&self.config, library.params);
        if c.heartbeat_s == 0 || c.retry_ms == 0 {
            return Err(DeviceError::IntervalZero);
        }
        if c.alarm_qos > p.max_publish_qos {
            return Err(DeviceError::PublishQosUnsupported {
                profile: library.profile,
                qos: c.alarm_qos,
            });
        }
        if c.command_qos > p.max_subscribe_qos {
            return Err(DeviceError::SubscribeQosUnsupported {
                profile: library.profile,
                qos: c.command_qos,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
