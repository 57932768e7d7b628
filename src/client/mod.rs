//! The sans-IO MQTT 3.1.1 client: the state machine the simulated ESP32 and the real firmware
//! (embassy-net) both drive.
//!
//! # Contract (after quinn-proto's `Connection`, like [`crate::broker::Broker`])
//! * Inputs, each taking `now`: [`Client::handle_connected`] (a transport is up: queues CONNECT),
//!   [`Client::handle_bytes`], [`Client::handle_disconnected`] (the transport is gone),
//!   [`Client::handle_timeout`], and the commands [`Client::publish`], [`Client::subscribe`],
//!   [`Client::unsubscribe`], [`Client::disconnect`].
//! * Outputs, drained after every input in this order: [`Client::poll_transmit`] (bytes for the
//!   transport), [`Client::poll_event`], then [`Client::poll_timeout`] (when to call
//!   `handle_timeout` next). QoS 0 messages complete in `poll_transmit`, so poll events after it.
//! * Time is a value: nothing here reads a clock. A spurious `handle_timeout` is a no-op, a `now`
//!   older than one already seen counts as the newest, no input panics, and the same inputs give
//!   the same outputs byte for byte (`BTreeSet` / `VecDeque` only, no randomness).
//! * Bytes may be split anywhere: a partial packet is kept until the rest arrives.
//!
//! # Connection lifecycle
//! [`ConnectionState::Disconnected`] → `handle_connected` → [`ConnectionState::Connecting`]
//! (CONNECT sent) → CONNACK 0 → [`ConnectionState::Connected`] ([`Event::Connected`]).
//! Any failure emits [`Event::ConnectionLost`] (or [`Event::ConnectionRefused`]) once and moves
//! to [`ConnectionState::Closed`]: nothing more is read, sent or timed on that transport. The
//! caller closes the socket and, with its own policy (the ESP32 sketch waits 5 s), opens a new
//! one and calls `handle_connected` again. Messages and requests survive across transports.
//!
//! # Outgoing messages
//! [`Client::publish`] validates the topic and size, numbers the message ([`PublishId`]) and
//! appends it to one FIFO queue (at most `max_queued_messages` waiting). While connected the
//! queue drains in order: QoS 0 straight into the transmit buffer, QoS 1/2 into the in-flight
//! window (at most `max_inflight_messages` unacknowledged). When both are full `publish` returns
//! [`ClientError::QueueFull`]; a message once accepted is never dropped silently. It completes
//! with [`Event::Published`]: QoS 0 when handed to `poll_transmit`, QoS 1 on PUBACK, QoS 2 on
//! PUBCOMP. A QoS 0 message still in the transmit buffer when the transport goes is put back at
//! the front of the queue.
//!
//! On reconnect:
//! * clean_session = 0 and CONNACK session present = 1: unacknowledged PUBLISH packets are
//!   re-sent with DUP = 1 and PUBREL packets re-sent, with their original packet identifiers and
//!   in their original order (MQTT-4.4.0-1); then the queue drains.
//! * otherwise (clean session, or the broker lost the session): the broker has forgotten every
//!   packet identifier, so what was in flight is **re-sent as new** (DUP = 0, fresh identifiers,
//!   ahead of the queue, in order): QoS 1 stays at-least-once across the reconnect. A QoS 2
//!   message whose PUBREC had arrived is owned by the broker already and completes at once
//!   ([`Event::Published`]); one still awaiting PUBREC may reach subscribers twice, since
//!   exactly-once only holds within one session. Incoming QoS 2 state is discarded too.
//!
//! SUBSCRIBE and UNSUBSCRIBE (at most `max_inflight_messages` awaiting their acknowledgement)
//! are sent at once when connected, and (re-)sent after every CONNACK until acknowledged: they
//! are idempotent, and this way none is lost with a transport.
//!
//! # Incoming messages
//! Delivered as [`Event::Message`] (owned). QoS 1 is answered with PUBACK (a DUP re-send is
//! delivered again, with `dup` set: at least once). QoS 2 is delivered on the first PUBLISH of a
//! packet identifier, answered with PUBREC, and the identifier held until PUBREL (answered with
//! PUBCOMP): a re-sent duplicate is acknowledged, not delivered twice (MQTT-4.3.3-2). With
//! [`Qos2Delivery::AtPubrel`] it is held and delivered at its PUBREL instead, as libmosquitto
//! and paho-mqtt do (at most `max_held_qos2_messages`; past that at PUBLISH). A new session
//! (CONNACK without session present) forgets the identifiers and the held messages: that
//! broker will never release them.
//!
//! # Keep alive
//! With `keep_alive_s` = k > 0, a PINGREQ goes out k after the last packet sent *or* received,
//! whichever is older (paho's rule: a client that only publishes QoS 0 still finds out that the
//! broker is gone). If no packet at all arrives within k after that PINGREQ, the client emits
//! [`LostReason::KeepAliveTimeout`]. The broker allows 1.5 k of silence (MQTT-3.1.2-24), which
//! this never reaches. A CONNACK must arrive within `connect_timeout`.
//!
//! # Run loop sketch
//! ```ignore
//! let mut client = Client::new(ClientConfig::new("esp32-c3"), now())?;
//! let mut out = Vec::new();
//! loop {
//!     let mut sock = tcp_connect(broker_addr).await?;     // the caller's transport
//!     client.handle_connected(now());
//!     'conn: loop {
//!         // Drain every output after every input.
//!         while client.poll_transmit(&mut out).is_some() {
//!             if sock.write_all(&out).await.is_err() {
//!                 client.handle_disconnected(now());
//!             }
//!             out.clear();
//!         }
//!         while let Some(ev) = client.poll_event() {
//!             match ev {
//!                 Event::Connected { session_present } => {
//!                     if !session_present {
//!                         client.subscribe(now(), &[("cmd/#", QoS::AtLeastOnce)])?;
//!                     }
//!                 }
//!                 Event::Message { topic, payload, .. } => handle(topic, payload),
//!                 Event::ConnectionLost(_) | Event::ConnectionRefused(_) => break 'conn,
//!                 _ => {}
//!             }
//!         }
//!         if client.state() == ConnectionState::Closed {
//!             break 'conn; // after disconnect(): DISCONNECT was written above
//!         }
//!         select! {
//!             biased; // a fixed branch order, so simulated runs replay from their seed
//!             n = sock.read(&mut rbuf) => match n {
//!                 Ok(0) | Err(_) => client.handle_disconnected(now()),
//!                 Ok(n) => client.handle_bytes(now(), &rbuf[..n]),
//!             },
//!             _ = sleep_until(client.poll_timeout()) => client.handle_timeout(now()),
//!             reading = sensor.next() => {
//!                 // QueueFull is the caller's to handle (drop, retry later, ...).
//!                 let _ = client.publish(now(), "ESP32/TEM", &reading, QoS::AtLeastOnce, false);
//!             }
//!         }
//!     }
//!     drop(sock);
//!     sleep(Duration::from_secs(5)).await;                 // reconnect policy: the caller's
//! }
//! ```

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::ControlFlow;

