//! Users and ACLs through the real `mqsim broker` binary: `password_file` and `acl_file` from
//! mosquitto.conf, driven with `mosquitto_sub` / `mosquitto_pub -u -P`, a reload on SIGHUP, and
//! hashes written live by the real `mosquitto_passwd`.
//!
//! The mosquitto programs come from the Debian packages mosquitto-clients and mosquitto. Where
//! they are missing the tests say so and pass, unless `MQSIM_REQUIRE_INTEROP=1` (set by CI, which
//! installs them) makes them fail.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::{broker_refuses, have, temp_dir, BrokerProc};
use mqsim::broker::PasswordFile;

const PASSWD: &str = include_str!("../../tests/fixtures/mosquitto_passwd_7.txt");

const ACL: &str = "\
user alice
topic read ESP32/TEM
topic readwrite alice/#
user bob
topic readwrite ESP32/#
";

/// A broker on a free loopback port with the fixture's users (alice:secret, bob:hunter2) and
/// `acl` in `dir`.
fn start(dir: &Path, acl: &str) -> BrokerProc {
    std::fs::write(dir.join("passwd"), PASSWD).unwrap();
    std::fs::write(dir.join("acl"), acl).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener 0 127.0.0.1\npassword_file {}\nacl_file {}\n",
            dir.join("passwd").display(),
            dir.join("acl").display()
        ),
    )
    .unwrap();
    BrokerProc::start(&["-c", conf.to_str().unwrap(), "-v"])
}

fn pub_as(b: &BrokerProc, user: &str, password: &str, topic: &str, msg: &str) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
        .args([
            "-u", user, "-P", password, "-t", topic, "-m", msg, "-q", "1",
        ])
        .output()
        .unwrap()
}

/// `mosquitto_sub -d` as alice on `filters`, exiting after `count` messages (or 10 s).
fn sub_as_alice(b: &BrokerProc, id: &str, filters: &[&str], count: usize) -> Child {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
        .args(["-u", "alice", "-P", "secret", "-i", id, "-v", "-d"])
        .args(["-C", &count.to_string(), "-W", "10"]);
    for f in filters {
        cmd.args(["-t", f]);
    }
    cmd.stdout(Stdio::piped()).spawn().unwrap()
}

/// The topic/payload lines of `mosquitto_sub -v -d` output (its debug lines dropped).
fn messages(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
        .collect()
}

#[test]
fn passwords_and_acls_through_mosquitto_clients() {
    if !have("mosquitto_sub", "mosquitto-clients") {
        return;
    }
    let dir = temp_dir("e2e");
    let b = start(&dir, ACL);

    // The right password is accepted, a wrong one and an unknown user refused (CONNACK 5).
    let ok = pub_as(&b, "alice", "secret", "alice/x", "hello");
    assert!(ok.status.success(), "{ok:?}");
    for (user, password) in [("alice", "hunter2"), ("mallory", "secret")] {
        let out = pub_as(&b, user, password, "alice/x", "hello");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not authori"), "{err}");
        b.wait_for("Client <unknown> disconnected, not authorised.");
    }

    // alice may read ESP32/TEM only: ESP32/# granted, alice-less filters refused (0x80).
    let sub = sub_as_alice(&b, "alice-sub", &["ESP32/#", "bob/#"], 1);
    b.wait_for("Sending SUBACK to alice-sub");
    // Denied: alice writing what she may only read; not delivered, but acknowledged (QoS 1, so
    // processed before the next publisher connects).
    let denied = pub_as(&b, "alice", "secret", "ESP32/TEM", "from alice");
    assert!(denied.status.success(), "{denied:?}");
    // Not readable by alice: skipped at delivery.
    assert!(pub_as(&b, "bob", "hunter2", "ESP32/HUM", "52.00")
        .status
        .success());
    assert!(pub_as(&b, "bob", "hunter2", "ESP32/TEM", "26.70")
        .status
        .success());
    let out = sub.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Subscribed (mid: 1): 0, 128"), "{text}");
    assert_eq!(messages(&text), ["ESP32/TEM 26.70"], "{text}");
    let denied = b.wait_for("Denied PUBLISH from");
    assert!(denied.ends_with("'ESP32/TEM', ... (10 bytes))"), "{denied}");
    // The first PUBLISH alice-sub is sent is bob's ESP32/TEM: ESP32/HUM was skipped.
    let sent = b.wait_for("Sending PUBLISH to alice-sub");
    assert!(sent.contains("'ESP32/TEM'"), "{sent}");
    let _ = b.interrupt();
}

