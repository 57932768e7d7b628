//! The firmware's adapter between the core's [`Device`] and the board, with no board in it:
//! plain Rust over five small traits, so that `firmware/host-test` compiles this very file on
//! the host and drives it with fakes.
//!
//! It is the loop of `sim/src/device_io.rs` (the simulator's and `mqsim device`'s) for one
//! embassy task: after every input, [`Glue::settle`] drains the device with
//! [`drain_into`], turns its requests into board actions (`OpenTransport` -> [`Transport::open`],
//! `CloseTransport` -> [`Transport::close`], `JoinWifi` -> [`Wifi::join`], `ReadSensor` ->
//! [`Sensor::read`] and `handle_reading`, `Serial` -> [`Console::line`]), writes the bytes with the
//! profile's `write_timeout_ms`, and returns when to wake the device next. The caller waits for
//! whichever comes first (WiFi link change, socket event, that wake-up) and hands it to
//! [`Glue::handle`]. Nothing here encodes MQTT or decides when to publish or reconnect.

use alloc::vec::Vec;

use mqsim::codec::QoS;
use mqsim::device::{Device, DeviceConfig, DeviceError, DeviceEvent, Profile, Reading, SerialLine};
use mqsim::driver::drain_into;
use mqsim::time::Instant;

/// Microseconds since boot.
pub trait Clock {
    fn now(&mut self) -> Instant;
}

/// The serial port.
pub trait Console {
    fn line(&mut self, line: &SerialLine);
}

/// The WiFi driver: [`Wifi::join`] starts joining; the link going up (joined, address leased)
/// or down comes back as [`Input::Wifi`].
pub trait Wifi {
    fn join(&mut self);
}

/// The temperature/humidity sensor; NaN in a field is a failed read.
#[allow(async_fn_in_trait)]
pub trait Sensor {
    async fn read(&mut self) -> Reading;
}

/// The TCP connection to the broker.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Starts connecting, bounded by `timeout_ms`; the outcome comes back as
    /// [`Input::TcpConnected`] or [`Input::TcpFailed`].
    fn open(&mut self, timeout_ms: u64);
    /// Closes the connection, or abandons its opening.
    fn close(&mut self);
    /// Connected: writes go out.
    fn is_connected(&self) -> bool;
    /// Writes all of `bytes` within `timeout_ms`; `false`: failed or timed out, the connection
    /// is given up.
    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u64) -> bool;
}

/// The board, as the glue sees it.
pub struct Board<C, O, W, S, T> {
    pub clock: C,
    pub console: O,
    pub wifi: W,
    pub sensor: S,
    pub transport: T,
}

/// What the world tells the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// The WiFi link is up (joined, address leased) or down.
    Wifi(bool),
    /// The connection asked for with [`Transport::open`] is up.
    TcpConnected,
    /// It could not be made (refused, unreachable, timed out).
    TcpFailed,
    /// Bytes read from the connection.
    Bytes(&'a [u8]),
    /// The connection closed (peer FIN, reset, error).
    TcpClosed,
    /// The wake-up returned by [`Glue::settle`] came.
    Timer,
}

/// The device and the buffers of its drain loop.
pub struct Glue {
    dev: Device,
    buf: Vec<u8>,
    writes: Vec<u8>,
    events: Vec<DeviceEvent>,
}

impl Glue {
    pub fn new(dev: Device) -> Glue {
        Glue {
            dev,
            buf: Vec::new(),
            writes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The device inside (the host test inspects it).
    #[allow(dead_code)]
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Feeds one input to the device; call [`Glue::settle`] next.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        let dev = &mut self.dev;
        match input {
            Input::Wifi(up) => dev.handle_wifi(now, up),
            Input::TcpConnected => dev.handle_transport_connected(now),
            Input::TcpFailed => dev.handle_transport_failed(now),
            Input::Bytes(b) => dev.handle_bytes(now, b),
            Input::TcpClosed => dev.handle_transport_closed(now),
            Input::Timer => dev.handle_timeout(now),
        }
    }

    /// Drains the device and carries out what it asks until it has nothing more to say; returns
    /// when to feed it [`Input::Timer`] (`None`: only on another input).
    pub async fn settle<C, O, W, S, T>(
        &mut self,
        board: &mut Board<C, O, W, S, T>,
    ) -> Option<Instant>
    where
        C: Clock,
        O: Console,
        W: Wifi,
        S: Sensor,
        T: Transport,
    {
        loop {
            let now = board.clock.now();
            self.writes.clear();
            let timeout = drain_into(
                &mut self.dev,
                &mut self.buf,
                &mut self.writes,
                &mut self.events,
            );
            // A reading answered is an input: drain again.
            let mut again = false;
            for ev in self.events.drain(..) {
                match ev {
                    DeviceEvent::Serial(line) => board.console.line(&line),
                    DeviceEvent::OpenTransport => {
                        board
                            .transport
                            .open(self.dev.config().params.tcp_connect_timeout_ms);
                    }
                    DeviceEvent::CloseTransport => board.transport.close(),
                    DeviceEvent::JoinWifi => board.wifi.join(),
                    DeviceEvent::ReadSensor => {
                        let reading = board.sensor.read().await;
                        self.dev.handle_reading(now, reading);
                        again = true;
                    }
                    // Ledger hooks: the simulator's checkers use them, the board has none.
                    _ => {}
                }
            }
            if !self.writes.is_empty() && board.transport.is_connected() {
                let limit_ms = self.dev.config().params.write_timeout_ms;
                if board.transport.write_all(&self.writes, limit_ms).await {
                    let now = board.clock.now();
                    self.dev.handle_sent(now, self.writes.len());
                } else {
                    // The sketch gives the connection up when a write cannot complete.
                    board.transport.close();
                    let now = board.clock.now();
                    self.dev.handle_transport_closed(now);
                    continue;
                }
            }
            if !again {
                return timeout;
            }
        }
    }
}

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
