use super::super::tests::{msg, setup, S};
use super::super::{BrokerMemory, Ledger};
use super::{Cause, Notice};

#[test]
fn notices_parse_from_the_brokers_lines() {
    assert_eq!(
        Notice::parse("1657156700: Outgoing messages are being dropped for client backend."),
        Some(Notice::QueueFull {
            client: "backend".into()
        })
    );
    assert_eq!(
        Notice::parse(
            "Dropped PUBLISH from esp32 to 'a/b': 9000 bytes exceeds message_size_limit."
        ),
        Some(Notice::TooLarge {
            from: "esp32".into(),
            topic: "a/b".into()
        })
    );
    assert_eq!(
        Notice::parse("1: Denied PUBLISH from spoof (d0, q1, r1, m1, '$SYS/x', ... (7 bytes))"),
        Some(Notice::Denied {
            from: "spoof".into(),
            topic: "$SYS/x".into()
        })
    );
    // A re-sent copy was already denied once.
    assert_eq!(
        Notice::parse("Denied PUBLISH from spoof (d1, q1, r1, m1, '$SYS/x', ... (7 bytes))"),
        None
    );
    assert_eq!(Notice::parse("1: Received PUBLISH from x"), None);
}

#[test]
fn an_announced_queue_drop_is_counted_not_violated_and_a_silent_one_is() {
    let (mut l, d, s) = setup(1, false);
    for seq in 0..3 {
        l.publish_called(seq * S, d, seq, "ESP32/TEM", 1, true);
        l.publish_completed(seq * S + 50_000, d, seq);
    }
    // The broker announced one drop for `sub`, while seq 1 was being routed.
    l.broker_said(
        S + 10_000,
        "1657156639: Outgoing messages are being dropped for client sub.",
    );
    l.received(2 * S + 20_000, s, "ESP32/TEM", msg(d, 2), 1, false, false);
    l.heal(10 * S);
    l.finish(40 * S);
    let v: Vec<_> = l
        .violations()
        .iter()
        .map(|v| (v.invariant, v.msg))
        .collect();
    assert_eq!(
        v,
        vec![("qos1", Some(msg(d, 0)))],
        "seq 0 vanished silently"
    );
    assert_eq!(l.loss_cause(msg(d, 1), Some(s)), Some(Cause::Dropped));
    assert_eq!(l.loss_cause(msg(d, 0), Some(s)), Some(Cause::Unexplained));
    let c = l.summary().all.causes;
    assert_eq!((c.dropped, c.unexplained), (1, 1));
}

#[test]
fn outbox_expiry_refusal_and_not_subscribed_yet() {
    let mut l = Ledger::new();
    let d = l.add_device("esp32", "esp32");
    let s = l.add_subscriber("sub");
    l.device_connected(0, d, true);
    // Published before the subscriber subscribed.
    l.publish_called(S, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S + 50_000, d, 0);
    l.subscriber_connected(2 * S, s, false);
    l.subscribed(2 * S, s, "ESP32/#", 1, true);
    l.publish_called(3 * S, d, 1, "ESP32/TEM", 1, false);
    l.publish_called(4 * S, d, 2, "ESP32/TEM", 1, true);
    l.publish_abandoned(34 * S, d, 2);
    l.heal(40 * S);
    l.finish(60 * S);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    assert_eq!(l.loss_cause(msg(d, 0), Some(s)), Some(Cause::NotSubscribed));
    assert_eq!(l.loss_cause(msg(d, 1), None), Some(Cause::Refused));
    assert_eq!(l.loss_cause(msg(d, 2), Some(s)), Some(Cause::Expired));
    let t = l.summary().all;
    assert_eq!(t.lost, 1, "not subscribed yet is not in `lost`");
    assert_eq!(
        (t.causes.refused, t.causes.expired, t.causes.not_subscribed),
        (1, 1, 1)
    );
}

