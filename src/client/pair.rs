//! Clients wired to the real [`Broker`] in memory and in virtual time, no sockets (after
//! quinn-proto's `tests/util.rs` `Pair`): [`Pair::step`] moves bytes both ways and drains every
//! output until nothing moves; [`Pair::drive_until`] jumps time to the earliest `poll_timeout`,
//! fires it, and steps again. Links can lose bytes (all, or whole packets of one type) in either
//! direction, to model silence, partitions and lost acknowledgements; every byte moved is
//! recorded, dropped or not, for determinism checks.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::tests::{decode_all, pubp, P};
use super::*;
use crate::broker::{self, Broker, ConnId};

/// What a link loses in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    Nothing,
    /// Every byte, and the closing of the connection (a partition).
    All,
    /// Whole packets of this MQTT packet type (5 = PUBREC, 7 = PUBCOMP, ...).
    Type(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    at: Instant,
    node: usize,
    dir: Dir,
    bytes: Vec<u8>,
    /// What got through.
    delivered: Vec<u8>,
}

struct Node {
    client: Client,
    /// The broker's id for this client's live transport.
    conn: Option<ConnId>,
    events: Vec<(Instant, Event)>,
    up: Loss,
    down: Loss,
    /// Bytes per `handle_bytes` call on either side; 0 = as they came.
    chunk: usize,
    /// Reconnect this long after the transport goes (the ESP32 sketch's policy).
    reconnect_after: Option<Duration>,
    reconnect_at: Option<Instant>,
}

struct Pair {
    now: Instant,
    broker: Broker,
    nodes: Vec<Node>,
    trace: Vec<Record>,
    /// Connections the broker closed (its `Event::Close`), with the time.
    broker_closed: Vec<(Instant, ConnId)>,
}

