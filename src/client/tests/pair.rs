//! The client against the real [`crate::broker::Broker`] in memory and in virtual time, through the public
//! in-memory driver ([`crate::driver::mem::MemNet`]): QoS flows end to end, lost packets of one
//! type, partitions, reconnects. [`PairExt`] adds the assertions these tests share.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::broker;
use crate::driver::mem::{Dir, Loss, MemNet, Record};

type Pair = MemNet;

fn broker_config() -> broker::Config {
    broker::Config::for_tests()
}

fn cfg(id: &str, keep_alive_s: u16, clean: bool) -> ClientConfig {
    ClientConfig {
        keep_alive_s,
        clean_session: clean,
        ..ClientConfig::new(id)
    }
}

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1_000)
}

fn new_pair() -> Pair {
    MemNet::new(broker_config(), Instant::ZERO).unwrap()
}

fn pair_with(config: broker::Config) -> Pair {
    MemNet::new(config, Instant::ZERO).unwrap()
}

/// Test shorthands over [`MemNet`]: every call steps, and a failure panics.
trait PairExt {
    fn add(&mut self, config: ClientConfig) -> usize;
    fn open(&mut self, i: usize);
    fn sever(&mut self, i: usize);
    fn publish(&mut self, i: usize, topic: &str, payload: &str, qos: u8) -> PublishId;
    fn subscribe(&mut self, i: usize, filter: &str, qos: u8);
    fn settle(&mut self);
    fn drive_until(&mut self, until: Instant);
    fn events(&self, i: usize) -> Vec<Event>;
    fn messages(&self, i: usize) -> Vec<(String, bool)>;
    fn payloads(&self, i: usize) -> Vec<String>;
    fn published(&self, i: usize) -> Vec<PublishId>;
    fn lost(&self, i: usize) -> Vec<(Instant, LostReason)>;
    fn packets(&self, i: usize, dir: Dir, from: usize) -> Vec<Pkt>;
}

impl PairExt for MemNet {
    fn add(&mut self, config: ClientConfig) -> usize {
        self.add_client(config).unwrap()
    }
    fn open(&mut self, i: usize) {
        assert!(
            MemNet::connect(self, i).unwrap(),
            "the broker took the socket"
        );
    }
    fn sever(&mut self, i: usize) {
        MemNet::cut(self, i).unwrap();
    }
    fn publish(&mut self, i: usize, topic: &str, payload: &str, qos: u8) -> PublishId {
        let id = self.nodes[i]
            .client
            .publish(
                self.now,
                topic,
                payload.as_bytes(),
                QoS::from_u8(qos).unwrap(),
                false,
            )
            .unwrap();
        self.settle();
        id
    }
    fn subscribe(&mut self, i: usize, filter: &str, qos: u8) {
        let pkid = self.nodes[i]
            .client
            .subscribe(self.now, &[(filter, QoS::from_u8(qos).unwrap())])
            .unwrap();
        self.settle();
        let granted = vec![QoS::from_u8(qos)];
        assert!(
            self.events(i)
                .contains(&Event::Subscribed { pkid, granted }),
            "SUBACK for {filter}"
        );
    }
    fn settle(&mut self) {
        MemNet::step(self).unwrap();
    }
    fn drive_until(&mut self, until: Instant) {
        self.run_until(until).unwrap();
    }
    fn events(&self, i: usize) -> Vec<Event> {
        self.nodes[i]
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
    /// Payloads delivered to node `i`, with their DUP flag.
    fn messages(&self, i: usize) -> Vec<(String, bool)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Message { payload, dup, .. } => {
                    Some((String::from_utf8(payload.clone()).unwrap(), *dup))
                }
                _ => None,
            })
            .collect()
    }
    fn payloads(&self, i: usize) -> Vec<String> {
        self.messages(i).into_iter().map(|(p, _)| p).collect()
    }
    fn published(&self, i: usize) -> Vec<PublishId> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Published(id) => Some(*id),
                _ => None,
            })
            .collect()
    }
    fn lost(&self, i: usize) -> Vec<(Instant, LostReason)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::ConnectionLost(r) => Some((*t, *r)),
                _ => None,
            })
            .collect()
    }
    /// Packets node `i` sent (`Up`) or was sent (`Down`), lost ones included, from index `from`
    /// of the trace.
    fn packets(&self, i: usize, dir: Dir, from: usize) -> Vec<Pkt> {
        let mut out = Vec::new();
        for r in &self.trace[from..] {
            if r.node == i && r.dir == dir {
                out.extend(decode_all(&r.bytes));
            }
        }
        out
    }
}

