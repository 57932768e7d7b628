//! The client alone, fed byte vectors: each test names the MQTT 3.1.1 statement or the contract
//! rule it checks.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::codec::{encode_to_vec, DecodeError, EncodeError, Oversized, UnsubAck};
use crate::driver::drain;

pub(super) use crate::test_util::{decode_all, Pkt};

pub(super) fn pubp(topic: &str, payload: &str, qos: u8, pkid: u16, dup: bool) -> Pkt {
    Pkt::Pub {
        topic: topic.into(),
        payload: payload.into(),
        qos,
        dup,
        retain: false,
        pkid,
    }
}

fn enc(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode_to_vec(p, &mut v).unwrap();
    v
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn connack(session_present: bool, code: ConnectReturnCode) -> Vec<u8> {
    enc(&Packet::ConnAck(ConnAck {
        session_present,
        code,
    }))
}

fn publish(topic: &str, payload: &[u8], qos: QoS, pkid: u16, dup: bool) -> Vec<u8> {
    enc(&Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic,
        pkid,
        payload,
    }))
}

fn q(n: u8) -> QoS {
    QoS::from_u8(n).unwrap()
}

/// Test driver around one client: drains outputs after every input, as the contract asks.
struct ClientHarness {
    c: Client,
    now: Instant,
    /// Bytes sent since the last `sent()`.
    tx: Vec<u8>,
    /// Events since the last `events()`.
    ev: Vec<Event>,
}

impl ClientHarness {
    fn new(config: ClientConfig) -> ClientHarness {
        ClientHarness {
            c: Client::new(config, Instant::ZERO).unwrap(),
            now: Instant::ZERO,
            tx: Vec::new(),
            ev: Vec::new(),
        }
    }
    fn cfg(id: &str, keep_alive_s: u16, clean: bool) -> ClientConfig {
        ClientConfig {
            keep_alive_s,
            clean_session: clean,
            ..ClientConfig::new(id)
        }
    }
    /// A client connected at t = 0 with its outputs drained.
    fn connected(config: ClientConfig) -> ClientHarness {
        let mut t = ClientHarness::new(config);
        t.c.handle_connected(t.now);
        t.drain();
        t.feed(&connack(false, ConnectReturnCode::Accepted));
        t.sent();
        assert_eq!(
            t.events(),
            vec![Event::Connected {
                session_present: false
            }]
        );
        t
    }
    fn drain(&mut self) {
        let (tx, ev) = (&mut self.tx, &mut self.ev);
        drain(&mut self.c, &mut Vec::new(), |out, buf| match out {
            Output::Transmit(()) => tx.extend_from_slice(buf),
            Output::Event(e) => ev.push(e),
            Output::Timeout(_) => {}
        });
    }
    fn at(&mut self, ms: u64) {
        self.now = at(ms);
        self.c.handle_timeout(self.now);
        self.drain();
    }
    fn feed(&mut self, bytes: &[u8]) {
        self.c.handle_bytes(self.now, bytes);
        self.drain();
    }
    fn sent(&mut self) -> Vec<Pkt> {
        decode_all(&core::mem::take(&mut self.tx))
    }
    fn events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.ev)
    }
    fn publish(&mut self, topic: &str, payload: &str, qos: u8) -> PublishId {
        let id = self
            .c
            .publish(self.now, topic, payload.as_bytes(), q(qos), false)
            .unwrap();
        self.drain();
        id
    }
    fn reconnect(&mut self, session_present: bool) {
        let live = matches!(
            self.c.state(),
            ConnectionState::Connecting | ConnectionState::Connected
        );
        self.c.handle_disconnected(self.now);
        self.drain();
        if live {
            assert_eq!(
                self.events(),
                vec![Event::ConnectionLost(LostReason::TransportClosed)]
            );
        }
        self.c.handle_connected(self.now);
        self.drain();
        assert!(matches!(self.sent()[..], [Pkt::Connect { .. }]));
        self.feed(&connack(session_present, ConnectReturnCode::Accepted));
    }
}

// ----- CONNECT / CONNACK -----

#[test]
fn connect_bytes_are_exact() {
    let mut c = Client::new(ClientHarness::cfg("esp32", 60, true), Instant::ZERO).unwrap();
    assert_eq!(
        c.poll_transmit(&mut Vec::new()),
        None,
        "nothing before a transport"
    );
    c.handle_connected(Instant::ZERO);
    let mut buf = Vec::new();
    assert_eq!(c.poll_transmit(&mut buf), Some(19));
    assert_eq!(
        buf,
        [
            0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x05,
            b'e', b's', b'p', b'3', b'2'
        ]
    );
    assert_eq!(c.state(), ConnectionState::Connecting);
}

