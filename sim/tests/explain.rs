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
