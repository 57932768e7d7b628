//! The run's random streams, each named, all derived here from the one seed of the run.
//!
//! One mixing function, [`splitmix64`] (SplitMix64's output function), turns a stream's state
//! into its seed. A stream's state is the run's seed combined with the stream's key:
//!
//! - the run's streams ([`Stream`]): `mix(run ^ key * GAMMA)`, the keys being turmoil 1, the
//!   network 2, the disk 3, device `d`'s sensor `1_000 + d` and its rng `2_000 + d` (for `d`
//!   below 1,000; from device 1,000 on, keys above 2^32, see [`Stream`]);
//! - the links ([`link`]): connection `n`'s seed is `mix(network + (n + 1) * GAMMA)` under the
//!   network's seed, the network's SplitMix64 sequence.
//!
//! These two combinations are the ones the simulator has always used: every snapshot and
//! same-seed trace depends on these exact numbers, so they must not change. The old keys would
//! overlap from device 1,000 on (device 1,000's sensor key is device 0's rng key), so a fleet's
//! devices from 1,000 on take keys of their own above 2^32: every device of any fleet has its own
//! streams, and no existing run changes.

/// SplitMix64's increment (the golden ratio in 64 bits).
pub const SPLITMIX64_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a well-mixed 64-bit value from any 64-bit state. The one
/// mixing function of every stream.
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A named stream of one run, derived from the run's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// turmoil's own rng (`Builder::rng_seed`).
    Turmoil,
    /// The modelled network: each connection's link seed is [`link`] of this one.
    Network,
    /// The broker host's disk (how much of the page cache a power cut keeps).
    Disk,
    /// A device's sensor walk, by device number.
    Sensor(u32),
    /// A device's own rng (its WiFi join delays), by device number.
    DeviceRng(u32),
    /// A device application's own seed ([`crate::run::AppDevice::seed`]), by device number.
    App(u32),
    /// The draws of a toggled `[[input]]`, by input and device number.
    Input(u32, u32),
    /// A device's start time within its group's `start_spread_s`, by device number.
    Start(u32),
}

/// From this device number on, the sensor and rng streams take keys above 2^32 (below it, the
/// historical keys `1_000 + d` and `2_000 + d`, which would collide from here).
const FLEET_KEYS_FROM: u32 = 1_000;

impl Stream {
    /// The stream's key, combined with the run's seed.
    fn key(self) -> u64 {
        match self {
            Stream::Turmoil => 1,
            Stream::Network => 2,
            Stream::Disk => 3,
            Stream::Sensor(device) if device < FLEET_KEYS_FROM => 1_000 + u64::from(device),
            Stream::DeviceRng(device) if device < FLEET_KEYS_FROM => 2_000 + u64::from(device),
            Stream::Sensor(device) => (4 << 32) | u64::from(device),
            Stream::DeviceRng(device) => (5 << 32) | u64::from(device),
            Stream::Start(device) => (3 << 32) | u64::from(device),
            // Keys above 2^32, apart from the ones above for any device number.
            Stream::App(device) => (1 << 32) | u64::from(device),
            Stream::Input(input, device) => {
                (2 << 32) | (u64::from(input) << 20) | u64::from(device)
            }
        }
    }

    /// This stream's seed in the run of seed `run`.
    pub fn seed(self, run: u64) -> u64 {
        splitmix64(run ^ self.key().wrapping_mul(SPLITMIX64_GAMMA))
    }
}

/// The link seed of connection number `conn` (in connection order) under the network's seed
/// ([`Stream::Network`]): the `conn + 1`-th output of SplitMix64 started at `network`.
pub fn link(network: u64, conn: u64) -> u64 {
    splitmix64(network.wrapping_add(conn.wrapping_add(1).wrapping_mul(SPLITMIX64_GAMMA)))
}

#[cfg(test)]
mod tests;
