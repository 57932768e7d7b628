//! The tokio adapter: one task that drives a [`Broker`] and every connection it serves, over any
//! `AsyncRead + AsyncWrite` stream. Real TCP and turmoil's simulated TCP go through the same code;
//! the broker never learns which it is. Time comes from `tokio::time`, which turmoil simulates.
//!
//! Tasks: one owns the broker and every connection's stream (a slab of connection records, see
//! [`conn`]), a second writes the persistence journal, and the host's accept
//! loops hand streams over through a bounded channel. Connections are polled by readiness, not
//! each by a task of its own: each slot of the slab has one small waker that, when its stream
//! becomes readable or writable, queues the slot's number and wakes the broker task, which then
//! polls just the queued slots, in the order they were queued (seed replay under simulation).
//! Reads go through one buffer of the task's and straight into [`Broker::handle_bytes`]; a
//! connection yields after one read so that none starves the others. A connection the broker
//! stops reading ([`Event::PauseRead`]: its peer does not read what it is sent, or a paused
//! publisher went past `max_paused_input_bytes`) is simply not read, so its socket fills and TCP
//! flow control slows the peer. Every `select!` is `biased;`.
//!
//! An idle connection costs its slot (the record in [`conn`], 64 bytes), a sixteenth of a waker
//! (one per 16 slots), its index entry (12 bytes), its stream, and the broker's own records: no
//! task, no read buffer.
//!
//! [`conn`]: crate::conn

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use mqsim::broker::{
    Broker, ConnId, Event, Identity, JournalWrite, ListenerId, ListenerSecurity, Lsn, Security,
};
use mqsim::driver::{drain, Output};
use mqsim::time::Instant;

use crate::conn::{Conn, Step, Stream};

/// Most bytes read from a socket per read call, through the broker task's one read buffer.
pub const READ_CHUNK_MAX_BYTES: usize = 16 * 1024;
/// Inputs (accepted streams, journal completions, reloads) waiting for the broker task.
pub const INPUT_QUEUE_MAX_MESSAGES: usize = 1024;
/// How long a clean stop waits for the last journal records to be synced.
pub const JOURNAL_FLUSH_AT_STOP_MAX_MS: u64 = 10_000;
/// Inputs the broker task takes from its queue per turn.
const INPUT_BATCH_MAX: usize = 256;
/// Rounds of (poll the connections with new output, drain the broker) per turn before the task
/// yields to the runtime and goes on in the next turn.
const FLUSH_ROUNDS_MAX: usize = 8;

enum Input {
    Accept {
        peer: String,
        identity: Identity,
        listener: Option<ListenerId>,
        stream: Box<dyn Stream>,
        reply: oneshot::Sender<Option<ConnId>>,
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

/// The slot groups queued for a poll, and the broker task's waker.
#[derive(Default)]
struct Ready {
    state: Mutex<ReadyState>,
}

#[derive(Default)]
struct ReadyState {
    groups: Vec<u32>,
    task: Option<Waker>,
}

impl Ready {
    /// The queued groups, moved into `into` (emptied first).
    fn take(&self, into: &mut Vec<u32>) {
        into.clear();
        if let Ok(mut st) = self.state.lock() {
            std::mem::swap(&mut st.groups, into);
        }
    }

    /// Some group is queued.
    fn is_queued(&self) -> bool {
        self.state.lock().is_ok_and(|st| !st.groups.is_empty())
    }

    /// Resolves once a group is queued.
    fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self.state.lock() {
            Ok(mut st) if st.groups.is_empty() => {
                if !st.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.task = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }
}

/// Slots that share one waker: waking it polls the group's slots (the idle ones find nothing to
/// do). One waker allocation per 16 connections instead of one each.
const GROUP_SLOTS: usize = 16;

/// One group's waker: queues the group (once until it is polled) and wakes the broker task.
struct GroupWaker {
    ready: Arc<Ready>,
    group: u32,
    queued: AtomicBool,
}

impl Wake for GroupWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = match self.ready.state.lock() {
            Ok(mut st) => {
                st.groups.push(self.group);
                st.task.take()
            }
            Err(_) => None,
        };
        if let Some(t) = task {
            t.wake();
        }
    }
}

/// Every connection the broker task serves, by slot, and the slot of each connection the broker
/// knows.
struct Conns {
    ready: Arc<Ready>,
    slots: Vec<Option<Conn>>,
    /// One per [`GROUP_SLOTS`] slots.
    wakers: Vec<Arc<GroupWaker>>,
    free: Vec<u32>,
    by_id: Index,
    /// The one read buffer every connection is read through.
    buf: Box<[u8]>,
}

impl Conns {
    fn new() -> Self {
        Conns {
            ready: Arc::new(Ready::default()),
            slots: Vec::new(),
            wakers: Vec::new(),
            free: Vec::new(),
            by_id: Index::default(),
            buf: vec![0; READ_CHUNK_MAX_BYTES].into_boxed_slice(),
        }
    }

