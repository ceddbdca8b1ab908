//! The projection backend: an ordered key-value store with atomic batches. The journal logic
//! and the projections speak only this trait, so they never know which engine holds them.

mod memory;
mod redb;
mod sled;

pub use self::memory::MemoryBackend;
pub use self::redb::RedbBackend;
pub use self::sled::SledBackend;

use crate::Result;

/// A set of writes applied atomically: after a crash either all or none are visible.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((key, Some(value)));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push((key, None));
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of the keys and values written.
    pub fn bytes(&self) -> usize {
        self.ops.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum()
    }
}

/// Key-value pairs in key order.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// Point reads from one consistent snapshot of a backend ([`Backend::snapshot`]).
pub trait Snapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

/// The snapshot of a backend whose every read is consistent on its own and cheap to begin:
/// it reads the backend as it is at each call.
struct Live<'a>(&'a dyn Backend);

impl Snapshot for Live<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(key)
    }
}

/// An ordered key-value store holding projections. Implementations: [`SledBackend`] (on
/// disk, the product owner's choice), [`RedbBackend`] (on disk, one file) and
/// [`MemoryBackend`] (tests, and `replay` into memory).
pub trait Backend: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every pair whose key starts with `prefix`, ascending.
    fn scan_prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a>;
    /// Pairs with `start <= key < end`, ascending.
    fn range<'a>(&'a self, start: &[u8], end: &[u8]) -> KvIter<'a>;
    /// The last pair with `key <= upper` among keys starting with `prefix`.
    fn last_at_or_before(&self, prefix: &[u8], upper: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// Every pair in the store, ascending (digests and copies).
    fn iter_all<'a>(&'a self) -> KvIter<'a>;
    /// Applies the batch atomically.
    fn apply(&self, batch: WriteBatch) -> Result<()>;
    /// Removes every key (rebuild starts from nothing).
    fn clear(&self) -> Result<()>;
    /// Makes applied batches durable. The journal is the source of truth, so the store
    /// calls this only on clean shutdown and after a rebuild.
    fn flush(&self) -> Result<()>;
    /// Point reads from the backend as it is now, for many reads in a row: an engine that
    /// pays to begin each read (redb: a read transaction and its table) pays once. Batches
    /// applied after it was taken may or may not show; hold it briefly. Engines without
    /// that cost make each read a plain [`Backend::get`] ([`live`]).
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>>;
}

/// A snapshot that reads `backend` as it is at each call, for engines whose reads cost
/// nothing to begin.
pub fn live(backend: &dyn Backend) -> Box<dyn Snapshot + '_> {
    Box::new(Live(backend))
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One suite every backend must pass.
    use super::*;

    pub fn run(backend: &dyn Backend) {
        backend.clear().unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b"a/1".to_vec(), b"one".to_vec());
        batch.put(b"a/2".to_vec(), b"two".to_vec());
        batch.put(b"a/3".to_vec(), b"three".to_vec());
        batch.put(b"b/1".to_vec(), b"bee".to_vec());
        backend.apply(batch).unwrap();
        assert_eq!(backend.get(b"a/2").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(backend.get(b"a/9").unwrap(), None);

        let keys: Vec<Vec<u8>> = backend.scan_prefix(b"a/").map(|kv| kv.unwrap().0).collect();
        assert_eq!(keys, vec![b"a/1".to_vec(), b"a/2".to_vec(), b"a/3".to_vec()]);

        let keys: Vec<Vec<u8>> = backend.range(b"a/2", b"b/1").map(|kv| kv.unwrap().0).collect();
        assert_eq!(keys, vec![b"a/2".to_vec(), b"a/3".to_vec()]);

        let last = backend.last_at_or_before(b"a/", b"a/25").unwrap().unwrap();
        assert_eq!(last.0, b"a/2".to_vec());
        assert_eq!(backend.last_at_or_before(b"a/", b"a/0").unwrap(), None);
        assert_eq!(backend.last_at_or_before(b"b/", b"b/9").unwrap().unwrap().0, b"b/1".to_vec());

        // Deletes and puts in one batch apply in order.
        let mut batch = WriteBatch::default();
        batch.delete(b"a/1".to_vec());
        batch.put(b"a/2".to_vec(), b"TWO".to_vec());
        batch.delete(b"a/3".to_vec());
        batch.put(b"a/3".to_vec(), b"THREE".to_vec());
        backend.apply(batch).unwrap();
        let all: Vec<(Vec<u8>, Vec<u8>)> = backend.iter_all().map(|kv| kv.unwrap()).collect();
        assert_eq!(
            all,
            vec![
                (b"a/2".to_vec(), b"TWO".to_vec()),
                (b"a/3".to_vec(), b"THREE".to_vec()),
                (b"b/1".to_vec(), b"bee".to_vec())
            ]
        );
        // A snapshot reads what was applied before it was taken.
        let snapshot = backend.snapshot().unwrap();
        assert_eq!(snapshot.get(b"a/2").unwrap().as_deref(), Some(&b"TWO"[..]));
        assert_eq!(snapshot.get(b"a/1").unwrap(), None);
        drop(snapshot);
        backend.flush().unwrap();
        backend.clear().unwrap();
        assert_eq!(backend.iter_all().count(), 0);
    }
}
