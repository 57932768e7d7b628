//! What the readers of mosquitto-format files share (mosquitto.conf in the front end,
//! `password_file` in [`super::auth`], `acl_file` in [`super::acl`]): how their lines are walked
//! and how a bad line is reported. Depends on nothing else in the broker, so those readers and
//! [`super::security`] above them import in one direction.

use alloc::string::String;
use core::fmt;

/// The lines of a file in mosquitto's format (mosquitto.conf, `password_file`, `acl_file`) that
/// say something: numbered from 1, trimmed, blank lines and `#` comments left out.
pub fn file_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| (i + 1, raw.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// A line of a `password_file` or an `acl_file` that does not parse: its number (from 1) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// Line number in the file, from 1.
    pub line: usize,
    /// What is wrong with that line, for a person to read.
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FileError {}
