//! The receiver's side of a repair put: a member that rebuilt a lost piece
//! puts it here ([`Message::RepairPut`]) and this node, once the piece is
//! stored under the holder's rules, signs a [`RepairReceipt`] with its node
//! key for the bytes it received, which is what pays the repairer.
//!
//! The receipt is cumulative per (bucket, period, repairer): the repairer
//! carries the last one this node signed it, this node checks that it is
//! its own and adds the new piece's bytes. Nothing is kept here. A piece
//! already held adds no bytes (a second repairer of the same piece, or one
//! putting a piece again, earns nothing for it), and the ledger pays at
//! most one full rebuild of the bucket per period, so a repairer and a
//! receiver in collusion cannot drain a bucket.

use std::sync::Arc;

use peercloud_api::ErrorCode;
use peercloud_ledger::{BucketId, ClusterId, RepairReceipt};
use peercloud_net::PeerId;
use peercloud_store::ChunkStore;
use peercloud_types::{NodeId, Signed};

use super::super::{Inner, now_ms};
use super::holder::{PutRefusal, store_here};
use crate::wire::Message;

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
    let before = match check(inner, sender, &ask) {
        Ok(before) => before,
        Err((code, message)) => return Message::error(code, message),
    };
    // Held before this put (intact or not, the bytes were not new here).
    let had = inner.store.has(&cid).unwrap_or(false);
    let len = bytes.len() as u64;
    if let Err(refusal) = store_here(inner, sender, cid, Arc::new(bytes), Some(&cluster)).await {
        tracing::debug!(%cid, %sender, %refusal, "repair put refused");
        return Message::error(refusal.code(), refusal.to_string());
    }
    let receipt = RepairReceipt {
        bucket,
        period,
        repairer: sender,
        receiver: inner.node_id(),
        bytes: before.saturating_add(if had { 0 } else { len }),
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
    let length = state
        .cluster(&ask.cluster)
        .map_or(1, |c| c.terms.billing_period_ms.max(1));
    let now = state.tip().map_or(0, |t| t.time_ms).max(now_ms());
    let current = now.saturating_sub(record.created_ms) / length;
    // The period before or after too: the two clocks may straddle an end.
    if ask.period.saturating_add(1) < current || ask.period > current.saturating_add(1) {
        return Err(bad(format!(
            "repair of {} in period {}: the current period is {current}",
            ask.bucket, ask.period
        )));
    }
    Ok(before)
}
