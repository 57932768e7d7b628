use super::*;
use crate::net::link::LossModel;
use std::net::Ipv4Addr;
use std::time::Duration as StdDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BROKER: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 103);
const DEVICE: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 101);

fn sim(seed: u64, secs: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .tick_duration(StdDuration::from_millis(1))
        // turmoil's own latency only times its connect/accept here: fixed and small.
        .min_message_latency(StdDuration::from_millis(1))
        .max_message_latency(StdDuration::from_millis(1))
        .simulation_duration(StdDuration::from_secs(secs))
        .epoch(std::time::UNIX_EPOCH + StdDuration::from_secs(1_700_000_000))
        .rng_seed(seed)
        .build()
}

/// An echo server on 1883 behind the modelled link, one task per connection.
fn echo_host(sim: &mut turmoil::Sim<'static>, net: &Net) {
    let net = net.clone();
    sim.host(BROKER, move || {
        let net = net.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 1883)).await?;
            loop {
                let (tcp, _) = listener.accept().await?;
                let net = net.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = net.wrap_server(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 512];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
    });
}

type EchoResult = Arc<Mutex<(Vec<u8>, Vec<u8>, u64)>>;

/// 40 messages of 20 bytes, one every 200 ms, each echoed; returns (bytes back, finish time).
fn echo_run(seed: u64, loss: f64) -> (Vec<u8>, Vec<u8>, u64, Net) {
    let net = Net::new(seed);
    let mut sim = sim(seed, 600);
    echo_host(&mut sim, &net);
    let result: EchoResult = Arc::default();
    let (n2, r2) = (net.clone(), result.clone());
    sim.client(DEVICE, async move {
        let cfg = LinkConfig {
            latency_us: 10_000,
            jitter_us: 2_000,
            loss: LossModel::Bernoulli { loss },
            ..LinkConfig::default()
        };
        let s = n2.connect((BROKER, 1883), cfg).await?;
        let (mut rd, mut wr) = tokio::io::split(s);
        let writer = tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..40u32 {
                let msg = format!("message {i:04} ........");
                let msg = &msg.as_bytes()[..20];
                wr.write_all(msg).await?;
                sent.extend_from_slice(msg);
                tokio::time::sleep(StdDuration::from_millis(200)).await;
            }
            Ok::<_, io::Error>((sent, wr))
        });
        let mut back = Vec::new();
        let mut buf = [0u8; 256];
        while back.len() < 800 {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        let (sent, wr) = writer.await??;
        drop((rd, wr));
        *r2.lock().unwrap() = (sent, back, sim_now().as_millis());
        Ok(())
    });
    sim.run().expect("simulation");
    let (sent, back, at) = result.lock().unwrap().clone();
    (sent, back, at, net)
}

#[test]
fn echo_over_lossy_link_returns_every_byte_in_order_but_later() {
    let (sent0, back0, t0, net0) = echo_run(11, 0.0);
    let (sent, back, t20, net) = echo_run(11, 0.2);
    assert_eq!(back0, sent0);
    assert_eq!(back, sent);
    assert_eq!(back.len(), 800);
    assert!(t20 > t0, "loss must cost time: {t20} ms vs {t0} ms");
    let lines = net.trace_lines();
    let retransmits = lines
        .iter()
        .filter(|l| l.text.contains("retransmit"))
        .count();
    assert!(retransmits > 0);
    assert!(!net0.trace_lines().iter().any(|l| l.text.contains("lost")));
    eprintln!(
        "no loss: done at {t0} ms; 20 % loss: done at {t20} ms, {retransmits} retransmissions, {} wire records",
        net.wire_records().len()
    );
}

#[test]
fn same_seed_same_trace_and_pcap_different_seed_differs() {
    let epoch = StdDuration::from_secs(1_700_000_000);
    let (_, _, _, a) = echo_run(5, 0.2);
    let (_, _, _, b) = echo_run(5, 0.2);
    let (_, _, _, c) = echo_run(6, 0.2);
    assert_eq!(a.trace_lines(), b.trace_lines());
    assert_eq!(a.pcap_bytes(epoch).unwrap(), b.pcap_bytes(epoch).unwrap());
    assert_ne!(a.trace_lines(), c.trace_lines());
    assert_ne!(a.pcap_bytes(epoch).unwrap(), c.pcap_bytes(epoch).unwrap());
}

#[test]
fn partition_longer_than_the_backoff_budget_resets_both_ends() {
    let net = Net::new(3);
    let mut sim = sim(3, 120);
    echo_host(&mut sim, &net);
    let outcome: Arc<Mutex<Option<(io::ErrorKind, u64)>>> = Arc::default();
    let (n2, o2) = (net.clone(), outcome.clone());
    sim.client(DEVICE, async move {
        // RTO 220 ms (SRTT 20 + 200): the probe at 0.22 s, 4 retries 0.22, 0.44, 0.88, 1.76 s
        // apart, reset 3.52 s later: 7.04 s after the write.
        let cfg = LinkConfig {
            latency_us: 10_000,
            ..LinkConfig::default()
        }
        .both(|s| s.retries_max = 4);
        let mut s = n2.connect((BROKER, 1883), cfg).await?;
        s.write_all(b"before").await?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"before");
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        n2.partition(Which::All, true);
        let t0 = sim_now().as_millis();
        s.write_all(b"during").await?;
        let err = s.read(&mut buf).await.expect_err("must reset");
        *o2.lock().unwrap() = Some((err.kind(), sim_now().as_millis() - t0));
        // Writes after the reset fail too.
        assert!(s.write_all(b"x").await.is_err());
        Ok(())
    });
    sim.run().expect("simulation");
    let (kind, after_ms) = outcome.lock().unwrap().expect("client finished");
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
    assert!(
        (7_040..=7_140).contains(&after_ms),
        "reset after {after_ms} ms"
    );
    let lines = net.trace_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.text.ends_with("reset: retries exhausted up")),
        "{lines:#?}"
    );
}

