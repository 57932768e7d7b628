//! The journal's bytes: the file header, the record frame (length, CRC-32, kind) and each
//! record's fields, encoded and decoded. Knows nothing of the broker's state.

use alloc::vec::Vec;

use crate::codec::QoS;

/// The first bytes of a journal file.
pub const MAGIC: &[u8; 8] = b"MQSIMLOG";
/// The record format this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the first record: [`MAGIC`] and the version.
pub const HEADER_BYTES: usize = 12;
/// Bytes before a record's kind: length and checksum.
const FRAME_BYTES: usize = 8;
/// The largest record (a retained or queued message of the largest packet) is below this; a
/// length above it is damage, not a record to allocate for.
const RECORD_MAX_BYTES: usize = crate::limits::REMAINING_LENGTH_MAX_BYTES + 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Retain = 1,
    Session = 2,
    SessionGone = 3,
    Sub = 4,
    Unsub = 5,
    Enqueue = 6,
    Send = 7,
    PubRec = 8,
    Done = 9,
    Qos2In = 10,
    Qos2Released = 11,
    Commit = 12,
    User = 13,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Retain,
            2 => Kind::Session,
            3 => Kind::SessionGone,
            4 => Kind::Sub,
            5 => Kind::Unsub,
            6 => Kind::Enqueue,
            7 => Kind::Send,
            8 => Kind::PubRec,
            9 => Kind::Done,
            10 => Kind::Qos2In,
            11 => Kind::Qos2Released,
            12 => Kind::Commit,
            13 => Kind::User,
            _ => return None,
        })
    }
}

/// One change to the durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Record<'a> {
    /// A retained message set, or cleared (empty payload).
    Retain {
        topic: &'a str,
        qos: QoS,
        payload: &'a [u8],
    },
    /// A persistent session (clean session 0) now exists.
    Session {
        client: &'a str,
    },
    /// The user name of the session's last CONNECT (the ACL checks deliveries to it while it is
    /// offline, after a restart too).
    User {
        client: &'a str,
        username: Option<&'a str>,
    },
    /// That session is gone (a clean-session connection took its id).
    SessionGone {
        client: &'a str,
    },
    Sub {
        client: &'a str,
        filter: &'a str,
        qos: QoS,
    },
    Unsub {
        client: &'a str,
        filter: &'a str,
    },
    /// A QoS 1/2 message at the back of the session's queue.
    Enqueue {
        client: &'a str,
        qos: QoS,
        retain: bool,
        topic: &'a str,
        payload: &'a [u8],
    },
    /// Something happened to one of the session's packet identifiers.
    Id {
        event: IdEvent,
        client: &'a str,
        pkid: u16,
    },
    /// The end of one write: the records since the previous one are applied together or not at
    /// all (a power cut may tear a write anywhere; the inputs it covers must not come back
    /// half-done, a QoS 2 id remembered without the copies it was routed to, say).
    Commit,
}

/// What a [`Record::Id`] says happened to a packet identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::broker) enum IdEvent {
    /// The message at the front of the queue is in flight under it.
    Send,
    /// PUBREC received for the in-flight QoS 2 message: PUBCOMP awaited.
    PubRec,
    /// The in-flight message is finished (PUBACK or PUBCOMP).
    Done,
    /// An incoming QoS 2 message was accepted under it and awaits PUBREL.
    Qos2In,
    /// PUBREL received for it.
    Qos2Released,
}

impl IdEvent {
    fn kind(self) -> Kind {
        match self {
            IdEvent::Send => Kind::Send,
            IdEvent::PubRec => Kind::PubRec,
            IdEvent::Done => Kind::Done,
            IdEvent::Qos2In => Kind::Qos2In,
            IdEvent::Qos2Released => Kind::Qos2Released,
        }
    }

