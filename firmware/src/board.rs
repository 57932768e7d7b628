//! The core glue's traits (`mqsim::device::glue`) on the ESP32-C3: embassy-time, esp-println,
//! the WiFi task, a DHT22 (or no sensor) and an embassy-net TCP socket.

use core::net::Ipv4Addr;
use core::task::Poll;

use dht_sensor::{dht22, DhtError};
use embassy_futures::poll_once;
use embassy_futures::select::select;
use embassy_net::tcp::{State, TcpSocket};
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{with_timeout, Duration, Timer};
use embedded_io_async::Write;
use esp_hal::delay::Delay;
use esp_hal::gpio::{AnyPin, DriveMode, Flex, OutputConfig, Pull};
use esp_println::println;
use mqsim::device::glue::{Clock, Console, Sensor, Transport, Wifi};
use mqsim::device::{Reading, SerialLine, WallClock};
use mqsim::time::Instant;

/// DHT22 reads per reading: busy-wait bit timing breaks when the WiFi interrupts it.
const DHT_ATTEMPTS_MAX: u32 = 3;
/// Pause between two attempts.
const DHT_RETRY_MS: u64 = 50;
/// While connecting, the socket state is checked at least this often (a refused connect may
/// not wake the writer).
const CONNECT_POLL_MS: u64 = 20;

/// embassy-time: microseconds since boot.
pub struct EspClock;

impl Clock for EspClock {
    fn now(&mut self) -> Instant {
        Instant::from_micros(embassy_time::Instant::now().as_micros())
    }
}

/// The serial port, stamped with the uptime like the Arduino IDE's monitor (`00:00:01.234 -> `).
pub struct EspConsole;

impl Console for EspConsole {
    fn line(&mut self, line: &SerialLine) {
        // The core's monitor prefix, with the clock at midnight at boot: the uptime.
        println!("{}", WallClock::from_ms_of_day(0).format_line(line));
    }
}

/// Asks the WiFi task to join.
pub struct EspWifi {
    pub join: &'static Signal<CriticalSectionRawMutex, ()>,
}

impl Wifi for EspWifi {
    fn join(&mut self, _now: Instant) {
        self.join.signal(());
    }
}

/// No sensor: an application's `read_sensor` goes unanswered.
pub struct NoSensor;

impl Sensor for NoSensor {
    async fn read(&mut self) -> Option<Reading> {
        None
    }
}

/// A DHT22 on an open-drain GPIO with the pull-up on.
pub struct Dht22 {
    pin: Flex<'static>,
    delay: Delay,
}

impl Dht22 {
    /// The sensor's data line on `pin` (e.g. `peripherals.GPIO4`).
    pub fn new(pin: impl Into<AnyPin<'static>>) -> Dht22 {
        let mut pin = Flex::new(pin.into());
        pin.apply_output_config(
            &OutputConfig::default()
                .with_drive_mode(DriveMode::OpenDrain)
                .with_pull(Pull::Up),
        );
        pin.set_high();
        pin.set_output_enable(true);
        pin.set_input_enable(true);
        Dht22 {
            pin,
            delay: Delay::new(),
        }
    }
}

impl Sensor for Dht22 {
    async fn read(&mut self) -> Option<Reading> {
        for attempt in 1..=DHT_ATTEMPTS_MAX {
            match dht22::blocking::read(&mut self.delay, &mut self.pin) {
                Ok(r) => {
                    return Some(Reading {
                        temperature_c: r.temperature,
                        humidity_pct: r.relative_humidity,
                    })
                }
                Err(DhtError::ChecksumMismatch) | Err(DhtError::Timeout)
                    if attempt < DHT_ATTEMPTS_MAX =>
                {
                    Timer::after_millis(DHT_RETRY_MS).await
                }
                Err(_) => break,
            }
        }
        // The device prints the sketch's `Failed to read from DHT sensor!`.
        Some(Reading {
            temperature_c: f32::NAN,
            humidity_pct: f32::NAN,
        })
    }
}

/// What the socket has to say to the device.
pub enum TcpEvent {
    Connected,
    Failed,
    /// Bytes read into the caller's buffer.
    Bytes(usize),
    Closed,
}

enum Phase {
    Idle,
    Connecting {
        deadline: embassy_time::Instant,
    },
    /// The connect failed at once: reported at the next wait.
    Refused,
    Connected,
}

/// One embassy-net socket, reused for every connection to the broker.
pub struct EspTransport {
    socket: TcpSocket<'static>,
    broker: (Ipv4Addr, u16),
    phase: Phase,
}

impl EspTransport {
    pub fn new(
        stack: Stack<'static>,
        rx: &'static mut [u8],
        tx: &'static mut [u8],
        broker: (Ipv4Addr, u16),
    ) -> EspTransport {
        EspTransport {
            socket: TcpSocket::new(stack, rx, tx),
            broker,
            phase: Phase::Idle,
        }
    }

    /// The next socket event; pending forever while idle.
    pub async fn next_event(&mut self, buf: &mut [u8]) -> TcpEvent {
        loop {
            match self.phase {
                Phase::Idle => core::future::pending::<()>().await,
                Phase::Refused => {
                    self.phase = Phase::Idle;
                    return TcpEvent::Failed;
                }
                Phase::Connecting { deadline } => match self.socket.state() {
                    State::Established | State::CloseWait => {
                        self.phase = Phase::Connected;
                        return TcpEvent::Connected;
                    }
                    State::Closed | State::TimeWait => {
                        self.phase = Phase::Idle;
                        return TcpEvent::Failed;
                    }
                    _ if embassy_time::Instant::now() >= deadline => {
                        self.socket.abort();
                        self.phase = Phase::Idle;
                        return TcpEvent::Failed;
                    }
                    _ => {
                        let tick = Timer::after_millis(CONNECT_POLL_MS);
                        let _ = select(self.socket.wait_write_ready(), tick).await;
                    }
                },
                Phase::Connected => {
                    return match self.socket.read(buf).await {
                        Ok(0) | Err(_) => {
                            self.socket.abort();
                            self.phase = Phase::Idle;
                            TcpEvent::Closed
                        }
                        Ok(n) => TcpEvent::Bytes(n),
                    }
                }
            }
        }
    }
}

impl Transport for EspTransport {
    fn open(&mut self, timeout_ms: u64) {
        self.socket.abort();
        // The first poll sends the SYN; `next_event` watches the state from then on.
        self.phase = match poll_once(self.socket.connect(self.broker)) {
            Poll::Ready(Ok(())) => Phase::Connected,
            Poll::Ready(Err(_)) => Phase::Refused,
            Poll::Pending => Phase::Connecting {
                deadline: embassy_time::Instant::now() + Duration::from_millis(timeout_ms),
            },
        };
    }

    fn close(&mut self) {
        self.socket.abort();
        self.phase = Phase::Idle;
    }

    fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected)
    }

    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u64) -> bool {
        // Returns once the bytes are in the socket's send buffer (as WiFiClient's write does);
        // waits only while that buffer is full.
        let write = self.socket.write_all(bytes);
        matches!(
            with_timeout(Duration::from_millis(timeout_ms), write).await,
            Ok(Ok(()))
        )
    }
}