    /// Takes a connection the broker accepted; it is polled in this turn.
    fn insert(&mut self, conn: Conn, polls: &mut Vec<u32>) {
        let id = conn.id;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(conn);
                s
            }
            None => {
                let slot = self.slots.len();
                if slot % GROUP_SLOTS == 0 {
                    self.wakers.push(Arc::new(GroupWaker {
                        ready: self.ready.clone(),
                        group: (slot / GROUP_SLOTS) as u32,
                        queued: AtomicBool::new(false),
                    }));
                }
                self.slots.push(Some(conn));
                slot as u32
            }
        };
        self.by_id.insert(id, slot);
        polls.push(slot);
    }

    fn waker(&self, slot: u32) -> Option<Waker> {
        let w = self.wakers.get(slot as usize / GROUP_SLOTS)?;
        Some(Waker::from(w.clone()))
    }

    fn get(&mut self, id: ConnId) -> Option<(u32, &mut Conn)> {
        let slot = self.by_id.get(id)?;
        let c = self.slots.get_mut(slot as usize)?.as_mut()?;
        Some((slot, c))
    }

    /// Polls one slot until it has nothing more to do now, or has read once (the others' turn).
    fn poll(&mut self, slot: u32, broker: &mut Broker, now: Instant) {
        let Some(waker) = self.waker(slot) else {
            return;
        };
        let Some(mut conn) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        let mut cx = Context::from_waker(&waker);
        let keep = loop {
            match conn.poll(&mut cx, &mut self.buf) {
                Poll::Pending => break true,
                Poll::Ready(Step::Read(n)) => {
                    if conn.known {
                        broker.handle_bytes(now, conn.id, &self.buf[..n]);
                    }
                    // More may be waiting: polled again next turn, after the others.
                    waker.wake_by_ref();
                    break true;
                }
                Poll::Ready(Step::Sent(n)) => {
                    if conn.known {
                        broker.handle_sent(now, conn.id, n);
                    }
                }
                Poll::Ready(Step::ReadEnded) => self.forget(&mut conn, broker, now),
                Poll::Ready(Step::Done) => {
                    self.forget(&mut conn, broker, now);
                    break false;
                }
            }
        };
        if keep {
            self.slots[slot as usize] = Some(conn);
        } else {
            self.free.push(slot);
        }
    }

    /// The socket is gone: the broker is told, unless it closed the connection itself.
    fn forget(&mut self, conn: &mut Conn, broker: &mut Broker, now: Instant) {
        if conn.known {
            conn.known = false;
            self.by_id.remove(conn.id);
            broker.handle_closed(now, conn.id);
        }
    }

    /// The broker closed `id`: its connection writes what is queued, then closes.
    fn close(&mut self, id: ConnId, polls: &mut Vec<u32>) {
        if let Some(slot) = self.by_id.remove(id) {
            if let Some(c) = self.slots[slot as usize].as_mut() {
                c.known = false;
                c.close();
                polls.push(slot);
            }
        }
    }

    /// Polls the groups whose wakers fired, in the order they fired, each slot in order.
    fn poll_ready(&mut self, list: &mut Vec<u32>, broker: &mut Broker, now: Instant) {
        self.ready.take(list);
        for &group in list.iter() {
            if let Some(w) = self.wakers.get(group as usize) {
                w.queued.store(false, Ordering::Release);
            }
        }
        for &group in list.iter() {
            let first = group as usize * GROUP_SLOTS;
            for slot in first..(first + GROUP_SLOTS).min(self.slots.len()) {
                self.poll(slot as u32, broker, now);
            }
        }
    }
}

