//! The requester agent, working for a user's CLI: it broadcasts a posted
//! job's capacity request and collects the offers that come back, and it
//! hands an awarded job (with the keys the user sealed to each node) to its
//! nodes. It never holds the user's wallet key: the user signs `PostJob`,
//! `AwardJob` and `SettleJob` and seals the keys on their own machine.

use peercloud_api::{ApiError, ErrorCode};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use peercloud_net::{GossipTopic, Protocol};
use peercloud_types::{Decline, JobId, JobSpec, NodeId, Offer, Signed};
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
        // Only nodes registered on the ledger can be awarded: only their
        // answers count, once each, toward "every provider answered".
        let providers: BTreeSet<NodeId> = self.chain().state().nodes().map(|(n, _)| *n).collect();
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
        let mut tally = Tally::new(providers);
        if let Err(e) = published
            && tally.providers.len() <= 1
        {
            self.collectors_lock().remove(&job);
            return Err(RequesterError::Net(e.to_string()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(window_ms);
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            tally.take(message);
            if (enough > 0 && tally.gathered.offers.len() >= enough) || tally.all_answered() {
                break;
            }
        }
        self.collectors_lock().remove(&job);
        Ok(tally.gathered)
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

/// The answers to one capacity request: each registered node's first
/// offer or decline; answers from nodes the ledger does not know, and
/// second answers, are left out.
struct Tally {
    providers: BTreeSet<NodeId>,
    answered: BTreeSet<NodeId>,
    gathered: Gathered,
}

impl Tally {
    fn new(providers: BTreeSet<NodeId>) -> Tally {
        Tally {
            providers,
            answered: BTreeSet::new(),
            gathered: Gathered::default(),
        }
    }

    /// Counts a verified answer (see [`on_offer`]).
    fn take(&mut self, message: Message) {
        let node = match &message {
            Message::Offer(offer) => offer.body.node,
            Message::Decline(decline) => decline.body.node,
            _ => return,
        };
        if !self.providers.contains(&node) {
            tracing::debug!(%node, "answer from a node not registered on the ledger ignored");
            return;
        }
        if !self.answered.insert(node) {
            tracing::debug!(%node, "second answer from a node ignored");
            return;
        }
        match message {
            Message::Offer(offer) => self.gathered.offers.push(offer),
            Message::Decline(decline) => {
                let Decline { node, reason, .. } = decline.body;
                self.gathered.declined.push((node, reason));
            }
            _ => {}
        }
    }

    /// Whether every registered node has answered.
    fn all_answered(&self) -> bool {
        self.answered.len() >= self.providers.len()
    }
}

/// The job an offer or decline answers, once its signature holds and its
/// signer is the node it speaks for; else the refusal to send back.
fn verified_answer(message: &Message) -> Result<JobId, (ErrorCode, String)> {
    let (verified, job, node, signer) = match message {
        Message::Offer(offer) => (
            offer.verify().is_ok(),
            offer.body.job,
            offer.body.node,
            offer.signer,
        ),
        Message::Decline(decline) => (
            decline.verify().is_ok(),
            decline.body.job,
            decline.body.node,
            decline.signer,
        ),
        _ => return Err((ErrorCode::BadRequest, "not an offer".into())),
    };
    if !verified || node != NodeId(signer) {
        return Err((
            ErrorCode::BadSignature,
            format!("the answer for job {job} is not signed by node {node}"),
        ));
    }
    Ok(job)
}

/// An offer or decline from a provider, for one of this node's collectors.
pub(crate) fn on_offer(inner: &Inner, message: Message) -> Message {
    let job = match verified_answer(&message) {
        Ok(job) => job,
        Err((code, message)) => return Message::error(code, message),
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

#[cfg(test)]
mod tests {
    use peercloud_types::{Amount, Hash32, Keypair};

    use super::*;

    fn job() -> JobId {
        JobId(Hash32::of(b"a job"))
    }

    fn decline(key: &Keypair, node: NodeId) -> Message {
        let body = Decline {
            job: job(),
            node,
            reason: "busy".into(),
        };
        Message::Decline(Signed::new(body, key))
    }

    fn offer(key: &Keypair) -> Message {
        let body = Offer {
            job: job(),
            node: NodeId(key.public()),
            price: Amount::from_tokens(1),
            valid_until_ms: u64::MAX,
        };
        Message::Offer(Signed::new(body, key))
    }

    #[test]
    fn an_answer_must_be_signed_by_the_node_it_speaks_for() {
        let (node, stranger) = (Keypair::from_seed(&[1; 32]), Keypair::from_seed(&[2; 32]));
        assert_eq!(
            verified_answer(&decline(&node, NodeId(node.public()))),
            Ok(job())
        );
        assert_eq!(verified_answer(&offer(&node)), Ok(job()));
        // A decline in another node's name: refused.
        let forged = decline(&stranger, NodeId(node.public()));
        assert!(matches!(
            verified_answer(&forged),
            Err((ErrorCode::BadSignature, _))
        ));
        // A signature that does not verify: refused.
        let Message::Decline(mut tampered) = decline(&node, NodeId(node.public())) else {
            unreachable!()
        };
        tampered.body.reason = "something else".into();
        assert!(matches!(
            verified_answer(&Message::Decline(tampered)),
            Err((ErrorCode::BadSignature, _))
        ));
    }

    #[test]
    fn only_registered_nodes_answers_count_once_each_toward_every_provider_answered() {
        let keys: Vec<Keypair> = (1..=3).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let registered: BTreeSet<NodeId> = keys[..2].iter().map(|k| NodeId(k.public())).collect();
        let mut tally = Tally::new(registered);
        // An unregistered node answering many times does not end the window.
        for _ in 0..5 {
            tally.take(offer(&keys[2]));
            tally.take(decline(&keys[2], NodeId(keys[2].public())));
        }
        // Nor does one registered node answering twice.
        tally.take(decline(&keys[0], NodeId(keys[0].public())));
        tally.take(offer(&keys[0]));
        assert!(!tally.all_answered());
        assert!(
            tally.gathered.offers.is_empty(),
            "only first answers are kept"
        );
        assert_eq!(tally.gathered.declined.len(), 1);
        tally.take(offer(&keys[1]));
        assert!(tally.all_answered());
        assert_eq!(tally.gathered.offers.len(), 1);
        assert_eq!(tally.gathered.offers[0].body.node, NodeId(keys[1].public()));
    }
}
