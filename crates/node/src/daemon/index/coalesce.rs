//! The coordinator's side of index writes and gets: what arrives for one
//! bucket while its last round to the replicas is in flight travels in the
//! next round together, so a busy bucket costs its replicas one message
//! (and one group commit) per round, not per request. A request waits only
//! for the round it joined; at most [`ROUNDS_IN_FLIGHT`] rounds of a bucket
//! are out at once.
//!
//! ```text
//!  index_write ─► check_write ─► the bucket's lane ─┐  a round: up to the limits of one put
//!  index_write ─► check_write ─► the bucket's lane ─┼─► IndexPut to each replica ─► quorum ─► every writer's answer
//!  index_get ───────────────────► the bucket's lane ─► IndexGet { keys } ─► quorum ─► merge, read repair ─► each key's answer
//! ```
//!
//! A round runs in a task of its own, so a caller that goes away (an HTTP
//! client hanging up) never cancels the others' round.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use futures::stream::{FuturesUnordered, StreamExt};
use peercloud_ledger::object_entry::check_key;
use peercloud_ledger::{BucketId, InlineIndex, InlineObject};
use tokio::sync::oneshot;

use super::rules::{INLINE_WRITE_BYTES_MAX, batch_bucket};
use super::table::Batch;
use super::{
    INDEX_WRITE_ENTRIES_MAX, IndexError, IndexRead, check_write, merge_answers, put_message, quorum,
};
use crate::daemon::{AskError, Inner};
use crate::wire::{INDEX_GET_KEYS_MAX, Message};

/// Rounds of one bucket's writes (and, apart, of its gets) in flight at once.
const ROUNDS_IN_FLIGHT: usize = 2;

/// Requests waiting for a round, by bucket.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    lanes: Mutex<HashMap<BucketId, Lane<T>>>,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Lanes {
            lanes: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Debug)]
struct Lane<T> {
    waiting: VecDeque<T>,
    rounds: usize,
}

impl<T> Lanes<T> {
    /// Queues `item` for `bucket`; true when the caller is to start a
    /// round runner (fewer than [`ROUNDS_IN_FLIGHT`] are running).
    fn push(&self, bucket: BucketId, item: T) -> bool {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes.entry(bucket).or_insert_with(|| Lane {
            waiting: VecDeque::new(),
            rounds: 0,
        });
        lane.waiting.push_back(item);
        if lane.rounds < ROUNDS_IN_FLIGHT {
            lane.rounds += 1;
            true
        } else {
            false
        }
    }

    /// The next round's requests: the first waiting one, then those after
    /// it while `fits` takes them. `None` once nothing waits; the runner
    /// then stops (and an idle lane is dropped).
    fn next_round(&self, bucket: &BucketId, mut fits: impl FnMut(&T) -> bool) -> Option<Vec<T>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes.get_mut(bucket)?;
        let Some(first) = lane.waiting.pop_front() else {
            lane.rounds -= 1;
            if lane.rounds == 0 {
                lanes.remove(bucket);
            }
            return None;
        };
        fits(&first);
        let mut round = vec![first];
        while let Some(next) = lane.waiting.front() {
            if !fits(next) {
                break;
            }
            round.extend(lane.waiting.pop_front());
        }
        Some(round)
    }
}

/// A write waiting for its round.
#[derive(Debug)]
pub(crate) struct WaitingWrite {
    batch: Batch,
    reply: oneshot::Sender<Result<usize, IndexError>>,
}

/// A get waiting for its round.
#[derive(Debug)]
pub(crate) struct WaitingGet {
    key: String,
    reply: oneshot::Sender<Result<IndexRead, IndexError>>,
}

/// What a round of writes may carry: a replica's limits for one put.
#[derive(Default)]
struct RoundSize {
    entries: usize,
    usages: usize,
    receipts: usize,
    repairs: usize,
    inline_bytes: usize,
}

