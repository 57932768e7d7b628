//! A virtual ESP32 under the direct engine: the core's device loop ([`Glue`], the firmware's
//! and the tokio adapter's too) over a [`Board`] whose transport is a connection of the
//! registry, whose clock is the engine's, and whose WiFi join is a timer. The inputs are taken in
//! the tokio adapter's order ([`crate::device_io::run_device`]: control, connect, socket, timer).
//!
//! [`Glue::settle`] is async only because a write may wait for room in the TCP send buffer (an
//! lwIP stack's 5,744 bytes). The settle is polled with a no-op waker: almost always it
//! completes in that one poll; when a write waits, the future (which owns the glue and the
//! board) is kept and polled again whenever the connection changes or the write's timeout
//! comes, and no other input reaches the device meanwhile, as in the tokio adapter.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mqsim::app::App;
use mqsim::device::glue::{Clock, Console, Glue, Input, Sensor, Transport, Wifi};
use mqsim::device::{Device, DeviceEvent, Reading, SerialLine};
use mqsim::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::device_io::{Control, DeviceHooks};
use crate::net::link::Side;
use crate::net::stream::{sim_now, ConnectState, Net, ReadOutcome};
use crate::run::connector::SimConnector;
use crate::run::devices::SimDevice;

/// Bytes read from the transport per read (the tokio adapter's `READ_CHUNK_BYTES`).
const READ_CHUNK_BYTES: usize = 2 * 1024;

/// The device's world as the glue sees it.
pub(super) struct Board {
    hooks: SimDevice,
    connector: SimConnector,
    opener: Opener,
    net: Net,
    stream: Option<usize>,
    connecting: Option<usize>,
    access_point: bool,
    wants_wifi: bool,
    wifi_up_at: Option<Instant>,
    quiet: bool,
    /// A write waits for room until then (shared with the engine while the board is inside a
    /// pending settle).
    blocked: Rc<Cell<Option<Instant>>>,
}

impl Board {
    fn start_join(&mut self, now: Instant) {
        if self.access_point && self.wifi_up_at.is_none() {
            self.wifi_up_at = Some(now + self.hooks.wifi_join_delay());
        }
    }

    /// Drops the stream: the socket is closed ([`crate::net::stream::LinkStream`]'s drop).
    fn drop_stream(&mut self) {
        if let Some(i) = self.stream.take() {
            self.net.close_socket(i, Side::Client);
        }
    }
}

impl Clock for Board {
    fn now(&mut self) -> Instant {
        sim_now()
    }
}

impl Console for Board {
    fn line(&mut self, _line: &SerialLine) {}
    fn event(&mut self, now: Instant, ev: &DeviceEvent) {
        self.hooks.event(now, ev);
    }
}

impl Wifi for Board {
    fn join(&mut self, now: Instant) {
        self.wants_wifi = true;
        self.start_join(now);
    }
}

impl Sensor for Board {
    async fn read(&mut self) -> Option<Reading> {
        (!self.quiet).then(|| self.hooks.reading())
    }
}

/// Pending once, then ready: gives control back to the engine.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

impl Transport for Board {
    fn open(&mut self, _timeout_ms: u64) {
        self.drop_stream();
        if let Some(i) = self.connecting.take() {
            self.net.abandon(i);
        }
        let connecting = self.opener.borrow_mut().open(&self.connector);
        match connecting {
            Ok(i) => self.connecting = Some(i),
            // Refused at once (the broker host is down): the failure comes as the next input.
            Err(()) => self.connecting = None,
        }
        if self.connecting.is_none() {
            self.opener
                .borrow_mut()
                .refused_now
                .push(self.connector.tag);
        }
    }
    fn close(&mut self) {
        self.drop_stream();
        if let Some(i) = self.connecting.take() {
            self.net.abandon(i);
        }
    }
    fn is_connected(&self) -> bool {
        self.stream.is_some()
    }
    async fn write_all(&mut self, bytes: &[u8], timeout_ms: u64) -> bool {
        let Some(i) = self.stream else {
            return false;
        };
        let deadline = sim_now() + Duration::from_millis(timeout_ms);
        let mut off = 0;
        loop {
            let now = sim_now();
            match self.net.write(i, Side::Client, &bytes[off..]) {
                Ok(n) => off += n,
                Err(e) => {
                    self.blocked.set(None);
                    self.hooks.transport_error(now, &e);
                    return false;
                }
            }
            if off >= bytes.len() {
                self.blocked.set(None);
                return true;
            }
            if now >= deadline {
                self.blocked.set(None);
                let e = io::Error::new(io::ErrorKind::TimedOut, "write timed out");
                self.hooks.transport_error(now, &e);
                return false;
            }
            self.blocked.set(Some(deadline));
            YieldOnce(false).await;
        }
    }
}

