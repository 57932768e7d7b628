//! The one loop between a [`Device`] and its world, with no world in it: plain Rust over five
//! small traits ([`Clock`], [`Console`], [`Wifi`], [`Sensor`], [`Transport`]). The ESP32-C3
//! firmware implements them for the board (embassy), the simulator and `mqsim device` for tokio
//! (`sim/src/device_io.rs`); each only waits for the next input and hands it to
//! [`Glue::handle`].
//!
//! After every input, [`Glue::settle`] drains the device with [`drain_into`], turns its
//! requests into actions (`OpenTransport` -> [`Transport::open`], `CloseTransport` ->
//! [`Transport::close`], `JoinWifi` -> [`Wifi::join`], `ReadSensor` -> [`Sensor::read`] and
//! `handle_reading`, every event -> [`Console::event`], serial lines -> [`Console::line`]),
//! writes the bytes with the profile's `write_timeout_ms`, and returns when to wake the device
//! next. The caller waits for whichever comes first (WiFi link change, socket event, that
//! wake-up) and hands it to [`Glue::handle`]. Nothing here encodes MQTT or decides when to
//! publish or reconnect.

#[cfg(all(test, feature = "std"))]
mod tests;

use alloc::vec::Vec;

use super::{Device, DeviceEvent, Reading, SerialLine};
use crate::app::{App, Value};
use crate::driver::drain_into;
use crate::time::Instant;

/// Now, on the world's clock (microseconds since boot on a board).
pub trait Clock {
    /// Now.
    fn now(&mut self) -> Instant;
}

/// The serial port, and whoever else listens to the device's events.
pub trait Console {
    /// A serial line.
    fn line(&mut self, line: &SerialLine);
    /// Every event the device emits, in order, before the glue acts on it (serial lines,
    /// ledger hooks, requests); default: serial lines go to [`Console::line`].
    fn event(&mut self, now: Instant, ev: &DeviceEvent) {
        let _ = now;
        if let DeviceEvent::Serial(line) = ev {
            self.line(line);
        }
    }
}

/// The WiFi driver: [`Wifi::join`] starts joining; the link going up (joined, address leased)
/// or down comes back as [`Input::Wifi`].
pub trait Wifi {
    /// Asked at `now`.
    fn join(&mut self, now: Instant);
}

/// The temperature/humidity sensor; NaN in a field is a failed read.
#[allow(async_fn_in_trait)]
pub trait Sensor {
    /// `None`: the request goes unanswered (the simulator's quiet heal phase).
    async fn read(&mut self) -> Option<Reading>;
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

/// The five parts in one: [`Glue::settle`] takes any type implementing them all (one struct
/// sharing state, or this one, each part its own value).
#[derive(Debug)]
pub struct Board<C, O, W, S, T> {
    /// The clock.
    pub clock: C,
    /// The serial port and event listener.
    pub console: O,
    /// The WiFi driver.
    pub wifi: W,
    /// The sensor.
    pub sensor: S,
    /// The TCP connection.
    pub transport: T,
}

impl<C: Clock, O, W, S, T> Clock for Board<C, O, W, S, T> {
    fn now(&mut self) -> Instant {
        self.clock.now()
    }
}

impl<C, O: Console, W, S, T> Console for Board<C, O, W, S, T> {
    fn line(&mut self, line: &SerialLine) {
        self.console.line(line)
    }
    fn event(&mut self, now: Instant, ev: &DeviceEvent) {
        self.console.event(now, ev)
    }
}

impl<C, O, W: Wifi, S, T> Wifi for Board<C, O, W, S, T> {
    fn join(&mut self, now: Instant) {
        self.wifi.join(now)
    }
}

impl<C, O, W, S: Sensor, T> Sensor for Board<C, O, W, S, T> {
    async fn read(&mut self) -> Option<Reading> {
        self.sensor.read().await
    }
}

impl<C, O, W, S, T: Transport> Transport for Board<C, O, W, S, T> {
    fn open(&mut self, timeout_ms: u64) {
        self.transport.open(timeout_ms)
    }
    fn close(&mut self) {
        self.transport.close()
    }
    fn is_connected(&self) -> bool {
        self.transport.is_connected()
    }
    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u64) -> bool {
        self.transport.write_all(bytes, timeout_ms).await
    }
}

/// What the world tells the device.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// The wake-up returned by [`Glue::settle`] came (or any earlier one: the device checks).
    Timer,
    /// An input of the board changed (a switch, a button): for the application.
    Board {
        /// The input's name.
        name: &'a str,
        /// Its new value.
        value: Value,
    },
}

/// The device and the buffers of its drain loop.
#[derive(Debug)]
pub struct Glue<A> {
    dev: Device<A>,
    buf: Vec<u8>,
    writes: Vec<u8>,
    events: Vec<DeviceEvent>,
}

impl<A: App> Glue<A> {
    /// The loop around `dev`.
    pub fn new(dev: Device<A>) -> Glue<A> {
        Glue {
            dev,
            buf: Vec::new(),
            writes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The device inside.
    pub fn device(&self) -> &Device<A> {
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
            Input::Board { name, value } => dev.handle_input(now, name, value),
        }
    }

    /// Drains the device and carries out what it asks until it has nothing more to say; returns
    /// when to feed it [`Input::Timer`] (`None`: only on another input).
    pub async fn settle<B>(&mut self, board: &mut B) -> Option<Instant>
    where
        B: Clock + Console + Wifi + Sensor + Transport,
    {
        loop {
            let now = board.now();
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
                board.event(now, &ev);
                match ev {
                    DeviceEvent::OpenTransport => {
                        board.open(self.dev.config().params.tcp_connect_timeout_ms);
                    }
                    DeviceEvent::CloseTransport => board.close(),
                    DeviceEvent::JoinWifi => board.join(now),
                    DeviceEvent::ReadSensor => {
                        if let Some(reading) = board.read().await {
                            self.dev.handle_reading(now, reading);
                            again = true;
                        }
                    }
                    // Serial lines and ledger hooks: the console's.
                    _ => {}
                }
            }
            if !self.writes.is_empty() && board.is_connected() {
                // The sketch blocks in the write while the TCP send buffer is full, up to the
                // library's timeout; then the connection is given up.
                let limit_ms = self.dev.config().params.write_timeout_ms;
                if board.write_all(&self.writes, limit_ms).await {
                    let now = board.now();
                    self.dev.handle_sent(now, self.writes.len());
                } else {
                    board.close();
                    let now = board.now();
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
