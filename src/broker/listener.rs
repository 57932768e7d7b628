//! Security per listener (mosquitto's `per_listener_settings true`): each listener its own
//! `allow_anonymous`, users, ACL and `max_connections`. The caller numbers its listeners, installs
//! each one's set with [`Broker::set_listener_security`], and says which listener a connection
//! came through ([`Broker::handle_accept_on`]). A listener without its own set, and a connection
//! accepted without a listener, use the broker-wide ones ([`Broker::set_security`] and
//! [`super::Config::allow_anonymous`]); that is mosquitto's `per_listener_settings false`.

use alloc::format;
use alloc::vec::Vec;

use super::{Access, Broker, CloseReason, ConnId, ConnState, Identity, Security, SessionId};
use crate::time::Instant;

/// A listener, numbered by the caller (e.g. its position in the configuration file).
pub type ListenerId = u16;

/// One listener's own security settings.
#[derive(Clone, Debug)]
pub struct ListenerSecurity {
    /// Accept clients without a user name on this listener (as [`super::Config::allow_anonymous`]).
    pub allow_anonymous: bool,
    /// Connections open at once through this listener (mosquitto `max_connections` under a
    /// `listener`); the broker-wide [`super::Config::max_connections`] still bounds the total.
    pub max_connections: usize,
    /// This listener's `password_file` and `acl_file`.
    pub security: Security,
}

/// A listener's settings and how many connections it has open.
#[derive(Debug)]
pub(super) struct ListenerState {
    pub settings: ListenerSecurity,
    pub connections: usize,
}

impl Broker {
    /// Installs `listener`'s own security (at start, or on a reload). As
    /// [`Broker::set_security`] does for the broker-wide set, every client connected through that
    /// listener is checked again and, if it no longer passes, disconnected without its will.
    pub fn set_listener_security(
        &mut self,
        now: Instant,
        listener: ListenerId,
        settings: ListenerSecurity,
    ) {
        self.advance(now);
        let connections = self
            .conns
            .values()
            .filter(|c| c.listener == Some(listener))
            .count();
        self.listeners.insert(
            listener,
            ListenerState {
                settings,
                connections,
            },
        );
        self.recheck_logins(Some(listener));
        self.run_resumes();
    }

    /// [`Broker::handle_accept_as`] for a connection that came through `listener` (see
    /// [`Broker::set_listener_security`]). Returns `None`, and the caller closes the socket,
    /// when that listener's `max_connections`, or the broker's, are open.
    pub fn handle_accept_on(
        &mut self,
        now: Instant,
        peer: &str,
        identity: Identity,
        listener: ListenerId,
    ) -> Option<ConnId> {
        self.advance(now);
        if let Some(l) = self.listeners.get(&listener) {
            if l.connections >= l.settings.max_connections {
                self.notice(|| {
                    format!("Refusing connection from {peer}: max_connections reached.")
                });
                return None;
            }
        }
        let id = self.accept(peer, identity, Some(listener))?;
        if let Some(l) = self.listeners.get_mut(&listener) {
            l.connections += 1;
        }
        Some(id)
    }

    /// Removes a connection's state, counting it out of its listener.
    pub(super) fn forget_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(l) = c.listener.and_then(|l| self.listeners.get_mut(&l)) {
                l.connections = l.connections.saturating_sub(1);
            }
        }
    }

    /// The users and `allow_anonymous` that decide a login through `listener`.
    pub(super) fn login_rules(&self, listener: Option<ListenerId>) -> (&Security, bool) {
        match listener.and_then(|l| self.listeners.get(&l)) {
            Some(l) => (&l.settings.security, l.settings.allow_anonymous),
            None => (&self.security, self.config.allow_anonymous),
        }
    }

    /// Every connected client (through `listener`, or through any when `None`) logged in by user
    /// name and password is checked again; one that no longer passes is disconnected.
    pub(super) fn recheck_logins(&mut self, listener: Option<ListenerId>) {
        let refused: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, ConnState::Active(_)) && !c.closing)
            .filter(|(_, c)| listener.is_none() || c.listener == listener)
            // A user name proved by a client certificate has no password to check again: it got
            // in without one (`use_identity_as_username`), and stays.
            .filter(|(_, c)| !matches!(c.identity(), Identity::Certificate(_)))
            .filter(|(_, c)| {
                let (security, anonymous) = self.login_rules(c.listener);
                !security.authenticate(anonymous, c.username(), c.password())
            })
            .map(|(&id, _)| id)
            .collect();
        for conn in refused {
            self.close(conn, CloseReason::NotAuthorised);
        }
    }

    /// Whether an ACL check for session `sid` passes. Its listener's ACL decides; a session whose
    /// listener is not known (restored from the journal, not connected since) while listeners
    /// have their own sets passes only if every listener's ACL lets it.
    pub(super) fn acl_allows(
        &self,
        sid: SessionId,
        check: impl Fn(&Security, &str, Option<&str>) -> bool,
    ) -> bool {
        let Some(s) = self.sessions.get(&sid) else {
            return false;
        };
        let user = s.username.as_deref();
        match s.listener.and_then(|l| self.listeners.get(&l)) {
            Some(l) => check(&l.settings.security, &s.client_id, user),
            None if s.listener.is_none() && !self.listeners.is_empty() => self
                .listeners
                .values()
                .all(|l| check(&l.settings.security, &s.client_id, user)),
            None => check(&self.security, &s.client_id, user),
        }
    }

    /// Whether a will from a client connected through `listener` may be published to `topic`.
    pub(super) fn will_allowed(
        &self,
        listener: Option<ListenerId>,
        id: &str,
        user: Option<&str>,
        topic: &str,
    ) -> bool {
        let security = match listener.and_then(|l| self.listeners.get(&l)) {
            Some(l) => &l.settings.security,
            None => &self.security,
        };
        security.allows(id, user, topic, Access::Write)
    }
}
