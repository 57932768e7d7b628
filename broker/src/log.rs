//! The `mqsim broker` log: `<unix seconds>: <text>` lines, as mosquitto prints them, to the
//! destinations and of the types mosquitto.conf's `log_dest` and `log_type` choose (stderr and
//! errors to information by default). Until [`init`], lines go to stderr.

use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{log_type, LogSettings};

struct Logger {
    stderr: bool,
    stdout: bool,
    file: Option<Mutex<LineWriter<File>>>,
    types: u32,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets where and what to log, once. `types` are [`log_type`] bits (`-v` passes all of them).
/// A log file that cannot be opened leaves stderr with errors only, as mosquitto's log__init
/// does (logging.c:123-131), and says so.
pub fn init(settings: &LogSettings, types: u32) {
    let mut logger = Logger {
        stderr: settings.stderr,
        stdout: settings.stdout,
        file: None,
        types,
    };
    let mut failed = None;
    if let Some(path) = &settings.file {
        match OpenOptions::new().append(true).create(true).open(path) {
            Ok(f) => logger.file = Some(Mutex::new(LineWriter::new(f))),
            Err(_) => {
                logger = Logger {
                    stderr: true,
                    stdout: false,
                    file: None,
                    types: log_type::ERROR,
                };
                failed = Some(path.display().to_string());
            }
        }
    }
    let _ = LOGGER.set(logger);
    if let Some(path) = failed {
        line(&format!(
            "Error: Unable to open log file {path} for writing."
        ));
    }
}

/// A line of the front end, its type read from its first word (`Error...`, `Warning...`, else
/// a notice).
pub fn line(text: &str) {
    write(line_class(text), text);
}

/// The type of a front-end line: `Error...` and a failed TLS handshake's `TLS Error ...` (an
/// error in mosquitto too) are errors, `Warning...` a warning, the rest notices.
fn line_class(text: &str) -> u32 {
    if text.starts_with("Error") || text.starts_with("TLS Error") {
        log_type::ERROR
    } else if text.starts_with("Warning") {
        log_type::WARNING
    } else {
        log_type::NOTICE | log_type::INFORMATION
    }
}

/// A line of the broker task: the core's connection lines are notices, the rest of its lines
/// (emitted only when logging packets: `-v`, `log_type debug`) debug; the adapter's own
/// `Error: ...` (the journal cannot be written) is an error, as the broker stops on it.
pub fn broker_line(text: &str) {
    write(broker_line_class(text), text);
}

fn broker_line_class(text: &str) -> u32 {
    // The core's notice lines (`Config::log_notices`), as mosquitto types them.
    const NOTICES: [&str; 6] = [
        "New connection from ",
        "New client connected from ",
        "Client ",
        "Refusing connection from ",
        "Outgoing messages are being dropped ",
        "Bad socket read/write ",
    ];
    if text.starts_with("Error") {
        log_type::ERROR
    } else if NOTICES.iter().any(|p| text.starts_with(p)) {
        log_type::NOTICE | log_type::INFORMATION
    } else {
        log_type::DEBUG
    }
}

fn write(class: u32, text: &str) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let Some(l) = LOGGER.get() else {
        for part in text.split('\n') {
            eprintln!("{ts}: {part}");
        }
        return;
    };
    if l.types & class == 0 {
        return;
    }
    for part in text.split('\n') {
        if l.stderr {
            eprintln!("{ts}: {part}");
        }
        if l.stdout {
            println!("{ts}: {part}");
        }
        if let Some(f) = &l.file {
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{ts}: {part}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_errors_whatever_logs_them() {
        assert_eq!(line_class("Error: Unable to listen on x."), log_type::ERROR);
        assert_eq!(
            line_class("TLS Error from 127.0.0.1:40412 on port 8883: peer sent no certificates."),
            log_type::ERROR
        );
        assert_eq!(line_class("Warning: unsupported option"), log_type::WARNING);
        assert_eq!(
            line_class("Reloading config."),
            log_type::NOTICE | log_type::INFORMATION
        );
        assert_eq!(
            broker_line_class(
                "Error: persistence write failed: No space left on device; stopping."
            ),
            log_type::ERROR
        );
        for notice in [
            "New connection from 127.0.0.1:5 on port 1883.",
            "New client connected from 127.0.0.1:5 as a (p2, c1, k60).",
            "Client a disconnected.",
            "Client a has exceeded timeout, disconnecting.",
        ] {
            assert_eq!(
                broker_line_class(notice),
                log_type::NOTICE | log_type::INFORMATION,
                "{notice}"
            );
        }
        assert_eq!(
            broker_line_class("No will message specified."),
            log_type::DEBUG
        );
        assert_eq!(
            broker_line_class("Sending CONNACK to a (0, 0)"),
            log_type::DEBUG
        );
    }
}
