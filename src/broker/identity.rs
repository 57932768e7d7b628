//! Who a connection's transport says its client is, before any CONNECT: a TLS listener with
//! mosquitto's `use_identity_as_username` takes the user name from the client certificate's
//! subject CN instead of CONNECT's user name field.

use alloc::string::String;

/// The user name source of one connection, given to [`super::Broker::handle_accept_as`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Identity {
    /// CONNECT's user name field is the user name (plain TCP; TLS without
    /// `use_identity_as_username`). [`super::Broker::handle_accept`] uses this.
    #[default]
    FromConnect,
    /// The transport proved this user name (a verified client certificate's CN). CONNECT's user
    /// name and password are ignored and the client is not anonymous, as in mosquitto.
    Certificate(String),
    /// The listener takes the user name from the certificate but the certificate has none (no
    /// CN): CONNECT is refused with CONNACK 4 (bad user name or password), as in mosquitto.
    Missing,
}