fn broker_config() -> broker::Config {
    broker::Config {
        sys_interval: Duration::ZERO,
        ..broker::Config::default()
    }
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

/// Keeps the packets of `bytes` (whole packets) that `loss` lets through.
fn filter(loss: Loss, bytes: &[u8]) -> Vec<u8> {
    match loss {
        Loss::Nothing => bytes.to_vec(),
        Loss::All => Vec::new(),
        Loss::Type(t) => {
            let mut out = Vec::new();
            let mut rest = bytes;
            while let Ok(Some(h)) = codec::parse_fixed_header(rest) {
                let n = h.frame_len().min(rest.len());
                if h.packet_type() != t {
                    out.extend_from_slice(&rest[..n]);
                }
                rest = &rest[n..];
            }
            out.extend_from_slice(rest);
            out
        }
    }
}

impl Pair {
    fn new() -> Pair {
        Pair::with(broker_config())
    }
    fn with(config: broker::Config) -> Pair {
        Pair {
            now: Instant::ZERO,
            broker: Broker::new(config, Instant::ZERO),
            nodes: Vec::new(),
            trace: Vec::new(),
            broker_closed: Vec::new(),
        }
    }

    fn add(&mut self, config: ClientConfig) -> usize {
        self.nodes.push(Node {
            client: Client::new(config, self.now).unwrap(),
            conn: None,
            events: Vec::new(),
            up: Loss::Nothing,
            down: Loss::Nothing,
            chunk: 0,
            reconnect_after: None,
            reconnect_at: None,
        });
        self.nodes.len() - 1
    }

    /// Opens a transport for node `i` and lets the handshake run.
    fn connect(&mut self, i: usize) {
        let conn = self
            .broker
            .handle_accept(self.now, &format!("node{i}"))
            .unwrap();
        let n = &mut self.nodes[i];
        n.conn = Some(conn);
        n.reconnect_at = None;
        n.client.handle_connected(self.now);
        self.step();
    }

    /// Node `i`'s transport fails and both ends notice (bytes still in flight are gone).
    fn cut(&mut self, i: usize) {
        if let Some(conn) = self.nodes[i].conn.take() {
            self.broker.handle_closed(self.now, conn);
        }
        self.nodes[i].client.handle_disconnected(self.now);
        self.transport_gone(i);
        self.step();
    }

    fn transport_gone(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.conn = None;
        if let Some(d) = n.reconnect_after {
            n.reconnect_at = Some(self.now + d);
        }
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
        self.step();
        id
    }

    fn subscribe(&mut self, i: usize, filter: &str, qos: u8) {
        let pkid = self.nodes[i]
            .client
            .subscribe(self.now, &[(filter, QoS::from_u8(qos).unwrap())])
            .unwrap();
        self.step();
        let granted = vec![QoS::from_u8(qos)];
        assert!(
            self.events(i)
                .contains(&Event::Subscribed { pkid, granted }),
            "SUBACK for {filter}"
        );
    }

    /// Moves bytes and drains outputs on every side until nothing moves.
    fn step(&mut self) {
        let mut buf = Vec::new();
        for _ in 0..10_000 {
            let mut progress = false;
            for i in 0..self.nodes.len() {
                while self.nodes[i].client.poll_transmit(&mut buf).is_some() {
                    progress = true;
                    let bytes = core::mem::take(&mut buf);
                    let n = &self.nodes[i];
                    let delivered = filter(n.up, &bytes);
                    if let (Some(conn), false) = (n.conn, delivered.is_empty()) {
                        for c in chunks(&delivered, n.chunk) {
                            self.broker.handle_bytes(self.now, conn, c);
                        }
                    }
                    self.trace.push(Record {
                        at: self.now,
                        node: i,
                        dir: Dir::Up,
                        bytes,
                        delivered,
                    });
                }
                while let Some(ev) = self.nodes[i].client.poll_event() {
                    progress = true;
                    let done = matches!(ev, Event::ConnectionLost(_) | Event::ConnectionRefused(_));
                    self.nodes[i].events.push((self.now, ev));
                    if done {
                        // The caller closes the socket; a partitioned broker does not notice.
                        if let Some(conn) = self.nodes[i].conn {
                            if self.nodes[i].up != Loss::All {
                                self.broker.handle_closed(self.now, conn);
                            }
                        }
                        self.transport_gone(i);
                    }
                }
            }
            while let Some(conn) = self.broker.poll_transmit(&mut buf) {
                progress = true;
                let bytes = core::mem::take(&mut buf);
                let Some(i) = self.node_of(conn) else {
                    continue; // the client already closed this transport
                };
                let n = &mut self.nodes[i];
                let delivered = filter(n.down, &bytes);
                for c in chunks(&delivered, n.chunk) {
                    n.client.handle_bytes(self.now, c);
                }
                self.trace.push(Record {
                    at: self.now,
                    node: i,
                    dir: Dir::Down,
                    bytes,
                    delivered,
                });
            }
            while let Some(ev) = self.broker.poll_event() {
                progress = true;
                if let broker::Event::Close(conn) = ev {
                    self.broker_closed.push((self.now, conn));
                    if let Some(i) = self.node_of(conn) {
                        if self.nodes[i].down != Loss::All {
                            self.nodes[i].client.handle_disconnected(self.now);
                        }
                        self.transport_gone(i);
                    }
                }
            }
            if !progress {
                return;
            }
        }
        panic!("step did not settle");
    }

    fn node_of(&self, conn: ConnId) -> Option<usize> {
        self.nodes.iter().position(|n| n.conn == Some(conn))
    }

    fn next_timeout(&self) -> Option<Instant> {
        let mut t = self.broker.poll_timeout();
        for n in &self.nodes {
            for x in [n.client.poll_timeout(), n.reconnect_at]
                .into_iter()
                .flatten()
            {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        }
        t
    }

    /// Runs every timer due by `until`, in time order, stepping after each; ends at `until`.
    fn drive_until(&mut self, until: Instant) {
        self.step();
        for _ in 0..1_000_000 {
            match self.next_timeout() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    if self.broker.poll_timeout().is_some_and(|t| t <= self.now) {
                        self.broker.handle_timeout(self.now);
                    }
                    for i in 0..self.nodes.len() {
                        if self.nodes[i]
                            .client
                            .poll_timeout()
                            .is_some_and(|t| t <= self.now)
                        {
                            self.nodes[i].client.handle_timeout(self.now);
                        }
                        if self.nodes[i].reconnect_at.is_some_and(|t| t <= self.now) {
                            self.connect(i);
                        }
                    }
                    self.step();
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("timers did not settle");
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
    fn packets(&self, i: usize, dir: Dir, from: usize) -> Vec<P> {
        let mut out = Vec::new();
        for r in &self.trace[from..] {
            if r.node == i && r.dir == dir {
                out.extend(decode_all(&r.bytes));
            }
        }
        out
    }
}

fn chunks(bytes: &[u8], n: usize) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(if n == 0 { bytes.len().max(1) } else { n })
}

fn connected(session_present: bool) -> Event {
    Event::Connected { session_present }
}

// ----- tests -----

#[test]
fn pair_connects() {
    let mut p = Pair::new();
    let a = p.add(cfg("esp32", 60, true));
    p.connect(a);
    assert_eq!(p.events(a), vec![connected(false)]);
    assert!(p.nodes[a].client.is_connected());
    assert_eq!(p.broker.connection_count(), 1);
    assert!(matches!(p.packets(a, Dir::Up, 0)[..], [P::Connect { .. }]));
    assert_eq!(p.packets(a, Dir::Down, 0), vec![P::ConnAck(false, 0)]);
}

#[test]
fn pair_qos_0_1_2_publish_and_subscribe_end_to_end() {
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, true));
    p.connect(sub);
    p.connect(publ);
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
    p.connect(low);
    p.subscribe(low, "t/#", 1);
    p.publish(publ, "t/2", "down", 2);
    assert!(p.events(low).iter().any(|e| matches!(
        e,
        Event::Message { payload, qos: QoS::AtLeastOnce, .. } if payload == b"down"
    )));
    // Unsubscribed: nothing more arrives.
    let u = p.nodes[low].client.unsubscribe(p.now, &["t/#"]).unwrap();
    p.step();
    assert!(p.events(low).contains(&Event::Unsubscribed(u)));
    p.publish(publ, "t/x", "gone", 1);
    assert!(!p.payloads(low).contains(&String::from("gone")));
    assert!(p.payloads(sub).contains(&String::from("gone")));
}

#[test]
fn pair_retained_message_reaches_a_late_subscriber() {
    let mut p = Pair::new();
    let publ = p.add(cfg("pub", 0, true));
    p.connect(publ);
    p.nodes[publ]
        .client
        .publish(p.now, "ESP32/TEM", b"21.5", QoS::AtLeastOnce, true)
        .unwrap();
    p.step();
    let late = p.add(cfg("late", 0, true));
    p.connect(late);
    p.subscribe(late, "ESP32/#", 1);
    assert!(p.events(late).iter().any(|e| matches!(
        e,
        Event::Message { payload, retain: true, .. } if payload == b"21.5"
    )));
}

#[test]
fn pair_keepalive_over_a_long_idle_time() {
    let mut p = Pair::new();
    let a = p.add(cfg("idle", 30, true));
    p.connect(a);
    p.drive_until(secs(3_600));
    assert!(p.lost(a).is_empty(), "{:?}", p.lost(a));
    assert!(p.broker_closed.is_empty(), "the broker did not time it out");
    assert_eq!(p.broker.connection_count(), 1);
    let pings = p
        .packets(a, Dir::Up, 0)
        .iter()
        .filter(|x| **x == P::PingReq)
        .count();
    let pongs = p
        .packets(a, Dir::Down, 0)
        .iter()
        .filter(|x| **x == P::PingResp)
        .count();
    assert_eq!((pings, pongs), (120, 120), "one ping per keep alive");
}

#[test]
fn pair_client_detects_a_silent_broker_after_keep_alive() {
    let mut p = Pair::new();
    let a = p.add(cfg("a", 10, true));
    p.connect(a);
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
    let mut p = Pair::new();
    let a = p.add(cfg("a", 10, true));
    p.connect(a);
    let conn = p.nodes[a].conn.unwrap();
    p.nodes[a].up = Loss::All; // nothing from the client arrives
    p.drive_until(secs(60));
    assert_eq!(p.broker_closed, vec![(secs(15), conn)]);
    // The client sees the broker close its transport before its own timeout (20 s).
    assert_eq!(p.lost(a), vec![(secs(15), LostReason::TransportClosed)]);
}

#[test]
fn pair_partition_each_side_times_out_on_its_own() {
    let mut p = Pair::new();
    let a = p.add(cfg("a", 10, true));
    p.connect(a);
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
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, false));
    p.connect(sub);
    p.connect(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[publ].down = Loss::All; // the PUBACKs are lost on the way
    let ids = [
        p.publish(publ, "t", "a", 1),
        p.publish(publ, "t", "b", 1),
        p.publish(publ, "t", "c", 1),
    ];
    assert!(p.published(publ).is_empty());
    assert_eq!(p.payloads(sub), vec!["a", "b", "c"]);
    p.cut(publ);
    p.nodes[publ].down = Loss::Nothing;
    let mark = p.trace.len();
    p.connect(publ);
    assert_eq!(
        p.packets(publ, Dir::Up, mark),
        vec![
            P::Connect {
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
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, false));
    let publ = p.add(cfg("pub", 60, true));
    p.connect(sub);
    p.connect(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[sub].up = Loss::Type(4); // the subscriber's PUBACKs are lost
    p.publish(publ, "t", "a", 1);
    p.publish(publ, "t", "b", 1);
    assert_eq!(p.broker.inflight_messages("sub"), Some(2));
    p.cut(sub);
    p.publish(publ, "t", "offline", 1); // queued by the broker meanwhile
    p.nodes[sub].up = Loss::Nothing;
    p.connect(sub);
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
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, false));
    p.connect(sub);
    p.connect(publ);
    p.subscribe(sub, "t", 2);
    p.nodes[publ].down = Loss::Type(lost);
    let id = p.publish(publ, "t", "once", 2);
    assert!(p.published(publ).is_empty());
    assert_eq!(p.payloads(sub), vec!["once"]);
    p.cut(publ);
    p.nodes[publ].down = Loss::Nothing;
    let mark = p.trace.len();
    p.connect(publ);
    (p, sub, publ, id, mark)
}

