//! One node's replica of the object indexes it keeps: a redb database of
//! signed entries keyed by `bucket || key` (so a bucket's keys are one
//! sorted range and a prefix listing is a range scan), of each bucket's
//! signed usages by sequence (a bill takes the last one signed before its
//! period ended), of the owner's bandwidth receipts, the highest per
//! bucket, period and serving node (they are cumulative), and of the
//! receivers' repair receipts, the highest per bucket, period, repairer and
//! receiver; and of the chunks of the objects the index keeps itself
//! (inline objects), under the key whose entry names them.
//!
//! [`IndexTable::merge`] takes a batch (the index writer hands it every
//! write that arrived while the last commit ran) and commits it durably in
//! one transaction: an acknowledged write survives a crash, and the fsync
//! is shared by the batch. Merging is last-writer-wins per key
//! ([`peercloud_ledger::object_entry::newer`]) and highest-sequence per
//! bucket's usage, so replicas that saw the same writes in any order agree.
//! Callers check signatures before merging; the table trusts what it is given.

use std::path::{Path, PathBuf};

use peercloud_ledger::object_entry::newer;
use peercloud_ledger::{
    BandwidthReceipt, BucketId, BucketUsage, InlineIndex, InlineObject, ObjectEntry, RepairReceipt,
};
use peercloud_types::{NodeId, Signed, decode, encode};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// Entries: `bucket id (32 bytes) || key (UTF-8)` → encoded `Signed<ObjectEntry>`.
const ENTRIES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("entries");
/// Usages: `bucket id || seq (big-endian)` → encoded `Signed<BucketUsage>`.
const USAGES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("usages");
/// Receipts: `bucket id || period (big-endian) || node key` → encoded
/// `Signed<BandwidthReceipt>` (the most bytes seen).
const RECEIPTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("receipts");
/// Repair receipts: `bucket id || period (big-endian) || repairer key ||
/// receiver key` → encoded `Signed<RepairReceipt>` (the most bytes seen).
/// (Added in format 1: an index without it gets it on open.)
const REPAIRS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("repairs");
/// Inline objects: `bucket id || key` → encoded [`InlineObject`], the
/// chunks of the object the key's entry names (kept only while it does).
const INLINE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("inline");
/// The index database's format.
const META: TableDefinition<'_, &str, u32> = TableDefinition::new("meta");
/// Format of this database; another is refused by name. 2: entries of
/// version 2 (`ObjectRef::inline`) and the inline objects' table.
pub const INDEX_FORMAT_VERSION: u32 = 2;

/// The index database failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexTableError {
    /// redb failed.
    #[error("object index {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        source: Box<redb::Error>,
    },
    /// A stored record does not decode (the file was damaged).
    #[error("object index {path}: a stored record is damaged: {reason}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The database was written by another format.
    #[error(
        "object index {path} is format {found}; this node reads format {INDEX_FORMAT_VERSION} (move the file away to start an empty index)"
    )]
    Format {
        /// The database file.
        path: PathBuf,
        /// The format found.
        found: u32,
    },
}

/// What one merge changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// Entries that replaced an older one or were new.
    pub entries: usize,
    /// Usages not held before.
    pub usages: usize,
    /// Receipts that raised their node's count or were new.
    pub receipts: usize,
    /// Repair receipts that raised their pair's count or were new.
    pub repairs: usize,
    /// Inline objects kept (for an entry that holds its key now).
    pub inline: usize,
}

/// A batch to merge: entries, usages and receipts (all checked by the caller).
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Index entries.
    pub entries: Vec<Signed<ObjectEntry>>,
    /// Usages.
    pub usages: Vec<Signed<BucketUsage>>,
    /// Bandwidth receipts.
    pub receipts: Vec<Signed<BandwidthReceipt>>,
    /// Repair receipts.
    pub repairs: Vec<Signed<RepairReceipt>>,
    /// The chunks of inline objects the entries name (checked by the caller
    /// against the manifest each names).
    pub inline: Vec<InlineObject>,
}

