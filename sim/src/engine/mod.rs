//! The direct engine (`--engine direct`): the scenario's broker, devices and subscribers as
//! sans-IO state machines ([`mqsim::broker::Broker`], [`mqsim::device::Device`] through its
//! [`Glue`](mqsim::device::glue::Glue), [`mqsim::client::Client`]) driven through the core's
//! driver contract, the bytes moved by the link model ([`crate::net::stream::Net`], the same
//! registry the turmoil engine wraps), the journal on the modelled [`Disk`], and one event queue
//! keyed by (time, order) that jumps virtual time to the next timer or delivery. No tokio
//! runtime, no turmoil, no threads: a run is a loop on the caller's thread.
//!
//! Each instant: the timeline's actions due (faults, inputs, the heal: the turmoil engine's
//! timeline, `sim/src/run/timeline.rs`), then every entity whose timer came or whose connection changed is processed,
//! in a fixed order (broker, devices, subscribers), until nothing changes; then the ledger reads
//! the bytes delivered, and time jumps to the earliest next event. The links process their
//! events at their exact instants; the applications run at the scenario's tick boundaries
//! (`tick_ms`), as under turmoil, where a timer or a delivery reaches a task at the next tick:
//! the engine skips the idle ticks, not the rounding. What differs from the
//! turmoil engine, and why: docs/simulator.md, "Engines".

mod broker;
mod device;
mod subscriber;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::rc::Rc;

use mqsim::device::Device;
use mqsim::time::{Duration, Instant};

use crate::check::SubscriberId;
use crate::disk::Disk;
use crate::net::stream::{set_outside_now, Net, OwnClock};
use crate::run::devices::FieldDevice;
use crate::run::output::{self, RunOutcome};
use crate::run::timeline::{self, BrokerPower, Timeline};
use crate::run::wire::WireCheck;
use crate::run::{
    as_run, broker_config, broker_host, finish, log, Controls, RunOptions, Shared, BROKER_PORT,
};
use crate::scenario::Scenario;
use crate::seed::Stream;
use broker::DirectBroker;
use device::{DirectDevice, OpenState, Opener};
use subscriber::DirectSubscriber;

/// What the event queue wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ent {
    Broker,
    Device(usize),
    Subscriber(usize),
    Conn(usize),
}

/// The event queue: entities by the time they want to be woken, ties in the order asked.
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64, Ent)>>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: Instant, e: Ent) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, e)));
    }
    fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }
    fn pop_due(&mut self, now: Instant) -> Option<Ent> {
        if self.peek()? <= now {
            self.heap.pop().map(|Reverse((_, _, e))| e)
        } else {
            None
        }
    }
}

/// The broker host as the timeline's faults see it.
struct Power<'a> {
    broker: &'a mut DirectBroker,
    opener: &'a Opener,
}

impl BrokerPower for Power<'_> {
    fn crash(&mut self) {
        self.broker.crash();
        self.opener.borrow_mut().broker_listening = false;
    }
    fn bounce(&mut self) {
        if self.broker.start().is_ok() {
            self.opener.borrow_mut().broker_listening = true;
        }
    }
    fn stop(&mut self) -> bool {
        self.opener.borrow_mut().broker_listening = false;
        self.broker.stop();
        true
    }
    fn stopped(&mut self) -> bool {
        true
    }
}

/// Everything one run holds.
struct World {
    net: Net,
    opener: Opener,
    broker: DirectBroker,
    devices: Vec<DirectDevice>,
    subs: Vec<DirectSubscriber>,
    queue: Queue,
    /// The wake-up last queued for each entity (a later one supersedes it).
    queued: std::collections::BTreeMap<Ent, Instant>,
    /// Device or subscriber index by tag.
    by_tag: std::collections::BTreeMap<u32, Ent>,
    dirty: BTreeSet<Ent>,
    broker_touched: BTreeSet<usize>,
    touched: Vec<usize>,
    resched: BTreeSet<usize>,
    seen_conns: usize,
    /// The scenario's tick: the applications' time resolution.
    tick: Duration,
}

impl World {
    /// The first tick boundary at or after `t`.
    fn tick_at(&self, t: Instant) -> Instant {
        let tick = self.tick.as_micros().max(1);
        Instant::from_micros(t.as_micros().div_ceil(tick) * tick)
    }

    /// An application (broker, device, subscriber) runs at tick boundaries, as under turmoil:
    /// `at` rounded up to one, and later than `now` (a wake-up due already that changed nothing
    /// is taken again a tick later, as turmoil's would be).
    fn app_time(&self, e: Ent, at: Instant, now: Instant) -> Instant {
        if matches!(e, Ent::Conn(_)) {
            return at.max(now);
        }
        let at = self.tick_at(at);
        if at <= now {
            self.tick_at(now + self.tick)
        } else {
            at
        }
    }

