//! The glue runs the shared application: one scripted world (access point, broker, sensor) is
//! played twice, once through [`Glue`] with a fake board, once by the core's own run loop (the
//! `mqsim::device` module documentation's, written out below), and both must print the same
//! serial lines, write the same bytes and ask for the same WiFi/TCP actions, at the same
//! microseconds.
//!
//! The script: boot, WiFi joins after 1.2 s, TCP and CONNACK, readings and publishes, a failed
//! sensor read, the broker drops the connection at 20 s and refuses connections until 27 s
//! (failed attempts, then a reconnect), the access point goes away at 40 s and comes back at
//! 45 s (rejoin, reconnect), the broker drops the connection again at 60 s and from then on
//! accepts TCP but never answers CONNECT (the socket timeout),
//! the end at 90 s.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;

use super::{Board, Clock, Console, Glue, Input, Sensor, Transport, Wifi};
use crate::app::reference::{ReferenceSketch, SketchConfig};
use crate::codec::QoS;
use crate::device::{Device, DeviceConfig, DeviceEvent, Output, Profile, Reading, SerialLine};
use crate::time::{Duration, Instant};

const END: Instant = Instant::from_millis(90_000);
const WIFI_JOIN_MS: u64 = 1_200;
const TCP_CONNECT_MS: u64 = 10;
const BROKER_ANSWER_MS: u64 = 5;

/// What both runs must agree on.
#[derive(Clone, Debug, PartialEq)]
enum Trace {
    Serial(u64, String),
    Wrote(u64, Vec<u8>),
    Join(u64),
    Open(u64),
    Close(u64),
}

/// A scheduled input to the device.
#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Wifi(bool),
    TcpConnected(u32),
    TcpFailed(u32),
    Bytes(u32, Vec<u8>),
    TcpClosed(u32),
}

/// Access point, broker and sensor, in virtual time.
struct World {
    now: Instant,
    scheduled: Vec<(Instant, u64, Ev)>,
    next_seq: u64,
    trace: Vec<Trace>,
    ap_up: bool,
    wants_join: bool,
    /// The connection generation: a closed connection's pending inputs are dropped.
    conn: u32,
    connected: bool,
    readings: VecDeque<Reading>,
}

impl World {
    fn new() -> World {
        let r = |t: f32, h: f32| Reading {
            temperature_c: t,
            humidity_pct: h,
        };
        let mut readings: VecDeque<Reading> = (0..60)
            .map(|i| r(26.7 + (i % 5) as f32 * 0.1, 52.0 + (i % 3) as f32))
            .collect();
        readings[3] = r(f32::NAN, f32::NAN);
        World {
            now: Instant::ZERO,
            scheduled: Vec::new(),
            next_seq: 0,
            trace: Vec::new(),
            ap_up: true,
            wants_join: false,
            conn: 0,
            connected: false,
            readings,
        }
    }

    fn us(&self) -> u64 {
        self.now.as_micros()
    }

    fn at(&mut self, delay_ms: u64, ev: Ev) {
        let at = self.now + Duration::from_millis(delay_ms);
        self.scheduled.push((at, self.next_seq, ev));
        self.next_seq += 1;
    }

    fn join(&mut self) {
        self.trace.push(Trace::Join(self.us()));
        self.wants_join = true;
        if self.ap_up {
            self.wants_join = false;
            self.at(WIFI_JOIN_MS, Ev::Wifi(true));
        }
    }

    fn open(&mut self) {
        self.trace.push(Trace::Open(self.us()));
        self.conn += 1;
        self.connected = false;
        let t = self.now.as_millis();
        let refusing = (20_000..27_000).contains(&t);
        if !self.ap_up {
            return;
        }
        if refusing {
            self.at(TCP_CONNECT_MS, Ev::TcpFailed(self.conn));
        } else {
            self.at(TCP_CONNECT_MS, Ev::TcpConnected(self.conn));
        }
    }

    fn close(&mut self) {
        self.trace.push(Trace::Close(self.us()));
        self.conn += 1;
        self.connected = false;
    }

