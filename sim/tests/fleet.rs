//! Fleets: a staggered start (`start_spread_s`) draws each device's boot time from its own seed
//! stream, and a large group's report names its worst devices.

use mqsim_sim::check::ConnState;
use mqsim_sim::run::{run, RunOptions, RunOutcome};
use mqsim_sim::scenario::Scenario;

const FLEET: &str = r##"
description = "12 devices started over 10 s"
duration_s = 20
heal_s = 5
tick_ms = 5
[[device]]
name = "node"
count = 12
profile = "esp-mqtt"
qos = 1
interval_ms = 5000
start_spread_s = 10
[[subscriber]]
name = "sub"
filter = "#"
qos = 1
"##;

/// Each device's first connection attempt, in device order.
fn first_attempts(out: &RunOutcome) -> Vec<u64> {
    (0..12)
        .map(|i| {
            let name = format!("node-{i}");
            out.records
                .connections
                .iter()
                .find(|c| c.client == name && c.state == ConnState::Connecting)
                .map(|c| c.at)
                .unwrap_or_else(|| panic!("{name} never tried to connect"))
        })
        .collect()
}

#[test]
fn a_staggered_start_spreads_the_devices_by_their_own_seeds() {
    let sc = Scenario::parse(FLEET, "fleet.toml").expect("valid");
    let out = run(&sc, &RunOptions::default()).expect("runs");
    assert!(!out.failed(), "{}", out.failure_text(20));
    let starts = first_attempts(&out);
    // WiFi joins in 1 to 4 s (the link's default), after a start in [0, 10] s.
    let (lo, hi) = (*starts.iter().min().unwrap(), *starts.iter().max().unwrap());
    assert!(lo >= 1_000_000 && hi <= 14_100_000, "{starts:?}");
    assert!(hi - lo > 4_000_000, "not spread: {starts:?}");
    // Same seed, same starts; another seed, other starts.
    let again = run(&sc, &RunOptions::default()).expect("runs");
    assert_eq!(first_attempts(&again), starts);
    let other = run(
        &sc,
        &RunOptions {
            seed: Some(2),
            ..RunOptions::default()
        },
    )
    .expect("runs");
    assert_ne!(first_attempts(&other), starts);
    // Without the spread, every device boots at once.
    let at_once = Scenario::parse(&FLEET.replace("start_spread_s = 10\n", ""), "f.toml").unwrap();
    let out = run(&at_once, &RunOptions::default()).expect("runs");
    assert!(first_attempts(&out).iter().all(|t| *t <= 4_100_000));
}

#[test]
fn a_large_group_names_its_worst_devices_in_80_columns() {
    // node-3 is partitioned for 12 s: its readings wait (QoS 1), so it has the highest p99.
    let text = FLEET.replace("start_spread_s = 10\n", "")
        + "[[fault]]\nkind = \"partition\"\ntarget = \"node-3\"\nat_s = 5\nduration_s = 12\n";
    let sc = Scenario::parse(&text, "fleet.toml").expect("valid");
    let out = run(&sc, &RunOptions::default()).expect("runs");
    let report = out.report.render();
    let head = report
        .lines()
        .position(|l| l.starts_with("worst of node (12 devices)"))
        .unwrap_or_else(|| panic!("no worst-devices lines:\n{report}"));
    let lines: Vec<&str> = report.lines().skip(head).take(4).collect();
    assert!(lines[1].trim_start().starts_with("node-3 "), "{lines:#?}");
    assert!(lines.iter().all(|l| l.len() <= 80), "{lines:#?}");
    assert_eq!(out.report.fleet[0].worst.len(), 3);
}