#[test]
fn connect_through_a_partition_fails_after_the_syn_retries() {
    let net = Net::new(4);
    let mut sim = sim(4, 200);
    echo_host(&mut sim, &net);
    let outcome: Arc<Mutex<Option<(io::ErrorKind, u64)>>> = Arc::default();
    let (n2, o2) = (net.clone(), outcome.clone());
    sim.client(DEVICE, async move {
        let cfg = LinkConfig {
            loss: LossModel::Bernoulli { loss: 1.0 },
            ..LinkConfig::default()
        };
        let err = n2
            .connect((BROKER, 1883), cfg)
            .await
            .err()
            .expect("must fail");
        *o2.lock().unwrap() = Some((err.kind(), sim_now().as_millis()));
        Ok(())
    });
    sim.run().expect("simulation");
    let (kind, at_ms) = outcome.lock().unwrap().expect("client finished");
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!((127_000..127_100).contains(&at_ms), "failed at {at_ms} ms");
}

#[test]
fn server_power_cut_is_silence_for_an_idle_client() {
    let net = Net::new(8);
    let mut sim = sim(8, 60);
    echo_host(&mut sim, &net);
    let got: Arc<Mutex<Option<bool>>> = Arc::default();
    let (n2, g2) = (net.clone(), got.clone());
    sim.client(DEVICE, async move {
        let mut s = n2.connect((BROKER, 1883), LinkConfig::default()).await?;
        n2.power_cut(Which::Host(BROKER.into()), Side::Server);
        let mut buf = [0u8; 4];
        // No bytes outstanding: nothing ever tells the client (keepalive's job).
        let r = tokio::time::timeout(StdDuration::from_secs(30), s.read(&mut buf)).await;
        *g2.lock().unwrap() = Some(r.is_err());
        Ok(())
    });
    sim.run().expect("simulation");
    assert_eq!(
        *got.lock().unwrap(),
        Some(true),
        "the read must time out, not fail"
    );
}

/// The real broker's tokio adapter, unchanged, behind the modelled link: a client subscribes to
/// `ESP32/#` and publishes 20 QoS 0 messages over a 20 % lossy link; every one comes back in order.
#[test]
fn real_broker_serves_over_the_lossy_link() {
    let net = Net::new(21);
    let mut sim = sim(21, 300);
    let n1 = net.clone();
    sim.host(BROKER, move || {
        let net = n1.clone();
        async move {
            let broker = mqsim::broker::Broker::new(Default::default(), Instant::ZERO).unwrap();
            let (handle, _task) = mqsim_broker::spawn_broker(broker, Box::new(|_| {}));
            let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 1883)).await?;
            loop {
                let (tcp, peer) = listener.accept().await?;
                let (net, handle) = (net.clone(), handle.clone());
                tokio::spawn(async move {
                    if let Ok(s) = net.wrap_server(tcp).await {
                        handle.serve(s, peer.to_string()).await;
                    }
                });
            }
        }
    });
    let got: Arc<Mutex<Vec<u8>>> = Arc::default();
    let (n2, g2) = (net.clone(), got.clone());
    sim.client(DEVICE, async move {
        let cfg = LinkConfig {
            loss: LossModel::Bernoulli { loss: 0.2 },
            ..LinkConfig::default()
        };
        let mut s = n2.connect((BROKER, 1883), cfg).await?;
        let connect = [
            0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05,
            b'e', b's', b'p', b'3', b'2',
        ];
        s.write_all(&connect).await?;
        let mut connack = [0u8; 4];
        s.read_exact(&mut connack).await?;
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
        let subscribe = [
            0x82, 0x0c, 0x00, 0x01, 0x00, 0x07, b'E', b'S', b'P', b'3', b'2', b'/', b'#', 0x00,
        ];
        s.write_all(&subscribe).await?;
        let mut suback = [0u8; 5];
        s.read_exact(&mut suback).await?;
        assert_eq!(suback, [0x90, 0x03, 0x00, 0x01, 0x00]);
        let mut expected = Vec::new();
        for i in 0..20u8 {
            let p = [
                0x30,
                0x0c,
                0x00,
                0x09,
                b'E',
                b'S',
                b'P',
                b'3',
                b'2',
                b'/',
                b'T',
                b'E',
                b'M',
                b'0' + i % 10,
            ];
            s.write_all(&p).await?;
            expected.extend_from_slice(&p);
            tokio::time::sleep(StdDuration::from_millis(500)).await;
        }
        let mut back = vec![0u8; expected.len()];
        s.read_exact(&mut back).await?;
        *g2.lock().unwrap() = back.clone();
        assert_eq!(back, expected);
        Ok(())
    });
    sim.run().expect("simulation");
    assert_eq!(got.lock().unwrap().len(), 20 * 14);
    let lines = net.trace_lines();
    assert!(
        lines.iter().any(|l| l.text.contains("lost")),
        "20 % loss should lose something"
    );
    // MQSIM_PCAP_OUT=path writes the capture, to look at it with tshark.
    if let Some(path) = std::env::var_os("MQSIM_PCAP_OUT") {
        let bytes = net
            .pcap_bytes(StdDuration::from_secs(1_700_000_000))
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}
