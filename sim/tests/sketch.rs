//! Devices given as Arduino sketches (sim/src/sketch/): the reference device as a sketch over
//! the test's PubSubClient shim, each device's own globals, virtual time under busy waits,
//! sketches that do not compile, and (where `MQSIM_ARDUINO_LIBRARIES` holds the real
//! PubSubClient) the same sketch on the real library against the Rust `pubsubclient` profile.

use mqsim_sim::run::{run, RunOptions, RunOutcome, Source};
use mqsim_sim::scenario::Scenario;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// A scenario file name in `dir`, so that `sketch` and `libraries` resolve beside it.
fn scenario(dir: &str, text: &str) -> Scenario {
    Scenario::parse(text, &format!("{DIR}/{dir}/test.toml")).expect("valid scenario")
}

fn run_ok(sc: &Scenario, seed: u64) -> RunOutcome {
    run(
        sc,
        &RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        },
    )
    .expect("runs")
}

fn device_texts(o: &RunOutcome, device: &str) -> Vec<String> {
    o.lines
        .iter()
        .filter(|l| l.source == Source::Device(device.to_string()))
        // Without the serial monitor's `hh:mm:ss.mmm -> ` prefix.
        .map(|l| match l.text.split_once(" -> ") {
            Some((_, t)) => t.to_string(),
            None => l.text.clone(),
        })
        .collect()
}

fn subscriber_lines(o: &RunOutcome, sub: &str) -> Vec<(u64, String)> {
    o.lines
        .iter()
        .filter(|l| l.source == Source::Subscriber(sub.to_string()))
        .map(|l| (l.at.as_millis(), l.text.clone()))
        .collect()
}

const REFERENCE: &str = r#"
description = "the reference sketch over the shim"
duration_s = 30
heal_s = 5

[link.wifi]
latency_ms = 15
jitter_ms = 5

[[device]]
name = "esp32"
profile = "pubsubclient"
sketch = "reference/reference.ino"
libraries = ["../arduino/shim"]
link = "wifi"

