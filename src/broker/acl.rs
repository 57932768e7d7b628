//! mosquitto's `acl_file`: who may read (receive) and write (publish) which topics.
//!
//! ```text
//! # rules before any `user` line are for anonymous clients
//! topic read public/#
//! user alice
//! topic readwrite alice/#
//! topic deny alice/secret
//! # `pattern` rules are for every client; %c is its client id, %u its user name
//! pattern write devices/%c/#
//! ```
//!
//! The check is mosquitto's (`src/security_default.c`, `mosquitto_acl_check_default`): the
//! client's own `topic` rules first (`deny` rules before the others), then the `pattern` rules
//! (`deny` first again); the first rule whose topic matches decides if it is `deny` (refused) or
//! grants the access asked for (allowed); a matching rule that grants only the other access is
//! passed over; no deciding rule is a refusal. A topic starting with `$` is matched only by rules
//! starting with `$` (the topic filter rule, MQTT-4.7.2-1). A client whose client id or user name
//! contains `+` or `#` gets nothing from `pattern` rules (it could widen them).
//!
//! A SUBSCRIBE filter is granted unless no topic it matches could ever be read (see
//! [`AclFile::can_subscribe`]); every delivery is checked again against the topic itself, as
//! mosquitto does, which is what decides.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::file::{file_lines, FileError};
use crate::topic;

/// The access a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive messages on the topic.
    Read,
    /// Publish to the topic (a will included).
    Write,
}

const READ: u8 = 1;
const WRITE: u8 = 2;

impl Access {
    fn bit(self) -> u8 {
        match self {
            Access::Read => READ,
            Access::Write => WRITE,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// `READ | WRITE` bits; 0 = `deny`.
    access: u8,
    topic: String,
}

/// A parsed `acl_file`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclFile {
    /// `topic` rules per user (`None`: anonymous clients), `deny` rules first.
    users: BTreeMap<Option<String>, Vec<Rule>>,
    /// `pattern` rules, `deny` rules first.
    patterns: Vec<Rule>,
}

/// What a rule says of a topic (or of every topic of a filter).
enum Verdict {
    Allow,
    Deny,
    Next,
}

impl AclFile {
    /// Parses an `acl_file`: `user NAME`, `topic [read|write|readwrite|deny] TOPIC`,
    /// `pattern [read|write|readwrite|deny] TOPIC` (no access word = `readwrite`), `#` comments.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (line, trimmed) in file_lines(text) {
            let err = |reason: String| FileError { line, reason };
            let (keyword, rest) = split_word(trimmed);
            match keyword {
                "topic" | "pattern" => {
                    if rest.is_empty() {
                        return Err(err(format!("{keyword} needs a topic")));
                    }
                    // As in mosquitto: one word is the topic (readwrite); with more, the first
                    // is the access and the rest, spaces included, the topic.
                    let (first, topic) = split_word(rest);
                    let (access, topic) = if topic.is_empty() {
                        (READ | WRITE, first)
                    } else {
                        let access = match first {
                            "read" => READ,
                            "write" => WRITE,
                            "readwrite" => READ | WRITE,
                            "deny" => 0,
                            other => {
                                return Err(err(format!(
                                    "invalid topic access type '{other}' (read, write, readwrite or deny)"
                                )))
                            }
                        };
                        (access, topic)
                    };
                    if !topic::valid_topic_filter(topic) {
                        return Err(err(format!("invalid ACL topic '{topic}'")));
                    }
                    let rule = Rule {
                        access,
                        topic: topic.to_string(),
                    };
                    let list = if keyword == "topic" {
                        acl.users.entry(user.clone()).or_default()
                    } else {
                        &mut acl.patterns
                    };
                    if access == 0 {
                        list.insert(0, rule);
                    } else {
                        list.push(rule);
                    }
                }
                "user" => {
                    if rest.is_empty() {
                        return Err(err("missing user name".into()));
                    }
                    user = Some(rest.to_string());
                }
                other => {
                    return Err(err(format!(
                        "invalid line: '{other}' is not user, topic or pattern"
                    )))
                }
            }
        }
        Ok(acl)
    }

    /// Whether the client `client_id`, logged in as `username` (`None`: anonymous), may read or
    /// write `topic`.
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        self.decide(client_id, username, |rule, rule_topic| {
            if topic::matches(rule_topic, topic) {
                if rule.access == 0 {
                    Verdict::Deny
                } else if rule.access & access.bit() != 0 {
                    Verdict::Allow
                } else {
                    Verdict::Next
                }
            } else {
                Verdict::Next
            }
        })
    }

    /// Whether a SUBSCRIBE to `filter` is granted: refused (0x80 in SUBACK) when a `deny` rule
    /// covers every topic it matches, or when no rule granting read matches any of them, the
    /// rules taken in [`AclFile::check`]'s order. Granted filters can still match topics the
    /// client may not read: each delivery is checked by [`AclFile::check`].
    pub fn can_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        self.decide(client_id, username, |rule, rule_topic| {
            if rule.access == 0 {
                if covers(rule_topic, filter) {
                    Verdict::Deny
                } else {
                    Verdict::Next
                }
            } else if rule.access & READ != 0 && overlap(rule_topic, filter) {
                Verdict::Allow
            } else {
                Verdict::Next
            }
        })
    }

    /// Runs `judge` over the client's rules in mosquitto's order; the first verdict that is not
    /// [`Verdict::Next`] decides, and none is a refusal.
    fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        mut judge: impl FnMut(&Rule, &str) -> Verdict,
    ) -> bool {
        let own = self.users.get(&username.map(ToString::to_string));
        for rule in own.into_iter().flatten() {
            match judge(rule, &rule.topic) {
                Verdict::Allow => return true,
                Verdict::Deny => return false,
                Verdict::Next => {}
            }
        }
        if self.patterns.is_empty() {
            return false;
        }
        let dangerous = |s: &str| s.contains(['+', '#']);
        if client_id.is_empty() || dangerous(client_id) || username.is_some_and(dangerous) {
            return false;
        }
        for rule in &self.patterns {
            if rule.topic.contains("%u") && username.is_none() {
                continue;
            }
            let t = rule
                .topic
                .replace("%c", client_id)
                .replace("%u", username.unwrap_or_default());
            match judge(rule, &t) {
                Verdict::Allow => return true,
                Verdict::Deny => return false,
                Verdict::Next => {}
            }
        }
        false
    }
}

/// The first whitespace-separated word of `s` and the rest, trimmed.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim()),
        None => (s, ""),
    }
}

/// Whether a first level may belong to a topic starting with `$`, given the other filter: such
/// topics are matched only by filters whose first level is literal.
fn dollar_ok(a: &str, b: &str) -> bool {
    let wild = |f: &str| f.starts_with('+') || f.starts_with('#');
    let dollar = |f: &str| f.starts_with('$');
    !(wild(a) && dollar(b) || wild(b) && dollar(a))
}

/// Whether some topic matches both filters `a` and `b`.
fn overlap(a: &str, b: &str) -> bool {
    if !dollar_ok(a, b) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(p), Some(q)) if p == "+" || q == "+" || p == q => {}
            _ => return false,
        }
    }
}

/// Whether every topic that `filter` matches is matched by `cover`.
fn covers(cover: &str, filter: &str) -> bool {
    if !dollar_ok(cover, filter) {
        return false;
    }
    let mut c = cover.split('/');
    let mut f = filter.split('/');
    loop {
        match (c.next(), f.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(l)) if l != "#" => {}
            (Some(p), Some(q)) if p == q && p != "+" && q != "#" => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
