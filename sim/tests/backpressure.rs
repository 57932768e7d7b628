//! Backpressure through the real `mqsim broker` binary: a publisher paused for a slow subscriber
//! is not disconnected. The publisher is `rumqttc` with a 2 s keep-alive, which sends PINGREQ
//! every 2 s and gives up on the connection when one is still unanswered at the next; the
//! subscriber is a raw socket that acknowledges one message every 300 ms for 6 s, so the
//! publisher is paused (its PUBACKs withheld) far longer than its keep-alive.

mod common;

use std::time::Duration;

use common::BrokerProc;
use mqsim::codec::{
    decode, encode_to_vec, Connect, Decoded, Packet, Protocol, QoS as RawQoS, Subscribe,
    SubscribeFilters,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet as RPacket, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

const MESSAGES: u32 = 60;
/// The subscriber's pace while slow, and how long it is slow.
const SLOW_EACH: Duration = Duration::from_millis(300);
const SLOW_FOR: Duration = Duration::from_secs(6);

fn bytes(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode_to_vec(p, &mut v).unwrap();
    v
}

/// What the publisher saw: when each PUBACK came, PINGREQs sent, PINGRESPs received, errors.
#[derive(Default, Debug)]
struct PubLog {
    acks: Vec<(u16, Instant)>,
    pings: u32,
    pongs: u32,
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_publisher_with_a_2s_keepalive_is_never_disconnected() {
    let dir = std::env::temp_dir().join(format!("mqsim-bp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    // A small window and queue, so that a few messages back the subscriber up.
    std::fs::write(&conf, "max_inflight_messages 2\nmax_queued_messages 8\n").unwrap();
    let b = BrokerProc::start(&["-c", conf.to_str().unwrap(), "-p", "0", "-v"]);
    let port = b.port;

    // The subscriber: raw, so that it reads exactly as slowly as the test says.
    let mut sub = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    sub.write_all(&bytes(&Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: "bp-sub",
        will: None,
        username: None,
        password: None,
    })))
    .await
    .unwrap();
    let filters = [("bp/t", RawQoS::AtLeastOnce)];
    sub.write_all(&bytes(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: SubscribeFilters::List(&filters),
    })))
    .await
    .unwrap();
    b.wait_for("bp-sub 1 bp/t");

    // The publisher: rumqttc, QoS 1, keep-alive 2 s, 10 messages in flight at most.
    let mut o = MqttOptions::new("bp-pub", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(2));
    o.set_inflight(10);
    let (client, mut el) = AsyncClient::new(o, 100);
    let events = tokio::spawn(async move {
        let mut log = PubLog::default();
        let end = Instant::now() + Duration::from_secs(60);
        while log.acks.len() < MESSAGES as usize && Instant::now() < end {
            match timeout(Duration::from_secs(10), el.poll()).await {
                Ok(Ok(Event::Incoming(RPacket::PubAck(a)))) => {
                    log.acks.push((a.pkid, Instant::now()))
                }
                Ok(Ok(Event::Incoming(RPacket::PingResp))) => log.pongs += 1,
                Ok(Ok(Event::Outgoing(Outgoing::PingReq))) => log.pings += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    // rumqttc would reconnect on the next poll; that is what must not happen.
                    log.errors.push(e.to_string());
                    break;
                }
                Err(_) => {
                    log.errors.push("no event for 10 s".into());
                    break;
                }
            }
        }
        log
    });
    for i in 0..MESSAGES {
        client
            .publish("bp/t", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
            .await
            .unwrap();
    }

    // Read, acknowledging one message each SLOW_EACH for SLOW_FOR, then as fast as they come.
    let subscriber = tokio::spawn(async move {
        let start = Instant::now();
        let mut received: Vec<u32> = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while received.len() < MESSAGES as usize {
            // One whole packet at a time.
            let (packet, used) = loop {
                if let Decoded::Packet(p, n) = decode(&buf, usize::MAX).unwrap() {
                    break (seq_of(&p), n);
                }
                match timeout(Duration::from_secs(10), sub.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return received, // closed, or nothing for 10 s
                }
            };
            buf.drain(..used);
            if let Some((pkid, i)) = packet {
                if start.elapsed() < SLOW_FOR {
                    tokio::time::sleep(SLOW_EACH).await;
                }
                received.push(i);
                sub.write_all(&bytes(&Packet::PubAck(pkid))).await.unwrap();
            }
        }
        received
    });

    let log = timeout(Duration::from_secs(70), events)
        .await
        .unwrap()
        .unwrap();
    assert!(
        log.errors.is_empty(),
        "publisher's connection failed: {log:?}"
    );
    let received = timeout(Duration::from_secs(20), subscriber)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        received,
        (0..MESSAGES).collect::<Vec<_>>(),
        "all, once, in order"
    );
    assert_eq!(
        log.acks.len(),
        MESSAGES as usize,
        "every PUBLISH acknowledged once"
    );
    // The publisher really was paused longer than its keep-alive allows a ping to go unanswered
    // (2 s to the next ping, at which rumqttc gives up), and pinged through it.
    let longest_wait = log.acks.windows(2).map(|w| w[1].1 - w[0].1).max().unwrap();
    assert!(
        longest_wait > Duration::from_secs(3),
        "longest wait for a PUBACK {longest_wait:?}: the publisher was never paused that long"
    );
    assert!(
        log.pings >= 1 && log.pongs >= log.pings.saturating_sub(1),
        "{log:?}"
    );

    let (_, lines) = b.interrupt_and_log();
    let connects = lines
        .iter()
        .filter(|l| l.starts_with("New client connected") && l.contains(" as bp-pub "))
        .count();
    assert_eq!(connects, 1, "the publisher connected once: {lines:#?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("bp-pub has exceeded timeout")),
        "not timed out"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PUBLISH's packet id and the sequence number in its payload; None for other packets.
fn seq_of(p: &Packet<'_>) -> Option<(u16, u32)> {
    match p {
        Packet::Publish(p) => Some((
            p.pkid,
            u32::from_be_bytes(p.payload[..4].try_into().unwrap()),
        )),
        _ => None,
    }
}
