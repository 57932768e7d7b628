//! End to end: the real broker (sans-IO core + tokio adapter) over real loopback TCP, driven by an
//! independent client (`rumqttc`) and, for what a well-behaved client never sends, by raw sockets
//! speaking bytes built with our own codec.
//!
//! Every wait is bounded by a timeout, so a broken broker fails a test instead of hanging it.
//! Every test starts its own broker on its own port: no test sees another's messages.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqsim::broker::{Broker, Config};
use mqsim::codec::{
    decode, encode_to_vec, ConnAck, Connect, ConnectReturnCode, Decoded, Packet, Protocol,
    Publish as RawPublish, QoS as RawQoS, Subscribe, SubscribeFilters, Will,
};
use mqsim_broker::spawn_broker;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet as RPacket, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// How long an expected event may take (generous: a 2-core machine with builds running beside).
const EXPECT: Duration = Duration::from_secs(5);

// ----- the broker under test -----

struct TestBroker {
    port: u16,
    logs: Arc<Mutex<Vec<String>>>,
    accept: JoinHandle<()>,
}

impl TestBroker {
    async fn start() -> TestBroker {
        Self::start_with(Config::default()).await
    }

    /// Binds 127.0.0.1:0, spawns the broker task and an accept loop handing each socket to it.
    async fn start_with(config: Config) -> TestBroker {
        let config = Config {
            verbose: true,
            ..config
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let broker = Broker::new(config, mqsim::Instant::ZERO).unwrap();
        let (handle, _task) = spawn_broker(
            broker,
            Box::new(move |line: &str| sink.lock().unwrap().push(line.to_string())),
        );
        let h = handle.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                h.serve(stream, format!("{peer} on port {port}")).await;
            }
        });
        TestBroker { port, logs, accept }
    }

    /// The broker's log so far, for failure messages.
    fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        // The broker task itself ends with the test's runtime.
        self.accept.abort();
    }
}

// ----- a rumqttc client with its event loop polled in a task -----

enum Ev {
    In(RPacket),
    /// The event loop failed (connection closed, refused, ...); the driver task has stopped, so
    /// rumqttc never reconnects behind the test's back.
    Err(String),
}

struct Mqtt {
    id: String,
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Ev>,
    /// Publishes that arrived while waiting for something else.
    stash: VecDeque<Publish>,
    task: JoinHandle<()>,
    connack: rumqttc::ConnAck,
    /// Subscribed to `sync/<id>` (see [`Mqtt::sync`]).
    synced: bool,
}

/// A message marking a point in a subscriber's stream (see [`Mqtt::until`]).
struct Sentinel {
    topic: String,
    payload: String,
}

impl Sentinel {
    /// A sentinel from `from` on `topic`, with a payload no other message in this process has.
    fn new(topic: &str, from: &str) -> Sentinel {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Sentinel {
            topic: topic.to_string(),
            payload: format!("sentinel {n} from {from}"),
        }
    }

    /// An ordinary message used as the sentinel.
    fn message(topic: &str, payload: &str) -> Sentinel {
        Sentinel {
            topic: topic.to_string(),
            payload: payload.to_string(),
        }
    }
}

fn opts(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

fn drive(mut el: EventLoop) -> (mpsc::UnboundedReceiver<Ev>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ev::In(p)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = tx.send(Ev::Err(e.to_string()));
                    return;
                }
            }
        }
    });
    (rx, task)
}

fn qos_num(q: QoS) -> u8 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

impl Mqtt {
    /// Connects with default options (clean session, keep alive 30 s) and waits for CONNACK 0.
    async fn connect(port: u16, id: &str) -> Mqtt {
        Self::connect_with(opts(port, id)).await
    }

    async fn connect_with(o: MqttOptions) -> Mqtt {
        let id = o.client_id();
        let (client, el) = AsyncClient::new(o, 64);
        let (mut rx, task) = drive(el);
        let connack = match timeout(EXPECT, rx.recv()).await {
            Ok(Some(Ev::In(RPacket::ConnAck(c)))) => c,
            Ok(Some(Ev::In(p))) => panic!("{id}: expected CONNACK, got {p:?}"),
            Ok(Some(Ev::Err(e))) => panic!("{id}: connect failed: {e}"),
            Ok(None) => panic!("{id}: event loop ended before CONNACK"),
            Err(_) => panic!("{id}: no CONNACK within {EXPECT:?}"),
        };
        assert_eq!(
            connack.code,
            rumqttc::ConnectReturnCode::Success,
            "{id}: CONNACK code"
        );
        Mqtt {
            id,
            client,
            rx,
            stash: VecDeque::new(),
            task,
            connack,
            synced: false,
        }
    }

    /// Next incoming packet; panics on timeout or a failed connection.
    async fn next_packet(&mut self, what: &str) -> RPacket {
        match timeout(EXPECT, self.rx.recv()).await {
            Ok(Some(Ev::In(p))) => p,
            Ok(Some(Ev::Err(e))) => panic!(
                "{}: connection failed while waiting for {what}: {e}",
                self.id
            ),
            Ok(None) => panic!("{}: event loop ended while waiting for {what}", self.id),
            Err(_) => panic!("{}: no {what} within {EXPECT:?}", self.id),
        }
    }

    /// Waits for the first packet `f` accepts; publishes seen meanwhile are kept for later.
    async fn wait_for<T>(&mut self, what: &str, mut f: impl FnMut(&RPacket) -> Option<T>) -> T {
        loop {
            let p = self.next_packet(what).await;
            if let Some(t) = f(&p) {
                return t;
            }
            if let RPacket::Publish(p) = p {
                self.stash.push_back(p);
            }
        }
    }

