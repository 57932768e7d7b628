//! The ESP32-C3 power model: what a device's radio draws while it transmits, receives, listens
//! after traffic, sleeps between DTIM beacons and joins its access point, and how long a stated
//! battery lasts at that rate.
//!
//! Every default below names its source. Two documents give the figures:
//! - **(DS)** *ESP32-C3 Series Datasheet* (Espressif), section "Current Consumption", table
//!   "Current Consumption Depending on RF Modes" (Table 15 in version 1.0; the number moves
//!   between versions; peak currents, 3.3 V supply, 25 °C, 100 % duty cycle), and the next one,
//!   "Current Consumption Depending on Work Modes" (Modem-sleep 20 mA at 160 MHz, Light-sleep
//!   130 µA).
//! - **(LP)** *ESP-IDF Programming Guide, API Guides, Low Power Modes, "Introduction to Low Power
//!   Mode in Wi-Fi Scenarios"* (docs/en/api-guides/low-power-mode/low-power-mode-wifi.rst), its
//!   ESP32-C3 tables (sleep-current/esp32c3_light_sleep.inc, esp32c3_modem_sleep.inc: CPU 160 MHz,
//!   average / max / min current per DTIM), and the Kconfig option it lists,
//!   `CONFIG_ESP_WIFI_SLP_DEFAULT_MIN_ACTIVE_TIME` (components/esp_wifi/Kconfig, default 50 ms).
//!
//! Numbers that are not in those documents are marked **assumption** and say where they come
//! from. Everything is overridable per `[[device]]` in `[device.power]`.
//!
//! Integers throughout (µA, mV, µs, kbit/s), so a scenario keeps `Eq` and the arithmetic is exact;
//! charge is summed in µA·µs.

/// One device's power model and battery, as the scenario states it (`[device.power]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerSpec {
    /// Supply voltage, mV. (DS): the current tables are measured at 3.3 V.
    pub voltage_mv: u64,
    /// Current while transmitting, µA. (DS) "Current Consumption Depending on RF Modes": TX
    /// 802.11n, HT20, MCS7, @18.5 dBm, 276 mA (802.11b 1 Mbps @21 dBm: 335 mA; 802.11g 54 Mbps
    /// @19 dBm: 285 mA).
    pub tx_ua: u64,
    /// Current while receiving or listening, µA. (DS) same table: RX 802.11b/g/n, HT20, 84 mA.
    pub rx_ua: u64,
    /// Current between beacons with the radio off, µA. (LP) ESP32-C3 Auto Light-sleep table, min
    /// current 0.14 mA (CPU paused; (DS) "Work Modes" gives Light-sleep 130 µA). Modem-sleep
    /// without light sleep (the Arduino default) keeps the CPU on: (LP) min 20.58 mA at 160 MHz.
    pub sleep_ua: u64,
    /// Beacons between wake-ups: the AP's DTIM period (`WIFI_PS_MIN_MODEM`, ESP-IDF's default)
    /// or the station's listen interval (`WIFI_PS_MAX_MODEM`). (LP) measures DTIM 1, 3 and 10;
    /// **assumption** 1, the common router setting (ESP-AT's sleep examples: "routers generally
    /// set DTIM to 1").
    pub dtim: u64,
    /// The AP's beacon interval, µs. **Assumption**: 100 TU = 102,400 µs, the usual AP default
    /// (IEEE 802.11 TU = 1,024 µs).
    pub beacon_interval_us: u64,
    /// Radio on per beacon wake-up, µs. **Derived** from (LP)'s Auto Light-sleep DTIM 1 row:
    /// average 1.4 mA = 0.14 + (84 - 0.14) x t / 102.4 ms gives t = 1.54 ms (DTIM 3 gives 1.76,
    /// DTIM 10 2.08).
    pub beacon_wake_us: u64,
    /// How long the radio stays on listening after a packet it sent or received, µs: (LP)
    /// "Minimum active time", `CONFIG_ESP_WIFI_SLP_DEFAULT_MIN_ACTIVE_TIME`, default 50 ms. Every
    /// packet restarts it.
    pub active_us: u64,
    /// The PHY rate a frame is sent at, kbit/s. **Assumption**: 802.11n HT20 MCS7, 800 ns guard
    /// interval: 65 Mbit/s (IEEE 802.11-2020 table 19-27), the rate (DS)'s 276 mA is given at.
    pub phy_rate_kbps: u64,
    /// Per frame besides the IP packet, µs on the air. **Assumption** from IEEE 802.11-2020: the
    /// HT-mixed preamble (36 µs), SIFS (10 µs) and the AP's ACK at 24 Mbit/s (28 µs), DIFS
    /// (28 µs): 102 µs.
    pub frame_overhead_us: u64,
    /// Per frame besides the IP packet, bytes at the PHY rate. **Assumption** from IEEE
    /// 802.11-2020: QoS data header 26, CCMP 16, LLC/SNAP 8 (RFC 1042), FCS 4: 54 bytes.
    pub frame_overhead_bytes: u64,
    /// The battery the estimate is for, mAh. **Assumption**: 2,000 mAh, a common 18650-class
    /// cell; the estimate takes it at face value (no regulator loss, no self-discharge, no
    /// cut-off voltage).
    pub battery_mah: u64,
}

