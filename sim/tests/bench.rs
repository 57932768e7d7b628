//! `mqsim bench` end to end against our own broker binary: at QoS 1 nothing may be lost or
//! duplicated, and the JSON report says so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `mqsim broker -p 0`, killed on drop.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start() -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqsim"))
            .args(["broker", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqsim broker");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps draining stderr so the broker never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut b = Broker { child, port: 0 };
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("no 'listen socket' log line within 10 s");
            // `<unix ts>: Opening ipv4 listen socket on port N.`
            if line.contains("listen socket on port") {
                b.port = line
                    .trim_end_matches('.')
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                return b;
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

#[test]
fn qos1_two_to_two_loses_and_duplicates_nothing() {
    let broker = Broker::start();
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["bench", "--port", &broker.port.to_string()])
        .args([
            "--messages",
            "2000",
            "--qos",
            "1",
            "--publishers",
            "2",
            "--subscribers",
            "2",
        ])
        .args([
            "--broker-pid",
            &broker.child.id().to_string(),
            "--timeout-s",
            "60",
            "--json",
        ])
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
    assert_eq!(json_u64(json, "expected"), 8000, "{json}");
    assert_eq!(json_u64(json, "delivered"), 8000, "{json}");
    assert_eq!(json_u64(json, "lost"), 0, "{json}");
    assert_eq!(json_u64(json, "duplicated"), 0, "{json}");
    assert_eq!(json_u64(json, "published"), 4000, "{json}");
    assert!(json.contains("\"timed_out\":false"), "{json}");
    // --broker-pid: the broker's peak RSS is known.
    assert!(!json.contains("\"broker_peak_rss_mb\":null"), "{json}");
}
