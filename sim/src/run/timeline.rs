//! The run's timeline: the scenario's faults at their scheduled times (partitions, half-open
//! links, resets, WiFi drops, broker power cuts and restarts) and board inputs (`[[input]]`), then
//! the heal at `duration_s`.

use mqsim::app::Value;
use mqsim::time::Instant;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::{Controls, Shared, Source};
use crate::check::causes::AUTOSAVE_LINE;
use crate::check::BrokerMemory;
use crate::device_io::Control;
use crate::disk::Disk;
use crate::net::link::{Dir, LossModel, Side, TraceTime};
use crate::net::stream::{set_outside_now, Which};
use crate::scenario::{Direction, FaultKind, InputSchedule, Scenario};
use crate::seed::Stream;

/// The partition key of a broker power cut (scenario faults use their index).
const BROKER_DOWN_KEY: u32 = u32::MAX;

/// A fault or phase change at a point in simulated time.
#[derive(Debug, Clone)]
enum Action {
    /// Targets, on/off, the fault's key (its index in the scenario: overlapping faults end
    /// independently).
    Partition(Vec<u32>, bool, u32),
    HalfOpen(Vec<u32>, Dir, bool, u32),
    Reset(Vec<u32>),
    Wifi(Vec<u32>, bool),
    BrokerPowerCut,
    BrokerRestart {
        down: bool,
    },
    /// A board input of these devices takes a value.
    Input(Vec<u32>, String, Value),
    Heal,
}

/// What a fault does to the broker host: turmoil's crash and bounce, or the direct engine's.
pub(crate) trait BrokerPower {
    /// The host stops: its software and sockets are gone.
    fn crash(&mut self);
    /// The host starts again.
    fn bounce(&mut self);
    /// A clean stop begins (SIGTERM): the broker stops accepting and saves what it holds in
    /// memory before it goes, as mosquitto does after its main loop ends (src/mosquitto.c:588
    /// `persist__backup(true)`; the adapter's `Broker::save_now`). True when the stop is done
    /// already (the direct engine's, at once; or no broker running); otherwise
    /// [`BrokerPower::stopped`] says when.
    fn stop(&mut self) -> bool;
    /// The clean stop asked by [`BrokerPower::stop`] is done.
    fn stopped(&mut self) -> bool;
}

/// The scenario's actions in time order, and how far the run has got through them.
pub(crate) struct Timeline {
    actions: Vec<(u64, Action)>,
    next: usize,
    broker_down: bool,
    /// A clean stop asked of the broker and not yet done.
    stopping: bool,
}

/// The faults of `sc` as actions on the clients of `controls`, then the heal.
pub(crate) fn timeline(sc: &Scenario, controls: &Controls) -> Timeline {
    let all_tags: Vec<u32> = controls.by_tag.keys().copied().collect();
    let targets = |t: &Option<String>| -> Vec<u32> {
        match t {
            None => all_tags.clone(),
            Some(name) => controls.by_name.get(name).cloned().unwrap_or_default(),
        }
    };
    let mut actions: Vec<(u64, Action)> = Vec::new();
    for (k, f) in sc.faults.iter().enumerate() {
        let key = u32::try_from(k).unwrap_or(u32::MAX - 1);
        let end = f.at_ms + f.duration_ms;
        match f.kind {
            FaultKind::Partition => {
                actions.push((f.at_ms, Action::Partition(targets(&f.target), true, key)));
                actions.push((end, Action::Partition(targets(&f.target), false, key)));
            }
            FaultKind::HalfOpen(d) => {
                let dir = match d {
                    Direction::Up => Dir::Up,
                    Direction::Down => Dir::Down,
                };
                let (t, d) = (targets(&f.target), dir);
                actions.push((f.at_ms, Action::HalfOpen(t.clone(), d, true, key)));
                actions.push((end, Action::HalfOpen(t, d, false, key)));
            }
            FaultKind::Reset => actions.push((f.at_ms, Action::Reset(targets(&f.target)))),
            FaultKind::WifiDrop => {
                actions.push((f.at_ms, Action::Wifi(targets(&f.target), false)));
                actions.push((end, Action::Wifi(targets(&f.target), true)));
            }
            FaultKind::BrokerPowerCut => {
                actions.push((f.at_ms, Action::BrokerPowerCut));
                actions.push((end, Action::BrokerRestart { down: false }));
            }
            FaultKind::BrokerRestart => {
                actions.push((f.at_ms, Action::BrokerRestart { down: true }));
                actions.push((end, Action::BrokerRestart { down: false }));
            }
        }
    }
    for (k, input) in sc.inputs.iter().enumerate() {
        let tags = targets(&Some(input.target.clone()));
        match input.schedule {
            InputSchedule::At { at_ms, value } => {
                actions.push((at_ms, Action::Input(tags, input.name.clone(), value)));
            }
            InputSchedule::Toggle { min_ms, max_ms } => {
                // Each device its own draws, from its own stream of the run's seed.
                for tag in tags {
                    let seed = Stream::Input(k as u32, tag).seed(sc.seed);
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let (mut at, mut on) = (0u64, false);
                    loop {
                        at += min_ms + rng.next_u64() % (max_ms - min_ms + 1);
                        if at >= sc.duration_ms {
                            break;
                        }
                        on = !on;
                        let value = Value::Bool(on);
                        actions.push((at, Action::Input(vec![tag], input.name.clone(), value)));
                    }
                }
            }
        }
    }
    actions.push((sc.duration_ms, Action::Heal));
    actions.sort_by_key(|(at, _)| *at); // stable: file order within one instant
    Timeline {
        actions,
        next: 0,
        broker_down: false,
        stopping: false,
    }
}

