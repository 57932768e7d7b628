//! The one place where a byte stream becomes packets: bytes arrive in chunks cut anywhere, a
//! partial packet waits for the rest, and a packet over the size limit is refused from its fixed
//! header, before its body is buffered.

use alloc::vec::Vec;
use core::ops::ControlFlow;

use super::{decode_as, DecodeError, Decoded, Dialect, Packet};

/// Bytes of a stream not yet decoded: at most one partial packet, or the unprocessed rest of a
/// chunk whose reader stopped early (a paused broker connection). Bounded by the packet limit
/// plus the largest chunk the caller hands in.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    rest: Vec<u8>,
    /// Bytes of a dropped oversized packet still to come ([`Oversized::Drop`]).
    /// (A frame is at most 268,435,460 bytes, MQTT's largest remaining length and its header,
    /// so 32 bits hold it; the record is 8 bytes smaller for every connection.)
    skip: u32,
    /// The fixed-header flag rules of this stream ([`FrameBuffer::set_dialect`]).
    dialect: Dialect,
}

/// What to do with a packet over `max_packet_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Oversized {
    /// The stream is unusable: [`FeedStop::Malformed`] (a broker, most clients).
    #[default]
    Refuse,
    /// Read it and throw it away, keeping the connection (PubSubClient's `readPacket` with its
    /// fixed buffer): the handler sees [`Frame::Dropped`] once per such packet.
    Drop,
}

/// One item of the stream under [`FrameBuffer::feed_frames`].
#[derive(Debug)]
pub enum Frame<'a> {
    /// A packet within the limit, decoded.
    Packet(Packet<'a>),
    /// A packet of this many bytes (whole frame) over the limit, skipped.
    Dropped(usize),
}

/// What the handler of [`FrameBuffer::feed_or_keep`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take<B> {
    /// Handled; go on.
    Done,
    /// Handled; stop here, keeping the bytes after it.
    Stop(B),
    /// Not handled: keep it and the bytes after it, undecoded, for the next feed.
    Keep(B),
}

/// Why [`FrameBuffer::feed`] stopped before the bytes ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStop<B> {
    /// The handler said stop; the bytes after that packet are kept for the next feed.
    Handler(B),
    /// The stream is malformed (or a packet exceeds `max_packet_bytes`): the connection must
    /// close. Nothing is kept.
    Malformed(DecodeError),
}

impl FrameBuffer {
    /// An empty buffer, not skipping anything.
    pub const fn new() -> Self {
        FrameBuffer {
            rest: Vec::new(),
            skip: 0,
            dialect: Dialect::V311,
        }
    }

    /// Decodes what follows under `dialect`'s flag rules (a broker connection whose CONNECT said
    /// MQTT 3.1).
    pub fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.rest.len()
    }

    /// No bytes held: every byte fed so far was a whole packet, or skipped.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Keeps `data` undecoded, after what is held: the reader is paused. The rest of a packet
    /// being skipped ([`Oversized::Drop`]) is skipped here too.
    pub fn hold(&mut self, data: &[u8]) {
        let data = self.skip_dropped(data);
        self.rest.extend_from_slice(data);
    }

    /// `data` without the bytes still owed to a packet being skipped.
    fn skip_dropped<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let n = (self.skip as usize).min(data.len());
        self.skip -= n as u32;
        &data[n..]
    }

    /// Forgets every byte held (the transport went away).
    pub fn clear(&mut self) {
        self.rest = Vec::new();
        self.skip = 0;
    }

    /// Decodes the packets in the held bytes followed by `data`, handing each to `handle` in
    /// order, until the bytes run out (the incomplete tail is kept), `handle` breaks (the rest is
    /// kept), or the stream is malformed. Decodes straight from `data` when nothing is held, so
    /// only a leftover is ever copied. `data` may be empty: to go on after a break.
    pub fn feed<B>(
        &mut self,
        data: &[u8],
        max_packet_bytes: usize,
        mut handle: impl FnMut(Packet<'_>) -> ControlFlow<B>,
    ) -> Result<(), FeedStop<B>> {
        self.feed_frames(data, max_packet_bytes, Oversized::Refuse, |f| match f {
            Frame::Packet(p) => handle(p),
            Frame::Dropped(_) => ControlFlow::Continue(()),
        })
    }

    /// [`FrameBuffer::feed`] whose handler may also leave a packet undecoded: with
    /// [`Take::Keep`] that packet and everything after it are kept for the next feed, as if it
    /// had not arrived yet (a broker holding a publisher's PUBLISH while letting the packets
    /// before it through).
    pub fn feed_or_keep<B>(
        &mut self,
        data: &[u8],
        max_packet_bytes: usize,
        mut handle: impl FnMut(Packet<'_>) -> Take<B>,
    ) -> Result<(), FeedStop<B>> {
        self.feed_inner(data, max_packet_bytes, Oversized::Refuse, |f| match f {
            Frame::Packet(p) => handle(p),
            Frame::Dropped(_) => Take::Done,
        })
    }

    /// [`FrameBuffer::feed`] with a choice for oversized packets.
    pub fn feed_frames<B>(
        &mut self,
        data: &[u8],
        max_packet_bytes: usize,
        oversized: Oversized,
        mut handle: impl FnMut(Frame<'_>) -> ControlFlow<B>,
    ) -> Result<(), FeedStop<B>> {
        self.feed_inner(data, max_packet_bytes, oversized, |f| match handle(f) {
            ControlFlow::Continue(()) => Take::Done,
            ControlFlow::Break(b) => Take::Stop(b),
        })
    }

    fn feed_inner<B>(
        &mut self,
        data: &[u8],
        max_packet_bytes: usize,
        oversized: Oversized,
        mut handle: impl FnMut(Frame<'_>) -> Take<B>,
    ) -> Result<(), FeedStop<B>> {
        let data = self.skip_dropped(data);
        let mut held = core::mem::take(&mut self.rest);
        let (buf, buffered): (&[u8], bool) = if held.is_empty() {
            (data, false)
        } else {
            held.extend_from_slice(data);
            (&held[..], true)
        };
        let mut pos = 0;
        let mut stop = None;
        let dialect = self.dialect;
        while pos < buf.len() {
            // The bytes taken by this frame, and those of it still to come (a dropped packet).
            let (frame, n, skip) = match decode_as(&buf[pos..], max_packet_bytes, dialect) {
                Ok(Decoded::NeedMore(_)) => break,
                Ok(Decoded::Packet(p, n)) => (Frame::Packet(p), n, 0),
                Err(DecodeError::PacketTooLarge { size, .. }) if oversized == Oversized::Drop => {
                    let here = size.min(buf.len() - pos);
                    (Frame::Dropped(size), here, size - here)
                    // (`size` came from a remaining length: under 2^28 + 5.)
                }
                Err(e) => return Err(FeedStop::Malformed(e)),
            };
            match handle(frame) {
                Take::Done => {
                    pos += n;
                    self.skip = u32::try_from(skip).unwrap_or(u32::MAX);
                }
                Take::Stop(b) => {
                    pos += n;
                    self.skip = u32::try_from(skip).unwrap_or(u32::MAX);
                    stop = Some(b);
                    break;
                }
                Take::Keep(b) => {
                    stop = Some(b);
                    break;
                }
            }
        }
        if buffered {
            held.drain(..pos);
        } else {
            held.extend_from_slice(&data[pos..]);
        }
        self.rest = held;
        match stop {
            Some(b) => Err(FeedStop::Handler(b)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
