//! A device given as an Arduino sketch (`sketch = "app.ino"`): the user's C++ and the real MQTT
//! library they link (PubSubClient), compiled for the host against mqsim's own Arduino core
//! ([`mod@compile`]), run as a process per device ([`process`]) whose clock, serial port, WiFi, TCP
//! socket, randomness and sensor are the simulator's ([`run_sketch`]).
//!
//! Design. A process per device: each device keeps its own globals for free (two devices of the
//! same sketch are two processes of one executable), a crash stays the sketch's, and the
//! simulator needs no unsafe code (no `dlopen` of one copy per device, no stack switching). The
//! process is a coroutine: it runs only between one of its requests and our reply, while the
//! simulator's task waits for it, so exactly one of the two runs at any moment and the run stays
//! deterministic (the sketch sees nothing of the host: no environment, no real clock; its
//! randomness is a seeded stream). Blocking code hands control back by construction: `delay()`
//! is a request answered after that much simulated time, and every poll (`millis()`,
//! `available()` with nothing to read, `connected()`, `WiFi.status()`, `yield()`, the end of
//! `loop()`) costs [`POLL_COST_US`] of virtual CPU time, slept off in simulated time once it
//! reaches [`SLICE_US`]: a sketch or a library that spins until a byte comes or a timeout passes
//! sees time pass and the byte come.

pub mod compile;
pub mod process;

use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;

use mqsim::codec::{ConnectReturnCode, FrameBuffer, Packet};
use mqsim::device::Reading;
use mqsim::limits;
use mqsim::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;

use crate::device_io::{Connector, Control};
pub use compile::{compile, SketchSource, LIBRARIES_ENV};
use process::{Op, Request, SketchProcess};

/// Virtual CPU time of one poll of the world.
pub const POLL_COST_US: u64 = 250;
/// Virtual CPU time is slept off in slices of this much.
pub const SLICE_US: u64 = 1_000;
/// A TCP write that cannot complete in this long fails (the ESP32 core's WiFiClient gives up
/// after about as long).
const WRITE_TIMEOUT_MS: u64 = 10_000;
/// `WiFiClient::connect` gives up after this long: arduino-esp32's `WIFI_CLIENT_DEF_CONN_TIMEOUT_MS`
/// (a non-blocking lwIP `connect` and a 3 s `select`), the `pubsubclient` profile's
/// `tcp_connect_timeout_ms`. Without it a SYN into a dead path blocked the sketch through TCP's
/// whole backoff (a minute and more).
const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// `WiFi.status()`: joined.
const WL_CONNECTED: i64 = 3;
/// `WiFi.status()`: not joined.
const WL_DISCONNECTED: i64 = 6;
/// Bytes read from the socket per read call.
const READ_CHUNK_BYTES: usize = 2 * 1024;

/// The sketch's surroundings, supplied by the simulator.
pub trait SketchHooks {
    /// Now, on the simulator's clock.
    fn now(&mut self) -> Instant;
    /// A whole serial line, printed from `at`.
    fn serial_line(&mut self, at: Instant, text: &str);
    /// A line of the simulator about the sketch (it exited, it could not start).
    fn note(&mut self, at: Instant, text: &str);
    /// A sensor reading.
    fn reading(&mut self) -> Reading;
    /// How long joining the access point takes.
    fn wifi_join_delay(&mut self) -> Duration;
    /// A number of the sketch's random stream.
    fn random(&mut self) -> u32;
    /// The broker accepted the sketch's CONNECT (seen on the wire).
    fn connected(&mut self, at: Instant, clean_session: bool);
    /// The sketch's MQTT connection ended.
    fn disconnected(&mut self, at: Instant);
    /// The broker sent the sketch a PUBLISH (seen on the wire).
    fn received(&mut self, at: Instant, topic: &str, payload: &[u8]);
}

/// What happened while the sketch was blocked on the world.
enum Wake<T> {
    Control(Option<Control>),
    Done(T),
}

struct Runner<C: Connector, H> {
    hooks: H,
    connector: C,
    stream: Option<C::Stream>,
    /// Bytes received and not yet read by the sketch.
    rx: VecDeque<u8>,
    /// Virtual CPU time not yet slept off.
    cpu_us: u64,
    access_point: bool,
    /// `WiFi.begin()` was called.
    wants_wifi: bool,
    joined: bool,
    join_at: Option<Instant>,
    quiet: bool,
    stopped: bool,
    serial: Vec<u8>,
    serial_at: Option<Instant>,
    /// The wire, decoded: the sketch's bytes and the broker's.
    up: FrameBuffer,
    down: FrameBuffer,
    clean_session: bool,
    mqtt_connected: bool,
}