    fn of(kind: Kind) -> Option<IdEvent> {
        Some(match kind {
            Kind::Send => IdEvent::Send,
            Kind::PubRec => IdEvent::PubRec,
            Kind::Done => IdEvent::Done,
            Kind::Qos2In => IdEvent::Qos2In,
            Kind::Qos2Released => IdEvent::Qos2Released,
            _ => return None,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Topics and client ids come from packets, whose strings are at most 65,535 bytes.
    let n = s.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..n]);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

impl Record<'_> {
    fn kind(&self) -> Kind {
        match self {
            Record::Retain { .. } => Kind::Retain,
            Record::Session { .. } => Kind::Session,
            Record::SessionGone { .. } => Kind::SessionGone,
            Record::Sub { .. } => Kind::Sub,
            Record::Unsub { .. } => Kind::Unsub,
            Record::Enqueue { .. } => Kind::Enqueue,
            Record::Id { event, .. } => event.kind(),
            Record::Commit => Kind::Commit,
            Record::User { .. } => Kind::User,
        }
    }

    /// Appends the framed record to `out`; returns its length.
    pub(super) fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_BYTES]);
        out.push(self.kind() as u8);
        match *self {
            Record::Retain {
                topic,
                qos,
                payload,
            } => {
                put_str(out, topic);
                out.push(qos.as_u8());
                put_bytes(out, payload);
            }
            Record::Session { client } | Record::SessionGone { client } => put_str(out, client),
            Record::Commit => {}
            Record::User { client, username } => {
                put_str(out, client);
                match username {
                    None => out.push(0),
                    Some(u) => {
                        out.push(1);
                        put_str(out, u);
                    }
                }
            }
            Record::Sub {
                client,
                filter,
                qos,
            } => {
                put_str(out, client);
                put_str(out, filter);
                out.push(qos.as_u8());
            }
            Record::Unsub { client, filter } => {
                put_str(out, client);
                put_str(out, filter);
            }
            Record::Enqueue {
                client,
                qos,
                retain,
                topic,
                payload,
            } => {
                put_str(out, client);
                out.push(qos.as_u8());
                out.push(u8::from(retain));
                put_str(out, topic);
                put_bytes(out, payload);
            }
            Record::Id { client, pkid, .. } => {
                put_str(out, client);
                out.extend_from_slice(&pkid.to_le_bytes());
            }
        }
        let body = &out[start + FRAME_BYTES..];
        let len = body.len() as u32;
        let crc = crc32fast::hash(body);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        out.len() - start
    }
}

/// Reads fields of one record body; `None` when a field runs past its end.
struct Fields<'a> {
    b: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = usize::from(self.u16()?);
        core::str::from_utf8(self.take(n)?).ok()
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        self.take(n)
    }
    fn qos(&mut self) -> Option<QoS> {
        QoS::from_u8(self.u8()?)
    }
}

fn decode_body(body: &[u8]) -> Option<Record<'_>> {
    let (&kind, rest) = body.split_first()?;
    let mut f = Fields { b: rest };
    let r = match Kind::from_u8(kind)? {
        Kind::Retain => Record::Retain {
            topic: f.str()?,
            qos: f.qos()?,
            payload: f.bytes()?,
        },
        Kind::Session => Record::Session { client: f.str()? },
        Kind::SessionGone => Record::SessionGone { client: f.str()? },
        Kind::Sub => Record::Sub {
            client: f.str()?,
            filter: f.str()?,
            qos: f.qos()?,
        },
        Kind::Unsub => Record::Unsub {
            client: f.str()?,
            filter: f.str()?,
        },
        Kind::Enqueue => Record::Enqueue {
            client: f.str()?,
            qos: f.qos()?,
            retain: match f.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            topic: f.str()?,
            payload: f.bytes()?,
        },
        Kind::Commit => Record::Commit,
        Kind::User => Record::User {
            client: f.str()?,
            username: match f.u8()? {
                0 => None,
                1 => Some(f.str()?),
                _ => return None,
            },
        },
        k @ (Kind::Send | Kind::PubRec | Kind::Done | Kind::Qos2In | Kind::Qos2Released) => {
            Record::Id {
                event: IdEvent::of(k)?,
                client: f.str()?,
                pkid: f.u16()?,
            }
        }
    };
    // Bytes left over mean the record is not what its kind says.
    f.b.is_empty().then_some(r)
}

/// The record at the front of `rest` and its length, or why there is none.
pub(super) fn frame(rest: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
    if rest.len() < FRAME_BYTES {
        return Err("a record header is cut short");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len > RECORD_MAX_BYTES {
        return Err("a record length is impossible");
    }
    if rest.len() < FRAME_BYTES + len {
        return Err("the last record is cut short");
    }
    let body = &rest[FRAME_BYTES..FRAME_BYTES + len];
    if crc32fast::hash(body) != crc {
        return Err("a record fails its checksum");
    }
    let r = decode_body(body).ok_or("a record does not decode")?;
    Ok((r, FRAME_BYTES + len))
}

/// The journal header.
pub fn header() -> [u8; HEADER_BYTES] {
    let mut h = [0; HEADER_BYTES];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}
