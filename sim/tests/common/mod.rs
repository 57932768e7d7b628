//! Shared by the binary's integration tests: `mqsim broker` as a child process.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `mqsim broker ARGS`, its log read line by line; killed on drop.
pub struct BrokerProc {
    child: Child,
    pub port: u16,
    lines: mpsc::Receiver<String>,
    /// Every log line read so far, without its timestamp.
    seen: RefCell<Vec<String>>,
}

impl BrokerProc {
    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(args: &[&str]) -> BrokerProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqsim"))
            .arg("broker")
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start mqsim");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = BrokerProc {
            child,
            port: 0,
            lines: rx,
            seen: RefCell::new(Vec::new()),
        };
        let line = b.wait_for("listen socket on port");
        b.port = line
            .trim_end_matches('.')
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        b.wait_for("running");
        b
    }

    /// Waits up to 10 s for a log line containing `needle`; returns it without the timestamp.
    pub fn wait_for(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    let text = strip_timestamp(&line);
                    self.seen.borrow_mut().push(text.to_string());
                    if text.contains(needle) {
                        return text.to_string();
                    }
                }
                Err(_) => panic!(
                    "no log line containing {needle:?} within 10 s; the log so far:\n{}",
                    self.seen.borrow().join("\n")
                ),
            }
        }
    }

    /// A log line containing `needle`, already read (start-up lines are) or within 10 s.
    pub fn wait_for_seen(&self, needle: &str) -> String {
        let seen = self
            .seen
            .borrow()
            .iter()
            .find(|l| l.contains(needle))
            .cloned();
        seen.unwrap_or_else(|| self.wait_for(needle))
    }

    /// `kill -9`: the process ends at once, nothing flushed or saved.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every log line read so far (by [`BrokerProc::wait_for`] and the like), without timestamps.
    pub fn log(&self) -> Vec<String> {
        self.seen.borrow().clone()
    }

    /// Ctrl-C (SIGINT): waits for the "terminating" line and the exit.
    pub fn interrupt(self) -> std::process::ExitStatus {
        self.interrupt_and_log().0
    }

    /// Ctrl-C (SIGINT), then the exit status and the whole log, up to the end of the broker's
    /// standard error.
    pub fn interrupt_and_log(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        self.wait_for("terminating");
        let status = self.child.wait().unwrap();
        // The broker has exited: its standard error ends once the reader thread has read it all.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            let text = strip_timestamp(&line).to_string();
            self.seen.borrow_mut().push(text);
        }
        (status, self.log())
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` of a `<unix seconds>: text` log line, after checking that the timestamp is now-ish (the
/// wall clock, as mosquitto prints it).
fn strip_timestamp(line: &str) -> &str {
    let (ts, text) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("'<unix seconds>: text' log format: {line:?}"));
    let ts: u64 = ts
        .parse()
        .unwrap_or_else(|_| panic!("unix seconds before ': ' in {line:?}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        ts <= now && now - ts < 120,
        "timestamp {ts} of {line:?} is not the current time ({now})"
    );
    text
}

/// Whether `program` runs; if not, a note (or a failure under `MQSIM_REQUIRE_INTEROP=1`, which CI
/// sets once it has installed the Debian `package`).
pub fn have(program: &str, package: &str) -> bool {
    let ok = Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("MQSIM_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "{program} not installed but MQSIM_REQUIRE_INTEROP=1"
        );
        eprintln!("{program} not installed (Debian package {package}): skipping this part");
    }
    ok
}

/// `mosquitto_pub` and `mosquitto_sub` are there (see [`have`]).
pub fn have_mosquitto_clients() -> bool {
    have("mosquitto_pub", "mosquitto-clients")
}

/// A fresh, empty directory for one test, under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mqsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `mqsim broker -c CONF`, which must refuse to start: checks exit code 1 (every failure to start)
/// and returns what it wrote to stderr.
pub fn broker_refuses(conf: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["broker", "-c", conf.to_str().unwrap(), "-p", "0"])
        .output()
        .expect("run mqsim");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit code; stderr:\n{err}");
    err
}
