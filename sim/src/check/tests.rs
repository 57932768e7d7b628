use super::*;
use crate::scenario::Scenario;

/// One second, in the ledger's microseconds (shared with the other ledger tests).
pub(super) const S: Micros = 1_000_000;

/// One device `esp32` (topic ESP32/TEM), one subscriber `sub` on ESP32/# at `granted`, both
/// connected at t = 0.
pub(super) fn setup(granted: u8, clean: bool) -> (Ledger, DeviceId, SubscriberId) {
    let mut l = Ledger::new();
    let d = l.add_device("esp32", "esp32");
    let s = l.add_subscriber("sub");
    l.device_connected(0, d, true);
    l.subscriber_connected(0, s, false);
    l.subscribed(0, s, "ESP32/#", granted, clean);
    (l, d, s)
}

pub(super) fn msg(d: DeviceId, seq: u64) -> MsgId {
    MsgId { device: d, seq }
}

fn names(l: &Ledger) -> Vec<&'static str> {
    l.violations().iter().map(|v| v.invariant).collect()
}

#[test]
fn a_clean_qos1_run_has_no_violations_and_counts_right() {
    let (mut l, d, s) = setup(1, true);
    for seq in 0..3 {
        let t = seq * 2 * S;
        l.publish_called(t, d, seq, "ESP32/TEM", 1, true);
        l.received(t + 20_000, s, "ESP32/TEM", msg(d, seq), 1, false, false);
        l.publish_completed(t + 40_000, d, seq);
    }
    l.publish_called(6 * S, d, 3, "ESP32/TEM", 1, false); // refused
    l.heal(10 * S);
    l.finish(40 * S);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    let sum = l.summary();
    let t = &sum.all;
    assert_eq!(
        (t.published, t.refused, t.acknowledged, t.delivered),
        (4, 1, 3, 3)
    );
    assert_eq!((t.lost, t.duplicated, t.reconnects), (0, 0, 0));
    assert_eq!(t.latency_percentile_us(99), Some(20_000));
    assert_eq!(sum.qos[1].published, 4);
    assert_eq!(sum.subscribers["sub"].delivered, 3);
}

#[test]
fn qos0_duplicate_is_a_violation_but_a_retained_copy_is_not() {
    let (mut l, d, s) = setup(0, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 0, true);
    l.received(10, s, "ESP32/TEM", msg(d, 0), 0, false, false);
    l.received(20, s, "ESP32/TEM", msg(d, 0), 0, false, true);
    assert!(l.violations().is_empty());
    l.received(30, s, "ESP32/TEM", msg(d, 0), 0, false, false);
    assert_eq!(names(&l), vec!["qos0"]);
    assert_eq!(l.violations()[0].msg, Some(msg(d, 0)));
    assert_eq!(
        l.violations()[0].detail,
        "esp32 seq 0 (QoS 0) received again by sub"
    );
}

#[test]
fn qos0_loss_is_counted_not_a_violation() {
    let (mut l, d, _s) = setup(0, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 0, true);
    l.publish_completed(1, d, 0);
    l.heal(S);
    l.finish(2 * S);
    assert!(l.violations().is_empty());
    assert_eq!(l.summary().qos[0].lost, 1);
}

#[test]
fn qos1_acknowledged_but_missing_is_a_violation_duplicates_are_counted() {
    let (mut l, d, s) = setup(1, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S, d, 0);
    l.publish_called(2 * S, d, 1, "ESP32/TEM", 1, true);
    l.received(2 * S + 5, s, "ESP32/TEM", msg(d, 1), 1, false, false);
    l.received(3 * S, s, "ESP32/TEM", msg(d, 1), 1, true, false);
    l.publish_completed(3 * S, d, 1);
    l.heal(5 * S);
    l.finish(10 * S);
    assert_eq!(names(&l), vec!["qos1"]);
    assert_eq!(l.violations()[0].msg, Some(msg(d, 0)));
    let t = l.summary().all;
    assert_eq!((t.delivered, t.duplicated, t.lost), (1, 1, 1));
}

