//! From the file as written to the scenario: every value checked, every problem reported with
//! its line. Topic names and filters are checked by the core's own rules ([`mqsim::topic`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use mqsim::topic;

use super::model::*;
use super::raw::*;

mod link;
mod power;
use link::{validate_link_ref, validate_links};
use power::validate_power;

/// What [`topic::valid_topic_name`] asks of a topic name, for the message.
const TOPIC_NAME_RULE: &str = "not a topic name (non-empty, no wildcards + or #, no NUL)";
/// What [`topic::valid_topic_filter`] asks of a topic filter, for the message.
const TOPIC_FILTER_RULE: &str =
    "not a topic filter (non-empty, `+` and `#` whole levels, `#` the last one, no NUL, at most the broker's levels)";

/// Byte offsets -> 1-based lines, and the problems found so far.
pub(super) struct Checker<'a> {
    pub(super) text: &'a str,
    pub(super) problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    pub(super) fn at<T>(&mut self, value: &Sp<T>, reason: impl Into<String>) {
        let line = self.line(value.span());
        self.problems.push(Diagnostic {
            line,
            reason: reason.into(),
        });
    }

    pub(super) fn probability(&mut self, key: &str, value: &Sp<f64>) -> f64 {
        let p = *value.get_ref();
        if !(0.0..=1.0).contains(&p) {
            self.at(value, format!("{key} = {p} is not a probability (0..=1)"));
        }
        p
    }

    /// Seconds (finite, >= 0) to milliseconds.
    pub(super) fn seconds(&mut self, key: &str, value: &Sp<f64>) -> u64 {
        let s = *value.get_ref();
        if !(0.0..=1.0e9).contains(&s) {
            self.at(
                value,
                format!("{key} = {s} is not a time in seconds (>= 0)"),
            );
            return 0;
        }
        (s * 1000.0).round() as u64
    }

    pub(super) fn qos(&mut self, key: &str, value: &Sp<u8>) -> u8 {
        let q = *value.get_ref();
        if q > 2 {
            self.at(value, format!("{key} = {q}: QoS is 0, 1 or 2"));
        }
        q
    }
}

pub(super) fn validate(c: &mut Checker<'_>, raw: RawScenario, file: &str) -> Scenario {
    let top = validate_top(c, &raw);
    let broker = validate_broker(c, raw.broker.as_ref());
    let links = validate_links(c, &raw.link);
    let mut names = Names::default();
    let devices = validate_devices(c, &raw.device, &mut names, &links, top.duration_ms);
    let subscribers = validate_subscribers(c, &raw.subscriber, &mut names, &links);
    let faults = validate_faults(c, &raw.fault, &names, &raw.duration_s, top.duration_ms);
    let inputs = validate_inputs(c, &raw.input, &devices, top.duration_ms);
    let expect = validate_expect(c, raw.expect.as_ref(), &devices, &subscribers);
    Scenario {
        file: file.to_string(),
        description: top.description,
        seed: top.seed,
        duration_ms: top.duration_ms,
        tick_ms: top.tick_ms,
        heal_ms: top.heal_ms,
        broker,
        links,
        devices,
        subscribers,
        tcp_profiles: raw.tcp_profiles.unwrap_or(true),
        engines: validate_engines(c, raw.engines.as_ref()),
        faults,
        inputs,
        expect,
    }
}

/// `engines = ["turmoil", "direct"]`: known names, at least one, none twice.
fn validate_engines(c: &mut Checker<'_>, raw: Option<&Sp<Vec<String>>>) -> Vec<String> {
    let Some(e) = raw else {
        return ENGINES.iter().map(|s| s.to_string()).collect();
    };
    let mut out: Vec<String> = Vec::new();
    for name in e.get_ref() {
        if !ENGINES.contains(&name.as_str()) {
            c.at(
                e,
                format!(
                    "engines: unknown engine `{name}` (one of {})",
                    ENGINES.join(", ")
                ),
            );
        } else if out.contains(name) {
            c.at(e, format!("engines: `{name}` named twice"));
        } else {
            out.push(name.clone());
        }
    }
    if e.get_ref().is_empty() {
        c.at(e, "engines: name at least one engine");
    }
    out
}

