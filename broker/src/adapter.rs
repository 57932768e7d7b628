//! The tokio adapter: one loop that drives a [`Broker`] over any `AsyncRead + AsyncWrite` stream.
//! Real TCP (`tokio::net::TcpStream`) and turmoil's simulated TCP go through the same code; the
//! broker never learns which it is. Time comes from `tokio::time`, which turmoil simulates.
//!
//! Tasks: one owns the broker (single owner, deterministic); each connection has a reader task
//! and a writer task, which tokio's worker threads run on both cores. Readers feed a bounded
//! channel and hold at most [`READ_CREDIT_CHUNKS`] unprocessed chunks each; a connection the
//! broker stops reading ([`Event::PauseRead`]: its peer does not read what it is sent, or a
//! paused publisher went past `max_paused_input_bytes`) gets no credit back, so its socket stays
//! unread and TCP flow control slows the peer. A publisher paused for a slow subscriber is
//! otherwise still read: the broker withholds its acknowledgements instead. Every `select!` is `biased;` so that two ready
//! branches are always taken in the same order (seed replay under simulation).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;

use mqsim::broker::{
    Broker, ConnId, Event, Identity, JournalWrite, ListenerId, ListenerSecurity, Lsn, Security,
};
use mqsim::driver::{drain, Output};
use mqsim::time::Instant;

/// Most bytes read from a socket per read call. The buffer starts at
/// [`READ_CHUNK_MIN_BYTES`] and doubles while reads fill it, so an idle connection costs 256 bytes
/// of read buffer and a busy one reads in 16 KiB chunks.
pub const READ_CHUNK_MAX_BYTES: usize = 16 * 1024;
pub const READ_CHUNK_MIN_BYTES: usize = 256;
/// Chunks one connection may have read that the broker has not processed yet.
pub const READ_CREDIT_CHUNKS: usize = 4;
/// Inputs (reads, write completions, accepts) waiting for the broker task.
pub const INPUT_QUEUE_MAX_MESSAGES: usize = 1024;
/// How long a clean stop waits for the last journal records to be synced.
pub const JOURNAL_FLUSH_AT_STOP_MAX_MS: u64 = 10_000;
/// Inputs the broker task handles before it flushes outputs (batching under load).
const INPUT_BATCH_MAX: usize = 256;

enum Input {
    Accept {
        peer: String,
        identity: Identity,
        listener: Option<ListenerId>,
        out: Arc<OutQueue>,
        credits: Arc<Semaphore>,
        reply: oneshot::Sender<Option<ConnId>>,
    },
    Bytes {
        conn: ConnId,
        data: Vec<u8>,
    },
    Sent {
        conn: ConnId,
        n: usize,
    },
    Closed {
        conn: ConnId,
    },
    /// The journal is durable up to here.
    Durable {
        lsn: Lsn,
    },
    /// The journal could not be written: the broker stops (nothing more may be acknowledged).
    JournalFailed(String),
    /// New users and ACLs (a reload): [`Broker::set_security`].
    Security(Box<Security>),
    /// One listener's new security settings: [`Broker::set_listener_security`].
    ListenerSecurity(ListenerId, Box<ListenerSecurity>),
    Shutdown,
}

/// Where the broker's persistence journal goes (see [`Broker::poll_journal`]): the real broker's
/// file, the simulator's modelled disk.
pub trait JournalStore: Send + 'static {
    /// Writes `bytes` as `how` says (after what is there, or as the whole journal) and completes
    /// once they are durable (synced). Returns the buffer for reuse.
    fn commit(
        &mut self,
        how: JournalWrite,
        bytes: Vec<u8>,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<u8>>> + Send;
}

/// One journal write: how, the bytes, and the LSN they end at.
type JournalBatch = (JournalWrite, Vec<u8>, Lsn);

