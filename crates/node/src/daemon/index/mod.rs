//! Buckets' object indexes, kept by the bucket's cluster, not the ledger
//! (a write per block would cap a bucket at the block rate). As garage
//! keeps its metadata tables: each bucket's index lives on
//! [`INDEX_REPLICAS`] members of its cluster (the first of a rendezvous
//! ranking of the members by the bucket id, weighted like chunk placement),
//! a write is acknowledged once a quorum of them committed it durably, and a
//! read asks them all and takes the first quorum's answers, merged
//! last-writer-wins. Quorum writes and quorum reads overlap in at least one
//! replica, so a read sees every acknowledged write while one replica of
//! three is down (with two down, a read answers from the one left: possibly
//! stale, never forged); a read also sends the winners back to replicas that
//! answered with less (read repair).
//!
//! ```text
//!  index_write ─IndexPut─► each replica: owner's signature? bucket writable? member of its cluster?
//!              ◄─Ack────── after its group commit (IndexTable::merge, one fsync per batch)
//!  index_get / index_list ─IndexGet / IndexList─► replicas ─IndexEntries─► merge, repair stale ones
//! ```
//!
//! Entries are signed by the bucket's owner (`Signed<ObjectEntry>`), so a
//! replica can only withhold an entry, never forge or change one.

mod coalesce;
mod rules;
mod serve;
mod sync;
pub(crate) mod table;

pub(crate) use coalesce::Coalescing;
pub(crate) use serve::{on_index_put, on_index_read};
pub use sync::IndexSyncs;

use rules::index_cid;
pub(crate) use rules::{check_inline, check_write, cluster_nodes};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use peercloud_api::ErrorCode;
use peercloud_ledger::object_entry::newer;
use peercloud_ledger::{
    BandwidthReceipt, BucketId, BucketUsage, ClusterId, InlineIndex, InlineObject, ObjectEntry,
    RepairReceipt,
};
use peercloud_net::Protocol;
use peercloud_store::rank;
use peercloud_types::{AccountId, ContentId, NodeId, Signed};
use tokio::sync::{mpsc, oneshot};

use super::{AskError, Inner};
use crate::wire::Message;
use table::{Batch, IndexTable, IndexTableError};

/// Replicas of each bucket's index.
pub const INDEX_REPLICAS: usize = 3;
/// Most entries one list answer carries.
pub const INDEX_PAGE_MAX: u32 = 1_000;
pub use peercloud_ledger::object_entry::INDEX_WRITE_ENTRIES_MAX;
/// Most writes one group commit takes.
const WRITE_BATCH_MAX: usize = 1_024;
/// Writes queued for the writer before senders wait.
const WRITE_QUEUE: usize = 4_096;

/// An index operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexError {
    /// No such bucket on the ledger.
    #[error("{bucket} is not on the ledger")]
    UnknownBucket {
        /// The bucket.
        bucket: BucketId,
    },
    /// The bucket's cluster has no active member to keep its index.
    #[error("{bucket}: its {cluster} has no active member to keep its index")]
    NoMembers {
        /// The bucket.
        bucket: BucketId,
        /// Its cluster.
        cluster: ClusterId,
    },
    /// The request is malformed (no entries, two buckets, a bad key).
    #[error("{reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// A signature does not verify.
    #[error("{what}: the signature does not verify")]
    BadSignature {
        /// What was signed.
        what: String,
    },
    /// Signed by someone other than the bucket's owner.
    #[error("{what} is signed by {signer}, not by {bucket}'s owner {owner}")]
    NotOwner {
        /// What was signed.
        what: String,
        /// The bucket.
        bucket: BucketId,
        /// Who signed.
        signer: AccountId,
        /// The owner.
        owner: AccountId,
    },
    /// The bucket takes no writes now.
    #[error("{bucket} is {status} and takes no writes{hint}")]
    ReadOnly {
        /// The bucket.
        bucket: BucketId,
        /// Its status, in words.
        status: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// This node does not keep the bucket's index.
    #[error("node {node} is not an active member of {cluster}, which keeps {bucket}'s index")]
    NotReplica {
        /// This node.
        node: NodeId,
        /// The bucket.
        bucket: BucketId,
        /// Its cluster.
        cluster: ClusterId,
    },
    /// Fewer replicas than a quorum answered.
    #[error(
        "{bucket}'s index: {got} of {wanted} replicas needed answered ({})",
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Quorum {
        /// The bucket.
        bucket: BucketId,
        /// Replicas a quorum needs.
        wanted: usize,
        /// Replicas that answered.
        got: usize,
        /// Why each other did not.
        failures: Vec<AskError>,
    },
    /// The local index database failed.
    #[error(transparent)]
    Table(Arc<IndexTableError>),
}