#[test]
fn connect_carries_will_and_credentials() {
    let config = ClientConfig {
        will: Some(LastWill {
            topic: "ESP32/status".into(),
            payload: b"offline".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("user".into()),
        password: Some(b"secret".to_vec()),
        ..ClientHarness::cfg("dev", 30, false)
    };
    let mut c = Client::new(config, Instant::ZERO).unwrap();
    c.handle_connected(Instant::ZERO);
    let mut buf = Vec::new();
    c.poll_transmit(&mut buf).unwrap();
    let expected = enc(&Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: false,
        keep_alive_s: 30,
        client_id: "dev",
        will: Some(Will {
            topic: "ESP32/status",
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("user"),
        password: Some(b"secret"),
    }));
    assert_eq!(buf, expected);
}

#[test]
fn new_rejects_configs_that_make_an_invalid_connect() {
    let bad_will = ClientConfig {
        will: Some(LastWill {
            topic: "a/#".into(),
            payload: Vec::new(),
            qos: QoS::AtMostOnce,
            retain: false,
        }),
        ..ClientConfig::new("x")
    };
    assert_eq!(
        Client::new(bad_will, Instant::ZERO).unwrap_err(),
        ClientError::InvalidTopicName
    );
    let pass_only = ClientConfig {
        password: Some(b"p".to_vec()),
        ..ClientConfig::new("x")
    };
    assert!(matches!(
        Client::new(pass_only, Instant::ZERO),
        Err(ClientError::InvalidConfig(_))
    ));
    let persistent_anonymous = ClientHarness::cfg("", 0, false);
    assert!(matches!(
        Client::new(persistent_anonymous, Instant::ZERO),
        Err(ClientError::InvalidConfig(_))
    ));
    let long_id = ClientConfig::new("x".repeat(70_000));
    assert!(matches!(
        Client::new(long_id, Instant::ZERO),
        Err(ClientError::Encode(EncodeError::FieldTooLong(_)))
    ));
    assert!(Client::new(ClientHarness::cfg("", 0, true), Instant::ZERO).is_ok());
}

#[test]
fn connack_accepted_connects() {
    let mut t = ClientHarness::new(ClientHarness::cfg("a", 0, true));
    t.c.handle_connected(t.now);
    t.drain();
    assert!(t.events().is_empty());
    assert!(!t.c.is_connected());
    t.feed(&connack(false, ConnectReturnCode::Accepted));
    assert!(t.c.is_connected());
    assert_eq!(
        t.events(),
        vec![Event::Connected {
            session_present: false
        }]
    );
}

#[test]
fn connack_refused_is_reported_once_and_closes() {
    let mut t = ClientHarness::new(ClientHarness::cfg("a", 10, true));
    t.c.handle_connected(t.now);
    t.drain();
    t.sent();
    // The refusal and a packet behind it in the same read: the rest is not looked at.
    let mut bytes = connack(false, ConnectReturnCode::NotAuthorized);
    bytes.extend(publish("t", b"x", QoS::AtMostOnce, 0, false));
    t.feed(&bytes);
    assert_eq!(
        t.events(),
        vec![Event::ConnectionRefused(ConnectReturnCode::NotAuthorized)]
    );
    assert_eq!(t.c.state(), ConnectionState::Closed);
    assert_eq!(t.c.poll_timeout(), None);
    t.c.handle_disconnected(t.now);
    t.drain();
    assert!(t.events().is_empty(), "the refusal is the only report");
    assert!(t.sent().is_empty());
}

#[test]
fn mqtt_3_2_0_1_first_packet_must_be_connack() {
    let mut t = ClientHarness::new(ClientHarness::cfg("a", 0, true));
    t.c.handle_connected(t.now);
    t.drain();
    t.feed(&publish("t", b"x", QoS::AtMostOnce, 0, false));
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::Protocol(
            ProtocolViolation::UnexpectedPacket("PUBLISH")
        ))]
    );
    assert_eq!(t.c.state(), ConnectionState::Closed);
}

#[test]
fn packets_a_server_never_sends_lose_the_connection() {
    let sub = [("a", QoS::AtMostOnce)];
    let unsub = ["a"];
    let cases: [(Packet<'_>, &str); 6] = [
        (
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted,
            }),
            "CONNACK",
        ),
        (Packet::PingReq, "PINGREQ"),
        (Packet::Disconnect, "DISCONNECT"),
        (
            Packet::Subscribe(Subscribe {
                pkid: 1,
                filters: SubscribeFilters::List(&sub),
            }),
            "SUBSCRIBE",
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                pkid: 1,
                topics: UnsubscribeTopics::List(&unsub),
            }),
            "UNSUBSCRIBE",
        ),
        (
            Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: true,
                keep_alive_s: 0,
                client_id: "b",
                will: None,
                username: None,
                password: None,
            }),
            "CONNECT",
        ),
    ];
    for (p, name) in cases {
        let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
        t.feed(&enc(&p));
        assert_eq!(
            t.events(),
            vec![Event::ConnectionLost(LostReason::Protocol(
                ProtocolViolation::UnexpectedPacket(name)
            ))],
            "{name}"
        );
    }
}

#[test]
fn mqtt_3_2_2_1_session_present_with_clean_session_is_an_error() {
    let mut t = ClientHarness::new(ClientHarness::cfg("a", 0, true));
    t.c.handle_connected(t.now);
    t.drain();
    t.feed(&connack(true, ConnectReturnCode::Accepted));
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::Protocol(
            ProtocolViolation::SessionPresentWithCleanSession
        ))]
    );
}

#[test]
fn connack_timeout() {
    let mut t = ClientHarness::new(ClientConfig {
        connect_timeout: Duration::from_secs(5),
        ..ClientHarness::cfg("a", 60, true)
    });
    t.c.handle_connected(t.now);
    t.drain();
    assert_eq!(t.c.poll_timeout(), Some(at(5_000)));
    t.at(4_999);
    assert!(t.events().is_empty());
    t.at(5_000);
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::ConnAckTimeout)]
    );
    assert_eq!(t.c.poll_timeout(), None);
}

// ----- hostile and split input -----

#[test]
fn decode_error_loses_the_connection_and_nothing_follows() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, true));
    let mut bytes = vec![0xF0, 0x00]; // reserved packet type 15
    bytes.extend(publish("t", b"x", QoS::AtLeastOnce, 1, false));
    t.feed(&bytes);
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::Decode(
            DecodeError::ReservedPacketType(15)
        ))]
    );
    assert!(t.sent().is_empty());
    // Nothing further: more bytes, timers, and commands stay quiet on this transport.
    t.feed(&publish("t", b"x", QoS::AtLeastOnce, 2, false));
    assert_eq!(t.c.poll_timeout(), None);
    t.at(1_000_000);
    t.publish("t", "queued", 1);
    assert!(t.events().is_empty());
    assert!(t.sent().is_empty());
    assert_eq!(t.c.queued_messages(), 1);
}

#[test]
fn packet_over_the_limit_is_refused_from_its_header() {
    let mut t = ClientHarness::connected(ClientConfig {
        max_packet_bytes: 64,
        ..ClientHarness::cfg("a", 0, true)
    });
    let big = publish("t", &[7u8; 100], QoS::AtMostOnce, 0, false);
    t.feed(&big[..2]); // fixed header only
    assert!(matches!(
        t.events()[..],
        [Event::ConnectionLost(LostReason::Decode(
            DecodeError::PacketTooLarge { max: 64, .. }
        ))]
    ));
}

