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
    let a = AclFile::parse("user u\n\ttopic\tread a b\nuser v\nuser u\ntopic write c\n").unwrap();
    assert!(a.check("c", Some("u"), "a b", Access::Read));
    assert!(a.check("c", Some("u"), "c", Access::Write));
    assert!(!a.check("c", Some("v"), "c", Access::Write));
}
