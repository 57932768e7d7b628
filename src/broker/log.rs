//! Per-packet log lines worded as `mosquitto -v` prints them, so users can compare logs line by line.

use alloc::format;
use alloc::string::String;

use crate::codec::{Packet, Publish};

pub fn publish_details(p: &Publish<'_>) -> String {
    format!(
        "(d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
        u8::from(p.dup),
        p.qos.as_u8(),
        u8::from(p.retain),
        p.pkid,
        p.topic,
        p.payload.len()
    )
}

/// "Received PUBLISH from ESP32 (d0, q0, r0, m0, 'ESP32/TEM', ... (5 bytes))"
pub fn received(client: &str, p: &Packet<'_>) -> String {
    match p {
        Packet::Publish(publish) => format!(
            "Received PUBLISH from {client} {}",
            publish_details(publish)
        ),
        Packet::PubAck(id) => format!("Received PUBACK from {client} (Mid: {id}, RC:0)"),
        Packet::PubRec(id) => format!("Received PUBREC from {client} (Mid: {id})"),
        Packet::PubRel(id) => format!("Received PUBREL from {client} (Mid: {id})"),
        Packet::PubComp(id) => format!("Received PUBCOMP from {client} (Mid: {id}, RC:0)"),
        Packet::Subscribe(s) => {
            let mut line = format!("Received SUBSCRIBE from {client}");
            for (f, q) in s.filters.iter() {
                line.push_str(&format!("\n\t{f} (QoS {})", q.as_u8()));
            }
            line
        }
        Packet::Unsubscribe(u) => {
            let mut line = format!("Received UNSUBSCRIBE from {client}");
            for f in u.topics.iter() {
                line.push_str(&format!("\n\t{f}"));
            }
            line
        }
        other => format!("Received {} from {client}", other.name()),
    }
}

/// "Sending CONNACK to ESP32 (0, 0)"
pub fn sending(client: &str, p: &Packet<'_>) -> String {
    match p {
        Packet::ConnAck(c) => format!(
            "Sending CONNACK to {client} ({}, {})",
            u8::from(c.session_present),
            c.code as u8
        ),
        Packet::Publish(publish) => {
            format!("Sending PUBLISH to {client} {}", publish_details(publish))
        }
        Packet::PubAck(id) => format!("Sending PUBACK to {client} (m{id}, rc0)"),
        Packet::PubRec(id) => format!("Sending PUBREC to {client} (m{id}, rc0)"),
        Packet::PubRel(id) => format!("Sending PUBREL to {client} (m{id})"),
        Packet::PubComp(id) => format!("Sending PUBCOMP to {client} (m{id})"),
        other => format!("Sending {} to {client}", other.name()),
    }
}

/// The address part of a peer label ("127.0.0.1:50000 on port 1883" -> "127.0.0.1",
/// "[::1]:50000 on port 1883" -> "::1"), as mosquitto names a client before it has an id.
pub fn peer_host(peer: &str) -> &str {
    let addr = peer.split(" on port ").next().unwrap_or_default();
    match addr.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => addr,
    }
}
