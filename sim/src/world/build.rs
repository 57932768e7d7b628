//! A scenario built in code: the same tables as a scenario file, set by methods, checked by the
//! same parser (the builder writes the TOML, [`Builder::toml`] shows it, so that a failing world
//! built in code can be kept as a file).
//!
//! ```no_run
//! use mqsim::app::reference::ReferenceSketch;
//! use mqsim::app::Value;
//! use mqsim_sim::world::build::{Builder, Devices, Fault, Input, Link, Subscriber};
//!
//! let world = Builder::new("fifty doors, a 30 s partition, 20 % loss")
//!     .duration_s(120)
//!     .link("wifi", Link::new().latency_ms(20).jitter_ms(5).loss(0.2))
//!     .devices(Devices::app("door", "door-alarm").profile("esp-mqtt").count(50).link("wifi"))
//!     .subscriber(Subscriber::new("backend", "alarm/#").qos(1))
//!     .fault(Fault::partition().target("door").at_s(30.0).duration_s(30.0))
//!     .input(Input::at("door", "door", 40.0, Value::Bool(true)))
//!     .world()
//!     .unwrap()
//!     .app("door-alarm", |_| ReferenceSketch::default());
//! world.check_seeds(1..10).unwrap();
//! ```

use std::fmt::Write as _;

use mqsim::app::Value;

use super::World;

/// A scenario being built; [`Builder::world`] checks it.
#[derive(Clone, Debug)]
pub struct Builder {
    name: String,
    top: String,
    tables: String,
}

impl Builder {
    /// A scenario with this description (also its name in messages).
    pub fn new(description: &str) -> Builder {
        let mut top = String::new();
        let _ = writeln!(top, "description = {}", quote(description));
        Builder {
            name: format!("{description} (built in code)"),
            top,
            tables: String::new(),
        }
    }

    fn key(mut self, key: &str, value: impl std::fmt::Display) -> Builder {
        let _ = writeln!(self.top, "{key} = {value}");
        self
    }

    /// The run's seed (default 1).
    pub fn seed(self, seed: u64) -> Builder {
        self.key("seed", seed)
    }

    /// The safety phase's length, in s (required).
    pub fn duration_s(self, s: u64) -> Builder {
        self.key("duration_s", s)
    }

    /// The liveness phase's length, in s (default 30).
    pub fn heal_s(self, s: u64) -> Builder {
        self.key("heal_s", s)
    }

    /// The simulation step, in ms (default 1).
    pub fn tick_ms(self, ms: u64) -> Builder {
        self.key("tick_ms", ms)
    }

    /// Whether every end runs its TCP stack profile (default `true`: each device its library's,
    /// the broker's end and subscribers Linux); `false` = the legacy `plain` model, to compare
    /// with ([`crate::scenario::Scenario::tcp_profiles`]).
    pub fn tcp_profiles(self, on: bool) -> Builder {
        self.key("tcp_profiles", on)
    }

    /// The broker's settings.
    pub fn broker(mut self, b: Broker) -> Builder {
        let _ = write!(self.tables, "\n[broker]\n{}", b.0);
        self
    }

    /// A link profile, used by name.
    pub fn link(mut self, name: &str, l: Link) -> Builder {
        let _ = write!(self.tables, "\n[link.{}]\n{}", quote(name), l.0);
        self
    }

    /// A group of devices.
    pub fn devices(mut self, d: Devices) -> Builder {
        let _ = write!(self.tables, "\n[[device]]\n{}", d.0);
        self
    }

    /// A `mosquitto_sub`-like subscriber.
    pub fn subscriber(mut self, s: Subscriber) -> Builder {
        let _ = write!(self.tables, "\n[[subscriber]]\n{}", s.0);
        self
    }

    /// A fault.
    pub fn fault(mut self, f: Fault) -> Builder {
        let _ = write!(self.tables, "\n[[fault]]\n{}", f.0);
        self
    }

    /// A board input the world sets.
    pub fn input(mut self, i: Input) -> Builder {
        let _ = write!(self.tables, "\n[[input]]\n{}", i.0);
        self
    }

    /// An `[expect]` range on the whole run's report (`delivered`, `lost`, ...).
    pub fn expect(mut self, metric: &str, min: f64, max: f64) -> Builder {
        let _ = write!(self.tables, "\n[expect]\n{metric} = [{min}, {max}]\n");
        self
    }

    /// The scenario as a file would say it.
    pub fn toml(&self) -> String {
        format!("{}{}", self.top, self.tables)
    }

    /// The world of this scenario, checked as a file is (errors name the line of
    /// [`Builder::toml`]).
    pub fn world(&self) -> Result<World, String> {
        World::from_toml(&self.name, &self.toml())
    }
}