    /// The broker's answers: CONNACK, PINGRESP, PUBACK, PUBREC, PUBCOMP.
    fn write(&mut self, bytes: &[u8]) {
        self.trace.push(Trace::Wrote(self.us(), bytes.to_vec()));
        let mute = self.now.as_millis() >= 60_000;
        let mut rest = bytes;
        while !rest.is_empty() {
            let (kind, flags) = (rest[0] >> 4, rest[0] & 0x0f);
            let (mut len, mut shift, mut i) = (0usize, 0, 1);
            loop {
                let b = rest[i];
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let body = &rest[i..i + len];
            let id = |off: usize| [body[off], body[off + 1]];
            let answer: Option<Vec<u8>> = match kind {
                1 if !mute => Some(vec![0x20, 2, 0, 0]),
                12 => Some(vec![0xd0, 0]),
                3 => {
                    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    let [a, b] = id(2 + topic_len.min(body.len() - 2));
                    match (flags >> 1) & 3 {
                        1 => Some(vec![0x40, 2, a, b]),
                        2 => Some(vec![0x50, 2, a, b]),
                        _ => None,
                    }
                }
                6 => {
                    let [a, b] = id(0);
                    Some(vec![0x70, 2, a, b])
                }
                _ => None,
            };
            if let Some(a) = answer {
                let conn = self.conn;
                self.at(BROKER_ANSWER_MS, Ev::Bytes(conn, a));
            }
            rest = &rest[i + len..];
        }
    }

    fn read_sensor(&mut self) -> Reading {
        self.readings.pop_front().unwrap_or(Reading {
            temperature_c: 21.0,
            humidity_pct: 40.0,
        })
    }

    /// The script's own events at fixed times.
    fn script(&mut self, from: Instant, to: Instant) {
        for (t, what) in [(20_000u64, 0), (40_000, 1), (45_000, 2), (60_000, 0)] {
            let t = Instant::from_millis(t);
            if !(from < t && t <= to) {
                continue;
            }
            let saved = self.now;
            self.now = t;
            match what {
                0 => {
                    // The broker drops the connection.
                    let conn = self.conn;
                    self.at(0, Ev::TcpClosed(conn));
                }
                1 => {
                    self.ap_up = false;
                    self.conn += 1;
                    self.connected = false;
                    self.at(0, Ev::Wifi(false));
                }
                _ => {
                    self.ap_up = true;
                    if self.wants_join {
                        self.wants_join = false;
                        self.at(WIFI_JOIN_MS, Ev::Wifi(true));
                    }
                }
            }
            self.now = saved;
        }
    }

    /// The next input: the earliest scheduled one still valid, or the device's wake-up;
    /// `None` at the end of the script.
    fn next(&mut self, wake: Option<Instant>) -> Option<(Instant, Option<Ev>)> {
        loop {
            let horizon = [wake, Some(END)].into_iter().flatten().min().unwrap();
            let first = self
                .scheduled
                .iter()
                .enumerate()
                .min_by_key(|(_, (at, seq, _))| (*at, *seq))
                .map(|(i, (at, _, _))| (i, *at));
            let from = self.now;
            match first {
                Some((i, at)) if at <= horizon => {
                    self.script(from, at);
                    // The script may have scheduled something earlier: look again.
                    if self.scheduled.iter().any(|(t, _, _)| *t < at) {
                        continue;
                    }
                    let (at, _, ev) = self.scheduled.remove(i);
                    self.now = self.now.max(at);
                    let valid = match &ev {
                        Ev::TcpConnected(c)
                        | Ev::TcpFailed(c)
                        | Ev::Bytes(c, _)
                        | Ev::TcpClosed(c) => *c == self.conn,
                        Ev::Wifi(_) => true,
                    };
                    if !valid {
                        continue;
                    }
                    if let Ev::TcpConnected(_) = ev {
                        self.connected = true;
                    }
                    if let Ev::TcpClosed(_) = ev {
                        self.connected = false;
                    }
                    return Some((self.now, Some(ev)));
                }
                _ => {
                    self.script(from, horizon);
                    if self.scheduled.iter().any(|(t, _, _)| *t <= horizon) {
                        continue;
                    }
                    if horizon >= END {
                        return None;
                    }
                    self.now = self.now.max(horizon);
                    return Some((self.now, None));
                }
            }
        }
    }
}

fn config(profile: Profile, qos: QoS) -> (DeviceConfig, ReferenceSketch) {
    let sketch = SketchConfig {
        qos,
        ..SketchConfig::default()
    };
    (DeviceConfig::new(profile), ReferenceSketch::new(sketch))
}

// ----- the core's own run loop (the `mqsim::device` module documentation's sketch) -----

fn run_core((cfg, app): (DeviceConfig, ReferenceSketch)) -> Vec<Trace> {
    let mut w = World::new();
    let mut dev = Device::new(cfg, app, w.now).unwrap();
    let mut buf = Vec::new();
    loop {
        loop {
            buf.clear();
            let now = w.now;
            match dev.poll_output(&mut buf) {
                Output::Transmit(()) => {
                    if w.connected {
                        w.write(&buf);
                        dev.handle_sent(now, buf.len());
                    }
                }
                Output::Event(DeviceEvent::Serial(line)) => {
                    w.trace.push(Trace::Serial(line.at.as_micros(), line.text))
                }
                Output::Event(DeviceEvent::OpenTransport) => w.open(),
                Output::Event(DeviceEvent::CloseTransport) => w.close(),
                Output::Event(DeviceEvent::JoinWifi) => w.join(),
                Output::Event(DeviceEvent::ReadSensor) => {
                    let r = w.read_sensor();
                    dev.handle_reading(now, r);
                }
                Output::Event(_) => {}
                Output::Timeout(t) => {
                    let Some((now, ev)) = w.next(t) else {
                        return w.trace;
                    };
                    match ev {
                        None => dev.handle_timeout(now),
                        Some(Ev::Wifi(up)) => dev.handle_wifi(now, up),
                        Some(Ev::TcpConnected(_)) => dev.handle_transport_connected(now),
                        Some(Ev::TcpFailed(_)) => dev.handle_transport_failed(now),
                        Some(Ev::Bytes(_, b)) => dev.handle_bytes(now, &b),
                        Some(Ev::TcpClosed(_)) => dev.handle_transport_closed(now),
                    }
                    break;
                }
            }
        }
    }
}

// ----- the glue with a fake board -----

#[derive(Clone)]
struct Fake(Rc<RefCell<World>>);

impl Clock for Fake {
    fn now(&mut self) -> Instant {
        self.0.borrow().now
    }
}
impl Console for Fake {
    fn line(&mut self, line: &SerialLine) {
        let mut w = self.0.borrow_mut();
        w.trace
            .push(Trace::Serial(line.at.as_micros(), line.text.clone()));
    }
}
impl Wifi for Fake {
    fn join(&mut self, _now: Instant) {
        self.0.borrow_mut().join();
    }
}
impl Sensor for Fake {
    async fn read(&mut self) -> Option<Reading> {
        Some(self.0.borrow_mut().read_sensor())
    }
}
impl Transport for Fake {
    fn open(&mut self, timeout_ms: u64) {
        let mut w = self.0.borrow_mut();
        // The profile's TCP connect timeout, as the firmware's socket gets it.
        assert!(timeout_ms == 3_000 || timeout_ms == 10_000, "{timeout_ms}");
        w.open();
    }
    fn close(&mut self) {
        self.0.borrow_mut().close();
    }
    fn is_connected(&self) -> bool {
        self.0.borrow().connected
    }
    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u64) -> bool {
        assert_eq!(timeout_ms, 10_000, "the profile's write timeout");
        self.0.borrow_mut().write(bytes);
        true
    }
}

