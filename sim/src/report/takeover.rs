//! Session takeovers, found in the broker's log: "Client X already connected, closing old
//! connection." (mosquitto's words, MQTT-3.1.4-2), with the connection that took over and the one
//! it closed, and what it cost the device (see [`Ledger::lost_in_gap`]).
//!
//! A takeover is *stale* when the CONNECT that took over came on a connection accepted before
//! the one it closed: a CONNECT the device had given up on (a CONNACK timeout, then `close()`)
//! that TCP went on retransmitting and delivered after the device's next session began.

use std::collections::BTreeMap;

use crate::check::{Ledger, Micros};

/// One takeover at the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    pub at: Micros,
    pub client: String,
    /// The `[[device]]` group of the client; None for a subscriber or an unknown id.
    pub group: Option<String>,
    /// The CONNECT came on an older connection than the one it closed.
    pub stale: bool,
    /// Readings of the device lost in the gap it opened (up to its next session).
    pub lost: u64,
}

/// The takeovers in the broker's lines (`(at, text)`, text as the broker printed it, after its
/// `UNIX_SECONDS: ` stamp or not), in order, with their cost from `ledger`.
pub fn find<'a>(
    lines: impl IntoIterator<Item = (Micros, &'a str)>,
    ledger: &Ledger,
) -> Vec<Takeover> {
    // Address -> order of its "New connection from"; client id -> address of its session.
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    let mut session: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Option<(Micros, String, Option<String>)> = None;
    let mut found: Vec<(Takeover, Option<Micros>)> = Vec::new();
    for (at, line) in lines {
        let text = line.split_once(": ").map_or(line, |(_, t)| t);
        if let Some(rest) = text.strip_prefix("New connection from ") {
            let addr = rest.split(' ').next().unwrap_or("").to_string();
            let n = accepted.len();
            accepted.entry(addr).or_insert(n);
        } else if let Some(rest) = text.strip_prefix("Client ") {
            if let Some(id) = rest.strip_suffix(" already connected, closing old connection.") {
                pending = Some((at, id.to_string(), session.get(id).cloned()));
            }
        } else if let Some(rest) = text.strip_prefix("New client connected from ") {
            let mut parts = rest.splitn(3, ' ');
            let (addr, id) = match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some("as"), Some(r)) => (a, r.split(' ').next().unwrap_or("")),
                _ => continue,
            };
            // The device's next session ends the gap of its earlier takeovers.
            for (t, until) in found.iter_mut() {
                if t.client == id && until.is_none() && t.at < at {
                    *until = Some(at);
                }
            }
            if let Some((t_at, t_id, old)) = pending.take() {
                if t_id == id {
                    let order = |a: &str| accepted.get(a).copied();
                    let stale = matches!(
                        (order(addr), old.as_deref().and_then(order)),
                        (Some(new), Some(old)) if new < old
                    );
                    found.push((
                        Takeover {
                            at: t_at,
                            client: id.to_string(),
                            group: None,
                            stale,
                            lost: 0,
                        },
                        None,
                    ));
                }
            }
            session.insert(id.to_string(), addr.to_string());
        }
    }
    found
        .into_iter()
        .map(|(mut t, until)| {
            if let Some(d) = ledger.device_id(&t.client) {
                t.group = Some(ledger.device_group(d).to_string());
                t.lost = ledger.lost_in_gap(d, t.at, until.unwrap_or(Micros::MAX));
            }
            t
        })
        .collect()
}