impl Batch {
    /// Moves `other`'s records to the end of this batch's.
    pub fn append(&mut self, other: &mut Batch) {
        self.entries.append(&mut other.entries);
        self.usages.append(&mut other.usages);
        self.receipts.append(&mut other.receipts);
        self.repairs.append(&mut other.repairs);
        self.inline.append(&mut other.inline);
    }
}

fn repair_key(receipt: &RepairReceipt) -> Vec<u8> {
    let mut out = receipt_key(&receipt.bucket, receipt.period, Some(&receipt.repairer));
    out.extend_from_slice(&receipt.receiver.key().0);
    out
}

fn usage_key(bucket: &BucketId, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&bucket.0.0);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

fn receipt_key(bucket: &BucketId, period: u64, node: Option<&NodeId>) -> Vec<u8> {
    let mut out = Vec::with_capacity(72);
    out.extend_from_slice(&bucket.0.0);
    out.extend_from_slice(&period.to_be_bytes());
    if let Some(node) = node {
        out.extend_from_slice(&node.key().0);
    }
    out
}

/// One node's replica of object indexes.
#[derive(Debug)]
pub struct IndexTable {
    db: Database,
    path: PathBuf,
}

fn entry_key(bucket: &BucketId, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + key.len());
    out.extend_from_slice(&bucket.0.0);
    out.extend_from_slice(key.as_bytes());
    out
}