fn connected(session_present: bool) -> Event {
    Event::Connected { session_present }
}

// ----- tests -----

#[test]
fn pair_connects() {
    let mut p = new_pair();
    let a = p.add(cfg("esp32", 60, true));
    p.open(a);
    assert_eq!(p.events(a), vec![connected(false)]);
    assert!(p.nodes[a].client.is_connected());
    assert_eq!(p.broker.connection_count(), 1);
    assert!(matches!(
        p.packets(a, Dir::Up, 0)[..],
        [Pkt::Connect { .. }]
    ));
    assert_eq!(p.packets(a, Dir::Down, 0), vec![Pkt::ConnAck(false, 0)]);
}

#[test]
fn pair_qos_0_1_2_publish_and_subscribe_end_to_end() {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, true));
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t/#", 2);
    let ids = [
        p.publish(publ, "t/0", "zero", 0),
        p.publish(publ, "t/1", "one", 1),
        p.publish(publ, "t/2", "two", 2),
    ];
    let got: Vec<(String, QoS)> = p
        .events(sub)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message {
                topic,
                qos,
                dup: false,
                retain: false,
                ..
            } => Some((topic, qos)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("t/0".into(), QoS::AtMostOnce),
            ("t/1".into(), QoS::AtLeastOnce),
            ("t/2".into(), QoS::ExactlyOnce)
        ]
    );
    assert_eq!(p.payloads(sub), vec!["zero", "one", "two"]);
    assert_eq!(p.published(publ), ids.to_vec());
    // Every acknowledgement went through on both sides.
    assert_eq!(p.nodes[publ].client.inflight_messages(), 0);
    assert_eq!(p.broker.inflight_messages("sub"), Some(0));
    // A subscription granted at QoS 1 receives a QoS 2 publish at QoS 1.
    let low = p.add(cfg("low", 60, true));
    p.open(low);
    p.subscribe(low, "t/#", 1);
    p.publish(publ, "t/2", "down", 2);
    assert!(p.events(low).iter().any(|e| matches!(
        e,
        Event::Message { payload, qos: QoS::AtLeastOnce, .. } if payload == b"down"
    )));
    // Unsubscribed: nothing more arrives.
    let u = p.nodes[low].client.unsubscribe(p.now, &["t/#"]).unwrap();
    p.settle();
    assert!(p.events(low).contains(&Event::Unsubscribed(u)));
    p.publish(publ, "t/x", "gone", 1);
    assert!(!p.payloads(low).contains(&String::from("gone")));
    assert!(p.payloads(sub).contains(&String::from("gone")));
}

#[test]
fn pair_retained_message_reaches_a_late_subscriber() {
    let mut p = new_pair();
    let publ = p.add(cfg("pub", 0, true));
    p.open(publ);
    p.nodes[publ]
        .client
        .publish(p.now, "ESP32/TEM", b"21.5", QoS::AtLeastOnce, true)
        .unwrap();
    p.settle();
    let late = p.add(cfg("late", 0, true));
    p.open(late);
    p.subscribe(late, "ESP32/#", 1);
    assert!(p.events(late).iter().any(|e| matches!(
        e,
        Event::Message { payload, retain: true, .. } if payload == b"21.5"
    )));
}

