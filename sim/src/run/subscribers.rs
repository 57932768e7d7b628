//! The clients host (192.168.100.102): the scenario's subscribers (`mosquitto_sub`), each on
//! its own connection and link, what they receive in the output and in the ledger.

use std::cell::RefCell;
use std::rc::Rc;

use mqsim::client::{ClientConfig, Event, Qos2Delivery};
use mqsim::device::parse_tag;
use mqsim::time::Instant;
use mqsim::QoS;
use tokio::sync::mpsc;

use super::connector::SimConnector;
use super::subscriber::{self, run_subscriber, SubEvent, SubHooks};
use super::wire::SUBSCRIBER_TAG_BASE;
use super::{link_config, qos, Controls, Lines, Shared, Source, CLIENTS_HOST};
use crate::check::{DeviceId, Ledger, MsgId, SubscriberId};
use crate::net::link::Stack;
use crate::net::stream::{sim_now, LinkStream};
use crate::scenario::Scenario;

pub(crate) struct SimSubscriber {
    id: SubscriberId,
    name: String,
    filter: String,
    clean_session: bool,
    ledger: Rc<RefCell<Ledger>>,
    lines: Lines,
}

impl SubHooks for SimSubscriber {
    fn now(&mut self) -> Instant {
        sim_now()
    }
    fn event(&mut self, now: Instant, ev: SubEvent<'_>) {
        let us = now.as_micros();
        let mut ledger = self.ledger.borrow_mut();
        match ev {
            SubEvent::Connected { session_present } => {
                ledger.subscriber_connected(us, self.id, session_present)
            }
            SubEvent::Subscribed { granted } => ledger.subscribed(
                us,
                self.id,
                &self.filter,
                granted.map_or(0x80, QoS::as_u8),
                self.clean_session,
            ),
            SubEvent::Subscribing => ledger.subscribe_requested(us, self.id, &self.filter),
            SubEvent::Disconnected => ledger.subscriber_disconnected(us, self.id),
            SubEvent::GaveUp => ledger.subscriber_gave_up(us, self.id),
            SubEvent::Message(Event::Message {
                topic,
                payload,
                qos,
                retain,
                dup,
            }) => {
                // What `mosquitto_sub -v` prints: the topic and the payload (its visible part).
                let visible = match parse_tag(payload) {
                    Some((visible, device, seq)) => {
                        let msg = MsgId {
                            device: DeviceId(device),
                            seq,
                        };
                        ledger.received(us, self.id, topic, msg, qos.as_u8(), *dup, *retain);
                        visible
                    }
                    None => {
                        ledger.received_untagged(us, self.id, topic);
                        &payload[..]
                    }
                };
                let text = format!("{topic} {}", String::from_utf8_lossy(visible));
                self.lines
                    .push(now, Source::Subscriber(self.name.clone()), text);
            }
            SubEvent::Message(_) => {}
        }
    }
}

/// One subscriber as built: its client's configuration, filter, QoS, connector, control
/// channel and hooks.
pub(crate) type SubParts = (
    ClientConfig,
    String,
    QoS,
    SimConnector,
    mpsc::UnboundedReceiver<crate::device_io::Control>,
    SimSubscriber,
);

/// Adds the clients host to `sim` with every subscriber of `sc`, and each one's control channel
/// to `controls`.
pub(super) fn add(
    sim: &mut turmoil::Sim<'_>,
    sc: &Scenario,
    shared: &Shared,
    controls: &mut Controls,
) -> Result<(), String> {
    let subs = build(sc, shared, controls)?;
    let subs = Rc::new(RefCell::new(Some(subs)));
    sim.host(CLIENTS_HOST, move || {
        let subs = subs.borrow_mut().take();
        async move {
            for (config, filter, q, connector, rx, hooks) in subs.into_iter().flatten() {
                let connect: subscriber::Connect<LinkStream> = Box::new(move || connector.open());
                tokio::task::spawn_local(run_subscriber(config, filter, q, connect, rx, hooks));
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    Ok(())
}

/// Every subscriber of `sc`, each one's control channel added to `controls`.
pub(crate) fn build(
    sc: &Scenario,
    shared: &Shared,
    controls: &mut Controls,
) -> Result<Vec<SubParts>, String> {
    let mut subs = Vec::new();
    for (i, s) in sc.subscribers.iter().enumerate() {
        let id = shared
            .ledger
            .borrow()
            .subscriber_id(&s.name)
            .ok_or_else(|| format!("subscriber {} not in the ledger", s.name))?;
        let tag = SUBSCRIBER_TAG_BASE + i as u32;
        let (tx, rx) = mpsc::unbounded_channel();
        controls.by_tag.insert(tag, tx);
        controls
            .by_name
            .entry(s.name.clone())
            .or_default()
            .push(tag);
        let config = ClientConfig {
            keep_alive_s: s.keepalive_s,
            clean_session: s.clean_session,
            // libmosquitto hands a QoS 2 message to mosquitto_sub at its PUBREL
            // (lib/handle_pubrel.c, see `Qos2Delivery::AtPubrel`): the ledger's delivery time.
            qos2_delivery: Qos2Delivery::AtPubrel,
            ..ClientConfig::new(s.name.clone())
        };
        let connector = SimConnector {
            net: shared.net.clone(),
            link: link_config(
                sc.link(&s.link),
                if sc.tcp_profiles {
                    Stack::linux()
                } else {
                    Stack::plain()
                },
                sc.broker.profile,
            ),
            tag,
            healed: shared.healed.clone(),
            send_buffer_bytes: None,
        };
        let hooks = SimSubscriber {
            id,
            name: s.name.clone(),
            filter: s.filter.clone(),
            clean_session: s.clean_session,
            ledger: shared.ledger.clone(),
            lines: shared.lines.clone(),
        };
        subs.push((config, s.filter.clone(), qos(s.qos), connector, rx, hooks));
    }
    Ok(subs)
}