/// Writes journal batches in order, one sync per group: whatever the broker produced while the
/// last sync ran goes into the next one (group commit), then reports the LSN durable.
async fn journal_task<S: JournalStore>(
    mut store: S,
    mut rx: mpsc::UnboundedReceiver<JournalBatch>,
    inputs: mpsc::Sender<Input>,
) {
    let mut spare = Vec::new();
    while let Some((mut how, mut bytes, mut lsn)) = rx.recv().await {
        while let Ok((h, b, l)) = rx.try_recv() {
            match h {
                // A snapshot holds everything the writes before it say.
                JournalWrite::Replace => {
                    how = JournalWrite::Replace;
                    bytes = b;
                }
                JournalWrite::Append => bytes.extend_from_slice(&b),
            }
            lsn = l;
        }
        drop(std::mem::take(&mut spare));
        match store.commit(how, bytes).await {
            Ok(b) => spare = b,
            Err(e) => {
                let _ = inputs.send(Input::JournalFailed(e.to_string())).await;
                return;
            }
        }
        if inputs.send(Input::Durable { lsn }).await.is_err() {
            return;
        }
    }
}

/// Bytes for one connection's writer, and whether to close after them. A mutex-guarded buffer
/// rather than a channel: an idle connection then costs a few dozen bytes here, not a channel
/// block, and the writer takes everything queued in one go.
#[derive(Default)]
struct OutQueue {
    state: std::sync::Mutex<OutState>,
    ready: Notify,
}

#[derive(Default)]
struct OutState {
    data: Vec<u8>,
    closed: bool,
}

impl OutQueue {
    fn push(&self, bytes: Vec<u8>) {
        if let Ok(mut st) = self.state.lock() {
            if st.data.is_empty() {
                st.data = bytes; // moved, not copied
            } else {
                st.data.extend_from_slice(&bytes);
            }
        }
        self.ready.notify_one();
    }
    fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.closed = true;
        }
        self.ready.notify_one();
    }
}

/// The broker task's view of one connection's I/O tasks.
struct ConnIo {
    out: Arc<OutQueue>,
    credits: Arc<Semaphore>,
    paused: bool,
    /// Read credits withheld while paused.
    owed: usize,
}

impl Drop for ConnIo {
    /// However the broker task lets go of a connection (closed, gone, shut down), its writer
    /// flushes what it has and closes the socket.
    fn drop(&mut self) {
        self.out.close();
    }
}

/// A log sink: receives each log line without timestamp.
pub type LogSink = Box<dyn FnMut(&str) + Send>;

/// Handle to a running broker task. Cloneable; hand it streams with [`BrokerHandle::serve`].
#[derive(Clone)]
pub struct BrokerHandle {
    inputs: mpsc::Sender<Input>,
    /// The listener the streams it serves come through, if named ([`BrokerHandle::on_listener`]).
    listener: Option<ListenerId>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerHandle")
    }
}

/// Starts the broker task on the current tokio runtime. The join handle yields the broker back
/// after [`BrokerHandle::shutdown`], for inspection in tests. Without persistence: a broker with
/// [`Config::persistence`](mqsim::broker::Config::persistence) on needs
/// [`spawn_broker_with_journal`].
pub fn spawn_broker(broker: Broker, log: LogSink) -> (BrokerHandle, JoinHandle<Broker>) {
    let (tx, rx) = mpsc::channel(INPUT_QUEUE_MAX_MESSAGES);
    let epoch = tokio::time::Instant::now();
    let task = tokio::spawn(async move { broker_task(broker, rx, None, epoch, log).await.0 });
    (
        BrokerHandle {
            inputs: tx,
            listener: None,
        },
        task,
    )
}

