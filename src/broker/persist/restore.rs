//! The durable state as records and back: the snapshot that starts a compacted journal, and
//! [`Broker::restore`], which replays a journal (up to its first damaged record) into a broker.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::record::{frame, header, IdEvent, Record, HEADER_BYTES, MAGIC, VERSION};
use crate::broker::session::{Queued, Retain, Session};
use crate::broker::{Broker, Config, ConfigError, Message, Retained, SessionId};
use crate::codec::QoS;
use crate::qos::Awaiting;
use crate::time::Instant;

/// Where a journal stops making sense, and how much is dropped from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file of the first record not applied.
    pub offset: u64,
    /// Bytes from there to the end of the file, dropped.
    pub dropped_bytes: u64,
    /// What is wrong there, as a sentence ("the last record is cut short", "a record fails its
    /// checksum", "a session is created twice").
    pub reason: &'static str,
}

/// What [`Broker::restore`] recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Records applied.
    pub records: u64,
    /// Persistent sessions restored (offline until their clients connect).
    pub sessions: usize,
    /// Retained messages restored.
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
    /// `config` has a setting out of range ([`Config::validate`]).
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
    /// The whole durable state as a journal: header, then records that rebuild it.
    pub(super) fn snapshot(&self, out: &mut Vec<u8>) {
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
            let client: &str = &s.client_id;
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
                let client: alloc::sync::Arc<str> = alloc::sync::Arc::from(client);
                self.sessions
                    .insert(sid, Box::new(Session::new(client.clone(), false)));
                self.by_client_id.insert(client, sid);
            }
            Record::SessionGone { client } => {
                let sid = sid_of(self, client)?;
                self.destroy_session(sid);
            }
            Record::User { client, username } => {
                let sid = sid_of(self, client)?;
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.username = username.map(Into::into);
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
                        let out = crate::broker::session::Outgoing {
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