impl IndexError {
    /// The code the API and the wire answer this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            IndexError::UnknownBucket { .. } => ErrorCode::NotFound,
            IndexError::Invalid { .. } => ErrorCode::BadRequest,
            IndexError::BadSignature { .. } => ErrorCode::BadSignature,
            IndexError::NotOwner { .. } => ErrorCode::NotOwner,
            IndexError::ReadOnly { .. } => ErrorCode::BucketReadOnly,
            IndexError::NotReplica { .. } => ErrorCode::NotPlaced,
            IndexError::NoMembers { .. } | IndexError::Quorum { .. } => ErrorCode::Unavailable,
            IndexError::Table(_) => ErrorCode::Internal,
        }
    }

    fn invalid(reason: impl Into<String>) -> IndexError {
        IndexError::Invalid {
            reason: reason.into(),
        }
    }
}

/// A write waiting for the next group commit.
struct PendingWrite {
    batch: Batch,
    reply: oneshot::Sender<Result<(), Arc<IndexTableError>>>,
}

/// This node's replica of the indexes it keeps, and the writer that
/// commits what arrives together in one transaction.
#[derive(Debug)]
pub struct LocalIndex {
    table: Arc<IndexTable>,
    writes: mpsc::Sender<PendingWrite>,
}

impl std::fmt::Debug for PendingWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWrite")
            .field("entries", &self.batch.entries.len())
            .finish_non_exhaustive()
    }
}

impl LocalIndex {
    /// Opens the replica at `path` and starts its writer (on the current
    /// tokio runtime).
    pub fn open(path: &std::path::Path) -> Result<LocalIndex, IndexTableError> {
        let table = Arc::new(IndexTable::open(path)?);
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(write_loop(table.clone(), queue));
        Ok(LocalIndex { table, writes })
    }

    /// The replica's table, for reads.
    pub fn table(&self) -> &IndexTable {
        &self.table
    }

    /// Merges a write and answers once it is durable.
    pub async fn write(&self, batch: Batch) -> Result<(), IndexError> {
        let (reply, done) = oneshot::channel();
        let stopped =
            || IndexError::invalid("the index writer stopped (the node is shutting down)");
        self.writes
            .send(PendingWrite { batch, reply })
            .await
            .map_err(|_| stopped())?;
        done.await
            .map_err(|_| stopped())?
            .map_err(IndexError::Table)
    }
}

/// Commits queued writes in batches: everything that arrived while the last
/// commit ran goes into the next one, so concurrent writers share an fsync.
async fn write_loop(table: Arc<IndexTable>, mut queue: mpsc::Receiver<PendingWrite>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH_MAX {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut all = Batch::default();
        for write in &mut batch {
            all.append(&mut write.batch);
        }
        let table = table.clone();
        let result = tokio::task::spawn_blocking(move || table.merge(&all))
            .await
            .unwrap_or_else(|join| {
                Err(IndexTableError::Damaged {
                    path: "index writer".into(),
                    reason: format!("the commit task failed: {join}"),
                })
            })
            .map(|_| ())
            .map_err(Arc::new);
        for write in batch {
            let _ = write.reply.send(result.clone());
        }
    }
}

/// What a quorum read found: the merged entries in key order and the
/// bucket's latest usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexRead {
    /// Entries (tombstones too), newest per key, in key order.
    pub entries: Vec<Signed<ObjectEntry>>,
    /// The highest-sequence usage any replica had.
    pub usage: Option<Signed<BucketUsage>>,
    /// A list page stopped at its limit: more keys may follow the last one.
    pub more: bool,
    /// The chunks of the winning entries' inline objects that a replica
    /// answered with (a get's; a list leaves them out).
    pub inline: Vec<InlineObject>,
}

/// What a quorum of replicas holds as evidence for a bill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The highest-sequence usage signed by the period's end.
    pub usage: Option<Signed<BucketUsage>>,
    /// The period's receipts, the most bytes per serving node, by node.
    pub receipts: Vec<Signed<BandwidthReceipt>>,
    /// The period's repair receipts, the most bytes per (repairer,
    /// receiver), in that order.
    pub repairs: Vec<Signed<RepairReceipt>>,
}

