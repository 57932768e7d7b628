//! Issue 22: the report's cost figures and the run's capture agree exactly. One run of a lossy
//! QoS 1 scenario through the command line, `--json --pcap`; the pcap is read back with
//! pcap-file and etherparse and counted here on its own (segments, IP bytes, resent data, pure
//! ACKs, SYN/FIN/RST, and MQTT packets framed from each direction's reassembled stream by their
//! fixed header alone), per client host: the devices are 192.168.100.101, the subscribers .102.

use std::collections::BTreeMap;
use std::process::Command;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;

#[derive(Default, Debug, PartialEq, Eq, Clone, Copy)]
struct Count {
    segments: u64,
    ip_bytes: u64,
    resent: u64,
    acks: u64,
    control: u64,
    mqtt_packets: u64,
    mqtt_bytes: u64,
}

/// One direction of one connection: the highest sequence number sent and the bytes not yet
/// framed.
#[derive(Default)]
struct Stream {
    next: Option<u32>,
    pending: Vec<u8>,
}

/// Complete MQTT packets at the front of `buf` (fixed header: type byte, remaining length as a
/// variable byte integer), removed from it.
fn frame_mqtt(buf: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    loop {
        let mut len = 0usize;
        let mut i = 1;
        let mut shift = 0;
        let header = loop {
            let Some(&b) = buf.get(i) else { break None };
            len |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break Some(i);
            }
            shift += 7;
        };
        let Some(h) = header else { return n };
        if buf.len() < h + len {
            return n;
        }
        buf.drain(..h + len);
        n += 1;
    }
}

fn field<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn reported(costs: &serde_json::Value, scope: &str, dir: &str) -> Count {
    let c = costs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == scope)
        .unwrap_or_else(|| panic!("no cost scope {scope}"));
    let n = |k: &str| field(c, &[dir, k]).as_u64().unwrap();
    Count {
        segments: n("segments"),
        ip_bytes: n("ip_bytes"),
        resent: n("resent"),
        acks: n("acks"),
        control: n("control"),
        mqtt_packets: n("mqtt_packets"),
        mqtt_bytes: n("mqtt_bytes"),
    }
}

#[test]
fn the_report_counts_what_the_capture_holds() {
    let dir = std::env::temp_dir().join(format!("mqsim-costs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("run.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args([
            "sim",
            "../scenarios/qos1-loss20.toml",
            "--json",
            "--seed",
            "3",
            "--pcap",
        ])
        .arg(&pcap)
        .output()
        .expect("run mqsim sim");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");

    // (client ip last octet, up?) -> count; connections by the client's address and port.
    let mut counts: BTreeMap<(u8, bool), Count> = BTreeMap::new();
    let mut streams: BTreeMap<([u8; 4], u16, bool), Stream> = BTreeMap::new();
    let mut reader = PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        let s = SlicedPacket::from_ethernet(&pkt.data).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!("IPv4 only")
        };
        let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
            panic!("TCP only")
        };
        let up = tcp.destination_port() == 1883;
        let (client_ip, client_port) = if up {
            (ip.header().source(), tcp.source_port())
        } else {
            (ip.header().destination(), tcp.destination_port())
        };
        let c = counts.entry((client_ip[3], up)).or_default();
        c.segments += 1;
        c.ip_bytes += u64::from(ip.header().total_len());
        let payload = tcp.payload();
        let st = streams.entry((client_ip, client_port, up)).or_default();
        if tcp.syn() && st.next.is_none() {
            st.next = Some(tcp.sequence_number().wrapping_add(1));
        }
        if payload.is_empty() {
            if tcp.syn() || tcp.fin() || tcp.rst() {
                c.control += 1;
            } else {
                c.acks += 1;
            }
            continue;
        }
        let seq = tcp.sequence_number();
        let next = st.next.unwrap_or(seq);
        let end = seq.wrapping_add(payload.len() as u32);
        let new = end.wrapping_sub(next) as i32;
        if new <= 0 {
            c.resent += 1;
            continue;
        }
        let fresh = &payload[payload.len() - (new as usize).min(payload.len())..];
        st.next = Some(end);
        c.mqtt_bytes += fresh.len() as u64;
        st.pending.extend_from_slice(fresh);
        c.mqtt_packets += frame_mqtt(&mut st.pending);
    }

    let costs = &report["costs"];
    let device_up = counts[&(101, true)];
    let device_down = counts[&(101, false)];
    assert_eq!(reported(costs, "device esp32", "up"), device_up);
    assert_eq!(reported(costs, "device esp32", "down"), device_down);
    assert_eq!(
        reported(costs, "subscriber sub", "up"),
        counts[&(102, true)]
    );
    assert_eq!(
        reported(costs, "subscriber sub", "down"),
        counts[&(102, false)]
    );
    // The one device on its own is its group.
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["client_id"], "esp32");
    assert_eq!(
        devices[0]["up"]["segments"].as_u64(),
        Some(device_up.segments)
    );
    // Not vacuous: the lossy link made the device resend, and QoS 1 means a PUBACK per PUBLISH.
    assert!(
        device_up.resent > 0 && device_down.resent + device_up.resent > 2,
        "{device_up:?}"
    );
    let delivered = report["scopes"][0]["delivered"].as_u64().unwrap();
    assert!(device_up.mqtt_packets >= delivered && device_down.mqtt_packets >= delivered);
    // The per-delivered figures are the totals over `delivered`.
    let all = costs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "all")
        .unwrap();
    let segs: u64 = counts.values().map(|c| c.segments).sum();
    let per = all["per_delivered"]["tcp_segments"].as_f64().unwrap();
    assert!((per - segs as f64 / delivered as f64).abs() < 1e-9, "{per}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The energy figures react to the model: a device that sleeps with its CPU on (Modem-sleep
/// without light sleep, `sleep_ma = 20.58`) draws far more and its battery lasts far less.
#[test]
fn the_power_model_follows_device_power() {
    let base = std::fs::read_to_string("../scenarios/qos1-clean.toml").unwrap();
    let dir = std::env::temp_dir().join(format!("mqsim-power-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let days = |text: &str, name: &str| -> f64 {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
            .args(["sim", "--json"])
            .arg(&path)
            .output()
            .expect("run mqsim sim");
        assert!(out.status.success(), "{out:?}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let dev = r["costs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "device esp32")
            .unwrap()
            .clone();
        dev["energy"]["battery_days"].as_f64().unwrap()
    };
    let light = days(&base, "light.toml");
    let at = base.find("[[subscriber]]").unwrap();
    let modem = format!(
        "{}[device.power]\nsleep_ma = 20.58\n\n{}",
        &base[..at],
        &base[at..]
    );
    let awake = days(&modem, "modem.toml");
    // 2,000 mAh at a little over 20.58 mA: at most 4.05 days.
    assert!(awake < 4.05 && awake > 3.0, "{awake}");
    assert!(light > 3.0 * awake, "{light} vs {awake}");
    std::fs::remove_dir_all(&dir).ok();
}