/// The top-level keys, checked.
struct TopLevel {
    description: String,
    seed: u64,
    /// The safety phase (`duration_s`).
    duration_ms: u64,
    tick_ms: u64,
    heal_ms: u64,
}

/// The top level: `description` (not empty), `seed` (1 by default), `duration_s` (> 0),
/// `tick_ms` (> 0, 1 by default) and `heal_s` (30 by default).
/// The longest simulation step: shorter than the shortest timer the model must resolve (the
/// links' 200 ms minimum TCP retransmission timeout), with room for jitter.
pub const TICK_MAX_MS: u64 = 100;

fn validate_top(c: &mut Checker<'_>, raw: &RawScenario) -> TopLevel {
    let duration_ms = c.seconds("duration_s", &raw.duration_s);
    if duration_ms == 0 && c.problems.is_empty() {
        c.at(&raw.duration_s, "duration_s must be > 0");
    }
    let tick_ms = match &raw.tick_ms {
        Some(t) if *t.get_ref() == 0 => {
            c.at(t, "tick_ms must be > 0 (it is the simulation step)");
            1
        }
        Some(t) if *t.get_ref() > TICK_MAX_MS => {
            c.at(
                t,
                format!(
                    "tick_ms = {} is too long: at most {TICK_MAX_MS} (the step must resolve the \
                     model's shortest timers, TCP's 200 ms retransmission timeout first)",
                    t.get_ref()
                ),
            );
            1
        }
        Some(t) => *t.get_ref(),
        None => 1,
    };
    if let Some(t) = &raw.tick_ms {
        if duration_ms > 0 && *t.get_ref() <= TICK_MAX_MS && *t.get_ref() > duration_ms {
            c.at(t, "tick_ms is longer than the run (duration_s)");
        }
    }
    let heal_ms = match &raw.heal_s {
        Some(h) => c.seconds("heal_s", h),
        None => 30_000,
    };
    if raw.description.get_ref().trim().is_empty() {
        c.at(&raw.description, "description is empty");
    }
    TopLevel {
        description: raw.description.get_ref().clone(),
        seed: raw.seed.unwrap_or(1),
        duration_ms,
        tick_ms,
        heal_ms,
    }
}

/// `[broker]`: `max_inflight_messages` in 1..=65535, `max_queued_messages` a u32,
/// `disk_sync_ms` at most 1000; the defaults where absent.
fn validate_broker(c: &mut Checker<'_>, raw: Option<&RawBroker>) -> BrokerSpec {
    let mut broker = BrokerSpec {
        disk_sync_ms: crate::disk::DISK_SYNC_DEFAULT_MS,
        ..BrokerSpec::default()
    };
    let Some(b) = raw else { return broker };
    if let Some(v) = &b.max_inflight_messages {
        match u16::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => broker.max_inflight_messages = Some(n),
            _ => c.at(v, "max_inflight_messages must be in 1..=65535"),
        }
    }
    if let Some(v) = &b.connect_timeout_s {
        match *v.get_ref() {
            n @ 1..=3_600 => broker.connect_timeout_s = Some(n),
            _ => c.at(v, "connect_timeout_s must be in 1..=3600"),
        }
    }
    if let Some(v) = &b.max_queued_messages {
        match u32::try_from(*v.get_ref()) {
            Ok(n) => broker.max_queued_messages = Some(n),
            _ => c.at(v, "max_queued_messages is too large"),
        }
    }
    if let Some(p) = &b.persistence {
        broker.persistence = *p.get_ref();
    }
    if let Some(v) = &b.profile {
        match mqsim::broker::Profile::from_name(v.get_ref()) {
            Some(p) => broker.profile = p,
            None => {
                let names: Vec<_> = mqsim::broker::Profile::ALL.map(|p| p.name()).into();
                c.at(
                    v,
                    format!(
                        "unknown broker profile `{}` (one of: {})",
                        v.get_ref(),
                        names.join(", ")
                    ),
                )
            }
        }
    }
    if let Some(v) = &b.disk_sync_ms {
        match *v.get_ref() {
            n @ 0..=1_000 => broker.disk_sync_ms = n,
            _ => c.at(v, "disk_sync_ms must be at most 1000"),
        }
    }
    broker
}