/// Replicas a quorum needs of `n`.
fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// One replica's answer to a read.
#[derive(Debug, Clone)]
enum Answer {
    Entries(Entries),
    Evidence(Evidence),
}

/// One replica's entries answer.
#[derive(Debug, Clone, Default)]
struct Entries {
    entries: Vec<Signed<ObjectEntry>>,
    usage: Option<Signed<BucketUsage>>,
    inline: Vec<InlineObject>,
}

impl Inner {
    /// The bucket's index replicas (best first).
    pub(crate) fn index_replicas(&self, bucket: &BucketId) -> Result<Vec<NodeId>, IndexError> {
        let chain = self.chain();
        let state = chain.state();
        let record = state
            .bucket(bucket)
            .ok_or(IndexError::UnknownBucket { bucket: *bucket })?;
        let nodes = cluster_nodes(state, &record.cluster);
        let replicas: Vec<NodeId> = rank(&index_cid(bucket), &nodes)
            .into_iter()
            .take(INDEX_REPLICAS)
            .map(|n| n.node)
            .collect();
        if replicas.is_empty() {
            return Err(IndexError::NoMembers {
                bucket: *bucket,
                cluster: record.cluster,
            });
        }
        Ok(replicas)
    }

    /// Writes to one replica: this node's own table, or a remote one.
    async fn put_index_on(
        &self,
        node: NodeId,
        batch: Batch,
        encoded: Vec<u8>,
    ) -> Result<(), AskError> {
        if node == self.node_id() {
            return self
                .index
                .write(batch)
                .await
                .map_err(|e| AskError::Refused {
                    node,
                    code: e.code(),
                    message: e.to_string(),
                });
        }
        match self.ask_encoded(&node, Protocol::Index, encoded).await? {
            Message::Ack => Ok(()),
            other => Err(AskError::Net {
                node,
                reason: format!("unexpected answer to an index put: {other:?}"),
            }),
        }
    }

