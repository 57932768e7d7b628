use super::*;

const MINIMAL: &str = r#"description = "minimal"
duration_s = 10

[[device]]
name = "sensor"
profile = "pubsubclient"
qos = 0
"#;

/// MINIMAL plus `extra` appended; returns the first problem as `line: reason`.
fn first_error(extra: &str) -> (usize, String) {
    let text = format!("{MINIMAL}{extra}");
    let err = Scenario::parse(&text, "t.toml").expect_err("must be refused");
    let p = err.first().clone();
    (p.line, p.reason)
}

#[test]
fn minimal_gets_the_defaults() {
    let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(s.seed, 1);
    assert_eq!(s.tick_ms, 1);
    assert_eq!(s.duration_ms, 10_000);
    assert_eq!(s.heal_ms, 30_000);
    let d = &s.devices[0];
    assert_eq!(d.count, 1);
    assert_eq!(d.interval_ms, 2000);
    assert_eq!(d.keepalive_s, 15);
    assert_eq!(d.link, IDEAL_LINK);
    assert!(d.clean_session);
    assert_eq!(d.client_ids(), vec!["sensor".to_string()]);
    assert_eq!(
        d.topics_for("sensor"),
        ("ESP32/TEM".to_string(), "ESP32/HUM".to_string())
    );
    assert_eq!(d.outbox_expiry_s, None);
    // violations = [0, 0] is implied.
    assert_eq!(
        s.expect.checks,
        vec![ExpectCheck {
            scope: Scope::All,
            metric: Metric::Violations,
            min: 0,
            max: 0,
            line: 0
        }]
    );
}

#[test]
fn publish_humidity_defaults_on_and_is_the_reference_sketchs_key() {
    let d = |text: &str| Scenario::parse(text, "t.toml").unwrap().devices[0].publish_humidity;
    assert!(d(MINIMAL));
    assert!(!d(
        &MINIMAL.replace("qos = 0", "qos = 0\npublish_humidity = false")
    ));
    let app = MINIMAL.replace("qos = 0", "app = \"door\"\npublish_humidity = false");
    let err = Scenario::parse(&app, "t.toml").expect_err("an application decides");
    assert!(
        err.first()
            .reason
            .starts_with("publish_humidity is a setting of the reference sketch"),
        "{}",
        err.first().reason
    );
}

#[test]
fn groups_expand_to_numbered_client_ids() {
    let text = MINIMAL.replace("name = \"sensor\"", "name = \"sensor\"\ncount = 3");
    let s = Scenario::parse(&text, "t.toml").unwrap();
    assert_eq!(s.client_ids(), vec!["sensor-0", "sensor-1", "sensor-2"]);
}

#[test]
fn full_example_parses() {
    let text = r#"description = "all keys"
seed = 7
duration_s = 60
tick_ms = 2
heal_s = 20
[broker]
max_inflight_messages = 20
max_queued_messages = 1000
persistence = false
[link.wifi]
latency_ms = 20
jitter_ms = 10
wifi_join_ms = [1000, 4000]
[link.wifi.gilbert_elliott]
p_good_to_bad = 0.02
p_bad_to_good = 0.25
loss_good = 0.01
loss_bad = 0.8
[link.flat]
loss = 0.05
[[device]]
name = "sensor"
count = 2
profile = "esp-mqtt"
qos = 1
interval_ms = 1000
link = "wifi"
clean_session = false
keepalive_s = 30
messages = 200
topic_prefix = "ESP32/{id}"
retain = true
outbox_expiry_s = 30
will = { topic = "ESP32/{id}/status", payload = "offline", qos = 1, retain = true }
[[subscriber]]
name = "dashboard"
filter = "ESP32/#"
qos = 1
clean_session = false
link = "flat"
keepalive_s = 60
[[fault]]
at_s = 30
duration_s = 10
kind = "half-open"
direction = "up"
target = "sensor-1"
[[fault]]
at_s = 5
kind = "reset"
[[fault]]
at_s = 50
kind = "broker-restart"
[expect]
delivered = [300, 400]
[expect.qos1]
lost = [0, 0]
[expect.device.sensor]
reconnects = [0, 2]
[expect.subscriber.dashboard]
duplicated = [0, 10]
"#;
    let s = Scenario::parse(text, "all.toml").unwrap();
    assert_eq!(s.seed, 7);
    assert_eq!(s.tick_ms, 2);
    assert_eq!(s.heal_ms, 20_000);
    assert_eq!(s.broker.max_inflight_messages, Some(20));
    let wifi = s.link("wifi");
    assert!(
        (wifi.mean_loss() - 0.0680).abs() < 0.001,
        "{}",
        wifi.mean_loss()
    );
    assert_eq!(s.link("flat").loss, Loss::Independent(0.05));
    let d = &s.devices[0];
    assert_eq!(d.topics_for("sensor-1").0, "ESP32/sensor-1/TEM");
    assert_eq!(d.will.as_ref().unwrap().qos, 1);
    // Sorted by start.
    let starts: Vec<u64> = s.faults.iter().map(|f| f.at_ms).collect();
    assert_eq!(starts, vec![5_000, 30_000, 50_000]);
    assert_eq!(s.faults[1].kind, FaultKind::HalfOpen(Direction::Up));
    assert_eq!(s.faults[2].duration_ms, 1000);
    let lines: Vec<(Scope, Metric, usize)> = s
        .expect
        .checks
        .iter()
        .map(|c| (c.scope.clone(), c.metric, c.line))
        .collect();
    assert_eq!(
        lines,
        vec![
            (Scope::All, Metric::Violations, 0),
            (Scope::All, Metric::Delivered, 55),
            (Scope::Qos(1), Metric::Lost, 57),
            (Scope::Device("sensor".into()), Metric::Reconnects, 59),
            (
                Scope::Subscriber("dashboard".into()),
                Metric::Duplicated,
                61
            ),
        ]
    );
}