#[test]
fn pair_keepalive_over_a_long_idle_time() {
    let mut p = new_pair();
    let a = p.add(cfg("idle", 30, true));
    p.open(a);
    p.drive_until(secs(3_600));
    assert!(p.lost(a).is_empty(), "{:?}", p.lost(a));
    assert!(p.broker_closed.is_empty(), "the broker did not time it out");
    assert_eq!(p.broker.connection_count(), 1);
    let pings = p
        .packets(a, Dir::Up, 0)
        .iter()
        .filter(|x| **x == Pkt::PingReq)
        .count();
    let pongs = p
        .packets(a, Dir::Down, 0)
        .iter()
        .filter(|x| **x == Pkt::PingResp)
        .count();
    assert_eq!((pings, pongs), (120, 120), "one ping per keep alive");
}

#[test]
fn pair_client_detects_a_silent_broker_after_keep_alive() {
    let mut p = new_pair();
    let a = p.add(cfg("a", 10, true));
    p.open(a);
    p.nodes[a].down = Loss::All; // the broker's side falls silent
    p.drive_until(secs(60));
    // PINGREQ at 10 s, no answer within keep alive: lost at 20 s.
    assert_eq!(p.lost(a), vec![(secs(20), LostReason::KeepAliveTimeout)]);
    // The client closed its socket, which the broker heard (this direction works).
    assert_eq!(p.broker.connection_count(), 0);
    assert!(p.broker_closed.is_empty(), "not a broker timeout");
}

#[test]
fn pair_broker_drops_a_silent_client_after_one_and_a_half_keep_alive() {
    let mut p = new_pair();
    let a = p.add(cfg("a", 10, true));
    p.open(a);
    let conn = p.nodes[a].conn.unwrap();
    p.nodes[a].up = Loss::All; // nothing from the client arrives
    p.drive_until(secs(60));
    assert_eq!(p.broker_closed, vec![(secs(15), conn)]);
    // The client sees the broker close its transport before its own timeout (20 s).
    assert_eq!(p.lost(a), vec![(secs(15), LostReason::TransportClosed)]);
}

#[test]
fn pair_partition_each_side_times_out_on_its_own() {
    let mut p = new_pair();
    let a = p.add(cfg("a", 10, true));
    p.open(a);
    p.drive_until(secs(4));
    let conn = p.nodes[a].conn.unwrap();
    p.nodes[a].up = Loss::All;
    p.nodes[a].down = Loss::All;
    p.drive_until(secs(60));
    // Last traffic at 0 s: the broker gives up at 15 s, the client (ping at 10 s) at 20 s.
    assert_eq!(p.broker_closed, vec![(secs(15), conn)]);
    assert_eq!(p.lost(a), vec![(secs(20), LostReason::KeepAliveTimeout)]);
}

