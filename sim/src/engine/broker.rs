//! The broker host under the direct engine: the core's [`Broker`] driven through the driver
//! contract ([`drain`]), each accepted connection's bytes read from and written to the registry,
//! its journal written to the modelled [`Disk`] with the tokio adapter's group commit, and its
//! start-up lines those of [`mqsim_broker::start::serve`] (the same functions write them).
//!
//! What the tokio adapter does and this host does as well: the broker's clock starts at zero at
//! each start (the adapter's `epoch`); a connection is accepted once its handshake completed, as
//! `peer on port 1883`; `PauseRead` stops reading a connection until `ResumeRead`; a connection
//! the broker lets go is shut down (FIN after what was written) and its socket closed; a journal
//! batch is synced [`Disk::sync_ms`] after it was handed over, and whatever the broker produced
//! meanwhile goes into the next sync.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mqsim::broker::{Broker, ConnId, Event, Identity, JournalWrite, Lsn};
use mqsim::driver::{drain, Output};
use mqsim::time::Instant;
use mqsim_broker::config::BrokerSettings;
use mqsim_broker::start::{
    listening_line, load_journal, refused_line, running_line, starting_lines, terminating_line,
    Bound, Log, Request, Source as ConfigSource,
};
use mqsim_broker::{BrokerHandle, Host};
use tokio::task::JoinSet;

use crate::disk::{Disk, DiskJournal};
use crate::net::link::Side;
use crate::net::stream::{sim_now, Net, ReadOutcome};

/// Most bytes one read of a connection takes (the adapter's `READ_CHUNK_MAX_BYTES`).
const READ_CHUNK_MAX_BYTES: usize = 16 * 1024;

/// The broker host's machine as [`load_journal`] sees it: the disk.
struct DiskHost {
    disk: Option<Disk>,
}

impl Host for DiskHost {
    type Listener = ();
    type Journal = DiskJournal;
    async fn listen(&mut self, addr: SocketAddr) -> io::Result<((), u16)> {
        Ok(((), addr.port()))
    }
    fn accept(
        &mut self,
        _listeners: Vec<Bound<()>>,
        _handle: BrokerHandle,
        _verbose: bool,
        _log: Log,
    ) -> JoinSet<()> {
        JoinSet::new()
    }
    fn read_journal(&mut self, _path: &Path) -> io::Result<Option<Vec<u8>>> {
        crate::run::broker_host::read_disk(self.disk.as_ref())
    }
    fn keep_damaged(&mut self, path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
        crate::run::broker_host::keep_damaged_on(self.disk.as_ref(), path, bytes)
    }
    fn journal(&mut self, _path: PathBuf) -> DiskJournal {
        Disk::new(0, 0).store()
    }
    fn install_requests(&mut self) -> io::Result<()> {
        Ok(())
    }
    async fn next_request(&mut self) -> Request {
        std::future::pending().await
    }
}

/// One accepted connection.
struct Accepted {
    id: ConnId,
    paused: bool,
    read_done: bool,
}

/// A journal sync under way: what, and when it completes.
struct Sync {
    how: JournalWrite,
    bytes: Vec<u8>,
    lsn: Lsn,
    at: Instant,
}

