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
//! A file starts with [`MAGIC`](record::MAGIC) and a little-endian `u32` version, then records:
//! `len: u32 LE` (of what follows the checksum), `crc32: u32 LE` (of the same bytes), `kind: u8`,
//! then the fields: strings and topics as `u16 LE` length + bytes, payloads as `u32 LE` length +
//! bytes, QoS and flags as one byte, packet identifiers as `u16 LE`. [`Broker::restore`] replays
//! records up to the first one that is cut short, fails its checksum, or does not fit the state
//! so far, and says what it dropped there.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::session::Retain;
use super::{Broker, Config, Message, SessionId};
use crate::codec::QoS;
use crate::time::{Duration, Instant};

mod record;
mod restore;

pub(in crate::broker) use record::IdEvent;
use record::Record;
#[cfg(test)]
pub(in crate::broker) use record::{header, HEADER_BYTES};
pub use restore::{Damage, Recovery, RestoreError};

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
    /// The next poll writes a whole new file (after a restore, to compact, or an autosave).
    replace: bool,
    compact_min_bytes: u64,
    /// `autosave_interval` is set: no records, only snapshots when saved (see
    /// [`Config::autosave_interval`](super::Config::autosave_interval)).
    autosave: bool,
}

impl Journal {
    pub(super) fn new(config: &Config) -> Journal {
        let autosave = config.persistence && config.autosave_interval != Duration::ZERO;
        Journal {
            on: config.persistence,
            compact_min_bytes: config.journal_compact_min_bytes as u64,
            // A new broker starts its file from scratch: a journal left by an earlier run is read
            // with `Broker::restore`, never appended to blindly. With autosave, as mosquitto,
            // nothing is written before the first save (the file read at start stays).
            replace: config.persistence && !autosave,
            autosave,
            ..Journal::default()
        }
    }

    /// Snapshots on a timer instead of a write-ahead journal.
    pub(super) fn autosave(&self) -> bool {
        self.autosave
    }

    fn push(&mut self, r: &Record<'_>) {
        if !self.on || self.autosave {
            // With autosave the change lives in memory until the next snapshot.
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

    /// With [`Config::autosave_interval`](super::Config::autosave_interval): the next
    /// [`Broker::poll_journal`] hands over a whole snapshot of the state. What the caller does at
    /// a clean stop, before taking the journal's last writes, as mosquitto saves on its way out
    /// (mosquitto.c:588 `persist__backup(true)`); the autosave timer calls it too. A no-op
    /// otherwise: the write-ahead journal holds every change already, and without persistence
    /// there is nothing to save. A save is announced as mosquitto announces each
    /// `persist__backup()` (persist_write.c:335), at an autosave and at the stop alike.
    pub fn save_now(&mut self) {
        if self.journal.on && self.journal.autosave {
            self.journal.replace = true;
            self.notice(|| alloc::string::String::from("Saving in-memory database."));
        }
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
        // With autosave nothing waits for the disk: mosquitto acknowledges from memory.
        if lsn > self.journal.durable && !self.journal.autosave {
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