    async fn subscribe(&mut self, filter: &str, q: u8) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, qos(q))
            .await
            .expect("subscribe request");
        let codes = self
            .wait_for("SUBACK", |p| match p {
                RPacket::SubAck(s) => Some(s.return_codes.clone()),
                _ => None,
            })
            .await;
        assert_eq!(codes.len(), 1, "{}: SUBACK for one filter", self.id);
        codes[0]
    }

    /// Publishes and, at QoS 1 or 2, waits until the broker acknowledged it (PUBACK / PUBCOMP),
    /// which means the broker has routed it.
    async fn publish(&mut self, topic: &str, q: u8, retain: bool, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, qos(q), retain, payload)
            .await
            .expect("publish request");
        match q {
            0 => {}
            1 => {
                self.wait_for("PUBACK", |p| matches!(p, RPacket::PubAck(_)).then_some(()))
                    .await
            }
            _ => {
                self.wait_for("PUBCOMP", |p| {
                    matches!(p, RPacket::PubComp(_)).then_some(())
                })
                .await
            }
        }
    }

    async fn recv_publish(&mut self) -> Publish {
        if let Some(p) = self.stash.pop_front() {
            return p;
        }
        self.wait_for("PUBLISH", |p| match p {
            RPacket::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Publishes a sentinel at QoS 2 on `topic` (payload unique in this process), without waiting
    /// for its acknowledgement: the receivers wait for the sentinel itself.
    async fn send_sentinel(&mut self, topic: &str) -> Sentinel {
        let s = Sentinel::new(topic, &self.id);
        self.client
            .publish(topic, QoS::ExactlyOnce, false, s.payload.clone())
            .await
            .expect("publish request");
        s
    }

    /// Every PUBLISH received before the sentinel `s`, which is consumed.
    ///
    /// The barrier this test file uses instead of waiting on the clock for something that must
    /// not happen. It is sound when everything the broker would have sent for the earlier action
    /// was routed to this connection before the sentinel was, and nothing can overtake it there:
    /// the broker handles each connection's packets in order (MQTT 4.6 at the protocol level), it
    /// writes each connection's output in one FIFO, and QoS 1 and 2 messages share one FIFO
    /// in-flight window and queue. So the sentinel must be delivered at QoS 1 or 2 whenever a
    /// wrongly sent message could be queued at QoS 1 or 2 (a QoS 0 delivery is written at once
    /// and could overtake the queue). Each caller says why its sentinel comes after the action.
    async fn until(&mut self, s: &Sentinel) -> Vec<Publish> {
        let mut before = Vec::new();
        loop {
            let p = self.recv_publish().await;
            if p.topic == s.topic && p.payload.as_ref() == s.payload.as_bytes() {
                return before;
            }
            before.push(p);
        }
    }

    /// A round trip on this client's own connection: subscribes once to `sync/<id>` at QoS 2 and
    /// publishes a sentinel there. Returns every PUBLISH received before it. Anything the broker
    /// routed to this client before it read the sentinel's PUBLISH (retained messages sent on an
    /// earlier SUBSCRIBE, queued messages sent on CONNECT, a will of a connection already seen
    /// closed) is ahead of it, at any QoS.
    async fn sync(&mut self) -> Vec<Publish> {
        let topic = format!("sync/{}", self.id);
        if !self.synced {
            assert_eq!(
                self.subscribe(&topic, 2).await,
                SubscribeReasonCode::Success(QoS::ExactlyOnce)
            );
            self.synced = true;
        }
        let s = self.send_sentinel(&topic).await;
        self.until(&s).await
    }

    async fn recv_publishes(&mut self, n: usize) -> Vec<Publish> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.recv_publish().await);
        }
        v
    }

    /// True when the event loop reports the connection gone within `dur`.
    async fn closed_within(&mut self, dur: Duration) -> bool {
        let deadline = Instant::now() + dur;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return false,
                Ok(Some(Ev::In(RPacket::Publish(p)))) => self.stash.push_back(p),
                Ok(Some(Ev::In(_))) => {}
                Ok(Some(Ev::Err(_))) | Ok(None) => return true,
            }
        }
    }

    /// Sends DISCONNECT and waits until the broker has closed the connection.
    async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect request");
        assert!(
            self.closed_within(EXPECT).await,
            "{}: broker did not close after DISCONNECT",
            self.id
        );
    }

    /// Drops the connection without DISCONNECT (the socket closes as the event loop is dropped).
    async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

// ----- a raw socket speaking our codec -----

struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

const DECODE_MAX: usize = 1 << 20;