#[test]
fn pair_qos2_exactly_once_when_pubrec_is_lost() {
    let (p, sub, publ, id, mark) = qos2_with_lost_packet(5);
    // The PUBLISH is re-sent with DUP; the broker recognises the id and does not route it again.
    assert_eq!(
        p.packets(publ, Dir::Up, mark)[1..],
        [pubp("t", "once", 2, 1, true), P::PubRel(1)]
    );
    assert_eq!(p.published(publ), vec![id]);
    assert_eq!(p.payloads(sub), vec!["once"], "delivered exactly once");
}

#[test]
fn pair_qos2_exactly_once_when_pubcomp_is_lost() {
    let (p, sub, publ, id, mark) = qos2_with_lost_packet(7);
    // Only the PUBREL is re-sent.
    assert_eq!(p.packets(publ, Dir::Up, mark)[1..], [P::PubRel(1)]);
    assert_eq!(p.published(publ), vec![id]);
    assert_eq!(p.payloads(sub), vec!["once"]);
}

/// The subscriber's link loses `lost` packets client-to-broker; it reconnects.
fn incoming_qos2_with_lost_packet(lost: u8) -> (Pair, usize) {
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, false));
    let publ = p.add(cfg("pub", 60, true));
    p.connect(sub);
    p.connect(publ);
    p.subscribe(sub, "t", 2);
    p.nodes[sub].up = Loss::Type(lost);
    p.publish(publ, "t", "once", 2);
    assert_eq!(p.payloads(sub), vec!["once"]);
    assert_eq!(p.broker.inflight_messages("sub"), Some(1));
    p.cut(sub);
    p.nodes[sub].up = Loss::Nothing;
    p.connect(sub);
    assert_eq!(p.broker.inflight_messages("sub"), Some(0));
    (p, sub)
}

