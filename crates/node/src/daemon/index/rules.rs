//! What a bucket's index replicas accept, and who they are: the rules a
//! write is checked by against the ledger (on the node that takes it from
//! the user and again on every replica), and the cluster's active members
//! as weighted placement nodes.

use std::collections::BTreeMap;

use peercloud_ledger::object_entry::{INLINE_CHUNKS_BYTES_MAX, INLINE_OBJECT_BYTES_MAX, check_key};
use peercloud_ledger::{BucketId, BucketStatus, ClusterId, InlineObject, ObjectRef, State};
use peercloud_store::{Manifest, PlacementNode, vnodes_for};
use peercloud_types::{AccountId, ContentId, SignatureBatch};

use super::table::Batch;
use super::{INDEX_WRITE_ENTRIES_MAX, IndexError};

pub use peercloud_ledger::object_entry::INLINE_WRITE_BYTES_MAX;

/// The bucket a write is to (the first record's; [`check_write`] holds the
/// rest to it).
pub(crate) fn batch_bucket(batch: &Batch) -> Result<BucketId, IndexError> {
    batch
        .entries
        .first()
        .map(|e| e.body.bucket)
        .or(batch.usages.first().map(|u| u.body.bucket))
        .or(batch.receipts.first().map(|r| r.body.bucket))
        .or(batch.repairs.first().map(|r| r.body.bucket))
        .ok_or_else(|| IndexError::invalid("an index write carries nothing"))
}