    /// Queues `e`'s own wake-up at `at` (replacing the one queued).
    fn schedule(&mut self, e: Ent, at: Option<Instant>, now: Instant) {
        let Some(at) = at else {
            self.queued.remove(&e);
            return;
        };
        let at = self.app_time(e, at, now);
        if self.queued.get(&e) != Some(&at) {
            self.queued.insert(e, at);
            self.queue.push(at, e);
        }
    }

    /// `e` has something to look at: now on a tick boundary, else at the next one (unless it is
    /// woken earlier anyway).
    fn wake(&mut self, e: Ent, now: Instant) {
        if self.tick_at(now) == now {
            self.dirty.insert(e);
            return;
        }
        let at = self.tick_at(now);
        if self.queued.get(&e).is_some_and(|t| *t <= at) {
            return;
        }
        self.queued.insert(e, at);
        self.queue.push(at, e);
    }

    /// Processes every dirty entity, and those their actions touch, until nothing changes.
    fn settle(&mut self, now: Instant) {
        loop {
            self.take_new_conns(now);
            self.touched.clear();
            self.net.take_touched(&mut self.touched);
            for k in 0..self.touched.len() {
                let i = self.touched[k];
                self.resched.insert(i);
                let tag = self.opener.borrow().owners.get(i).copied();
                if let Some(&e) = tag.and_then(|t| self.by_tag.get(&t)) {
                    self.wake(e, now);
                }
                if self.broker.watches(i) {
                    self.broker_touched.insert(i);
                    self.wake(Ent::Broker, now);
                }
            }
            let Some(e) = self.dirty.pop_first() else {
                break;
            };
            match e {
                Ent::Broker => {
                    let touched = std::mem::take(&mut self.broker_touched);
                    self.broker.process(&touched);
                    let w = self.broker.wake_at();
                    self.schedule(Ent::Broker, w, now);
                }
                Ent::Device(d) => {
                    if let Some(dev) = self.devices.get_mut(d) {
                        dev.process();
                        let w = dev.wake_at();
                        self.schedule(e, w, now);
                    }
                }
                Ent::Subscriber(s) => {
                    if let Some(sub) = self.subs.get_mut(s) {
                        sub.process();
                        let w = sub.wake_at();
                        self.schedule(e, w, now);
                    }
                }
                Ent::Conn(i) => self.net.drive(i),
            }
        }
        for i in std::mem::take(&mut self.resched) {
            let t = self.net.timeout_of(i);
            self.schedule(Ent::Conn(i), t, now);
        }
    }

    /// Connections opened since the last look: the broker may accept them.
    fn take_new_conns(&mut self, now: Instant) {
        let n = self.net.conn_count();
        for i in self.seen_conns..n {
            self.broker.opened(i);
            self.broker_touched.insert(i);
            self.wake(Ent::Broker, now);
            self.resched.insert(i);
        }
        self.seen_conns = n;
    }
}

