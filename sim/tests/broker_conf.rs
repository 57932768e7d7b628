//! mosquitto.conf through the real `mqsim broker` binary: a bad directive stops it at start-up
//! with mosquitto's two lines and exit code, `max_keepalive` refuses over TCP, `log_dest file`
//! and `log_type` decide what is written where.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;

use common::BrokerProc;

fn conf_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mqsim-conf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `mqsim broker -c FILE` with `text` as FILE; returns the exit code and the stderr lines
/// without their timestamps.
fn run_with_config(name: &str, text: &str) -> (Option<i32>, Vec<String>, PathBuf) {
    let conf = conf_dir(name).join("mosquitto.conf");
    std::fs::write(&conf, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["broker", "-c", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| l.split_once(": ").map_or(l, |(_, t)| t).to_string())
        .collect();
    (out.status.code(), lines, conf)
}

#[test]
fn unknown_directive_stops_the_broker_with_file_and_line() {
    // As mosquitto 2.0.11 does with the same file: the two lines and nothing else (mosquitto exits 3, we exit 1).
    let (code, lines, conf) = run_with_config("unknown", "listener 0\nfoo_bar 1\n");
    assert_eq!(code, Some(1));
    assert_eq!(
        lines,
        [
            "Error: Unknown configuration variable \"foo_bar\".".to_string(),
            format!("Error found at {}:2.", conf.display()),
        ]
    );
}

#[test]
fn bad_values_stop_the_broker_with_mosquittos_wording() {
    for (text, line, reason) in [
        (
            "max_keepalive 70000\n",
            1,
            "Invalid max_keepalive value (70000)",
        ),
        ("\n\nport 0\n", 3, "Invalid port value (0)"),
        ("log_dest bogus\n", 1, "Invalid log_dest value (bogus)"),
        ("# x\nlog_type bogus\n", 2, "Invalid log_type value (bogus)"),
        (
            "retain_available maybe\n",
            1,
            "Invalid retain_available value (maybe)",
        ),
    ] {
        let (code, lines, conf) = run_with_config("bad", text);
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(
            lines,
            [
                format!("Error: {reason}."),
                format!("Error found at {}:{line}.", conf.display()),
            ],
            "{text}"
        );
    }
}

#[test]
fn known_but_unsupported_keys_are_warnings() {
    let conf = conf_dir("warn").join("mosquitto.conf");
    std::fs::write(&conf, "listener 0 127.0.0.1\nconnection_messages true\n").unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap()]);
    assert!(b.log().contains(
        &"Warning: unsupported option 'connection_messages' on line 2 ignored.".to_string()
    ));
    assert!(b.interrupt().success());
}

/// A 3.1.1 CONNECT, clean session, client id "k", keep alive `k` seconds.
fn connect(keepalive_s: u16) -> Vec<u8> {
    let [hi, lo] = keepalive_s.to_be_bytes();
    vec![
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, hi, lo, 0, 1, b'k',
    ]
}

#[test]
fn max_keepalive_refuses_over_tcp_with_connack_2() {
    let conf = conf_dir("keepalive").join("mosquitto.conf");
    std::fs::write(
        &conf,
        "listener 0 127.0.0.1\nallow_anonymous true\nmax_keepalive 60\n",
    )
    .unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap(), "-v"]);
    for (keepalive, code) in [(61, 2), (0, 2), (60, 0)] {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        tcp.write_all(&connect(keepalive)).unwrap();
        let mut connack = [0u8; 4];
        tcp.read_exact(&mut connack).unwrap();
        assert_eq!(connack, [0x20, 2, 0, code], "keep alive {keepalive}");
        if code != 0 {
            assert_eq!(tcp.read(&mut [0u8; 1]).unwrap(), 0, "closed after CONNACK");
        }
    }
    b.wait_for("Bad socket read/write on client k: Invalid arguments provided.");
    assert!(b.interrupt().success());
}

#[test]
fn log_dest_file_and_log_type_all_write_the_packets_there() {
    let dir = conf_dir("logfile");
    let log = dir.join("broker.log");
    let _ = std::fs::remove_file(&log);
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener 0 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nlog_dest file {}\nlog_type all\n",
            log.display()
        ),
    )
    .unwrap();
    // No -v: `log_type all` turns the packet lines on.
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap()]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    tcp.write_all(&connect(30)).unwrap();
    b.wait_for("Sending CONNACK to k (0, 0)");
    tcp.write_all(&[0xE0, 0]).unwrap();
    b.wait_for("Client k disconnected.");
    let (status, stderr_log) = b.interrupt_and_log();
    assert!(status.success());
    let file_log: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect();
    assert_eq!(file_log, stderr_log, "the same lines in both destinations");
    assert!(file_log.iter().any(|l| l == "Received DISCONNECT from k"));
}

#[test]
fn log_type_without_debug_keeps_the_packets_out() {
    let dir = conf_dir("logtype");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        "listener 0 127.0.0.1\nallow_anonymous true\nlog_type notice\nlog_type warning\n",
    )
    .unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap()]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    tcp.write_all(&connect(30)).unwrap();
    let mut connack = [0u8; 4];
    tcp.read_exact(&mut connack).unwrap();
    drop(tcp);
    // Closed by the client: the broker's notice says so (wait for it before stopping).
    b.wait_for("closed its connection");
    let (status, log) = b.interrupt_and_log();
    assert!(status.success());
    assert!(!log.iter().any(|l| l.starts_with("Sending")), "{log:#?}");
    assert!(log.iter().any(|l| l.starts_with("mqsim version")));
    // mosquitto's notices, without -v: the connection coming and going.
    assert!(
        log.iter()
            .any(|l| l.starts_with("New client connected from 127.0.0.1:")
                && l.ends_with(" as k (p2, c1, k30).")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l == "Client k closed its connection."),
        "{log:#?}"
    );
}
