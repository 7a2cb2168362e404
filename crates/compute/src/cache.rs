//! Compiled modules by CID, in memory, least recently used out first.
//!
//! Compiling is the expensive part of a first run (about 15 ms for a 13 KiB
//! module, a second for 1.2 MiB); instantiating a cached module with the
//! pooling allocator takes microseconds. There is no disk cache:
//! `Module::deserialize_file` is `unsafe` (it trusts the file to be
//! wasmtime's own output) and the workspace forbids unsafe code, and a node
//! restarting recompiles only the modules it runs again.

use std::collections::HashMap;

use peercloud_types::ContentId;

/// A bounded map from module CID to a compiled module.
#[derive(Debug)]
pub(crate) struct ModuleCache<V> {
    entries: HashMap<ContentId, (V, u64)>,
    capacity: usize,
    /// Logical clock of uses; the entry with the smallest stamp goes first.
    uses: u64,
}

impl<V: Clone> ModuleCache<V> {
    /// An empty cache holding at most `capacity` modules (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        ModuleCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            uses: 0,
        }
    }

    /// The module under `cid`, marking it used.
    pub(crate) fn get(&mut self, cid: &ContentId) -> Option<V> {
        self.uses += 1;
        let stamp = self.uses;
        self.entries.get_mut(cid).map(|(value, used)| {
            *used = stamp;
            value.clone()
        })
    }

    /// Stores a module; returns whether another had to be evicted.
    pub(crate) fn insert(&mut self, cid: ContentId, value: V) -> bool {
        self.uses += 1;
        let mut evicted = false;
        if !self.entries.contains_key(&cid) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(cid, _)| *cid);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
                evicted = true;
            }
        }
        self.entries.insert(cid, (value, self.uses));
        evicted
    }

    /// How many modules are cached.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first() {
        let [a, b, c] = [b"a", b"b", b"c"].map(|m| ContentId::of(m));
        let mut cache = ModuleCache::new(2);
        assert!(!cache.insert(a, 1));
        assert!(!cache.insert(b, 2));
        assert_eq!(cache.get(&a), Some(1));
        assert!(cache.insert(c, 3), "b is the least recently used");
        assert_eq!(cache.get(&b), None);
        assert_eq!(cache.get(&a), Some(1));
        assert_eq!(cache.get(&c), Some(3));
        assert!(!cache.insert(c, 4), "replacing evicts nothing");
        assert_eq!(cache.len(), 2);
    }
}
