//! CONNECT: the checks mosquitto makes before and at authentication, the client id (one
//! assigned when it is empty), a session taken over from an older connection or resumed, the
//! keep-alive timer and will, then CONNACK and the redelivery of what was in flight.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use core::cmp::Reverse;

use super::persist::RecordArgs;
use super::session::Session;
use super::{log, Broker, CloseReason, ConnId, ConnState, Event, Flow, Identity, OwnedWill};
use crate::codec::{ConnAck, Connect, ConnectReturnCode, Packet, Protocol};
use crate::time::Duration;

impl Broker {
    pub(super) fn on_connect(&mut self, conn: ConnId, c: &Connect<'_>) -> Flow {
        if self.connect_refused(conn, c) {
            return Flow::Closed;
        }
        // The user name: a certificate's CN where the listener says so (mosquitto's
        // `use_identity_as_username`, which also skips the password and anonymous checks), else
        // CONNECT's.
        let identity = self.conns.get(&conn).map(|cn| cn.identity().clone());
        let listener = self.conns.get(&conn).and_then(|cn| cn.listener);
        let (username, by_certificate) = match identity {
            Some(Identity::Certificate(name)) => (Some(name), true),
            Some(Identity::Missing) => {
                self.refuse_connect(conn, ConnectReturnCode::BadUserNameOrPassword);
                self.close(conn, CloseReason::Refused);
                return Flow::Closed;
            }
            _ => (c.username.map(ToString::to_string), false),
        };
        let (security, anonymous) = self.login_rules(listener);
        if !by_certificate && !security.authenticate(anonymous, c.username, c.password) {
            self.refuse_not_authorised(conn);
            return Flow::Closed;
        }
        let client_id = if c.client_id.is_empty() {
            if !c.clean_session {
                // MQTT-3.1.3-8
                self.refuse_connect(conn, ConnectReturnCode::IdentifierRejected);
                self.close(conn, CloseReason::Refused);
                return Flow::Closed;
            }
            // Deterministic, unlike mosquitto's random ids: the simulator replays byte for byte.
            // Skips an id a client chose for itself.
            loop {
                let id = format!("auto-{:016X}", self.next_auto_id);
                self.next_auto_id += 1;
                if !self.by_client_id.contains_key(id.as_str()) {
                    break Arc::<str>::from(id);
                }
            }
        } else {
            Arc::<str>::from(c.client_id)
        };

        if self.keepalive_refused(conn, c, &client_id) {
            return Flow::Closed;
        }

        // Session takeover (MQTT-3.1.4-2): the old connection goes, its will is published.
        if let Some(&old_sid) = self.by_client_id.get(&client_id) {
            if let Some(old_conn) = self.sessions.get(&old_sid).and_then(|s| s.conn()) {
                self.notice(|| {
                    format!("Client {client_id} already connected, closing old connection.")
                });
                // Unless both sides keep the session (clean session 0 on the old and the new
                // connection): then the session goes on and the will is not sent, as mosquitto
                // decides (handle_connect.c:193-198).
                let old_persistent = self.sessions.get(&old_sid).is_some_and(|s| !s.clean);
                if old_persistent && !c.clean_session {
                    if let Some(oc) = self.conns.get_mut(&old_conn) {
                        oc.will = None;
                    }
                }
                self.close(old_conn, CloseReason::TakenOver);
            }
        }
        if c.clean_session {
            if let Some(old_sid) = self.by_client_id.get(&client_id).copied() {
                self.destroy_session(old_sid);
            }
        }
        let (sid, session_present) = match self.by_client_id.get(&client_id) {
            Some(&sid) => (sid, true),
            None => {
                let sid = self.next_session;
                self.next_session += 1;
                self.sessions.insert(
                    sid,
                    Box::new(Session::new(client_id.clone(), c.clean_session)),
                );
                self.by_client_id.insert(client_id.clone(), sid);
                self.record_session(sid, || RecordArgs::Session);
                (sid, false)
            }
        };
        let mut username_changed = false;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.set_conn(Some(conn));
            s.clean = c.clean_session;
            s.listener = listener;
            username_changed = s.username.as_deref() != username.as_deref();
            s.username = username.as_deref().map(Box::from);
        }
        if username_changed {
            // Deliveries to the session while it is offline are checked against the ACL under
            // this name, after a restart too.
            self.record_session(sid, || RecordArgs::User);
        }
        if session_present && !c.clean_session {
            // "Session present" promises a session a power cut must not take back: the record
            // that created it (from an earlier connection) must be durable first.
            self.hold_for_journal(conn);
        }
        let keepalive_grace = Duration::from_millis(u64::from(c.keep_alive_s) * 1_500);
        let Some(cn) = self.conns.get_mut(&conn) else {
            return Flow::Closed;
        };
        cn.state = ConnState::Active(sid);
        cn.client_id = client_id.clone();
        if username.is_some() || c.password.is_some() || cn.login.is_some() {
            let login = cn.login.get_or_insert_with(Box::default);
            login.username = username.clone();
            login.password = c.password.map(Box::from);
        }
        cn.keepalive_grace = keepalive_grace;
        cn.will = c.will.map(|w| {
            Box::new(OwnedWill {
                topic: w.topic.to_string(),
                payload: w.payload.to_vec(),
                qos: w.qos,
                retain: w.retain,
            })
        });
        let deadline = if keepalive_grace == Duration::ZERO {
            None
        } else {
            Some(cn.last_rx + keepalive_grace)
        };
        cn.timer_at = deadline;
        let peer = cn.peer.to_string();
        if let Some(d) = deadline {
            self.timers.push(Reverse((d, conn)));
        }
        // Any previous connection of this client id was closed above, which counted it out.
        self.stats.clients_connected += 1;
        self.stats.clients_maximum = self.stats.clients_maximum.max(self.stats.clients_connected);
        if self.logs_notices() {
            // mosquitto names the address here without the listener ("from 1.2.3.4:5 as id").
            let peer = peer.split(" on port ").next().unwrap_or_default();
            let p = if c.protocol == Protocol::V311 { 2 } else { 1 };
            let mut line = format!(
                "New client connected from {peer} as {client_id} (p{p}, c{}, k{}",
                u8::from(c.clean_session),
                c.keep_alive_s
            );
            if let Some(u) = &username {
                line.push_str(&format!(", u'{u}'"));
            }
            line.push_str(").");
            self.events.push_back(Event::Log(line));
        }
        if self.config.verbose {
            let will_line = match &c.will {
                None => String::from("No will message specified."),
                Some(w) => format!(
                    "Will message specified ({} bytes) (r{}, q{}).\n\t{}",
                    w.payload.len(),
                    u8::from(w.retain),
                    w.qos.as_u8(),
                    w.topic
                ),
            };
            self.events.push_back(Event::Log(will_line));
        }
        self.send(
            conn,
            &Packet::ConnAck(ConnAck {
                // 3.1 has no session-present flag: mosquitto sets it for 3.1.1 only
                // (handle_connect.c:135-137).
                session_present: session_present && c.protocol == Protocol::V311,
                code: ConnectReturnCode::Accepted,
            }),
        );
        // Redeliver what was in flight, in its original order (MQTT-4.4.0-1, MQTT-4.6.0-1..4).
        self.resend_inflight(conn, sid);
        self.pump(sid);
        Flow::Open
    }

    pub(super) fn refuse_connect(&mut self, conn: ConnId, code: ConnectReturnCode) {
        self.send(
            conn,
            &Packet::ConnAck(ConnAck {
                session_present: false,
                code,
            }),
        );
    }

    /// CONNACK 5 and close, worded as mosquitto logs it: the CONNACK goes "to" the peer's address
    /// (there is no client id yet), then `Client <unknown> disconnected, not authorised.`.
    pub(super) fn refuse_not_authorised(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.client_id = Arc::from(log::peer_host(&c.peer.to_string()));
        }
        self.refuse_connect(conn, ConnectReturnCode::NotAuthorized);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.client_id = Arc::from("<unknown>");
        }
        self.close(conn, CloseReason::NotAuthorised);
    }
}
