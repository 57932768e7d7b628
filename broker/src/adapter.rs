//! The tokio adapter: one loop that drives a [`Broker`] over any `AsyncRead + AsyncWrite` stream.
//! Real TCP (`tokio::net::TcpStream`) and turmoil's simulated TCP go through the same code; the
//! broker never learns which it is. Time comes from `tokio::time`, which turmoil simulates.
//!
//! Tasks: one owns the broker (single owner, deterministic); each connection has one task that
//! reads and writes its stream (no split, no second task), which tokio's worker threads run. A
//! connection task hands the broker task what it reads over a bounded channel and holds at most
//! [`READ_CREDIT_CHUNKS`] unprocessed chunks; a connection the broker stops reading
//! ([`Event::PauseRead`]: its peer does not read what it is sent, or a paused publisher went past
//! `max_paused_input_bytes`) gets no credit back, so its socket stays unread and TCP flow control
//! slows the peer. A publisher paused for a slow subscriber is otherwise still read: the broker
//! withholds its acknowledgements instead. Every `select!` is `biased;` and a connection task
//! looks at its two directions in a fixed order, so that two ready inputs are always taken in the
//! same order (seed replay under simulation).
//!
//! An idle connection costs its task (the stream and a few words of state: reads go through a
//! buffer on the stack, and the write batch is released once written), one small shared record
//! (queued bytes, close flag, read credits, waker) and the broker's own records.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use mqsim::broker::{
    Broker, ConnId, Event, Identity, JournalWrite, ListenerId, ListenerSecurity, Lsn, Security,
};
use mqsim::driver::{drain, Output};
use mqsim::time::Instant;

/// Most bytes read from a socket per read call. A read takes at most [`READ_CHUNK_MIN_BYTES`]
/// at first and twice as much while reads fill it, so a busy connection reads in 16 KiB chunks.
/// Reads go through a buffer on the stack: an idle connection holds no read buffer at all.
pub const READ_CHUNK_MAX_BYTES: usize = 16 * 1024;
pub const READ_CHUNK_MIN_BYTES: usize = 256;
/// Chunks one connection may have read that the broker has not processed yet.
pub const READ_CREDIT_CHUNKS: u32 = 4;
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
        shared: Arc<ConnShared>,
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

/// What the broker task and one connection's task share: the bytes to write, whether to close
/// after them, the read credits, and the connection task's waker. One small allocation per
/// connection; the broker task never waits on it (it pushes, closes, adds credits, and wakes).
#[derive(Default)]
struct ConnShared {
    state: std::sync::Mutex<SharedState>,
}

#[derive(Default)]
struct SharedState {
    /// Bytes for the socket, taken whole by the connection task (moved, not copied).
    out: Vec<u8>,
    /// Close once `out` is written.
    closed: bool,
    /// The broker task paused reading ([`Event::PauseRead`]): processed chunks' credits are
    /// owed, not given, until it resumes. Only the broker task reads these two.
    paused: bool,
    owed: u32,
    /// Chunks the task may still read that the broker has not processed.
    credits: u32,
    /// The connection task, when it waits on any of the above.
    waker: Option<Waker>,
}

impl ConnShared {
    fn new(credits: u32) -> Self {
        ConnShared {
            state: std::sync::Mutex::new(SharedState {
                credits,
                ..SharedState::default()
            }),
        }
    }