/// The names seen so far: groups (a device's or subscriber's `name`) and the client ids they
/// give, unique across devices and subscribers.
#[derive(Default)]
struct Names {
    groups: BTreeSet<String>,
    ids: BTreeSet<String>,
}

impl Names {
    /// A group's `name` (an MQTT 3.1.1 client id, not used before) and its `count` client ids
    /// (none used before).
    fn validate(&mut self, c: &mut Checker<'_>, name: &Sp<String>, count: u32) {
        let n = name.get_ref();
        if n.is_empty()
            || n.len() > 23
            || !n
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.at(
                name,
                format!("name `{n}`: 1-23 characters of [A-Za-z0-9_-] (an MQTT 3.1.1 client id)"),
            );
        }
        if !self.groups.insert(n.clone()) {
            c.at(name, format!("duplicate name `{n}`"));
            return;
        }
        for id in instance_names(n, count) {
            if !self.ids.insert(id.clone()) {
                c.at(name, format!("client id `{id}` is used twice"));
            }
        }
    }

    /// A group or a client id seen.
    fn contains(&self, name: &str) -> bool {
        self.groups.contains(name) || self.ids.contains(name)
    }
}

/// `[[device]]`: at least one; each with its name, count, either the reference sketch's keys or
/// an `app`, what its profile allows, its topics and its link.
fn validate_devices(
    c: &mut Checker<'_>,
    raw: &[RawDevice],
    names: &mut Names,
    links: &BTreeMap<String, LinkSpec>,
    duration_ms: u64,
) -> Vec<DeviceSpec> {
    let mut devices = Vec::new();
    for d in raw {
        let count = match &d.count {
            Some(n) if *n.get_ref() == 0 => {
                c.at(n, "count must be > 0");
                1
            }
            Some(n) => *n.get_ref(),
            None => 1,
        };
        names.validate(c, &d.name, count);
        let profile = *d.profile.get_ref();
        let app = d.app.as_ref().map(|a| {
            if a.get_ref().is_empty() {
                c.at(a, "app must name an application");
            }
            a.get_ref().clone()
        });
        let sketch = d.sketch.as_ref().map(|k| {
            if !k.get_ref().ends_with(".ino") {
                c.at(k, "sketch must name an Arduino sketch file (NAME.ino)");
            }
            if app.is_some() {
                c.at(k, "sketch and app are exclusive: a device runs one of them");
            }
            k.get_ref().clone()
        });
        if let (Some(l), None) = (&d.libraries, &sketch) {
            c.at(l, "libraries are for a sketch (`sketch = \"app.ino\"`)");
        }
        let libraries = d
            .libraries
            .as_ref()
            .map_or(Vec::new(), |l| l.get_ref().clone());
        if let Some(k) = &sketch {
            // What the sketch's MQTT library is told comes from the sketch's own calls.
            let lib_keys = [
                d.keepalive_s
                    .as_ref()
                    .map(|v| ("keepalive_s", c.line(v.span()))),
                d.outbox_expiry_s
                    .as_ref()
                    .map(|v| ("outbox_expiry_s", c.line(v.span()))),
                d.will.as_ref().map(|w| ("will", c.line(w.topic.span()))),
            ];
            for (key, line) in lib_keys.into_iter().flatten() {
                c.problems.push(Diagnostic {
                    line,
                    reason: format!(
                        "{key}: sketch {k} sets it itself, through its MQTT library's calls"
                    ),
                });
            }
        }
        // A sketch decides what it publishes, as an application does.
        let app_or_sketch = app
            .clone()
            .or_else(|| sketch.as_ref().map(|k| format!("sketch {k}")));
        if let Some(a) = &app_or_sketch {
            // The reference sketch's own keys: an application decides what it publishes.
            let sketch_keys = [
                d.qos.as_ref().map(|v| ("qos", c.line(v.span()))),
                d.interval_ms
                    .as_ref()
                    .map(|v| ("interval_ms", c.line(v.span()))),
                d.messages.as_ref().map(|v| ("messages", c.line(v.span()))),
                d.topic_prefix
                    .as_ref()
                    .map(|v| ("topic_prefix", c.line(v.span()))),
                d.retain.as_ref().map(|v| ("retain", c.line(v.span()))),
                d.publish_humidity
                    .as_ref()
                    .map(|v| ("publish_humidity", c.line(v.span()))),
            ];
            for (key, line) in sketch_keys.into_iter().flatten() {
                c.problems.push(Diagnostic {
                    line,
                    reason: format!(
                        "{key} is a setting of the reference sketch; {} decides what it publishes",
                        if a.starts_with("sketch ") {
                            a.clone()
                        } else {
                            format!("app `{a}`")
                        }
                    ),
                });
            }
        }
        let qos = match (&d.qos, &app_or_sketch) {
            (Some(q), _) => c.qos("qos", q),
            (None, Some(_)) => 0,
            (None, None) => {
                c.at(
                    &d.name,
                    "qos is required (0, 1 or 2) for the reference sketch",
                );
                0
            }
        };
        if let (Some(q), Profile::Pubsubclient, None) = (&d.qos, profile, &app_or_sketch) {
            if (1..=2).contains(&qos) {
                c.at(
                    q,
                    format!(
                        "qos = {qos}: the pubsubclient profile publishes QoS 0 only (use esp-mqtt)"
                    ),
                );
            }
        }
        let interval_ms = match &d.interval_ms {
            Some(i) if *i.get_ref() == 0 => {
                c.at(i, "interval_ms must be > 0");
                2000
            }
            Some(i) => *i.get_ref(),
            None => 2000,
        };
        let topic_prefix = match &d.topic_prefix {
            Some(t) => {
                if !topic::valid_topic_name(&format!("{}/TEM", t.get_ref())) {
                    c.at(
                        t,
                        format!("topic_prefix `{}`: {TOPIC_NAME_RULE}", t.get_ref()),
                    );
                }
                t.get_ref().clone()
            }
            None if count == 1 => "ESP32".to_string(),
            None => "ESP32/{id}".to_string(),
        };
        let outbox_expiry_s = match (&d.outbox_expiry_s, profile) {
            (Some(o), Profile::Pubsubclient) => {
                c.at(o, "outbox_expiry_s: the pubsubclient profile has no outbox");
                None
            }
            (Some(o), Profile::EspMqtt) => Some(*o.get_ref()),
            (None, Profile::EspMqtt) => Some(30),
            (Some(o), Profile::Mqsim) => {
                c.at(
                    o,
                    "outbox_expiry_s: the mqsim client never deletes what it queued",
                );
                None
            }
            (None, Profile::Pubsubclient | Profile::Mqsim) => None,
        };
        let tcp_stack = d.tcp_stack.as_ref().map(|t| {
            if crate::net::link::Stack::by_name(t.get_ref()).is_none() {
                c.at(
                    t,
                    format!(
                        "tcp_stack `{}`: one of {}",
                        t.get_ref(),
                        crate::net::link::Stack::NAMES.join(", ")
                    ),
                );
            }
            t.get_ref().clone()
        });
        let will = d.will.as_ref().map(|w| {
            if !topic::valid_topic_name(w.topic.get_ref()) {
                c.at(
                    &w.topic,
                    format!("will topic `{}`: {TOPIC_NAME_RULE}", w.topic.get_ref()),
                );
            }
            WillSpec {
                topic: w.topic.get_ref().clone(),
                payload: w.payload.clone(),
                qos: w.qos.as_ref().map_or(0, |q| c.qos("will qos", q)),
                retain: w.retain,
            }
        });
        let start_spread_ms = d.start_spread_s.as_ref().map_or(0, |s| {
            let ms = c.seconds("start_spread_s", s);
            if ms >= duration_ms {
                c.at(
                    s,
                    "start_spread_s must be shorter than duration_s (every device starts in the \
                     safety phase)",
                );
            }
            ms
        });
        devices.push(DeviceSpec {
            name: d.name.get_ref().clone(),
            count,
            profile,
            app,
            sketch,
            libraries,
            qos,
            interval_ms,
            link: validate_link_ref(c, links, &d.link),
            clean_session: d.clean_session.unwrap_or(true),
            keepalive_s: d
                .keepalive_s
                .as_ref()
                .map_or(profile.default_keepalive_s(), |k| *k.get_ref()),
            messages: d.messages.as_ref().map(|m| *m.get_ref()),
            topic_prefix,
            retain: d.retain.as_ref().is_some_and(|r| *r.get_ref()),
            publish_humidity: d.publish_humidity.as_ref().is_none_or(|p| *p.get_ref()),
            outbox_expiry_s,
            tcp_stack,
            will,
            start_spread_ms,
            power: validate_power(c, d.power.as_ref()),
        });
    }
    if raw.is_empty() {
        c.problems.push(Diagnostic {
            line: 1,
            reason: "no [[device]]: a scenario needs at least one publisher".to_string(),
        });
    }
    devices
}

