//! The broker under load over real TCP on loopback: a slow subscriber behind a fast QoS 1
//! publisher (backpressure, nothing lost, bounded queue), and connection churn with malformed
//! input. Raw clients built on our codec, so the load is exactly what the test says.

use std::time::Duration;

use mqsim::broker::{Broker, Config};
use mqsim::codec::{
    decode, encode_to_vec, Connect, Decoded, Packet, Protocol, Publish, QoS, Subscribe,
    SubscribeFilters,
};
use mqsim_broker::{spawn_broker, BrokerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(config: Config) -> (u16, BrokerHandle, tokio::task::JoinHandle<Broker>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (handle, task) = spawn_broker(
        Broker::new(config, mqsim::Instant::ZERO).unwrap(),
        Box::new(|_| {}),
    );
    let h = handle.clone();
    tokio::spawn(async move {
        while let Ok((s, addr)) = listener.accept().await {
            h.serve(s, addr.to_string()).await;
        }
    });
    (port, handle, task)
}

fn bytes(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode_to_vec(p, &mut v).unwrap();
    v
}

fn connect(id: &str, clean: bool) -> Vec<u8> {
    bytes(&Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: clean,
        keep_alive_s: 60,
        client_id: id,
        will: None,
        username: None,
        password: None,
    }))
}

