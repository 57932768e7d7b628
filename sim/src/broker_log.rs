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
    let class = if text.starts_with("Error") {
        log_type::ERROR
    } else if text.starts_with("Warning") {
        log_type::WARNING
    } else {
        log_type::NOTICE | log_type::INFORMATION
    };
    write(class, text);
}

/// A line of the broker core: it emits them only when logging packets (`-v`, `log_type debug`).
pub fn broker_line(text: &str) {
    write(log_type::DEBUG, text);
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
