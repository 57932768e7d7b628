//! The tokio adapter: one loop that drives a [`Broker`] over any `AsyncRead + AsyncWrite` stream.
//! Real TCP (`tokio::net::TcpStream`) and turmoil's simulated TCP go through the same code; the
//! broker never learns which it is. Time comes from `tokio::time`, which turmoil simulates.
//!
//! Tasks: one owns the broker (single owner, deterministic); each connection has a reader task
//! and a writer task. Readers feed bytes into a bounded channel, so a broker that falls behind
//! slows the sockets instead of buffering without bound. Every `select!` is `biased;` so that two
//! ready branches are always taken in the same order (seed replay under simulation).

use std::boxed::Box;
use std::collections::BTreeMap;
use std::string::String;
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::broker::{Broker, ConnId, Event};
use crate::time::Instant;

/// Bytes read from a socket per read call.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Inputs (reads, write completions, accepts) waiting for the broker task.
pub const INPUT_QUEUE_MAX_MESSAGES: usize = 1024;
/// Inputs the broker task handles before it flushes outputs (batching under load).
const INPUT_BATCH_MAX: usize = 256;

enum Input {
    Accept {
        peer: String,
        out: mpsc::UnboundedSender<Out>,
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
    Shutdown,
}

enum Out {
    Data(Vec<u8>),
    Close,
}

/// A log sink: receives each log line without timestamp.
pub type LogSink = Box<dyn FnMut(&str) + Send>;

/// Handle to a running broker task. Cloneable; hand it streams with [`BrokerHandle::serve`].
#[derive(Clone, Debug)]
pub struct BrokerHandle {
    inputs: mpsc::Sender<Input>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

/// Starts the broker task on the current tokio runtime. The join handle yields the broker back
/// after [`BrokerHandle::shutdown`], for inspection in tests.
pub fn spawn_broker(broker: Broker, log: LogSink) -> (BrokerHandle, JoinHandle<Broker>) {
    let (tx, rx) = mpsc::channel(INPUT_QUEUE_MAX_MESSAGES);
    let epoch = tokio::time::Instant::now();
    let task = tokio::spawn(broker_task(broker, rx, epoch, log));
    (BrokerHandle { inputs: tx }, task)
}

fn now_since(epoch: tokio::time::Instant) -> Instant {
    Instant::from_micros(epoch.elapsed().as_micros() as u64)
}

async fn broker_task(
    mut broker: Broker,
    mut rx: mpsc::Receiver<Input>,
    epoch: tokio::time::Instant,
    mut log: LogSink,
) -> Broker {
    let mut writers: BTreeMap<ConnId, mpsc::UnboundedSender<Out>> = BTreeMap::new();
    let mut buf = Vec::new();
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
                Some(Input::Accept { peer, out, reply }) => {
                    let id = broker.handle_accept(now, &peer);
                    if let Some(id) = id {
                        writers.insert(id, out);
                    }
                    let _ = reply.send(id);
                }
                Some(Input::Bytes { conn, data }) => broker.handle_bytes(now, conn, &data),
                Some(Input::Sent { conn, n }) => broker.handle_sent(now, conn, n),
                Some(Input::Closed { conn }) => {
                    broker.handle_closed(now, conn);
                    writers.remove(&conn);
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
        // Drain outputs: bytes first, then closes and log lines.
        while let Some(conn) = broker.poll_transmit(&mut buf) {
            if let Some(w) = writers.get(&conn) {
                let _ = w.send(Out::Data(std::mem::take(&mut buf)));
            }
            buf.clear();
        }
        while let Some(ev) = broker.poll_event() {
            match ev {
                Event::Close(conn) => {
                    if let Some(w) = writers.remove(&conn) {
                        let _ = w.send(Out::Close);
                    }
                }
                Event::Log(line) => log(&line),
            }
        }
    }
    // Dropping the writers closes every connection.
    broker
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
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.inputs
            .send(Input::Accept {
                peer,
                out: out_tx,
                reply: reply_tx,
            })
            .await
            .ok()?;
        let conn = reply_rx.await.ok()??;
        let (rd, wr) = tokio::io::split(stream);
        let stop_reading = Arc::new(Notify::new());
        tokio::spawn(write_loop(
            conn,
            wr,
            out_rx,
            self.inputs.clone(),
            stop_reading.clone(),
        ));
        tokio::spawn(read_loop(conn, rd, self.inputs.clone(), stop_reading));
        Some(conn)
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
    stop: Arc<Notify>,
) {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.notified() => Ok(0),
            r = rd.read(&mut buf) => r,
        };
        match n {
            // End of stream, a read error, or the writer gave up: either way the connection is
            // gone (the broker ignores this for connections it closed itself).
            Ok(0) | Err(_) => {
                let _ = inputs.send(Input::Closed { conn }).await;
                return;
            }
            Ok(n) => {
                if inputs
                    .send(Input::Bytes {
                        conn,
                        data: buf[..n].to_vec(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    conn: ConnId,
    mut wr: W,
    mut out: mpsc::UnboundedReceiver<Out>,
    inputs: mpsc::Sender<Input>,
    stop_reading: Arc<Notify>,
) {
    while let Some(o) = out.recv().await {
        match o {
            Out::Data(v) => {
                if wr.write_all(&v).await.is_err() {
                    break;
                }
                if inputs.send(Input::Sent { conn, n: v.len() }).await.is_err() {
                    break;
                }
            }
            Out::Close => break,
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    stop_reading.notify_one();
}