impl Default for PowerSpec {
    fn default() -> Self {
        PowerSpec::ESP32_C3
    }
}

impl PowerSpec {
    /// The ESP32-C3 defaults, each sourced above.
    pub const ESP32_C3: PowerSpec = PowerSpec {
        voltage_mv: 3_300,
        tx_ua: 276_000,
        rx_ua: 84_000,
        sleep_ua: 140,
        dtim: 1,
        beacon_interval_us: 102_400,
        beacon_wake_us: 1_540,
        active_us: 50_000,
        phy_rate_kbps: 65_000,
        frame_overhead_us: 102,
        frame_overhead_bytes: 54,
        battery_mah: 2_000,
    };

    /// Time on the air of one frame carrying an IP packet of `ip_bytes`, µs (rounded up).
    pub fn airtime_us(&self, ip_bytes: u64) -> u64 {
        let bits = (ip_bytes + self.frame_overhead_bytes) * 8;
        // kbit/s = bits per ms: bits * 1000 / kbps µs.
        let kbps = self.phy_rate_kbps.max(1);
        self.frame_overhead_us + (bits * 1_000).div_ceil(kbps)
    }

    /// The wake-up period between beacons the station listens to, µs.
    pub fn wake_period_us(&self) -> u64 {
        (self.beacon_interval_us * self.dtim).max(1)
    }
}

/// What a device's radio did over a window, and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Energy {
    /// The window, µs.
    pub window_us: u64,
    /// Radio on: transmitting, receiving, listening after traffic, joining, beacons, µs.
    pub radio_on_us: u64,
    /// Of which transmitting.
    pub tx_us: u64,
    /// Of which joining or looking for the access point (after a drop).
    pub join_us: u64,
    /// Of which beacon wake-ups.
    pub beacon_us: u64,
    /// Charge drawn, µA·µs (divide by 3.6e9 for mAh).
    pub charge_ua_us: u128,
    /// Energy, nJ.
    pub energy_nj: u128,
}

impl Energy {
    /// Energy in mJ.
    pub fn energy_mj(&self) -> f64 {
        self.energy_nj as f64 / 1e6
    }

    /// The average current over the window, mA.
    pub fn average_ma(&self) -> f64 {
        if self.window_us == 0 {
            return 0.0;
        }
        self.charge_ua_us as f64 / self.window_us as f64 / 1_000.0
    }

    /// Days a `battery_mah` battery lasts at this window's average current.
    pub fn battery_days(&self, battery_mah: u64) -> Option<f64> {
        let ma = self.average_ma();
        (ma > 0.0).then(|| battery_mah as f64 / ma / 24.0)
    }
}

/// An interval [start, end) in µs.
pub type Span = (u64, u64);

