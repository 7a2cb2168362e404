//! Objects in a bucket, as the bucket's owner uses them: put a named object,
//! get it, list a prefix, delete it. Written once over [`NodeApi`].
//!
//! A put seals and stores the object's chunks on the bucket's cluster (its
//! redundancy: replicas or Reed-Solomon), then signs the index entry naming
//! it and the bucket's new running usage, and writes both to a quorum of the
//! bucket's index replicas. Everything the index answers is checked here
//! against the bucket's owner, so a node cannot make a key name another
//! object.
//!
//! ```text
//!  put: index_get (old size, usage, the bucket's view) ─► owner? writable?
//!       ─► put_object (chunks on the cluster; ≤ 3 KiB: sealed in memory)
//!       ─► sign ObjectEntry + BucketUsage (this process's sequence) ─► index_write (quorum)
//!  get: index_get ─► check owner's signature ─► get_object (verify, decrypt)
//!       ─► sign a cumulative BandwidthReceipt per serving node ─► index_write
//! ```
//!
//! An object of at most [`INLINE_OBJECT_BYTES_MAX`] bytes is inline: sealed
//! the same way, its manifest and chunk travel with its entry and the index
//! replicas keep them (as garage keeps small objects in its object table),
//! so a small put is one index write, not two chunks on three holders each,
//! and a get reads it from the index answer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Mutex, PoisonError};

use peercloud_api::{BucketState, BucketView, EvidenceQuery, IndexView, IndexWrite, ListQuery};
use peercloud_ledger::object_entry::{INLINE_OBJECT_BYTES_MAX, check_key};
use peercloud_ledger::{
    BandwidthReceipt, BucketId, BucketUsage, InlineObject, ObjectEntry, ObjectRef,
};
use peercloud_store::{
    ChunkStore, GetReceipt, MemChunkStore, PutOptions, PutReceipt, Redundancy, StoreError,
    get_object, get_object_range, get_public_object, put_object,
};
use peercloud_types::{AccountId, Keypair, NodeId, Signed, clock::now_ms};

use crate::{ApiStore, NodeApi};
use peercloud_api::Canonical;

mod batch;
pub use batch::{NewObject, put_many, unchanged};

/// A bucket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The node could not be asked, or refused.
    #[error(transparent)]
    Client(#[from] crate::ClientError),
    /// The wallet does not own the bucket.
    #[error("{bucket} is owned by {owner}, not by this wallet ({wallet})")]
    NotOwner {
        /// The bucket.
        bucket: BucketId,
        /// Its owner.
        owner: AccountId,
        /// The wallet's account.
        wallet: AccountId,
    },
    /// The bucket takes no writes.
    #[error("{bucket} is {status} and takes no writes{hint}")]
    ReadOnly {
        /// The bucket.
        bucket: BucketId,
        /// Its status.
        status: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The key is not usable.
    #[error(transparent)]
    Key(#[from] peercloud_ledger::object_entry::KeyError),
    /// No object under the key.
    #[error("no object {key:?} in {bucket}")]
    NotFound {
        /// The bucket.
        bucket: BucketId,
        /// The key.
        key: String,
    },
    /// The key names another object than the one a read was asked for (it
    /// was written again meanwhile).
    #[error("{key:?} in {bucket} was written again while it was being read")]
    Changed {
        /// The bucket.
        bucket: BucketId,
        /// The key.
        key: String,
    },
    /// The index answered with an entry not signed by the bucket's owner,
    /// of another bucket, or of another key.
    #[error("the node's index answer for {bucket} is not the owner's ({reason}); try another node")]
    Forged {
        /// The bucket.
        bucket: BucketId,
        /// What was wrong.
        reason: String,
    },
    /// A put of many objects that cannot be made as asked.
    #[error("a put of many objects to {bucket}: {reason}")]
    Batch {
        /// The bucket.
        bucket: BucketId,
        /// What is wrong with it.
        reason: String,
    },
    /// A put of many objects stored the first `written` (their index
    /// writes were acknowledged); the index write of the next `failed` failed.
    #[error(
        "a put of many objects to {bucket} stored the first {written} of {total}; the next {failed} were not indexed: {source}"
    )]
    Partial {
        /// The bucket.
        bucket: BucketId,
        /// Objects stored, the first of those given.
        written: usize,
        /// Objects given.
        total: usize,
        /// Objects of the write that failed.
        failed: usize,
        /// Why it failed.
        source: Box<BucketError>,
    },
    /// Storing or reading the object's chunks failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The object is kept in the index, and no index replica that answered
    /// holds its chunks.
    #[error(
        "{key:?} in {bucket} is kept in the index, and no replica that answered holds it; try again"
    )]
    InlineMissing {
        /// The bucket.
        bucket: BucketId,
        /// The key.
        key: String,
    },
}

