//! What the door alarm's tests share: the worlds, the ops console, and the application-level
//! checks, read from the ledger's records and the devices' serial lines (never from inside the
//! broker).

#![allow(dead_code)] // each test file uses its part

use std::collections::BTreeMap;

use door_alarm::{parse_alarm, DoorAlarm};
use mqsim::app::{App, Ctx, Event};
use mqsim::time::Instant;
use mqsim::QoS;
use mqsim_sim::run::{RunOutcome, Source};
use mqsim_sim::world::World;

/// The subscriber that must get every alarm.
pub const BACKEND: &str = "backend";

/// The world of `tests/scenarios/FILE` with `door` running `make` and the ops console.
pub fn world(file: &str, make: fn() -> DoorAlarm) -> World {
    World::from_file(format!("tests/scenarios/{file}"))
        .unwrap()
        .app("door-alarm", move |_| make())
        .app("ops", |_| Ops::default())
}

/// The ops console, a backend application: at 30 s it sends the first door a configuration
/// command twice with the same id (a retried command), at 90 s a second one.
#[derive(Default)]
pub struct Ops {
    started: bool,
}

/// The door the console configures (the single one, or the fleet's first).
fn target(ctx: &Ctx<'_>) -> &'static str {
    let _ = ctx;
    "door"
}

impl App for Ops {
    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        match event {
            Event::Connected { .. } if !self.started => {
                self.started = true;
                ctx.set_timer(1, Instant::from_millis(30_000));
                ctx.set_timer(2, Instant::from_millis(90_000));
            }
            Event::Timer(1) => {
                for _ in 0..2 {
                    for door in ["door", "door-0"] {
                        let topic = format!("cmd/{door}/heartbeat_s");
                        let _ = ctx.publish(&topic, b"1 10", QoS::AtLeastOnce, false);
                    }
                }
                let _ = target(ctx);
            }
            Event::Timer(2) => {
                for door in ["door", "door-0"] {
                    let topic = format!("cmd/{door}/heartbeat_s");
                    let _ = ctx.publish(&topic, b"2 20", QoS::AtLeastOnce, false);
                }
            }
            _ => {}
        }
    }
}

/// Every alarm each door raised reached the backend, in the order raised. An alarm is known
/// by its number in its payload (`open 4`): a door's alarms are numbered from 1, so a number
/// never published at all (forgotten by the application) is a gap.
pub fn every_alarm_delivered_in_order(o: &RunOutcome) -> Result<(), String> {
    // device -> alarm number -> (first publish call, first receipt at the backend)
    let mut alarms: BTreeMap<&str, BTreeMap<u32, (u64, Option<u64>)>> = BTreeMap::new();
    for p in &o.records.publishes {
        if !p.topic.starts_with("alarm/") {
            continue;
        }
        let Some(alarm) = parse_alarm(&p.payload) else {
            return Err(format!("{}: payload {:?} is no alarm", p.device, p.payload));
        };
        let got = p.delivered_to(BACKEND).map(|d| d.first_at);
        let e = alarms
            .entry(&p.device)
            .or_default()
            .entry(alarm.seq)
            .or_insert((p.called_at, None));
        e.0 = e.0.min(p.called_at);
        e.1 = match (e.1, got) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    for (device, by_seq) in &alarms {
        let last = by_seq.keys().max().copied().unwrap_or(0);
        let mut previous: Option<(u32, u64)> = None;
        for seq in 1..=last {
            let Some(&(called, got)) = by_seq.get(&seq) else {
                return Err(format!(
                    "{device}: alarm {seq} was never published (alarms up to {last} were)"
                ));
            };
            let Some(got) = got else {
                return Err(format!(
                    "{device}: alarm {seq} (published at {:.3} s) never reached {BACKEND}",
                    called as f64 / 1e6
                ));
            };
            if let Some((p, at)) = previous {
                if got < at {
                    return Err(format!(
                        "{device}: alarm {seq} reached {BACKEND} at {:.3} s, before alarm {p} ({:.3} s)",
                        got as f64 / 1e6,
                        at as f64 / 1e6
                    ));
                }
            }
            previous = Some((seq, got));
        }
    }
    if alarms.is_empty() {
        return Err("no alarm at all: the door never changed?".into());
    }
    Ok(())
}

/// The console's command 1 reached `device` and was applied exactly once (its repeat ignored),
/// as the serial port says.
pub fn command_applied_once(o: &RunOutcome, device: &str) -> Result<(), String> {
    let serial = |text: &str| {
        o.lines
            .iter()
            .filter(|l| l.source == Source::Device(device.to_string()) && l.text.ends_with(text))
            .count()
    };
    let received = o
        .records
        .device_receipts
        .iter()
        .filter(|r| r.device == device && r.topic.ends_with("/heartbeat_s") && r.payload == b"1 10")
        .count();
    let applied = serial("Command 1: heartbeat every 10 s");
    if received >= 1 && applied != 1 {
        return Err(format!(
            "{device}: command 1 received {received} times, applied {applied} times"
        ));
    }
    if received >= 2 && serial("Command 1 ignored (repeated)") == 0 {
        return Err(format!("{device}: command 1's repeat was not recognised"));
    }
    Ok(())
}

/// The checks of every scenario: alarms, then the first door's commands.
pub fn door_checks(o: &RunOutcome) -> Result<(), String> {
    every_alarm_delivered_in_order(o)?;
    let first = if o
        .scenario
        .devices
        .iter()
        .any(|d| d.name == "door" && d.count > 1)
    {
        "door-0"
    } else {
        "door"
    };
    command_applied_once(o, first)
}
