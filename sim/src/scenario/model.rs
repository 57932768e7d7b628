//! The scenario as the simulator runs it: validated, times in milliseconds.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The name of the link profile that exists without being defined.
pub const IDEAL_LINK: &str = "ideal";

/// A validated scenario. Times are in milliseconds from here on.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file's name as given to [`Scenario::parse`] (used in messages and test names).
    pub file: String,
    pub description: String,
    pub seed: u64,
    pub duration_ms: u64,
    pub tick_ms: u64,
    pub heal_ms: u64,
    pub broker: BrokerSpec,
    pub links: BTreeMap<String, LinkSpec>,
    pub devices: Vec<DeviceSpec>,
    pub subscribers: Vec<SubscriberSpec>,
    /// Every end runs its TCP stack profile (devices their library's, subscribers and the
    /// broker Linux): `true`, the default. `false` (`tcp_profiles = false`) = the legacy `plain`
    /// model, kept for comparison, for every end unless a device names its `tcp_stack`.
    pub tcp_profiles: bool,
    /// The engines this scenario runs on (`engines = [...]`; default [`ENGINES`], every one):
    /// a fleet too large for the reference engine in `cargo test` names the fast one only.
    pub engines: Vec<String>,
    /// Sorted by start time (stable: file order for equal starts).
    pub faults: Vec<FaultSpec>,
    /// The board inputs the world sets (`[[input]]`).
    pub inputs: Vec<InputSpec>,
    pub expect: Expect,
}

/// An input of the devices' boards that the world sets (`[[input]]`): a door switch, a button.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// A device group or client id.
    pub target: String,
    /// The input's name, as the application sees it.
    pub name: String,
    pub schedule: InputSchedule,
}

/// When an input changes.
#[derive(Clone, Debug, PartialEq)]
pub enum InputSchedule {
    /// Once, at `at_ms`, to `value`.
    At {
        at_ms: u64,
        value: mqsim::app::Value,
    },
    /// A switch flipped (first to on) after a wait drawn from the seed between `min_ms` and
    /// `max_ms`, again and again, each device of the target on its own draws, during the safety
    /// phase.
    Toggle { min_ms: u64, max_ms: u64 },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerSpec {
    pub max_inflight_messages: Option<u16>,
    pub max_queued_messages: Option<u32>,
    pub persistence: bool,
    /// Simulated time of one disk sync, with persistence.
    pub disk_sync_ms: u64,
    /// How long a socket may stay without CONNECT before the broker closes it (default: the
    /// broker's, 10 s; mosquitto 2.0 gives a new socket keepalive 60 s, so 90 s).
    pub connect_timeout_s: Option<u64>,
    /// Whose behaviour the broker reproduces (`mqsim`, the default, or `mosquitto-2.0`): see
    /// [`mqsim::broker::Profile`].
    pub profile: mqsim::broker::Profile,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    /// One-way latency, in µs (the file's `latency_ms`, which may be a fraction).
    pub latency_us: u64,
    /// Jitter bound, in µs (the file's `jitter_ms`).
    pub jitter_us: u64,
    pub loss: Loss,
    /// WiFi (re)join time range, inclusive.
    pub wifi_join_ms: (u64, u64),
    /// The loss happens in each sender's own firewall, not on the wire
    /// (`net::link::LinkConfig::loss_at_sender`).
    pub loss_at_sender: bool,
}

impl LinkSpec {
    pub fn ideal() -> LinkSpec {
        LinkSpec {
            latency_us: 5_000,
            jitter_us: 0,
            loss: Loss::None,
            wifi_join_ms: (1000, 4000),
            loss_at_sender: false,
        }
    }

