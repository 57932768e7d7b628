//! One test body, two backends: the broker's tokio adapter over real TCP (loopback) and over
//! turmoil's simulated TCP. Nothing in the broker or the adapter knows which one it is given; this
//! checks they really do not need to. The body: a subscriber and a publisher, raw clients on our
//! codec, QoS 0/1/2 messages, each delivered once and in order. The raw clients are deliberately
//! not the core's `Client`: they answer the broker's QoS flow by hand, so the test depends on the
//! adapter and the broker only.

use std::time::Duration;

use mqsim::broker::{Broker, Config};
use mqsim::codec::{
    decode, encode_to_vec, Connect, Decoded, Packet, Protocol, Publish, QoS, Subscribe,
    SubscribeFilters,
};
use mqsim_broker::{spawn_broker, BrokerHandle};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type BoxError = Box<dyn std::error::Error>;

fn start_broker() -> BrokerHandle {
    let config = Config {
        sys_interval: mqsim::time::Duration::ZERO,
        ..Config::default()
    };
    let (handle, _task) = spawn_broker(
        Broker::new(config, mqsim::Instant::ZERO).unwrap(),
        Box::new(|_| {}),
    );
    handle
}

fn bytes(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode_to_vec(p, &mut v).unwrap();
    v
}

fn connect(id: &str) -> Vec<u8> {
    bytes(&Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 30,
        client_id: id,
        will: None,
        username: None,
        password: None,
    }))
}

/// Reads until `want` PUBLISH payloads arrived (answering QoS 1/2 as a client must), returns them.
async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    want: usize,
) -> Vec<(u8, Vec<u8>)> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while got.len() < want {
        let mut replies = Vec::new();
        let mut pos = 0;
        while let Ok(Decoded::Packet(p, n)) = decode(&buf[pos..], usize::MAX) {
            pos += n;
            match p {
                Packet::Publish(p) => {
                    got.push((p.qos.as_u8(), p.payload.to_vec()));
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => replies.extend(bytes(&Packet::PubAck(p.pkid))),
                        QoS::ExactlyOnce => replies.extend(bytes(&Packet::PubRec(p.pkid))),
                    }
                }
                Packet::PubRel(id) => replies.extend(bytes(&Packet::PubComp(id))),
                _ => {}
            }
        }
        buf.drain(..pos);
        s.write_all(&replies).await.unwrap();
        if got.len() >= want {
            break;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "broker closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    got
}

/// The shared body: `dial` opens a connection to the broker on whichever network.
async fn round_trip<S, F, Fut>(dial: F) -> Result<(), BoxError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<S>>,
{
    let mut sub = dial().await?;
    sub.write_all(&connect("sub")).await?;
    let f = [("ESP32/#", QoS::ExactlyOnce)];
    sub.write_all(&bytes(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: SubscribeFilters::List(&f),
    })))
    .await?;
    let mut sbuf = Vec::new();
    // CONNACK and SUBACK first.
    let mut chunk = [0u8; 64];
    while sbuf.len() < 4 + 5 {
        let n = sub.read(&mut chunk).await?;
        assert!(n > 0);
        sbuf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(
        &sbuf[..9],
        &[0x20, 2, 0, 0, 0x90, 3, 0, 1, 2],
        "CONNACK 0, SUBACK granted QoS 2"
    );
    sbuf.drain(..9);

    let mut publisher = dial().await?;
    let mut out = connect("ESP32");
    let payloads = ["26.70", "52.00", "26.90"];
    for (i, (qos, payload)) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .zip(payloads)
        .enumerate()
    {
        let pkid = if qos == QoS::AtMostOnce { 0 } else { i as u16 };
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "ESP32/TEM",
            pkid,
            payload: payload.as_bytes(),
        };
        out.extend(bytes(&Packet::Publish(p)));
    }
    publisher.write_all(&out).await?;
    let got = receive(&mut sub, &mut sbuf, 3).await;
    let want: Vec<(u8, Vec<u8>)> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u8, p.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn over_real_tcp() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = start_broker();
        tokio::spawn(async move {
            while let Ok((s, peer)) = listener.accept().await {
                handle.serve(s, peer.to_string()).await;
            }
        });
        tokio::time::timeout(
            Duration::from_secs(10),
            round_trip(|| tokio::net::TcpStream::connect(addr)),
        )
        .await
        .expect("round trip within 10 s")
        .unwrap();
    });
}

#[test]
fn over_turmoil_simulated_tcp() {
    let mut sim = turmoil::Builder::new()
        .rng_seed(1)
        .epoch(std::time::UNIX_EPOCH)
        .simulation_duration(Duration::from_secs(20))
        .build();
    sim.host("broker", || async {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 1883)).await?;
        let handle = start_broker();
        while let Ok((s, peer)) = listener.accept().await {
            handle.serve(s, peer.to_string()).await;
        }
        Ok(())
    });
    sim.client("devices", async {
        round_trip(|| turmoil::net::TcpStream::connect(("broker", 1883))).await
    });
    sim.run().unwrap();
}
