use super::*;
use crate::check::MsgId;

const S: u64 = 1_000_000;

fn sample() -> (Scenario, Report) {
    let text = r#"description = "report"
duration_s = 10
heal_s = 5
[[device]]
name = "esp32"
profile = "pubsubclient"
qos = 0
[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 0
[expect]
delivered = [3, 3]
lost = [0, 0]
[expect.device.esp32]
reconnects = [0, 0]
latency_p99_ms = [0, 100]
"#;
    let scenario = Scenario::parse(text, "r.toml").unwrap();
    let mut l = Ledger::for_scenario(&scenario);
    let d = l.device_id("esp32").unwrap();
    let s = l.subscriber_id("sub").unwrap();
    l.device_connected(0, d, true);
    l.subscriber_connected(0, s, false);
    l.subscribed(0, s, "ESP32/#", 0, true);
    for seq in 0..3u64 {
        let t = seq * 2 * S;
        l.publish_called(t, d, seq, "ESP32/TEM", 0, true);
        l.publish_completed(t, d, seq);
        if seq != 1 {
            l.received(
                t + 12_345 * (seq + 1),
                s,
                "ESP32/TEM",
                MsgId { device: d, seq },
                0,
                false,
                false,
            );
        }
    }
    l.device_disconnected(7 * S, d);
    l.device_connected(8 * S, d, true);
    l.received(
        9 * S,
        s,
        "ESP32/TEM",
        MsgId { device: d, seq: 2 },
        0,
        false,
        false,
    );
    l.heal(10 * S);
    l.finish(15 * S);
    let facts = RunFacts::for_scenario(&scenario, 15_000, Duration::from_millis(250));
    let report = Report::new(&l, facts);
    (scenario, report)
}

#[test]
fn render_is_deterministic_text() {
    let (_, report) = sample();
    let want = "\
scenario r.toml
seed 1  tick 1 ms  simulated 15.000 s
scope                       pub  refus    ack  deliv   lost lostbk    dup reconn    p50 ms    p99 ms    max ms
all                           3      0      3      2      1      0      1      1      12.3      37.0      37.0
qos0                          3      0      3      2      1      0      1      0      12.3      37.0      37.0
device esp32                  3      0      3      2      1      0      1      1      12.3      37.0      37.0
subscriber sub                0      0      0      2      1      0      1      0      12.3      37.0      37.0
losses by cause (message x subscriber pairs):
  unexplained (silent)                                                  1
{LEGEND}violations: 1
  9.000 qos0: esp32 seq 2 (QoS 0) received again by sub
replay: cargo run --release -- sim r.toml --seed 1
";
    let want = want.replace("{LEGEND}", LEGEND);
    assert_eq!(report.render(), want);
    assert_eq!(report.render(), sample().1.render());
    assert_eq!(
        report.render_speed(),
        "wall 0.250 s  60.0 simulated s per wall s\n"
    );
}

#[test]
fn check_expect_lists_every_unmet_range() {
    let (scenario, report) = sample();
    assert_eq!(
        check_expect(&scenario.expect, &report),
        vec![
            "r.toml: violations = 1, expected [0, 0]".to_string(),
            "r.toml:13: delivered = 2, expected [3, 3]".to_string(),
            "r.toml:14: lost = 1, expected [0, 0]".to_string(),
            "r.toml:16: device.esp32.reconnects = 1, expected [0, 0]".to_string(),
        ]
    );
}

#[test]
fn a_metric_without_samples_is_unmet() {
    let (_, report) = sample();
    let expect = Expect {
        checks: vec![crate::scenario::ExpectCheck {
            scope: Scope::Qos(1),
            metric: Metric::LatencyP99Ms,
            min: 0,
            max: 10,
            line: 3,
        }],
    };
    assert_eq!(
        check_expect(&expect, &report),
        vec!["r.toml:3: qos1.latency_p99_ms = nothing measured, expected [0, 10]".to_string()]
    );
    assert_eq!(report.metric(&Scope::Qos(0), Metric::Published), Some(3));
}