/// How an inline object's manifest describes its redundancy: the bucket's
/// index keeps it on three replicas.
const INLINE_REDUNDANCY: Redundancy = Redundancy::Replicas(3);

/// What a put did.
#[derive(Debug, Clone)]
pub struct ObjectPut {
    /// The key.
    pub key: String,
    /// The store's receipt (manifest CID, sizes, chunks).
    pub receipt: PutReceipt,
    /// Index replicas that acknowledged the entry.
    pub replicas: usize,
    /// The bucket's bytes after the put (its signed usage).
    pub bucket_bytes: u64,
    /// Kept in the bucket's index with its entry, not on chunk holders.
    pub inline: bool,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectItem {
    /// Its key.
    pub key: String,
    /// What it names.
    pub object: ObjectRef,
    /// When it was written, ms since the Unix epoch.
    pub at_ms: u64,
}

/// The object an entry names (none for a tombstone).
fn item_of(entry: &Signed<ObjectEntry>) -> Option<ObjectItem> {
    entry.body.object.map(|object| ObjectItem {
        key: entry.body.key.clone(),
        object,
        at_ms: entry.body.at_ms,
    })
}

/// The bucket's view a get answered with (a node that left it out is
/// asked for it).
fn view_of(
    node: &impl NodeApi,
    bucket: &BucketId,
    answer: &mut IndexView,
) -> Result<BucketView, BucketError> {
    match answer.bucket.take() {
        Some(view) if view.id == *bucket => Ok(view),
        _ => Ok(node.bucket(bucket)?),
    }
}

/// `view`, checked to be owned by `owner`.
fn owned(view: BucketView, owner: &Keypair) -> Result<BucketView, BucketError> {
    if view.owner != owner.account_id() {
        return Err(BucketError::NotOwner {
            bucket: view.id,
            owner: view.owner,
            wallet: owner.account_id(),
        });
    }
    Ok(view)
}

/// What `key` of `bucket` names now as a write needs it (the entry and the
/// bucket's usage, checked against the owner), and the bucket checked to
/// be the wallet's and writable: one request, the index get, which carries
/// the bucket's view (a node that leaves it out is asked for it).
fn before_write(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    key: &str,
) -> Result<(BucketView, Checked), BucketError> {
    check_key(key)?;
    let mut answer = node.index_get(bucket, key)?;
    let view = owned(view_of(node, bucket, &mut answer)?, owner)?;
    writable(&view)?;
    let current = checked(&view, answer, Some(key))?;
    Ok((view, current))
}

/// Refuses a write to a bucket that is not active, saying why.
fn writable(view: &BucketView) -> Result<(), BucketError> {
    let (status, hint) = match view.status {
        BucketState::Active => return Ok(()),
        BucketState::ReadOnly => (
            "read-only (its deposit ran out)",
            "; `peercloud bucket deposit` into it to write again",
        ),
        BucketState::Closed => ("closed", ""),
        BucketState::Expired => ("expired", ""),
    };
    Err(BucketError::ReadOnly {
        bucket: view.id,
        status,
        hint,
    })
}

/// An index answer whose every record was checked against the owner.
struct Checked {
    entries: Vec<Signed<ObjectEntry>>,
    usage: Option<Signed<BucketUsage>>,
    /// The inline objects' chunks as answered (they check themselves
    /// against the manifest CID when read).
    inline: Vec<InlineObject>,
}

/// Checks what the index answered: every entry signed by the owner, of the
/// bucket (and of `key` when given); the usage too.
fn checked(
    view: &BucketView,
    answer: IndexView,
    key: Option<&str>,
) -> Result<Checked, BucketError> {
    let forged = |reason: String| BucketError::Forged {
        bucket: view.id,
        reason,
    };
    let owner = *view.owner.key();
    let mut entries = Vec::with_capacity(answer.entries.len());
    for Canonical(entry) in answer.entries {
        if entry.signer != owner || entry.verify().is_err() {
            return Err(forged(format!(
                "entry {:?} is not signed by the owner",
                entry.body.key
            )));
        }
        if entry.body.bucket != view.id || key.is_some_and(|k| k != entry.body.key) {
            return Err(forged(format!(
                "entry {:?} was not asked for",
                entry.body.key
            )));
        }
        entries.push(entry);
    }
    let usage = match answer.usage {
        Some(Canonical(usage)) => {
            if usage.signer != owner || usage.verify().is_err() || usage.body.bucket != view.id {
                return Err(forged("its usage is not the owner's".into()));
            }
            Some(usage)
        }
        None => None,
    };
    Ok(Checked {
        entries,
        usage,
        inline: answer.inline.into_iter().map(|i| i.0).collect(),
    })
}

/// The store options a bucket's cluster asks for.
fn redundancy_of(view: &BucketView, clusters: &impl NodeApi) -> Result<Redundancy, BucketError> {
    let cluster = clusters.cluster(&view.cluster)?;
    Ok(match cluster.terms.redundancy {
        peercloud_api::RedundancyView::Replicas { copies } => Redundancy::Replicas(copies),
        peercloud_api::RedundancyView::ReedSolomon { data, parity } => {
            Redundancy::Erasure { data, parity }
        }
    })
}

/// Writes `entry` with the usage it implies (the bucket's signed bytes less
/// the key's old size plus its new one; both from `before`, what the index
/// held) to a quorum of index replicas.
fn write_entry(
    node: &impl NodeApi,
    owner: &Keypair,
    view: &BucketView,
    key: &str,
    object: Option<ObjectRef>,
    inline: Option<InlineObject>,
    before: Checked,
) -> Result<(usize, u64), BucketError> {
    let Checked {
        entries: current,
        usage,
        ..
    } = before;
    let old = current.first();
    let old_size = old.and_then(|e| e.body.object).map_or(0, |o| o.size);
    let new_size = object.map_or(0, |o| o.size);
    let signed = usage.map(|u| (u.body.seq, u.body.stored_bytes));
    let delta = (old_size, new_size);
    let (seq, bytes) = USAGE_SEQUENCE.next((view.id, view.created_ms), signed, delta);
    let now = now_ms();
    // Strictly after what it replaces, even if this clock is behind.
    let at_ms = old.map_or(now, |e| now.max(e.body.at_ms + 1));
    let entry = Signed::new(
        ObjectEntry {
            bucket: view.id,
            key: key.to_owned(),
            object,
            at_ms,
        },
        owner,
    );
    let usage = Signed::new(
        BucketUsage {
            bucket: view.id,
            stored_bytes: bytes,
            seq,
            at_ms: now,
        },
        owner,
    );
    let written = node.index_write(
        &view.id,
        &IndexWrite {
            entries: vec![Canonical(entry)],
            usage: Some(Canonical(usage)),
            receipts: Vec::new(),
            inline: inline.into_iter().map(Canonical).collect(),
        },
    );
    match written {
        Ok(receipt) => Ok((receipt.replicas, bytes)),
        Err(err) => {
            // Not written: the next usage this process signs leaves it out.
            USAGE_SEQUENCE.undo((view.id, view.created_ms), delta);
            Err(err.into())
        }
    }
}

/// Each bucket's usage as this process last signed it. A usage is one
/// sequence per bucket (a higher `seq` supersedes a lower one), and puts of
/// one process run at once (an S3 client's parallel uploads, a benchmark's
/// writers): each takes its number and running total from here, after the
/// higher of this and the index's signed usage, so two puts that read the
/// same usage from the index do not both sign `seq + 1` and lose one's bytes.
static USAGE_SEQUENCE: UsageSequence = UsageSequence::new();

/// Numbers usages per bucket (see [`USAGE_SEQUENCE`]), known by its id and
/// creation time (a devnet started again with the same wallet makes a
/// bucket of the same id, which starts from its own usage).
#[derive(Debug)]
struct UsageSequence {
    last: Mutex<BTreeMap<(BucketId, u64), (u64, u64)>>,
}

impl UsageSequence {
    const fn new() -> UsageSequence {
        UsageSequence {
            last: Mutex::new(BTreeMap::new()),
        }
    }