/// Starts the broker task with its journal written to `store` by a second task. The join handle
/// yields the broker and, if the journal could not be written (the broker then stops), why.
pub fn spawn_broker_with_journal<S: JournalStore>(
    broker: Broker,
    log: LogSink,
    store: S,
) -> (BrokerHandle, JoinHandle<(Broker, Option<String>)>) {
    let (tx, rx) = mpsc::channel(INPUT_QUEUE_MAX_MESSAGES);
    // Unbounded, but not without bound: what the broker journals waits on acknowledgements the
    // journal holds back, so each client's in-flight window bounds it.
    let (jtx, jrx) = mpsc::unbounded_channel();
    tokio::spawn(journal_task(store, jrx, tx.clone()));
    let epoch = tokio::time::Instant::now();
    let task = tokio::spawn(broker_task(broker, rx, Some(jtx), epoch, log));
    (
        BrokerHandle {
            inputs: tx,
            listener: None,
        },
        task,
    )
}

fn now_since(epoch: tokio::time::Instant) -> Instant {
    Instant::from_micros(epoch.elapsed().as_micros() as u64)
}

async fn broker_task(
    mut broker: Broker,
    mut rx: mpsc::Receiver<Input>,
    journal: Option<mpsc::UnboundedSender<JournalBatch>>,
    epoch: tokio::time::Instant,
    mut log: LogSink,
) -> (Broker, Option<String>) {
    let mut conns: BTreeMap<ConnId, ConnIo> = BTreeMap::new();
    let mut buf = Vec::new();
    let mut failed = None;
    let mut chunks_done: Vec<ConnId> = Vec::new();
    'run: loop {
        let deadline = broker.poll_timeout();
        let first = tokio::select! {
            biased;
            m = rx.recv() => match m {
                Some(m) => Some(m),
                None => break 'run,
            },
            _ = sleep_until(epoch, deadline) => None,
        };
        let now = now_since(epoch);
        let mut next = first;
        let mut handled = 0;
        loop {
            match next.take() {
                None => {}
                Some(Input::Shutdown) => break 'run,
                Some(Input::Accept {
                    peer,
                    identity,
                    listener,
                    out,
                    credits,
                    reply,
                }) => {
                    let id = match listener {
                        Some(l) => broker.handle_accept_on(now, &peer, identity, l),
                        None => broker.handle_accept_as(now, &peer, identity),
                    };
                    if let Some(id) = id {
                        conns.insert(
                            id,
                            ConnIo {
                                out,
                                credits,
                                paused: false,
                                owed: 0,
                            },
                        );
                    }
                    let _ = reply.send(id);
                }
                Some(Input::Bytes { conn, data }) => {
                    broker.handle_bytes(now, conn, &data);
                    chunks_done.push(conn);
                }
                Some(Input::Sent { conn, n }) => broker.handle_sent(now, conn, n),
                Some(Input::Closed { conn }) => {
                    broker.handle_closed(now, conn);
                    conns.remove(&conn);
                }
                Some(Input::Durable { lsn }) => broker.handle_durable(now, lsn),
                Some(Input::JournalFailed(why)) => {
                    log(&format!(
                        "Error: persistence write failed: {why}; stopping."
                    ));
                    failed = Some(why);
                    break 'run;
                }
                Some(Input::Security(security)) => broker.set_security(now, *security),
                Some(Input::ListenerSecurity(l, security)) => {
                    broker.set_listener_security(now, l, *security)
                }
            }
            handled += 1;
            if handled >= INPUT_BATCH_MAX {
                break;
            }
            match rx.try_recv() {
                Ok(m) => next = Some(m),
                Err(_) => break,
            }
        }
        if broker.poll_timeout().is_some_and(|t| t <= now) {
            broker.handle_timeout(now);
        }
        // Drain outputs: bytes first, then closes, flow control and log lines.
        drain(&mut broker, &mut buf, |out, bytes| match out {
            Output::Transmit(conn) => {
                if let Some(c) = conns.get(&conn) {
                    // The buffer moves on to the writer; the broker gets a fresh, empty one, so
                    // no connection keeps a burst's capacity while idle.
                    c.out.push(std::mem::take(bytes));
                }
            }
            Output::Event(Event::Close(conn)) => {
                // Dropping it closes the writer once the bytes queued before are written.
                conns.remove(&conn);
            }
            Output::Event(Event::PauseRead(conn)) => {
                if let Some(c) = conns.get_mut(&conn) {
                    c.paused = true;
                }
            }
            Output::Event(Event::ResumeRead(conn)) => {
                if let Some(c) = conns.get_mut(&conn) {
                    c.paused = false;
                    c.credits.add_permits(std::mem::take(&mut c.owed));
                }
            }
            Output::Event(Event::Log(line)) => log(&line),
            Output::Timeout(_) => {}
        });
        // Journal records to the writer task; it reports them durable with an input.
        if let Some(j) = &journal {
            send_journal(&mut broker, j);
        }
        // Each processed chunk's read credit goes back, unless its connection is paused.
        for conn in chunks_done.drain(..) {
            if let Some(c) = conns.get_mut(&conn) {
                if c.paused {
                    c.owed += 1;
                } else {
                    c.credits.add_permits(1);
                }
            }
        }
    }
    // A clean stop keeps everything the broker has done: what is not yet in the journal is
    // written and synced before the task ends (a QoS 0 retained message, say, has no
    // acknowledgement that would have waited for it).
    if let (Some(j), None) = (&journal, &failed) {
        send_journal(&mut broker, j);
        if broker.journal_behind() {
            let wait = async {
                while let Some(m) = rx.recv().await {
                    match m {
                        Input::Durable { lsn } => {
                            broker.handle_durable(now_since(epoch), lsn);
                            if !broker.journal_behind() {
                                return None;
                            }
                        }
                        Input::JournalFailed(why) => return Some(why),
                        _ => {}
                    }
                }
                None
            };
            let limit = std::time::Duration::from_millis(JOURNAL_FLUSH_AT_STOP_MAX_MS);
            match tokio::time::timeout(limit, wait).await {
                Ok(None) => {}
                Ok(Some(why)) => {
                    log(&format!("Error: persistence write failed: {why}."));
                    failed = Some(why);
                }
                Err(_) => {
                    let why = String::from("the journal was not synced in time at shutdown");
                    log(&format!("Error: {why}."));
                    failed = Some(why);
                }
            }
        }
    }
    // Dropping the writers closes every connection.
    (broker, failed)
}

