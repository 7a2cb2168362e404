//! A bucket's objects through the API: writing index entries the owner
//! signed (`POST /v1/buckets/{id}/index`), reading one key
//! (`GET /v1/buckets/{id}/objects/{key}`) or many
//! (`POST /v1/buckets/{id}/index/keys`) and listing a prefix
//! (`GET /v1/buckets/{id}/objects?prefix=…&after=…&limit=…`), and the
//! evidence a bill carries (`GET /v1/buckets/{id}/evidence?period=…`). Entries and
//! usage travel in their canonical signed encoding, so the client checks the
//! owner's signature itself and never trusts the node for what a key names.

use peercloud_ledger::{BandwidthReceipt, BucketUsage, InlineObject, ObjectEntry};
use peercloud_types::Signed;
use serde::{Deserialize, Serialize};

use crate::Canonical;

/// `POST /v1/buckets/{id}/index`: entries of the bucket, signed by its
/// owner, the owner's running usage after them, and the owner's receipts
/// for bytes it read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexWrite {
    /// The entries (a put names an object, a delete is an entry without one).
    #[serde(default)]
    pub entries: Vec<Canonical<Signed<ObjectEntry>>>,
    /// The owner's usage of the bucket after this write.
    #[serde(default)]
    pub usage: Option<Canonical<Signed<BucketUsage>>>,
    /// The owner's bandwidth receipts: cumulative bytes per serving node in
    /// a billing period.
    #[serde(default)]
    pub receipts: Vec<Canonical<Signed<BandwidthReceipt>>>,
    /// The chunks of the entries' objects kept in the index
    /// (`ObjectRef::inline`), each matched to its entry by manifest CID.
    #[serde(default)]
    pub inline: Vec<Canonical<InlineObject>>,
}

/// The query of `GET /v1/buckets/{id}/evidence`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct EvidenceQuery {
    /// The billing period.
    pub period: u64,
    /// The usage wanted is the last signed at or before this (default: any).
    pub until_ms: Option<u64>,
}

/// `GET /v1/buckets/{id}/evidence`: what a quorum of the bucket's index
/// replicas holds for a bill of one period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceView {
    /// The last usage signed by the time asked.
    pub usage: Option<Canonical<Signed<BucketUsage>>>,
    /// The period's receipts, the most bytes per serving node.
    pub receipts: Vec<Canonical<Signed<BandwidthReceipt>>>,
}

/// The answer to an [`IndexWrite`]: how many index replicas committed it
/// (at least a quorum).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct IndexWriteReceipt {
    /// Replicas that acknowledged it before the answer.
    pub replicas: usize,
}

/// Most keys one [`IndexKeys`] asks for: what one index write holds, so a
/// put of many objects reads what it replaces in one request.
pub const INDEX_KEYS_MAX: usize = peercloud_ledger::object_entry::INDEX_WRITE_ENTRIES_MAX;

/// `POST /v1/buckets/{id}/index/keys`: the newest entry of each key (the
/// keys a put of many objects replaces), answered as one [`IndexView`] with
/// the bucket's usage, the inline objects of the entries and the bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexKeys {
    /// 1..=[`INDEX_KEYS_MAX`] keys, each at most once.
    pub keys: Vec<String>,
}

/// The query of a listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// Keys starting with this (all when absent).
    pub prefix: Option<String>,
    /// Keys after this one (the previous page's `next_after`).
    pub after: Option<String>,
    /// Most entries (1..=1000; 1000 when absent).
    pub limit: Option<u32>,
}

/// What the index holds for a get or a list: the newest entry of each key
/// a quorum of replicas knows (tombstones of deleted keys too), and the
/// bucket's latest usage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexView {
    /// The entries, in key order.
    pub entries: Vec<Canonical<Signed<ObjectEntry>>>,
    /// The owner's latest usage of the bucket.
    pub usage: Option<Canonical<Signed<BucketUsage>>>,
    /// A list stopped at its limit: ask again with `after` = the last key.
    pub more: bool,
    /// For a get: the chunks of the entry's object when the index keeps it
    /// (`ObjectRef::inline`); a list leaves them out.
    #[serde(default)]
    pub inline: Vec<Canonical<InlineObject>>,
    /// For a get: the bucket as the answering node's ledger has it (what
    /// `GET /v1/buckets/{id}` answers), so a put or delete needs no second
    /// request; a list leaves it out.
    #[serde(default)]
    pub bucket: Option<crate::BucketView>,
}

/// `GET /v1/buckets/{id}/health`: every live object's pieces checked where
/// the cluster placed them (an audit each, no download): how many are lost
/// now. The bucket's index replicas rebuild lost pieces by themselves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthView {
    /// Live objects checked.
    pub objects: usize,
    /// Pieces checked (manifests, copies of replicated chunks, erasure pieces).
    pub pieces: usize,
    /// Pieces (or copies) lost now: missing, corrupt, or on a node that did not answer.
    pub lost: usize,
    /// Objects that could not be checked, and why.
    pub problems: Vec<String>,
}