    /// The next (seq, stored bytes) for a write that replaces an object of
    /// `old` bytes with one of `new` bytes, after `signed` (the index's
    /// latest usage) and whatever this process signed since.
    fn next(
        &self,
        bucket: (BucketId, u64),
        signed: Option<(u64, u64)>,
        (old, new): (u64, u64),
    ) -> (u64, u64) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let (seq, bytes) = match (signed, last.get(&bucket).copied()) {
            (Some(s), Some(l)) if l.0 >= s.0 => l,
            (Some(s), _) => s,
            (None, Some(l)) => l,
            (None, None) => (0, 0),
        };
        let next = (seq + 1, bytes.saturating_sub(old).saturating_add(new));
        last.insert(bucket, next);
        next
    }

    /// Takes back a write that failed: the next usage leaves its change out.
    fn undo(&self, bucket: (BucketId, u64), (old, new): (u64, u64)) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, bytes)) = last.get_mut(&bucket) {
            *bytes = bytes.saturating_sub(new).saturating_add(old);
        }
    }
}

/// Stores `reader` as `key` in `bucket` on the bucket's cluster with its
/// redundancy, sealed to `owner` (in the clear in a public bucket);
/// replaces what the key named before. An object of at most
/// [`INLINE_OBJECT_BYTES_MAX`] bytes is kept in the bucket's index instead.
pub fn put(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    key: &str,
    mut reader: impl Read,
) -> Result<ObjectPut, BucketError> {
    let (view, before) = before_write(node, owner, bucket, key)?;
    let mut head = Vec::new();
    (&mut reader)
        .take(INLINE_OBJECT_BYTES_MAX + 1)
        .read_to_end(&mut head)
        .map_err(|source| StoreError::Read { source })?;
    let small = head.len() as u64 <= INLINE_OBJECT_BYTES_MAX;
    let options = PutOptions {
        name: Some(key.to_owned()),
        redundancy: if small {
            INLINE_REDUNDANCY
        } else {
            redundancy_of(&view, node)?
        },
        public: view.public,
        ..PutOptions::default()
    };
    let (receipt, inline) = if small {
        let (receipt, inline) = seal_inline(&head, owner, &options)?;
        (receipt, Some(inline))
    } else {
        let store = ApiStore::in_cluster(node, view.cluster);
        let reader = std::io::Cursor::new(head).chain(reader);
        (put_object(&store, reader, &owner.public(), &options)?, None)
    };
    let object = ObjectRef {
        manifest: receipt.manifest_cid,
        size: receipt.size_bytes,
        inline: inline.is_some(),
    };
    let (replicas, bucket_bytes) =
        write_entry(node, owner, &view, key, Some(object), inline, before)?;
    Ok(ObjectPut {
        key: key.to_owned(),
        receipt,
        replicas,
        bucket_bytes,
        inline: object.inline,
    })
}

