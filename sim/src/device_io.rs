//! The tokio adapter for the virtual ESP32 ([`mqsim::device::Device`]): the core's device loop
//! ([`mqsim::device::glue`], the firmware's too) over tokio, which connects when the device asks,
//! moves bytes, fires its timers, answers its sensor requests, and tells it when WiFi comes and
//! goes. `mqsim device` runs it over real TCP; the simulator runs the same
//! loop over turmoil's TCP under the modelled link. The device never learns which.
//!
//! Time is the caller's clock ([`DeviceHooks::now`]): tokio's under `mqsim device`, the
//! simulation's under `mqsim sim` (turmoil drives tokio's timers). Every `select!` is `biased;`.

use std::future::Future;
use std::io;
use std::pin::Pin;

use mqsim::app::{App, Value};
use mqsim::device::glue::{Clock, Console, Glue, Input, Sensor, Transport, Wifi};
use mqsim::device::{Device, DeviceEvent, Reading, SerialLine};
use mqsim::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes read from the transport per read call.
const READ_CHUNK_BYTES: usize = 2 * 1024;

/// A connection being opened.
pub type Connecting<S> = Pin<Box<dyn Future<Output = io::Result<S>>>>;

/// Opens the device's TCP connection to the broker.
pub trait Connector {
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    fn connect(&mut self) -> Connecting<Self::Stream>;
}

/// What the world tells the device besides bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// The access point is gone: the WiFi driver reports the link down, the transport with it.
    WifiDown,
    /// The access point is back: a join may succeed again.
    WifiUp,
    /// An input of the board changed (a door switch, a button): for the application.
    Input {
        /// The input's name.
        name: String,
        /// Its new value.
        value: Value,
    },
    /// Stop answering sensor requests (the simulation's heal phase: nothing new is published).
    Quiet,
    /// Stop the loop.
    Stop,
}

/// The device's surroundings, supplied by the caller.
pub trait DeviceHooks {
    /// Now, on the caller's clock.
    fn now(&mut self) -> Instant;
    /// Every event the device emits, in order (serial lines, ledger hooks, requests).
    fn event(&mut self, now: Instant, ev: &DeviceEvent);
    /// A sensor reading.
    fn reading(&mut self) -> Reading;
    /// How long joining the access point takes.
    fn wifi_join_delay(&mut self) -> Duration;
    /// The transport just failed with this error (for the caller's log); default: nothing.
    fn transport_error(&mut self, _now: Instant, _e: &io::Error) {}
}

/// The tokio world of one device, as the core's glue sees it: the caller's hooks (clock,
/// console, sensor, WiFi join delay), the access point, and the connection.
struct World<C: Connector, H> {
    hooks: H,
    connector: C,
    stream: Option<C::Stream>,
    connecting: Option<Connecting<C::Stream>>,
    /// The access point is there.
    access_point: bool,
    /// A join was asked for and has not completed.
    wants_wifi: bool,
    /// When the join in progress completes.
    wifi_up_at: Option<Instant>,
    /// Sensor requests go unanswered.
    quiet: bool,
}

impl<C: Connector, H: DeviceHooks> World<C, H> {
    /// Starts joining if the access point is there and no join is under way.
    fn start_join(&mut self, now: Instant) {
        if self.access_point && self.wifi_up_at.is_none() {
            self.wifi_up_at = Some(now + self.hooks.wifi_join_delay());
        }
    }
}

impl<C: Connector, H: DeviceHooks> Clock for World<C, H> {
    fn now(&mut self) -> Instant {
        self.hooks.now()
    }
}

impl<C: Connector, H: DeviceHooks> Console for World<C, H> {
    /// Unused: [`Console::event`] hands every event, serial lines included, to the hooks.
    fn line(&mut self, _line: &SerialLine) {}
    fn event(&mut self, now: Instant, ev: &DeviceEvent) {
        self.hooks.event(now, ev);
    }
}

impl<C: Connector, H: DeviceHooks> Wifi for World<C, H> {
    fn join(&mut self, now: Instant) {
        self.wants_wifi = true;
        self.start_join(now);
    }
}

