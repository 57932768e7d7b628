//! From the file as written to the scenario: every value checked, every problem reported with
//! its line. Topic names and filters are checked by the core's own rules ([`mqsim::topic`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use mqsim::topic;

use super::model::*;
use super::raw::*;

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
    let safety_ms = c.seconds("duration_s", &raw.duration_s);
    if safety_ms == 0 && c.problems.is_empty() {
        c.at(&raw.duration_s, "duration_s must be > 0");
    }
    let tick_ms = match &raw.tick_ms {
        Some(t) if *t.get_ref() == 0 => {
            c.at(t, "tick_ms must be > 0 (it is the simulation step)");
            1
        }
        Some(t) => *t.get_ref(),
        None => 1,
    };
    let heal_ms = match &raw.heal_s {
        Some(h) => c.seconds("heal_s", h),
        None => 30_000,
    };
    if raw.description.get_ref().trim().is_empty() {
        c.at(&raw.description, "description is empty");
    }

    let mut broker = BrokerSpec {
        disk_sync_ms: crate::disk::DISK_SYNC_DEFAULT_MS,
        ..BrokerSpec::default()
    };
    if let Some(b) = &raw.broker {
        if let Some(v) = &b.max_inflight_messages {
            match u16::try_from(*v.get_ref()) {
                Ok(n) if n > 0 => broker.max_inflight_messages = Some(n),
                _ => c.at(v, "max_inflight_messages must be in 1..=65535"),
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
        if let Some(v) = &b.disk_sync_ms {
            match *v.get_ref() {
                n @ 0..=1_000 => broker.disk_sync_ms = n,
                _ => c.at(v, "disk_sync_ms must be at most 1000"),
            }
        }
        if let Some(v) = &b.connect_timeout_s {
            match *v.get_ref() {
                n @ 1..=3_600 => broker.connect_timeout_s = Some(n),
                _ => c.at(v, "connect_timeout_s must be in 1..=3600"),
            }
        }
    }

    // Links.
    let mut links = BTreeMap::new();
    links.insert(IDEAL_LINK.to_string(), LinkSpec::ideal());
    for (name, l) in &raw.link {
        let loss = match (&l.loss, &l.gilbert_elliott) {
            (Some(p), Some(_)) => {
                c.at(
                    p,
                    format!(
                        "link `{}`: give either loss or gilbert_elliott, not both",
                        name.get_ref()
                    ),
                );
                Loss::None
            }
            (Some(p), None) => {
                let p = c.probability("loss", p);
                if p == 0.0 {
                    Loss::None
                } else {
                    Loss::Independent(p)
                }
            }
            (None, Some(ge)) => Loss::GilbertElliott {
                p_good_to_bad: c.probability("p_good_to_bad", &ge.p_good_to_bad),
                p_bad_to_good: c.probability("p_bad_to_good", &ge.p_bad_to_good),
                loss_good: c.probability("loss_good", &ge.loss_good),
                loss_bad: c.probability("loss_bad", &ge.loss_bad),
            },
            (None, None) => Loss::None,
        };
        let wifi_join_ms = match &l.wifi_join_ms {
            Some(r) => {
                let [lo, hi] = *r.get_ref();
                if lo > hi {
                    c.at(r, format!("wifi_join_ms = [{lo}, {hi}]: min > max"));
                }
                (lo, hi)
            }
            None => (1000, 4000),
        };
        links.insert(
            name.get_ref().clone(),
            LinkSpec {
                latency_ms: l.latency_ms.unwrap_or(5),
                jitter_ms: l.jitter_ms.unwrap_or(0),
                loss,
                wifi_join_ms,
            },
        );
    }

    // Names: groups and client ids, unique across devices and subscribers.
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut name_ok = |c: &mut Checker<'_>, name: &Sp<String>, count: u32| {
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
        if !groups.insert(n.clone()) {
            c.at(name, format!("duplicate name `{n}`"));
            return;
        }
        for id in instance_names(n, count) {
            if !ids.insert(id.clone()) {
                c.at(name, format!("client id `{id}` is used twice"));
            }
        }
    };
    let link_ok = |c: &mut Checker<'_>, link: &Option<Sp<String>>| -> String {
        match link {
            Some(l) if !links.contains_key(l.get_ref()) => {
                c.at(l, format!("link `{}` is not defined", l.get_ref()));
                IDEAL_LINK.to_string()
            }
            Some(l) => l.get_ref().clone(),
            None => IDEAL_LINK.to_string(),
        }
    };

    let mut devices = Vec::new();
    for d in &raw.device {
        let count = match &d.count {
            Some(n) if *n.get_ref() == 0 => {
                c.at(n, "count must be > 0");
                1
            }
            Some(n) => *n.get_ref(),
            None => 1,
        };
        name_ok(c, &d.name, count);
        let profile = *d.profile.get_ref();
        let qos = c.qos("qos", &d.qos);
        if profile == Profile::Pubsubclient && (1..=2).contains(&qos) {
            c.at(
                &d.qos,
                format!(
                    "qos = {qos}: the pubsubclient profile publishes QoS 0 only (use esp-mqtt)"
                ),
            );
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
            (None, Profile::Pubsubclient) => None,
        };
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
        devices.push(DeviceSpec {
            name: d.name.get_ref().clone(),
            count,
            profile,
            qos,
            interval_ms,
            link: link_ok(c, &d.link),
            clean_session: d.clean_session.unwrap_or(true),
            keepalive_s: d
                .keepalive_s
                .as_ref()
                .map_or(profile.default_keepalive_s(), |k| *k.get_ref()),
            messages: d.messages,
            topic_prefix,
            retain: d.retain.unwrap_or(false),
            outbox_expiry_s,
            will,
        });
    }
    if raw.device.is_empty() {
        c.problems.push(Diagnostic {
            line: 1,
            reason: "no [[device]]: a scenario needs at least one publisher".to_string(),
        });
    }

    let mut subscribers = Vec::new();
    for s in &raw.subscriber {
        name_ok(c, &s.name, 1);
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
            link: link_ok(c, &s.link),
            keepalive_s: s.keepalive_s.unwrap_or(60),
        });
    }

    // Faults.
    let mut faults = Vec::new();
    for f in &raw.fault {
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
                    raw.duration_s.get_ref()
                ),
            );
        }
        let target = match &f.target {
            Some(t) if kind.targets_broker() => {
                c.at(t, "broker faults take no target");
                None
            }
            Some(t) => {
                if !groups.contains(t.get_ref()) && !ids.contains(t.get_ref()) {
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

    let expect = validate_expect(c, raw.expect.as_ref(), &devices, &subscribers);

    Scenario {
        file: file.to_string(),
        description: raw.description.into_inner(),
        seed: raw.seed.unwrap_or(1),
        duration_ms: safety_ms,
        tick_ms,
        heal_ms,
        broker,
        links,
        devices,
        subscribers,
        faults,
        expect,
    }
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
            Scope::Subscriber(_) => matches!(
                metric,
                Metric::Published | Metric::Refused | Metric::Acknowledged | Metric::Takeovers
            ),
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
    let top = RawRanges {
        published: raw.published.clone(),
        refused: raw.refused.clone(),
        acknowledged: raw.acknowledged.clone(),
        delivered: raw.delivered.clone(),
        lost: raw.lost.clone(),
        lost_with_broker: raw.lost_with_broker.clone(),
        duplicated: raw.duplicated.clone(),
        reconnects: raw.reconnects.clone(),
        latency_p50_ms: raw.latency_p50_ms.clone(),
        latency_p99_ms: raw.latency_p99_ms.clone(),
        latency_max_ms: raw.latency_max_ms.clone(),
        takeovers: raw.takeovers.clone(),
    };
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