impl Raw {
    async fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("raw connect");
        s.set_nodelay(true).unwrap();
        Raw { s, buf: Vec::new() }
    }

    async fn send_bytes(&mut self, b: &[u8]) {
        self.s.write_all(b).await.expect("raw write");
    }

    async fn send(&mut self, p: &Packet<'_>) {
        let mut v = Vec::new();
        encode_to_vec(p, &mut v).expect("encode");
        self.send_bytes(&v).await;
    }

    /// The next whole frame, or `None` once the broker closed the connection. Panics on timeout.
    async fn recv_within(&mut self, dur: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + dur;
        loop {
            match decode(&self.buf, DECODE_MAX) {
                Ok(Decoded::Packet(_, n)) => return Some(self.buf.drain(..n).collect()),
                Ok(Decoded::NeedMore(_)) => {}
                Err(e) => panic!("broker sent undecodable bytes: {e} ({:02x?})", self.buf),
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.s.read(&mut chunk)).await {
                Err(_) => panic!(
                    "raw socket: nothing within {dur:?} (buffered: {:02x?})",
                    self.buf
                ),
                Ok(Ok(0)) => {
                    assert!(
                        self.buf.is_empty(),
                        "connection closed mid-packet: {:02x?}",
                        self.buf
                    );
                    return None;
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                // A reset is a close as far as the client can tell.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Ok(Err(e)) => panic!("raw read: {e}"),
            }
        }
    }

    async fn recv(&mut self) -> Option<Vec<u8>> {
        self.recv_within(EXPECT).await
    }

    /// Publishes a sentinel (see [`Mqtt::until`]) at QoS 1 with packet id `pkid` and waits for
    /// its PUBACK.
    async fn send_sentinel(&mut self, topic: &str, pkid: u16) -> Sentinel {
        let s = Sentinel::new(topic, "raw");
        self.send(&Packet::Publish(RawPublish {
            dup: false,
            qos: RawQoS::AtLeastOnce,
            retain: false,
            topic,
            pkid,
            payload: s.payload.as_bytes(),
        }))
        .await;
        assert_eq!(
            parse(&self.recv().await.expect("closed")),
            Packet::PubAck(pkid)
        );
        s
    }

    async fn expect_connack(&mut self) -> ConnAck {
        let f = self.recv().await.expect("connection closed before CONNACK");
        match parse(&f) {
            Packet::ConnAck(c) => c,
            p => panic!("expected CONNACK, got {p:?}"),
        }
    }

    /// Asserts the broker closes the connection within `dur` without sending anything more.
    async fn expect_closed_within(&mut self, dur: Duration) {
        if let Some(f) = self.recv_within(dur).await {
            panic!(
                "expected the broker to close the connection, got {:?}",
                parse(&f)
            );
        }
    }
}

fn parse(frame: &[u8]) -> Packet<'_> {
    match decode(frame, DECODE_MAX) {
        Ok(Decoded::Packet(p, n)) if n == frame.len() => p,
        other => panic!("not one whole packet: {other:?}"),
    }
}

fn connect_packet<'a>(
    id: &'a str,
    clean: bool,
    keep_alive_s: u16,
    will: Option<Will<'a>>,
) -> Packet<'a> {
    Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: clean,
        keep_alive_s,
        client_id: id,
        will,
        username: None,
        password: None,
    })
}

/// A raw client that connected (CONNACK 0) with a QoS 1 will on `topic`.
async fn raw_client_with_will(
    port: u16,
    id: &str,
    keep_alive_s: u16,
    topic: &str,
    payload: &[u8],
) -> Raw {
    let mut raw = Raw::connect(port).await;
    let will = Will {
        topic,
        payload,
        qos: RawQoS::AtLeastOnce,
        retain: false,
    };
    raw.send(&connect_packet(id, true, keep_alive_s, Some(will)))
        .await;
    let ack = raw.expect_connack().await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    raw
}

// ----- 1. QoS 0, 1, 2 delivery -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_levels_deliver_at_min_of_publish_and_granted() {
    let b = TestBroker::start().await;
    // One subscriber per granted QoS.
    let mut subs = Vec::new();
    for g in 0..=2u8 {
        let mut s = Mqtt::connect(b.port, &format!("qos-sub-{g}")).await;
        assert_eq!(
            s.subscribe("ESP32/#", g).await,
            SubscribeReasonCode::Success(qos(g))
        );
        subs.push((g, s));
    }
    let mut publisher = Mqtt::connect(b.port, "qos-pub").await;
    let mut sent = Vec::new();
    for q in 0..=2u8 {
        for topic in ["ESP32/TEM", "ESP32/HUM"] {
            let payload = format!("{topic} at qos {q}");
            publisher.publish(topic, q, false, payload.clone()).await;
            sent.push((topic, q, payload));
        }
    }
    // Barrier: the same publisher's QoS 2 sentinel, delivered at each subscriber's granted QoS,
    // behind everything routed for the publishes before it (so a duplicate would show up first).
    let sentinel = publisher.send_sentinel("ESP32/sentinel").await;
    for (g, s) in subs.iter_mut() {
        let got = s.until(&sentinel).await;
        // Exactly once (QoS 2 above all), and one publisher over one connection: in order.
        assert_eq!(got.len(), sent.len(), "granted {g}: {got:?}");
        for ((topic, q, payload), p) in sent.iter().zip(&got) {
            assert_eq!(p.topic, *topic, "granted {g}");
            assert_eq!(p.payload.as_ref(), payload.as_bytes(), "granted {g}");
            assert_eq!(
                qos_num(p.qos),
                (*q).min(*g),
                "granted {g}, published {q}: {p:?}"
            );
            assert!(!p.retain, "a live forward has RETAIN clear: {p:?}");
        }
    }
}

/// Many QoS 2 messages through a QoS 2 subscription: each arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_exactly_once_under_a_burst() {
    let b = TestBroker::start().await;
    let mut sub = Mqtt::connect(b.port, "q2-sub").await;
    sub.subscribe("ESP32/+", 2).await;
    let mut publisher = Mqtt::connect(b.port, "q2-pub").await;
    const N: usize = 50;
    // Fire them all without waiting in between (rumqttc keeps up to 100 in flight).
    for i in 0..N {
        publisher
            .client
            .publish("ESP32/TEM", QoS::ExactlyOnce, false, format!("{i}"))
            .await
            .unwrap();
    }
    // Barrier: the same publisher's QoS 2 sentinel queues behind the burst on the subscriber.
    let sentinel = publisher.send_sentinel("ESP32/sentinel").await;
    let got = sub.until(&sentinel).await;
    let payloads: Vec<String> = got
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(payloads, want);
    assert!(got.iter().all(|p| p.qos == QoS::ExactlyOnce));
}

