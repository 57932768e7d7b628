//! The `mqsim broker` binary end to end: config file, `-v` log, Ctrl-C, and the mosquitto command
//! line clients (`mosquitto_sub` / `mosquitto_pub`, Debian package mosquitto-clients).
//!
//! The mosquitto-client checks need those programs. Where they are missing the test says so and
//! passes, unless `MQSIM_REQUIRE_INTEROP=1` (set by CI, which installs them) makes it fail.

mod common;

use std::process::{Command, Stdio};

use common::BrokerProc;

fn have_mosquitto_clients() -> bool {
    let ok = Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("MQSIM_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "mosquitto_pub/mosquitto_sub not installed but MQSIM_REQUIRE_INTEROP=1"
        );
        eprintln!("mosquitto-clients not installed: skipping the mosquitto_sub/pub part");
    }
    ok
}

#[test]
fn broker_logs_like_mosquitto_and_stops_cleanly_on_ctrl_c() {
    let b = BrokerProc::start(&["-p", "0", "-v"]);
    let status = b.interrupt();
    assert!(status.success(), "{status:?}");
}

#[test]
fn mosquitto_sub_and_pub_round_trip_at_every_qos() {
    if !have_mosquitto_clients() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("mqsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    // The source document's two lines, on a free loopback port.
    std::fs::write(&conf, "listener 0 127.0.0.1\nallow_anonymous true\n").unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap(), "-v"]);
    let port = b.port.to_string();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-p",
            &port,
            "-h",
            "127.0.0.1",
            "-t",
            "ESP32/#",
            "-v",
            "-q",
            "2",
            "-C",
            "3",
            "-W",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    b.wait_for("Sending SUBACK");
    for (topic, msg, qos) in [
        ("ESP32/TEM", "26.70", "0"),
        ("ESP32/HUM", "52.00", "1"),
        ("ESP32/TEM", "26.7", "2"),
    ] {
        let st = Command::new("mosquitto_pub")
            .args([
                "-p",
                &port,
                "-h",
                "127.0.0.1",
                "-t",
                topic,
                "-m",
                msg,
                "-q",
                qos,
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = sub.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, "ESP32/TEM 26.70\nESP32/HUM 52.00\nESP32/TEM 26.7\n");
    b.wait_for("Received PUBLISH from");
    let _ = b.interrupt();
}

#[test]
fn listener_without_allow_anonymous_refuses_clients() {
    if !have_mosquitto_clients() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("mqsim-cli-anon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, "listener 0 127.0.0.1\n").unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap()]);
    let out = Command::new("mosquitto_pub")
        .args([
            "-p",
            &b.port.to_string(),
            "-h",
            "127.0.0.1",
            "-t",
            "x",
            "-m",
            "y",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not authori"), "{err}");
}

#[test]
fn bad_config_file_exits_with_line_number() {
    let dir = std::env::temp_dir().join(format!("mqsim-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("bad.conf");
    std::fs::write(&conf, "listener 1883\nallow_anonymous perhaps\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["broker", "-c", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: allow_anonymous"), "{err}");
}
