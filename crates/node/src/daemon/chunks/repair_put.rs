//! The receiver's side of a repair put: a member that rebuilt a lost piece
//! puts it here ([`Message::RepairPut`]) and this node, once the piece is
//! stored under the holder's rules, signs a [`RepairReceipt`] with its node
//! key for the bytes it received, which is what pays the repairer.
//!
//! The receipt is cumulative per (bucket, period, repairer): the repairer
//! carries the last one this node signed it, this node checks that it is
//! its own and adds the new piece's bytes. Only the bucket's index replicas
//! (its repairers) are acknowledged, and a piece counts once per bucket and
//! period on this node ([`RepairCounted`]): a piece already held, a second
//! repairer of the same piece, or one deleting and putting a piece again
//! earns nothing for it; a member that is not an index replica gets its
//! piece kept and no bytes. The ledger pays at most one full rebuild of
//! the bucket per bill. What this cannot tell is whether a piece belongs to the
//! bucket at all (that would take the bucket's manifests): an index replica
//! that puts pieces of its own making can bill up to that cap, and no more.

use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;

use peercloud_api::ErrorCode;
use peercloud_ledger::{BucketId, ClusterId, RepairReceipt};
use peercloud_net::PeerId;
use peercloud_store::ChunkStore;
use peercloud_types::{ContentId, NodeId, Signed};

use super::super::Inner;
use super::holder::{PutRefusal, store_here};
use crate::wire::Message;

/// Most pieces a node remembers having counted (a bound on its memory:
/// past it, new pieces are stored but count no bytes until older ones are
/// forgotten).
pub const REPAIR_COUNTED_MAX: usize = 1 << 20;
/// Most pieces counted for one bucket and period (so one bucket cannot
/// fill the memory for all the others).
pub const REPAIR_COUNTED_PER_BUCKET_MAX: usize = REPAIR_COUNTED_MAX / 16;
/// A (bucket, period) not counted into for this long is forgotten.
pub const REPAIR_COUNTED_IDLE: std::time::Duration = std::time::Duration::from_secs(3_600);

/// The pieces this node acknowledged in repairs, per bucket and period: a
/// piece counts once.
#[derive(Debug, Default)]
pub struct RepairCounted {
    pieces: HashMap<(BucketId, u64), (std::time::Instant, HashSet<ContentId>)>,
    total: usize,
}

impl RepairCounted {
    /// Claims `cid` for `(bucket, period)`: `true` when it was not counted
    /// yet (and now is). The bucket's periods two or more before `period`,
    /// and any (bucket, period) idle for [`REPAIR_COUNTED_IDLE`], are
    /// forgotten.
    fn claim(&mut self, bucket: BucketId, period: u64, cid: ContentId) -> bool {
        let before = self.pieces.len();
        self.pieces.retain(|(b, p), (used, _)| {
            (*b != bucket || p.saturating_add(1) >= period) && used.elapsed() < REPAIR_COUNTED_IDLE
        });
        if self.pieces.len() != before {
            self.total = self.pieces.values().map(|(_, set)| set.len()).sum();
        }
        if self.total >= REPAIR_COUNTED_MAX {
            return false;
        }
        let (used, set) = self
            .pieces
            .entry((bucket, period))
            .or_insert_with(|| (std::time::Instant::now(), HashSet::new()));
        if set.len() >= REPAIR_COUNTED_PER_BUCKET_MAX {
            return false;
        }
        *used = std::time::Instant::now();
        let fresh = set.insert(cid);
        self.total += usize::from(fresh);
        fresh
    }

    /// Gives back a claim whose put failed.
    fn release(&mut self, bucket: BucketId, period: u64, cid: &ContentId) {
        if let Some((_, set)) = self.pieces.get_mut(&(bucket, period))
            && set.remove(cid)
        {
            self.total -= 1;
        }
    }
}

/// What a repair put asks of this node.
struct Ask {
    cluster: ClusterId,
    bucket: BucketId,
    period: u64,
    previous: Option<Signed<RepairReceipt>>,
}