/// Seals a small object as a put would, in memory: its receipt and the
/// chunks the index keeps (manifest first).
fn seal_inline(
    bytes: &[u8],
    owner: &Keypair,
    options: &PutOptions,
) -> Result<(PutReceipt, InlineObject), BucketError> {
    let memory = MemChunkStore::new();
    let receipt = put_object(&memory, bytes, &owner.public(), options)?;
    let mut chunks = vec![memory.get(&receipt.manifest_cid)?];
    for cid in &receipt.manifest.chunks {
        chunks.push(memory.get(cid)?);
    }
    Ok((receipt, InlineObject { chunks }))
}

/// An inline object's chunks as a store to read it from (each checked
/// against its CID on the way in and out).
fn inline_store(
    bucket: &BucketId,
    item: &ObjectItem,
    inline: &[InlineObject],
) -> Result<MemChunkStore, BucketError> {
    let object = inline
        .iter()
        .find(|i| i.manifest() == Some(item.object.manifest))
        .ok_or_else(|| BucketError::InlineMissing {
            bucket: *bucket,
            key: item.key.clone(),
        })?;
    let memory = MemChunkStore::new();
    for chunk in &object.chunks {
        memory.put(&peercloud_types::ContentId::of(chunk), chunk)?;
    }
    Ok(memory)
}

