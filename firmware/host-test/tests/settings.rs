//! The firmware's build-time settings (`firmware/src/settings.rs`, the very file the firmware
//! compiles): text from `option_env!` to a validated [`DeviceConfig`]. The glue itself is the
//! core's (`mqsim::device::glue`) and is tested there.

use mqsim::device::Profile;
use mqsim::QoS;
use mqsim_firmware_host_test::settings::{self, Settings, SettingsError};

#[test]
fn build_time_settings() {
    let s = |profile, qos| Settings {
        profile,
        client_id: "kitchen-1",
        qos,
    };
    let c = settings::device_config(&s("esp-mqtt", "1")).unwrap();
    assert_eq!(
        (c.profile, c.qos, c.client_id.as_str()),
        (Profile::EspMqtt, QoS::AtLeastOnce, "kitchen-1")
    );
    assert_eq!(
        settings::device_config(&s("pubsubclient", "0"))
            .unwrap()
            .profile,
        Profile::PubSubClient
    );
    assert!(matches!(
        settings::device_config(&s("pubsubclient", "1")),
        Err(SettingsError::Device(_))
    ));
    assert!(matches!(
        settings::device_config(&s("arduino", "0")),
        Err(SettingsError::Profile)
    ));
    assert!(matches!(
        settings::device_config(&s("esp-mqtt", "3")),
        Err(SettingsError::Qos)
    ));
}
