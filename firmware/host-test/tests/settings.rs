//! The firmware's build-time settings (`firmware/src/settings.rs`, the very file the firmware
//! compiles): text from `option_env!` to a validated [`DeviceConfig`] and, for the reference
//! firmware, its sketch's settings. The glue itself is the core's (`mqsim::device::glue`) and is
//! tested there.

use mqsim::device::Profile;
use mqsim::QoS;
use mqsim_firmware_host_test::settings::{self, Settings, SettingsError};

fn s<'a>(profile: &'a str, qos: &'a str) -> Settings<'a> {
    Settings {
        profile,
        client_id: "kitchen-1",
        qos,
    }
}

#[test]
fn device_settings_for_any_application() {
    let c = settings::device_config(&s("esp-mqtt", "1")).unwrap();
    assert_eq!(
        (c.profile, c.client_id.as_str()),
        (Profile::EspMqtt, "kitchen-1")
    );
    assert_eq!(
        settings::device_config(&s("pubsubclient", "0"))
            .unwrap()
            .profile,
        Profile::PubSubClient
    );
    // The QoS is the reference sketch's: not checked for other applications.
    assert!(settings::device_config(&s("pubsubclient", "7")).is_ok());
    assert!(matches!(
        settings::device_config(&s("arduino", "0")),
        Err(SettingsError::Profile)
    ));
}

#[test]
fn reference_sketch_settings() {
    let (c, sketch) = settings::reference(&s("esp-mqtt", "1")).unwrap();
    assert_eq!(
        (c.profile, sketch.qos, c.client_id.as_str()),
        (Profile::EspMqtt, QoS::AtLeastOnce, "kitchen-1")
    );
    assert_eq!(sketch.temperature_topic, "ESP32/TEM");
    // PubSubClient publishes at QoS 0 only: the sketch's check refuses QoS 1.
    assert!(matches!(
        settings::reference(&s("pubsubclient", "1")),
        Err(SettingsError::Device(_))
    ));
    assert!(matches!(
        settings::reference(&s("arduino", "0")),
        Err(SettingsError::Profile)
    ));
    assert!(matches!(
        settings::reference(&s("esp-mqtt", "3")),
        Err(SettingsError::Qos)
    ));
}