/// One stream from the broker covering every packet type the client handles.
fn broker_stream() -> Vec<u8> {
    let mut s = connack(false, ConnectReturnCode::Accepted);
    s.extend(enc(&Packet::SubAck(SubAck {
        pkid: 1,
        codes: &[2],
    })));
    s.extend(publish("a/b", b"zero", QoS::AtMostOnce, 0, false));
    s.extend(publish("a/b", b"one", QoS::AtLeastOnce, 7, false));
    s.extend(publish("a/b", &[9u8; 300], QoS::ExactlyOnce, 8, false));
    s.extend(publish("a/b", &[9u8; 300], QoS::ExactlyOnce, 8, true));
    s.extend(enc(&Packet::PubRel(8)));
    // Requests took ids 1 and 2 at once; the messages get 3 and 4 when CONNACK lets them out.
    s.extend(enc(&Packet::PubAck(3)));
    s.extend(enc(&Packet::PubRec(4)));
    s.extend(enc(&Packet::PubComp(4)));
    s.extend(enc(&Packet::UnsubAck(UnsubAck { pkid: 2 })));
    s.extend(enc(&Packet::PingResp));
    s
}

/// Runs the stream through a fresh client in the given chunks; returns its bytes and events.
fn run_split(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Event>) {
    let mut t = ClientHarness::new(ClientHarness::cfg("a", 30, true));
    t.c.subscribe(t.now, &[("a/#", QoS::ExactlyOnce)]).unwrap();
    t.c.publish(t.now, "x", b"1", QoS::AtLeastOnce, false)
        .unwrap();
    t.c.publish(t.now, "x", b"2", QoS::ExactlyOnce, false)
        .unwrap();
    t.c.unsubscribe(t.now, &["old/#"]).unwrap();
    t.c.handle_connected(t.now);
    t.drain();
    for c in chunks {
        t.feed(c);
    }
    (core::mem::take(&mut t.tx), t.events())
}

#[test]
fn bytes_split_at_any_point_give_the_same_result() {
    let s = broker_stream();
    let (tx, ev) = run_split(&[&s]);
    // The reference run did everything: not a vacuous comparison.
    assert_eq!(ev.len(), 8, "{ev:?}");
    assert!(ev.contains(&Event::Published(PublishId(1))));
    assert!(ev.contains(&Event::Published(PublishId(2))));
    assert!(ev.contains(&Event::Unsubscribed(2)));
    for i in 0..=s.len() {
        let (a, b) = s.split_at(i);
        assert_eq!(run_split(&[a, b]), (tx.clone(), ev.clone()), "split at {i}");
    }
    let bytes: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(run_split(&bytes), (tx.clone(), ev.clone()), "byte by byte");
    let threes: Vec<&[u8]> = s.chunks(3).collect();
    assert_eq!(run_split(&threes), (tx, ev), "three at a time");
}

/// A small deterministic generator (xorshift64*), for hostile input without dependencies.
pub(super) struct Rng(u64);
impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn no_input_panics() {
    let valid = broker_stream();
    for seed in 1..300u64 {
        let mut r = Rng::new(seed);
        let mut t = ClientHarness::new(ClientConfig {
            max_inflight_messages: 3,
            max_queued_messages: 3,
            max_packet_bytes: 512,
            ..ClientHarness::cfg("fuzz", 5, seed % 2 == 0)
        });
        for _ in 0..60 {
            let step = r.below(10);
            t.now = t.now + Duration::from_millis(r.below(4_000));
            match step {
                0 => t.c.handle_connected(t.now),
                1 => t.c.handle_disconnected(t.now),
                2 => t.c.handle_timeout(t.now),
                3 => {
                    let _ =
                        t.c.publish(t.now, "f/t", b"p", q((r.below(3)) as u8), r.below(2) == 0);
                }
                4 => {
                    let _ = t.c.subscribe(t.now, &[("f/#", QoS::ExactlyOnce)]);
                }
                5 => {
                    // Valid packets, cut anywhere, possibly mangled.
                    let a = r.below(valid.len() as u64) as usize;
                    let b = a + r.below((valid.len() - a) as u64) as usize;
                    let mut chunk = valid[a..=b.min(valid.len() - 1)].to_vec();
                    if r.below(3) == 0 && !chunk.is_empty() {
                        let i = r.below(chunk.len() as u64) as usize;
                        chunk[i] = r.next() as u8;
                    }
                    t.c.handle_bytes(t.now, &chunk);
                }
                6 => {
                    let n = r.below(40) as usize;
                    let junk: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
                    t.c.handle_bytes(t.now, &junk);
                }
                7 => {
                    let id = (r.below(6) + 1) as u16;
                    let p = match r.below(5) {
                        0 => Packet::PubAck(id),
                        1 => Packet::PubRec(id),
                        2 => Packet::PubRel(id),
                        3 => Packet::PubComp(id),
                        _ => Packet::PingResp,
                    };
                    t.c.handle_bytes(t.now, &enc(&p));
                }
                8 => t.c.handle_bytes(
                    t.now,
                    &connack(r.below(2) == 0, ConnectReturnCode::Accepted),
                ),
                _ => t.c.disconnect(t.now),
            }
            // After a timeout the next one is in the future (no livelock for the caller).
            t.c.handle_timeout(t.now);
            t.drain();
            assert!(t.c.inflight_messages() <= 3);
            assert!(t.c.pending_requests() <= 3);
            if let Some(d) = t.c.poll_timeout() {
                assert!(d > t.now, "timer at {d:?} not after {:?}", t.now);
            }
            // Everything sent is well-formed MQTT.
            decode_all(&core::mem::take(&mut t.tx));
        }
    }
}

// ----- incoming messages -----

#[test]
fn incoming_qos0_and_qos1_are_delivered_and_qos1_acknowledged() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    t.feed(&publish("s/t", b"zero", QoS::AtMostOnce, 0, false));
    assert!(t.tx.is_empty(), "QoS 0 is not acknowledged");
    t.feed(&publish("s/t", b"one", QoS::AtLeastOnce, 7, false));
    assert_eq!(t.tx, [0x40, 0x02, 0x00, 0x07]);
    t.tx.clear();
    // A DUP re-send of a QoS 1 message is delivered again (at least once) and acknowledged.
    t.feed(&publish("s/t", b"one", QoS::AtLeastOnce, 7, true));
    assert_eq!(t.sent(), vec![Pkt::PubAck(7)]);
    let msg = |payload: &[u8], qos, dup| Event::Message {
        topic: "s/t".into(),
        payload: payload.to_vec(),
        qos,
        retain: false,
        dup,
    };
    assert_eq!(
        t.events(),
        vec![
            msg(b"zero", QoS::AtMostOnce, false),
            msg(b"one", QoS::AtLeastOnce, false),
            msg(b"one", QoS::AtLeastOnce, true),
        ]
    );
}

