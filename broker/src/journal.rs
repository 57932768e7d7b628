//! The real broker's persistence journal: one append-only file, synced once per group of
//! writes, rewritten from a snapshot when the core compacts it.
//!
//! Why a file of our own rather than an embedded store: the core already decides what to write
//! and when it must be durable (a journal of small records, one sync for every client's writes
//! that arrived while the last sync ran); an append plus `fdatasync` is the least a store could
//! do for that, and a power cut can only cut the file short, which the restore handles.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mqsim::broker::JournalWrite;

use crate::adapter::JournalStore;

/// The journal file at `path`. Nothing is written until the broker's first write, which replaces
/// the whole file with the state the broker starts from.
pub struct FileJournal {
    path: PathBuf,
    file: Option<File>,
}

impl FileJournal {
    pub fn new(path: PathBuf) -> Self {
        FileJournal { path, file: None }
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Writes `bytes` beside `path`, syncs, renames over it and syncs the directory: a crash leaves
/// either the old file or the new one. Returns the new file, open for appending.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    Ok(f)
}

impl JournalStore for FileJournal {
    fn commit(
        &mut self,
        how: JournalWrite,
        bytes: Vec<u8>,
    ) -> impl std::future::Future<Output = io::Result<Vec<u8>>> + Send {
        let path = self.path.clone();
        let file = self.file.take();
        async move {
            // fsync blocks for milliseconds: off the runtime's worker threads.
            let (file, mut bytes) = tokio::task::spawn_blocking(move || -> io::Result<_> {
                let file = match (how, file) {
                    (JournalWrite::Append, Some(mut f)) => {
                        f.write_all(&bytes)?;
                        f.sync_data()?;
                        f
                    }
                    (JournalWrite::Append, None) => {
                        return Err(io::Error::other("append before the journal was created"))
                    }
                    (JournalWrite::Replace, _) => replace(&path, &bytes)?,
                };
                Ok((file, bytes))
            })
            .await
            .map_err(io::Error::other)??;
            self.file = Some(file);
            bytes.clear();
            Ok(bytes)
        }
    }
}