/// What `key` names in `bucket` now (checked against the owner).
pub fn head(node: &impl NodeApi, bucket: &BucketId, key: &str) -> Result<ObjectItem, BucketError> {
    lookup(node, bucket, key).map(|(item, _)| item)
}

/// What `key` names in `bucket` now, and the chunks of an inline object.
fn lookup(
    node: &impl NodeApi,
    bucket: &BucketId,
    key: &str,
) -> Result<(ObjectItem, Vec<InlineObject>), BucketError> {
    check_key(key)?;
    let mut answer = node.index_get(bucket, key)?;
    let view = view_of(node, bucket, &mut answer)?;
    let answer = checked(&view, answer, Some(key))?;
    answer
        .entries
        .iter()
        .find_map(item_of)
        .map(|item| (item, answer.inline))
        .ok_or_else(|| BucketError::NotFound {
            bucket: *bucket,
            key: key.to_owned(),
        })
}

/// Reads `key` of `bucket` into `out`, verified and decrypted with `owner`'s
/// key (an object of a public bucket is read by any wallet; only the
/// owner's reads sign bandwidth receipts).
pub fn get(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    key: &str,
    out: impl Write,
) -> Result<(ObjectItem, GetReceipt), BucketError> {
    let (item, inline) = lookup(node, bucket, key)?;
    let manifest = &item.object.manifest;
    if item.object.inline {
        let memory = inline_store(bucket, &item, &inline)?;
        let receipt = get_object(&memory, manifest, &owner.x25519_secret(), out)?;
        return Ok((item, receipt));
    }
    let store = ApiStore::new(node);
    let receipt = get_object(&store, manifest, &owner.x25519_secret(), out)?;
    // The bytes are the user's either way: receipts that cannot be written
    // now (the index short of a quorum while replicas are down) cost the
    // serving nodes that pay, not the user the read.
    if let Err(err) = acknowledge(node, owner, bucket, &store.served()) {
        tracing::warn!(%bucket, key, %err, "bandwidth receipts not written");
    }
    Ok((item, receipt))
}

/// Reads bytes `range` of `key` (cut to its size) into `out`, as [`get`]
/// does the whole: only the chunks that hold them are read, each verified
/// and opened at its own place. With `expect`, the key must still name
/// that manifest ([`BucketError::Changed`] otherwise: parts of a download
/// are never spliced from two versions). Returns what the key names and
/// how many bytes were written.
pub fn get_range(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    key: &str,
    expect: Option<&peercloud_types::ContentId>,
    range: std::ops::Range<u64>,
    out: impl Write,
) -> Result<(ObjectItem, u64), BucketError> {
    let (item, inline) = lookup(node, bucket, key)?;
    if expect.is_some_and(|manifest| *manifest != item.object.manifest) {
        return Err(BucketError::Changed {
            bucket: *bucket,
            key: key.to_owned(),
        });
    }
    let (manifest, secret) = (&item.object.manifest, owner.x25519_secret());
    if item.object.inline {
        let memory = inline_store(bucket, &item, &inline)?;
        let written = get_object_range(&memory, manifest, Some(&secret), range, out)?;
        return Ok((item, written));
    }
    let store = ApiStore::new(node);
    let written = get_object_range(&store, manifest, Some(&secret), range, out)?;
    if let Err(err) = acknowledge(node, owner, bucket, &store.served()) {
        tracing::warn!(%bucket, key, %err, "bandwidth receipts not written");
    }
    Ok((item, written))
}

