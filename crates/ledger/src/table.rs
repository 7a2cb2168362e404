//! A journaled table: a `BTreeMap` that remembers, for every write, what it
//! overwrote, so a refused transaction (or a refused block) can be undone.
//!
//! Three records ride along with each write:
//! - the undo journal, cut by nested savepoints (`begin` / `rollback` /
//!   `commit`): a block opens one, each transaction inside it another;
//! - `root_pending`: the value each changed key had when the state root was
//!   last folded, so the root is updated in O(changed keys), once per key per
//!   block however often the key changed;
//! - `unpersisted`: the keys changed since the last database commit, so a
//!   commit writes only those.

use std::collections::{BTreeMap, BTreeSet};

/// A key with a canonical byte form (what is hashed and stored).
pub(crate) trait TableKey: Ord + Clone {
    /// The canonical bytes.
    fn to_key_bytes(&self) -> Vec<u8>;
    /// Back from [`TableKey::to_key_bytes`]; `None` if malformed.
    fn from_key_bytes(bytes: &[u8]) -> Option<Self>;
}

/// A map with an undo journal and change tracking.
#[derive(Debug, Clone)]
pub(crate) struct Table<K, V> {
    rows: BTreeMap<K, V>,
    journal: Vec<(K, Option<V>)>,
    savepoints: Vec<usize>,
    root_pending: BTreeMap<K, Option<V>>,
    unpersisted: BTreeSet<K>,
}

impl<K: TableKey, V: Clone> Table<K, V> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Table {
            rows: BTreeMap::new(),
            journal: Vec::new(),
            savepoints: Vec::new(),
            root_pending: BTreeMap::new(),
            unpersisted: BTreeSet::new(),
        }
    }

    /// A table holding `rows`, all counted as folded into the root and persisted.
    pub(crate) fn from_rows(rows: BTreeMap<K, V>) -> Self {
        Table {
            rows,
            ..Table::new()
        }
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.rows.get(key)
    }

    /// All rows in key order.
    pub(crate) fn iter(&self) -> std::collections::btree_map::Iter<'_, K, V> {
        self.rows.iter()
    }

    /// Sets `key` to `value`.
    pub(crate) fn put(&mut self, key: K, value: V) {
        let old = self.rows.insert(key.clone(), value);
        self.note_change(key, old);
    }

    /// Removes `key`, if present.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(old) = self.rows.remove(key) {
            self.note_change(key.clone(), Some(old));
        }
    }

    fn note_change(&mut self, key: K, old: Option<V>) {
        if !self.root_pending.contains_key(&key) {
            self.root_pending.insert(key.clone(), old.clone());
        }
        if !self.savepoints.is_empty() {
            self.journal.push((key.clone(), old));
        }
        self.unpersisted.insert(key);
    }

    /// Opens a savepoint.
    pub(crate) fn begin(&mut self) {
        self.savepoints.push(self.journal.len());
    }

    /// Undoes every write since the innermost open savepoint and closes it.
    pub(crate) fn rollback(&mut self) {
        let Some(mark) = self.savepoints.pop() else {
            return;
        };
        while self.journal.len() > mark {
            let Some((key, old)) = self.journal.pop() else {
                break;
            };
            match old {
                Some(value) => {
                    self.rows.insert(key, value);
                }
                None => {
                    self.rows.remove(&key);
                }
            }
        }
    }

    /// Keeps the writes since the innermost savepoint and closes it (they
    /// stay undoable by an enclosing savepoint).
    pub(crate) fn commit(&mut self) {
        self.savepoints.pop();
        if self.savepoints.is_empty() {
            self.journal.clear();
        }
    }

    /// Keys changed since the root was last folded, with their value then.
    pub(crate) fn root_pending(&self) -> &BTreeMap<K, Option<V>> {
        &self.root_pending
    }

    /// Puts back a [`Table::root_pending`] taken earlier (undoing a block).
    pub(crate) fn set_root_pending(&mut self, pending: BTreeMap<K, Option<V>>) {
        self.root_pending = pending;
    }

    /// Marks every change as folded into the root.
    pub(crate) fn clear_root_pending(&mut self) {
        self.root_pending.clear();
    }

    /// Keys changed since the last database commit.
    pub(crate) fn unpersisted(&self) -> &BTreeSet<K> {
        &self.unpersisted
    }

    /// Marks every change as written to the database.
    pub(crate) fn clear_unpersisted(&mut self) {
        self.unpersisted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TableKey for u32 {
        fn to_key_bytes(&self) -> Vec<u8> {
            self.to_be_bytes().to_vec()
        }
        fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
            Some(u32::from_be_bytes(bytes.try_into().ok()?))
        }
    }

    fn rows(t: &Table<u32, &'static str>) -> Vec<(u32, &'static str)> {
        t.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn nested_rollback_restores_exactly() {
        let mut t = Table::new();
        t.put(1, "a");
        t.begin(); // block
        t.put(2, "b");
        t.begin(); // tx 1
        t.put(1, "a2");
        t.remove(&2);
        t.put(3, "c");
        t.rollback();
        assert_eq!(rows(&t), vec![(1, "a"), (2, "b")]);
        t.begin(); // tx 2
        t.put(4, "d");
        t.commit();
        assert_eq!(rows(&t), vec![(1, "a"), (2, "b"), (4, "d")]);
        t.rollback(); // the whole block
        assert_eq!(rows(&t), vec![(1, "a")]);
    }

    #[test]
    fn root_pending_keeps_the_first_old_value() {
        let mut t = Table::new();
        t.put(1, "a");
        t.clear_root_pending();
        t.put(1, "b");
        t.put(1, "c");
        t.put(2, "x");
        let pending: Vec<_> = t.root_pending().iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(pending, vec![(1, Some("a")), (2, None)]);
        assert_eq!(t.unpersisted().len(), 2);
    }
}