#[test]
fn pair_incoming_qos2_exactly_once_when_pubrec_is_lost() {
    let (p, sub) = incoming_qos2_with_lost_packet(5);
    // The broker re-sent the PUBLISH with DUP: acknowledged, not delivered again.
    assert!(p
        .packets(sub, Dir::Down, 0)
        .contains(&pubp("t", "once", 2, 1, true)));
    assert_eq!(p.payloads(sub), vec!["once"]);
}

#[test]
fn pair_incoming_qos2_exactly_once_when_pubcomp_is_lost() {
    let (p, sub) = incoming_qos2_with_lost_packet(7);
    let down = p.packets(sub, Dir::Down, 0);
    assert_eq!(down.iter().filter(|x| **x == P::PubRel(1)).count(), 2);
    assert_eq!(p.payloads(sub), vec!["once"]);
}

#[test]
fn pair_window_full_is_an_error_and_everything_accepted_arrives() {
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(ClientConfig {
        max_inflight_messages: 2,
        max_queued_messages: 3,
        ..cfg("pub", 60, false)
    });
    p.connect(sub);
    p.connect(publ);
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
    p.cut(publ);
    p.nodes[publ].down = Loss::Nothing;
    p.connect(publ);
    assert_eq!(p.published(publ), ids);
    assert_eq!(
        p.payloads(sub),
        vec!["1", "2", "1", "2", "3", "4", "5"],
        "the window re-sent, then the queue in order"
    );
}

