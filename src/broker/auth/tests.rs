use super::*;
use alloc::vec;

/// Written by mosquitto_passwd 2.0.11 (`mosquitto_passwd -c -b FILE alice secret`, then
/// `-b FILE bob hunter2`, and `-H sha512` for carol's `$6$`): see `tests/fixtures/`.
const FIXTURE_7: &str = include_str!("../../../tests/fixtures/mosquitto_passwd_7.txt");
const FIXTURE_6: &str = include_str!("../../../tests/fixtures/mosquitto_passwd_6.txt");

#[test]
fn pbkdf2_vectors_from_mosquitto_passwd() {
    let f = PasswordFile::parse(FIXTURE_7).unwrap();
    assert_eq!(f.len(), 2);
    assert!(f.verify("alice", Some(b"secret")));
    assert!(f.verify("bob", Some(b"hunter2")));
    assert!(!f.verify("alice", Some(b"hunter2")));
    assert!(!f.verify("alice", Some(b"secret ")));
    assert!(!f.verify("alice", Some(b"")));
    assert!(!f.verify("alice", None));
    assert!(!f.verify("mallory", Some(b"secret")));
    assert!(!f.verify("Alice", Some(b"secret")));
}

#[test]
fn sha512_vectors_from_mosquitto_passwd() {
    let f = PasswordFile::parse(FIXTURE_6).unwrap();
    assert!(f.verify("carol", Some(b"open sesame")));
    assert!(!f.verify("carol", Some(b"open sesam")));
}

#[test]
fn bytes_after_a_zero_byte_do_not_count_as_in_mosquitto() {
    let f = PasswordFile::parse(FIXTURE_7).unwrap();
    assert!(f.verify("alice", Some(b"secret\0whatever")));
    assert!(!f.verify("alice", Some(b"secre\0t")));
}

#[test]
fn comments_blank_lines_and_crlf() {
    let line = FIXTURE_7.lines().next().unwrap();
    let text = format!("# users\n\n   \n{line}\r\n");
    let f = PasswordFile::parse(&text).unwrap();
    assert!(f.verify("alice", Some(b"secret")));
}

#[test]
fn bad_lines_name_their_line() {
    let good = FIXTURE_7.lines().next().unwrap();
    let (_, hash) = good.split_once(':').unwrap();
    let salt_7 = hash.split('$').nth(3).unwrap();
    let hash_7 = hash.split('$').nth(4).unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("alice secret".into(), "expected USER:HASH"),
        (":$7$101$x$y".into(), "empty user name"),
        ("alice:secret".into(), "invalid password hash (expected"),
        (
            "alice:$argon2id$v=19$x".into(),
            "invalid password hash type",
        ),
        (
            format!("alice:$7$0${salt_7}${hash_7}"),
            "invalid hash iterations",
        ),
        (
            format!("alice:$7$ten${salt_7}${hash_7}"),
            "invalid hash iterations",
        ),
        (format!("alice:$7$101${salt_7}"), "invalid password hash"),
        (
            format!("alice:$7$101${salt_7}${hash_7}$"),
            "invalid password hash",
        ),
        (
            format!("alice:$7$101$AAAA${hash_7}"),
            "unable to decode the password salt",
        ),
        (
            format!("alice:$7$101$!!{salt_7}${hash_7}"),
            "unable to decode the password salt",
        ),
        (
            format!("alice:$7$101${salt_7}$AAAA"),
            "unable to decode the password hash",
        ),
        (
            good.to_string(),
            "user alice appears twice (first on line 2)",
        ),
    ];
    for (body, want) in cases {
        let text = format!("# header\n{good}\n{body}\n");
        let e = PasswordFile::parse(&text).unwrap_err();
        assert_eq!(e.line, 3, "{body}: {e}");
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
}

#[test]
fn entries_do_not_print_their_hashes() {
    let f = PasswordFile::parse(FIXTURE_7).unwrap();
    let shown = format!("{f:?}");
    assert!(
        shown.contains("alice") && !shown.contains("UIvmwEML"),
        "{shown}"
    );
}