/// A TOML string.
fn quote(s: &str) -> String {
    let mut q = String::from('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

macro_rules! setters {
    ($ty:ident { $($(#[$doc:meta])* $name:ident: $t:ty => $key:literal),* $(,)? }) => {
        impl $ty {
            $(
                $(#[$doc])*
                pub fn $name(mut self, v: $t) -> $ty {
                    let _ = writeln!(self.0, "{} = {}", $key, Val(v));
                    self
                }
            )*
        }
    };
}

/// A value as TOML writes it.
struct Val<T>(T);

impl std::fmt::Display for Val<&str> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&quote(self.0))
    }
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for Val<$t> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    )*};
}
plain!(u64, u32, u16, u8, bool, f64);

/// `[broker]`.
#[derive(Clone, Debug, Default)]
pub struct Broker(String);

impl Broker {
    /// The broker's defaults.
    pub fn new() -> Broker {
        Broker::default()
    }
}

setters!(Broker {
    /// Messages in flight per client.
    max_inflight_messages: u64 => "max_inflight_messages",
    /// Messages queued per client.
    max_queued_messages: u64 => "max_queued_messages",
    /// Journal to the host's modelled disk.
    persistence: bool => "persistence",
    /// Simulated time of one sync of that disk, in ms.
    disk_sync_ms: u64 => "disk_sync_ms",
    /// Whose behaviour the broker reproduces (`mqsim`, `mosquitto-2.0`).
    profile: &str => "profile",
});

/// `[link.NAME]`.
#[derive(Clone, Debug, Default)]
pub struct Link(String);

impl Link {
    /// A link with the defaults (5 ms, no loss).
    pub fn new() -> Link {
        Link::default()
    }

    /// One-way latency in µs, for a fraction of a millisecond (`latency_us(50)` is the file's
    /// `latency_ms = 0.05`); [`Link::latency_ms`] for whole ones.
    pub fn latency_us(mut self, us: u64) -> Link {
        let _ = writeln!(self.0, "latency_ms = {}", crate::scenario::millis(us));
        self
    }

    /// Jitter in µs (the file's `jitter_ms`, a fraction allowed).
    pub fn jitter_us(mut self, us: u64) -> Link {
        let _ = writeln!(self.0, "jitter_ms = {}", crate::scenario::millis(us));
        self
    }

    /// Bursty loss: the Gilbert-Elliott chain of the scenario format.
    pub fn gilbert_elliott(
        mut self,
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    ) -> Link {
        let _ = writeln!(
            self.0,
            "gilbert_elliott = {{ p_good_to_bad = {p_good_to_bad:?}, p_bad_to_good = {p_bad_to_good:?}, loss_good = {loss_good:?}, loss_bad = {loss_bad:?} }}"
        );
        self
    }
}

setters!(Link {
    /// One-way latency, in whole ms ([`Link::latency_us`] for a fraction).
    latency_ms: u64 => "latency_ms",
    /// Jitter, in whole ms ([`Link::jitter_us`] for a fraction).
    jitter_ms: u64 => "jitter_ms",
    /// Independent loss per segment (0..=1).
    loss: f64 => "loss",
});

/// `[[device]]`.
#[derive(Clone, Debug)]
pub struct Devices(String);

impl Devices {
    /// Devices named `name` (`name-0`, `name-1`, ... with a count) running application `app`.
    pub fn app(name: &str, app: &str) -> Devices {
        Devices(format!("name = {}\napp = {}\n", quote(name), quote(app)))
    }

    /// Devices named `name` running the reference sketch at `qos`.
    pub fn sketch(name: &str, qos: u8) -> Devices {
        Devices(format!("name = {}\nqos = {qos}\n", quote(name)))
    }

    /// Devices named `name` running the Arduino sketch at `path` (`app.ino`), compiled for the
    /// host with its libraries ([`crate::sketch`]). Its profile (required, as for an app) names
    /// the library it links; the simulator uses it only for the device's TCP stack
    /// (`pubsubclient`: Arduino-ESP32's lwIP).
    pub fn arduino(name: &str, path: &str) -> Devices {
        Devices(format!(
            "name = {}\nsketch = {}\n",
            quote(name),
            quote(path)
        ))
    }

    /// Arduino `libraries/` folders for an [`Devices::arduino`] sketch, searched before
    /// `MQSIM_ARDUINO_LIBRARIES`'s.
    pub fn libraries(mut self, folders: &[&str]) -> Devices {
        let list: Vec<String> = folders.iter().map(|f| quote(f)).collect();
        let _ = writeln!(self.0, "libraries = [{}]", list.join(", "));
        self
    }
}

setters!(Devices {
    /// The library: `pubsubclient`, `esp-mqtt` or `mqsim`.
    profile: &str => "profile",
    /// How many.
    count: u32 => "count",
    /// Their link profile's name.
    link: &str => "link",
    /// Clean session.
    clean_session: bool => "clean_session",
    /// Keep alive, in s.
    keepalive_s: u16 => "keepalive_s",
    /// Their TCP stack profile over the one their library profile runs on (`linux`,
    /// `lwip-esp-idf`, `lwip-arduino`, `smoltcp-embassy`, `plain`).
    tcp_stack: &str => "tcp_stack",
});

/// `[[subscriber]]`.
#[derive(Clone, Debug)]
pub struct Subscriber(String);

impl Subscriber {
    /// A subscriber named `name` on `filter` (QoS 0 until [`Subscriber::qos`]).
    pub fn new(name: &str, filter: &str) -> Subscriber {
        Subscriber(format!(
            "name = {}\nfilter = {}\n",
            quote(name),
            quote(filter)
        ))
    }
}

setters!(Subscriber {
    /// Its subscription's QoS.
    qos: u8 => "qos",
    /// Clean session.
    clean_session: bool => "clean_session",
    /// Its link profile's name.
    link: &str => "link",
    /// Keep alive, in s.
    keepalive_s: u16 => "keepalive_s",
});

/// `[[fault]]`.
#[derive(Clone, Debug)]
pub struct Fault(String);

impl Fault {
    fn kind(kind: &str) -> Fault {
        Fault(format!("kind = {}\n", quote(kind)))
    }
    /// Both directions of the target's link lose everything, silently.
    pub fn partition() -> Fault {
        Fault::kind("partition")
    }
    /// One direction (`up` or `down`) loses everything.
    pub fn half_open(direction: &str) -> Fault {
        Fault::kind("half-open").direction(direction)
    }
    /// The target's connection is reset.
    pub fn reset() -> Fault {
        Fault::kind("reset")
    }
    /// The target's WiFi drops and rejoins.
    pub fn wifi_drop() -> Fault {
        Fault::kind("wifi-drop")
    }
    /// The broker host loses power (what its disk had not synced may be lost).
    pub fn broker_power_cut() -> Fault {
        Fault::kind("broker-power-cut")
    }
    /// The broker stops cleanly and starts again.
    pub fn broker_restart() -> Fault {
        Fault::kind("broker-restart")
    }
}

setters!(Fault {
    /// When, in s.
    at_s: f64 => "at_s",
    /// How long, in s.
    duration_s: f64 => "duration_s",
    /// A device or subscriber (group or client id).
    target: &str => "target",
    /// `up` or `down`, for half-open.
    direction: &str => "direction",
});

/// `[[input]]`.
#[derive(Clone, Debug)]
pub struct Input(String);

impl Input {
    /// Input `name` of `target`'s devices takes `value` at `at_s`.
    pub fn at(target: &str, name: &str, at_s: f64, value: Value) -> Input {
        let value = match value {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format!("{:?}", f64::from(n)),
        };
        Input(format!(
            "target = {}\nname = {}\nat_s = {at_s:?}\nvalue = {value}\n",
            quote(target),
            quote(name)
        ))
    }

    /// Input `name` of each of `target`'s devices flips (first to true) after waits drawn from
    /// the seed between `min_s` and `max_s`.
    pub fn toggle(target: &str, name: &str, min_s: f64, max_s: f64) -> Input {
        Input(format!(
            "target = {}\nname = {}\ntoggle_every_s = [{min_s:?}, {max_s:?}]\n",
            quote(target),
            quote(name)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(b: Builder) -> crate::scenario::Scenario {
        b.world()
            .unwrap_or_else(|e| panic!("{e}"))
            .scenario()
            .clone()
    }

    #[test]
    fn a_link_takes_a_fraction_of_a_millisecond() {
        let b = Builder::new("veth")
            .duration_s(10)
            .link("veth", Link::new().latency_us(25).jitter_us(1_500))
            .link("wifi", Link::new().latency_ms(20).jitter_ms(5))
            .devices(
                Devices::sketch("esp32", 0)
                    .profile("pubsubclient")
                    .link("veth"),
            );
        assert!(b.toml().contains("latency_ms = 0.025\njitter_ms = 1.5\n"));
        let s = built(b);
        let (veth, wifi) = (s.link("veth"), s.link("wifi"));
        assert_eq!((veth.latency_us, veth.jitter_us), (25, 1_500));
        assert_eq!((wifi.latency_us, wifi.jitter_us), (20_000, 5_000));
    }

    #[test]
    fn stack_profiles_are_the_default_and_can_be_turned_off_or_named() {
        let base = || {
            Builder::new("stacks")
                .duration_s(10)
                .devices(Devices::sketch("esp32", 0).profile("pubsubclient"))
        };
        assert!(built(base()).tcp_profiles);
        let legacy = built(base().tcp_profiles(false));
        assert!(!legacy.tcp_profiles);
        assert!(base()
            .tcp_profiles(false)
            .toml()
            .contains("tcp_profiles = false"));
        let named = built(
            base().devices(
                Devices::sketch("pc", 1)
                    .profile("esp-mqtt")
                    .tcp_stack("linux"),
            ),
        );
        assert_eq!(named.devices[0].tcp_stack, None);
        assert_eq!(named.devices[1].tcp_stack.as_deref(), Some("linux"));
        // An unknown stack is refused at the line that names it, as in a file.
        let Err(e) = base()
            .devices(
                Devices::sketch("x", 0)
                    .profile("pubsubclient")
                    .tcp_stack("winsock"),
            )
            .world()
        else {
            panic!("an unknown tcp_stack is accepted");
        };
        assert!(e.contains("tcp_stack `winsock`"), "{e}");
    }
}
