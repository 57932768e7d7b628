//! Packet ids: never 0, and never reused in one session and direction while in flight (a resend
//! of the same message with the same id is not a reuse).

use super::{Endpoint, Ledger, Micros, MsgId};

pub const NAME: &str = "packet_id";

pub(super) fn on_used(
    ledger: &mut Ledger,
    at: Micros,
    endpoint: Endpoint,
    pkid: u16,
    msg: Option<MsgId>,
) {
    if pkid == 0 {
        ledger.violate(
            at,
            NAME,
            msg,
            format!("{} used packet id 0", who(ledger, endpoint)),
        );
        return;
    }
    let space = ledger.packet_ids.entry(endpoint).or_default();
    match space.get(&pkid).copied() {
        Some(held) if held == msg && msg.is_some() => {}
        Some(held) => {
            let detail = format!(
                "{} reused packet id {pkid} for {} while it still carried {}",
                who(ledger, endpoint),
                what(ledger, msg),
                what(ledger, held)
            );
            ledger.violate(at, NAME, msg, detail);
        }
        None => {
            space.insert(pkid, msg);
        }
    }
}

fn who(ledger: &Ledger, e: Endpoint) -> String {
    let client = match e.client {
        super::ClientRef::Device(d) => ledger.device_name(d).to_string(),
        super::ClientRef::Subscriber(s) => ledger.subscriber_name(s).to_string(),
    };
    match e.flow {
        super::Flow::ClientToBroker => client,
        super::Flow::BrokerToClient => format!("broker -> {client}"),
    }
}

fn what(ledger: &Ledger, msg: Option<MsgId>) -> String {
    match msg {
        Some(m) => format!("{} seq {}", ledger.device_name(m.device), m.seq),
        None => "a (un)subscribe".to_string(),
    }
}