/// `[[subscriber]]`: each with its name, a topic filter, a QoS and its link.
fn validate_subscribers(
    c: &mut Checker<'_>,
    raw: &[RawSubscriber],
    names: &mut Names,
    links: &BTreeMap<String, LinkSpec>,
) -> Vec<SubscriberSpec> {
    let mut subscribers = Vec::new();
    for s in raw {
        names.validate(c, &s.name, 1);
        if !topic::valid_topic_filter(s.filter.get_ref()) {
            c.at(
                &s.filter,
                format!("filter `{}`: {TOPIC_FILTER_RULE}", s.filter.get_ref()),
            );
        }
        subscribers.push(SubscriberSpec {
            name: s.name.get_ref().clone(),
            filter: s.filter.get_ref().clone(),
            qos: c.qos("qos", &s.qos),
            clean_session: s.clean_session.unwrap_or(true),
            link: validate_link_ref(c, links, &s.link),
            keepalive_s: s.keepalive_s.unwrap_or(60),
        });
    }
    subscribers
}

/// `[[fault]]`: a kind with what it takes (a direction for half-open, a duration except for a
/// reset, a target that is a device or subscriber except for broker faults), over by the end
/// of the safety phase (`duration_s`, `safety_ms`). Sorted by start time.
fn validate_faults(
    c: &mut Checker<'_>,
    raw: &[RawFault],
    names: &Names,
    duration_s: &Sp<f64>,
    safety_ms: u64,
) -> Vec<FaultSpec> {
    let mut faults = Vec::new();
    for f in raw {
        let at_ms = c.seconds("at_s", &f.at_s);
        let kind = match *f.kind.get_ref() {
            RawFaultKind::Partition => FaultKind::Partition,
            RawFaultKind::HalfOpen => {
                FaultKind::HalfOpen(f.direction.as_ref().map_or(Direction::Up, |d| *d.get_ref()))
            }
            RawFaultKind::Reset => FaultKind::Reset,
            RawFaultKind::WifiDrop => FaultKind::WifiDrop,
            RawFaultKind::BrokerPowerCut => FaultKind::BrokerPowerCut,
            RawFaultKind::BrokerRestart => FaultKind::BrokerRestart,
        };
        match (kind, &f.direction) {
            (FaultKind::HalfOpen(_), None) => {
                c.at(&f.kind, "half-open needs direction = \"up\" or \"down\"")
            }
            (FaultKind::HalfOpen(_), Some(_)) | (_, None) => {}
            (_, Some(d)) => c.at(d, "direction is for half-open faults only"),
        }
        let duration_ms = match (&f.duration_s, kind) {
            (Some(d), FaultKind::Reset) => {
                c.at(d, "a reset is instantaneous: no duration_s");
                0
            }
            (None, FaultKind::Reset) => 0,
            (None, FaultKind::BrokerPowerCut) => 5000,
            (None, FaultKind::BrokerRestart) => 1000,
            (None, _) => {
                c.at(&f.kind, "this fault needs duration_s");
                0
            }
            (Some(d), _) => {
                let ms = c.seconds("duration_s", d);
                if ms == 0 && !kind.targets_broker() {
                    c.at(d, "duration_s must be > 0");
                }
                ms
            }
        };
        if at_ms.saturating_add(duration_ms) > safety_ms {
            c.at(
                &f.at_s,
                format!(
                    "fault ends at {} s, after duration_s = {} (faults happen in the safety phase)",
                    fmt_s(at_ms + duration_ms),
                    duration_s.get_ref()
                ),
            );
        }
        let target = match &f.target {
            Some(t) if kind.targets_broker() => {
                c.at(t, "broker faults take no target");
                None
            }
            Some(t) => {
                if !names.contains(t.get_ref()) {
                    c.at(
                        t,
                        format!("fault target `{}` is no device or subscriber", t.get_ref()),
                    );
                }
                Some(t.get_ref().clone())
            }
            None => None,
        };
        faults.push(FaultSpec {
            at_ms,
            duration_ms,
            kind,
            target,
        });
    }
    faults.sort_by_key(|f| f.at_ms);
    faults
}

