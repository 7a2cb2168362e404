//! The web gateway's memory: what a site's key named a moment ago, and the
//! bytes of small objects by manifest CID. A public object is
//! content-addressed, so its bytes under a manifest never go stale; only
//! the key's lookup does, and it is kept for [`LOOKUP_FRESH`] (a deploy is
//! seen within that at every node). Both are bounded: lookups by count,
//! bytes by a budget, the least recently used going first.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hashlink::LruCache;
use peercloud_ledger::{BucketId, InlineObject, ObjectRef};
use peercloud_types::ContentId;

/// How long a key's lookup is served from memory before the index is read
/// again.
pub const LOOKUP_FRESH: Duration = Duration::from_secs(1);
/// How old a lookup may be and still be served when the index does not
/// answer (stale if error: a site stays up through an outage of its index
/// replicas, at the version it had).
pub const LOOKUP_STALE_MAX: Duration = Duration::from_secs(24 * 3600);
/// Lookups kept.
const LOOKUPS_MAX: usize = 4_096;
/// Largest object whose bytes are kept.
pub const CACHED_OBJECT_BYTES_MAX: u64 = 1 << 20;
/// Bytes of objects kept in all.
const CACHED_BYTES_MAX: usize = 64 << 20;

/// An object a key names, as a lookup found it.
#[derive(Debug, Clone)]
pub struct Found {
    /// The object.
    pub object: ObjectRef,
    /// Its chunks when the index keeps them.
    pub inline: Option<InlineObject>,
}

/// The gateway's caches.
pub struct SiteCache {
    lookups: Mutex<LruCache<(BucketId, String), (Instant, Found)>>,
    bodies: Mutex<Bodies>,
}

struct Bodies {
    kept: LruCache<ContentId, Bytes>,
    bytes: usize,
}

impl std::fmt::Debug for SiteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bodies = self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("SiteCache")
            .field("bodies", &bodies.kept.len())
            .field("bytes", &bodies.bytes)
            .finish_non_exhaustive()
    }
}

impl Default for SiteCache {
    fn default() -> Self {
        SiteCache {
            lookups: Mutex::new(LruCache::new(LOOKUPS_MAX)),
            bodies: Mutex::new(Bodies {
                kept: LruCache::new_unbounded(),
                bytes: 0,
            }),
        }
    }
}

impl SiteCache {
    /// What `key` of `bucket` named less than [`LOOKUP_FRESH`] ago.
    pub fn lookup(&self, bucket: &BucketId, key: &str) -> Option<Found> {
        self.lookup_within(bucket, key, LOOKUP_FRESH)
    }

    /// What `key` of `bucket` named less than [`LOOKUP_STALE_MAX`] ago: for
    /// when the index cannot be read.
    pub fn lookup_stale(&self, bucket: &BucketId, key: &str) -> Option<Found> {
        self.lookup_within(bucket, key, LOOKUP_STALE_MAX)
    }

    fn lookup_within(&self, bucket: &BucketId, key: &str, age: Duration) -> Option<Found> {
        let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = lookups.get(&(*bucket, key.to_owned()))?;
        (entry.0.elapsed() < age).then(|| entry.1.clone())
    }

    /// Keeps what `key` of `bucket` names now.
    pub fn remember(&self, bucket: BucketId, key: String, found: &Found) {
        let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        lookups.insert((bucket, key), (Instant::now(), found.clone()));
    }

    /// The bytes of the object whose manifest is `manifest`, if kept.
    pub fn body(&self, manifest: &ContentId) -> Option<Bytes> {
        let mut bodies = self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        bodies.kept.get(manifest).cloned()
    }

    /// Keeps an object's bytes (at most [`CACHED_OBJECT_BYTES_MAX`]),
    /// dropping the least recently used past the budget.
    pub fn keep(&self, manifest: ContentId, bytes: Bytes) {
        if bytes.len() as u64 > CACHED_OBJECT_BYTES_MAX {
            return;
        }
        let mut bodies = self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        bodies.bytes += bytes.len();
        if let Some(old) = bodies.kept.insert(manifest, bytes) {
            bodies.bytes -= old.len();
        }
        while bodies.bytes > CACHED_BYTES_MAX {
            match bodies.kept.remove_lru() {
                Some((_, old)) => bodies.bytes -= old.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_stay_within_their_budget_dropping_the_least_recently_used() {
        let cache = SiteCache::default();
        let chunk = Bytes::from(vec![0u8; CACHED_OBJECT_BYTES_MAX as usize]);
        let cids: Vec<ContentId> = (0..70u32)
            .map(|i| ContentId::of(&i.to_le_bytes()))
            .collect();
        for (i, cid) in cids.iter().enumerate() {
            cache.keep(*cid, chunk.clone());
            if i == 0 {
                continue;
            }
            // Reading the first keeps it the most recently used.
            assert!(cache.body(&cids[0]).is_some(), "after {i}");
        }
        let kept = cids.iter().filter(|c| cache.body(c).is_some()).count();
        assert_eq!(kept, CACHED_BYTES_MAX / chunk.len());
        assert!(
            cache.body(&cids[1]).is_none(),
            "the least recently used went first"
        );
        cache.keep(
            ContentId::of(b"big"),
            Bytes::from(vec![0u8; (CACHED_OBJECT_BYTES_MAX + 1) as usize]),
        );
        assert!(
            cache.body(&ContentId::of(b"big")).is_none(),
            "too large to keep"
        );
    }
}
