//! The tokio adapter for the virtual ESP32 ([`mqsim::device::Device`]): one loop that connects
//! when the device asks, moves bytes, fires its timers, answers its sensor requests, and tells it
//! when WiFi comes and goes. `mqsim device` runs it over real TCP; the simulator runs the same
//! loop over turmoil's TCP under the modelled link. The device never learns which.
//!
//! Time is the caller's clock ([`DeviceHooks::now`]): tokio's under `mqsim device`, the
//! simulation's under `mqsim sim` (turmoil drives tokio's timers). Every `select!` is `biased;`.

use std::future::Future;
use std::io;
use std::pin::Pin;

use mqsim::device::{Device, DeviceEvent, Reading};
use mqsim::driver::drain_into;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// The access point is gone: the WiFi driver reports the link down, the transport with it.
    WifiDown,
    /// The access point is back: a join may succeed again.
    WifiUp,
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

/// Runs `dev` until [`Control::Stop`] or the control channel closes.
pub async fn run_device<C: Connector, H: DeviceHooks>(
    mut dev: Device,
    mut connector: C,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut hooks: H,
) {
    let mut stream: Option<C::Stream> = None;
    let mut connecting: Option<Connecting<C::Stream>> = None;
    let mut access_point = true;
    let mut wants_wifi = false;
    let mut wifi_up_at: Option<Instant> = None;
    let mut quiet = false;
    let mut buf = Vec::new();
    let mut writes = Vec::new();
    let mut events = Vec::new();
    let mut rbuf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        // Drain every output after every input; the device's requests are inputs in turn.
        let now = hooks.now();
        writes.clear();
        let timeout = drain_into(&mut dev, &mut buf, &mut writes, &mut events);
        let mut again = false;
        for ev in events.drain(..) {
            hooks.event(now, &ev);
            match ev {
                DeviceEvent::OpenTransport => {
                    stream = None;
                    connecting = Some(connector.connect());
                }
                DeviceEvent::CloseTransport => {
                    stream = None;
                    connecting = None;
                }
                DeviceEvent::JoinWifi => {
                    wants_wifi = true;
                    if access_point && wifi_up_at.is_none() {
                        wifi_up_at = Some(now + hooks.wifi_join_delay());
                    }
                }
                DeviceEvent::ReadSensor if !quiet => {
                    dev.handle_reading(now, hooks.reading());
                    again = true;
                }
                _ => {}
            }
        }
        if !writes.is_empty() {
            if let Some(s) = stream.as_mut() {
                // The sketch blocks in the write while the TCP send buffer is full, up to the
                // library's timeout; then the connection is given up.
                let limit = std::time::Duration::from_millis(dev.config().params.write_timeout_ms);
                let written = match tokio::time::timeout(limit, s.write_all(&writes)).await {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
                };
                if let Err(e) = written {
                    let at = hooks.now();
                    hooks.transport_error(at, &e);
                    stream = None;
                    dev.handle_transport_closed(hooks.now());
                    continue;
                }
                dev.handle_sent(hooks.now(), writes.len());
            }
        }
        if again {
            continue;
        }
        let wake = [timeout, wifi_up_at].into_iter().flatten().min();
        let now = hooks.now();
        tokio::select! {
            biased;
            c = control.recv() => match c {
                None | Some(Control::Stop) => return,
                Some(Control::Quiet) => quiet = true,
                Some(Control::WifiDown) => {
                    access_point = false;
                    wifi_up_at = None;
                    stream = None;
                    connecting = None;
                    dev.handle_wifi(hooks.now(), false);
                }
                Some(Control::WifiUp) => {
                    access_point = true;
                    if wants_wifi && wifi_up_at.is_none() {
                        wifi_up_at = Some(hooks.now() + hooks.wifi_join_delay());
                    }
                }
            },
            r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                let now = hooks.now();
                match r {
                    Ok(s) => {
                        stream = Some(s);
                        dev.handle_transport_connected(now);
                    }
                    Err(e) => {
                        hooks.transport_error(now, &e);
                        dev.handle_transport_failed(now);
                    }
                }
            }
            r = async { stream.as_mut().expect("guarded").read(&mut rbuf).await }, if stream.is_some() => {
                let now = hooks.now();
                match r {
                    Ok(0) => {
                        stream = None;
                        dev.handle_transport_closed(now);
                    }
                    Err(e) => {
                        hooks.transport_error(now, &e);
                        stream = None;
                        dev.handle_transport_closed(now);
                    }
                    Ok(n) => dev.handle_bytes(now, &rbuf[..n]),
                }
            }
            _ = sleep_until(now, wake) => {
                let now = hooks.now();
                if wifi_up_at.is_some_and(|t| t <= now) {
                    wifi_up_at = None;
                    wants_wifi = false;
                    dev.handle_wifi(now, true);
                }
                dev.handle_timeout(now);
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
