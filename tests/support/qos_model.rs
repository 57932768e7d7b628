//! The QoS delivery model shared by `broker_props.rs` (`qos_delivery`: one broker, no restarts)
//! and `broker_persist_props.rs` (`acknowledged_survives_power_cuts`: the same clients around a
//! broker whose host loses power): publishers and subscribers written here from the MQTT 3.1.1
//! rules, as a deliberately independent model of the client side (not `mqsim::qos` or
//! `mqsim::client`), so that a bug in the crate's QoS flow cannot hide itself in the checker
//! that is meant to catch it.
//!
//! What is here is what both properties do alike: the generated client operations, the
//! publishers' books (PUBACK / PUBREC / PUBCOMP for their unacknowledged messages, resending on
//! reconnection), the subscribers' books (acknowledgements owed, QoS 2 ids awaiting PUBREL),
//! driving the broker, and the delivery checks, which take a [`Delivery`] saying whether the
//! broker may have restarted in between (the one place where the rules differ).

// Shared by several test crates, each using part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use mqsim::broker::{Broker, Config, ConnId, Event};
use mqsim::codec::{
    decode, encode_to_vec, Connect, ConnectReturnCode, Decoded, Packet, Protocol, Publish, QoS,
    Subscribe, SubscribeFilters,
};
use mqsim::driver::{drain_all, Drained};
use mqsim::time::Instant;
use mqsim::topic;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Topic names the publishers publish to.
pub const NAMES: &[&str] = &["a", "a/b", "a/c", "b", "b/b"];
/// Filters the subscribers subscribe with.
pub const FILTERS: &[&str] = &["a", "a/b", "a/+", "+/b", "#", "a/#", "+/+", "b"];

/// `cases` unless `PROPTEST_CASES` is set (for a longer hunt).
pub fn proptest_config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Keep the tree clean: a failure prints its minimal script; regressions are kept as
        // `#[test]`s in the test files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

pub fn enc(p: &Packet<'_>, out: &mut Vec<u8>) {
    encode_to_vec(p, out).expect("test packets are valid");
}

pub fn qos_strategy() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn trace() -> bool {
    std::env::var("MQSIM_TRACE_PROPS").is_ok()
}

/// What a client does (the weights of [`client_op_strategy`] add up to 20).
#[derive(Clone, Debug)]
pub enum ClientOp {
    Publish {
        p: Index,
        topic: usize,
        qos: QoS,
        retain: bool,
    },
    /// Resend (DUP) a PUBLISH not yet acknowledged (no PUBACK / PUBREC).
    Retransmit { p: Index, m: Index },
    /// PUBREL for a PUBREC'd message.
    Release { p: Index, m: Index },
    /// A subscriber sends up to `n` of the acknowledgements it owes.
    SubAcks { s: Index, n: usize },
    /// The publisher goes (0: DISCONNECT + close, 1: socket drop, 2: none, taken over) and
    /// reconnects at once with `clean`.
    Reconnect { p: Index, clean: bool, how: u8 },
}

/// Client operations; a reconnecting publisher asks for a clean session with probability
/// `clean_p`.
pub fn client_op_strategy(clean_p: f64) -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        10 => (any::<Index>(), 0..NAMES.len(), qos_strategy(), prop::bool::weighted(0.2))
            .prop_map(|(p, topic, qos, retain)| ClientOp::Publish { p, topic, qos, retain }),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(p, m)| ClientOp::Retransmit { p, m }),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(p, m)| ClientOp::Release { p, m }),
        3 => (any::<Index>(), 1usize..6).prop_map(|(s, n)| ClientOp::SubAcks { s, n }),
        1 => (any::<Index>(), prop::bool::weighted(clean_p), 0u8..3)
            .prop_map(|(p, clean, how)| ClientOp::Reconnect { p, clean, how }),
    ]
}

/// One to two subscribers: (clean session with probability `clean_p`, 1 to 3 filters).
pub fn subs_strategy(clean_p: f64) -> impl Strategy<Value = Vec<(bool, Vec<(usize, QoS)>)>> {
    vec(
        (
            prop::bool::weighted(clean_p),
            vec((0..FILTERS.len(), qos_strategy()), 1..4),
        ),
        1..3,
    )
}

/// One to three publishers: clean session with probability `clean_p`.
pub fn pubs_strategy(clean_p: f64) -> impl Strategy<Value = Vec<bool>> {
    vec(prop::bool::weighted(clean_p), 1..4)
}