/// Reads `key` of the public `bucket` into `out` as anyone, without a
/// wallet: the entry is checked against the owner's signature and every
/// chunk against its CID. A private bucket's object is refused.
pub fn get_public(
    node: &impl NodeApi,
    bucket: &BucketId,
    key: &str,
    out: impl Write,
) -> Result<(ObjectItem, GetReceipt), BucketError> {
    let (item, inline) = lookup(node, bucket, key)?;
    let receipt = if item.object.inline {
        let memory = inline_store(bucket, &item, &inline)?;
        get_public_object(&memory, &item.object.manifest, out)?
    } else {
        get_public_object(&ApiStore::new(node), &item.object.manifest, out)?
    };
    Ok((item, receipt))
}

/// The billing period `at_ms` falls in, for a bucket created at
/// `created_ms` with periods of `period_ms`.
pub fn period_at(created_ms: u64, period_ms: u64, at_ms: u64) -> u64 {
    at_ms
        .saturating_sub(created_ms)
        .checked_div(period_ms)
        .unwrap_or(0)
}

/// Held while a read's bandwidth receipts are computed and written.
static RECEIPTS: Mutex<()> = Mutex::new(());

/// Signs the owner's bandwidth receipts for bytes `served` (by node) in the
/// bucket's current period: each node's receipt is cumulative over the
/// period, so the new one adds these bytes to the highest the index holds.
/// A node is paid for bytes only through these receipts.
pub fn acknowledge(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    served: &BTreeMap<NodeId, u64>,
) -> Result<(), BucketError> {
    let served: Vec<(&NodeId, &u64)> = served.iter().filter(|(_, b)| **b > 0).collect();
    if served.is_empty() {
        return Ok(());
    }
    let view = node.bucket(bucket)?;
    if view.owner != owner.account_id() {
        // Someone else's public object: the owner acknowledges only its own reads.
        return Ok(());
    }
    let period = period_at(view.created_ms, view.billing_period_ms, now_ms());
    // A receipt is cumulative (what was acknowledged before, plus this read):
    // reads in this process acknowledge one at a time, or two ranges of one
    // download would each add to the same total and one would be lost.
    let _one = RECEIPTS.lock().unwrap_or_else(PoisonError::into_inner);
    let evidence = node.index_evidence(
        bucket,
        &EvidenceQuery {
            period,
            until_ms: None,
        },
    )?;
    let owner_key = *view.owner.key();
    let before: BTreeMap<NodeId, u64> = evidence
        .receipts
        .into_iter()
        .map(|Canonical(r)| r)
        .filter(|r| {
            r.signer == owner_key
                && r.verify().is_ok()
                && r.body.bucket == *bucket
                && r.body.period == period
        })
        .map(|r| (r.body.node, r.body.bytes))
        .collect();
    let receipts = served
        .into_iter()
        .map(|(served_by, bytes)| {
            let total = before
                .get(served_by)
                .copied()
                .unwrap_or(0)
                .saturating_add(*bytes);
            Canonical(Signed::new(
                BandwidthReceipt {
                    bucket: *bucket,
                    node: *served_by,
                    period,
                    bytes: total,
                    receiver: owner.account_id(),
                },
                owner,
            ))
        })
        .collect();
    node.index_write(
        bucket,
        &IndexWrite {
            receipts,
            ..IndexWrite::default()
        },
    )?;
    Ok(())
}