#[test]
fn mqtt_4_3_3_2_incoming_qos2_is_delivered_once_until_pubrel() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    t.feed(&publish("s", b"two", QoS::ExactlyOnce, 9, false));
    t.feed(&publish("s", b"two", QoS::ExactlyOnce, 9, true));
    assert_eq!(t.sent(), vec![Pkt::PubRec(9), Pkt::PubRec(9)]);
    assert_eq!(
        t.events().len(),
        1,
        "the duplicate is acknowledged, not delivered"
    );
    t.feed(&enc(&Packet::PubRel(9)));
    assert_eq!(t.sent(), vec![Pkt::PubComp(9)]);
    // Released: the identifier now names a new message.
    t.feed(&publish("s", b"again", QoS::ExactlyOnce, 9, false));
    assert_eq!(t.sent(), vec![Pkt::PubRec(9)]);
    assert!(matches!(&t.events()[..], [Event::Message { payload, .. }] if payload == b"again"));
    // PUBREL for an unknown id is still answered, so the broker can finish.
    t.feed(&enc(&Packet::PubRel(33)));
    assert_eq!(t.sent(), vec![Pkt::PubComp(33)]);
}

fn at_pubrel(max_held: usize) -> ClientHarness {
    ClientHarness::connected(ClientConfig {
        qos2_delivery: Qos2Delivery::AtPubrel,
        max_held_qos2_messages: max_held,
        ..ClientHarness::cfg("sub", 0, false)
    })
}

fn payloads(events: &[Event]) -> Vec<&[u8]> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { payload, .. } => Some(&payload[..]),
            _ => None,
        })
        .collect()
}

#[test]
fn qos2_at_pubrel_is_held_until_pubrel_and_delivered_once() {
    let mut t = at_pubrel(limits::QOS2_HELD_DEFAULT_MAX_MESSAGES);
    t.feed(&publish("s", b"two", QoS::ExactlyOnce, 9, false));
    assert_eq!(t.sent(), vec![Pkt::PubRec(9)]);
    assert_eq!(t.events(), vec![], "held, not delivered at PUBLISH");
    // A re-sent duplicate while held: acknowledged again, still held once.
    t.feed(&publish("s", b"two", QoS::ExactlyOnce, 9, true));
    assert_eq!(t.sent(), vec![Pkt::PubRec(9)]);
    assert_eq!(t.events(), vec![]);
    t.feed(&enc(&Packet::PubRel(9)));
    assert_eq!(t.sent(), vec![Pkt::PubComp(9)]);
    assert_eq!(
        t.events(),
        vec![Event::Message {
            topic: "s".into(),
            payload: b"two".to_vec(),
            qos: QoS::ExactlyOnce,
            retain: false,
            dup: false,
        }]
    );
    // A repeated PUBREL is answered and delivers nothing.
    t.feed(&enc(&Packet::PubRel(9)));
    assert_eq!(t.sent(), vec![Pkt::PubComp(9)]);
    assert_eq!(t.events(), vec![]);
    // QoS 0 and 1 are not held.
    t.feed(&publish("s", b"zero", QoS::AtMostOnce, 0, false));
    t.feed(&publish("s", b"one", QoS::AtLeastOnce, 3, false));
    assert_eq!(payloads(&t.events()), vec![&b"zero"[..], b"one"]);
}

#[test]
fn qos2_at_pubrel_past_the_bound_is_delivered_at_publish() {
    let mut t = at_pubrel(2);
    for (id, p) in [(1, b"a"), (2, b"b"), (3, b"c")] {
        t.feed(&publish("s", p, QoS::ExactlyOnce, id, false));
    }
    assert_eq!(
        payloads(&t.events()),
        vec![&b"c"[..]],
        "the third is over the bound"
    );
    // Its PUBREL delivers nothing more; the held ones come out in PUBREL order.
    for id in [3, 2, 1] {
        t.feed(&enc(&Packet::PubRel(id)));
    }
    assert_eq!(payloads(&t.events()), vec![&b"b"[..], b"a"]);
    // Released: room again.
    t.feed(&publish("s", b"d", QoS::ExactlyOnce, 4, false));
    assert_eq!(t.events(), vec![]);
}

#[test]
fn qos2_at_pubrel_held_across_a_resumed_session_and_forgotten_with_a_new_one() {
    let mut t = at_pubrel(limits::QOS2_HELD_DEFAULT_MAX_MESSAGES);
    t.feed(&publish("s", b"kept", QoS::ExactlyOnce, 5, false));
    t.sent();
    t.reconnect(true);
    t.events();
    // The broker re-sends the PUBREL on the resumed session (MQTT-4.4.0-1).
    t.feed(&enc(&Packet::PubRel(5)));
    assert_eq!(t.sent(), vec![Pkt::PubComp(5)]);
    assert_eq!(payloads(&t.events()), vec![&b"kept"[..]]);
    t.feed(&publish("s", b"gone", QoS::ExactlyOnce, 6, false));
    assert_eq!(t.sent(), vec![Pkt::PubRec(6)]);
    assert_eq!(t.events(), vec![]);
    t.reconnect(false);
    t.events();
    // That broker has no session: a PUBREL for the old identifier delivers nothing.
    t.feed(&enc(&Packet::PubRel(6)));
    assert_eq!(t.sent(), vec![Pkt::PubComp(6)]);
    assert_eq!(t.events(), vec![]);
}

// ----- outgoing messages -----

#[test]
fn qos0_publish_completes_when_handed_to_poll_transmit() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let id =
        t.c.publish(t.now, "ESP32/TEM", b"21.5", QoS::AtMostOnce, true)
            .unwrap();
    assert_eq!(t.c.poll_event(), None, "not before the bytes are taken");
    let mut buf = Vec::new();
    t.c.poll_transmit(&mut buf).unwrap();
    assert_eq!(t.c.poll_event(), Some(Event::Published(id)));
    assert_eq!(
        decode_all(&buf),
        vec![Pkt::Pub {
            topic: "ESP32/TEM".into(),
            payload: b"21.5".to_vec(),
            qos: 0,
            dup: false,
            retain: true,
            pkid: 0
        }]
    );
}