/// The radio's activity of one device in `[from, to)`: its transmitted frames (instant, IP
/// bytes), its received frames (instant of arrival, IP bytes), and the intervals it spent
/// joining or looking for its access point. Charge: TX at `tx_ua` for each frame's airtime;
/// after every frame the radio listens for `active_us` at `rx_ua` (the windows merge); joins at
/// `rx_ua`; the rest asleep at `sleep_ua` with a beacon wake-up of `beacon_wake_us` at `rx_ua`
/// every `dtim` beacons.
pub fn energy(
    p: &PowerSpec,
    from: u64,
    to: u64,
    tx: &[Span],
    rx: &[Span],
    joins: &[Span],
) -> Energy {
    let window = to.saturating_sub(from);
    let clip = |(a, b): Span| -> Option<Span> {
        let (a, b) = (a.max(from), b.min(to));
        (a < b).then_some((a, b))
    };
    // Transmit time: each frame's airtime (frames of one device never overlap on its radio:
    // a later one starts after the earlier ends).
    let mut busy: Vec<Span> = Vec::new();
    let mut tx_us = 0;
    let mut frames: Vec<Span> = Vec::new();
    for &(at, bytes) in tx {
        let air = p.airtime_us(bytes);
        if let Some(s) = clip((at, at + air)) {
            tx_us += s.1 - s.0;
        }
        frames.push((at, at + air));
    }
    for &(at, bytes) in rx {
        frames.push((at, at + p.airtime_us(bytes)));
    }
    for (a, b) in frames {
        if let Some(s) = clip((a, b + p.active_us)) {
            busy.push(s);
        }
    }
    let mut join_spans: Vec<Span> = joins.iter().filter_map(|&s| clip(s)).collect();
    let join_us = union_len(&mut join_spans);
    busy.extend(join_spans);
    let on_us = union_len(&mut busy);
    let asleep = window.saturating_sub(on_us);
    // Beacon wake-ups while asleep: one per wake period, each at most the period.
    let period = p.wake_period_us();
    let wake = p.beacon_wake_us.min(period);
    let beacon_us = asleep / period * wake;
    let listen_us = on_us.saturating_sub(tx_us.min(on_us));
    let sleep_us = asleep - beacon_us;
    let charge = u128::from(tx_us.min(on_us)) * u128::from(p.tx_ua)
        + u128::from(listen_us + beacon_us) * u128::from(p.rx_ua)
        + u128::from(sleep_us) * u128::from(p.sleep_ua);
    Energy {
        window_us: window,
        radio_on_us: on_us + beacon_us,
        tx_us: tx_us.min(on_us),
        join_us,
        beacon_us,
        charge_ua_us: charge,
        // µA·µs x mV = 1e-15 J = 1e-6 nJ.
        energy_nj: charge * u128::from(p.voltage_mv) / 1_000_000,
    }
}

/// Merges `spans` in place and returns the length of their union.
fn union_len(spans: &mut Vec<Span>) -> u64 {
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for &(a, b) in spans.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *spans = merged;
    spans.iter().map(|(a, b)| b - a).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no traffic, the model gives back the ESP-IDF light-sleep average it was derived
    /// from (DTIM 1: 1.4 mA), within rounding.
    #[test]
    fn idle_current_is_the_measured_light_sleep_average() {
        let p = PowerSpec::ESP32_C3;
        let e = energy(&p, 0, 60_000_000, &[], &[], &[]);
        let ma = e.average_ma();
        assert!((ma - 1.4).abs() < 0.02, "{ma} mA");
        // Light-sleep DTIM 3 (measured 0.62 mA) with the DTIM 1 wake time: a little below it.
        let p3 = PowerSpec { dtim: 3, ..p };
        let ma3 = energy(&p3, 0, 60_000_000, &[], &[], &[]).average_ma();
        assert!((0.5..0.62).contains(&ma3), "{ma3} mA");
    }

    /// One packet sent and its answer 20 ms later keep the radio on for one merged window:
    /// 20 ms + the answer's airtime + 50 ms of listening.
    #[test]
    fn packets_close_together_share_one_listening_window() {
        let p = PowerSpec::ESP32_C3;
        let e = energy(&p, 0, 1_000_000, &[(100_000, 60)], &[(120_000, 60)], &[]);
        let air = p.airtime_us(60);
        assert_eq!(air, 102 + (114 * 8 * 1000u64).div_ceil(65_000));
        assert_eq!(e.tx_us, air);
        assert_eq!(e.radio_on_us - e.beacon_us, 20_000 + air + 50_000);
        // Apart, they cost two windows.
        let f = energy(&p, 0, 1_000_000, &[(100_000, 60)], &[(500_000, 60)], &[]);
        assert_eq!(f.radio_on_us - f.beacon_us, 2 * (air + 50_000));
        assert!(f.energy_nj > e.energy_nj);
    }

    /// A join keeps the radio on for its whole span; the window clips everything.
    #[test]
    fn joins_count_inside_the_window_only() {
        let p = PowerSpec::ESP32_C3;
        let e = energy(&p, 1_000_000, 5_000_000, &[], &[], &[(0, 3_000_000)]);
        assert_eq!(e.join_us, 2_000_000);
        assert_eq!(e.window_us, 4_000_000);
        let days = e.battery_days(2_000).unwrap();
        assert!(days > 0.0 && days < 2_000.0 / 42.0 / 24.0 * 1.01, "{days}");
    }
}
