//! The device wired to the real broker in memory and in virtual time (zero latency): the
//! harness plays the WiFi driver, the TCP stack and the DHT sensor.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::app::reference::{SketchConfig, TAG_MAX_BYTES};
use crate::app::{App, Ctx, Event, Value};
use crate::broker::{self, Broker, ConnId};
use crate::codec::{self, Packet, Publish};
use crate::driver::drain;
use crate::test_util::{decode_all, Pkt};
use crate::time::Duration;

const READING: Reading = Reading {
    temperature_c: 26.7,
    humidity_pct: 52.0,
};

struct Net<A: App = ReferenceSketch> {
    now: Instant,
    broker: Broker,
    dev: Device<A>,
    conn: Option<ConnId>,
    /// TCP connects are refused (RST) when false.
    reachable: bool,
    /// TCP connects are never answered.
    tcp_hangs: bool,
    /// Bytes device -> broker are lost.
    drop_up: bool,
    /// Bytes broker -> device are lost, and so is the broker's close.
    drop_down: bool,
    /// Time from JoinWifi to the link being up; `None`: never.
    wifi_join: Option<Duration>,
    wifi_up_at: Option<Instant>,
    reading: Reading,
    log: Vec<(Instant, DeviceEvent)>,
    /// Every byte the device sent, delivered or not.
    up: Vec<u8>,
}

impl Net {
    fn new(config: DeviceConfig) -> Net {
        Net::with(config, SketchConfig::default())
    }

    fn with(config: DeviceConfig, sketch: SketchConfig) -> Net {
        Net::with_app(config, ReferenceSketch::new(sketch))
    }

    fn pubsub() -> Net {
        Net::new(DeviceConfig::new(Profile::PubSubClient))
    }
}

impl<A: App> Net<A> {
    fn with_app(config: DeviceConfig, app: A) -> Net<A> {
        let now = Instant::ZERO;
        Net {
            now,
            broker: Broker::new(broker::Config::default(), now).unwrap(),
            dev: Device::new(config, app, now).expect("valid config"),
            conn: None,
            reachable: true,
            tcp_hangs: false,
            drop_up: false,
            drop_down: false,
            wifi_join: Some(Duration::from_millis(1_800)),
            wifi_up_at: None,
            reading: READING,
            log: Vec::new(),
            up: Vec::new(),
        }
    }