#[test]
fn qos1_publish_completes_on_puback() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let id = t.publish("t", "m", 1);
    assert_eq!(t.sent(), vec![pubp("t", "m", 1, 1, false)]);
    assert_eq!(t.c.inflight_messages(), 1);
    t.feed(&enc(&Packet::PubAck(2))); // unknown id: ignored
    t.feed(&enc(&Packet::PubComp(1))); // wrong acknowledgement for QoS 1: ignored
    t.feed(&enc(&Packet::PubRec(1))); // likewise
    assert!(t.events().is_empty());
    assert!(t.sent().is_empty());
    t.feed(&enc(&Packet::PubAck(1)));
    assert_eq!(t.events(), vec![Event::Published(id)]);
    assert_eq!(t.c.inflight_messages(), 0);
    t.feed(&enc(&Packet::PubAck(1))); // a second PUBACK completes nothing
    assert!(t.events().is_empty());
}

#[test]
fn qos2_publish_completes_on_pubcomp() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let id = t.publish("t", "m", 2);
    assert_eq!(t.sent(), vec![pubp("t", "m", 2, 1, false)]);
    t.feed(&enc(&Packet::PubAck(1))); // wrong acknowledgement for QoS 2: ignored
    t.feed(&enc(&Packet::PubComp(1))); // PUBCOMP before PUBREC: ignored
    assert!(t.events().is_empty());
    t.feed(&enc(&Packet::PubRec(1)));
    assert_eq!(t.sent(), vec![Pkt::PubRel(1)]);
    t.feed(&enc(&Packet::PubRec(1))); // repeated PUBREC: PUBREL again
    assert_eq!(t.sent(), vec![Pkt::PubRel(1)]);
    assert!(t.events().is_empty());
    t.feed(&enc(&Packet::PubComp(1)));
    assert_eq!(t.events(), vec![Event::Published(id)]);
    assert_eq!(t.c.inflight_messages(), 0);
}

#[test]
fn publish_validates_topic_and_size() {
    let mut t = ClientHarness::connected(ClientConfig {
        max_packet_bytes: 100,
        ..ClientHarness::cfg("a", 0, true)
    });
    for bad in ["", "a/+", "a/#", "a\0b"] {
        assert_eq!(
            t.c.publish(t.now, bad, b"x", QoS::AtLeastOnce, false),
            Err(ClientError::InvalidTopicName),
            "{bad:?}"
        );
    }
    // 2 fixed header + 2 + 1 topic + 2 pkid + 93 payload = 100 bytes: fits; one more does not.
    assert!(t
        .c
        .publish(t.now, "t", &[0; 93], QoS::AtLeastOnce, false)
        .is_ok());
    assert_eq!(
        t.c.publish(t.now, "t", &[0; 94], QoS::AtLeastOnce, false),
        Err(ClientError::PacketTooLarge {
            size: 101,
            max: 100
        })
    );
    t.drain();
    assert_eq!(t.sent().len(), 1, "refused publishes send nothing");
}

#[test]
fn window_full_then_queue_full_is_an_error_never_a_silent_loss() {
    let mut t = ClientHarness::connected(ClientConfig {
        max_inflight_messages: 2,
        max_queued_messages: 2,
        ..ClientHarness::cfg("a", 0, true)
    });
    let ids: Vec<PublishId> = (0..4).map(|i| t.publish("t", &i.to_string(), 1)).collect();
    assert_eq!(t.c.inflight_messages(), 2);
    assert_eq!(t.c.queued_messages(), 2);
    assert_eq!(
        t.c.publish(t.now, "t", b"4", QoS::AtLeastOnce, false),
        Err(ClientError::QueueFull)
    );
    // QoS 0 waits its turn behind them, so it is refused too.
    assert_eq!(
        t.c.publish(t.now, "t", b"q0", QoS::AtMostOnce, false),
        Err(ClientError::QueueFull)
    );
    assert_eq!(
        t.sent(),
        vec![pubp("t", "0", 1, 1, false), pubp("t", "1", 1, 2, false)]
    );
    // Acknowledgements open the window; the queue drains in order.
    t.feed(&enc(&Packet::PubAck(2)));
    assert_eq!(t.sent(), vec![pubp("t", "2", 1, 3, false)]);
    t.feed(&enc(&Packet::PubAck(1)));
    t.feed(&enc(&Packet::PubAck(3)));
    assert_eq!(t.sent(), vec![pubp("t", "3", 1, 4, false)]);
    t.feed(&enc(&Packet::PubAck(4)));
    assert_eq!(
        t.events(),
        vec![
            Event::Published(ids[1]),
            Event::Published(ids[0]),
            Event::Published(ids[2]),
            Event::Published(ids[3]),
        ]
    );
    assert!(t
        .c
        .publish(t.now, "t", b"q0", QoS::AtMostOnce, false)
        .is_ok());
}

#[test]
fn queue_of_zero_accepts_only_what_goes_out_at_once() {
    let mut t = ClientHarness::new(ClientConfig {
        max_inflight_messages: 1,
        max_queued_messages: 0,
        ..ClientHarness::cfg("a", 0, true)
    });
    assert_eq!(
        t.c.publish(t.now, "t", b"x", QoS::AtMostOnce, false),
        Err(ClientError::QueueFull),
        "not connected"
    );
    t.c.handle_connected(t.now);
    t.drain();
    t.feed(&connack(false, ConnectReturnCode::Accepted));
    t.publish("t", "x", 0);
    t.publish("t", "y", 1);
    assert_eq!(
        t.c.publish(t.now, "t", b"z", QoS::AtLeastOnce, false),
        Err(ClientError::QueueFull)
    );
}

#[test]
fn publishes_wait_for_connack_and_go_out_in_order() {
    let mut t = ClientHarness::new(ClientHarness::cfg("a", 0, true));
    let a = t.publish("t", "a", 0);
    let b = t.publish("t", "b", 1);
    let c = t.publish("t", "c", 0);
    assert!(t.sent().is_empty());
    t.c.handle_connected(t.now);
    t.drain();
    assert!(
        matches!(t.sent()[..], [Pkt::Connect { .. }]),
        "only CONNECT before CONNACK"
    );
    t.feed(&connack(false, ConnectReturnCode::Accepted));
    assert_eq!(
        t.sent(),
        vec![
            pubp("t", "a", 0, 0, false),
            pubp("t", "b", 1, 1, false),
            pubp("t", "c", 0, 0, false)
        ]
    );
    assert_eq!(
        t.events(),
        vec![
            Event::Connected {
                session_present: false
            },
            Event::Published(a),
            Event::Published(c)
        ]
    );
    t.feed(&enc(&Packet::PubAck(1)));
    assert_eq!(t.events(), vec![Event::Published(b)]);
}