#[test]
fn syntax_error_has_its_line() {
    let (line, reason) = first_error("[[subscriber]\n");
    assert_eq!(line, 8, "{reason}");
}

#[test]
fn unknown_key_is_refused_at_its_line() {
    let (line, reason) =
        first_error("\n[[subscriber]]\nname = \"s\"\nfilter = \"#\"\nqos = 0\ncolour = 1\n");
    assert_eq!(line, 13);
    assert!(reason.contains("colour"), "{reason}");
    let (line, _) = first_error("speed = 3\n");
    assert_eq!(line, 8);
}

#[test]
fn bad_values_are_refused_at_their_line() {
    let (line, reason) = first_error("[link.wifi]\nloss = 1.5\n");
    assert_eq!(
        (line, reason.as_str()),
        (9, "loss = 1.5 is not a probability (0..=1)")
    );

    let text = MINIMAL.replace("qos = 0", "qos = 3");
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(err.to_string(), "t.toml:7: qos = 3: QoS is 0, 1 or 2");

    let text = MINIMAL.replace("duration_s = 10", "duration_s = 10\ntick_ms = 0");
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.toml:3: tick_ms must be > 0 (it is the simulation step)"
    );

    // Issue 24: a huge tick ended in turmoil's "ports exhausted" panic; now refused at its line.
    let text = MINIMAL.replace("duration_s = 10", "duration_s = 10\ntick_ms = 2147483648");
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(err.first().line, 3, "{err}");
    assert!(err.to_string().contains("too long: at most 100"), "{err}");

    let (line, reason) = first_error("[[subscriber]]\nname = \"s\"\nfilter = \"a/#/b\"\nqos = 0\n");
    assert_eq!(line, 10, "{reason}");

    let text = MINIMAL.replace("profile = \"pubsubclient\"", "profile = \"arduino\"");
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(err.first().line, 6, "{err}");
}

#[test]
fn link_times_take_a_fraction_of_a_millisecond() {
    let link = |keys: &str| {
        let text = format!("{MINIMAL}link = \"l\"\n[link.l]\n{keys}");
        let s = Scenario::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let l = s.link("l");
        (l.latency_us, l.jitter_us)
    };
    assert_eq!(link("latency_ms = 0.05\njitter_ms = 0.5\n"), (50, 500));
    assert_eq!(link("latency_ms = 20\njitter_ms = 10\n"), (20_000, 10_000));
    assert_eq!(link("latency_ms = 1.234\n"), (1_234, 0));
    assert_eq!(link("latency_ms = 0\n"), (0, 0));
    assert_eq!(
        link("latency_ms = 3600000\njitter_ms = 3600000.0\n"),
        (3_600_000_000, 3_600_000_000)
    );
    assert_eq!(link(""), (5_000, 0), "the defaults");
}

