//! Capture writer: [`Wire`] records as Ethernet/IPv4/TCP frames (checksums by `etherparse`) in a
//! little-endian, microsecond pcap (`pcap-file` with an explicit header, never the native-endian
//! default), stamped with simulated time plus a caller-given epoch. Same records, same bytes.
//!
//! Lost packets are written by default, as a capture next to the sender would show them: the
//! original followed by its retransmission with the same sequence number, which tshark flags as
//! `tcp.analysis.retransmission` (as in `real-lossy-link/real-loss20-qos0.pcap`).

use std::io::Write;
use std::net::SocketAddrV4;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::link::trace::{TcpFlags, Wire};
use super::link::Dir;

/// The addresses of one connection. The broker listens on 1883 in the suggested plan
/// (devices 192.168.100.101.., broker 192.168.100.103, as in the user's capture).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnAddrs {
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
}

/// TCP window advertised in every frame (the model has no flow control).
pub const WINDOW: u16 = 64_240;
const TTL: u8 = 64;

/// A locally administered MAC derived from the IPv4 address (02:00:a.b.c.d).
fn mac(addr: &SocketAddrV4) -> [u8; 6] {
    let o = addr.ip().octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// The Ethernet frame of one wire record.
pub fn frame(addrs: &ConnAddrs, w: &Wire) -> Vec<u8> {
    let (src, dst) = match w.dir {
        Dir::Up => (addrs.client, addrs.server),
        Dir::Down => (addrs.server, addrs.client),
    };
    let mut b = PacketBuilder::ethernet2(mac(&src), mac(&dst))
        .ipv4(src.ip().octets(), dst.ip().octets(), TTL)
        .tcp(src.port(), dst.port(), w.seq, WINDOW);
    if w.flags.has(TcpFlags::SYN) {
        b = b.syn();
    }
    if w.flags.has(TcpFlags::FIN) {
        b = b.fin();
    }
    if w.flags.has(TcpFlags::RST) {
        b = b.rst();
    }
    if w.flags.has(TcpFlags::PSH) {
        b = b.psh();
    }
    if w.flags.has(TcpFlags::ACK) {
        b = b.ack(w.ack);
    }
    let mut out = Vec::with_capacity(b.size(w.payload.len()));
    // Writing into a Vec only fails on impossible sizes (payload > 65495), which the link's
    // MSS validation excludes; an empty frame is written then rather than panicking.
    if b.write(&mut out, &w.payload).is_err() {
        out.clear();
    }
    out
}

/// Writes wire records into a pcap stream.
pub struct PcapCapture<W: Write> {
    writer: PcapWriter<W>,
    epoch: std::time::Duration,
    write_lost: bool,
    frames: u64,
}

impl<W: Write> PcapCapture<W> {
    /// `epoch`: the wall-clock time (since the Unix epoch) that simulated time zero stands for.
    pub fn new(out: W, epoch: std::time::Duration) -> Result<Self, String> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: 65_535,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        let writer = PcapWriter::with_header(out, header).map_err(|e| e.to_string())?;
        Ok(PcapCapture {
            writer,
            epoch,
            write_lost: true,
            frames: 0,
        })
    }

    /// Whether lost packets appear in the capture (default: yes, as seen at the sender).
    pub fn write_lost(mut self, on: bool) -> Self {
        self.write_lost = on;
        self
    }

    pub fn write(&mut self, addrs: &ConnAddrs, w: &Wire) -> Result<(), String> {
        if w.lost && !self.write_lost {
            return Ok(());
        }
        let data = frame(addrs, w);
        let ts = self.epoch + std::time::Duration::from_micros(w.at.as_micros());
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.writer
            .write_packet(&PcapPacket::new(ts, len, &data))
            .map_err(|e| e.to_string())?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn into_inner(self) -> W {
        self.writer.into_writer()
    }
}

/// A whole capture in memory.
pub fn to_pcap_bytes<'a>(
    epoch: std::time::Duration,
    records: impl IntoIterator<Item = (&'a ConnAddrs, &'a Wire)>,
) -> Result<Vec<u8>, String> {
    let mut cap = PcapCapture::new(Vec::new(), epoch)?;
    for (a, w) in records {
        cap.write(a, w)?;
    }
    Ok(cap.into_inner())
}

/// For tests that decode captures: whether `tshark` can run here. Where it cannot, says so and
/// returns false, unless `MQSIM_REQUIRE_TSHARK=1` (set by CI, which installs it): then it panics.
pub fn tshark_for_tests() -> bool {
    let installed = std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("MQSIM_REQUIRE_TSHARK").as_deref() != Ok("1"),
            "tshark not installed but MQSIM_REQUIRE_TSHARK=1"
        );
        eprintln!("tshark not installed: skipping the decode");
    }
    installed
}

#[cfg(test)]
mod tests {
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
            latency_ms: 2,
            jitter_ms: 1,
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
            0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05,
            b'e', b's', b'p', b'3', b'2',
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
}