#[test]
fn qos1_loss_is_no_violation_when_the_clean_subscriber_went_away() {
    let (mut l, d, s) = setup(1, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S, d, 0);
    l.subscriber_disconnected(2 * S, s);
    l.subscriber_connected(3 * S, s, false);
    l.subscribed(3 * S, s, "ESP32/#", 1, true);
    l.heal(5 * S);
    l.finish(10 * S);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    assert_eq!(l.summary().all.lost, 1);
    assert_eq!(l.summary().all.reconnects, 1);
}

#[test]
fn persistent_subscriber_is_owed_its_messages_once_it_is_back() {
    let (mut l, d, s) = setup(1, false);
    l.subscriber_disconnected(S, s);
    l.publish_called(2 * S, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(2 * S + 10, d, 0);
    l.publish_called(3 * S, d, 1, "ESP32/TEM", 1, true);
    l.publish_completed(3 * S + 10, d, 1);
    l.subscriber_connected(60 * S, s, true);
    l.received(60 * S + 10, s, "ESP32/TEM", msg(d, 0), 1, false, false);
    l.heal(70 * S);
    l.finish(100 * S);
    assert_eq!(names(&l), vec!["qos1"]);
    assert_eq!(l.violations()[0].msg, Some(msg(d, 1)));
}

#[test]
fn qos2_duplicate_is_a_violation_unless_the_session_was_lost() {
    let (mut l, d, s) = setup(2, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 2, true);
    l.received(10, s, "ESP32/TEM", msg(d, 0), 2, false, false);
    l.received(20, s, "ESP32/TEM", msg(d, 0), 2, true, false);
    assert_eq!(names(&l), vec!["qos2"]);

    let (mut l, d, s) = setup(2, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 2, true);
    l.received(10, s, "ESP32/TEM", msg(d, 0), 2, false, false);
    l.device_disconnected(15, d);
    l.device_connected(16, d, true); // clean session: the broker forgot the PUBREC state
    l.received(20, s, "ESP32/TEM", msg(d, 0), 2, true, false);
    assert!(l.violations().is_empty());
    assert_eq!(l.summary().qos[2].duplicated, 1);
}

#[test]
fn qos2_acknowledged_but_missing_is_a_violation() {
    let (mut l, d, _s) = setup(2, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 2, true);
    l.publish_completed(S, d, 0);
    l.heal(2 * S);
    l.finish(3 * S);
    assert_eq!(names(&l), vec!["qos2"]);
}

#[test]
fn first_receipts_out_of_publish_order_are_a_violation() {
    let (mut l, d, s) = setup(1, true);
    for seq in 0..3 {
        l.publish_called(seq, d, seq, "ESP32/TEM", 1, true);
    }
    l.received(10, s, "ESP32/TEM", msg(d, 0), 1, false, false);
    l.received(11, s, "ESP32/TEM", msg(d, 2), 1, false, false);
    l.received(12, s, "ESP32/TEM", msg(d, 0), 1, true, false); // a duplicate: not ordered
    assert!(l.violations().is_empty());
    l.received(13, s, "ESP32/TEM", msg(d, 1), 1, false, false);
    assert_eq!(names(&l), vec!["order"]);
    assert_eq!(
        l.violations()[0].detail,
        "sub received esp32 seq 1 on ESP32/TEM after seq 2"
    );
}

#[test]
fn delivery_outside_the_filters_is_a_violation() {
    let (mut l, d, s) = setup(0, true);
    l.publish_called(0, d, 0, "other/TEM", 0, true);
    l.received(10, s, "other/TEM", msg(d, 0), 0, false, false);
    l.received_untagged(20, s, "ESP32/status");
    l.received_untagged(30, s, "$SYS/broker/uptime");
    assert_eq!(names(&l), vec!["filter", "filter"]);
    assert_eq!(
        l.violations()[0].detail,
        "sub received other/TEM, which none of its filters [ESP32/#] match"
    );
    assert_eq!(l.summary().untagged, 2);
}

#[test]
fn receipts_must_have_been_published_on_that_topic() {
    let (mut l, d, s) = setup(0, true);
    l.received(10, s, "ESP32/TEM", msg(d, 7), 0, false, false);
    l.publish_called(20, d, 8, "ESP32/TEM", 0, true);
    l.received(30, s, "ESP32/HUM", msg(d, 8), 0, false, false);
    assert_eq!(names(&l), vec!["published", "published"]);
}

#[test]
fn packet_ids_are_not_reused_while_in_flight() {
    let (mut l, d, s) = setup(1, true);
    let up = Endpoint {
        client: ClientRef::Device(d),
        flow: Flow::ClientToBroker,
    };
    let down = Endpoint {
        client: ClientRef::Subscriber(s),
        flow: Flow::BrokerToClient,
    };
    l.packet_id_used(0, up, 1, Some(msg(d, 0)));
    l.packet_id_used(1, up, 1, Some(msg(d, 0))); // a resend
    l.packet_id_used(2, down, 1, Some(msg(d, 0))); // another space
    assert!(l.violations().is_empty());
    l.packet_id_used(3, up, 1, Some(msg(d, 1)));
    assert_eq!(names(&l), vec!["packet_id"]);
    l.packet_id_released(4, up, 1);
    l.packet_id_used(5, up, 1, Some(msg(d, 1)));
    l.packet_id_used(6, up, 0, None);
    assert_eq!(names(&l), vec!["packet_id", "packet_id"]);
    assert_eq!(
        l.violations()[0].detail,
        "esp32 reused packet id 1 for esp32 seq 1 while it still carried esp32 seq 0"
    );
    // A clean reconnect of the subscriber empties the broker's space for it.
    l.subscriber_connected(7, s, false);
    l.packet_id_used(8, down, 1, Some(msg(d, 5)));
    assert_eq!(l.violations().len(), 2);
}

#[test]
fn liveness_wants_every_qos1_publish_settled_after_the_heal() {
    let (mut l, d, s) = setup(1, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 1, true);
    l.publish_called(S, d, 1, "ESP32/TEM", 1, true);
    l.publish_abandoned(30 * S, d, 1); // outbox expiry: given up, not owed
    l.received(2 * S, s, "ESP32/TEM", msg(d, 0), 1, false, false);
    l.heal(40 * S);
    l.finish(70 * S);
    assert_eq!(names(&l), vec!["liveness"]);
    assert_eq!(
        l.violations()[0].detail,
        "esp32 seq 0 (QoS 1) published at 0 ms, still unacknowledged 30000 ms after the heal"
    );
}

#[test]
fn without_heal_only_safety_is_checked() {
    let (mut l, d, _s) = setup(1, true);
    l.publish_called(0, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S, d, 0);
    l.finish(2 * S);
    assert!(l.violations().is_empty());
}

#[test]
fn a_broker_restart_without_persistence_loses_what_it_held_apart() {
    let (mut l, d, s) = setup(1, false);
    l.subscriber_disconnected(S, s);
    l.publish_called(2 * S, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(2 * S + 10, d, 0); // queued for the offline persistent subscriber
    l.publish_called(3 * S, d, 1, "ESP32/TEM", 2, true); // in flight at the publisher
    l.broker_restarted(4 * S, BrokerMemory::Volatile);
    l.device_connected(5 * S, d, false);
    l.subscriber_connected(6 * S, s, false);
    l.subscribed(6 * S, s, "ESP32/#", 1, false);
    l.publish_completed(7 * S, d, 1);
    l.heal(10 * S);
    l.finish(40 * S);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    let t = l.summary().all;
    assert_eq!((t.lost_with_broker, t.lost), (1, 1));
}

/// A message published while the broker is down and accepted by the restarted broker before
/// the subscriber subscribed again: its subscription went with the broker's state.
#[test]
fn accepted_after_a_restart_before_the_subscriber_is_back_is_lost_with_the_broker() {
    let (mut l, d, s) = setup(1, false);
    l.publish_called(2 * S, d, 0, "ESP32/TEM", 1, true); // the broker is down
    l.broker_restarted(4 * S, BrokerMemory::Volatile);
    l.device_connected(5 * S, d, true);
    l.publish_completed(5 * S, d, 0); // the new broker acknowledges it; nobody subscribed
    l.subscriber_connected(9 * S, s, false);
    l.subscribed(9 * S, s, "ESP32/#", 1, false);
    l.heal(10 * S);
    l.finish(40 * S);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    let t = l.summary().all;
    assert_eq!((t.lost_with_broker, t.lost), (1, 0));
}

#[test]
fn scenario_registration_numbers_devices_then_subscribers() {
    let text = "description = \"x\"\nduration_s = 10\n[[device]]\nname = \"a\"\ncount = 2\nprofile = \"esp-mqtt\"\nqos = 1\n[[device]]\nname = \"b\"\nprofile = \"pubsubclient\"\nqos = 0\n[[subscriber]]\nname = \"s\"\nfilter = \"#\"\nqos = 1\n";
    let scenario = Scenario::parse(text, "x.toml").unwrap();
    let l = Ledger::for_scenario(&scenario);
    assert_eq!(l.device_id("a-1"), Some(DeviceId(1)));
    assert_eq!(l.device_id("b"), Some(DeviceId(2)));
    assert_eq!(l.subscriber_id("s"), Some(SubscriberId(0)));
    let sum = l.summary();
    assert_eq!(sum.devices.keys().collect::<Vec<_>>(), vec!["a", "b"]);
}

/// A subscriber that does not come back after the heal would excuse every QoS 1 message it was
/// owed (delivery is only required of connected subscribers): liveness names it.
#[test]
fn a_subscriber_still_away_after_the_heal_breaks_liveness() {
    let (mut l, d, s) = setup(1, false);
    l.publish_called(S, d, 0, "ESP32/TEM", 1, true);
    l.publish_completed(S + 10, d, 0);
    l.subscriber_disconnected(2 * S, s);
    l.heal(10 * S);
    l.finish(40 * S);
    let v = l.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].invariant, "liveness");
    assert!(
        v[0].detail.contains("still disconnected"),
        "{}",
        v[0].detail
    );
}

