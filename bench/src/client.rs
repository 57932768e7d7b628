//! The benchmark's MQTT connection: a tokio `TcpStream` with one read buffer and one write buffer,
//! speaking through the repository's codec only.
//!
//! Writes are batched: callers encode as many packets as they like into [`Conn::out`] and call
//! [`Conn::flush`] once, which is a single `write_all`. Reads fill the buffer with whatever the
//! socket has (or at most `chunk` bytes, for the slow-consumer mode) and [`Conn::drain`] hands every
//! complete packet to a closure, zero-copy.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::ops::ControlFlow;

use mqsim::codec::{
    decode, encode_to_vec, ConnectReturnCode, Decoded, FeedStop, FrameBuffer, Packet, Subscribe,
    SubscribeFilters,
};
use mqsim::codec::{Connect, Protocol};
use mqsim::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::qos;

/// Keep alive announced in CONNECT. Clients send PINGREQ after half of it without sending anything
/// (a QoS 0 subscriber otherwise never talks to the broker after SUBSCRIBE).
pub const KEEP_ALIVE_S: u16 = 30;
/// Largest packet the benchmark accepts from a broker.
const MAX_PACKET_BYTES: usize = 256 * 1024 * 1024;
/// Bytes per read (a packet larger than this is assembled in the framing buffer).
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Budget for TCP connect plus CONNACK (and for SUBACK).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The session a client asks for in CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// Clean session 1: the broker forgets the client when it disconnects.
    Clean,
    /// Clean session 0: the broker keeps the client's subscriptions and messages between
    /// connections.
    Kept,
}

/// What [`Conn::drain`] does after the packet it just handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Decode and hand over the next packet.
    More,
    /// Stop here: this packet is consumed, the rest stay in the read buffer.
    Stop,
}

pub struct Conn {
    stream: TcpStream,
    /// Scratch for one read; `rbuf[..fresh]` is read and not yet handed to `frames`.
    rbuf: Vec<u8>,
    fresh: usize,
    /// The core's framing buffer: partial packets, and what a `Drain::Stop` left.
    frames: FrameBuffer,
    /// Packets encoded but not yet written; [`Conn::flush`] sends them in one `write_all`.
    pub out: Vec<u8>,
}

/// An error with the client id it happened to, for the report.
pub fn err(who: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{who}: {what}"))
}

