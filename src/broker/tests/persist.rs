//! Persistence: the journal the broker produces, the write-ahead rule on its acknowledgements,
//! and what a broker restored from the journal (whole, cut short or damaged) knows.

use super::*;

/// A disk: what the broker's journal writes would leave, synced at once.
#[derive(Default)]
struct Disk {
    file: Vec<u8>,
    /// Where each write ended in `file`.
    ends: Vec<usize>,
}

impl Disk {
    /// Takes every journal write the broker has and reports it durable.
    fn sync(&mut self, h: &mut Harness) {
        let mut buf = Vec::new();
        while let Some((how, lsn)) = h.b.poll_journal(&mut buf) {
            match how {
                JournalWrite::Append => self.file.extend_from_slice(&buf),
                JournalWrite::Replace => {
                    self.file = core::mem::take(&mut buf);
                    self.ends.clear();
                }
            }
            self.ends.push(self.file.len());
            buf.clear();
            h.b.handle_durable(h.now, lsn);
        }
    }
}

/// The packets in `out` for `conn`.
fn of(out: &[(ConnId, Pkt)], conn: ConnId) -> Vec<Pkt> {
    out.iter()
        .filter(|(c, _)| *c == conn)
        .map(|(_, p)| p.clone())
        .collect()
}

fn persistent() -> Config {
    Config {
        verbose: true,
        persistence: true,
        ..Config::for_tests()
    }
}

fn restored(disk: &Disk, config: Config) -> (Harness, Recovery) {
    let (b, rec) = Broker::restore(config, Instant::ZERO, &disk.file).expect("a journal");
    let mut h = Harness::with(Config::default());
    h.b = b;
    (h, rec)
}

#[test]
fn acknowledgements_wait_until_what_they_acknowledge_is_durable() {
    let mut h = Harness::with(persistent());
    let mut disk = Disk::default();
    disk.sync(&mut h);
    let (sub, _) = h.connect_with("sub", false, 0, None);
    // CONNACK of a new persistent session waits for the session's record.
    disk.sync(&mut h);
    assert_eq!(h.take(sub), vec![Pkt::ConnAck(false, 0)]);
    assert_eq!(h.subscribe(sub, &[("t/#", QoS::ExactlyOnce)]), vec![]);
    assert!(h.b.journal_behind());
    disk.sync(&mut h);
    assert_eq!(h.take(sub), vec![Pkt::SubAck(1, vec![2])]);

    let (csub, _) = h.connect("clean-sub", true);
    assert_eq!(
        h.subscribe(csub, &[("t/2", QoS::ExactlyOnce)]),
        vec![Pkt::SubAck(1, vec![2])],
        "a clean session's SUBACK records nothing and waits for nothing"
    );
    let (p, _) = h.connect("pub", true);
    h.publish(p, "t/1", "a", QoS::AtLeastOnce, false, 7);
    let out = h.drain();
    assert_eq!(of(&out, p), vec![], "no PUBACK before the sync");
    // The QoS 1 copy goes out at once: after a crash it may come again, as QoS 1 allows.
    assert_eq!(of(&out, sub), vec![pubp("t/1", "a", 1, 1)]);
    h.publish(p, "t/2", "b", QoS::ExactlyOnce, false, 8);
    let out = h.drain();
    assert_eq!(of(&out, p), vec![], "no PUBREC before the sync");
    assert_eq!(
        of(&out, sub),
        vec![],
        "a QoS 2 PUBLISH waits for its packet id's record"
    );
    assert_eq!(
        of(&out, csub),
        vec![pubp("t/2", "b", 2, 1)],
        "a clean session's packet ids need not survive: not held"
    );
    disk.sync(&mut h);
    let out = h.drain();
    assert_eq!(of(&out, p), vec![Pkt::PubAck(7), Pkt::PubRec(8)]);
    assert_eq!(of(&out, sub), vec![pubp("t/2", "b", 2, 2)]);

    // A clean publisher whose message reaches no persistent session is not held.
    h.publish(p, "elsewhere", "c", QoS::AtLeastOnce, false, 9);
    assert!(!h.b.journal_behind());
    assert_eq!(h.take(p), vec![Pkt::PubAck(9)]);
}

