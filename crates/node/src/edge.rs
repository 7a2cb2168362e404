//! The edge cache: the pieces of public objects this node served to web
//! visitors, kept on disk within a budget the farmer sets
//! (`edge_cache_bytes`), the least recently used going first. Popular
//! content so spreads to the nodes visitors ask, and a node keeps serving
//! a site it served before while its holders are slow or gone.
//!
//! A piece is named by its content (a public chunk's CID is the BLAKE3 of
//! its bytes), so a cached copy never goes stale; each read is checked
//! against its name, and one that does not match is dropped. The files
//! are a cache, not a store: written without fsync (a crash loses at
//! most a copy the holders still have) and rebuilt from the directory at
//! start, oldest first.
//!
//! A piece kept is announced in Kademlia (a provider record under its
//! CID) and answered to peers that ask for it like a holder would, so when
//! its holders cannot give it another node's visitors are served from here.
//!
//! ```text
//!  visitor ─► web gateway ─► edge cache ─hit─► bytes
//!                               └─miss─► holders (nearest first) ─► kept here, announced
//!                                          └─none has it─► providers (other edges' caches)
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use hashlink::LruCache;
use peercloud_api::EdgeCacheView;
use peercloud_types::ContentId;

/// The budget when the farmer sets none: 1 GiB (capped by the storage the
/// node offers).
pub const EDGE_CACHE_DEFAULT_BYTES: u64 = 1 << 30;
/// A file being written; a leftover one (a crash mid-write) is removed.
const PARTIAL_SUFFIX: &str = ".partial";

/// The node's edge cache (see the module documentation).
#[derive(Debug)]
pub struct EdgeCache {
    dir: PathBuf,
    budget: u64,
    kept: Mutex<Kept>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug)]
struct Kept {
    sizes: LruCache<ContentId, u64>,
    bytes: u64,
}

