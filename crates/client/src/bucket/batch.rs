//! A put of many objects at once (a directory's files, a site's pages): what
//! every one of them replaces is read in one request, each is sealed (a
//! small one in memory, to be kept inline; a larger one stored on the
//! cluster as a single put stores it), and their entries go to the index in
//! as few writes as its limits allow — one for up to 1,000 entries and
//! 1 MiB of inline objects — each with the bucket's usage after it.
//!
//! ```text
//!  put_many: index_get_many (every key's entry, usage, the bucket's view) ─► owner? writable?
//!       ─► seal each (≤ 3 KiB inline; larger: put_object on the cluster)
//!       ─► per index write: sign entries + one BucketUsage ─► index_write (quorum)
//! ```
//!
//! Each index write is atomic on every replica, so a batch that needs two
//! and fails in the second leaves the first one's objects stored, and says
//! how many ([`BucketError::Partial`]).

use std::collections::{BTreeMap, BTreeSet};

use peercloud_api::{BucketView, Canonical, IndexWrite};
use peercloud_ledger::object_entry::{
    INDEX_WRITE_ENTRIES_MAX, INLINE_OBJECT_BYTES_MAX, INLINE_WRITE_BYTES_MAX, check_key,
};
use peercloud_ledger::{BucketId, BucketUsage, InlineObject, ObjectEntry, ObjectRef};
use peercloud_store::{PutOptions, PutReceipt, Redundancy, put_object};
use peercloud_types::{Keypair, Signed, clock::now_ms};

use super::{
    BucketError, INLINE_REDUNDANCY, ObjectPut, USAGE_SEQUENCE, checked, owned, redundancy_of,
    seal_inline, view_of, writable,
};
use crate::{ApiStore, NodeApi};

/// An object of a put of many: its key and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct NewObject<'a> {
    /// The key it is stored under.
    pub key: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// One object sealed and ready for its entry.
struct Sealed {
    key: String,
    receipt: PutReceipt,
    inline: Option<InlineObject>,
}

