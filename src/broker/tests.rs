//! Broker behaviour in virtual time, no sockets: each test names the MQTT 3.1.1 statement it checks.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::codec::{
    encode_to_vec, Connect, Decoded, Protocol, Subscribe, SubscribeFilters, Unsubscribe,
    UnsubscribeTopics, Will,
};
use crate::limits;

use crate::driver::drain;
use crate::test_util::Pkt;

mod persist;
mod profile;

fn pubp(topic: &str, payload: &str, qos: u8, pkid: u16) -> Pkt {
    Pkt::Pub {
        topic: topic.into(),
        payload: payload.into(),
        qos,
        dup: false,
        retain: false,
        pkid,
    }
}

struct Harness {
    b: Broker,
    now: Instant,
    closed: Vec<ConnId>,
    logs: Vec<String>,
    /// Connections currently paused by backpressure.
    paused: Vec<ConnId>,
}

impl Harness {
    fn new() -> Self {
        Self::with(Config {
            verbose: true,
            ..Config::for_tests()
        })
    }
    fn with(config: Config) -> Self {
        Harness {
            b: Broker::new(config, Instant::ZERO).unwrap(),
            now: Instant::ZERO,
            closed: Vec::new(),
            logs: Vec::new(),
            paused: Vec::new(),
        }
    }
    fn at(&mut self, ms: u64) {
        self.now = Instant::from_millis(ms);
        self.b.handle_timeout(self.now);
    }
    fn bytes(&mut self, conn: ConnId, p: &Packet<'_>) {
        let mut v = Vec::new();
        encode_to_vec(p, &mut v).unwrap();
        self.b.handle_bytes(self.now, conn, &v);
    }
    fn accept(&mut self) -> ConnId {
        self.b.handle_accept(self.now, "test").unwrap()
    }
    fn connect_with(
        &mut self,
        id: &str,
        clean: bool,
        keep_alive_s: u16,
        will: Option<Will<'_>>,
    ) -> (ConnId, Vec<Pkt>) {
        let c = self.accept();
        self.bytes(
            c,
            &Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: clean,
                keep_alive_s,
                client_id: id,
                will,
                username: None,
                password: None,
            }),
        );
        let got = self.take(c);
        (c, got)
    }
    /// Connects and checks CONNACK accepted; returns the conn and session-present.
    fn connect(&mut self, id: &str, clean: bool) -> (ConnId, bool) {
        let (c, got) = self.connect_with(id, clean, 0, None);
        match got.first() {
            Some(Pkt::ConnAck(sp, 0)) => (c, *sp),
            other => panic!("expected CONNACK 0, got {other:?}"),
        }
    }
    fn subscribe(&mut self, conn: ConnId, filters: &[(&str, QoS)]) -> Vec<Pkt> {
        self.bytes(
            conn,
            &Packet::Subscribe(Subscribe {
                pkid: 1,
                filters: SubscribeFilters::List(filters),
            }),
        );
        self.take(conn)
    }
    fn publish(
        &mut self,
        conn: ConnId,
        topic: &str,
        payload: &str,
        qos: QoS,
        retain: bool,
        pkid: u16,
    ) {
        self.bytes(
            conn,
            &Packet::Publish(Publish {
                dup: false,
                qos,
                retain,
                topic,
                pkid,
                payload: payload.as_bytes(),
            }),
        );
    }
    /// Drains all outputs; returns the packets sent to `conn` (others are dropped) and records closes.
    fn take(&mut self, conn: ConnId) -> Vec<Pkt> {
        self.drain()
            .into_iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, p)| p)
            .collect()
    }
    /// Drains outputs, reporting every byte written at once (a socket that takes everything),
    /// until writing frees nothing more.
    fn drain(&mut self) -> Vec<(ConnId, Pkt)> {
        let mut out = Vec::new();
        loop {
            let sent = self.drain_once(&mut out);
            if sent.is_empty() {
                return out;
            }
            for (c, n) in sent {
                self.b.handle_sent(self.now, c, n);
            }
        }
    }
    fn drain_once(&mut self, out: &mut Vec<(ConnId, Pkt)>) -> Vec<(ConnId, usize)> {
        let mut sent = Vec::new();
        let (closed, logs, paused) = (&mut self.closed, &mut self.logs, &mut self.paused);
        drain(&mut self.b, &mut Vec::new(), |o, buf| match o {
            Output::Transmit(c) => {
                let mut pos = 0;
                while pos < buf.len() {
                    match codec::decode(&buf[pos..], usize::MAX).unwrap() {
                        Decoded::Packet(p, n) => {
                            pos += n;
                            out.push((c, own(&p)));
                        }
                        Decoded::NeedMore(_) => panic!("broker sent a partial packet"),
                    }
                }
                sent.push((c, buf.len()));
            }
            Output::Event(Event::Close(c)) => closed.push(c),
            Output::Event(Event::Log(l)) => logs.push(l),
            Output::Event(Event::PauseRead(c)) => paused.push(c),
            Output::Event(Event::ResumeRead(c)) => paused.retain(|x| *x != c),
            Output::Timeout(_) => {}
        });
        sent
    }
}

fn own(p: &Packet<'_>) -> Pkt {
    let p = Pkt::from_packet(p);
    assert!(
        p.is_server_to_client(),
        "broker sent a client packet: {p:?}"
    );
    p
}

#[test]
fn reference_setup_qos0_esp32() {
    let mut h = Harness::new();
    let (sub, sp) = h.connect("sub", true);
    assert!(!sp);
    assert_eq!(
        h.subscribe(sub, &[("ESP32/#", QoS::AtMostOnce)]),
        vec![Pkt::SubAck(1, vec![0])]
    );
    let (esp, _) = h.connect("ESP32", true);
    h.publish(esp, "ESP32/TEM", "26.70", QoS::AtMostOnce, false, 0);
    h.publish(esp, "ESP32/HUM", "52.00", QoS::AtMostOnce, false, 0);
    assert_eq!(
        h.take(sub),
        vec![
            pubp("ESP32/TEM", "26.70", 0, 0),
            pubp("ESP32/HUM", "52.00", 0, 0)
        ]
    );
    assert!(h
        .logs
        .iter()
        .any(|l| l == "Received PUBLISH from ESP32 (d0, q0, r0, m0, 'ESP32/TEM', ... (5 bytes))"));
    assert!(h
        .logs
        .iter()
        .any(|l| l == "Sending CONNACK to ESP32 (0, 0)"));
}

#[test]
fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    let mut h = Harness::new();
    let c = h.accept();
    h.bytes(c, &Packet::PingReq);
    assert_eq!(h.take(c), vec![]);
    assert_eq!(h.closed, vec![c]);
    assert_eq!(h.b.connection_count(), 0);
}

#[test]
fn mqtt_3_1_0_2_second_connect_is_a_protocol_violation() {
    let mut h = Harness::new();
    let (c, _) = h.connect("a", true);
    h.bytes(
        c,
        &Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 0,
            client_id: "a",
            will: None,
            username: None,
            password: None,
        }),
    );
    h.drain();
    assert_eq!(h.closed, vec![c]);
}

#[test]
fn mqtt_3_1_2_2_unsupported_level_gets_connack_1_then_close() {
    let mut h = Harness::new();
    let c = h.accept();
    // CONNECT "MQTT" level 5 (MQTT 5, not spoken yet).
    h.b.handle_bytes(
        h.now,
        c,
        &[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 1, b'x',
        ],
    );
    assert_eq!(h.take(c), vec![Pkt::ConnAck(false, 1)]);
    assert_eq!(h.closed, vec![c]);
}

#[test]
fn mqtt_3_1_3_8_empty_client_id_needs_clean_session() {
    let mut h = Harness::new();
    let (c, got) = h.connect_with("", false, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
    assert_eq!(h.closed, vec![c]);
    let (c2, got) = h.connect_with("", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    assert!(!h.closed.contains(&c2));
}

#[test]
fn not_authorized_when_anonymous_refused() {
    let mut h = Harness::with(Config {
        allow_anonymous: false,
        ..Config::for_tests()
    });
    let (c, got) = h.connect_with("x", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 5)]);
    assert_eq!(h.closed, vec![c]);
}

