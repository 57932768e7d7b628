//! One scenario against both broker profiles (`--broker-profile` over the file's): what
//! mosquitto 2.0's defaults lose at a power cut with persistence on, and this broker does not.

use std::path::Path;

use mqsim::broker::Profile;
use mqsim_sim::run::{run, Engine, RunOptions};
use mqsim_sim::scenario::Scenario;

#[test]
fn the_same_power_cut_loses_nothing_here_and_what_mosquitto_had_not_autosaved() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/broker-power-cut-persistence.toml");
    let scenario = Scenario::load(&path).unwrap();
    assert_eq!(scenario.broker.profile, Profile::Mqsim);
    let ours = run(&scenario, &RunOptions::default()).unwrap();
    let theirs = run(
        &scenario,
        &RunOptions {
            broker_profile: Some(Profile::Mosquitto20),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let (a, b) = (&ours.report.summary.all, &theirs.report.summary.all);
    assert!(ours.report.violations.is_empty() && theirs.report.violations.is_empty());
    assert_eq!((a.lost, a.lost_with_broker), (0, 0));
    // The ~20 s queued for the away subscriber, acknowledged to the devices, went with the
    // broker's memory: nothing had been saved yet (the first autosave is at 1,801 s).
    assert_eq!(b.lost, 0);
    assert!(b.lost_with_broker > 100, "{}", theirs.report.render());
    assert_eq!(b.causes.broker_unsaved, b.lost_with_broker);
    assert_eq!(a.published, b.published, "the same devices and faults");
    let text = theirs.report.render();
    assert!(text.contains("broker profile mosquitto-2.0"));
    assert!(!ours.report.render().contains("broker profile"));
    assert!(theirs
        .report
        .facts
        .replay_command()
        .ends_with("--broker-profile mosquitto-2.0"));
}

/// `mqsim sim FILE --broker-profile NAME`: the flag reaches the run and its replay line; an
/// unknown name is refused with the names there are.
#[test]
fn the_command_line_flag_selects_the_profile() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/qos1-clean.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["sim", "--quiet", "--broker-profile", "mosquitto-2.0"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("broker profile mosquitto-2.0"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["sim", "--broker-profile", "mosquitto"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("one of: mqsim, mosquitto-2.0"), "{err}");
}

/// mosquitto saves its in-memory database at a clean stop (src/mosquitto.c:588
/// `persist__backup(true)` after the main loop ends on SIGTERM): the same set-up as the power
/// cut, with a clean restart at the same instant, loses nothing that was acknowledged, on both
/// engines, and the broker says it saved after it said it was terminating. The power cut still
/// loses what came after the last autosave (none before 1,801 s: everything queued).
#[test]
fn a_clean_restart_saves_first_and_a_power_cut_still_loses_what_was_not_autosaved() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let clean = Scenario::load(dir.join("broker-restart-clean-mosquitto.toml")).unwrap();
    let cut = Scenario::load(dir.join("broker-power-cut-persistence-mosquitto.toml")).unwrap();
    assert_eq!(clean.broker.profile, Profile::Mosquitto20);
    assert_eq!(
        clean.faults[1].at_ms, cut.faults[1].at_ms,
        "the same instant"
    );
    for engine in [Engine::Direct, Engine::Turmoil] {
        let opts = RunOptions {
            engine,
            ..RunOptions::default()
        };
        let c = run(&clean, &opts).unwrap();
        let p = run(&cut, &opts).unwrap();
        let (a, b) = (&c.report.summary.all, &p.report.summary.all);
        assert!(c.report.violations.is_empty() && p.report.violations.is_empty());
        assert_eq!(
            (a.lost, a.lost_with_broker),
            (0, 0),
            "{}",
            c.report.render()
        );
        assert_eq!(a.delivered, a.published, "{}", c.report.render());
        assert!(b.lost_with_broker > 100, "{}", p.report.render());
        assert_eq!(b.causes.broker_unsaved, b.lost_with_broker);
        let trace = c.trace();
        let stop = trace.find("terminating").expect("a clean stop");
        let saved = trace[stop..]
            .find("Saving in-memory database.")
            .expect("saved at the stop");
        let back = trace[stop..].find("starting").expect("started again");
        assert!(saved < back, "saved before the host went down");
        assert!(
            trace[stop..].contains("persistent sessions"),
            "restored from the save"
        );
        // The power cut saves nothing and says nothing of it.
        assert!(!p.trace().contains("Saving in-memory database."));
    }
}
