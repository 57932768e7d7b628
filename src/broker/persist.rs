//! Persistence: the broker's durable state as a journal of records, written by the caller.
//!
//! # Contract (as bytes to send, but for the disk)
//! With [`Config::persistence`](super::Config::persistence) on, every change to what must survive
//! a power cut (retained messages; persistent sessions: their subscriptions, queued and in-flight
//! QoS 1/2 messages, incoming QoS 2 identifiers awaiting PUBREL) appends a record.
//! [`Broker::poll_journal`] moves the pending records into the caller's buffer with the log
//! sequence number (LSN) they end at; the caller writes them after the ones before (or, for a
//! [`JournalWrite::Replace`], makes them the whole file), syncs, and reports the LSN back with
//! [`Broker::handle_durable`], as it reports written bytes with `handle_sent`. One sync covers
//! every record taken so far: batches of many clients share it (group commit).
//!
//! The write-ahead rule: a connection's outgoing bytes that depend on records (a PUBACK, PUBREC,
//! PUBCOMP or SUBACK whose packet appended records; a QoS 2 PUBLISH or a PUBREL of a persistent
//! session) are held until those records are durable. So nothing is acknowledged that a power
//! cut could lose, and a QoS 2 packet identifier is never seen by a client before the broker will
//! remember it (which keeps exactly once across a crash).
//!
//! # Format
//! A file starts with [`MAGIC`] and a little-endian `u32` version, then records:
//! `len: u32 LE` (of what follows the checksum), `crc32: u32 LE` (of the same bytes), `kind: u8`,
//! then the fields: strings and topics as `u16 LE` length + bytes, payloads as `u32 LE` length +
//! bytes, QoS and flags as one byte, packet identifiers as `u16 LE`. [`Broker::restore`] replays
//! records up to the first one that is cut short, fails its checksum, or does not fit the state
//! so far, and says what it dropped there.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::session::{Queued, Retain, Session};
use super::{Broker, Config, ConfigError, Message, Retained, SessionId};
use crate::codec::QoS;
use crate::qos::Awaiting;
use crate::time::Instant;

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

/// How the caller writes what [`Broker::poll_journal`] hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalWrite {
    /// Append after the records already written.
    Append,
    /// The bytes are a whole journal (header and a snapshot of the state): they replace the file
    /// (written beside it, synced, renamed over it). Records after them are appended to it.
    Replace,
}

/// A log sequence number: how many journal bytes the broker has produced, over all files.
pub type Lsn = u64;

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
enum Record<'a> {
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
pub(super) enum IdEvent {
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
    fn encode(&self, out: &mut Vec<u8>) -> usize {
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
fn frame(rest: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
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

/// The broker's side of the journal: records not yet taken by the caller, and the LSNs.
#[derive(Debug, Default)]
pub(super) struct Journal {
    pub(super) on: bool,
    buf: Vec<u8>,
    /// LSN at the end of `buf` (everything produced so far).
    pub(super) end: Lsn,
    /// LSN the caller has reported durable.
    pub(super) durable: Lsn,
    /// Bytes in the current file: header, last snapshot and the records appended since.
    file_bytes: u64,
    /// Size of the last snapshot, for compaction when the file has grown well past it.
    snapshot_bytes: u64,
    /// The next poll writes a whole new file (after a restore, or to compact).
    replace: bool,
    compact_min_bytes: u64,
}

impl Journal {
    pub(super) fn new(config: &Config) -> Journal {
        Journal {
            on: config.persistence,
            compact_min_bytes: config.journal_compact_min_bytes as u64,
            // A new broker starts its file from scratch: a journal left by an earlier run is read
            // with `Broker::restore`, never appended to blindly.
            replace: config.persistence,
            ..Journal::default()
        }
    }

    fn push(&mut self, r: &Record<'_>) {
        if !self.on {
            return;
        }
        let n = r.encode(&mut self.buf);
        self.end += n as u64;
        self.file_bytes += n as u64;
    }

    /// Records are produced but not yet durable.
    pub(super) fn behind(&self) -> bool {
        self.durable < self.end
    }
}

/// Where a journal stops making sense, and how much is dropped from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file of the first record not applied.
    pub offset: u64,
    /// Bytes from there to the end of the file, dropped.
    pub dropped_bytes: u64,
    pub reason: &'static str,
}

/// What [`Broker::restore`] recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Records applied.
    pub records: u64,
    pub sessions: usize,
    pub retained: usize,
    /// QoS 1/2 messages owed to persistent sessions (queued and in flight).
    pub messages: usize,
    /// Where the journal was cut short or corrupt; `None` when every byte was read.
    pub damage: Option<Damage>,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |count: usize, one: &str, many: &str| {
            alloc::format!("{count} {}", if count == 1 { one } else { many })
        };
        write!(
            f,
            "restored {}: {}, {}, {} queued or in flight",
            n(self.records as usize, "record", "records"),
            n(self.sessions, "persistent session", "persistent sessions"),
            n(self.retained, "retained message", "retained messages"),
            n(self.messages, "message", "messages"),
        )?;
        if let Some(d) = &self.damage {
            write!(
                f,
                "; dropped {} bytes from offset {} ({})",
                d.dropped_bytes, d.offset, d.reason
            )?;
        }
        Ok(())
    }
}