/// A QoS 2 PUBLISH sent again (DUP) before PUBREL is acknowledged but not delivered twice
/// (MQTT 4.3.3); after PUBCOMP the packet id is free and a new message with it is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_retransmitted_publish_delivered_once() {
    let b = TestBroker::start().await;
    let mut sub = Mqtt::connect(b.port, "q2dup-sub").await;
    sub.subscribe("ESP32/HUM", 2).await;
    let mut raw = Raw::connect(b.port).await;
    raw.send(&connect_packet("q2dup-raw", true, 60, None)).await;
    assert_eq!(raw.expect_connack().await.code, ConnectReturnCode::Accepted);

    let first = RawPublish {
        dup: false,
        qos: RawQoS::ExactlyOnce,
        retain: false,
        topic: "ESP32/HUM",
        pkid: 5,
        payload: b"41%",
    };
    raw.send(&Packet::Publish(first)).await;
    assert_eq!(parse(&raw.recv().await.expect("closed")), Packet::PubRec(5));
    raw.send(&Packet::Publish(RawPublish { dup: true, ..first }))
        .await;
    assert_eq!(parse(&raw.recv().await.expect("closed")), Packet::PubRec(5));
    raw.send(&Packet::PubRel(5)).await;
    assert_eq!(
        parse(&raw.recv().await.expect("closed")),
        Packet::PubComp(5)
    );

    // Barrier: a QoS 1 sentinel from the same raw connection, sent after PUBCOMP. A second copy
    // would have been routed on the DUP PUBLISH or on PUBREL, both before; delivered at QoS 1 it
    // shares the subscriber's FIFO queue with the QoS 2 message.
    let sentinel = raw.send_sentinel("ESP32/HUM", 6).await;
    let got = sub.until(&sentinel).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].payload.as_ref(), got[0].qos),
        (&b"41%"[..], QoS::ExactlyOnce)
    );

    // Packet id 5 was released: the same id now carries a new message.
    raw.send(&Packet::Publish(RawPublish {
        payload: b"42%",
        ..first
    }))
    .await;
    assert_eq!(parse(&raw.recv().await.expect("closed")), Packet::PubRec(5));
    raw.send(&Packet::PubRel(5)).await;
    assert_eq!(
        parse(&raw.recv().await.expect("closed")),
        Packet::PubComp(5)
    );
    let sentinel = raw.send_sentinel("ESP32/HUM", 6).await;
    let got = sub.until(&sentinel).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].payload.as_ref(), b"42%");
}

