//! `[device.power]`, checked: the power model a device's energy is computed with
//! ([`crate::cost::PowerSpec`]).

use super::super::model::Diagnostic;
use super::super::raw::{RawPower, Sp};
use super::Checker;

/// `[device.power]`: every figure finite and positive (a current may be zero only for sleep),
/// the battery above zero; `chip = "custom"` takes no default current, so each must be given.
pub(super) fn validate_power(
    c: &mut Checker<'_>,
    raw: Option<&Sp<RawPower>>,
) -> crate::cost::PowerSpec {
    let mut p = crate::cost::PowerSpec::ESP32_C3;
    let Some(raw) = raw else { return p };
    let table_line = c.line(raw.span());
    let r = raw.get_ref();
    let custom = match &r.chip {
        None => false,
        Some(chip) => match chip.get_ref().as_str() {
            "esp32-c3" => false,
            "custom" => true,
            other => {
                c.at(chip, format!("chip `{other}`: esp32-c3 or custom"));
                false
            }
        },
    };
    // (key, value, unit scale to the model's integer unit, may be zero, required if custom)
    let set = |c: &mut Checker<'_>,
               key: &str,
               v: &Option<Sp<f64>>,
               scale: f64,
               zero_ok: bool,
               required: bool,
               field: &mut u64| {
        match v {
            None if required && custom => c.problems.push(Diagnostic {
                line: table_line,
                reason: format!(
                    "[device.power]: {key} is missing: chip = \"custom\" has no default for it"
                ),
            }),
            None => {}
            Some(x) => {
                let f = *x.get_ref();
                let ok = f.is_finite() && (f > 0.0 || (zero_ok && f == 0.0)) && f * scale < 1e15;
                if ok {
                    *field = (f * scale).round() as u64;
                } else {
                    let want = if zero_ok { ">= 0" } else { "> 0" };
                    c.at(x, format!("{key} = {f}: must be a finite number {want}"));
                }
            }
        }
    };
    set(
        c,
        "voltage_v",
        &r.voltage_v,
        1e3,
        false,
        false,
        &mut p.voltage_mv,
    );
    set(c, "tx_ma", &r.tx_ma, 1e3, false, true, &mut p.tx_ua);
    set(c, "rx_ma", &r.rx_ma, 1e3, false, true, &mut p.rx_ua);
    set(c, "sleep_ma", &r.sleep_ma, 1e3, true, true, &mut p.sleep_ua);
    set(c, "dtim", &r.dtim, 1.0, false, false, &mut p.dtim);
    set(
        c,
        "beacon_interval_ms",
        &r.beacon_interval_ms,
        1e3,
        false,
        false,
        &mut p.beacon_interval_us,
    );
    set(
        c,
        "beacon_wake_ms",
        &r.beacon_wake_ms,
        1e3,
        true,
        false,
        &mut p.beacon_wake_us,
    );
    set(
        c,
        "active_ms",
        &r.active_ms,
        1e3,
        true,
        false,
        &mut p.active_us,
    );
    set(
        c,
        "phy_rate_mbps",
        &r.phy_rate_mbps,
        1e3,
        false,
        false,
        &mut p.phy_rate_kbps,
    );
    set(
        c,
        "battery_mah",
        &r.battery_mah,
        1.0,
        false,
        false,
        &mut p.battery_mah,
    );
    if let Some(d) = &r.dtim {
        if d.get_ref().fract() != 0.0 {
            c.at(d, "dtim: a whole number of beacons");
        }
    }
    p
}