/// CONNECT with a user name and password, on a connection accepted with `identity`.
fn connect_as(h: &mut Harness, identity: Identity, username: Option<&str>) -> (ConnId, Vec<Pkt>) {
    let c =
        h.b.handle_accept_as(h.now, "1.2.3.4:5 on port 8883", identity)
            .unwrap();
    h.bytes(
        c,
        &Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 60,
            client_id: "dev",
            will: None,
            username,
            password: username.map(|_| &b"pw"[..]),
        }),
    );
    let got = h.take(c);
    (c, got)
}

#[test]
fn certificate_identity_is_the_user_name_and_not_anonymous() {
    // mosquitto's use_identity_as_username: the CN replaces CONNECT's user name, and a client
    // known by its certificate passes `allow_anonymous false`.
    let mut h = Harness::with(Config {
        allow_anonymous: false,
        verbose: true,
        ..Config::for_tests()
    });
    let (c, got) = connect_as(
        &mut h,
        Identity::Certificate("sensor-7".into()),
        Some("claimed"),
    );
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    assert!(!h.closed.contains(&c));
    assert!(
        h.logs.contains(
            &"New client connected from 1.2.3.4:5 as dev (p2, c1, k60, u'sensor-7').".to_string()
        ),
        "{:#?}",
        h.logs
    );
    // The same CONNECT without a certificate identity is anonymous-refused as before.
    let (c, got) = connect_as(&mut h, Identity::FromConnect, Some("claimed"));
    assert_eq!(got, vec![Pkt::ConnAck(false, 5)]);
    assert!(h.closed.contains(&c));
}

#[test]
fn missing_certificate_identity_gets_connack_4() {
    let mut h = Harness::new();
    let (c, got) = connect_as(&mut h, Identity::Missing, Some("claimed"));
    assert_eq!(got, vec![Pkt::ConnAck(false, 4)]);
    assert_eq!(h.closed, vec![c]);
    // Without an identity from the transport, CONNECT's user name is the one logged.
    let (_, got) = connect_as(&mut h, Identity::FromConnect, Some("claimed"));
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    assert!(h
        .logs
        .iter()
        .any(|l| l.ends_with("(p2, c1, k60, u'claimed').")));
}

#[test]
fn mqtt_3_1_4_2_takeover_closes_the_first_and_publishes_its_will() {
    let mut h = Harness::new();
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("will/#", QoS::AtMostOnce)]);
    let will = Will {
        topic: "will/a",
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    let (first, _) = h.connect_with("a", true, 0, Some(will));
    let (second, got) = h.connect_with("a", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    assert_eq!(h.closed, vec![first]);
    assert!(!h.closed.contains(&second));
    assert!(h
        .logs
        .iter()
        .any(|l| l == "Client a already connected, closing old connection."));
    let _ = watch;
}

#[test]
fn takeover_will_reaches_subscribers() {
    let mut h = Harness::new();
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("will/#", QoS::AtMostOnce)]);
    let will = Will {
        topic: "will/a",
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    let (_first, _) = h.connect_with("a", true, 0, Some(will));
    let c = h.accept();
    h.bytes(
        c,
        &Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 0,
            client_id: "a",
            will: None,
            username: None,
            password: None,
        }),
    );
    assert_eq!(h.take(watch), vec![pubp("will/a", "gone", 0, 0)]);
}

#[test]
fn mqtt_3_1_2_24_keepalive_closes_after_one_and_a_half_times() {
    let mut h = Harness::new();
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("will/#", QoS::AtMostOnce)]);
    let will = Will {
        topic: "will/esp",
        payload: b"offline",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    let (esp, _) = h.connect_with("esp", true, 10, Some(will));
    h.at(5_000);
    h.bytes(esp, &Packet::PingReq); // resets the clock: deadline now 5 s + 15 s
    assert_eq!(h.take(esp), vec![Pkt::PingResp]);
    h.at(15_000);
    h.at(19_999);
    h.drain();
    assert!(h.closed.is_empty());
    assert_eq!(h.b.poll_timeout(), Some(Instant::from_millis(20_000)));
    h.at(20_000);
    let got = h.drain();
    assert_eq!(h.closed, vec![esp]);
    assert_eq!(got, vec![(watch, pubp("will/esp", "offline", 0, 0))]);
    assert!(h
        .logs
        .iter()
        .any(|l| l == "Client esp has exceeded timeout, disconnecting."));
}

#[test]
fn keepalive_zero_never_times_out() {
    let mut h = Harness::new();
    let (c, _) = h.connect("k0", true);
    h.at(1_000_000_000);
    h.drain();
    assert!(h.closed.is_empty());
    assert_eq!(h.b.connection_count(), 1);
    let _ = c;
}

#[test]
fn socket_without_connect_is_closed_after_connect_timeout() {
    let mut h = Harness::new();
    let c = h.accept();
    h.at(9_999);
    h.drain();
    assert!(h.closed.is_empty());
    h.at(10_000);
    h.drain();
    assert_eq!(h.closed, vec![c]);
}

#[test]
fn mqtt_4_7_2_1_sys_topics_not_matched_by_leading_wildcard() {
    let mut h = Harness::with(Config {
        sys_interval: Duration::from_secs(10),
        ..Config::default()
    });
    let (all, _) = h.connect("all", true);
    let got = h.subscribe(all, &[("#", QoS::AtMostOnce)]);
    assert_eq!(got, vec![Pkt::SubAck(1, vec![0])]); // retained $SYS topics exist but are not sent
    let (sys, _) = h.connect("sys", true);
    let got = h.subscribe(sys, &[("$SYS/broker/uptime", QoS::AtMostOnce)]);
    assert_eq!(
        got,
        vec![
            Pkt::SubAck(1, vec![0]),
            Pkt::Pub {
                topic: "$SYS/broker/uptime".into(),
                payload: "0 seconds".into(),
                qos: 0,
                dup: false,
                retain: true,
                pkid: 0
            }
        ]
    );
    h.at(10_000);
    let got = h.drain();
    assert!(got.iter().all(|(c, _)| *c == sys), "{got:?}");
    assert!(got.contains(&(sys, pubp("$SYS/broker/uptime", "10 seconds", 0, 0))));
}

#[test]
fn overlapping_subscriptions_deliver_once_at_highest_qos() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    assert_eq!(
        h.subscribe(
            s,
            &[
                ("a/#", QoS::AtMostOnce),
                ("a/+", QoS::ExactlyOnce),
                ("a/b", QoS::AtLeastOnce)
            ]
        ),
        vec![Pkt::SubAck(1, vec![0, 2, 1])]
    );
    let (p, _) = h.connect("p", true);
    h.publish(p, "a/b", "x", QoS::ExactlyOnce, false, 9);
    assert_eq!(h.take(s), vec![pubp("a/b", "x", 2, 1)]);
}

#[test]
fn delivered_qos_is_min_of_publish_and_granted() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "1", QoS::AtLeastOnce, false, 3);
    assert_eq!(
        h.drain(),
        vec![(s, pubp("t", "1", 1, 1)), (p, Pkt::PubAck(3))]
    );
    h.publish(p, "t", "0", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![pubp("t", "0", 0, 0)]);
}

#[test]
fn qos2_to_qos1_subscriber_delivered_at_qos1() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "2", QoS::ExactlyOnce, false, 3);
    let got = h.drain();
    assert!(got.contains(&(s, pubp("t", "2", 1, 1))), "{got:?}");
    assert!(got.contains(&(p, Pkt::PubRec(3))));
}

#[test]
fn subscribe_failure_returns_0x80_for_that_filter_only() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    assert_eq!(
        h.subscribe(
            s,
            &[
                ("ok/+", QoS::AtLeastOnce),
                ("bad/#/x", QoS::AtMostOnce),
                ("a+", QoS::AtMostOnce)
            ]
        ),
        vec![Pkt::SubAck(1, vec![1, 0x80, 0x80])]
    );
    assert_eq!(h.b.subscription_count(), 1);
}