/// Runs a future whose awaits are all ready (the fakes never wait).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a fake awaited"),
    }
}

fn run_glue((cfg, app): (DeviceConfig, ReferenceSketch)) -> Vec<Trace> {
    let world = Rc::new(RefCell::new(World::new()));
    let f = Fake(world.clone());
    let mut board = Board {
        clock: f.clone(),
        console: f.clone(),
        wifi: f.clone(),
        sensor: f.clone(),
        transport: f,
    };
    let mut glue = Glue::new(Device::new(cfg, app, Instant::ZERO).unwrap());
    loop {
        let wake = block_on(glue.settle(&mut board));
        let next = world.borrow_mut().next(wake);
        let Some((now, ev)) = next else {
            break;
        };
        match ev {
            None => glue.handle(now, Input::Timer),
            Some(Ev::Wifi(up)) => glue.handle(now, Input::Wifi(up)),
            Some(Ev::TcpConnected(_)) => glue.handle(now, Input::TcpConnected),
            Some(Ev::TcpFailed(_)) => glue.handle(now, Input::TcpFailed),
            Some(Ev::Bytes(_, b)) => glue.handle(now, Input::Bytes(&b)),
            Some(Ev::TcpClosed(_)) => glue.handle(now, Input::TcpClosed),
        }
    }
    let w = world.borrow();
    w.trace.clone()
}