#[test]
fn pair_clean_session_resends_inflight_as_new() {
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, true));
    let publ = p.add(cfg("pub", 60, true));
    p.connect(sub);
    p.connect(publ);
    p.subscribe(sub, "t", 1);
    p.nodes[publ].down = Loss::Type(4);
    let id = p.publish(publ, "t", "m", 1);
    p.cut(publ);
    p.nodes[publ].down = Loss::Nothing;
    let mark = p.trace.len();
    p.connect(publ);
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
    let mut p = Pair::new();
    let watch = p.add(cfg("watch", 60, true));
    p.connect(watch);
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
    p.connect(dev);
    p.nodes[dev].client.disconnect(p.now);
    p.step();
    assert_eq!(p.broker.connection_count(), 1, "the broker closed it");
    assert!(p.lost(dev).is_empty(), "a chosen disconnect is not a loss");
    assert!(p.payloads(watch).is_empty(), "MQTT-3.14.4-3: no will");
    p.connect(dev);
    p.cut(dev);
    assert_eq!(p.payloads(watch), vec!["offline"]);
    assert_eq!(p.lost(dev), vec![(p.now, LostReason::TransportClosed)]);
}

#[test]
fn pair_refused_connection() {
    let mut p = Pair::with(broker::Config {
        allow_anonymous: false,
        ..broker_config()
    });
    let a = p.add(cfg("a", 60, true));
    p.connect(a);
    assert_eq!(
        p.events(a),
        vec![Event::ConnectionRefused(ConnectReturnCode::NotAuthorized)]
    );
    assert_eq!(p.nodes[a].client.state(), ConnectionState::Disconnected);
    assert_eq!(p.broker.connection_count(), 0);
}

#[test]
fn pair_reconnects_every_5_s_and_catches_up() {
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 60, true));
    let dev = p.add(ClientConfig {
        connect_timeout: Duration::from_secs(3),
        ..cfg("esp32", 10, false)
    });
    p.nodes[dev].reconnect_after = Some(Duration::from_secs(5));
    p.connect(sub);
    p.subscribe(sub, "ESP32/#", 1);
    p.connect(dev);
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
    let mut p = Pair::new();
    let sub = p.add(cfg("sub", 20, false));
    let publ = p.add(cfg("pub", 15, false));
    for n in &mut p.nodes {
        n.chunk = chunk;
    }
    p.connect(sub);
    p.connect(publ);
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
    p.nodes[publ].down = Loss::Type(5);
    p.nodes[sub].up = Loss::Type(7);
    p.publish(publ, "s/lost", "q2", 2);
    p.publish(publ, "s/lost", "q1", 1);
    p.drive_until(secs(50));
    p.cut(publ);
    p.cut(sub);
    p.nodes[publ].down = Loss::Nothing;
    p.nodes[sub].up = Loss::Nothing;
    p.drive_until(secs(55));
    p.connect(sub);
    p.connect(publ);
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