/// Checks a write against the ledger: one bucket, on the ledger, every
/// entry, usage and receipt signed by its owner (a receipt's receiver is
/// the owner), every repair receipt by its receiving node, keys valid;
/// entries and usages only while the bucket is writable (receipts of reads
/// and repairs are taken while it is read-only too). Returns the bucket.
pub(crate) fn check_write(state: &State, batch: &Batch) -> Result<BucketId, IndexError> {
    let Batch {
        entries,
        usages,
        receipts,
        repairs,
        inline,
    } = batch;
    let bucket = batch_bucket(batch)?;
    if entries.len() > INDEX_WRITE_ENTRIES_MAX
        || usages.len() > INDEX_WRITE_ENTRIES_MAX
        || receipts.len() > INDEX_WRITE_ENTRIES_MAX
        || repairs.len() > INDEX_WRITE_ENTRIES_MAX
    {
        return Err(IndexError::invalid(format!(
            "an index write carries {} entries, {} usages, {} receipts and {} repair receipts; at most {INDEX_WRITE_ENTRIES_MAX} of each",
            entries.len(),
            usages.len(),
            receipts.len(),
            repairs.len()
        )));
    }
    let record = state
        .bucket(&bucket)
        .ok_or(IndexError::UnknownBucket { bucket })?;
    let writes = !entries.is_empty() || !usages.is_empty();
    match record.status {
        BucketStatus::Active => {}
        BucketStatus::ReadOnly { .. } if !writes => {}
        BucketStatus::ReadOnly { .. } => {
            return Err(IndexError::ReadOnly {
                bucket,
                status: "read-only (its deposit ran out)",
                hint: "; deposit into it to write again",
            });
        }
        BucketStatus::Closed | BucketStatus::Expired => {
            return Err(IndexError::ReadOnly {
                bucket,
                status: "closed",
                hint: "",
            });
        }
    }
    let owned = |what: String, signer: &peercloud_types::PublicKey| {
        if *signer == *record.owner.key() {
            Ok(())
        } else {
            Err(IndexError::NotOwner {
                what,
                bucket,
                signer: AccountId(*signer),
                owner: record.owner,
            })
        }
    };
    let of_bucket = |what: &str, other: BucketId| {
        if other == bucket {
            Ok(())
        } else {
            Err(IndexError::invalid(format!(
                "a write to {bucket} carries {what} of {other}"
            )))
        }
    };
    // Every signature in one batch verification; only a batch that fails
    // is checked record by record, to name the bad one.
    let mut signatures = SignatureBatch::default();
    entries.iter().for_each(|e| {
        signatures.push(e);
    });
    usages.iter().for_each(|u| {
        signatures.push(u);
    });
    receipts.iter().for_each(|r| {
        signatures.push(r);
    });
    repairs.iter().for_each(|r| {
        signatures.push(r);
    });
    let verified = signatures.bad().is_empty();
    for entry in entries {
        let what = format!("the entry of key {:?} in {bucket}", entry.body.key);
        of_bucket("an entry", entry.body.bucket)?;
        check_key(&entry.body.key).map_err(|e| IndexError::invalid(e.to_string()))?;
        if !verified && entry.verify().is_err() {
            return Err(IndexError::BadSignature { what });
        }
        owned(what, &entry.signer)?;
    }
    let inline_bytes: usize = inline.iter().map(InlineObject::bytes).sum();
    if inline_bytes > INLINE_WRITE_BYTES_MAX {
        return Err(IndexError::invalid(format!(
            "an index write carries {inline_bytes} bytes of inline objects; at most {INLINE_WRITE_BYTES_MAX}"
        )));
    }
    // The inline entries by the manifest they name (the first of two that
    // name one), so each object's manifest is hashed once.
    let mut naming = BTreeMap::new();
    for entry in entries {
        if let Some(object) = entry.body.object.filter(|o| o.inline) {
            naming.entry(object.manifest).or_insert((entry, object));
        }
    }
    for object in inline {
        let manifest = object.manifest();
        let named = manifest.and_then(|m| naming.get(&m));
        let Some(&(entry, object_ref)) = named else {
            return Err(IndexError::invalid(format!(
                "a write to {bucket} carries an inline object (manifest {}) no inline entry of it names",
                manifest.map_or_else(|| "none".to_owned(), |m| m.to_string())
            )));
        };
        check_inline(object, &object_ref).map_err(|reason| {
            IndexError::invalid(format!(
                "the inline object of key {:?} in {bucket}: {reason}",
                entry.body.key
            ))
        })?;
    }
    for receipt in receipts {
        let body = &receipt.body;
        let what = format!(
            "the receipt of {} bytes from node {} in {bucket}",
            body.bytes, body.node
        );
        of_bucket("a receipt", body.bucket)?;
        if !verified && receipt.verify().is_err() {
            return Err(IndexError::BadSignature { what });
        }
        owned(what.clone(), &receipt.signer)?;
        if body.receiver != record.owner {
            return Err(IndexError::invalid(format!(
                "{what} names {} as its receiver, not the owner",
                body.receiver
            )));
        }
    }
    for repair in repairs {
        let body = &repair.body;
        let what = format!(
            "the repair receipt of {} bytes from node {} to node {} in {bucket}",
            body.bytes, body.repairer, body.receiver
        );
        of_bucket("a repair receipt", body.bucket)?;
        if repair.signer != *body.receiver.key() || (!verified && repair.verify().is_err()) {
            return Err(IndexError::BadSignature { what });
        }
    }
    for usage in usages {
        let what = format!("the usage of {bucket}");
        of_bucket("the usage", usage.body.bucket)?;
        if !verified && usage.verify().is_err() {
            return Err(IndexError::BadSignature { what });
        }
        owned(what, &usage.signer)?;
    }
    Ok(bucket)
}

