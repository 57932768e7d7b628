//! `persistence true` through the real binary: `kill -9` under QoS 1 and QoS 2 load, then a
//! restart; a journal cut short; a file that is not a journal.
//!
//! The clients here are raw MQTT over `std::net::TcpStream` with the core's codec, written for
//! this test: they keep their own books (what the broker acknowledged) and check the broker from
//! outside.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{broker_refuses, temp_dir, BrokerProc};
use mqsim::codec::{
    self, Connect, Decoded, Packet, Protocol, Publish, QoS, Subscribe, SubscribeFilters,
};

/// A blocking MQTT 3.1.1 connection: send packets, read the next one (or time out).
struct Raw {
    tcp: TcpStream,
    rx: Vec<u8>,
}

/// A decoded packet, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum In {
    ConnAck(bool, u8),
    SubAck,
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Publish {
        qos: QoS,
        pkid: u16,
        payload: String,
    },
    Other,
}

impl Raw {
    fn connect(port: u16, id: &str) -> (Raw, bool) {
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_nodelay(true).unwrap();
        let mut r = Raw {
            tcp,
            rx: Vec::new(),
        };
        r.send(&Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: false,
            keep_alive_s: 0,
            client_id: id,
            will: None,
            username: None,
            password: None,
        }));
        match r.next(Duration::from_secs(10)) {
            Some(In::ConnAck(present, 0)) => (r, present),
            other => panic!("CONNACK for {id}: {other:?}"),
        }
    }

    fn send(&mut self, p: &Packet<'_>) -> bool {
        let mut v = Vec::new();
        codec::encode_to_vec(p, &mut v).unwrap();
        self.tcp.write_all(&v).is_ok()
    }

    fn publish(&mut self, qos: QoS, pkid: u16, dup: bool, payload: &str) -> bool {
        self.send(&Packet::Publish(Publish {
            dup,
            qos,
            retain: false,
            topic: "load/x",
            pkid,
            payload: payload.as_bytes(),
        }))
    }

    /// The next packet within `wait`; `None` on timeout or a closed connection.
    fn next(&mut self, wait: Duration) -> Option<In> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Decoded::Packet(p, n)) = codec::decode(&self.rx, usize::MAX) {
                let got = match p {
                    Packet::ConnAck(a) => In::ConnAck(a.session_present, a.code as u8),
                    Packet::SubAck(_) => In::SubAck,
                    Packet::PubAck(id) => In::PubAck(id),
                    Packet::PubRec(id) => In::PubRec(id),
                    Packet::PubRel(id) => In::PubRel(id),
                    Packet::PubComp(id) => In::PubComp(id),
                    Packet::Publish(p) => In::Publish {
                        qos: p.qos,
                        pkid: p.pkid,
                        payload: String::from_utf8_lossy(p.payload).into_owned(),
                    },
                    _ => In::Other,
                };
                self.rx.drain(..n);
                return Some(got);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.tcp
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 4096];
            match self.tcp.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.rx.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(_) => return None,
            }
        }
    }
}

fn config(dir: &Path) -> PathBuf {
    let conf = dir.join("mqsim.conf");
    std::fs::write(
        &conf,
        format!(
            "allow_anonymous true\npersistence true\npersistence_location {}/\n",
            dir.display()
        ),
    )
    .unwrap();
    conf
}

fn start(conf: &Path) -> BrokerProc {
    BrokerProc::start(&["-c", conf.to_str().unwrap(), "-p", "0"])
}

const MESSAGES: u16 = 600;
const WINDOW: usize = 20;

fn qos_of(i: u16) -> QoS {
    if i % 2 == 0 {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    }
}

/// The publisher's books: per packet id, where its message stands.
#[derive(Default)]
struct Books {
    /// Sent, no acknowledgement yet.
    unacked: BTreeSet<u16>,
    /// QoS 2 with PUBREC (the broker owns it), PUBCOMP not yet.
    released: BTreeSet<u16>,
    /// Acknowledged by the broker (PUBACK, or PUBREC for QoS 2).
    acked: BTreeSet<u16>,
}

impl Books {
    fn on(&mut self, r: &mut Raw, p: In) {
        match p {
            In::PubAck(id) => {
                self.unacked.remove(&id);
                self.acked.insert(id);
            }
            In::PubRec(id) => {
                self.unacked.remove(&id);
                self.acked.insert(id);
                self.released.insert(id);
                r.send(&Packet::PubRel(id));
            }
            In::PubComp(id) => {
                self.released.remove(&id);
            }
            other => panic!("publisher got {other:?}"),
        }
    }