/// Runs `scenario` once on the direct engine.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome, String> {
    let started = std::time::Instant::now();
    let sc = as_run(scenario, opts);
    if let Some(d) = sc.devices.iter().find(|d| d.sketch.is_some()) {
        return Err(format!(
            "{}: device `{}` runs an Arduino sketch, which runs as its own process under the \
             turmoil engine only (crate::run::run sends such a scenario there)",
            sc.file, d.name
        ));
    }
    let end = Instant::from_millis(sc.duration_ms + sc.heal_ms);
    let _clock = OwnClock::take();
    set_outside_now(Instant::ZERO);
    let shared = Shared::new(&sc);
    shared.net.enable_taps();
    shared.net.track_touched();
    let _capture = log::capture(shared.lines.clone(), log::targets(opts.log.as_deref())?);
    let mut wire = WireCheck::default();
    let mut kept_taps = Vec::new();

    let bcfg = broker_config(&sc)?;
    let memory = crate::run::broker_memory(&bcfg);
    let disk = sc
        .broker
        .persistence
        .then(|| Disk::new(Stream::Disk.seed(sc.seed), sc.broker.disk_sync_ms));
    let mut broker = DirectBroker::new(
        broker_host::settings(bcfg, BROKER_PORT),
        broker_host::broker_log(shared.lines.clone()),
        shared.net.clone(),
        disk.clone(),
        BROKER_PORT,
    );
    let opener: Opener = Rc::new(RefCell::new(OpenState::new(shared.net.clone())));
    opener.borrow_mut().broker_listening = broker.start().is_ok();

    let mut controls = Controls::default();
    let built = crate::run::devices::build(&sc, &shared, &mut controls, &opts.apps)?;
    let sub_parts = crate::run::subscribers::build(&sc, &shared, &mut controls)?;
    let mut by_tag = std::collections::BTreeMap::new();
    let mut devices = Vec::new();
    // Devices with a staggered start boot at their time (in build order among equals).
    let mut booting = std::collections::VecDeque::new();
    let mut built: Vec<(usize, (u64, FieldDevice))> = built.into_iter().enumerate().collect();
    built.sort_by_key(|(i, (start_ms, _))| (*start_ms, *i));
    for (_, (start_ms, fd)) in built {
        if !matches!(fd, FieldDevice::Core(..)) {
            return Err("a sketch device under the direct engine".into());
        }
        if start_ms > 0 {
            booting.push_back((Instant::from_millis(start_ms), fd));
            continue;
        }
        let (tag, d) = boot(fd, Instant::ZERO, &opener)?;
        by_tag.insert(tag, Ent::Device(devices.len()));
        devices.push(d);
    }
    let mut subs = Vec::new();
    for parts in sub_parts {
        by_tag.insert(parts.3.tag, Ent::Subscriber(subs.len()));
        subs.push(DirectSubscriber::new(parts, opener.clone()));
    }
    let subscriber_ids: Vec<SubscriberId> = sc
        .subscribers
        .iter()
        .filter_map(|s| shared.ledger.borrow().subscriber_id(&s.name))
        .collect();
    let mut tl: Timeline = timeline::timeline(&sc, &controls);

    let mut w = World {
        net: shared.net.clone(),
        opener,
        broker,
        devices,
        subs,
        queue: Queue::default(),
        queued: Default::default(),
        by_tag,
        dirty: BTreeSet::new(),
        broker_touched: BTreeSet::new(),
        touched: Vec::new(),
        resched: BTreeSet::new(),
        seen_conns: 0,
        tick: Duration::from_millis(sc.tick_ms.max(1)),
    };
    // Everyone looks at the world once at zero (the devices have settled already).
    w.dirty.insert(Ent::Broker);
    for d in 0..w.devices.len() {
        w.dirty.insert(Ent::Device(d));
    }
    for s in 0..w.subs.len() {
        w.dirty.insert(Ent::Subscriber(s));
    }

    let mut now = Instant::ZERO;
    loop {
        set_outside_now(now);
        let now_ms = now.as_millis();
        if tl.next_at_ms().is_some_and(|t| t <= now_ms) {
            let mut power = Power {
                broker: &mut w.broker,
                opener: &w.opener,
            };
            tl.apply_due(
                now_ms,
                &mut power,
                &shared,
                &controls,
                disk.as_ref(),
                memory,
            );
            set_outside_now(now);
            // Control messages may wait for anyone; faults may move any link's timer.
            for d in 0..w.devices.len() {
                w.wake(Ent::Device(d), now);
            }
            for s in 0..w.subs.len() {
                w.wake(Ent::Subscriber(s), now);
            }
            w.wake(Ent::Broker, now);
            for i in 0..w.net.conn_count() {
                w.resched.insert(i);
                if w.broker.watches(i) {
                    w.broker_touched.insert(i);
                }
            }
        }
        if now >= end {
            break;
        }
        while booting.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, fd)) = booting.pop_front() else {
                break;
            };
            let (tag, d) = boot(fd, now, &w.opener)?;
            let e = Ent::Device(w.devices.len());
            w.by_tag.insert(tag, e);
            w.devices.push(d);
            w.dirty.insert(e);
        }
        while let Some(e) = w.queue.pop_due(now) {
            if w.queued.get(&e).is_some_and(|t| *t <= now) {
                w.queued.remove(&e);
                w.dirty.insert(e);
            }
        }
        w.settle(now);
        let taps = shared.net.take_taps();
        if !taps.is_empty() {
            let mut l = shared.ledger.borrow_mut();
            for tap in taps {
                if opts.explain.is_some() {
                    kept_taps.push(tap.clone());
                }
                wire.feed(&mut l, &subscriber_ids, tap);
            }
        }
        let next = [
            w.queue.peek(),
            tl.next_at_ms().map(Instant::from_millis),
            booting.front().map(|(at, _)| *at),
            Some(end),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(end);
        now = next.max(now);
    }
    let simulated_ms = end.as_millis();
    finish(&shared, simulated_ms);
    drop(w);
    output::outcome(sc, opts, &shared, simulated_ms, started, &kept_taps)
}

/// Boots one device of the field host at `now`: its tag and its driver.
fn boot(fd: FieldDevice, now: Instant, opener: &Opener) -> Result<(u32, DirectDevice), String> {
    let FieldDevice::Core(cfg, app, connector, rx, hooks) = fd else {
        return Err("a sketch device under the direct engine".into());
    };
    let dev = Device::new(cfg, app, now).map_err(|e| format!("device {}: {e}", hooks.name))?;
    let tag = connector.tag;
    Ok((
        tag,
        DirectDevice::new(dev, connector, rx, hooks, opener.clone()),
    ))
}