impl IndexTable {
    /// Opens (or creates) the index database at `path`.
    pub fn open(path: &Path) -> Result<IndexTable, IndexTableError> {
        let table = IndexTable {
            db: Database::create(path).map_err(|e| db_error(path, e))?,
            path: path.to_path_buf(),
        };
        let txn = table.db.begin_write().map_err(|e| table.err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| table.err(e))?;
            let found = meta
                .get("format")
                .map_err(|e| table.err(e))?
                .map(|v| v.value());
            match found {
                None => {
                    meta.insert("format", INDEX_FORMAT_VERSION)
                        .map_err(|e| table.err(e))?;
                }
                Some(INDEX_FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(IndexTableError::Format {
                        path: table.path.clone(),
                        found,
                    });
                }
            }
            txn.open_table(ENTRIES).map_err(|e| table.err(e))?;
            txn.open_table(USAGES).map_err(|e| table.err(e))?;
            txn.open_table(RECEIPTS).map_err(|e| table.err(e))?;
            txn.open_table(REPAIRS).map_err(|e| table.err(e))?;
            txn.open_table(INLINE).map_err(|e| table.err(e))?;
        }
        txn.commit().map_err(|e| table.err(e))?;
        Ok(table)
    }

    fn err(&self, source: impl Into<redb::Error>) -> IndexTableError {
        db_error(&self.path, source)
    }

    fn decode<T: serde::Serialize + serde::de::DeserializeOwned + peercloud_types::Versioned>(
        &self,
        bytes: &[u8],
    ) -> Result<Signed<T>, IndexTableError> {
        self.decode_plain(bytes)
    }

    fn decode_plain<
        T: serde::Serialize + serde::de::DeserializeOwned + peercloud_types::Versioned,
    >(
        &self,
        bytes: &[u8],
    ) -> Result<T, IndexTableError> {
        decode(bytes).map_err(|e| IndexTableError::Damaged {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Merges a batch of entries, usages and receipts in one durable commit.
    pub fn merge(&self, batch: &Batch) -> Result<Merged, IndexTableError> {
        let Batch {
            entries,
            usages,
            receipts,
            repairs,
            inline: _,
        } = batch;
        let mut merged = Merged::default();
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
            let mut inline = txn.open_table(INLINE).map_err(|e| self.err(e))?;
            let carried = InlineIndex::new(&batch.inline);
            for entry in entries {
                let key = entry_key(&entry.body.bucket, &entry.body.key);
                let current = match table.get(key.as_slice()).map_err(|e| self.err(e))? {
                    Some(bytes) => Some(self.decode::<ObjectEntry>(bytes.value())?),
                    None => None,
                };
                let wins = current.as_ref().is_none_or(|c| newer(entry, c));
                if wins {
                    table
                        .insert(key.as_slice(), encode(entry).as_slice())
                        .map_err(|e| self.err(e))?;
                    merged.entries += 1;
                }
                // The key's entry now is `entry` (it won, or it is the one
                // held): keep its object's chunks when carried; an entry
                // that won without them drops the chunks of the one it
                // replaced (a replica short of them gets them from the
                // others: read repair and the index pull).
                let holds = wins || current.as_ref() == Some(entry);
                if let Some(object) = carried.of(&entry.body).filter(|_| holds) {
                    inline
                        .insert(key.as_slice(), encode(object).as_slice())
                        .map_err(|e| self.err(e))?;
                    merged.inline += 1;
                } else if wins {
                    inline.remove(key.as_slice()).map_err(|e| self.err(e))?;
                }
            }
            let mut table = txn.open_table(USAGES).map_err(|e| self.err(e))?;
            for usage in usages {
                let key = usage_key(&usage.body.bucket, usage.body.seq);
                if table
                    .get(key.as_slice())
                    .map_err(|e| self.err(e))?
                    .is_none()
                {
                    table
                        .insert(key.as_slice(), encode(usage).as_slice())
                        .map_err(|e| self.err(e))?;
                    merged.usages += 1;
                }
            }
            let mut table = txn.open_table(RECEIPTS).map_err(|e| self.err(e))?;
            for receipt in receipts {
                let body = &receipt.body;
                let key = receipt_key(&body.bucket, body.period, Some(&body.node));
                let current = match table.get(key.as_slice()).map_err(|e| self.err(e))? {
                    Some(bytes) => Some(self.decode::<BandwidthReceipt>(bytes.value())?),
                    None => None,
                };
                if current.is_none_or(|c| body.bytes > c.body.bytes) {
                    table
                        .insert(key.as_slice(), encode(receipt).as_slice())
                        .map_err(|e| self.err(e))?;
                    merged.receipts += 1;
                }
            }
            let mut table = txn.open_table(REPAIRS).map_err(|e| self.err(e))?;
            for receipt in repairs {
                let key = repair_key(&receipt.body);
                let current = match table.get(key.as_slice()).map_err(|e| self.err(e))? {
                    Some(bytes) => Some(self.decode::<RepairReceipt>(bytes.value())?),
                    None => None,
                };
                if current.is_none_or(|c| receipt.body.bytes > c.body.bytes) {
                    table
                        .insert(key.as_slice(), encode(receipt).as_slice())
                        .map_err(|e| self.err(e))?;
                    merged.repairs += 1;
                }
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(merged)
    }

    /// The entry of `key` in `bucket` (a tombstone too), if this replica has one.
    pub fn get(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<Signed<ObjectEntry>>, IndexTableError> {
        Ok(self.get_many(bucket, &[key.to_owned()])?.pop())
    }

    /// The entries of those of `keys` in `bucket` this replica has
    /// (tombstones too), in the order asked, read in one transaction.
    pub fn get_many(
        &self,
        bucket: &BucketId,
        keys: &[String],
    ) -> Result<Vec<Signed<ObjectEntry>>, IndexTableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for key in keys {
            let found = table
                .get(entry_key(bucket, key).as_slice())
                .map_err(|e| self.err(e))?;
            if let Some(bytes) = found {
                out.push(self.decode(bytes.value())?);
            }
        }
        Ok(out)
    }

    /// The chunks this replica keeps of each of `entries`' inline objects
    /// (of the entries the replica holds now: others' are not kept).
    pub fn inline(
        &self,
        entries: &[Signed<ObjectEntry>],
    ) -> Result<Vec<InlineObject>, IndexTableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(INLINE).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in entries {
            let Some(object) = entry.body.object.filter(|o| o.inline) else {
                continue;
            };
            let key = entry_key(&entry.body.bucket, &entry.body.key);
            if let Some(bytes) = table.get(key.as_slice()).map_err(|e| self.err(e))? {
                let kept: InlineObject = self.decode_plain(bytes.value())?;
                if kept.manifest() == Some(object.manifest) {
                    out.push(kept);
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` entries of `bucket` whose keys start with `prefix`,
    /// after `after` when given, in key order; tombstones included (a
    /// reader merging replicas needs them to outvote a stale object).
    pub fn list(
        &self,
        bucket: &BucketId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Signed<ObjectEntry>>, IndexTableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| self.err(e))?;
        let start = entry_key(bucket, prefix);
        // A later page starts at its `after` key, not at the prefix (a
        // bucket's last pages would otherwise skip every earlier key).
        let from = after
            .map(|after| entry_key(bucket, after))
            .filter(|from| *from > start)
            .unwrap_or_else(|| start.clone());
        let mut out = Vec::new();
        for item in table.range(from.as_slice()..).map_err(|e| self.err(e))? {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(|e| self.err(e))?;
            let key = key.value();
            if !key.starts_with(&start) {
                break;
            }
            let name = &key[32..];
            if after.is_some_and(|after| name <= after.as_bytes()) {
                continue;
            }
            out.push(self.decode(value.value())?);
        }
        Ok(out)
    }

    /// The latest usage of `bucket` this replica has.
    pub fn usage(&self, bucket: &BucketId) -> Result<Option<Signed<BucketUsage>>, IndexTableError> {
        self.usage_until(bucket, u64::MAX)
    }

    /// The highest-sequence usage of `bucket` signed at or before `until_ms`.
    pub fn usage_until(
        &self,
        bucket: &BucketId,
        until_ms: u64,
    ) -> Result<Option<Signed<BucketUsage>>, IndexTableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(USAGES).map_err(|e| self.err(e))?;
        let (start, end) = (usage_key(bucket, 0), usage_key(bucket, u64::MAX));
        for item in table
            .range(start.as_slice()..=end.as_slice())
            .map_err(|e| self.err(e))?
            .rev()
        {
            let (_, value) = item.map_err(|e| self.err(e))?;
            let usage: Signed<BucketUsage> = self.decode(value.value())?;
            if usage.body.at_ms <= until_ms {
                return Ok(Some(usage));
            }
        }
        Ok(None)
    }

    /// The receipts of `bucket` for billing `period`, one per serving node
    /// (the most bytes seen).
    pub fn receipts(
        &self,
        bucket: &BucketId,
        period: u64,
    ) -> Result<Vec<Signed<BandwidthReceipt>>, IndexTableError> {
        self.period_records(RECEIPTS, bucket, period)
    }

    /// The repair receipts of `bucket` for billing `period`, one per
    /// (repairer, receiver) (the most bytes seen).
    pub fn repairs(
        &self,
        bucket: &BucketId,
        period: u64,
    ) -> Result<Vec<Signed<RepairReceipt>>, IndexTableError> {
        self.period_records(REPAIRS, bucket, period)
    }

    /// Every record of `table` under `bucket || period`.
    fn period_records<
        T: serde::Serialize + serde::de::DeserializeOwned + peercloud_types::Versioned,
    >(
        &self,
        definition: TableDefinition<'_, &[u8], &[u8]>,
        bucket: &BucketId,
        period: u64,
    ) -> Result<Vec<Signed<T>>, IndexTableError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(definition).map_err(|e| self.err(e))?;
        let prefix = receipt_key(bucket, period, None);
        let mut out = Vec::new();
        for item in table.range(prefix.as_slice()..).map_err(|e| self.err(e))? {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            out.push(self.decode(value.value())?);
        }
        Ok(out)
    }
}

fn db_error(path: &Path, source: impl Into<redb::Error>) -> IndexTableError {
    IndexTableError::Db {
        path: path.to_path_buf(),
        source: Box::new(source.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_ledger::ObjectRef;
    use peercloud_types::{ContentId, Hash32, Keypair};

    fn entry(bucket: u8, key: &str, at_ms: u64, live: bool) -> Signed<ObjectEntry> {
        let owner = Keypair::from_seed(&[9; 32]);
        Signed::new(
            ObjectEntry {
                bucket: BucketId(Hash32([bucket; 32])),
                key: key.to_owned(),
                object: live.then(|| ObjectRef {
                    manifest: ContentId::of(key.as_bytes()),
                    size: at_ms,
                    inline: false,
                }),
                at_ms,
            },
            &owner,
        )
    }

    fn usage(seq: u64, bytes: u64) -> Signed<BucketUsage> {
        Signed::new(
            BucketUsage {
                bucket: BucketId(Hash32([1; 32])),
                stored_bytes: bytes,
                seq,
                at_ms: seq,
            },
            &Keypair::from_seed(&[9; 32]),
        )
    }

    fn receipt(period: u64, node: u8, bytes: u64) -> Signed<BandwidthReceipt> {
        let owner = Keypair::from_seed(&[9; 32]);
        Signed::new(
            BandwidthReceipt {
                bucket: BucketId(Hash32([1; 32])),
                node: Keypair::from_seed(&[node; 32]).node_id(),
                period,
                bytes,
                receiver: owner.account_id(),
            },
            &owner,
        )
    }

    fn batch(
        entries: Vec<Signed<ObjectEntry>>,
        usages: Vec<Signed<BucketUsage>>,
        receipts: Vec<Signed<BandwidthReceipt>>,
    ) -> Batch {
        Batch {
            entries,
            usages,
            receipts,
            repairs: Vec::new(),
            inline: Vec::new(),
        }
    }

    #[test]
    fn merges_last_writer_wins_in_any_order_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        let (old, new, gone) = (
            entry(1, "a", 1, true),
            entry(1, "a", 2, true),
            entry(1, "a", 3, false),
        );
        let one = IndexTable::open(&path).expect("open");
        let merged = one.merge(&batch(vec![new.clone(), old.clone()], vec![], vec![]));
        assert_eq!(merged.expect("merge").entries, 1);
        assert_eq!(
            one.get(&old.body.bucket, "a").expect("get"),
            Some(new.clone())
        );
        let merged = one.merge(&batch(
            vec![gone.clone()],
            vec![usage(2, 5), usage(1, 9)],
            vec![receipt(0, 1, 10), receipt(0, 1, 30), receipt(0, 2, 5)],
        ));
        assert_eq!(
            merged.expect("merge"),
            Merged {
                entries: 1,
                usages: 2,
                receipts: 3,
                repairs: 0,
                inline: 0,
            }
        );
        drop(one);
        let again = IndexTable::open(&path).expect("reopen");
        let bucket = old.body.bucket;
        assert_eq!(again.get(&bucket, "a").expect("get"), Some(gone));
        let bytes = |u: Option<Signed<BucketUsage>>| u.map(|u| u.body.stored_bytes);
        assert_eq!(bytes(again.usage(&bucket).expect("usage")), Some(5));
        // A bill of a period that ended at 1 ms takes the usage signed then.
        assert_eq!(
            bytes(again.usage_until(&bucket, 1).expect("usage")),
            Some(9)
        );
        assert_eq!(bytes(again.usage_until(&bucket, 0).expect("usage")), None);
        // Receipts are cumulative: the highest per node stays.
        let counts: Vec<u64> = again
            .receipts(&bucket, 0)
            .expect("receipts")
            .iter()
            .map(|r| r.body.bytes)
            .collect();
        assert_eq!(counts.len(), 2);
        assert!(counts.contains(&30) && counts.contains(&5), "{counts:?}");
        assert!(again.receipts(&bucket, 1).expect("receipts").is_empty());
        let merged = again.merge(&batch(
            vec![old],
            vec![usage(1, 9)],
            vec![receipt(0, 1, 20)],
        ));
        assert_eq!(merged.expect("merge"), Merged::default());
    }

    #[test]
    fn an_inline_object_is_kept_while_its_entry_holds_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = IndexTable::open(&dir.path().join("index.redb")).expect("open");
        let owner = Keypair::from_seed(&[9; 32]);
        let bucket = BucketId(Hash32([1; 32]));
        let object = |n: u8| InlineObject {
            chunks: vec![vec![n; 10], vec![n; 20]],
        };
        let inline_entry = |at_ms: u64, n: u8| {
            Signed::new(
                ObjectEntry {
                    bucket,
                    key: "small".into(),
                    object: object(n).manifest().map(|manifest| ObjectRef {
                        manifest,
                        size: 4,
                        inline: true,
                    }),
                    at_ms,
                },
                &owner,
            )
        };
        let with = |entry: &Signed<ObjectEntry>, n: Option<u8>| Batch {
            entries: vec![entry.clone()],
            inline: n.map(object).into_iter().collect(),
            ..Batch::default()
        };
        let first = inline_entry(1, 1);
        // The entry alone (a replica that missed the chunks) keeps none…
        table.merge(&with(&first, None)).expect("merge");
        assert!(
            table
                .inline(std::slice::from_ref(&first))
                .expect("read")
                .is_empty()
        );
        // …until they come with the entry it holds.
        let merged = table.merge(&with(&first, Some(1))).expect("merge");
        assert_eq!((merged.entries, merged.inline), (0, 1));
        assert_eq!(
            table.inline(std::slice::from_ref(&first)).expect("read"),
            [object(1)]
        );
        // Chunks of an older entry than the one held are not kept.
        let second = inline_entry(2, 2);
        table.merge(&with(&second, Some(2))).expect("merge");
        let merged = table.merge(&with(&first, Some(1))).expect("merge");
        assert_eq!(merged, Merged::default());
        assert_eq!(
            table.inline(std::slice::from_ref(&second)).expect("read"),
            [object(2)]
        );
        assert!(table.inline(&[first]).expect("read").is_empty());
        // A delete drops them.
        let gone = entry(1, "small", 3, false);
        table.merge(&with(&gone, None)).expect("merge");
        assert!(table.inline(&[second]).expect("read").is_empty());
    }

    #[test]
    fn lists_a_prefix_of_one_bucket_in_key_order_with_paging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = IndexTable::open(&dir.path().join("index.redb")).expect("open");
        let batch: Vec<_> = ["b/2", "a/1", "b/1", "b/3", "c"]
            .iter()
            .map(|k| entry(1, k, 1, true))
            .chain([entry(2, "b/0", 1, true), entry(0, "b/9", 1, true)])
            .collect();
        table
            .merge(&super::Batch {
                entries: batch,
                ..Default::default()
            })
            .expect("merge");
        let bucket = BucketId(Hash32([1; 32]));
        let keys =
            |v: Vec<Signed<ObjectEntry>>| v.into_iter().map(|e| e.body.key).collect::<Vec<_>>();
        assert_eq!(
            keys(table.list(&bucket, "b/", None, 10).expect("list")),
            ["b/1", "b/2", "b/3"]
        );
        assert_eq!(
            keys(table.list(&bucket, "b/", Some("b/1"), 1).expect("list")),
            ["b/2"]
        );
        assert_eq!(
            keys(table.list(&bucket, "", None, 10).expect("list")).len(),
            5
        );
        assert!(table.list(&bucket, "z", None, 10).expect("list").is_empty());
        // An `after` before the prefix starts at the prefix; one past the
        // bucket's last key finds nothing (not the next bucket's keys).
        assert_eq!(
            keys(table.list(&bucket, "b/", Some("a/9"), 10).expect("list")),
            ["b/1", "b/2", "b/3"]
        );
        assert_eq!(
            keys(table.list(&bucket, "", Some("b/2"), 10).expect("list")),
            ["b/3", "c"]
        );
        assert!(
            table
                .list(&bucket, "", Some("zz"), 10)
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn another_format_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            txn.open_table(META)
                .expect("meta")
                .insert("format", 99)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = IndexTable::open(&path).expect_err("format 99").to_string();
        assert!(
            err.contains("format 99") && err.contains("index.redb"),
            "{err}"
        );
    }
}