#[test]
fn pair_persistent_session_redelivers_unacknowledged_publishes() {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, false));
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[publ].down = Loss::All; // the PUBACKs are lost on the way
    let ids = [
        p.publish(publ, "t", "a", 1),
        p.publish(publ, "t", "b", 1),
        p.publish(publ, "t", "c", 1),
    ];
    assert!(p.published(publ).is_empty());
    assert_eq!(p.payloads(sub), vec!["a", "b", "c"]);
    p.sever(publ);
    p.nodes[publ].down = Loss::Nothing;
    let mark = p.trace.len();
    p.open(publ);
    assert_eq!(
        p.packets(publ, Dir::Up, mark),
        vec![
            Pkt::Connect {
                client_id: "pub".into(),
                clean: false,
                keep_alive_s: 60
            },
            pubp("t", "a", 1, 1, true),
            pubp("t", "b", 1, 2, true),
            pubp("t", "c", 1, 3, true),
        ],
        "MQTT-4.4.0-1: DUP, original ids, original order"
    );
    assert!(p.events(publ).contains(&connected(true)));
    assert_eq!(p.published(publ), ids.to_vec());
    // QoS 1 is at least once: the broker routes the re-sends too.
    assert_eq!(p.payloads(sub), vec!["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn pair_persistent_session_broker_redelivers_to_the_client() {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, false));
    let publ = p.add(cfg("pub", 60, true));
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[sub].up = Loss::PacketType(4); // the subscriber's PUBACKs are lost
    p.publish(publ, "t", "a", 1);
    p.publish(publ, "t", "b", 1);
    assert_eq!(p.broker.inflight_messages("sub"), Some(2));
    p.sever(sub);
    p.publish(publ, "t", "offline", 1); // queued by the broker meanwhile
    p.nodes[sub].up = Loss::Nothing;
    p.open(sub);
    assert!(p.events(sub).contains(&connected(true)));
    assert_eq!(
        p.messages(sub),
        vec![
            ("a".into(), false),
            ("b".into(), false),
            ("a".into(), true),
            ("b".into(), true),
            ("offline".into(), false),
        ]
    );
    assert_eq!(p.broker.inflight_messages("sub"), Some(0));
    assert_eq!(p.broker.queued_messages("sub"), Some(0));
}

/// A QoS 2 publisher with a persistent session and a QoS 2 subscriber; the publisher's link
/// loses `lost` packets broker-to-client until it is cut and reconnected.
fn qos2_with_lost_packet(lost: u8) -> (Pair, usize, usize, PublishId, usize) {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, false));
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t", 2);
    p.nodes[publ].down = Loss::PacketType(lost);
    let id = p.publish(publ, "t", "once", 2);
    assert!(p.published(publ).is_empty());
    assert_eq!(p.payloads(sub), vec!["once"]);
    p.sever(publ);
    p.nodes[publ].down = Loss::Nothing;
    let mark = p.trace.len();
    p.open(publ);
    (p, sub, publ, id, mark)
}

#[test]
fn pair_qos2_exactly_once_when_pubrec_is_lost() {
    let (p, sub, publ, id, mark) = qos2_with_lost_packet(5);
    // The PUBLISH is re-sent with DUP; the broker recognises the id and does not route it again.
    assert_eq!(
        p.packets(publ, Dir::Up, mark)[1..],
        [pubp("t", "once", 2, 1, true), Pkt::PubRel(1)]
    );
    assert_eq!(p.published(publ), vec![id]);
    assert_eq!(p.payloads(sub), vec!["once"], "delivered exactly once");
}

#[test]
fn pair_qos2_exactly_once_when_pubcomp_is_lost() {
    let (p, sub, publ, id, mark) = qos2_with_lost_packet(7);
    // Only the PUBREL is re-sent.
    assert_eq!(p.packets(publ, Dir::Up, mark)[1..], [Pkt::PubRel(1)]);
    assert_eq!(p.published(publ), vec![id]);
    assert_eq!(p.payloads(sub), vec!["once"]);
}

/// The subscriber's link loses `lost` packets client-to-broker; it reconnects.
fn incoming_qos2_with_lost_packet(lost: u8, delivery: Qos2Delivery) -> (Pair, usize) {
    let mut p = new_pair();
    let sub = p.add(ClientConfig {
        qos2_delivery: delivery,
        ..cfg("sub", 60, false)
    });
    let publ = p.add(cfg("pub", 60, true));
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t", 2);
    p.nodes[sub].up = Loss::PacketType(lost);
    p.publish(publ, "t", "once", 2);
    // Delivered at PUBLISH, or at PUBREL, which a lost PUBREC holds back until the reconnect.
    let held = delivery == Qos2Delivery::AtPubrel && lost == 5;
    assert_eq!(p.payloads(sub).len(), if held { 0 } else { 1 });
    assert_eq!(p.broker.inflight_messages("sub"), Some(1));
    p.sever(sub);
    p.nodes[sub].up = Loss::Nothing;
    p.open(sub);
    assert_eq!(p.broker.inflight_messages("sub"), Some(0));
    (p, sub)
}

#[test]
fn pair_incoming_qos2_exactly_once_when_pubrec_is_lost() {
    let (p, sub) = incoming_qos2_with_lost_packet(5, Qos2Delivery::AtPublish);
    // The broker re-sent the PUBLISH with DUP: acknowledged, not delivered again.
    assert!(p
        .packets(sub, Dir::Down, 0)
        .contains(&pubp("t", "once", 2, 1, true)));
    assert_eq!(p.payloads(sub), vec!["once"]);
}

