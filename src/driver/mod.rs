//! One driver contract for every state machine in the crate, and the one drain loop that every
//! driver uses: the tokio adapter, the in-memory driver ([`mem::MemNet`]), the tests, the
//! benchmark and the simulator.
//!
//! The contract (after str0m's `Rtc::poll_output` and quinn-proto's `Connection`): feed an input
//! (`handle_*`, each with `now`), then call [`Endpoint::poll_output`] until it returns
//! [`Output::Timeout`]: bytes to send ([`Output::Transmit`]) come first, then events, and the
//! timeout last, which says when to call [`Endpoint::handle_timeout`] if no other input comes.
//! [`drain`] is that loop.

#[cfg(target_has_atomic = "ptr")]
pub mod mem;

use alloc::vec::Vec;
use core::fmt::Debug;

use crate::time::Instant;

/// One output of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<C, E> {
    /// Bytes for connection `C` were moved into the caller's buffer: write them, then report
    /// with [`Endpoint::handle_sent`] how many the socket took.
    Transmit(C),
    /// Something for the caller: a log line, a delivered message, close or pause a connection...
    Event(E),
    /// Nothing more to do until this time (`None`: until the next input). Ends a drain.
    Timeout(Option<Instant>),
}

/// The inputs and the output of a sans-IO endpoint: [`crate::broker::Broker`] (one `Conn` per
/// accepted socket) and [`crate::client::Client`] (one transport at a time, `Conn = ()`).
/// Opening a connection is endpoint-specific (`Broker::handle_accept`,
/// `Client::handle_connected`); everything after it goes through here.
pub trait Endpoint {
    /// Names a connection of this endpoint.
    type Conn: Copy + Ord + Debug;
    /// What the endpoint asks of its caller besides sending bytes (its `Event` type).
    type Event;
    /// Bytes read from `conn`.
    fn handle_bytes(&mut self, now: Instant, conn: Self::Conn, data: &[u8]);
    /// The socket of `conn` took `n` more of the bytes handed out by `Transmit`.
    fn handle_sent(&mut self, now: Instant, conn: Self::Conn, n: usize);
    /// The transport of `conn` closed or failed.
    fn handle_closed(&mut self, now: Instant, conn: Self::Conn);
    /// Time passed; a call before the timeout is a no-op.
    fn handle_timeout(&mut self, now: Instant);
    /// The next output; `buf` receives the bytes of a `Transmit` (it should be empty).
    fn poll_output(&mut self, buf: &mut Vec<u8>) -> Output<Self::Conn, Self::Event>;
}

/// Drains every output of `ep` after an input: `on_output` gets each `Transmit` (with the bytes,
/// which it may take) and each `Event`, in order; returns the timeout that ends the drain.
pub fn drain<T: Endpoint + ?Sized>(
    ep: &mut T,
    buf: &mut Vec<u8>,
    mut on_output: impl FnMut(Output<T::Conn, T::Event>, &mut Vec<u8>),
) -> Option<Instant> {
    loop {
        buf.clear();
        match ep.poll_output(buf) {
            Output::Timeout(t) => return t,
            out => on_output(out, buf),
        }
    }
}

/// One output of [`drain_all`], with the bytes of a transmit owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drained<C, E> {
    /// Bytes for this connection, taken from the endpoint.
    Transmit(C, Vec<u8>),
    /// An event of the endpoint, in its order among the transmits.
    Event(E),
}

/// [`drain`] into a list, for drivers that must feed outputs back as inputs (a transmit becomes
/// the peer's bytes and this endpoint's `handle_sent`), which cannot happen while draining.
#[allow(clippy::type_complexity)]
pub fn drain_all<T: Endpoint + ?Sized>(
    ep: &mut T,
    buf: &mut Vec<u8>,
) -> (Vec<Drained<T::Conn, T::Event>>, Option<Instant>) {
    let mut outs = Vec::new();
    let timeout = drain(ep, buf, |out, bytes| match out {
        Output::Transmit(c) => outs.push(Drained::Transmit(c, core::mem::take(bytes))),
        Output::Event(e) => outs.push(Drained::Event(e)),
        Output::Timeout(_) => {}
    });
    (outs, timeout)
}

/// [`drain`] for an endpoint with one transport (a client, a device): its bytes appended to
/// `writes`, its events to `events`; returns the timeout.
pub fn drain_into<T: Endpoint<Conn = ()> + ?Sized>(
    ep: &mut T,
    buf: &mut Vec<u8>,
    writes: &mut Vec<u8>,
    events: &mut Vec<T::Event>,
) -> Option<Instant> {
    drain(ep, buf, |out, bytes| match out {
        Output::Transmit(()) => writes.extend_from_slice(bytes),
        Output::Event(e) => events.push(e),
        Output::Timeout(_) => {}
    })
}