/// Connection number -> slot. The broker numbers connections in increasing order and they
/// come in as numbered, so this is two sorted vectors appended to (12 bytes a connection; a
/// B-tree map under increasing keys keeps its nodes about half full, some 27 bytes). A removal
/// leaves a hole, and the holes go once they are half the entries.
#[derive(Default)]
struct Index {
    ids: Vec<ConnId>,
    slots: Vec<u32>,
    holes: usize,
}

const HOLE: u32 = u32::MAX;

impl Index {
    fn insert(&mut self, id: ConnId, slot: u32) {
        match self.ids.last() {
            Some(&last) if last >= id => {
                // Not expected (numbers only grow), but kept right all the same.
                match self.ids.binary_search(&id) {
                    Ok(i) => {
                        if self.slots[i] == HOLE {
                            self.holes -= 1;
                        }
                        self.slots[i] = slot;
                    }
                    Err(i) => {
                        self.ids.insert(i, id);
                        self.slots.insert(i, slot);
                    }
                }
            }
            _ => {
                self.ids.push(id);
                self.slots.push(slot);
            }
        }
    }

    fn get(&self, id: ConnId) -> Option<u32> {
        let i = self.ids.binary_search(&id).ok()?;
        Some(self.slots[i]).filter(|&s| s != HOLE)
    }

    fn remove(&mut self, id: ConnId) -> Option<u32> {
        let i = self.ids.binary_search(&id).ok()?;
        let slot = std::mem::replace(&mut self.slots[i], HOLE);
        if slot == HOLE {
            return None;
        }
        self.holes += 1;
        if self.holes * 2 > self.ids.len() {
            let mut keep = self.slots.iter().map(|&s| s != HOLE);
            self.ids.retain(|_| keep.next().unwrap_or(false));
            self.slots.retain(|&s| s != HOLE);
            self.holes = 0;
        }
        Some(slot)
    }
}

