//! The mosquitto.conf reader: every key, and each error at its line.
use super::*;

#[test]
fn persistence_keys() {
    let s = BrokerSettings::parse("listener 1883\n").unwrap();
    assert_eq!(s.persistence_path(), None);
    let s = BrokerSettings::parse(
        "persistence true\npersistence_location /var/lib/my broker/\nautosave_interval 1800\n",
    )
    .unwrap();
    assert_eq!(
        s.persistence_path(),
        Some("/var/lib/my broker/mosquitto.db".into())
    );
    let s = BrokerSettings::parse("persistence true\npersistence_file j.db\n").unwrap();
    assert_eq!(s.persistence_path(), Some("j.db".into()));
    let e = BrokerSettings::parse("\npersistence yes\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "Invalid persistence value (yes)")
    );
    assert_eq!(
        BrokerSettings::parse("autosave_interval soon")
            .unwrap_err()
            .line,
        1
    );
    assert!(BrokerSettings::parse("persistence_file").is_err());
}

#[test]
fn seed_document_config() {
    // The two lines the source document puts in mosquitto.conf.
    let s = BrokerSettings::parse("listener 1883\nallow_anonymous true\n").unwrap();
    assert_eq!(s.listeners[0].bind, "0.0.0.0:1883".parse().unwrap());
    assert!(s.broker.allow_anonymous);
}

#[test]
fn dual_stack_like_mosquitto() {
    let s = BrokerSettings::default();
    assert_eq!(
        s.listeners[0].listen_addrs(),
        vec![
            "[::1]:1883".parse().unwrap(),
            "127.0.0.1:1883".parse().unwrap()
        ]
    );
    let s = BrokerSettings::parse("listener 1883\n").unwrap();
    assert_eq!(
        s.listeners[0].listen_addrs(),
        vec![
            "[::]:1883".parse().unwrap(),
            "0.0.0.0:1883".parse().unwrap()
        ]
    );
    let s = BrokerSettings::parse("listener 1883 127.0.0.1\n").unwrap();
    assert_eq!(
        s.listeners[0].listen_addrs(),
        vec!["127.0.0.1:1883".parse().unwrap()]
    );
    let mut s = BrokerSettings::default();
    s.listeners[0].bind.set_port(0);
    assert_eq!(
        s.listeners[0].listen_addrs(),
        vec!["127.0.0.1:0".parse().unwrap()]
    );
}

#[test]
fn listener_without_allow_anonymous_refuses_anonymous() {
    let s = BrokerSettings::parse("listener 1884 127.0.0.1").unwrap();
    assert_eq!(s.listeners[0].bind, "127.0.0.1:1884".parse().unwrap());
    assert!(!s.broker.allow_anonymous);
}

#[test]
fn no_listener_is_local_only_and_anonymous() {
    let s = BrokerSettings::parse("# nothing\n\nmax_queued_messages 5\n").unwrap();
    assert_eq!(s.listeners[0].bind, "127.0.0.1:1883".parse().unwrap());
    assert!(s.broker.allow_anonymous);
    assert_eq!(s.broker.max_queued_messages, 5);
}

#[test]
fn limits_and_unknown_keys() {
    let text = "max_inflight_messages 0\nmessage_size_limit 100\nmax_packet_size 4096\n\
                max_connections -1\nbridge_protocol_version mqttv311\nmax_queued_bytes 1000\n";
    let s = BrokerSettings::parse(text).unwrap();
    assert_eq!(s.broker.max_inflight_messages, 65_535);
    assert_eq!(s.broker.message_size_limit_bytes, 100);
    assert_eq!(s.broker.max_packet_bytes, 4096);
    assert_eq!(s.broker.max_connections, usize::MAX);
    assert_eq!(s.broker.max_queued_bytes, 1000);
    assert_eq!(s.ignored, vec![(5, "bridge_protocol_version".to_string())]);
}

#[test]
fn password_and_acl_files_as_given() {
    let s = BrokerSettings::parse(
        "listener 1883\npassword_file /etc/mosquitto/passwd\nacl_file my acl.txt\n",
    )
    .unwrap();
    assert_eq!(
        s.password_file,
        Some(PathBuf::from("/etc/mosquitto/passwd"))
    );
    assert_eq!(s.acl_file, Some(PathBuf::from("my acl.txt")));
    assert!(s.ignored.is_empty());
    let e = BrokerSettings::parse("acl_file\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (1, "acl_file needs a file name")
    );
}

#[test]
fn errors_name_the_line() {
    let e = BrokerSettings::parse("listener 1883\nallow_anonymous maybe\n").unwrap_err();
    assert_eq!(e.line, 2);
    let e = BrokerSettings::parse("listener abc").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(BrokerSettings::parse("max_queued_messages 1 2").is_err());
    // Values the core's `Config::validate` refuses point at their line.
    let e = BrokerSettings::parse("# limits\n\nmax_packet_size 10\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.message, "max_packet_size: must be at least 20 bytes");
    let e = BrokerSettings::parse("max_connections 0\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (
            1,
            "max_connections: must be at least 1 (or -1 for unbounded)"
        )
    );
}

