//! Users and ACLs through the broker in virtual time: CONNECT, PUBLISH, SUBSCRIBE, delivery,
//! retained messages, wills and a reload, each as mosquitto 2.0 behaves (checked against it).

use super::*;

const PASSWD: &str = include_str!("../../../tests/fixtures/mosquitto_passwd_7.txt");

const ACL: &str = "\
topic read public/#
user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read ESP32/TEM
user bob
topic readwrite ESP32/#
topic write alice/inbox
pattern readwrite clients/%c/#
";

fn harness(allow_anonymous: bool, acl: &str) -> Harness {
    let mut h = Harness::with(Config {
        allow_anonymous,
        verbose: true,
        ..Config::for_tests()
    });
    h.b.set_security(
        h.now,
        Security {
            passwords: Some(PasswordFile::parse(PASSWD).unwrap()),
            acl: Some(AclFile::parse(acl).unwrap()),
        },
    );
    h
}

impl Harness {
    fn login(
        &mut self,
        id: &str,
        user: Option<&str>,
        password: Option<&[u8]>,
        will: Option<Will<'_>>,
    ) -> (ConnId, Vec<Pkt>) {
        let c = self
            .b
            .handle_accept(self.now, "10.0.0.7:50000 on port 1883")
            .unwrap();
        self.bytes(
            c,
            &Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: true,
                keep_alive_s: 0,
                client_id: id,
                will,
                username: user,
                password,
            }),
        );
        let got = self.take(c);
        (c, got)
    }
    fn user(&mut self, id: &str, user: &str, password: &str) -> ConnId {
        let (c, got) = self.login(id, Some(user), Some(password.as_bytes()), None);
        assert_eq!(got, vec![Pkt::ConnAck(false, 0)], "{user} logs in");
        c
    }
}

#[test]
fn right_password_in_wrong_password_and_unknown_user_get_connack_5() {
    let mut h = harness(false, ACL);
    h.user("a", "alice", "secret");
    h.user("b", "bob", "hunter2");
    for (user, pw) in [
        (Some("alice"), Some(&b"hunter2"[..])),
        (Some("alice"), None),
        (Some("mallory"), Some(&b"secret"[..])),
        (None, None),
    ] {
        h.logs.clear();
        let (c, got) = h.login("x", user, pw, None);
        // mosquitto 2.0 answers 5 (not authorised), not 4, in 3.1.1.
        assert_eq!(got, vec![Pkt::ConnAck(false, 5)], "{user:?}");
        assert!(h.closed.contains(&c));
        assert_eq!(
            h.logs[1..],
            [
                "Sending CONNACK to 10.0.0.7 (0, 5)".to_string(),
                "Client <unknown> disconnected, not authorised.".to_string()
            ]
        );
    }
}

#[test]
fn anonymous_clients_follow_allow_anonymous_with_a_password_file() {
    let mut h = harness(true, ACL);
    let (_, got) = h.login("anon", None, None, None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    // A user name is still checked.
    let (_, got) = h.login("x", Some("alice"), Some(b"nope"), None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 5)]);
}

#[test]
fn without_a_password_file_allow_anonymous_decides_for_everyone() {
    let mut h = Harness::with(Config {
        allow_anonymous: true,
        ..Config::for_tests()
    });
    let (_, got) = h.login("x", Some("anyone"), Some(b"anything"), None);
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
}

#[test]
fn publish_denied_is_acknowledged_and_dropped() {
    let mut h = harness(false, ACL);
    let a = h.user("a", "alice", "secret");
    let b = h.user("b", "bob", "hunter2");
    assert_eq!(
        h.subscribe(a, &[("alice/#", QoS::AtLeastOnce)]),
        vec![Pkt::SubAck(1, vec![1])]
    );
    // bob may write alice/inbox, not alice/other; acknowledged either way.
    h.publish(b, "alice/other", "x", QoS::AtLeastOnce, true, 1);
    assert_eq!(h.take(b), vec![Pkt::PubAck(1)]);
    assert!(h
        .logs
        .contains(&"Denied PUBLISH from b (d0, q1, r1, m1, 'alice/other', ... (1 bytes))".into()));
    h.publish(b, "alice/other", "x", QoS::ExactlyOnce, false, 2);
    assert_eq!(h.take(b), vec![Pkt::PubRec(2)]);
    h.publish(b, "alice/inbox", "hi", QoS::AtLeastOnce, false, 3);
    assert_eq!(
        h.drain(),
        vec![(a, pubp("alice/inbox", "hi", 1, 1)), (b, Pkt::PubAck(3))]
    );
    assert_eq!(
        h.b.retained_count(),
        0,
        "a denied retained PUBLISH is not retained"
    );
}