#[test]
fn qos0_lost_with_a_broken_connection_unless_a_later_message_got_through() {
    let (mut l, d, s) = setup(0, true);
    for seq in 0..3 {
        l.publish_called(seq * S, d, seq, "ESP32/TEM", 0, true);
        l.publish_completed(seq * S, d, seq);
    }
    // seq 0 lost, then seq 1 arrives: the path worked after seq 0.
    l.received(S + 20_000, s, "ESP32/TEM", msg(d, 1), 0, false, false);
    // seq 2 written, then the device's connection breaks.
    l.device_disconnected(3 * S, d);
    l.heal(10 * S);
    l.finish(20 * S);
    assert_eq!(l.loss_cause(msg(d, 0), Some(s)), Some(Cause::Unexplained));
    assert_eq!(l.loss_cause(msg(d, 2), Some(s)), Some(Cause::Connection));
}

#[test]
fn lost_with_a_broker_restart_without_persistence() {
    let (mut l, d, s) = setup(1, true);
    l.publish_called(S, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S + 50_000, d, 0);
    l.broker_restarted(2 * S, BrokerMemory::Volatile);
    l.heal(10 * S);
    l.finish(20 * S);
    assert_eq!(l.loss_cause(msg(d, 0), Some(s)), Some(Cause::BrokerState));
}

/// A broker that autosaves (mosquitto's persistence) restarted before its first save: what it
/// had acknowledged and not delivered is lost with its state, not yet autosaved; not a
/// violation. With a write-ahead journal the same message is owed: its loss is a violation.
#[test]
fn lost_before_the_first_autosave_is_its_own_cause_and_no_violation() {
    for (memory, cause) in [
        (BrokerMemory::Autosave, Some(Cause::BrokerUnsaved)),
        (BrokerMemory::Volatile, Some(Cause::BrokerState)),
        (BrokerMemory::Journal, Some(Cause::Unexplained)),
    ] {
        let (mut l, d, s) = setup(1, false);
        l.subscriber_disconnected(S / 2, s);
        l.publish_called(S, d, 0, "ESP32/TEM", 1, true);
        l.publish_completed(S + 50_000, d, 0);
        l.broker_restarted(2 * S, memory);
        l.subscriber_connected(3 * S, s, memory == BrokerMemory::Journal);
        l.subscribed(3 * S, s, "ESP32/#", 1, false);
        l.heal(10 * S);
        l.finish(60 * S);
        assert_eq!(l.loss_cause(msg(d, 0), Some(s)), cause, "{memory:?}");
        assert_eq!(
            l.violations().is_empty(),
            memory != BrokerMemory::Journal,
            "{memory:?}: {:?}",
            l.violations()
        );
        assert_eq!(
            l.summary().all.lost_with_broker,
            u64::from(memory != BrokerMemory::Journal)
        );
    }
}

/// After a save the snapshot has what came before it: only what was acknowledged after the
/// last "Saving in-memory database." line is lost with the broker's state.
#[test]
fn after_an_autosave_only_what_came_since_is_lost() {
    let (mut l, d, s) = setup(1, false);
    l.subscriber_disconnected(S / 2, s);
    l.publish_called(S, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S + 50_000, d, 0);
    l.broker_said(2 * S, "1657156700: Saving in-memory database.");
    l.publish_called(3 * S, d, 1, "ESP32/TEM", 1, true);
    l.publish_completed(3 * S + 50_000, d, 1);
    l.broker_restarted(4 * S, BrokerMemory::Autosave);
    // The session was in the snapshot: the subscriber comes back to it and gets seq 0.
    l.subscriber_connected(5 * S, s, true);
    l.received(5 * S + 10_000, s, "ESP32/TEM", msg(d, 0), 1, false, false);
    l.heal(10 * S);
    l.finish(60 * S);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    assert_eq!(l.loss_cause(msg(d, 0), Some(s)), None, "delivered");
    assert_eq!(l.loss_cause(msg(d, 1), Some(s)), Some(Cause::BrokerUnsaved));
}