#[derive(Clone, Debug)]
pub struct Msg {
    pub seq: u32,
    pub pkid: u16,
    pub qos: QoS,
    pub topic: usize,
    pub retain: bool,
    /// PUBREC received.
    pub rec: bool,
    /// PUBREL sent on the current connection.
    pub rel_sent: bool,
}

#[derive(Debug)]
pub struct Pub {
    pub cid: String,
    pub conn: ConnId,
    pub clean: bool,
    /// CONNECT sent, CONNACK not seen: the client waits for it before sending more (a broker
    /// with persistence holds CONNACK until the session's records are durable).
    pub awaiting_connack: bool,
    pub next_pkid: u16,
    pub next_seq: u32,
    /// QoS 1/2 messages not yet completed, in publish order.
    pub unacked: Vec<Msg>,
    /// Bytes to send as soon as the output being read is drained (resends after CONNACK).
    pub resend: Vec<u8>,
}

#[derive(Debug)]
pub struct Sub {
    pub cid: String,
    pub conn: ConnId,
    pub clean: bool,
    pub filters: Vec<(usize, QoS)>,
    pub owed: VecDeque<Packet<'static>>,
    /// QoS 2 ids received and not yet released (PUBREL): a PUBLISH with one is a duplicate.
    pub qos2_ids: BTreeSet<u16>,
    /// A CONNACK must say the session is present.
    pub expect_present: bool,
    /// Messages published from this global sequence number on are owed to it.
    pub since: u64,
    /// Every PUBLISH received: (payload, qos, retain, new), `new` false for a QoS 2 message
    /// whose id awaits PUBREL (a duplicate by the receiver's rules).
    pub got: Vec<(Vec<u8>, QoS, bool, bool)>,
}

#[derive(Clone, Copy, Debug)]
pub enum Role {
    Pub(usize),
    Sub(usize),
}

#[derive(Clone, Debug)]
pub struct Published {
    pub publisher: usize,
    pub seq: u32,
    /// Global publish order.
    pub gseq: u64,
    pub qos: QoS,
    pub topic: usize,
    pub retain: bool,
}

pub fn payload_of(publisher: usize, seq: u32) -> Vec<u8> {
    format!("p{publisher}-{seq}").into_bytes()
}

fn publish_packet(i: usize, m: &Msg, dup: bool, out: &mut Vec<u8>) {
    let payload = payload_of(i, m.seq);
    enc(
        &Packet::Publish(Publish {
            dup,
            qos: m.qos,
            retain: m.retain,
            topic: NAMES[m.topic],
            pkid: m.pkid,
            payload: &payload,
        }),
        out,
    );
}

/// The broker with its clients around it.
pub struct QWorld {
    pub b: Broker,
    pub now: Instant,
    pub pubs: Vec<Pub>,
    pub subs: Vec<Sub>,
    pub roles: BTreeMap<ConnId, Role>,
    pub published: BTreeMap<Vec<u8>, Published>,
    pub next_gseq: u64,
    /// Messages the broker acknowledged to their publisher (PUBACK / PUBREC).
    pub accepted: BTreeSet<Vec<u8>>,
    pub activity: usize,
}

impl QWorld {
    pub fn new(config: Config) -> Self {
        QWorld {
            b: Broker::new(config, Instant::ZERO).unwrap(),
            now: Instant::ZERO,
            pubs: Vec::new(),
            subs: Vec::new(),
            roles: BTreeMap::new(),
            published: BTreeMap::new(),
            next_gseq: 0,
            accepted: BTreeSet::new(),
            activity: 0,
        }
    }

    /// A subscriber connects and subscribes (without waiting for its CONNACK).
    pub fn add_sub(&mut self, clean: bool, filters: &[(usize, QoS)]) {
        let k = self.subs.len();
        self.subs.push(Sub {
            cid: format!("s{k}"),
            conn: 0,
            clean,
            filters: filters.to_vec(),
            owed: VecDeque::new(),
            qos2_ids: BTreeSet::new(),
            expect_present: false,
            since: 0,
            got: Vec::new(),
        });
        self.connect(&format!("s{k}"), clean, Role::Sub(k));
        self.subscribe(k);
    }

