use super::*;
use crate::check::{Delivery, Loss};

fn reading(accepted: bool, latency_us: Micros, dups: u64, losses: &[Cause]) -> PublishRecord {
    PublishRecord {
        device: "d".into(),
        seq: 1,
        topic: "t".into(),
        payload: Vec::new(),
        qos: 1,
        called_at: 1_000,
        accepted,
        completed_at: None,
        abandoned: false,
        deliveries: if latency_us == 0 {
            Vec::new()
        } else {
            vec![Delivery {
                subscriber: "a".into(),
                first_at: 1_000 + latency_us,
                duplicates: dups,
            }]
        },
        losses: losses
            .iter()
            .map(|c| Loss {
                subscriber: "b".into(),
                cause: *c,
            })
            .collect(),
    }
}

#[test]
fn a_reading_takes_its_worst_outcome() {
    assert_eq!(
        Mark::of_reading(&reading(true, 20_000, 0, &[])),
        Mark::Delivered
    );
    assert_eq!(
        Mark::of_reading(&reading(true, LATE_US + 1, 0, &[])),
        Mark::Late
    );
    assert_eq!(
        Mark::of_reading(&reading(true, 20_000, 2, &[])),
        Mark::Duplicated
    );
    assert_eq!(Mark::of_reading(&reading(false, 0, 0, &[])), Mark::Refused);
    assert_eq!(
        Mark::of_reading(&reading(true, 20_000, 1, &[Cause::Connection])),
        Mark::Network
    );
    assert_eq!(
        Mark::of_reading(&reading(
            true,
            0,
            0,
            &[Cause::Connection, Cause::Unexplained]
        )),
        Mark::Unexplained
    );
    assert_eq!(Mark::of_reading(&reading(true, 0, 0, &[])), Mark::Other);
}

#[test]
fn connection_state_is_read_from_the_changes() {
    let c = [
        (10, ConnState::Connecting),
        (20, ConnState::Connected),
        (50, ConnState::Down),
        (60, ConnState::Connected),
    ];
    assert_eq!(state_at(&c, 5), ConnState::Down);
    assert_eq!(state_at(&c, 10), ConnState::Connecting);
    assert_eq!(state_at(&c, 49), ConnState::Connected);
    assert_eq!(state_at(&c, 55), ConnState::Down);
    assert_eq!(reconnect_times(&c), vec![60]);
}
