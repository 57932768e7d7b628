//! The door alarm on the ESP32-C3: `door_alarm::DoorAlarm`, the very application the tests run
//! in the simulator, flashed unchanged. A reed switch between GPIO5 and ground (closed while the
//! door's magnet is near) with the pull-up on: the pin reads high when the door is open.
//!
//! The network and the device's identity are the build-time settings of the firmware library
//! (`MQSIM_SSID`, `MQSIM_PASSWORD`, `MQSIM_BROKER_IP`, `MQSIM_BROKER_PORT`, `MQSIM_CLIENT_ID`,
//! `MQSIM_PROFILE`, here `esp-mqtt` by default: the alarms are QoS 1). See `firmware/README.md`.

#![no_std]
#![no_main]

use door_alarm::{DoorAlarm, DoorAlarmConfig, DOOR_INPUT};
use embassy_executor::Spawner;
use esp_hal::gpio::{Input, InputConfig, Pull};
use mqsim_firmware::{config, settings, switch_task, Network, NoSensor, Radio, Switch};

esp_bootloader_esp_idf::esp_app_desc!();

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = mqsim_firmware::init();
    let device_config = match settings::device_config(&config::settings("esp-mqtt")) {
        Ok(c) => c,
        Err(e) => panic!("bad build-time settings: {e:?}"),
    };

    // The board's input: `door`, `true` while open (the pin high), debounced.
    let door = Input::new(p.GPIO5, InputConfig::default().with_pull(Pull::Up));
    spawner.spawn(switch_task(Switch::new(DOOR_INPUT, door)).expect("door task"));

    let radio = Radio {
        timg0: p.TIMG0,
        sw_interrupt: p.FROM_CPU_INTR0,
        wifi: p.WIFI,
    };
    let app = DoorAlarm::new(DoorAlarmConfig::default());
    mqsim_firmware::run(
        spawner,
        radio,
        Network::from_build_env(),
        device_config,
        app,
        NoSensor,
    )
    .await
}