impl<C: Connector, H: SketchHooks> Runner<C, H> {
    fn now(&mut self) -> Instant {
        self.hooks.now() + Duration::from_micros(self.cpu_us)
    }

    fn apply(&mut self, c: Option<Control>) {
        match c {
            None | Some(Control::Stop) => self.stopped = true,
            Some(Control::Quiet) => self.quiet = true,
            // A sketch reads its inputs from pins, which this core does not model.
            Some(Control::Input { .. }) => {}
            Some(Control::WifiDown) => {
                self.access_point = false;
                self.joined = false;
                self.join_at = None;
                self.drop_stream();
            }
            Some(Control::WifiUp) => {
                self.access_point = true;
                if self.wants_wifi && !self.joined {
                    self.start_join();
                }
            }
        }
    }

    fn start_join(&mut self) {
        if self.access_point && self.join_at.is_none() && !self.joined {
            let at = self.now() + self.hooks.wifi_join_delay();
            self.join_at = Some(at);
        }
    }

    /// The join completes in the background, as the ESP32's WiFi driver does, whether or not the
    /// sketch polls `WiFi.status()` (a sketch that only retries `client.connect()` sees the
    /// link come back too).
    fn wifi_tick(&mut self) {
        let now = self.now();
        if self.join_at.is_some_and(|t| t <= now) {
            self.join_at = None;
            self.joined = true;
        }
    }

    fn drop_stream(&mut self) {
        self.stream = None;
        self.rx.clear();
        self.lost();
    }

    /// The MQTT connection is over (the socket closed or was dropped).
    fn lost(&mut self) {
        if self.mqtt_connected {
            self.mqtt_connected = false;
            let at = self.now();
            self.hooks.disconnected(at);
        }
        self.up = FrameBuffer::default();
        self.down = FrameBuffer::default();
    }

    /// Sleeps until `at` in simulated time, applying control messages meanwhile.
    async fn wait_until(&mut self, control: &mut mpsc::UnboundedReceiver<Control>, at: Instant) {
        self.cpu_us = 0;
        while !self.stopped {
            let now = self.hooks.now();
            if now >= at {
                return;
            }
            let us = at.as_micros() - now.as_micros();
            let wake = tokio::select! {
                biased;
                c = control.recv() => Wake::Control(c),
                _ = tokio::time::sleep(std::time::Duration::from_micros(us)) => Wake::Done(()),
            };
            match wake {
                Wake::Control(c) => self.apply(c),
                Wake::Done(()) => return,
            }
        }
    }

    /// A poll of the world: costs virtual CPU time.
    async fn poll_cost(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) {
        self.cpu_us += POLL_COST_US;
        if self.cpu_us >= SLICE_US {
            let at = self.now();
            self.wait_until(control, at).await;
        }
    }

