//! Shared by the binary's integration tests: `mqsim broker` as a child process.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `mqsim broker ARGS`, its log read line by line; killed on drop.
pub struct BrokerProc {
    child: Child,
    pub port: u16,
    lines: mpsc::Receiver<String>,
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
                    let (ts, text) = line
                        .split_once(": ")
                        .expect("'<unix seconds>: text' log format");
                    assert!(ts.parse::<u64>().is_ok(), "timestamp prefix in {line:?}");
                    if text.contains(needle) {
                        return text.to_string();
                    }
                }
                Err(_) => panic!("no log line containing {needle:?} within 10 s"),
            }
        }
    }

    pub fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        self.wait_for("terminating");
        self.child.wait().unwrap()
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
