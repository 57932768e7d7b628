//! A disk for the broker's journal in property tests, written here from the journal contract in
//! `mqsim::broker::persist` (not from its code): what `Broker::poll_journal` hands over is first
//! taken into the caller's memory (`pull`), then written (`write`), then synced (`sync`, which
//! reports the LSN to `Broker::handle_durable`); a test decides when each step happens.
//!
//! A power cut (`cut`) keeps what was synced plus a prefix of the bytes written since, as a file
//! system that writes in order may. A `JournalWrite::Replace` is written beside the file and
//! renamed over it once synced, so a cut before that sync keeps the old file.

// Shared by several test crates, each using part of it.
#![allow(dead_code)]

use std::collections::VecDeque;

use mqsim::broker::{Broker, JournalWrite, Lsn};
use mqsim::time::Instant;
use proptest::sample::Index;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub replace: bool,
    pub lsn: Lsn,
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
pub struct Disk {
    /// Polled, not yet written.
    staged: VecDeque<Chunk>,
    /// The file: `file[..synced]` is durable.
    file: Vec<u8>,
    synced: usize,
    /// Offsets in `file` where a written chunk ends.
    bounds: Vec<usize>,
    /// A replacement being written beside the file (renamed over it at the next sync), and the
    /// offsets where its chunks end.
    next: Option<(Vec<u8>, Vec<usize>)>,
    /// The file holds whole records only (it is not what a cut left damaged, or a replacement
    /// was synced since).
    whole: bool,
    /// LSN at the end of the last chunk written.
    written: Lsn,
    /// LSN last reported durable.
    pub durable: Lsn,
    /// LSN at the end of everything polled.
    pub end: Lsn,
    /// Every chunk polled since the disk was made, in order (for determinism checks).
    pub polled: Vec<Chunk>,
}

impl Default for Disk {
    fn default() -> Disk {
        Disk {
            staged: VecDeque::new(),
            file: Vec::new(),
            synced: 0,
            bounds: Vec::new(),
            next: None,
            whole: true,
            written: 0,
            durable: 0,
            end: 0,
            polled: Vec::new(),
        }
    }
}

impl Disk {
    /// Takes every journal write the broker has into memory; true if there was any.
    pub fn pull(&mut self, b: &mut Broker) -> bool {
        let mut any = false;
        let mut buf = Vec::new();
        while let Some((how, lsn)) = b.poll_journal(&mut buf) {
            assert!(
                lsn > self.end,
                "poll_journal LSN {lsn} not past the previous {}",
                self.end
            );
            assert!(!buf.is_empty(), "poll_journal gave LSN {lsn} and no bytes");
            self.end = lsn;
            let c = Chunk {
                replace: how == JournalWrite::Replace,
                lsn,
                bytes: std::mem::take(&mut buf),
            };
            self.polled.push(c.clone());
            self.staged.push_back(c);
            any = true;
        }
        any
    }

    /// Writes up to `n` staged chunks (not synced).
    pub fn write(&mut self, n: usize) {
        for _ in 0..n {
            let Some(c) = self.staged.pop_front() else {
                return;
            };
            self.written = c.lsn;
            if c.replace {
                let len = c.bytes.len();
                self.next = Some((c.bytes, vec![len]));
            } else if let Some((next, bounds)) = &mut self.next {
                next.extend_from_slice(&c.bytes);
                bounds.push(next.len());
            } else {
                self.file.extend_from_slice(&c.bytes);
                self.bounds.push(self.file.len());
            }
        }
    }

    /// Syncs what was written and reports it durable.
    pub fn sync(&mut self, b: &mut Broker, now: Instant) {
        if let Some((next, bounds)) = self.next.take() {
            self.file = next;
            self.bounds = bounds;
            self.whole = true;
        }
        self.synced = self.file.len();
        if self.written > self.durable {
            self.durable = self.written;
            b.handle_durable(now, self.written);
        }
    }

    /// Pull, write and sync everything.
    pub fn flush(&mut self, b: &mut Broker, now: Instant) {
        self.pull(b);
        self.write(usize::MAX);
        self.sync(b, now);
    }

    /// What a power cut leaves: the synced bytes and a prefix (chosen by `keep`) of the bytes
    /// written after them; and whether that is whole records only (the cut falls where a written
    /// chunk ends, in a file that was whole).
    pub fn cut(&self, keep: Index) -> (Vec<u8>, bool) {
        self.cut_keeping(keep.index(self.file.len() - self.synced + 1))
    }

    /// [`Disk::cut`] where the bytes kept end with a whole write (the writes after the last sync
    /// that reached the disk, whole, in order; `keep` picks how many).
    pub fn cut_whole_writes(&self, keep: Index) -> (Vec<u8>, bool) {
        let ends: Vec<usize> = std::iter::once(self.synced)
            .chain(self.bounds.iter().copied().filter(|&b| b > self.synced))
            .collect();
        let at = ends[keep.index(ends.len())];
        self.cut_keeping(at - self.synced)
    }

    /// [`Disk::cut`] keeping `n` of the bytes written since the last sync.
    pub fn cut_keeping(&self, n: usize) -> (Vec<u8>, bool) {
        let at = self.synced + n.min(self.file.len() - self.synced);
        let boundary = at == self.synced || self.bounds.contains(&at);
        (self.file[..at].to_vec(), boundary && self.whole)
    }

    /// The disk after a cut that left `file` (`whole`: without damage), for a broker restored
    /// from it: nothing staged or pending, LSNs from zero (a new broker counts its own).
    pub fn after_cut(&mut self, file: Vec<u8>, whole: bool) {
        let len = file.len();
        *self = Disk {
            bounds: vec![len],
            synced: len,
            whole,
            file,
            polled: std::mem::take(&mut self.polled),
            ..Disk::default()
        };
    }

    /// The whole durable file.
    pub fn file(&self) -> &[u8] {
        &self.file[..self.synced]
    }
}
