//! The `mqsim broker` binary end to end: config file, `-v` log, Ctrl-C, and the mosquitto command
//! line clients (`mosquitto_sub` / `mosquitto_pub`, Debian package mosquitto-clients).
//!
//! The mosquitto-client checks need those programs. Where they are missing the test says so and
//! passes, unless `MQSIM_REQUIRE_INTEROP=1` (set by CI, which installs them) makes it fail.

mod common;

use std::process::{Command, Stdio};

use common::{broker_refuses, have_mosquitto_clients, BrokerProc};

/// A CONNECT (MQTT 3.1.1, clean session, keep alive 60 s, client id "ESP32"), a QoS 0 PUBLISH of
/// "26.70" to "ESP32/TEM" and a DISCONNECT, written byte by byte from the specification rather
/// than with our codec, so that a codec bug cannot hide here.
const CONNECT_ESP32: &[u8] = &[
    0x10, 17, // CONNECT, remaining length
    0, 4, b'M', b'Q', b'T', b'T', 4, // protocol name and level 4 (3.1.1)
    0x02, 0, 60, // flags: clean session; keep alive 60 s
    0, 5, b'E', b'S', b'P', b'3', b'2', // client id
];
const PUBLISH_TEM: &[u8] = &[
    0x30, 16, // PUBLISH, QoS 0, no DUP, no retain; remaining length
    0, 9, b'E', b'S', b'P', b'3', b'2', b'/', b'T', b'E', b'M', // topic
    b'2', b'6', b'.', b'7', b'0', // payload
];
const DISCONNECT: &[u8] = &[0xE0, 0];

/// The `-v` log of one session through the real binary, line by line, mosquitto's wording
/// (`<unix seconds>: ` before each line is checked by `BrokerProc`), then Ctrl-C.
#[test]
fn broker_logs_like_mosquitto_and_stops_cleanly_on_ctrl_c() {
    use std::io::{Read, Write};

    let version = env!("CARGO_PKG_VERSION");
    let b = BrokerProc::start(&["-p", "0", "-v"]);
    let port = b.port;
    let mut log = b.log();
    // An IPv6 twin may be opened, or refused with a warning, depending on the host.
    log.retain(|l| !l.contains("ipv6 listen socket"));
    assert_eq!(
        log,
        [
            format!("mqsim version {version} starting"),
            "Using default config.".to_string(),
            format!("Opening ipv4 listen socket on port {port}."),
            format!("mqsim version {version} running"),
        ],
    );

    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let client_port = tcp.local_addr().unwrap().port();
    tcp.write_all(CONNECT_ESP32).unwrap();
    let mut connack = [0u8; 4];
    tcp.read_exact(&mut connack).unwrap();
    assert_eq!(
        connack,
        [0x20, 2, 0, 0],
        "CONNACK, session not present, accepted"
    );
    tcp.write_all(PUBLISH_TEM).unwrap();
    tcp.write_all(DISCONNECT).unwrap();
    b.wait_for("Client ESP32 disconnected");
    // The broker closes the connection after DISCONNECT.
    assert_eq!(tcp.read(&mut [0u8; 1]).unwrap(), 0, "end of stream");

    let peer = format!("127.0.0.1:{client_port} on port {port}");
    assert_eq!(
        b.log()[line_index(&b.log(), "New connection")..],
        [
            format!("New connection from {peer}."),
            // As mosquitto words it: the address without the listener's port.
            format!("New client connected from 127.0.0.1:{client_port} as ESP32 (p2, c1, k60)."),
            "No will message specified.".to_string(),
            "Sending CONNACK to ESP32 (0, 0)".to_string(),
            "Received PUBLISH from ESP32 (d0, q0, r0, m0, 'ESP32/TEM', ... (5 bytes))".to_string(),
            "Received DISCONNECT from ESP32".to_string(),
            "Client ESP32 disconnected.".to_string(),
        ],
    );

    let (status, log) = b.interrupt_and_log();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        log[line_index(&log, "Client ESP32 disconnected.") + 1..],
        [format!("mqsim version {version} terminating")],
    );
}

/// The index of the first line of `log` that starts with `prefix`.
fn line_index(log: &[String], prefix: &str) -> usize {
    log.iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {log:#?}"))
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
    let err = broker_refuses(&conf);
    assert!(
        err.contains("Error: Invalid allow_anonymous value (perhaps)."),
        "{err}"
    );
    assert!(
        err.contains(&format!("Error found at {}:2.", conf.display())),
        "{err}"
    );
}

/// `mqsim sim | head -1`: a reader that goes away ends the run quietly (SIGPIPE, as any Unix
/// tool), without a panic on stderr.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mqsim"))
        // Ten simulated minutes: far more output than a pipe buffers (64 KiB), so a write
        // meets the closed pipe.
        .args(["sim", "--duration", "600"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mqsim starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a first line");
    assert!(first.starts_with("# scenarios/"), "{first}");
    // The reader is gone now (its end of the pipe dropped with the BufReader).
    let out = child.wait_with_output().expect("mqsim ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // SIGPIPE is 13 on Linux and the BSDs.
    assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
}

/// The replay promise at the binary: `mqsim sim --seed 1` twice prints the same bytes, but for
/// the one line that measures the run (wall time, speed, peak memory).
#[test]
fn the_same_seed_prints_the_same_output_but_the_wall_line() {
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqsim"))
            .args(["sim", "--seed", "1"])
            .output()
            .expect("mqsim runs");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let walls = text.lines().filter(|l| l.starts_with("wall ")).count();
        assert_eq!(walls, 1, "one wall-time line:\n{text}");
        text.lines()
            .filter(|l| !l.starts_with("wall "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (a, b) = (run(), run());
    assert!(a.contains("violations: 0"), "{a}");
    assert_eq!(a, b);
}