#[test]
fn without_persistence_nothing_is_recorded_or_held() {
    let mut h = Harness::new();
    let (sub, _) = h.connect("sub", false);
    assert_eq!(
        h.subscribe(sub, &[("t", QoS::ExactlyOnce)]),
        vec![Pkt::SubAck(1, vec![2])]
    );
    let mut buf = Vec::new();
    assert_eq!(h.b.poll_journal(&mut buf), None);
    assert!(!h.b.journal_behind());
}

/// Retained messages, a persistent subscriber's queue and window (QoS 2 past PUBREC included)
/// and a persistent publisher's QoS 2 ids awaiting PUBREL: all back after a restart.
#[test]
fn a_restored_broker_knows_everything_that_was_acknowledged() {
    let mut h = Harness::with(persistent());
    let mut disk = Disk::default();
    let (sub, _) = h.connect_with("sub", false, 0, None);
    h.subscribe(sub, &[("t/#", QoS::ExactlyOnce)]);
    disk.sync(&mut h);
    h.take(sub);
    let (p, _) = h.connect_with("pub", false, 0, None);
    disk.sync(&mut h);
    h.take(p);
    h.publish(p, "t/r", "kept", QoS::AtLeastOnce, true, 1);
    for (i, pkid) in (2..6).enumerate() {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        h.publish(p, "t/x", &format!("m{i}"), qos, false, pkid);
    }
    disk.sync(&mut h);
    let out = h.drain();
    assert_eq!(of(&out, p).len(), 5);
    // The subscriber takes the first two (QoS 1 m0 acked; QoS 2 m1 PUBREC'd, PUBCOMP pending).
    assert_eq!(of(&out, sub).len(), 5);
    h.bytes(sub, &Packet::PubAck(2)); // m0
    h.bytes(sub, &Packet::PubRec(3)); // m1
    disk.sync(&mut h);
    assert_eq!(h.take(sub), vec![Pkt::PubRel(3)]);
    // The publisher's own QoS 2 with id 9 awaits PUBREL.
    h.publish(p, "t/y", "once", QoS::ExactlyOnce, false, 9);
    disk.sync(&mut h);
    assert_eq!(h.take(p), vec![Pkt::PubRec(9)]);
    h.take(sub);
    // Power cut: nothing but the file survives.
    let (mut h, rec) = restored(&disk, persistent());
    assert_eq!(rec.damage, None);
    assert_eq!((rec.sessions, rec.retained), (2, 1));
    // m1 (awaiting PUBCOMP), "kept" (sent as 1), m2, m3, once: five owed to `sub`.
    assert_eq!(rec.messages, 5);

    let (p, got) = h.connect_with("pub", false, 0, None);
    assert_eq!(got, vec![Pkt::ConnAck(true, 0)]);
    // Its re-sent QoS 2 is acknowledged, not delivered again.
    h.bytes(
        p,
        &Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t/y",
            pkid: 9,
            payload: b"once",
        }),
    );
    h.bytes(p, &Packet::PubRel(9));
    let mut disk2 = Disk::default();
    disk2.sync(&mut h);
    assert_eq!(h.take(p), vec![Pkt::PubRec(9), Pkt::PubComp(9)]);

    let (sub, got) = h.connect_with("sub", false, 0, None);
    let dup = |topic: &str, payload: &str, qos: u8, pkid: u16| Pkt::Pub {
        topic: topic.into(),
        payload: payload.into(),
        qos,
        dup: true,
        retain: false,
        pkid,
    };
    assert_eq!(
        got,
        vec![
            Pkt::ConnAck(true, 0),
            dup("t/r", "kept", 1, 1),
            Pkt::PubRel(3),
            dup("t/x", "m2", 1, 4),
            dup("t/x", "m3", 2, 5),
            dup("t/y", "once", 2, 6),
        ],
        "same packet ids, same order, the QoS 2 past PUBREC only released"
    );
    // Subscriptions came back too, and so did the retained message.
    let (s2, _) = h.connect("late", true);
    assert_eq!(
        h.subscribe(s2, &[("t/r", QoS::AtMostOnce)]),
        vec![
            Pkt::SubAck(1, vec![0]),
            Pkt::Pub {
                topic: "t/r".into(),
                payload: b"kept".to_vec(),
                qos: 0,
                dup: false,
                retain: true,
                pkid: 0
            }
        ]
    );
    h.publish(p, "t/z", "new", QoS::AtMostOnce, false, 0);
    assert_eq!(h.take(sub), vec![pubp("t/z", "new", 0, 0)]);
}

