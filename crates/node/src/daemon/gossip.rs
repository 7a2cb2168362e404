//! What the event loop decides about a message before any agent sees it:
//! a gossip message's verdict (forwarded, or rejected and charged to its
//! sender), and a message's kind for logs.

use peercloud_net::{GossipTopic, Verdict};

use super::{Inner, now_ms};
use crate::wire::Message;

/// This node's verdict on a gossip message, from what it can check without
/// waiting: the topic is the message's, signatures hold, a transaction is
/// for this chain, a block is the validator's and not already applied, a
/// capacity request's spec is valid and its offer window open.
pub(super) fn judge_gossip(inner: &Inner, topic: GossipTopic, message: &Message) -> Verdict {
    match (topic, message) {
        (GossipTopic::Transactions, Message::Tx(tx)) => {
            if tx.verify().is_err() {
                return Verdict::Reject;
            }
            match inner.chain().check(tx, now_ms()) {
                Ok(_) => Verdict::Accept,
                // An earlier transaction of the signer is still on its way.
                Err(peercloud_ledger::TxError::BadNonce { expected, got }) if got > expected => {
                    Verdict::Accept
                }
                Err(peercloud_ledger::TxError::WrongChain { .. }) => Verdict::Reject,
                // Stale or unaffordable here: not worth relaying, no fault
                // (this node's tip may differ from the sender's).
                Err(_) => Verdict::Ignore,
            }
        }
        (GossipTopic::Blocks, Message::Block(block)) => {
            let (validator, next) = {
                let chain = inner.chain();
                (chain.state().params().validator, chain.next_height())
            };
            if block.header.signer != validator
                || block.header.body.proposer != validator
                || block.header.verify().is_err()
            {
                Verdict::Reject
            } else if block.height() < next {
                Verdict::Ignore
            } else {
                Verdict::Accept
            }
        }
        (GossipTopic::CapacityRequests, Message::CapacityRequest(request)) => {
            if request.spec.validate().is_err() {
                Verdict::Reject
            } else if request.offers_until_ms < now_ms() {
                Verdict::Ignore
            } else {
                Verdict::Accept
            }
        }
        (GossipTopic::CapacityRequests, Message::LeaseRequest { request, .. }) => {
            if request.offers_until_ms < now_ms() {
                Verdict::Ignore
            } else {
                Verdict::Accept
            }
        }
        _ => Verdict::Reject,
    }
}

pub(super) fn kind_of(message: &Message) -> &'static str {
    match message {
        Message::Tx(_) => "tx",
        Message::Block(_) => "block",
        Message::CapacityRequest(_) => "capacity request",
        Message::Offer(_) => "offer",
        Message::Decline(_) => "decline",
        Message::ChunkPut { .. } => "chunk put",
        Message::ChunkGet { .. } => "chunk get",
        Message::Chunk(_) => "chunk",
        Message::Dispatch(_) => "dispatch",
        Message::Result(_) => "result",
        Message::SyncRequest { .. } => "sync request",
        Message::Blocks(_) => "blocks",
        Message::Ack => "ack",
        Message::Error { .. } => "error",
        Message::ChunkDelete { .. } => "chunk delete",
        Message::AuditRequest { .. } => "audit request",
        Message::AuditProof(_) => "audit proof",
        Message::IndexPut { .. } => "index put",
        Message::IndexGet { .. } => "index get",
        Message::IndexList { .. } => "index list",
        Message::IndexEntries { .. } => "index entries",
        Message::IndexEvidenceRequest { .. } => "index evidence request",
        Message::IndexEvidence { .. } => "index evidence",
        Message::RepairPut { .. } => "repair put",
        Message::RepairAck(_) => "repair ack",
        Message::LeaseRequest { .. } => "lease request",
        Message::LeaseOffer(_) => "lease offer",
        Message::SpaceCommand(_) => "space command",
        Message::SpaceOutput { .. } => "space output",
        Message::SpaceProbe { .. } => "space probe",
        Message::LeaseProbeReport(_) => "lease probe report",
    }
}