impl EdgeCache {
    /// The cache in `dir` (created if missing) with `budget` bytes (0: off),
    /// holding what an earlier run left there, oldest first, within budget.
    pub fn open(dir: &Path, budget: u64) -> io::Result<EdgeCache> {
        fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match name.parse::<ContentId>() {
                Ok(cid) => {
                    let meta = entry.metadata()?;
                    found.push((meta.modified().ok(), cid, meta.len()));
                }
                // A partial write, or something that is not ours to keep.
                Err(_) => {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        found.sort_by_key(|(modified, _, _)| *modified);
        let cache = EdgeCache {
            dir: dir.to_owned(),
            budget,
            kept: Mutex::new(Kept {
                sizes: LruCache::new_unbounded(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        };
        let evicted = {
            let mut kept = cache.lock();
            for (_, cid, len) in found {
                kept.sizes.insert(cid, len);
                kept.bytes += len;
            }
            cache.evict(&mut kept)
        };
        cache.remove_files(&evicted);
        Ok(cache)
    }

    /// The piece named `cid` for a visitor's read, if kept and whole
    /// (checked against its name; a copy that does not match is dropped);
    /// counted as a hit or a miss.
    pub fn get(&self, cid: &ContentId) -> Option<Vec<u8>> {
        let found = self.read(cid);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// [`EdgeCache::get`] for a peer asking whether this node has a piece:
    /// not counted (most such asks are for pieces it never served).
    pub fn get_for_peer(&self, cid: &ContentId) -> Option<Vec<u8>> {
        self.read(cid)
    }

    fn read(&self, cid: &ContentId) -> Option<Vec<u8>> {
        if !self.lock().sizes.contains_key(cid) {
            return None;
        }
        match fs::read(self.path(cid)) {
            Ok(bytes) if ContentId::of(&bytes) == *cid => {
                // Touched only now: a failed read does not keep it fresh.
                let _ = self.lock().sizes.get(cid);
                Some(bytes)
            }
            outcome => {
                if outcome.is_ok() {
                    tracing::warn!(%cid, "a cached piece does not match its name: dropped");
                }
                self.forget(cid);
                None
            }
        }
    }

    /// Keeps the piece `bytes` named `cid` (the caller verified the name),
    /// dropping the least recently used past the budget; returns whether it
    /// is newly kept and what was dropped for it. A piece larger than the
    /// whole budget, or a failed write, is simply not kept.
    pub fn put(&self, cid: &ContentId, bytes: &[u8]) -> (bool, Vec<ContentId>) {
        let len = bytes.len() as u64;
        if len > self.budget || self.lock().sizes.contains_key(cid) {
            return (false, Vec::new());
        }
        let path = self.path(cid);
        let partial = self.dir.join(format!("{cid}{PARTIAL_SUFFIX}"));
        if let Err(error) = fs::write(&partial, bytes).and_then(|()| fs::rename(&partial, &path)) {
            let _ = fs::remove_file(&partial);
            tracing::debug!(%cid, %error, "a piece could not be cached");
            return (false, Vec::new());
        }
        let evicted = {
            let mut kept = self.lock();
            if kept.sizes.insert(*cid, len).is_none() {
                kept.bytes += len;
            }
            self.evict(&mut kept)
        };
        self.remove_files(&evicted);
        (!evicted.contains(cid), evicted)
    }

    /// What it holds now, and its hits and misses so far.
    pub fn usage(&self) -> EdgeCacheView {
        let kept = self.lock();
        EdgeCacheView {
            pieces: kept.sizes.len() as u64,
            bytes: kept.bytes,
            budget_bytes: self.budget,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn forget(&self, cid: &ContentId) {
        {
            let mut kept = self.lock();
            if let Some(len) = kept.sizes.remove(cid) {
                kept.bytes -= len;
            }
        }
        let _ = fs::remove_file(self.path(cid));
    }

    /// Drops the least recently used until the bytes fit the budget;
    /// returns what to remove from disk (outside the lock).
    fn evict(&self, kept: &mut Kept) -> Vec<ContentId> {
        let mut evicted = Vec::new();
        while kept.bytes > self.budget {
            match kept.sizes.remove_lru() {
                Some((cid, len)) => {
                    kept.bytes -= len;
                    evicted.push(cid);
                }
                None => break,
            }
        }
        evicted
    }

    fn remove_files(&self, cids: &[ContentId]) {
        for cid in cids {
            let _ = fs::remove_file(self.path(cid));
        }
    }

    fn path(&self, cid: &ContentId) -> PathBuf {
        self.dir.join(cid.to_string())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(i: u32, len: usize) -> (ContentId, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
        (ContentId::of(&bytes), bytes)
    }

    #[test]
    fn pieces_stay_within_the_budget_the_least_recently_used_going_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EdgeCache::open(dir.path(), 3_000).unwrap();
        let pieces: Vec<_> = (0..4).map(|i| piece(i, 1_000)).collect();
        for (cid, bytes) in &pieces[..3] {
            cache.put(cid, bytes);
        }
        // Reading the first makes the second the least recently used.
        assert_eq!(cache.get(&pieces[0].0).as_deref(), Some(&pieces[0].1[..]));
        assert_eq!(
            cache.put(&pieces[3].0, &pieces[3].1),
            (true, vec![pieces[1].0])
        );
        assert!(
            cache.get(&pieces[1].0).is_none(),
            "the least recently used went"
        );
        for i in [0, 2, 3] {
            assert_eq!(cache.get(&pieces[i].0).as_deref(), Some(&pieces[i].1[..]));
        }
        let usage = cache.usage();
        assert_eq!((usage.pieces, usage.bytes), (3, 3_000));
        assert!(
            !dir.path().join(pieces[1].0.to_string()).exists(),
            "its file went too"
        );
        // Larger than the whole budget: not kept.
        let (big, bytes) = piece(9, 3_001);
        assert_eq!(cache.put(&big, &bytes), (false, Vec::new()));
        assert!(cache.get(&big).is_none());
    }

    #[test]
    fn a_restart_finds_what_was_kept_and_a_damaged_copy_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_bytes) = piece(1, 500);
        let (b, b_bytes) = piece(2, 500);
        {
            let cache = EdgeCache::open(dir.path(), 10_000).unwrap();
            cache.put(&a, &a_bytes);
            cache.put(&b, &b_bytes);
        }
        std::fs::write(dir.path().join(format!("{a}{PARTIAL_SUFFIX}")), b"half").unwrap();
        std::fs::write(dir.path().join(b.to_string()), b"flipped bytes").unwrap();
        let cache = EdgeCache::open(dir.path(), 10_000).unwrap();
        assert_eq!(cache.usage().pieces, 2);
        assert_eq!(cache.get(&a).as_deref(), Some(&a_bytes[..]));
        assert!(
            cache.get(&b).is_none(),
            "a copy that does not match its name"
        );
        assert_eq!(cache.usage().pieces, 1);
        assert!(!dir.path().join(format!("{a}{PARTIAL_SUFFIX}")).exists());
        // A smaller budget at the next start keeps only what fits.
        drop(cache);
        assert_eq!(EdgeCache::open(dir.path(), 100).unwrap().usage().pieces, 0);
    }
}