    /// Drains both sides and answers the device's requests until nothing moves.
    fn settle(&mut self) {
        let now = self.now;
        let mut buf = Vec::new();
        loop {
            let mut moved = false;
            let mut asks = Vec::new();
            let (up, conn, drop_up) = (&mut self.up, self.conn, self.drop_up);
            let (broker, log) = (&mut self.broker, &mut self.log);
            drain(&mut self.dev, &mut buf, |out, bytes| match out {
                Output::Transmit(()) => {
                    moved = true;
                    up.extend_from_slice(bytes);
                    if let (Some(c), false) = (conn, drop_up) {
                        broker.handle_bytes(now, c, bytes);
                    }
                }
                Output::Event(ev) => {
                    moved = true;
                    asks.push(ev.clone());
                    log.push((now, ev));
                }
                Output::Timeout(_) => {}
            });
            for ev in asks {
                match ev {
                    DeviceEvent::OpenTransport if self.tcp_hangs => {}
                    DeviceEvent::OpenTransport if self.reachable => {
                        self.conn = self.broker.handle_accept(now, "esp32");
                        self.dev.handle_transport_connected(now);
                    }
                    DeviceEvent::OpenTransport => self.dev.handle_transport_failed(now),
                    DeviceEvent::CloseTransport => {
                        if let Some(c) = self.conn.take() {
                            self.broker.handle_closed(now, c);
                        }
                    }
                    DeviceEvent::ReadSensor => self.dev.handle_reading(now, self.reading),
                    DeviceEvent::JoinWifi => self.wifi_up_at = self.wifi_join.map(|d| now + d),
                    _ => {}
                }
            }
            loop {
                buf.clear();
                let Some(c) = self.broker.poll_transmit(&mut buf) else {
                    break;
                };
                moved = true;
                if Some(c) == self.conn && !self.drop_down {
                    self.dev.handle_bytes(now, &buf);
                }
            }
            while let Some(ev) = self.broker.poll_event() {
                if let broker::Event::Close(c) = ev {
                    moved = true;
                    if Some(c) == self.conn {
                        self.conn = None;
                        if !self.drop_down {
                            self.dev.handle_transport_closed(now);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs every timer up to and including `t_ms`.
    fn run_until(&mut self, t_ms: u64) {
        let end = Instant::from_millis(t_ms);
        loop {
            self.settle();
            let next = [
                self.dev.poll_timeout(),
                self.broker.poll_timeout(),
                self.wifi_up_at,
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(n) if n <= end => {
                    self.now = self.now.max(n);
                    if self.wifi_up_at.is_some_and(|w| w <= self.now) {
                        self.wifi_up_at = None;
                        self.dev.handle_wifi(self.now, true);
                    }
                    self.dev.handle_timeout(self.now);
                    self.broker.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.settle();
    }

    /// Both ends see the TCP connection reset.
    fn cut(&mut self) {
        if let Some(c) = self.conn.take() {
            self.broker.handle_closed(self.now, c);
        }
        self.dev.handle_transport_closed(self.now);
        self.settle();
    }

    fn serial(&self) -> Vec<(u64, String)> {
        self.log
            .iter()
            .filter_map(|(_, e)| match e {
                DeviceEvent::Serial(l) => Some((l.at.as_millis(), l.text.clone())),
                _ => None,
            })
            .collect()
    }

    /// Times (ms) of the serial lines with this text.
    fn lines_at(&self, text: &str) -> Vec<u64> {
        self.serial()
            .into_iter()
            .filter(|(_, t)| t == text)
            .map(|(at, _)| at)
            .collect()
    }

    /// (time ms, seq, accepted) of every publish call.
    fn calls(&self) -> Vec<(u64, u64, bool)> {
        self.log
            .iter()
            .filter_map(|(at, e)| match e {
                DeviceEvent::PublishCalled { seq, accepted, .. } => {
                    Some((at.as_millis(), *seq, *accepted))
                }
                _ => None,
            })
            .collect()
    }

    fn completed(&self) -> Vec<u64> {
        self.log
            .iter()
            .filter_map(|(_, e)| match e {
                DeviceEvent::PublishCompleted { seq } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    fn events_at(&self, want: &DeviceEvent) -> Vec<u64> {
        self.log
            .iter()
            .filter(|(_, e)| e == want)
            .map(|(at, _)| at.as_millis())
            .collect()
    }

    fn up_publishes(&self) -> Vec<(String, Vec<u8>, u8, bool)> {
        decode_all(&self.up)
            .into_iter()
            .filter_map(|p| match p {
                Pkt::Pub {
                    topic,
                    payload,
                    qos,
                    dup,
                    ..
                } => Some((topic, payload, qos, dup)),
                _ => None,
            })
            .collect()
    }
}

fn lines(v: &[(u64, &str)]) -> Vec<(u64, String)> {
    v.iter().map(|(t, s)| (*t, s.to_string())).collect()
}

#[test]
fn clean_start_prints_the_reference_log() {
    let mut n = Net::pubsub();
    n.run_until(6_500);
    assert_eq!(
        n.serial(),
        lines(&[
            (0, "Connecting to WiFi"),
            (500, "...."),
            (2_000, "Connected to the WiFi network"),
            (2_000, "Connecting to MQTT..."),
            (2_000, "connected"),
            (4_000, "Publish message:"),
            (4_000, "Temperature : 26.70°C"),
            (4_000, "Humidity : 52.00%"),
            (6_000, "Publish message:"),
            (6_000, "Temperature : 26.70°C"),
            (6_000, "Humidity : 52.00%"),
        ])
    );
    let packets = decode_all(&n.up);
    assert_eq!(
        packets[0],
        Pkt::Connect {
            client_id: "ESP32Client".into(),
            clean: true,
            keep_alive_s: 15
        }
    );
    assert_eq!(
        n.up_publishes(),
        vec![
            ("ESP32/TEM".into(), b"26.70".to_vec(), 0, false),
            ("ESP32/HUM".into(), b"52.00".to_vec(), 0, false),
            ("ESP32/TEM".into(), b"26.70".to_vec(), 0, false),
            ("ESP32/HUM".into(), b"52.00".to_vec(), 0, false),
        ]
    );
    assert_eq!(
        n.calls(),
        vec![
            (4_000, 1, true),
            (4_000, 2, true),
            (6_000, 3, true),
            (6_000, 4, true)
        ]
    );
    assert_eq!(n.completed(), vec![1, 2, 3, 4]);
    assert_eq!(n.events_at(&DeviceEvent::Connected), vec![2_000]);
    assert_eq!(n.events_at(&DeviceEvent::JoinWifi), vec![0]);
}

#[test]
fn wifi_up_before_the_first_dot_still_prints_one_dot() {
    let mut n = Net::pubsub();
    n.wifi_join = Some(Duration::from_millis(100));
    n.run_until(600);
    assert_eq!(
        n.serial()[..4].to_vec(),
        lines(&[
            (0, "Connecting to WiFi"),
            (500, "."),
            (500, "Connected to the WiFi network"),
            (500, "Connecting to MQTT..."),
        ])
    );
}

#[test]
fn wifi_that_never_comes_wraps_the_dot_line() {
    let mut n = Net::pubsub();
    n.wifi_join = None;
    n.run_until(500 * 81);
    let s = n.serial();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[1].0, 500);
    assert_eq!(s[1].1.len(), SERIAL_LINE_MAX_CHARS);
    assert!(n.calls().is_empty());
}

#[test]
fn pubsubclient_publish_while_disconnected_is_refused_and_reported() {
    let mut n = Net::pubsub();
    n.run_until(5_000);
    n.reachable = false;
    n.cut();
    n.run_until(10_000);
    assert_eq!(
        n.events_at(&DeviceEvent::ConnectionLost {
            reason: LossReason::Client(LostReason::TransportClosed)
        }),
        vec![5_000]
    );
    // Seqs 1-2 at 4 s went out; 3-4 (6 s) and 5-6 (8 s) are lost at the device.
    assert_eq!(
        n.calls(),
        vec![
            (4_000, 1, true),
            (4_000, 2, true),
            (6_000, 3, false),
            (6_000, 4, false),
            (8_000, 5, false),
            (8_000, 6, false),
            (10_000, 7, false),
            (10_000, 8, false),
        ]
    );
    assert_eq!(n.completed(), vec![1, 2]);
    assert_eq!(n.up_publishes().len(), 2);
    // The serial log still shows every reading.
    assert_eq!(
        n.lines_at("Publish message:"),
        vec![4_000, 6_000, 8_000, 10_000]
    );
    // The sketch retries at once after the loss (`if (!client.connected()) reconnect();`); it
    // fails at once (connection refused), then again every 2 s (`delay(2000)`).
    assert_eq!(
        n.lines_at("Connecting to MQTT..."),
        vec![2_000, 5_000, 7_000, 9_000]
    );
    assert_eq!(
        n.lines_at("failed with state -2"),
        vec![5_000, 7_000, 9_000]
    );
}

#[test]
fn pubsubclient_retries_at_once_then_2s_after_a_failure_and_blocks_in_connect() {
    let mut n = Net::pubsub();
    n.run_until(10_500);
    // The broker goes silent and the device's socket is reset.
    n.drop_up = true;
    n.drop_down = true;
    n.cut();
    n.run_until(33_000);
    n.drop_up = false;
    n.drop_down = false;
    n.run_until(46_000);
    // Attempts: setup; at once after the loss (the sketch's `if (!client.connected())
    // reconnect();`), blocking 15 s for CONNACK; 2 s after that failure (`delay(2000)`), still
    // unanswered; 2 s after the second failure, through.
    assert_eq!(
        n.lines_at("Connecting to MQTT..."),
        vec![2_000, 10_500, 27_500, 44_500]
    );
    assert_eq!(n.lines_at("failed with state -4"), vec![25_500, 42_500]);
    assert_eq!(
        n.events_at(&DeviceEvent::ConnectFailed { state: -4 }),
        vec![25_500, 42_500]
    );
    assert_eq!(n.lines_at("connected"), vec![2_000, 44_500]);
    // No reading inside a blocking connect; one due meanwhile is taken when it returns.
    assert_eq!(
        n.lines_at("Publish message:"),
        vec![4_000, 6_000, 8_000, 10_000, 25_500, 42_500, 44_500]
    );
    let accepted: Vec<u64> = n.calls().into_iter().filter(|c| c.2).map(|c| c.0).collect();
    assert_eq!(
        accepted,
        vec![4_000, 4_000, 6_000, 6_000, 8_000, 8_000, 10_000, 10_000, 44_500, 44_500]
    );
    assert!(!n.dev.is_blocked());
    assert!(n.dev.is_connected());
}

#[test]
fn pubsubclient_waits_out_the_socket_timeout_on_a_dead_socket() {
    let mut n = Net::pubsub();
    n.run_until(3_000);
    // CONNECT never reaches the broker; the broker's 10 s CONNECT timeout closes the socket,
    // which PubSubClient does not notice until its own 15 s.
    n.drop_up = true;
    n.cut();
    n.run_until(30_000);
    // Attempt at once (3 s); the broker's close at 13 s is not a failure yet; -4 at 18 s; the
    // next attempt 2 s later is still blocked at 30 s (the broker closed it at 30 s too).
    assert_eq!(
        n.lines_at("Connecting to MQTT..."),
        vec![2_000, 3_000, 20_000]
    );
    assert_eq!(n.lines_at("failed with state -4"), vec![18_000]);
    assert!(n.lines_at("failed with state -2").is_empty());
    // The reading due at 4 s is taken when the first attempt returns; the one due at 20 s
    // waits behind the second.
    assert_eq!(n.lines_at("Publish message:"), vec![18_000]);
    assert!(n.dev.is_blocked());
    assert_eq!(n.dev.poll_timeout().map(|t| t.as_millis()), Some(35_000));
}

fn esp_mqtt(qos: QoS) -> Net {
    let sketch = SketchConfig {
        qos,
        ..SketchConfig::default()
    };
    Net::with(DeviceConfig::new(Profile::EspMqtt), sketch)
}

#[test]
fn without_humidity_each_reading_publishes_the_temperature_only() {
    let sketch = SketchConfig {
        publish_humidity: false,
        interval_ms: 50,
        ..SketchConfig::default()
    };
    let mut n = Net::with(DeviceConfig::new(Profile::EspMqtt), sketch);
    n.run_until(2_000 + 50 * 4);
    let topics: Vec<(u64, String)> = n
        .log
        .iter()
        .filter_map(|(at, e)| match e {
            DeviceEvent::PublishCalled { topic, .. } => Some((at.as_millis(), topic.clone())),
            _ => None,
        })
        .collect();
    // One message per 50 ms reading, from the first CONNACK (2 s), each to ESP32/TEM.
    let expected: Vec<(u64, String)> = (1..=4)
        .map(|i| (2_000 + 50 * i, "ESP32/TEM".to_string()))
        .collect();
    assert_eq!(topics, expected);
    // The serial monitor prints the whole reading, as the sketch does.
    assert_eq!(n.lines_at("Humidity : 52.00%").len(), 4);
}

#[test]
fn esp_mqtt_reconnects_after_10s_and_sends_what_it_queued() {
    let mut n = esp_mqtt(QoS::AtLeastOnce);
    n.run_until(10_500);
    assert_eq!(n.completed(), (1..=8).collect::<Vec<u64>>());
    n.cut();
    n.run_until(20_000);
    // Queued in the outbox, not completed.
    let queued: Vec<(u64, u64, bool)> = n.calls().into_iter().filter(|c| c.1 > 8).collect();
    assert_eq!(queued.len(), 10);
    assert!(queued.iter().all(|c| c.2), "{queued:?}");
    assert_eq!(n.completed().len(), 8);
    n.run_until(21_000);
    assert_eq!(n.lines_at("Connecting to MQTT..."), vec![2_000, 20_500]);
    assert_eq!(n.lines_at("connected"), vec![2_000, 20_500]);
    assert_eq!(n.completed(), (1..=18).collect::<Vec<u64>>());
    assert_eq!(
        decode_all(&n.up)
            .iter()
            .filter(|p| matches!(
                p,
                Pkt::Connect {
                    keep_alive_s: 120,
                    ..
                }
            ))
            .count(),
        2
    );
    assert_eq!(n.up_publishes().len(), 18);
    assert!(n.up_publishes().iter().all(|p| p.2 == 1));
}

#[test]
fn esp_mqtt_loses_qos0_while_disconnected() {
    let mut n = esp_mqtt(QoS::AtMostOnce);
    n.run_until(4_500);
    n.cut();
    n.run_until(6_000);
    assert_eq!(
        n.calls(),
        vec![
            (4_000, 1, true),
            (4_000, 2, true),
            (6_000, 3, false),
            (6_000, 4, false)
        ]
    );
}

#[test]
fn esp_mqtt_does_not_block_while_connecting() {
    let mut n = esp_mqtt(QoS::AtLeastOnce);
    n.run_until(10_500);
    n.tcp_hangs = true;
    n.cut();
    n.run_until(32_000);
    // The attempt at 20.5 s waits 10 s for TCP, readings go on meanwhile.
    assert_eq!(n.lines_at("Connecting to MQTT..."), vec![2_000, 20_500]);
    assert_eq!(n.lines_at("failed with state -2"), vec![30_500]);
    let during: Vec<u64> = n
        .lines_at("Publish message:")
        .into_iter()
        .filter(|&t| t > 20_500 && t < 30_500)
        .collect();
    assert_eq!(during, vec![22_000, 24_000, 26_000, 28_000, 30_000]);
    assert_eq!(
        n.events_at(&DeviceEvent::CloseTransport),
        vec![30_500],
        "the hung connect is abandoned"
    );
}

/// A QoS 0 PUBLISH of exactly `total` bytes on `cmd/x`.
fn publish_of(total: usize) -> Vec<u8> {
    // 1 type byte + 2 length bytes (remaining >= 128) + 2 + 5 topic bytes.
    let payload = vec![b'x'; total - 10];
    let mut v = Vec::new();
    codec::encode_to_vec(
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "cmd/x",
            pkid: 0,
            payload: &payload,
        }),
        &mut v,
    )
    .unwrap();
    assert_eq!(v.len(), total);
    v
}

fn messages(n: &Net) -> Vec<usize> {
    n.log
        .iter()
        .filter_map(|(_, e)| match e {
            DeviceEvent::Message { payload, .. } => Some(payload.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn pubsubclient_drops_inbound_packets_over_256_bytes() {
    let sketch = SketchConfig {
        subscriptions: vec![("cmd/#".into(), QoS::AtMostOnce)],
        ..SketchConfig::default()
    };
    let mut n = Net::with(DeviceConfig::new(Profile::PubSubClient), sketch);
    n.run_until(3_000);
    assert!(n.dev.is_connected());
    // 257 bytes, then 256 bytes, in odd-sized pieces (the header of the first one split).
    let mut stream = publish_of(257);
    stream.extend(publish_of(256));
    let pieces = [1usize, 1, 100, 200, 211];
    assert_eq!(pieces.iter().sum::<usize>(), stream.len());
    let mut at = 0;
    for p in pieces {
        n.dev.handle_bytes(n.now, &stream[at..at + p]);
        at += p;
    }
    n.settle();
    assert_eq!(
        n.events_at(&DeviceEvent::InboundDropped { bytes: 257 }),
        vec![3_000]
    );
    assert_eq!(messages(&n), vec![246]);
    assert!(n.dev.is_connected());
}

#[test]
fn esp_mqtt_keeps_inbound_packets_over_its_buffer() {
    let sketch = SketchConfig {
        subscriptions: vec![("cmd/#".into(), QoS::AtMostOnce)],
        ..SketchConfig::default()
    };
    let mut n = Net::with(DeviceConfig::new(Profile::EspMqtt), sketch);
    n.run_until(3_000);
    n.dev.handle_bytes(n.now, &publish_of(2_000));
    n.settle();
    assert_eq!(messages(&n), vec![1_990]);
}

#[test]
fn pubsubclient_notices_a_silent_broker_after_two_keepalives() {
    let mut n = Net::pubsub();
    n.run_until(10_500);
    n.drop_up = true;
    n.drop_down = true;
    n.run_until(33_000);
    // Nothing received since CONNACK at 2 s: PINGREQ at 17 s, given up at 32 s.
    assert_eq!(
        n.events_at(&DeviceEvent::ConnectionLost {
            reason: LossReason::Client(LostReason::KeepAliveTimeout)
        }),
        vec![32_000]
    );
    assert_eq!(
        LossReason::Client(LostReason::KeepAliveTimeout).state(),
        state::CONNECTION_TIMEOUT
    );
    // Until then QoS 0 publishes are written (lost in the network, not at the device).
    assert!(n.calls().iter().filter(|c| c.0 < 32_000).all(|c| c.2));
    assert!(n.calls().iter().filter(|c| c.0 > 32_000).all(|c| !c.2));
    assert_eq!(n.events_at(&DeviceEvent::CloseTransport), vec![32_000]);
}

#[test]
fn wifi_loss_closes_the_transport_and_rejoins() {
    let mut n = Net::pubsub();
    n.run_until(10_500);
    n.wifi_join = Some(Duration::from_millis(7_000));
    n.dev.handle_wifi(n.now, false);
    n.settle();
    assert_eq!(
        n.events_at(&DeviceEvent::ConnectionLost {
            reason: LossReason::WifiDown
        }),
        vec![10_500]
    );
    assert_eq!(n.events_at(&DeviceEvent::CloseTransport), vec![10_500]);
    assert_eq!(n.events_at(&DeviceEvent::JoinWifi), vec![0, 10_500]);
    n.run_until(21_000);
    // At once after the loss and every 2 s: no WiFi, each fails at once without a transport;
    // WiFi back at 17.5 s; 18.5 s: up.
    assert_eq!(
        n.lines_at("Connecting to MQTT..."),
        vec![2_000, 10_500, 12_500, 14_500, 16_500, 18_500]
    );
    assert_eq!(
        n.lines_at("failed with state -2"),
        vec![10_500, 12_500, 14_500, 16_500]
    );
    assert_eq!(
        n.events_at(&DeviceEvent::OpenTransport),
        vec![2_000, 18_500]
    );
    assert_eq!(n.lines_at("connected"), vec![2_000, 18_500]);
    // Readings at 12..18 s were lost at the device.
    let refused: Vec<u64> = n
        .calls()
        .into_iter()
        .filter(|c| !c.2)
        .map(|c| c.0)
        .collect();
    assert_eq!(
        refused,
        vec![12_000, 12_000, 14_000, 14_000, 16_000, 16_000, 18_000, 18_000]
    );
}

#[test]
fn connack_refusal_prints_the_return_code() {
    let mut n = Net::new(DeviceConfig::new(Profile::PubSubClient));
    n.broker = Broker::new(
        broker::Config {
            allow_anonymous: false,
            ..broker::Config::default()
        },
        Instant::ZERO,
    )
    .unwrap();
    n.run_until(8_000);
    // Refused at once, tried again 2 s after each failure (the sketch's `delay(2000)`).
    assert_eq!(
        n.lines_at("failed with state 5"),
        vec![2_000, 4_000, 6_000, 8_000]
    );
    assert!(n.lines_at("Publish message:").is_empty());
}

#[test]
fn nan_reading_prints_the_dht_failure_and_publishes_nothing() {
    let mut n = Net::pubsub();
    n.reading = Reading {
        temperature_c: f32::NAN,
        humidity_pct: 50.0,
    };
    n.run_until(4_000);
    assert_eq!(n.lines_at(LINE_SENSOR_FAILED), vec![4_000]);
    assert!(n.calls().is_empty());
}

#[test]
fn tagged_payloads_carry_device_and_seq_and_serial_shows_no_tag() {
    let mut c = DeviceConfig::new(Profile::PubSubClient);
    c.tag_payloads = true;
    c.device_index = 7;
    let mut n = Net::new(c);
    n.run_until(6_000);
    let tags: Vec<(Vec<u8>, u32, u64)> = n
        .up_publishes()
        .iter()
        .map(|(_, p, _, _)| {
            let (v, d, s) = parse_tag(p).expect("tagged");
            (v.to_vec(), d, s)
        })
        .collect();
    assert_eq!(
        tags,
        vec![
            (b"26.70".to_vec(), 7, 1),
            (b"52.00".to_vec(), 7, 2),
            (b"26.70".to_vec(), 7, 3),
            (b"52.00".to_vec(), 7, 4),
        ]
    );
    assert!(n
        .serial()
        .iter()
        .all(|(_, t)| !t.contains('\u{1f}') && !t.contains(".s")));
    assert_eq!(n.lines_at("Temperature : 26.70°C"), vec![4_000, 6_000]);
}

#[test]
fn tag_round_trip_and_rejects() {
    let p = tag_payload(b"26.70", 3, 17);
    assert_eq!(p, b"26.70\x1fd3.s17".to_vec());
    assert_eq!(parse_tag(&p), Some((&b"26.70"[..], 3, 17)));
    let max = tag_payload(b"", u32::MAX, u64::MAX);
    assert_eq!(parse_tag(&max), Some((&b""[..], u32::MAX, u64::MAX)));
    for bad in [
        &b"26.70"[..],
        b"26.70\x1f",
        b"26.70\x1fd3",
        b"26.70\x1fd3.s",
        b"26.70\x1fd.s1",
        b"26.70\x1fd3.s1x",
        b"26.70\x1fx3.s1",
        b"26.70\x1fd+3.s1",
        b"26.70\x1fd4294967296.s1",
        b"26.70\x1fd1.s18446744073709551616",
    ] {
        assert_eq!(parse_tag(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn arduino_timestamp_prefix() {
    let base = WallClock::from_hms_ms(10, 17, 18, 933).unwrap();
    assert_eq!(base.prefix(Instant::ZERO), "10:17:18.933 -> ");
    assert_eq!(base.prefix(Instant::from_millis(1_031)), "10:17:19.964 -> ");
    assert_eq!(
        base.prefix(Instant::from_micros(1_031_999)),
        "10:17:19.964 -> "
    );
    assert_eq!(
        base.prefix(Instant::from_millis(3_600_000 * 14)),
        "00:17:18.933 -> "
    );
    let line = SerialLine {
        at: Instant::from_millis(4_033),
        text: "connected".into(),
    };
    assert_eq!(base.format_line(&line), "10:17:22.966 -> connected");
    assert_eq!(WallClock::from_hms_ms(24, 0, 0, 0), None);
    assert_eq!(WallClock::from_hms_ms(0, 60, 0, 0), None);
    assert_eq!(WallClock::from_hms_ms(0, 0, 60, 0), None);
    assert_eq!(WallClock::from_hms_ms(0, 0, 0, 1000), None);
}

#[test]
fn reading_formats_match_the_reference() {
    assert_eq!(temperature_line(26.7), "Temperature : 26.70°C");
    assert_eq!(humidity_line(52.0), "Humidity : 52.00%");
    assert_eq!(payload_value(26.7), "26.70");
    assert_eq!(payload_value(-3.456), "-3.46");
    assert_eq!(failed_line(-2), "failed with state -2");
}

#[test]
fn config_validation() {
    let ok = DeviceConfig::new(Profile::PubSubClient);
    assert_eq!(ok.validate(), Ok(()));
    let check = |f: &dyn Fn(&mut DeviceConfig, &mut SketchConfig), want: DeviceError| {
        let mut c = DeviceConfig::new(Profile::PubSubClient);
        let mut k = SketchConfig::default();
        f(&mut c, &mut k);
        let made = Device::new(c, ReferenceSketch::new(k), Instant::ZERO);
        assert_eq!(made.err(), Some(want));
    };
    check(
        &|_, k| k.qos = QoS::ExactlyOnce,
        DeviceError::PublishQosUnsupported {
            profile: Profile::PubSubClient,
            qos: QoS::ExactlyOnce,
        },
    );
    check(
        &|_, k| k.qos = QoS::AtLeastOnce,
        DeviceError::PublishQosUnsupported {
            profile: Profile::PubSubClient,
            qos: QoS::AtLeastOnce,
        },
    );
    check(&|_, k| k.interval_ms = 0, DeviceError::IntervalZero);
    check(&|c, _| c.wifi_poll_ms = 0, DeviceError::WifiPollZero);
    check(
        &|c, _| c.params.reconnect_interval_ms = 0,
        DeviceError::ReconnectIntervalZero,
    );
    check(
        &|c, _| c.params.connack_timeout_ms = 0,
        DeviceError::ConnectTimeoutZero,
    );
    check(
        &|_, k| k.temperature_topic = "ESP32/#".into(),
        DeviceError::InvalidTopic("ESP32/#".into()),
    );
    check(
        &|_, k| k.subscriptions = vec![("cmd/#".into(), QoS::ExactlyOnce)],
        DeviceError::SubscribeQosUnsupported {
            profile: Profile::PubSubClient,
            qos: QoS::ExactlyOnce,
        },
    );
    check(
        &|_, k| k.subscriptions = vec![("cmd/#/x".into(), QoS::AtMostOnce)],
        DeviceError::InvalidFilter("cmd/#/x".into()),
    );
    let long = format!("ESP32/{}", "t".repeat(240));
    check(
        &|_, k| k.humidity_topic = long.clone(),
        DeviceError::BufferTooSmall {
            buffer_bytes: 256,
            needed: 1 + 2 + 2 + 246 + 7,
        },
    );
    // A tagged payload must fit too.
    check(
        &|_, k| {
            k.humidity_topic = format!("ESP32/{}", "t".repeat(210));
            k.tag_bytes = TAG_MAX_BYTES;
        },
        DeviceError::BufferTooSmall {
            buffer_bytes: 256,
            needed: 1 + 2 + 2 + 216 + 7 + TAG_MAX_BYTES,
        },
    );
    // esp-mqtt publishes QoS 2, and its buffer does not bound packets.
    let sketch = SketchConfig {
        qos: QoS::ExactlyOnce,
        humidity_topic: long,
        ..SketchConfig::default()
    };
    let esp = DeviceConfig::new(Profile::EspMqtt);
    assert!(Device::new(esp, ReferenceSketch::new(sketch), Instant::ZERO).is_ok());
    assert!(format!("{}", DeviceError::IntervalZero).contains("interval_ms"));
}

#[test]
fn client_config_maps_the_profiles() {
    let c = client_config(&DeviceConfig::new(Profile::PubSubClient));
    assert_eq!(c.keep_alive_s, 15);
    assert!(c.clean_session);
    assert_eq!(c.max_packet_bytes, 256);
    assert_eq!(c.max_queued_messages, 0);
    assert_eq!(c.connect_timeout, Duration::from_secs(15));
    let e = client_config(&DeviceConfig::new(Profile::EspMqtt));
    assert_eq!(e.keep_alive_s, 120);
    assert_eq!(e.connect_timeout, Duration::from_secs(10));
    let p = Profile::EspMqtt.params();
    assert_eq!(p.resend_interval_ms, Some(1_000));
    assert_eq!(p.outbox_expiry_ms, Some(30_000));
    assert_eq!(p.buffer_bytes, 1_024);
    assert_eq!(p.reconnect_interval_ms, 10_000);
}

#[test]
fn handle_reading_without_a_request_is_ignored_and_old_time_counts_as_newest() {
    let mut n = Net::pubsub();
    n.run_until(3_000);
    n.dev.handle_reading(n.now, READING);
    n.settle();
    assert!(n.calls().is_empty());
    // A spurious timeout and an older `now` change nothing.
    n.dev.handle_timeout(Instant::from_millis(1_000));
    n.settle();
    assert_eq!(n.dev.poll_timeout().map(|t| t.as_millis()), Some(4_000));
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut c = DeviceConfig::new(Profile::EspMqtt);
        c.tag_payloads = true;
        let sketch = SketchConfig {
            qos: QoS::ExactlyOnce,
            ..SketchConfig::default()
        };
        let mut n = Net::with(c, sketch);
        n.run_until(9_000);
        n.cut();
        n.run_until(25_000);
        n.dev.handle_wifi(n.now, false);
        n.run_until(40_000);
        (n.log, n.up)
    };
    let (a, b) = (run(), run());
    assert!(a.0.len() > 40);
    assert_eq!(a, b);
}

// ----- applications other than the reference sketch -----

/// A test application: records every event it sees, publishes what it is told to on input
/// `go`, subscribes to `cmd/#` on every connection, and backs off 1 s, 2 s, 4 s ... between
/// attempts.
#[derive(Default)]
struct Probe {
    seen: Vec<(u64, Event)>,
    results: Vec<Result<u64, crate::app::PublishError>>,
    qos: Option<QoS>,
    failures: u32,
}

impl App for Probe {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        ctx.println("probe up");
        ctx.set_timer_after(7, Duration::from_millis(1_500));
    }

    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        self.seen.push((ctx.now().as_millis(), event.clone()));
        match event {
            Event::Input { .. } => {
                let qos = self.qos.unwrap_or(QoS::AtLeastOnce);
                self.results
                    .push(ctx.publish("probe/out", b"x", qos, false));
            }
            Event::Connected { .. } => {
                self.failures = 0;
                ctx.set_reconnect_delay(Duration::from_millis(1_000));
                assert!(ctx.subscribe("cmd/#", QoS::AtLeastOnce));
            }
            Event::ConnectFailed { .. } | Event::ConnectionLost { .. } => {
                self.failures += 1;
                let ms = 1_000u64 << self.failures.min(5);
                ctx.set_reconnect_delay(Duration::from_millis(ms));
            }
            _ => {}
        }
    }
}

fn probe_events(n: &Net<Probe>, f: impl Fn(&Event) -> bool) -> Vec<u64> {
    n.dev
        .app()
        .seen
        .iter()
        .filter(|(_, e)| f(e))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn an_application_sees_the_connection_its_timers_and_its_publishes_complete() {
    let mut n = Net::with_app(DeviceConfig::new(Profile::EspMqtt), Probe::default());
    n.run_until(2_000);
    assert_eq!(n.lines_at("probe up"), vec![0]);
    assert_eq!(probe_events(&n, |e| *e == Event::Timer(7)), vec![1_500]);
    let connected = probe_events(&n, |e| matches!(e, Event::Connected { .. }));
    assert_eq!(connected.len(), 1);
    n.dev.handle_input(n.now, "go", Value::Bool(true));
    n.run_until(3_000);
    assert_eq!(n.dev.app().results, vec![Ok(1)]);
    assert_eq!(
        probe_events(&n, |e| *e == Event::PublishDone(1)),
        vec![2_000]
    );
    // A command from the broker reaches the application.
    let mut bytes = Vec::new();
    codec::encode_to_vec(
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "cmd/probe",
            pkid: 0,
            payload: b"on",
        }),
        &mut bytes,
    )
    .unwrap();
    n.dev.handle_bytes(n.now, &bytes);
    n.settle();
    let got: Vec<&Event> = n
        .dev
        .app()
        .seen
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, Event::Message { .. }))
        .collect();
    assert_eq!(
        got,
        vec![&Event::Message {
            topic: "cmd/probe".into(),
            payload: b"on".to_vec()
        }]
    );
}

#[test]
fn publish_refusals_say_why() {
    // PubSubClient: QoS 1 is beyond it; QoS 0 offline has nowhere to go.
    let mut n = Net::with_app(DeviceConfig::new(Profile::PubSubClient), Probe::default());
    n.dev.handle_input(n.now, "go", Value::Bool(true));
    n.dev.app.qos = Some(QoS::AtMostOnce);
    n.dev.handle_input(n.now, "go", Value::Bool(true));
    n.settle();
    assert_eq!(
        n.dev.app().results,
        vec![
            Err(crate::app::PublishError::QosUnsupported),
            Err(crate::app::PublishError::NotConnected)
        ]
    );
    // Both calls reach the ledger hooks as refused.
    assert_eq!(n.calls(), vec![(0, 1, false), (0, 2, false)]);
}

#[test]
fn inputs_wait_for_a_blocking_connect_to_end() {
    // PubSubClient's connect() blocks the sketch: an input set meanwhile reaches the
    // application when the attempt ends (here: no answer, the 15 s socket timeout).
    let mut n = Net::with_app(DeviceConfig::new(Profile::PubSubClient), Probe::default());
    n.tcp_hangs = false;
    n.drop_down = true;
    n.run_until(3_000);
    assert!(n.dev.is_blocked());
    n.dev.handle_input(n.now, "go", Value::Bool(true));
    n.run_until(10_000);
    assert!(probe_events(&n, |e| matches!(e, Event::Input { .. })).is_empty());
    n.run_until(25_000);
    let failed = probe_events(&n, |e| matches!(e, Event::ConnectFailed { .. }));
    let input = probe_events(&n, |e| matches!(e, Event::Input { .. }));
    assert_eq!(input.len(), 1);
    assert_eq!(input[0], failed[0]);
}

#[test]
fn the_application_sets_its_own_back_off() {
    // The broker unreachable: attempts 2 s, 4 s, 8 s, 16 s apart (the probe's back-off), not
    // esp-mqtt's fixed 10 s.
    let mut n = Net::with_app(DeviceConfig::new(Profile::EspMqtt), Probe::default());
    n.reachable = false;
    n.run_until(40_000);
    let attempts = probe_events(&n, |e| *e == Event::Connecting);
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, vec![2_000, 4_000, 8_000, 16_000], "{attempts:?}");
}
