//! `--explain DEVICE:SEQ`: one message's life, from the run's own records.

use std::path::Path;

use mqsim_sim::run::{run, RunOptions};
use mqsim_sim::scenario::Scenario;

fn explain(file: &str, device: &str, seq: u64) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let scenario = Scenario::load(&path).expect("scenario");
    let opts = RunOptions {
        explain: Some((device.to_string(), seq)),
        ..RunOptions::default()
    };
    let out = run(&scenario, &opts).expect("run");
    out.explanation.expect("asked").expect("explained")
}

#[test]
fn a_message_dropped_under_the_queue_limit_is_told_with_the_brokers_notice() {
    let text = explain("persistent-subscriber-queue-limit.toml", "esp32", 40);
    assert!(text.contains("publish call 40"), "{text}");
    assert!(
        text.contains("Received PUBLISH from esp32 (d0, q1, r0, m40,"),
        "{text}"
    );
    assert!(
        text.contains("Sending PUBACK to esp32 (m40, rc0)"),
        "{text}"
    );
    assert!(
        text.contains("completed at the publisher (PUBACK)"),
        "{text}"
    );
    assert!(
        text.contains("never reached sub: dropped by the broker"),
        "{text}"
    );
    assert!(
        text.contains("Outgoing messages are being dropped for client sub."),
        "{text}"
    );
}

#[test]
fn a_delivered_message_shows_its_forwarding_and_receipt() {
    let text = explain("persistent-subscriber-queue-limit.toml", "esp32", 3);
    assert!(text.contains("Sending PUBLISH to sub ("), "{text}");
    assert!(text.contains("sub received a copy"), "{text}");
    assert!(text.contains("delivered to sub at"), "{text}");
}

/// A failure names the first violated message and prints its life under the replay line (the
/// ledger of a correct broker finds no violation to plant, so the outcome carries one here).
#[test]
fn a_failure_prints_the_first_violated_messages_life() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/qos1-clean.toml");
    let scenario = Scenario::load(&path).expect("scenario");
    let mut out = run(&scenario, &RunOptions::default()).expect("run");
    assert!(out.first_violation.is_none(), "a passing run has none");
    let life = explain("qos1-clean.toml", "esp32", 3);
    out.first_violation = Some(("esp32:3".to_string(), life.clone()));
    let text = out.failure_text(5);
    let replay = text.find("replay: ").expect("a replay line");
    let told = text
        .find("the first violated message, esp32:3 (its segments too: replay with --explain esp32:3):")
        .expect("the message named");
    assert!(told > replay, "under the replay line:\n{text}");
    assert!(text.ends_with(&life) || text.contains(&life), "{text}");
}
