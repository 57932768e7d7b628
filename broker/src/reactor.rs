//! Real TCP for many idle connections: sockets polled through one epoll set of our own, not each
//! registered with tokio.
//!
//! A `tokio::net::TcpStream` costs a registration in tokio's I/O driver (`ScheduledIo`, a
//! 128-byte aligned record in an `Arc`, 256 bytes with malloc's slack), which alone is a third of
//! what a whole mosquitto connection costs; tokio has no way to keep a socket registered for
//! less. [`PolledTcp`] is a socket in a [`Reactor`]: one `mio::Poll` (epoll on Linux) whose own
//! file descriptor is registered with tokio once ([`AsyncFd`]), a task that turns its events into
//! wake-ups, and a table with one 24-byte entry per socket (readiness and the waker to call). The
//! stream is `AsyncRead + AsyncWrite` like any other, so the broker task serves it exactly as it
//! serves tokio's TCP, TLS over it, or the simulator's streams; only `mqsim broker`'s host
//! ([`crate::start::RealHost`]) makes them.
//!
//! One task at a time polls a stream (both directions with one waker: the entry keeps the last).

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::{Events, Interest, Token};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Events taken from the epoll set per call.
const EVENTS_PER_POLL: usize = 256;

const READABLE: u8 = 1;
const WRITABLE: u8 = 2;

/// The epoll set and what each of its sockets is ready for.
pub struct Reactor {
    registry: mio::Registry,
    table: Mutex<Table>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reactor")
    }
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

/// One socket's readiness. `seq` counts the events seen, so that a read or write that found the
/// socket empty (or full) clears its bit only if no event came in between.
#[derive(Default)]
struct Entry {
    ready: u8,
    seq: u32,
    waker: Option<Waker>,
}

impl Reactor {
    /// A new epoll set, and the task that waits on it, on the current tokio runtime. The task
    /// ends when the reactor is dropped and its set next reports.
    pub fn start() -> io::Result<Arc<Reactor>> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        // SAFETY: `mio::Poll` owns its epoll descriptor for its whole life and always returns
        // that same one from `as_raw_fd`; the `AsyncFd` owns the `Poll`, so the descriptor stays
        // open and the same until the registration is dropped with it.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        let reactor = Arc::new(Reactor {
            registry,
            table: Mutex::new(Table::default()),
        });
        tokio::spawn(run(fd, Arc::downgrade(&reactor)));
        Ok(reactor)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A poisoned lock only means a panic elsewhere while it was held; the table stays usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes the epoll set's events as tokio reports its descriptor readable, and wakes the tasks of
/// the sockets they name.
async fn run(mut fd: AsyncFd<mio::Poll>, reactor: Weak<Reactor>) {
    let mut events = Events::with_capacity(EVENTS_PER_POLL);
    let mut wake: Vec<Waker> = Vec::new();
    loop {
        let Ok(mut guard) = fd.readable_mut().await else {
            return;
        };
        let Some(r) = reactor.upgrade() else {
            return;
        };
        match guard
            .get_inner_mut()
            .poll(&mut events, Some(Duration::ZERO))
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        let n = events.iter().count();
        {
            let mut table = r.table();
            for ev in events.iter() {
                let Some(e) = table.entries.get_mut(ev.token().0) else {
                    continue;
                };
                let gone = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
                if ev.is_readable() || gone {
                    e.ready |= READABLE;
                }
                if ev.is_writable() || gone {
                    e.ready |= WRITABLE;
                }
                e.seq = e.seq.wrapping_add(1);
                wake.extend(e.waker.take());
            }
        }
        for w in wake.drain(..) {
            w.wake();
        }
        // Fewer than a full batch: the set is empty now, and a new event is a new edge.
        if n < EVENTS_PER_POLL {
            guard.clear_ready();
        }
    }
}

/// A TCP stream polled through a [`Reactor`].
pub struct PolledTcp {
    io: mio::net::TcpStream,
    token: u32,
    reactor: Arc<Reactor>,
}

impl std::fmt::Debug for PolledTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolledTcp")
            .field("token", &self.token)
            .finish()
    }
}

impl PolledTcp {
    /// Puts a connected socket into the reactor's set (it is made non-blocking).
    pub fn new(stream: std::net::TcpStream, reactor: &Arc<Reactor>) -> io::Result<PolledTcp> {
        stream.set_nonblocking(true)?;
        let mut io = mio::net::TcpStream::from_std(stream);
        let token = {
            let mut table = reactor.table();
            let t = match table.free.pop() {
                Some(t) => t,
                None => {
                    table.entries.push(Entry::default());
                    (table.entries.len() - 1) as u32
                }
            };
            // Tried at once: a socket may be readable before its first event.
            table.entries[t as usize] = Entry {
                ready: READABLE | WRITABLE,
                seq: 0,
                waker: None,
            };
            t
        };
        let both = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = reactor
            .registry
            .register(&mut io, Token(token as usize), both)
        {
            reactor.table().free.push(token);
            return Err(e);
        }
        Ok(PolledTcp {
            io,
            token,
            reactor: reactor.clone(),
        })
    }

    /// Runs `f` on the socket if it may be ready for `bit`; when it would block, waits for the
    /// next event (unless one came in while `f` ran).
    fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        bit: u8,
        mut f: impl FnMut(&mut mio::net::TcpStream) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let seq = {
                let mut table = self.reactor.table();
                let e = &mut table.entries[self.token as usize];
                if e.ready & bit == 0 {
                    set_waker(e, cx);
                    return Poll::Pending;
                }
                e.seq
            };
            match f(&mut self.io) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let mut table = self.reactor.table();
                    let e = &mut table.entries[self.token as usize];
                    if e.seq == seq {
                        e.ready &= !bit;
                        set_waker(e, cx);
                        return Poll::Pending;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

fn set_waker(e: &mut Entry, cx: &Context<'_>) {
    if !e.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        e.waker = Some(cx.waker().clone());
    }
}

impl Drop for PolledTcp {
    fn drop(&mut self) {
        let _ = self.reactor.registry.deregister(&mut self.io);
        let mut table = self.reactor.table();
        if let Some(e) = table.entries.get_mut(self.token as usize) {
            *e = Entry::default();
            table.free.push(self.token);
        }
    }
}

impl AsyncRead for PolledTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = match this.poll_io(cx, READABLE, |io| io.read(buf.initialize_unfilled())) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PolledTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(cx, WRITABLE, |io| io.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.shutdown(std::net::Shutdown::Write))
    }
}