    /// Changes the state and wakes the connection task (outside the lock).
    fn update(&self, f: impl FnOnce(&mut SharedState)) {
        let waker = match self.state.lock() {
            Ok(mut st) => {
                f(&mut st);
                st.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn push(&self, bytes: Vec<u8>) {
        self.update(|st| {
            if st.out.is_empty() {
                st.out = bytes; // moved, not copied
            } else {
                st.out.extend_from_slice(&bytes);
            }
        });
    }

    fn close(&self) {
        self.update(|st| st.closed = true);
    }

    /// Pauses reading (no wake: the task has nothing new to do).
    fn pause(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.paused = true;
        }
    }

    /// Resumes reading: the credits owed are given.
    fn resume(&self) {
        let waker = match self.state.lock() {
            Ok(mut st) => {
                st.paused = false;
                let n = std::mem::take(&mut st.owed);
                st.credits += n;
                if n > 0 {
                    st.waker.take()
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// One chunk processed: its credit goes back, or is owed while paused.
    fn chunk_done(&self) {
        let waker = match self.state.lock() {
            Ok(mut st) if st.paused => {
                st.owed += 1;
                None
            }
            Ok(mut st) => {
                st.credits += 1;
                st.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The broker task's view of one connection's task: its shared record (one word in the broker
/// task's map; the pause state lives in the record).
struct ConnIo {
    shared: Arc<ConnShared>,
}

impl Drop for ConnIo {
    /// However the broker task lets go of a connection (closed, gone, shut down), its task
    /// flushes what it has and closes the socket.
    fn drop(&mut self) {
        self.shared.close();
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
                    shared,
                    reply,
                }) => {
                    let id = match listener {
                        Some(l) => broker.handle_accept_on(now, &peer, identity, l),
                        None => broker.handle_accept_as(now, &peer, identity),
                    };
                    if let Some(id) = id {
                        conns.insert(id, ConnIo { shared });
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
                    c.shared.push(std::mem::take(bytes));
                }
            }
            Output::Event(Event::Close(conn)) => {
                // Dropping it closes the writer once the bytes queued before are written.
                conns.remove(&conn);
            }
            Output::Event(Event::PauseRead(conn)) => {
                if let Some(c) = conns.get(&conn) {
                    c.shared.pause();
                }
            }
            Output::Event(Event::ResumeRead(conn)) => {
                if let Some(c) = conns.get(&conn) {
                    c.shared.resume();
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
            if let Some(c) = conns.get(&conn) {
                c.shared.chunk_done();
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
    /// the connection (or refused it: `max_connections`); the I/O runs in a spawned task. The
    /// stream is `Unpin` (TCP, TLS and turmoil's streams are; pin others in a `Box`): the task
    /// is a small hand-written future that keeps it in place without pinning it itself.
    pub async fn serve<S>(&self, stream: S, peer: String) -> Option<ConnId>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_as(stream, peer, Identity::FromConnect).await
    }

    /// [`BrokerHandle::serve`] for a stream whose transport identifies the client (a TLS client
    /// certificate's CN): see [`Broker::handle_accept_as`].
    pub async fn serve_as<S>(&self, stream: S, peer: String, identity: Identity) -> Option<ConnId>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(ConnShared::new(READ_CREDIT_CHUNKS));
        let (reply_tx, reply_rx) = oneshot::channel();
        let accept = Input::Accept {
            peer,
            identity,
            listener: self.listener,
            shared: shared.clone(),
            reply: reply_tx,
        };
        self.inputs.send(accept).await.ok()?;
        let conn = reply_rx.await.ok()??;
        tokio::spawn(conn_task(conn, stream, shared, self.inputs.clone()));
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

/// What one turn of a connection task produced, for the broker task.
enum Step {
    /// Bytes read.
    Read(Vec<u8>),
    /// A batch written and flushed: so many bytes ([`Broker::handle_sent`]).
    Sent(usize),
    /// The connection is gone: end of stream, a read error, or the write side gave up (the
    /// broker ignores this for connections it closed itself).
    Closed,
}

/// One connection's task: it reads the socket and writes it, one stream, no split. Reads go to
/// the broker task one chunk per credit; writes take everything the broker queued, then report
/// it written. The two directions alternate so that neither starves the other.
///
/// Written as a future by hand, not an `async fn`: the compiler's state machine kept every
/// local of both await points side by side (264 bytes), and tokio's task cell is a multiple of
/// 128 bytes, so this one (about 120 bytes) makes every idle connection's task 256 bytes instead
/// of 384.
struct ConnTask<S> {
    conn: ConnId,
    stream: S,
    io: ConnState,
    shared: Arc<ConnShared>,
    inputs: mpsc::Sender<Input>,
    /// The rare wait for room in the broker's queue (the broker task is behind), boxed; it
    /// sends the step itself and says whether the broker is still there.
    waiting: Option<Pin<Box<dyn std::future::Future<Output = bool> + Send>>>,
    broker_gone: bool,
}

fn conn_task<S>(
    conn: ConnId,
    stream: S,
    shared: Arc<ConnShared>,
    inputs: mpsc::Sender<Input>,
) -> ConnTask<S> {
    ConnTask {
        conn,
        stream,
        io: ConnState::default(),
        shared,
        inputs,
        waiting: None,
        broker_gone: false,
    }
}

impl<S> std::future::Future for ConnTask<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(w) = this.waiting.as_mut() {
                match w.as_mut().poll(cx) {
                    Poll::Ready(sent) => {
                        this.waiting = None;
                        this.broker_gone = !sent;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            let step = match this
                .io
                .poll_step(cx, Pin::new(&mut this.stream), &this.shared)
            {
                Poll::Ready(Some(step)) => step,
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            };
            if this.broker_gone {
                continue; // finish writing what is queued, then close
            }
            let conn = this.conn;
            let input = match step {
                Step::Read(data) => Input::Bytes { conn, data },
                Step::Sent(n) => Input::Sent { conn, n },
                Step::Closed => Input::Closed { conn },
            };
            match this.inputs.try_reserve() {
                Ok(permit) => permit.send(input),
                Err(mpsc::error::TrySendError::Full(())) => {
                    let tx = this.inputs.clone();
                    this.waiting = Some(Box::pin(async move {
                        match tx.reserve_owned().await {
                            Ok(permit) => {
                                permit.send(input);
                                true
                            }
                            Err(_) => false,
                        }
                    }));
                }
                Err(mpsc::error::TrySendError::Closed(())) => this.broker_gone = true,
            }
        }
    }
}

/// Where one connection's task is; all of it lives in the task (an idle connection has no read
/// buffer: reads go through a buffer on the stack and only the bytes read are kept).
struct ConnState {
    /// The batch being written, and how much of it is.
    out: Vec<u8>,
    written: usize,
    write: WritePhase,
    read_done: bool,
    /// Most bytes the next read takes: starts at [`READ_CHUNK_MIN_BYTES`], doubles while reads
    /// fill it, up to [`READ_CHUNK_MAX_BYTES`].
    chunk: usize,
    /// The last turn wrote: this one tries reading first.
    read_first: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WritePhase {
    /// Writing batches as the broker queues them.
    Open,
    /// Closing: flushing, then shutting the write side down.
    Flush,
    Shutdown,
    Done,
}

impl Default for ConnState {
    fn default() -> Self {
        ConnState {
            out: Vec::new(),
            written: 0,
            write: WritePhase::Open,
            read_done: false,
            chunk: READ_CHUNK_MIN_BYTES,
            read_first: false,
        }
    }
}

impl ConnState {
    /// Makes what progress it can; `None` once both directions are finished.
    fn poll_step<S: AsyncRead + AsyncWrite>(
        &mut self,
        cx: &mut Context<'_>,
        mut stream: Pin<&mut S>,
        shared: &ConnShared,
    ) -> Poll<Option<Step>> {
        // What the broker task has for us. The waker stays with it, so a push, a close or a
        // credit after this look wakes the task.
        let (closed, credits) = match shared.state.lock() {
            Ok(mut st) => {
                if self.write == WritePhase::Open && self.out.is_empty() {
                    self.out = std::mem::take(&mut st.out);
                    self.written = 0;
                } else if self.write == WritePhase::Done {
                    st.out = Vec::new();
                }
                if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.waker = Some(cx.waker().clone());
                }
                (st.closed, st.credits)
            }
            Err(_) => (true, 0),
        };
        if self.read_first {
            self.read_first = false;
            if let Poll::Ready(step) = self.poll_read(cx, stream.as_mut(), shared, credits) {
                return Poll::Ready(Some(step));
            }
        }
        if let Poll::Ready(step) = self.poll_write(cx, stream.as_mut(), closed) {
            self.read_first = true;
            return Poll::Ready(Some(step));
        }
        if self.write == WritePhase::Done {
            // Nothing more is read from a connection whose writing ended.
            if self.read_done {
                return Poll::Ready(None);
            }
            self.read_done = true;
            return Poll::Ready(Some(Step::Closed));
        }
        match self.poll_read(cx, stream, shared, credits) {
            Poll::Ready(step) => Poll::Ready(Some(step)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes and flushes the current batch: `Sent` once it is all out. Closes when asked to
    /// (once everything queued before is written) or when writing fails.
    fn poll_write<S: AsyncWrite>(
        &mut self,
        cx: &mut Context<'_>,
        mut stream: Pin<&mut S>,
        closed: bool,
    ) -> Poll<Step> {
        loop {
            match self.write {
                WritePhase::Open if self.written < self.out.len() => {
                    match stream.as_mut().poll_write(cx, &self.out[self.written..]) {
                        Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                        Poll::Ready(_) => self.fail_write(),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                // Flushed too: a TLS stream keeps the tail of what it encrypted when the socket
                // is full, and nothing else would write it out before the next batch.
                WritePhase::Open if !self.out.is_empty() => match stream.as_mut().poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        let n = self.out.len();
                        self.out = Vec::new(); // an idle connection keeps no buffer
                        self.written = 0;
                        return Poll::Ready(Step::Sent(n));
                    }
                    Poll::Ready(Err(_)) => self.fail_write(),
                    Poll::Pending => return Poll::Pending,
                },
                WritePhase::Open if closed => self.write = WritePhase::Flush,
                WritePhase::Open => return Poll::Pending,
                WritePhase::Flush => match stream.as_mut().poll_flush(cx) {
                    Poll::Ready(_) => self.write = WritePhase::Shutdown,
                    Poll::Pending => return Poll::Pending,
                },
                WritePhase::Shutdown => match stream.as_mut().poll_shutdown(cx) {
                    Poll::Ready(_) => self.write = WritePhase::Done,
                    Poll::Pending => return Poll::Pending,
                },
                WritePhase::Done => return Poll::Pending,
            }
        }
    }

    fn fail_write(&mut self) {
        self.out = Vec::new();
        self.written = 0;
        self.write = WritePhase::Flush;
    }

    /// Reads one chunk if the broker has given a credit for it.
    fn poll_read<S: AsyncRead>(
        &mut self,
        cx: &mut Context<'_>,
        stream: Pin<&mut S>,
        shared: &ConnShared,
        credits: u32,
    ) -> Poll<Step> {
        // No credit left means the broker is behind or has paused us.
        if self.read_done || credits == 0 {
            return Poll::Pending;
        }
        let mut buf = [MaybeUninit::<u8>::uninit(); READ_CHUNK_MAX_BYTES];
        let mut rb = ReadBuf::uninit(&mut buf[..self.chunk]);
        match stream.poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                if let Ok(mut st) = shared.state.lock() {
                    st.credits -= 1;
                }
                let n = rb.filled().len();
                if n == self.chunk && self.chunk < READ_CHUNK_MAX_BYTES {
                    self.chunk *= 2;
                } else if n < READ_CHUNK_MIN_BYTES {
                    self.chunk = READ_CHUNK_MIN_BYTES;
                }
                Poll::Ready(Step::Read(rb.filled().to_vec()))
            }
            // End of stream or a read error: either way the connection is gone.
            Poll::Ready(_) => {
                self.read_done = true;
                Poll::Ready(Step::Closed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn size_of_return<A, R>(_: impl FnOnce(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn an_idle_connection_task_is_small() {
        let (tx, _rx) = mpsc::channel(1);
        let shared = Arc::new(ConnShared::new(READ_CREDIT_CHUNKS));
        let task = size_of_return(|s: tokio::net::TcpStream| conn_task(0, s, shared, tx));
        // tokio's task cell adds about 100 bytes and is a multiple of 128 bytes: 256 in all
        // (as an `async fn` it was 264 bytes, a 384-byte cell; with the wait for the broker's
        // queue inline 448 bytes, a 640-byte cell).
        eprintln!("idle connection task: {task} bytes");
        assert!(task <= 144, "{task} bytes");
    }
}
