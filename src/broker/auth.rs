//! mosquitto's `password_file`, as `mosquitto_passwd` writes it: one `user:hash` per line, the hash
//! either `$7$ITERATIONS$SALT$HASH` (PBKDF2-HMAC-SHA512, mosquitto 2's default, 101 iterations) or
//! the older `$6$SALT$HASH` (SHA-512 of the password's bytes followed by the salt's), the salt 12
//! bytes and the hash 64, both in standard base64 (mosquitto's `src/password_mosq.c`,
//! `src/security_default.c`). The crypto is RustCrypto's; the comparison is constant-time.
//!
//! Stricter than mosquitto, which drops a bad entry with a log line and starts anyway: here any
//! bad line is an error naming its line, so a typo cannot silently lock a user out (or leave a
//! reload half applied).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::file::{file_lines, FileError};
use base64::Engine;
use subtle::ConstantTimeEq;

/// Salt bytes in a mosquitto hash (`SALT_LEN`).
pub const SALT_BYTES: usize = 12;
/// Hash bytes in a mosquitto hash (SHA-512's output).
pub const HASH_BYTES: usize = 64;
/// User names are MQTT strings.
const USERNAME_MAX_BYTES: usize = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `$6$`: SHA-512(password || salt).
    Sha512,
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 { iterations: u32 },
}

#[derive(Clone)]
struct Entry {
    kind: Kind,
    salt: [u8; SALT_BYTES],
    hash: [u8; HASH_BYTES],
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hashes stay out of logs and panic messages.
        write!(f, "{:?}", self.kind)
    }
}

/// The users of a `password_file` and their hashes.
#[derive(Clone, Debug, Default)]
pub struct PasswordFile {
    users: BTreeMap<String, Entry>,
}

impl PasswordFile {
    /// Parses a `password_file`. Blank lines and lines starting with `#` are skipped; every other
    /// line must be `USER:$7$...` or `USER:$6$...` with a salt of 12 bytes and a hash of 64.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let mut users: BTreeMap<String, (usize, Entry)> = BTreeMap::new();
        for (line, trimmed) in file_lines(text) {
            let err = |reason: String| FileError { line, reason };
            let Some((user, hash)) = trimmed.split_once(':') else {
                return Err(err(
                    "expected USER:HASH (as mosquitto_passwd writes it)".into()
                ));
            };
            let user = user.trim();
            if user.is_empty() {
                return Err(err("empty user name".into()));
            }
            if user.len() > USERNAME_MAX_BYTES {
                return Err(err("user name longer than 65,535 bytes".into()));
            }
            let entry = parse_hash(hash.trim()).map_err(|r| err(format!("user {user}: {r}")))?;
            if let Some((first, _)) = users.get(user) {
                return Err(err(format!(
                    "user {user} appears twice (first on line {first})"
                )));
            }
            users.insert(user.to_string(), (line, entry));
        }
        Ok(PasswordFile {
            users: users.into_iter().map(|(u, (_, e))| (u, e)).collect(),
        })
    }

    /// How many users the file has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// No users: every client with a user name is refused.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` is in the file and `password` is theirs. No password never is. As in
    /// mosquitto, which hashes the password as a C string, only the bytes before a first zero
    /// byte count.
    pub fn verify(&self, user: &str, password: Option<&[u8]>) -> bool {
        let (Some(e), Some(password)) = (self.users.get(user), password) else {
            return false;
        };
        let password = match password.iter().position(|&b| b == 0) {
            Some(n) => &password[..n],
            None => password,
        };
        let mut got = [0u8; HASH_BYTES];
        match e.kind {
            Kind::Sha512 => {
                use sha2::Digest;
                let mut h = sha2::Sha512::new();
                h.update(password);
                h.update(e.salt);
                got.copy_from_slice(&h.finalize());
            }
            Kind::Pbkdf2Sha512 { iterations } => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, &e.salt, iterations, &mut got);
            }
        }
        bool::from(got.ct_eq(&e.hash))
    }
}

/// `$7$ITERATIONS$SALT$HASH` or `$6$SALT$HASH`.
fn parse_hash(s: &str) -> Result<Entry, &'static str> {
    let mut parts = s.split('$');
    if parts.next() != Some("") {
        return Err("invalid password hash (expected $7$... or $6$...)");
    }
    let kind = match parts.next() {
        Some("7") => {
            let iterations = parts
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| n >= 1)
                .ok_or("invalid hash iterations")?;
            Kind::Pbkdf2Sha512 { iterations }
        }
        Some("6") => Kind::Sha512,
        _ => return Err("invalid password hash type (expected $7$ or $6$)"),
    };
    let (Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("invalid password hash");
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt: [u8; SALT_BYTES] = b64
        .decode(salt)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("unable to decode the password salt (12 bytes in base64)")?;
    let hash: [u8; HASH_BYTES] = b64
        .decode(hash)
        .ok()
        .and_then(|v: Vec<u8>| v.try_into().ok())
        .ok_or("unable to decode the password hash (64 bytes in base64)")?;
    Ok(Entry { kind, salt, hash })
}

#[cfg(test)]
mod tests;
