//! Where the broker follows mosquitto 2.0 to the byte: what its settings and limits refuse,
//! checked where mosquitto checks them, with its return codes and log lines (a CONNECT's client
//! id and will before authentication, its keep alive against `max_keepalive`, a PUBLISH's RETAIN
//! flag against `retain_available` and its topic depth), the QoS a message goes out at
//! (`upgrade_outgoing_qos`), and the order of an acknowledgement and the forwarded copy.
//!
//! Line references are to mosquitto v2.0.20 (`src/handle_connect.c`, `src/handle_publish.c`,
//! `lib/util_topic.c`, `src/loop.c`), the newest 2.0 release.

use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::{log, Broker, CloseReason, ConnId};
use crate::codec::{Connect, ConnectReturnCode, Packet, Protocol, Publish, QoS, Subscribe};
use crate::topic;

/// The prefix of mosquitto's broker-control topics; clients may not leave a will there.
const CONTROL_PREFIX: &str = "$CONTROL/";

impl Broker {
    /// mosquitto's checks of a CONNECT that come before authentication, in handle__connect's
    /// order. Returns true, with `conn` refused and closed, when one fails.
    pub(super) fn connect_refused(&mut self, conn: ConnId, c: &Connect<'_>) -> bool {
        let unknown = self.client_label(conn);
        // handle_connect.c:572: a retained will with `retain_available false` closes the
        // connection without CONNACK (3.1.1 has no code for it), logged by loop.c:351.
        if !self.config.retain_available && c.will.is_some_and(|w| w.retain) {
            self.notice(|| format!("Client {unknown} disconnected due to using not allowed feature (QoS too high, retain not supported, or bad AUTH method)."));
            self.close(conn, CloseReason::Refused);
            return true;
        }
        // handle_connect.c:611-630: an empty client id is refused with CONNACK 2 from a 3.1
        // client (3.1 requires 1 to 23 characters), and from a 3.1.1 client when
        // `allow_zero_length_clientid` is false (clean session 0 is refused in on_connect).
        if c.client_id.is_empty()
            && (c.protocol == Protocol::V31 || !self.config.allow_zero_length_clientid)
        {
            self.refuse_connect(conn, ConnectReturnCode::IdentifierRejected);
            self.notice(|| format!("Client {unknown} disconnected due to protocol error."));
            self.close(conn, CloseReason::Refused);
            return true;
        }
        let Some(w) = c.will else {
            return false;
        };
        // handle_connect.c:378: a will to `$CONTROL/...` is an ACL denial: closed, no CONNACK.
        // handle_connect.c:382: a will topic deeper than TOPIC_HIERARCHY_LIMIT likewise.
        let why = if w.topic.starts_with(CONTROL_PREFIX) {
            Some("Access denied by ACL.")
        } else if !topic::depth_within_limit(w.topic) {
            Some("Invalid arguments provided.")
        } else {
            None
        };
        if let Some(why) = why {
            self.notice(|| format!("Bad socket read/write on client {unknown}: {why}"));
            self.close(conn, CloseReason::Refused);
            return true;
        }
        // handle_connect.c:390-398: a will payload over `message_size_limit` gets CONNACK 5
        // (3.1.1), then the close is logged as an oversize payload (loop.c:345).
        let limit = self.config.message_size_limit_bytes;
        if limit != 0 && w.payload.len() > limit {
            let id = c.client_id.to_string();
            self.log(|| format!("Client {id} connected with too large Will payload"));
            self.refuse_connect(conn, ConnectReturnCode::NotAuthorized);
            self.notice(|| format!("Client {unknown} disconnected due to oversize payload."));
            self.close(conn, CloseReason::Refused);
            return true;
        }
        false
    }

    /// A SUBSCRIBE filter deeper than TOPIC_HIERARCHY_LIMIT (200 separators) closes the
    /// connection without SUBACK: handle_subscribe.c's "Invalid subscription string", then
    /// loop.c's malformed-packet line (observed with mosquitto 2.0.11 and a raw client). Other
    /// invalid filters get 0x80 here (see docs/broker.md). Returns true when closed.
    pub(super) fn subscribe_refused(&mut self, conn: ConnId, sub: &Subscribe<'_>) -> bool {
        if sub
            .filters
            .iter()
            .all(|(f, _)| topic::depth_within_limit(f))
        {
            return false;
        }
        let (host, id) = match self.conns.get(&conn) {
            Some(c) => (
                log::peer_host(&c.peer.to_string()).to_string(),
                c.client_id.clone(),
            ),
            None => return true,
        };
        self.notice(|| format!("Invalid subscription string from {host}, disconnecting."));
        self.notice(|| format!("Client {id} disconnected due to malformed packet."));
        self.close(conn, CloseReason::Refused);
        true
    }