#[test]
fn sighup_reloads_the_acl_without_dropping_a_client() {
    if !have("mosquitto_sub", "mosquitto-clients") {
        return;
    }
    let dir = temp_dir("reload");
    let b = start(&dir, ACL);
    let sub = sub_as_alice(&b, "alice-stays", &["ESP32/#"], 2);
    b.wait_for("Sending SUBACK to alice-stays");
    assert!(pub_as(&b, "bob", "hunter2", "ESP32/HUM", "before")
        .status
        .success());
    assert!(pub_as(&b, "bob", "hunter2", "ESP32/TEM", "first")
        .status
        .success());

    // alice may now read ESP32/HUM as well; a broken password file keeps the old users.
    std::fs::write(
        dir.join("acl"),
        ACL.replace("read ESP32/TEM", "read ESP32/+"),
    )
    .unwrap();
    std::fs::write(dir.join("passwd"), "alice:not-a-hash\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &b.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    b.wait_for("Reloading config.");
    let err = b.wait_for("keeping the previous one");
    assert!(
        err.contains("password_file") && err.contains("line 1"),
        "{err}"
    );
    assert!(pub_as(&b, "bob", "hunter2", "ESP32/HUM", "after")
        .status
        .success());

    let out = sub.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        messages(&text),
        ["ESP32/TEM first", "ESP32/HUM after"],
        "{text}"
    );
    // The same connection throughout: one CONNECT from alice-stays up to its own DISCONNECT
    // (mosquitto_sub would have reconnected had it been dropped).
    b.wait_for("Client alice-stays disconnected.");
    let log = b.log();
    let connects = log
        .iter()
        .filter(|l| l.contains(" as alice-stays "))
        .count();
    assert_eq!(connects, 1, "{log:#?}");
    let _ = b.interrupt();
}

#[test]
fn a_bad_acl_file_stops_the_start_naming_its_line() {
    let dir = temp_dir("bad");
    std::fs::write(dir.join("acl"), "user alice\ntopic maybe a/b\n").unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("acl_file {}\n", dir.join("acl").display())).unwrap();
    let err = broker_refuses(&conf);
    assert!(
        err.contains("acl_file") && err.contains("line 2: invalid topic access type 'maybe'"),
        "{err}"
    );
}

#[test]
fn hashes_written_live_by_mosquitto_passwd_verify() {
    if !have("mosquitto_passwd", "mosquitto") {
        return;
    }
    let dir = temp_dir("passwd");
    let file = dir.join("passwd");
    let run = |args: &[&str]| {
        let st = Command::new("mosquitto_passwd")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "mosquitto_passwd {args:?}");
    };
    let f = file.to_str().unwrap();
    run(&["-c", "-b", f, "pbkdf2-user", "pässwörd with spaces"]);
    run(&["-H", "sha512", "-b", f, "sha512-user", "x"]);
    run(&["-b", f, "empty", ""]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("pbkdf2-user:$7$101$"), "{text}");
    assert!(text.contains("sha512-user:$6$"), "{text}");
    let table = PasswordFile::parse(&text).unwrap();
    assert!(table.verify("pbkdf2-user", Some("pässwörd with spaces".as_bytes())));
    assert!(!table.verify("pbkdf2-user", Some(b"passwort with spaces")));
    assert!(table.verify("sha512-user", Some(b"x")));
    assert!(!table.verify("sha512-user", Some(b"y")));
    assert!(table.verify("empty", Some(b"")));
    assert!(!table.verify("empty", None));
}