/// The keys of the listener above them; three listeners, TLS on one.
#[test]
fn several_listeners_each_with_its_tls_keys() {
    let text = "allow_anonymous true\n\
                listener 1883\n\
                listener 8883 127.0.0.1\n\
                certfile /etc/mqsim/server pem.pem\n\
                keyfile /etc/mqsim/server.key\n\
                cafile /etc/mqsim/ca.pem\n\
                require_certificate true\n\
                use_identity_as_username true\n\
                listener 1884 ::1\n\
                require_certificate false\n";
    let s = BrokerSettings::parse(text).unwrap();
    assert!(s.broker.allow_anonymous);
    let binds: Vec<_> = s.listeners.iter().map(|l| (l.bind, l.line)).collect();
    assert_eq!(
        binds,
        [
            ("0.0.0.0:1883".parse().unwrap(), 2),
            ("127.0.0.1:8883".parse().unwrap(), 3),
            ("[::1]:1884".parse().unwrap(), 9),
        ]
    );
    assert_eq!(s.listeners[0].tls, None);
    assert_eq!(s.listeners[2].tls, None);
    let file = |path: &str, line| FileSetting {
        path: path.into(),
        line,
    };
    assert_eq!(
        s.listeners[1].tls,
        Some(TlsSettings {
            // The rest of the line, spaces included, as mosquitto reads a path.
            certfile: file("/etc/mqsim/server pem.pem", 4),
            keyfile: file("/etc/mqsim/server.key", 5),
            cafile: Some(file("/etc/mqsim/ca.pem", 6)),
            require_certificate: true,
            use_identity_as_username: true,
        })
    );
    assert_eq!(
        s.listeners[1].listen_addrs(),
        vec!["127.0.0.1:8883".parse().unwrap()]
    );
}

#[test]
fn unknown_keys_are_errors_known_ones_warnings() {
    // mosquitto 2.0: "Error: Unknown configuration variable" (conf.c:2190).
    let e = BrokerSettings::parse("listener 1883\n\nfoo_bar 1\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "Unknown configuration variable \"foo_bar\"")
    );
    let e = BrokerSettings::parse("persistance true\n").unwrap_err();
    assert_eq!(e.line, 1, "a misspelt key is not silently ignored");
    let s = BrokerSettings::parse("connection_messages true\nauth_opt_x y\nlog_timestamp false\n")
        .unwrap();
    let keys: Vec<_> = s.ignored.iter().map(|(l, k)| (*l, k.as_str())).collect();
    assert_eq!(
        keys,
        [
            (1, "connection_messages"),
            (2, "auth_opt_x"),
            (3, "log_timestamp")
        ]
    );
}

#[test]
fn port_is_the_legacy_listener() {
    let s = BrokerSettings::parse("port 1884\n").unwrap();
    assert_eq!(s.listeners.len(), 1);
    assert_eq!(s.listeners[0].bind, "0.0.0.0:1884".parse().unwrap());
    assert!(s.listeners[0].dual_stack);
    assert!(!s.broker.allow_anonymous, "no longer local-only");
    assert_eq!(s.notices.len(), 1);
    assert!(s.notices[0].starts_with("The 'port' option is now deprecated"));
    let s = BrokerSettings::parse("bind_address 127.0.0.1\nport 1885\n").unwrap();
    assert_eq!(
        s.listeners[0].listen_addrs(),
        vec!["127.0.0.1:1885".parse().unwrap()]
    );
    let s = BrokerSettings::parse("bind_address 127.0.0.1\n").unwrap();
    assert_eq!(s.listeners[0].bind, "127.0.0.1:1883".parse().unwrap());
    // With listeners too: the default listener first, then theirs.
    let s = BrokerSettings::parse("port 1884\nlistener 8883 127.0.0.1\n").unwrap();
    let binds: Vec<_> = s.listeners.iter().map(|l| l.bind).collect();
    assert_eq!(
        binds,
        [
            "0.0.0.0:1884".parse().unwrap(),
            "127.0.0.1:8883".parse().unwrap()
        ]
    );
    for bad in ["port 0", "port 65536", "port x", "port"] {
        let e = BrokerSettings::parse(&format!("\n{bad}\n")).unwrap_err();
        assert_eq!(e.line, 2, "{bad}");
    }
    let e = BrokerSettings::parse("port 0\n").unwrap_err();
    assert_eq!(e.message, "Invalid port value (0)");
}

