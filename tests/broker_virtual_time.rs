//! Keep alive end to end in virtual time, through the public in-memory driver: the broker and
//! sans-IO clients (the firmware's client) with no sockets and no clock. What
//! `broker_rumqttc.rs` used to wait real seconds for, to the microsecond and in no time.

use mqsim::broker::Config;
use mqsim::client::{ClientConfig, Event, LastWill};
use mqsim::driver::mem::{Dir, Loss, MemNet};
use mqsim::time::Duration;
use mqsim::{Instant, QoS};

#[path = "support/config.rs"]
mod config;
use config::test_config;

fn client(id: &str, keep_alive_s: u16, will: Option<LastWill>) -> ClientConfig {
    ClientConfig {
        client_id: id.into(),
        keep_alive_s,
        will,
        ..ClientConfig::default()
    }
}

/// A client whose link goes silent (a partition: the broker hears nothing, not even a close) is
/// closed at exactly 1.5 x keep alive after the last bytes the broker got from it, with the log
/// line and its will; a client that keeps pinging with the same keep alive is never closed.
#[test]
fn silent_client_closed_at_one_and_a_half_keepalives_pinging_client_kept() {
    let config = Config {
        verbose: true,
        ..test_config()
    };
    let mut net = MemNet::new(config, Instant::ZERO).unwrap();
    let watch = net.add_client(client("watch", 0, None)).unwrap();
    let pinger = net.add_client(client("pinger", 1, None)).unwrap();
    let will = LastWill {
        topic: "will/silent".into(),
        payload: b"timed out".to_vec(),
        qos: QoS::AtLeastOnce,
        retain: false,
    };
    let silent = net.add_client(client("silent", 1, Some(will))).unwrap();
    for i in [watch, pinger, silent] {
        assert!(net.connect(i).unwrap());
    }
    let now = net.now;
    net.nodes[watch]
        .client
        .subscribe(now, &[("will/#", QoS::AtLeastOnce)])
        .unwrap();
    net.run_until(Instant::from_millis(300)).unwrap();
    let silent_conn = net.nodes[silent].conn.expect("silent connected");
    let pinger_conn = net.nodes[pinger].conn.expect("pinger connected");

    // From 300 ms on, nothing the silent client sends reaches the broker.
    net.nodes[silent].up = Loss::All;
    let last_rx = net
        .trace
        .iter()
        .filter(|r| r.node == silent && r.dir == Dir::Up && !r.delivered.is_empty())
        .map(|r| r.at)
        .max()
        .expect("the broker got CONNECT");
    let deadline = last_rx + Duration::from_millis(1_500);

    net.run_until(Instant::from_micros(deadline.as_micros() - 1))
        .unwrap();
    assert!(
        !net.broker_closed.iter().any(|(_, c)| *c == silent_conn),
        "closed before 1.5 x keep alive: {:?}",
        net.broker_closed
    );

    net.run_until(deadline).unwrap();
    assert_eq!(net.broker_closed, [(deadline, silent_conn)]);
    assert!(
        net.broker_log.contains(&(
            deadline,
            "Client silent has exceeded timeout, disconnecting.".into()
        )),
        "{:#?}",
        net.broker_log
    );
    let wills: Vec<_> = net.nodes[watch]
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Message {
                topic,
                payload,
                qos,
                ..
            } => Some((*at, topic.as_str(), payload.as_slice(), *qos)),
            _ => None,
        })
        .collect();
    assert_eq!(
        wills,
        [(deadline, "will/silent", &b"timed out"[..], QoS::AtLeastOnce)]
    );

    // The pinging client, same keep alive, stays for a minute of virtual time.
    net.run_until(Instant::from_millis(60_000)).unwrap();
    assert!(
        !net.broker_closed.iter().any(|(_, c)| *c == pinger_conn),
        "{:?}",
        net.broker_closed
    );
    assert!(
        !net.nodes[pinger]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ConnectionLost(_))),
        "{:?}",
        net.nodes[pinger].events
    );
    assert_eq!(net.nodes[pinger].conn, Some(pinger_conn));
}