#[test]
fn mqtt_3_3_1_retained_rules() {
    let mut h = Harness::new();
    let (live, _) = h.connect("live", true);
    h.subscribe(live, &[("r/#", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "r/1", "kept", QoS::AtLeastOnce, true, 1);
    // MQTT-3.3.1-9: normal forwarding clears RETAIN.
    assert_eq!(h.take(live), vec![pubp("r/1", "kept", 1, 1)]);
    let (late, _) = h.connect("late", true);
    // MQTT-3.3.1-6/-8: a new subscription gets the retained message with RETAIN set, at min QoS.
    assert_eq!(
        h.subscribe(late, &[("r/+", QoS::AtMostOnce)]),
        vec![
            Pkt::SubAck(1, vec![0]),
            Pkt::Pub {
                topic: "r/1".into(),
                payload: "kept".into(),
                qos: 0,
                dup: false,
                retain: true,
                pkid: 0
            }
        ]
    );
    // MQTT-3.3.1-10: an empty retained payload deletes it.
    h.publish(p, "r/1", "", QoS::AtMostOnce, true, 0);
    h.drain();
    assert_eq!(h.b.retained_count(), 0);
    let (later, _) = h.connect("later", true);
    assert_eq!(
        h.subscribe(later, &[("r/#", QoS::AtMostOnce)]),
        vec![Pkt::SubAck(1, vec![0])]
    );
}

#[test]
fn retained_forwarding_to_live_subscriber_clears_retain_flag() {
    let mut h = Harness::new();
    let (live, _) = h.connect("live", true);
    h.subscribe(live, &[("r/#", QoS::AtMostOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "r/1", "v", QoS::AtMostOnce, true, 0);
    assert_eq!(h.take(live), vec![pubp("r/1", "v", 0, 0)]);
}

#[test]
fn qos1_inflight_window_and_in_order_release() {
    let mut h = Harness::with(Config {
        max_inflight_messages: 2,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("p", true);
    for i in 1..=5u16 {
        h.publish(p, "t", &i.to_string(), QoS::AtLeastOnce, false, i);
    }
    assert_eq!(h.take(s), vec![pubp("t", "1", 1, 1), pubp("t", "2", 1, 2)]);
    assert_eq!(h.b.queued_messages("s"), Some(3));
    h.bytes(s, &Packet::PubAck(1));
    assert_eq!(h.take(s), vec![pubp("t", "3", 1, 3)]);
    h.bytes(s, &Packet::PubAck(2));
    h.bytes(s, &Packet::PubAck(3));
    assert_eq!(h.take(s), vec![pubp("t", "4", 1, 4), pubp("t", "5", 1, 5)]);
    h.bytes(s, &Packet::PubAck(4));
    h.bytes(s, &Packet::PubAck(5));
    assert_eq!(h.b.inflight_messages("s"), Some(0));
}

#[test]
fn mqtt_4_4_0_1_persistent_session_redelivers_unacked_with_dup_in_order() {
    let mut h = Harness::new();
    let (s, sp) = h.connect("s", false);
    assert!(!sp);
    h.subscribe(s, &[("t", QoS::ExactlyOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "a", QoS::AtLeastOnce, false, 1);
    h.publish(p, "t", "b", QoS::ExactlyOnce, false, 2);
    h.publish(p, "t", "c", QoS::ExactlyOnce, false, 3);
    assert_eq!(
        h.take(s),
        vec![
            pubp("t", "a", 1, 1),
            pubp("t", "b", 2, 2),
            pubp("t", "c", 2, 3)
        ]
    );
    h.bytes(s, &Packet::PubRec(3)); // c advances to PUBREL
    assert_eq!(h.take(s), vec![Pkt::PubRel(3)]);
    h.b.handle_closed(h.now, s); // connection lost, nothing else acknowledged
    h.publish(p, "t", "d", QoS::AtLeastOnce, false, 4); // queued while offline
    h.publish(p, "t", "e", QoS::AtMostOnce, false, 0); // QoS 0 is not queued offline
    h.drain();
    let (s2, got) = h.connect_with("s", false, 0, None);
    assert_eq!(
        got,
        vec![
            Pkt::ConnAck(true, 0),
            Pkt::Pub {
                topic: "t".into(),
                payload: "a".into(),
                qos: 1,
                dup: true,
                retain: false,
                pkid: 1
            },
            Pkt::Pub {
                topic: "t".into(),
                payload: "b".into(),
                qos: 2,
                dup: true,
                retain: false,
                pkid: 2
            },
            Pkt::PubRel(3),
            pubp("t", "d", 1, 4),
        ]
    );
    h.bytes(s2, &Packet::PubAck(1));
    h.bytes(s2, &Packet::PubRec(2));
    assert_eq!(h.take(s2), vec![Pkt::PubRel(2)]);
    h.bytes(s2, &Packet::PubComp(2));
    h.bytes(s2, &Packet::PubComp(3));
    h.bytes(s2, &Packet::PubAck(4));
    assert_eq!(h.b.inflight_messages("s"), Some(0));
}

#[test]
fn clean_session_discards_state() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", false);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    h.b.handle_closed(h.now, s);
    let (_s2, sp) = h.connect("s", true);
    assert!(!sp);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "x", QoS::AtLeastOnce, false, 1);
    let got = h.drain();
    assert_eq!(got, vec![(p, Pkt::PubAck(1))]);
    // A clean session leaves nothing behind when it disconnects.
    let before = h.b.session_count();
    h.bytes(p, &Packet::Disconnect);
    h.drain();
    assert_eq!(h.b.session_count(), before - 1);
}

#[test]
fn mqtt_4_3_3_2_qos2_duplicate_is_not_delivered_twice() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtMostOnce)]);
    let (p, _) = h.connect("p", false);
    h.publish(p, "t", "once", QoS::ExactlyOnce, false, 7);
    assert_eq!(h.take(p), vec![Pkt::PubRec(7)]);
    // The PUBREC was lost; the client reconnects and resends with DUP.
    h.b.handle_closed(h.now, p);
    let (p2, _) = h.connect("p", false);
    h.bytes(
        p2,
        &Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t",
            pkid: 7,
            payload: b"once",
        }),
    );
    let got = h.drain();
    assert_eq!(got, vec![(p2, Pkt::PubRec(7))]);
    h.bytes(p2, &Packet::PubRel(7));
    assert_eq!(h.take(p2), vec![Pkt::PubComp(7)]);
    // Released: the same id now starts a new message.
    h.publish(p2, "t", "again", QoS::ExactlyOnce, false, 7);
    let got = h.drain();
    assert!(got.contains(&(s, pubp("t", "again", 0, 0))), "{got:?}");
}

#[test]
fn delivered_once_overall_count() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtMostOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "once", QoS::ExactlyOnce, false, 7);
    h.publish(p, "t", "once", QoS::ExactlyOnce, false, 7);
    let got = h.drain();
    assert_eq!(got.iter().filter(|(c, _)| *c == s).count(), 1);
}