#[test]
fn max_keepalive_and_the_booleans() {
    let text = "per_listener_settings 1\nmax_keepalive 60\nallow_zero_length_clientid false\n\
                upgrade_outgoing_qos true\nretain_available 0\n";
    let s = BrokerSettings::parse(text).unwrap();
    assert_eq!(s.broker.max_keepalive_s, 60);
    assert!(!s.broker.allow_zero_length_clientid);
    assert!(s.broker.upgrade_outgoing_qos);
    assert!(!s.broker.retain_available);
    assert!(s.per_listener_settings);
    let d = BrokerSettings::parse("").unwrap();
    assert_eq!(d.broker.max_keepalive_s, 0);
    assert!(d.broker.allow_zero_length_clientid && d.broker.retain_available);
    assert!(!d.broker.upgrade_outgoing_qos && !d.per_listener_settings);
    let e = BrokerSettings::parse("max_keepalive 65536\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (1, "Invalid max_keepalive value (65536)")
    );
    let e = BrokerSettings::parse("max_keepalive -1\n").unwrap_err();
    assert_eq!(e.message, "Invalid max_keepalive value (-1)");
    let e = BrokerSettings::parse("\nretain_available yes\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "Invalid retain_available value (yes)")
    );
    let e = BrokerSettings::parse("upgrade_outgoing_qos\n").unwrap_err();
    assert_eq!(
        e.message,
        "Empty upgrade_outgoing_qos value in configuration"
    );
}

#[test]
fn tls_keys_that_do_not_fit_name_their_line() {
    let e = |text: &str| {
        let e = BrokerSettings::parse(text).unwrap_err();
        (e.line, e.message)
    };
    assert_eq!(
        e("certfile a.pem\nlistener 8883\n"),
        (
            1,
            "certfile belongs to a listener: put it after a `listener` line".into()
        )
    );
    assert_eq!(
        e("listener 8883\ncertfile a.pem\nlistener 1883\n"),
        (
            1,
            "both certfile and keyfile must be provided if one of them is set".into()
        )
    );
    assert_eq!(
        e("listener 8883\ncertfile a.pem\nkeyfile k.pem\nrequire_certificate true\n"),
        (
            4,
            "require_certificate true needs a cafile to check client certificates against".into()
        )
    );
    assert_eq!(
        e("listener 8883\ncertfile a\nkeyfile k\nuse_identity_as_username true\n"),
        (
            4,
            "use_identity_as_username true needs require_certificate true".into()
        )
    );
    assert_eq!(
        e("listener 1883\ncafile ca.pem\n"),
        (
            2,
            "a TLS option on a listener without certfile and keyfile".into()
        )
    );
    assert_eq!(
        e("listener 8883\nrequire_certificate yes\n"),
        (2, "Invalid require_certificate value (yes)".into())
    );
    assert_eq!(
        e("listener 8883\nkeyfile\n"),
        (2, "keyfile needs a file name".into())
    );
    assert_eq!(
        e("listener 8883 127.0.0.1 extra\n"),
        (1, "listener takes a port and an optional address".into())
    );
}

#[test]
fn per_listener_settings_must_come_first() {
    // conf.c:1779-1784.
    let e =
        BrokerSettings::parse("allow_anonymous true\nper_listener_settings true\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (
            2,
            "per_listener_settings must be set before any other security settings"
        )
    );
    let e = BrokerSettings::parse("password_file /x\nper_listener_settings true\n");
    assert_eq!(e.unwrap_err().line, 2);
    assert!(BrokerSettings::parse("allow_anonymous true\nper_listener_settings false\n").is_ok());
    assert!(BrokerSettings::parse("per_listener_settings true\nallow_anonymous true\n").is_ok());
}

#[test]
fn per_listener_settings_gives_each_listener_its_keys() {
    let text = "per_listener_settings true\nlistener 1883 127.0.0.1\nallow_anonymous true\n\
                max_connections 10\nlistener 8883\npassword_file /etc/p w\nacl_file acl\n\
                allow_anonymous false\nmax_connections -1\nlistener 1884\n";
    let s = BrokerSettings::parse(text).unwrap();
    let auth: Vec<_> = s.listeners.iter().map(|l| l.auth.clone()).collect();
    assert_eq!(
        auth,
        [
            ListenerAuth {
                allow_anonymous: Some(true),
                max_connections: Some(10),
                ..ListenerAuth::default()
            },
            ListenerAuth {
                allow_anonymous: Some(false),
                password_file: Some("/etc/p w".into()),
                acl_file: Some("acl".into()),
                max_connections: Some(usize::MAX),
            },
            // A listener from the file refuses anonymous clients unless told otherwise.
            ListenerAuth {
                allow_anonymous: Some(false),
                ..ListenerAuth::default()
            },
        ]
    );
    assert_eq!(s.password_file, None, "nothing broker-wide");
    // Before any listener: for the legacy default listener, or the implicit local one.
    let s = BrokerSettings::parse(
        "per_listener_settings true\nallow_anonymous true\nport 1884\nlistener 1885\n",
    )
    .unwrap();
    assert_eq!(s.listeners[0].auth.allow_anonymous, Some(true));
    assert_eq!(s.listeners[1].auth.allow_anonymous, Some(false));
    let s = BrokerSettings::parse("per_listener_settings true\nacl_file a\n").unwrap();
    assert_eq!(s.listeners[0].auth.acl_file, Some("a".into()));
    assert_eq!(s.listeners[0].auth.allow_anonymous, Some(true));
}

