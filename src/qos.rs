//! The QoS 1/2 flow, written once and used by both ends: a broker session delivering to its
//! client and the client publishing to its broker run the same sender state machine, and both
//! receive QoS 2 the same way (MQTT 3.1.1 section 4.3).
//!
//! * [`PacketIds`]: packet identifiers in use, allocated from 1 upwards, wrapping, skipping 0 and
//!   every identifier still in use (MQTT-2.3.1-2), in `O(log n)`.
//! * [`Window`]: the outgoing QoS 1/2 messages awaiting acknowledgement, in the order they were
//!   first sent, each in an [`Awaiting`] state; bounded by the caller's `max_inflight_messages`.
//!   It owns its [`PacketIds`], which the client also draws on for SUBSCRIBE/UNSUBSCRIBE.
//! * [`IncomingQos2`]: identifiers of QoS 2 messages delivered and not yet released
//!   (MQTT-4.3.3-2): a re-sent duplicate is acknowledged, not delivered twice.
//!
//! Nothing here encodes or sends: each method says what the caller must send (PUBREL, PUBCOMP, a
//! re-sent PUBLISH), so the broker and the client keep their own output buffers and logging.

use alloc::boxed::Box;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

use crate::codec::QoS;
use crate::time::Instant;

/// Packet identifiers in use by one sender.
///
/// A short list while few are in use (a window of 20 is mosquitto's default: a scan of a few
/// cache lines beats a tree there), a `BTreeSet` past [`PacketIds::LIST_MAX`] so that a window
/// of 65,535 stays `O(log n)` per identifier.
#[derive(Debug, Default)]
pub struct PacketIds {
    small: Vec<u16>,
    large: BTreeSet<u16>,
    last: u16,
}

impl PacketIds {
    /// Identifiers kept in the list before moving to the tree.
    pub const LIST_MAX: usize = 64;

    /// The next identifier after the last one handed out that is not in use, or `None` when all
    /// 65,535 are.
    pub fn alloc(&mut self) -> Option<u16> {
        if self.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.last = self.last.wrapping_add(1);
            if self.last != 0 && !self.contains(self.last) {
                self.insert(self.last);
                return Some(self.last);
            }
        }
    }

    fn insert(&mut self, id: u16) {
        if self.large.is_empty() && self.small.len() < Self::LIST_MAX {
            self.small.push(id);
            return;
        }
        if !self.small.is_empty() {
            self.large.extend(self.small.drain(..));
        }
        self.large.insert(id);
    }

    /// Marks `id` in use, as if just allocated (a restored session's); false if it already is.
    pub fn take(&mut self, id: u16) -> bool {
        if id == 0 || self.contains(id) {
            return false;
        }
        self.insert(id);
        self.last = id;
        true
    }

    /// `id` is free again (its acknowledgement arrived).
    pub fn release(&mut self, id: u16) {
        if let Some(i) = self.small.iter().position(|&x| x == id) {
            self.small.swap_remove(i);
        } else {
            self.large.remove(&id);
        }
    }

    /// Identifiers in use.
    pub fn len(&self) -> usize {
        self.small.len() + self.large.len()
    }

    /// No identifier in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is in use (allocated and not released).
    pub fn contains(&self, id: u16) -> bool {
        self.small.contains(&id) || self.large.contains(&id)
    }
}

/// Which acknowledgement an outgoing QoS 1/2 message awaits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// QoS 1 PUBLISH sent, PUBACK awaited.
    PubAck,
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    PubRec,
    /// QoS 2 PUBREL sent, PUBCOMP awaited: the receiver owns the message now.
    PubComp,
}

/// One message in the window.
#[derive(Debug)]
pub struct InFlight<M> {
    /// Its packet identifier, held until the flow completes.
    pub pkid: u16,
    /// QoS 1 or 2; fixes which acknowledgements complete it.
    pub qos: QoS,
    /// The acknowledgement that moves it on.
    pub awaiting: Awaiting,
    /// When the PUBLISH (or, once PUBREC arrived, the PUBREL) was last sent: for re-sending
    /// while connected (esp-mqtt's behaviour).
    pub sent_at: Instant,
    /// The message itself, in the owner's type (the broker's shared message, the client's outbox).
    pub msg: M,
}

/// What to send again for an in-flight message when the session resumes (MQTT-4.4.0-1) or a
/// re-send timer fires: the PUBLISH with DUP = 1 and its identifier, or the PUBREL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// The PUBLISH again, with DUP = 1 and the same identifier (PUBACK or PUBREC not yet received).
    Publish,
    /// The PUBREL again (PUBREC received, PUBCOMP not yet).
    PubRel,
}

