//! The mqsim broker's server: everything around the core's sans-IO [`mqsim::broker::Broker`] that
//! a broker process needs, and nothing the core must not know (sockets, files, clocks, signals).
//!
//! - [`start`]: the start-up path, one for every place the broker runs: `mqsim broker` on the
//!   real machine ([`start::run`]) and the simulator's broker host (its own [`start::Host`]).
//! - [`adapter`]: the tokio adapter, one loop over any `AsyncRead + AsyncWrite` stream (real TCP
//!   or turmoil's simulated TCP).
//! - [`conn`]: one connection's I/O (read, write, close), the same for every stream.
//! - [`config`]: mosquitto.conf, read as mosquitto 2.0 reads it.
//! - `reactor`: real TCP polled through one epoll set (unix), for `mqsim broker`.
//! - [`tls`]: TLS listeners (rustls).
//! - [`journal`]: the persistence journal as a file.
//! - [`security`]: `password_file` and `acl_file`, read and re-read on SIGHUP.
//! - [`log`]: mosquitto's log lines and destinations.
// No unsafe code but one call, in `reactor` (registering the epoll set's own descriptor).
#![deny(unsafe_code)]

pub mod adapter;
pub mod config;
pub mod conn;
pub mod journal;
pub mod log;
#[cfg(unix)]
pub mod reactor;
pub mod security;
pub mod start;
pub mod tls;

pub use adapter::{spawn_broker, spawn_broker_with_journal, BrokerHandle, JournalStore, LogSink};
pub use start::{run, serve, Host, Options};