    /// `max_keepalive` (handle_connect.c:269-281, mosquitto 2.0.12 and later): a 3.1 or 3.1.1
    /// client asking for a longer keep alive than the limit, or for none (0), gets CONNACK 2,
    /// and loop.c:360 logs the close as a bad read with MOSQ_ERR_INVAL's text. mosquitto checks
    /// this after taking over an older connection of the same client id; we check it before, so a
    /// refused client does not kick the connected one. Returns true when refused.
    pub(super) fn keepalive_refused(
        &mut self,
        conn: ConnId,
        c: &Connect<'_>,
        client_id: &str,
    ) -> bool {
        let max = self.config.max_keepalive_s;
        if max == 0 || (c.keep_alive_s != 0 && c.keep_alive_s <= max) {
            return false;
        }
        if let Some(cn) = self.conns.get_mut(&conn) {
            cn.client_id = alloc::sync::Arc::from(client_id);
        }
        self.refuse_connect(conn, ConnectReturnCode::IdentifierRejected);
        let id = client_id.to_string();
        self.notice(|| {
            format!("Bad socket read/write on client {id}: Invalid arguments provided.")
        });
        self.close(conn, CloseReason::Refused);
        true
    }

    /// mosquitto's checks of a PUBLISH before anything else is done with it. Returns true, with
    /// `conn` closed, when one fails.
    pub(super) fn publish_refused(&mut self, conn: ConnId, p: &Publish<'_>) -> bool {
        let id = self.client_label(conn);
        if p.retain && !self.config.retain_available {
            // handle_publish.c:87: MOSQ_ERR_RETAIN_NOT_SUPPORTED, which loop.c:360 logs with
            // mosquitto_strerror's text for a code it has none for.
            self.notice(|| format!("Bad socket read/write on client {id}: Unknown error."));
            self.close(conn, CloseReason::Refused);
            return true;
        }
        if !topic::depth_within_limit(p.topic) {
            // handle_publish.c:204: mosquitto_pub_topic_check fails, the client is disconnected
            // as for a malformed packet (loop.c:327).
            self.notice(|| format!("Client {id} disconnected due to malformed packet."));
            self.close(conn, CloseReason::Refused);
            return true;
        }
        false
    }

    /// The QoS a message published at `published` goes out at to a subscription granted
    /// `granted`: the lower of the two (MQTT-3.8.4-6), or `granted` with
    /// `upgrade_outgoing_qos` (subs.c:78, retain.c:201).
    pub(super) fn outgoing_qos(&self, published: QoS, granted: QoS) -> QoS {
        if self.config.upgrade_outgoing_qos {
            granted
        } else {
            published.min(granted)
        }
    }

    /// Where `conn`'s outgoing bytes and the event queue end now, for [`Broker::send_at`].
    pub(super) fn output_mark(&self, conn: ConnId) -> (usize, usize) {
        let tx = self.conns.get(&conn).map_or(0, |c| c.tx.len());
        (tx, self.events.len())
    }

    /// Sends `p` to `conn` as if it had been sent at `mark` ([`Broker::output_mark`]): its bytes
    /// and its log line go before what was queued since. A QoS 2 PUBLISH is acknowledged (PUBREC)
    /// before the copy forwarded to the publisher's own subscription, as mosquitto orders them
    /// (it forwards only at PUBREL, handle_publish.c:344-360), while routing still runs first so
    /// that a publisher paused by it has its PUBREC withheld.
    pub(super) fn send_at(&mut self, conn: ConnId, mark: (usize, usize), p: &Packet<'_>) {
        let (tx_before, events_before) = self.output_mark(conn);
        self.send(conn, p);
        if let Some(c) = self.conns.get_mut(&conn) {
            // The packet's bytes are the tail since `tx_before`: rotate them in front of the
            // bytes queued since the mark.
            if mark.0 <= tx_before && tx_before <= c.tx.len() {
                let n = c.tx.len() - tx_before;
                c.tx[mark.0..].rotate_right(n);
            }
        }
        let at = mark.1.min(events_before);
        let new: Vec<_> = self.events.drain(events_before..).collect();
        for (i, ev) in new.into_iter().enumerate() {
            self.events.insert(at + i, ev);
        }
    }
}
