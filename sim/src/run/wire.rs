//! Feeds the ledger's packet-identifier check from the wire: the bytes each application
//! received, decoded with the core's one framing buffer, per connection and direction. Nothing
//! here asks the broker or a client what it did.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use mqsim::codec::{FrameBuffer, Packet};
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
        let fb = self.frames.entry((tap.conn, up)).or_default();
        let fed = fb.feed::<()>(&tap.bytes, limits::REMAINING_LENGTH_MAX_BYTES, |p| {
            match p {
                Packet::Publish(p) if p.qos != mqsim::QoS::AtMostOnce => {
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
