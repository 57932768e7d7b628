//! Faults act, and are recorded, at their scheduled instants: the link's trace lines for a
//! partition, a half-open link and a broker power cut carry the times the scenario gives, and a
//! power-cut broker that comes back resets its old connections (RST), so every client reconnects.

use mqsim_sim::run::{run, RunOptions, Source};
use mqsim_sim::scenario::Scenario;

fn net_lines(file: &str) -> (Vec<String>, mqsim_sim::run::RunOutcome) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let scenario = Scenario::load(path).unwrap();
    let out = run(&scenario, &RunOptions::default()).unwrap();
    let lines = out
        .lines
        .iter()
        .filter(|l| l.source == Source::Net)
        .map(|l| l.text.clone())
        .collect();
    (lines, out)
}

#[test]
fn a_partition_starts_and_heals_at_its_scheduled_times() {
    let (net, _) = net_lines("partition-30s.toml");
    assert!(
        net.iter().any(|l| l == "20.000000 conn1 partition on"),
        "{net:?}"
    );
    assert!(
        net.iter().any(|l| l == "50.000000 conn1 partition healed"),
        "{net:?}"
    );
}

#[test]
fn a_power_cut_broker_resets_its_old_connections_once_back() {
    let (net, out) = net_lines("broker-power-cut.toml");
    assert!(
        net.iter().any(|l| l == "20.000000 conn0 server power cut"),
        "{net:?}"
    );
    let resets: Vec<&mqsim_sim::run::Line> = out
        .lines
        .iter()
        .filter(|l| l.source == Source::Net && l.text.contains("rebooted, RST"))
        .collect();
    assert_eq!(
        resets.len(),
        2,
        "device and subscriber connections: {resets:?}"
    );
    for r in resets {
        assert!(
            r.at.as_millis() >= 25_000,
            "not before the broker is back at 25 s: {}",
            r.text
        );
    }
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}
