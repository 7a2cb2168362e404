//! Audits on the chunk protocol: this node asks a holder to prove that it
//! still has a chunk, and answers such requests for the chunks it holds.
//!
//! ```text
//!  Inner::audit: challenge = Challenge::derive(seed, cid, len)
//!     ├─AuditRequest { cid, challenge }─► holder: read the chunk (verified), prove
//!     │                                    └─ not here: not_found; bad here: chunk_corrupt
//!     └─ verify(cid, len, challenge, proof) ◄─ AuditProof
//! ```
//!
//! The auditor needs only the CID and the chunk's length (from the
//! manifest): the proof is checked against the CID, so the auditor never
//! holds the chunk and never takes the holder's word. Only a proof that
//! verifies passes; a refusal, a proof that fails or any other answer is a
//! failure that names the holder and what went wrong. A holder that cannot be
//! reached is neither (an error: the caller decides whether to try again).
//!
//! Drawing the seed from the chain, scheduling audits, and what a failure
//! costs a node (reputation, stake, its place in a cluster) come with the
//! cluster ledger.

use peercloud_api::ErrorCode;
use peercloud_net::Protocol;
use peercloud_store::audit::{AuditError, AuditProof, Challenge, prove, verify};
use peercloud_store::{ChunkStore, StoreError};
use peercloud_types::{ContentId, Hash32, NodeId, encode};

use super::super::{AnsweredAudit, AskError, AuditAnswer, Inner, gossip, now_ms};
use crate::wire::Message;

/// What auditing one holder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The holder proved the challenged leaves of the chunk.
    Passed {
        /// Size of its proof, encoded, in bytes.
        proof_bytes: usize,
    },
    /// The holder did not prove them.
    Failed(AuditFailure),
}

impl AuditOutcome {
    /// Whether the holder passed.
    pub fn passed(&self) -> bool {
        matches!(self, AuditOutcome::Passed { .. })
    }
}

/// Why a holder failed an audit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFailure {
    /// The holder says it does not have the chunk.
    #[error("node {node} does not have chunk {cid}: {message}")]
    Missing {
        /// The holder.
        node: NodeId,
        /// The chunk.
        cid: ContentId,
        /// What it said.
        message: String,
    },
    /// The holder's copy fails its own verification.
    #[error("node {node} has chunk {cid} corrupt: {message}")]
    Corrupt {
        /// The holder.
        node: NodeId,
        /// The chunk.
        cid: ContentId,
        /// What it said.
        message: String,
    },
    /// The holder sent a proof that does not verify against the CID.
    #[error("node {node} sent a proof of chunk {cid} that fails: {error}")]
    BadProof {
        /// The holder.
        node: NodeId,
        /// The chunk.
        cid: ContentId,
        /// The check that failed.
        error: AuditError,
    },
    /// The holder refused for another reason.
    #[error("node {node} refused the audit of chunk {cid} ({code}): {message}")]
    Refused {
        /// The holder.
        node: NodeId,
        /// The chunk.
        cid: ContentId,
        /// Its code.
        code: ErrorCode,
        /// Its reason.
        message: String,
    },
    /// The holder answered with something that is not a proof.
    #[error("node {node} answered the audit of chunk {cid} with a {kind} message")]
    Unexpected {
        /// The holder.
        node: NodeId,
        /// The chunk.
        cid: ContentId,
        /// The kind of message it sent.
        kind: &'static str,
    },
}

/// A peer asks this node to prove that it holds `cid`. The chunk is read
/// verified, so a copy gone bad is answered `chunk_corrupt` (never proved:
/// its proof would fail anyway, and the holder should know first).
///
/// Every answer goes to the earnings record's audit log with the
/// `auditor` (the asking peer's node, `None` when its peer id names no
/// node key) and the outcome, queued without waiting: the answer never
/// waits on a disk.
pub(crate) async fn on_audit(
    inner: &Inner,
    auditor: Option<NodeId>,
    cid: ContentId,
    challenge: Challenge,
) -> Message {
    let (answer, outcome) = answer_audit(inner, cid, challenge).await;
    inner.earnings.record_answer(AnsweredAudit {
        time_ms: now_ms(),
        cid,
        auditor,
        outcome,
    });
    answer
}

