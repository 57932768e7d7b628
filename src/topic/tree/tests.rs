use super::*;
use alloc::vec;

fn hits(t: &SubscriptionTree<u32>, name: &str) -> Vec<(u32, QoS)> {
    let mut v = Vec::new();
    t.matches(name, &mut v);
    v.sort();
    v
}

#[test]
fn matches_like_reference() {
    let mut t = SubscriptionTree::new();
    t.insert("ESP32/#", 1, QoS::AtMostOnce);
    t.insert("ESP32/+", 2, QoS::AtLeastOnce);
    t.insert("ESP32/TEM", 3, QoS::ExactlyOnce);
    t.insert("#", 4, QoS::AtMostOnce);
    assert_eq!(
        hits(&t, "ESP32/TEM"),
        vec![
            (1, QoS::AtMostOnce),
            (2, QoS::AtLeastOnce),
            (3, QoS::ExactlyOnce),
            (4, QoS::AtMostOnce)
        ]
    );
    assert_eq!(
        hits(&t, "ESP32"),
        vec![(1, QoS::AtMostOnce), (4, QoS::AtMostOnce)]
    );
    assert_eq!(hits(&t, "$SYS/broker/uptime"), vec![]);
}

#[test]
fn remove_prunes() {
    let mut t = SubscriptionTree::new();
    assert!(t.insert("a/b/c", 1, QoS::AtMostOnce));
    assert!(!t.insert("a/b/c", 1, QoS::AtLeastOnce));
    assert_eq!(t.len(), 1);
    assert!(t.remove("a/b/c", 1));
    assert!(!t.remove("a/b/c", 1));
    assert!(t.root.is_empty());
    assert!(t.is_empty());
}