/// The broker host.
pub(super) struct DirectBroker {
    settings: BrokerSettings,
    log: Log,
    net: Net,
    disk: Option<Disk>,
    port: u16,
    broker: Option<Broker>,
    /// Simulated time of this incarnation's start: the broker's zero.
    epoch: Instant,
    /// Connections opened while this incarnation listens, not yet accepted.
    pending: BTreeSet<usize>,
    accepted: BTreeMap<usize, Accepted>,
    by_id: BTreeMap<ConnId, usize>,
    queued: VecDeque<(JournalWrite, Vec<u8>, Lsn)>,
    sync: Option<Sync>,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl DirectBroker {
    pub(super) fn new(
        settings: BrokerSettings,
        log: Log,
        net: Net,
        disk: Option<Disk>,
        port: u16,
    ) -> DirectBroker {
        DirectBroker {
            settings,
            log,
            net,
            disk,
            port,
            broker: None,
            epoch: Instant::ZERO,
            pending: BTreeSet::new(),
            accepted: BTreeMap::new(),
            by_id: BTreeMap::new(),
            queued: VecDeque::new(),
            sync: None,
            buf: Vec::new(),
            rbuf: Vec::with_capacity(READ_CHUNK_MAX_BYTES),
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.broker.is_some()
    }

    /// The broker's clock.
    fn bnow(&self) -> Instant {
        Instant::from_micros(sim_now().as_micros().saturating_sub(self.epoch.as_micros()))
    }

    /// Starts the broker as [`mqsim_broker::start::serve`] does, with its lines. `Err`: it
    /// could not start (already logged).
    pub(super) fn start(&mut self) -> Result<(), ()> {
        let say = |t: &str| (self.log)(t);
        for line in starting_lines(&self.settings, &ConfigSource::Default) {
            say(&line);
        }
        for listener in &self.settings.listeners {
            for addr in listener.listen_addrs() {
                say(&listening_line(addr, self.port));
            }
        }
        if let Some(line) = refused_line(&self.settings, false) {
            say(line);
        }
        let config = self.settings.broker.clone();
        let broker = match self.settings.persistence_path() {
            None => Broker::new(config, Instant::ZERO).map_err(|e| format!("Error: {e}.")),
            Some(path) => {
                let mut host = DiskHost {
                    disk: self.disk.clone(),
                };
                load_journal(&mut host, &path, config, &say)
            }
        };
        match broker {
            Ok(b) => {
                say(&running_line());
                self.broker = Some(b);
                self.epoch = sim_now();
                Ok(())
            }
            Err(line) => {
                say(&line);
                Err(())
            }
        }
    }

    /// A clean stop (SIGTERM, a `broker-restart` fault), as [`mqsim_broker::serve`] and the
    /// adapter do it: the terminating line; a broker that autosaves saves now and says so
    /// ([`Broker::save_now`], mosquitto's `persist__backup(true)` after its main loop,
    /// src/mosquitto.c:588); what the journal has not written yet is written and
    /// synced. The adapter waits out that sync (`disk_sync_ms`) before it closes its
    /// connections; here it is durable at once, at the stop's instant. [`DirectBroker::crash`]
    /// follows.
    pub(super) fn stop(&mut self) {
        let Some(b) = self.broker.as_mut() else {
            return;
        };
        (self.log)(&terminating_line());
        b.save_now();
        self.drain();
        let Some(d) = &self.disk else {
            return;
        };
        if let Some(s) = self.sync.take() {
            d.write_synced(s.how, &s.bytes);
        }
        while let Some((how, bytes, _)) = self.queued.pop_front() {
            d.write_begin(how, &bytes);
            d.write_synced(how, &bytes);
        }
    }

    /// The host stops: the broker and its journal writer are gone, every socket it held closed
    /// (the faults have silenced or shut them already).
    pub(super) fn crash(&mut self) {
        self.broker = None;
        self.queued.clear();
        self.sync = None;
        self.pending.clear();
        self.by_id.clear();
        for (i, _) in std::mem::take(&mut self.accepted) {
            self.net.close_socket(i, Side::Server);
        }
    }

    /// A connection opened to this host.
    pub(super) fn opened(&mut self, i: usize) {
        if self.is_up() {
            self.pending.insert(i);
        }
    }

    /// When the broker wants to be woken (its timer, the journal's sync).
    pub(super) fn wake_at(&self) -> Option<Instant> {
        let b = self.broker.as_ref()?;
        let t = b
            .poll_timeout()
            .map(|t| Instant::from_micros(t.as_micros() + self.epoch.as_micros()));
        [t, self.sync.as_ref().map(|s| s.at)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Takes what is there on the connections `touched` (accepts, bytes, closes), the sync's
    /// completion and the timer, then drains the broker.
    pub(super) fn process(&mut self, touched: &BTreeSet<usize>) {
        if self.broker.is_none() {
            return;
        }
        let now = sim_now();
        if self.sync.as_ref().is_some_and(|s| s.at <= now) {
            if let Some(s) = self.sync.take() {
                if let Some(d) = &self.disk {
                    d.write_synced(s.how, &s.bytes);
                }
                let bnow = self.bnow();
                if let Some(b) = self.broker.as_mut() {
                    b.handle_durable(bnow, s.lsn);
                }
            }
        }
        for &i in touched {
            self.take_conn(i);
        }
        let bnow = self.bnow();
        if let Some(b) = self.broker.as_mut() {
            if b.poll_timeout().is_some_and(|t| t <= bnow) {
                b.handle_timeout(bnow);
            }
        }
        self.drain();
    }

    /// Accepts `i` if its handshake completed, reads what it has, or sees it closed.
    fn take_conn(&mut self, i: usize) {
        let bnow = self.bnow();
        if self.pending.contains(&i) {
            match self.net.take_server(i) {
                None => return,
                Some(false) => {
                    self.pending.remove(&i);
                    return;
                }
                Some(true) => {
                    self.pending.remove(&i);
                    let Some(peer) = self.net.client_addr(i) else {
                        return;
                    };
                    let name = format!("{peer} on port {}", self.port);
                    let Some(b) = self.broker.as_mut() else {
                        return;
                    };
                    match b.handle_accept_on(bnow, &name, Identity::FromConnect, 0) {
                        Some(id) => {
                            self.by_id.insert(id, i);
                            self.accepted.insert(
                                i,
                                Accepted {
                                    id,
                                    paused: false,
                                    read_done: false,
                                },
                            );
                        }
                        // Refused (max_connections): the stream is dropped.
                        None => self.net.close_socket(i, Side::Server),
                    }
                    self.drain();
                }
            }
        }
        loop {
            let Some(a) = self.accepted.get_mut(&i) else {
                return;
            };
            if a.paused || a.read_done {
                return;
            }
            let id = a.id;
            self.rbuf.clear();
            let r = self
                .net
                .read(i, Side::Server, &mut self.rbuf, READ_CHUNK_MAX_BYTES);
            let Some(b) = self.broker.as_mut() else {
                return;
            };
            match r {
                ReadOutcome::Pending => return,
                ReadOutcome::Data(_) => b.handle_bytes(bnow, id, &self.rbuf),
                _ => {
                    a.read_done = true;
                    b.handle_closed(bnow, id);
                    self.let_go(id);
                }
            }
            self.drain();
        }
    }

    /// The broker let go of `id`: its socket is shut down and closed.
    fn let_go(&mut self, id: ConnId) {
        if let Some(i) = self.by_id.remove(&id) {
            self.accepted.remove(&i);
            self.net.shutdown(i, Side::Server);
            self.net.close_socket(i, Side::Server);
        }
    }

    /// Drains the broker: bytes written (and reported sent), closes, flow control, log lines;
    /// then the journal.
    fn drain(&mut self) {
        let Some(mut b) = self.broker.take() else {
            return;
        };
        loop {
            let bnow = self.bnow();
            let mut sent: Vec<(ConnId, usize)> = Vec::new();
            let mut closes: Vec<ConnId> = Vec::new();
            let (net, log, by_id, accepted) =
                (&self.net, &self.log, &self.by_id, &mut self.accepted);
            drain(&mut b, &mut self.buf, |out, bytes| match out {
                Output::Transmit(conn) => {
                    if let Some(&i) = by_id.get(&conn) {
                        if let Ok(n) = net.write(i, Side::Server, bytes) {
                            sent.push((conn, n));
                        }
                    }
                }
                Output::Event(Event::Close(conn)) => closes.push(conn),
                Output::Event(Event::PauseRead(conn)) => {
                    if let Some(a) = by_id.get(&conn).and_then(|i| accepted.get_mut(i)) {
                        a.paused = true;
                    }
                }
                Output::Event(Event::ResumeRead(conn)) => {
                    if let Some(a) = by_id.get(&conn).and_then(|i| accepted.get_mut(i)) {
                        a.paused = false;
                    }
                }
                Output::Event(Event::Log(line)) => log(&line),
                Output::Timeout(_) => {}
            });
            for conn in closes {
                self.let_go(conn);
            }
            let again = !sent.is_empty();
            for (conn, n) in sent {
                b.handle_sent(bnow, conn, n);
            }
            if !again {
                break;
            }
        }
        // Journal records to the disk, one sync at a time (group commit).
        if self.disk.is_some() {
            let mut jbuf = Vec::new();
            while let Some((how, lsn)) = b.poll_journal(&mut jbuf) {
                self.queued.push_back((how, std::mem::take(&mut jbuf), lsn));
            }
        }
        self.broker = Some(b);
        self.start_sync();
    }

    /// Starts the next sync with everything queued, if none runs.
    fn start_sync(&mut self) {
        if self.sync.is_some() {
            return;
        }
        let Some((mut how, mut bytes, mut lsn)) = self.queued.pop_front() else {
            return;
        };
        while let Some((h, b, l)) = self.queued.pop_front() {
            match h {
                JournalWrite::Replace => {
                    how = JournalWrite::Replace;
                    bytes = b;
                }
                JournalWrite::Append => bytes.extend_from_slice(&b),
            }
            lsn = l;
        }
        let Some(d) = &self.disk else {
            return;
        };
        d.write_begin(how, &bytes);
        let at = sim_now() + mqsim::time::Duration::from_millis(d.sync_ms());
        self.sync = Some(Sync {
            how,
            bytes,
            lsn,
            at,
        });
    }

    /// The connections this host has accepted or may accept (for waking).
    pub(super) fn watches(&self, i: usize) -> bool {
        self.pending.contains(&i) || self.accepted.contains_key(&i)
    }
}
