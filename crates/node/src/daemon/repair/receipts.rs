//! The repairer's side of being paid: a rebuilt piece goes to its new
//! holder as a [`Message::RepairPut`], the holder answers with its signed,
//! cumulative [`RepairReceipt`], and the repairer keeps the latest receipt
//! of each (bucket, receiver) and files the new ones in the bucket's index,
//! where the bucket's bill runner finds them (`billing.rs`) and puts them
//! in the period's `BillBucket`.
//!
//! ```text
//!  rebuilt piece ─► RepairPut { previous receipt } ─► holder stores, signs bytes += len
//!                ◄─ RepairAck(receipt) ─► kept ─► after the pass: index_write { repairs }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use peercloud_ledger::{BucketId, ClusterId, RepairReceipt};
use peercloud_net::Protocol;
use peercloud_types::{ContentId, NodeId, Signed};

use super::super::index::table::Batch;
use super::super::{AskError, Inner};
use crate::wire::Message;

/// The repair receipts a repairer holds: the latest per (bucket,
/// receiver) for the current period, and those not filed in the index yet.
#[derive(Debug, Default)]
pub struct RepairReceipts {
    latest: HashMap<(BucketId, NodeId), Signed<RepairReceipt>>,
    unfiled: HashMap<BucketId, Vec<Signed<RepairReceipt>>>,
}

impl RepairReceipts {
    /// The last receipt `receiver` signed this repairer for `bucket` in `period`.
    fn previous(
        &self,
        bucket: &BucketId,
        receiver: &NodeId,
        period: u64,
    ) -> Option<Signed<RepairReceipt>> {
        self.latest
            .get(&(*bucket, *receiver))
            .filter(|r| r.body.period == period)
            .cloned()
    }

    /// Keeps `receipt` as its pair's latest and to be filed.
    fn keep(&mut self, receipt: Signed<RepairReceipt>) {
        let body = receipt.body;
        self.latest
            .insert((body.bucket, body.receiver), receipt.clone());
        let unfiled = self.unfiled.entry(body.bucket).or_default();
        unfiled.retain(|r| r.body.receiver != body.receiver || r.body.period != body.period);
        unfiled.push(receipt);
    }

    /// Forgets `bucket`'s receipts of periods before `period - 1` (billed
    /// or about to be: older ones pay nothing any more). Periods are the
    /// bucket's own, so other buckets' receipts are left alone.
    fn forget_before(&mut self, bucket: &BucketId, period: u64) {
        let keep = |r: &Signed<RepairReceipt>| r.body.period.saturating_add(1) >= period;
        self.latest.retain(|(b, _), r| b != bucket || keep(r));
        if let Some(receipts) = self.unfiled.get_mut(bucket) {
            receipts.retain(keep);
        }
    }
}

/// Where a repair put goes and what it repairs.
pub(super) struct RepairOf<'a> {
    pub(super) cluster: &'a ClusterId,
    pub(super) bucket: &'a BucketId,
}

