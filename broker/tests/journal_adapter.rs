//! The tokio adapter with a journal: a store that syncs slowly, driven through `serve` and
//! `shutdown` as the real broker is. Acknowledgements wait for the sync; a clean stop waits for the
//! last records.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqsim::broker::{Broker, Config, JournalWrite};
use mqsim::codec::{self, Connect, Decoded, Packet, Protocol, Publish, QoS};
use mqsim::Instant;
use mqsim_broker::{spawn_broker_with_journal, JournalStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../tests/support/config.rs"]
mod config;
use config::test_config;

/// A journal in memory whose syncs take `sync` of tokio time.
#[derive(Clone)]
struct SlowStore {
    file: Arc<Mutex<Vec<u8>>>,
    sync: Duration,
    /// Commits begun.
    started: Arc<AtomicUsize>,
}

impl JournalStore for SlowStore {
    fn commit(
        &mut self,
        how: JournalWrite,
        bytes: Vec<u8>,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<u8>>> + Send {
        let (file, sync) = (self.file.clone(), self.sync);
        self.started.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(sync).await;
            let mut f = file.lock().unwrap();
            match how {
                JournalWrite::Append => f.extend_from_slice(&bytes),
                JournalWrite::Replace => *f = bytes.clone(),
            }
            Ok(bytes)
        }
    }
}

fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    codec::encode_to_vec(p, &mut v).unwrap();
    v
}

fn persistent() -> Config {
    Config {
        persistence: true,
        ..test_config()
    }
}

#[tokio::test]
async fn puback_after_the_sync_and_a_clean_stop_waits_for_the_last_records() {
    let store = SlowStore {
        file: Arc::default(),
        sync: Duration::from_millis(200),
        started: Arc::default(),
    };
    let broker = Broker::new(persistent(), Instant::ZERO).unwrap();
    let (handle, task) = spawn_broker_with_journal(broker, Box::new(|_| {}), store.clone());
    let (mut client, server) = tokio::io::duplex(4096);
    assert!(handle.serve(server, "test".into()).await.is_some());
    let mut out = encode(&Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: false,
        keep_alive_s: 0,
        client_id: "c",
        will: None,
        username: None,
        password: None,
    }));
    out.extend(encode(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "kept/1",
        pkid: 7,
        payload: b"one",
    })));
    client.write_all(&out).await.unwrap();
    // CONNACK (a new persistent session's record) and PUBACK come once synced, not before.
    let started = tokio::time::Instant::now();
    let mut rx = Vec::new();
    let mut got = Vec::new();
    while got.len() < 2 {
        let mut b = [0u8; 256];
        let n = client.read(&mut b).await.unwrap();
        rx.extend_from_slice(&b[..n]);
        while let Ok(Decoded::Packet(p, n)) = codec::decode(&rx, usize::MAX) {
            got.push(format!("{p:?}"));
            rx.drain(..n);
        }
    }
    assert!(got[1].starts_with("PubAck(7)"), "{got:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "acknowledged after {:?}, before the 200 ms sync",
        started.elapsed()
    );
    // A QoS 0 retained message has no acknowledgement to wait for it; a stop while its record is
    // being synced still keeps it.
    let commits = store.started.load(Ordering::SeqCst);
    client
        .write_all(&encode(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "kept/2",
            pkid: 0,
            payload: b"two",
        })))
        .await
        .unwrap();
    while store.started.load(Ordering::SeqCst) == commits {
        tokio::task::yield_now().await;
    }
    handle.shutdown().await;
    let (_, failed) = task.await.unwrap();
    assert_eq!(failed, None);
    let file = store.file.lock().unwrap().clone();
    let (_, rec) = Broker::restore(persistent(), Instant::ZERO, &file).unwrap();
    assert_eq!((rec.retained, rec.sessions, rec.damage), (2, 1, None));
}
