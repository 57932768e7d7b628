//! Time as a value. The core never reads a clock: every input carries the caller's `now`.

use core::fmt;
use core::ops::{Add, Sub};

/// A point in time, in microseconds since an epoch the caller chooses (process start, simulation
/// start). Monotonic by contract: an older `now` than one already seen is treated as the newest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

/// A span of time in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Instant {
    /// The origin: the moment the caller's clock (real or simulated) started counting.
    pub const ZERO: Instant = Instant(0);
    /// The instant `us` microseconds after [`Instant::ZERO`].
    pub const fn from_micros(us: u64) -> Self {
        Instant(us)
    }
    /// The instant `ms` milliseconds after [`Instant::ZERO`] (saturating at `u64::MAX` µs).
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1_000))
    }
    /// Microseconds since [`Instant::ZERO`].
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// Whole milliseconds since [`Instant::ZERO`], rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }
    /// Whole seconds since [`Instant::ZERO`], rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Time since `earlier`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time: the value that turns a timer setting off where a setting says so.
    pub const ZERO: Duration = Duration(0);
    /// A span of `us` microseconds.
    pub const fn from_micros(us: u64) -> Self {
        Duration(us)
    }
    /// A span of `ms` milliseconds (saturating at `u64::MAX` µs).
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms.saturating_mul(1_000))
    }
    /// A span of `s` seconds (saturating at `u64::MAX` µs).
    pub const fn from_secs(s: u64) -> Self {
        Duration(s.saturating_mul(1_000_000))
    }
    /// The span in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// The span in whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}