#[test]
fn per_listener_keys_before_any_listener_are_refused() {
    // mosquitto 2.0.11 takes them silently for a default listener that is never opened
    // (or, for max_connections, opens one on port 1883).
    for key in [
        "allow_anonymous true",
        "password_file p",
        "acl_file a",
        "max_connections 5",
    ] {
        let text = format!("per_listener_settings true\n# x\n{key}\nlistener 1883\n");
        let e = BrokerSettings::parse(&text).unwrap_err();
        let name = key.split(' ').next().unwrap();
        assert_eq!(
            (e.line, e.message),
            (3, format!("You must create a listener before using the {name} option with per_listener_settings true")),
        );
    }
}

#[test]
fn per_listener_false_refuses_a_second_value_under_another_listener() {
    // mosquitto 2.0.11 silently applies the last one to every listener.
    let text =
        "listener 1883 127.0.0.1\nallow_anonymous true\nlistener 8883\nallow_anonymous false\n";
    let e = BrokerSettings::parse(text).unwrap_err();
    assert_eq!(e.line, 4);
    assert!(
        e.message
            .starts_with("allow_anonymous set again under another listener"),
        "{}",
        e.message
    );
    let e = BrokerSettings::parse("listener 1\npassword_file a\nlistener 2\npassword_file b\n");
    assert_eq!(e.unwrap_err().line, 4);
    // The same value again, or one listener, or before the listeners: as before.
    for ok in [
        "listener 1\nallow_anonymous true\nlistener 2\nallow_anonymous true\n",
        "allow_anonymous false\nlistener 1\nallow_anonymous true\n",
        "allow_anonymous true\nlistener 1\nlistener 2\n",
        "per_listener_settings false\nlistener 1\nlistener 2\n",
    ] {
        assert!(BrokerSettings::parse(ok).is_ok(), "{ok}");
    }
    let s =
        BrokerSettings::parse("allow_anonymous false\nlistener 1\nallow_anonymous true\n").unwrap();
    assert!(s.broker.allow_anonymous);
}

#[test]
fn log_dest_and_log_type_accumulate_like_mosquitto() {
    let d = BrokerSettings::parse("").unwrap().log;
    assert_eq!(d, LogSettings::default());
    assert!(d.stderr && !d.stdout && d.file.is_none());
    assert_eq!(d.types, log_type::DEFAULT);
    let text =
        "log_dest stdout\nlog_dest file /tmp/my broker.log\nlog_type error\nlog_type debug\n";
    let s = BrokerSettings::parse(text).unwrap().log;
    assert!(!s.stderr, "the first log_dest replaces the default");
    assert!(s.stdout);
    assert_eq!(s.file, Some("/tmp/my broker.log".into()));
    assert_eq!(s.types, log_type::ERROR | log_type::DEBUG);
    let s = BrokerSettings::parse("log_dest stderr\nlog_dest none\nlog_type all\n").unwrap();
    assert!(!s.log.stderr && !s.log.stdout);
    assert_eq!(s.log.types, log_type::ALL);
    let s = BrokerSettings::parse("log_type information\nlog_type none\n").unwrap();
    assert_eq!(s.log.types, 0);
    // Destinations mosquitto has and we do not: warned about, the rest still applies.
    let s = BrokerSettings::parse("log_dest syslog\nlog_dest stdout\n").unwrap();
    assert_eq!(s.ignored, vec![(1, "log_dest syslog".to_string())]);
    assert!(s.log.stdout && !s.log.stderr);
    for (text, line, msg) in [
        ("log_dest bogus", 1, "Invalid log_dest value (bogus)"),
        ("log_dest", 1, "Empty log_dest value in configuration"),
        (
            "log_dest file",
            1,
            "Empty \"log_dest file\" value in configuration",
        ),
        (
            "log_dest file a\nlog_dest file b",
            2,
            "Duplicate \"log_dest file\" value",
        ),
        ("\nlog_type bogus", 2, "Invalid log_type value (bogus)"),
        ("log_type", 1, "Empty log_type value in configuration"),
    ] {
        let e = BrokerSettings::parse(text).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (line, msg), "{text}");
    }
}