use crate::codec::{
    self, ConnAck, Connect, ConnectReturnCode, FeedStop, Frame, FrameBuffer, Packet, Protocol,
    Publish, QoS, SubAck, Subscribe, SubscribeFilters, Unsubscribe, UnsubscribeTopics, Will,
};
use crate::driver::{Endpoint, Output};
use crate::limits;
use crate::qos::{Awaiting, InFlight, IncomingQos2, PubRecOutcome, Resend, Window};
use crate::time::{Duration, Instant};
use crate::topic;

mod config;
mod event;
mod inbound;

pub use config::{ClientConfig, LastWill, Qos2Delivery};
pub use event::{ClientError, ConnectionState, Event, LostReason, ProtocolViolation, PublishId};

/// A message accepted by [`Client::publish`].
#[derive(Debug)]
struct OutMessage {
    id: PublishId,
    /// When `publish` accepted it (for `outbox_expiry`).
    accepted_at: Instant,
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
}

/// A SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement.
#[derive(Debug)]
enum Request {
    Subscribe {
        pkid: u16,
        filters: Vec<(String, QoS)>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
}

impl Request {
    fn pkid(&self) -> u16 {
        match self {
            Request::Subscribe { pkid, .. } | Request::Unsubscribe { pkid, .. } => *pkid,
        }
    }
}

/// The client state machine. See the module documentation for the calling contract.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    now: Instant,
    state: ConnectionState,
    /// Bytes of an incomplete packet from the broker.
    rx: FrameBuffer,
    /// Encoded packets not yet taken by `poll_transmit`.
    tx: Vec<u8>,
    /// QoS 0 messages encoded into `tx`: complete when it is taken, requeued if it is discarded.
    tx_qos0: Vec<OutMessage>,
    events: VecDeque<Event>,
    /// QoS 1/2 messages awaiting acknowledgement, in the order they were first sent; its packet
    /// identifiers are shared with `requests`.
    inflight: Window<OutMessage>,
    /// Accepted messages waiting for the window or for a connection, in publish order.
    queue: VecDeque<OutMessage>,
    /// SUBSCRIBE/UNSUBSCRIBE awaiting acknowledgement, in request order.
    requests: VecDeque<Request>,
    next_publish_id: u64,
    /// Incoming QoS 2 identifiers received and not yet released (MQTT-4.3.3-2).
    incoming_qos2: IncomingQos2,
    /// With [`Qos2Delivery::AtPubrel`]: the messages of those identifiers not yet delivered,
    /// by identifier, at most `config.max_held_qos2_messages`.
    held_qos2: BTreeMap<u16, Event>,
    last_tx: Instant,
    last_rx: Instant,
    connack_deadline: Option<Instant>,
    /// Set while a PINGREQ is unanswered: the connection is lost at this time.
    ping_deadline: Option<Instant>,
}