    /// Long-run share of segments lost.
    pub fn mean_loss(&self) -> f64 {
        self.loss.mean()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    None,
    /// Each segment lost with this probability, independently.
    Independent(f64),
    /// Gilbert-Elliott: per segment, first the state moves (good -> bad with `p_good_to_bad`,
    /// bad -> good with `p_bad_to_good`), then the segment is lost with the state's loss rate.
    GilbertElliott {
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

impl Loss {
    pub fn mean(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Independent(p) => p,
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let moving = p_good_to_bad + p_bad_to_good;
                if moving == 0.0 {
                    return loss_good;
                }
                let bad = p_good_to_bad / moving;
                bad * loss_bad + (1.0 - bad) * loss_good
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Arduino PubSubClient 2.8: QoS 0 publish only, keepalive 15 s, no reconnect of its own.
    Pubsubclient,
    /// ESP-IDF esp-mqtt: outbox, resend every second, keepalive 120 s, reconnect after 10 s.
    EspMqtt,
    /// This project's own client, as the firmware runs it (and a backend on a PC): QoS 0/1/2,
    /// queued while offline, keepalive 60 s, reconnect after 2 s.
    Mqsim,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Pubsubclient => "pubsubclient",
            Profile::EspMqtt => "esp-mqtt",
            Profile::Mqsim => "mqsim",
        }
    }

    pub fn default_keepalive_s(self) -> u16 {
        match self {
            Profile::Pubsubclient => 15,
            Profile::EspMqtt => 120,
            Profile::Mqsim => 60,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WillSpec {
    /// May contain `{id}`.
    pub topic: String,
    pub payload: String,
    pub qos: u8,
    pub retain: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    pub name: String,
    pub count: u32,
    pub profile: Profile,
    /// The application the devices run: `None` for the reference sketch, else a name the run
    /// was given an application for ([`crate::world::World::app`]). The sketch's keys (`qos`,
    /// `interval_ms`, `messages`, `topic_prefix`, `retain`, `publish_humidity`) are the reference
    /// sketch's only.
    pub app: Option<String>,
    /// An Arduino sketch the devices run instead (`sketch = "app.ino"`, relative to the scenario
    /// file's folder): the user's C++ and its libraries, compiled for the host
    /// ([`crate::sketch`]). The reference sketch's keys do not apply.
    pub sketch: Option<String>,
    /// Arduino `libraries/` folders for the sketch, searched before `MQSIM_ARDUINO_LIBRARIES`'s
    /// (relative to the scenario file's folder).
    pub libraries: Vec<String>,
    pub qos: u8,
    pub interval_ms: u64,
    pub link: String,
    pub clean_session: bool,
    pub keepalive_s: u16,
    pub messages: Option<u64>,
    /// May contain `{id}`.
    /// The device publishes `PREFIX/TEM` and `PREFIX/HUM`; `{id}` stands for the client id.
    pub topic_prefix: String,
    pub retain: bool,
    /// Each reading publishes `PREFIX/HUM` after `PREFIX/TEM` (true, the sketch's default), or
    /// the temperature only: one message per reading.
    pub publish_humidity: bool,
    /// esp-mqtt only.
    pub outbox_expiry_s: Option<u64>,
    /// The device's TCP stack profile by name (`crate::net::link::Stack::by_name`); `None` =
    /// the profile's own stack (pubsubclient: lwip-arduino, esp-mqtt: lwip-esp-idf, mqsim:
    /// smoltcp-embassy).
    pub tcp_stack: Option<String>,
    pub will: Option<WillSpec>,
    /// Each device of the group starts (boots, joins WiFi) at a time drawn from its own stream
    /// (`crate::seed::Stream::Start`) in `[0, start_spread_ms]`; 0 = all at once.
    pub start_spread_ms: u64,
    /// The power model and battery (`[device.power]`; default the sourced ESP32-C3 figures).
    pub power: crate::cost::PowerSpec,
}

/// The simulation engines a scenario may name in `engines`: `turmoil` (the real tokio adapter
/// over turmoil) and `direct` (the sans-IO state machines on an event queue).
pub const ENGINES: [&str; 2] = ["turmoil", "direct"];

impl DeviceSpec {
    /// The client ids of this group: `name` alone, or `name-0`, `name-1`, ... when count > 1.
    pub fn client_ids(&self) -> Vec<String> {
        instance_names(&self.name, self.count)
    }

    /// The temperature and humidity topics one instance publishes to.
    pub fn topics_for(&self, client_id: &str) -> (String, String) {
        let prefix = self.topic_prefix.replace("{id}", client_id);
        (format!("{prefix}/TEM"), format!("{prefix}/HUM"))
    }
}

pub(super) fn instance_names(name: &str, count: u32) -> Vec<String> {
    if count == 1 {
        vec![name.to_string()]
    } else {
        (0..count).map(|i| format!("{name}-{i}")).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberSpec {
    pub name: String,
    pub filter: String,
    pub qos: u8,
    pub clean_session: bool,
    pub link: String,
    pub keepalive_s: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client -> broker segments are lost; the client does not notice.
    Up,
    /// Broker -> client segments are lost.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Partition,
    HalfOpen(Direction),
    Reset,
    WifiDrop,
    BrokerPowerCut,
    BrokerRestart,
}

impl FaultKind {
    pub fn targets_broker(self) -> bool {
        matches!(self, FaultKind::BrokerPowerCut | FaultKind::BrokerRestart)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpec {
    pub at_ms: u64,
    /// Zero for `reset`.
    pub duration_ms: u64,
    pub kind: FaultKind,
    /// A device/subscriber group or client id; `None` = every client (or the broker).
    pub target: Option<String>,
}

/// What an `[expect]` range applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    All,
    Qos(u8),
    /// A `[[device]]` group name.
    Device(String),
    Subscriber(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => write!(f, "expect"),
            Scope::Qos(q) => write!(f, "expect.qos{q}"),
            Scope::Device(d) => write!(f, "expect.device.{d}"),
            Scope::Subscriber(s) => write!(f, "expect.subscriber.{s}"),
        }
    }
}

/// A number the report gives per scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Publish calls.
    Published,
    /// Publish calls the device's client refused (not connected, outbox full, ...).
    Refused,
    /// Completed at the publisher: PUBACK (QoS 1), PUBCOMP (QoS 2), written (QoS 0).
    Acknowledged,
    /// Unique (message, subscriber) receipts.
    Delivered,
    /// (message, subscriber) pairs the subscription covered at publish time, never received,
    /// not counting `lost_with_broker`.
    Lost,
    /// Lost because a broker without persistence lost its state while it held the message.
    LostWithBroker,
    /// Receipts beyond the first (retained replays excluded).
    Duplicated,
    /// Connections after the first, per client.
    Reconnects,
    LatencyP50Ms,
    LatencyP99Ms,
    LatencyMaxMs,
    /// Invariant violations (top level only).
    Violations,
    /// Session takeovers at the broker ("Client X already connected, closing old
    /// connection."), per device (top level: all devices; not per QoS or subscriber).
    Takeovers,
    /// Lost with a connection that broke (QoS 0) or a clean session that ended.
    LostConnection,
    /// Deleted unacknowledged from the library's outbox.
    LostExpired,
    /// Dropped by the broker under a configured limit, announced in its log (not a violation).
    LostDropped,
    /// Lost with the state of a broker that autosaves (the `mosquitto-2.0` profile with
    /// persistence), after its last save: counted in `lost_with_broker`, not a violation.
    LostBrokerUnsaved,
    /// Published before the subscriber held a matching subscription it took later (not in `lost`).
    LostNotSubscribed,
    /// Covered, never received, and none of the causes explains it: a silent loss.
    LostUnexplained,
    /// MQTT packets both ways in the scope's byte streams ([`crate::cost`]).
    MqttPackets,
    /// TCP segments on the air both ways, lost ones included.
    TcpSegments,
    /// IP bytes on the air both ways.
    TcpBytes,
    /// IP bytes on the air per delivered message, rounded down.
    BytesPerDelivered,
    /// Radio-on time per device (mean over the scope's devices), ms.
    RadioOnMs,
    /// Energy per device (mean), mJ, rounded down.
    EnergyMj,
    /// The scope's devices' energy per delivered message, µJ.
    EnergyUjPerDelivered,
    /// Days the first battery of the scope to empty lasts at the run's rate, rounded down.
    BatteryDays,
}

impl Metric {
    /// A figure of the devices' power model: not measured for subscribers.
    pub fn is_energy(self) -> bool {
        matches!(
            self,
            Metric::RadioOnMs
                | Metric::EnergyMj
                | Metric::EnergyUjPerDelivered
                | Metric::BatteryDays
        )
    }

    pub const ALL: [Metric; 27] = [
        Metric::Published,
        Metric::Refused,
        Metric::Acknowledged,
        Metric::Delivered,
        Metric::Lost,
        Metric::LostWithBroker,
        Metric::Duplicated,
        Metric::Reconnects,
        Metric::LatencyP50Ms,
        Metric::LatencyP99Ms,
        Metric::LatencyMaxMs,
        Metric::Violations,
        Metric::Takeovers,
        Metric::LostConnection,
        Metric::LostExpired,
        Metric::LostDropped,
        Metric::LostBrokerUnsaved,
        Metric::LostNotSubscribed,
        Metric::LostUnexplained,
        Metric::MqttPackets,
        Metric::TcpSegments,
        Metric::TcpBytes,
        Metric::BytesPerDelivered,
        Metric::RadioOnMs,
        Metric::EnergyMj,
        Metric::EnergyUjPerDelivered,
        Metric::BatteryDays,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Metric::Published => "published",
            Metric::Refused => "refused",
            Metric::Acknowledged => "acknowledged",
            Metric::Delivered => "delivered",
            Metric::Lost => "lost",
            Metric::LostWithBroker => "lost_with_broker",
            Metric::Duplicated => "duplicated",
            Metric::Reconnects => "reconnects",
            Metric::LatencyP50Ms => "latency_p50_ms",
            Metric::LatencyP99Ms => "latency_p99_ms",
            Metric::LatencyMaxMs => "latency_max_ms",
            Metric::Violations => "violations",
            Metric::Takeovers => "takeovers",
            Metric::LostConnection => "lost_connection",
            Metric::LostExpired => "lost_expired",
            Metric::LostDropped => "lost_dropped",
            Metric::LostBrokerUnsaved => "lost_broker_unsaved",
            Metric::LostNotSubscribed => "lost_not_subscribed",
            Metric::LostUnexplained => "lost_unexplained",
            Metric::MqttPackets => "mqtt_packets",
            Metric::TcpSegments => "tcp_segments",
            Metric::TcpBytes => "tcp_bytes",
            Metric::BytesPerDelivered => "bytes_per_delivered",
            Metric::RadioOnMs => "radio_on_ms",
            Metric::EnergyMj => "energy_mj",
            Metric::EnergyUjPerDelivered => "energy_uj_per_delivered",
            Metric::BatteryDays => "battery_days",
        }
    }
}

/// One expected range: `scope.metric` in `[min, max]`, from line `line` of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectCheck {
    pub scope: Scope,
    pub metric: Metric,
    pub min: u64,
    pub max: u64,
    pub line: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// In file order within each scope; scopes in the order all, qos, device, subscriber.
    pub checks: Vec<ExpectCheck>,
}

/// One problem found in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based; 0 when the problem has no place in the file (unreadable file).
    pub line: usize,
    pub reason: String,
}

/// Every problem found in one file, each printed as `FILE:LINE: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub problems: Vec<Diagnostic>,
}

impl ScenarioError {
    /// The first problem (there is always one).
    pub fn first(&self) -> &Diagnostic {
        &self.problems[0]
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.file, p.reason)?;
            } else {
                write!(f, "{}:{}: {}", self.file, p.line, p.reason)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}