#[test]
fn qos0_not_yet_transmitted_survives_a_lost_transport() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let id =
        t.c.publish(t.now, "t", b"x", QoS::AtMostOnce, false)
            .unwrap();
    // The transport dies before the caller took the bytes.
    t.c.handle_disconnected(t.now);
    t.drain();
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::TransportClosed)]
    );
    assert!(t.sent().is_empty());
    assert_eq!(t.c.queued_messages(), 1);
    t.reconnect(false);
    assert_eq!(t.sent(), vec![pubp("t", "x", 0, 0, false)]);
    assert_eq!(
        t.events(),
        vec![
            Event::Connected {
                session_present: false
            },
            Event::Published(id)
        ]
    );
}

/// In flight at the loss: QoS 1 (no PUBACK), QoS 2 (no PUBREC), QoS 2 (PUBREC, no PUBCOMP);
/// then one queued behind the window.
fn client_with_mixed_inflight(clean: bool) -> (ClientHarness, [PublishId; 4]) {
    let mut t = ClientHarness::connected(ClientConfig {
        max_inflight_messages: 3,
        ..ClientHarness::cfg("a", 0, clean)
    });
    let ids = [
        t.publish("t", "a", 1),
        t.publish("t", "b", 2),
        t.publish("t", "c", 2),
        t.publish("t", "d", 1),
    ];
    t.feed(&enc(&Packet::PubRec(3)));
    assert_eq!(
        t.sent(),
        vec![
            pubp("t", "a", 1, 1, false),
            pubp("t", "b", 2, 2, false),
            pubp("t", "c", 2, 3, false),
            Pkt::PubRel(3)
        ]
    );
    (t, ids)
}

#[test]
fn mqtt_4_4_0_1_persistent_session_resends_with_dup_and_original_ids_in_order() {
    let (mut t, ids) = client_with_mixed_inflight(false);
    t.feed(&publish("in", b"q2", QoS::ExactlyOnce, 5, false));
    assert_eq!(t.sent(), vec![Pkt::PubRec(5)]);
    t.events();
    t.reconnect(true);
    assert_eq!(
        t.sent(),
        vec![
            pubp("t", "a", 1, 1, true),
            pubp("t", "b", 2, 2, true),
            Pkt::PubRel(3),
        ]
    );
    assert_eq!(
        t.events(),
        vec![Event::Connected {
            session_present: true
        }]
    );
    // The incoming QoS 2 id is still held: the broker's DUP re-send is not delivered again.
    t.feed(&publish("in", b"q2", QoS::ExactlyOnce, 5, true));
    assert_eq!(t.sent(), vec![Pkt::PubRec(5)]);
    assert!(t.events().is_empty());
    // Completions free the window for the queued message.
    t.feed(&enc(&Packet::PubComp(3)));
    t.feed(&enc(&Packet::PubAck(1)));
    assert_eq!(t.sent(), vec![pubp("t", "d", 1, 4, false)]);
    assert_eq!(
        t.events(),
        vec![Event::Published(ids[2]), Event::Published(ids[0])]
    );
}

#[test]
fn clean_session_resends_inflight_as_new_and_completes_released_qos2() {
    for (clean, session_present) in [(true, false), (false, false)] {
        let (mut t, ids) = client_with_mixed_inflight(clean);
        t.feed(&publish("in", b"q2", QoS::ExactlyOnce, 5, false));
        t.sent();
        t.events();
        t.reconnect(session_present);
        // a and b again as new messages (DUP 0), then d; c's PUBREC had arrived: it is done.
        assert_eq!(
            t.sent(),
            vec![
                pubp("t", "a", 1, 4, false),
                pubp("t", "b", 2, 5, false),
                pubp("t", "d", 1, 6, false),
            ],
            "clean {clean}"
        );
        assert_eq!(
            t.events(),
            vec![
                Event::Connected {
                    session_present: false
                },
                Event::Published(ids[2])
            ]
        );
        // The new session's QoS 2 id 5 is a new message.
        t.feed(&publish("in", b"new", QoS::ExactlyOnce, 5, false));
        assert_eq!(
            t.events().len(),
            1,
            "delivered: the old state was discarded"
        );
        t.feed(&enc(&Packet::PubAck(4)));
        assert_eq!(t.events(), vec![Event::Published(ids[0])]);
    }
}

#[test]
fn packet_ids_wrap_and_skip_ids_in_use() {
    let mut t = ClientHarness::connected(ClientConfig {
        max_inflight_messages: 2,
        ..ClientHarness::cfg("a", 0, true)
    });
    t.publish("t", "stuck", 1); // pkid 1, never acknowledged
    t.sent();
    let mut seen_max = false;
    for i in 0..70_000u32 {
        t.publish("t", "x", 1);
        let pkid = match &t.sent()[..] {
            [Pkt::Pub { pkid, .. }] => *pkid,
            other => panic!("{other:?}"),
        };
        assert!(pkid != 0 && pkid != 1, "iteration {i}: pkid {pkid}");
        seen_max |= pkid == u16::MAX;
        t.feed(&enc(&Packet::PubAck(pkid)));
        t.events();
    }
    assert!(seen_max, "wrapped around");
}

// ----- SUBSCRIBE / UNSUBSCRIBE -----

