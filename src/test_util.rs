//! Test helpers shared by the broker's and the client's tests: an owned view of packets.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::codec::{self, Decoded, Packet};

/// An owned view of a packet, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pkt {
    Connect {
        client_id: String,
        clean: bool,
        keep_alive_s: u16,
    },
    ConnAck(bool, u8),
    Pub {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        dup: bool,
        retain: bool,
        pkid: u16,
    },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Sub(u16, Vec<(String, u8)>),
    SubAck(u16, Vec<u8>),
    Unsub(u16, Vec<String>),
    UnsubAck(u16),
    PingReq,
    PingResp,
    Disconnect,
}

impl Pkt {
    pub(crate) fn from_packet(p: &Packet<'_>) -> Pkt {
        match p {
            Packet::Connect(c) => Pkt::Connect {
                client_id: c.client_id.to_string(),
                clean: c.clean_session,
                keep_alive_s: c.keep_alive_s,
            },
            Packet::ConnAck(c) => Pkt::ConnAck(c.session_present, c.code as u8),
            Packet::Publish(p) => Pkt::Pub {
                topic: p.topic.to_string(),
                payload: p.payload.to_vec(),
                qos: p.qos.as_u8(),
                dup: p.dup,
                retain: p.retain,
                pkid: p.pkid,
            },
            Packet::PubAck(id) => Pkt::PubAck(*id),
            Packet::PubRec(id) => Pkt::PubRec(*id),
            Packet::PubRel(id) => Pkt::PubRel(*id),
            Packet::PubComp(id) => Pkt::PubComp(*id),
            Packet::Subscribe(s) => Pkt::Sub(
                s.pkid,
                s.filters
                    .iter()
                    .map(|(f, q)| (f.to_string(), q.as_u8()))
                    .collect(),
            ),
            Packet::SubAck(s) => Pkt::SubAck(s.pkid, s.codes.to_vec()),
            Packet::Unsubscribe(u) => {
                Pkt::Unsub(u.pkid, u.topics.iter().map(|t| t.to_string()).collect())
            }
            Packet::UnsubAck(u) => Pkt::UnsubAck(u.pkid),
            Packet::PingReq => Pkt::PingReq,
            Packet::PingResp => Pkt::PingResp,
            Packet::Disconnect => Pkt::Disconnect,
        }
    }
}

/// Decodes a byte stream made of whole packets.
pub(crate) fn decode_all(mut bytes: &[u8]) -> Vec<Pkt> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match codec::decode(bytes, usize::MAX) {
            Ok(Decoded::Packet(p, n)) => {
                out.push(Pkt::from_packet(&p));
                bytes = &bytes[n..];
            }
            other => panic!("not a whole packet: {other:?}"),
        }
    }
    out
}

impl Pkt {
    /// Whether a server may send this packet (MQTT 3.1.1 section 2.2.1 directions).
    pub(crate) fn is_server_to_client(&self) -> bool {
        !matches!(
            self,
            Pkt::Connect { .. } | Pkt::Sub(..) | Pkt::Unsub(..) | Pkt::PingReq | Pkt::Disconnect
        )
    }
}
