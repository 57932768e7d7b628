//! One subscriber's loss and duplicate accounting: which `(publisher, seq)` it has received, as
//! one bitset per publisher.

use super::stamp::Stamp;

/// One bit per sequence number.
#[derive(Clone, Debug)]
struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    fn new(len: u32) -> SeqSet {
        SeqSet {
            words: vec![0; (len as usize).div_ceil(64)],
        }
    }

    /// Sets bit `i`; true if it was clear.
    #[inline]
    fn insert(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        let fresh = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        fresh
    }
}

/// How a received message counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// First delivery of this (publisher, seq).
    New,
    /// Already delivered to this subscriber.
    Duplicate,
    /// Not a message of this run (too short, or publisher/sequence out of range).
    Unexpected,
}

/// One subscriber's loss and duplicate accounting: a bitset per publisher.
#[derive(Clone, Debug)]
pub struct Tracker {
    seen: Vec<SeqSet>,
    messages: u32,
    /// Every PUBLISH received, duplicates and unexpected ones included.
    pub received: u64,
    /// Distinct (publisher, seq) received.
    pub unique: u64,
    /// PUBLISHes that were not messages of this run.
    pub unexpected: u64,
}

impl Tracker {
    /// Accounting for `publishers` publishers of `messages` messages each.
    pub fn new(publishers: u32, messages: u32) -> Tracker {
        Tracker {
            seen: (0..publishers).map(|_| SeqSet::new(messages)).collect(),
            messages,
            received: 0,
            unique: 0,
            unexpected: 0,
        }
    }

    /// Messages this subscriber should get: publishers x messages.
    pub fn expected(&self) -> u64 {
        self.seen.len() as u64 * u64::from(self.messages)
    }

    /// Counts one received PUBLISH, given its decoded stamp.
    #[inline]
    pub fn record(&mut self, stamp: Option<Stamp>) -> Seen {
        self.received += 1;
        let Some(s) = stamp.filter(|s| s.seq < self.messages) else {
            self.unexpected += 1;
            return Seen::Unexpected;
        };
        let Some(set) = self.seen.get_mut(s.publisher as usize) else {
            self.unexpected += 1;
            return Seen::Unexpected;
        };
        if set.insert(s.seq) {
            self.unique += 1;
            Seen::New
        } else {
            Seen::Duplicate
        }
    }

    /// Received more than once (unexpected messages are not duplicates).
    pub fn duplicated(&self) -> u64 {
        self.received - self.unique - self.unexpected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(publisher: u32, seq: u32) -> Option<Stamp> {
        Some(Stamp {
            publisher,
            seq,
            sent_ns: 0,
        })
    }

    #[test]
    fn tracker_counts_unique_duplicates_and_strangers() {
        let mut t = Tracker::new(2, 100);
        assert_eq!(t.expected(), 200);
        assert_eq!(t.record(stamp(0, 0)), Seen::New);
        assert_eq!(t.record(stamp(1, 0)), Seen::New); // Same seq, other publisher.
        assert_eq!(t.record(stamp(0, 99)), Seen::New); // Last seq.
        assert_eq!(t.record(stamp(0, 63)), Seen::New);
        assert_eq!(t.record(stamp(0, 64)), Seen::New); // Word boundary.
        assert_eq!(t.record(stamp(0, 0)), Seen::Duplicate);
        assert_eq!(t.record(stamp(0, 64)), Seen::Duplicate);
        assert_eq!(t.record(stamp(0, 64)), Seen::Duplicate);
        assert_eq!(t.record(stamp(2, 0)), Seen::Unexpected); // No such publisher.
        assert_eq!(t.record(stamp(0, 100)), Seen::Unexpected); // Beyond N.
        assert_eq!(t.record(None), Seen::Unexpected); // Too short.
        assert_eq!(t.received, 11);
        assert_eq!(t.unique, 5);
        assert_eq!(t.duplicated(), 3);
        assert_eq!(t.unexpected, 3);
    }

    #[test]
    fn tracker_complete_when_every_message_seen_once() {
        let mut t = Tracker::new(3, 1000);
        for seq in (0..1000).rev() {
            for p in 0..3 {
                assert_eq!(t.record(stamp(p, seq)), Seen::New);
            }
        }
        assert_eq!(t.unique, t.expected());
        assert_eq!(t.duplicated(), 0);
    }
}