impl Conn {
    /// TCP connect (TCP_NODELAY, optionally a small receive buffer), CONNECT, wait for CONNACK 0.
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        session: Session,
        recv_buffer_bytes: Option<u32>,
    ) -> io::Result<Conn> {
        let fut = async {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(n) = recv_buffer_bytes {
                // Before connect, so the window scale is negotiated for the small buffer.
                socket.set_recv_buffer_size(n)?;
            }
            let stream = socket.connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = Conn {
                stream,
                rbuf: vec![0; READ_BUFFER_BYTES],
                fresh: 0,
                frames: FrameBuffer::new(),
                out: Vec::with_capacity(64 * 1024),
            };
            conn.push(&Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: session == Session::Clean,
                keep_alive_s: KEEP_ALIVE_S,
                client_id,
                will: None,
                username: None,
                password: None,
            }))?;
            conn.flush().await?;
            let mut code = None;
            while code.is_none() {
                conn.read_some(usize::MAX).await?;
                // Only the CONNACK: whatever follows it is left for the caller's loop.
                conn.drain(|p, _| match p {
                    Packet::ConnAck(ack) => {
                        code = Some(ack.code);
                        Ok(Drain::Stop)
                    }
                    other => Err(io::Error::other(format!("{} before CONNACK", other.name()))),
                })?;
            }
            match code {
                Some(ConnectReturnCode::Accepted) => Ok(conn),
                other => Err(io::Error::other(format!("connection refused: {other:?}"))),
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await {
            Ok(r) => r.map_err(|e| err(client_id, e)),
            Err(_) => Err(err(client_id, "no CONNACK within 5 s")),
        }
    }

    /// SUBSCRIBE to one filter and wait for its SUBACK; returns the granted QoS.
    ///
    /// A session kept from an earlier run ([`Session::Kept`]) may deliver stale messages
    /// before the SUBACK: they are acknowledged as the protocol requires but not counted.
    pub async fn subscribe(&mut self, who: &str, filter: &str, qos: QoS) -> io::Result<QoS> {
        let list = [(filter, qos)];
        self.push(&Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: SubscribeFilters::List(&list),
        }))?;
        let fut = async {
            self.flush().await?;
            let mut granted = None;
            loop {
                self.drain(|p, out| match p {
                    Packet::SubAck(ack) if ack.pkid == 1 => {
                        granted = Some(ack.granted().next().flatten().ok_or_else(|| {
                            io::Error::other("subscription refused (SUBACK 0x80)")
                        })?);
                        Ok(Drain::Stop)
                    }
                    Packet::Publish(p) => {
                        if let Some(ack) = qos::reply_to_publish(p.qos, p.pkid) {
                            push(out, &ack)?;
                        }
                        Ok(Drain::More)
                    }
                    Packet::PubRel(id) => {
                        push(out, &Packet::PubComp(id))?;
                        Ok(Drain::More)
                    }
                    other => Err(io::Error::other(format!(
                        "unexpected {} before SUBACK",
                        other.name()
                    ))),
                })?;
                self.flush().await?;
                if let Some(q) = granted {
                    return Ok::<_, io::Error>(q);
                }
                self.read_some(usize::MAX).await?;
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await {
            Ok(r) => r.map_err(|e| err(who, e)),
            Err(_) => Err(err(who, "no SUBACK within 5 s")),
        }
    }

    /// Encodes `packet` at the end of the write batch.
    pub fn push(&mut self, packet: &Packet<'_>) -> io::Result<()> {
        push(&mut self.out, packet)
    }

    /// Writes the whole batch (if any) and empties it.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads once, at most `chunk` bytes. Returns the number of bytes read; end of stream is an
    /// error (the broker closed the connection).
    pub async fn read_some(&mut self, chunk: usize) -> io::Result<usize> {
        if self.fresh > 0 {
            // Not drained yet: keep them, in order, ahead of what comes next.
            self.frames.hold(&self.rbuf[..self.fresh]);
            self.fresh = 0;
        }
        let end = self.rbuf.len().min(chunk.max(1));
        let n = self.stream.read(&mut self.rbuf[..end]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "broker closed the connection",
            ));
        }
        self.fresh = n;
        Ok(n)
    }

    /// Decodes the complete packets read so far and passes each to `f`, together with the write
    /// batch for replies, until `f` returns `Ok(Drain::Stop)` (that packet is consumed, the rest
    /// are kept) or an error, from the codec or from `f`.
    pub fn drain<F>(&mut self, mut f: F) -> io::Result<()>
    where
        F: FnMut(Packet<'_>, &mut Vec<u8>) -> io::Result<Drain>,
    {
        let fresh = std::mem::take(&mut self.fresh);
        let out = &mut self.out;
        let fed = self
            .frames
            .feed(&self.rbuf[..fresh], MAX_PACKET_BYTES, |p| match f(p, out) {
                Ok(Drain::More) => ControlFlow::Continue(()),
                Ok(Drain::Stop) => ControlFlow::Break(Ok(())),
                Err(e) => ControlFlow::Break(Err(e)),
            });
        match fed {
            Ok(()) => Ok(()),
            Err(FeedStop::Handler(r)) => r,
            Err(FeedStop::Malformed(e)) => {
                Err(io::Error::other(format!("undecodable packet: {e}")))
            }
        }
    }

    /// Sends DISCONNECT (after whatever is batched) and closes the write side.
    pub async fn disconnect(mut self) -> io::Result<()> {
        self.push(&Packet::Disconnect)?;
        self.flush().await?;
        self.stream.shutdown().await
    }
}

/// Opens an idle connection: TCP connect, CONNECT (clean session, `keep_alive_s`), and CONNACK 0,
/// then nothing. Returns the bare stream, which costs the benchmark a socket and no buffers.
pub async fn connect_idle(
    addr: SocketAddr,
    client_id: &str,
    keep_alive_s: u16,
) -> io::Result<TcpStream> {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut out = Vec::with_capacity(64);
        push(
            &mut out,
            &Packet::Connect(Connect {
                protocol: Protocol::V311,
                clean_session: true,
                keep_alive_s,
                client_id,
                will: None,
                username: None,
                password: None,
            }),
        )?;
        stream.write_all(&out).await?;
        // A CONNACK is 4 bytes; nothing else may come before it.
        let mut buf = [0u8; 16];
        let mut len = 0;
        loop {
            match decode(&buf[..len], buf.len()) {
                Ok(Decoded::Packet(Packet::ConnAck(ack), _)) => {
                    return match ack.code {
                        ConnectReturnCode::Accepted => Ok(stream),
                        other => Err(io::Error::other(format!("connection refused: {other:?}"))),
                    };
                }
                Ok(Decoded::Packet(other, _)) => {
                    return Err(io::Error::other(format!("{} before CONNACK", other.name())))
                }
                Ok(Decoded::NeedMore(_)) if len < buf.len() => {}
                Ok(Decoded::NeedMore(_)) => return Err(io::Error::other("oversized CONNACK")),
                Err(e) => return Err(io::Error::other(format!("undecodable packet: {e}"))),
            }
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "broker closed the connection",
                ));
            }
            len += n;
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await {
        Ok(r) => r.map_err(|e| err(client_id, e)),
        Err(_) => Err(err(client_id, "no CONNACK within 5 s")),
    }
}

/// Encodes `packet` at the end of `out`.
pub fn push(out: &mut Vec<u8>, packet: &Packet<'_>) -> io::Result<()> {
    encode_to_vec(packet, out)
        .map(|_| ())
        .map_err(|e| io::Error::other(format!("cannot encode {}: {e}", packet.name())))
}
