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
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# anonymous clients
topic read public/#
topic read $SYS/broker/uptime

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read ESP32/TEM
topic write will/alice

user bob with spaces
topic ESP32/+

pattern readwrite clients/%c/#
pattern read users/%u/inbox
pattern deny clients/%c/locked
";

    fn acl() -> AclFile {
        AclFile::parse(EXAMPLE).unwrap()
    }

    #[test]
    fn users_anonymous_and_patterns() {
        let a = acl();
        let alice = |t: &str, x| a.check("c1", Some("alice"), t, x);
        assert!(alice("alice/x", Access::Read));
        assert!(alice("alice/x/y", Access::Write));
        assert!(alice("alice", Access::Write), "# matches the parent level");
        assert!(
            !alice("alice/secret/k", Access::Read),
            "deny before readwrite"
        );
        assert!(!alice("alice/secret", Access::Write));
        assert!(alice("ESP32/TEM", Access::Read));
        assert!(!alice("ESP32/TEM", Access::Write), "read only");
        assert!(alice("will/alice", Access::Write));
        assert!(!alice("will/alice", Access::Read), "write only");
        assert!(
            !alice("public/x", Access::Read),
            "anonymous rules are not alice's"
        );
        // Patterns apply to alice too.
        assert!(alice("clients/c1/x", Access::Write));
        assert!(!alice("clients/c2/x", Access::Write));
        assert!(!alice("clients/c1/locked", Access::Write));
        assert!(alice("users/alice/inbox", Access::Read));
        assert!(!alice("users/alice/inbox", Access::Write));

        let anon = |t: &str, x| a.check("c1", None, t, x);
        assert!(anon("public/a/b", Access::Read));
        assert!(!anon("public/a/b", Access::Write));
        assert!(anon("$SYS/broker/uptime", Access::Read));
        assert!(!anon("alice/x", Access::Read));
        assert!(
            anon("clients/c1/x", Access::Read),
            "patterns are for everyone"
        );
        assert!(
            !anon("users//inbox", Access::Read),
            "%u skips clients without a user"
        );

        let bob = |t: &str, x| a.check("b", Some("bob with spaces"), t, x);
        assert!(
            bob("ESP32/HUM", Access::Write),
            "no access word = readwrite"
        );
        assert!(!bob("ESP32/HUM/x", Access::Read));

        // A user without `topic` rules has the patterns only.
        assert!(a.check("z", Some("zoe"), "clients/z/q", Access::Read));
        assert!(!a.check("z", Some("zoe"), "public/x", Access::Read));
    }

    #[test]
    fn dollar_topics_need_dollar_rules() {
        let a = AclFile::parse("topic read #\ntopic read +/broker/#\n").unwrap();
        assert!(a.check("c", None, "x/y", Access::Read));
        assert!(!a.check("c", None, "$SYS/broker/uptime", Access::Read));
        let a = AclFile::parse("topic read $SYS/#\n").unwrap();
        assert!(a.check("c", None, "$SYS/broker/uptime", Access::Read));
    }

    #[test]
    fn dangerous_ids_get_nothing_from_patterns() {
        let a = acl();
        assert!(!a.check("c/#", Some("alice"), "clients/c/#/x", Access::Write));
        assert!(!a.check("c", Some("al+"), "clients/c/x", Access::Write));
        // Their own `topic` rules still apply.
        assert!(a.check("c/#", Some("alice"), "alice/x", Access::Write));
    }

    #[test]
    fn no_rule_no_access() {
        let a = AclFile::parse("# nothing\n").unwrap();
        assert!(!a.check("c", None, "a", Access::Read));
        assert!(!a.check("c", Some("u"), "a", Access::Write));
        let a = AclFile::parse("user u\ntopic read a\n").unwrap();
        assert!(!a.check("c", None, "a", Access::Read));
    }

    #[test]
    fn subscribe_filters() {
        let a = acl();
        let alice = |f: &str| a.can_subscribe("c1", Some("alice"), f);
        assert!(alice("alice/#"));
        assert!(alice("alice/+/x"));
        assert!(alice("ESP32/#"), "ESP32/TEM is readable");
        assert!(alice("+/TEM"));
        assert!(alice("#"));
        assert!(!alice("alice/secret/#"), "covered by a deny");
        assert!(!alice("alice/secret/+"));
        assert!(alice("alice/+"), "alice/x is readable, alice/secret is not");
        assert!(!alice("will/alice"), "write only");
        assert!(!alice("public/#"));
        assert!(!alice("$SYS/#"));
        assert!(alice("clients/c1/#"));
        assert!(!alice("clients/c1/locked"));
        assert!(!alice("clients/c2/#"));
        let anon = |f: &str| a.can_subscribe("c1", None, f);
        assert!(anon("$SYS/#"));
        assert!(anon("$SYS/broker/+"));
        assert!(!anon("$SYS/broker/load/#"));
        assert!(anon("+/broker/uptime"), "public/broker/uptime is readable");
        assert!(anon("public/+/x"));
        let sys = AclFile::parse("topic read $SYS/#\n").unwrap();
        assert!(sys.can_subscribe("c", None, "$SYS/broker/+"));
        assert!(
            !sys.can_subscribe("c", None, "+/broker/uptime"),
            "never matches $SYS"
        );
        assert!(!sys.can_subscribe("c", None, "#"));
    }

    #[test]
    fn overlap_and_cover() {
        assert!(overlap("a/#", "a"));
        assert!(overlap("a/+", "+/b"));
        assert!(!overlap("a/+", "a"));
        assert!(!overlap("a/b", "a/c"));
        assert!(overlap("#", "x/y/z"));
        assert!(!overlap("#", "$SYS/x"));
        assert!(overlap("$SYS/#", "$SYS/+"));
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/+/#"));
        assert!(covers("a/+", "a/b"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("+/x", "$SYS/x"));
        assert!(covers("#", "+/x"));
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (text, line, want) in [
            ("topic read a\ntopic\n", 2, "topic needs a topic"),
            ("\n\nuser\n", 3, "missing user name"),
            ("topic maybe a/b\n", 1, "invalid topic access type 'maybe'"),
            ("# c\npattern read a/#/b\n", 2, "invalid ACL topic 'a/#/b'"),
            ("topic read a\nusers bob\n", 2, "invalid line: 'users'"),
        ] {
            let e = AclFile::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn mosquittos_reading_of_short_lines() {
        // One word after `topic` is the topic, readwrite, even if it looks like an access word.
        let a = AclFile::parse("topic read\n").unwrap();
        assert!(a.check("c", None, "read", Access::Write));
        // Tabs separate words; user sections merge; a topic may contain spaces.
        let a =
            AclFile::parse("user u\n\ttopic\tread a b\nuser v\nuser u\ntopic write c\n").unwrap();
        assert!(a.check("c", Some("u"), "a b", Access::Read));
        assert!(a.check("c", Some("u"), "c", Access::Write));
        assert!(!a.check("c", Some("v"), "c", Access::Write));
    }
}
