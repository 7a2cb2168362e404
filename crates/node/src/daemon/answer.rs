//! Answers a peer's request: each protocol's messages go to the module
//! that owns them (chunks, audits, repairs, the index, job dispatch, block
//! sync); a message on a protocol it does not belong to is refused naming
//! both.

use std::sync::Arc;

use peercloud_api::ErrorCode;
use peercloud_net::Protocol;

use super::{Inner, chunks, gossip, index, leases, ledger, provider, requester};
use crate::wire::Message;

/// Answers one request.
pub(super) async fn answer(
    inner: &Arc<Inner>,
    peer: peercloud_net::PeerId,
    protocol: Protocol,
    message: Message,
) -> Message {
    match (protocol, message) {
        (Protocol::Offer, m @ (Message::Offer(_) | Message::Decline(_))) => {
            requester::on_offer(inner, m)
        }
        (Protocol::Offer, Message::LeaseOffer(offer)) => leases::on_lease_offer(inner, offer),
        (Protocol::Space, Message::SpaceCommand(command)) => {
            leases::on_space_command(inner, command).await
        }
        (Protocol::Space, Message::SpaceProbe { lease, nonce, .. }) => {
            leases::on_probe(inner, peercloud_net::node_id_of(&peer), lease, nonce).await
        }
        (Protocol::Space, Message::LeaseProbeReport(probe)) => {
            leases::on_probe_report(inner, probe)
        }
        (
            Protocol::Chunk,
            Message::ChunkPut {
                cid,
                cluster,
                bytes,
            },
        ) => chunks::on_put(inner, peer, cid, bytes, cluster).await,
        (Protocol::Chunk, Message::ChunkGet { cid }) => chunks::on_get(inner, cid).await,
        (Protocol::Chunk, m @ Message::RepairPut { .. }) => {
            chunks::on_repair_put(inner, peer, m).await
        }
        (Protocol::Chunk, Message::ChunkDelete { cid }) => {
            chunks::on_delete(inner, peer, cid).await
        }
        (Protocol::Chunk, Message::AuditRequest { cid, challenge }) => {
            let auditor = peercloud_net::node_id_of(&peer);
            chunks::audit::on_audit(inner, auditor, cid, challenge).await
        }
        (
            Protocol::Index,
            Message::IndexPut {
                entries,
                usages,
                receipts,
                repairs,
                inline,
            },
        ) => {
            let batch = index::table::Batch {
                entries,
                usages,
                receipts,
                repairs,
                inline,
            };
            index::on_index_put(inner, batch).await
        }
        (
            Protocol::Index,
            m @ (Message::IndexGet { .. }
            | Message::IndexList { .. }
            | Message::IndexEvidenceRequest { .. }),
        ) => index::on_index_read(inner, peercloud_net::node_id_of(&peer), m).await,
        (Protocol::JobDispatch, Message::Dispatch(dispatch)) => {
            provider::on_dispatch(inner.clone(), peer, dispatch).await
        }
        (Protocol::BlockSync, Message::SyncRequest { from, max }) => {
            ledger::on_sync_request(inner, from, max)
        }
        (protocol, other) => Message::error(
            ErrorCode::BadRequest,
            format!(
                "a {} message does not belong on {}",
                gossip::kind_of(&other),
                protocol.name()
            ),
        ),
    }
}
