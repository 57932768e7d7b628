//! A sketch's process: the compiled sketch runs as a child process of the simulator, one per
//! device, speaking the core's pipe protocol (`sim/arduino/core/mqsim_hal.cpp`) on its standard
//! input and output. The sketch only runs while the simulator waits for its next request: it is a
//! coroutine whose stack is a process's, and the pipe is the baton.
//!
//! Request: op u8, arg u64 (little-endian), len u32, bytes. Reply: value i64, len u32, bytes.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The requests of the core's C interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Now,
    Delay,
    Yield,
    Serial,
    WifiBegin,
    WifiStatus,
    Random,
    TcpConnect,
    TcpWrite,
    TcpAvailable,
    TcpRead,
    TcpPeek,
    TcpConnected,
    TcpStop,
    Sensor,
    LoopEnd,
    Start,
}

impl Op {
    fn from_u8(b: u8) -> Option<Op> {
        use Op::*;
        Some(match b {
            1 => Now,
            2 => Delay,
            3 => Yield,
            4 => Serial,
            5 => WifiBegin,
            6 => WifiStatus,
            7 => Random,
            8 => TcpConnect,
            9 => TcpWrite,
            10 => TcpAvailable,
            11 => TcpRead,
            12 => TcpPeek,
            13 => TcpConnected,
            14 => TcpStop,
            15 => Sensor,
            16 => LoopEnd,
            17 => Start,
            _ => return None,
        })
    }

    /// The core expects no reply.
    pub fn one_way(self) -> bool {
        self == Op::Serial
    }
}

/// One request of the sketch.
#[derive(Debug)]
pub struct Request {
    pub op: Op,
    pub arg: u64,
    pub data: Vec<u8>,
}

/// The largest request accepted (a TCP write of a whole buffer).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The running sketch. Dropping it kills the process.
pub struct SketchProcess {
    child: Child,
    to: ChildStdin,
    from: ChildStdout,
}

impl SketchProcess {
    pub fn spawn(exe: &Path) -> io::Result<SketchProcess> {
        let mut child = Command::new(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_clear()
            .spawn()?;
        let to = child.stdin.take().expect("piped");
        let from = child.stdout.take().expect("piped");
        Ok(SketchProcess { child, to, from })
    }

    /// The sketch's next request; blocks while the sketch computes (it never waits on anything
    /// but us). `Err` when it exited or crashed.
    pub fn request(&mut self) -> io::Result<Request> {
        let mut head = [0u8; 13];
        self.from.read_exact(&mut head)?;
        let op = Op::from_u8(head[0])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown request"))?;
        let arg = u64::from_le_bytes(head[1..9].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[9..13].try_into().expect("4 bytes")) as usize;
        if len > MAX_REQUEST_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too long",
            ));
        }
        let mut data = vec![0u8; len];
        self.from.read_exact(&mut data)?;
        Ok(Request { op, arg, data })
    }

    pub fn reply(&mut self, value: i64, data: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(12 + data.len());
        out.extend_from_slice(&value.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        self.to.write_all(&out)
    }

    /// How the process ended, if it did (`exit status 1`, `signal 11`).
    pub fn exit_status(&mut self) -> Option<String> {
        let st = self.child.try_wait().ok()??;
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = st.signal() {
                return Some(format!("signal {sig}"));
            }
        }
        Some(st.to_string())
    }
}

impl Drop for SketchProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