    /// A page of entries under `prefix` after `after` (tombstones too) by
    /// quorum read.
    pub async fn index_list(
        self: &Arc<Self>,
        bucket: BucketId,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<IndexRead, IndexError> {
        let limit = limit.clamp(1, INDEX_PAGE_MAX);
        let request = Message::IndexList {
            bucket,
            prefix,
            after,
            limit,
            inline: false,
        };
        let answers = self.index_read(bucket, request).await?;
        let read = merge_answers(&answers, Some(limit as usize));
        self.repair_index(&answers, &read);
        Ok(read)
    }

    /// The evidence for a bill of `period` by quorum read: the last usage
    /// signed by `until_ms`, and the most bytes per serving node.
    pub async fn index_evidence(
        self: &Arc<Self>,
        bucket: BucketId,
        period: u64,
        until_ms: u64,
    ) -> Result<Evidence, IndexError> {
        let request = Message::IndexEvidenceRequest {
            bucket,
            period,
            until_ms,
        };
        let owner = {
            let chain = self.chain();
            chain.state().bucket(&bucket).map(|b| *b.owner.key())
        }
        .ok_or(IndexError::UnknownBucket { bucket })?;
        let answers = self.index_read(bucket, request).await?;
        let mut merged = Evidence::default();
        let mut receipts: BTreeMap<NodeId, Signed<BandwidthReceipt>> = BTreeMap::new();
        let mut repairs: BTreeMap<(NodeId, NodeId), Signed<RepairReceipt>> = BTreeMap::new();
        for (_, answer) in answers {
            let Answer::Evidence(evidence) = answer else {
                continue;
            };
            // What the ledger would refuse is dropped before it can
            // outbid good evidence (a replica could answer anything).
            let own = |b: &BucketId, p: u64| *b == bucket && p == period;
            if let Some(u) = evidence.usage
                && u.signer == owner
                && u.body.bucket == bucket
                && u.body.at_ms <= until_ms
                && u.verify().is_ok()
                && merged
                    .usage
                    .as_ref()
                    .is_none_or(|c| u.body.seq > c.body.seq)
            {
                merged.usage = Some(u);
            }
            for receipt in evidence.receipts.into_iter().filter(|r| {
                r.signer == owner && own(&r.body.bucket, r.body.period) && r.verify().is_ok()
            }) {
                match receipts.get(&receipt.body.node) {
                    Some(have) if have.body.bytes >= receipt.body.bytes => {}
                    _ => {
                        receipts.insert(receipt.body.node, receipt);
                    }
                }
            }
            for receipt in evidence.repairs.into_iter().filter(|r| {
                r.signer == *r.body.receiver.key()
                    && r.body.repairer != r.body.receiver
                    && own(&r.body.bucket, r.body.period)
                    && r.verify().is_ok()
            }) {
                let pair = (receipt.body.repairer, receipt.body.receiver);
                match repairs.get(&pair) {
                    Some(have) if have.body.bytes >= receipt.body.bytes => {}
                    _ => {
                        repairs.insert(pair, receipt);
                    }
                }
            }
        }
        merged.receipts = receipts.into_values().collect();
        merged.repairs = repairs.into_values().collect();
        Ok(merged)
    }

    /// Asks every replica and returns the first quorum's answers.
    async fn index_read(
        self: &Arc<Self>,
        bucket: BucketId,
        request: Message,
    ) -> Result<Vec<(NodeId, Answer)>, IndexError> {
        let replicas = self.index_replicas(&bucket)?;
        let wanted = quorum(replicas.len());
        let mut pending: FuturesUnordered<_> = replicas
            .iter()
            .map(|node| {
                let (inner, node, request) = (self.clone(), *node, request.clone());
                async move { (node, inner.read_index_on(node, request).await) }
            })
            .collect();
        let (mut answers, mut failures) = (Vec::new(), Vec::new());
        while let Some((node, outcome)) = pending.next().await {
            match outcome {
                Ok(answer) => answers.push((node, answer)),
                Err(err) => failures.push(err),
            }
            if answers.len() >= wanted {
                return Ok(answers);
            }
        }
        // Fewer than a quorum answered because the others cannot be reached:
        // a degraded read still answers with what the reachable replicas
        // hold (entries are the owner's, so they can be stale, never forged),
        // so objects stay readable while replicas are down.
        let unreachable = failures.iter().all(|f| matches!(f, AskError::Net { .. }));
        if !answers.is_empty() && unreachable {
            tracing::warn!(%bucket, got = answers.len(), wanted, "degraded index read");
            return Ok(answers);
        }
        Err(IndexError::Quorum {
            bucket,
            wanted,
            got: answers.len(),
            failures,
        })
    }

    /// One replica's answer to a read.
    async fn read_index_on(
        self: &Arc<Self>,
        node: NodeId,
        request: Message,
    ) -> Result<Answer, AskError> {
        let answer = if node == self.node_id() {
            self.answer_read(request, node).await
        } else {
            self.ask(&node, Protocol::Index, &request).await?
        };
        parse_answer(node, answer)
    }

    /// Another replica's answer to a read, asked directly (a pull: never
    /// through this node's own table).
    async fn read_index_remote(&self, node: NodeId, request: Message) -> Result<Answer, AskError> {
        let answer = self.ask(&node, Protocol::Index, &request).await?;
        parse_answer(node, answer)
    }
}

/// A replica's answer to a read, as entries or evidence.
fn parse_answer(node: NodeId, answer: Message) -> Result<Answer, AskError> {
    match answer {
        Message::IndexEntries {
            entries,
            usage,
            inline,
        } => Ok(Answer::Entries(Entries {
            entries,
            usage,
            inline,
        })),
        Message::IndexEvidence {
            usage,
            receipts,
            repairs,
        } => Ok(Answer::Evidence(Evidence {
            usage,
            receipts,
            repairs,
        })),
        Message::Error { code, message } => Err(AskError::Refused {
            node,
            code,
            message,
        }),
        other => Err(AskError::Net {
            node,
            reason: format!("unexpected answer to an index read: {other:?}"),
        }),
    }
}

impl Inner {
    /// Sends each replica that answered the winners it lacked (in the
    /// background), with the chunks of their inline objects when the read
    /// has them; a replica that held a winner but not its chunks gets them.
    fn repair_index(self: &Arc<Self>, answers: &[(NodeId, Answer)], read: &IndexRead) {
        let carried = InlineIndex::new(&read.inline);
        for (node, answer) in answers {
            let Answer::Entries(answer) = answer else {
                continue;
            };
            let have: BTreeMap<&str, &Signed<ObjectEntry>> = answer
                .entries
                .iter()
                .map(|e| (e.body.key.as_str(), e))
                .collect();
            let held: BTreeSet<ContentId> = answer
                .inline
                .iter()
                .filter_map(InlineObject::manifest)
                .collect();
            let mut stale = Vec::new();
            let mut inline = Vec::new();
            for winner in &read.entries {
                let lacks_entry = have
                    .get(winner.body.key.as_str())
                    .is_none_or(|h| newer(winner, h));
                let chunks = winner
                    .body
                    .object
                    .filter(|o| o.inline && !held.contains(&o.manifest))
                    .and_then(|o| carried.get(&o.manifest));
                if lacks_entry || chunks.is_some() {
                    stale.push(winner.clone());
                    inline.extend(chunks.cloned());
                }
            }
            let usage_stale = match (&read.usage, &answer.usage) {
                (Some(w), Some(h)) => w.body.seq > h.body.seq,
                (Some(_), None) => true,
                _ => false,
            };
            if stale.is_empty() && !usage_stale {
                continue;
            }
            let batch = Batch {
                entries: stale,
                usages: if usage_stale {
                    read.usage.iter().cloned().collect()
                } else {
                    Vec::new()
                },
                inline,
                ..Batch::default()
            };
            let (inner, node) = (self.clone(), *node);
            tokio::spawn(async move {
                let encoded = put_message(&batch).to_bytes();
                if let Err(err) = inner.put_index_on(node, batch, encoded).await {
                    tracing::debug!(%node, %err, "index read repair failed");
                }
            });
        }
    }
}

/// The index put carrying `batch`.
fn put_message(batch: &Batch) -> Message {
    Message::IndexPut {
        entries: batch.entries.clone(),
        usages: batch.usages.clone(),
        receipts: batch.receipts.clone(),
        repairs: batch.repairs.clone(),
        inline: batch.inline.clone(),
    }
}

/// Merges replicas' entry answers: newest entry per key, highest usage.
/// For a list page (`page`), a replica that filled its page knows nothing
/// past its last key, so the merge stops at the smallest such last key and
/// reports `more`.
fn merge_answers(answers: &[(NodeId, Answer)], page: Option<usize>) -> IndexRead {
    // The newest entry of each key, by reference: a winner is cloned once.
    let mut winners: BTreeMap<&str, &Signed<ObjectEntry>> = BTreeMap::new();
    let mut usage: Option<&Signed<BucketUsage>> = None;
    let mut horizon: Option<&str> = None;
    // Every answered inline object by its manifest: a winner's chunks are
    // looked up, not searched for (each manifest hashed once).
    let mut carried: BTreeMap<ContentId, Vec<&InlineObject>> = BTreeMap::new();
    for (_, answer) in answers {
        let Answer::Entries(Entries {
            entries,
            usage: their_usage,
            inline,
            ..
        }) = answer
        else {
            continue;
        };
        for entry in entries {
            match winners.entry(entry.body.key.as_str()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(entry);
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    if newer(entry, slot.get()) {
                        slot.insert(entry);
                    }
                }
            }
        }
        if let Some(u) = their_usage
            && usage.is_none_or(|c| u.body.seq > c.body.seq)
        {
            usage = Some(u);
        }
        if let (Some(limit), Some(last)) = (page, entries.last())
            && entries.len() >= limit
        {
            let last = last.body.key.as_str();
            horizon = Some(horizon.map_or(last, |h| h.min(last)));
        }
        for object in inline {
            if let Some(manifest) = object.manifest() {
                carried.entry(manifest).or_default().push(object);
            }
        }
    }
    let entries: Vec<Signed<ObjectEntry>> = winners
        .into_values()
        .filter(|e| horizon.is_none_or(|h| e.body.key.as_str() <= h))
        .take(page.unwrap_or(usize::MAX))
        .cloned()
        .collect();
    // Each inline winner's chunks, from any replica whose copy checks
    // against the manifest the entry names.
    let inline = entries
        .iter()
        .filter_map(|e| e.body.object.filter(|o| o.inline))
        .filter_map(|object| {
            carried
                .get(&object.manifest)?
                .iter()
                .find(|i| check_inline(i, &object).is_ok())
                .map(|i| (*i).clone())
        })
        .collect();
    let usage = usage.cloned();
    IndexRead {
        entries,
        usage,
        more: horizon.is_some(),
        inline,
    }
}

#[cfg(test)]
mod tests;
