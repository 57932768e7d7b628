//! A connection's peer address, kept compact for the log lines that name it.

use alloc::boxed::Box;
use alloc::string::ToString;

/// The peer's address as the caller named it, for log lines. The usual form, an IPv4 socket
/// address with the listening port (`127.0.0.1:50000 on port 1883`), is kept in 16 bytes
/// without an allocation; any other text as it came. Shown, it is the caller's text exactly.
#[derive(Debug, Clone)]
pub(super) enum Peer {
    V4 {
        addr: core::net::SocketAddrV4,
        on_port: Option<u16>,
    },
    /// Anything else (an IPv6 peer, a simulator's name): rare, so boxed twice to keep the
    /// record at 16 bytes.
    Text(Box<Box<str>>),
}

impl Peer {
    pub(super) fn new(text: &str) -> Peer {
        let (addr, on_port) = match text.split_once(" on port ") {
            Some((a, p)) => (a, p.parse::<u16>().ok().map(Some)),
            None => (text, Some(None)),
        };
        if let (Ok(addr), Some(on_port)) = (addr.parse::<core::net::SocketAddrV4>(), on_port) {
            let peer = Peer::V4 { addr, on_port };
            // Only when showing it gives back the same text (no leading zeros, say).
            if peer.to_string() == text {
                return peer;
            }
        }
        Peer::Text(Box::new(Box::from(text)))
    }
}

impl core::fmt::Display for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Peer::V4 {
                addr,
                on_port: Some(p),
            } => write!(f, "{addr} on port {p}"),
            Peer::V4 {
                addr,
                on_port: None,
            } => write!(f, "{addr}"),
            Peer::Text(t) => f.write_str(t),
        }
    }
}
