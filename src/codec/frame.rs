//! Fixed header, remaining length, and the bounds-checked reader/writer every packet uses.

use super::{DecodeError, EncodeError};
use crate::limits::{REMAINING_LENGTH_MAX_BYTES, STRING_MAX_BYTES};

/// The fixed header: first byte and remaining length, with the header's own size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    /// The first byte: packet type in the high nibble, flags in the low one.
    pub byte1: u8,
    /// Bytes after the fixed header (variable header and payload), decoded from the varint.
    pub remaining_len: usize,
    /// Bytes of the fixed header itself: the first byte and 1 to 4 remaining-length bytes.
    pub header_len: usize,
}

impl FixedHeader {
    /// The control packet type, 1 (CONNECT) to 14 (DISCONNECT); 0 and 15 are reserved.
    pub fn packet_type(&self) -> u8 {
        self.byte1 >> 4
    }
    /// The four flag bits of the first byte (DUP, QoS and RETAIN for PUBLISH).
    pub fn flags(&self) -> u8 {
        self.byte1 & 0x0F
    }
    /// Bytes of the whole packet: header and remaining length.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Parses the fixed header. `Ok(None)` means more bytes are needed to know the length.
/// At most four length bytes are read (MQTT-1.5.3 / 2.2.3); a fifth continuation is malformed.
pub fn parse_fixed_header(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let mut value: usize = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            // Non-minimal encodings (e.g. 0x80 0x00) are accepted by most brokers; 3.1.1 does not
            // forbid them, so neither do we.
            return Ok(Some(FixedHeader {
                byte1,
                remaining_len: value,
                header_len: 2 + i,
            }));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

/// Number of bytes the remaining-length field takes for `len`.
pub fn remaining_len_bytes(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Reads fields from a packet body, never past its end.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Two-byte length then that many bytes (MQTT 1.5.3 binary data).
    pub fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
    /// A UTF-8 encoded string: well-formed, without U+0000 (MQTT-1.5.3-1, MQTT-1.5.3-2).
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        let raw = self.binary()?;
        let s = core::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        if raw.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(s)
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
    /// Errors if anything is left unread: the remaining length promised more than the packet has.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.remaining()))
        }
    }
}

/// Writes into a caller-owned slice; the caller has checked the total length first.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts a packet: checks `buf` can hold the whole frame, then writes the fixed header.
    pub fn start(buf: &'a mut [u8], byte1: u8, remaining_len: usize) -> Result<Self, EncodeError> {
        if remaining_len > REMAINING_LENGTH_MAX_BYTES {
            return Err(EncodeError::PacketTooLarge(remaining_len));
        }
        let required = 1 + remaining_len_bytes(remaining_len) + remaining_len;
        if buf.len() < required {
            return Err(EncodeError::BufferTooSmall { required });
        }
        let mut w = Writer { buf, pos: 0 };
        w.u8(byte1);
        let mut x = remaining_len;
        loop {
            let mut b = (x % 128) as u8;
            x /= 128;
            if x > 0 {
                b |= 0x80;
            }
            w.u8(b);
            if x == 0 {
                break;
            }
        }
        Ok(w)
    }
    pub fn u8(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    /// Length-prefixed field; the length was validated by [`field_len`].
    pub fn binary(&mut self, b: &[u8]) {
        self.u16(b.len() as u16);
        self.bytes(b);
    }
    pub fn finish(self) -> usize {
        self.pos
    }
}

/// Encoded size of a length-prefixed field, or an error if it cannot be encoded.
pub fn field_len(b: &[u8]) -> Result<usize, EncodeError> {
    if b.len() > STRING_MAX_BYTES {
        return Err(EncodeError::FieldTooLong(b.len()));
    }
    Ok(2 + b.len())
}

/// Checks a string field the way the decoder would (no U+0000), so we never send what we'd reject.
pub fn string_len(s: &str) -> Result<usize, EncodeError> {
    if s.as_bytes().contains(&0) {
        return Err(EncodeError::NullCharacter);
    }
    field_len(s.as_bytes())
}
