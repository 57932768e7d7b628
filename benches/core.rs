//! Throughput of the sans-IO broker core alone (no sockets, no runtime): how many deliveries per
//! second the state machine sustains, so that socket and runtime costs can be told apart from
//! protocol costs in `mqsim bench` figures. `cargo bench --bench core`.

use std::time::Instant as WallClock;

use mqsim::broker::{Broker, Config, Event};
use mqsim::codec::{
    decode, encode_to_vec, Connect, Decoded, Packet, Protocol, Publish, QoS, Subscribe,
    SubscribeFilters,
};
use mqsim::driver::{drain, Output};
use mqsim::time::Duration;
use mqsim::Instant;

fn bytes(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode_to_vec(p, &mut v).unwrap();
    v
}

fn connect(b: &mut Broker, id: &str) -> u64 {
    let c = b.handle_accept(Instant::ZERO, id).unwrap();
    let p = Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: id,
        will: None,
        username: None,
        password: None,
    });
    b.handle_bytes(Instant::ZERO, c, &bytes(&p));
    c
}

/// Runs `messages` publishes of `payload_bytes` from one publisher to `subscribers` at `qos`,
/// in batches of 64 packets per input, acknowledging every delivery. Returns deliveries/s.
fn run(qos: QoS, subscribers: usize, messages: usize, payload_bytes: usize) -> f64 {
    let config = Config {
        max_inflight_messages: 65_535,
        sys_interval: Duration::ZERO,
        ..Config::default()
    };
    let mut b = Broker::new(config, Instant::ZERO).unwrap();
    let _subs: Vec<u64> = (0..subscribers)
        .map(|i| {
            let c = connect(&mut b, &format!("sub{i}"));
            let f = [("bench/t", qos)];
            b.handle_bytes(
                Instant::ZERO,
                c,
                &bytes(&Packet::Subscribe(Subscribe {
                    pkid: 1,
                    filters: SubscribeFilters::List(&f),
                })),
            );
            c
        })
        .collect();
    let publisher = connect(&mut b, "pub");
    let mut buf = Vec::new();
    drain(&mut b, &mut buf, |_, _| {});
    let payload = vec![0x5Au8; payload_bytes];
    let batch = 64;
    let mut input = Vec::new();
    let mut delivered = 0usize;
    let start = WallClock::now();
    let mut sent = 0;
    while sent < messages {
        input.clear();
        for _ in 0..batch.min(messages - sent) {
            let pkid = (sent % 65_535 + 1) as u16;
            let p = Publish {
                dup: false,
                qos,
                retain: false,
                topic: "bench/t",
                pkid: if qos == QoS::AtMostOnce { 0 } else { pkid },
                payload: &payload,
            };
            encode_to_vec(&Packet::Publish(p), &mut input).unwrap();
            sent += 1;
        }
        b.handle_bytes(Instant::ZERO, publisher, &input);
        // Answer everything the broker sends, as clients would, until it has nothing more to say.
        // The peers are a deliberately minimal reflex (decode, acknowledge), not our client: this
        // measures the broker alone.
        loop {
            let mut replies: Vec<(u64, usize, Vec<u8>)> = Vec::new();
            drain(&mut b, &mut buf, |out, bytes| match out {
                Output::Transmit(c) => {
                    let mut reply = Vec::new();
                    let mut pos = 0;
                    while let Ok(Decoded::Packet(p, n)) = decode(&bytes[pos..], usize::MAX) {
                        pos += n;
                        let r = match p {
                            Packet::Publish(p) => {
                                delivered += 1;
                                match p.qos {
                                    QoS::AtMostOnce => None,
                                    QoS::AtLeastOnce => Some(Packet::PubAck(p.pkid)),
                                    QoS::ExactlyOnce => Some(Packet::PubRec(p.pkid)),
                                }
                            }
                            Packet::PubRec(id) => Some(Packet::PubRel(id)),
                            Packet::PubRel(id) => Some(Packet::PubComp(id)),
                            _ => None,
                        };
                        if let Some(r) = r {
                            encode_to_vec(&r, &mut reply).unwrap();
                        }
                    }
                    replies.push((c, bytes.len(), reply));
                }
                Output::Event(Event::Close(c)) => {
                    panic!("connection {c} closed during the benchmark")
                }
                Output::Event(_) | Output::Timeout(_) => {}
            });
            let mut answered = false;
            for (c, written, r) in replies {
                b.handle_sent(Instant::ZERO, c, written);
                if !r.is_empty() {
                    b.handle_bytes(Instant::ZERO, c, &r);
                    answered = true;
                }
            }
            if !answered {
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(delivered, messages * subscribers, "every message delivered");
    delivered as f64 / secs
}

fn main() {
    let messages = 200_000;
    println!("broker core, {messages} messages x 24 bytes, deliveries per second (no sockets):");
    run(QoS::AtMostOnce, 1, messages / 4, 24); // warm-up
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for subs in [1, 4] {
            let rate = run(qos, subs, messages, 24);
            println!("  QoS {} 1->{subs}: {:>12.0}", qos.as_u8(), rate);
        }
    }
}