impl RoundSize {
    /// Adds `batch` if the round stays within one put's limits.
    fn take(&mut self, batch: &Batch) -> bool {
        let inline_bytes: usize = batch.inline.iter().map(InlineObject::bytes).sum();
        let next = RoundSize {
            entries: self.entries + batch.entries.len(),
            usages: self.usages + batch.usages.len(),
            receipts: self.receipts + batch.receipts.len(),
            repairs: self.repairs + batch.repairs.len(),
            inline_bytes: self.inline_bytes + inline_bytes,
        };
        let first = self.entries + self.usages + self.receipts + self.repairs == 0;
        let within = next
            .entries
            .max(next.usages)
            .max(next.receipts)
            .max(next.repairs)
            <= INDEX_WRITE_ENTRIES_MAX
            && next.inline_bytes <= INLINE_WRITE_BYTES_MAX;
        if first || within {
            *self = next;
            true
        } else {
            false
        }
    }
}

/// The rounds each node coordinates.
#[derive(Debug, Default)]
pub(crate) struct Coalescing {
    writes: Lanes<WaitingWrite>,
    gets: Lanes<WaitingGet>,
}

/// A round's writes as one batch.
fn merged(round: &[WaitingWrite]) -> Batch {
    let mut batch = Batch::default();
    for write in round {
        batch.append(&mut write.batch.clone());
    }
    batch
}

fn stopped() -> IndexError {
    IndexError::invalid("the index round stopped (the node is shutting down)")
}