/// Checks an inline object against the entry's object it is carried for:
/// at most [`INLINE_CHUNKS_BYTES_MAX`], its first chunk the manifest the
/// entry names (a manifest of a replicated object of at most
/// [`INLINE_OBJECT_BYTES_MAX`] bytes, the entry's size), and its other
/// chunks exactly the ones the manifest lists, in order.
pub(crate) fn check_inline(object: &InlineObject, named: &ObjectRef) -> Result<(), String> {
    if object.bytes() > INLINE_CHUNKS_BYTES_MAX {
        return Err(format!(
            "its chunks take {} bytes; at most {INLINE_CHUNKS_BYTES_MAX}",
            object.bytes()
        ));
    }
    let Some((first, data)) = object.chunks.split_first() else {
        return Err("it has no manifest chunk".into());
    };
    if ContentId::of(first) != named.manifest {
        return Err(format!("its manifest is not {}", named.manifest));
    }
    let manifest = Manifest::decode(first).map_err(|e| format!("its manifest: {e}"))?;
    if manifest.total_bytes != named.size || named.size > INLINE_OBJECT_BYTES_MAX {
        return Err(format!(
            "its manifest holds {} bytes, the entry says {} (inline objects hold at most {INLINE_OBJECT_BYTES_MAX})",
            manifest.total_bytes, named.size
        ));
    }
    let same = manifest.parity_chunks.is_empty()
        && manifest.chunks.len() == data.len()
        && manifest
            .chunks
            .iter()
            .zip(data)
            .all(|(cid, bytes)| ContentId::of(bytes) == *cid);
    if !same {
        return Err("its chunks are not the ones its manifest lists".into());
    }
    Ok(())
}

/// The active members of a cluster as placement nodes, each weighted by the
/// capacity it offers.
pub(crate) fn cluster_nodes(state: &State, cluster: &ClusterId) -> Vec<PlacementNode> {
    let Some(record) = state.cluster(cluster) else {
        return Vec::new();
    };
    let active: Vec<_> = record
        .members
        .iter()
        .filter(|(_, m)| m.status == peercloud_ledger::MemberStatus::Active)
        .collect();
    let largest = active
        .iter()
        .map(|(_, m)| m.capacity_bytes)
        .max()
        .unwrap_or(0);
    active
        .into_iter()
        .map(|(node, m)| PlacementNode {
            node: *node,
            owner: m.owner,
            vnodes: vnodes_for(m.capacity_bytes, largest),
        })
        .collect()
}

/// The key a bucket's index replicas are ranked by.
pub(super) fn index_cid(bucket: &BucketId) -> ContentId {
    ContentId::of(&bucket.0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_store::{ChunkStore, MemChunkStore, PutOptions, put_object};
    use peercloud_types::Keypair;

    /// A small object sealed as a client would, and the reference to it.
    fn sealed(bytes: &[u8]) -> (InlineObject, ObjectRef) {
        let memory = MemChunkStore::new();
        let owner = Keypair::from_seed(&[3; 32]);
        let receipt = put_object(&memory, bytes, &owner.public(), &PutOptions::default())
            .expect("a put in memory");
        let mut chunks = vec![memory.get(&receipt.manifest_cid).expect("manifest")];
        for cid in &receipt.manifest.chunks {
            chunks.push(memory.get(cid).expect("chunk"));
        }
        let named = ObjectRef {
            manifest: receipt.manifest_cid,
            size: bytes.len() as u64,
            inline: true,
        };
        (InlineObject { chunks }, named)
    }

    #[test]
    fn an_inline_object_must_be_the_one_its_entry_names() {
        let (object, named) = sealed(b"a small object");
        assert_eq!(check_inline(&object, &named), Ok(()));

        let (other, _) = sealed(b"another small object");
        let err = check_inline(&other, &named).expect_err("another manifest");
        assert!(err.contains("manifest is not"), "{err}");

        let mut flipped = object.clone();
        flipped.chunks[1][0] ^= 1;
        let err = check_inline(&flipped, &named).expect_err("a flipped chunk");
        assert!(err.contains("not the ones its manifest lists"), "{err}");

        let mut short = object.clone();
        short.chunks.pop();
        assert!(check_inline(&short, &named).is_err(), "a missing chunk");

        let lying = ObjectRef { size: 9, ..named };
        let err = check_inline(&object, &lying).expect_err("another size");
        assert!(err.contains("the entry says 9"), "{err}");

        let big = InlineObject {
            chunks: vec![vec![0; INLINE_CHUNKS_BYTES_MAX + 1]],
        };
        assert!(check_inline(&big, &named).is_err(), "too large");
        let empty = InlineObject { chunks: Vec::new() };
        assert!(check_inline(&empty, &named).is_err(), "no manifest");
    }
}