/// `per_listener_settings true` with two listeners: anonymous clients on one (its own ACL),
/// users with passwords on the other (theirs); a SIGHUP reloads each listener's ACL.
#[test]
fn per_listener_settings_two_listeners() {
    if !have("mosquitto_sub", "mosquitto-clients") {
        return;
    }
    let dir = temp_dir("per-listener");
    std::fs::write(dir.join("passwd"), PASSWD).unwrap();
    std::fs::write(
        dir.join("acl"),
        format!("{ACL}user alice\ntopic write public/#\n"),
    )
    .unwrap();
    std::fs::write(dir.join("anon-acl"), "topic readwrite public/#\n").unwrap();
    let conf = dir.join("mosquitto.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\n\
             listener 0 127.0.0.1\nallow_anonymous true\nacl_file {d}/anon-acl\n\
             listener 0 127.0.0.1\npassword_file {d}/passwd\nacl_file {d}/acl\n"
        ),
    )
    .unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap(), "-v"]);
    let ports: Vec<String> = b
        .log()
        .iter()
        .filter_map(|l| l.strip_prefix("Opening ipv4 listen socket on port "))
        .map(|p| p.trim_end_matches('.').to_string())
        .collect();
    let [open, users] = [&ports[0], &ports[1]];
    let publish = |port: &str, who: &[&str], topic: &str, msg: &str| {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                msg,
            ])
            .args(who)
            .output()
            .unwrap()
    };
    let alice = ["-u", "alice", "-P", "secret"];
    // Anonymous: let in on the first listener, refused on the second.
    assert!(publish(open, &[], "public/a", "x").status.success());
    let refused = publish(users, &[], "public/a", "x");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not authori"));
    // A user name is not checked where there is no password file; it is where there is one.
    assert!(
        publish(open, &["-u", "alice", "-P", "wrong"], "public/a", "x")
            .status
            .success()
    );
    assert!(
        !publish(users, &["-u", "alice", "-P", "wrong"], "public/a", "x")
            .status
            .success()
    );

    // The anonymous listener's ACL: its subscriber reads public/# only.
    let sub = |count: usize| {
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", open, "-i", "anon-sub", "-v"])
            .args(["-t", "#", "-C", &count.to_string(), "-W", "10"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let s = sub(1);
    b.wait_for("Sending SUBACK to anon-sub");
    assert!(publish(users, &alice, "alice/x", "not for anon")
        .status
        .success());
    assert!(publish(users, &alice, "public/news", "hello")
        .status
        .success());
    // Anonymous may not write outside public/# (acknowledged, not delivered).
    assert!(publish(open, &[], "alice/x", "spoof").status.success());
    b.wait_for("Denied PUBLISH from");
    let out = s.wait_with_output().unwrap();
    assert_eq!(
        messages(&String::from_utf8(out.stdout).unwrap()),
        ["public/news hello"]
    );

    // SIGHUP: the anonymous listener's ACL now lets it read alice/#.
    std::fs::write(
        dir.join("anon-acl"),
        "topic readwrite public/#\ntopic read alice/#\n",
    )
    .unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &b.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    b.wait_for("Reloading config.");
    let s = sub(1);
    b.wait_for("Sending SUBACK to anon-sub");
    assert!(publish(users, &alice, "alice/x", "now readable")
        .status
        .success());
    let out = s.wait_with_output().unwrap();
    assert_eq!(
        messages(&String::from_utf8(out.stdout).unwrap()),
        ["alice/x now readable"]
    );
    let _ = b.interrupt();
}

#[test]
fn a_per_listener_key_before_any_listener_stops_the_start() {
    let dir = temp_dir("per-listener-bad");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        "per_listener_settings true\nallow_anonymous true\nlistener 0 127.0.0.1\n",
    )
    .unwrap();
    let err = broker_refuses(&conf);
    assert!(
        err.contains("Error: You must create a listener before using the allow_anonymous option with per_listener_settings true.")
            && err.contains(&format!("Error found at {}:2.", conf.display())),
        "{err}"
    );
    std::fs::write(
        &conf,
        "listener 0 127.0.0.1\nacl_file a\nlistener 0 127.0.0.1\nacl_file b\n",
    )
    .unwrap();
    let err = broker_refuses(&conf);
    assert!(
        err.contains("acl_file set again under another listener")
            && err.contains(&format!("Error found at {}:4.", conf.display())),
        "{err}"
    );
}
