//! The run report: the ledger's counts and violations plus run facts, as deterministic text
//! (fixed-precision numbers, sorted scopes), and the check of a scenario's `[expect]` ranges.
//!
//! Wall-clock figures are kept out of [`Report::render`] so tests can snapshot it byte for byte;
//! [`Report::render_speed`] prints them separately.

use std::fmt::Write as _;
use std::time::Duration;

use crate::check::{Behaviours, Cause, Causes, Ledger, Summary, Tally, Violation};
use crate::scenario::{Expect, Metric, Scenario, Scope};

pub mod fleet;
pub mod takeover;
pub use takeover::Takeover;

/// Facts of the run that the ledger does not see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFacts {
    pub scenario: String,
    pub seed: u64,
    pub tick_ms: u64,
    /// Simulated time at the end of the run, ms.
    pub simulated_ms: u64,
    /// Not deterministic: printed by `render_speed` only.
    pub wall: Duration,
    /// `--duration` when it overrode the file's, so that the replay line replays this run.
    pub duration_override_s: Option<u64>,
    /// The replay command when it is not `mqsim sim` (a run of a test's own applications),
    /// `{seed}` standing for the seed.
    pub replay: Option<String>,
    /// The broker profile the run used (printed unless it is this broker's own).
    pub broker_profile: mqsim::broker::Profile,
    /// `--broker-profile` when it overrode the file's, so that the replay line replays this run.
    pub broker_profile_override: Option<mqsim::broker::Profile>,
}

impl RunFacts {
    pub fn for_scenario(s: &Scenario, simulated_ms: u64, wall: Duration) -> RunFacts {
        RunFacts {
            scenario: s.file.clone(),
            seed: s.seed,
            tick_ms: s.tick_ms,
            simulated_ms,
            wall,
            duration_override_s: None,
            replay: None,
            broker_profile: s.broker.profile,
            broker_profile_override: None,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        if let Some(r) = &self.replay {
            return r.replace("{seed}", &self.seed.to_string());
        }
        let mut line = format!(
            "cargo run --release -- sim {} --seed {}",
            self.scenario, self.seed
        );
        if let Some(d) = self.duration_override_s {
            let _ = write!(line, " --duration {d}");
        }
        if let Some(p) = self.broker_profile_override {
            let _ = write!(line, " --broker-profile {}", p.name());
        }
        line
    }
}

/// Violations printed in full; the rest are counted.
pub const VIOLATIONS_SHOWN: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub facts: RunFacts,
    pub summary: Summary,
    pub violations: Vec<Violation>,
    /// Violations printed with client names resolved.
    violation_lines: Vec<String>,
    /// Session takeovers at the broker ([`takeover::find`]); a line each under the table.
    pub takeovers: Vec<Takeover>,
    /// The worst devices of each large group ([`fleet::find`]), named under the table.
    pub fleet: Vec<fleet::GroupWorst>,
}

impl Report {
    pub fn new(ledger: &Ledger, facts: RunFacts) -> Report {
        let violation_lines = ledger
            .violations()
            .iter()
            .map(|v| format!("{} {}: {}", fmt_ms(v.at / 1000), v.invariant, v.detail))
            .collect();
        Report {
            facts,
            summary: ledger.summary(),
            violations: ledger.violations().to_vec(),
            violation_lines,
            takeovers: Vec::new(),
            fleet: Vec::new(),
        }
    }

    fn tally(&self, scope: &Scope) -> Option<&Tally> {
        match scope {
            Scope::All => Some(&self.summary.all),
            Scope::Qos(q) => self.summary.qos.get(usize::from(*q)),
            Scope::Device(d) => self.summary.devices.get(d),
            Scope::Subscriber(s) => self.summary.subscribers.get(s),
        }
    }