// ----- comparisons -----

fn serial(t: &[Trace]) -> Vec<(u64, String)> {
    t.iter()
        .filter_map(|e| match e {
            Trace::Serial(at, s) => Some((*at, s.clone())),
            _ => None,
        })
        .collect()
}

fn wrote(t: &[Trace]) -> Vec<(u64, Vec<u8>)> {
    t.iter()
        .filter_map(|e| match e {
            Trace::Wrote(at, b) => Some((*at, b.clone())),
            _ => None,
        })
        .collect()
}

fn actions(t: &[Trace]) -> Vec<Trace> {
    t.iter()
        .filter(|e| matches!(e, Trace::Join(_) | Trace::Open(_) | Trace::Close(_)))
        .cloned()
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn same_run(profile: Profile, qos: QoS) -> Vec<Trace> {
    let core = run_core(config(profile, qos));
    let fw = run_glue(config(profile, qos));
    assert_eq!(serial(&fw), serial(&core), "serial lines");
    assert_eq!(wrote(&fw), wrote(&core), "bytes written");
    assert_eq!(actions(&fw), actions(&core), "WiFi and TCP actions");
    fw
}

fn count(lines: &[(u64, String)], text: &str) -> usize {
    lines.iter().filter(|(_, l)| l == text).count()
}

#[test]
fn pubsubclient_glue_equals_core_loop() {
    let t = same_run(Profile::PubSubClient, QoS::AtMostOnce);
    let lines = serial(&t);
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        &texts[..5],
        [
            "Connecting to WiFi",
            "...",
            "Connected to the WiFi network",
            "Connecting to MQTT...",
            "connected"
        ]
    );
    assert!(texts.contains(&"Temperature : 26.70°C"), "{texts:?}");
    assert!(texts.contains(&"Humidity : 52.00%"), "{texts:?}");
    assert_eq!(count(&lines, "Failed to read from DHT sensor!"), 1);
    // Refused while the broker is down (20-27 s), then back; rejoined after the AP came back.
    assert!(count(&lines, "failed with state -2") >= 1, "{texts:?}");
    assert!(count(&lines, "connected") >= 3, "{texts:?}");
    assert_eq!(count(&lines, "Connected to the WiFi network"), 1);
    // A mute broker (60 s on): PubSubClient's socket timeout.
    assert!(count(&lines, "failed with state -4") >= 1, "{texts:?}");
    let bytes: Vec<u8> = wrote(&t).into_iter().flat_map(|(_, b)| b).collect();
    assert!(contains(&bytes, b"\x00\x04MQTT\x04"), "MQTT 3.1.1 CONNECT");
    assert!(contains(&bytes, b"ESP32Client"));
    assert!(
        contains(&bytes, b"\x30\x10\x00\x09ESP32/TEM26.70"),
        "QoS 0 publish"
    );
    assert!(contains(&bytes, b"ESP32/HUM52.00"));
    assert_eq!(
        actions(&t)
            .iter()
            .filter(|a| matches!(a, Trace::Join(_)))
            .count(),
        2
    );
}

#[test]
fn esp_mqtt_qos1_glue_equals_core_loop() {
    let t = same_run(Profile::EspMqtt, QoS::AtLeastOnce);
    let lines = serial(&t);
    assert!(count(&lines, "connected") >= 2);
    let bytes: Vec<u8> = wrote(&t).into_iter().flat_map(|(_, b)| b).collect();
    assert!(contains(&bytes, b"\x00\x09ESP32/TEM"));
    // QoS 1 PUBLISH fixed header (0x32), and the esp-mqtt keep alive (120 s) in CONNECT.
    assert!(bytes.contains(&0x32));
    assert!(
        contains(&bytes, b"\x04\x02\x00\x78"),
        "clean session, keep alive 120"
    );
}

#[test]
fn esp_mqtt_qos2_glue_equals_core_loop() {
    same_run(Profile::EspMqtt, QoS::ExactlyOnce);
}