/// A publish whose acknowledgement the broker still withholds at the end while it keeps
/// forwarding its backlog (receipts arriving in the last seconds) is a named behaviour of the
/// run; with nothing moving it stays a liveness violation.
#[test]
fn an_ack_withheld_while_the_backlog_drains_is_a_behaviour_not_a_violation() {
    for moving in [true, false] {
        let (mut l, d, s) = setup(1, false);
        l.publish_called(S, d, 0, "ESP32/TEM", 1, true);
        l.publish_completed(S + 10, d, 0);
        l.publish_called(2 * S, d, 1, "ESP32/TEM", 1, true); // its PUBACK withheld
        l.heal(10 * S);
        let last = if moving { 38 * S } else { 20 * S };
        l.received(last, s, "ESP32/TEM", msg(d, 0), 1, false, false);
        l.finish(40 * S);
        if moving {
            assert!(l.violations().is_empty(), "{:?}", l.violations());
            let sum = l.summary();
            assert_eq!(sum.behaviours.ack_withheld, 1);
            assert_eq!(sum.all.causes.ack_withheld, 1);
        } else {
            assert_eq!(names(&l), vec!["liveness"]);
            assert_eq!(l.summary().behaviours.ack_withheld, 0);
        }
    }
}

/// random-209 seed 2: a copy the broker sent before a restart without persistence, still being
/// retransmitted on the subscriber's old connection, arrives after the restart: the broker held
/// the subscription when it sent it, no filter violation. A new connection starts without it.
#[test]
fn a_copy_sent_before_a_broker_restart_may_still_arrive_on_the_old_connection() {
    let (mut l, d, s) = setup(0, true);
    l.publish_called(S, d, 0, "ESP32/TEM", 0, true);
    l.publish_completed(S, d, 0);
    l.broker_restarted(4 * S, BrokerMemory::Volatile);
    l.received(6 * S, s, "ESP32/TEM", msg(d, 0), 0, false, false);
    assert!(l.violations().is_empty(), "{:?}", l.violations());
    l.subscriber_disconnected(7 * S, s);
    l.subscriber_connected(8 * S, s, false);
    l.publish_called(9 * S, d, 1, "ESP32/TEM", 0, true);
    l.received(9 * S + 10, s, "ESP32/TEM", msg(d, 1), 0, false, false);
    assert_eq!(names(&l), vec!["filter"]);
}
