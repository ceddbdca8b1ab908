//! An in-memory backend for tests and for replaying into memory.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use super::{Backend, KvIter, WriteBatch};
use crate::Result;

/// A `BTreeMap` behind a lock. Iterators copy their range out so the lock is never held
/// across a caller's loop.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn collect(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>, prefix: Option<&[u8]>) -> KvIter<'_> {
        let map = self.map.read();
        let items: Vec<_> = map
            .range::<[u8], _>((lower, upper))
            .take_while(|(k, _)| prefix.is_none_or(|p| k.starts_with(p)))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(items.into_iter())
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().get(key).cloned())
    }

    fn scan_prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
        self.collect(Bound::Included(prefix), Bound::Unbounded, Some(prefix))
    }

    fn range<'a>(&'a self, start: &[u8], end: &[u8]) -> KvIter<'a> {
        self.collect(Bound::Included(start), Bound::Excluded(end), None)
    }

    fn last_at_or_before(&self, prefix: &[u8], upper: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let map = self.map.read();
        Ok(map
            .range::<[u8], _>((Bound::Included(prefix), Bound::Included(upper)))
            .next_back()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn iter_all<'a>(&'a self) -> KvIter<'a> {
        self.collect(Bound::Unbounded, Bound::Unbounded, None)
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut map = self.map.write();
        for (key, value) in batch.ops {
            match value {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        self.map.write().clear();
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn super::Snapshot + '_>> {
        Ok(super::live(self))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance::run(&super::MemoryBackend::new());
    }
}