/// Every live object under `prefix`, in key order (paging through the index).
pub fn list(
    node: &impl NodeApi,
    bucket: &BucketId,
    prefix: &str,
) -> Result<Vec<ObjectItem>, BucketError> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = list_page(node, bucket, prefix, after.as_deref())?;
        items.extend(page);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(items),
        }
    }
}

/// One page of the live objects under `prefix` after the key `after`, in
/// key order, and the key the next page starts after (`None` at the end).
pub fn list_page(
    node: &impl NodeApi,
    bucket: &BucketId,
    prefix: &str,
    after: Option<&str>,
) -> Result<(Vec<ObjectItem>, Option<String>), BucketError> {
    let view = node.bucket(bucket)?;
    let query = ListQuery {
        prefix: Some(prefix.to_owned()),
        after: after.map(str::to_owned),
        limit: None,
    };
    let answer = node.index_list(bucket, &query)?;
    let more = answer.more;
    let entries = checked(&view, answer, None)?.entries;
    if let Some(entry) = entries.iter().find(|e| !e.body.key.starts_with(prefix)) {
        return Err(BucketError::Forged {
            bucket: *bucket,
            reason: format!("key {:?} is not under {prefix:?}", entry.body.key),
        });
    }
    // The last key of the page, tombstones too: where the next one starts.
    // A page that does not move past `after` would page forever.
    let last = entries.last().map(|e| e.body.key.clone());
    if let (Some(last), Some(after)) = (&last, after)
        && last.as_str() <= after
    {
        return Err(BucketError::Forged {
            bucket: *bucket,
            reason: format!("a page after {after:?} ends at {last:?}"),
        });
    }
    let items = entries.iter().filter_map(item_of).collect();
    let next = match (more, last) {
        (true, Some(last)) if after != Some(last.as_str()) => Some(last),
        _ => None,
    };
    Ok((items, next))
}

/// Deletes `key` from `bucket` (a signed tombstone; the bucket's usage
/// drops by the object's size). Deleting a key that names nothing is
/// refused as not found.
pub fn delete(
    node: &impl NodeApi,
    owner: &Keypair,
    bucket: &BucketId,
    key: &str,
) -> Result<ObjectItem, BucketError> {
    let (view, before) = before_write(node, owner, bucket, key)?;
    let item = before
        .entries
        .iter()
        .find_map(item_of)
        .ok_or_else(|| BucketError::NotFound {
            bucket: *bucket,
            key: key.to_owned(),
        })?;
    write_entry(node, owner, &view, key, None, None, before)?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    #[test]
    fn puts_that_read_the_same_usage_take_consecutive_numbers_and_keep_both_sizes() {
        let sequence = UsageSequence::new();
        let bucket = (BucketId(Hash32([9; 32])), 1_000);
        let index = Some((4, 100));
        // Two puts read seq 4 from the index before either wrote.
        assert_eq!(sequence.next(bucket, index, (0, 10)), (5, 110));
        assert_eq!(sequence.next(bucket, index, (0, 20)), (6, 130));
        // An overwrite replaces the old size; a delete drops it.
        assert_eq!(sequence.next(bucket, Some((5, 110)), (20, 5)), (7, 115));
        assert_eq!(sequence.next(bucket, None, (5, 0)), (8, 110));
        // A write that failed is left out of the next usage.
        sequence.undo(bucket, (0, 50));
        assert_eq!(sequence.next(bucket, None, (0, 1)), (9, 61));
        // Another process signed further: its usage is the base.
        assert_eq!(
            sequence.next(bucket, Some((20, 1_000)), (0, 1)),
            (21, 1_001)
        );
        // Another bucket starts from its own, as does one of the same id
        // created at another time (another network).
        let other = (BucketId(Hash32([8; 32])), 1_000);
        assert_eq!(sequence.next(other, None, (0, 3)), (1, 3));
        let again = (BucketId(Hash32([9; 32])), 2_000);
        assert_eq!(sequence.next(again, Some((1, 7)), (0, 3)), (2, 10));
    }
}
