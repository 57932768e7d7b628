//! A simulated `mosquitto_sub -t FILTER -v`: the core's sans-IO [`Client`] in a tokio loop over a
//! stream the connector opens. It subscribes after every CONNACK, with a session or without (as
//! `mosquitto_sub` does: client/sub_client.c, `my_connect_callback`, subscribes whenever the
//! CONNACK's result is 0, whatever its session-present flag), prints each
//! message as `topic payload` (a QoS 2 one at its PUBREL, as libmosquitto hands it on:
//! [`mqsim::client::Qos2Delivery::AtPubrel`], set by `subscribers::build` for both engines), and
//! reconnects a second after a loss (libmosquitto's default
//! reconnect delay), also when its WiFi dropped while a connection attempt was under way.
//!
//! Like the real one, it gives up when its first connection attempt fails (`mosquitto_sub`
//! exits on `Error: Connection timed out` / `Network is unreachable`): a TCP connect that fails, or
//! is cut by a WiFi drop, before any connection was ever established. It says so
//! ([`SubEvent::GaveUp`]) and stops.

use mqsim::client::{Client, ClientConfig, Event};
use mqsim::driver::drain_into;
use mqsim::time::{Duration, Instant};
use mqsim::QoS;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::device_io::{sleep_until, Connecting, Control};

/// libmosquitto's `reconnect_delay` default.
pub const RECONNECT_DELAY_MS: u64 = 1_000;
const READ_CHUNK_BYTES: usize = 4 * 1024;

/// What the subscriber reports to the simulation.
#[derive(Debug)]
pub enum SubEvent<'a> {
    Connected {
        session_present: bool,
    },
    /// A SUBSCRIBE was sent (the broker may deliver what it covers before its SUBACK).
    Subscribing,
    Subscribed {
        granted: Option<QoS>,
    },
    Message(&'a Event),
    Disconnected,
    /// The first connection attempt failed: the subscriber exits, as `mosquitto_sub` does.
    GaveUp,
}

pub trait SubHooks {
    fn now(&mut self) -> Instant;
    fn event(&mut self, now: Instant, ev: SubEvent<'_>);
}

pub type Connect<S> = Box<dyn FnMut() -> Connecting<S>>;

/// What the subscriber does with its client's events after an input: tells `hooks`, subscribes
/// after a CONNACK without a session. Returns whether it gave the client an input (drain again)
/// and whether the connection was lost (drop it, reconnect after [`RECONNECT_DELAY_MS`]).
pub(crate) fn on_events<H: SubHooks>(
    client: &mut Client,
    events: &mut Vec<Event>,
    filter: &str,
    qos: QoS,
    hooks: &mut H,
    now: Instant,
) -> (bool, bool) {
    let (mut again, mut lost) = (false, false);
    for ev in events.drain(..) {
        match &ev {
            Event::Connected { session_present } => {
                hooks.event(
                    now,
                    SubEvent::Connected {
                        session_present: *session_present,
                    },
                );
                // Also with a session present: a session whose SUBSCRIBE never reached the broker
                // (its first connection lost before the SUBACK) has no subscription to resume.
                hooks.event(now, SubEvent::Subscribing);
                let _ = client.subscribe(now, &[(filter, qos)]);
                again = true;
            }
            Event::Subscribed { granted, .. } => hooks.event(
                now,
                SubEvent::Subscribed {
                    granted: granted.first().copied().flatten(),
                },
            ),
            Event::Message { .. } => hooks.event(now, SubEvent::Message(&ev)),
            Event::ConnectionLost(_) | Event::ConnectionRefused(_) => {
                hooks.event(now, SubEvent::Disconnected);
                lost = true;
            }
            _ => {}
        }
    }
    (again, lost)
}

/// Runs one subscriber until `control` says stop or closes. `WifiDown` cuts its link (the
/// stream is dropped; the caller has silenced it) and holds reconnects until `WifiUp`.
pub async fn run_subscriber<S, H>(
    config: ClientConfig,
    filter: String,
    qos: QoS,
    mut connect: Connect<S>,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut hooks: H,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    H: SubHooks,
{
    let Ok(mut client) = Client::new(config, hooks.now()) else {
        return;
    };
    let mut stream: Option<S> = None;
    let mut connecting: Option<Connecting<S>> = Some(connect());
    let mut reconnect_at: Option<Instant> = None;
    let mut online = true;
    // A TCP connection was established at least once (`mosquitto_connect` returned success).
    let mut established = false;
    let (mut buf, mut writes, mut events) = (Vec::new(), Vec::new(), Vec::new());
    let mut rbuf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let now = hooks.now();
        writes.clear();
        let timeout = drain_into(&mut client, &mut buf, &mut writes, &mut events);
        let (again, lost) = on_events(&mut client, &mut events, &filter, qos, &mut hooks, now);
        if lost {
            stream = None;
            reconnect_at = Some(now + Duration::from_millis(RECONNECT_DELAY_MS));
        }
        if !writes.is_empty() {
            if let Some(s) = stream.as_mut() {
                if s.write_all(&writes).await.is_err() {
                    stream = None;
                    client.handle_disconnected(hooks.now());
                    continue;
                }
            }
        }
        if again {
            continue;
        }
        let wake = [timeout, reconnect_at.filter(|_| online)]
            .into_iter()
            .flatten()
            .min();
        let now = hooks.now();
        tokio::select! {
            biased;
            c = control.recv() => match c {
                None | Some(Control::Stop) => return,
                Some(Control::Quiet) | Some(Control::Input { .. }) => {}
                Some(Control::WifiDown) => {
                    online = false;
                    stream = None;
                    let now = hooks.now();
                    if connecting.take().is_some() {
                        if !established {
                            hooks.event(now, SubEvent::GaveUp);
                            return;
                        }
                        // A connection attempt cut by the drop: try again once back.
                        reconnect_at = Some(now + Duration::from_millis(RECONNECT_DELAY_MS));
                    }
                    client.handle_disconnected(now);
                }
                Some(Control::WifiUp) => online = true,
            },
            r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                let now = hooks.now();
                match r {
                    Ok(s) => {
                        established = true;
                        stream = Some(s);
                        client.handle_connected(now);
                    }
                    Err(_) if !established => {
                        hooks.event(now, SubEvent::GaveUp);
                        return;
                    }
                    Err(_) => reconnect_at = Some(now + Duration::from_millis(RECONNECT_DELAY_MS)),
                }
            }
            r = async { stream.as_mut().expect("guarded").read(&mut rbuf).await }, if stream.is_some() => {
                let now = hooks.now();
                match r {
                    Ok(0) | Err(_) => {
                        stream = None;
                        client.handle_disconnected(now);
                    }
                    Ok(n) => client.handle_bytes(now, &rbuf[..n]),
                }
            }
            _ = sleep_until(now, wake) => {
                let now = hooks.now();
                if online && reconnect_at.is_some_and(|t| t <= now) && connecting.is_none() && stream.is_none() {
                    reconnect_at = None;
                    connecting = Some(connect());
                }
                client.handle_timeout(now);
            }
        }
    }
}