impl Timeline {
    /// When the next action is due.
    pub(crate) fn next_at_ms(&self) -> Option<u64> {
        self.actions.get(self.next).map(|(at, _)| *at)
    }

    /// Applies every action due at `now_ms` or before, each at its own scheduled time.
    pub(crate) fn apply_due(
        &mut self,
        now_ms: u64,
        sim: &mut dyn BrokerPower,
        shared: &Shared,
        controls: &Controls,
        disk: Option<&Disk>,
        memory: BrokerMemory,
    ) {
        if self.stopping && sim.stopped() {
            set_outside_now(Instant::from_millis(now_ms));
            down_after_stop(sim, shared, disk);
            self.stopping = false;
            self.broker_down = true;
        }
        while let Some((at, action)) = self.actions.get(self.next) {
            if *at > now_ms {
                break;
            }
            let us = Instant::from_millis(*at).as_micros();
            // Outside every host: the links stamp what this causes with its scheduled time.
            set_outside_now(Instant::from_millis(*at));
            match action {
                Action::Partition(tags, on, key) => {
                    for &t in tags {
                        shared.net.partition_by(Which::Tag(t), *key, *on);
                    }
                }
                Action::HalfOpen(tags, dir, on, key) => {
                    for &t in tags {
                        shared.net.half_open_by(Which::Tag(t), *dir, *key, *on);
                    }
                }
                Action::Reset(tags) => {
                    for &t in tags {
                        shared.net.reset(Which::Tag(t));
                    }
                }
                Action::Wifi(tags, up) => {
                    for &t in tags {
                        if !up {
                            // The radio is gone: nothing more leaves or reaches the client.
                            shared.net.power_cut(Which::Tag(t), Side::Client);
                        }
                        if let Some(c) = controls.by_tag.get(&t) {
                            let _ = c.send(if *up {
                                Control::WifiUp
                            } else {
                                Control::WifiDown
                            });
                        }
                    }
                }
                Action::BrokerPowerCut => {
                    // A power cut in the middle of a clean stop cuts it short.
                    self.stopping = false;
                    // No FIN, no RST: the broker's sockets fall silent, and SYNs go unanswered
                    // until it is back.
                    shared.net.power_cut(Which::All, Side::Server);
                    shared.net.partition_by(Which::All, BROKER_DOWN_KEY, true);
                    sim.crash();
                    if let Some(d) = disk {
                        let lost = d.power_cut();
                        let line = format!(
                        "{} disk power cut: {lost} journal bytes written and not yet synced are lost",
                        TraceTime(Instant::from_micros(us))
                    );
                        shared
                            .lines
                            .push(Instant::from_micros(us), Source::Net, line);
                    }
                    self.broker_down = true;
                }
                Action::BrokerRestart { down: true } => {
                    // A clean stop: the broker saves first (it closes its listener and, under
                    // turmoil, its connections itself), then the host goes down.
                    if sim.stop() {
                        down_after_stop(sim, shared, disk);
                        self.broker_down = true;
                    } else {
                        self.stopping = true;
                    }
                }
                Action::BrokerRestart { down: false } => {
                    if self.stopping {
                        // Back up before its stop was done: the stop ends now.
                        down_after_stop(sim, shared, disk);
                        self.stopping = false;
                        self.broker_down = true;
                    }
                    if self.broker_down {
                        // A host that lost power answers its old connections' next segments
                        // with RST (a clean stop had closed them already).
                        shared.net.reboot(Which::All, Side::Server);
                        shared.net.partition_by(Which::All, BROKER_DOWN_KEY, false);
                        sim.bounce();
                        self.broker_down = false;
                        let mut ledger = shared.ledger.borrow_mut();
                        // The ledger learns of the broker's last save before it counts what
                        // the restart took (the run's other lines reach it at the end).
                        if let Some(saved) = last_save(shared, us) {
                            ledger.broker_said(saved, AUTOSAVE_LINE);
                        }
                        ledger.broker_restarted(us, memory);
                    }
                }
                Action::Input(tags, name, value) => {
                    for t in tags {
                        if let Some(c) = controls.by_tag.get(t) {
                            let _ = c.send(Control::Input {
                                name: name.clone(),
                                value: *value,
                            });
                        }
                    }
                }
                Action::Heal => {
                    shared.healed.set(true);
                    shared.net.clear_faults(Which::All);
                    shared.net.set_loss(Which::All, LossModel::None);
                    for c in controls.by_tag.values() {
                        let _ = c.send(Control::WifiUp);
                        let _ = c.send(Control::Quiet);
                    }
                    shared.ledger.borrow_mut().heal(us);
                }
            }
            self.next += 1;
        }
    }
}

/// The end of a clean stop: every socket the broker still holds closed with FIN (in connection
/// order, not in the order the runtime happens to drop them), then the host is down (connecting
/// meanwhile is refused) and the OS writes its page cache back.
fn down_after_stop(sim: &mut dyn BrokerPower, shared: &Shared, disk: Option<&Disk>) {
    shared.net.close(Which::All, Side::Server);
    sim.crash();
    if let Some(d) = disk {
        d.flush();
    }
}

/// When the broker last said it saved its in-memory database ([`AUTOSAVE_LINE`]: an autosave,
/// or the save of a clean stop), at or before `us`.
fn last_save(shared: &Shared, us: u64) -> Option<u64> {
    let mut last = None;
    shared.lines.each_broker_line(|at, text| {
        let text = text.split_once(": ").map_or(text, |(_, t)| t);
        if text == AUTOSAVE_LINE && at.as_micros() <= us {
            last = Some(at.as_micros());
        }
    });
    last
}
