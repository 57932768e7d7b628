//! `mqsim device --broker HOST:PORT [--profile pubsubclient|esp-mqtt] [--count N] ...`: the
//! reference sketch over real TCP, against any broker (mosquitto included), through
//! [`mqsim_sim::tcp::TcpRunner`]. Prints the serial monitor lines.

use std::process::ExitCode;

use clap::ValueEnum;
use mqsim::app::reference::{ReferenceSketch, SketchConfig};
use mqsim::device::{self, DeviceConfig};
use mqsim::QoS;
use mqsim_sim::tcp::TcpRunner;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProfileArg {
    /// Arduino PubSubClient 2.8 (the reference device): QoS 0, keepalive 15 s.
    Pubsubclient,
    /// ESP-IDF esp-mqtt: QoS 0/1/2, keepalive 120 s, outbox.
    EspMqtt,
    /// This project's own client: QoS 0/1/2, keepalive 60 s, queued while offline.
    Mqsim,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// The broker to connect to.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: String,
    #[arg(long, value_enum, default_value = "pubsubclient")]
    pub profile: ProfileArg,
    /// Number of devices (client ids ESP32Client-0, -1, ...; one device is ESP32Client).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Publish QoS (the pubsubclient profile publishes QoS 0 only).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Reading interval.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "S")]
    pub duration: Option<u64>,
    /// Seed of the sensors' random walk.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn main(args: DeviceArgs) -> ExitCode {
    let profile = match args.profile {
        ProfileArg::Pubsubclient => device::Profile::PubSubClient,
        ProfileArg::EspMqtt => device::Profile::EspMqtt,
        ProfileArg::Mqsim => device::Profile::Mqsim,
    };
    let mut devices = Vec::new();
    for i in 0..args.count {
        let mut cfg = DeviceConfig::new(profile);
        let mut sketch = SketchConfig {
            qos: QoS::from_u8(args.qos).unwrap_or(QoS::AtMostOnce),
            interval_ms: args.interval_ms,
            ..SketchConfig::default()
        };
        cfg.device_index = i;
        if args.count > 1 {
            cfg.client_id = format!("ESP32Client-{i}");
            sketch.temperature_topic = format!("ESP32/{i}/TEM");
            sketch.humidity_topic = format!("ESP32/{i}/HUM");
        }
        devices.push((cfg, ReferenceSketch::new(sketch)));
    }
    let mut runner = TcpRunner::new(&args.broker).seed(args.seed);
    if let Some(s) = args.duration {
        runner = runner.duration_s(s);
    }
    match runner.run(devices) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqsim device: {e}");
            ExitCode::from(2)
        }
    }
}
