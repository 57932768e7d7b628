//! A simulated `mosquitto_sub` under the direct engine: the core's [`Client`] and the same
//! behaviour as [`crate::run::subscriber::run_subscriber`] (its event handling is shared:
//! [`on_events`]), with the inputs taken in that loop's order (control, connect, socket, timer).

use mqsim::client::{Client, ClientConfig, Event};
use mqsim::driver::drain_into;
use mqsim::time::{Duration, Instant};
use mqsim::QoS;
use tokio::sync::mpsc;

use super::Opener;
use crate::device_io::Control;
use crate::net::link::Side;
use crate::net::stream::{sim_now, ConnectState, Net, ReadOutcome};
use crate::run::connector::SimConnector;
use crate::run::subscriber::{on_events, SubEvent, SubHooks, RECONNECT_DELAY_MS};
use crate::run::subscribers::{SimSubscriber, SubParts};

const READ_CHUNK_BYTES: usize = 4 * 1024;

pub(super) struct DirectSubscriber {
    client: Option<Client>,
    filter: String,
    qos: QoS,
    connector: SimConnector,
    opener: Opener,
    net: Net,
    control: mpsc::UnboundedReceiver<Control>,
    hooks: SimSubscriber,
    stream: Option<usize>,
    connecting: Option<usize>,
    refused: bool,
    reconnect_at: Option<Instant>,
    online: bool,
    established: bool,
    timeout: Option<Instant>,
    buf: Vec<u8>,
    writes: Vec<u8>,
    events: Vec<Event>,
    rbuf: Vec<u8>,
}

impl DirectSubscriber {
    pub(super) fn new(parts: SubParts, opener: Opener) -> DirectSubscriber {
        let (config, filter, qos, connector, control, hooks): (ClientConfig, _, _, _, _, _) = parts;
        let client = Client::new(config, sim_now()).ok();
        let mut s = DirectSubscriber {
            client,
            filter,
            qos,
            net: connector.net.clone(),
            connector,
            opener,
            control,
            hooks,
            stream: None,
            connecting: None,
            refused: false,
            reconnect_at: None,
            online: true,
            established: false,
            timeout: None,
            buf: Vec::new(),
            writes: Vec::new(),
            events: Vec::new(),
            rbuf: Vec::with_capacity(READ_CHUNK_BYTES),
        };
        if s.client.is_some() {
            s.connect();
        }
        s
    }

    fn connect(&mut self) {
        let r = self.opener.borrow_mut().open(&self.connector);
        match r {
            Ok(i) => self.connecting = Some(i),
            Err(()) => self.refused = true,
        }
    }

    fn drop_stream(&mut self) {
        if let Some(i) = self.stream.take() {
            self.net.close_socket(i, Side::Client);
        }
    }

    /// When it wants to be woken if nothing else happens.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.client.as_ref()?;
        [self.timeout, self.reconnect_at.filter(|_| self.online)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Drains the client, acts on its events and writes its bytes.
    fn settle(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        loop {
            let now = sim_now();
            self.writes.clear();
            self.timeout = drain_into(client, &mut self.buf, &mut self.writes, &mut self.events);
            let (again, lost) = on_events(
                client,
                &mut self.events,
                &self.filter,
                self.qos,
                &mut self.hooks,
                now,
            );
            if lost {
                if let Some(i) = self.stream.take() {
                    self.net.close_socket(i, Side::Client);
                }
                self.reconnect_at = Some(now + Duration::from_millis(RECONNECT_DELAY_MS));
            }
            if !self.writes.is_empty() {
                if let Some(i) = self.stream {
                    // A PC's send buffer: unbounded, the write completes at once.
                    if self.net.write(i, Side::Client, &self.writes).is_err() {
                        self.net.close_socket(i, Side::Client);
                        self.stream = None;
                        client.handle_disconnected(sim_now());
                        continue;
                    }
                }
            }
            if !again {
                return;
            }
        }
    }

    /// Takes every input that is there, settling after each.
    pub(super) fn process(&mut self) {
        if self.client.is_none() {
            return;
        }
        loop {
            self.settle();
            let now = sim_now();
            if let Ok(c) = self.control.try_recv() {
                match c {
                    Control::Stop => {
                        self.client = None;
                        return;
                    }
                    Control::Quiet | Control::Input { .. } => {}
                    Control::WifiDown => {
                        self.online = false;
                        self.drop_stream();
                        let was_connecting = self.connecting.take();
                        if let Some(i) = was_connecting {
                            self.net.abandon(i);
                        }
                        if was_connecting.is_some() || std::mem::take(&mut self.refused) {
                            if !self.established {
                                self.give_up(now);
                                return;
                            }
                            self.reconnect_at =
                                Some(now + Duration::from_millis(RECONNECT_DELAY_MS));
                        }
                        if let Some(c) = self.client.as_mut() {
                            c.handle_disconnected(now);
                        }
                    }
                    Control::WifiUp => self.online = true,
                }
                continue;
            }
            let failed = if std::mem::take(&mut self.refused) {
                true
            } else if let Some(i) = self.connecting {
                match self.net.connect_state(i) {
                    ConnectState::Established => {
                        self.connecting = None;
                        self.established = true;
                        self.stream = Some(i);
                        if let Some(c) = self.client.as_mut() {
                            c.handle_connected(now);
                        }
                        continue;
                    }
                    ConnectState::Failed => {
                        self.connecting = None;
                        true
                    }
                    ConnectState::Pending => false,
                }
            } else {
                false
            };
            if failed {
                if !self.established {
                    self.give_up(now);
                    return;
                }
                self.reconnect_at = Some(now + Duration::from_millis(RECONNECT_DELAY_MS));
                continue;
            }
            if let Some(i) = self.stream {
                self.rbuf.clear();
                match self
                    .net
                    .read(i, Side::Client, &mut self.rbuf, READ_CHUNK_BYTES)
                {
                    ReadOutcome::Pending => {}
                    ReadOutcome::Data(_) => {
                        if let Some(c) = self.client.as_mut() {
                            c.handle_bytes(now, &self.rbuf);
                        }
                        continue;
                    }
                    _ => {
                        self.drop_stream();
                        if let Some(c) = self.client.as_mut() {
                            c.handle_disconnected(now);
                        }
                        continue;
                    }
                }
            }
            if self.wake_at().is_some_and(|t| t <= now) {
                if self.online
                    && self.reconnect_at.is_some_and(|t| t <= now)
                    && self.connecting.is_none()
                    && self.stream.is_none()
                {
                    self.reconnect_at = None;
                    self.connect();
                }
                if let Some(c) = self.client.as_mut() {
                    c.handle_timeout(now);
                }
                // A timer that fires without changing the wake-up would spin: the client's
                // own timeout moves on once handled, the reconnect is taken or held offline.
                self.settle();
                if self.wake_at().is_some_and(|t| t <= now) {
                    return;
                }
                continue;
            }
            return;
        }
    }

    /// The first connection attempt failed: it exits, as `mosquitto_sub` does.
    fn give_up(&mut self, now: Instant) {
        self.hooks.event(now, SubEvent::GaveUp);
        self.client = None;
    }
}