/// The answer to an audit of `cid`, and how it reads from this side.
async fn answer_audit(
    inner: &Inner,
    cid: ContentId,
    challenge: Challenge,
) -> (Message, AuditAnswer) {
    let node = inner.node_id();
    let store = inner.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let bytes = store.get(&cid)?;
        Ok::<_, StoreError>(prove(&bytes, &challenge))
    })
    .await;
    match read {
        Ok(Ok(Ok(proof))) => (Message::AuditProof(proof), AuditAnswer::Proved),
        Ok(Ok(Err(e))) => (
            Message::error(ErrorCode::BadRequest, format!("node {node}: {e}")),
            AuditAnswer::Error,
        ),
        Ok(Err(e @ StoreError::NotFound { .. })) => (
            Message::error(ErrorCode::NotFound, format!("node {node}: {e}")),
            AuditAnswer::Missing,
        ),
        Ok(Err(e @ StoreError::Corrupt { .. })) => {
            tracing::warn!(%cid, %e, "an audited chunk held here is corrupt");
            (
                Message::error(ErrorCode::ChunkCorrupt, format!("node {node}: {e}")),
                AuditAnswer::Corrupt,
            )
        }
        Ok(Err(e)) => (
            Message::error(ErrorCode::StoreFailed, format!("node {node}: {e}")),
            AuditAnswer::Error,
        ),
        Err(e) => (
            Message::error(
                ErrorCode::Internal,
                format!("node {node}: the audit task failed: {e}"),
            ),
            AuditAnswer::Error,
        ),
    }
}

impl Inner {
    /// Audits `node`: asks it to prove that it holds chunk `cid` of `len`
    /// bytes, under the challenge `seed` draws, and verifies the proof
    /// against the CID. `Err` only when the holder could not be asked (that
    /// is no evidence either way); every answer is an [`AuditOutcome`].
    pub async fn audit(
        &self,
        node: &NodeId,
        cid: ContentId,
        len: u64,
        seed: &Hash32,
    ) -> Result<AuditOutcome, AskError> {
        let challenge = Challenge::derive(seed, &cid, len);
        let answer = if *node == self.node_id() {
            match on_audit(self, Some(*node), cid, challenge.clone()).await {
                Message::Error { code, message } => Err(AskError::Refused {
                    node: *node,
                    code,
                    message,
                }),
                answer => Ok(answer),
            }
        } else {
            let request = Message::AuditRequest {
                cid,
                challenge: challenge.clone(),
            };
            self.ask(node, Protocol::Chunk, &request).await
        };
        let node = *node;
        let failure = match answer {
            Ok(Message::AuditProof(proof)) => match judge(&cid, len, &challenge, &proof) {
                Ok(proof_bytes) => {
                    tracing::debug!(%node, %cid, proof_bytes, "audit passed");
                    return Ok(AuditOutcome::Passed { proof_bytes });
                }
                Err(error) => AuditFailure::BadProof { node, cid, error },
            },
            Ok(other) => AuditFailure::Unexpected {
                node,
                cid,
                kind: gossip::kind_of(&other),
            },
            Err(AskError::Refused {
                code: ErrorCode::NotFound,
                message,
                ..
            }) => AuditFailure::Missing { node, cid, message },
            Err(AskError::Refused {
                code: ErrorCode::ChunkCorrupt,
                message,
                ..
            }) => AuditFailure::Corrupt { node, cid, message },
            Err(AskError::Refused { code, message, .. }) => AuditFailure::Refused {
                node,
                cid,
                code,
                message,
            },
            Err(e @ AskError::Net { .. }) => return Err(e),
        };
        tracing::info!(%failure, "audit failed");
        Ok(AuditOutcome::Failed(failure))
    }
}

/// Verifies `proof`; its encoded size when it passes.
fn judge(
    cid: &ContentId,
    len: u64,
    challenge: &Challenge,
    proof: &AuditProof,
) -> Result<usize, AuditError> {
    verify(cid, len, challenge, proof)?;
    Ok(encode(proof).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_messages_round_trip_and_the_proof_still_verifies() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let cid = ContentId::of(&bytes);
        let len = bytes.len() as u64;
        let challenge = Challenge::derive(&Hash32::of(b"seed"), &cid, len);
        let request = Message::AuditRequest {
            cid,
            challenge: challenge.clone(),
        };
        assert_eq!(Message::from_bytes(&request.to_bytes()).unwrap(), request);
        let proof = prove(&bytes, &challenge).unwrap();
        let answer = Message::AuditProof(proof);
        let Message::AuditProof(back) = Message::from_bytes(&answer.to_bytes()).unwrap() else {
            panic!("an audit proof decodes as one");
        };
        assert_eq!(judge(&cid, len, &challenge, &back), Ok(encode(&back).len()));
        assert_eq!(gossip::kind_of(&answer), "audit proof");
        assert_eq!(gossip::kind_of(&request), "audit request");
    }
}