    /// Reads whatever the socket has now, without waiting.
    async fn pump(&mut self) {
        let mut buf = [0u8; READ_CHUNK_BYTES];
        while let Some(s) = self.stream.as_mut() {
            let r = std::future::poll_fn(|cx| {
                let mut rb = ReadBuf::new(&mut buf);
                match Pin::new(&mut *s).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(rb.filled().len()))),
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Pending => Poll::Ready(None),
                }
            })
            .await;
            match r {
                None => return,
                Some(Ok(0)) | Some(Err(_)) => {
                    // Closed: what was received stays readable, as with the ESP32's WiFiClient.
                    self.stream = None;
                    self.lost();
                    return;
                }
                Some(Ok(n)) => {
                    self.rx.extend(&buf[..n]);
                    self.decode_down(n, &buf);
                }
            }
        }
    }

    fn decode_down(&mut self, n: usize, buf: &[u8]) {
        let at = self.now();
        let mut events: Vec<(bool, String, Vec<u8>)> = Vec::new();
        let _ = self
            .down
            .feed::<()>(&buf[..n], limits::REMAINING_LENGTH_MAX_BYTES, |p| {
                match p {
                    Packet::ConnAck(a) if a.code == ConnectReturnCode::Accepted => {
                        events.push((true, String::new(), Vec::new()))
                    }
                    Packet::Publish(p) => {
                        events.push((false, p.topic.to_string(), p.payload.to_vec()))
                    }
                    _ => {}
                }
                ControlFlow::Continue(())
            });
        for (connack, topic, payload) in events {
            if connack {
                self.mqtt_connected = true;
                let clean = self.clean_session;
                self.hooks.connected(at, clean);
            } else {
                self.hooks.received(at, &topic, &payload);
            }
        }
    }

    fn decode_up(&mut self, bytes: &[u8]) {
        let mut clean = None;
        let _ = self
            .up
            .feed::<()>(bytes, limits::REMAINING_LENGTH_MAX_BYTES, |p| {
                if let Packet::Connect(c) = p {
                    clean = Some(c.clean_session);
                }
                ControlFlow::Continue(())
            });
        if let Some(c) = clean {
            self.clean_session = c;
        }
    }

    fn serial(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.serial_at.is_none() {
                self.serial_at = Some(self.now());
            }
            if b == b'\n' {
                if self.serial.last() == Some(&b'\r') {
                    self.serial.pop();
                }
                let text = String::from_utf8_lossy(&self.serial).into_owned();
                let at = self.serial_at.take().unwrap_or(Instant::ZERO);
                self.hooks.serial_line(at, &text);
                self.serial.clear();
            } else {
                self.serial.push(b);
            }
        }
    }

    /// Serves one request: the reply's value and bytes.
    async fn serve(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        req: Request,
    ) -> (i64, Vec<u8>) {
        match req.op {
            Op::Start => (0, Vec::new()),
            Op::Now => {
                self.poll_cost(control).await;
                (self.now().as_micros() as i64, Vec::new())
            }
            Op::Delay => {
                let at = self.now() + Duration::from_millis(req.arg);
                self.wait_until(control, at).await;
                (0, Vec::new())
            }
            Op::Yield | Op::LoopEnd => {
                self.poll_cost(control).await;
                (0, Vec::new())
            }
            Op::Serial => {
                self.serial(&req.data);
                (0, Vec::new())
            }
            Op::WifiBegin => {
                self.wants_wifi = true;
                self.start_join();
                (0, Vec::new())
            }
            Op::WifiStatus => {
                self.poll_cost(control).await;
                self.wifi_tick();
                (
                    if self.joined {
                        WL_CONNECTED
                    } else {
                        WL_DISCONNECTED
                    },
                    Vec::new(),
                )
            }
            Op::Random => (i64::from(self.hooks.random()), Vec::new()),
            Op::Sensor => {
                let r = self.hooks.reading();
                let v = if self.quiet {
                    f32::NAN
                } else if req.arg == 0 {
                    r.temperature_c
                } else {
                    r.humidity_pct
                };
                // Thousandths; NaN (a failed read) as i64::MIN.
                let milli = if v.is_nan() {
                    i64::MIN
                } else {
                    (f64::from(v) * 1000.0).round() as i64
                };
                (milli, Vec::new())
            }
            Op::TcpConnect => (i64::from(self.connect(control).await), Vec::new()),
            Op::TcpWrite => (self.write(control, &req.data).await as i64, Vec::new()),
            Op::TcpAvailable => {
                self.pump().await;
                if self.rx.is_empty() {
                    self.poll_cost(control).await;
                    self.pump().await;
                }
                (self.rx.len() as i64, Vec::new())
            }
            Op::TcpRead => {
                self.pump().await;
                if self.rx.is_empty() {
                    self.poll_cost(control).await;
                    return (-1, Vec::new());
                }
                let n = (req.arg as usize).min(self.rx.len());
                let data: Vec<u8> = self.rx.drain(..n).collect();
                (data.len() as i64, data)
            }
            Op::TcpPeek => {
                self.pump().await;
                match self.rx.front() {
                    Some(&b) => (i64::from(b), Vec::new()),
                    None => {
                        self.poll_cost(control).await;
                        (-1, Vec::new())
                    }
                }
            }
            Op::TcpConnected => {
                self.poll_cost(control).await;
                self.pump().await;
                (
                    i64::from(self.stream.is_some() || !self.rx.is_empty()),
                    Vec::new(),
                )
            }
            Op::TcpStop => {
                self.drop_stream();
                (0, Vec::new())
            }
        }
    }

    /// `WiFiClient::connect`: true once connected to the broker.
    async fn connect(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) -> bool {
        self.drop_stream();
        self.wifi_tick();
        if !self.joined {
            return false;
        }
        let mut connecting = self.connector.connect();
        let timeout = tokio::time::sleep(std::time::Duration::from_millis(CONNECT_TIMEOUT_MS));
        tokio::pin!(timeout);
        loop {
            let wake = tokio::select! {
                biased;
                c = control.recv() => Wake::Control(c),
                r = &mut connecting => Wake::Done(r),
                _ = &mut timeout => return false,
            };
            match wake {
                Wake::Control(c) => {
                    self.apply(c);
                    if self.stopped || !self.joined {
                        return false;
                    }
                }
                Wake::Done(Ok(s)) => {
                    self.stream = Some(s);
                    return true;
                }
                Wake::Done(Err(_)) => return false,
            }
        }
    }

    /// `WiFiClient::write`: how many bytes were written (0 = failed; the socket is then closed).
    async fn write(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        data: &[u8],
    ) -> usize {
        self.pump().await;
        let limit = std::time::Duration::from_millis(WRITE_TIMEOUT_MS);
        loop {
            let Some(s) = self.stream.as_mut() else {
                return 0;
            };
            let wake = tokio::select! {
                biased;
                c = control.recv() => Wake::Control(c),
                r = tokio::time::timeout(limit, s.write_all(data)) => Wake::Done(r),
            };
            match wake {
                // A control message cancelled the write: applied, then the write is retried
                // whole (bytes of a cancelled write_all may be half sent: rare, only with faults).
                Wake::Control(c) => {
                    self.apply(c);
                    if self.stopped {
                        return 0;
                    }
                }
                Wake::Done(Ok(Ok(()))) => {
                    self.decode_up(data);
                    return data.len();
                }
                Wake::Done(_) => {
                    self.drop_stream();
                    return 0;
                }
            }
        }
    }
}