/// Reads whole packets, calling `f` on each; stops when `f` returns false.
async fn read_packets(
    s: &mut (impl AsyncReadExt + Unpin),
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&Packet<'_>) -> bool,
) {
    let mut chunk = [0u8; 2048];
    loop {
        let mut pos = 0;
        let mut go = true;
        while go {
            match decode(&buf[pos..], usize::MAX).unwrap() {
                Decoded::Packet(p, n) => {
                    pos += n;
                    go = f(&p);
                }
                Decoded::NeedMore(_) => break,
            }
        }
        buf.drain(..pos);
        if !go {
            return;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "broker closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_fast_qos1_publisher_loses_nothing_and_stays_bounded() {
    const MESSAGES: u32 = 20_000;
    const QUEUE_MAX: usize = 200;
    let config = Config {
        max_queued_messages: QUEUE_MAX,
        ..Config::default()
    };
    let (port, handle, task) = start(config).await;

    let mut sub = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    sub.write_all(&connect("slow-sub", true)).await.unwrap();
    let filters = [("load/t", QoS::AtLeastOnce)];
    let s = Subscribe {
        pkid: 1,
        filters: SubscribeFilters::List(&filters),
    };
    sub.write_all(&bytes(&Packet::Subscribe(s))).await.unwrap();
    let mut sbuf = Vec::new();
    read_packets(&mut sub, &mut sbuf, |p| !matches!(p, Packet::SubAck(_))).await;

    // The publisher writes everything as fast as the socket takes it, never waiting for acks.
    let publisher = tokio::spawn(async move {
        let pubsock = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut rd, mut wr) = pubsock.into_split();
        wr.write_all(&connect("fast-pub", true)).await.unwrap();
        let acks = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut acked = 0u32;
            read_packets(&mut rd, &mut buf, |p| {
                if matches!(p, Packet::PubAck(_)) {
                    acked += 1;
                }
                acked < MESSAGES
            })
            .await;
            acked
        });
        let payload = [7u8; 256];
        let mut out = Vec::new();
        for i in 0..MESSAGES {
            let mut pl = payload;
            pl[..4].copy_from_slice(&i.to_be_bytes());
            let pkid = (i % 65_535 + 1) as u16;
            let p = Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: "load/t",
                pkid,
                payload: &pl,
            };
            encode_to_vec(&Packet::Publish(p), &mut out).unwrap();
            if out.len() > 32 * 1024 {
                wr.write_all(&out).await.unwrap();
                out.clear();
            }
        }
        wr.write_all(&out).await.unwrap();
        acks.await.unwrap()
    });

    // The subscriber reads 2 KiB a millisecond (about 7,000 messages/s) and acknowledges each.
    let mut next = 0u32;
    let mut chunk = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while next < MESSAGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled at message {next}"
        );
        let n = tokio::time::timeout(Duration::from_secs(10), sub.read(&mut chunk))
            .await
            .expect("no progress")
            .unwrap();
        assert!(n > 0);
        sbuf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        let mut acks = Vec::new();
        while let Decoded::Packet(p, used) = decode(&sbuf[pos..], usize::MAX).unwrap() {
            pos += used;
            if let Packet::Publish(p) = p {
                let i = u32::from_be_bytes(p.payload[..4].try_into().unwrap());
                assert_eq!(i, next, "in order, no gap, no duplicate");
                next += 1;
                encode_to_vec(&Packet::PubAck(p.pkid), &mut acks).unwrap();
            }
        }
        sbuf.drain(..pos);
        sub.write_all(&acks).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let acked = tokio::time::timeout(Duration::from_secs(30), publisher)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acked, MESSAGES, "every publish acknowledged");

    handle.shutdown().await;
    let broker = task.await.unwrap();
    assert_eq!(broker.stats().messages_dropped, 0);
    let (peak, _) = broker.queue_peak("slow-sub").unwrap();
    // A connected subscriber's publishers are paused at a few in-flight windows of queue, or at
    // the configured bound if that is smaller.
    let window = Config::default().max_inflight_messages;
    let pause_at = QUEUE_MAX.min(mqsim::limits::QUEUE_ONLINE_PAUSE_WINDOWS * window);
    // The queue reached the pause point (so backpressure, not luck, kept it there). Past it, the
    // paused publisher's messages are still taken, their PUBACKs withheld, up to
    // `max_paused_input_bytes` of them (one may cross it); this one ignores any window, so it
    // fills that budget and then its socket is left unread.
    let packet_bytes = bytes(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "load/t",
        pkid: 1,
        payload: &[7u8; 256],
    }))
    .len();
    let budget = Config::default()
        .max_paused_input_bytes
        .div_ceil(packet_bytes);
    assert!(
        peak >= pause_at,
        "queue peaked at {peak}: the subscriber never fell behind"
    );
    assert!(
        peak <= pause_at + budget,
        "queue peaked at {peak}, pause at {pause_at}, paused input {budget} messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_churn_with_malformed_packets_keeps_the_broker_up() {
    let (port, handle, task) = start(Config::default()).await;
    let mut jobs = Vec::new();
    for i in 0..400u32 {
        jobs.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let id = format!("churn-{i}");
            let _ = match i % 8 {
                // Connect and vanish.
                0 => s.write_all(&connect(&id, true)).await,
                // Garbage before CONNECT.
                1 => s.write_all(&[0xFF; 64]).await,
                // A remaining length of five bytes.
                2 => s.write_all(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).await,
                // Half a CONNECT, then gone.
                3 => s.write_all(&connect(&id, true)[..7]).await,
                // Connected, then a PUBLISH with QoS 3.
                4 => {
                    let _ = s.write_all(&connect(&id, true)).await;
                    s.write_all(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01])
                        .await
                }
                // Connected, publishes, disconnects properly.
                5 => {
                    let mut v = connect(&id, true);
                    let p = Publish {
                        dup: false,
                        qos: QoS::AtLeastOnce,
                        retain: false,
                        topic: "churn",
                        pkid: 1,
                        payload: b"x",
                    };
                    v.extend(bytes(&Packet::Publish(p)));
                    v.extend(bytes(&Packet::Disconnect));
                    s.write_all(&v).await
                }
                // A packet announcing far more than the packet size limit.
                6 => s.write_all(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]).await,
                // Persistent session, then a second CONNECT on the same socket.
                _ => {
                    let mut v = connect(&id, false);
                    v.extend(connect(&id, false));
                    s.write_all(&v).await
                }
            };
            // Read whatever comes back until the broker closes or we give up.
            let mut b = [0u8; 256];
            let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await;
        }));
    }
    for j in jobs {
        j.await.unwrap();
    }

    // A control client still round-trips a QoS 1 message.
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(&connect("control", true)).await.unwrap();
    let filters = [("control/t", QoS::AtLeastOnce)];
    c.write_all(&bytes(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: SubscribeFilters::List(&filters),
    })))
    .await
    .unwrap();
    let p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "control/t",
        pkid: 2,
        payload: b"ok",
    };
    c.write_all(&bytes(&Packet::Publish(p))).await.unwrap();
    let mut buf = Vec::new();
    let (mut got_ack, mut got_msg) = (false, false);
    tokio::time::timeout(
        Duration::from_secs(10),
        read_packets(&mut c, &mut buf, |p| {
            match p {
                Packet::PubAck(2) => got_ack = true,
                Packet::Publish(m) if m.payload == b"ok" => got_msg = true,
                _ => {}
            }
            !(got_ack && got_msg)
        }),
    )
    .await
    .expect("control client round trip");

    // Let the broker see the last sockets close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.shutdown().await;
    let broker = task.await.unwrap();
    assert_eq!(
        broker.connection_count(),
        1,
        "only the control client is still connected"
    );
    // The 50 persistent sessions (closed for their second CONNECT) remain, with the control's.
    assert_eq!(broker.session_count(), 51);
}
