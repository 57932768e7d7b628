//! The registry without tokio: opening a connection, its handshake's outcome, reads, writes,
//! closes and timers as plain calls, for the direct engine ([`crate::engine`]), which has no
//! wakers and asks which connections changed ([`Net::take_touched`]). The turmoil adapter
//! ([`LinkStream`], [`Net::connect`]) opens and abandons connections through the same calls.

use super::*;

/// Where a connection's handshake is, as its client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectState {
    Pending,
    Established,
    /// SYN retries spent, or reset while connecting.
    Failed,
}

/// What a read from one end gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// So many bytes were appended to the buffer.
    Data(usize),
    /// The peer's FIN: end of stream.
    Eof,
    /// The connection was reset (`ConnectionReset`).
    Reset,
    /// This end's stack gave up retransmitting (`ConnectionAborted`).
    GaveUp,
    /// Nothing yet.
    Pending,
}

impl ReadOutcome {
    /// The error a socket read returns for this outcome, if it is one.
    pub fn error(self) -> Option<io::Error> {
        match self {
            ReadOutcome::Reset => Some(endpoint::reset_err()),
            ReadOutcome::GaveUp => Some(endpoint::gave_up_err()),
            _ => None,
        }
    }
}

impl Net {
    /// A new connection from `client` to `server` under a link made from `cfg`, its standing
    /// faults applied and its first SYN sent; returns its index.
    pub fn open(
        &self,
        client: SocketAddr,
        server: SocketAddr,
        cfg: LinkConfig,
        tag: Option<u32>,
    ) -> io::Result<usize> {
        let mut g = self.lock();
        let i = g.conns.len();
        let link = Link::new(cfg, crate::seed::link(g.seed, i as u64))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let id = ConnId(u32::try_from(i).unwrap_or(u32::MAX));
        g.conns.push(Conn {
            id,
            client,
            server,
            link,
            ends: [End::default(), End::default()],
            established: false,
            failed: false,
            reset: false,
            powered_off: [false; 2],
            server_taken: false,
            connect_waker: None,
            tag,
        });
        // Standing faults for everyone, then for this client, before the first SYN.
        let mut standing = g.standing.get(&None).cloned().unwrap_or_default();
        if let Some(t) = tag.and_then(|t| g.standing.get(&Some(t))) {
            standing.partition.extend(t.partition.iter().copied());
            for d in 0..2 {
                standing.dead[d].extend(t.dead[d].iter().copied());
            }
        }
        if let Some(c) = g.conns.get_mut(i) {
            let now = sim_now();
            for &key in &standing.partition {
                c.link.set_partition_by(now, key, true);
            }
            for dir in [Dir::Up, Dir::Down] {
                for &key in &standing.dead[dir_idx(dir)] {
                    c.link.set_dead_by(now, dir, key, true);
                }
            }
            c.link.handle_connect(now);
        }
        g.route(i);
        g.touch(i);
        Ok(i)
    }

    /// The client gives up connecting `i` before the connect returned: in SYN-SENT the attempt
    /// is freed silently ([`Link::handle_abandon`]); if the handshake had completed already, the
    /// socket is closed like any other.
    pub fn abandon(&self, i: usize) {
        let now = sim_now();
        let mut g = self.lock();
        if g.frozen {
            return;
        }
        g.drive(i, now);
        if let Some(c) = g.conns.get_mut(i) {
            if c.established {
                c.close_app(now, Side::Client);
            } else {
                c.link.handle_abandon(now);
            }
        }
        g.route(i);
        g.touch(i);
    }

    /// Where the handshake of `i` is, after advancing its link to now.
    pub fn connect_state(&self, i: usize) -> ConnectState {
        let now = sim_now();
        let mut g = self.lock();
        g.drive(i, now);
        match g.conns.get(i) {
            Some(c) if c.established => ConnectState::Established,
            Some(c) if c.failed || c.reset => ConnectState::Failed,
            Some(_) => ConnectState::Pending,
            None => ConnectState::Failed,
        }
    }

    /// The server takes connection `i` once its handshake completed: `Some(true)` taken now,
    /// `Some(false)` failed (never to be taken), `None` not yet (or taken already).
    pub fn take_server(&self, i: usize) -> Option<bool> {
        let now = sim_now();
        let mut g = self.lock();
        g.drive(i, now);
        let c = g.conns.get_mut(i)?;
        if c.server_taken {
            return None;
        }
        if c.established {
            c.server_taken = true;
            return Some(true);
        }
        if c.failed || c.reset {
            c.server_taken = true;
            return Some(false);
        }
        None
    }

