//! The sled backend, the default on-disk home of projections and indexes.

use std::path::Path;

use super::{Backend, KvIter, WriteBatch};
use crate::{owner_only, Result, StoreError};

/// One sled tree. sled's own durability is not relied on: the journal is the source of
/// truth and projections record the last sequence they applied.
#[derive(Debug, Clone)]
pub struct SledBackend {
    db: sled::Db,
}

fn backend_err(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledBackend {
    /// Opens (creating) a sled database in `dir` with a cache of `cache_bytes`.
    ///
    /// The caller holds the data directory's own lock, so sled's lock can only be held by a
    /// handle of this process being dropped: sled 0.34 releases it asynchronously
    /// (spacejam/sled#1234), so a busy lock is retried for a short while.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self> {
        // sled creates its files with the default mode and offers no choice: the directory is
        // made 0700 first, so nothing sled writes into it later is reachable by others, and
        // what it created at open is tightened below.
        owner_only::create_dir_all(dir)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // The journal makes commits durable; sled's periodic flush only bounds how much
            // of the journal's tail is re-applied after a crash.
            .flush_every_ms(Some(2_000))
            .mode(sled::Mode::HighThroughput);
        let mut wait = std::time::Duration::from_millis(5);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match config.open() {
                Ok(db) => {
                    owner_only::tighten_tree(dir)?;
                    return Ok(SledBackend { db });
                }
                Err(sled::Error::Io(io)) if is_lock_busy(&io) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError::Locked(dir.to_path_buf()));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_millis(200));
                }
                Err(other) => return Err(backend_err(other)),
            }
        }
    }

    /// Bytes sled occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(backend_err)
    }
}

fn is_lock_busy(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
}

fn kv(item: sled::Result<(sled::IVec, sled::IVec)>) -> Result<(Vec<u8>, Vec<u8>)> {
    item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend_err)
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key).map_err(backend_err)?.map(|v| v.to_vec()))
    }

    fn scan_prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
        Box::new(self.db.scan_prefix(prefix).map(kv))
    }

    fn range<'a>(&'a self, start: &[u8], end: &[u8]) -> KvIter<'a> {
        Box::new(self.db.range(start.to_vec()..end.to_vec()).map(kv))
    }

    fn last_at_or_before(&self, prefix: &[u8], upper: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        match self.db.range(prefix.to_vec()..=upper.to_vec()).next_back() {
            Some(item) => {
                let (k, v) = kv(item)?;
                Ok(k.starts_with(prefix).then_some((k, v)))
            }
            None => Ok(None),
        }
    }

    fn iter_all<'a>(&'a self) -> KvIter<'a> {
        Box::new(self.db.iter().map(kv))
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch.ops {
            match value {
                Some(v) => sled_batch.insert(key, v),
                None => sled_batch.remove(key),
            }
        }
        self.db.apply_batch(sled_batch).map_err(backend_err)
    }

    fn clear(&self) -> Result<()> {
        self.db.clear().map_err(backend_err)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(backend_err).map(|_| ())
    }

    fn snapshot(&self) -> Result<Box<dyn super::Snapshot + '_>> {
        Ok(super::live(self))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let backend = super::SledBackend::open(dir.path(), 8 << 20).unwrap();
        super::super::conformance::run(&backend);
    }
}