#[test]
fn subscribe_and_unsubscribe_round_trip() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let pkid =
        t.c.subscribe(
            t.now,
            &[("a/+", QoS::AtLeastOnce), ("b/#", QoS::ExactlyOnce)],
        )
        .unwrap();
    t.drain();
    assert_eq!(
        t.sent(),
        vec![Pkt::Sub(pkid, vec![("a/+".into(), 1), ("b/#".into(), 2)])]
    );
    t.feed(&enc(&Packet::SubAck(SubAck {
        pkid,
        codes: &[1, 0x80],
    })));
    assert_eq!(
        t.events(),
        vec![Event::Subscribed {
            pkid,
            granted: vec![Some(QoS::AtLeastOnce), None]
        }]
    );
    let u = t.c.unsubscribe(t.now, &["a/+"]).unwrap();
    t.drain();
    assert_eq!(t.sent(), vec![Pkt::Unsub(u, vec!["a/+".into()])]);
    t.feed(&enc(&Packet::SubAck(SubAck {
        pkid: u,
        codes: &[0],
    }))); // wrong kind: ignored
    assert!(t.events().is_empty());
    t.feed(&enc(&Packet::UnsubAck(UnsubAck { pkid: u })));
    assert_eq!(t.events(), vec![Event::Unsubscribed(u)]);
    assert_eq!(t.c.pending_requests(), 0);
}

#[test]
fn subscribe_validation_and_bounds() {
    let mut t = ClientHarness::connected(ClientConfig {
        max_inflight_messages: 2,
        ..ClientHarness::cfg("a", 0, true)
    });
    assert_eq!(t.c.subscribe(t.now, &[]), Err(ClientError::NoTopicFilters));
    assert_eq!(
        t.c.subscribe(t.now, &[("a/#/b", QoS::AtMostOnce)]),
        Err(ClientError::InvalidTopicFilter)
    );
    assert_eq!(
        t.c.unsubscribe(t.now, &["ok", "a+"]),
        Err(ClientError::InvalidTopicFilter)
    );
    let many: Vec<(&str, QoS)> = vec![("x", QoS::AtMostOnce); limits::SUBSCRIBE_FILTERS_MAX + 1];
    assert_eq!(
        t.c.subscribe(t.now, &many),
        Err(ClientError::TooManyTopicFilters(
            limits::SUBSCRIBE_FILTERS_MAX + 1
        ))
    );
    t.c.subscribe(t.now, &[("a", QoS::AtMostOnce)]).unwrap();
    t.c.unsubscribe(t.now, &["a"]).unwrap();
    assert_eq!(
        t.c.subscribe(t.now, &[("b", QoS::AtMostOnce)]),
        Err(ClientError::TooManyRequests)
    );
    t.drain();
    assert_eq!(t.sent().len(), 2);
}

#[test]
fn mqtt_3_9_3_1_suback_must_answer_every_filter() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let pkid =
        t.c.subscribe(t.now, &[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)])
            .unwrap();
    t.drain();
    t.feed(&enc(&Packet::SubAck(SubAck { pkid, codes: &[0] })));
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::Protocol(
            ProtocolViolation::SubAckCodeCount {
                expected: 2,
                got: 1
            }
        ))]
    );
}

#[test]
fn unacknowledged_requests_are_resent_after_reconnect() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    let s = t.c.subscribe(t.now, &[("a", QoS::AtLeastOnce)]).unwrap();
    let u = t.c.unsubscribe(t.now, &["b"]).unwrap();
    t.drain();
    assert_eq!(t.sent().len(), 2);
    t.reconnect(false);
    assert_eq!(
        t.sent(),
        vec![
            Pkt::Sub(s, vec![("a".into(), 1)]),
            Pkt::Unsub(u, vec!["b".into()])
        ]
    );
    t.feed(&enc(&Packet::SubAck(SubAck {
        pkid: s,
        codes: &[1],
    })));
    assert!(t.events().contains(&Event::Subscribed {
        pkid: s,
        granted: vec![Some(QoS::AtLeastOnce)]
    }));
}

// ----- keep alive, timers, transport -----

#[test]
fn keep_alive_pings_and_times_out() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, true));
    assert_eq!(t.c.poll_timeout(), Some(at(10_000)));
    t.at(9_999); // spurious: nothing
    assert!(t.sent().is_empty());
    t.at(10_000);
    assert_eq!(t.sent(), vec![Pkt::PingReq]);
    assert_eq!(t.c.poll_timeout(), Some(at(20_000)), "PINGRESP deadline");
    t.at(10_000); // spurious again
    assert!(t.sent().is_empty());
    t.now = at(12_000);
    t.feed(&enc(&Packet::PingResp));
    // Next ping: keep alive after the older of last sent (10 s) and last received (12 s).
    assert_eq!(t.c.poll_timeout(), Some(at(20_000)));
    t.at(20_000);
    assert_eq!(t.sent(), vec![Pkt::PingReq]);
    t.at(29_999);
    assert!(t.events().is_empty());
    t.at(30_000);
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::KeepAliveTimeout)]
    );
    assert_eq!(t.c.poll_timeout(), None);
    t.at(100_000);
    assert!(t.sent().is_empty() && t.events().is_empty());
}

#[test]
fn any_packet_answers_a_ping() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, true));
    t.at(10_000);
    assert_eq!(t.sent(), vec![Pkt::PingReq]);
    t.now = at(15_000);
    t.feed(&publish("t", b"x", QoS::AtMostOnce, 0, false));
    t.at(20_000);
    assert_eq!(t.sent(), vec![Pkt::PingReq], "pinging on, not lost");
    assert!(!t
        .events()
        .iter()
        .any(|e| matches!(e, Event::ConnectionLost(_))));
}

#[test]
fn a_client_that_only_sends_still_pings() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, true));
    for s in 1..=9 {
        t.now = at(s * 1_000);
        t.publish("t", "x", 0);
    }
    t.sent();
    // Sent 1 s ago, but nothing received for 10 s: ping.
    t.at(10_000);
    assert_eq!(t.sent(), vec![Pkt::PingReq]);
    t.at(20_000);
    assert_eq!(
        t.events().last(),
        Some(&Event::ConnectionLost(LostReason::KeepAliveTimeout))
    );
}

#[test]
fn keep_alive_zero_means_no_timer() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    assert_eq!(t.c.poll_timeout(), None);
    t.at(1_000_000_000);
    assert!(t.sent().is_empty() && t.events().is_empty());
}

#[test]
fn time_going_backwards_counts_as_the_newest() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, true));
    t.at(10_000);
    assert_eq!(t.sent(), vec![Pkt::PingReq]);
    t.at(5_000); // older: treated as 10 s
    assert!(t.sent().is_empty() && t.events().is_empty());
    assert_eq!(t.c.poll_timeout(), Some(at(20_000)));
}

