//! One end of a modelled connection as tokio sees it: reads, writes, the close, and the
//! simulated timers they wait on.

use super::*;

/// Wait for `deadline` (simulated): Ready when it has passed (drive again), Pending with a
/// timer armed otherwise, or with none when there is nothing to wait for.
pub(super) fn arm(
    sleep: &mut Option<(Instant, Pin<Box<Sleep>>)>,
    deadline: Option<Instant>,
    now: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(t) = deadline else {
        *sleep = None;
        return Poll::Pending;
    };
    if t <= now {
        return Poll::Ready(());
    }
    if sleep.as_ref().is_none_or(|(at, _)| *at != t) {
        let d = std::time::Duration::from_micros(t.saturating_since(now).as_micros());
        *sleep = Some((t, Box::pin(tokio::time::sleep(d))));
    }
    match sleep.as_mut() {
        Some((_, s)) => match s.as_mut().poll(cx) {
            Poll::Ready(()) => {
                *sleep = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        },
        None => Poll::Pending,
    }
}

use std::future::Future;

/// One end of a modelled connection: `AsyncRead + AsyncWrite + Send + Unpin`.
pub struct LinkStream {
    net: Net,
    i: usize,
    side: Side,
    write_closed: bool,
    sleep: Option<(Instant, Pin<Box<Sleep>>)>,
    /// The writer's own timer (reader and writer may wait in different tasks).
    wsleep: Option<(Instant, Pin<Box<Sleep>>)>,
    /// Kept open for the connection's life (turmoil's view of it); no bytes go through it.
    _tcp: turmoil::net::TcpStream,
}

impl LinkStream {
    pub(super) fn new(net: Net, i: usize, side: Side, tcp: turmoil::net::TcpStream) -> Self {
        LinkStream {
            net,
            i,
            side,
            write_closed: false,
            sleep: None,
            wsleep: None,
            _tcp: tcp,
        }
    }
    pub fn conn(&self) -> ConnId {
        ConnId(u32::try_from(self.i).unwrap_or(u32::MAX))
    }
    pub fn side(&self) -> Side {
        self.side
    }
    /// Bounds this end's send buffer (an embedded stack's, e.g. lwIP's 5,744 bytes): writes
    /// wait while that many bytes are unacknowledged, as on a real socket. Unbounded by default.
    pub fn set_send_buffer(&self, bytes: usize) {
        let mut g = self.net.lock();
        if let Some(c) = g.conns.get_mut(self.i) {
            c.ends[side_idx(self.side)].send_buffer_bytes = Some(bytes.max(1));
        }
    }
}

/// lwIP's give-up after `TCP_MAXRTX`: `ERR_ABRT`, errno `ECONNABORTED` (src/api/err.c).
pub(super) fn gave_up_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "modelled TCP stack gave up retransmitting",
    )
}

pub(super) fn reset_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "modelled TCP connection reset",
    )
}

impl AsyncRead for LinkStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let now = sim_now();
        let net = this.net.clone();
        let mut g = net.lock();
        loop {
            g.drive(this.i, now);
            let Some(c) = g.conns.get_mut(this.i) else {
                return Poll::Ready(Err(io::ErrorKind::NotFound.into()));
            };
            let me = side_idx(this.side);
            if c.powered_off[me] {
                return Poll::Pending;
            }
            let end = &mut c.ends[me];
            if !end.inbox.is_empty() {
                let n = end.inbox.len().min(buf.remaining());
                let (a, b) = end.inbox.as_slices();
                let from_a = n.min(a.len());
                buf.put_slice(&a[..from_a]);
                buf.put_slice(&b[..n - from_a]);
                end.inbox.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if c.reset {
                return Poll::Ready(Err(reset_err()));
            }
            if end.gave_up {
                return Poll::Ready(Err(gave_up_err()));
            }
            if end.eof {
                return Poll::Ready(Ok(()));
            }
            end.read_waker = Some(cx.waker().clone());
            let deadline = c.link.poll_timeout();
            if arm(&mut this.sleep, deadline, now, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for LinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let now = sim_now();
        let net = this.net.clone();
        let mut g = net.lock();
        loop {
            g.drive(this.i, now);
            let Some(c) = g.conns.get_mut(this.i) else {
                return Poll::Ready(Err(io::ErrorKind::NotFound.into()));
            };
            if c.reset {
                return Poll::Ready(Err(reset_err()));
            }
            if c.ends[side_idx(this.side)].gave_up {
                return Poll::Ready(Err(gave_up_err()));
            }
            if this.write_closed {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let dir = this.side.sending();
            let me = side_idx(this.side);
            let room = match c.ends[me].send_buffer_bytes {
                None => buf.len(),
                Some(limit) => {
                    let unacked = usize::try_from(c.link.unacked(dir)).unwrap_or(usize::MAX);
                    limit.saturating_sub(unacked).min(buf.len())
                }
            };
            if room > 0 || buf.is_empty() {
                c.link.handle_send(now, dir, &buf[..room]);
                g.route(this.i);
                return Poll::Ready(Ok(room));
            }
            // Full: wait for acknowledgements (or a reset), driving the link's timers meanwhile.
            c.ends[me].write_waker = Some(cx.waker().clone());
            let deadline = c.link.poll_timeout();
            if arm(&mut this.wsleep, deadline, now, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed {
            this.write_closed = true;
            let now = sim_now();
            let mut g = this.net.lock();
            if let Some(c) = g.conns.get_mut(this.i) {
                c.close_end(now, this.side);
            }
            g.route(this.i);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LinkStream {
    /// Dropping an end is `close()` on the socket (what PubSubClient's `stop()` and esp-mqtt's
    /// transport close do): graceful, FIN after its queued bytes, unless it leaves received
    /// bytes unread (then RST). See `Conn::close_app`. After a half-close
    /// ([`AsyncWriteExt::shutdown`](tokio::io::AsyncWriteExt::shutdown)) it still stops reading.
    fn drop(&mut self) {
        let now = sim_now();
        let mut g = self.net.lock();
        if g.frozen {
            return;
        }
        if let Some(c) = g.conns.get_mut(self.i) {
            c.close_app(now, self.side);
        }
        g.route(self.i);
    }
}