type Settling =
    Pin<Box<dyn Future<Output = (Box<Glue<Box<dyn App>>>, Box<Board>, Option<Instant>)>>>;

enum State {
    Idle(Box<Glue<Box<dyn App>>>, Box<Board>),
    Settling(Settling),
    Gone,
}

/// One device of the direct engine.
pub(super) struct DirectDevice {
    state: State,
    timeout: Option<Instant>,
    control: mpsc::UnboundedReceiver<Control>,
    blocked: Rc<Cell<Option<Instant>>>,
    span: tracing::Span,
    rbuf: Vec<u8>,
    stopped: bool,
}

impl DirectDevice {
    pub(super) fn new(
        dev: Device<Box<dyn App>>,
        connector: SimConnector,
        control: mpsc::UnboundedReceiver<Control>,
        hooks: SimDevice,
        opener: Opener,
    ) -> DirectDevice {
        let span = tracing::error_span!(crate::run::log::DEVICE_SPAN, name = %hooks.name);
        let blocked = Rc::new(Cell::new(None));
        let board = Board {
            hooks,
            net: connector.net.clone(),
            connector,
            opener,
            stream: None,
            connecting: None,
            access_point: true,
            wants_wifi: false,
            wifi_up_at: None,
            quiet: false,
            blocked: blocked.clone(),
        };
        let mut d = DirectDevice {
            state: State::Idle(Box::new(Glue::new(dev)), Box::new(board)),
            timeout: None,
            control,
            blocked,
            span,
            rbuf: Vec::with_capacity(READ_CHUNK_BYTES),
            stopped: false,
        };
        let span = d.span.clone();
        let _g = span.enter();
        d.settle();
        d
    }

    /// Settles the glue (or carries on with a settle that waits): false while it waits.
    fn settle(&mut self) -> bool {
        let mut fut = match std::mem::replace(&mut self.state, State::Gone) {
            State::Idle(mut glue, mut board) => {
                let f: Settling = Box::pin(async move {
                    let t = glue.settle(&mut *board).await;
                    (glue, board, t)
                });
                f
            }
            State::Settling(f) => f,
            State::Gone => return true,
        };
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready((glue, board, t)) => {
                self.timeout = t;
                self.state = State::Idle(glue, board);
                true
            }
            Poll::Pending => {
                self.state = State::Settling(fut);
                false
            }
        }
    }

    /// When the device wants to be woken if nothing else happens.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        match &self.state {
            State::Idle(_, board) => [self.timeout, board.wifi_up_at].into_iter().flatten().min(),
            State::Settling(_) => self.blocked.get(),
            State::Gone => None,
        }
    }

    /// Takes every input that is there, in the tokio adapter's order, settling after each.
    pub(super) fn process(&mut self) {
        if self.stopped {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        loop {
            if !self.settle() {
                return;
            }
            let State::Idle(glue, board) = &mut self.state else {
                return;
            };
            let now = sim_now();
            if let Ok(c) = self.control.try_recv() {
                match c {
                    Control::Stop => {
                        self.stopped = true;
                        return;
                    }
                    Control::Quiet => board.quiet = true,
                    Control::Input { name, value } => {
                        glue.handle(now, Input::Board { name: &name, value })
                    }
                    Control::WifiDown => {
                        board.access_point = false;
                        board.wifi_up_at = None;
                        board.close();
                        glue.handle(now, Input::Wifi(false));
                    }
                    Control::WifiUp => {
                        board.access_point = true;
                        if board.wants_wifi {
                            board.start_join(now);
                        }
                    }
                }
                continue;
            }
            let refused = {
                let mut o = board.opener.borrow_mut();
                let tag = board.connector.tag;
                let before = o.refused_now.len();
                o.refused_now.retain(|t| *t != tag);
                o.refused_now.len() != before
            };
            if refused {
                let e = io::Error::from(io::ErrorKind::ConnectionRefused);
                board.hooks.transport_error(now, &e);
                glue.handle(now, Input::TcpFailed);
                continue;
            }
            if let Some(i) = board.connecting {
                match board.net.connect_state(i) {
                    ConnectState::Established => {
                        board.connecting = None;
                        if let Some(bytes) = board.connector.send_buffer_bytes {
                            board.net.set_send_buffer_of(i, Side::Client, bytes);
                        }
                        board.stream = Some(i);
                        glue.handle(now, Input::TcpConnected);
                        continue;
                    }
                    ConnectState::Failed => {
                        board.connecting = None;
                        let e = io::Error::new(
                            io::ErrorKind::TimedOut,
                            "modelled TCP handshake: SYN retries exhausted",
                        );
                        board.hooks.transport_error(now, &e);
                        glue.handle(now, Input::TcpFailed);
                        continue;
                    }
                    ConnectState::Pending => {}
                }
            }
            if let Some(i) = board.stream {
                self.rbuf.clear();
                match board
                    .net
                    .read(i, Side::Client, &mut self.rbuf, READ_CHUNK_BYTES)
                {
                    ReadOutcome::Pending => {}
                    ReadOutcome::Data(_) => {
                        glue.handle(now, Input::Bytes(&self.rbuf));
                        continue;
                    }
                    other => {
                        if let Some(e) = other.error() {
                            board.hooks.transport_error(now, &e);
                        }
                        board.drop_stream();
                        glue.handle(now, Input::TcpClosed);
                        continue;
                    }
                }
            }
            let wake = [self.timeout, board.wifi_up_at].into_iter().flatten().min();
            if wake.is_some_and(|t| t <= now) {
                if board.wifi_up_at.is_some_and(|t| t <= now) {
                    board.wifi_up_at = None;
                    board.wants_wifi = false;
                    glue.handle(now, Input::Wifi(true));
                }
                glue.handle(now, Input::Timer);
                continue;
            }
            return;
        }
    }
}