// ----- 2. wildcards and $SYS -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_single_and_multi_level() {
    let b = TestBroker::start().await;
    let mut plus = Mqtt::connect(b.port, "wc-plus").await;
    plus.subscribe("sport/+/player1", 1).await;
    let mut hash = Mqtt::connect(b.port, "wc-hash").await;
    hash.subscribe("sport/#", 1).await;
    let mut plus_only = Mqtt::connect(b.port, "wc-plus-only").await;
    plus_only.subscribe("sport/+", 1).await;

    let mut publisher = Mqtt::connect(b.port, "wc-pub").await;
    let topics = [
        "sport",
        "sport/tennis",
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sports/x",
        "/sport",
    ];
    for t in topics {
        publisher.publish(t, 1, false, t).await;
    }
    let topics_of = |v: Vec<Publish>| v.into_iter().map(|p| p.topic).collect::<Vec<_>>();
    // Barriers: two sentinels from the same publisher, one that each filter matches
    // (`sport/#` matches both); QoS 1 publishes and subscriptions, so they queue behind the rest.
    let one_level = publisher.send_sentinel("sport/sentinel").await;
    let two_levels = publisher.send_sentinel("sport/sentinel/player1").await;

    // `#` matches the parent level too (MQTT 4.7.1.2) and everything below it.
    let got = topics_of(hash.until(&one_level).await);
    assert_eq!(
        got,
        [
            "sport",
            "sport/tennis",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking"
        ]
    );
    assert!(hash.until(&two_levels).await.is_empty());

    // `+` matches exactly one level.
    let got = topics_of(plus.until(&two_levels).await);
    assert_eq!(got, ["sport/tennis/player1"]);

    // `sport/+` matches `sport/tennis` but neither `sport` nor deeper levels.
    let got = topics_of(plus_only.until(&one_level).await);
    assert_eq!(got, ["sport/tennis"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_not_matched_by_leading_wildcards() {
    let b = TestBroker::start_with(Config {
        sys_interval: mqsim::time::Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let mut all = Mqtt::connect(b.port, "sys-all").await;
    all.subscribe("#", 0).await;
    let mut plus = Mqtt::connect(b.port, "sys-plus").await;
    plus.subscribe("+/broker/#", 0).await;
    let mut sys = Mqtt::connect(b.port, "sys-sys").await;
    sys.subscribe("$SYS/#", 0).await;

    // The retained $SYS tree arrives at once, flagged retained.
    let first = sys.recv_publish().await;
    assert!(first.topic.starts_with("$SYS/broker/"), "{first:?}");
    assert!(
        first.retain,
        "retained $SYS message sent on subscribe has RETAIN set: {first:?}"
    );
    let version = sys.recv_publishes(13).await;
    assert!(
        std::iter::once(&first)
            .chain(&version)
            .any(|p| p.topic == "$SYS/broker/version"),
        "no $SYS/broker/version among {:?}",
        version.iter().map(|p| &p.topic).collect::<Vec<_>>()
    );
    // And is refreshed live every sys_interval.
    let deadline = Instant::now() + EXPECT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no live $SYS update within {EXPECT:?} of a 100 ms sys_interval"
        );
        let p = sys.recv_publish().await;
        // Only changed values are published; the message counters change with every refresh
        // `sys` receives.
        if p.topic.starts_with("$SYS/") && !p.retain {
            break;
        }
    }

    // A normal topic still reaches `#` and `+/broker/#`, and is the first thing they get: no
    // `$SYS` topic reaches them (MQTT-4.7.2-1), neither retained at subscribe time nor live
    // across the refresh `sys` just saw. Sound as a barrier: both subscribed (SUBACK) before that
    // refresh, which the broker routed to every subscriber in the one step `sys` saw the result
    // of; this message is published after, and every delivery to `#` (granted QoS 0) is written
    // at once, in routing order.
    let mut publisher = Mqtt::connect(b.port, "sys-pub").await;
    publisher.publish("x/broker/y", 1, false, "hello").await;
    let normal = Sentinel::message("x/broker/y", "hello");
    assert_eq!(
        all.until(&normal)
            .await
            .iter()
            .map(|p| &p.topic)
            .collect::<Vec<_>>(),
        Vec::<&String>::new()
    );
    assert_eq!(
        plus.until(&normal)
            .await
            .iter()
            .map(|p| &p.topic)
            .collect::<Vec<_>>(),
        Vec::<&String>::new()
    );
}

// ----- 3. overlapping subscriptions -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_deliver_once_at_highest_qos() {
    let b = TestBroker::start().await;
    let mut sub = Mqtt::connect(b.port, "ov-sub").await;
    assert_eq!(
        sub.subscribe("a/#", 0).await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    assert_eq!(
        sub.subscribe("a/+", 2).await,
        SubscribeReasonCode::Success(QoS::ExactlyOnce)
    );
    let mut publisher = Mqtt::connect(b.port, "ov-pub").await;

    // Barrier after each publish: a sentinel from the same publisher on `a/sentinel`, which
    // matches both filters, so it is delivered at QoS 2 behind any copy at either QoS.
    let seen = |v: Vec<Publish>| {
        v.into_iter()
            .map(|p| (p.topic, qos_num(p.qos)))
            .collect::<Vec<_>>()
    };

    // Matches both filters: once, at the highest granted QoS.
    publisher.publish("a/b", 2, false, "both").await;
    let sentinel = publisher.send_sentinel("a/sentinel").await;
    assert_eq!(seen(sub.until(&sentinel).await), [("a/b".to_string(), 2)]);

    // Matches only `a/#`: at its QoS 0.
    publisher.publish("a/b/c", 2, false, "deep").await;
    let sentinel = publisher.send_sentinel("a/sentinel").await;
    assert_eq!(seen(sub.until(&sentinel).await), [("a/b/c".to_string(), 0)]);
}

// ----- 4. retained messages -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_set_forward_replace_and_delete() {
    let b = TestBroker::start().await;
    let mut live = Mqtt::connect(b.port, "ret-live").await;
    live.subscribe("r/#", 2).await;
    let mut publisher = Mqtt::connect(b.port, "ret-pub").await;

    publisher.publish("r/1", 1, true, "v1").await;
    // A live subscriber gets a normal forward: RETAIN cleared (MQTT-3.3.1-9).
    let p = live.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref(), p.retain),
        ("r/1", &b"v1"[..], false),
        "{p:?}"
    );

    // A new subscriber gets the stored message with RETAIN set (MQTT-3.3.1-8), at
    // min(stored QoS 1, granted 2).
    let mut late = Mqtt::connect(b.port, "ret-late").await;
    late.subscribe("r/#", 2).await;
    let p = late.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref(), p.retain),
        ("r/1", &b"v1"[..], true),
        "{p:?}"
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);
    // Barrier: a sentinel on `r/sentinel` (not retained) from the publisher, sent after `late`'s
    // SUBACK: a second copy of the stored message would have been queued on that SUBSCRIBE, at
    // QoS 1, ahead of the sentinel (QoS 2 to granted 2). `live` gets it too and must get nothing
    // else.
    let sentinel = publisher.send_sentinel("r/sentinel").await;
    assert!(late.until(&sentinel).await.is_empty());
    assert!(live.until(&sentinel).await.is_empty());

    // A newer retained message replaces it.
    publisher.publish("r/1", 0, true, "v2").await;
    assert_eq!(live.recv_publish().await.payload.as_ref(), b"v2");
    let mut late2 = Mqtt::connect(b.port, "ret-late2").await;
    late2.subscribe("r/+", 1).await;
    let p = late2.recv_publish().await;
    assert_eq!(
        (p.payload.as_ref(), p.retain, p.qos),
        (&b"v2"[..], true, QoS::AtMostOnce),
        "{p:?}"
    );
    // Barrier as above (the stored copy went at QoS 0, at once, on SUBSCRIBE).
    let sentinel = publisher.send_sentinel("r/sentinel").await;
    assert!(late2.until(&sentinel).await.is_empty());
    assert!(live.until(&sentinel).await.is_empty());

    // A zero-byte retained message deletes it (MQTT-3.3.1-10) and is forwarded to live
    // subscribers as a normal (empty) message.
    publisher.publish("r/1", 1, true, Vec::new()).await;
    let p = live.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.len(), p.retain),
        ("r/1", 0, false),
        "{p:?}"
    );
    let mut late3 = Mqtt::connect(b.port, "ret-late3").await;
    late3.subscribe("r/#", 2).await;
    // Barrier as above: nothing stored reaches `late3`, nothing more reaches `live`.
    let sentinel = publisher.send_sentinel("r/sentinel").await;
    assert!(late3.until(&sentinel).await.is_empty());
    assert!(live.until(&sentinel).await.is_empty());
}

