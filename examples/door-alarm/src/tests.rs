//! The application's logic on the core's in-memory pieces: a [`Device`] running it, the
//! broker and a watcher client, in virtual time with zero latency. The harness is the network;
//! faults are a cut connection, an unreachable broker and lost bytes from the broker. (Tests in
//! the simulator, with its scenarios and faults, live in `tests/`.)

extern crate std;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use mqsim::broker::{self, Broker, ConnId};
use mqsim::client::{Client, ClientConfig, Event as ClientEvent};
use mqsim::device::{Device, DeviceConfig, DeviceEvent, Output, Profile};
use mqsim::time::Instant;

use super::*;

const ID: &str = "door-1";

struct Net {
    now: Instant,
    broker: Broker,
    dev: Device<DoorAlarm>,
    conn: Option<ConnId>,
    watcher: Client,
    watcher_conn: ConnId,
    /// TCP connects are refused when false.
    reachable: bool,
    /// Bytes broker -> device are lost (PUBACKs, CONNACKs).
    drop_down: bool,
    /// (topic, payload) of what the watcher received.
    received: Vec<(String, Vec<u8>)>,
    serial: Vec<String>,
}

impl Net {
    fn new(app: DoorAlarm) -> Net {
        let now = Instant::ZERO;
        let mut broker = Broker::new(broker::Config::default(), now).unwrap();
        let mut config = DeviceConfig::new(Profile::EspMqtt);
        config.client_id = ID.to_string();
        let mut watcher = Client::new(ClientConfig::new("watcher".to_string()), now).unwrap();
        let watcher_conn = broker.handle_accept(now, "watcher").unwrap();
        watcher.handle_connected(now);
        watcher
            .subscribe(
                now,
                &[
                    ("alarm/#", QoS::AtLeastOnce),
                    ("heartbeat/#", QoS::AtMostOnce),
                ],
            )
            .unwrap();
        let mut net = Net {
            now,
            broker,
            dev: Device::new(config, app, now).unwrap(),
            conn: None,
            watcher,
            watcher_conn,
            reachable: true,
            drop_down: false,
            received: Vec::new(),
            serial: Vec::new(),
        };
        net.settle();
        net
    }

