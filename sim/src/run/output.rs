//! The run's output: the interleaved lines (every host's and the network's, in simulated-time
//! order), the capture, the ledger's verdict and the report, gathered once the simulation is over.

use std::fmt::Write as _;
use std::time::Duration as StdDuration;

use mqsim::time::Instant;

use super::{Engine, RunOptions, Shared, EPOCH_UNIX_MS};
use crate::check::{Records, Violation};
use crate::report::{check_expect, Report, RunFacts};
use crate::scenario::Scenario;

/// Where a line of the interleaved output comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Device(String),
    Subscriber(String),
    Broker,
    Net,
}

/// One line of the interleaved output, in simulated time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at: Instant,
    pub source: Source,
    pub text: String,
}

impl Line {
    /// `  12.345 esp32          | text`: simulated seconds, then the source, then its own line.
    pub fn render(&self) -> String {
        let us = self.at.as_micros();
        let who = match &self.source {
            Source::Device(n) | Source::Subscriber(n) => n.as_str(),
            Source::Broker => "broker",
            Source::Net => "net",
        };
        format!(
            "{:>5}.{:03} {who:<14} | {}",
            us / 1_000_000,
            (us / 1_000) % 1_000,
            self.text
        )
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The scenario as run (seed and duration overrides applied).
    pub scenario: Scenario,
    /// Every line, net decisions included, in simulated-time order.
    pub lines: Vec<Line>,
    pub report: Report,
    /// Expectations of the scenario that the report does not meet.
    pub unmet: Vec<String>,
    pub violations: Vec<Violation>,
    pub pcap: Option<Vec<u8>>,
    pub simulated_ms: u64,
    pub wall: std::time::Duration,
    /// Every publish call and receipt the ledger saw, for a test's own checks.
    pub records: Records,
    /// The life of the message [`RunOptions::explain`] named, or why there is none.
    pub explanation: Option<Result<String, String>>,
    /// The first violation's message, as (`DEVICE:SEQ`, its life), when that violation names a
    /// message: printed under a failure's replay line.
    pub first_violation: Option<(String, String)>,
}

impl RunOutcome {
    /// Broke an invariant or an expectation.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || !self.unmet.is_empty()
    }

    /// The whole deterministic record of the run: every line and the report. Two runs of the
    /// same scenario and seed give the same bytes.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(&l.render());
            out.push('\n');
        }
        out.push_str(&self.report.render());
        out
    }

    /// The printed stream: without the net lines unless asked.
    pub fn visible_lines(&self, show_net: bool) -> impl Iterator<Item = &Line> {
        self.lines
            .iter()
            .filter(move |l| show_net || l.source != Source::Net)
    }

    /// What broke, when, the report, the trace's tail and the replay line: what a failing run
    /// prints, on the command line and in `cargo test`.
    pub fn failure_text(&self, tail_lines: usize) -> String {
        let mut msg = format!(
            "FAILED: {} with seed {}\n",
            self.scenario.file, self.scenario.seed
        );
        for v in &self.violations {
            let _ = writeln!(
                msg,
                "  invariant {} broken at {}.{:03} s: {}",
                v.invariant,
                v.at / 1_000_000,
                (v.at / 1_000) % 1_000,
                v.detail
            );
        }
        for u in &self.unmet {
            let _ = writeln!(msg, "  expectation not met: {u}");
        }
        msg.push_str("last lines of the trace:\n");
        msg.push_str(&trace_tail(self, tail_lines));
        let _ = writeln!(msg, "replay: {}", self.replay_line());
        if self.report.facts.replay.is_none() {
            // The picture of the same run ([`crate::picture`]).
            let _ = writeln!(msg, "timeline: {} --timeline fail.svg", self.replay_line());
        }
        if let Some((target, life)) = &self.first_violation {
            let _ = writeln!(
                msg,
                "the first violated message, {target} (its segments too: replay with --explain {target}):"
            );
            msg.push_str(life);
            if !life.ends_with('\n') {
                msg.push('\n');
            }
        }
        msg
    }

    /// The client id of device `index` (the ledger's `DeviceId`: file order, group by group).
    pub fn device_name(&self, index: u32) -> Option<String> {
        self.scenario
            .devices
            .iter()
            .flat_map(|d| d.client_ids())
            .nth(index as usize)
    }

    /// The command that replays this run.
    pub fn replay_line(&self) -> String {
        self.report.facts.replay_command()
    }
}

