//! What a bucket's index replicas accept, and who they are: the rules a
//! write is checked by against the ledger (on the node that takes it from
//! the user and again on every replica), and the cluster's active members
//! as weighted placement nodes.

use peercloud_ledger::object_entry::check_key;
use peercloud_ledger::{BucketId, BucketStatus, ClusterId, State};
use peercloud_store::{PlacementNode, vnodes_for};
use peercloud_types::{AccountId, ContentId};

use super::table::Batch;
use super::{INDEX_WRITE_ENTRIES_MAX, IndexError};

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
    } = batch;
    let bucket = entries
        .first()
        .map(|e| e.body.bucket)
        .or(usages.first().map(|u| u.body.bucket))
        .or(receipts.first().map(|r| r.body.bucket))
        .or(repairs.first().map(|r| r.body.bucket))
        .ok_or_else(|| IndexError::invalid("an index write carries nothing"))?;
    if entries.len() > INDEX_WRITE_ENTRIES_MAX
        || receipts.len() > INDEX_WRITE_ENTRIES_MAX
        || repairs.len() > INDEX_WRITE_ENTRIES_MAX
    {
        return Err(IndexError::invalid(format!(
            "an index write carries {} entries, {} receipts and {} repair receipts; at most {INDEX_WRITE_ENTRIES_MAX} of each",
            entries.len(),
            receipts.len(),
            repairs.len()
        )));
    }
    if usages.len() > 1 {
        return Err(IndexError::invalid(
            "an index write carries one usage at most",
        ));
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
    for entry in entries {
        let what = format!("the entry of key {:?} in {bucket}", entry.body.key);
        of_bucket("an entry", entry.body.bucket)?;
        check_key(&entry.body.key).map_err(|e| IndexError::invalid(e.to_string()))?;
        entry
            .verify()
            .map_err(|_| IndexError::BadSignature { what: what.clone() })?;
        owned(what, &entry.signer)?;
    }
    for receipt in receipts {
        let body = &receipt.body;
        let what = format!(
            "the receipt of {} bytes from node {} in {bucket}",
            body.bytes, body.node
        );
        of_bucket("a receipt", body.bucket)?;
        receipt
            .verify()
            .map_err(|_| IndexError::BadSignature { what: what.clone() })?;
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
        if repair.signer != *body.receiver.key() || repair.verify().is_err() {
            return Err(IndexError::BadSignature { what });
        }
    }
    for usage in usages {
        let what = format!("the usage of {bucket}");
        of_bucket("the usage", usage.body.bucket)?;
        usage
            .verify()
            .map_err(|_| IndexError::BadSignature { what: what.clone() })?;
        owned(what, &usage.signer)?;
    }
    Ok(bucket)
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
