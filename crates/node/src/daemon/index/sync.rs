//! Anti-entropy for a bucket's index: a node that becomes one of a
//! bucket's index replicas (a member joined or left and the ranking moved,
//! or it is starting again after being away) pulls the whole index from the
//! other replicas into its own table before it counts as a full copy, so
//! two new replicas answering a quorum read cannot hide what the old ones
//! hold. Reads' read repair fixes what one read touches; this fixes the
//! rest.
//!
//! Everything pulled is checked as a write would be (the owner's
//! signature on every entry and usage, a receiver's on every receipt, the
//! bucket), so a replica can withhold but never plant a record. A replica
//! pulls once per becoming one ([`IndexSyncs`]): when it is first asked to
//! answer a read of the bucket or when the repair routine finds it a
//! replica, whichever comes first. Reads wait for the pull (at most
//! [`PULL_WAIT`]), so a quorum of new replicas does not answer "not found"
//! for what the old one holds, except reads from the bucket's other
//! replicas, answered from the table as it is: two new replicas pulling
//! from each other never wait on each other. A pull ends within
//! [`PULL_TIME_MAX`], pages must move forward, and a failed pull is tried
//! again after [`PULL_RETRY`].
//!
//! ```text
//!  for each other replica: IndexList pages ("" prefix, after the last key,
//!                          with the inline objects' chunks)
//!                          + IndexEvidenceRequest (current and last period)
//!    ─► check ─► local IndexTable::merge (the writer's group commit)
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use peercloud_ledger::BucketId;
use peercloud_types::NodeId;

use super::table::Batch;
use super::{Answer, IndexError, check_inline};
use crate::daemon::{AskError, Inner};
use crate::wire::Message;

/// Longest a pull of one bucket's index runs before it counts as failed.
pub const PULL_TIME_MAX: Duration = Duration::from_secs(60);
/// Longest a read waits for a pull running on this node (a pull from a
/// replica that is down waits for that request's timeout; the read does not).
pub const PULL_WAIT: Duration = Duration::from_secs(2);
/// Entries per page of a pull: each may carry an inline object of up to
/// `INLINE_CHUNKS_BYTES_MAX` and a key of up to 1 KiB, so a page stays well
/// inside an index message.
pub const PULL_PAGE: u32 = 128;
/// How long after a failed pull the next one starts.
pub const PULL_RETRY: Duration = Duration::from_secs(10);

/// Where this node's copy of each bucket's index stands.
#[derive(Debug, Clone)]
enum SyncState {
    /// A pull is running; reads wait on this.
    Pulling(Arc<Notify>),
    /// Pulled since this node became a replica.
    Pulled,
    /// The last pull failed at this time.
    Failed(Instant),
}

/// The buckets whose index this node pulled (or is pulling) since it
/// became one of their replicas.
#[derive(Debug, Default)]
pub struct IndexSyncs(Mutex<HashMap<BucketId, SyncState>>);

impl IndexSyncs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BucketId, SyncState>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the buckets `keep` says this node is no longer a replica of,
    /// so becoming one again pulls again.
    pub fn retain(&self, keep: impl Fn(&BucketId) -> bool) {
        self.lock().retain(|bucket, _| keep(bucket));
    }
}

/// What a sync pulled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Replicas that answered every page.
    pub replicas: usize,
    /// Entries received (and merged: an older one changes nothing).
    pub entries: usize,
    /// Receipts and repair receipts received.
    pub receipts: usize,
}

impl Inner {
    /// Pulls `bucket`'s index from the other replicas unless this node has
    /// since it became one, or a pull failed less than [`PULL_RETRY`] ago.
    /// The pull runs in its own task; with `wait`, this waits for it (at
    /// most [`PULL_WAIT`]), without, it does not. Answers whether the copy here is
    /// whole as far as this node knows.
    pub async fn ensure_index_pulled(self: &Arc<Self>, bucket: BucketId, wait: bool) -> bool {
        let done = {
            let mut syncs = self.index_syncs.lock();
            match syncs.get(&bucket) {
                Some(SyncState::Pulled) => return true,
                Some(SyncState::Failed(at)) if at.elapsed() < PULL_RETRY => return false,
                Some(SyncState::Pulling(done)) => done.clone(),
                Some(SyncState::Failed(_)) | None => {
                    let done = Arc::new(Notify::new());
                    syncs.insert(bucket, SyncState::Pulling(done.clone()));
                    let inner = self.clone();
                    tokio::spawn(async move { inner.pull_index(bucket).await });
                    done
                }
            }
        };
        if wait {
            let notified = done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // The pull may have ended before `enable`.
            let running = matches!(
                self.index_syncs.lock().get(&bucket),
                Some(SyncState::Pulling(_))
            );
            if running {
                let _ = tokio::time::timeout(PULL_WAIT, notified).await;
            }
        }
        matches!(
            self.index_syncs.lock().get(&bucket),
            Some(SyncState::Pulled)
        )
    }

    /// Runs one pull of `bucket` and records how it ended, waking the reads
    /// that wait on it.
    async fn pull_index(self: &Arc<Self>, bucket: BucketId) {
        let pulled = tokio::time::timeout(PULL_TIME_MAX, self.sync_index(bucket)).await;
        let mut syncs = self.index_syncs.lock();
        let state = match pulled {
            Ok(Ok(synced)) => {
                tracing::debug!(%bucket, ?synced, "index pulled from the other replicas");
                SyncState::Pulled
            }
            Ok(Err(err)) => {
                tracing::info!(%bucket, %err, "index not pulled; retrying later");
                SyncState::Failed(Instant::now())
            }
            Err(_) => {
                tracing::info!(%bucket, "index pull ran out of time; retrying later");
                SyncState::Failed(Instant::now())
            }
        };
        if let Some(SyncState::Pulling(done)) = syncs.insert(bucket, state) {
            done.notify_waiters();
        }
    }