/// A journal that cannot be read at all: the caller must not overwrite it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The file does not start with `MQSIMLOG` (another program's file, or not a journal).
    NotAJournal,
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion(u32),
    Config(ConfigError),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::NotAJournal => f.write_str("not an mqsim persistence file"),
            RestoreError::UnsupportedVersion(v) => write!(
                f,
                "persistence format version {v}, this build reads version {VERSION}"
            ),
            RestoreError::Config(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RestoreError {}

impl Broker {
    // ----- recording (no-ops with persistence off) -----

    /// Appends a record about session `sid` if it is persistent.
    pub(super) fn record_session(&mut self, sid: SessionId, make: impl FnOnce() -> RecordArgs) {
        let Some(s) = self
            .sessions
            .get(&sid)
            .filter(|s| self.journal.on && !s.clean)
        else {
            return;
        };
        let args = make();
        let r = match args {
            RecordArgs::Session => Record::Session {
                client: &s.client_id,
            },
            RecordArgs::SessionGone => Record::SessionGone {
                client: &s.client_id,
            },
            RecordArgs::User => Record::User {
                client: &s.client_id,
                username: s.username.as_deref(),
            },
            RecordArgs::Sub(ref filter, qos) => Record::Sub {
                client: &s.client_id,
                filter,
                qos,
            },
            RecordArgs::Unsub(ref filter) => Record::Unsub {
                client: &s.client_id,
                filter,
            },
            RecordArgs::Enqueue(qos, retain, ref msg) => Record::Enqueue {
                client: &s.client_id,
                qos,
                retain: retain.flag(),
                topic: &msg.topic,
                payload: &msg.payload,
            },
            RecordArgs::Id(event, pkid) => Record::Id {
                event,
                client: &s.client_id,
                pkid,
            },
        };
        self.journal.push(&r);
    }

    pub(super) fn record_retain(&mut self, topic: &str, qos: QoS, payload: &[u8]) {
        self.journal.push(&Record::Retain {
            topic,
            qos,
            payload,
        });
    }

    // ----- the journal's inputs and outputs -----

    /// Moves the journal bytes produced since the last call into `buf` (which should be empty)
    /// and says how to write them and the LSN they end at; `None` when there are none. Write
    /// them, sync, then call [`Broker::handle_durable`] with that LSN.
    pub fn poll_journal(&mut self, buf: &mut Vec<u8>) -> Option<(JournalWrite, Lsn)> {
        let j = &mut self.journal;
        if !j.on {
            return None;
        }
        if j.buf.is_empty() && !j.replace {
            return None;
        }
        // Compacted when new records come and the file has grown well past its last snapshot.
        let grown = j.file_bytes > j.compact_min_bytes.max(2 * j.snapshot_bytes);
        if j.replace || grown {
            // The snapshot holds everything the pending records say, so they go.
            j.buf.clear();
            j.replace = false;
            let mut snap = Vec::new();
            self.snapshot(&mut snap);
            Record::Commit.encode(&mut snap);
            let j = &mut self.journal;
            j.end += snap.len() as u64;
            j.file_bytes = snap.len() as u64;
            j.snapshot_bytes = snap.len() as u64;
            *buf = snap;
            return Some((JournalWrite::Replace, j.end));
        }
        j.push(&Record::Commit);
        core::mem::swap(buf, &mut j.buf);
        Some((JournalWrite::Append, j.end))
    }

    /// Everything the journal produced up to `lsn` is durable: held acknowledgements and
    /// publishes waiting on it go out.
    pub fn handle_durable(&mut self, now: Instant, lsn: Lsn) {
        self.advance(now);
        if lsn <= self.journal.durable {
            return;
        }
        self.journal.durable = lsn.min(self.journal.end);
        let durable = self.journal.durable;
        let mut still = Vec::new();
        for conn in core::mem::take(&mut self.held) {
            match self.conns.get_mut(&conn) {
                Some(c) if c.tx_needs > durable => still.push(conn),
                Some(c) => {
                    c.held = false;
                    if !c.dirty && !c.tx.is_empty() {
                        c.dirty = true;
                        self.dirty.push_back(conn);
                    }
                }
                None => {}
            }
        }
        self.held = still;
    }

    /// Journal records produced and not yet reported durable.
    pub fn journal_behind(&self) -> bool {
        self.journal.behind()
    }

    /// The LSN at the end of what the journal has produced (always 0 with persistence off).
    pub(super) fn journal_end(&self) -> Lsn {
        self.journal.end
    }

    /// `conn`'s outgoing bytes wait until the journal is durable up to `lsn`.
    pub(super) fn hold_until(&mut self, conn: super::ConnId, lsn: Lsn) {
        if lsn > self.journal.durable {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.tx_needs = c.tx_needs.max(lsn);
            }
        }
    }

    /// `conn`'s outgoing bytes (those already queued and any added before the next input) wait
    /// until everything the journal has produced so far is durable.
    pub(super) fn hold_for_journal(&mut self, conn: super::ConnId) {
        self.hold_until(conn, self.journal.end);
    }

    // ----- snapshot and restore -----

    /// The whole durable state as a journal: header, then records that rebuild it.
    fn snapshot(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&header());
        for (topic, r) in &self.retained {
            if topic.starts_with("$SYS/") {
                continue; // the running broker's own counters
            }
            Record::Retain {
                topic,
                qos: r.qos,
                payload: &r.msg.payload,
            }
            .encode(out);
        }
        for s in self.sessions.values().filter(|s| !s.clean) {
            let client = s.client_id.as_str();
            Record::Session { client }.encode(out);
            if s.username.is_some() {
                Record::User {
                    client,
                    username: s.username.as_deref(),
                }
                .encode(out);
            }
            for (filter, &qos) in &s.subs {
                Record::Sub {
                    client,
                    filter,
                    qos,
                }
                .encode(out);
            }
            let enqueue = |out: &mut Vec<u8>, qos: QoS, retain: Retain, msg: &Message| {
                Record::Enqueue {
                    client,
                    qos,
                    retain: retain.flag(),
                    topic: &msg.topic,
                    payload: &msg.payload,
                }
                .encode(out);
            };
            // In-flight messages first, in their order, each enqueued then sent under its id.
            for f in s.inflight.iter() {
                enqueue(out, f.qos, f.msg.retain, &f.msg.msg);
                let id = |event| Record::Id {
                    event,
                    client,
                    pkid: f.pkid,
                };
                id(IdEvent::Send).encode(out);
                if f.awaiting == Awaiting::PubComp {
                    id(IdEvent::PubRec).encode(out);
                }
            }
            for q in &s.queue {
                enqueue(out, q.qos, q.retain, &q.msg);
            }
            for pkid in s.incoming_qos2.iter() {
                Record::Id {
                    event: IdEvent::Qos2In,
                    client,
                    pkid,
                }
                .encode(out);
            }
        }
    }

    /// A broker with the state a journal recorded: retained messages and persistent sessions
    /// (offline until their clients connect). Applies records up to the first that is cut short,
    /// corrupt or inconsistent and reports it in [`Recovery::damage`]; fails only on a file that
    /// is not a journal this build reads. Persistence must be on in `config`. The first
    /// [`Broker::poll_journal`] then rewrites the file from the recovered state.
    pub fn restore(
        config: Config,
        now: Instant,
        journal: &[u8],
    ) -> Result<(Broker, Recovery), RestoreError> {
        if journal.len() < 8 || &journal[..8] != MAGIC {
            return Err(RestoreError::NotAJournal);
        }
        let mut b = Broker::new(config, now).map_err(RestoreError::Config)?;
        // Replaying records must not record them again.
        let on = core::mem::replace(&mut b.journal.on, false);
        let mut rec = Recovery {
            records: 0,
            sessions: 0,
            retained: 0,
            messages: 0,
            damage: None,
        };
        if journal.len() < HEADER_BYTES {
            rec.damage = Some(Damage {
                offset: 0,
                dropped_bytes: journal.len() as u64,
                reason: "the header is cut short",
            });
            b.journal.on = on;
            return Ok((b, rec));
        }
        let version = u32::from_le_bytes([journal[8], journal[9], journal[10], journal[11]]);
        if version != VERSION {
            return Err(RestoreError::UnsupportedVersion(version));
        }
        // First the records that are whole, up to the first that is not; then only those up to
        // the last end of a write, applied in order.
        let mut records: Vec<(usize, Record<'_>)> = Vec::new();
        let mut committed = 0; // records before the last commit, the commit included
        let mut torn: Option<(usize, &'static str)> = None;
        let mut at = HEADER_BYTES;
        while at < journal.len() {
            match frame(&journal[at..]) {
                Ok((r, n)) => {
                    let commit = r == Record::Commit;
                    records.push((at, r));
                    if commit {
                        committed = records.len();
                    }
                    at += n;
                }
                Err(reason) => {
                    torn = Some((at, reason));
                    break;
                }
            }
        }
        let mut damage = match (records.get(committed), torn) {
            // Whole records after the last commit: their write was cut short.
            (Some(&(offset, _)), Some((_, reason))) => Some((offset, reason)),
            (Some(&(offset, _)), None) => Some((offset, "the last write is cut short")),
            (None, torn) => torn,
        };
        for (offset, r) in records.iter().take(committed) {
            if let Err(reason) = b.apply(r) {
                damage = Some((*offset, reason));
                break;
            }
            if *r != Record::Commit {
                rec.records += 1;
            }
        }
        rec.damage = damage.map(|(offset, reason)| Damage {
            offset: offset as u64,
            dropped_bytes: (journal.len() - offset) as u64,
            reason,
        });
        b.journal.on = on;
        rec.sessions = b.sessions.len();
        rec.retained = b
            .retained
            .keys()
            .filter(|t| !t.starts_with("$SYS/"))
            .count();
        rec.messages = b
            .sessions
            .values()
            .map(|s| s.inflight.len() + s.queue.len())
            .sum();
        Ok((b, rec))
    }

    /// Applies one record to a broker being restored; an error names what does not fit.
    fn apply(&mut self, r: &Record<'_>) -> Result<(), &'static str> {
        let now = self.now;
        let sid_of = |b: &Broker, client: &str| -> Result<SessionId, &'static str> {
            b.by_client_id
                .get(client)
                .copied()
                .ok_or("a record names a session that does not exist")
        };
        match *r {
            Record::Commit => {}
            Record::Retain {
                topic,
                qos,
                payload,
            } => {
                if payload.is_empty() {
                    self.retained.remove(topic);
                } else {
                    let msg = Arc::new(Message {
                        topic: topic.to_string(),
                        payload: payload.to_vec(),
                        forward_after: 0,
                    });
                    self.retained
                        .insert(topic.to_string(), Retained { qos, msg });
                }
            }
            Record::Session { client } => {
                if self.by_client_id.contains_key(client) {
                    return Err("a session is created twice");
                }
                let sid = self.next_session;
                self.next_session += 1;
                self.sessions
                    .insert(sid, Session::new(client.to_string(), false));
                self.by_client_id.insert(client.to_string(), sid);
            }
            Record::SessionGone { client } => {
                let sid = sid_of(self, client)?;
                self.destroy_session(sid);
            }
            Record::User { client, username } => {
                let sid = sid_of(self, client)?;
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.username = username.map(ToString::to_string);
                }
            }
            Record::Sub {
                client,
                filter,
                qos,
            } => {
                let sid = sid_of(self, client)?;
                if !crate::topic::valid_topic_filter(filter) {
                    return Err("a subscription has an invalid filter");
                }
                self.tree.insert(filter, sid, qos);
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.subs.insert(filter.to_string(), qos);
                }
            }
            Record::Unsub { client, filter } => {
                let sid = sid_of(self, client)?;
                self.tree.remove(filter, sid);
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.subs.remove(filter);
                }
            }
            Record::Enqueue {
                client,
                qos,
                retain,
                topic,
                payload,
            } => {
                let sid = sid_of(self, client)?;
                if qos == QoS::AtMostOnce {
                    return Err("a queued message has QoS 0");
                }
                let msg = Arc::new(Message {
                    topic: topic.to_string(),
                    payload: payload.to_vec(),
                    forward_after: 0,
                });
                let retain = if retain { Retain::Yes } else { Retain::No };
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.push_queue(Queued { qos, retain, msg });
                }
            }
            Record::Id {
                event,
                client,
                pkid,
            } => {
                let sid = sid_of(self, client)?;
                let s = self.sessions.get_mut(&sid).ok_or("no session")?;
                match event {
                    IdEvent::Send => {
                        let q = s
                            .pop_queue()
                            .ok_or("a message is sent from an empty queue")?;
                        let out = super::session::Outgoing {
                            retain: q.retain,
                            msg: q.msg,
                        };
                        s.inflight
                            .start_with_id(now, q.qos, pkid, out)
                            .map_err(|_| "a packet identifier is used twice")?;
                    }
                    IdEvent::PubRec => {
                        let known = s.inflight.on_pubrec(now, pkid).0;
                        if known == crate::qos::PubRecOutcome::Unknown {
                            return Err("PUBREC for a message not in flight");
                        }
                    }
                    IdEvent::Done => {
                        if s.inflight.on_puback(pkid).is_none()
                            && s.inflight.on_pubcomp(pkid).is_none()
                        {
                            return Err("a message finishes that is not in flight");
                        }
                    }
                    IdEvent::Qos2In => {
                        s.incoming_qos2.on_publish(pkid);
                    }
                    IdEvent::Qos2Released => s.incoming_qos2.on_pubrel(pkid),
                }
            }
        }
        Ok(())
    }
}

/// What [`Broker::record_session`] records about a session.
pub(super) enum RecordArgs {
    Session,
    SessionGone,
    User,
    Sub(String, QoS),
    Unsub(String),
    Enqueue(QoS, Retain, Arc<Message>),
    Id(IdEvent, u16),
}
