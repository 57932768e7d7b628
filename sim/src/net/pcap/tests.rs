use super::*;
use crate::net::link::{Link, LinkConfig, LossModel, Output};
use mqsim::time::Instant;
use std::net::Ipv4Addr;

fn addrs() -> ConnAddrs {
    ConnAddrs {
        client: SocketAddrV4::new(Ipv4Addr::new(192, 168, 100, 101), 50_001),
        server: SocketAddrV4::new(Ipv4Addr::new(192, 168, 100, 103), 1883),
    }
}

/// MQTT CONNECT (client id "esp32"), CONNACK, then PUBLISH QoS 0 `ESP32/TEM` every 500 ms and
/// a DISCONNECT, over a 20 % lossy link; returns the wire records.
pub(crate) fn mqtt_session(seed: u64, loss: f64) -> Vec<Wire> {
    let c = LinkConfig {
        latency_us: 2_000,
        jitter_us: 1_000,
        loss: LossModel::Bernoulli { loss },
        ..LinkConfig::default()
    };
    let mut link = Link::new(c, seed).expect("valid");
    let mut wires = Vec::new();
    let drain = |link: &mut Link, wires: &mut Vec<Wire>| {
        while let Some(o) = link.poll_output() {
            if let Output::Wire(w) = o {
                wires.push(w);
            }
        }
    };
    let run = |link: &mut Link, wires: &mut Vec<Wire>, end: Instant| {
        while let Some(t) = link.poll_timeout().filter(|t| *t <= end) {
            link.handle_timeout(t);
            drain(link, wires);
        }
    };
    link.handle_connect(Instant::ZERO);
    drain(&mut link, &mut wires);
    run(&mut link, &mut wires, Instant::from_millis(10_000));
    let connect = [
        0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05, b'e',
        b's', b'p', b'3', b'2',
    ];
    let mut t = 10_000;
    link.handle_send(Instant::from_millis(t), Dir::Up, &connect);
    drain(&mut link, &mut wires);
    run(&mut link, &mut wires, Instant::from_millis(t + 50));
    link.handle_send(
        Instant::from_millis(t + 50),
        Dir::Down,
        &[0x20, 0x02, 0x00, 0x00],
    );
    drain(&mut link, &mut wires);
    for i in 0..60u32 {
        t += 500;
        run(&mut link, &mut wires, Instant::from_millis(t));
        let body = format!("{}.{}", 20 + i % 5, i % 10);
        let mut p = vec![0x30, (2 + 9 + body.len()) as u8, 0x00, 0x09];
        p.extend_from_slice(b"ESP32/TEM");
        p.extend_from_slice(body.as_bytes());
        link.handle_send(Instant::from_millis(t), Dir::Up, &p);
        drain(&mut link, &mut wires);
    }
    t += 500;
    run(&mut link, &mut wires, Instant::from_millis(t));
    link.handle_send(Instant::from_millis(t), Dir::Up, &[0xe0, 0x00]);
    link.handle_close(Instant::from_millis(t), Dir::Up);
    drain(&mut link, &mut wires);
    run(&mut link, &mut wires, Instant::from_millis(t + 600_000));
    wires
}

const EPOCH: std::time::Duration = std::time::Duration::from_secs(1_700_000_000);

#[test]
fn same_records_same_bytes_with_a_little_endian_header() {
    let a = addrs();
    let w1 = mqtt_session(5, 0.2);
    let w2 = mqtt_session(5, 0.2);
    let b1 = to_pcap_bytes(EPOCH, w1.iter().map(|w| (&a, w))).unwrap();
    let b2 = to_pcap_bytes(EPOCH, w2.iter().map(|w| (&a, w))).unwrap();
    assert_eq!(b1, b2);
    assert_eq!(
        &b1[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond magic"
    );
    let other = mqtt_session(6, 0.2);
    let b3 = to_pcap_bytes(EPOCH, other.iter().map(|w| (&a, w))).unwrap();
    assert_ne!(b1, b3);
}

#[test]
fn frames_parse_back_with_valid_checksums() {
    let a = addrs();
    for w in mqtt_session(5, 0.2) {
        let f = frame(&a, &w);
        let p = etherparse::SlicedPacket::from_ethernet(&f).expect("parses");
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!("not ipv4")
        };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("not tcp")
        };
        assert_eq!(tcp.sequence_number(), w.seq);
        assert_eq!(tcp.payload(), &w.payload[..]);
        let sum = tcp
            .to_header()
            .calc_checksum_ipv4(&ip.header().to_header(), tcp.payload())
            .unwrap();
        assert_eq!(sum, tcp.checksum());
    }
}

/// Runs where tshark is installed (`apt-get install tshark`); skipped with a message
/// otherwise, unless `MQSIM_REQUIRE_TSHARK=1` (CI installs it and sets that).
#[test]
fn tshark_decodes_mqtt_and_flags_retransmissions() {
    if !tshark_for_tests() {
        return;
    }
    let a = addrs();
    let wires = mqtt_session(5, 0.2);
    let bytes = to_pcap_bytes(EPOCH, wires.iter().map(|w| (&a, w))).unwrap();
    let dir = std::env::temp_dir().join(format!("mqsim-net-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("loss20.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let count = |filter: &str| -> usize {
        let o = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-Y", filter])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let publishes = count("mqtt.msgtype == 3");
    let retrans = count("tcp.analysis.retransmission");
    let malformed = count("_ws.malformed || _ws.expert.severity >= error");
    let lost = wires
        .iter()
        .filter(|w| w.lost && !w.payload.is_empty())
        .count();
    eprintln!(
        "frames={} publish={publishes} retransmissions={retrans} lost_data={lost}",
        wires.len()
    );
    assert!(
        publishes >= 60,
        "every PUBLISH decodes (with resent copies): {publishes}"
    );
    assert!(
        retrans >= 1 && lost >= 1,
        "retransmissions flagged: {retrans}"
    );
    assert_eq!(malformed, 0);
    if std::env::var_os("MQSIM_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