[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 0
"#;

#[test]
fn the_reference_sketch_runs_over_the_shim_with_the_write_ups_serial_lines() {
    let sc = scenario("sketches", REFERENCE);
    let o = run_ok(&sc, 1);
    assert!(o.violations.is_empty(), "{}", o.failure_text(30));
    let serial = device_texts(&o, "esp32");
    assert_eq!(serial[0], "Connecting to WiFi");
    assert!(
        serial[1].len() >= 2 && serial[1].chars().all(|c| c == '.'),
        "WiFi dots: {:?}",
        serial[1]
    );
    assert_eq!(serial[2], "Connected to the WiFi network");
    assert_eq!(serial[3], "Connecting to MQTT...");
    assert_eq!(serial[4], "connected");
    assert_eq!(serial[5], "Publish message:");
    assert!(serial[6].starts_with("Temperature : ") && serial[6].ends_with("°C"));
    assert!(serial[7].starts_with("Humidity : ") && serial[7].ends_with('%'));
    // Every 2 s (and a loop's millisecond) while the sensor answers: 30 s from the connect.
    let publishes = serial.iter().filter(|l| *l == "Publish message:").count();
    assert!((12..=14).contains(&publishes), "{publishes} publishes");
    let got = subscriber_lines(&o, "sub");
    let tem: Vec<u64> = got
        .iter()
        .filter(|(_, t)| t.starts_with("ESP32/TEM "))
        .map(|(at, _)| *at)
        .collect();
    let hum = got
        .iter()
        .filter(|(_, t)| t.starts_with("ESP32/HUM "))
        .count();
    assert_eq!(tem.len(), publishes);
    assert_eq!(hum, publishes);
    for w in tem.windows(2) {
        assert!((1_950..=2_100).contains(&(w[1] - w[0])), "interval {:?}", w);
    }
    // The ledger heard the connect from the wire; a sketch's messages carry no tag.
    let r = &o.report;
    assert!(o.trace().contains("untagged receipts"), "{}", r.render());
    // Deterministic: the same seed, the same bytes.
    assert_eq!(o.trace(), run_ok(&sc, 1).trace());
}

#[test]
fn devices_of_one_sketch_keep_their_own_globals() {
    let sc = scenario(
        "tests/sketches",
        r#"
description = "two boards, one sketch"
duration_s = 5
heal_s = 1

[[device]]
name = "board"
count = 2
profile = "pubsubclient"
sketch = "counter.ino"

[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 0
"#,
    );
    let o = run_ok(&sc, 7);
    let a = device_texts(&o, "board-0");
    let b = device_texts(&o, "board-1");
    for lines in [&a, &b] {
        assert!(lines[0].contains(" up at "), "{lines:?}");
        let counts: Vec<&String> = lines.iter().filter(|l| l.contains(" count ")).collect();
        assert!(counts.len() >= 4, "{lines:?}");
        for (i, l) in counts.iter().enumerate() {
            assert!(l.ends_with(&format!(" count {}", i + 1)), "{l}");
        }
    }
    // Each board's random stream is its own (seeded per device).
    let name = |l: &str| l.split(' ').next().unwrap_or("").to_string();
    assert_ne!(name(&a[0]), name(&b[0]));
}

#[test]
fn busy_waiting_sees_simulated_time_pass() {
    let sc = scenario(
        "tests/sketches",
        r#"
description = "spin on millis()"
duration_s = 5
heal_s = 1

[[device]]
name = "spinner"
profile = "pubsubclient"
sketch = "spin.ino"

[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 0
"#,
    );
    let o = run_ok(&sc, 1);
    let lines: Vec<&mqsim_sim::run::Line> = o
        .lines
        .iter()
        .filter(|l| l.source == Source::Device("spinner".into()))
        .collect();
    assert!(
        lines[0].text.ends_with("spun until 1500 ms"),
        "{}",
        lines[0].text
    );
    let ticks: Vec<u64> = lines[1..].iter().map(|l| l.at.as_millis()).collect();
    assert!(ticks.len() >= 4, "{ticks:?}");
    for w in ticks.windows(2) {
        assert!((1_000..=1_002).contains(&(w[1] - w[0])), "{ticks:?}");
    }
}

#[test]
fn a_sketch_that_does_not_compile_names_file_and_line_and_nothing_runs() {
    let bad = |file: &str| {
        let sc = scenario(
            "tests/sketches",
            &format!(
                "description = \"bad\"\nduration_s = 5\n[[device]]\nname = \"d\"\nprofile = \"pubsubclient\"\nsketch = \"{file}\"\n"
            ),
        );
        match run(&sc, &RunOptions::default()) {
            Ok(_) => panic!("{file} ran"),
            Err(e) => e,
        }
    };
    let e = bad("bad.ino");
    assert!(e.contains("does not compile"), "{e}");
    assert!(e.contains("bad.ino:5:"), "{e}");
    assert!(e.contains("error:"), "{e}");

    let e = bad("missing.ino");
    assert!(e.contains("missing library"), "{e}");
    assert!(e.contains("missing.ino:2"), "{e}");
    assert!(e.contains("#include <NoSuchLibrary.h>"), "{e}");
    assert!(e.contains("looked in mqsim's Arduino core"), "{e}");
}

/// The real PubSubClient, where the user has it: the reference sketch on it against the Rust
/// `pubsubclient` profile's reference device on the same scenario and seeds.
#[test]
fn the_real_pubsubclient_matches_the_profile_where_installed() {
    let Some(libs) = std::env::var_os(mqsim_sim::sketch::LIBRARIES_ENV) else {
        eprintln!("MQSIM_ARDUINO_LIBRARIES not set: the real PubSubClient is not compared");
        return;
    };
    let has = std::env::split_paths(&libs).any(|p| {
        p.join("PubSubClient/src/PubSubClient.h").is_file()
            || p.join("PubSubClient/PubSubClient.h").is_file()
    });
    if !has {
        eprintln!("no PubSubClient in MQSIM_ARDUINO_LIBRARIES: not compared");
        return;
    }
    let sketch = scenario(
        "sketches",
        &REFERENCE.replace("libraries = [\"../arduino/shim\"]\n", ""),
    );
    let profile = scenario(
        "sketches",
        &REFERENCE
            .replace("sketch = \"reference/reference.ino\"\n", "qos = 0\n")
            .replace("libraries = [\"../arduino/shim\"]\n", ""),
    );
    for seed in 1..=3 {
        let (s, p) = (run_ok(&sketch, seed), run_ok(&profile, seed));
        let texts = |o: &RunOutcome| -> Vec<String> {
            subscriber_lines(o, "sub")
                .into_iter()
                .map(|(_, t)| t)
                .collect()
        };
        let (st, pt) = (texts(&s), texts(&p));
        // The same messages (the profile's payloads without their tags); the counts may differ
        // by the one reading the sketch's loop drift moves across the end of the run.
        assert!(
            st.len().abs_diff(pt.len()) <= 2,
            "seed {seed}: sketch {} messages, profile {}",
            st.len(),
            pt.len()
        );
        let serial = |o: &RunOutcome, d: &str| -> Vec<String> {
            device_texts(o, d)
                .into_iter()
                .filter(|l| !l.starts_with("Temperature") && !l.starts_with("Humidity"))
                .take(6)
                .collect()
        };
        assert_eq!(
            serial(&s, "esp32")[2..],
            serial(&p, "esp32")[2..],
            "seed {seed}"
        );
        // Keep alive: a PINGREQ 15 s after the last packet in (CONNACK, then each PINGRESP:
        // PubSubClient pings when either direction has been quiet 15 s, and a QoS 0 publisher
        // hears nothing else), on both sides within the milliseconds their connects differ by.
        let (sp, pp) = (pingreqs(&s), pingreqs(&p));
        assert_eq!(sp.len(), pp.len(), "seed {seed}: {sp:?} {pp:?}");
        for (a, b) in sp.iter().zip(&pp) {
            assert!(a.abs_diff(*b) <= 30, "seed {seed}: PINGREQ {sp:?} {pp:?}");
        }
    }

    // A dead connection: the uplink half-open from 30 s for 60 s. The library's part agrees:
    // the PINGREQ sent into the dead uplink goes unanswered and the client gives up 15 s
    // later (state -3), then each connect fails after the 3 s TCP timeout with state -2. The
    // application's retry agrees too: at once after the loss, 2 s after each failure (the
    // profile's `reconnect_after_loss_ms` and `reconnect_interval_ms`). What still differs
    // (docs/sketches.md): the sketch's `delay(2000)` takes no readings, the profile's loop does.
    let half_open = |text: &str| {
        scenario(
            "sketches",
            &format!(
                "{}\n[[fault]]\nat_s = 30\nduration_s = 60\nkind = \"half-open\"\ndirection = \"up\"\ntarget = \"esp32\"\n",
                text.replace("duration_s = 30", "duration_s = 90")
            ),
        )
    };
    let sketch = half_open(&REFERENCE.replace("libraries = [\"../arduino/shim\"]\n", ""));
    let profile = half_open(
        &REFERENCE
            .replace("sketch = \"reference/reference.ino\"\n", "qos = 0\n")
            .replace("libraries = [\"../arduino/shim\"]\n", ""),
    );
    let params = mqsim::device::Profile::PubSubClient.params();
    let (after_loss_ms, after_failure_ms) =
        (params.reconnect_after_loss_ms, params.reconnect_interval_ms);
    assert_eq!((after_loss_ms, after_failure_ms), (0, 2_000));
    for seed in 1..=3 {
        let (s, p) = (run_ok(&sketch, seed), run_ok(&profile, seed));
        let at = |o: &RunOutcome, text: &str| -> Vec<u64> {
            o.lines
                .iter()
                .filter(|l| l.source == Source::Device("esp32".into()) && l.text.ends_with(text))
                .map(|l| l.at.as_millis())
                .collect()
        };
        // The last PINGREQ that reached the broker, before the fault, at the same moment.
        let (sp, pp) = (pingreqs(&s), pingreqs(&p));
        assert!(sp[0].abs_diff(pp[0]) <= 30, "seed {seed}: {sp:?} {pp:?}");
        // Given up, and each attempt after it: at the same moments on both (the second
        // `Connecting to MQTT...` is the first attempt after the loss).
        let (ts, tp) = (
            at(&s, "Connecting to MQTT..."),
            at(&p, "Connecting to MQTT..."),
        );
        let gave_up_profile = tp[1] - after_loss_ms;
        assert!(
            ts[1].abs_diff(gave_up_profile) <= 30,
            "seed {seed}: gave up at {} ms (sketch), {gave_up_profile} ms (profile)",
            ts[1]
        );
        assert_eq!(ts.len(), tp.len(), "seed {seed}: {ts:?} {tp:?}");
        for (a, b) in ts.iter().zip(&tp) {
            assert!(a.abs_diff(*b) <= 30, "seed {seed}: attempts {ts:?} {tp:?}");
        }
        // Each failed attempt (3 s) and the sketch's `delay(2000)`: one attempt every 5 s.
        for w in tp[1..].windows(2) {
            assert!(
                (3_000 + after_failure_ms..=3_002 + after_failure_ms).contains(&(w[1] - w[0])),
                "seed {seed}: {tp:?}"
            );
        }
        // Attempt to failure: the 3 s TCP connect timeout, state -2, on both.
        for o in [&s, &p] {
            let tries = at(o, "Connecting to MQTT...");
            let fails = at(o, "failed with state -2");
            assert!(!fails.is_empty(), "seed {seed}");
            for f in &fails {
                let t = tries.iter().rev().find(|t| *t <= f).expect("an attempt");
                assert!(
                    (3_000..=3_002).contains(&(f - t)),
                    "seed {seed}: {tries:?} {fails:?}"
                );
            }
        }
    }
}

/// When the broker heard the device's PINGREQs, in ms.
fn pingreqs(o: &RunOutcome) -> Vec<u64> {
    o.lines
        .iter()
        .filter(|l| {
            l.source == Source::Broker
                && l.text.contains("Received PINGREQ from ")
                && !l.text.ends_with(" sub")
        })
        .map(|l| l.at.as_millis())
        .collect()
}

#[test]
fn the_builder_makes_sketch_devices() {
    use mqsim_sim::world::build::{Builder, Devices, Subscriber};
    let b = Builder::new("a sketch from the builder")
        .duration_s(8)
        .heal_s(1)
        .devices(
            Devices::arduino("board", &format!("{DIR}/tests/sketches/counter.ino"))
                .profile("pubsubclient"),
        )
        .subscriber(Subscriber::new("sub", "ESP32/#").qos(0));
    let o = b.world().expect("valid").run(1).expect("runs");
    assert!(device_texts(&o, "board")
        .iter()
        .any(|l| l.ends_with(" count 2")));
}