#[test]
fn pair_incoming_qos2_exactly_once_when_pubcomp_is_lost() {
    let (p, sub) = incoming_qos2_with_lost_packet(7, Qos2Delivery::AtPublish);
    let down = p.packets(sub, Dir::Down, 0);
    assert_eq!(down.iter().filter(|x| **x == Pkt::PubRel(1)).count(), 2);
    assert_eq!(p.payloads(sub), vec!["once"]);
}

#[test]
fn pair_incoming_qos2_at_pubrel_exactly_once_when_pubrec_or_pubcomp_is_lost() {
    for lost in [5, 7] {
        let (p, sub) = incoming_qos2_with_lost_packet(lost, Qos2Delivery::AtPubrel);
        assert_eq!(p.payloads(sub), vec!["once"], "lost packet type {lost}");
    }
}

#[test]
fn pair_window_full_is_an_error_and_everything_accepted_arrives() {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(ClientConfig {
        max_inflight_messages: 2,
        max_queued_messages: 3,
        ..cfg("pub", 60, false)
    });
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[publ].down = Loss::All; // no acknowledgement comes back
    let ids: Vec<PublishId> = ["1", "2", "3", "4", "5"]
        .iter()
        .map(|m| p.publish(publ, "t", m, 1))
        .collect();
    assert_eq!(
        p.nodes[publ]
            .client
            .publish(p.now, "t", b"6", QoS::AtLeastOnce, false),
        Err(ClientError::QueueFull)
    );
    assert_eq!(p.payloads(sub), vec!["1", "2"], "only the window went out");
    p.sever(publ);
    p.nodes[publ].down = Loss::Nothing;
    p.open(publ);
    assert_eq!(p.published(publ), ids);
    assert_eq!(
        p.payloads(sub),
        vec!["1", "2", "1", "2", "3", "4", "5"],
        "the window re-sent, then the queue in order"
    );
}

#[test]
fn pair_clean_session_resends_inflight_as_new() {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, true));
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[publ].down = Loss::PacketType(4);
    let id = p.publish(publ, "t", "m", 1);
    p.sever(publ);
    p.nodes[publ].down = Loss::Nothing;
    let mark = p.trace.len();
    p.open(publ);
    assert!(p.events(publ).contains(&connected(false)));
    assert_eq!(
        p.packets(publ, Dir::Up, mark)[1..],
        [pubp("t", "m", 1, 2, false)],
        "DUP 0, a fresh id"
    );
    assert_eq!(p.published(publ), vec![id]);
    assert_eq!(p.payloads(sub), vec!["m", "m"]);
}

#[test]
fn pair_will_on_loss_not_on_disconnect() {
    let mut p = new_pair();
    let watch = p.add(cfg("watch", 60, true));
    p.open(watch);
    p.subscribe(watch, "dev/status", 1);
    let dev = p.add(ClientConfig {
        will: Some(LastWill {
            topic: "dev/status".into(),
            payload: b"offline".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: false,
        }),
        ..cfg("dev", 60, true)
    });
    p.open(dev);
    p.nodes[dev].client.disconnect(p.now);
    p.settle();
    assert_eq!(p.broker.connection_count(), 1, "the broker closed it");
    assert!(p.lost(dev).is_empty(), "a chosen disconnect is not a loss");
    assert!(p.payloads(watch).is_empty(), "MQTT-3.14.4-3: no will");
    p.open(dev);
    p.sever(dev);
    assert_eq!(p.payloads(watch), vec!["offline"]);
    assert_eq!(p.lost(dev), vec![(p.now, LostReason::TransportClosed)]);
}

