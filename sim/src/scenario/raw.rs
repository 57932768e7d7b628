//! A scenario file as written (serde, with spans for `FILE:LINE` messages), before validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::model::{Direction, Metric, Profile};

pub(super) type Sp<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) description: Sp<String>,
    #[serde(default)]
    pub(super) seed: Option<u64>,
    pub(super) duration_s: Sp<f64>,
    #[serde(default)]
    pub(super) tick_ms: Option<Sp<u64>>,
    #[serde(default)]
    pub(super) heal_s: Option<Sp<f64>>,
    #[serde(default)]
    pub(super) broker: Option<RawBroker>,
    #[serde(default)]
    pub(super) link: BTreeMap<Sp<String>, RawLink>,
    #[serde(default)]
    pub(super) device: Vec<RawDevice>,
    #[serde(default)]
    pub(super) subscriber: Vec<RawSubscriber>,
    #[serde(default)]
    pub(super) fault: Vec<RawFault>,
    #[serde(default)]
    pub(super) input: Vec<RawInput>,
    #[serde(default)]
    pub(super) expect: Option<RawExpect>,
    #[serde(default)]
    pub(super) tcp_profiles: Option<bool>,
    #[serde(default)]
    pub(super) engines: Option<Sp<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInput {
    pub(super) target: Sp<String>,
    pub(super) name: Sp<String>,
    pub(super) at_s: Option<Sp<f64>>,
    pub(super) value: Option<Sp<toml::Value>>,
    pub(super) toggle_every_s: Option<Sp<[f64; 2]>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBroker {
    pub(super) max_inflight_messages: Option<Sp<u64>>,
    pub(super) max_queued_messages: Option<Sp<u64>>,
    pub(super) persistence: Option<Sp<bool>>,
    pub(super) disk_sync_ms: Option<Sp<u64>>,
    pub(super) connect_timeout_s: Option<Sp<u64>>,
    pub(super) profile: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    pub(super) latency_ms: Option<u64>,
    pub(super) jitter_ms: Option<u64>,
    pub(super) loss: Option<Sp<f64>>,
    pub(super) gilbert_elliott: Option<RawGilbertElliott>,
    pub(super) wifi_join_ms: Option<Sp<[u64; 2]>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGilbertElliott {
    pub(super) p_good_to_bad: Sp<f64>,
    pub(super) p_bad_to_good: Sp<f64>,
    pub(super) loss_good: Sp<f64>,
    pub(super) loss_bad: Sp<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWill {
    pub(super) topic: Sp<String>,
    #[serde(default)]
    pub(super) payload: String,
    #[serde(default)]
    pub(super) qos: Option<Sp<u8>>,
    #[serde(default)]
    pub(super) retain: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevice {
    pub(super) name: Sp<String>,
    pub(super) count: Option<Sp<u32>>,
    pub(super) profile: Sp<Profile>,
    pub(super) app: Option<Sp<String>>,
    pub(super) sketch: Option<Sp<String>>,
    pub(super) libraries: Option<Sp<Vec<String>>>,
    pub(super) qos: Option<Sp<u8>>,
    pub(super) interval_ms: Option<Sp<u64>>,
    pub(super) link: Option<Sp<String>>,
    pub(super) clean_session: Option<bool>,
    pub(super) keepalive_s: Option<Sp<u16>>,
    pub(super) messages: Option<Sp<u64>>,
    pub(super) topic_prefix: Option<Sp<String>>,
    pub(super) retain: Option<Sp<bool>>,
    pub(super) outbox_expiry_s: Option<Sp<u64>>,
    pub(super) tcp_stack: Option<Sp<String>>,
    pub(super) will: Option<RawWill>,
    pub(super) start_spread_s: Option<Sp<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscriber {
    pub(super) name: Sp<String>,
    pub(super) filter: Sp<String>,
    pub(super) qos: Sp<u8>,
    pub(super) clean_session: Option<bool>,
    pub(super) link: Option<Sp<String>>,
    pub(super) keepalive_s: Option<u16>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawFaultKind {
    Partition,
    HalfOpen,
    Reset,
    WifiDrop,
    BrokerPowerCut,
    BrokerRestart,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) at_s: Sp<f64>,
    pub(super) duration_s: Option<Sp<f64>>,
    pub(super) kind: Sp<RawFaultKind>,
    pub(super) direction: Option<Sp<Direction>>,
    pub(super) target: Option<Sp<String>>,
}

pub(super) type RawRange = Option<Sp<[u64; 2]>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRanges {
    pub(super) published: RawRange,
    pub(super) refused: RawRange,
    pub(super) acknowledged: RawRange,
    pub(super) delivered: RawRange,
    pub(super) lost: RawRange,
    pub(super) lost_with_broker: RawRange,
    pub(super) duplicated: RawRange,
    pub(super) reconnects: RawRange,
    pub(super) latency_p50_ms: RawRange,
    pub(super) latency_p99_ms: RawRange,
    pub(super) latency_max_ms: RawRange,
    pub(super) takeovers: RawRange,
    pub(super) lost_connection: RawRange,
    pub(super) lost_expired: RawRange,
    pub(super) lost_dropped: RawRange,
    pub(super) lost_broker_unsaved: RawRange,
    pub(super) lost_not_subscribed: RawRange,
    pub(super) lost_unexplained: RawRange,
}

impl RawRanges {
    pub(super) fn entries(&self) -> [(Metric, &RawRange); 18] {
        [
            (Metric::Published, &self.published),
            (Metric::Refused, &self.refused),
            (Metric::Acknowledged, &self.acknowledged),
            (Metric::Delivered, &self.delivered),
            (Metric::Lost, &self.lost),
            (Metric::LostWithBroker, &self.lost_with_broker),
            (Metric::Duplicated, &self.duplicated),
            (Metric::Reconnects, &self.reconnects),
            (Metric::LatencyP50Ms, &self.latency_p50_ms),
            (Metric::LatencyP99Ms, &self.latency_p99_ms),
            (Metric::LatencyMaxMs, &self.latency_max_ms),
            (Metric::Takeovers, &self.takeovers),
            (Metric::LostConnection, &self.lost_connection),
            (Metric::LostExpired, &self.lost_expired),
            (Metric::LostDropped, &self.lost_dropped),
            (Metric::LostBrokerUnsaved, &self.lost_broker_unsaved),
            (Metric::LostNotSubscribed, &self.lost_not_subscribed),
            (Metric::LostUnexplained, &self.lost_unexplained),
        ]
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) violations: RawRange,
    pub(super) published: RawRange,
    pub(super) refused: RawRange,
    pub(super) acknowledged: RawRange,
    pub(super) delivered: RawRange,
    pub(super) lost: RawRange,
    pub(super) lost_with_broker: RawRange,
    pub(super) duplicated: RawRange,
    pub(super) reconnects: RawRange,
    pub(super) latency_p50_ms: RawRange,
    pub(super) latency_p99_ms: RawRange,
    pub(super) latency_max_ms: RawRange,
    pub(super) takeovers: RawRange,
    pub(super) lost_connection: RawRange,
    pub(super) lost_expired: RawRange,
    pub(super) lost_dropped: RawRange,
    pub(super) lost_broker_unsaved: RawRange,
    pub(super) lost_not_subscribed: RawRange,
    pub(super) lost_unexplained: RawRange,
    pub(super) qos0: Option<RawRanges>,
    pub(super) qos1: Option<RawRanges>,
    pub(super) qos2: Option<RawRanges>,
    #[serde(default)]
    pub(super) device: BTreeMap<Sp<String>, RawRanges>,
    #[serde(default)]
    pub(super) subscriber: BTreeMap<Sp<String>, RawRanges>,
}

// ---------------------------------------------------------------------------------------------
// Validation.
