//! Uploaded files on disk, under `[storage] files_dir`, each named by the
//! lower-case hex SHA-256 of its bytes (so two inquiries with the same file
//! share one copy, and a name never comes from the visitor).
//!
//! The order that keeps the database and the directory in step: bytes are
//! streamed to `.upload-<uuid>` (hashed as they arrive), `fsync`ed, renamed to
//! their hash and the directory `fsync`ed, *then* the row that names them is
//! committed. A crash in between leaves a file no row names: an orphan, removed
//! at the next start and by the daily task. A file is removed only when no row
//! names it any more ([`Store::release_files`](super::Store)).
//!
//! Within one process, a read lock is held from the rename to the commit and
//! the removal of unnamed files takes the write lock, so a file being committed
//! is never taken for an orphan. Replicas sharing the directory (PostgreSQL)
//! rely on the age of a file instead: one younger than the grace given is left.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::domain::SNIFF_BYTES;

const TEMP_PREFIX: &str = ".upload-";

/// The directory of uploaded files.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    committing: RwLock<()>,
}

/// A file being received: removed when dropped unless [`Blobs::persist`]ed.
pub struct Incoming {
    file: Option<tokio::fs::File>,
    path: PathBuf,
    hasher: Sha256,
    sha256: Option<String>,
    size: u64,
    head: Vec<u8>,
}

/// A received file, durable under its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persisted {
    pub sha256: String,
    pub size: u64,
}

impl Blobs {
    /// The directory is created by the first upload: a service whose forms
    /// take no files (or a command) leaves no empty directory behind.
    pub fn open(dir: &Path) -> Self {
        Self { dir: dir.to_owned(), committing: RwLock::new(()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new temporary file in the directory (so that the rename stays on one file system).
    pub async fn receive(&self) -> io::Result<Incoming> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let path = self.dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(Incoming { file: Some(file), path, hasher: Sha256::new(), sha256: None, size: 0, head: Vec::new() })
    }

    /// Held from the first [`persist`](Self::persist) until the commit that
    /// names the files: the removal of unnamed files waits for it.
    pub async fn committing(&self) -> RwLockReadGuard<'_, ()> {
        self.committing.read().await
    }

    /// Flushes the file to disk and renames it to its hash, then flushes the
    /// directory entry.
    pub async fn persist(&self, mut incoming: Incoming) -> io::Result<Persisted> {
        let Some(mut file) = incoming.file.take() else {
            return Err(io::Error::other("the upload was already persisted"));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let sha256 = incoming.sha256();
        let target = self.dir.join(&sha256);
        tokio::fs::rename(&incoming.path, &target).await?;
        // Renamed: nothing left for the drop to remove.
        incoming.path = PathBuf::new();
        sync_dir(&self.dir).await?;
        Ok(Persisted { sha256, size: incoming.size })
    }

    /// The stored file with this hash (`None` when the name is not a hash).
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        is_hash(sha256).then(|| self.dir.join(sha256))
    }

    /// Removes the files among `candidates` that `named` (the subset a row still
    /// names) leaves out; waits for every commit in progress first. Returns how
    /// many were removed.
    pub async fn remove_unnamed<F, Fut, E>(&self, candidates: Vec<String>, named: F) -> Result<usize, E>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<HashSet<String>, E>>,
    {
        let candidates: Vec<String> = candidates.into_iter().filter(|c| is_hash(c)).collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        let _exclusive = self.committing.write().await;
        let named = named(candidates.clone()).await?;
        let mut removed = 0;
        for sha256 in candidates.iter().filter(|c| !named.contains(*c)) {
            match tokio::fs::remove_file(self.dir.join(sha256)).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(%error, "cannot remove an unreferenced upload"),
            }
        }
        if removed > 0 {
            let _ = sync_dir(&self.dir).await;
        }
        Ok(removed)
    }

    /// Every stored file and temporary file older than `grace`: (hashes, temporaries).
    pub async fn older_than(&self, grace: Duration) -> io::Result<(Vec<String>, Vec<PathBuf>)> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(e),
        };
        let (mut hashes, mut temporaries) = (Vec::new(), Vec::new());
        let now = SystemTime::now();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let modified = entry.metadata().await.and_then(|m| m.modified()).unwrap_or(now);
            if now.duration_since(modified).unwrap_or_default() < grace {
                continue;
            }
            if is_hash(&name) {
                hashes.push(name);
            } else if name.starts_with(TEMP_PREFIX) {
                temporaries.push(entry.path());
            }
        }
        Ok((hashes, temporaries))
    }
}

impl Incoming {
    /// Appends a chunk (hashing it, keeping the first bytes for the type check).
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().filter(|_| self.sha256.is_none());
        let file = file.ok_or_else(|| io::Error::other("the upload was already hashed"))?;
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if self.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        Ok(())
    }

    /// The hash of every byte written (none can follow).
    pub fn sha256(&mut self) -> String {
        if self.sha256.is_none() {
            self.sha256 = Some(hex(&std::mem::take(&mut self.hasher).finalize()));
        }
        self.sha256.clone().unwrap_or_default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first bytes (up to [`SNIFF_BYTES`]).
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Makes a rename or removal in `dir` durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await.map_err(io::Error::other)?
}

fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an I/O error means the disk (or quota) is full: a 503, not a bug.
pub fn is_full(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_named_by_its_hash_and_a_dropped_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path());
        let mut incoming = blobs.receive().await.unwrap();
        incoming.write(b"hello").await.unwrap();
        let stored = blobs.persist(incoming).await.unwrap();
        assert_eq!(stored.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(std::fs::read(dir.path().join(&stored.sha256)).unwrap(), b"hello");
        let mut dropped = blobs.receive().await.unwrap();
        dropped.write(b"half").await.unwrap();
        drop(dropped);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let removed =
            blobs.remove_unnamed(vec![stored.sha256.clone()], |_| async { Ok::<_, ()>(HashSet::new()) }).await.unwrap();
        assert_eq!(removed, 1);
        assert!(blobs.path_of("../etc/passwd").is_none());
    }
}