#[test]
fn pair_refused_connection() {
    let mut p = pair_with(broker::Config {
        allow_anonymous: false,
        ..broker_config()
    });
    let a = p.add(cfg("a", 60, true));
    p.open(a);
    assert_eq!(
        p.events(a),
        vec![Event::ConnectionRefused(ConnectReturnCode::NotAuthorized)]
    );
    assert_eq!(p.nodes[a].client.state(), ConnectionState::Disconnected);
    assert_eq!(p.broker.connection_count(), 0);
}

#[test]
fn pair_reconnects_every_5_s_and_catches_up() {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 60, true));
    let dev = p.add(ClientConfig {
        connect_timeout: Duration::from_secs(3),
        ..cfg("esp32", 10, false)
    });
    p.nodes[dev].reconnect_after = Some(Duration::from_secs(5));
    p.open(sub);
    p.subscribe(sub, "ESP32/#", 1);
    p.open(dev);
    // The broker's answers stop reaching the device for a minute; it keeps publishing.
    p.nodes[dev].down = Loss::All;
    let mut ids = Vec::new();
    for s in 1..=6 {
        p.drive_until(secs(s * 10));
        ids.push(p.publish(dev, "ESP32/TEM", &format!("{s}"), 1));
    }
    p.nodes[dev].down = Loss::Nothing;
    p.drive_until(secs(120));
    let lost = p.lost(dev);
    assert_eq!(lost[0], (secs(20), LostReason::KeepAliveTimeout));
    assert!(lost[1..]
        .iter()
        .all(|(_, r)| *r == LostReason::ConnAckTimeout));
    // Reconnects 5 s after every loss (each attempt times out after 3 s).
    for w in lost.windows(2) {
        assert_eq!(w[1].0, w[0].0 + Duration::from_secs(8));
    }
    assert!(p.nodes[dev].client.is_connected());
    assert_eq!(p.published(dev), ids, "all six completed, in order");
    let got = p.payloads(sub);
    for s in 1..=6 {
        assert!(got.contains(&format!("{s}")), "{s} missing from {got:?}");
    }
}

/// A scripted run covering every mechanism; returns its whole byte trace and every event.
fn script(chunk: usize) -> (Vec<Record>, Vec<Vec<(Instant, Event)>>) {
    let mut p = new_pair();
    let sub = p.add(cfg("sub", 20, false));
    let publ = p.add(cfg("pub", 15, false));
    for n in &mut p.nodes {
        n.chunk = chunk;
    }
    p.open(sub);
    p.open(publ);
    p.subscribe(sub, "s/#", 2);
    for (i, qos) in [0u8, 1, 2, 1, 0, 2].iter().enumerate() {
        p.drive_until(secs(i as u64 * 7));
        p.publish(
            publ,
            &format!("s/{i}"),
            &format!("{i}{}", "x".repeat(i * 50)),
            *qos,
        );
    }
    p.nodes[publ].down = Loss::PacketType(5);
    p.nodes[sub].up = Loss::PacketType(7);
    p.publish(publ, "s/lost", "q2", 2);
    p.publish(publ, "s/lost", "q1", 1);
    p.drive_until(secs(50));
    p.sever(publ);
    p.sever(sub);
    p.nodes[publ].down = Loss::Nothing;
    p.nodes[sub].up = Loss::Nothing;
    p.drive_until(secs(55));
    p.open(sub);
    p.open(publ);
    p.drive_until(secs(300));
    let events = p.nodes.iter().map(|n| n.events.clone()).collect();
    (p.trace, events)
}

#[test]
fn pair_same_script_gives_the_same_bytes() {
    let (trace, events) = script(0);
    assert!(trace.len() > 50, "a substantial run: {}", trace.len());
    assert!(events[0].len() > 10);
    let (trace2, events2) = script(0);
    assert!(trace == trace2, "byte traces differ");
    assert_eq!(events, events2);
}

#[test]
fn pair_byte_boundaries_do_not_matter() {
    let (trace, events) = script(0);
    for chunk in [1, 2, 3, 7, 64] {
        let (t, e) = script(chunk);
        assert!(t == trace, "byte trace differs with {chunk}-byte reads");
        assert_eq!(e, events, "events differ with {chunk}-byte reads");
    }
}