#[test]
fn bad_link_times_are_refused_at_their_line() {
    let cases = [
        (
            "latency_ms = -1",
            "latency_ms = -1 is not a time in ms in 0..=3600000",
        ),
        (
            "latency_ms = -0.05",
            "latency_ms = -0.05 is not a time in ms in 0..=3600000",
        ),
        (
            "jitter_ms = nan",
            "jitter_ms = NaN is not a time in ms in 0..=3600000",
        ),
        (
            "latency_ms = inf",
            "latency_ms = inf is not a time in ms in 0..=3600000",
        ),
        (
            "latency_ms = 3600000.001",
            "latency_ms = 3600000.001 is not a time in ms in 0..=3600000",
        ),
        (
            "jitter_ms = 0.0005",
            "jitter_ms = 0.0005: the resolution is 1 µs (0.001 ms)",
        ),
        (
            "latency_ms = 1.0001",
            "latency_ms = 1.0001: the resolution is 1 µs (0.001 ms)",
        ),
    ];
    for (key, reason) in cases {
        let (line, got) = first_error(&format!("[link.wifi]\nloss = 0.1\n{key}\n"));
        assert_eq!((line, got.as_str()), (10, reason), "{key}");
    }
    let (line, reason) = first_error("[link.wifi]\nlatency_ms = \"1\"\n");
    assert_eq!(line, 9, "{reason}");
}

#[test]
fn pubsubclient_cannot_publish_qos1() {
    let text = MINIMAL.replace("qos = 0", "qos = 1");
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.toml:7: qos = 1: the pubsubclient profile publishes QoS 0 only (use esp-mqtt)"
    );
}

#[test]
fn undefined_link_is_refused() {
    let text = MINIMAL.replace("qos = 0", "qos = 0\nlink = \"wifi\"");
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(err.to_string(), "t.toml:8: link `wifi` is not defined");
}

#[test]
fn duplicate_names_are_refused() {
    let (line, reason) =
        first_error("[[subscriber]]\nname = \"sensor\"\nfilter = \"#\"\nqos = 0\n");
    assert_eq!((line, reason.as_str()), (9, "duplicate name `sensor`"));
    // A group's numbered ids collide with another name too.
    let (line, reason) = first_error(
        "[[device]]\nname = \"s\"\ncount = 2\nprofile = \"esp-mqtt\"\nqos = 1\n[[device]]\nname = \"s-1\"\nprofile = \"esp-mqtt\"\nqos = 1\n",
    );
    assert_eq!(
        (line, reason.as_str()),
        (14, "client id `s-1` is used twice")
    );
}

#[test]
fn fault_errors_are_refused_at_their_line() {
    let (line, reason) = first_error(
        "[[fault]]\nat_s = 1\nduration_s = 2\nkind = \"partition\"\ntarget = \"nobody\"\n",
    );
    assert_eq!(
        (line, reason.as_str()),
        (12, "fault target `nobody` is no device or subscriber")
    );

    let (line, reason) = first_error("[[fault]]\nat_s = 1\nduration_s = 2\nkind = \"half-open\"\n");
    assert_eq!(
        (line, reason.as_str()),
        (11, "half-open needs direction = \"up\" or \"down\"")
    );

    let (line, reason) = first_error("[[fault]]\nat_s = 8\nduration_s = 5\nkind = \"partition\"\n");
    assert_eq!(
        (line, reason.as_str()),
        (
            9,
            "fault ends at 13 s, after duration_s = 10 (faults happen in the safety phase)"
        )
    );

    let (line, reason) =
        first_error("[[fault]]\nat_s = 1\nkind = \"broker-restart\"\ntarget = \"sensor\"\n");
    assert_eq!(
        (line, reason.as_str()),
        (11, "broker faults take no target")
    );

    let (line, reason) = first_error("[[fault]]\nat_s = 1\nkind = \"partition\"\n");
    assert_eq!((line, reason.as_str()), (10, "this fault needs duration_s"));

    let (line, _) = first_error("[[fault]]\nat_s = 1\nkind = \"earthquake\"\n");
    assert_eq!(line, 10);
}

