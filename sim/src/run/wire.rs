//! Feeds the ledger's packet-identifier check from the wire: the bytes each application
//! received, decoded with the core's one framing buffer, per connection and direction. Nothing
//! here asks the broker or a client what it did.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use mqsim::codec::{ConnectReturnCode, FrameBuffer, Packet};
use mqsim::device::parse_tag;
use mqsim::limits;

use crate::check::{ClientRef, DeviceId, Endpoint, Flow, Ledger, MsgId};
use crate::net::link::Dir;
use crate::net::stream::{ConnId, Tap};

/// Tags at or above this name subscribers (their index above it), below it devices.
pub const SUBSCRIBER_TAG_BASE: u32 = 1 << 20;

#[derive(Default)]
pub struct WireCheck {
    frames: BTreeMap<(ConnId, bool), FrameBuffer>,
    /// Per client tag: the connection its latest CONNACK arrived on. What still reaches the
    /// client on an older connection (bytes the broker sent before a takeover or before the
    /// client gave the connection up, delivered late by TCP) is never read by it: a client has
    /// one connection, so such a PUBLISH uses no identifier of its session.
    current: BTreeMap<u32, ConnId>,
}

impl WireCheck {
    pub fn feed(
        &mut self,
        ledger: &mut Ledger,
        subscribers: &[crate::check::SubscriberId],
        tap: Tap,
    ) {
        let Some(tag) = tap.tag else { return };
        let client = if tag >= SUBSCRIBER_TAG_BASE {
            match subscribers.get((tag - SUBSCRIBER_TAG_BASE) as usize) {
                Some(s) => ClientRef::Subscriber(*s),
                None => return,
            }
        } else {
            ClientRef::Device(DeviceId(tag))
        };
        let up = tap.dir == Dir::Up;
        // Who chose the identifier of a PUBLISH in this direction, and whose identifiers its
        // PUBACK / PUBCOMP release.
        let (publish_flow, ack_flow) = if up {
            (Flow::ClientToBroker, Flow::BrokerToClient)
        } else {
            (Flow::BrokerToClient, Flow::ClientToBroker)
        };
        let at = tap.at.as_micros();
        let stale = !up && self.current.get(&tag).is_some_and(|&c| tap.conn < c);
        let current = &mut self.current;
        let fb = self.frames.entry((tap.conn, up)).or_default();
        let fed = fb.feed::<()>(&tap.bytes, limits::REMAINING_LENGTH_MAX_BYTES, |p| {
            match p {
                Packet::ConnAck(ack)
                    if !up && !stale && ack.code == ConnectReturnCode::Accepted =>
                {
                    current.insert(tag, tap.conn);
                    if !ack.session_present {
                        ledger.broker_session_new(at, client);
                    }
                }
                Packet::Publish(p) if p.qos != mqsim::QoS::AtMostOnce && !stale => {
                    let msg = parse_tag(p.payload).map(|(_, d, seq)| MsgId {
                        device: DeviceId(d),
                        seq,
                    });
                    let ep = Endpoint {
                        client,
                        flow: publish_flow,
                    };
                    ledger.packet_id_used(at, ep, p.pkid, msg);
                }
                Packet::PubAck(id) | Packet::PubComp(id) => {
                    let ep = Endpoint {
                        client,
                        flow: ack_flow,
                    };
                    ledger.packet_id_released(at, ep, id);
                }
                _ => {}
            }
            ControlFlow::Continue(())
        });
        if fed.is_err() {
            // Not MQTT any more (cannot happen with our endpoints): stop reading this stream.
            self.frames.remove(&(tap.conn, up));
        }
    }
}

#[cfg(test)]
mod tests {
    use mqsim::codec::{encode_to_vec, ConnAck, Publish};
    use mqsim::device::tag_payload;
    use mqsim::time::Instant;
    use mqsim::QoS;

    use super::*;

    fn connack(session_present: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let ack = ConnAck {
            session_present,
            code: ConnectReturnCode::Accepted,
        };
        encode_to_vec(&Packet::ConnAck(ack), &mut out).unwrap();
        out
    }

    fn publish(pkid: u16, seq: u64) -> Vec<u8> {
        let payload = tag_payload(b"21.5", 0, seq);
        let p = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "ESP32/TEM",
            pkid,
            payload: &payload,
        };
        let mut out = Vec::new();
        encode_to_vec(&Packet::Publish(p), &mut out).unwrap();
        out
    }

    fn down(ms: u64, conn: u32, bytes: Vec<u8>) -> Tap {
        Tap {
            at: Instant::from_millis(ms),
            conn: ConnId(conn),
            tag: Some(SUBSCRIBER_TAG_BASE),
            dir: Dir::Down,
            bytes,
        }
    }

    /// Issue 24 (random-02, seeds 2 and 5): the broker sent a PUBLISH on a subscriber's old
    /// connection before a takeover; TCP delivered it after the new clean session's CONNACK.
    /// The client never reads that connection again, so the identifier is not in use in its new
    /// session, where the broker may pick it for another message.
    #[test]
    fn a_publish_delivered_late_on_an_old_connection_uses_no_identifier() {
        let mut l = Ledger::new();
        l.add_device("dev0", "dev0");
        let s = l.add_subscriber("sub0");
        let mut w = WireCheck::default();
        w.feed(&mut l, &[s], down(0, 1, connack(false)));
        w.feed(&mut l, &[s], down(10, 1, publish(311, 1257)));
        // The takeover: a new connection, a new session.
        w.feed(&mut l, &[s], down(20, 2, connack(false)));
        // Late bytes on the old connection, then the new session's own identifier 311.
        w.feed(&mut l, &[s], down(30, 1, publish(311, 1258)));
        w.feed(&mut l, &[s], down(40, 2, publish(311, 1381)));
        assert!(l.violations().is_empty(), "{:?}", l.violations());
        // On the current connection a reuse is still one.
        w.feed(&mut l, &[s], down(50, 2, publish(311, 1382)));
        assert_eq!(l.violations().len(), 1);
    }

    /// A resumed session keeps its identifiers in flight: reusing one is still a violation.
    #[test]
    fn a_resumed_session_keeps_its_identifiers() {
        let mut l = Ledger::new();
        l.add_device("dev0", "dev0");
        let s = l.add_subscriber("sub0");
        let mut w = WireCheck::default();
        w.feed(&mut l, &[s], down(0, 1, connack(false)));
        w.feed(&mut l, &[s], down(10, 1, publish(7, 1)));
        w.feed(&mut l, &[s], down(20, 2, connack(true)));
        w.feed(&mut l, &[s], down(30, 2, publish(7, 1))); // the resend: fine
        assert!(l.violations().is_empty());
        w.feed(&mut l, &[s], down(40, 2, publish(7, 2)));
        assert_eq!(l.violations().len(), 1);
    }
}