/// `[[input]]`: a device target, a name, and either `at_s` with a `value` (a boolean or a
/// number) or `toggle_every_s = [min, max]`.
fn validate_inputs(
    c: &mut Checker<'_>,
    raw: &[RawInput],
    devices: &[DeviceSpec],
    safety_ms: u64,
) -> Vec<InputSpec> {
    let mut out = Vec::new();
    for i in raw {
        let t = i.target.get_ref();
        let known = devices
            .iter()
            .any(|d| &d.name == t || d.client_ids().iter().any(|id| id == t));
        if !known {
            c.at(&i.target, format!("input target `{t}` is no device"));
        }
        if i.name.get_ref().is_empty() {
            c.at(&i.name, "an input needs a name");
        }
        let schedule = match (&i.at_s, &i.value, &i.toggle_every_s) {
            (Some(at), Some(v), None) => {
                let at_ms = c.seconds("at_s", at);
                if at_ms >= safety_ms {
                    c.at(
                        at,
                        "an input changes in the safety phase (before duration_s)",
                    );
                }
                let value = match v.get_ref() {
                    toml::Value::Boolean(b) => mqsim::app::Value::Bool(*b),
                    toml::Value::Float(f) => mqsim::app::Value::Number(*f as f32),
                    toml::Value::Integer(n) => mqsim::app::Value::Number(*n as f32),
                    _ => {
                        c.at(v, "value must be a boolean or a number");
                        mqsim::app::Value::Bool(false)
                    }
                };
                InputSchedule::At { at_ms, value }
            }
            (None, None, Some(range)) => {
                let [lo, hi] = *range.get_ref();
                let (min_ms, max_ms) = ((lo * 1000.0).round(), (hi * 1000.0).round());
                if !(min_ms >= 1.0 && max_ms >= min_ms && max_ms <= 1.0e9) {
                    c.at(
                        range,
                        "toggle_every_s = [min, max] with 0 < min <= max (seconds)",
                    );
                }
                InputSchedule::Toggle {
                    min_ms: min_ms.max(1.0) as u64,
                    max_ms: max_ms.max(min_ms.max(1.0)) as u64,
                }
            }
            _ => {
                c.at(
                    &i.name,
                    "an input needs either at_s and value, or toggle_every_s",
                );
                continue;
            }
        };
        out.push(InputSpec {
            target: t.clone(),
            name: i.name.get_ref().clone(),
            schedule,
        });
    }
    out
}

