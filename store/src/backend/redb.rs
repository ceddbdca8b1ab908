//! The redb backend: projections in one B-tree file, written with non-durable commits.
//!
//! The journal is the source of truth, so projection commits skip redb's sync
//! (`Durability::None`): a crash rolls redb back to its last durable commit, which is
//! atomic and records the sequence it applied, and start-up re-applies the journal from
//! there. A durable commit is made every few seconds and on close, bounding that work.

use std::path::Path;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, TableDefinition};

use super::{Backend, KvIter, Snapshot, WriteBatch};
use crate::{owner_only, Result, StoreError};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("projections");
/// How often a projection commit is made durable.
const DURABLE_EVERY: Duration = Duration::from_secs(2);
/// Keys fetched per read transaction while iterating a long range.
const CHUNK: usize = 4096;

/// Projections in a redb file.
pub struct RedbBackend {
    db: Database,
    last_durable: Mutex<Instant>,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend").finish_non_exhaustive()
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbBackend {
    /// Opens (creating) the redb file `path` with a cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self> {
        // Opened here rather than by redb, which would create it with the default mode.
        let file = owner_only::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io(path))?;
        owner_only::tighten_file(&file, path)?;
        let locked = |e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.to_path_buf()),
            other => err(other),
        };
        let file = redb::backends::FileBackend::new(file).map_err(locked)?;
        let db = Database::builder().set_cache_size(cache_bytes as usize).create_with_backend(file).map_err(locked)?;
        let backend = RedbBackend { db, last_durable: Mutex::new(Instant::now()) };
        // Create the table so readers never meet its absence.
        backend.commit(Durability::Immediate, |_| Ok(()))?;
        Ok(backend)
    }

    fn commit(
        &self,
        durability: Durability,
        work: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<()>,
    ) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(durability).map_err(err)?;
        {
            let mut table = txn.open_table(TABLE).map_err(err)?;
            work(&mut table)?;
        }
        txn.commit().map_err(err)
    }

    /// Up to `CHUNK` pairs with `start <= key < end` (or `start < key` when `exclusive`).
    fn chunk(&self, start: &[u8], exclusive: bool, end: Option<&[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        let lower = if exclusive { std::ops::Bound::Excluded(start) } else { std::ops::Bound::Included(start) };
        let upper = match end {
            Some(end) => std::ops::Bound::Excluded(end),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in table.range::<&[u8]>((lower, upper)).map_err(err)? {
            let (k, v) = item.map_err(err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
            if out.len() == CHUNK {
                break;
            }
        }
        Ok(out)
    }

    fn iter_range<'a>(&'a self, start: Vec<u8>, end: Option<Vec<u8>>) -> KvIter<'a> {
        let mut next_start = start;
        let mut exclusive = false;
        let mut buffer = std::collections::VecDeque::new();
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if buffer.is_empty() && !done {
                match self.chunk(&next_start, exclusive, end.as_deref()) {
                    Ok(chunk) => {
                        done = chunk.len() < CHUNK;
                        if let Some((k, _)) = chunk.last() {
                            next_start = k.clone();
                            exclusive = true;
                        }
                        buffer.extend(chunk);
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
            }
            buffer.pop_front().map(Ok)
        }))
    }
}

impl Backend for RedbBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        Ok(table.get(key).map_err(err)?.map(|v| v.value().to_vec()))
    }

    fn scan_prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
        self.iter_range(prefix.to_vec(), Some(crate::keys::prefix_end(prefix)))
    }

    fn range<'a>(&'a self, start: &[u8], end: &[u8]) -> KvIter<'a> {
        self.iter_range(start.to_vec(), Some(end.to_vec()))
    }

    fn last_at_or_before(&self, prefix: &[u8], upper: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        let mut range = table.range::<&[u8]>(prefix..=upper).map_err(err)?;
        match range.next_back() {
            Some(item) => {
                let (k, v) = item.map_err(err)?;
                Ok(Some((k.value().to_vec(), v.value().to_vec())))
            }
            None => Ok(None),
        }
    }

    fn iter_all<'a>(&'a self) -> KvIter<'a> {
        self.iter_range(Vec::new(), None)
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let durable = self.last_durable.lock().elapsed() >= DURABLE_EVERY;
        let durability = if durable { Durability::Immediate } else { Durability::None };
        self.commit(durability, |table| {
            for (key, value) in &batch.ops {
                match value {
                    Some(v) => {
                        table.insert(key.as_slice(), v.as_slice()).map_err(err)?;
                    }
                    None => {
                        table.remove(key.as_slice()).map_err(err)?;
                    }
                }
            }
            Ok(())
        })?;
        if durable {
            *self.last_durable.lock() = Instant::now();
        }
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate).map_err(err)?;
        txn.delete_table(TABLE).map_err(err)?;
        txn.open_table(TABLE).map_err(err)?;
        txn.commit().map_err(err)
    }

    fn flush(&self) -> Result<()> {
        self.commit(Durability::Immediate, |_| Ok(()))?;
        *self.last_durable.lock() = Instant::now();
        Ok(())
    }

    /// One read transaction and its table for every read: beginning them was about two
    /// thirds of the cost of a point read (`perf` of the writer, BENCHMARKS.md).
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        Ok(Box::new(RedbSnapshot { table }))
    }
}

/// A read transaction's view of the projections table.
struct RedbSnapshot {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Snapshot for RedbSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.table.get(key).map_err(err)?.map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let backend = super::RedbBackend::open(&dir.path().join("p.redb"), 8 << 20).unwrap();
        super::super::conformance::run(&backend);
    }

    #[test]
    fn long_ranges_cross_chunks() {
        use super::super::{Backend, WriteBatch};
        let dir = tempfile::tempdir().unwrap();
        let backend = super::RedbBackend::open(&dir.path().join("p.redb"), 8 << 20).unwrap();
        let mut batch = WriteBatch::default();
        for i in 0..10_000u32 {
            batch.put(format!("k/{i:06}").into_bytes(), i.to_be_bytes().to_vec());
        }
        backend.apply(batch).unwrap();
        let keys: Vec<Vec<u8>> = backend.scan_prefix(b"k/").map(|kv| kv.unwrap().0).collect();
        assert_eq!(keys.len(), 10_000);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(backend.iter_all().count(), 10_000);
    }
}
