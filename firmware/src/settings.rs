//! The firmware's build-time settings (`option_env!` text) turned into the board's
//! [`DeviceConfig`] (any application) and the reference sketch's [`SketchConfig`]; plain Rust,
//! compiled on the host by `firmware/host-test`.

use mqsim::app::reference::{ReferenceSketch, SketchConfig};
use mqsim::app::{App, Library};
use mqsim::codec::QoS;
use mqsim::device::{DeviceConfig, DeviceError, Profile};

/// Build-time settings, as text (from `option_env!` in the firmware).
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// `pubsubclient` or `esp-mqtt`.
    pub profile: &'a str,
    pub client_id: &'a str,
    /// `0`, `1` or `2`: the reference sketch's publish QoS.
    pub qos: &'a str,
}

/// Why the settings were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsError {
    Profile,
    Qos,
    Device(DeviceError),
}

/// The board and library: [`DeviceConfig`] with the profile and client id applied, validated
/// (the board's checks of `Device::new`; the application's are [`App::check`]'s).
pub fn device_config(s: &Settings<'_>) -> Result<DeviceConfig, SettingsError> {
    let profile = match s.profile {
        "pubsubclient" => Profile::PubSubClient,
        "esp-mqtt" => Profile::EspMqtt,
        _ => return Err(SettingsError::Profile),
    };
    let mut config = DeviceConfig::new(profile);
    config.client_id = s.client_id.into();
    config.validate().map_err(SettingsError::Device)?;
    Ok(config)
}

/// `config`'s library, for [`App::check`].
pub fn library(config: &DeviceConfig) -> Library<'_> {
    Library {
        profile: config.profile,
        params: &config.params,
    }
}

/// The reference firmware's device and sketch, checked together (the same checks as
/// `Device::new`).
pub fn reference(s: &Settings<'_>) -> Result<(DeviceConfig, SketchConfig), SettingsError> {
    let config = device_config(s)?;
    let sketch = SketchConfig {
        qos: match s.qos {
            "0" => QoS::AtMostOnce,
            "1" => QoS::AtLeastOnce,
            "2" => QoS::ExactlyOnce,
            _ => return Err(SettingsError::Qos),
        },
        ..SketchConfig::default()
    };
    ReferenceSketch::new(sketch.clone())
        .check(library(&config))
        .map_err(SettingsError::Device)?;
    Ok((config, sketch))
}
