//! The broker host's disk, for a broker with persistence: the
//! [`JournalStore`] of the simulator, in virtual time.
//!
//! # What is modelled
//! - A write lands in the page cache at once; a sync takes [`Disk::sync_ms`] of simulated time
//!   (eMMC or SSD `fdatasync`), after which everything written before it is durable. While a sync
//!   runs the broker keeps working and its next records queue up for the next sync (the adapter's
//!   group commit).
//! - A journal rewrite (compaction) is a new file synced and renamed over the old one: at a power
//!   cut either the old file or the new one is there, never a mix.
//! - A power cut (`broker-power-cut`) keeps what was synced plus a seeded prefix of what was
//!   written and not yet synced: the page cache may have reached the disk in part, so the file can
//!   end in the middle of a record, which the broker's restore has to cut off. A clean stop
//!   (`broker-restart`) keeps everything written: the OS writes its cache back.
//!
//! # What is not modelled
//! Pages written out of order (a later page durable before an earlier one), bit rot, a full
//! disk, a failing sync: the real broker stops on a failed write; here writes never fail.

use std::sync::{Arc, Mutex};

use mqsim::broker::JournalWrite;
use mqsim_broker::JournalStore;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Simulated time one sync takes, by default: a few milliseconds, as an eMMC or SSD fsync.
pub const DISK_SYNC_DEFAULT_MS: u64 = 2;

#[derive(Debug, Default)]
struct State {
    /// The journal file as the disk holds it for sure.
    durable: Vec<u8>,
    /// Appended after `durable`, in the page cache only.
    cached: Vec<u8>,
    syncs: u64,
    /// A damaged journal the broker copied aside at start-up (its `.damaged` file).
    kept: Option<Vec<u8>>,
}

/// The broker host's disk; clone it to share it between the host's incarnations.
#[derive(Clone, Debug)]
pub struct Disk {
    state: Arc<Mutex<State>>,
    rng: Arc<Mutex<ChaCha8Rng>>,
    sync_ms: u64,
}

impl Disk {
    pub fn new(seed: u64, sync_ms: u64) -> Self {
        Disk {
            state: Arc::default(),
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
            sync_ms,
        }
    }

    pub fn sync_ms(&self) -> u64 {
        self.sync_ms
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // One thread runs the simulation; a poisoned lock only follows a panic already reported.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The journal as a broker starting now reads it; empty when there is none.
    pub fn contents(&self) -> Vec<u8> {
        let s = self.state();
        let mut f = s.durable.clone();
        f.extend_from_slice(&s.cached);
        f
    }

    /// Keeps a copy of a damaged journal, as the real broker keeps `PATH.damaged`.
    pub fn keep_damaged(&self, bytes: &[u8]) {
        self.state().kept = Some(bytes.to_vec());
    }

    /// Syncs completed so far.
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    /// Power is cut: the page cache is gone, but a seeded part of it may have reached the disk.
    /// Returns how many written bytes were lost.
    pub fn power_cut(&self) -> usize {
        let mut s = self.state();
        let cached = std::mem::take(&mut s.cached);
        let kept = match cached.len() {
            0 => 0,
            n => {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                (rng.next_u64() % (n as u64 + 1)) as usize
            }
        };
        s.durable.extend_from_slice(&cached[..kept]);
        cached.len() - kept
    }

    /// A clean stop: the OS writes its cache back.
    pub fn flush(&self) {
        let mut s = self.state();
        let cached = std::mem::take(&mut s.cached);
        s.durable.extend_from_slice(&cached);
    }

    /// The journal store a broker incarnation writes through.
    pub fn store(&self) -> DiskJournal {
        DiskJournal { disk: self.clone() }
    }
}

/// One broker incarnation's handle on the [`Disk`].
pub struct DiskJournal {
    disk: Disk,
}

impl Disk {
    /// A journal write begins: an append lands in the page cache at once (a rewrite goes to a
    /// new file, invisible until its rename). It is durable once [`Disk::write_synced`] is
    /// called [`Disk::sync_ms`] later. The direct engine calls the two at their simulated
    /// times; [`DiskJournal`] awaits the sync between them.
    pub fn write_begin(&self, how: JournalWrite, bytes: &[u8]) {
        if how == JournalWrite::Append {
            self.state().cached.extend_from_slice(bytes);
        }
    }

    /// The sync of the write begun with [`Disk::write_begin`] completed.
    pub fn write_synced(&self, how: JournalWrite, bytes: &[u8]) {
        let mut s = self.state();
        match how {
            JournalWrite::Append => {
                let cached = std::mem::take(&mut s.cached);
                s.durable.extend_from_slice(&cached);
            }
            // Written beside the old file and synced; only the rename makes it the journal.
            JournalWrite::Replace => {
                s.durable = bytes.to_vec();
                s.cached.clear();
            }
        }
        s.syncs += 1;
    }
}

impl JournalStore for DiskJournal {
    fn commit(
        &mut self,
        how: JournalWrite,
        bytes: Vec<u8>,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<u8>>> + Send {
        let disk = self.disk.clone();
        async move {
            let sync = std::time::Duration::from_millis(disk.sync_ms);
            disk.write_begin(how, &bytes);
            tokio::time::sleep(sync).await;
            disk.write_synced(how, &bytes);
            let mut bytes = bytes;
            bytes.clear();
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests;
