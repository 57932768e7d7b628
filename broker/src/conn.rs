//! One connection's I/O, as the broker task drives it: what is being written, whether reading is
//! paused or finished, and the close sequence (write what is queued, flush, shut the write side
//! down). This is the one place that decides what a connection's socket does next, whatever the
//! stream is (tokio's TCP, TLS, turmoil's simulated TCP, or the readiness-polled TCP of
//! [`crate::reactor`]); the broker task only hands it bytes and feeds what it returns to the
//! broker.
//!
//! An idle connection is this record and its stream, nothing else: no task, no read buffer (the
//! broker task reads every socket through one buffer of its own), and the write buffer is released
//! once written.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use mqsim::broker::ConnId;

/// A stream the broker serves: any `AsyncRead + AsyncWrite` that stays in place.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What one poll of a connection produced, for the broker task.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// So many bytes read into the caller's buffer.
    Read(usize),
    /// Everything queued was written and flushed: so many bytes ([`mqsim::broker::Broker::handle_sent`]).
    Sent(usize),
    /// End of stream or a read error: the peer is gone (writing what is queued goes on).
    ReadEnded,
    /// Writing ended (closed as asked, or the write side failed): drop the connection.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WritePhase {
    /// Writing what the broker queues.
    Open,
    /// Closing: flushing, then shutting the write side down.
    Flush,
    Shutdown,
    Done,
}

/// One connection: its stream and where its two directions are.
pub(crate) struct Conn {
    pub stream: Box<dyn Stream>,
    /// The broker's number for it.
    pub id: ConnId,
    /// Bytes for the socket and how many of them are written; released once all are.
    out: Vec<u8>,
    written: usize,
    write: WritePhase,
    read_done: bool,
    /// The broker stopped reading it ([`mqsim::broker::Event::PauseRead`]).
    pub paused: bool,
    /// The broker still knows this connection: what is read goes to it and its end is reported.
    /// False once it closed the connection itself or was told the socket is gone.
    pub known: bool,
    /// Close once `out` is written.
    closing: bool,
}

impl Conn {
    pub fn new(stream: Box<dyn Stream>, id: ConnId) -> Self {
        Conn {
            stream,
            id,
            out: Vec::new(),
            written: 0,
            write: WritePhase::Open,
            read_done: false,
            paused: false,
            known: true,
            closing: false,
        }
    }

    /// Bytes to write after those already queued; the first batch is moved, not copied.
    pub fn push(&mut self, bytes: &mut Vec<u8>) {
        if self.write != WritePhase::Open {
            bytes.clear();
        } else if self.out.is_empty() {
            self.out = std::mem::take(bytes);
            self.written = 0;
        } else {
            self.out.extend_from_slice(bytes);
            bytes.clear();
        }
    }

    /// Close once what is queued is written.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Makes one step of progress: the write side first (so that a close or a full socket is seen
    /// before more is read), then one read into `buf` unless reading is paused or over.
    pub fn poll(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Step> {
        if let Poll::Ready(step) = self.poll_write(cx) {
            return Poll::Ready(step);
        }
        if self.read_done || self.paused {
            return Poll::Pending;
        }
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                Poll::Ready(Step::Read(rb.filled().len()))
            }
            // End of stream or a read error: either way the peer is gone.
            Poll::Ready(_) => {
                self.read_done = true;
                self.closing = true;
                Poll::Ready(Step::ReadEnded)
            }
        }
    }

    /// Writes and flushes what is queued (`Sent` once it is all out: flushed too, since a TLS
    /// stream keeps the tail of what it encrypted when the socket is full); closes when asked to
    /// once everything is written, or when writing fails.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        loop {
            match self.write {
                WritePhase::Open if self.written < self.out.len() => {
                    match Pin::new(&mut *self.stream).poll_write(cx, &self.out[self.written..]) {
                        Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                        Poll::Ready(_) => self.fail_write(),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                WritePhase::Open if !self.out.is_empty() => {
                    match Pin::new(&mut *self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => {
                            let n = self.out.len();
                            self.out = Vec::new(); // an idle connection keeps no buffer
                            self.written = 0;
                            return Poll::Ready(Step::Sent(n));
                        }
                        Poll::Ready(Err(_)) => self.fail_write(),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                WritePhase::Open if self.closing => self.write = WritePhase::Flush,
                WritePhase::Open => return Poll::Pending,
                WritePhase::Flush => match Pin::new(&mut *self.stream).poll_flush(cx) {
                    Poll::Ready(_) => self.write = WritePhase::Shutdown,
                    Poll::Pending => return Poll::Pending,
                },
                WritePhase::Shutdown => match Pin::new(&mut *self.stream).poll_shutdown(cx) {
                    Poll::Ready(_) => self.write = WritePhase::Done,
                    Poll::Pending => return Poll::Pending,
                },
                WritePhase::Done => return Poll::Ready(Step::Done),
            }
        }
    }

    fn fail_write(&mut self) {
        self.out = Vec::new();
        self.written = 0;
        self.write = WritePhase::Flush;
    }
}