#[test]
fn subscribe_denied_filters_get_0x80_and_delivery_is_checked_per_topic() {
    let mut h = harness(false, ACL);
    let a = h.user("a", "alice", "secret");
    let b = h.user("b", "bob", "hunter2");
    assert_eq!(
        h.subscribe(
            a,
            &[
                ("alice/secret/#", QoS::AtMostOnce),
                ("ESP32/#", QoS::AtMostOnce),
                ("public/#", QoS::AtMostOnce),
                ("clients/a/#", QoS::AtMostOnce),
                ("clients/b/#", QoS::AtMostOnce),
            ]
        ),
        vec![Pkt::SubAck(1, vec![0x80, 0, 0x80, 0, 0x80])]
    );
    // ESP32/# is granted for ESP32/TEM; ESP32/HUM is not readable, so not delivered.
    h.publish(b, "ESP32/HUM", "52.00", QoS::AtMostOnce, false, 0);
    h.publish(b, "ESP32/TEM", "26.70", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(a), vec![pubp("ESP32/TEM", "26.70", 0, 0)]);
}

#[test]
fn retained_messages_are_sent_only_where_readable() {
    let mut h = harness(false, ACL);
    let b = h.user("b", "bob", "hunter2");
    h.publish(b, "ESP32/TEM", "26.70", QoS::AtMostOnce, true, 0);
    h.publish(b, "ESP32/HUM", "52.00", QoS::AtMostOnce, true, 0);
    assert_eq!(h.b.retained_count(), 2);
    let a = h.user("a", "alice", "secret");
    let got = h.subscribe(a, &[("ESP32/#", QoS::AtMostOnce)]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(&got[1], Pkt::Pub { topic, retain: true, .. } if topic == "ESP32/TEM"));
}