#[test]
fn offline_queue_is_bounded_and_overflow_counted() {
    let mut h = Harness::with(Config {
        max_queued_messages: 3,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("s", false);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    h.b.handle_closed(h.now, s);
    let (p, _) = h.connect("p", true);
    for i in 1..=5u16 {
        h.publish(p, "t", &i.to_string(), QoS::AtLeastOnce, false, i);
    }
    h.drain();
    assert_eq!(h.b.queued_messages("s"), Some(3));
    assert_eq!(h.b.stats().messages_dropped, 2);
    let (_s2, got) = h.connect_with("s", false, 0, None);
    assert_eq!(
        got,
        vec![
            Pkt::ConnAck(true, 0),
            pubp("t", "1", 1, 1),
            pubp("t", "2", 1, 2),
            pubp("t", "3", 1, 3)
        ]
    );
}

#[test]
fn queue_byte_bound() {
    let mut h = Harness::with(Config {
        max_queued_bytes: 10,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("s", false);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    h.b.handle_closed(h.now, s);
    let (p, _) = h.connect("p", true);
    for i in 1..=5u16 {
        h.publish(p, "t", "abcd", QoS::AtLeastOnce, false, i); // 5 bytes each with the topic
    }
    h.drain();
    assert_eq!(h.b.queued_messages("s"), Some(2));
    assert_eq!(h.b.stats().messages_dropped, 3);
}

#[test]
fn mqtt_3_14_4_3_will_discarded_on_disconnect() {
    let mut h = Harness::new();
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("will/#", QoS::AtMostOnce)]);
    let will = Will {
        topic: "will/a",
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    let (a, _) = h.connect_with("a", true, 0, Some(will));
    h.bytes(a, &Packet::Disconnect);
    assert_eq!(h.drain(), vec![]);
    assert_eq!(h.closed, vec![a]);
}

#[test]
fn will_published_on_socket_loss_and_retained_if_asked() {
    let mut h = Harness::new();
    let will = Will {
        topic: "status/a",
        payload: b"offline",
        qos: QoS::AtLeastOnce,
        retain: true,
    };
    let (a, _) = h.connect_with("a", true, 0, Some(will));
    h.b.handle_closed(h.now, a);
    h.drain();
    assert_eq!(h.b.retained_count(), 1);
    let (s, _) = h.connect("s", true);
    assert_eq!(
        h.subscribe(s, &[("status/+", QoS::AtLeastOnce)]),
        vec![
            Pkt::SubAck(1, vec![1]),
            Pkt::Pub {
                topic: "status/a".into(),
                payload: "offline".into(),
                qos: 1,
                dup: false,
                retain: true,
                pkid: 1
            }
        ]
    );
}

#[test]
fn unsubscribe_stops_delivery() {
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtMostOnce)]);
    h.bytes(
        s,
        &Packet::Unsubscribe(Unsubscribe {
            pkid: 4,
            topics: UnsubscribeTopics::List(&["t"]),
        }),
    );
    assert_eq!(h.take(s), vec![Pkt::UnsubAck(4)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![]);
    assert_eq!(h.b.subscription_count(), 0);
}

#[test]
fn message_size_limit_drops_but_acknowledges() {
    let mut h = Harness::with(Config {
        message_size_limit_bytes: 4,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::AtMostOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "12345", QoS::AtLeastOnce, false, 1);
    h.publish(p, "t", "1234", QoS::AtLeastOnce, false, 2);
    let got = h.drain();
    // Grouped by connection: the dirty list hands out each connection's bytes in one piece.
    assert_eq!(
        got,
        vec![
            (p, Pkt::PubAck(1)),
            (p, Pkt::PubAck(2)),
            (s, pubp("t", "1234", 0, 0))
        ]
    );
    assert_eq!(h.b.stats().messages_dropped, 1);
}

#[test]
fn packet_size_limit_closes_before_the_body_arrives() {
    let mut h = Harness::with(Config {
        max_packet_bytes: 64,
        ..Config::for_tests()
    });
    let (c, _) = h.connect("c", true);
    // PUBLISH announcing 1000 bytes: rejected from the header alone.
    h.b.handle_bytes(h.now, c, &[0x30, 0xE8, 0x07]);
    h.drain();
    assert_eq!(h.closed, vec![c]);
}

#[test]
fn max_connections_refuses_accept() {
    let mut h = Harness::with(Config {
        max_connections: 2,
        ..Config::for_tests()
    });
    assert!(h.b.handle_accept(h.now, "a").is_some());
    assert!(h.b.handle_accept(h.now, "b").is_some());
    assert!(h.b.handle_accept(h.now, "c").is_none());
}

#[test]
fn bytes_split_anywhere_give_the_same_result() {
    let mut whole = Vec::new();
    let c = Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: "p",
        will: None,
        username: None,
        password: None,
    };
    encode_to_vec(&Packet::Connect(c), &mut whole).unwrap();
    for i in 1..=3u16 {
        let p = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t",
            pkid: i,
            payload: b"xyz",
        };
        encode_to_vec(&Packet::Publish(p), &mut whole).unwrap();
    }
    for split in 1..whole.len() {
        let mut h = Harness::new();
        let (s, _) = h.connect("s", true);
        h.subscribe(s, &[("t", QoS::AtMostOnce)]);
        let p = h.accept();
        h.b.handle_bytes(h.now, p, &whole[..split]);
        h.b.handle_bytes(h.now, p, &whole[split..]);
        let got = h.drain();
        let to_s: Vec<_> = got.iter().filter(|(c, _)| *c == s).collect();
        let to_p: Vec<_> = got
            .iter()
            .filter(|(c, _)| *c == p)
            .map(|(_, x)| x.clone())
            .collect();
        assert_eq!(to_s.len(), 3, "split at {split}");
        assert_eq!(
            to_p,
            vec![
                Pkt::ConnAck(false, 0),
                Pkt::PubAck(1),
                Pkt::PubAck(2),
                Pkt::PubAck(3)
            ],
            "split at {split}"
        );
    }
}

#[test]
fn garbage_never_panics_and_closes() {
    let mut h = Harness::new();
    let c = h.accept();
    h.b.handle_bytes(h.now, c, &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    h.drain();
    assert_eq!(h.closed, vec![c]);
    // The broker keeps serving.
    let (s, _) = h.connect("s", true);
    assert_eq!(
        h.subscribe(s, &[("t", QoS::AtMostOnce)]),
        vec![Pkt::SubAck(1, vec![0])]
    );
}

#[test]
fn same_inputs_same_bytes() {
    fn run() -> Vec<(ConnId, Pkt)> {
        let mut h = Harness::with(Config {
            sys_interval: Duration::from_secs(1),
            ..Config::default()
        });
        let (s, _) = h.connect("s", false);
        h.subscribe(s, &[("#", QoS::ExactlyOnce), ("$SYS/#", QoS::AtMostOnce)]);
        let (p, _) = h.connect("", true);
        let mut all = Vec::new();
        for i in 0..50u16 {
            h.at(u64::from(i) * 100);
            let q = QoS::from_u8((i % 3) as u8).unwrap();
            h.publish(
                p,
                &alloc::format!("t/{}", i % 4),
                "v",
                q,
                i % 5 == 0,
                if q == QoS::AtMostOnce { 0 } else { i + 1 },
            );
            all.extend(h.drain());
        }
        all
    }
    assert_eq!(run(), run());
}

// ----- backpressure (slow subscribers) -----

fn publishes(range: core::ops::RangeInclusive<u16>, qos: QoS) -> Vec<u8> {
    let mut v = Vec::new();
    for i in range {
        let payload = i.to_string();
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t",
            pkid: i,
            payload: payload.as_bytes(),
        };
        encode_to_vec(&Packet::Publish(p), &mut v).unwrap();
    }
    v
}

/// `conn` is paused as a publisher: its acknowledgements are withheld.
fn held(h: &Harness, conn: ConnId) -> bool {
    h.b.conns
        .get(&conn)
        .and_then(|c| c.withheld.as_ref())
        .is_some_and(|w| !w.blocked_on.is_empty())
}

