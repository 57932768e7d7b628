use mqsim::codec::{encode_to_vec, Packet, Publish};
use mqsim::time::Instant;
use mqsim::QoS;

use super::*;

fn wire(ms: u64, dir: Dir, flags: u8, seq: u32, payload: Vec<u8>, lost: bool) -> Wire {
    Wire {
        at: Instant::from_millis(ms),
        dir,
        flags: TcpFlags(flags),
        seq,
        ack: 0,
        payload,
        lost,
    }
}

fn publish(pkid: u16) -> Vec<u8> {
    let p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "ESP32/TEM",
        pkid,
        payload: b"26.70",
    };
    let mut out = Vec::new();
    encode_to_vec(&Packet::Publish(p), &mut out).unwrap();
    out
}

/// A handshake, two PUBLISHes in one segment that is lost and resent, a third PUBLISH cut in
/// two segments, ACKs and a FIN: each segment counted once by kind, each MQTT packet once.
#[test]
fn segments_by_kind_and_mqtt_packets_once() {
    const ACK: u8 = TcpFlags::ACK;
    let (p1, p2, p3) = (publish(1), publish(2), publish(3));
    let two = [p1.clone(), p2.clone()].concat();
    let isn = u32::MAX - 5; // the sequence space wraps inside the stream
    let start = isn.wrapping_add(1);
    let mid = start.wrapping_add(two.len() as u32);
    let cut = 4;
    let records = vec![
        wire(0, Dir::Up, TcpFlags::SYN, isn, vec![], false),
        wire(1, Dir::Down, TcpFlags::SYN | ACK, 1000, vec![], false),
        wire(2, Dir::Up, ACK, start, vec![], false),
        wire(3, Dir::Up, ACK | TcpFlags::PSH, start, two.clone(), true),
        wire(
            4,
            Dir::Up,
            ACK | TcpFlags::PSH,
            mid,
            p3[..cut].to_vec(),
            false,
        ),
        wire(5, Dir::Down, ACK, 1001, vec![], false),
        wire(6, Dir::Up, ACK | TcpFlags::PSH, start, two.clone(), false),
        wire(
            7,
            Dir::Up,
            ACK,
            mid.wrapping_add(cut as u32),
            p3[cut..].to_vec(),
            false,
        ),
        wire(
            8,
            Dir::Up,
            TcpFlags::FIN | ACK,
            mid.wrapping_add(p3.len() as u32),
            vec![],
            false,
        ),
    ];
    let t = traffic(records.iter().map(|w| Record {
        conn: ConnId(0),
        tag: Some(7),
        wire: w,
    }));
    let c = &t[&7];
    assert_eq!(c.up.segments, 7);
    assert_eq!(
        (c.up.data, c.up.resent, c.up.acks, c.up.control),
        (3, 1, 1, 2)
    );
    assert_eq!(c.up.lost, 1);
    assert_eq!(c.up.mqtt_packets, 3);
    assert_eq!(c.up.mqtt_bytes, (p1.len() + p2.len() + p3.len()) as u64);
    let payload: u64 = records
        .iter()
        .filter(|w| w.dir == Dir::Up)
        .map(|w| w.payload.len() as u64)
        .sum();
    assert_eq!(c.up.ip_bytes, 7 * IP_TCP_HEADER_BYTES + payload);
    assert_eq!((c.down.segments, c.down.control, c.down.acks), (2, 1, 1));
    assert_eq!(c.down.mqtt_packets, 0);
}

/// Records of connections without a client tag (none in a run) are not anyone's.
#[test]
fn untagged_records_are_left_out() {
    let w = wire(0, Dir::Up, TcpFlags::SYN, 1, vec![], false);
    let t = traffic([Record {
        conn: ConnId(0),
        tag: None,
        wire: &w,
    }]);
    assert!(t.is_empty());
}

/// The breakdown stays within 80 columns, a long scope name and large counts included.
#[test]
fn the_breakdown_fits_80_columns() {
    let big = Traffic {
        segments: 9_999_999,
        ip_bytes: 999_999_999,
        resent: 999_999,
        acks: 999_999,
        control: 9_999,
        mqtt_packets: 999_999,
        mqtt_bytes: 99_999_999,
        ..Traffic::default()
    };
    let scope = |name: &str, scope: Scope, power: bool| ScopeCost {
        name: name.to_string(),
        scope,
        clients: 1_000,
        delivered: 99_999,
        traffic: ClientTraffic { up: big, down: big },
        power: power.then(|| ScopePower {
            devices: 1_000,
            window_us: 3_600_000_000_000,
            radio_on_us: 3_600_000_000,
            tx_us: 360_000_000,
            // 999 mA over the window, 99,999 mJ per device, a battery of 83,333 days.
            charge_ua_us: 3_600_000_000_000 * 999_000,
            energy_nj: 1_000 * 99_999 * 1_000_000,
            max_average_na: 1_000,
            battery_mah: 2_000,
            ..ScopePower::default()
        }),
    };
    let costs = Costs {
        scopes: vec![
            scope("all", Scope::All, true),
            scope(
                "device a-rather-long-group-name",
                Scope::Device("x".into()),
                true,
            ),
            scope(
                "subscriber mosquitto-sub",
                Scope::Subscriber("s".into()),
                false,
            ),
        ],
        devices: Vec::new(),
    };
    let mut out = String::new();
    render(&mut out, &costs);
    for line in out.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(out.contains("\nsubscriber mosquitto-sub\n"), "{out}");
}
