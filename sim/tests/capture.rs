//! `mqsim sim --pcap`: a whole run's capture, from the link model's own decisions, reads in tshark
//! as MQTT over TCP, with the modelled losses flagged as retransmissions; the same seed gives the
//! same file. The tshark part runs where tshark is installed (CI installs it and sets
//! `MQSIM_REQUIRE_TSHARK=1`).

use std::process::Command;

fn capture(seed: &str, path: &std::path::Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args([
            "sim",
            "../scenarios/qos1-loss20.toml",
            "--quiet",
            "--seed",
            seed,
            "--pcap",
        ])
        .arg(path)
        .output()
        .expect("run mqsim sim");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_simulated_capture_decodes_in_tshark_and_replays_byte_for_byte() {
    let dir = std::env::temp_dir().join(format!("mqsim-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    capture("3", &a);
    capture("3", &b);
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "same seed, same file");
    assert_eq!(
        &bytes[..4],
        &[0xD4, 0xC3, 0xB2, 0xA1],
        "little-endian pcap magic"
    );

    if !mqsim_sim::net::pcap::tshark_for_tests() {
        return;
    }
    let count = |filter: &str| {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(&a)
            .args(["-Y", filter])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    // Every PUBLISH, in whichever frame it went (TEM and HUM often share one): the device's 56
    // and their 56 copies to the subscriber, plus any resent ones.
    let o = Command::new("tshark")
        .arg("-r")
        .arg(&a)
        .args(["-T", "fields", "-e", "mqtt.msgtype"])
        .output()
        .unwrap();
    let publishes = String::from_utf8_lossy(&o.stdout)
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| *t == "3")
        .count();
    assert!(publishes >= 112, "PUBLISH packets decoded: {publishes}");
    assert!(count("mqtt.msgtype == 1") >= 2, "CONNECTs decoded");
    assert!(
        count("tcp.flags.syn == 1 && tcp.flags.ack == 0") >= 2,
        "handshakes first"
    );
    assert!(
        count("tcp.analysis.retransmission") >= 1,
        "losses show as retransmissions at 20 %"
    );
    assert_eq!(count("_ws.malformed"), 0, "nothing malformed");
}
