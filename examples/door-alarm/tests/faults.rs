//! The door alarm under faults: each scenario of `tests/scenarios/` over many seeds, every
//! invariant of the ledger and the application's own checks (every alarm delivered, in order;
//! a repeated command applied once); and the broken variant caught by the same tests.
//!
//! A failing seed prints its replay line: `MQSIM_SEED=N cargo test -p door-alarm NAME ...`.

mod support;

use door_alarm::DoorAlarm;
use support::{door_checks, world};

#[test]
fn a_30_s_partition() {
    world("partition-30s.toml", DoorAlarm::default)
        .check_seeds_with(1..21, &door_checks)
        .unwrap();
}

#[test]
fn a_broker_restart() {
    world("broker-restart.toml", DoorAlarm::default)
        .check_seeds_with(1..21, &door_checks)
        .unwrap();
}

#[test]
fn twenty_percent_loss() {
    world("loss-20.toml", DoorAlarm::default)
        .check_seeds_with(1..21, &door_checks)
        .unwrap();
}

#[test]
fn a_fleet_of_fifty() {
    world("fleet-50.toml", DoorAlarm::default)
        .check_seeds_with(1..4, &door_checks)
        .unwrap();
}

/// The variant that forgets its held alarms on reconnect must fail where the door notices an
/// outage (a broker restart, the fleet's WiFi drop), with the failing seeds and their replay
/// lines (printed with `--nocapture`). A silent 30 s partition does not catch it: esp-mqtt's
/// 120 s keepalive never notices the outage, the connection survives it, nothing is forgotten.
#[test]
fn the_forgetful_variant_is_caught() {
    for (file, seeds) in [("broker-restart.toml", 1..11), ("fleet-50.toml", 1..2)] {
        let failure = world(file, DoorAlarm::forgetful)
            .check_seeds_with(seeds, &door_checks)
            .unwrap_err();
        println!("{failure}");
        assert!(
            failure.text.contains("never published") || failure.text.contains("never reached"),
            "{failure}"
        );
        assert!(failure.text.contains("MQSIM_SEED="), "{failure}");
    }
    // And it passes the partition, as said above: the test would be wrong to expect otherwise.
    world("partition-30s.toml", DoorAlarm::forgetful)
        .check_seeds_with(1..6, &door_checks)
        .unwrap();
}

/// The same application and checks on the turmoil engine (the real tokio adapters;
/// `MQSIM_ENGINE=turmoil cargo test -p door-alarm` runs every test of this crate there): the
/// broker restart and the fleet, where the forgetful variant is caught on either engine.
#[test]
fn on_the_turmoil_engine_too() {
    use mqsim_sim::run::Engine;
    for (file, seeds) in [
        ("broker-restart.toml", 1..21),
        ("loss-20.toml", 1..21),
        ("fleet-50.toml", 1..4),
    ] {
        world(file, DoorAlarm::default)
            .engine(Engine::Turmoil)
            .check_seeds_with(seeds, &door_checks)
            .unwrap();
    }
    let failure = world("broker-restart.toml", DoorAlarm::forgetful)
        .engine(Engine::Turmoil)
        .check_seeds_with(1..11, &door_checks)
        .unwrap_err();
    assert!(
        failure.text.contains("never published") || failure.text.contains("never reached"),
        "{failure}"
    );
}
