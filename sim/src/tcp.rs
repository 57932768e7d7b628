//! A device application over real TCP, against a real broker (mosquitto included): the runner a
//! user calls from a small binary of their own, and the one behind `mqsim device` (with the
//! reference sketch). The same device code and the same tokio loop ([`crate::device_io`]) as in
//! the simulator; only the connector (a real socket), the clock (tokio's) and the inputs (a stub
//! schedule, a seeded sensor) differ. Serial lines go to standard output.
//!
//! ```no_run
//! use mqsim::app::reference::ReferenceSketch;
//! use mqsim::device::{DeviceConfig, Profile};
//! use mqsim_sim::tcp::TcpRunner;
//!
//! let device = (DeviceConfig::new(Profile::EspMqtt), ReferenceSketch::default());
//! TcpRunner::new("127.0.0.1:1883")
//!     .duration_s(10)
//!     .run(vec![device])
//!     .unwrap();
//! ```

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use mqsim::app::{App, Value};
use mqsim::device::{Device, DeviceConfig, DeviceEvent, Reading, WallClock};
use mqsim::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::device_io::{run_device, Connecting, Connector, Control, DeviceHooks};
use crate::run::sensor::Sensor;

/// Runs device applications over real TCP; see the module documentation.
#[derive(Clone, Debug)]
pub struct TcpRunner {
    broker: String,
    duration_s: Option<u64>,
    seed: u64,
    inputs: Vec<(u64, String, Value)>,
}

impl TcpRunner {
    /// Devices that connect to the broker at `broker` (`HOST:PORT`).
    pub fn new(broker: &str) -> Self {
        TcpRunner {
            broker: broker.to_string(),
            duration_s: None,
            seed: 1,
            inputs: Vec::new(),
        }
    }

    /// Stops after `s` seconds (default: at Ctrl-C).
    pub fn duration_s(mut self, s: u64) -> Self {
        self.duration_s = Some(s);
        self
    }

    /// Seeds the sensors' random walk (default 1; device `i` gets `seed + i`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The stub of the board's inputs: at `at_ms` after the start, input `name` of every device
    /// takes `value` ([`mqsim::app::Event::Input`]).
    pub fn input(mut self, at_ms: u64, name: &str, value: Value) -> Self {
        self.inputs.push((at_ms, name.to_string(), value));
        self
    }

    /// Runs `devices` until the duration or Ctrl-C. Serial lines go to standard output, each
    /// prefixed with `[i] ` when there are several devices.
    pub fn run<A: App + 'static>(self, devices: Vec<(DeviceConfig, A)>) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let local = tokio::task::LocalSet::new();
        let count = devices.len();
        let mut inputs = self.inputs.clone();
        inputs.sort_by_key(|(at, _, _)| *at);
        local.block_on(&runtime, async move {
            let epoch = tokio::time::Instant::now();
            let mut controls = Vec::new();
            let mut tasks = Vec::new();
            for (i, (cfg, app)) in devices.into_iter().enumerate() {
                let connector = TcpConnector {
                    addr: self.broker.clone(),
                    timeout: std::time::Duration::from_millis(cfg.params.tcp_connect_timeout_ms),
                };
                let dev = Device::new(cfg, app, Instant::ZERO).map_err(|e| e.to_string())?;
                let (tx, rx) = mpsc::unbounded_channel();
                controls.push(tx);
                let hooks = RealHooks {
                    epoch,
                    clock: wall_clock_now(),
                    label: if count > 1 {
                        format!("[{i}] ")
                    } else {
                        String::new()
                    },
                    sensor: Sensor::new(self.seed.wrapping_add(i as u64)),
                };
                tasks.push(tokio::task::spawn_local(run_device(
                    dev, connector, rx, hooks,
                )));
            }
            let feed = async {
                for (at_ms, name, value) in &inputs {
                    tokio::time::sleep_until(epoch + std::time::Duration::from_millis(*at_ms))
                        .await;
                    for tx in &controls {
                        let _ = tx.send(Control::Input {
                            name: name.clone(),
                            value: *value,
                        });
                    }
                }
                std::future::pending::<()>().await
            };
            let stop = async {
                match self.duration_s {
                    Some(s) => tokio::time::sleep(std::time::Duration::from_secs(s)).await,
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                biased;
                _ = stop => {}
                _ = feed => {}
            }
            for tx in &controls {
                let _ = tx.send(Control::Stop);
            }
            for t in tasks {
                let _ = t.await;
            }
            Ok(())
        })
    }
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
            // No TCP_NODELAY: neither esp-mqtt (tcp_transport, esp-tls) nor PubSubClient
            // (Arduino's WiFiClient leaves its setNoDelay call commented out) sets it, so the
            // device's writes meet Nagle as on the board (../shared/notes/tcp-stacks.md).
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