// ----- 5. last will -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_published_on_abrupt_close_not_on_disconnect() {
    let b = TestBroker::start().await;
    let mut watcher = Mqtt::connect(b.port, "will-watch").await;
    watcher.subscribe("will/#", 1).await;

    // Raw socket: CONNECT with a will, then the socket is dropped without DISCONNECT.
    let raw = raw_client_with_will(b.port, "will-raw", 60, "will/raw", b"raw gone").await;
    drop(raw);
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref()),
        ("will/raw", &b"raw gone"[..]),
        "{p:?}"
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert!(!p.retain);

    // rumqttc client whose event loop is dropped (socket closed without DISCONNECT).
    let mut o = opts(b.port, "will-rumqttc");
    o.set_last_will(LastWill::new(
        "will/rumqttc",
        "rumqttc gone",
        QoS::AtMostOnce,
        false,
    ));
    let c = Mqtt::connect_with(o).await;
    c.abort().await;
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref()),
        ("will/rumqttc", &b"rumqttc gone"[..]),
        "{p:?}"
    );
    assert_eq!(p.qos, QoS::AtMostOnce);

    // A client that says DISCONNECT: its will is discarded (MQTT-3.14.4-3).
    let mut o = opts(b.port, "will-polite");
    o.set_last_will(LastWill::new(
        "will/polite",
        "must not appear",
        QoS::AtLeastOnce,
        false,
    ));
    let c = Mqtt::connect_with(o).await;
    c.disconnect().await;
    // Same for a raw client that sends DISCONNECT then closes.
    let mut raw = raw_client_with_will(
        b.port,
        "will-raw-polite",
        60,
        "will/raw-polite",
        b"must not appear",
    )
    .await;
    raw.send(&Packet::Disconnect).await;
    raw.expect_closed_within(EXPECT).await;
    drop(raw);
    // Barrier: a round trip on the watcher's own connection. The broker publishes a will while
    // closing the connection, before the socket closes; both polite connections were seen
    // closed, so a will would be ahead of the watcher's own sentinel.
    assert!(watcher.sync().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_will_reaches_later_subscribers() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(b.port).await;
    let will = Will {
        topic: "status/dev1",
        payload: b"offline",
        qos: RawQoS::AtLeastOnce,
        retain: true,
    };
    raw.send(&connect_packet("will-retained", true, 60, Some(will)))
        .await;
    assert_eq!(raw.expect_connack().await.code, ConnectReturnCode::Accepted);
    // A watcher sees the will go out; the broker stores a retained will in the same step as it
    // routes it, so once the watcher has it, it is stored.
    let mut watcher = Mqtt::connect(b.port, "will-ret-watch").await;
    watcher.subscribe("status/+", 1).await;
    drop(raw);
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref(), p.retain),
        ("status/dev1", &b"offline"[..], false),
        "a live forward has RETAIN clear: {p:?}"
    );

    let mut late = Mqtt::connect(b.port, "will-late").await;
    late.subscribe("status/+", 2).await;
    // Barrier: a round trip on `late`'s own connection; the stored will was sent on SUBSCRIBE.
    let got = late.sync().await;
    assert_eq!(got.len(), 1, "{got:?}\n{}", b.logs());
    let p = &got[0];
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref(), p.retain),
        ("status/dev1", &b"offline"[..], true)
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);
}

// ----- 6. persistent sessions -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_queues_while_offline_and_redelivers_in_order() {
    let b = TestBroker::start().await;
    let mut o = opts(b.port, "persist-sub");
    o.set_clean_session(false);
    let mut sub = Mqtt::connect_with(o.clone()).await;
    assert!(
        !sub.connack.session_present,
        "first connection has no session"
    );
    sub.subscribe("p/t", 1).await;
    sub.disconnect().await;

    let mut publisher = Mqtt::connect(b.port, "persist-pub").await;
    const N: usize = 10;
    for i in 0..N {
        publisher.publish("p/t", 1, false, format!("m{i}")).await;
    }
    // QoS 0 is not queued for an offline session.
    publisher.publish("p/t", 0, false, "qos0-offline").await;
    publisher.publish("p/t", 1, false, "barrier").await;

    let mut sub = Mqtt::connect_with(o.clone()).await;
    assert!(
        sub.connack.session_present,
        "CONNACK session present on resume (MQTT-3.2.2-2)"
    );
    let got = sub.recv_publishes(N + 1).await;
    let payloads: Vec<String> = got
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    let mut want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    want.push("barrier".into());
    assert_eq!(payloads, want);
    assert!(
        got.iter()
            .all(|p| p.qos == QoS::AtLeastOnce && p.topic == "p/t"),
        "{got:?}"
    );

    // The subscription survived too: live messages still arrive, and next. As a barrier: the
    // queue was sent (or queued) on CONNECT, before CONNACK; "live" is routed after, at QoS 1
    // into the same FIFO, so no resent copy can come after it.
    publisher.publish("p/t", 1, false, "live").await;
    assert!(sub
        .until(&Sentinel::message("p/t", "live"))
        .await
        .is_empty());
    sub.disconnect().await;

    // Reconnecting with clean session discards the session: nothing queued, nothing subscribed.
    publisher.publish("p/t", 1, false, "discarded").await;
    let mut clean = opts(b.port, "persist-sub");
    clean.set_clean_session(true);
    let mut sub = Mqtt::connect_with(clean).await;
    assert!(
        !sub.connack.session_present,
        "clean session: session present must be 0 (MQTT-3.2.2-1)"
    );
    publisher.publish("p/t", 1, false, "after clean").await;
    // Barrier: a round trip on `sub`'s own connection. A queued message would have been sent on
    // CONNECT, and "after clean" was routed (PUBACK seen) before the sentinel was sent.
    assert!(sub.sync().await.is_empty());
    sub.disconnect().await;

    // And a clean session leaves nothing behind: a later persistent connect starts fresh.
    let mut sub = Mqtt::connect_with(o).await;
    assert!(
        !sub.connack.session_present,
        "a clean session is not kept after it ends (MQTT-3.1.2-6)"
    );
    // Barrier: as above; anything queued would have been sent on CONNECT.
    assert!(sub.sync().await.is_empty());
}

