//! Closing a connection: its log line, its session detached (or destroyed when clean), the
//! publishers it held paused let go, and its will published unless it said DISCONNECT.

use alloc::format;
use alloc::sync::Arc;

use super::persist::RecordArgs;
use super::route::Release;
use super::session::Message;
use super::{Broker, CloseReason, ConnId, ConnState, Event, SessionId};
use crate::topic;

impl Broker {
    /// Closes `conn`: detaches its session (destroyed if clean), publishes the will unless the
    /// client said DISCONNECT, and (unless the socket is already gone) asks the caller to close it
    /// once the bytes still pending for it, a refusing CONNACK say, are written.
    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        c.rx.clear();
        let id = c.client_id.clone();
        let state = c.state;
        let will = c.will.take();
        let username = c.username().map(alloc::string::String::from);
        let listener = c.listener;
        let peer = c.peer.clone();
        let blocked_on = c.withheld.take().map(|w| w.blocked_on).unwrap_or_default();
        match reason {
            CloseReason::Disconnect => self.notice(|| format!("Client {id} disconnected.")),
            CloseReason::SocketClosed => {
                self.notice(|| format!("Client {id} closed its connection."))
            }
            CloseReason::KeepAliveTimeout => {
                self.notice(|| format!("Client {id} has exceeded timeout, disconnecting."))
            }
            CloseReason::ConnectTimeout => self
                .notice(|| format!("Client {peer} did not send CONNECT in time, disconnecting.")),
            CloseReason::ProtocolError => {
                self.notice(|| format!("Client {id} disconnected due to protocol error."))
            }
            CloseReason::NotAuthorised => {
                self.notice(|| format!("Client {id} disconnected, not authorised."))
            }
            CloseReason::TakenOver | CloseReason::Refused => {}
        }
        if reason == CloseReason::SocketClosed {
            self.forget_conn(conn);
        } else {
            self.events.push_back(Event::Close(conn));
        }
        for sid in blocked_on {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.blocking.remove(&conn);
            }
        }
        if let ConnState::Active(sid) = state {
            // Offline, the queue bound drops instead of blocking: let the publishers go.
            self.release_blocked(sid, Release::Now);
            let clean = match self.sessions.get_mut(&sid) {
                Some(s) if s.conn() == Some(conn) => {
                    s.set_conn(None);
                    s.clean
                }
                _ => false,
            };
            if clean {
                self.destroy_session(sid);
            }
            self.stats.clients_connected = self.stats.clients_connected.saturating_sub(1);
        }
        if reason != CloseReason::Disconnect && reason != CloseReason::NotAuthorised {
            if let Some(w) = will.filter(|w| {
                let denied = topic::reserved_for_broker(&w.topic)
                    || !self.will_allowed(listener, &id, username.as_deref(), &w.topic);
                if denied {
                    let t = w.topic.clone();
                    self.log(|| format!("Denied will of {id} to '{t}'."));
                }
                !denied
            }) {
                let msg = Arc::new(Message {
                    topic: w.topic,
                    payload: w.payload,
                    forward_after: 0,
                });
                if w.retain {
                    self.retain(&msg, w.qos);
                }
                self.route(&msg, w.qos);
            }
        }
    }

    pub(super) fn destroy_session(&mut self, sid: SessionId) {
        self.release_blocked(sid, Release::Now);
        self.record_session(sid, || RecordArgs::SessionGone);
        let Some(s) = self.sessions.remove(&sid) else {
            return;
        };
        for filter in s.subs.keys() {
            self.tree.remove(filter, sid);
        }
        if self.by_client_id.get(&s.client_id) == Some(&sid) {
            self.by_client_id.remove(&s.client_id);
        }
    }
}
