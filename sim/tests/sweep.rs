//! `mqsim sim --seeds A..B` through the binary: the table of distributions (the same whatever
//! the number of threads), shards and `mqsim sim merge` (the same table as one machine, and the
//! refusals), bad input refused before anything runs, `--swarm` replayed from its seed, and
//! `--shrink` of a planted failure. Short scenarios (10 to 20 s of simulated time) keep it quick.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A short lossy QoS 1 scenario: every seed passes.
const SHORT: &str = r#"
description = "sweep test: one esp-mqtt device at QoS 1, 10 % loss, 20 s"
duration_s = 20
heal_s = 30
tick_ms = 2
[link.wifi]
latency_ms = 15
loss = 0.1
[[device]]
name = "esp32"
profile = "esp-mqtt"
qos = 1
interval_ms = 1000
link = "wifi"
[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 1
[[fault]]
kind = "partition"
at_s = 8
duration_s = 4
target = "esp32"
"#;

/// A known-failing configuration under `--swarm`: a 5 s heal is too short for many of the drawn
/// fault combinations (a subscriber still reconnecting, a QoS 1 message still unacknowledged).
const SHORT_HEAL: &str = r#"
description = "sweep test: swarm faults against a 5 s heal"
duration_s = 10
heal_s = 5
tick_ms = 2
[link.wifi]
latency_ms = 15
loss = 0.1
[[device]]
name = "esp32"
profile = "esp-mqtt"
qos = 1
interval_ms = 1000
link = "wifi"
[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 1
"#;

/// A planted failure: the subscriber is reset, then everything is partitioned until the heal,
/// which is too short for the subscriber to reconnect (invariant `liveness`). One device of the
/// three, the second subscriber and the first reset play no part in it.
const PLANTED: &str = r##"
description = "sweep test: a subscriber reset, then a partition until a heal too short for its reconnect"
seed = 23
duration_s = 10
heal_s = 5
tick_ms = 2
[link.wifi]
latency_ms = 15
loss = 0.1
[[device]]
name = "esp32"
profile = "esp-mqtt"
qos = 1
interval_ms = 1000
link = "wifi"
[[device]]
name = "extra"
count = 2
profile = "pubsubclient"
qos = 0
link = "wifi"
[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 1
[[subscriber]]
name = "logger"
filter = "#"
qos = 0
[[fault]]
at_s = 0.5
kind = "reset"
target = "extra"
[[fault]]
at_s = 1.002
kind = "reset"
target = "sub"
[[fault]]
at_s = 1.28
kind = "partition"
duration_s = 8.073
"##;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mqsim-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `mqsim ARGS` in `dir`, with `env` set and the shard variables of the test's own
/// environment removed.
fn mqsim(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqsim"));
    c.current_dir(dir)
        .args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("MQSIM_SHARD_COUNT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run mqsim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_table_is_the_same_on_one_thread_and_on_three() {
    let d = dir("jobs");
    write(&d, "short.toml", SHORT);
    let one = mqsim(
        &d,
        &["sim", "short.toml", "--seeds", "0..9", "--jobs", "1"],
        &[],
    );
    let three = mqsim(
        &d,
        &["sim", "short.toml", "--seeds", "0..9", "--jobs", "3"],
        &[],
    );
    assert!(one.status.success(), "{}", stderr(&one));
    assert_eq!(stdout(&one), stdout(&three));
    let table = stdout(&one);
    assert!(
        table.starts_with("short.toml, seeds 0..9: 9 runs, 0 failed\n"),
        "{table}"
    );
    for row in [
        "qos1 lost",
        "qos1 duplicated",
        "qos1 reconnects",
        "qos1 p50 ms",
        "qos1 p99 ms",
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{row}: {table}"));
        // runs (latencies: those that received something), then min <= p50 <= p99 <= max.
        let v: Vec<f64> = line[row.len()..]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        if row.ends_with(" ms") {
            assert!((1.0..=9.0).contains(&v[0]), "{line}");
        } else {
            assert_eq!(v[0], 9.0, "{line}");
        }
        assert!(v[1] <= v[2] && v[2] <= v[3] && v[3] <= v[4], "{line}");
    }
    assert!(
        !table.contains("qos0"),
        "nothing publishes at QoS 0: {table}"
    );
    assert!(table.contains("broken connection: "), "{table}");
    assert!(table.lines().all(|l| l.len() <= 80), "{table}");
    // The 4 s partition costs a 200 ms RTO doubling at least once: p99 latencies spread.
    let p99 = table
        .lines()
        .find(|l| l.starts_with("qos1 p99 ms"))
        .unwrap();
    assert!(
        p99.split_whitespace()
            .nth(7)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 1000.0,
        "{p99}"
    );
    // stderr is no terminal here: no progress bar, only the speed line.
    let err = stderr(&one);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("9 seeds in "), "{err}");
    // --json: the same numbers, for machines, whatever the threads.
    let j1 = mqsim(
        &d,
        &[
            "sim",
            "short.toml",
            "--seeds",
            "0..9",
            "--jobs",
            "1",
            "--json",
            "--quiet",
        ],
        &[],
    );
    let j3 = mqsim(
        &d,
        &[
            "sim",
            "short.toml",
            "--seeds",
            "0..9",
            "--jobs",
            "3",
            "--json",
            "--quiet",
        ],
        &[],
    );
    assert_eq!(stdout(&j1), stdout(&j3));
    assert!(stderr(&j1).is_empty(), "--quiet: {}", stderr(&j1));
    let json = stdout(&j1);
    assert!(json.contains("\"runs\": 9"), "{json}");
    assert!(json.contains("\"metric\": \"p99_us\""), "{json}");
    assert!(json.contains("\"hash\": \"fnv1a64:"), "{json}");
}

#[test]
fn three_shards_merged_give_the_unsharded_table() {
    let d = dir("shards");
    write(&d, "short.toml", SHORT);
    let whole = mqsim(
        &d,
        &["sim", "short.toml", "--seeds", "5..15", "--quiet"],
        &[],
    );
    assert!(whole.status.success(), "{}", stderr(&whole));
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = format!("shard{i}.json");
        let o = mqsim(
            &d,
            &[
                "sim",
                "short.toml",
                "--seeds",
                "5..15",
                "--shard",
                &shard,
                "--out",
                &out,
                "--quiet",
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).starts_with(&format!("short.toml, seeds 5..15, shard {i}/3: ")));
    }
    let merged = mqsim(
        &d,
        &["sim", "merge", "shard2.json", "shard0.json", "shard1.json"],
        &[],
    );
    assert!(merged.status.success(), "{}", stderr(&merged));
    assert_eq!(stdout(&merged), stdout(&whole));
    let mj = mqsim(
        &d,
        &[
            "sim",
            "merge",
            "shard0.json",
            "shard1.json",
            "shard2.json",
            "--json",
        ],
        &[],
    );
    let wj = mqsim(
        &d,
        &["sim", "short.toml", "--seeds", "5..15", "--json", "--quiet"],
        &[],
    );
    assert_eq!(stdout(&mj), stdout(&wj));

    // A Kubernetes Indexed Job's pod: the index from JOB_COMPLETION_INDEX, the count from the
    // environment; the same file as --shard 1/3.
    let o = mqsim(
        &d,
        &[
            "sim",
            "short.toml",
            "--seeds",
            "5..15",
            "--out",
            "env1.json",
            "--quiet",
        ],
        &[("JOB_COMPLETION_INDEX", "1"), ("MQSIM_SHARD_COUNT", "3")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
    assert_eq!(read("env1.json"), read("shard1.json"));

    // Refusals, each saying which.
    let refused = |files: &[&str]| {
        let mut args = vec!["sim", "merge"];
        args.extend_from_slice(files);
        let o = mqsim(&d, &args, &[]);
        assert_eq!(o.status.code(), Some(2), "{files:?}: {}", stdout(&o));
        stderr(&o)
    };
    assert!(refused(&["shard0.json", "shard2.json"]).contains("missing shards: 1/3"));
    assert!(
        refused(&["shard0.json", "shard1.json", "env1.json", "shard2.json"])
            .contains("shard 1/3 is in both shard1.json and env1.json")
    );
    write(&d, "other.toml", &SHORT.replace("loss = 0.1", "loss = 0.2"));
    let o = mqsim(
        &d,
        &[
            "sim",
            "other.toml",
            "--seeds",
            "5..15",
            "--shard",
            "1/3",
            "--out",
            "other1.json",
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success());
    let e = refused(&["shard0.json", "other1.json", "shard2.json"]);
    assert!(
        e.contains("other1.json is of another scenario: other.toml"),
        "{e}"
    );
    let o = mqsim(
        &d,
        &[
            "sim",
            "short.toml",
            "--seeds",
            "5..16",
            "--shard",
            "1/3",
            "--out",
            "range1.json",
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success());
    let e = refused(&["shard0.json", "range1.json", "shard2.json"]);
    assert!(
        e.contains("range1.json swept seeds 5..16, shard0.json seeds 5..15"),
        "{e}"
    );
    let o = mqsim(
        &d,
        &[
            "sim",
            "short.toml",
            "--seeds",
            "5..15",
            "--shard",
            "1/3",
            "--broker-profile",
            "mosquitto-2.0",
            "--out",
            "mosq1.json",
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success());
    let e = refused(&["shard0.json", "mosq1.json", "shard2.json"]);
    assert!(
        e.contains(
            "mosq1.json ran with no --swarm, the file's duration, --broker-profile mosquitto-2.0"
        ),
        "{e}"
    );
    write(&d, "junk.json", "{\"not\": 1}");
    assert!(refused(&["shard0.json", "junk.json"]).contains("junk.json: not a shard file"));
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let d = dir("bad");
    write(&d, "short.toml", SHORT);
    write(
        &d,
        "broken.toml",
        &SHORT.replace("qos = 1\ninterval_ms", "qos = 7\ninterval_ms"),
    );
    let refused = |args: &[&str], env: &[(&str, &str)]| {
        let o = mqsim(&d, args, env);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        assert!(!d.join("out.json").exists(), "{args:?} ran");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        stderr(&o)
    };
    let e = refused(
        &[
            "sim",
            "broken.toml",
            "--seeds",
            "0..100000",
            "--out",
            "out.json",
        ],
        &[],
    );
    assert!(
        e.contains("broken.toml:12: qos = 7: QoS is 0, 1 or 2"),
        "{e}"
    );
    let e = refused(
        &[
            "sim",
            "short.toml",
            "--seeds",
            "0..100",
            "--shard",
            "3/2",
            "--out",
            "out.json",
        ],
        &[],
    );
    assert!(
        e.contains("shard 3/2: the index must be below the count"),
        "{e}"
    );
    let e = refused(
        &[
            "sim",
            "short.toml",
            "--seeds",
            "0..100",
            "--shard",
            "0/0",
            "--out",
            "out.json",
        ],
        &[],
    );
    assert!(e.contains("shard 0/0: the count must be at least 1"), "{e}");
    let e = refused(
        &["sim", "short.toml", "--seeds", "9..3", "--out", "out.json"],
        &[],
    );
    assert!(e.contains("empty range 9..3"), "{e}");
    let e = refused(
        &[
            "sim",
            "short.toml",
            "--seeds",
            "0..100",
            "--out",
            "out.json",
        ],
        &[("JOB_COMPLETION_INDEX", "4")],
    );
    assert!(
        e.contains("JOB_COMPLETION_INDEX=4 is set but not the shard count"),
        "{e}"
    );
    let e = refused(
        &[
            "sim",
            "short.toml",
            "--seeds",
            "0..100",
            "--shard-count",
            "4",
            "--out",
            "out.json",
        ],
        &[("JOB_COMPLETION_INDEX", "4")],
    );
    assert!(
        e.contains("shard 4/4: the index must be below the count"),
        "{e}"
    );
}

#[test]
fn a_failing_swarm_seed_replays_with_its_drawn_faults() {
    let d = dir("swarm");
    write(&d, "heal.toml", SHORT_HEAL);
    let sweep = mqsim(
        &d,
        &["sim", "heal.toml", "--seeds", "0..8", "--swarm", "--quiet"],
        &[],
    );
    assert_eq!(
        sweep.status.code(),
        Some(1),
        "a known-failing configuration: {}",
        stdout(&sweep)
    );
    let table = stdout(&sweep);
    // The first failing seed: its first problem, its swarm draw, its replay line.
    let lines: Vec<&str> = table.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("seed "))
        .expect("a failing seed");
    let (seed, problem) = lines[at]["seed ".len()..].split_once(": ").unwrap();
    let swarm = lines[at + 1]
        .strip_prefix("  swarm: ")
        .expect("its swarm draw");
    let replay = lines[at + 2]
        .strip_prefix("  replay: ")
        .expect("its replay line");
    assert_eq!(
        replay,
        format!("cargo run --release -- sim heal.toml --swarm --seed {seed}")
    );
    // Replayed alone: the same draw, the same first problem.
    let one = mqsim(&d, &["sim", "heal.toml", "--swarm", "--seed", seed], &[]);
    assert_eq!(one.status.code(), Some(1));
    assert!(
        stdout(&one).starts_with(&format!("# swarm: {swarm}\n")),
        "{}",
        stdout(&one)
    );
    let err = stderr(&one);
    assert!(err.contains(&format!("  {problem}\n")), "{problem}\n{err}");
    assert!(err.contains(&format!("replay: {replay}\n")), "{err}");
    // Without --swarm the same seed runs the file's own (fault-free) scenario, and passes.
    let plain = mqsim(&d, &["sim", "heal.toml", "--seed", seed, "--quiet"], &[]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    // Shrunk with its draw: the drawn faults are written into the file, which fails the same
    // way without --swarm.
    let o = mqsim(
        &d,
        &[
            "sim",
            "heal.toml",
            "--swarm",
            "--seed",
            seed,
            "--shrink",
            "--out",
            "small.toml",
        ],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let name = problem.split(" broken").next().unwrap();
    assert!(
        stdout(&o).contains(&format!("`{name}` still fails")),
        "{}",
        stdout(&o)
    );
    let text = std::fs::read_to_string(d.join("small.toml")).unwrap();
    assert!(
        text.contains(&format!(
            "# The seed's --swarm draw, written out below: {swarm}\n"
        )),
        "{text}"
    );
    let again = mqsim(&d, &["sim", "small.toml", "--quiet"], &[]);
    assert_eq!(again.status.code(), Some(1), "{text}");
    assert!(
        stderr(&again).contains(&format!("  {name} broken at ")),
        "{}",
        stderr(&again)
    );
}

#[test]
fn shrinking_a_planted_failure_keeps_it_and_cuts_the_rest() {
    let d = dir("shrink");
    write(&d, "planted.toml", PLANTED);
    let o = mqsim(&d, &["sim", "planted.toml", "--shrink"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let said = stdout(&o);
    assert!(
        said.starts_with("planted.toml seed 23: `invariant liveness` still fails after "),
        "{said}"
    );
    let small = d.join("planted.shrunk-seed23.toml");
    let text = std::fs::read_to_string(&small).unwrap();
    assert!(
        text.starts_with("# Shrunk by `mqsim sim --shrink` from planted.toml with seed 23"),
        "{text}"
    );
    assert!(
        text.contains(
            "# replay: cargo run --release -- sim planted.shrunk-seed23.toml --seed 23\n"
        ),
        "{text}"
    );
    let original = mqsim_sim::scenario::Scenario::parse(PLANTED, "planted.toml").unwrap();
    let shrunk = mqsim_sim::scenario::Scenario::parse(&text, "small.toml").unwrap();
    let size = |s: &mqsim_sim::scenario::Scenario| {
        s.devices.iter().map(|d| d.count as usize).sum::<usize>()
            + s.subscribers.len()
            + s.faults.len()
    };
    assert!(size(&shrunk) < size(&original), "{text}");
    assert!(shrunk.duration_ms <= original.duration_ms);
    assert_eq!(shrunk.seed, 23);
    // The shrunk file fails the same way on its own, with its own replay line.
    let again = mqsim(&d, &["sim", "planted.shrunk-seed23.toml", "--quiet"], &[]);
    assert_eq!(again.status.code(), Some(1));
    let err = stderr(&again);
    assert!(err.contains("  invariant liveness broken at "), "{err}");
    assert!(
        err.contains("replay: cargo run --release -- sim planted.shrunk-seed23.toml --seed 23"),
        "{err}"
    );
    // A seed that passes has nothing to shrink.
    write(&d, "short.toml", SHORT);
    let o = mqsim(&d, &["sim", "short.toml", "--shrink", "--seed", "1"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("does not fail: nothing to shrink"),
        "{}",
        stderr(&o)
    );
}

/// `--seeds A..B --timeline F.svg`: the sweep's distributions drawn, a row per figure of its
/// table, the same bytes for the same seeds.
#[test]
fn a_sweep_draws_its_distributions() {
    let d = dir("plot");
    write(&d, "short.toml", SHORT);
    let run = |name: &str| {
        let o = mqsim(
            &d,
            &["sim", "short.toml", "--seeds", "0..5", "--timeline", name],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        (stdout(&o), std::fs::read_to_string(d.join(name)).unwrap())
    };
    let (table, svg) = run("a.svg");
    let (_, again) = run("b.svg");
    assert_eq!(svg, again);
    assert!(svg.starts_with("<svg"), "{svg}");
    // Every row of the printed table is a row of the picture.
    for line in table.lines().filter(|l| l.starts_with("qos")) {
        let label = line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            svg.contains(&format!(">{label}")),
            "{label} not drawn:\n{svg}"
        );
    }
    assert!(svg.contains(">mqtt_packets</text>"), "{svg}");
}
