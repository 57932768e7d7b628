//! A DHT22-like sensor: 26.7 °C and 52 % to start, as in the reference serial log, drifting by a
//! seeded random walk (a step now and then, in the sensor's resolution).

use mqsim::device::Reading;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Start of the walk: the values the reference device printed.
pub const START_TEMPERATURE_C: f32 = 26.7;
pub const START_HUMIDITY_PCT: f32 = 52.0;
/// Chance in 1,000 that one reading moves by one step.
const STEP_CHANCE_PER_MILLE: u32 = 150;
/// One step: the DHT22's 0.1 °C resolution, 1 % humidity (as the reference prints).
const STEP_TENTHS_C: i32 = 1;
const STEP_PCT: i32 = 1;

#[derive(Debug)]
pub struct Sensor {
    rng: ChaCha8Rng,
    /// Tenths of a degree and whole percent: no float drift in the walk itself.
    tenths_c: i32,
    pct: i32,
}

impl Sensor {
    pub fn new(seed: u64) -> Sensor {
        Sensor {
            rng: ChaCha8Rng::seed_from_u64(seed),
            tenths_c: (START_TEMPERATURE_C * 10.0).round() as i32,
            pct: START_HUMIDITY_PCT as i32,
        }
    }

    fn step(&mut self) -> i32 {
        let r = self.rng.next_u32() % 2_000;
        match r {
            r if r < STEP_CHANCE_PER_MILLE => -1,
            r if r < 2 * STEP_CHANCE_PER_MILLE => 1,
            _ => 0,
        }
    }

    pub fn read(&mut self) -> Reading {
        self.tenths_c = (self.tenths_c + self.step() * STEP_TENTHS_C).clamp(150, 350);
        self.pct = (self.pct + self.step() * STEP_PCT).clamp(20, 90);
        Reading {
            temperature_c: self.tenths_c as f32 / 10.0,
            humidity_pct: self.pct as f32,
        }
    }
}

#[cfg(test)]
mod tests;
