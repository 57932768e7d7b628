//! The figures of one run, from the clients' results: the text block and the `--json` line.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::idle::IdleOutcome;
use super::subscriber::Ending;
use super::{BenchArgs, Outcome};

/// Nearest-rank percentile `p` (0 to 100) of ascending `sorted`: the smallest sample with at
/// least `p`% of the samples at or below it. `None` without samples.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}
/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub target: String,
    pub publishers: u32,
    pub subscribers: u32,
    pub qos: u8,
    pub payload_bytes: u32,
    pub messages: u32,
    /// PUBLISHes the publishers wrote (less than P x N only after a timeout or an error).
    pub published: u64,
    /// P x N x S.
    pub expected: u64,
    /// Unique deliveries, summed over subscribers.
    pub delivered: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    pub elapsed_s: f64,
    pub deliveries_per_s: f64,
    pub publish_per_s: f64,
    /// p50, p99, max in milliseconds; `None` without deliveries.
    pub latency_ms: Option<(f64, f64, f64)>,
    pub broker_peak_rss_kb: Option<u64>,
    /// The `--idle-connections`, when asked for.
    pub idle: IdleOutcome,
    pub timed_out: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    pub(super) fn new(
        target: String,
        args: &BenchArgs,
        outcome: Outcome,
        rss_kb: Option<u64>,
    ) -> Report {
        let Outcome {
            subs,
            pubs,
            idle,
            mut warnings,
        } = outcome;
        for s in subs.iter().filter(|s| s.ending == Ending::Idle) {
            warnings.push(format!(
                "{}: stopped after {} s without news from the broker, with {} of {} messages",
                s.who,
                args.end_idle_s,
                s.tracker.unique,
                s.tracker.expected()
            ));
        }
        let published = pubs.iter().map(|p| p.published).sum();
        let first = pubs.iter().filter_map(|p| p.first_ns).min();
        let pubs_done = pubs.iter().map(|p| p.done_ns).max().unwrap_or(0);
        let last_delivery = subs.iter().filter_map(|s| s.last_delivery_ns).max();
        let secs =
            |from: Option<u64>, to: u64| from.map_or(0.0, |f| to.saturating_sub(f) as f64 / 1e9);
        let elapsed_s = secs(first, last_delivery.unwrap_or(pubs_done));
        let publish_s = secs(first, pubs_done);
        let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };

        let mut all: Vec<u32> = Vec::with_capacity(subs.iter().map(|s| s.latencies_us.len()).sum());
        for s in &subs {
            all.extend_from_slice(&s.latencies_us);
        }
        all.sort_unstable();
        let ms = |p: f64| percentile(&all, p).map_or(0.0, |us| f64::from(us) / 1e3);
        let latency_ms = (!all.is_empty()).then(|| (ms(50.0), ms(99.0), ms(100.0)));

        let delivered = subs.iter().map(|s| s.tracker.unique).sum();
        let errors = pubs
            .iter()
            .filter_map(|p| p.end.error.clone())
            .chain(subs.iter().filter_map(|s| s.end.error.clone()))
            .collect();
        Report {
            target,
            publishers: args.publishers,
            subscribers: args.subscribers,
            qos: args.qos,
            payload_bytes: args.payload_bytes,
            messages: args.messages,
            published,
            expected: u64::from(args.publishers)
                * u64::from(args.messages)
                * u64::from(args.subscribers),
            delivered,
            duplicated: subs.iter().map(|s| s.tracker.duplicated()).sum(),
            unexpected: subs.iter().map(|s| s.tracker.unexpected).sum(),
            elapsed_s,
            deliveries_per_s: rate(delivered, elapsed_s),
            publish_per_s: rate(published, publish_s),
            latency_ms,
            broker_peak_rss_kb: rss_kb,
            idle,
            timed_out: pubs.iter().any(|p| p.end.timed_out) || subs.iter().any(|s| s.end.timed_out),
            errors,
            warnings,
        }
    }

    /// Expected deliveries that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    fn rss_mb(&self) -> Option<f64> {
        self.broker_peak_rss_kb.map(|kb| kb as f64 / 1024.0)
    }

    /// The human-readable block.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let _ = writeln!(s, "mqsim bench: {}", self.target);
        let _ = writeln!(
            s,
            "  clients     {} -> {}, QoS {}, {}-byte payload, {} messages per publisher",
            plural(self.publishers, "publisher"),
            plural(self.subscribers, "subscriber"),
            self.qos,
            self.payload_bytes,
            self.messages
        );
        let _ = writeln!(
            s,
            "  deliveries  {} expected, {} delivered, {} lost, {} duplicated{}",
            self.expected,
            self.delivered,
            self.lost(),
            self.duplicated,
            if self.unexpected > 0 {
                format!(", {} unexpected", self.unexpected)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  throughput  {:.0} deliveries/s over {:.3} s; {} published at {:.0}/s",
            self.deliveries_per_s, self.elapsed_s, self.published, self.publish_per_s
        );
        match self.latency_ms {
            Some((p50, p99, max)) => {
                let _ = writeln!(
                    s,
                    "  latency     p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms"
                );
            }
            None => {
                let _ = writeln!(s, "  latency     no deliveries");
            }
        }
        match self.rss_mb() {
            Some(mb) => {
                let _ = writeln!(s, "  broker RSS  {mb:.1} MB peak");
            }
            None => {
                let _ = writeln!(s, "  broker RSS  unknown (use --spawn or --broker-pid)");
            }
        }
        if self.idle.requested > 0 {
            let _ = writeln!(
                s,
                "  idle conns  {} requested, {} accepted, {} closed by the broker during the run{}",
                self.idle.requested,
                self.idle.accepted,
                self.idle.closed,
                match self.idle.broker_rss_kb {
                    Some(kb) => format!("; broker RSS {:.1} MB once open", kb as f64 / 1024.0),
                    None => String::new(),
                }
            );
        }
        if self.timed_out {
            let _ = writeln!(s, "  timed out   yes");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning     {w}");
        }
        s
    }

    /// One line of JSON (numbers unquoted; `null` for unknown values), see [`JsonReport`].
    pub fn to_json(&self) -> String {
        let mb = |kb: u64| kb as f64 / 1024.0;
        let latency = |pick: fn((f64, f64, f64)) -> f64| self.latency_ms.map(|l| Fixed(pick(l), 3));
        let line = JsonReport {
            target: &self.target,
            publishers: self.publishers,
            subscribers: self.subscribers,
            qos: self.qos,
            payload_bytes: self.payload_bytes,
            messages_per_publisher: self.messages,
            published: self.published,
            expected: self.expected,
            delivered: self.delivered,
            lost: self.lost(),
            duplicated: self.duplicated,
            unexpected: self.unexpected,
            idle_connections: self.idle.requested,
            idle_accepted: self.idle.accepted,
            idle_closed: self.idle.closed,
            elapsed_s: Fixed(self.elapsed_s, 6),
            deliveries_per_s: Fixed(self.deliveries_per_s, 1),
            publish_per_s: Fixed(self.publish_per_s, 1),
            latency_p50_ms: latency(|l| l.0),
            latency_p99_ms: latency(|l| l.1),
            latency_max_ms: latency(|l| l.2),
            broker_peak_rss_mb: self.broker_peak_rss_kb.map(|kb| Fixed(mb(kb), 1)),
            broker_rss_after_idle_mb: self.idle.broker_rss_kb.map(|kb| Fixed(mb(kb), 1)),
            timed_out: self.timed_out,
            errors: &self.errors,
            warnings: &self.warnings,
        };
        serde_json::to_string(&line).expect("a report serializes")
    }
}

