use super::*;

const T0: Instant = Instant::ZERO;

#[test]
fn ids_skip_zero_and_those_in_use_after_wrapping() {
    let mut ids = PacketIds::default();
    assert_eq!(ids.alloc(), Some(1));
    assert_eq!(ids.alloc(), Some(2));
    ids.release(1);
    // Run to the end of the range: the next after 65,535 is 1 (free), never 0, never 2.
    ids.last = u16::MAX - 1;
    assert_eq!(ids.alloc(), Some(u16::MAX));
    assert_eq!(ids.alloc(), Some(1));
    assert_eq!(ids.alloc(), Some(3));
    assert!(ids.contains(2));
}

#[test]
fn ids_run_out_at_65535() {
    let mut ids = PacketIds::default();
    for _ in 0..u16::MAX {
        assert!(ids.alloc().is_some());
    }
    assert_eq!(ids.alloc(), None);
    ids.release(40_000);
    assert_eq!(ids.alloc(), Some(40_000));
}

#[test]
fn ids_stay_unique_across_the_list_and_the_tree() {
    let mut ids = PacketIds::default();
    let n = PacketIds::LIST_MAX * 3;
    let got: Vec<u16> = (0..n).map(|_| ids.alloc().unwrap()).collect();
    assert_eq!(ids.len(), n);
    for i in (0..n).step_by(2) {
        ids.release(got[i]);
    }
    assert_eq!(ids.len(), n / 2);
    ids.last = 0;
    let again: Vec<u16> = (0..n / 2).map(|_| ids.alloc().unwrap()).collect();
    let mut all: Vec<u16> = got
        .iter()
        .skip(1)
        .step_by(2)
        .copied()
        .chain(again)
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "never an identifier in use twice");
}

#[test]
fn qos1_completes_on_puback_only() {
    let mut w: Window<&str> = Window::default();
    let id = w.start(T0, QoS::AtLeastOnce, "a").unwrap();
    assert!(w.on_pubcomp(id).is_none(), "PUBCOMP does not finish QoS 1");
    assert_eq!(w.on_pubrec(T0, id).0, PubRecOutcome::Unknown);
    assert_eq!(w.on_puback(id).map(|f| f.msg), Some("a"));
    assert!(w.is_empty() && w.ids().is_empty());
    assert!(w.on_puback(id).is_none(), "a second PUBACK is unknown");
}

#[test]
fn qos2_goes_pubrec_then_pubcomp_and_pubrec_may_repeat() {
    let mut w: Window<&str> = Window::default();
    let id = w.start(T0, QoS::ExactlyOnce, "b").unwrap();
    assert!(w.on_puback(id).is_none(), "PUBACK does not finish QoS 2");
    assert!(
        w.on_pubcomp(id).is_none(),
        "PUBCOMP before PUBREC is unexpected"
    );
    assert_eq!(w.on_pubrec(T0, id).0, PubRecOutcome::SendPubRel);
    assert_eq!(w.on_pubrec(T0, id).0, PubRecOutcome::SendPubRel);
    let resent: alloc::vec::Vec<Resend> = w.resend(T0, None).map(|(r, _)| r).collect();
    assert_eq!(resent, [Resend::PubRel]);
    assert_eq!(w.on_pubcomp(id).map(|f| f.msg), Some("b"));
}

#[test]
fn qos0_has_no_place_in_the_window() {
    let mut w: Window<u8> = Window::default();
    assert_eq!(w.start(T0, QoS::AtMostOnce, 7), Err(7));
}

#[test]
fn resend_keeps_order_and_the_timer_picks_only_old_ones() {
    let mut w: Window<u8> = Window::default();
    let t1 = Instant::from_millis(1_000);
    let t2 = Instant::from_millis(2_000);
    w.start(T0, QoS::AtLeastOnce, 1).unwrap();
    w.start(t1, QoS::ExactlyOnce, 2).unwrap();
    w.start(t2, QoS::AtLeastOnce, 3).unwrap();
    let all: alloc::vec::Vec<u8> = w.resend(t2, None).map(|(_, f)| f.msg).collect();
    assert_eq!(all, [1, 2, 3]);
    let t3 = Instant::from_millis(3_500);
    // Everything was stamped t2 above; only messages sent at or before 2.5 s go again.
    let due: alloc::vec::Vec<u8> = w
        .resend(t3, Some(Instant::from_millis(2_500)))
        .map(|(_, f)| f.msg)
        .collect();
    assert_eq!(due, [1, 2, 3]);
    let none = w.resend(t3, Some(Instant::from_millis(3_000))).count();
    assert_eq!(none, 0);
    assert_eq!(w.oldest_sent_at(), Some(t3));
}

#[test]
fn remove_where_releases_ids() {
    let mut w: Window<u8> = Window::default();
    let a = w.start(T0, QoS::AtLeastOnce, 1).unwrap();
    let b = w.start(T0, QoS::AtLeastOnce, 2).unwrap();
    let mut gone = alloc::vec::Vec::new();
    w.remove_where(|f| f.msg == 1, |f| gone.push(f.pkid));
    assert_eq!(gone, [a]);
    assert!(!w.ids().contains(a) && w.ids().contains(b));
}

#[test]
fn incoming_qos2_delivers_once_until_released() {
    let mut q = IncomingQos2::default();
    assert!(q.on_publish(9));
    assert!(
        !q.on_publish(9),
        "a duplicate before PUBREL is not delivered again"
    );
    q.on_pubrel(9);
    q.on_pubrel(9); // unknown now: still fine
    assert!(
        q.on_publish(9),
        "after PUBREL the identifier names a new message"
    );
}
