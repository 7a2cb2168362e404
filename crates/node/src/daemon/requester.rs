//! The requester agent, working for a user's CLI: it broadcasts a posted
//! job's capacity request and collects the offers that come back, and it
//! hands an awarded job (with the keys the user sealed to each node) to its
//! nodes. It never holds the user's wallet key: the user signs `PostJob`,
//! `AwardJob` and `SettleJob` and seals the keys on their own machine.

use peercloud_api::{ApiError, ErrorCode};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use peercloud_net::{GossipTopic, Protocol};
use peercloud_types::{JobId, JobSpec, NodeId, Offer, Signed};
use tokio::sync::mpsc;

use super::{Inner, OFFERS_CHANNEL, now_ms};
use crate::wire::{CapacityRequest, Dispatch, Message, RunResult};

/// How long past a job's deadline a dispatch still waits for an answer.
const DISPATCH_GRACE: Duration = Duration::from_secs(2);
/// Longest offer window a user may ask for.
pub const OFFER_WINDOW_MS_MAX: u64 = 60_000;

/// A requester step failed.
#[derive(Debug, thiserror::Error)]
pub enum RequesterError {
    /// The job is not on this node's ledger (yet).
    #[error("job {job} is not on the ledger: post it first")]
    UnknownJob {
        /// The job.
        job: JobId,
    },
    /// The spec does not match what was posted.
    #[error("the spec's digest does not match job {job}'s posted digest")]
    SpecMismatch {
        /// The job.
        job: JobId,
    },
    /// The offer window is out of bounds.
    #[error("offer window of {window_ms} ms is over the {max_ms} ms limit")]
    Window {
        /// Asked.
        window_ms: u64,
        /// Limit.
        max_ms: u64,
    },
    /// The request could not be broadcast.
    #[error("cannot broadcast the capacity request: {0}")]
    Net(String),
}

/// Offers and declines gathered for one job.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Verified offers for the job.
    pub offers: Vec<Signed<Offer>>,
    /// (node, reason) of those that declined.
    pub declined: Vec<(NodeId, String)>,
}

impl Inner {
    /// Broadcasts `job`'s capacity request and collects answers for
    /// `window_ms`, or until `enough` offers are in (when not 0).
    pub async fn gather_offers(
        self: &Arc<Self>,
        job: JobId,
        spec: &JobSpec,
        window_ms: u64,
        enough: usize,
    ) -> Result<Gathered, RequesterError> {
        if window_ms > OFFER_WINDOW_MS_MAX {
            return Err(RequesterError::Window {
                window_ms,
                max_ms: OFFER_WINDOW_MS_MAX,
            });
        }
        let record = self
            .chain()
            .state()
            .job(&job)
            .cloned()
            .ok_or(RequesterError::UnknownJob { job })?;
        if record.spec_digest != spec.digest() {
            return Err(RequesterError::SpecMismatch { job });
        }
        let providers = self.chain().state().nodes().count();
        let (tx, mut rx) = mpsc::channel(OFFERS_CHANNEL);
        self.collectors_lock().insert(job, tx);
        let until = now_ms() + window_ms;
        let request = CapacityRequest {
            job,
            spec: spec.clone(),
            requester: self.node_id(),
            offers_until_ms: until,
        };
        let published = self
            .publish(
                GossipTopic::CapacityRequests,
                &Message::CapacityRequest(request.clone()),
            )
            .await;
        // This node may be a provider too: it judges its own request.
        if !self.is_validator() {
            tokio::spawn(super::provider::on_capacity_request(self.clone(), request));
        }
        let mut gathered = Gathered::default();
        if let Err(e) = published
            && providers <= 1
        {
            self.collectors_lock().remove(&job);
            return Err(RequesterError::Net(e.to_string()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(window_ms);
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            match message {
                Message::Offer(offer) => gathered.offers.push(offer),
                Message::Decline { node, reason, .. } => gathered.declined.push((node, reason)),
                _ => {}
            }
            let answered = gathered.offers.len() + gathered.declined.len();
            if (enough > 0 && gathered.offers.len() >= enough) || answered >= providers {
                break;
            }
        }
        self.collectors_lock().remove(&job);
        Ok(gathered)
    }

    /// Sends each node its dispatch (all at once) and returns each answer.
    pub async fn dispatch(
        self: &Arc<Self>,
        dispatches: Vec<(NodeId, Dispatch)>,
    ) -> Vec<(NodeId, Result<RunResult, ApiError>)> {
        let sends = dispatches.into_iter().map(|(node, dispatch)| async move {
            // After the deadline the ledger refuses results: a node that has
            // not answered by then (frozen, partitioned) is given up on.
            let deadline_ms = self
                .chain()
                .state()
                .job(&dispatch.job)
                .map_or(0, |record| record.deadline_ms);
            let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()))
                .saturating_add(DISPATCH_GRACE);
            let run = async {
                if node == self.node_id() {
                    // Awarded to this very node: run it here.
                    let peer = self.net.peer_id();
                    match super::provider::on_dispatch(self.clone(), peer, dispatch).await {
                        Message::Error { code, message } => Err(super::AskError::Refused {
                            node,
                            code,
                            message,
                        }),
                        other => Ok(other),
                    }
                } else {
                    self.ask(&node, Protocol::JobDispatch, &Message::Dispatch(dispatch))
                        .await
                }
            };
            let outcome = match tokio::time::timeout(left, run).await {
                Ok(Ok(Message::Result(result))) => Ok(result),
                Ok(Ok(_)) => Err(ApiError::new(
                    ErrorCode::DispatchFailed,
                    "unexpected answer",
                )),
                Ok(Err(super::AskError::Refused { code, message, .. })) => {
                    Err(ApiError::new(code, message))
                }
                Ok(Err(super::AskError::Net { reason, .. })) => {
                    Err(ApiError::new(ErrorCode::Unavailable, reason))
                }
                Err(_) => Err(ApiError::new(
                    ErrorCode::Timeout,
                    "no answer by the job's deadline",
                )),
            };
            (node, outcome)
        });
        join_all(sends).await
    }

    fn collectors_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<JobId, mpsc::Sender<Message>>> {
        #[allow(clippy::expect_used)]
        self.collectors.lock().expect("collector lock poisoned")
    }
}

/// An offer or decline from a provider, for one of this node's collectors.
pub(crate) fn on_offer(inner: &Inner, message: Message) -> Message {
    let job = match &message {
        Message::Offer(offer) => {
            if offer.verify().is_err() || offer.body.node != NodeId(offer.signer) {
                return Message::error(
                    ErrorCode::BadSignature,
                    "the offer's signature does not verify",
                );
            }
            offer.body.job
        }
        Message::Decline { job, .. } => *job,
        _ => return Message::error(ErrorCode::BadRequest, "not an offer"),
    };
    let sender = inner.collectors_lock().get(&job).cloned();
    match sender {
        Some(sender) => match sender.try_send(message) {
            Ok(()) => Message::Ack,
            Err(_) => Message::error(
                ErrorCode::NotFound,
                format!("offers for job {job} are closed"),
            ),
        },
        None => Message::error(
            ErrorCode::NotFound,
            format!("no offers are being collected for job {job}"),
        ),
    }
}