#[test]
fn a_will_to_a_topic_not_writable_is_accepted_then_not_published() {
    // As mosquitto 2.0: CONNECT accepted, the will checked (write) when it would be published.
    let mut h = harness(false, ACL);
    let b = h.user("watch", "bob", "hunter2");
    h.subscribe(b, &[("ESP32/#", QoS::AtMostOnce)]);
    let will = |topic| Will {
        topic,
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    let (a, got) = h.login("a", Some("alice"), Some(b"secret"), Some(will("ESP32/TEM")));
    assert_eq!(got, vec![Pkt::ConnAck(false, 0)]);
    h.b.handle_closed(h.now, a);
    assert_eq!(h.take(b), vec![]);
    assert!(h.logs.contains(&"Denied will of a to 'ESP32/TEM'.".into()));
    // bob's own will to ESP32/x is allowed.
    let (b2, _) = h.login("b2", Some("bob"), Some(b"hunter2"), Some(will("ESP32/x")));
    h.b.handle_closed(h.now, b2);
    assert_eq!(h.take(b), vec![pubp("ESP32/x", "gone", 0, 0)]);
}

#[test]
fn reload_keeps_connections_changes_access_and_drops_bad_passwords() {
    let mut h = harness(false, ACL);
    let a = h.user("a", "alice", "secret");
    let b = h.user("b", "bob", "hunter2");
    h.subscribe(a, &[("ESP32/#", QoS::AtMostOnce)]);
    h.publish(b, "ESP32/HUM", "1", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(a), vec![]);
    // The new ACL lets alice read ESP32/HUM; the new password file still has both users.
    let acl = ACL.replace("topic read ESP32/TEM", "topic read ESP32/+");
    h.b.set_security(
        h.now,
        Security {
            passwords: Some(PasswordFile::parse(PASSWD).unwrap()),
            acl: Some(AclFile::parse(&acl).unwrap()),
        },
    );
    assert!(h.closed.is_empty());
    h.publish(b, "ESP32/HUM", "2", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(a), vec![pubp("ESP32/HUM", "2", 0, 0)]);
    // A password file without bob: bob is disconnected (without his will), alice stays.
    let only_alice: String = PASSWD.lines().filter(|l| l.starts_with("alice:")).collect();
    h.logs.clear();
    h.b.set_security(
        h.now,
        Security {
            passwords: Some(PasswordFile::parse(&only_alice).unwrap()),
            acl: Some(AclFile::parse(&acl).unwrap()),
        },
    );
    h.take(b);
    assert_eq!(h.closed, vec![b]);
    assert_eq!(h.logs, ["Client b disconnected, not authorised."]);
    assert_eq!(h.b.connection_count(), 1);
}

#[test]
fn no_acl_no_checks() {
    let mut h = Harness::new();
    h.b.set_security(h.now, Security::default());
    let (s, _) = h.connect("s", true);
    assert_eq!(
        h.subscribe(s, &[("#", QoS::AtMostOnce)]),
        vec![Pkt::SubAck(1, vec![0])]
    );
    let (p, _) = h.connect("p", true);
    h.publish(p, "any/topic", "x", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(s), vec![pubp("any/topic", "x", 0, 0)]);
}

/// A persistent session restored from the journal keeps its user name: what is published to it
/// before its client comes back is checked against the ACL under that name, not as anonymous.
#[test]
fn a_restored_offline_session_is_delivered_to_under_its_user_name() {
    let config = Config {
        allow_anonymous: false,
        verbose: true,
        persistence: true,
        ..Config::for_tests()
    };
    let security = || Security {
        passwords: Some(PasswordFile::parse(PASSWD).unwrap()),
        acl: Some(AclFile::parse(ACL).unwrap()),
    };
    let connect = |h: &mut Harness, id: &str, clean: bool| {
        let c = h.accept();
        h.bytes(
            c,
            &Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: clean,
                keep_alive_s: 0,
                client_id: id,
                will: None,
                username: Some("bob"),
                password: Some(b"hunter2"),
            }),
        );
        c
    };
    let mut journal = Vec::new();
    let mut sync = |h: &mut Harness| {
        let mut buf = Vec::new();
        while let Some((how, lsn)) = h.b.poll_journal(&mut buf) {
            if how == JournalWrite::Replace {
                journal.clear();
            }
            journal.append(&mut buf);
            h.b.handle_durable(h.now, lsn);
        }
        journal.clone()
    };
    let mut h = Harness::with(config.clone());
    h.b.set_security(h.now, security());
    let s = connect(&mut h, "s", false);
    sync(&mut h);
    h.subscribe(s, &[("ESP32/#", QoS::AtLeastOnce)]);
    sync(&mut h);
    assert_eq!(
        h.take(s),
        vec![Pkt::ConnAck(false, 0), Pkt::SubAck(1, vec![1])]
    );
    h.b.handle_closed(h.now, s);
    let file = sync(&mut h);

    let (b, rec) = Broker::restore(config, h.now, &file).unwrap();
    assert_eq!(rec.damage, None);
    let mut h = Harness::with(Config::default());
    h.b = b;
    h.b.set_security(h.now, security());
    sync(&mut h);
    let p = connect(&mut h, "p", true);
    h.publish(p, "ESP32/TEM", "26.70", QoS::AtLeastOnce, false, 1);
    sync(&mut h);
    assert_eq!(h.take(p), vec![Pkt::ConnAck(false, 0), Pkt::PubAck(1)]);
    let s = connect(&mut h, "s", false);
    sync(&mut h);
    assert_eq!(
        h.take(s),
        vec![Pkt::ConnAck(true, 0), pubp("ESP32/TEM", "26.70", 1, 1)],
        "bob's session, restored, gets what bob may read"
    );
}

/// A client known by its certificate (`use_identity_as_username`) got in without a password:
/// a reload with a password_file that does not list its CN keeps it connected.
#[test]
fn reload_keeps_a_client_known_by_its_certificate() {
    let mut h = harness(false, ACL);
    let c =
        h.b.handle_accept_as(
            h.now,
            "1.2.3.4:5 on port 8883",
            Identity::Certificate("sensor-7".into()),
        )
        .unwrap();
    h.bytes(
        c,
        &Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 0,
            client_id: "dev",
            will: None,
            username: None,
            password: None,
        }),
    );
    assert_eq!(h.take(c), vec![Pkt::ConnAck(false, 0)]);
    h.b.set_security(
        h.now,
        Security {
            passwords: Some(PasswordFile::parse(PASSWD).unwrap()),
            acl: Some(AclFile::parse(ACL).unwrap()),
        },
    );
    h.take(c);
    assert!(h.closed.is_empty(), "{:#?}", h.logs);
    assert_eq!(h.b.connection_count(), 1);
}

/// `per_listener_settings true`: listener 1 anonymous without an ACL, listener 2 with users and
/// an ACL; each connection judged by its own listener's set, a reload of one leaves the other.
mod per_listener {
    use super::*;

    fn two_listeners() -> Harness {
        let mut h = Harness::with(Config {
            allow_anonymous: false,
            ..Config::for_tests()
        });
        h.b.set_listener_security(
            h.now,
            1,
            ListenerSecurity {
                allow_anonymous: true,
                max_connections: 2,
                security: Security::default(),
            },
        );
        h.b.set_listener_security(
            h.now,
            2,
            ListenerSecurity {
                allow_anonymous: false,
                max_connections: usize::MAX,
                security: Security {
                    passwords: Some(PasswordFile::parse(PASSWD).unwrap()),
                    acl: Some(AclFile::parse(ACL).unwrap()),
                },
            },
        );
        h
    }