    /// Moves bytes and answers the device's requests until nothing moves.
    fn settle(&mut self) {
        let now = self.now;
        let mut buf = Vec::new();
        loop {
            let mut moved = false;
            loop {
                buf.clear();
                match self.dev.poll_output(&mut buf) {
                    Output::Transmit(()) => {
                        moved = true;
                        if let Some(c) = self.conn {
                            self.broker.handle_bytes(now, c, &buf);
                        }
                    }
                    Output::Event(ev) => {
                        moved = true;
                        match ev {
                            DeviceEvent::OpenTransport if self.reachable => {
                                self.conn = self.broker.handle_accept(now, ID);
                                self.dev.handle_transport_connected(now);
                            }
                            DeviceEvent::OpenTransport => self.dev.handle_transport_failed(now),
                            DeviceEvent::CloseTransport => {
                                if let Some(c) = self.conn.take() {
                                    self.broker.handle_closed(now, c);
                                }
                            }
                            DeviceEvent::JoinWifi => self.dev.handle_wifi(now, true),
                            DeviceEvent::Serial(line) => self.serial.push(line.text),
                            _ => {}
                        }
                    }
                    Output::Timeout(_) => break,
                }
            }
            loop {
                buf.clear();
                if self.watcher.poll_transmit(&mut buf).is_none() {
                    break;
                }
                moved = true;
                self.broker.handle_bytes(now, self.watcher_conn, &buf);
            }
            loop {
                buf.clear();
                let Some(c) = self.broker.poll_transmit(&mut buf) else {
                    break;
                };
                moved = true;
                if c == self.watcher_conn {
                    self.watcher.handle_bytes(now, &buf);
                } else if Some(c) == self.conn && !self.drop_down {
                    self.dev.handle_bytes(now, &buf);
                }
            }
            while let Some(ev) = self.broker.poll_event() {
                if let broker::Event::Close(c) = ev {
                    if Some(c) == self.conn {
                        moved = true;
                        self.conn = None;
                        self.dev.handle_transport_closed(now);
                    }
                }
            }
            while let Some(ev) = self.watcher.poll_event() {
                if let ClientEvent::Message { topic, payload, .. } = ev {
                    self.received.push((topic, payload));
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
                self.watcher.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(n) if n <= end => {
                    self.now = self.now.max(n);
                    self.dev.handle_timeout(self.now);
                    self.broker.handle_timeout(self.now);
                    self.watcher.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
        self.settle();
    }

    fn door(&mut self, open: bool) {
        self.dev
            .handle_input(self.now, DOOR_INPUT, Value::Bool(open));
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

    /// The alarms the watcher received, in order, duplicates included.
    fn alarms(&self) -> Vec<Alarm> {
        let topic = format!("alarm/{ID}/door");
        self.received
            .iter()
            .filter(|(t, _)| *t == topic)
            .map(|(_, p)| parse_alarm(p).expect("an alarm payload"))
            .collect()
    }

    /// The alarms' numbers, a duplicate of the one before dropped.
    fn seqs(&self) -> Vec<u32> {
        let mut seqs: Vec<u32> = self.alarms().iter().map(|a| a.seq).collect();
        seqs.dedup();
        seqs
    }

    fn printed(&self, line: &str) -> usize {
        self.serial.iter().filter(|l| *l == line).count()
    }
}

/// Connected: WiFi at the first dot (500 ms), TCP and CONNACK at once.
const CONNECTED_MS: u64 = 1_000;
/// esp-mqtt's reconnect interval.
const RECONNECT_MS: u64 = 10_000;

#[test]
fn an_alarm_on_each_change_numbered_and_a_heartbeat() {
    let mut net = Net::new(DoorAlarm::default());
    net.run_until(CONNECTED_MS);
    assert!(net.dev.is_connected());
    net.door(true);
    net.door(false);
    net.door(false); // no change
    net.door(true);
    net.run_until(31_000);
    let alarms = net.alarms();
    assert_eq!(
        alarms,
        [(1, true), (2, false), (3, true)].map(|(seq, open)| Alarm { seq, open })
    );
    assert_eq!(
        net.received
            .iter()
            .filter(|(t, _)| t == "alarm/door-1/door")
            .map(|(_, p)| p.as_slice())
            .collect::<Vec<_>>(),
        [&b"open 1"[..], b"closed 2", b"open 3"]
    );
    assert_eq!((net.dev.app().delivered(), net.dev.app().raised()), (3, 3));
    assert_eq!(net.dev.app().pending().count(), 0);
    assert!(net
        .received
        .contains(&("heartbeat/door-1".to_string(), b"30".to_vec())));
    assert_eq!(net.printed("Door open: alarm 1"), 1);
    assert_eq!(net.printed("Alarm 3 acknowledged"), 1);
}

/// Raised while the broker is unreachable: held, then sent in order once connected again. The
/// forgetful variant loses them, and this test would catch it.
fn offline_alarms(app: DoorAlarm) -> Net {
    let mut net = Net::new(app);
    net.run_until(CONNECTED_MS);
    net.reachable = false;
    net.cut();
    net.door(true);
    net.door(false);
    net.door(true);
    assert_eq!(net.dev.app().pending().count(), 3);
    net.run_until(CONNECTED_MS + RECONNECT_MS + 1);
    assert!(!net.dev.is_connected(), "the broker is unreachable");
    net.reachable = true;
    net.run_until(CONNECTED_MS + 3 * RECONNECT_MS);
    assert!(net.dev.is_connected());
    net
}

#[test]
fn alarms_held_offline_go_out_in_order_on_reconnect() {
    let net = offline_alarms(DoorAlarm::default());
    assert_eq!(net.seqs(), [1, 2, 3]);
    assert_eq!(net.dev.app().delivered(), 3);
    assert_eq!(net.printed("3 alarms held"), 1);
}

#[test]
fn the_forgetful_variant_loses_them() {
    let net = offline_alarms(DoorAlarm::forgetful());
    assert_eq!(net.seqs(), Vec::<u32>::new());
}

#[test]
fn an_unacknowledged_alarm_is_sent_again_after_reconnect_and_order_holds() {
    let mut net = Net::new(DoorAlarm::default());
    net.run_until(CONNECTED_MS);
    // The PUBACK is lost; the second alarm waits behind the first.
    net.drop_down = true;
    net.door(true);
    net.door(false);
    assert_eq!(net.seqs(), [1]);
    net.cut();
    net.drop_down = false;
    net.run_until(CONNECTED_MS + 2 * RECONNECT_MS);
    assert!(net.dev.is_connected());
    // Alarm 1 more than once (the library's copy and the application's), then alarm 2.
    assert_eq!(net.seqs(), [1, 2]);
    assert!(net.alarms().iter().filter(|a| a.seq == 1).count() >= 2);
    assert_eq!(net.dev.app().delivered(), 2);
    assert_eq!(net.printed("Alarm 1 unacknowledged, resending"), 1);
}

#[test]
fn a_full_buffer_drops_the_oldest_and_counts() {
    let mut net = Net::new(DoorAlarm::new(DoorAlarmConfig {
        buffer_capacity: 3,
        ..DoorAlarmConfig::default()
    }));
    net.run_until(CONNECTED_MS);
    net.reachable = false;
    net.cut();
    for open in [true, false, true, false, true] {
        net.door(open);
    }
    assert_eq!(net.dev.app().dropped(), 2);
    net.reachable = true;
    net.run_until(CONNECTED_MS + 2 * RECONNECT_MS);
    assert_eq!(net.seqs(), [3, 4, 5]);
    assert_eq!(
        net.printed("Alarm buffer full: alarm 2 dropped (2 dropped)"),
        1
    );
}

#[test]
fn a_command_is_applied_once() {
    let mut net = Net::new(DoorAlarm::default());
    net.run_until(CONNECTED_MS);
    for _ in 0..2 {
        // The same command twice, as a QoS 1 redelivery would bring it.
        net.watcher
            .publish(
                net.now,
                "cmd/door-1/heartbeat_s",
                b"7 5",
                QoS::AtLeastOnce,
                false,
            )
            .unwrap();
        net.settle();
    }
    assert_eq!(net.dev.app().config().heartbeat_s, 5);
    assert_eq!(net.printed("Command 7: heartbeat every 5 s"), 1);
    assert_eq!(net.printed("Command 7 ignored (repeated)"), 1);
    net.run_until(CONNECTED_MS + 10_000);
    let beats = net
        .received
        .iter()
        .filter(|(t, _)| t == "heartbeat/door-1")
        .count();
    assert_eq!(beats, 2, "every 5 s from the command on");
}

#[test]
fn alarm_payloads_parse_with_or_without_a_tag() {
    let a = Alarm {
        seq: 12,
        open: false,
    };
    assert_eq!(parse_alarm(a.payload().as_bytes()), Some(a));
    assert_eq!(
        parse_alarm(b"open 3\x1fd1.s9"),
        Some(Alarm { seq: 3, open: true })
    );
    assert_eq!(parse_alarm(b"ajar 3"), None);
}

#[test]
fn qos_1_needs_a_library_that_publishes_it() {
    let mut config = DeviceConfig::new(Profile::PubSubClient);
    config.client_id = ID.to_string();
    let refused = Device::new(config.clone(), DoorAlarm::default(), Instant::ZERO);
    assert!(matches!(
        refused.err(),
        Some(DeviceError::PublishQosUnsupported { .. })
    ));
    let qos0 = DoorAlarm::new(DoorAlarmConfig {
        alarm_qos: QoS::AtMostOnce,
        ..DoorAlarmConfig::default()
    });
    assert!(Device::new(config, qos0, Instant::ZERO).is_ok());
}
