//! The behaviour knobs the `mosquitto-2.0` profile sets ([`Profile`]), one test each, against
//! this broker's default behaviour where the difference is the point.

use super::*;

const DROP_LOG: &str = "Outgoing messages are being dropped for client slow.";

fn packets_to(out: &[(ConnId, Pkt)], conn: ConnId) -> Vec<Pkt> {
    out.iter()
        .filter(|(c, _)| *c == conn)
        .map(|(_, p)| p.clone())
        .collect()
}

/// A QoS 2 subscriber `sub` and a publisher `pub` on a broker with `config`.
fn qos2_pair(config: Config) -> (Harness, ConnId, ConnId) {
    let mut h = Harness::with(config);
    let (s, _) = h.connect("sub", true);
    h.subscribe(s, &[("t", QoS::ExactlyOnce)]);
    let (p, _) = h.connect("pub", true);
    (h, s, p)
}

#[test]
fn qos2_is_forwarded_only_when_its_pubrel_arrives() {
    let (mut h, s, p) = qos2_pair(Config {
        qos2_forward_on_pubrel: true,
        ..Config::for_tests()
    });
    h.publish(p, "t", "m", QoS::ExactlyOnce, true, 5);
    let out = h.drain();
    assert_eq!(packets_to(&out, p), vec![Pkt::PubRec(5)]);
    assert_eq!(packets_to(&out, s), vec![], "nothing before PUBREL");
    // The publisher did not see the PUBREC and sends the message again: acknowledged again,
    // still held once.
    h.publish(p, "t", "m", QoS::ExactlyOnce, true, 5);
    let out = h.drain();
    assert_eq!(packets_to(&out, p), vec![Pkt::PubRec(5)]);
    assert_eq!(packets_to(&out, s), vec![]);
    h.bytes(p, &Packet::PubRel(5));
    let out = h.drain();
    assert_eq!(packets_to(&out, p), vec![Pkt::PubComp(5)]);
    assert_eq!(
        packets_to(&out, s),
        vec![pubp("t", "m", 2, 1)],
        "once, at PUBREL"
    );
    // Retained at release: a later subscriber gets it.
    let (late, _) = h.connect("late", true);
    let got = h.subscribe(late, &[("t", QoS::AtMostOnce)]);
    assert!(
        got.iter()
            .any(|x| matches!(x, Pkt::Pub { retain: true, .. })),
        "{got:?}"
    );
    // A second PUBREL releases nothing more.
    h.bytes(p, &Packet::PubRel(5));
    let out = h.drain();
    assert_eq!(packets_to(&out, p), vec![Pkt::PubComp(5)]);
    assert_eq!(packets_to(&out, s), vec![]);
}

#[test]
fn qos2_is_forwarded_on_publish_by_default() {
    let (mut h, s, p) = qos2_pair(Config::for_tests());
    h.publish(p, "t", "m", QoS::ExactlyOnce, false, 5);
    let out = h.drain();
    assert_eq!(packets_to(&out, p), vec![Pkt::PubRec(5)]);
    assert_eq!(packets_to(&out, s), vec![pubp("t", "m", 2, 1)]);
}

#[test]
fn a_held_qos2_message_that_is_too_large_is_acknowledged_and_never_forwarded() {
    let (mut h, s, p) = qos2_pair(Config {
        qos2_forward_on_pubrel: true,
        message_size_limit_bytes: 3,
        verbose: true,
        ..Config::for_tests()
    });
    h.publish(p, "t", "toolong", QoS::ExactlyOnce, false, 9);
    h.bytes(p, &Packet::PubRel(9));
    let out = h.drain();
    assert_eq!(packets_to(&out, p), vec![Pkt::PubRec(9), Pkt::PubComp(9)]);
    assert_eq!(packets_to(&out, s), vec![]);
    assert_eq!(h.b.stats().messages_dropped, 1);
}