impl<C: Connector, H: DeviceHooks> Sensor for World<C, H> {
    async fn read(&mut self) -> Option<Reading> {
        (!self.quiet).then(|| self.hooks.reading())
    }
}

impl<C: Connector, H: DeviceHooks> Transport for World<C, H> {
    /// The connector bounds the connect itself.
    fn open(&mut self, _timeout_ms: u64) {
        self.stream = None;
        self.connecting = Some(self.connector.connect());
    }
    fn close(&mut self) {
        self.stream = None;
        self.connecting = None;
    }
    fn is_connected(&self) -> bool {
        self.stream.is_some()
    }
    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u64) -> bool {
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        let limit = std::time::Duration::from_millis(timeout_ms);
        let written = match tokio::time::timeout(limit, s.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        };
        match written {
            Ok(()) => true,
            Err(e) => {
                let at = self.hooks.now();
                self.hooks.transport_error(at, &e);
                false
            }
        }
    }
}

/// Runs `dev` until [`Control::Stop`] or the control channel closes: the core's glue
/// ([`Glue::settle`]), then whichever comes first of a control message, the connect, the socket
/// and the wake-up, handed back to the glue.
pub async fn run_device<A: App, C: Connector, H: DeviceHooks>(
    dev: Device<A>,
    connector: C,
    mut control: mpsc::UnboundedReceiver<Control>,
    hooks: H,
) {
    let mut w = World {
        hooks,
        connector,
        stream: None,
        connecting: None,
        access_point: true,
        wants_wifi: false,
        wifi_up_at: None,
        quiet: false,
    };
    let mut glue = Glue::new(dev);
    let mut rbuf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let timeout = glue.settle(&mut w).await;
        let wake = [timeout, w.wifi_up_at].into_iter().flatten().min();
        let now = w.hooks.now();
        let (connecting, stream) = (&mut w.connecting, &mut w.stream);
        tokio::select! {
            biased;
            c = control.recv() => match c {
                None | Some(Control::Stop) => return,
                Some(Control::Quiet) => w.quiet = true,
                Some(Control::Input { name, value }) => {
                    glue.handle(w.hooks.now(), Input::Board { name: &name, value });
                }
                Some(Control::WifiDown) => {
                    w.access_point = false;
                    w.wifi_up_at = None;
                    w.close();
                    glue.handle(w.hooks.now(), Input::Wifi(false));
                }
                Some(Control::WifiUp) => {
                    w.access_point = true;
                    if w.wants_wifi {
                        let now = w.hooks.now();
                        w.start_join(now);
                    }
                }
            },
            r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                w.connecting = None;
                let now = w.hooks.now();
                match r {
                    Ok(s) => {
                        w.stream = Some(s);
                        glue.handle(now, Input::TcpConnected);
                    }
                    Err(e) => {
                        w.hooks.transport_error(now, &e);
                        glue.handle(now, Input::TcpFailed);
                    }
                }
            }
            r = async { stream.as_mut().expect("guarded").read(&mut rbuf).await }, if stream.is_some() => {
                let now = w.hooks.now();
                match r {
                    Ok(0) => {
                        w.stream = None;
                        glue.handle(now, Input::TcpClosed);
                    }
                    Err(e) => {
                        w.hooks.transport_error(now, &e);
                        w.stream = None;
                        glue.handle(now, Input::TcpClosed);
                    }
                    Ok(n) => glue.handle(now, Input::Bytes(&rbuf[..n])),
                }
            }
            _ = sleep_until(now, wake) => {
                let now = w.hooks.now();
                if w.wifi_up_at.is_some_and(|t| t <= now) {
                    w.wifi_up_at = None;
                    w.wants_wifi = false;
                    glue.handle(now, Input::Wifi(true));
                }
                glue.handle(now, Input::Timer);
            }
        }
    }
}

/// Sleeps from `now` until `at` on tokio's clock (which turmoil simulates); forever for `None`.
pub async fn sleep_until(now: Instant, at: Option<Instant>) {
    match at {
        Some(at) => {
            let us = at.as_micros().saturating_sub(now.as_micros());
            tokio::time::sleep(std::time::Duration::from_micros(us)).await
        }
        None => std::future::pending().await,
    }
}