/// What the devices and subscribers open connections through: the registry, each client
/// host's next ephemeral port, whether the broker listens, and who owns each connection.
pub(super) struct OpenState {
    pub(super) net: Net,
    pub(super) broker_listening: bool,
    next_port: [u16; 2],
    /// The tag of the client that opened each connection, by index.
    pub(super) owners: Vec<u32>,
    /// Clients whose connect was refused at once (no listener): they hear of it next.
    pub(super) refused_now: Vec<u32>,
}

pub(super) type Opener = Rc<RefCell<OpenState>>;

impl OpenState {
    pub(super) fn new(net: Net) -> OpenState {
        let first = *crate::run::EPHEMERAL_PORTS.start();
        OpenState {
            net,
            broker_listening: true,
            next_port: [first; 2],
            owners: Vec::new(),
            refused_now: Vec::new(),
        }
    }

    /// Opens a connection for `connector`'s client to the broker; `Err` when refused at once.
    pub(super) fn open(&mut self, connector: &SimConnector) -> Result<usize, ()> {
        if !self.broker_listening {
            return Err(());
        }
        let subscriber = connector.tag >= crate::run::wire::SUBSCRIBER_TAG_BASE;
        let (host, k) = if subscriber {
            (crate::run::CLIENTS_HOST, 1)
        } else {
            (crate::run::FIELD_HOST, 0)
        };
        let port = self.next_port[k];
        self.next_port[k] = if port == *crate::run::EPHEMERAL_PORTS.end() {
            *crate::run::EPHEMERAL_PORTS.start()
        } else {
            port + 1
        };
        let ip: std::net::IpAddr = host.parse().map_err(|_| ())?;
        let bip: std::net::IpAddr = crate::run::BROKER_HOST.parse().map_err(|_| ())?;
        let client = std::net::SocketAddr::new(ip, port);
        let server = std::net::SocketAddr::new(bip, crate::run::BROKER_PORT);
        let mut cfg = connector.link.clone();
        if connector.healed.get() {
            cfg.loss = crate::net::link::LossModel::None;
        }
        let i = self
            .net
            .open(client, server, cfg, Some(connector.tag))
            .map_err(|_| ())?;
        if self.owners.len() <= i {
            self.owners.resize(i + 1, u32::MAX);
        }
        self.owners[i] = connector.tag;
        Ok(i)
    }
}