    pub fn add_pub(&mut self, clean: bool) {
        let i = self.pubs.len();
        self.pubs.push(Pub {
            cid: format!("p{i}"),
            conn: 0,
            clean,
            awaiting_connack: false,
            next_pkid: 0,
            next_seq: 0,
            unacked: Vec::new(),
            resend: Vec::new(),
        });
        self.connect(&format!("p{i}"), clean, Role::Pub(i));
    }

    pub fn send(&mut self, conn: ConnId, packets: &[Packet<'_>]) {
        if packets.is_empty() {
            return;
        }
        let mut data = Vec::new();
        for p in packets {
            enc(p, &mut data);
        }
        self.raw(conn, &data);
    }

    pub fn raw(&mut self, c: ConnId, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if trace() {
            let mut pos = 0;
            while let Ok(Decoded::Packet(p, n)) = decode(&data[pos..], usize::MAX) {
                eprintln!("  {:?} -> broker: {:?}", self.roles.get(&c), p);
                pos += n;
            }
        }
        self.activity += 1;
        self.b.handle_bytes(self.now, c, data);
        self.drain();
    }

    /// Drains outputs, the socket writing every byte at once, until writing frees nothing more.
    pub fn drain(&mut self) {
        loop {
            let (outs, _) = drain_all(&mut self.b, &mut Vec::new());
            let mut sent = Vec::new();
            for out in outs {
                match out {
                    Drained::Transmit(c, buf) => {
                        self.activity += 1;
                        let mut pos = 0;
                        while pos < buf.len() {
                            match decode(&buf[pos..], usize::MAX) {
                                Ok(Decoded::Packet(p, n)) => {
                                    if trace() {
                                        eprintln!("  broker -> {:?}: {:?}", self.roles.get(&c), p);
                                    }
                                    self.on_out(c, &p);
                                    pos += n;
                                }
                                other => panic!("bad transmit: {other:?}"),
                            }
                        }
                        sent.push((c, buf.len()));
                    }
                    Drained::Event(Event::Close(c)) => {
                        // A client's current connection is only closed by its own Reconnect.
                        for s in &self.subs {
                            assert_ne!(s.conn, c, "subscriber {} closed by the broker", s.cid);
                        }
                        for p in &self.pubs {
                            assert_ne!(p.conn, c, "publisher {} closed by the broker", p.cid);
                        }
                    }
                    Drained::Event(_) => {}
                }
            }
            if sent.is_empty() {
                return;
            }
            for (c, n) in sent {
                self.b.handle_sent(self.now, c, n);
            }
        }
    }

    fn on_out(&mut self, c: ConnId, p: &Packet<'_>) {
        match self.roles.get(&c).copied() {
            Some(Role::Sub(k)) => self.on_sub_out(k, p),
            Some(Role::Pub(i)) => {
                if self.pubs[i].conn == c {
                    self.on_pub_out(i, p);
                } // else an old connection's last bytes
            }
            None => panic!("transmit on unknown connection {c}: {p:?}"),
        }
    }

    fn on_sub_out(&mut self, k: usize, p: &Packet<'_>) {
        let sub = &mut self.subs[k];
        match p {
            Packet::ConnAck(a) => {
                assert_eq!(a.code, ConnectReturnCode::Accepted);
                if sub.expect_present {
                    assert!(
                        a.session_present,
                        "{}: persistent session lost by the power cut",
                        sub.cid
                    );
                }
                if !a.session_present {
                    sub.qos2_ids.clear();
                }
            }
            Packet::SubAck(a) => {
                let want: Vec<u8> = sub.filters.iter().map(|f| f.1.as_u8()).collect();
                assert_eq!(a.codes, &want[..], "SUBACK codes");
                sub.expect_present = !sub.clean;
            }
            Packet::Publish(pb) => {
                let new = match pb.qos {
                    QoS::AtMostOnce => true,
                    QoS::AtLeastOnce => {
                        sub.owed.push_back(Packet::PubAck(pb.pkid));
                        true
                    }
                    QoS::ExactlyOnce => {
                        sub.owed.push_back(Packet::PubRec(pb.pkid));
                        sub.qos2_ids.insert(pb.pkid)
                    }
                };
                sub.got.push((pb.payload.to_vec(), pb.qos, pb.retain, new));
            }
            Packet::PubRel(id) => {
                sub.qos2_ids.remove(id);
                sub.owed.push_back(Packet::PubComp(*id));
            }
            other => panic!("unexpected {other:?} to subscriber"),
        }
    }

    fn on_pub_out(&mut self, i: usize, p: &Packet<'_>) {
        let pb = &mut self.pubs[i];
        match p {
            Packet::ConnAck(a) => {
                assert_eq!(a.code, ConnectReturnCode::Accepted);
                assert!(pb.awaiting_connack, "second CONNACK to {}", pb.cid);
                pb.awaiting_connack = false;
                if !a.session_present {
                    // No session on the server, so none on the client (MQTT 3.1.1 3.2.2.2).
                    pb.unacked.clear();
                }
                // Resume the session: resend what is unacknowledged, in order (MQTT-4.4.0-1).
                let mut data = Vec::new();
                for m in &pb.unacked {
                    if m.rec {
                        enc(&Packet::PubRel(m.pkid), &mut data);
                    } else {
                        publish_packet(i, m, true, &mut data);
                    }
                }
                for m in &mut pb.unacked {
                    m.rel_sent = m.rec;
                }
                // Sent once this output is drained (not from inside the drain).
                pb.resend.extend_from_slice(&data);
            }
            Packet::PubAck(id) => {
                if let Some(k) = pb
                    .unacked
                    .iter()
                    .position(|m| m.pkid == *id && m.qos == QoS::AtLeastOnce)
                {
                    let m = pb.unacked.remove(k);
                    self.accepted.insert(payload_of(i, m.seq));
                }
            }
            Packet::PubRec(id) => {
                if let Some(m) = pb
                    .unacked
                    .iter_mut()
                    .find(|m| m.pkid == *id && m.qos == QoS::ExactlyOnce)
                {
                    m.rec = true;
                    self.accepted.insert(payload_of(i, m.seq));
                }
            }
            Packet::PubComp(id) => {
                if let Some(k) = pb
                    .unacked
                    .iter()
                    .position(|m| m.pkid == *id && m.qos == QoS::ExactlyOnce && m.rec)
                {
                    pb.unacked.remove(k);
                }
            }
            other => panic!("unexpected {other:?} to publisher"),
        }
    }

    /// A new connection for `role` sends CONNECT (and, for a publisher, its resends if the
    /// CONNACK came at once).
    pub fn connect(&mut self, cid: &str, clean: bool, role: Role) -> ConnId {
        let c = self.b.handle_accept(self.now, "q").expect("accept");
        self.roles.insert(c, role);
        match role {
            Role::Pub(i) => {
                let pb = &mut self.pubs[i];
                pb.conn = c;
                pb.clean = clean;
                pb.awaiting_connack = true;
            }
            Role::Sub(k) => self.subs[k].conn = c,
        }
        self.drain();
        self.send(
            c,
            &[Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: clean,
                keep_alive_s: 0,
                client_id: cid,
                will: None,
                username: None,
                password: None,
            })],
        );
        self.resends();
        c
    }

    /// Sends what publishers queued to resend on their CONNACK.
    pub fn resends(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.pubs.len() {
                let data = std::mem::take(&mut self.pubs[i].resend);
                if !data.is_empty() {
                    any = true;
                    let c = self.pubs[i].conn;
                    self.raw(c, &data);
                }
            }
            if !any {
                return;
            }
        }
    }

    pub fn subscribe(&mut self, k: usize) {
        let sub = &mut self.subs[k];
        sub.since = self.next_gseq;
        let c = sub.conn;
        let list: Vec<(&str, QoS)> = sub.filters.iter().map(|&(f, q)| (FILTERS[f], q)).collect();
        self.send(
            c,
            &[Packet::Subscribe(Subscribe {
                pkid: 1,
                filters: SubscribeFilters::List(&list),
            })],
        );
    }

    pub fn op(&mut self, op: &ClientOp) {
        match op {
            ClientOp::Publish {
                p,
                topic,
                qos,
                retain,
            } => self.publish(p.index(self.pubs.len()), *topic, *qos, *retain),
            ClientOp::Retransmit { p, m } => {
                let i = p.index(self.pubs.len());
                if self.pubs[i].awaiting_connack {
                    return;
                }
                let cands: Vec<Msg> = self.pubs[i]
                    .unacked
                    .iter()
                    .filter(|m| !m.rec)
                    .cloned()
                    .collect();
                if cands.is_empty() {
                    return;
                }
                let msg = &cands[m.index(cands.len())];
                let mut data = Vec::new();
                publish_packet(i, msg, true, &mut data);
                let c = self.pubs[i].conn;
                self.raw(c, &data);
            }
            ClientOp::Release { p, m } => {
                let i = p.index(self.pubs.len());
                let pb = &mut self.pubs[i];
                if pb.awaiting_connack {
                    return;
                }
                let cands: Vec<usize> = (0..pb.unacked.len())
                    .filter(|&k| pb.unacked[k].rec)
                    .collect();
                if cands.is_empty() {
                    return;
                }
                let k = cands[m.index(cands.len())];
                pb.unacked[k].rel_sent = true;
                let id = pb.unacked[k].pkid;
                let c = pb.conn;
                self.send(c, &[Packet::PubRel(id)]);
            }
            ClientOp::SubAcks { s, n } => {
                let k = s.index(self.subs.len());
                self.sub_acks(k, *n);
            }
            ClientOp::Reconnect { p, clean, how } => {
                self.reconnect(p.index(self.pubs.len()), *clean, *how)
            }
        }
    }

    /// The publisher goes (0: DISCONNECT, 1: socket drop, 2: taken over) and reconnects.
    pub fn reconnect(&mut self, i: usize, clean: bool, how: u8) {
        if self.pubs[i].clean {
            // A clean session lasts as long as its connection (MQTT-3.1.2-6): what was in
            // flight in it is not resent in the next one.
            self.pubs[i].unacked.clear();
        }
        let old = self.pubs[i].conn;
        self.pubs[i].conn = 0;
        match how {
            0 => {
                self.send(old, &[Packet::Disconnect]);
                self.b.handle_closed(self.now, old);
                self.drain();
            }
            1 => {
                self.b.handle_closed(self.now, old);
                self.drain();
            }
            _ => {}
        }
        let cid = self.pubs[i].cid.clone();
        self.connect(&cid, clean, Role::Pub(i));
    }

    pub fn publish(&mut self, i: usize, topic: usize, qos: QoS, retain: bool) {
        let pb = &mut self.pubs[i];
        if pb.awaiting_connack {
            return;
        }
        let seq = pb.next_seq;
        pb.next_seq += 1;
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else {
            // Never reused: a late acknowledgement for an earlier use cannot be mistaken.
            pb.next_pkid += 1;
            pb.next_pkid
        };
        let m = Msg {
            seq,
            pkid,
            qos,
            topic,
            retain,
            rec: false,
            rel_sent: false,
        };
        if qos != QoS::AtMostOnce {
            pb.unacked.push(m.clone());
        }
        self.published.insert(
            payload_of(i, seq),
            Published {
                publisher: i,
                seq,
                gseq: self.next_gseq,
                qos,
                topic,
                retain,
            },
        );
        self.next_gseq += 1;
        let mut data = Vec::new();
        publish_packet(i, &m, false, &mut data);
        let c = self.pubs[i].conn;
        self.raw(c, &data);
    }

    pub fn sub_acks(&mut self, k: usize, n: usize) {
        let mut acks = Vec::new();
        while acks.len() < n {
            match self.subs[k].owed.pop_front() {
                Some(p) => acks.push(p),
                None => break,
            }
        }
        let c = self.subs[k].conn;
        self.send(c, &acks);
    }

    /// Everyone completes their handshakes until nothing moves; `io` runs first in every round
    /// (the disk syncing everything, with persistence) and the broker's journal must be caught
    /// up at the end.
    pub fn finish(&mut self, mut io: impl FnMut(&mut Broker, Instant)) {
        for round in 0.. {
            assert!(round < 10_000, "no quiescence");
            let before = self.activity;
            io(&mut self.b, self.now);
            self.drain();
            self.resends();
            for k in 0..self.subs.len() {
                self.sub_acks(k, usize::MAX);
            }
            for i in 0..self.pubs.len() {
                let mut rels = Vec::new();
                for m in &mut self.pubs[i].unacked {
                    if m.rec && !m.rel_sent {
                        m.rel_sent = true;
                        rels.push(Packet::PubRel(m.pkid));
                    }
                }
                let c = self.pubs[i].conn;
                self.send(c, &rels);
            }
            if self.activity == before && !self.b.journal_behind() {
                break;
            }
        }
    }

    /// Checks the delivery guarantees on a finished run.
    pub fn check(&self, delivery: Delivery) {
        for p in &self.pubs {
            assert!(!p.awaiting_connack, "{} never got its CONNACK", p.cid);
            assert!(
                p.unacked.is_empty(),
                "{} still waits for acknowledgements at the end: {:?}",
                p.cid,
                p.unacked
            );
        }
        for sub in &self.subs {
            let k = &sub.cid;
            assert_eq!(self.b.inflight_messages(k), Some(0), "{k} in flight at end");
            assert_eq!(self.b.queued_messages(k), Some(0), "{k} queued at end");
            assert!(sub.owed.is_empty());
            // A filter repeated in the SUBSCRIBE replaces the earlier one (MQTT-3.8.4-3).
            let subs: BTreeMap<usize, QoS> = sub.filters.iter().copied().collect();
            // Effective QoS of a topic for this subscriber: the highest over its matching filters.
            let granted = |t: usize| {
                subs.iter()
                    .filter(|(f, _)| topic::matches(FILTERS[**f], NAMES[t]))
                    .map(|(_, q)| *q)
                    .max()
            };
            let mut count: BTreeMap<&[u8], usize> = BTreeMap::new();
            let mut first_seq: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for (payload, qos, retain, new) in &sub.got {
                let m = self
                    .published
                    .get(payload)
                    .unwrap_or_else(|| panic!("{k} got unknown payload {payload:?}"));
                let g = granted(m.topic)
                    .unwrap_or_else(|| panic!("{k} got {m:?} on a topic it did not subscribe to"));
                match delivery {
                    // Everyone subscribed before the first publish and never again: every
                    // delivery is live, and the broker, never restarted, has no reason to send
                    // a QoS 2 message twice, even with DUP (so every PUBLISH counts).
                    Delivery::Live => {
                        assert!(!retain, "{k}: RETAIN set on a live delivery of {m:?}");
                    }
                    // A clean subscriber subscribes again after a power cut (and gets retained
                    // messages); a subscriber may get again a QoS 2 message whose PUBREL it did
                    // not send before the cut, which it recognises by its id (not `new`).
                    Delivery::PowerCuts { .. } => {
                        if *retain {
                            // A retained message sent on a (re)subscription.
                            assert!(
                                m.retain,
                                "{k}: RETAIN set on a message published without it"
                            );
                            continue;
                        }
                        if !new {
                            continue;
                        }
                    }
                }
                assert_eq!(*qos, m.qos.min(g), "{k}: delivery QoS of {m:?}");
                let n = count.entry(payload).or_default();
                *n += 1;
                if *n == 1 && *qos != QoS::AtMostOnce {
                    first_seq.entry(m.publisher).or_default().push(m.seq);
                }
                if *qos == QoS::ExactlyOnce {
                    assert_eq!(
                        *n,
                        1,
                        "{k}: QoS 2 message {} delivered twice",
                        String::from_utf8_lossy(payload)
                    );
                }
            }
            for payload in &self.accepted {
                let m = &self.published[payload];
                let owed = match (granted(m.topic), delivery) {
                    (None, _) => false,
                    (Some(_), Delivery::Live) => true,
                    // Delivered at QoS 0 (granted 0), it is not kept: a power cut may lose it.
                    (Some(g), Delivery::PowerCuts { cut_gseq, .. }) => {
                        m.qos.min(g) != QoS::AtMostOnce || m.gseq >= cut_gseq
                    }
                };
                if m.gseq >= sub.since && owed {
                    assert!(
                        count.get(&payload[..]).copied().unwrap_or(0) >= 1,
                        "{k}: message {} acknowledged to its publisher never delivered{}",
                        String::from_utf8_lossy(payload),
                        match delivery {
                            Delivery::Live => String::new(),
                            Delivery::PowerCuts { cuts, .. } => format!(" ({cuts} power cuts)"),
                        }
                    );
                }
            }
            // Order holds within one broker's life only: messages lost with a power cut come
            // again after later ones.
            if let Delivery::Live = delivery {
                for (p, seqs) in &first_seq {
                    assert!(
                        seqs.windows(2).all(|w| w[0] < w[1]),
                        "{k}: messages from publisher {p} out of order: {seqs:?}"
                    );
                }
            }
        }
        if let Delivery::Live = delivery {
            assert_eq!(self.b.stats().messages_dropped, 0, "messages dropped");
        }
    }
}

/// Whether the broker of a run may have restarted, which changes what a subscriber is owed.
#[derive(Clone, Copy, Debug)]
pub enum Delivery {
    /// One broker for the whole run.
    Live,
    /// Power cuts restored the broker from its journal `cuts` times, the last when the global
    /// publish sequence was at `cut_gseq`.
    PowerCuts { cuts: usize, cut_gseq: u64 },
}
