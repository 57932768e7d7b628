//! Where the broker follows mosquitto 2.0 (see `broker/conformance.rs`): each test says which
//! mosquitto source line or observed behaviour it pins.

use super::*;

fn quiet() -> Config {
    Config {
        verbose: true,
        ..Config::for_tests()
    }
}

fn will<'a>(topic: &'a str, payload: &'a [u8], retain: bool) -> Will<'a> {
    Will {
        topic,
        payload,
        qos: QoS::AtMostOnce,
        retain,
    }
}

impl Harness {
    /// Sends a CONNECT of any protocol and returns the connection and what it got.
    fn connect_raw(
        &mut self,
        protocol: Protocol,
        id: &str,
        clean: bool,
        keep_alive_s: u16,
        will: Option<Will<'_>>,
    ) -> (ConnId, Vec<Pkt>) {
        let c = self.accept();
        self.bytes(
            c,
            &Packet::Connect(Connect {
                protocol,
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
    fn has_log(&self, line: &str) -> bool {
        self.logs.iter().any(|l| l == line)
    }
    fn log_index(&self, line: &str) -> usize {
        self.logs
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no log line {line:?} in {:#?}", self.logs))
    }
}

// ----- max_keepalive -----

#[test]
fn max_keepalive_refuses_longer_or_zero_keepalive_with_connack_2() {
    let mut h = Harness::with(Config {
        max_keepalive_s: 60,
        ..quiet()
    });
    let (ok, got) = h.connect_with("ok", true, 60, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    let (long, got) = h.connect_with("long", true, 61, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
    let (never, got) = h.connect_with("never", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
    assert_eq!(h.closed, vec![long, never]);
    assert!(!h.closed.contains(&ok));
    assert!(h.has_log("Bad socket read/write on client long: Invalid arguments provided."));
    assert!(h.has_log("Sending CONNACK to long (0, 2)"));
    // The same 3.1 client is refused too (mosquitto 2.0.12 extended it to 3.1 and 3.1.1).
    let (_, got) = h.connect_raw(Protocol::V31, "old", true, 61, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
}

#[test]
fn max_keepalive_refusal_does_not_take_over_the_connected_client() {
    let mut h = Harness::with(Config {
        max_keepalive_s: 60,
        ..quiet()
    });
    let (first, _) = h.connect_with("dev", false, 30, None);
    let (second, got) = h.connect_with("dev", false, 120, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
    assert_eq!(h.closed, vec![second]);
    // The first connection still works.
    h.bytes(first, &Packet::PingReq);
    assert_eq!(h.take(first), vec![Pkt::PingResp]);
}

#[test]
fn max_keepalive_zero_is_no_limit() {
    let mut h = Harness::new();
    let (_, got) = h.connect_with("k", true, u16::MAX, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
}

// ----- client ids -----

#[test]
fn allow_zero_length_clientid_false_refuses_an_empty_id() {
    let mut h = Harness::with(Config {
        allow_zero_length_clientid: false,
        ..quiet()
    });
    let (c, got) = h.connect_with("", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
    assert_eq!(h.closed, vec![c]);
    assert!(h.has_log("Client <unknown> disconnected due to protocol error."));
}

#[test]
fn mqtt_3_1_client_with_an_empty_id_gets_connack_2() {
    // handle_connect.c:612; observed with mosquitto 2.0.11: CONNACK (0, 2).
    let mut h = Harness::new();
    let (c, got) = h.connect_raw(Protocol::V31, "", true, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 2)]);
    assert_eq!(h.closed, vec![c]);
}

// ----- 3.1: no session-present flag -----

#[test]
fn mqtt_3_1_connack_never_says_session_present() {
    // handle_connect.c:135: only 3.1.1 (and 5) set the flag; observed with mosquitto 2.0.11.
    let mut h = Harness::new();
    let (a, _) = h.connect_raw(Protocol::V31, "p31", false, 0, None);
    h.b.handle_closed(h.now, a);
    let (_, got) = h.connect_raw(Protocol::V31, "p31", false, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    assert_eq!(h.b.session_count(), 1, "the session is there all the same");
    // The same client speaking 3.1.1 is told.
    let (b, _) = h.connect_raw(Protocol::V311, "p311", false, 0, None);
    h.b.handle_closed(h.now, b);
    let (_, got) = h.connect_raw(Protocol::V311, "p311", false, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(true, 0)]);
}

// ----- topic depth: TOPIC_HIERARCHY_LIMIT -----

#[test]
fn topics_up_to_200_separators_work_deeper_is_refused() {
    let mut h = Harness::new();
    let deepest = "a/".repeat(200) + "z"; // 201 levels
    let too_deep = "a/".repeat(201) + "z";
    let (s, _) = h.connect("s", true);
    assert_eq!(
        h.subscribe(s, &[(deepest.as_str(), QoS::AtMostOnce)]),
        vec![Pkt::SubAck(1, vec![0])]
    );
    // A deeper filter closes its subscriber without SUBACK, as mosquitto does.
    let (s2, _) = h.connect("s2", true);
    assert_eq!(
        h.subscribe(
            s2,
            &[
                ("ok", QoS::AtMostOnce),
                (too_deep.as_str(), QoS::AtMostOnce)
            ]
        ),
        vec![]
    );
    assert_eq!(core::mem::take(&mut h.closed), vec![s2]);
    let (p, _) = h.connect("p", true);
    h.publish(p, &deepest, "x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![pubp(&deepest, "x", 0, 0)]);
    assert!(h.closed.is_empty());
    // handle_publish.c:204: a deeper PUBLISH topic disconnects its publisher.
    h.publish(p, &too_deep, "x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![]);
    assert_eq!(h.closed, vec![p]);
    assert!(h.has_log("Client p disconnected due to malformed packet."));
}

#[test]
fn will_topic_deeper_than_the_limit_is_refused_without_connack() {
    let mut h = Harness::new();
    let too_deep = "a/".repeat(201) + "z";
    let (c, got) = h.connect_with("w", true, 0, Some(will(&too_deep, b"x", false)));
    assert_eq!(got, vec![]);
    assert_eq!(h.closed, vec![c]);
}

// ----- acknowledgement before or after the copy to oneself -----

#[test]
fn qos2_to_own_subscription_pubrec_comes_before_the_copy() {
    // Observed with mosquitto 2.0.11: PUBREC, then (at PUBREL) the PUBLISH to itself.
    let mut h = Harness::new();
    let (me, _) = h.connect("me", true);
    h.subscribe(me, &[("t", QoS::ExactlyOnce)]);
    h.publish(me, "t", "x", QoS::ExactlyOnce, false, 7);
    assert_eq!(h.take(me), vec![Pkt::PubRec(7), pubp("t", "x", 2, 1)]);
    let rec = h.log_index("Sending PUBREC to me (m7, rc0)");
    let copy = h.log_index("Sending PUBLISH to me (d0, q2, r0, m1, 't', ... (1 bytes))");
    assert!(rec < copy, "{:#?}", h.logs);
}

#[test]
fn qos1_to_own_subscription_copy_comes_before_the_puback() {
    // handle_publish.c:334-338 queues to subscribers, then sends PUBACK; observed with 2.0.11.
    let mut h = Harness::new();
    let (me, _) = h.connect("me", true);
    h.subscribe(me, &[("t", QoS::AtLeastOnce)]);
    h.publish(me, "t", "x", QoS::AtLeastOnce, false, 7);
    assert_eq!(h.take(me), vec![pubp("t", "x", 1, 1), Pkt::PubAck(7)]);
}

#[test]
fn qos2_pubrec_goes_before_other_pending_bytes_only_of_this_publish() {
    // Another subscriber's copy is unaffected; the publisher's earlier bytes stay first.
    let mut h = Harness::new();
    let (other, _) = h.connect("other", true);
    h.subscribe(other, &[("t", QoS::ExactlyOnce)]);
    let (me, _) = h.connect("me", true);
    h.subscribe(me, &[("t", QoS::AtMostOnce)]);
    let mut v = Vec::new();
    encode_to_vec(&Packet::PingReq, &mut v).unwrap();
    encode_to_vec(
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t",
            pkid: 9,
            payload: b"y",
        }),
        &mut v,
    )
    .unwrap();
    h.b.handle_bytes(h.now, me, &v);
    let got = h.drain();
    let to = |c: ConnId| -> Vec<Pkt> {
        got.iter()
            .filter(|(x, _)| *x == c)
            .map(|(_, p)| p.clone())
            .collect()
    };
    assert_eq!(
        to(me),
        vec![Pkt::PingResp, Pkt::PubRec(9), pubp("t", "y", 0, 0)]
    );
    assert_eq!(to(other), vec![pubp("t", "y", 2, 1)]);
}

// ----- wills -----

#[test]
fn will_to_control_topic_is_refused_without_connack() {
    // handle_connect.c:378: MOSQ_ERR_ACL_DENIED, the connection closed before any CONNACK.
    let mut h = Harness::new();
    let (c, got) = h.connect_with("w", true, 0, Some(will("$CONTROL/x", b"x", false)));
    assert_eq!(got, vec![]);
    assert_eq!(h.closed, vec![c]);
    assert!(h.has_log("Bad socket read/write on client <unknown>: Access denied by ACL."));
    // `$CONTROLS/x` is an ordinary topic.
    let (_, got) = h.connect_with("w2", true, 0, Some(will("$CONTROLS/x", b"x", false)));
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
}

#[test]
fn will_payload_over_message_size_limit_gets_connack_5() {
    // handle_connect.c:390-396: CONNACK_REFUSED_NOT_AUTHORIZED for 3.1.1.
    let mut h = Harness::with(Config {
        message_size_limit_bytes: 4,
        ..quiet()
    });
    let (c, got) = h.connect_with("big", true, 0, Some(will("w", b"12345", false)));
    assert_eq!(got, vec![Pkt::ConnAck(false, 5)]);
    assert_eq!(h.closed, vec![c]);
    assert!(h.has_log("Client big connected with too large Will payload"));
    let (_, got) = h.connect_with("fits", true, 0, Some(will("w", b"1234", false)));
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
}

// ----- takeover and the old connection's will -----

/// Connects `dev` with a will, then takes it over; returns what the watcher received.
fn takeover(old_clean: bool, new_clean: bool) -> Vec<Pkt> {
    let mut h = Harness::new();
    let (watch, _) = h.connect("watch", true);
    h.subscribe(watch, &[("will/#", QoS::AtMostOnce)]);
    let (first, _) = h.connect_with("dev", old_clean, 0, Some(will("will/dev", b"gone", false)));
    let second = h.accept();
    h.bytes(
        second,
        &Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: new_clean,
            keep_alive_s: 0,
            client_id: "dev",
            will: None,
            username: None,
            password: None,
        }),
    );
    let got = h.drain();
    let connack = got.iter().find(|(c, _)| *c == second).map(|(_, p)| p);
    assert_eq!(connack, Some(&Pkt::ConnAck(!old_clean && !new_clean, 0)));
    assert_eq!(h.closed, vec![first]);
    got.into_iter()
        .filter(|(c, _)| *c == watch)
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn takeover_of_a_persistent_session_by_a_persistent_client_keeps_the_will() {
    // handle_connect.c:193-198: the will goes only if either side has a clean session.
    assert_eq!(takeover(false, false), vec![]);
    let will = vec![pubp("will/dev", "gone", 0, 0)];
    assert_eq!(takeover(true, false), will);
    assert_eq!(takeover(false, true), will);
    assert_eq!(takeover(true, true), will);
}

// ----- upgrade_outgoing_qos, retain_available -----

#[test]
fn upgrade_outgoing_qos_delivers_at_the_granted_qos() {
    let mut h = Harness::with(Config {
        upgrade_outgoing_qos: true,
        ..quiet()
    });
    let (p, _) = h.connect("p", true);
    h.publish(p, "r", "kept", QoS::AtMostOnce, true, 0);
    let (s, _) = h.connect("s", true);
    let got = h.subscribe(s, &[("r", QoS::AtLeastOnce), ("t", QoS::ExactlyOnce)]);
    assert_eq!(
        got[1],
        Pkt::Pub {
            topic: "r".into(),
            payload: "kept".into(),
            qos: 1,
            dup: false,
            retain: true,
            pkid: 1
        }
    );
    h.publish(p, "t", "x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![pubp("t", "x", 2, 2)]);
    // Off (the default): the lower of the two.
    let mut h = Harness::new();
    let (s, _) = h.connect("s", true);
    h.subscribe(s, &[("t", QoS::ExactlyOnce)]);
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![pubp("t", "x", 0, 0)]);
}

#[test]
fn retain_available_false_closes_a_retained_publish_and_refuses_a_retained_will() {
    let mut h = Harness::with(Config {
        retain_available: false,
        ..quiet()
    });
    let (p, _) = h.connect("p", true);
    h.publish(p, "t", "x", QoS::AtMostOnce, false, 0);
    assert!(h.closed.is_empty());
    h.publish(p, "t", "x", QoS::AtLeastOnce, true, 1);
    assert_eq!(h.take(p), vec![], "no PUBACK");
    assert_eq!(h.closed, vec![p]);
    assert_eq!(h.b.retained_count(), 0);
    // handle_connect.c:572: a retained will closes the connection before CONNACK.
    let (c, got) = h.connect_with("w", true, 0, Some(will("w", b"x", true)));
    assert_eq!(got, vec![]);
    assert_eq!(h.closed, vec![p, c]);
    let (_, got) = h.connect_with("w2", true, 0, Some(will("w", b"x", false)));
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
}

// ----- the last 3.1 / 3.1.1 differences, as raw bytes (checked against mosquitto 2.0.11) -----

/// CONNECT, clean session, keep alive 60, client id `raw`, for protocol name and level.
fn raw_connect(name: &[u8], level: u8) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, 0x02, 0, 60, 0, 3]);
    body.extend_from_slice(b"raw");
    let mut p = vec![0x10, body.len() as u8];
    p.extend(body);
    p
}

/// PUBREL of packet id 7 with the DUP bit set (fixed-header flags 0b1010).
const PUBREL_DUP: [u8; 4] = [0x6A, 0x02, 0x00, 0x07];

#[test]
fn mqtt31_pubrel_with_dup_gets_pubcomp() {
    let mut h = Harness::with(quiet());
    let c = h.accept();
    // CONNECT and the PUBREL in one read: the switch to 3.1's rules happens between them.
    let mut bytes = raw_connect(b"MQIsdp", 3);
    bytes.extend_from_slice(&PUBREL_DUP);
    h.b.handle_bytes(h.now, c, &bytes);
    assert_eq!(h.take(c), vec![Pkt::ConnAck(false, 0), Pkt::PubComp(7)]);
    // SUBSCRIBE with DUP (0x8A), as 3.1 allowed, too.
    let mut sub = vec![0x8A, 8, 0, 1, 0, 3];
    sub.extend_from_slice(b"a/b\x01");
    h.b.handle_bytes(h.now, c, &sub);
    assert_eq!(h.take(c), vec![Pkt::SubAck(1, vec![1])]);
    assert!(h.closed.is_empty());
}

#[test]
fn mqtt311_pubrel_with_dup_is_malformed() {
    let mut h = Harness::with(quiet());
    let c = h.accept();
    let mut bytes = raw_connect(b"MQTT", 4);
    bytes.extend_from_slice(&PUBREL_DUP);
    h.b.handle_bytes(h.now, c, &bytes);
    assert_eq!(h.take(c), vec![Pkt::ConnAck(false, 0)]);
    assert_eq!(h.closed, vec![c]);
}

fn raw_subscribe(levels: usize) -> Vec<u8> {
    let filter = "a/".repeat(levels - 1) + "a";
    let mut body = vec![0, 1];
    body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    body.extend_from_slice(filter.as_bytes());
    body.push(0);
    let mut p = vec![0x82];
    let mut n = body.len();
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        p.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    p.extend(body);
    p
}

#[test]
fn subscribe_deeper_than_200_separators_closes_without_suback() {
    let mut h = Harness::with(quiet());
    let c = h.accept();
    h.b.handle_bytes(h.now, c, &raw_connect(b"MQTT", 4));
    h.take(c);
    h.b.handle_bytes(h.now, c, &raw_subscribe(201));
    assert_eq!(
        h.take(c),
        vec![Pkt::SubAck(1, vec![0])],
        "200 separators pass"
    );
    h.b.handle_bytes(h.now, c, &raw_subscribe(202));
    assert_eq!(h.take(c), vec![], "no SUBACK");
    assert_eq!(h.closed, vec![c]);
    assert!(h.has_log("Invalid subscription string from test, disconnecting."));
    assert!(h.has_log("Client raw disconnected due to malformed packet."));
}
