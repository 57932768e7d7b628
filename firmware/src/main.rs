//! The reference firmware: the seed's ESP32 sketch (`mqsim::app::reference::ReferenceSketch`,
//! a DHT22 read and published every 2 s) with the build-time settings (`MQSIM_*`, see
//! `firmware/README.md`). Everything else is the `mqsim_firmware` library's.

#![no_std]
#![no_main]

use embassy_executor::Spawner;
use esp_hal::gpio::AnyPin;
use mqsim::app::reference::ReferenceSketch;
use mqsim_firmware::{config, settings, Dht22, Network, Radio};

esp_bootloader_esp_idf::esp_app_desc!();

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = mqsim_firmware::init();
    let (device_config, sketch) = match settings::reference(&config::settings("pubsubclient")) {
        Ok(c) => c,
        Err(e) => panic!("bad build-time settings: {e:?}"),
    };
    esp_println::println!("# DHT22 on GPIO{}", config::dht_gpio());
    // SAFETY: the one user of this GPIO, chosen at build time (`MQSIM_DHT_GPIO`) and used
    // nowhere else.
    let dht = Dht22::new(unsafe { AnyPin::steal(config::dht_gpio()) });
    let radio = Radio {
        timg0: p.TIMG0,
        sw_interrupt: p.FROM_CPU_INTR0,
        wifi: p.WIFI,
    };
    let app = ReferenceSketch::new(sketch);
    mqsim_firmware::run(
        spawner,
        radio,
        Network::from_build_env(),
        device_config,
        app,
        dht,
    )
    .await
}