#[test]
fn expect_errors_are_refused_at_their_line() {
    let (line, reason) = first_error("[expect]\ndelivered = [5, 1]\n");
    assert_eq!(
        (line, reason.as_str()),
        (9, "expect.delivered: min 5 > max 1")
    );

    let (line, reason) = first_error("[expect.device.ghost]\nlost = [0, 0]\n");
    assert_eq!(
        (line, reason.as_str()),
        (8, "expect.device.ghost: no [[device]] named `ghost`")
    );

    let (line, reason) = first_error("[expect.qos1]\nreconnects = [0, 1]\n");
    assert_eq!(
        (line, reason.as_str()),
        (9, "expect.qos1.reconnects: not measured per this scope")
    );

    let (line, reason) = first_error("[expect]\ndelivered_ok = [0, 1]\n");
    assert_eq!(line, 9, "{reason}");
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let text = MINIMAL.replace("qos = 0", "qos = 3\nlink = \"nowhere\"") + "[link.x]\nloss = -1\n";
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    let lines: Vec<usize> = err.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![7, 8, 10], "{err}");
}

#[test]
fn duration_override_cuts_faults() {
    let text = MINIMAL.to_string() + "[[fault]]\nat_s = 2\nduration_s = 6\nkind = \"partition\"\n[[fault]]\nat_s = 7\nkind = \"reset\"\n";
    let s = Scenario::parse(&text, "t.toml")
        .unwrap()
        .with_duration_ms(5_000)
        .with_seed(9);
    assert_eq!(s.seed, 9);
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].duration_ms, 3_000);
}