    impl Harness {
        fn login_on(
            &mut self,
            listener: ListenerId,
            id: &str,
            user: Option<&str>,
            password: Option<&str>,
        ) -> (ConnId, Vec<Pkt>) {
            let c = self
                .b
                .handle_accept_on(self.now, "10.0.0.7:50000", Identity::FromConnect, listener)
                .unwrap();
            self.bytes(
                c,
                &Packet::Connect(Connect {
                    protocol: Protocol::V311,
                    clean_session: true,
                    keep_alive_s: 0,
                    client_id: id,
                    will: None,
                    username: user,
                    password: password.map(str::as_bytes),
                }),
            );
            let got = self.take(c);
            (c, got)
        }
    }

    #[test]
    fn anonymous_on_one_listener_refused_on_the_other() {
        let mut h = two_listeners();
        assert_eq!(
            h.login_on(1, "a", None, None).1,
            vec![Pkt::ConnAck(false, 0)]
        );
        assert_eq!(
            h.login_on(2, "b", None, None).1,
            vec![Pkt::ConnAck(false, 5)]
        );
        assert_eq!(
            h.login_on(2, "c", Some("alice"), Some("secret")).1,
            vec![Pkt::ConnAck(false, 0)]
        );
        // No password file on listener 1: a user name is not checked there.
        assert_eq!(
            h.login_on(1, "d", Some("alice"), Some("wrong")).1,
            vec![Pkt::ConnAck(false, 0)]
        );
        // A connection accepted without a listener uses the broker-wide settings.
        let (_, got) = h.login("e", None, None, None);
        assert_eq!(got, vec![Pkt::ConnAck(false, 5)]);
    }

    #[test]
    fn acl_per_listener() {
        let mut h = two_listeners();
        let (anon, _) = h.login_on(1, "anon", None, None);
        let (alice, _) = h.login_on(2, "alice", Some("alice"), Some("secret"));
        assert_eq!(
            h.subscribe(anon, &[("#", QoS::AtMostOnce)]),
            vec![Pkt::SubAck(1, vec![0])]
        );
        assert_eq!(
            h.subscribe(alice, &[("bob/#", QoS::AtMostOnce)]),
            vec![Pkt::SubAck(1, vec![0x80])]
        );
        h.subscribe(alice, &[("alice/#", QoS::AtMostOnce)]);
        // Anyone on listener 1 may write anywhere; alice reads only what her ACL lets her.
        h.publish(anon, "alice/secret/x", "no", QoS::AtMostOnce, false, 0);
        h.publish(anon, "alice/x", "yes", QoS::AtMostOnce, false, 0);
        let got = h.drain();
        let to = |c| got.iter().filter(|(to, _)| *to == c).count();
        assert_eq!((to(anon), to(alice)), (2, 1));
        assert!(got.contains(&(alice, pubp("alice/x", "yes", 0, 0))));
        // alice may not write bob's topics through listener 2.
        h.publish(alice, "bob/x", "no", QoS::AtMostOnce, false, 0);
        assert_eq!(h.take(anon), vec![]);
    }

    #[test]
    fn max_connections_per_listener() {
        let mut h = two_listeners();
        let at = |h: &mut Harness, l| h.b.handle_accept_on(h.now, "p", Identity::FromConnect, l);
        let a = at(&mut h, 1).unwrap();
        at(&mut h, 1).unwrap();
        assert_eq!(at(&mut h, 1), None, "listener 1 holds two");
        assert!(at(&mut h, 2).is_some(), "listener 2 is not bounded by it");
        h.b.handle_closed(h.now, a);
        assert!(
            at(&mut h, 1).is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn reload_of_one_listener_rechecks_only_its_clients() {
        let mut h = two_listeners();
        let (anon, _) = h.login_on(1, "anon", None, None);
        let (alice, _) = h.login_on(2, "alice", Some("alice"), Some("secret"));
        h.b.set_listener_security(
            h.now,
            2,
            ListenerSecurity {
                allow_anonymous: false,
                max_connections: usize::MAX,
                security: Security {
                    passwords: Some(PasswordFile::parse("").unwrap()),
                    acl: None,
                },
            },
        );
        let closed: Vec<_> = core::iter::from_fn(|| h.b.poll_event())
            .filter_map(|e| match e {
                Event::Close(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(closed, vec![alice]);
        assert!(h.b.connection_count() == 1 && closed[0] != anon);
    }
}