/// What a PUBREC means for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubRecOutcome {
    /// Send PUBREL with this identifier (again, if PUBREC was re-sent).
    SendPubRel,
    /// No QoS 2 message has this identifier: ignore it.
    Unknown,
}

/// The outgoing QoS 1/2 messages awaiting acknowledgement, oldest first.
#[derive(Debug)]
pub struct Window<M> {
    /// Boxed on first use: an idle broker session never sends at QoS 1/2, so it pays one word
    /// for its window. Kept once made (the identifier sequence goes on).
    inner: Option<Box<WindowInner<M>>>,
}

#[derive(Debug)]
struct WindowInner<M> {
    entries: VecDeque<InFlight<M>>,
    ids: PacketIds,
}

impl<M> Default for Window<M> {
    fn default() -> Self {
        Window { inner: None }
    }
}

impl<M> Window<M> {
    /// Messages in flight.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |w| w.entries.len())
    }

    /// Nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for one more message under `max_inflight_messages`, with an identifier free for it.
    pub fn has_room(&self, max_inflight_messages: usize) -> bool {
        self.len() < max_inflight_messages
            && self.inner.as_ref().map_or(0, |w| w.ids.len()) < usize::from(u16::MAX)
    }

    fn inner(&mut self) -> &mut WindowInner<M> {
        self.inner.get_or_insert_with(|| {
            Box::new(WindowInner {
                entries: VecDeque::new(),
                ids: PacketIds::default(),
            })
        })
    }

    /// The identifiers in use: this window's and any the owner reserved for other requests.
    pub fn ids(&mut self) -> &mut PacketIds {
        &mut self.inner().ids
    }

    /// Puts a QoS 1/2 message into the window under a fresh identifier, awaiting its first
    /// acknowledgement; returns the identifier to send it with. `None` when no identifier is free
    /// (QoS 0 has no place here either: it is never acknowledged).
    pub fn start(&mut self, now: Instant, qos: QoS, msg: M) -> Result<u16, M> {
        if qos == QoS::AtMostOnce {
            return Err(msg);
        }
        let Some(pkid) = self.ids().alloc() else {
            return Err(msg);
        };
        self.push(now, qos, pkid, msg);
        Ok(pkid)
    }

    /// Appends a QoS 1/2 message whose identifier is taken, awaiting its first acknowledgement.
    fn push(&mut self, now: Instant, qos: QoS, pkid: u16, msg: M) {
        let awaiting = match qos {
            QoS::ExactlyOnce => Awaiting::PubRec,
            QoS::AtLeastOnce | QoS::AtMostOnce => Awaiting::PubAck,
        };
        self.inner().entries.push_back(InFlight {
            pkid,
            qos,
            awaiting,
            sent_at: now,
            msg,
        });
    }

    /// Puts a message into the window under a given identifier (a restored session's), awaiting
    /// its first acknowledgement. Fails when the identifier is 0 or in use, or for QoS 0.
    pub fn start_with_id(&mut self, now: Instant, qos: QoS, pkid: u16, msg: M) -> Result<(), M> {
        if qos == QoS::AtMostOnce || !self.ids().take(pkid) {
            return Err(msg);
        }
        self.push(now, qos, pkid, msg);
        Ok(())
    }

    /// PUBACK: the QoS 1 message with this identifier is done. `None` for an unknown identifier
    /// or one that awaits something else.
    pub fn on_puback(&mut self, pkid: u16) -> Option<InFlight<M>> {
        self.complete(pkid, Awaiting::PubAck)
    }

    /// PUBCOMP: the QoS 2 message with this identifier is done.
    pub fn on_pubcomp(&mut self, pkid: u16) -> Option<InFlight<M>> {
        self.complete(pkid, Awaiting::PubComp)
    }

    fn complete(&mut self, pkid: u16, expect: Awaiting) -> Option<InFlight<M>> {
        let w = self.inner.as_mut()?;
        let i = w
            .entries
            .iter()
            .position(|f| f.pkid == pkid && f.awaiting == expect)?;
        let f = w.entries.remove(i)?;
        w.ids.release(pkid);
        Some(f)
    }

    /// PUBREC: the receiver owns the QoS 2 message; PUBREL is (re-)sent. A PUBREC for a QoS 1
    /// message or an unknown identifier is ignored.
    pub fn on_pubrec(&mut self, now: Instant, pkid: u16) -> (PubRecOutcome, Option<&mut M>) {
        match self.inner.as_mut().and_then(|w| {
            w.entries
                .iter_mut()
                .find(|f| f.pkid == pkid && f.qos == QoS::ExactlyOnce)
        }) {
            Some(f) => {
                f.awaiting = Awaiting::PubComp;
                f.sent_at = now;
                (PubRecOutcome::SendPubRel, Some(&mut f.msg))
            }
            None => (PubRecOutcome::Unknown, None),
        }
    }

    /// What to send again for each message, in the original order (MQTT-4.4.0-1): for a
    /// resumed session, every one; with `older_than`, only those last sent before it (the
    /// re-send timer), which are stamped `now`.
    pub fn resend(
        &mut self,
        now: Instant,
        older_than: Option<Instant>,
    ) -> impl Iterator<Item = (Resend, &InFlight<M>)> + '_ {
        self.inner
            .iter_mut()
            .flat_map(|w| w.entries.iter_mut())
            .filter_map(move |f| {
                if older_than.is_some_and(|t| f.sent_at > t) {
                    return None;
                }
                f.sent_at = now;
                let what = match f.awaiting {
                    Awaiting::PubAck | Awaiting::PubRec => Resend::Publish,
                    Awaiting::PubComp => Resend::PubRel,
                };
                Some((what, &*f))
            })
    }

    /// The earliest time a message in the window was last sent.
    pub fn oldest_sent_at(&self) -> Option<Instant> {
        self.iter().map(|f| f.sent_at).min()
    }

    /// The messages in flight, oldest first (the order they are re-sent in).
    pub fn iter(&self) -> impl Iterator<Item = &InFlight<M>> + '_ {
        self.inner.iter().flat_map(|w| w.entries.iter())
    }

    /// Empties the window (the peer forgot the session), releasing every identifier, oldest
    /// first.
    pub fn drain(&mut self) -> impl Iterator<Item = InFlight<M>> + '_ {
        self.inner.iter_mut().flat_map(|w| {
            for f in &w.entries {
                w.ids.release(f.pkid);
            }
            w.entries.drain(..)
        })
    }

    /// Removes the messages for which `expired` says so, releasing their identifiers, and hands
    /// each to `gone`, oldest first.
    pub fn remove_where(
        &mut self,
        mut expired: impl FnMut(&InFlight<M>) -> bool,
        mut gone: impl FnMut(InFlight<M>),
    ) {
        let Some(w) = self.inner.as_mut() else {
            return;
        };
        let mut kept = VecDeque::with_capacity(w.entries.len());
        for f in w.entries.drain(..) {
            if expired(&f) {
                w.ids.release(f.pkid);
                gone(f);
            } else {
                kept.push_back(f);
            }
        }
        w.entries = kept;
    }
}