/// The `--json` line, field by field in its order (its names and units are the format scripts
/// read: keep them). `None` is `null`.
#[derive(Serialize)]
struct JsonReport<'a> {
    target: &'a str,
    publishers: u32,
    subscribers: u32,
    qos: u8,
    payload_bytes: u32,
    messages_per_publisher: u32,
    published: u64,
    expected: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    unexpected: u64,
    idle_connections: u32,
    idle_accepted: u32,
    idle_closed: u32,
    elapsed_s: Fixed,
    deliveries_per_s: Fixed,
    publish_per_s: Fixed,
    latency_p50_ms: Option<Fixed>,
    latency_p99_ms: Option<Fixed>,
    latency_max_ms: Option<Fixed>,
    broker_peak_rss_mb: Option<Fixed>,
    broker_rss_after_idle_mb: Option<Fixed>,
    timed_out: bool,
    errors: &'a [String],
    warnings: &'a [String],
}

/// A number written with a fixed count of decimals (`Fixed(1.5, 3)` is `1.500`), as the report
/// has always printed them; not finite, it is `null`.
#[derive(Clone, Copy, Debug)]
struct Fixed(f64, usize);

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Fixed(value, decimals) = *self;
        if !value.is_finite() {
            return serializer.serialize_none();
        }
        RawValue::from_string(format!("{value:.decimals$}"))
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[5], 0.0), Some(5));
        assert_eq!(percentile(&[5], 99.0), Some(5));
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 90.0), Some(9));
    }

    fn sample_report() -> Report {
        Report {
            target: "127.0.0.1:1883 (spawned `x \"y\"`)".into(),
            publishers: 2,
            subscribers: 2,
            qos: 1,
            payload_bytes: 24,
            messages: 10,
            published: 20,
            expected: 40,
            delivered: 38,
            duplicated: 1,
            unexpected: 0,
            elapsed_s: 0.5,
            deliveries_per_s: 76.0,
            publish_per_s: 40.0,
            latency_ms: Some((0.25, 1.5, 2.0)),
            broker_peak_rss_kb: Some(2048),
            idle: IdleOutcome::default(),
            timed_out: false,
            errors: vec![],
            warnings: vec!["w\n".into()],
        }
    }

    #[test]
    fn report_lists_loss_and_formats_json() {
        let r = sample_report();
        assert_eq!(r.lost(), 2);
        let j = r.to_json();
        assert!(j.starts_with("{\"target\":\"127.0.0.1:1883 (spawned `x \\\"y\\\"`)\","));
        for part in [
            "\"delivered\":38,",
            "\"lost\":2,",
            "\"duplicated\":1,",
            "\"expected\":40,",
            "\"latency_p99_ms\":1.500,",
            "\"broker_peak_rss_mb\":2.0,",
            "\"errors\":[]",
            "\"warnings\":[\"w\\n\"]",
        ] {
            assert!(j.contains(part), "{part} in {j}");
        }
        assert!(!j.contains('\n'));
        let t = r.to_text();
        assert!(
            t.contains("40 expected, 38 delivered, 2 lost, 1 duplicated"),
            "{t}"
        );
        assert!(
            t.contains("p50 0.250 ms, p99 1.500 ms, max 2.000 ms"),
            "{t}"
        );
        assert!(t.contains("2.0 MB peak"), "{t}");
        // No idle connections asked for: zeros in JSON, nothing in the text.
        assert!(j.contains("\"idle_connections\":0,\"idle_accepted\":0,\"idle_closed\":0"));
        assert!(j.contains("\"broker_rss_after_idle_mb\":null"));
        assert!(!t.contains("idle conns"), "{t}");
    }

    /// The whole line, byte for byte as the hand-written JSON printed it before serde: the field
    /// order, the fixed decimals, `null`s and escapes are the format scripts read.
    #[test]
    fn json_line_is_unchanged() {
        let expected = concat!(
            r#"{"target":"127.0.0.1:1883 (spawned `x \"y\"`)","publishers":2,"subscribers":2,"#,
            r#""qos":1,"payload_bytes":24,"messages_per_publisher":10,"published":20,"#,
            r#""expected":40,"delivered":38,"lost":2,"duplicated":1,"unexpected":0,"#,
            r#""idle_connections":0,"idle_accepted":0,"idle_closed":0,"elapsed_s":0.500000,"#,
            r#""deliveries_per_s":76.0,"publish_per_s":40.0,"latency_p50_ms":0.250,"#,
            r#""latency_p99_ms":1.500,"latency_max_ms":2.000,"broker_peak_rss_mb":2.0,"#,
            r#""broker_rss_after_idle_mb":null,"timed_out":false,"errors":[],"warnings":["w\n"]}"#,
        );
        assert_eq!(sample_report().to_json(), expected);
        let mut r = sample_report();
        r.elapsed_s = f64::NAN;
        r.errors = vec!["a\u{1}\t\\".into()];
        let j = r.to_json();
        assert!(j.contains(r#""elapsed_s":null,"#), "{j}");
        assert!(j.contains(r#""errors":["a\u0001\t\\"]"#), "{j}");
    }

    #[test]
    fn report_shows_idle_connections() {
        let mut r = sample_report();
        r.idle = IdleOutcome {
            requested: 10_000,
            accepted: 9_990,
            closed: 3,
            broker_rss_kb: Some(10 * 1024),
        };
        let j = r.to_json();
        for part in [
            "\"idle_connections\":10000,",
            "\"idle_accepted\":9990,",
            "\"idle_closed\":3,",
            "\"broker_rss_after_idle_mb\":10.0,",
        ] {
            assert!(j.contains(part), "{part} in {j}");
        }
        let t = r.to_text();
        assert!(
            t.contains("10000 requested, 9990 accepted, 3 closed by the broker during the run; broker RSS 10.0 MB once open"),
            "{t}"
        );
    }

    #[test]
    fn report_without_rss_or_deliveries_says_unknown() {
        let mut r = sample_report();
        r.broker_peak_rss_kb = None;
        r.latency_ms = None;
        assert!(r.to_json().contains("\"broker_peak_rss_mb\":null"));
        assert!(r.to_json().contains("\"latency_p50_ms\":null"));
        assert!(r.to_text().contains("unknown"));
        assert!(r.to_text().contains("no deliveries"));
    }
}