    /// Publishes `m{next}`, ... with a window of [`WINDOW`], handling acknowledgements, until
    /// `done(books, next)`.
    fn stream(&mut self, publ: &mut Raw, next: &mut u16, done: impl Fn(&Books, u16) -> bool) {
        while !done(self, *next) {
            while self.unacked.len() < WINDOW && *next < MESSAGES {
                let id = *next + 1;
                publ.publish(qos_of(*next), id, false, &format!("m{next}"));
                self.unacked.insert(id);
                *next += 1;
            }
            match publ.next(Duration::from_secs(10)) {
                Some(p) => self.on(publ, p),
                None => panic!(
                    "the broker stopped answering with {} unacknowledged, {} unreleased",
                    self.unacked.len(),
                    self.released.len()
                ),
            }
        }
    }
}

#[test]
fn kill_9_under_qos1_and_qos2_load_loses_nothing_acknowledged_and_qos2_stays_once() {
    let dir = temp_dir("kill9");
    let conf = config(&dir);
    let b1 = start(&conf);
    let (mut sub, _) = Raw::connect(b1.port, "sub");
    sub.send(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: SubscribeFilters::List(&[("load/#", QoS::ExactlyOnce)]),
    }));
    assert_eq!(sub.next(Duration::from_secs(10)), Some(In::SubAck));
    sub.send(&Packet::Disconnect);
    drop(sub);

    // The publisher streams with a window of 20; the broker is killed once half is acknowledged.
    let (mut publ, _) = Raw::connect(b1.port, "pub");
    let mut books = Books::default();
    let mut next = 0u16;
    let mut b1 = Some(b1);
    books.stream(&mut publ, &mut next, |b, _| {
        b.acked.len() >= usize::from(MESSAGES / 2)
    });
    // kill -9 with messages in the air.
    b1.take().unwrap().kill();
    while let Some(p) = publ.next(Duration::from_millis(200)) {
        books.on(&mut publ, p);
    }
    let acked_before = books.acked.clone();
    assert!(
        !books.unacked.is_empty(),
        "the kill should catch messages in flight"
    );

    let b2 = start(&conf);
    let restored = b2.wait_for_seen("Persistence: restored");
    assert!(restored.contains("2 persistent sessions"), "{restored}");

    // The publisher resumes as a client library does: PUBREL again, unacknowledged PUBLISHes again
    // with DUP, then the rest.
    let (mut publ, present) = Raw::connect(b2.port, "pub");
    assert!(present, "the publisher's session survived");
    for &id in &books.released.clone() {
        publ.send(&Packet::PubRel(id));
    }
    for &id in &books.unacked.clone() {
        publ.publish(qos_of(id - 1), id, true, &format!("m{}", id - 1));
    }
    books.stream(&mut publ, &mut next, |b, next| {
        next == MESSAGES && b.unacked.is_empty() && b.released.is_empty()
    });

    // The subscriber was offline throughout: everything waits in its session.
    let (mut sub, present) = Raw::connect(b2.port, "sub");
    assert!(present, "the subscriber's session survived");
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let mut awaiting_rel = BTreeSet::new();
    while let Some(p) = sub.next(Duration::from_secs(2)) {
        match p {
            In::Publish { qos, pkid, payload } => match qos {
                QoS::AtLeastOnce => {
                    *got.entry(payload).or_default() += 1;
                    sub.send(&Packet::PubAck(pkid));
                }
                QoS::ExactlyOnce => {
                    // Delivered at first receipt of an id not awaiting PUBREL (MQTT method A).
                    if awaiting_rel.insert(pkid) {
                        *got.entry(payload).or_default() += 1;
                    }
                    sub.send(&Packet::PubRec(pkid));
                }
                QoS::AtMostOnce => panic!("QoS 0 here"),
            },
            In::PubRel(id) => {
                awaiting_rel.remove(&id);
                sub.send(&Packet::PubComp(id));
            }
            other => panic!("subscriber got {other:?}"),
        }
    }
    for i in 0..MESSAGES {
        let n = got.get(&format!("m{i}")).copied().unwrap_or(0);
        let acked = acked_before.contains(&(i + 1));
        assert!(
            n >= 1,
            "m{i} (QoS {}, acknowledged before the kill: {acked}) never delivered",
            qos_of(i).as_u8()
        );
        if qos_of(i) == QoS::ExactlyOnce {
            assert_eq!(n, 1, "QoS 2 m{i} delivered {n} times");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_journal_cut_short_restores_what_is_left_and_keeps_the_damaged_file() {
    let dir = temp_dir("cut");
    let conf = config(&dir);
    let b = start(&conf);
    let (mut sub, _) = Raw::connect(b.port, "sub");
    sub.send(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: SubscribeFilters::List(&[("load/#", QoS::AtLeastOnce)]),
    }));
    assert_eq!(sub.next(Duration::from_secs(10)), Some(In::SubAck));
    sub.send(&Packet::Disconnect);
    let (mut publ, _) = Raw::connect(b.port, "pub");
    for i in 0..3u16 {
        publ.publish(QoS::AtLeastOnce, i + 1, false, &format!("m{i}"));
        assert_eq!(publ.next(Duration::from_secs(10)), Some(In::PubAck(i + 1)));
    }
    b.interrupt();
    let journal = dir.join("mosquitto.db");
    let whole = std::fs::read(&journal).unwrap();
    // A power cut in the middle of the last record.
    std::fs::write(&journal, &whole[..whole.len() - 3]).unwrap();

    let b = start(&conf);
    let warning = b.wait_for_seen("is damaged at byte");
    assert!(warning.contains("dropped"), "{warning}");
    assert_eq!(
        std::fs::read(dir.join("mosquitto.db.damaged")).unwrap(),
        &whole[..whole.len() - 3],
        "the file as found is kept"
    );
    let restored = b.log().join("\n");
    assert!(
        restored.contains("2 messages queued or in flight"),
        "{restored}"
    );
    let (mut sub, _) = Raw::connect(b.port, "sub");
    let mut payloads = Vec::new();
    while let Some(In::Publish { pkid, payload, .. }) = sub.next(Duration::from_secs(1)) {
        payloads.push(payload);
        sub.send(&Packet::PubAck(pkid));
    }
    assert_eq!(payloads, ["m0", "m1"]);
    b.interrupt();
    // The broker rewrote the journal from what it restored: it reads back whole.
    let b = start(&conf);
    let line = b.wait_for_seen("Persistence: restored");
    assert!(!line.contains("dropped"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_is_not_a_journal_is_left_alone_and_the_broker_refuses_to_start() {
    let dir = temp_dir("foreign");
    let conf = config(&dir);
    let journal = dir.join("mosquitto.db");
    // What mosquitto's own persistence file starts with.
    let foreign = b"\x00\xB5\x00mosquitto db\x00\x00\x00\x06".to_vec();
    std::fs::write(&journal, &foreign).unwrap();
    let log = broker_refuses(&conf);
    assert!(
        log.contains("not an mqsim persistence file; refusing to start rather than overwrite it"),
        "{log}"
    );
    assert_eq!(std::fs::read(&journal).unwrap(), foreign);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_retained_qos0_message_survives_clean_restarts() {
    let dir = temp_dir("clean-stop");
    let conf = config(&dir);
    // A retained message at QoS 0 (no acknowledgement) survives a Ctrl-C and a restart, five
    // times over (the adapter's own test, tests/journal_adapter.rs, stops in the middle of the
    // sync).
    for round in 0..5 {
        let b = start(&conf);
        let (mut publ, _) = Raw::connect(b.port, "pub");
        publ.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "kept",
            pkid: 0,
            payload: format!("r{round}").as_bytes(),
        }));
        // A round trip: the broker has handled the PUBLISH before it is told to stop.
        publ.send(&Packet::PingReq);
        assert_eq!(publ.next(Duration::from_secs(10)), Some(In::Other));
        assert!(b.interrupt().success());
        let b = start(&conf);
        let line = b.wait_for_seen("Persistence: restored");
        assert!(
            line.contains("1 retained message,"),
            "round {round}: {line}"
        );
        let (mut sub, _) = Raw::connect(b.port, "reader");
        sub.send(&Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: SubscribeFilters::List(&[("kept", QoS::AtMostOnce)]),
        }));
        assert_eq!(sub.next(Duration::from_secs(10)), Some(In::SubAck));
        match sub.next(Duration::from_secs(10)) {
            Some(In::Publish { payload, .. }) => assert_eq!(payload, format!("r{round}")),
            other => panic!("round {round}: {other:?}"),
        }
        b.interrupt();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
