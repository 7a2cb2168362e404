//! A replica's side of the index: answering another node's put (checked
//! against the ledger and this node's membership, then merged durably by
//! the group-commit writer) and its reads, from this node's own table.

use std::sync::Arc;

use peercloud_api::ErrorCode;
use peercloud_types::NodeId;

use super::table::Batch;
use super::{INDEX_PAGE_MAX, IndexError, check_write, cluster_nodes};
use crate::daemon::Inner;
use crate::wire::{INDEX_GET_KEYS_MAX, Message};

/// This node's answer to a get, list or evidence request from its own table.
fn read_local(inner: &Inner, request: Message) -> Message {
    let table = inner.index.table();
    let answer = match request {
        Message::IndexGet { bucket, keys } if keys.len() > INDEX_GET_KEYS_MAX => {
            return Message::error(
                ErrorCode::BadRequest,
                format!(
                    "an index get of {bucket} asks for {} keys; at most {INDEX_GET_KEYS_MAX}",
                    keys.len()
                ),
            );
        }
        Message::IndexGet { bucket, keys } => table.get_many(&bucket, &keys).and_then(|entries| {
            Ok(Message::IndexEntries {
                inline: table.inline(&entries)?,
                entries,
                usage: table.usage(&bucket)?,
            })
        }),
        Message::IndexList {
            bucket,
            prefix,
            after,
            limit,
            inline,
        } => table
            .list(
                &bucket,
                &prefix,
                after.as_deref(),
                limit.clamp(1, INDEX_PAGE_MAX) as usize,
            )
            .and_then(|entries| {
                Ok(Message::IndexEntries {
                    inline: if inline {
                        table.inline(&entries)?
                    } else {
                        Vec::new()
                    },
                    entries,
                    usage: table.usage(&bucket)?,
                })
            }),
        Message::IndexEvidenceRequest {
            bucket,
            period,
            until_ms,
        } => table.usage_until(&bucket, until_ms).and_then(|usage| {
            Ok(Message::IndexEvidence {
                usage,
                receipts: table.receipts(&bucket, period)?,
                repairs: table.repairs(&bucket, period)?,
            })
        }),
        other => {
            return Message::error(
                ErrorCode::BadRequest,
                format!(
                    "not an index read: {}",
                    crate::daemon::gossip::kind_of(&other)
                ),
            );
        }
    };
    answer.unwrap_or_else(|err| Message::error(ErrorCode::Internal, err.to_string()))
}

/// Answers another node's index put: checked against the ledger and this
/// node's membership in the bucket's cluster, then merged durably.
pub(crate) async fn on_index_put(inner: &Arc<Inner>, batch: Batch) -> Message {
    let checked = {
        let chain = inner.chain();
        let state = chain.state();
        check_write(state, &batch).and_then(|bucket| {
            let cluster = state
                .bucket(&bucket)
                .map(|b| b.cluster)
                .ok_or(IndexError::UnknownBucket { bucket })?;
            let me = inner.node_id();
            if cluster_nodes(state, &cluster).iter().any(|n| n.node == me) {
                Ok(())
            } else {
                Err(IndexError::NotReplica {
                    node: me,
                    bucket,
                    cluster,
                })
            }
        })
    };
    let written = match checked {
        Ok(()) => inner.index.write(batch).await,
        Err(err) => Err(err),
    };
    match written {
        Ok(()) => Message::Ack,
        Err(err) => Message::error(err.code(), err.to_string()),
    }
}

/// Answers another node's index get, list or evidence request.
pub(crate) async fn on_index_read(
    inner: &Arc<Inner>,
    asker: Option<NodeId>,
    request: Message,
) -> Message {
    match asker {
        Some(asker) => inner.answer_read(request, asker).await,
        None => read_local(inner, request),
    }
}

impl Inner {
    /// Answers `asker`'s read from this node's table, once the table holds
    /// the bucket's whole index when this node is one of its replicas
    /// ([`Inner::ensure_index_pulled`]). The bucket's other replicas are
    /// answered from the table as it is (their pulls must not wait on this
    /// node's).
    pub(super) async fn answer_read(self: &Arc<Self>, request: Message, asker: NodeId) -> Message {
        let bucket = match &request {
            Message::IndexGet { bucket, .. }
            | Message::IndexList { bucket, .. }
            | Message::IndexEvidenceRequest { bucket, .. } => Some(*bucket),
            _ => None,
        };
        let me = self.node_id();
        if let Some(bucket) = bucket
            && self.index_replicas(&bucket).is_ok_and(|replicas| {
                replicas.contains(&me) && (asker == me || !replicas.contains(&asker))
            })
        {
            self.ensure_index_pulled(bucket, true).await;
        }
        read_local(self, request)
    }
}
