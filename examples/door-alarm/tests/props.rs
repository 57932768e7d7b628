//! A property over fault schedules: whatever partitions, WiFi drops, resets and broker
//! restarts happen (up to three, one after another), every alarm reaches the backend in order.
//! proptest shrinks a failing schedule to the fewest, shortest faults; the failure lists them
//! as `[[fault]]` tables and gives the replay line.

mod support;

use door_alarm::DoorAlarm;
use mqsim_sim::proptest::{fault_schedule, FaultChoice};
use proptest::prelude::*;
use support::{every_alarm_delivered_in_order, world};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn alarms_survive_any_fault_schedule(
        seed in 1u64..10_000,
        faults in fault_schedule(&["door", "backend"], &FaultChoice::ALL, 10_000..110_000, 3),
    ) {
        let mut w = world("base.toml", DoorAlarm::default);
        for f in faults {
            w = w.fault(f);
        }
        if let Err(failure) = w.check_with(seed, &every_alarm_delivered_in_order) {
            return Err(TestCaseError::fail(failure.text));
        }
    }
}