/// A subscriber with a window of 2 that acknowledges nothing, and a publisher sending 20 QoS 1
/// messages at once, with a queue bound of 10.
fn slow(backpressure: bool) -> (Harness, Vec<(ConnId, Pkt)>, ConnId, ConnId) {
    let mut h = Harness::with(Config {
        max_inflight_messages: 2,
        max_queued_messages: 10,
        queue_backpressure: backpressure,
        log_notices: true,
        ..Config::for_tests()
    });
    let (s, _) = h.connect("slow", true);
    h.subscribe(s, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("fast", true);
    h.b.handle_bytes(h.now, p, &publishes(1..=20, QoS::AtLeastOnce));
    let out = h.drain();
    (h, out, s, p)
}

#[test]
fn without_backpressure_a_full_queue_drops_announces_and_acknowledges_at_once() {
    let (h, out, s, p) = slow(false);
    assert_eq!(
        packets_to(&out, p),
        (1..=20).map(Pkt::PubAck).collect::<Vec<_>>(),
        "every PUBACK at once: no backpressure"
    );
    assert_eq!(packets_to(&out, s).len(), 2, "the window");
    assert_eq!(h.b.queued_messages("slow"), Some(10));
    assert_eq!(h.b.stats().messages_dropped, 8);
    assert_eq!(
        h.logs.iter().filter(|l| *l == DROP_LOG).count(),
        8,
        "{:?}",
        h.logs
    );
    assert!(!held(&h, p));
}

#[test]
fn with_backpressure_the_same_burst_loses_nothing() {
    let (h, out, _, p) = slow(true);
    assert!(packets_to(&out, p).len() < 20, "PUBACKs withheld");
    assert!(held(&h, p));
    assert_eq!(h.b.stats().messages_dropped, 0);
    assert!(!h.logs.iter().any(|l| l == DROP_LOG));
}

const TIMEOUT_LOG: &str = "Client esp has exceeded timeout, disconnecting.";

fn closed_at(period_s: u64, ping_at_ms: Option<u64>) -> u64 {
    let mut h = Harness::with(Config {
        keepalive_check_period: Duration::from_secs(period_s),
        log_notices: true,
        ..Config::for_tests()
    });
    let (esp, _) = h.connect_with("esp", true, 10, None);
    if let Some(t) = ping_at_ms {
        h.at(t);
        h.bytes(esp, &Packet::PingReq);
        h.drain();
    }
    let mut t = ping_at_ms.unwrap_or(0);
    while h.closed.is_empty() {
        t = h.b.poll_timeout().expect("a keep-alive timer").as_millis();
        assert!(t < 60_000, "never closed");
        h.at(t);
        h.drain();
    }
    assert_eq!(h.closed, vec![esp]);
    assert!(h.logs.iter().any(|l| l == TIMEOUT_LOG));
    t
}

#[test]
fn keepalive_is_checked_on_the_scan_period_so_a_dead_client_is_closed_later() {
    // Keep alive 10 s: 1.5 x = 15 s. Exact timers close at 15 s.
    assert_eq!(closed_at(0, None), 15_000);
    // mosquitto: silent for more than 15 whole seconds (16 s), seen by the scan at 18 s.
    assert_eq!(closed_at(6, None), 18_000);
    // Heard at 5.5 s (second 5): due after second 20, seen by the scan at 24 s; exact: 20.5 s.
    assert_eq!(closed_at(0, Some(5_500)), 20_500);
    assert_eq!(closed_at(6, Some(5_500)), 24_000);
    // Never before 1.5 x keep alive, never more than a period (and the truncated second) after.
    for ping in [1_000, 2_300, 4_999, 7_000, 11_000] {
        let exact = closed_at(0, Some(ping));
        let scanned = closed_at(6, Some(ping));
        assert!(
            scanned > exact && scanned <= exact + 7_000,
            "{ping}: {exact} {scanned}"
        );
        assert_eq!(scanned % 6_000, 0, "on a scan");
    }
}

/// Takes what the broker hands to the journal; the file a power cut would leave is what was
/// handed over (each write synced at once).
fn take_journal(h: &mut Harness, file: &mut Vec<u8>) -> Vec<JournalWrite> {
    let mut writes = Vec::new();
    let mut buf = Vec::new();
    while let Some((how, lsn)) = h.b.poll_journal(&mut buf) {
        match how {
            JournalWrite::Append => file.extend_from_slice(&buf),
            JournalWrite::Replace => *file = core::mem::take(&mut buf),
        }
        buf.clear();
        writes.push(how);
        h.b.handle_durable(h.now, lsn);
    }
    writes
}

fn autosaving() -> Config {
    Config {
        persistence: true,
        autosave_interval: Duration::from_secs(10),
        log_notices: true,
        ..Config::for_tests()
    }
}

#[test]
fn autosave_snapshots_on_its_timer_and_acknowledges_without_waiting() {
    let mut h = Harness::with(autosaving());
    let mut file = Vec::new();
    assert_eq!(
        take_journal(&mut h, &mut file),
        vec![],
        "nothing written at start"
    );
    assert_eq!(h.b.poll_timeout(), Some(Instant::from_millis(10_000)));
    let (sub, _) = h.connect("sub", false);
    assert_eq!(
        h.subscribe(sub, &[("t", QoS::AtLeastOnce)]),
        vec![Pkt::SubAck(1, vec![1])],
        "SUBACK at once, with nothing durable"
    );
    assert!(!h.b.journal_behind());
    assert_eq!(take_journal(&mut h, &mut file), vec![]);
    h.b.handle_closed(h.now, sub);
    h.drain();
    // The autosave: one snapshot, announced.
    h.at(10_000);
    h.drain();
    assert!(h.logs.iter().any(|l| l == "Saving in-memory database."));
    assert_eq!(take_journal(&mut h, &mut file), vec![JournalWrite::Replace]);
    assert_eq!(h.b.poll_timeout(), Some(Instant::from_millis(20_000)));
    let saved = file.clone();
    // A QoS 1 message for the offline session after the save: PUBACK at once.
    let (p, _) = h.connect("pub", true);
    h.publish(p, "t", "after the save", QoS::AtLeastOnce, false, 3);
    assert_eq!(h.take(p), vec![Pkt::PubAck(3)]);
    assert_eq!(h.b.queued_messages("sub"), Some(1));
    assert_eq!(take_journal(&mut h, &mut file), vec![], "in memory only");
    // A power cut now: the file holds the session and its subscription, not the message.
    let (b, _) = Broker::restore(autosaving(), Instant::ZERO, &saved).unwrap();
    assert_eq!(b.queued_messages("sub"), Some(0));
    assert_eq!(b.subscription_count(), 1);
    // A clean stop saves, announced as the autosave is: the message survives it.
    h.logs.clear();
    h.b.save_now();
    h.drain();
    assert_eq!(h.logs, ["Saving in-memory database."]);
    assert_eq!(take_journal(&mut h, &mut file), vec![JournalWrite::Replace]);
    let (b, _) = Broker::restore(autosaving(), Instant::ZERO, &file).unwrap();
    assert_eq!(b.queued_messages("sub"), Some(1));
}

#[test]
fn save_now_is_a_no_op_for_the_write_ahead_journal() {
    let mut h = Harness::with(Config {
        persistence: true,
        ..Config::for_tests()
    });
    let mut file = Vec::new();
    assert_eq!(
        take_journal(&mut h, &mut file),
        vec![JournalWrite::Replace],
        "at start"
    );
    h.connect_with("sub", false, 0, None);
    assert_eq!(take_journal(&mut h, &mut file), vec![JournalWrite::Append]);
    h.logs.clear();
    h.b.save_now();
    h.drain();
    assert!(
        h.logs.is_empty(),
        "nothing saved, nothing said: {:?}",
        h.logs
    );
    assert_eq!(
        take_journal(&mut h, &mut file),
        vec![],
        "everything is in the journal already"
    );
}

#[test]
fn the_mosquitto_profile_sets_every_knob_and_mqsim_restores_the_defaults() {
    let mut c = Config::default();
    Profile::Mosquitto20.apply(&mut c);
    assert!(!c.queue_backpressure && c.qos2_forward_on_pubrel);
    assert_eq!(c.keepalive_check_period, Duration::from_secs(6));
    assert_eq!(c.autosave_interval, Duration::from_secs(1_801));
    Profile::Mqsim.apply(&mut c);
    let d = Config::default();
    assert_eq!(
        (
            c.queue_backpressure,
            c.qos2_forward_on_pubrel,
            c.keepalive_check_period,
            c.autosave_interval
        ),
        (
            d.queue_backpressure,
            d.qos2_forward_on_pubrel,
            d.keepalive_check_period,
            d.autosave_interval
        )
    );
    for p in Profile::ALL {
        assert_eq!(Profile::from_name(p.name()), Some(p));
    }
    assert_eq!(Profile::from_name("mosquitto"), None);
}