/// Messages sent but not acknowledged when the connection dropped are sent again, with DUP set,
/// on resume (MQTT-4.4.0-1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_resends_unacknowledged_with_dup() {
    let b = TestBroker::start().await;
    let mut o = opts(b.port, "inflight-sub");
    o.set_clean_session(false);
    o.set_manual_acks(true);
    let mut sub = Mqtt::connect_with(o.clone()).await;
    sub.subscribe("f/+", 2).await;
    let mut publisher = Mqtt::connect(b.port, "inflight-pub").await;
    publisher.publish("f/1", 1, false, "one").await;
    publisher.publish("f/2", 2, false, "two").await;
    let first = sub.recv_publishes(2).await;
    assert!(first.iter().all(|p| !p.dup), "{first:?}");
    // Never acknowledged: drop the connection.
    sub.abort().await;

    o.set_manual_acks(false);
    let mut sub = Mqtt::connect_with(o).await;
    assert!(sub.connack.session_present);
    let again = sub.recv_publishes(2).await;
    let seen: Vec<(&str, &[u8], QoS, bool)> = again
        .iter()
        .map(|p| (p.topic.as_str(), p.payload.as_ref(), p.qos, p.dup))
        .collect();
    assert_eq!(
        seen,
        [
            ("f/1", &b"one"[..], QoS::AtLeastOnce, true),
            ("f/2", &b"two"[..], QoS::ExactlyOnce, true)
        ]
    );
    // Barrier: a QoS 2 sentinel from the publisher on `f/sentinel` (QoS 2 to granted 2), routed
    // after the resume's CONNACK: any further resend was queued on CONNECT, ahead of it.
    let sentinel = publisher.send_sentinel("f/sentinel").await;
    assert!(sub.until(&sentinel).await.is_empty());
}

// ----- 7. session takeover -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_with_same_id_takes_over() {
    let b = TestBroker::start().await;
    let mut watcher = Mqtt::connect(b.port, "take-watch").await;
    watcher.subscribe("will/#", 1).await;

    let mut o = opts(b.port, "take-id");
    o.set_last_will(LastWill::new(
        "will/take-id",
        "taken over",
        QoS::AtLeastOnce,
        false,
    ));
    let mut first = Mqtt::connect_with(o).await;
    first.subscribe("t/first", 1).await;

    let mut second = Mqtt::connect(b.port, "take-id").await;
    // MQTT-3.1.4-2: the broker disconnects the existing client.
    assert!(
        first.closed_within(EXPECT).await,
        "first connection not closed after takeover\n{}",
        b.logs()
    );
    // It went without DISCONNECT, so its will is published.
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref()),
        ("will/take-id", &b"taken over"[..]),
        "{p:?}"
    );

    // The new connection works.
    second.subscribe("t/second", 1).await;
    second.publish("t/second", 1, false, "round trip").await;
    let p = second.recv_publish().await;
    assert_eq!(p.payload.as_ref(), b"round trip");
    // Barrier: a round trip on the watcher's connection, after the first connection was seen
    // closed: the will went once, and nothing else.
    assert!(watcher.sync().await.is_empty());
}

// ----- 8. keep alive -----
//
// When the broker closes a silent connection (exactly 1.5 x keep alive, with the will and the log
// line; `connect_timeout` without CONNECT) is checked in virtual time, in `src/broker/tests.rs`
// and `tests/broker_virtual_time.rs`. Over TCP only what the adapter adds: PINGREQ is answered on
// a real socket, and a timer-driven close reaches the client as EOF (last test in this file).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingreq_answered_over_tcp() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(b.port).await;
    raw.send(&connect_packet("ka-raw-ping", true, 1, None))
        .await;
    assert_eq!(raw.expect_connack().await.code, ConnectReturnCode::Accepted);
    for _ in 0..3 {
        raw.send(&Packet::PingReq).await;
        let f = raw.recv().await.expect("closed instead of PINGRESP");
        assert_eq!(parse(&f), Packet::PingResp);
    }
}

