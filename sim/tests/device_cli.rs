//! `mqsim device` over real TCP: the simulator's device code against the real broker binary,
//! printing the reference serial lines, its PUBLISH packets visible in the broker's `-v` log
//! with the reference payload (no ledger tag outside the simulator).

mod common;

use std::process::Command;

use common::BrokerProc;

#[test]
fn virtual_esp32_publishes_to_a_real_broker_over_tcp() {
    let b = BrokerProc::start(&["-p", "0", "-v"]);
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args([
            "device",
            "--broker",
            &format!("127.0.0.1:{}", b.port),
            "--interval-ms",
            "500",
            "--duration",
            "3",
        ])
        .output()
        .expect("run mqsim device");
    assert!(out.status.success(), "{out:?}");
    let serial = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = serial
        .lines()
        .map(|l| l.split_once(" -> ").map_or(l, |(_, text)| text))
        .collect();
    assert_eq!(
        lines[..5],
        [
            "Connecting to WiFi",
            ".",
            "Connected to the WiFi network",
            "Connecting to MQTT...",
            "connected"
        ],
        "{serial}"
    );
    let readings = lines.iter().filter(|l| **l == "Publish message:").count();
    assert!(
        (3..=6).contains(&readings),
        "{readings} readings in 3 s at 500 ms"
    );
    assert!(lines.contains(&"Temperature : 26.70°C"), "{serial}");
    // Every serial line carries the Arduino IDE's `HH:MM:SS.mmm -> ` prefix.
    for l in serial.lines() {
        let (stamp, _) = l.split_once(" -> ").expect("prefixed");
        assert_eq!(stamp.len(), 12, "{l}");
    }
    b.wait_for("New client connected from 127.0.0.1:");
    let publish = b.wait_for("Received PUBLISH from ESP32Client");
    assert!(
        publish.ends_with("'ESP32/TEM', ... (5 bytes))"),
        "the reference payload, 26.70: {publish}"
    );
}