/// Stores every one of `objects` in `bucket` as [`super::put`] stores one
/// (sealed to `owner`, in the clear in a public bucket; at most
/// [`INLINE_OBJECT_BYTES_MAX`] bytes kept inline), replacing what each key
/// named. Up to [`INDEX_WRITE_ENTRIES_MAX`] objects, each key once; what
/// they replace is read in one request and their entries are written in
/// as few index writes as the limits allow. The answer is in the order
/// given.
pub fn put_many(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    objects: &[NewObject<'_>],
) -> Result<Vec<ObjectPut>, BucketError> {
    let keys = batch_keys(bucket, objects)?;
    let mut answer = node.index_get_many(bucket, &keys)?;
    let view = owned(view_of(node, bucket, &mut answer)?, owner)?;
    writable(&view)?;
    let before = checked(&view, answer, None)?;
    let asked: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut current: BTreeMap<String, Signed<ObjectEntry>> = BTreeMap::new();
    for entry in before.entries {
        if !asked.contains(entry.body.key.as_str()) || current.contains_key(&entry.body.key) {
            return Err(BucketError::Forged {
                bucket: *bucket,
                reason: format!("entry {:?} was not asked for", entry.body.key),
            });
        }
        current.insert(entry.body.key.clone(), entry);
    }
    let mut signed_usage = before.usage.map(|u| (u.body.seq, u.body.stored_bytes));

    let mut options_for = ObjectOptions::new(node, &view);
    let mut sealed = Vec::with_capacity(objects.len());
    for object in objects {
        let (options, small) = options_for.object(object)?;
        sealed.push(if small {
            let (receipt, inline) = seal_inline(object.bytes, owner, &options)?;
            Sealed {
                key: object.key.to_owned(),
                receipt,
                inline: Some(inline),
            }
        } else {
            let store = ApiStore::in_cluster(node, view.cluster);
            Sealed {
                key: object.key.to_owned(),
                receipt: put_object(&store, object.bytes, &owner.public(), &options)?,
                inline: None,
            }
        });
    }

    let total = sealed.len();
    let mut done = Vec::with_capacity(total);
    for write in index_writes(sealed) {
        let count = write.len();
        let written = write_batch(
            node,
            owner,
            &view.id,
            view.created_ms,
            &current,
            signed_usage,
            write,
        );
        match written {
            Ok(puts) => done.extend(puts),
            Err(source) if done.is_empty() => return Err(source),
            Err(source) => {
                return Err(BucketError::Partial {
                    bucket: *bucket,
                    written: done.len(),
                    total,
                    failed: count,
                    source: Box::new(source),
                });
            }
        }
        // The next write's usage follows this process's sequence.
        signed_usage = None;
    }
    Ok(done)
}

/// Which of `objects` a public `bucket` holds already under its key, byte
/// for byte (a public object is content-addressed: the same bytes under the
/// same redundancy make the same manifest), so a deploy sends only the
/// others. In a private bucket, where every seal is fresh, none is.
pub fn unchanged(
    node: &impl NodeApi,
    bucket: &BucketId,
    objects: &[NewObject<'_>],
) -> Result<Vec<bool>, BucketError> {
    let keys = batch_keys(bucket, objects)?;
    let mut answer = node.index_get_many(bucket, &keys)?;
    let view = view_of(node, bucket, &mut answer)?;
    if !view.public {
        return Ok(vec![false; objects.len()]);
    }
    let current = checked(&view, answer, None)?;
    let named: BTreeMap<&str, ObjectRef> = current
        .entries
        .iter()
        .filter_map(|e| e.body.object.map(|o| (e.body.key.as_str(), o)))
        .collect();
    let mut options_for = ObjectOptions::new(node, &view);
    // A public seal names no recipient: any key will do.
    let anyone = Keypair::generate().public();
    objects
        .iter()
        .map(|object| {
            let Some(held) = named.get(object.key) else {
                return Ok(false);
            };
            if held.size != object.bytes.len() as u64 {
                return Ok(false);
            }
            let (options, small) = options_for.object(object)?;
            let memory = peercloud_store::MemChunkStore::new();
            let receipt = put_object(&memory, object.bytes, &anyone, &options)?;
            Ok(receipt.manifest_cid == held.manifest && held.inline == small)
        })
        .collect()
}

/// The store options of each object of a batch, as a single put chooses
/// them: inline redundancy for a small object, the cluster's (asked once)
/// for a larger one, public as the bucket is.
struct ObjectOptions<'a, A> {
    node: &'a A,
    view: &'a BucketView,
    cluster: Option<Redundancy>,
}

impl<'a, A: NodeApi> ObjectOptions<'a, A> {
    fn new(node: &'a A, view: &'a BucketView) -> Self {
        ObjectOptions {
            node,
            view,
            cluster: None,
        }
    }

    /// `object`'s options, and whether it is small enough to be inline.
    fn object(&mut self, object: &NewObject<'_>) -> Result<(PutOptions, bool), BucketError> {
        let small = object.bytes.len() as u64 <= INLINE_OBJECT_BYTES_MAX;
        let redundancy = match (small, self.cluster) {
            (true, _) => INLINE_REDUNDANCY,
            (false, Some(r)) => r,
            (false, None) => *self.cluster.insert(redundancy_of(self.view, self.node)?),
        };
        let options = PutOptions {
            name: Some(object.key.to_owned()),
            redundancy,
            public: self.view.public,
            ..PutOptions::default()
        };
        Ok((options, small))
    }
}

/// The batch's keys, checked: 1..=[`INDEX_WRITE_ENTRIES_MAX`] of them, each
/// a usable key and given once.
fn batch_keys(bucket: &BucketId, objects: &[NewObject<'_>]) -> Result<Vec<String>, BucketError> {
    if objects.is_empty() || objects.len() > INDEX_WRITE_ENTRIES_MAX {
        return Err(BucketError::Batch {
            bucket: *bucket,
            reason: format!(
                "{} objects: a put of many takes 1..={INDEX_WRITE_ENTRIES_MAX}",
                objects.len()
            ),
        });
    }
    let mut seen = BTreeSet::new();
    for object in objects {
        check_key(object.key)?;
        if !seen.insert(object.key) {
            return Err(BucketError::Batch {
                bucket: *bucket,
                reason: format!("key {:?} is given twice", object.key),
            });
        }
    }
    Ok(seen.into_iter().map(str::to_owned).collect())
}

/// Cuts the sealed objects, in order, into index writes within the index's
/// limits: at most [`INDEX_WRITE_ENTRIES_MAX`] entries and
/// [`INLINE_WRITE_BYTES_MAX`] bytes of inline objects each.
fn index_writes(sealed: Vec<Sealed>) -> Vec<Vec<Sealed>> {
    let mut writes: Vec<Vec<Sealed>> = Vec::new();
    let mut inline_bytes = 0;
    for object in sealed {
        let bytes = object.inline.as_ref().map_or(0, InlineObject::bytes);
        let full = writes.last().is_none_or(|w| {
            w.len() == INDEX_WRITE_ENTRIES_MAX || inline_bytes + bytes > INLINE_WRITE_BYTES_MAX
        });
        if full {
            writes.push(Vec::new());
            inline_bytes = 0;
        }
        inline_bytes += bytes;
        if let Some(write) = writes.last_mut() {
            write.push(object);
        }
    }
    writes
}

/// Signs one index write's entries and the bucket's usage after them, and
/// writes them to a quorum of the bucket's index replicas.
fn write_batch(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    created_ms: u64,
    current: &BTreeMap<String, Signed<ObjectEntry>>,
    signed_usage: Option<(u64, u64)>,
    write: Vec<Sealed>,
) -> Result<Vec<ObjectPut>, BucketError> {
    let now = now_ms();
    let mut delta = (0u64, 0u64);
    let mut entries = Vec::with_capacity(write.len());
    let mut inline = Vec::new();
    let mut puts = Vec::with_capacity(write.len());
    for Sealed {
        key,
        receipt,
        inline: kept,
    } in write
    {
        let old = current.get(&key);
        delta.0 += old.and_then(|e| e.body.object).map_or(0, |o| o.size);
        delta.1 += receipt.size_bytes;
        let object = ObjectRef {
            manifest: receipt.manifest_cid,
            size: receipt.size_bytes,
            inline: kept.is_some(),
        };
        entries.push(Canonical(Signed::new(
            ObjectEntry {
                bucket: *bucket,
                key: key.clone(),
                object: Some(object),
                // Strictly after what it replaces, even if this clock is behind.
                at_ms: old.map_or(now, |e| now.max(e.body.at_ms + 1)),
            },
            owner,
        )));
        inline.extend(kept.map(Canonical));
        puts.push(ObjectPut {
            key,
            receipt,
            replicas: 0,
            bucket_bytes: 0,
            inline: object.inline,
        });
    }
    let sequence = (*bucket, created_ms);
    let (seq, bytes) = USAGE_SEQUENCE.next(sequence, signed_usage, delta);
    let usage = Signed::new(
        BucketUsage {
            bucket: *bucket,
            stored_bytes: bytes,
            seq,
            at_ms: now,
        },
        owner,
    );
    let written = node.index_write(
        bucket,
        &IndexWrite {
            entries,
            usage: Some(Canonical(usage)),
            receipts: Vec::new(),
            inline,
        },
    );
    match written {
        Ok(receipt) => {
            for put in &mut puts {
                put.replicas = receipt.replicas;
                put.bucket_bytes = bytes;
            }
            Ok(puts)
        }
        Err(err) => {
            // Not written: the next usage this process signs leaves it out.
            USAGE_SEQUENCE.undo(sequence, delta);
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    fn sealed(key: &str, inline_bytes: Option<usize>) -> Sealed {
        let owner = Keypair::generate();
        let options = PutOptions::default();
        let (receipt, _) = seal_inline(b"x", &owner, &options).expect("seals");
        Sealed {
            key: key.to_owned(),
            receipt,
            inline: inline_bytes.map(|n| InlineObject {
                chunks: vec![vec![0; n]],
            }),
        }
    }

    #[test]
    fn writes_are_cut_at_the_entry_and_inline_byte_limits_in_order() {
        let many: Vec<Sealed> = (0..INDEX_WRITE_ENTRIES_MAX + 5)
            .map(|i| sealed(&format!("k{i:05}"), None))
            .collect();
        let writes = index_writes(many);
        assert_eq!(
            writes.iter().map(Vec::len).collect::<Vec<_>>(),
            [INDEX_WRITE_ENTRIES_MAX, 5]
        );
        assert_eq!(writes[1][0].key, format!("k{:05}", INDEX_WRITE_ENTRIES_MAX));

        // 8 KiB each: 128 fill 1 MiB exactly, the 129th opens a new write.
        let big: Vec<Sealed> = (0..130)
            .map(|i| sealed(&format!("b{i}"), Some(8 << 10)))
            .collect();
        let writes = index_writes(big);
        assert_eq!(writes.iter().map(Vec::len).collect::<Vec<_>>(), [128, 2]);
        let inline: usize = writes[0]
            .iter()
            .map(|s| s.inline.as_ref().map_or(0, InlineObject::bytes))
            .sum();
        assert!(inline <= INLINE_WRITE_BYTES_MAX);
        assert!(index_writes(Vec::new()).is_empty());
    }

    #[test]
    fn a_batch_names_each_key_once_and_within_the_limit() {
        let bucket = BucketId(Hash32([9; 32]));
        let object = |key| NewObject { key, bytes: b"x" };
        let err = batch_keys(&bucket, &[object("a"), object("b"), object("a")]).unwrap_err();
        assert!(err.to_string().contains("\"a\" is given twice"), "{err}");
        let err = batch_keys(&bucket, &[]).unwrap_err();
        assert!(err.to_string().contains("0 objects"), "{err}");
        let keys: Vec<String> = (0..=INDEX_WRITE_ENTRIES_MAX)
            .map(|i| format!("k{i}"))
            .collect();
        let many: Vec<NewObject<'_>> = keys.iter().map(|k| object(k)).collect();
        assert!(batch_keys(&bucket, &many).is_err());
        assert_eq!(
            batch_keys(&bucket, &many[..3]).expect("three keys"),
            ["k0", "k1", "k2"]
        );
        assert!(matches!(
            batch_keys(&bucket, &[object("")]),
            Err(BucketError::Key(_))
        ));
    }
}