/// A peer puts a piece it rebuilt while repairing a bucket.
pub(crate) async fn on_repair_put(inner: &Inner, peer: PeerId, message: Message) -> Message {
    let Message::RepairPut {
        cid,
        cluster,
        bucket,
        period,
        previous,
        bytes,
    } = message
    else {
        return Message::error(ErrorCode::BadRequest, "not a repair put");
    };
    let Some(sender) = peercloud_net::node_id_of(&peer) else {
        let refusal = PutRefusal::NotANode {
            peer: peer.to_string(),
        };
        return Message::error(refusal.code(), refusal.to_string());
    };
    let ask = Ask {
        cluster,
        bucket,
        period,
        previous,
    };
    // Only the bucket's index replicas are paid to repair it; a piece from
    // another member (one whose view of the ranking is a block behind,
    // say) is still kept, for no bytes.
    let paid = match inner.index_replicas(&bucket) {
        Ok(replicas) => replicas.contains(&sender),
        Err(err) => return Message::error(err.code(), err.to_string()),
    };
    let before = match check(inner, sender, &ask) {
        Ok(before) => before,
        Err((code, message)) => return Message::error(code, message),
    };
    // A piece held here already, or counted before, adds no bytes; the
    // claim is taken before the put so two repairers racing with one piece
    // cannot both count it.
    let had = inner.store.has(&cid).unwrap_or(false);
    let counted = || {
        inner
            .repair_counted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    let fresh = paid && !had && counted().claim(bucket, period, cid);
    let len = bytes.len() as u64;
    if let Err(refusal) = store_here(inner, sender, cid, Bytes::from(bytes), Some(&cluster)).await {
        if fresh {
            counted().release(bucket, period, &cid);
        }
        tracing::debug!(%cid, %sender, %refusal, "repair put refused");
        return Message::error(refusal.code(), refusal.to_string());
    }
    let receipt = RepairReceipt {
        bucket,
        period,
        repairer: sender,
        receiver: inner.node_id(),
        bytes: before.saturating_add(if fresh { len } else { 0 }),
    };
    Message::RepairAck(Signed::new(receipt, &inner.node_key))
}

/// Checks the ask against the ledger and the previous receipt; answers the
/// bytes the new receipt adds to, or the refusal to send.
fn check(inner: &Inner, sender: NodeId, ask: &Ask) -> Result<u64, (ErrorCode, String)> {
    let bad = |message: String| (ErrorCode::BadRequest, message);
    let me = inner.node_id();
    let before = match &ask.previous {
        None => 0,
        Some(previous) => {
            let body = &previous.body;
            if previous.signer != *me.key() || previous.verify().is_err() {
                return Err(bad(format!(
                    "the previous repair receipt is not node {me}'s signature"
                )));
            }
            if body.receiver != me
                || body.repairer != sender
                || body.bucket != ask.bucket
                || body.period != ask.period
            {
                return Err(bad(format!(
                    "the previous repair receipt is of another repair (repairer {}, bucket {}, period {})",
                    body.repairer, body.bucket, body.period
                )));
            }
            body.bytes
        }
    };
    let chain = inner.chain();
    let state = chain.state();
    let Some(record) = state.bucket(&ask.bucket) else {
        return Err((
            ErrorCode::NotFound,
            format!("{} is not on the ledger", ask.bucket),
        ));
    };
    if record.cluster != ask.cluster {
        return Err(bad(format!(
            "{} is a bucket of {}, not of {}",
            ask.bucket, record.cluster, ask.cluster
        )));
    }
    let current = super::super::billing::period_now(state, record);
    // The period before or after too: the two clocks may straddle an end.
    if ask.period.saturating_add(1) < current || ask.period > current.saturating_add(1) {
        return Err(bad(format!(
            "repair of {} in period {}: the current period is {current}",
            ask.bucket, ask.period
        )));
    }
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    #[test]
    fn a_piece_counts_once_per_bucket_and_period() {
        let (a, b) = (BucketId(Hash32([1; 32])), BucketId(Hash32([2; 32])));
        let cid = ContentId::of(b"piece");
        let mut counted = RepairCounted::default();
        assert!(counted.claim(a, 5, cid));
        assert!(!counted.claim(a, 5, cid), "a second repairer, or a re-put");
        assert!(counted.claim(b, 5, cid), "another bucket's piece");
        assert!(counted.claim(a, 6, cid), "the next period");
        counted.release(a, 6, &cid);
        assert!(
            counted.claim(a, 6, cid),
            "a failed put gives its claim back"
        );
        // Period 8 forgets bucket a's periods 5 and 6.
        assert!(counted.claim(a, 8, ContentId::of(b"other")));
        assert!(counted.claim(a, 5, cid));
        assert_eq!(counted.total, 3);
    }
}