    /// The client's address of `i`.
    pub fn client_addr(&self, i: usize) -> Option<SocketAddr> {
        self.lock().conns.get(i).map(|c| c.client)
    }

    /// The tag `i` was opened with.
    pub fn tag_of(&self, i: usize) -> Option<u32> {
        self.lock().conns.get(i).and_then(|c| c.tag)
    }

    /// Reads at most `max` bytes from `side` of `i` into `buf`, as [`LinkStream`] reads.
    pub fn read(&self, i: usize, side: Side, buf: &mut Vec<u8>, max: usize) -> ReadOutcome {
        let now = sim_now();
        let mut g = self.lock();
        g.drive(i, now);
        let Some(c) = g.conns.get_mut(i) else {
            return ReadOutcome::Reset;
        };
        let me = side_idx(side);
        if c.powered_off[me] {
            return ReadOutcome::Pending;
        }
        let end = &mut c.ends[me];
        if !end.inbox.is_empty() {
            let n = end.inbox.len().min(max);
            buf.extend(end.inbox.drain(..n));
            return ReadOutcome::Data(n);
        }
        if c.reset {
            return ReadOutcome::Reset;
        }
        if end.gave_up {
            return ReadOutcome::GaveUp;
        }
        if end.eof {
            return ReadOutcome::Eof;
        }
        ReadOutcome::Pending
    }

    /// Writes what fits of `bytes` into `side`'s send buffer of `i`, as [`LinkStream`] writes:
    /// `Ok(0)` when it is full.
    pub fn write(&self, i: usize, side: Side, bytes: &[u8]) -> io::Result<usize> {
        let now = sim_now();
        let mut g = self.lock();
        g.drive(i, now);
        let Some(c) = g.conns.get_mut(i) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        if c.reset {
            return Err(endpoint::reset_err());
        }
        if c.ends[side_idx(side)].gave_up {
            return Err(endpoint::gave_up_err());
        }
        let dir = side.sending();
        let room = match c.ends[side_idx(side)].send_buffer_bytes {
            None => bytes.len(),
            Some(limit) => {
                let unacked = usize::try_from(c.link.unacked(dir)).unwrap_or(usize::MAX);
                limit.saturating_sub(unacked).min(bytes.len())
            }
        };
        if room > 0 {
            c.link.handle_send(now, dir, &bytes[..room]);
            g.route(i);
            g.touch(i);
        }
        Ok(room)
    }

    /// `side` of `i` sends its FIN (a half-close, `shutdown(SHUT_WR)`).
    pub fn shutdown(&self, i: usize, side: Side) {
        let now = sim_now();
        let mut g = self.lock();
        if let Some(c) = g.conns.get_mut(i) {
            c.close_end(now, side);
        }
        g.route(i);
        g.touch(i);
    }

    /// `side`'s application closes its socket of `i` (a dropped [`LinkStream`]).
    pub fn close_socket(&self, i: usize, side: Side) {
        let now = sim_now();
        let mut g = self.lock();
        if g.frozen {
            return;
        }
        if let Some(c) = g.conns.get_mut(i) {
            c.close_app(now, side);
        }
        g.route(i);
        g.touch(i);
    }

    /// Bounds `side`'s send buffer of `i` ([`LinkStream::set_send_buffer`]).
    pub fn set_send_buffer_of(&self, i: usize, side: Side, bytes: usize) {
        let mut g = self.lock();
        if let Some(c) = g.conns.get_mut(i) {
            c.ends[side_idx(side)].send_buffer_bytes = Some(bytes.max(1));
        }
    }

    /// When the link of `i` next wants [`Net::drive`].
    pub fn timeout_of(&self, i: usize) -> Option<Instant> {
        self.lock().conns.get(i).and_then(|c| c.link.poll_timeout())
    }

    /// Advances the link of `i` to now.
    pub fn drive(&self, i: usize) {
        let now = sim_now();
        let mut g = self.lock();
        g.drive(i, now);
        g.touch(i);
    }

    /// How many connections were opened.
    pub fn conn_count(&self) -> usize {
        self.lock().conns.len()
    }

    /// Starts listing the connections whose link said something or was acted on.
    pub fn track_touched(&self) {
        self.lock().touched.get_or_insert_with(Vec::new);
    }

    /// The connections touched since the last call (with repeats).
    pub fn take_touched(&self, into: &mut Vec<usize>) {
        if let Some(t) = self.lock().touched.as_mut() {
            into.append(t);
        }
    }
}

impl Inner {
    /// Lists `i` as touched, when tracking.
    fn touch(&mut self, i: usize) {
        if let Some(t) = self.touched.as_mut() {
            t.push(i);
        }
    }
}