fn slow_setup(max_queued: usize) -> (Harness, ConnId, ConnId) {
    let mut h = Harness::with(Config {
        max_inflight_messages: 2,
        max_queued_messages: max_queued,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("slow", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("fast", true);
    (h, s, p)
}

#[test]
fn slow_subscriber_pauses_its_publisher_instead_of_dropping() {
    let (mut h, s, p) = slow_setup(10);
    h.b.handle_bytes(h.now, p, &publishes(1..=20, QoS::AtLeastOnce));
    let got = h.drain();
    // 2 in flight + 10 queued; the 13th hits the bound and pauses the publisher: its PUBACK and
    // those of the 7 after it (a window of 20) are withheld, the messages kept.
    let acks: Vec<_> = got
        .iter()
        .filter(|(c, _)| *c == p)
        .map(|(_, x)| x.clone())
        .collect();
    assert_eq!(
        acks,
        (1..=12).map(Pkt::PubAck).collect::<Vec<_>>(),
        "13th PUBACK on withheld"
    );
    assert!(held(&h, p));
    assert!(h.paused.is_empty(), "its socket is still read");
    assert_eq!(h.b.queued_messages("slow"), Some(18));
    assert_eq!(h.b.stats().messages_dropped, 0);
    let mut acks_after = Vec::new();
    // The subscriber drains; the publisher resumes at half the bound and the rest flows.
    let mut received: Vec<Pkt> = got
        .iter()
        .filter(|(c, _)| *c == s)
        .map(|(_, x)| x.clone())
        .collect();
    let mut acked = 0;
    while acked < received.len() {
        let Pkt::Pub { pkid, .. } = received[acked] else {
            panic!("{:?}", received[acked])
        };
        acked += 1;
        h.bytes(s, &Packet::PubAck(pkid));
        for (c, x) in h.drain() {
            if c == s {
                received.push(x);
            } else if c == p {
                acks_after.push(x);
            }
        }
    }
    assert_eq!(
        acks_after,
        (13..=20).map(Pkt::PubAck).collect::<Vec<_>>(),
        "the withheld PUBACKs, once each, in order"
    );
    let payloads: Vec<String> = received
        .iter()
        .map(|x| match x {
            Pkt::Pub { payload, .. } => String::from_utf8(payload.clone()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<String> = (1..=20).map(|i: u16| i.to_string()).collect();
    assert_eq!(payloads, want, "all delivered, in order");
    assert!(!held(&h, p));
    assert!(h.paused.is_empty());
    assert_eq!(h.b.stats().messages_dropped, 0);
}

#[test]
fn paused_publisher_gets_its_withheld_ack_on_resume() {
    let (mut h, s, p) = slow_setup(4);
    h.b.handle_bytes(h.now, p, &publishes(1..=7, QoS::ExactlyOnce));
    let got = h.drain();
    let to_p: Vec<_> = got
        .iter()
        .filter(|(c, _)| *c == p)
        .map(|(_, x)| x.clone())
        .collect();
    assert_eq!(to_p, (1..=6).map(Pkt::PubRec).collect::<Vec<_>>()); // 2 in flight + 4 queued
                                                                    // Paused on the 7th, PUBREC 7 withheld.
    assert!(held(&h, p));
    // Still read: a PUBREL for a message acknowledged before the pause is completed at once.
    h.bytes(p, &Packet::PubRel(1));
    assert_eq!(h.take(p), vec![Pkt::PubComp(1)]);
    h.bytes(s, &Packet::PubAck(1));
    h.bytes(s, &Packet::PubAck(2)); // queue 5 -> 3: not yet at half (2)
    assert_eq!(h.take(p), vec![]);
    h.bytes(s, &Packet::PubAck(3));
    assert_eq!(h.take(p), vec![Pkt::PubRec(7)]);
    assert!(!held(&h, p));
    assert!(h.paused.is_empty());
}

#[test]
fn subscriber_going_away_releases_its_publishers() {
    let (mut h, s, p) = slow_setup(2);
    h.b.handle_bytes(h.now, p, &publishes(1..=10, QoS::AtLeastOnce));
    h.drain();
    assert!(held(&h, p));
    h.b.handle_closed(h.now, s); // clean session: gone with its queue
    let got = h.take(p);
    assert_eq!(got, (5..=10).map(Pkt::PubAck).collect::<Vec<_>>());
    assert!(!held(&h, p));
    assert!(h.paused.is_empty());
}

/// A publisher paused for a slow subscriber is still read: with a keep alive (2 s) far shorter
/// than the pause, it stays connected as long as it pings (each PINGREQ answered at once), and
/// through it all nothing is lost or duplicated and its PUBACKs come in order. Its client keeps
/// a window of 4 unacknowledged messages, as real clients do.
#[test]
fn paused_publisher_with_a_short_keepalive_stays_connected_and_loses_nothing() {
    let mut h = Harness::with(Config {
        max_inflight_messages: 2,
        max_queued_messages: 8,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("slow", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect_with("fast", true, 2, None);
    const N: u16 = 40;
    const WINDOW: u16 = 4;
    let (mut next, mut acked_p) = (1u16, Vec::new());
    let mut received: Vec<u16> = Vec::new();
    let mut unacked_s: VecDeque<u16> = VecDeque::new();
    let (mut pings, mut pongs) = (0, 0);
    let (mut held_since, mut longest_hold_ms) = (None, 0);
    // 100 ms steps for 60 s: the publisher fills its window whenever it can and pings every
    // second; the subscriber acknowledges one message a second.
    for step in 1..=600u64 {
        h.at(step * 100);
        while next <= N && (next as usize) - 1 - acked_p.len() < WINDOW as usize {
            h.b.handle_bytes(h.now, p, &publishes(next..=next, QoS::AtLeastOnce));
            next += 1;
        }
        if step % 10 == 0 {
            h.bytes(p, &Packet::PingReq);
            pings += 1;
        }
        if step % 10 == 5 {
            if let Some(id) = unacked_s.pop_front() {
                h.bytes(s, &Packet::PubAck(id));
            }
        }
        let ms = step * 100;
        match (held(&h, p), held_since) {
            (true, None) => held_since = Some(ms),
            (true, Some(t0)) => longest_hold_ms = longest_hold_ms.max(ms - t0),
            (false, _) => held_since = None,
        }
        for (c, x) in h.drain() {
            match (c == p, x) {
                (true, Pkt::PubAck(id)) => acked_p.push(id),
                (true, Pkt::PingResp) => pongs += 1,
                (false, Pkt::Pub { pkid, payload, .. }) => {
                    unacked_s.push_back(pkid);
                    received.push(String::from_utf8(payload).unwrap().parse().unwrap());
                }
                (_, other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(pongs, pings, "every PINGREQ answered in the same step");
        assert!(
            h.paused.is_empty(),
            "the publisher's socket is never paused"
        );
    }
    assert!(
        longest_hold_ms > 3_000,
        "paused longer than 1.5 x its keep alive ({longest_hold_ms} ms)"
    );
    assert!(h.closed.is_empty(), "nobody disconnected");
    assert_eq!(received, (1..=N).collect::<Vec<_>>(), "all, once, in order");
    assert_eq!(
        acked_p,
        (1..=N).collect::<Vec<_>>(),
        "PUBACKs once each, in order"
    );
    assert_eq!(h.b.stats().messages_dropped, 0);
}

/// Read again, a paused publisher is judged by its own keep alive again: silent for 1.5 x 2 s,
/// it is closed.
#[test]
fn a_silent_paused_publisher_is_closed_by_its_keepalive() {
    let (mut h, _s, _) = slow_setup(1);
    let (p, _) = h.connect_with("quiet", true, 2, None);
    h.b.handle_bytes(h.now, p, &publishes(1..=5, QoS::AtLeastOnce));
    h.drain();
    assert!(held(&h, p));
    h.at(2_999);
    h.drain();
    assert!(h.closed.is_empty());
    h.at(3_000);
    h.drain();
    assert_eq!(h.closed, vec![p]);
}

/// A paused publisher that ignores its window is read until its withheld acknowledgements cover
/// `max_paused_input_bytes`; then its next QoS 1 PUBLISH is left undecoded and its socket paused
/// (its silence then not held against it). Once the subscriber drains, everything flows.
#[test]
fn a_client_ignoring_its_window_is_paused_at_the_byte_bound() {
    let mut h = Harness::with(Config {
        max_inflight_messages: 2,
        max_queued_messages: 4,
        max_paused_input_bytes: 50,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("slow", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect_with("fast", true, 2, None);
    // 1..=9 are 8 bytes each, 10..=99 9 bytes: 2 in flight, 4 queued, the 7th pauses the
    // publisher (8 bytes withheld), then 8..=12 bring the withheld bytes to 8 + 16 + 27 = 51 >= 50
    // (the 12th crosses the bound): the 13th waits undecoded.
    h.b.handle_bytes(h.now, p, &publishes(1..=20, QoS::AtLeastOnce));
    let mut got = h.drain();
    let to_p: Vec<_> = got.iter().filter(|(c, _)| *c == p).collect();
    assert_eq!(to_p.len(), 6, "PUBACK 1..=6, then withheld: {to_p:?}");
    got.retain(|(c, _)| *c == s);
    assert_eq!(h.paused, vec![p]);
    let w = h.b.conns[&p].withheld.as_ref().unwrap();
    assert_eq!(w.deferred_acks.len(), 6);
    assert_eq!(w.deferred_bytes, 51);
    h.bytes(p, &Packet::PingReq);
    assert_eq!(
        h.take(p),
        vec![],
        "not read: its PINGREQ waits behind the 13th PUBLISH"
    );
    h.at(60_000); // not read, so not timed out
    h.drain();
    assert!(h.closed.is_empty());
    // The subscriber reads everything: the publisher resumes, its withheld PUBACKs go out in
    // order, then what it had sent is processed.
    let mut received = Vec::new();
    let mut to_p = Vec::new();
    for _ in 0..100 {
        if got.is_empty() {
            break;
        }
        for (c, x) in core::mem::take(&mut got) {
            match x {
                Pkt::Pub { pkid, payload, .. } if c == s => {
                    h.bytes(s, &Packet::PubAck(pkid));
                    received.push(String::from_utf8(payload).unwrap().parse::<u16>().unwrap());
                }
                x if c == p => to_p.push(x),
                x => panic!("{x:?}"),
            }
        }
        got = h.drain();
    }
    // Processing resumes, pausing it again on the 15th: PUBACKs stay in order, the PINGRESP
    // does not wait for them.
    let pings = to_p.iter().filter(|x| **x == Pkt::PingResp).count();
    to_p.retain(|x| *x != Pkt::PingResp);
    assert_eq!(pings, 1);
    assert_eq!(to_p, (7..=20).map(Pkt::PubAck).collect::<Vec<_>>());
    assert_eq!(received, (1..=20).collect::<Vec<_>>());
    assert!(h.paused.is_empty());
    assert!(h.closed.is_empty());
}

/// A paused publisher's QoS 0 is routed as usual within its budget, and dropped and counted past
/// it (rather than its socket left unread: its PINGREQ is still answered).
#[test]
fn a_paused_publishers_qos0_over_the_bound_is_dropped_and_counted() {
    let mut h = Harness::with(Config {
        max_inflight_messages: 1,
        max_queued_messages: 1,
        max_paused_input_bytes: 20,
        verbose: true,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("slow", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (fast, _) = h.connect("watch", true);
    h.subscribe(fast, &[("q0", QoS::AtMostOnce)]);
    let (p, _) = h.connect("pub", true);
    // 1 in flight, 1 queued, the 3rd pauses (8 bytes withheld).
    h.b.handle_bytes(h.now, p, &publishes(1..=3, QoS::AtLeastOnce));
    h.drain();
    assert!(held(&h, p));
    h.publish(p, "q0", "under", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(fast), vec![pubp("q0", "under", 0, 0)]);
    h.b.handle_bytes(h.now, p, &publishes(4..=5, QoS::AtLeastOnce)); // 24 bytes withheld >= 20
    h.drain();
    h.publish(p, "q0", "over", QoS::AtMostOnce, false, 0);
    h.bytes(p, &Packet::PingReq);
    let got = h.drain();
    assert_eq!(
        got,
        vec![(p, Pkt::PingResp)],
        "QoS 0 dropped, PINGREQ answered"
    );
    assert_eq!(h.b.stats().messages_dropped, 1);
    assert!(h.logs.iter().any(|l| l
        == "Dropped QoS 0 PUBLISH from pub to 'q0': paused for a slow subscriber, over \
            max_paused_input_bytes."));
    assert!(h.paused.is_empty());
}

#[test]
fn publishing_to_yourself_never_pauses_you() {
    let mut h = Harness::with(Config {
        max_inflight_messages: 1,
        max_queued_messages: 2,
        ..Config::for_tests()
    });
    let (me, _) = h.connect("loop", true);
    h.subscribe(me, &[("t", QoS::AtLeastOnce)]);
    h.b.handle_bytes(h.now, me, &publishes(1..=5, QoS::AtLeastOnce));
    let got = h.take(me);
    assert!(h.paused.is_empty());
    assert_eq!(
        got.iter().filter(|x| matches!(x, Pkt::PubAck(_))).count(),
        5
    );
    assert_eq!(h.b.stats().messages_dropped, 2); // 1 in flight + 2 queued kept, counted beyond
}

#[test]
fn qos0_to_a_backed_up_connection_is_dropped_and_counted() {
    let mut h = Harness::with(Config {
        max_outgoing_bytes: 100,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("slow", true);
    h.subscribe(s, &[("t", QoS::AtMostOnce)]);
    let (p, _) = h.connect("fast", true);
    let mut buf = Vec::new();
    for _ in 0..20 {
        h.publish(p, "t", "0123456789", QoS::AtMostOnce, false, 0);
        // The caller takes the bytes but the socket writes none of them.
        while h.b.poll_transmit(&mut buf).is_some() {
            buf.clear();
        }
    }
    // 15 bytes each: 7 fit under 100 unsent bytes (the 7th crosses it), the rest are dropped.
    assert_eq!(h.b.stats().messages_dropped, 13);
    h.b.handle_sent(h.now, s, 10_000);
    h.publish(p, "t", "again", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![pubp("t", "again", 0, 0)]);
}

#[test]
fn offline_overflow_shows_in_sys_messages_dropped() {
    let mut h = Harness::with(Config {
        max_queued_messages: 2,
        sys_interval: Duration::from_secs(1),
        verbose: true,
        ..Config::default()
    });
    let (s, _) = h.connect("offline", false);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    h.b.handle_closed(h.now, s);
    let (p, _) = h.connect("p", true);
    for i in 1..=5u16 {
        h.publish(p, "t", "x", QoS::AtLeastOnce, false, i);
    }
    h.drain();
    let drops = h
        .logs
        .iter()
        .filter(|l| *l == "Outgoing messages are being dropped for client offline.");
    assert_eq!(drops.count(), 3);
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("$SYS/broker/messages/dropped", QoS::AtMostOnce)]);
    h.at(1_000);
    let got = h.take(watch);
    assert_eq!(
        got,
        vec![Pkt::Pub {
            topic: "$SYS/broker/messages/dropped".into(),
            payload: "3".into(),
            qos: 0,
            dup: false,
            retain: false,
            pkid: 0
        }]
    );
}

#[test]
fn clients_connected_counts_takeovers_and_closes() {
    let mut h = Harness::new();
    let (a, _) = h.connect("a", true);
    h.connect("b", false);
    h.connect("c", true);
    h.connect("b", false); // takeover: still three clients
    assert_eq!(h.b.stats().clients_connected, 3);
    h.b.handle_closed(h.now, a);
    assert_eq!(h.b.stats().clients_connected, 2);
    assert_eq!(h.b.stats().clients_maximum, 3);
}

#[test]
fn a_client_that_does_not_read_is_not_read_either() {
    let mut h = Harness::with(Config {
        max_outgoing_bytes: 100,
        ..Config::for_tests()
    });
    let (c, _) = h.connect("deaf", true);
    let pings: Vec<u8> = [0xC0u8, 0x00].repeat(1_000);
    h.b.handle_bytes(h.now, c, &pings);
    // Take the bytes but write none: the PINGRESPs stop once 100 bytes are outstanding.
    let mut buf = Vec::new();
    let mut out = 0;
    while h.b.poll_transmit(&mut buf).is_some() {
        out += buf.len();
        buf.clear();
    }
    assert_eq!(out, 102, "51 PINGRESPs, then reading stops");
    while let Some(ev) = h.b.poll_event() {
        if let Event::PauseRead(x) = ev {
            h.paused.push(x);
        }
    }
    assert_eq!(h.paused, vec![c]);
    // Once the socket has written enough (42 of 100 left), reading resumes until it is full again.
    h.b.handle_sent(h.now, c, 60);
    let mut resumed = Vec::new();
    while h.b.poll_transmit(&mut buf).is_some() {
        resumed.push(buf.len());
        buf.clear();
    }
    assert_eq!(resumed, vec![60], "42 + 60 > 100");
    h.b.handle_sent(h.now, c, 10_000);
    let got = h.take(c); // a socket that writes everything: the rest flows
    assert_eq!(got.len(), 1_000 - 51 - 30);
    assert!(got.iter().all(|p| *p == Pkt::PingResp));
}

#[test]
fn connected_subscriber_pauses_publishers_at_a_few_windows_not_the_whole_queue() {
    // A queue bound of 1000 but a window of 2: the publisher is paused at 8 windows (16 messages),
    // since a longer queue for a connected client would only add latency.
    let (mut h, _s, p) = slow_setup(1000);
    h.b.handle_bytes(h.now, p, &publishes(1..=100, QoS::AtLeastOnce));
    let got = h.take(p);
    assert!(held(&h, p));
    let pause_at = limits::QUEUE_ONLINE_PAUSE_WINDOWS * 2;
    let acked = 2 + pause_at;
    assert_eq!(got, (1..=acked as u16).map(Pkt::PubAck).collect::<Vec<_>>());
    // This client ignores any window: the rest are kept and their PUBACKs withheld.
    assert_eq!(h.b.queued_messages("slow"), Some(98));
    assert_eq!(h.b.stats().messages_dropped, 0);
}

#[test]
fn assigned_client_ids_never_take_over_a_chosen_one() {
    let mut h = Harness::new();
    let (mine, _) = h.connect("auto-0000000000000001", true);
    let (c, got) = h.connect_with("", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    assert!(h.closed.is_empty(), "{mine} must not be taken over by {c}");
    assert_eq!(h.b.connection_count(), 2);
}

#[test]
fn clients_cannot_publish_to_sys_topics() {
    let mut h = Harness::with(Config {
        sys_interval: Duration::from_secs(10),
        verbose: true,
        ..Config::default()
    });
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("$SYS/#", QoS::AtMostOnce)]);
    let (p, _) = h.connect("spoof", true);
    h.publish(
        p,
        "$SYS/broker/uptime",
        "forever",
        QoS::AtLeastOnce,
        true,
        1,
    );
    let got = h.drain();
    assert_eq!(
        got,
        vec![(p, Pkt::PubAck(1))],
        "acknowledged, not delivered"
    );
    assert!(h
        .logs
        .iter()
        .any(|l| l
            == "Denied PUBLISH from spoof (d0, q1, r1, m1, '$SYS/broker/uptime', ... (7 bytes))"));
    let (late, _) = h.connect("late", true);
    let retained = h.subscribe(late, &[("$SYS/broker/uptime", QoS::AtMostOnce)]);
    assert!(retained
        .iter()
        .all(|x| !matches!(x, Pkt::Pub { payload, .. } if payload == b"forever")));
}

// ----- keep alive and connect timeout, to the microsecond -----

/// Moves the harness clock to `us` microseconds and fires due timers.
fn at_us(h: &mut Harness, us: u64) {
    h.now = Instant::from_micros(us);
    h.b.handle_timeout(h.now);
}

const TIMEOUT_LOG: &str = "Client esp has exceeded timeout, disconnecting.";

/// MQTT-3.1.2-24 with an odd keep alive and an odd start: the connection is closed at exactly
/// 1.5 x keep alive after the last packet, not a microsecond before, with the log line and the
/// will (QoS 1 to a QoS 1 watcher) going out in the same step.
#[test]
fn keepalive_close_at_exactly_one_and_a_half_times_with_log_and_will() {
    let mut h = Harness::new();
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("will/#", QoS::AtLeastOnce)]);
    let will = Will {
        topic: "will/esp",
        payload: b"timed out",
        qos: QoS::AtLeastOnce,
        retain: false,
    };
    let t0 = 1_234_567;
    h.now = Instant::from_micros(t0);
    let (esp, got) = h.connect_with("esp", true, 3, Some(will));
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    let deadline = t0 + 4_500_000;
    assert_eq!(h.b.poll_timeout(), Some(Instant::from_micros(deadline)));

    at_us(&mut h, deadline - 1);
    assert_eq!(h.drain(), vec![]);
    assert!(h.closed.is_empty());
    assert!(!h.logs.iter().any(|l| l == TIMEOUT_LOG));

    at_us(&mut h, deadline);
    let got = h.drain();
    assert_eq!(h.closed, vec![esp]);
    assert_eq!(
        got,
        vec![(
            watch,
            Pkt::Pub {
                topic: "will/esp".into(),
                payload: "timed out".into(),
                qos: 1,
                dup: false,
                retain: false,
                pkid: 1
            }
        )]
    );
    assert_eq!(h.logs.iter().filter(|l| *l == TIMEOUT_LOG).count(), 1);
    assert_eq!(h.b.connection_count(), 1);
}

/// Any packet restarts the keep-alive clock, not only PINGREQ: a PUBLISH at t moves the close to
/// exactly t + 1.5 x keep alive.
#[test]
fn any_packet_restarts_the_keepalive_clock() {
    let mut h = Harness::new();
    let (esp, _) = h.connect_with("esp", true, 2, None);
    let t = 2_999_999; // 1 us before the first deadline (0 + 3 s)
    h.now = Instant::from_micros(t);
    h.publish(esp, "ESP32/TEM", "26.70", QoS::AtMostOnce, false, 0);
    at_us(&mut h, 3_000_000);
    h.drain();
    assert!(h.closed.is_empty(), "closed at the old deadline");
    at_us(&mut h, t + 2_999_999);
    h.drain();
    assert!(h.closed.is_empty());
    at_us(&mut h, t + 3_000_000);
    h.drain();
    assert_eq!(h.closed, vec![esp]);
    assert!(h.logs.iter().any(|l| l == TIMEOUT_LOG));
}

/// A client that pings 1 us inside 1.5 x keep alive, a hundred times, is never closed; once it
/// stops, it is closed at exactly 1.5 x keep alive after its last PINGREQ.
#[test]
fn pings_inside_the_grace_keep_a_connection_open_indefinitely() {
    let mut h = Harness::new();
    let (esp, _) = h.connect_with("esp", true, 1, None);
    let mut last = 0;
    for _ in 0..100 {
        last += 1_499_999;
        at_us(&mut h, last);
        h.bytes(esp, &Packet::PingReq);
        assert_eq!(h.take(esp), vec![Pkt::PingResp]);
        assert!(h.closed.is_empty(), "closed at {last} us");
    }
    at_us(&mut h, last + 1_499_999);
    h.drain();
    assert!(h.closed.is_empty());
    at_us(&mut h, last + 1_500_000);
    h.drain();
    assert_eq!(h.closed, vec![esp]);
}

/// A socket that sends nothing is closed at exactly `connect_timeout` after it was accepted, not
/// a microsecond before, with a log line naming the socket; one whose CONNECT arrives 1 us
/// before the deadline is not closed (keep alive 0: never).
#[test]
fn connect_timeout_is_exact_to_the_microsecond() {
    let mut h = Harness::with(Config {
        connect_timeout: Duration::from_millis(250),
        verbose: true,
        ..Config::for_tests()
    });
    let t0 = 777;
    h.now = Instant::from_micros(t0);
    let silent = h.accept();
    let late = h.accept();
    assert_eq!(h.b.poll_timeout(), Some(Instant::from_micros(t0 + 250_000)));
    at_us(&mut h, t0 + 249_999);
    h.drain();
    assert!(h.closed.is_empty());
    h.bytes(
        late,
        &Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 0,
            client_id: "late",
            will: None,
            username: None,
            password: None,
        }),
    );
    assert_eq!(h.take(late), vec![Pkt::ConnAck(false, 0)]);

    at_us(&mut h, t0 + 250_000);
    h.drain();
    assert_eq!(h.closed, vec![silent]);
    assert_eq!(
        h.logs
            .iter()
            .filter(|l| l.contains("did not send CONNECT in time"))
            .collect::<Vec<_>>(),
        ["Client test did not send CONNECT in time, disconnecting."]
    );
    at_us(&mut h, 1_000_000_000);
    h.drain();
    assert_eq!(h.closed, vec![silent]);
    assert_eq!(h.b.connection_count(), 1);
}

// Users and ACLs (password_file, acl_file), on this file's harness.
mod conformance;
#[cfg(feature = "auth")]
mod security;

// ----- resends of a message whose acknowledgement is withheld -----

/// PUBLISHes `ids` again with DUP set (esp-mqtt's one-second resend), same payloads.
fn resends(ids: core::ops::RangeInclusive<u16>, qos: QoS) -> Vec<u8> {
    let mut v = publishes(ids, qos);
    // Set DUP on each (the fixed header's first byte) by re-encoding.
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < v.len() {
        let Decoded::Packet(Packet::Publish(mut p), n) =
            codec::decode(&v[pos..], usize::MAX).unwrap()
        else {
            unreachable!()
        };
        p.dup = true;
        encode_to_vec(&Packet::Publish(p), &mut out).unwrap();
        pos += n;
    }
    v.clear();
    out
}

#[test]
fn a_resend_of_a_withheld_qos1_publish_is_absorbed() {
    let (mut h, s, p) = slow_setup(10);
    h.b.handle_bytes(h.now, p, &publishes(1..=20, QoS::AtLeastOnce));
    h.drain();
    assert!(held(&h, p));
    assert_eq!(h.b.queued_messages("slow"), Some(18));
    // PUBACKs 13..=20 withheld: the client resends them every second, DUP or not.
    for round in 0..5 {
        let again = if round % 2 == 0 {
            resends(13..=20, QoS::AtLeastOnce)
        } else {
            publishes(13..=20, QoS::AtLeastOnce)
        };
        h.b.handle_bytes(h.now, p, &again);
        assert_eq!(h.take(p), vec![], "no PUBACK yet, none doubled");
    }
    assert_eq!(
        h.b.queued_messages("slow"),
        Some(18),
        "no second copy queued"
    );
    assert_eq!(h.b.stats().publish_received, 20 + 40);
    // A PUBLISH whose PUBACK went out already (12) is a new message: routed.
    h.b.handle_bytes(h.now, p, &publishes(12..=12, QoS::AtLeastOnce));
    h.drain();
    assert_eq!(h.b.queued_messages("slow"), Some(19));
    // Drain: every payload once (12 twice: it was sent twice after its PUBACK), PUBACKs once.
    let mut got: Vec<(ConnId, Pkt)> = Vec::new();
    let mut delivered = Vec::new();
    for _ in 0..100 {
        let pending: Vec<u16> =
            h.b.sessions
                .values()
                .find(|x| &*x.client_id == "slow")
                .map_or(Vec::new(), |x| x.inflight.iter().map(|f| f.pkid).collect());
        if pending.is_empty() {
            break;
        }
        for id in pending {
            h.bytes(s, &Packet::PubAck(id));
        }
        got.extend(h.drain());
    }
    for (c, x) in got {
        match x {
            Pkt::Pub { payload, .. } if c == s => {
                delivered.push(String::from_utf8(payload).unwrap())
            }
            Pkt::PubAck(id) if c == p => assert!(id >= 12),
            _ => {}
        }
    }
    // 1 and 2 went out before; 3..=20 once each, 12 a second time as the new message it was.
    let mut want: Vec<String> = (3..=20).map(|i: u16| i.to_string()).collect();
    want.push("12".into());
    assert_eq!(delivered, want);
}

#[test]
fn a_resend_of_a_withheld_qos2_publish_gets_one_pubrec() {
    let (mut h, s, p) = slow_setup(4);
    h.b.handle_bytes(h.now, p, &publishes(1..=7, QoS::ExactlyOnce));
    h.drain();
    assert!(held(&h, p));
    let queued = h.b.queued_messages("slow");
    for _ in 0..3 {
        h.b.handle_bytes(h.now, p, &resends(7..=7, QoS::ExactlyOnce));
        assert_eq!(h.take(p), vec![]);
    }
    assert_eq!(h.b.queued_messages("slow"), queued, "no second copy queued");
    for id in 1..=3 {
        h.bytes(s, &Packet::PubAck(id));
    }
    assert_eq!(
        h.take(p),
        vec![Pkt::PubRec(7)],
        "one PUBREC for four copies"
    );
    // After its PUBREC, a resend is answered again (PUBREC pending its PUBREL), not delivered.
    h.b.handle_bytes(h.now, p, &resends(7..=7, QoS::ExactlyOnce));
    assert_eq!(h.take(p), vec![Pkt::PubRec(7)]);
}

proptest::proptest! {
    /// However a paused publisher interleaves new messages with resends of those whose
    /// acknowledgement is withheld, the subscriber gets each message once (a client never reuses
    /// an id before its acknowledgement), and each id is acknowledged once per new message.
    #[test]
    fn resends_under_backpressure_never_duplicate(
        ops in proptest::collection::vec((0u8..4, 0u8..3), 1..120),
    ) {
        let (mut h, s, p) = slow_setup(3);
        let mut next: u16 = 1;
        let mut unacked: Vec<u16> = Vec::new();
        let mut delivered: Vec<String> = Vec::new();
        let mut acks = 0usize;
        for (op, k) in ops {
            match op {
                // A new message, if the client's window (4) allows.
                0 | 1 if unacked.len() < 4 => {
                    h.b.handle_bytes(h.now, p, &publishes(next..=next, QoS::AtLeastOnce));
                    unacked.push(next);
                    next += 1;
                }
                // The client resends what it has unacknowledged.
                0..=2 => {
                    for &id in &unacked {
                        h.b.handle_bytes(h.now, p, &resends(id..=id, QoS::AtLeastOnce));
                    }
                }
                // The subscriber acknowledges up to k + 1 of what it has in flight.
                _ => {
                    let ids: Vec<u16> = h.b.sessions.values()
                        .find(|x| &*x.client_id == "slow")
                        .map_or(Vec::new(), |x| x.inflight.iter().map(|f| f.pkid).collect());
                    for id in ids.into_iter().take(usize::from(k) + 1) {
                        h.bytes(s, &Packet::PubAck(id));
                    }
                }
            }
            for (c, x) in h.drain() {
                match x {
                    Pkt::Pub { payload, .. } if c == s => {
                        delivered.push(String::from_utf8(payload).unwrap())
                    }
                    Pkt::PubAck(id) if c == p => {
                        acks += 1;
                        unacked.retain(|&u| u != id);
                    }
                    _ => {}
                }
            }
        }
        let mut unique = delivered.clone();
        unique.sort();
        unique.dedup();
        proptest::prop_assert_eq!(unique.len(), delivered.len(), "{:?}", delivered);
        proptest::prop_assert_eq!(acks, usize::from(next - 1) - unacked.len());
    }
}

/// What an idle client costs in the broker's two records (each one allocation, boxed in its
/// map): kept under the glibc chunk sizes they were brought to for issue 25 (a malloc chunk is
/// the request plus 8 bytes, rounded up to 16).
#[test]
fn idle_client_records_are_small() {
    let conn = core::mem::size_of::<super::Conn>();
    let session = core::mem::size_of::<super::session::Session>();
    let peer = core::mem::size_of::<super::peer::Peer>();
    let rx = core::mem::size_of::<crate::codec::FrameBuffer>();
    std::eprintln!("conn {conn} bytes (peer {peer}, rx {rx}), session {session} bytes");
    assert!(conn <= 200, "connection record {conn} bytes");
    assert!(session <= 152, "session record {session} bytes");
}
