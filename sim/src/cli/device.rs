//! `mqsim device --broker HOST:PORT [--profile pubsubclient|esp-mqtt] [--count N] ...`: the
//! simulator's virtual ESP32s over real TCP, against any broker (mosquitto included). The same
//! device code and the same tokio loop (`device_io`) as under `mqsim sim`; only the connector
//! (a real socket) and the clock (tokio's) differ. Prints the serial monitor lines.

use std::io;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use mqsim::device::{self, Device, DeviceConfig, DeviceEvent, Reading, WallClock};
use mqsim::time::{Duration, Instant};
use mqsim::QoS;
use mqsim_sim::device_io::{run_device, Connecting, Connector, Control, DeviceHooks};
use mqsim_sim::run::sensor::Sensor;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProfileArg {
    /// Arduino PubSubClient 2.8 (the reference device): QoS 0, keepalive 15 s.
    Pubsubclient,
    /// ESP-IDF esp-mqtt: QoS 0/1/2, keepalive 120 s, outbox.
    EspMqtt,
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

struct TcpConnector {
    addr: String,
    timeout: std::time::Duration,
}

impl Connector for TcpConnector {
    type Stream = TcpStream;
    fn connect(&mut self) -> Connecting<TcpStream> {
        let (addr, timeout) = (self.addr.clone(), self.timeout);
        Box::pin(async move {
            let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))??;
            s.set_nodelay(true)?;
            Ok(s)
        })
    }
}

struct RealHooks {
    epoch: tokio::time::Instant,
    clock: WallClock,
    label: String,
    sensor: Sensor,
}

impl DeviceHooks for RealHooks {
    fn now(&mut self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }
    fn event(&mut self, _now: Instant, ev: &DeviceEvent) {
        if let DeviceEvent::Serial(line) = ev {
            println!("{}{}", self.label, self.clock.format_line(line));
        }
    }
    fn reading(&mut self) -> Reading {
        self.sensor.read()
    }
    /// A PC's network is up already; the sketch still prints its dots for one poll.
    fn wifi_join_delay(&mut self) -> Duration {
        Duration::from_millis(500)
    }
    fn transport_error(&mut self, _now: Instant, e: &io::Error) {
        eprintln!("{}(transport: {e})", self.label);
    }
}

/// Time of day now (UTC), for the serial monitor's prefix.
fn wall_clock_now() -> WallClock {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    WallClock::from_ms_of_day(ms)
}

pub fn main(args: DeviceArgs) -> ExitCode {
    let profile = match args.profile {
        ProfileArg::Pubsubclient => device::Profile::PubSubClient,
        ProfileArg::EspMqtt => device::Profile::EspMqtt,
    };
    let mut configs = Vec::new();
    for i in 0..args.count {
        let mut cfg = DeviceConfig::new(profile);
        cfg.qos = QoS::from_u8(args.qos).unwrap_or(QoS::AtMostOnce);
        cfg.interval_ms = args.interval_ms;
        cfg.device_index = i;
        if args.count > 1 {
            cfg.client_id = format!("ESP32Client-{i}");
            cfg.temperature_topic = format!("ESP32/{i}/TEM");
            cfg.humidity_topic = format!("ESP32/{i}/HUM");
        }
        if let Err(e) = cfg.validate() {
            eprintln!("mqsim device: {e}");
            return ExitCode::from(2);
        }
        configs.push(cfg);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mqsim device: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    let count = args.count;
    local.block_on(&runtime, async move {
        let epoch = tokio::time::Instant::now();
        let mut stops = Vec::new();
        let mut tasks = Vec::new();
        for cfg in configs {
            let i = cfg.device_index;
            let connector = TcpConnector {
                addr: args.broker.clone(),
                timeout: std::time::Duration::from_millis(cfg.params.tcp_connect_timeout_ms),
            };
            let dev = match Device::new(cfg, Instant::ZERO) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("mqsim device: {e}");
                    return ExitCode::from(2);
                }
            };
            let (tx, rx) = mpsc::unbounded_channel();
            stops.push(tx);
            let hooks = RealHooks {
                epoch,
                clock: wall_clock_now(),
                label: if count > 1 {
                    format!("[{i}] ")
                } else {
                    String::new()
                },
                sensor: Sensor::new(args.seed.wrapping_add(u64::from(i))),
            };
            tasks.push(tokio::task::spawn_local(run_device(
                dev, connector, rx, hooks,
            )));
        }
        let stop = async {
            match args.duration {
                Some(s) => tokio::time::sleep(std::time::Duration::from_secs(s)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        stop.await;
        for tx in &stops {
            let _ = tx.send(Control::Stop);
        }
        for t in tasks {
            let _ = t.await;
        }
        ExitCode::SUCCESS
    })
}