impl Inner {
    /// Writes a batch (entries, at most one usage, receipts; all of one
    /// bucket) to the bucket's index replicas, in a round with the other
    /// writes to the bucket that arrive meanwhile; answers once a quorum
    /// committed the round. The others go on in the background.
    pub async fn index_write(self: &Arc<Self>, batch: Batch) -> Result<usize, IndexError> {
        let bucket = batch_bucket(&batch)?;
        let (reply, answer) = oneshot::channel();
        if self
            .coalescing
            .writes
            .push(bucket, WaitingWrite { batch, reply })
        {
            let inner = self.clone();
            tokio::spawn(async move { inner.run_write_rounds(bucket).await });
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Runs rounds of `bucket`'s waiting writes until none wait. A round is
    /// checked as a whole (its signatures in one batch); only a round that
    /// fails is checked write by write, so a bad write is refused alone.
    async fn run_write_rounds(self: Arc<Self>, bucket: BucketId) {
        loop {
            let mut size = RoundSize::default();
            let Some(round) = self
                .coalescing
                .writes
                .next_round(&bucket, |w| size.take(&w.batch))
            else {
                return;
            };
            let mut round = round;
            let mut batch = merged(&round);
            if check_write(self.chain().state(), &batch).is_err() {
                let mut good = Vec::with_capacity(round.len());
                for write in round {
                    let checked = check_write(self.chain().state(), &write.batch);
                    match checked {
                        Ok(of) if of == bucket => good.push(write),
                        Ok(of) => {
                            let _ = write.reply.send(Err(IndexError::invalid(format!(
                                "a write to {bucket} holds a record of {of}"
                            ))));
                        }
                        Err(err) => {
                            let _ = write.reply.send(Err(err));
                        }
                    }
                }
                round = good;
                if round.is_empty() {
                    continue;
                }
                batch = merged(&round);
            }
            let result = self.put_quorum(bucket, batch).await;
            for WaitingWrite { reply, .. } in round {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Sends one put to every replica of `bucket`; answers once a quorum
    /// committed it.
    async fn put_quorum(
        self: &Arc<Self>,
        bucket: BucketId,
        batch: Batch,
    ) -> Result<usize, IndexError> {
        let replicas = self.index_replicas(&bucket)?;
        let wanted = quorum(replicas.len());
        let encoded = put_message(&batch).to_bytes();
        let mut pending: FuturesUnordered<_> = replicas
            .iter()
            .map(|node| {
                let (inner, node) = (self.clone(), *node);
                let (batch, encoded) = (batch.clone(), encoded.clone());
                tokio::spawn(async move { inner.put_index_on(node, batch, encoded).await })
            })
            .collect();
        let (mut acks, mut failures) = (0, Vec::new());
        while let Some(joined) = pending.next().await {
            match joined {
                Ok(Ok(())) => acks += 1,
                Ok(Err(err)) => failures.push(err),
                Err(join) => failures.push(AskError::Net {
                    node: self.node_id(),
                    reason: format!("index write task failed: {join}"),
                }),
            }
            if acks >= wanted {
                return Ok(acks);
            }
        }
        Err(IndexError::Quorum {
            bucket,
            wanted,
            got: acks,
            failures,
        })
    }

    /// The entry of `key` (a tombstone too) by quorum read, in a round with
    /// the other gets of the bucket that arrive meanwhile.
    pub async fn index_get(
        self: &Arc<Self>,
        bucket: BucketId,
        key: String,
    ) -> Result<IndexRead, IndexError> {
        check_key(&key).map_err(|e| IndexError::invalid(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        if self.coalescing.gets.push(bucket, WaitingGet { key, reply }) {
            let inner = self.clone();
            tokio::spawn(async move { inner.run_get_rounds(bucket).await });
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Runs rounds of `bucket`'s waiting gets until none wait.
    async fn run_get_rounds(self: Arc<Self>, bucket: BucketId) {
        loop {
            let mut count = 0;
            let Some(round) = self.coalescing.gets.next_round(&bucket, |_| {
                count += 1;
                count <= INDEX_GET_KEYS_MAX
            }) else {
                return;
            };
            let mut keys: Vec<String> = round.iter().map(|g| g.key.clone()).collect();
            keys.sort_unstable();
            keys.dedup();
            let read = match self
                .index_read(bucket, Message::IndexGet { bucket, keys })
                .await
            {
                Ok(answers) => {
                    let read = merge_answers(&answers, None);
                    self.repair_index(&answers, &read);
                    Ok(read)
                }
                Err(err) => Err(err),
            };
            let carried = read.as_ref().map(|r| (r, InlineIndex::new(&r.inline)));
            for WaitingGet { key, reply } in round {
                let _ = reply.send(match &carried {
                    Ok((r, carried)) => Ok(one_key(r, carried, &key)),
                    Err(err) => Err((*err).clone()),
                });
            }
        }
    }
}

/// What a round's read says about `key`: its entry, the bucket's usage,
/// and its inline object's chunks.
fn one_key(read: &IndexRead, carried: &InlineIndex<'_>, key: &str) -> IndexRead {
    let entries: Vec<_> = read
        .entries
        .iter()
        .filter(|e| e.body.key == key)
        .cloned()
        .collect();
    let inline = entries
        .iter()
        .filter_map(|e| carried.of(&e.body).cloned())
        .collect();
    IndexRead {
        entries,
        usage: read.usage.clone(),
        more: false,
        inline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    #[test]
    fn a_lane_runs_at_most_two_rounds_and_a_round_takes_what_fits() {
        let lanes: Lanes<u32> = Lanes::default();
        let bucket = BucketId(Hash32([3; 32]));
        assert!(lanes.push(bucket, 1), "the first request starts a runner");
        assert!(lanes.push(bucket, 2), "a second runner may start");
        assert!(!lanes.push(bucket, 3), "a third waits for the two");
        lanes.push(bucket, 4);
        // A round takes the first always, then while they fit.
        let round = lanes.next_round(&bucket, |&i| i < 3);
        assert_eq!(round, Some(vec![1, 2]));
        let round = lanes.next_round(&bucket, |_| false);
        assert_eq!(
            round,
            Some(vec![3]),
            "the first of a round is taken even if it does not fit"
        );
        assert_eq!(lanes.next_round(&bucket, |_| true), Some(vec![4]));
        // Both runners find nothing and stop; the idle lane is dropped.
        assert_eq!(lanes.next_round(&bucket, |_| true), None);
        assert_eq!(lanes.next_round(&bucket, |_| true), None);
        assert!(lanes.lanes.lock().expect("lock").is_empty());
        assert!(lanes.push(bucket, 5), "a new request starts a runner again");
    }

    #[test]
    fn a_round_of_writes_stays_within_one_put() {
        let entries = |n: usize| Batch {
            entries: vec![super::super::tests::entry("k", 1); n],
            ..Batch::default()
        };
        let mut size = RoundSize::default();
        assert!(
            size.take(&entries(INDEX_WRITE_ENTRIES_MAX)),
            "a full write alone"
        );
        assert!(!size.take(&entries(1)), "nothing more beside it");
        let mut size = RoundSize::default();
        assert!(size.take(&entries(600)));
        assert!(!size.take(&entries(401)));
        assert!(size.take(&entries(400)));
        assert_eq!(size.entries, INDEX_WRITE_ENTRIES_MAX);
    }
}