#[test]
fn missing_file_is_reported() {
    let err = Scenario::load("/nonexistent/x.toml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn a_sketch_device_has_its_own_keys() {
    let base = "description = \"s\"\nduration_s = 10\n[[device]]\nname = \"d\"\nprofile = \"pubsubclient\"\n";
    let ok = Scenario::parse(
        &format!("{base}sketch = \"app.ino\"\nlibraries = [\"libs\"]\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(ok.devices[0].sketch.as_deref(), Some("app.ino"));
    assert_eq!(ok.devices[0].libraries, vec!["libs".to_string()]);
    let refused = |extra: &str| {
        let err = Scenario::parse(&format!("{base}{extra}"), "t.toml").expect_err(extra);
        err.first().reason.clone()
    };
    assert!(refused("sketch = \"app.cpp\"\n").contains("NAME.ino"));
    assert!(refused("sketch = \"app.ino\"\napp = \"x\"\n").contains("exclusive"));
    assert!(refused("sketch = \"app.ino\"\nqos = 0\n").contains("sketch app.ino decides"));
    assert!(refused("sketch = \"app.ino\"\nkeepalive_s = 5\n").contains("sets it itself"));
    assert!(refused("qos = 0\nlibraries = [\"l\"]\n").contains("are for a sketch"));
}

#[test]
fn connect_timeout_applies_without_other_broker_keys() {
    // It was nested under `max_inflight_messages` by a merge, and ignored without it.
    let s = Scenario::parse(
        "description = \"x\"\nduration_s = 10\n[broker]\nconnect_timeout_s = 90\n[[device]]\nname = \"d\"\nprofile = \"esp-mqtt\"\nqos = 0\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(s.broker.connect_timeout_s, Some(90));
}

#[test]
fn broker_profile_is_named_or_refused_at_its_line() {
    let s = Scenario::parse(
        &format!("{MINIMAL}\n[broker]\nprofile = \"mosquitto-2.0\"\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(s.broker.profile, mqsim::broker::Profile::Mosquitto20);
    assert_eq!(
        Scenario::parse(MINIMAL, "t.toml").unwrap().broker.profile,
        mqsim::broker::Profile::Mqsim
    );
    let (line, reason) = first_error("\n[broker]\nprofile = \"mosquitto\"\n");
    assert_eq!(line, 10);
    assert_eq!(
        reason,
        "unknown broker profile `mosquitto` (one of: mqsim, mosquitto-2.0)"
    );
}

#[test]
fn fleet_keys_are_checked_at_their_line() {
    let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(s.engines, vec!["turmoil", "direct"]);
    assert_eq!(s.devices[0].start_spread_ms, 0);
    let text = MINIMAL.replace("duration_s = 10", "duration_s = 10\nengines = [\"direct\"]")
        + "start_spread_s = 2.5\n";
    let s = Scenario::parse(&text, "t.toml").unwrap();
    assert_eq!(s.engines, vec!["direct"]);
    assert_eq!(s.devices[0].start_spread_ms, 2_500);
    let (line, reason) = first_error("start_spread_s = 10\n");
    assert_eq!(line, 8);
    assert!(reason.contains("shorter than duration_s"), "{reason}");
    let refused = |engines: &str| {
        let text = MINIMAL.replace(
            "duration_s = 10",
            &format!("duration_s = 10\nengines = {engines}"),
        );
        let err = Scenario::parse(&text, "t.toml").expect_err("must be refused");
        let p = err.first().clone();
        (p.line, p.reason)
    };
    assert_eq!(refused("[\"warp\"]").0, 3);
    assert!(refused("[\"warp\"]").1.contains("unknown engine `warp`"));
    assert!(refused("[]").1.contains("at least one"));
    assert!(refused("[\"direct\", \"direct\"]").1.contains("twice"));
}

/// Issue 22: a power model with a negative or missing current, or a battery of zero capacity,
/// is refused at its line before anything runs.
#[test]
fn bad_power_models_are_refused_at_their_line() {
    // MINIMAL is 7 lines; `[device.power]` is line 8, its first key line 9.
    let (line, reason) = first_error("[device.power]\ntx_ma = -276\n");
    assert_eq!(
        (line, reason.as_str()),
        (9, "tx_ma = -276: must be a finite number > 0")
    );
    let (line, reason) = first_error("[device.power]\nsleep_ma = 0.14\nbattery_mah = 0\n");
    assert_eq!(
        (line, reason.as_str()),
        (10, "battery_mah = 0: must be a finite number > 0")
    );
    let (line, reason) =
        first_error("[device.power]\nchip = \"custom\"\ntx_ma = 276\nsleep_ma = 0.1\n");
    assert_eq!(
        (line, reason.as_str()),
        (
            8,
            "[device.power]: rx_ma is missing: chip = \"custom\" has no default for it"
        )
    );
    let (line, reason) = first_error("[device.power]\nrx_ma = nan\n");
    assert_eq!(
        (line, reason.as_str()),
        (9, "rx_ma = NaN: must be a finite number > 0")
    );
    let (line, _) = first_error("[device.power]\nchip = \"esp32\"\n");
    assert_eq!(line, 9);
    let (line, _) = first_error("[device.power]\nwatts = 1\n");
    assert_eq!(line, 9, "unknown keys are refused too");
}

/// Overrides land in the model's units; what is not given keeps the sourced default.
#[test]
fn power_overrides_keep_the_other_defaults() {
    let text = format!(
        "{MINIMAL}[device.power]\nsleep_ma = 20.58\ndtim = 3\nbattery_mah = 2500\nvoltage_v = 3.7\n"
    );
    let s = Scenario::parse(&text, "t.toml").unwrap();
    let p = &s.devices[0].power;
    assert_eq!(
        (p.sleep_ua, p.dtim, p.battery_mah, p.voltage_mv),
        (20_580, 3, 2_500, 3_700)
    );
    assert_eq!(p.tx_ua, crate::cost::PowerSpec::ESP32_C3.tx_ua);
    let plain = Scenario::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(plain.devices[0].power, crate::cost::PowerSpec::ESP32_C3);
}

/// The expect keys are listed once (raw.rs's macro): each is its metric's key, and every metric
/// but `violations` (top level only) has one.
#[test]
fn every_metric_has_its_expect_key() {
    for m in Metric::ALL {
        let listed = super::raw::EXPECT_KEYS.iter().find(|(k, _)| *k == m);
        match listed {
            Some((_, key)) => assert_eq!(*key, m.key()),
            None => assert_eq!(m, Metric::Violations),
        }
    }
    assert_eq!(super::raw::EXPECT_KEYS.len(), Metric::ALL.len() - 1);
    // A new one parses at every scope it is measured at, and is refused where it is not.
    let text = format!(
        "{MINIMAL}[[subscriber]]\nname = \"s\"\nfilter = \"#\"\nqos = 0\n[expect]\nbattery_days = [1, 99]\n[expect.subscriber.s]\nenergy_mj = [0, 1]\n"
    );
    let err = Scenario::parse(&text, "t.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.toml:15: expect.subscriber.s.energy_mj: not measured per this scope"
    );
}
