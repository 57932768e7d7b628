//! Build-time settings: `MQSIM_*` environment variables at `cargo build` time (of the firmware
//! binary that uses this crate), each with a default (see `firmware/README.md`). Cargo rebuilds
//! when one changes.

use core::net::Ipv4Addr;

use crate::settings::Settings;

/// The access point (`MQSIM_SSID`, `MQSIM_PASSWORD`; an empty password joins an open network).
pub const SSID: &str = or(option_env!("MQSIM_SSID"), "mqsim");
pub const PASSWORD: &str = or(option_env!("MQSIM_PASSWORD"), "");
/// The broker (`MQSIM_BROKER_IP`, `MQSIM_BROKER_PORT`).
const BROKER_IP: &str = or(option_env!("MQSIM_BROKER_IP"), "192.168.1.10");
const BROKER_PORT: &str = or(option_env!("MQSIM_BROKER_PORT"), "1883");
/// `MQSIM_CLIENT_ID`, `MQSIM_PROFILE` (`pubsubclient` | `esp-mqtt`), `MQSIM_QOS` (0 | 1 | 2,
/// the reference sketch's).
const CLIENT_ID: &str = or(option_env!("MQSIM_CLIENT_ID"), "ESP32Client");
const PROFILE: Option<&str> = option_env!("MQSIM_PROFILE");
const QOS: &str = or(option_env!("MQSIM_QOS"), "0");
/// The reference sketch's DHT22 data pin (`MQSIM_DHT_GPIO`).
const DHT_GPIO: &str = or(option_env!("MQSIM_DHT_GPIO"), "4");

const fn or(v: Option<&'static str>, default: &'static str) -> &'static str {
    match v {
        Some(v) => v,
        None => default,
    }
}

/// The settings as text; `MQSIM_PROFILE` defaults to `default_profile` (the reference
/// firmware's `pubsubclient`, an application that publishes at QoS 1 `esp-mqtt`).
pub fn settings(default_profile: &'static str) -> Settings<'static> {
    Settings {
        profile: or(PROFILE, default_profile),
        client_id: CLIENT_ID,
        qos: QOS,
    }
}

pub fn broker() -> (Ipv4Addr, u16) {
    let ip = BROKER_IP
        .parse()
        .expect("MQSIM_BROKER_IP: not an IPv4 address");
    let port = BROKER_PORT.parse().expect("MQSIM_BROKER_PORT: not a port");
    (ip, port)
}

pub fn dht_gpio() -> u8 {
    DHT_GPIO.parse().expect("MQSIM_DHT_GPIO: not a GPIO number")
}