/// Hands the journal writes the broker has to the writer task.
fn send_journal(broker: &mut Broker, journal: &mpsc::UnboundedSender<JournalBatch>) {
    let mut buf = Vec::new();
    while let Some((how, lsn)) = broker.poll_journal(&mut buf) {
        let _ = journal.send((how, std::mem::take(&mut buf), lsn));
    }
}

async fn sleep_until(epoch: tokio::time::Instant, at: Option<Instant>) {
    match at {
        Some(at) => {
            tokio::time::sleep_until(epoch + std::time::Duration::from_micros(at.as_micros())).await
        }
        None => std::future::pending().await,
    }
}

impl BrokerHandle {
    /// Serves one accepted stream until either side closes it. Returns once the broker has taken
    /// the connection (or refused it: `max_connections`); the I/O runs in spawned tasks.
    pub async fn serve<S>(&self, stream: S, peer: String) -> Option<ConnId>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.serve_as(stream, peer, Identity::FromConnect).await
    }

    /// [`BrokerHandle::serve`] for a stream whose transport identifies the client (a TLS client
    /// certificate's CN): see [`Broker::handle_accept_as`].
    pub async fn serve_as<S>(&self, stream: S, peer: String, identity: Identity) -> Option<ConnId>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let out = Arc::new(OutQueue::default());
        let (reply_tx, reply_rx) = oneshot::channel();
        let credits = Arc::new(Semaphore::new(READ_CREDIT_CHUNKS));
        let accept = Input::Accept {
            peer,
            identity,
            listener: self.listener,
            out: out.clone(),
            credits: credits.clone(),
            reply: reply_tx,
        };
        self.inputs.send(accept).await.ok()?;
        let conn = reply_rx.await.ok()??;
        let (rd, wr) = tokio::io::split(stream);
        let stop_reading = Arc::new(Notify::new());
        tokio::spawn(write_loop(
            conn,
            wr,
            out,
            self.inputs.clone(),
            stop_reading.clone(),
        ));
        tokio::spawn(read_loop(
            conn,
            rd,
            self.inputs.clone(),
            credits,
            stop_reading,
        ));
        Some(conn)
    }

    /// Hands the broker new users and ACLs (a reload of `password_file` and `acl_file`); it
    /// applies them between two inputs, connections kept ([`Broker::set_security`]).
    pub async fn set_security(&self, security: Security) {
        let _ = self.inputs.send(Input::Security(Box::new(security))).await;
    }

    /// This handle for streams that come through `listener`: the broker judges their clients by
    /// that listener's security ([`Broker::handle_accept_on`]).
    pub fn on_listener(&self, listener: ListenerId) -> BrokerHandle {
        BrokerHandle {
            inputs: self.inputs.clone(),
            listener: Some(listener),
        }
    }

    /// Hands the broker one listener's new security settings (at start, or a reload):
    /// [`Broker::set_listener_security`].
    pub async fn set_listener_security(&self, listener: ListenerId, security: ListenerSecurity) {
        let input = Input::ListenerSecurity(listener, Box::new(security));
        let _ = self.inputs.send(input).await;
    }

    /// Stops the broker task; its join handle then yields the broker.
    pub async fn shutdown(&self) {
        let _ = self.inputs.send(Input::Shutdown).await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    conn: ConnId,
    mut rd: R,
    inputs: mpsc::Sender<Input>,
    credits: Arc<Semaphore>,
    stop: Arc<Notify>,
) {
    let mut buf = vec![0u8; READ_CHUNK_MIN_BYTES];
    loop {
        // One credit per chunk: none left means the broker is behind or has paused us.
        let credit = tokio::select! {
            biased;
            _ = stop.notified() => None,
            c = credits.acquire() => c.ok(),
        };
        let n = match credit {
            Some(c) => {
                c.forget();
                tokio::select! {
                    biased;
                    _ = stop.notified() => Ok(0),
                    r = rd.read(&mut buf) => r,
                }
            }
            None => Ok(0),
        };
        match n {
            // End of stream, a read error, or the writer gave up: either way the connection is
            // gone (the broker ignores this for connections it closed itself).
            Ok(0) | Err(_) => {
                let _ = inputs.send(Input::Closed { conn }).await;
                return;
            }
            Ok(n) => {
                let data = buf[..n].to_vec();
                if inputs.send(Input::Bytes { conn, data }).await.is_err() {
                    return;
                }
                if n == buf.len() && buf.len() < READ_CHUNK_MAX_BYTES {
                    buf.resize(buf.len() * 2, 0);
                } else if n < READ_CHUNK_MIN_BYTES && buf.len() > READ_CHUNK_MIN_BYTES {
                    buf = vec![0u8; READ_CHUNK_MIN_BYTES];
                }
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    conn: ConnId,
    mut wr: W,
    out: Arc<OutQueue>,
    inputs: mpsc::Sender<Input>,
    stop_reading: Arc<Notify>,
) {
    loop {
        // Take everything queued (moved, not copied; an idle connection keeps no buffer), or
        // wait if there is nothing.
        let (batch, closed) = match out.state.lock() {
            Ok(mut st) => (std::mem::take(&mut st.data), st.closed),
            Err(_) => (Vec::new(), true),
        };
        if batch.is_empty() {
            if closed {
                break;
            }
            out.ready.notified().await;
            continue;
        }
        // Flushed too: a TLS stream keeps the tail of what it encrypted when the socket is full,
        // and nothing else would write it out before the next batch (TCP's flush is a no-op).
        if wr.write_all(&batch).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        let n = batch.len();
        if inputs.send(Input::Sent { conn, n }).await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    stop_reading.notify_one();
}