#[test]
fn what_was_never_acknowledged_may_be_gone_and_nothing_else_is() {
    let mut h = Harness::with(persistent());
    let mut disk = Disk::default();
    let (sub, _) = h.connect_with("sub", false, 0, None);
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    disk.sync(&mut h);
    h.b.handle_closed(h.now, sub);
    let (p, _) = h.connect("pub", true);
    h.publish(p, "t", "acked", QoS::AtLeastOnce, false, 1);
    disk.sync(&mut h);
    assert_eq!(h.take(p), vec![Pkt::PubAck(1)]);
    h.publish(p, "t", "in the air", QoS::AtLeastOnce, false, 2);
    assert_eq!(h.take(p), vec![], "cut before its sync: never acknowledged");
    let (mut h, rec) = restored(&disk, persistent());
    assert_eq!(rec.messages, 1);
    let (sub, _) = h.connect_with("sub", false, 0, None);
    let mut disk = Disk::default();
    disk.sync(&mut h);
    assert_eq!(
        h.take(sub),
        vec![Pkt::ConnAck(true, 0), pubp("t", "acked", 1, 1)]
    );
}

/// The journal of a small run, and the LSN-free byte boundaries of its records.
/// The journal of a small run, written a few inputs at a time.
fn sample_journal() -> Disk {
    let mut h = Harness::with(persistent());
    let mut disk = Disk::default();
    disk.sync(&mut h);
    let (sub, _) = h.connect_with("sub", false, 0, None);
    h.subscribe(sub, &[("a/#", QoS::ExactlyOnce), ("b", QoS::AtLeastOnce)]);
    disk.sync(&mut h);
    let (p, _) = h.connect_with("pub", false, 0, None);
    for i in 0..6u16 {
        let qos = [QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(i % 2)];
        h.publish(p, "a/1", "xy", qos, i == 0, i + 1);
        if i % 2 == 1 {
            disk.sync(&mut h);
        }
    }
    h.take(sub);
    h.bytes(sub, &Packet::PubAck(1));
    h.bytes(sub, &Packet::PubRec(2));
    h.bytes(
        sub,
        &Packet::Unsubscribe(Unsubscribe {
            pkid: 3,
            topics: UnsubscribeTopics::List(&["b"]),
        }),
    );
    disk.sync(&mut h);
    disk
}

#[test]
fn a_journal_cut_anywhere_restores_the_whole_writes_before_the_cut() {
    let disk = sample_journal();
    let file = &disk.file;
    assert!(disk.ends.len() >= 5, "{:?}", disk.ends);
    let restore = |n: usize| Broker::restore(persistent(), Instant::ZERO, &file[..n]);
    let (_, whole) = restore(file.len()).unwrap();
    assert_eq!(whole.damage, None);
    assert!(whole.records > 10);
    // What each whole write leaves: never less than the one before.
    let at_end: Vec<u64> = disk
        .ends
        .iter()
        .map(|&e| restore(e).unwrap().1.records)
        .collect();
    assert!(at_end.windows(2).all(|w| w[0] < w[1]), "{at_end:?}");
    for cut in 0..file.len() {
        match restore(cut) {
            Err(RestoreError::NotAJournal) => assert!(cut < 8),
            Err(e) => panic!("cut at {cut}: {e}"),
            Ok((_, rec)) => {
                // Exactly the writes that ended before the cut, none of the one it tore.
                let whole_writes = disk.ends.iter().filter(|&&e| e <= cut).count();
                let expect = whole_writes.checked_sub(1).map_or(0, |i| at_end[i]);
                assert_eq!(rec.records, expect, "cut at {cut}");
                let clean = disk.ends.contains(&cut) || cut == HEADER_FOR_TESTS;
                assert_eq!(rec.damage.is_none(), clean, "cut at {cut}");
                if let Some(d) = &rec.damage {
                    assert_eq!(d.offset + d.dropped_bytes, cut as u64);
                }
            }
        }
    }
}

