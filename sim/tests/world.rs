//! The simulator as a library: a test's own application in a scenario, inputs from the world,
//! the records, a failure's replay line, and the same application in every engine it meets.

use mqsim::app::{App, Ctx, Event, Value};
use mqsim::QoS;
use mqsim_sim::run::Engine;
use mqsim_sim::world::World;

/// A button that publishes each press at QoS 1 on `button/<id>`, numbered, and remembers presses
/// it could not publish while offline, to send them in order on reconnect (unless `forgetful`).
struct Button {
    presses: u32,
    pending: Vec<String>,
    forgetful: bool,
}

impl Button {
    fn new(forgetful: bool) -> Button {
        Button {
            presses: 0,
            pending: Vec::new(),
            forgetful,
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, payload: String) {
        let topic = format!("button/{}", ctx.client_id());
        if ctx
            .publish(&topic, payload.as_bytes(), QoS::AtLeastOnce, false)
            .is_err()
        {
            self.pending.push(payload);
        }
    }
}

impl App for Button {
    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        match event {
            Event::Input {
                value: Value::Bool(true),
                ..
            } => {
                self.presses += 1;
                tracing::info!(presses = self.presses, "pressed");
                tracing::debug!("a debug line");
                ctx.println(&format!("press {}", self.presses));
                let payload = format!("press {}", self.presses);
                self.send(ctx, payload);
            }
            Event::Connected { .. } if !self.forgetful => {
                for p in std::mem::take(&mut self.pending) {
                    self.send(ctx, p);
                }
            }
            _ => {}
        }
    }
}

const SCENARIO: &str = r#"
description = "a button on a PubSubClient board, pressed while the WiFi is down"
duration_s = 60
heal_s = 30

[[device]]
name = "button"
profile = "pubsubclient"
app = "button"

[[subscriber]]
name = "backend"
filter = "button/#"
qos = 1

[[fault]]
at_s = 20
duration_s = 15
kind = "wifi-drop"
target = "button"

[[input]]
target = "button"
name = "button"
at_s = 10
value = true

[[input]]
target = "button"
name = "button"
at_s = 25
value = true

[[input]]
target = "button"
name = "button"
at_s = 45
value = true
"#;

fn world(forgetful: bool) -> World {
    World::from_toml("button.toml", SCENARIO)
        .unwrap()
        .app("button", move |_| Button::new(forgetful))
}

#[test]
fn an_application_of_the_test_runs_with_inputs_from_the_scenario() {
    let out = world(false).check(1).unwrap();
    // The three presses, on the serial port at their times (the second one offline).
    let serial: Vec<&str> = out
        .lines
        .iter()
        .filter(|l| l.text.contains("-> press"))
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(serial.len(), 3, "{serial:?}");
    // PubSubClient refuses QoS 1 (it publishes QoS 0 only): every call is refused, and the
    // records say so; the application saw the refusals and kept the presses.
    let publishes = &out.records.publishes;
    assert!(!publishes.is_empty());
    assert!(publishes.iter().all(|p| p.qos == 1 && !p.accepted));
    assert!(out.records.device_receipts.is_empty());
}

const ESP_SCENARIO_DEVICE: &str = "profile = \"pubsubclient\"";

#[test]
fn the_records_show_what_was_delivered_when_and_to_whom() {
    records_show_what_was_delivered(Engine::Turmoil);
}

#[test]
fn the_same_application_on_the_direct_engine() {
    records_show_what_was_delivered(Engine::Direct);
    let out = world(false).engine(Engine::Direct).check(1).unwrap();
    let serial = out.lines.iter().filter(|l| l.text.contains("-> press"));
    assert_eq!(serial.count(), 3);
    assert!(out.records.publishes.iter().all(|p| !p.accepted));
}

fn records_show_what_was_delivered(engine: Engine) {
    let text = SCENARIO.replace(ESP_SCENARIO_DEVICE, "profile = \"esp-mqtt\"");
    let w = World::from_toml("button-esp.toml", &text)
        .unwrap()
        .app("button", |_| Button::new(false))
        .engine(engine);
    let out = w.check(1).unwrap();
    let p = &out.records.publishes;
    assert_eq!(p.len(), 3, "{p:?}");
    for (i, r) in p.iter().enumerate() {
        assert_eq!(r.topic, "button/button");
        assert!(r.accepted, "{r:?}");
        let d = r.delivered_to("backend").expect("delivered");
        assert_eq!(d.duplicates, 0);
        // Pressed at 10, 25 (WiFi down until 35: queued in esp-mqtt's outbox) and 45 s.
        let pressed_s = [10, 25, 45][i];
        assert_eq!(r.called_at / 1_000_000, pressed_s);
        assert!(d.first_at > r.called_at);
    }
    // The offline press waited for the WiFi (back at 35 s, then the reconnect).
    assert!(p[1].delivered_to("backend").unwrap().first_at > 35_000_000);
    assert!(p[0].delivered_to("backend").unwrap().first_at < 11_000_000);
}