// ----- 9. protocol errors -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_only_the_offending_connection() {
    let b = TestBroker::start().await;

    // A client that stays connected throughout.
    let mut bystander = Mqtt::connect(b.port, "pe-bystander").await;
    bystander.subscribe("pe/#", 1).await;

    // PUBLISH before CONNECT (MQTT-3.1.0-1).
    let mut raw = Raw::connect(b.port).await;
    let publish = RawPublish {
        dup: false,
        qos: RawQoS::AtMostOnce,
        retain: false,
        topic: "pe/x",
        pkid: 0,
        payload: b"no",
    };
    raw.send(&Packet::Publish(publish)).await;
    raw.expect_closed_within(EXPECT).await;

    // Garbage: reserved packet type 0.
    let mut raw = Raw::connect(b.port).await;
    raw.send_bytes(&[0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]).await;
    raw.expect_closed_within(EXPECT).await;

    // Garbage: a remaining length with five bytes.
    let mut raw = Raw::connect(b.port).await;
    raw.send_bytes(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]).await;
    raw.expect_closed_within(EXPECT).await;

    // Garbage after a valid CONNECT: a reserved flag on SUBSCRIBE.
    let mut raw = Raw::connect(b.port).await;
    raw.send(&connect_packet("pe-bad-flags", true, 60, None))
        .await;
    assert_eq!(raw.expect_connack().await.code, ConnectReturnCode::Accepted);
    raw.send_bytes(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00])
        .await;
    raw.expect_closed_within(EXPECT).await;

    // A second CONNECT on the same connection (MQTT-3.1.0-2).
    let mut raw = Raw::connect(b.port).await;
    raw.send(&connect_packet("pe-twice", true, 60, None)).await;
    assert_eq!(raw.expect_connack().await.code, ConnectReturnCode::Accepted);
    raw.send(&connect_packet("pe-twice", true, 60, None)).await;
    raw.expect_closed_within(EXPECT).await;

    // Protocol level 5 under the name "MQTT": CONNACK 0x01, then close (MQTT-3.1.2-2).
    let mut bytes = Vec::new();
    encode_to_vec(&connect_packet("pe-v5", true, 60, None), &mut bytes).unwrap();
    // Fixed header (2) + name length (2) + "MQTT" (4): the level byte.
    assert_eq!(&bytes[4..9], b"MQTT\x04");
    bytes[8] = 5;
    let mut raw = Raw::connect(b.port).await;
    raw.send_bytes(&bytes).await;
    let ack = raw.expect_connack().await;
    assert_eq!(
        ack,
        ConnAck {
            session_present: false,
            code: ConnectReturnCode::UnacceptableProtocolVersion
        }
    );
    raw.expect_closed_within(EXPECT).await;

    // Empty client id without clean session: CONNACK 0x02, then close (MQTT-3.1.3-8).
    let mut raw = Raw::connect(b.port).await;
    raw.send(&connect_packet("", false, 60, None)).await;
    let ack = raw.expect_connack().await;
    assert_eq!(
        ack,
        ConnAck {
            session_present: false,
            code: ConnectReturnCode::IdentifierRejected
        }
    );
    raw.expect_closed_within(EXPECT).await;

    // Empty client id with clean session: accepted with an assigned id (MQTT-3.1.3-6).
    let mut raw = Raw::connect(b.port).await;
    raw.send(&connect_packet("", true, 60, None)).await;
    assert_eq!(raw.expect_connack().await.code, ConnectReturnCode::Accepted);
    // An invalid filter in SUBSCRIBE: SUBACK 0x80 for it, the connection stays (MQTT 3.9.3).
    let filters: &[(&str, RawQoS)] = &[
        ("pe/#/bad", RawQoS::AtLeastOnce),
        ("pe/ok", RawQoS::ExactlyOnce),
    ];
    raw.send(&Packet::Subscribe(Subscribe {
        pkid: 7,
        filters: SubscribeFilters::List(filters),
    }))
    .await;
    let f = raw.recv().await.expect("closed instead of SUBACK");
    match parse(&f) {
        Packet::SubAck(s) => {
            assert_eq!(s.pkid, 7);
            assert_eq!(s.codes, [0x80, 0x02]);
        }
        p => panic!("expected SUBACK, got {p:?}"),
    }
    raw.send(&Packet::Disconnect).await;
    raw.expect_closed_within(EXPECT).await;

    // Nothing published by the offenders got through, and the broker keeps serving: the
    // bystander is still connected and a fresh client round-trips a QoS 1 message.
    let mut fresh = Mqtt::connect(b.port, "pe-fresh").await;
    fresh.subscribe("pe/fresh", 1).await;
    fresh.publish("pe/fresh", 1, false, "still alive").await;
    let p = fresh.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref(), p.qos),
        ("pe/fresh", &b"still alive"[..], QoS::AtLeastOnce)
    );
    // And it is the first thing the bystander gets. Sound as a barrier: every offender's packets
    // were handled before its connection was seen closed, so anything routed for them is ahead
    // of this message (QoS 1, into the same FIFO).
    let got = bystander
        .until(&Sentinel::message("pe/fresh", "still alive"))
        .await;
    assert!(got.is_empty(), "{got:?}");
    // Exactly once: a round trip on the bystander's own connection.
    assert!(bystander.sync().await.is_empty());
}

/// The adapter's timer closes a real socket: one that never sends CONNECT is closed after
/// `connect_timeout` (the exact time is checked in virtual time), and the client sees EOF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_socket_closed_after_connect_timeout() {
    const CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
    let b = TestBroker::start_with(Config {
        connect_timeout: mqsim::time::Duration::from_micros(CONNECT_TIMEOUT.as_micros() as u64),
        ..Default::default()
    })
    .await;
    let start = Instant::now();
    let mut raw = Raw::connect(b.port).await;
    raw.expect_closed_within(EXPECT).await;
    // The broker's clock starts no earlier than `start` for this socket, and tokio timers never
    // fire early.
    assert!(
        start.elapsed() >= CONNECT_TIMEOUT,
        "closed after only {:?}",
        start.elapsed()
    );
    assert!(
        b.logs().contains("did not send CONNECT in time"),
        "{}",
        b.logs()
    );
}