    /// The value `[expect]` checks for `scope.metric`; None when there is nothing to measure
    /// (no latency samples, unknown scope).
    pub fn metric(&self, scope: &Scope, metric: Metric) -> Option<u64> {
        let t = self.tally(scope)?;
        if metric == Metric::Takeovers {
            let of = |k: &&Takeover| match scope {
                Scope::Device(g) => k.group.as_deref() == Some(g.as_str()),
                _ => true,
            };
            return Some(self.takeovers.iter().filter(of).count() as u64);
        }
        Some(match metric {
            Metric::Published => t.published,
            Metric::Refused => t.refused,
            Metric::Acknowledged => t.acknowledged,
            Metric::Delivered => t.delivered,
            Metric::Lost => t.lost,
            Metric::LostWithBroker => t.lost_with_broker,
            Metric::Duplicated => t.duplicated,
            Metric::Reconnects => t.reconnects,
            Metric::LatencyP50Ms => t.latency_percentile_us(50)? / 1000,
            Metric::LatencyP99Ms => t.latency_percentile_us(99)? / 1000,
            Metric::LatencyMaxMs => t.latency_max_us()? / 1000,
            Metric::Violations => self.violations.len() as u64,
            Metric::Takeovers => 0,
            Metric::LostConnection => t.causes.connection,
            Metric::LostExpired => t.causes.expired,
            Metric::LostDropped => t.causes.dropped,
            Metric::LostBrokerUnsaved => t.causes.broker_unsaved,
            Metric::LostNotSubscribed => t.causes.not_subscribed,
            Metric::LostUnexplained => t.causes.unexplained,
        })
    }

    /// The deterministic part: same seed, same text.
    pub fn render(&self) -> String {
        let f = &self.facts;
        let mut out = String::new();
        let _ = writeln!(out, "scenario {}", f.scenario);
        let _ = writeln!(
            out,
            "seed {}  tick {} ms  simulated {} s",
            f.seed,
            f.tick_ms,
            fmt_ms(f.simulated_ms)
        );
        if f.broker_profile != mqsim::broker::Profile::Mqsim {
            let _ = writeln!(out, "broker profile {}", f.broker_profile.name());
        }
        let _ = writeln!(
            out,
            "{:<24} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
            "scope",
            "pub",
            "refus",
            "ack",
            "deliv",
            "lost",
            "lostbk",
            "dup",
            "reconn",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        let mut row = |name: String, t: &Tally| {
            let _ = writeln!(
                out,
                "{:<24} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
                name,
                t.published,
                t.refused,
                t.acknowledged,
                t.delivered,
                t.lost,
                t.lost_with_broker,
                t.duplicated,
                t.reconnects,
                fmt_latency(t.latency_percentile_us(50)),
                fmt_latency(t.latency_percentile_us(99)),
                fmt_latency(t.latency_max_us()),
            );
        };
        row("all".to_string(), &self.summary.all);
        for (q, t) in self.summary.qos.iter().enumerate() {
            if t.published > 0 {
                row(format!("qos{q}"), t);
            }
        }
        for (name, t) in &self.summary.devices {
            row(format!("device {name}"), t);
        }
        for (name, t) in &self.summary.subscribers {
            row(format!("subscriber {name}"), t);
        }
        if self.summary.untagged > 0 {
            let _ = writeln!(
                out,
                "untagged receipts (wills, ...): {}",
                self.summary.untagged
            );
        }
        fleet::render(&mut out, &self.fleet);
        render_causes(&mut out, &self.summary.all.causes);
        for k in &self.takeovers {
            let _ = writeln!(
                out,
                "takeover at {} s: {} {}'s connection closed for another CONNECT with its id{}; \
                 {} readings lost until its next session",
                fmt_ms(k.at / 1000),
                k.group.as_ref().map_or("client", |_| "device"),
                k.client,
                if k.stale {
                    " (stale: sent on an earlier connection it had given up)"
                } else {
                    ""
                },
                k.lost
            );
        }
        render_behaviours(&mut out, &self.summary.behaviours);
        out.push_str(LEGEND);
        if self.summary.all.causes.broker_unsaved > 0 {
            out.push_str(LEGEND_UNSAVED);
        }
        let _ = writeln!(out, "violations: {}", self.violations.len());
        for line in self.violation_lines.iter().take(VIOLATIONS_SHOWN) {
            let _ = writeln!(out, "  {line}");
        }
        if self.violation_lines.len() > VIOLATIONS_SHOWN {
            let _ = writeln!(
                out,
                "  ... {} more",
                self.violation_lines.len() - VIOLATIONS_SHOWN
            );
        }
        if !self.violations.is_empty() {
            let _ = writeln!(out, "replay: {}", f.replay_command());
        }
        out
    }

    /// Wall time and speed: not deterministic, kept apart from `render`.
    pub fn render_speed(&self) -> String {
        let wall_s = self.facts.wall.as_secs_f64();
        let sim_s = self.facts.simulated_ms as f64 / 1000.0;
        if wall_s > 0.0 {
            format!(
                "wall {wall_s:.3} s  {:.1} simulated s per wall s\n",
                sim_s / wall_s
            )
        } else {
            format!("wall {wall_s:.3} s\n")
        }
    }
}

/// The loss causes, one line each, only those that happened, under a heading; nothing at all
/// when nothing was lost (so a run without losses renders as before).
fn render_causes(out: &mut String, c: &Causes) {
    if c.is_empty() {
        return;
    }
    let _ = writeln!(out, "losses by cause (message x subscriber pairs):");
    for cause in Cause::ALL {
        let n = c.get(cause);
        if n > 0 {
            let _ = writeln!(out, "  {:<62} {n:>8}", cause.describe());
        }
    }
}

/// The named behaviours (not violations), one line each, only those that happened: so a run
/// without them renders as before.
fn render_behaviours(out: &mut String, b: &Behaviours) {
    if b.reordered_by_client > 0 {
        let _ = writeln!(
            out,
            "reordered by the client across a re-send (not the broker): {}",
            b.reordered_by_client
        );
    }
    if b.subscribers_gave_up > 0 {
        let _ = writeln!(
            out,
            "subscribers that gave up on their first connect (mosquitto_sub exits): {}",
            b.subscribers_gave_up
        );
    }
    if b.still_queued > 0 {
        let _ = writeln!(
            out,
            "still queued at the end behind a draining backlog (owed, not lost): {}",
            b.still_queued
        );
    }
    if b.ack_withheld > 0 {
        let _ = writeln!(
            out,
            "acknowledgement still withheld by broker backpressure at the end: {}",
            b.ack_withheld
        );
    }
}

/// What the columns mean, under the table.
pub(crate) const LEGEND: &str =
    "  pub: publish calls by the devices' sketches; refus: refused by the library (not connected:
  lost at the device); ack: completed at the publisher (QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP);
  deliv: first copies received by subscribers whose subscription covered them; lost: covered and
  never received; lostbk: lost with the state of a broker restarted without persistence; dup: extra
  copies; reconn: reconnections; p50/p99/max: publish call to first receipt, in ms.