fn fmt_s(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

fn validate_expect(
    c: &mut Checker<'_>,
    raw: Option<&RawExpect>,
    devices: &[DeviceSpec],
    subscribers: &[SubscriberSpec],
) -> Expect {
    let mut checks = Vec::new();
    let empty;
    let raw = match raw {
        Some(raw) => raw,
        None => {
            empty = RawExpect::default();
            &empty
        }
    };
    let mut push = |c: &mut Checker<'_>, scope: &Scope, metric: Metric, range: &RawRange| {
        let Some(r) = range else { return };
        let [min, max] = *r.get_ref();
        if min > max {
            c.at(
                r,
                format!("{scope}.{}: min {min} > max {max}", metric.key()),
            );
        }
        let bad_scope = match scope {
            Scope::Qos(_) => matches!(metric, Metric::Reconnects | Metric::Takeovers),
            Scope::Subscriber(_) => {
                matches!(
                    metric,
                    Metric::Published | Metric::Refused | Metric::Acknowledged | Metric::Takeovers
                ) || metric.is_energy()
            }
            _ => false,
        };
        if bad_scope {
            c.at(
                r,
                format!("{scope}.{}: not measured per this scope", metric.key()),
            );
        }
        checks.push(ExpectCheck {
            scope: scope.clone(),
            metric,
            min,
            max,
            line: c.line(r.span()),
        });
    };
    let top = raw.top();
    push(c, &Scope::All, Metric::Violations, &raw.violations);
    for (metric, range) in top.entries() {
        push(c, &Scope::All, metric, range);
    }
    for (q, ranges) in [(0u8, &raw.qos0), (1, &raw.qos1), (2, &raw.qos2)] {
        if let Some(ranges) = ranges {
            for (metric, range) in ranges.entries() {
                push(c, &Scope::Qos(q), metric, range);
            }
        }
    }
    // `[expect.device.NAME]` and `[expect.subscriber.NAME]`: the same rule for both tables.
    let device_names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    let subscriber_names: Vec<&str> = subscribers.iter().map(|s| s.name.as_str()).collect();
    let device_scope: fn(String) -> Scope = Scope::Device;
    let named_scopes = [
        ("device", &raw.device, &device_names, device_scope),
        (
            "subscriber",
            &raw.subscriber,
            &subscriber_names,
            Scope::Subscriber,
        ),
    ];
    for (kind, table, known, scope) in named_scopes {
        for (name, ranges) in table {
            if !known.contains(&name.get_ref().as_str()) {
                c.at(
                    name,
                    format!(
                        "expect.{kind}.{0}: no [[{kind}]] named `{0}`",
                        name.get_ref()
                    ),
                );
            }
            for (metric, range) in ranges.entries() {
                push(c, &scope(name.get_ref().clone()), metric, range);
            }
        }
    }
    if !checks.iter().any(|k| k.metric == Metric::Violations) {
        // Implied; line 0 = not written in the file.
        checks.insert(
            0,
            ExpectCheck {
                scope: Scope::All,
                metric: Metric::Violations,
                min: 0,
                max: 0,
                line: 0,
            },
        );
    }
    Expect { checks }
}