async fn broker_task(
    mut broker: Broker,
    mut rx: mpsc::Receiver<Input>,
    journal: Option<mpsc::UnboundedSender<JournalBatch>>,
    epoch: tokio::time::Instant,
    mut log: LogSink,
) -> (Broker, Option<String>) {
    let mut conns = Conns::new();
    let mut buf = Vec::new();
    let mut failed = None;
    // Slots to poll: those whose wakers fired, those the broker gave output or a close.
    let mut woken: Vec<u32> = Vec::new();
    let mut polls: Vec<u32> = Vec::new();
    'run: loop {
        let deadline = broker.poll_timeout();
        let ready = conns.ready.clone();
        let first = tokio::select! {
            biased;
            m = rx.recv() => match m {
                Some(m) => Some(m),
                None => break 'run,
            },
            _ = std::future::poll_fn(|cx| ready.poll_wait(cx)) => None,
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
                    stream,
                    reply,
                }) => {
                    let id = match listener {
                        Some(l) => broker.handle_accept_on(now, &peer, identity, l),
                        None => broker.handle_accept_as(now, &peer, identity),
                    };
                    // Refused (max_connections): the stream is dropped, which closes it.
                    if let Some(id) = id {
                        conns.insert(Conn::new(stream, id), &mut polls);
                    }
                    let _ = reply.send(id);
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
        conns.poll_ready(&mut woken, &mut broker, now);
        if broker.poll_timeout().is_some_and(|t| t <= now) {
            broker.handle_timeout(now);
        }
        for _ in 0..FLUSH_ROUNDS_MAX {
            for slot in polls.drain(..) {
                conns.poll(slot, &mut broker, now);
            }
            // Drain outputs: bytes to their connections, then closes, flow control, log lines.
            drain(&mut broker, &mut buf, |out, bytes| match out {
                Output::Transmit(id) => {
                    if let Some((slot, c)) = conns.get(id) {
                        // The buffer moves on to the connection (the broker gets a fresh one),
                        // so no connection keeps a burst's capacity while idle.
                        c.push(bytes);
                        polls.push(slot);
                    }
                }
                Output::Event(Event::Close(id)) => conns.close(id, &mut polls),
                Output::Event(Event::PauseRead(id)) => {
                    if let Some((_, c)) = conns.get(id) {
                        c.paused = true;
                    }
                }
                Output::Event(Event::ResumeRead(id)) => {
                    if let Some((slot, c)) = conns.get(id) {
                        c.paused = false;
                        polls.push(slot);
                    }
                }
                Output::Event(Event::Log(line)) => log(&line),
                Output::Timeout(_) => {}
            });
            // Journal records to the writer task; it reports them durable with an input.
            if let Some(j) = &journal {
                send_journal(&mut broker, j);
            }
            polls.dedup();
            if polls.is_empty() {
                break;
            }
        }
        // Still more after the last round: those slots go on in the next turn.
        for slot in polls.drain(..) {
            if let Some(w) = conns.waker(slot) {
                w.wake();
            }
        }
        // More to do at once (a connection that read may have more): the runtime's turn first,
        // so that its I/O driver reports the other sockets' readiness (a busy publisher would
        // otherwise keep this task running while a subscriber's acknowledgements wait unseen).
        if conns.ready.is_queued() {
            tokio::task::yield_now().await;
        }
    }
    // A clean stop keeps everything the broker has done: what is not yet in the journal is
    // written and synced before the task ends (a QoS 0 retained message, say, has no
    // acknowledgement that would have waited for it).
    if let (Some(j), None) = (&journal, &failed) {
        // A broker that autosaves (the mosquitto-2.0 profile) saves now, as mosquitto does at a
        // clean stop (mosquitto.c, after its main loop); our own journal has nothing to add.
        broker.save_now();
        // Its announcement ("Saving in-memory database."): the only output a save makes but the
        // journal's.
        drain(&mut broker, &mut buf, |out, _| {
            if let Output::Event(Event::Log(line)) = out {
                log(&line);
            }
        });
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
    // Every connection still open writes what it has, then closes, in a task of its own: the
    // broker is handed back at once.
    for s in conns.slots.iter_mut() {
        if let Some(mut c) = s.take() {
            c.known = false;
            c.close();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                std::future::poll_fn(|cx| loop {
                    match c.poll(cx, &mut buf) {
                        Poll::Ready(Step::Done) => return Poll::Ready(()),
                        Poll::Ready(_) => {}
                        Poll::Pending => return Poll::Pending,
                    }
                })
                .await
            });
        }
    }
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
    /// the connection (or refused it: `max_connections`, and the stream is closed); the broker
    /// task does its I/O from then on. The stream is `Unpin` (TCP, TLS and turmoil's streams are;
    /// pin others in a `Box`).
    pub async fn serve<S>(&self, stream: S, peer: String) -> Option<ConnId>
    where
        S: Stream + 'static,
    {
        self.serve_as(stream, peer, Identity::FromConnect).await
    }

    /// [`BrokerHandle::serve`] for a stream whose transport identifies the client (a TLS client
    /// certificate's CN): see [`Broker::handle_accept_as`].
    pub async fn serve_as<S>(&self, stream: S, peer: String, identity: Identity) -> Option<ConnId>
    where
        S: Stream + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let accept = Input::Accept {
            peer,
            identity,
            listener: self.listener,
            stream: Box::new(stream),
            reply: reply_tx,
        };
        self.inputs.send(accept).await.ok()?;
        reply_rx.await.ok()?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_what_is_left_after_removals_and_compaction() {
        let mut ix = Index::default();
        for id in 1..=100u64 {
            ix.insert(id, id as u32 * 10);
        }
        for id in (1..=100u64).filter(|id| id % 3 != 0) {
            assert_eq!(ix.remove(id), Some(id as u32 * 10));
            assert_eq!(ix.remove(id), None);
        }
        // Compacted on the way: what remains is every third one.
        assert!(ix.ids.len() < 100 && ix.ids.len() == ix.slots.len());
        for id in 1..=100u64 {
            let want = (id % 3 == 0).then_some(id as u32 * 10);
            assert_eq!(ix.get(id), want, "{id}");
        }
        // Out of order still lands in order.
        ix.insert(50, 7);
        assert_eq!(ix.get(50), Some(7));
        ix.insert(200, 8);
        assert_eq!(ix.get(200), Some(8));
        assert!(ix.ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn an_idle_connection_is_small() {
        // A slot: its connection record; its group's waker is one allocation per 16 slots.
        let slot = std::mem::size_of::<Option<Conn>>();
        eprintln!("slot {slot} bytes");
        assert!(slot <= 64, "{slot} bytes");
    }
}
