//! Users and ACLs together: what the broker asks at CONNECT, PUBLISH, SUBSCRIBE, delivery and
//! will time. Built by the caller from `password_file` and `acl_file` (the core reads no files)
//! and handed over with [`super::Broker::set_security`], at start and on every reload.

use super::acl::{Access, AclFile};
#[cfg(feature = "auth")]
use super::auth::PasswordFile;

/// The parsed `password_file` and `acl_file`, either absent.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// The `password_file`: with it, a client with a user name needs that user's password.
    #[cfg(feature = "auth")]
    pub passwords: Option<PasswordFile>,
    /// The `acl_file`: with it, every topic read and write is checked; without, all are allowed.
    pub acl: Option<AclFile>,
}

impl Security {
    /// Whether a CONNECT with this user name and password is let in, as mosquitto decides
    /// (`mosquitto_unpwd_check`): without a `password_file`, `allow_anonymous` alone decides, for
    /// every client (a user name is not checked against anything); with one, a client with a
    /// user name needs that user's password, and one without is let in if `allow_anonymous`.
    pub fn authenticate(
        &self,
        allow_anonymous: bool,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> bool {
        #[cfg(feature = "auth")]
        if let (Some(file), Some(user)) = (&self.passwords, username) {
            return file.verify(user, password);
        }
        let _ = (username, password);
        allow_anonymous
    }

    /// Whether the client may read or write `topic`: always without an `acl_file`.
    pub fn allows(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.check(client_id, username, topic, access),
        }
    }

    /// Whether a SUBSCRIBE to `filter` is granted: always without an `acl_file`.
    pub fn can_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.can_subscribe(client_id, username, filter),
        }
    }
}