#[test]
fn a_corrupt_record_stops_the_restore_there_and_says_so() {
    let file = sample_journal().file;
    let (_, whole) = Broker::restore(persistent(), Instant::ZERO, &file).unwrap();
    for at in (HEADER_FOR_TESTS..file.len()).step_by(7) {
        let mut bad = file.clone();
        bad[at] ^= 0x5A;
        let (_, rec) = Broker::restore(persistent(), Instant::ZERO, &bad).unwrap();
        let d = rec.damage.expect("a flipped byte is always noticed");
        assert!(d.offset as usize <= at);
        assert!(rec.records < whole.records);
        assert!(!d.reason.is_empty());
    }
}

const HEADER_FOR_TESTS: usize = crate::broker::persist::HEADER_BYTES;

#[test]
fn another_programs_file_or_a_newer_format_is_refused() {
    assert_eq!(
        Broker::restore(persistent(), Instant::ZERO, b"\x00\xB5\x00MOSQUITTO DB").err(),
        Some(RestoreError::NotAJournal)
    );
    let mut f = crate::broker::persist::header().to_vec();
    f[8] = 9;
    assert_eq!(
        Broker::restore(persistent(), Instant::ZERO, &f).err(),
        Some(RestoreError::UnsupportedVersion(9))
    );
}

#[test]
fn a_snapshot_restores_to_the_same_snapshot() {
    let file = sample_journal().file;
    let (b, _) = Broker::restore(persistent(), Instant::ZERO, &file).unwrap();
    let mut h = Harness::with(Config::default());
    h.b = b;
    let mut once = Disk::default();
    once.sync(&mut h);
    let (b2, rec) = Broker::restore(persistent(), Instant::ZERO, &once.file).unwrap();
    assert_eq!(rec.damage, None);
    h.b = b2;
    let mut twice = Disk::default();
    twice.sync(&mut h);
    assert_eq!(once.file, twice.file);
    assert!(
        once.file.len() < file.len(),
        "the snapshot drops finished messages"
    );
}

#[test]
fn the_journal_is_compacted_and_stays_bounded() {
    let mut h = Harness::with(Config {
        journal_compact_min_bytes: 4096,
        ..persistent()
    });
    let mut disk = Disk::default();
    let (sub, _) = h.connect_with("sub", false, 0, None);
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let (p, _) = h.connect("pub", true);
    let mut largest = 0;
    for i in 0..2_000u16 {
        h.publish(p, "t", "0123456789", QoS::AtLeastOnce, false, i % 100 + 1);
        disk.sync(&mut h);
        for pkt in h.take(sub) {
            if let Pkt::Pub { pkid, .. } = pkt {
                h.bytes(sub, &Packet::PubAck(pkid));
            }
        }
        disk.sync(&mut h);
        largest = largest.max(disk.file.len());
    }
    assert!(largest < 3 * 4096, "largest journal {largest} bytes");
    h.publish(p, "t", "last", QoS::AtLeastOnce, false, 1);
    disk.sync(&mut h);
    let (mut h, rec) = restored(&disk, persistent());
    assert_eq!((rec.messages, rec.damage), (1, None));
    let (_, got) = h.connect_with("sub", false, 0, None);
    assert!(
        matches!(&got[..], [_, Pkt::Pub { payload, .. }] if payload == b"last"),
        "{got:?}"
    );
}

#[test]
fn a_clean_connection_ends_a_persistent_session_for_good() {
    let mut h = Harness::with(persistent());
    let mut disk = Disk::default();
    let (sub, _) = h.connect_with("sub", false, 0, None);
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    h.b.handle_closed(h.now, sub);
    let (c, _) = h.connect_with("sub", true, 0, None);
    assert_eq!(
        h.take(c),
        vec![],
        "its CONNACK waits for the session's end to be recorded"
    );
    disk.sync(&mut h);
    assert_eq!(h.take(c), vec![Pkt::ConnAck(false, 0)]);
    let (_, rec) = restored(&disk, persistent());
    assert_eq!(rec.sessions, 0);
}