impl Client {
    /// A client in [`ConnectionState::Disconnected`]. Fails when the configuration cannot make a
    /// valid CONNECT (bad will topic, password without user name, over-long fields).
    pub fn new(config: ClientConfig, now: Instant) -> Result<Client, ClientError> {
        let mut config = config;
        config.max_inflight_messages = config
            .max_inflight_messages
            .clamp(1, limits::INFLIGHT_CEILING_MESSAGES);
        if let Some(w) = &config.will {
            if !topic::valid_topic_name(&w.topic) {
                return Err(ClientError::InvalidTopicName);
            }
        }
        if config.password.is_some() && config.username.is_none() {
            return Err(ClientError::InvalidConfig(
                "password without user name (MQTT-3.1.2-22)",
            ));
        }
        if config.client_id.is_empty() && !config.clean_session {
            return Err(ClientError::InvalidConfig(
                "empty client id requires clean session (MQTT-3.1.3-7)",
            ));
        }
        Packet::Connect(connect_packet(&config))
            .encoded_len()
            .map_err(ClientError::Encode)?;
        Ok(Client {
            config,
            now,
            state: ConnectionState::Disconnected,
            rx: FrameBuffer::new(),
            tx: Vec::new(),
            tx_qos0: Vec::new(),
            events: VecDeque::new(),
            inflight: Window::default(),
            queue: VecDeque::new(),
            requests: VecDeque::new(),
            next_publish_id: 1,
            incoming_qos2: IncomingQos2::default(),
            held_qos2: BTreeMap::new(),
            last_tx: now,
            last_rx: now,
            connack_deadline: None,
            ping_deadline: None,
        })
    }