impl Inner {
    /// Puts a rebuilt piece on `node` as a repair: elsewhere as a
    /// [`Message::RepairPut`] whose receipt is kept in `receipts`; here
    /// as an ordinary put (a node is not paid for repairing onto itself).
    pub(super) async fn repair_put(
        &self,
        node: &NodeId,
        cid: ContentId,
        bytes: Vec<u8>,
        of: &RepairOf<'_>,
        receipts: &mut RepairReceipts,
    ) -> Result<(), AskError> {
        if *node == self.node_id() {
            return self.put_chunk_to(node, cid, bytes, Some(of.cluster)).await;
        }
        let period = {
            let chain = self.chain();
            let state = chain.state();
            let record = state.bucket(of.bucket).ok_or(AskError::Net {
                node: *node,
                reason: format!("{} is not on the ledger", of.bucket),
            })?;
            super::super::billing::repair_period(state, record)
        };
        let previous = receipts.previous(of.bucket, node, period);
        let floor = previous.as_ref().map_or(0, |r| r.body.bytes);
        let message = Message::RepairPut {
            cid,
            cluster: *of.cluster,
            bucket: *of.bucket,
            period,
            previous,
            bytes,
        };
        match self.ask(node, Protocol::Chunk, &message).await? {
            Message::RepairAck(receipt) => {
                let body = &receipt.body;
                let ours = receipt.signer == *node.key()
                    && receipt.verify().is_ok()
                    && body.repairer == self.node_id()
                    && body.receiver == *node
                    && body.bucket == *of.bucket
                    && body.period == period
                    && body.bytes >= floor;
                if ours {
                    receipts.keep(receipt);
                } else {
                    // The piece is placed; only the payment for it is lost.
                    tracing::warn!(%cid, %node, ?body, "a repair receipt that does not pay this repair");
                }
                Ok(())
            }
            other => Err(AskError::Net {
                node: *node,
                reason: format!("unexpected answer to a repair put: {other:?}"),
            }),
        }
    }

    /// Files the receipts of `bucket` not filed yet in its index (a quorum
    /// write), whatever this node's part in the bucket now (a rebuilder
    /// that lost the lead still files what it earned); on failure they
    /// stay for the next round.
    pub(super) async fn file_repair_receipts(
        self: &Arc<Self>,
        bucket: &BucketId,
        receipts: &mut RepairReceipts,
    ) {
        let period = {
            let chain = self.chain();
            let state = chain.state();
            let Some(record) = state.bucket(bucket) else {
                return;
            };
            super::super::billing::period_now(state, record)
        };
        receipts.forget_before(bucket, period);
        let Some(unfiled) = receipts.unfiled.remove(bucket).filter(|r| !r.is_empty()) else {
            return;
        };
        let batch = Batch {
            repairs: unfiled.clone(),
            ..Batch::default()
        };
        match self.index_write(batch).await {
            Ok(_) => tracing::debug!(%bucket, receipts = unfiled.len(), "repair receipts filed"),
            Err(err) => {
                tracing::info!(%bucket, %err, "repair receipts not filed; retrying");
                receipts.unfiled.insert(*bucket, unfiled);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Hash32, Keypair};

    fn receipt(receiver: &Keypair, period: u64, bytes: u64) -> Signed<RepairReceipt> {
        let body = RepairReceipt {
            bucket: BucketId(Hash32([1; 32])),
            period,
            repairer: Keypair::from_seed(&[9; 32]).node_id(),
            receiver: receiver.node_id(),
            bytes,
        };
        Signed::new(body, receiver)
    }

    #[test]
    fn the_latest_receipt_of_a_pair_is_kept_and_filed_once() {
        let (a, b) = (Keypair::from_seed(&[1; 32]), Keypair::from_seed(&[2; 32]));
        let bucket = BucketId(Hash32([1; 32]));
        let mut receipts = RepairReceipts::default();
        receipts.keep(receipt(&a, 4, 10));
        receipts.keep(receipt(&a, 4, 30));
        receipts.keep(receipt(&b, 4, 5));
        assert_eq!(
            receipts
                .previous(&bucket, &a.node_id(), 4)
                .map(|r| r.body.bytes),
            Some(30)
        );
        assert_eq!(
            receipts.previous(&bucket, &a.node_id(), 5),
            None,
            "a new period starts at 0"
        );
        let unfiled = &receipts.unfiled[&bucket];
        assert_eq!(unfiled.len(), 2, "one per receiver: {unfiled:?}");
        let other = BucketId(Hash32([2; 32]));
        receipts.forget_before(&other, 6);
        assert_eq!(
            receipts.latest.len(),
            2,
            "another bucket's periods are its own"
        );
        receipts.forget_before(&bucket, 6);
        assert!(receipts.latest.is_empty());
        assert!(receipts.unfiled[&bucket].is_empty());
    }
}
