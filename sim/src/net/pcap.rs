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
mod tests;
