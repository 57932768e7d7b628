//! `mqsim bench` end to end against our own broker binary: at QoS 1 nothing may be lost or
//! duplicated, and the JSON report says so; idle connections are opened and counted; a throttled
//! subscriber is not mistaken for a silent broker.

mod common;

use std::process::Command;

use common::BrokerProc as Broker;

/// The integer value of `"key":N` in a flat JSON line.
fn json_u64(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not an integer in {json}"))
}

/// Runs `mqsim bench` against `broker` with `args` and `--json`; asserts success and returns
/// the one JSON line.
fn bench_json(broker: &Broker, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["bench", "--port", &broker.port.to_string()])
        .args(args)
        .args(["--broker-pid", &broker.pid().to_string(), "--json"])
        .output()
        .expect("run mqsim bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    let json = lines[0];
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    json.to_string()
}

#[test]
fn qos1_two_to_two_loses_and_duplicates_nothing() {
    let broker = Broker::start(&["-p", "0"]);
    let json = bench_json(
        &broker,
        &[
            "--messages",
            "2000",
            "--qos",
            "1",
            "--publishers",
            "2",
            "--subscribers",
            "2",
            "--timeout-s",
            "60",
        ],
    );
    let json = json.as_str();
    assert_eq!(json_u64(json, "expected"), 8000, "{json}");
    assert_eq!(json_u64(json, "delivered"), 8000, "{json}");
    assert_eq!(json_u64(json, "lost"), 0, "{json}");
    assert_eq!(json_u64(json, "duplicated"), 0, "{json}");
    assert_eq!(json_u64(json, "published"), 4000, "{json}");
    assert!(json.contains("\"timed_out\":false"), "{json}");
    // --broker-pid: the broker's peak RSS is known.
    assert!(!json.contains("\"broker_peak_rss_mb\":null"), "{json}");
    // No idle connections asked for.
    assert_eq!(json_u64(json, "idle_connections"), 0, "{json}");
    assert!(json.contains("\"broker_rss_after_idle_mb\":null"), "{json}");
}

#[test]
fn idle_connections_are_accepted_and_stay_open() {
    let broker = Broker::start(&["-p", "0"]);
    let json = bench_json(
        &broker,
        &[
            "--messages",
            "500",
            "--qos",
            "1",
            "--idle-connections",
            "200",
            "--idle-concurrency",
            "16",
            "--timeout-s",
            "60",
        ],
    );
    let json = json.as_str();
    assert_eq!(json_u64(json, "idle_connections"), 200, "{json}");
    assert_eq!(json_u64(json, "idle_accepted"), 200, "{json}");
    assert_eq!(json_u64(json, "idle_closed"), 0, "{json}");
    assert!(
        !json.contains("\"broker_rss_after_idle_mb\":null"),
        "{json}"
    );
    assert_eq!(json_u64(json, "lost"), 0, "{json}");
    assert!(json.contains("\"warnings\":[]"), "{json}");
}

/// A subscriber limited to 10 msg/s reads 20 small messages (one in-flight window) in one 1 KiB
/// read and then holds back for 2 s. With the publishers long done, that must not count as the
/// broker being silent: it waits out its own throttle and gets all 40.
#[test]
fn a_throttled_subscriber_is_not_cut_short_by_the_idle_window() {
    let broker = Broker::start(&["-p", "0"]);
    let json = bench_json(
        &broker,
        &[
            "--messages",
            "40",
            "--qos",
            "1",
            "--sub-rate-limit",
            "10",
            "--end-idle-s",
            "1",
            "--timeout-s",
            "30",
        ],
    );
    let json = json.as_str();
    assert_eq!(json_u64(json, "delivered"), 40, "{json}");
    assert_eq!(json_u64(json, "lost"), 0, "{json}");
    assert!(json.contains("\"timed_out\":false"), "{json}");
    assert!(json.contains("\"warnings\":[]"), "{json}");
}

/// The number value of `"key":N.N` in a flat JSON line.
fn json_f64(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let num: String = json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// Issue 7's slow-subscriber case: a persistent QoS 1 subscriber reading 5,000 messages/s behind
/// a publisher with 100 in flight that could go many times faster, 20,000 x 1 KiB. Everything
/// PUBACKed is delivered, and the broker process stays below 16 MB, less than the backlog alone
/// would take (20 MB) if the broker buffered it: the publisher is slowed down instead.
#[test]
fn slow_subscriber_loses_nothing_and_broker_memory_stays_bounded() {
    let broker = Broker::start(&["-p", "0"]);
    let json = bench_json(
        &broker,
        &[
            "--messages",
            "20000",
            "--qos",
            "1",
            "--payload-bytes",
            "1024",
            "--sub-rate-limit",
            "5000",
            "--clean-session",
            "false",
            "--timeout-s",
            "60",
        ],
    );
    let json = json.as_str();
    assert_eq!(json_u64(json, "delivered"), 20000, "{json}");
    assert_eq!(json_u64(json, "lost"), 0, "{json}");
    assert_eq!(json_u64(json, "duplicated"), 0, "{json}");
    let rss = json_f64(json, "broker_peak_rss_mb");
    assert!(rss > 0.0 && rss < 16.0, "broker peak RSS {rss} MB: {json}");
}