    /// Pulls `bucket`'s index from its other replicas into this node's
    /// table: every entry and the latest usage, and the receipts of the
    /// current billing period and the one before. Fails only when no other
    /// replica answered at all (with none but this node, there is nothing
    /// to pull).
    pub async fn sync_index(self: &Arc<Self>, bucket: BucketId) -> Result<Synced, IndexError> {
        let me = self.node_id();
        let others: Vec<NodeId> = self
            .index_replicas(&bucket)?
            .into_iter()
            .filter(|n| *n != me)
            .collect();
        let (owner, period) = {
            let chain = self.chain();
            let state = chain.state();
            let record = state
                .bucket(&bucket)
                .ok_or(IndexError::UnknownBucket { bucket })?;
            (
                *record.owner.key(),
                super::super::billing::period_now(state, record),
            )
        };
        let mut synced = Synced::default();
        let mut failures = Vec::new();
        // From every other replica at once: one that is down costs its
        // timeout once, not once per replica.
        let pulls = others.iter().map(|node| async move {
            let mut from = Synced::default();
            let outcome = self
                .sync_from(*node, bucket, owner, period, &mut from)
                .await;
            (outcome, from)
        });
        for (outcome, from) in futures::future::join_all(pulls).await {
            synced.entries += from.entries;
            synced.receipts += from.receipts;
            match outcome {
                Ok(()) => synced.replicas += 1,
                Err(err) => failures.push(err),
            }
        }
        if synced.replicas == 0 && !others.is_empty() {
            return Err(IndexError::Quorum {
                bucket,
                wanted: 1,
                got: 0,
                failures,
            });
        }
        Ok(synced)
    }

    /// Pulls everything `node` holds of `bucket`.
    async fn sync_from(
        self: &Arc<Self>,
        node: NodeId,
        bucket: BucketId,
        owner: peercloud_types::PublicKey,
        period: u64,
        synced: &mut Synced,
    ) -> Result<(), AskError> {
        let unexpected = |what: &str| AskError::Net {
            node,
            reason: format!("unexpected answer to an index sync: {what}"),
        };
        let mut after: Option<String> = None;
        loop {
            let request = Message::IndexList {
                bucket,
                prefix: String::new(),
                after: after.clone(),
                limit: PULL_PAGE,
                inline: true,
            };
            let answer = match self.read_index_remote(node, request).await {
                Ok(Answer::Entries(answer)) => answer,
                Ok(Answer::Evidence(_)) => return Err(unexpected("evidence")),
                Err(err) => return Err(err),
            };
            let full = answer.entries.len() >= PULL_PAGE as usize;
            let last = answer.entries.last().map(|e| e.body.key.clone());
            let entries: Vec<_> = answer
                .entries
                .into_iter()
                .filter(|e| e.body.bucket == bucket && e.signer == owner && e.verify().is_ok())
                .collect();
            let inline = answer
                .inline
                .into_iter()
                .filter(|i| {
                    entries.iter().any(|e| {
                        e.body
                            .object
                            .is_some_and(|o| o.inline && check_inline(i, &o).is_ok())
                    })
                })
                .collect();
            let batch = Batch {
                entries,
                usages: answer
                    .usage
                    .into_iter()
                    .filter(|u| u.body.bucket == bucket && u.signer == owner && u.verify().is_ok())
                    .collect(),
                inline,
                ..Batch::default()
            };
            synced.entries += batch.entries.len();
            self.merge_pulled(batch).await?;
            match (full, last) {
                // Keys only grow: a page that does not move forward ends the pull.
                (true, Some(last)) if after.as_ref().is_none_or(|a| *a < last) => {
                    after = Some(last)
                }
                _ => break,
            }
        }
        for period in [period.saturating_sub(1), period] {
            let request = Message::IndexEvidenceRequest {
                bucket,
                period,
                until_ms: u64::MAX,
            };
            let evidence = match self.read_index_remote(node, request).await {
                Ok(Answer::Evidence(evidence)) => evidence,
                Ok(Answer::Entries(..)) => return Err(unexpected("entries")),
                Err(err) => return Err(err),
            };
            let batch = Batch {
                receipts: evidence
                    .receipts
                    .into_iter()
                    .filter(|r| r.body.bucket == bucket && r.signer == owner && r.verify().is_ok())
                    .collect(),
                repairs: evidence
                    .repairs
                    .into_iter()
                    .filter(|r| {
                        r.body.bucket == bucket
                            && r.signer == *r.body.receiver.key()
                            && r.verify().is_ok()
                    })
                    .collect(),
                ..Batch::default()
            };
            synced.receipts += batch.receipts.len() + batch.repairs.len();
            self.merge_pulled(batch).await?;
        }
        Ok(())
    }

    /// Merges checked records into this node's own table.
    async fn merge_pulled(&self, batch: Batch) -> Result<(), AskError> {
        if batch.entries.is_empty()
            && batch.usages.is_empty()
            && batch.receipts.is_empty()
            && batch.repairs.is_empty()
            && batch.inline.is_empty()
        {
            return Ok(());
        }
        self.index
            .write(batch)
            .await
            .map_err(|e| AskError::Refused {
                node: self.node_id(),
                code: e.code(),
                message: e.to_string(),
            })
    }
}
