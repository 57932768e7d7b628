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
    /// Milliseconds, a fraction allowed (`0.05`); see `Checker::millis_us`.
    pub(super) latency_ms: Option<Sp<f64>>,
    pub(super) jitter_ms: Option<Sp<f64>>,
    pub(super) loss: Option<Sp<f64>>,
    pub(super) gilbert_elliott: Option<RawGilbertElliott>,
    pub(super) wifi_join_ms: Option<Sp<[u64; 2]>>,
    pub(super) loss_at_sender: Option<bool>,
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
    pub(super) publish_humidity: Option<Sp<bool>>,
    pub(super) outbox_expiry_s: Option<Sp<u64>>,
    pub(super) tcp_stack: Option<Sp<String>>,
    pub(super) will: Option<RawWill>,
    pub(super) start_spread_s: Option<Sp<f64>>,
    pub(super) power: Option<Sp<RawPower>>,
}

/// `[device.power]`: the device's power model and battery ([`crate::cost::PowerSpec`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPower {
    /// `esp32-c3` (the default: every figure sourced) or `custom` (currents required).
    pub(super) chip: Option<Sp<String>>,
    pub(super) voltage_v: Option<Sp<f64>>,
    pub(super) tx_ma: Option<Sp<f64>>,
    pub(super) rx_ma: Option<Sp<f64>>,
    pub(super) sleep_ma: Option<Sp<f64>>,
    pub(super) dtim: Option<Sp<f64>>,
    pub(super) beacon_interval_ms: Option<Sp<f64>>,
    pub(super) beacon_wake_ms: Option<Sp<f64>>,
    pub(super) active_ms: Option<Sp<f64>>,
    pub(super) phy_rate_mbps: Option<Sp<f64>>,
    pub(super) battery_mah: Option<Sp<f64>>,
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

/// The `[expect]` metrics, each once: its key (the field) and its [`Metric`]. Both tables
/// (`RawRanges`, for a QoS, a device group or a subscriber, and `RawExpect`, the top level with
/// `violations` and the scopes) are made from this list, so a metric is added here alone.
macro_rules! expect_metrics {
    ($($field:ident => $metric:ident,)*) => {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawRanges {
            $(pub(super) $field: RawRange,)*
        }

        impl RawRanges {
            pub(super) fn entries(&self) -> Vec<(Metric, &RawRange)> {
                vec![$((Metric::$metric, &self.$field),)*]
            }
        }

        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawExpect {
            pub(super) violations: RawRange,
            $(pub(super) $field: RawRange,)*
            pub(super) qos0: Option<RawRanges>,
            pub(super) qos1: Option<RawRanges>,
            pub(super) qos2: Option<RawRanges>,
            #[serde(default)]
            pub(super) device: BTreeMap<Sp<String>, RawRanges>,
            #[serde(default)]
            pub(super) subscriber: BTreeMap<Sp<String>, RawRanges>,
        }

        impl RawExpect {
            /// The top level's ranges, as a scope's.
            pub(super) fn top(&self) -> RawRanges {
                RawRanges {
                    $($field: self.$field.clone(),)*
                }
            }
        }

        /// Every metric's key as the file writes it (the field's name).
        #[cfg(test)]
        pub(super) const EXPECT_KEYS: &[(Metric, &str)] = &[$((Metric::$metric, stringify!($field)),)*];
    };
}

expect_metrics! {
    published => Published,
    refused => Refused,
    acknowledged => Acknowledged,
    delivered => Delivered,
    lost => Lost,
    lost_with_broker => LostWithBroker,
    duplicated => Duplicated,
    reconnects => Reconnects,
    latency_p50_ms => LatencyP50Ms,
    latency_p99_ms => LatencyP99Ms,
    latency_max_ms => LatencyMaxMs,
    takeovers => Takeovers,
    lost_connection => LostConnection,
    lost_expired => LostExpired,
    lost_dropped => LostDropped,
    lost_broker_unsaved => LostBrokerUnsaved,
    lost_not_subscribed => LostNotSubscribed,
    lost_unexplained => LostUnexplained,
    mqtt_packets => MqttPackets,
    tcp_segments => TcpSegments,
    tcp_bytes => TcpBytes,
    bytes_per_delivered => BytesPerDelivered,
    radio_on_ms => RadioOnMs,
    energy_mj => EnergyMj,
    energy_uj_per_delivered => EnergyUjPerDelivered,
    battery_days => BatteryDays,
}

// ---------------------------------------------------------------------------------------------
// Validation.