    /// The settings the client was built with (`max_inflight_messages` as clamped by [`Client::new`]).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
    /// Where the client is with its current transport.
    pub fn state(&self) -> ConnectionState {
        self.state
    }
    /// CONNACK 0 received on the current transport, which is still up: commands go out at once.
    pub fn is_connected(&self) -> bool {
        self.state == ConnectionState::Connected
    }
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub fn inflight_messages(&self) -> usize {
        self.inflight.len()
    }
    /// Messages accepted and not yet sent (waiting for the window or a connection).
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }
    /// SUBSCRIBE/UNSUBSCRIBE requests awaiting acknowledgement.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn keep_alive(&self) -> Option<Duration> {
        match self.config.keep_alive_s {
            0 => None,
            k => Some(Duration::from_secs(u64::from(k))),
        }
    }

    fn live(&self) -> bool {
        matches!(
            self.state,
            ConnectionState::Connecting | ConnectionState::Connected
        )
    }

    // ----- transport inputs -----

    /// A transport to the broker is up: queues CONNECT. If one was already in use, it counts as
    /// closed first ([`LostReason::TransportClosed`]).
    pub fn handle_connected(&mut self, now: Instant) {
        self.advance(now);
        if self.live() {
            self.events
                .push_back(Event::ConnectionLost(LostReason::TransportClosed));
        }
        self.reset_transport();
        self.state = ConnectionState::Connecting;
        // Validated in `new`: cannot fail.
        let _ = codec::encode_to_vec(&Packet::Connect(connect_packet(&self.config)), &mut self.tx);
        self.last_tx = self.now;
        self.last_rx = self.now;
        self.connack_deadline = if self.config.connect_timeout == Duration::ZERO {
            None
        } else {
            Some(self.now + self.config.connect_timeout)
        };
    }

    /// The transport is gone (closed by either side, or failed). Emits
    /// [`LostReason::TransportClosed`] unless the loss was already reported or the client had
    /// finished with it (DISCONNECT sent, connection refused).
    pub fn handle_disconnected(&mut self, now: Instant) {
        self.advance(now);
        if self.live() {
            self.events
                .push_back(Event::ConnectionLost(LostReason::TransportClosed));
        }
        self.reset_transport();
        self.state = ConnectionState::Disconnected;
    }

    /// Bytes read from the transport. Complete packets are handled at once, a partial one is kept
    /// (at most `max_packet_bytes`). Ignored unless connecting or connected.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.advance(now);
        if !self.live() {
            return;
        }
        let mut rx = core::mem::take(&mut self.rx);
        let (max, oversized) = (self.config.max_packet_bytes, self.config.oversized_inbound);
        let fed = rx.feed_frames(data, max, oversized, |frame| {
            let handled = match frame {
                Frame::Packet(p) => self.handle_packet(p),
                Frame::Dropped(bytes) => {
                    self.events.push_back(Event::InboundDropped { bytes });
                    Ok(())
                }
            };
            if let Err(reason) = handled {
                self.lose(reason);
            }
            if self.live() {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(()) // lost or refused: the rest of the bytes is not read
            }
        });
        match fed {
            Ok(()) => self.rx = rx,
            Err(FeedStop::Handler(())) => {}
            Err(FeedStop::Malformed(e)) => self.lose(LostReason::Decode(e)),
        }
    }

    /// Timers: CONNACK timeout, PINGREQ, PINGRESP timeout. Call at or after
    /// [`Client::poll_timeout`]; earlier calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        match self.state {
            ConnectionState::Connecting => {
                if self.connack_deadline.is_some_and(|d| d <= self.now) {
                    self.lose(LostReason::ConnAckTimeout);
                }
            }
            ConnectionState::Connected => {
                if let Some(k) = self.keep_alive() {
                    if let Some(d) = self.ping_deadline {
                        if d <= self.now {
                            self.lose(LostReason::KeepAliveTimeout);
                            return;
                        }
                    } else if self.next_ping(k) <= self.now {
                        self.send(&Packet::PingReq);
                        self.ping_deadline = Some(self.now + k);
                    }
                }
                self.expire_outbox();
                let interval = self.config.resend_interval.as_micros();
                // Last sent at or before now - interval: due again.
                let due = self.now.as_micros().checked_sub(interval);
                if let (true, Some(due)) = (interval > 0, due) {
                    self.resend(Some(Instant::from_micros(due)));
                }
            }
            ConnectionState::Disconnected | ConnectionState::Closed => {}
        }
    }

    fn next_ping(&self, k: Duration) -> Instant {
        self.last_tx.min(self.last_rx) + k
    }

    // ----- commands -----

    /// Publishes `payload` to `topic`. The message is queued and sent when connected and the
    /// window has room; [`Event::Published`] reports its completion.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<PublishId, ClientError> {
        self.advance(now);
        if !topic::valid_topic_name(topic) {
            return Err(ClientError::InvalidTopicName);
        }
        let probe = Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic,
            pkid: 1,
            payload,
        });
        self.check_size(&probe)?;
        let sendable_now = self.state == ConnectionState::Connected
            && self.queue.is_empty()
            && (qos == QoS::AtMostOnce
                || self.inflight.has_room(self.config.max_inflight_messages));
        if !sendable_now && self.queue.len() >= self.config.max_queued_messages {
            return Err(ClientError::QueueFull);
        }
        let id = PublishId(self.next_publish_id);
        self.next_publish_id += 1;
        self.queue.push_back(OutMessage {
            id,
            accepted_at: self.now,
            topic: topic.to_string(),
            payload: payload.to_vec(),
            qos,
            retain,
        });
        self.pump();
        Ok(id)
    }

    /// Subscribes to `filters` with their requested QoS. Returns the packet identifier that
    /// [`Event::Subscribed`] will carry.
    pub fn subscribe(&mut self, now: Instant, filters: &[(&str, QoS)]) -> Result<u16, ClientError> {
        self.advance(now);
        check_filters(filters.iter().map(|(f, _)| *f), filters.len())?;
        self.check_size(&Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: SubscribeFilters::List(filters),
        }))?;
        let pkid = self.alloc_request_pkid()?;
        let owned = filters.iter().map(|(f, q)| (f.to_string(), *q)).collect();
        self.add_request(Request::Subscribe {
            pkid,
            filters: owned,
        });
        Ok(pkid)
    }

    /// Unsubscribes from `filters`. Returns the packet identifier that [`Event::Unsubscribed`]
    /// will carry.
    pub fn unsubscribe(&mut self, now: Instant, filters: &[&str]) -> Result<u16, ClientError> {
        self.advance(now);
        check_filters(filters.iter().copied(), filters.len())?;
        self.check_size(&Packet::Unsubscribe(Unsubscribe {
            pkid: 1,
            topics: UnsubscribeTopics::List(filters),
        }))?;
        let pkid = self.alloc_request_pkid()?;
        let owned = filters.iter().map(|f| f.to_string()).collect();
        self.add_request(Request::Unsubscribe {
            pkid,
            filters: owned,
        });
        Ok(pkid)
    }

    /// Sends DISCONNECT (the broker discards the will, MQTT-3.14.4-3) and finishes with the
    /// transport: the caller writes what `poll_transmit` gives and closes it. In-flight and
    /// queued messages are kept for the next connection. Does nothing unless connecting or
    /// connected.
    pub fn disconnect(&mut self, now: Instant) {
        self.advance(now);
        if !self.live() {
            return;
        }
        self.send(&Packet::Disconnect);
        self.state = ConnectionState::Closed;
        self.connack_deadline = None;
        self.ping_deadline = None;
    }

    // ----- outputs -----

    /// Moves the bytes to send into `buf` (swapped, not copied, when `buf` is empty) and returns
    /// how many were added; `None` when there is nothing to send. QoS 0 messages among them
    /// complete here ([`Event::Published`]).
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        if self.tx.is_empty() {
            return None;
        }
        let n = self.tx.len();
        if buf.is_empty() {
            core::mem::swap(buf, &mut self.tx);
        } else {
            buf.append(&mut self.tx);
        }
        for m in self.tx_qos0.drain(..) {
            self.events.push_back(Event::Published(m.id));
        }
        Some(n)
    }

    /// The next event for the caller, oldest first; `None` when there is none. Drain after every
    /// input, after [`Client::poll_transmit`].
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next output, in the contract's order: bytes, then events, then the timeout (see
    /// [`crate::driver`]). `buf` receives the bytes of a `Transmit`.
    pub fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output<(), Event> {
        if self.poll_transmit(buf).is_some() {
            return Output::Transmit(());
        }
        if let Some(ev) = self.poll_event() {
            return Output::Event(ev);
        }
        Output::Timeout(self.poll_timeout())
    }

    /// When [`Client::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnectionState::Connecting => self.connack_deadline,
            ConnectionState::Connected => {
                let ping = self
                    .keep_alive()
                    .map(|k| self.ping_deadline.unwrap_or_else(|| self.next_ping(k)));
                let resend = match self.config.resend_interval {
                    Duration::ZERO => None,
                    d => self.inflight.oldest_sent_at().map(|t| t + d),
                };
                [ping, resend, self.next_expiry()]
                    .into_iter()
                    .flatten()
                    .min()
            }
            ConnectionState::Disconnected | ConnectionState::Closed => None,
        }
    }

    // ----- internals -----

    /// Forgets the transport's bytes and timers; QoS 0 messages not yet handed out go back to
    /// the front of the queue, in order.
    fn reset_transport(&mut self) {
        self.rx.clear();
        self.tx.clear();
        for m in self.tx_qos0.drain(..).rev() {
            self.queue.push_front(m);
        }
        self.connack_deadline = None;
        self.ping_deadline = None;
    }

    /// Reports the loss once and stops using the transport.
    fn lose(&mut self, reason: LostReason) {
        if self.live() {
            self.events.push_back(Event::ConnectionLost(reason));
        }
        self.reset_transport();
        self.state = ConnectionState::Closed;
    }

    /// Encodes a packet built by the client. Every one is valid by construction (checked in
    /// `new`, `publish`, `subscribe`, `unsubscribe`), so encoding cannot fail.
    fn send(&mut self, p: &Packet<'_>) {
        let _ = codec::encode_to_vec(p, &mut self.tx);
        self.last_tx = self.now;
    }

    fn check_size(&self, p: &Packet<'_>) -> Result<(), ClientError> {
        let size = p.encoded_len().map_err(ClientError::Encode)?;
        let max = self.config.max_packet_bytes;
        if size > max {
            return Err(ClientError::PacketTooLarge { size, max });
        }
        Ok(())
    }

    fn alloc_request_pkid(&mut self) -> Result<u16, ClientError> {
        if self.requests.len() >= self.config.max_inflight_messages {
            return Err(ClientError::TooManyRequests);
        }
        self.inflight
            .ids()
            .alloc()
            .ok_or(ClientError::TooManyRequests)
    }

    fn add_request(&mut self, r: Request) {
        if self.state == ConnectionState::Connected {
            self.send_request(&r);
        }
        self.requests.push_back(r);
    }

    fn send_request(&mut self, r: &Request) {
        match r {
            Request::Subscribe { pkid, filters } => {
                let list: Vec<(&str, QoS)> =
                    filters.iter().map(|(f, q)| (f.as_str(), *q)).collect();
                self.send(&Packet::Subscribe(Subscribe {
                    pkid: *pkid,
                    filters: SubscribeFilters::List(&list),
                }));
            }
            Request::Unsubscribe { pkid, filters } => {
                let list: Vec<&str> = filters.iter().map(String::as_str).collect();
                self.send(&Packet::Unsubscribe(Unsubscribe {
                    pkid: *pkid,
                    topics: UnsubscribeTopics::List(&list),
                }));
            }
        }
    }

    /// Moves queued messages out, in order, while connected: QoS 0 into `tx`, QoS 1/2 into the
    /// window while it has room.
    fn pump(&mut self) {
        if self.state != ConnectionState::Connected {
            return;
        }
        while let Some(qos) = self.queue.front().map(|m| m.qos) {
            if qos != QoS::AtMostOnce && !self.inflight.has_room(self.config.max_inflight_messages)
            {
                return;
            }
            let Some(msg) = self.queue.pop_front() else {
                return;
            };
            if qos == QoS::AtMostOnce {
                let _ = codec::encode_to_vec(&publish_packet(&msg, 0, Dup::No), &mut self.tx);
                self.tx_qos0.push(msg);
            } else {
                match self.inflight.start(self.now, qos, msg) {
                    Ok(pkid) => {
                        let sent = self.inflight.iter().last().map(|f| &f.msg);
                        if let Some(m) = sent {
                            let _ = codec::encode_to_vec(
                                &publish_packet(m, pkid, Dup::No),
                                &mut self.tx,
                            );
                        }
                    }
                    Err(msg) => {
                        self.queue.push_front(msg);
                        return;
                    }
                }
            }
            self.last_tx = self.now;
        }
    }

    /// When the oldest QoS 1/2 message accepted expires, if `outbox_expiry` is set.
    fn next_expiry(&self) -> Option<Instant> {
        let d = self.config.outbox_expiry;
        if d == Duration::ZERO {
            return None;
        }
        let queued = self.queue.iter().filter(|m| m.qos != QoS::AtMostOnce);
        let inflight = self.inflight.iter().map(|f| &f.msg);
        queued.chain(inflight).map(|m| m.accepted_at + d).min()
    }

    /// Deletes the QoS 1/2 messages accepted `outbox_expiry` ago or more, in flight or queued
    /// (esp-mqtt's outbox), reporting each as [`Event::Expired`].
    fn expire_outbox(&mut self) {
        let d = self.config.outbox_expiry;
        if d == Duration::ZERO || self.next_expiry().is_none_or(|t| t > self.now) {
            return;
        }
        let now = self.now;
        let expired = |m: &OutMessage| m.qos != QoS::AtMostOnce && m.accepted_at + d <= now;
        let mut gone = Vec::new();
        self.inflight
            .remove_where(|f| expired(&f.msg), |f| gone.push(f.msg.id));
        self.queue.retain(|m| {
            let e = expired(m);
            if e {
                gone.push(m.id);
            }
            !e
        });
        gone.sort_unstable();
        for id in gone {
            self.events.push_back(Event::Expired(id));
        }
        self.pump();
    }

    /// Re-sends in-flight messages in their original order: all of them (a resumed session) or
    /// those last sent before `older_than` (the re-send timer). PUBLISH goes with DUP = 1.
    fn resend(&mut self, older_than: Option<Instant>) {
        let now = self.now;
        let mut sent = false;
        for (what, f) in self.inflight.resend(now, older_than) {
            let p = match what {
                Resend::Publish => publish_packet(&f.msg, f.pkid, Dup::Yes),
                Resend::PubRel => Packet::PubRel(f.pkid),
            };
            let _ = codec::encode_to_vec(&p, &mut self.tx);
            sent = true;
        }
        if sent {
            self.last_tx = now;
        }
    }
}

