//! The firmware's build-time settings (`option_env!` text) turned into the sketch's
//! [`DeviceConfig`]; plain Rust, compiled on the host by `firmware/host-test`.

use mqsim::codec::QoS;
use mqsim::device::{DeviceConfig, DeviceError, Profile};

/// Build-time settings, as text (from `option_env!` in the firmware).
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// `pubsubclient` or `esp-mqtt`.
    pub profile: &'a str,
    pub client_id: &'a str,
    /// `0`, `1` or `2`.
    pub qos: &'a str,
}

/// Why the settings were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsError {
    Profile,
    Qos,
    Device(DeviceError),
}

/// The sketch's [`DeviceConfig`] with the build-time settings applied and validated (the same
/// checks as [`Device::new`]).
pub fn device_config(s: &Settings<'_>) -> Result<DeviceConfig, SettingsError> {
    let profile = match s.profile {
        "pubsubclient" => Profile::PubSubClient,
        "esp-mqtt" => Profile::EspMqtt,
        _ => return Err(SettingsError::Profile),
    };
    let mut config = DeviceConfig::new(profile);
    config.client_id = s.client_id.into();
    config.qos = match s.qos {
        "0" => QoS::AtMostOnce,
        "1" => QoS::AtLeastOnce,
        "2" => QoS::ExactlyOnce,
        _ => return Err(SettingsError::Qos),
    };
    config.validate().map_err(SettingsError::Device)?;
    Ok(config)
}