#[test]
fn a_forgetful_application_fails_and_the_failure_names_its_replay() {
    // With QoS 0 on PubSubClient the press made offline is refused: the good button keeps it and
    // sends it on reconnect; the forgetful one never does, and an expectation of the scenario
    // (every press delivered) catches it.
    let text = SCENARIO.replace("[[fault]]", "[expect]\ndelivered = [3, 3]\n\n[[fault]]");
    let zero = |forgetful| {
        World::from_toml("button-qos0.toml", &text)
            .unwrap()
            .app("button", move |_| QosZero(Button::new(forgetful)))
    };
    zero(false).check_seeds(1..4).unwrap();
    let failure = zero(true).check(1).unwrap_err();
    assert!(
        failure.text.contains("delivered = 2, expected [3, 3]"),
        "{failure}"
    );
    assert!(
        failure.text.contains("replay: MQSIM_SEED=1 cargo test"),
        "{failure}"
    );
    assert!(
        failure
            .text
            .contains("a_forgetful_application_fails_and_the_failure_names_its_replay"),
        "{failure}"
    );
}

#[test]
fn a_forgetful_application_fails_on_the_turmoil_engine_too() {
    let text = SCENARIO.replace("[[fault]]", "[expect]\ndelivered = [3, 3]\n\n[[fault]]");
    let zero = |forgetful| {
        World::from_toml("button-qos0.toml", &text)
            .unwrap()
            .app("button", move |_| QosZero(Button::new(forgetful)))
            .engine(Engine::Turmoil)
    };
    zero(false).check_seeds(1..4).unwrap();
    let failure = zero(true).check(1).unwrap_err();
    assert!(
        failure.text.contains("delivered = 2, expected [3, 3]"),
        "{failure}"
    );
    assert!(
        failure
            .text
            .contains("replay: MQSIM_ENGINE=turmoil MQSIM_SEED=1 cargo test"),
        "{failure}"
    );
}

/// The button publishing at QoS 0, what PubSubClient can do.
struct QosZero(Button);

impl App for QosZero {
    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        let b = &mut self.0;
        let send = |ctx: &mut Ctx<'_>, b: &mut Button, payload: String| {
            let topic = format!("button/{}", ctx.client_id());
            if ctx
                .publish(&topic, payload.as_bytes(), QoS::AtMostOnce, false)
                .is_err()
            {
                b.pending.push(payload);
            }
        };
        match event {
            Event::Input {
                value: Value::Bool(true),
                ..
            } => {
                b.presses += 1;
                let payload = format!("press {}", b.presses);
                send(ctx, b, payload);
            }
            Event::Connected { .. } if !b.forgetful => {
                for p in std::mem::take(&mut b.pending) {
                    send(ctx, b, p);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn a_scenario_naming_an_application_the_world_lacks_is_refused() {
    let w = World::from_toml("button.toml", SCENARIO).unwrap();
    let e = w.run(1).unwrap_err();
    assert!(
        e.contains("runs app `button`, which this run was not given"),
        "{e}"
    );
}

#[test]
fn the_reference_sketch_keys_are_refused_beside_an_app() {
    let text = SCENARIO.replace("app = \"button\"", "app = \"button\"\nqos = 1");
    let e = World::from_toml("button.toml", &text).unwrap_err();
    assert!(
        e.contains("button.toml:10: qos is a setting of the reference sketch"),
        "{e}"
    );
}

#[test]
fn same_seed_same_bytes_with_an_application() {
    let w = world(false);
    let (a, b) = (w.run(3).unwrap(), w.run(3).unwrap());
    assert_eq!(a.trace(), b.trace());
    assert_eq!(a.records, b.records);
}

#[test]
fn application_logs_land_in_the_trace_under_the_device_name() {
    let out = world(false).check(1).unwrap();
    let logs: Vec<String> = out
        .lines
        .iter()
        .filter(|l| l.text.contains("pressed"))
        .map(|l| l.render())
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert_eq!(
        logs[0],
        "   10.000 button         | INFO world: pressed presses=1"
    );
    // Debug is below the default directive; a directive lets it through, or silences all.
    assert!(!out.trace().contains("a debug line"));
    let debug = world(false).log("world=debug").check(1).unwrap();
    assert_eq!(debug.trace().matches("a debug line").count(), 3);
    let off = world(false).log("off").check(1).unwrap();
    assert!(!off.trace().contains("pressed"));
}

#[test]
fn a_world_built_in_code_is_the_same_as_its_file() {
    use mqsim_sim::world::build::{Builder, Devices, Fault, Input, Subscriber};
    let built = Builder::new("a button on a PubSubClient board, pressed while the WiFi is down")
        .duration_s(60)
        .heal_s(30)
        .devices(Devices::app("button", "button").profile("pubsubclient"))
        .subscriber(Subscriber::new("backend", "button/#").qos(1))
        .fault(
            Fault::wifi_drop()
                .at_s(20.0)
                .duration_s(15.0)
                .target("button"),
        )
        .input(Input::at("button", "button", 10.0, Value::Bool(true)))
        .input(Input::at("button", "button", 25.0, Value::Bool(true)))
        .input(Input::at("button", "button", 45.0, Value::Bool(true)));
    let from_code = built.world().unwrap().app("button", |_| Button::new(false));
    let a = from_code.check(1).unwrap();
    let b = world(false).check(1).unwrap();
    assert_eq!(a.records, b.records);
    assert_eq!(a.lines, b.lines);
    // Bad values are refused as in a file, at the generated text's line.
    let bad = Builder::new("bad")
        .duration_s(10)
        .devices(Devices::sketch("d", 7).profile("esp-mqtt"));
    let e = bad.world().unwrap_err();
    assert!(
        e.contains("bad (built in code):6: qos"),
        "{e}\n{}",
        bad.toml()
    );
}
