//! The broker under test as a process: started by `--spawn`, or an existing one named by
//! `--broker-pid`, so that its peak resident memory can be read from `/proc/<pid>/status`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a spawned broker gets to accept TCP connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker started by the benchmark; killed when dropped.
pub struct Spawned {
    child: Child,
}

impl Spawned {
    /// Starts `command_line` (split on whitespace, no shell; output discarded) and waits until
    /// `addr` accepts TCP connections.
    pub fn start(command_line: &str, addr: SocketAddr) -> io::Result<Spawned> {
        let mut words = command_line.split_whitespace();
        let program = words
            .next()
            .ok_or_else(|| io::Error::other("--spawn: empty command line"))?;
        let child = Command::new(program)
            .args(words)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::other(format!("--spawn: cannot start {program}: {e}")))?;
        let mut s = Spawned { child };
        let t0 = Instant::now();
        loop {
            s.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // A broker already on that port would answer too, while ours dies on bind: look
                // again once it has had a moment to fail.
                std::thread::sleep(Duration::from_millis(100));
                s.check_alive()?;
                return Ok(s);
            }
            if t0.elapsed() >= STARTUP_TIMEOUT {
                return Err(io::Error::other(format!(
                    "--spawn: {addr} does not accept connections after {} s",
                    STARTUP_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(io::Error::other(format!(
                "--spawn: the broker exited ({status}); is the port already in use?"
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident set size (`VmHWM`) of process `pid`, in kB; `None` when unreadable.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM")
}

/// Current resident set size (`VmRSS`) of process `pid`, in kB; `None` when unreadable.
pub fn current_rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, key)
}

/// The value of a `KEY:   1234 kB` line of a `/proc/<pid>/status` text, in kB.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    let mut fields = line[key.len() + 1..].split_whitespace();
    let kb = fields.next()?.parse().ok()?;
    (fields.next() == Some("kB")).then_some(kb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_parsed_in_kb() {
        let status =
            "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(5120));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(4000));
        // A key is matched whole, not as a prefix of another.
        assert_eq!(parse_status_kb(status, "VmH"), None);
        assert_eq!(parse_status_kb("Name: x\n", "VmHWM"), None);
        assert_eq!(parse_status_kb("VmHWM:\t12 MB\n", "VmHWM"), None);
        // Our own process has both.
        assert!(peak_rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
        assert!(current_rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }
}
