//! `password_file` and `acl_file` for `mqsim broker`: read here (the core reads no files), parsed
//! by the core, handed to the broker at start and again on SIGHUP, as mosquitto re-reads them.

use std::path::{Path, PathBuf};

use mqsim::broker::{AclFile, PasswordFile, Security};

/// The two files' paths and the tables last loaded from them.
#[derive(Debug)]
pub struct SecurityFiles {
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    current: Security,
}

/// Reads and parses one file; the error says which file, where and why.
fn load<T>(
    key: &str,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, mqsim::broker::FileError>,
) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Unable to open {key} \"{}\": {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{key} \"{}\" {e}", path.display()))
}

impl SecurityFiles {
    /// Loads both files (either may be absent from the config); the first error stops the start.
    pub fn open(password_file: Option<PathBuf>, acl_file: Option<PathBuf>) -> Result<Self, String> {
        let mut current = Security::default();
        if let Some(p) = &password_file {
            current.passwords = Some(load("password_file", p, PasswordFile::parse)?);
        }
        if let Some(p) = &acl_file {
            current.acl = Some(load("acl_file", p, AclFile::parse)?);
        }
        Ok(SecurityFiles {
            password_file,
            acl_file,
            current,
        })
    }

    pub fn current(&self) -> &Security {
        &self.current
    }

    /// Reads both files again. A file that no longer reads or parses keeps its previous table;
    /// each such file's error is returned for the log.
    pub fn reload(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(p) = &self.password_file {
            match load("password_file", p, PasswordFile::parse) {
                Ok(t) => self.current.passwords = Some(t),
                Err(e) => errors.push(e),
            }
        }
        if let Some(p) = &self.acl_file {
            match load("acl_file", p, AclFile::parse) {
                Ok(t) => self.current.acl = Some(t),
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}
