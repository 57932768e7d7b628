//! What the reference sketch prints, the Arduino IDE's timestamp prefix, and the opt-in payload
//! tag that lets a simulator name every message without changing what is printed.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::time::Instant;

/// One line on the serial port. `at` is when its first character was printed (the Arduino
/// IDE stamps a line then): a line of WiFi dots is stamped with its first dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialLine {
    /// When its first character was printed.
    pub at: Instant,
    /// The line, without its newline.
    pub text: String,
}

/// The reference sketch's first line, at power-on.
pub const LINE_WIFI_CONNECTING: &str = "Connecting to WiFi";
/// Its line once the WiFi link is up.
pub const LINE_WIFI_CONNECTED: &str = "Connected to the WiFi network";
/// Its line at each connection attempt.
pub const LINE_MQTT_CONNECTING: &str = "Connecting to MQTT...";
/// Its line on CONNACK.
pub const LINE_MQTT_CONNECTED: &str = "connected";
/// The first of its three lines per reading.
pub const LINE_PUBLISH: &str = "Publish message:";
/// The DHT examples' line when a read returns NaN.
pub const LINE_SENSOR_FAILED: &str = "Failed to read from DHT sensor!";

/// `failed with state -2`: the sketch's line after `client.connect()` returned false, with
/// PubSubClient's `state()` (see [`crate::device::state`]).
pub fn failed_line(state: i8) -> String {
    format!("failed with state {state}")
}

/// `Temperature : 26.70°C`, as the reference prints it.
pub fn temperature_line(celsius: f32) -> String {
    format!("Temperature : {celsius:.2}°C")
}

/// `Humidity : 52.00%`, as the reference prints it.
pub fn humidity_line(pct: f32) -> String {
    format!("Humidity : {pct:.2}%")
}

/// The published value: two decimals (`26.70`, `52.00`), as `dtostrf(v, 1, 2, buf)`.
pub fn payload_value(v: f32) -> String {
    format!("{v:.2}")
}

/// The wall-clock time of day at [`Instant::ZERO`], for the Arduino IDE's serial monitor prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    ms_of_day: u64,
}

const MS_PER_DAY: u64 = 24 * 3_600_000;

impl WallClock {
    /// `None` unless 0 <= h < 24, m < 60, s < 60, ms < 1000.
    pub fn from_hms_ms(h: u8, m: u8, s: u8, ms: u16) -> Option<WallClock> {
        if h >= 24 || m >= 60 || s >= 60 || ms >= 1000 {
            return None;
        }
        Some(WallClock {
            ms_of_day: ((u64::from(h) * 60 + u64::from(m)) * 60 + u64::from(s)) * 1000
                + u64::from(ms),
        })
    }

    /// The clock at `ms` milliseconds after midnight (wrapping at a day).
    pub fn from_ms_of_day(ms: u64) -> WallClock {
        WallClock {
            ms_of_day: ms % MS_PER_DAY,
        }
    }

    /// The Arduino IDE serial monitor prefix for a line printed at `at`: `10:17:18.933 -> `.
    /// Wraps at midnight; milliseconds are truncated, as the monitor does.
    pub fn prefix(self, at: Instant) -> String {
        let t = (self.ms_of_day + at.as_millis()) % MS_PER_DAY;
        let (h, rest) = (t / 3_600_000, t % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        format!("{h:02}:{m:02}:{s:02}.{ms:03} -> ")
    }

    /// The whole monitor line: prefix and text.
    pub fn format_line(self, line: &SerialLine) -> String {
        let mut s = self.prefix(line.at);
        s.push_str(&line.text);
        s
    }
}

/// Separates the visible payload from the tag: ASCII unit separator (U+001F), which no
/// sensor value contains and which MQTT payloads may carry.
pub const TAG_SEPARATOR: u8 = 0x1f;

/// `visible` + U+001F + `d<device>.s<seq>`, e.g. `26.70\u{1f}d3.s17`: the payload a device with
/// [`crate::device::DeviceConfig::tag_payloads`] publishes. Decimal, no leading `+`.
pub fn tag_payload(visible: &[u8], device: u32, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(visible.len() + 24);
    out.extend_from_slice(visible);
    out.push(TAG_SEPARATOR);
    let mut tag = String::new();
    let _ = write!(tag, "d{device}.s{seq}");
    out.extend_from_slice(tag.as_bytes());
    out
}

/// Splits a tagged payload into its visible part, device index and publish seq. `None` when the
/// payload carries no well-formed tag after its last U+001F (an untagged payload, or a foreign
/// one): the subscriber then shows the payload as it is.
pub fn parse_tag(payload: &[u8]) -> Option<(&[u8], u32, u64)> {
    let sep = payload.iter().rposition(|&b| b == TAG_SEPARATOR)?;
    let tag = payload[sep + 1..].strip_prefix(b"d")?;
    let dot = tag.iter().position(|&b| b == b'.')?;
    let device = parse_decimal(&tag[..dot])?;
    let seq = parse_decimal(tag[dot + 1..].strip_prefix(b"s")?)?;
    Some((&payload[..sep], u32::try_from(device).ok()?, seq))
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}