fn connect_packet(config: &ClientConfig) -> Connect<'_> {
    Connect {
        protocol: Protocol::V311,
        clean_session: config.clean_session,
        keep_alive_s: config.keep_alive_s,
        client_id: &config.client_id,
        will: config.will.as_ref().map(|w| Will {
            topic: &w.topic,
            payload: &w.payload,
            qos: w.qos,
            retain: w.retain,
        }),
        username: config.username.as_deref(),
        password: config.password.as_deref(),
    }
}

/// The DUP flag of an outgoing PUBLISH: set on a re-send (MQTT-3.3.1-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dup {
    No,
    Yes,
}

fn publish_packet(m: &OutMessage, pkid: u16, dup: Dup) -> Packet<'_> {
    Packet::Publish(Publish {
        dup: dup == Dup::Yes,
        qos: m.qos,
        retain: m.retain,
        topic: &m.topic,
        pkid,
        payload: &m.payload,
    })
}

fn check_filters<'a>(
    filters: impl Iterator<Item = &'a str>,
    count: usize,
) -> Result<(), ClientError> {
    if count == 0 {
        return Err(ClientError::NoTopicFilters);
    }
    if count > limits::SUBSCRIBE_FILTERS_MAX {
        return Err(ClientError::TooManyTopicFilters(count));
    }
    for f in filters {
        if !topic::valid_topic_filter(f) {
            return Err(ClientError::InvalidTopicFilter);
        }
    }
    Ok(())
}

impl Endpoint for Client {
    type Conn = ();
    type Event = Event;
    fn handle_bytes(&mut self, now: Instant, _: (), data: &[u8]) {
        Client::handle_bytes(self, now, data);
    }
    /// Nothing to do: the client's QoS 0 messages complete when handed out.
    fn handle_sent(&mut self, now: Instant, _: (), _: usize) {
        self.advance(now);
    }
    fn handle_closed(&mut self, now: Instant, _: ()) {
        self.handle_disconnected(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Client::handle_timeout(self, now);
    }
    fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output<(), Event> {
        Client::poll_output(self, buf)
    }
}

#[cfg(test)]
mod tests;
