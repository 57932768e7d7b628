//! What a sweep keeps of one seed's run: enough for the table of distributions
//! ([`super::table`]) and for its failure's replay, small enough to keep 100,000 of them and to
//! write them to a shard file ([`super::shard`]).

use serde::{Deserialize, Serialize};

use crate::report::{expect_key, meets};
use crate::run::RunOutcome;
use crate::scenario::{Metric, Scope};

/// One seed's run, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOutcome {
    pub seed: u64,
    /// By publish QoS 0, 1, 2: `None` where nothing was published at that QoS and no device
    /// group of the reference sketch publishes at it.
    pub qos: [Option<QosOutcome>; 3],
    /// A connection broke: a client reconnected, or a message was lost with a broken
    /// connection (a client that never came back counts too).
    pub broken: bool,
    /// The first thing that failed, if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<SeedFailure>,
    /// The whole run's loss causes and costs ([`WHOLE_RUN_METRICS`]), by their `[expect]` key;
    /// a metric the run did not measure is absent.
    #[serde(default)]
    pub whole: std::collections::BTreeMap<String, u64>,
}

/// The whole-run figures a sweep spreads over its seeds besides the per-QoS ones: the loss
/// causes (docs/simulator.md, the ledger) and the costs (docs/costs.md), as `[expect]` names them.
pub const WHOLE_RUN_METRICS: [Metric; 13] = [
    Metric::LostConnection,
    Metric::LostExpired,
    Metric::LostDropped,
    Metric::LostWithBroker,
    Metric::LostBrokerUnsaved,
    Metric::LostNotSubscribed,
    Metric::LostUnexplained,
    Metric::MqttPackets,
    Metric::TcpSegments,
    Metric::BytesPerDelivered,
    Metric::EnergyMj,
    Metric::EnergyUjPerDelivered,
    Metric::BatteryDays,
];

/// One QoS's numbers in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QosOutcome {
    pub published: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Reconnects of the device groups that publish at this QoS (their `qos`).
    pub reconnects: u64,
    /// Publish call to first receipt, nearest rank; `None` without a receipt.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// What failed first in a run, and how to run it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedFailure {
    /// What failed, as shrinking compares it: `invariant qos1`, `expect qos0.lost`, or `error`
    /// (the simulation could not run).
    pub name: String,
    /// The first violation or unmet expectation, in full.
    pub detail: String,
    /// The command that replays the seed.
    pub replay: String,
    /// With `--swarm`: the fault configuration this seed drew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<String>,
}

impl SeedOutcome {
    /// The summary of a finished run.
    pub fn of(out: &RunOutcome) -> SeedOutcome {
        let s = &out.report.summary;
        let qos = std::array::from_fn(|q| {
            let t = &s.qos[q];
            let reconnects = out
                .scenario
                .devices
                .iter()
                .filter(|d| usize::from(d.qos) == q)
                .filter_map(|d| s.devices.get(&d.name))
                .map(|t| t.reconnects)
                .sum();
            // Measured where something was published at this QoS, or a reference-sketch group
            // publishes at it (a run in which it never got to publish counts too).
            let declared = out
                .scenario
                .devices
                .iter()
                .any(|d| d.app.is_none() && d.sketch.is_none() && usize::from(d.qos) == q);
            (t.published > 0 || declared).then(|| QosOutcome {
                published: t.published,
                lost: t.lost,
                duplicated: t.duplicated,
                reconnects,
                p50_us: t.latency_percentile_us(50),
                p99_us: t.latency_percentile_us(99),
            })
        });
        let failure = failure_of(out).map(|(name, detail)| SeedFailure {
            name,
            detail,
            replay: out.replay_line(),
            swarm: None,
        });
        let whole = WHOLE_RUN_METRICS
            .iter()
            .filter_map(|m| Some((m.key().to_string(), out.report.metric(&Scope::All, *m)?)))
            .collect();
        SeedOutcome {
            seed: out.scenario.seed,
            qos,
            broken: s.all.reconnects > 0
                || s.all.causes.connection > 0
                || s.behaviours.subscribers_gave_up > 0,
            failure,
            whole,
        }
    }

    /// A seed whose simulation could not run.
    pub fn error(seed: u64, why: String, replay: String) -> SeedOutcome {
        SeedOutcome {
            seed,
            qos: [None, None, None],
            broken: false,
            failure: Some(SeedFailure {
                name: "error".to_string(),
                detail: why,
                replay,
                swarm: None,
            }),
            whole: Default::default(),
        }
    }
}

/// The run's first failure as (name, detail): its first invariant violation, else its first
/// unmet expectation; `None` when it passed.
pub fn failure_of(out: &RunOutcome) -> Option<(String, String)> {
    if let Some(v) = out.violations.first() {
        return Some((
            format!("invariant {}", v.invariant),
            format!(
                "invariant {} broken at {}.{:03} s: {}",
                v.invariant,
                v.at / 1_000_000,
                (v.at / 1_000) % 1_000,
                v.detail
            ),
        ));
    }
    let check = out
        .scenario
        .expect
        .checks
        .iter()
        .find(|c| !meets(c, &out.report))?;
    let detail = out
        .unmet
        .first()
        .cloned()
        .unwrap_or_else(|| expect_key(check));
    Some((format!("expect {}", expect_key(check)), detail))
}