/// Gathers the outcome of the run of `sc`, once the simulation has stopped at `simulated_ms`.
pub(crate) fn outcome(
    sc: Scenario,
    opts: &RunOptions,
    shared: &Shared,
    simulated_ms: u64,
    started: std::time::Instant,
    taps: &[crate::net::stream::Tap],
) -> Result<RunOutcome, String> {
    let mut raw = shared.lines.take();
    for line in shared.net.trace_lines() {
        raw.push((line.at, u64::MAX, Source::Net, line.text));
    }
    // Stable: lines of one instant keep the order they were written in; net lines go last.
    raw.sort_by_key(|(at, n, _, _)| (*at, *n));
    let lines: Vec<Line> = raw
        .into_iter()
        .map(|(at, _, source, text)| Line { at, source, text })
        .collect();
    let pcap = if opts.capture {
        Some(
            shared
                .net
                .pcap_bytes(StdDuration::from_millis(EPOCH_UNIX_MS))?,
        )
    } else {
        None
    };
    let ledger = shared.ledger.borrow();
    let wall = started.elapsed();
    let mut facts = RunFacts::for_scenario(&sc, simulated_ms, wall);
    facts.duration_override_s = opts.duration_s;
    facts.broker_profile_override = opts.broker_profile;
    facts.engine = Engine::for_scenario(opts.engine, &sc);
    facts.replay = opts.replay.clone();
    let mut report = Report::new(&ledger, facts);
    report.takeovers = crate::report::takeover::find(
        lines
            .iter()
            .filter(|l| l.source == Source::Broker)
            .map(|l| (l.at.as_micros(), l.text.as_str())),
        &ledger,
    );
    let records = ledger.records();
    report.fleet = crate::report::fleet::find(&sc, &records);
    let joins = shared.joins.borrow();
    let costs = shared.net.with_wire_records(|wires| {
        crate::cost::costs(crate::cost::Inputs {
            scenario: &sc,
            summary: &report.summary,
            records: wires
                .into_iter()
                .map(|(conn, tag, wire)| crate::cost::Record { conn, tag, wire })
                .collect(),
            joins: &joins,
        })
    });
    report.costs = Some(costs);
    let unmet = check_expect(&sc.expect, &report);
    let violations = ledger.violations().to_vec();
    let explanation = opts
        .explain
        .as_ref()
        .map(|(d, seq)| super::explain::explain(&ledger, &lines, taps, d, *seq));
    // The first violation that names a message, told from what the run kept (the link's
    // segments only when it kept its taps, as `--explain` does).
    let first_violation = violations.iter().find_map(|v| {
        let m = v.msg?;
        let name = sc
            .devices
            .iter()
            .flat_map(|d| d.client_ids())
            .nth(m.device.0 as usize)?;
        let life = super::explain::explain(&ledger, &lines, taps, &name, m.seq).ok()?;
        Some((format!("{name}:{}", m.seq), life))
    });
    Ok(RunOutcome {
        explanation,
        first_violation,
        records,
        scenario: sc,
        lines,
        report,
        unmet,
        violations,
        pcap,
        simulated_ms,
        wall,
    })
}

/// The end of a failed run's trace, for the failure message.
pub fn trace_tail(outcome: &RunOutcome, lines: usize) -> String {
    let mut out = String::new();
    let n = outcome.lines.len();
    for l in &outcome.lines[n.saturating_sub(lines)..] {
        let _ = writeln!(out, "{}", l.render());
    }
    out
}