/// Runs the sketch `exe` as one device until [`Control::Stop`] or the control channel closes.
pub async fn run_sketch<C: Connector, H: SketchHooks>(
    exe: &Path,
    connector: C,
    mut control: mpsc::UnboundedReceiver<Control>,
    hooks: H,
) {
    let mut r = Runner {
        hooks,
        connector,
        stream: None,
        rx: VecDeque::new(),
        cpu_us: 0,
        access_point: true,
        wants_wifi: false,
        joined: false,
        join_at: None,
        quiet: false,
        stopped: false,
        serial: Vec::new(),
        serial_at: None,
        up: FrameBuffer::default(),
        down: FrameBuffer::default(),
        clean_session: true,
        mqtt_connected: false,
    };
    let mut proc = match SketchProcess::spawn(exe) {
        Ok(p) => p,
        Err(e) => {
            let at = r.now();
            r.hooks
                .note(at, &format!("sketch {}: cannot start: {e}", exe.display()));
            return;
        }
    };
    loop {
        while let Ok(c) = control.try_recv() {
            r.apply(Some(c));
        }
        if r.stopped {
            return;
        }
        let req = match proc.request() {
            Ok(req) => req,
            Err(e) => {
                r.ended(&mut proc, &e);
                return;
            }
        };
        let one_way = req.op.one_way();
        let (value, data) = r.serve(&mut control, req).await;
        if r.stopped {
            return;
        }
        if !one_way {
            if let Err(e) = proc.reply(value, &data) {
                r.ended(&mut proc, &e);
                return;
            }
        }
    }
}

impl<C: Connector, H: SketchHooks> Runner<C, H> {
    /// The sketch's process ended (it returned from main, aborted or crashed): the device is
    /// dead, as a board that stopped would be.
    fn ended(&mut self, proc: &mut SketchProcess, e: &io::Error) {
        // Give a crashing process a moment to be reaped, for its status.
        let mut status = None;
        for _ in 0..100 {
            status = proc.exit_status();
            if status.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let why = status.unwrap_or_else(|| e.to_string());
        if !self.serial.is_empty() {
            self.serial(b"\n");
        }
        let at = self.now();
        self.hooks.note(
            at,
            &format!("the sketch stopped ({why}): the device is dead"),
        );
        self.drop_stream();
    }
}