";

/// The legend's addendum when a broker that autosaves (the `mosquitto-2.0` profile) lost state.
const LEGEND_UNSAVED: &str =
    "  lostbk also counts what a broker that autosaves (mosquitto's persistence) had acknowledged
  after its last save when it restarted.
";

/// Milliseconds as seconds with 3 decimals.
fn fmt_ms(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Microseconds as milliseconds with 1 decimal, "-" when there are no samples.
fn fmt_latency(us: Option<u64>) -> String {
    match us {
        Some(us) => format!("{}.{}", us / 1000, (us % 1000) / 100),
        None => "-".to_string(),
    }
}

/// Every unmet expectation, one line each: `FILE:LINE: scope.metric = value, expected [min, max]`
/// (the line is left out for the implied `violations = [0, 0]`).
pub fn check_expect(expect: &Expect, report: &Report) -> Vec<String> {
    let mut unmet = Vec::new();
    for c in &expect.checks {
        let value = report.metric(&c.scope, c.metric);
        let ok = value.is_some_and(|v| (c.min..=c.max).contains(&v));
        if ok {
            continue;
        }
        let shown = value.map_or("nothing measured".to_string(), |v| v.to_string());
        let key = if c.scope == Scope::All {
            c.metric.key().to_string()
        } else {
            format!(
                "{}.{}",
                c.scope.to_string().trim_start_matches("expect."),
                c.metric.key()
            )
        };
        let place = if c.line == 0 {
            report.facts.scenario.clone()
        } else {
            format!("{}:{}", report.facts.scenario, c.line)
        };
        unmet.push(format!(
            "{place}: {key} = {shown}, expected [{}, {}]",
            c.min, c.max
        ));
    }
    unmet
}

#[cfg(test)]
mod tests;
