//! The payload every bench PUBLISH carries: a 16-byte header saying who sent it, its number and
//! when, then padding up to `--payload-bytes`.

/// Bytes of the payload header: publisher index, sequence number, send time.
pub const STAMP_BYTES: usize = 16;

/// The payload header: who sent a message, its number, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u32,
    /// Nanoseconds since the start of the bench.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the header into the first [`STAMP_BYTES`] of `payload` (the padding is left alone).
    #[inline]
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.publisher.to_be_bytes());
        payload[4..8].copy_from_slice(&self.seq.to_be_bytes());
        payload[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// The header of `payload`; `None` when it is too short to be one of ours.
    #[inline]
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let h = payload.get(..STAMP_BYTES)?;
        Some(Stamp {
            publisher: u32::from_be_bytes(h[0..4].try_into().ok()?),
            seq: u32::from_be_bytes(h[4..8].try_into().ok()?),
            sent_ns: u64::from_be_bytes(h[8..16].try_into().ok()?),
        })
    }
}

/// A payload of `len` bytes (at least [`STAMP_BYTES`]) carrying `stamp`, padded with `'.'`.
pub fn make_payload(stamp: Stamp, len: usize) -> Vec<u8> {
    let mut p = vec![b'.'; len.max(STAMP_BYTES)];
    stamp.write(&mut p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_pads() {
        let stamp = Stamp {
            publisher: 7,
            seq: 0xDEAD_BEEF,
            sent_ns: 0x0102_0304_0506_0708,
        };
        let p = make_payload(stamp, 24);
        assert_eq!(p.len(), 24);
        assert_eq!(
            &p[..16],
            &[0, 0, 0, 7, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(&p[16..], b"........");
        assert_eq!(Stamp::read(&p), Some(stamp));
        // Exactly the header, and a request below the minimum, are both 16 bytes.
        assert_eq!(make_payload(stamp, 16).len(), 16);
        assert_eq!(make_payload(stamp, 3).len(), 16);
        assert_eq!(Stamp::read(&make_payload(stamp, 16)), Some(stamp));
    }

    #[test]
    fn short_payload_is_not_a_stamp() {
        assert_eq!(Stamp::read(&[0; 15]), None);
        assert_eq!(Stamp::read(b""), None);
    }

    #[test]
    fn rewriting_a_stamp_keeps_the_padding() {
        let mut p = make_payload(
            Stamp {
                publisher: 1,
                seq: 1,
                sent_ns: 1,
            },
            20,
        );
        let next = Stamp {
            publisher: 1,
            seq: 2,
            sent_ns: 99,
        };
        next.write(&mut p);
        assert_eq!(Stamp::read(&p), Some(next));
        assert_eq!(&p[16..], b"....");
    }
}