/// Incoming QoS 2 identifiers delivered and not yet released (MQTT-4.3.3-2).
#[derive(Debug, Default)]
pub struct IncomingQos2 {
    /// Boxed, and only while one is awaited: most sessions never receive QoS 2 (one word
    /// instead of a `BTreeSet`'s three in every session).
    #[allow(clippy::box_collection)]
    ids: Option<Box<BTreeSet<u16>>>,
}

impl IncomingQos2 {
    /// A QoS 2 PUBLISH arrived: deliver it (true) unless this identifier awaits PUBREL already
    /// (a re-sent duplicate). Either way the caller answers PUBREC.
    pub fn on_publish(&mut self, pkid: u16) -> bool {
        self.ids.get_or_insert_with(Box::default).insert(pkid)
    }

    /// PUBREL: the identifier is released. The caller answers PUBCOMP even for an unknown one,
    /// so the sender can finish (MQTT-4.3.3).
    pub fn on_pubrel(&mut self, pkid: u16) {
        if let Some(ids) = self.ids.as_mut() {
            ids.remove(&pkid);
            if ids.is_empty() {
                self.ids = None;
            }
        }
    }

    /// The identifiers awaiting PUBREL, in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.ids.iter().flat_map(|ids| ids.iter().copied())
    }

    /// Forgets every identifier (the session is gone, so no PUBREL can come for them).
    pub fn clear(&mut self) {
        self.ids = None;
    }

    /// Identifiers awaiting PUBREL.
    pub fn len(&self) -> usize {
        self.ids.as_ref().map_or(0, |ids| ids.len())
    }

    /// No QoS 2 message awaits its PUBREL.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