#[test]
fn transport_loss_is_reported_once() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, true));
    t.c.handle_disconnected(t.now);
    t.c.handle_disconnected(t.now);
    t.drain();
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::TransportClosed)]
    );
    assert_eq!(t.c.state(), ConnectionState::Disconnected);
    assert_eq!(t.c.poll_timeout(), None);
    // A new transport while the old one is up counts as the old one closing.
    t.c.handle_connected(t.now);
    t.c.handle_connected(t.now);
    t.drain();
    assert_eq!(
        t.events(),
        vec![Event::ConnectionLost(LostReason::TransportClosed)]
    );
    assert_eq!(t.sent().len(), 1, "one CONNECT: the first was discarded");
}

#[test]
fn disconnect_sends_disconnect_and_finishes() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 10, false));
    t.publish("t", "m", 1);
    t.sent();
    t.c.disconnect(t.now);
    t.drain();
    assert_eq!(t.sent(), vec![Pkt::Disconnect]);
    assert_eq!(t.c.state(), ConnectionState::Closed);
    assert_eq!(t.c.poll_timeout(), None);
    t.c.disconnect(t.now); // once only
    t.c.handle_disconnected(t.now);
    t.drain();
    assert!(t.sent().is_empty());
    assert!(t.events().is_empty(), "a chosen disconnect is not a loss");
    assert_eq!(t.c.inflight_messages(), 1, "kept for the next session");
    t.reconnect(true);
    assert_eq!(t.sent(), vec![pubp("t", "m", 1, 1, true)]);
}

/// esp-mqtt's behaviour: while connected, an unacknowledged QoS 1/2 PUBLISH goes again with DUP
/// every `resend_interval`, and a PUBREL too once PUBREC arrived.
#[test]
fn resend_interval_repeats_publish_with_dup_and_pubrel_while_connected() {
    let mut t = ClientHarness::connected(ClientConfig {
        resend_interval: Duration::from_millis(1_000),
        ..ClientHarness::cfg("esp", 0, true)
    });
    t.publish("t", "a", 1);
    assert_eq!(t.sent(), vec![pubp("t", "a", 1, 1, false)]);
    assert_eq!(t.c.poll_timeout(), Some(at(1_000)));
    t.at(999);
    assert!(t.sent().is_empty(), "not before the interval");
    t.at(1_000);
    assert_eq!(t.sent(), vec![pubp("t", "a", 1, 1, true)]);
    t.at(2_000);
    assert_eq!(t.sent(), vec![pubp("t", "a", 1, 1, true)]);
    t.feed(&enc(&Packet::PubAck(1)));
    t.events();
    t.at(5_000);
    assert!(t.sent().is_empty(), "acknowledged: nothing more");
    assert_eq!(t.c.poll_timeout(), None);

    t.publish("t", "b", 2);
    t.sent();
    t.feed(&enc(&Packet::PubRec(2)));
    assert_eq!(t.sent(), vec![Pkt::PubRel(2)]);
    t.at(6_000);
    assert_eq!(
        t.sent(),
        vec![Pkt::PubRel(2)],
        "PUBREL again, not the PUBLISH"
    );
}

/// Without `resend_interval` (MQTT 3.1.1's rule) nothing is re-sent on a live connection.
#[test]
fn no_resend_on_a_live_connection_by_default() {
    let mut t = ClientHarness::connected(ClientHarness::cfg("a", 0, true));
    t.publish("t", "a", 1);
    t.sent();
    assert_eq!(t.c.poll_timeout(), None);
    t.at(60_000);
    assert!(t.sent().is_empty());
}

/// esp-mqtt's outbox: a QoS 1/2 message not acknowledged `outbox_expiry` after it was accepted
/// is deleted (in flight or still queued), only while connected, and reported.
#[test]
fn outbox_expiry_deletes_unacknowledged_messages_while_connected() {
    let mut t = ClientHarness::connected(ClientConfig {
        outbox_expiry: Duration::from_millis(30_000),
        max_inflight_messages: 1,
        ..ClientHarness::cfg("esp", 0, true)
    });
    let a = t.publish("t", "a", 1); // in flight
    t.at(10_000);
    let b = t.publish("t", "b", 1); // queued behind the window
    let q0 = t.publish("t", "z", 0);
    t.sent();
    assert_eq!(t.events(), vec![], "QoS 0 waits behind the window too");
    assert_eq!(t.c.poll_timeout(), Some(at(30_000)));
    t.at(29_999);
    assert!(t.events().is_empty());
    t.at(30_000);
    // `a` goes; `b` takes the window (a fresh id), then QoS 0 `z` follows it.
    assert_eq!(t.events(), vec![Event::Expired(a), Event::Published(q0)]);
    assert_eq!(
        t.sent(),
        vec![pubp("t", "b", 1, 2, false), pubp("t", "z", 0, 0, false)]
    );
    // Disconnected, nothing expires; back online, `b` (accepted at 10 s) expires at once.
    t.c.handle_disconnected(t.now);
    t.drain();
    t.events();
    t.at(60_000);
    assert!(t.events().is_empty(), "expiry waits for a connection");
    t.c.handle_connected(t.now);
    t.drain();
    t.feed(&connack(false, ConnectReturnCode::Accepted));
    t.at(60_000);
    assert!(t.events().contains(&Event::Expired(b)), "{:?}", t.ev);
}

/// PubSubClient's fixed buffer: a packet over it is read and skipped, the connection kept.
#[test]
fn oversized_inbound_can_be_dropped_instead_of_losing_the_connection() {
    let mut t = ClientHarness::connected(ClientConfig {
        max_packet_bytes: 256,
        oversized_inbound: Oversized::Drop,
        ..ClientHarness::cfg("pubsub", 0, true)
    });
    let big = "x".repeat(300);
    let mut bytes = enc(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload: big.as_bytes(),
    }));
    bytes.extend(enc(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload: b"small",
    })));
    for chunk in bytes.chunks(7) {
        t.feed(chunk);
    }
    let events = t.events();
    assert_eq!(events[0], Event::InboundDropped { bytes: 306 });
    assert!(matches!(&events[1], Event::Message { payload, .. } if payload == b"small"));
    assert!(t.c.is_connected());
}

// The client against the real broker over MemNet.
mod pair;
