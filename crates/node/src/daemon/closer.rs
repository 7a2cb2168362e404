//! The closer: a job must not stay open because its poster went away. The
//! poster normally settles the moment the results are in; if it does not
//! (its CLI was killed, its machine went offline), the nodes close the job
//! themselves, so escrow returns and the farmers' stake is unbound:
//!
//! - a node awarded the job closes it once it is decided — every award
//!   answered (a result or a withdrawal), or no strict majority can form any
//!   more — and the poster has had [`SETTLE_GRACE_MS`] to do it, or once the
//!   deadline has passed (settled when a majority exists, expired otherwise);
//! - a job never awarded is expired after its deadline by the one registered
//!   node ranked first for it (BLAKE3 of job and node), so the network
//!   sends one transaction, not one per node.
//!
//! Each candidate goes through the node's submit, which dry-runs it against
//! the tip first, so a job the poster closed meanwhile costs nothing; the fee
//! is paid by the node's owner.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peercloud_ledger::{JobRecord, JobState, TxKind};
use peercloud_types::{Hash32, JobId, NodeId};

use super::{Inner, SubmitError, now_ms};

/// How often the node looks for jobs to close: the deadlines are in seconds.
const CLOSE_INTERVAL: Duration = Duration::from_secs(2);
/// How long the poster has to settle a job whose results are all in.
pub const SETTLE_GRACE_MS: u64 = 5_000;
/// Margin past a deadline before closing: the validator's clock decides.
const DEADLINE_GRACE_MS: u64 = 1_000;

/// Looks for jobs to close every [`CLOSE_INTERVAL`] until the node stops.
pub(crate) async fn closer_loop(inner: Arc<Inner>) {
    let closing: Arc<Mutex<HashSet<JobId>>> = Arc::default();
    let mut settleable_since: HashMap<JobId, u64> = HashMap::new();
    loop {
        tokio::time::sleep(CLOSE_INTERVAL).await;
        if !inner.registered() {
            continue;
        }
        for (job, kinds) in due(&inner, &mut settleable_since, now_ms()) {
            #[allow(clippy::expect_used)]
            if !closing.lock().expect("closer lock poisoned").insert(job) {
                continue;
            }
            let (inner, closing) = (inner.clone(), closing.clone());
            tokio::spawn(async move {
                close(&inner, job, kinds).await;
                #[allow(clippy::expect_used)]
                closing.lock().expect("closer lock poisoned").remove(&job);
            });
        }
    }
}

/// The jobs this node should close now, each with the transactions to try
/// in order.
fn due(
    inner: &Inner,
    settleable_since: &mut HashMap<JobId, u64>,
    now: u64,
) -> Vec<(JobId, Vec<TxKind>)> {
    let me = inner.node_id();
    let chain = inner.chain();
    let state = chain.state();
    let nodes: Vec<NodeId> = state.nodes().map(|(node, _)| *node).collect();
    let mut due = Vec::new();
    let mut still_settleable = HashMap::new();
    for (job, record) in state.jobs() {
        let job = *job;
        let past_deadline = now > record.deadline_ms + DEADLINE_GRACE_MS;
        let close = || vec![TxKind::SettleJob { job }, TxKind::ExpireJob { job }];
        match record.state {
            JobState::Awarded if record.awards.iter().any(|a| a.node == me) => {
                if past_deadline {
                    due.push((job, close()));
                } else if decided(record) {
                    let since = *settleable_since.get(&job).unwrap_or(&now);
                    still_settleable.insert(job, since);
                    if now >= since + SETTLE_GRACE_MS {
                        due.push((job, close()));
                    }
                }
            }
            JobState::Posted if past_deadline && first_for(&job, &nodes) == Some(me) => {
                due.push((job, vec![TxKind::ExpireJob { job }]));
            }
            _ => {}
        }
    }
    *settleable_since = still_settleable;
    due
}

/// Whether waiting for an awarded job's deadline would change nothing: every
/// award answered (settled, with or without a majority), or no strict
/// majority can form any more (expired early, by the ledger's rule).
fn decided(record: &JobRecord) -> bool {
    record.pending() == 0 || !record.majority_possible()
}

/// The registered node that closes an unawarded job: the one whose
/// BLAKE3(job ‖ node) is least.
fn first_for(job: &JobId, nodes: &[NodeId]) -> Option<NodeId> {
    nodes.iter().copied().min_by_key(|node| {
        let mut bytes = job.0.as_bytes().to_vec();
        bytes.extend_from_slice(&node.key().0);
        Hash32::of(&bytes)
    })
}

/// Submits the first of `kinds` the ledger takes, signed by the owner. The
/// node's submit dry-runs each against its tip first, so one the ledger would
/// refuse (a job the poster closed meanwhile) costs no fee and no gossip.
async fn close(inner: &Inner, job: JobId, kinds: Vec<TxKind>) {
    for kind in kinds {
        let name = kind.name();
        match inner.sign_and_submit(&inner.owner_key, kind, true).await {
            Ok(_) => {
                tracing::info!(%job, tx = name, "closed a job its poster left open");
                return;
            }
            Err(SubmitError::Refused(_)) => {}
            Err(e) => {
                tracing::debug!(%job, tx = name, %e, "could not close the job");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use peercloud_ledger::{Award, ResultClaim};
    use peercloud_types::{Amount, Keypair};

    use super::*;

    /// An awarded job of k = 3 whose awards answered as `answers` says.
    fn job(answers: [Answer; 3]) -> JobRecord {
        let owner = Keypair::from_seed(&[9; 32]).account_id();
        let awards = answers
            .iter()
            .enumerate()
            .map(|(i, answer)| Award {
                node: Keypair::from_seed(&[i as u8 + 1; 32]).node_id(),
                owner,
                price: Amount::from_tokens(1),
                result: match answer {
                    Answer::Claim(byte) => Some(ResultClaim {
                        output_digest: Hash32::of(&[*byte]),
                        fuel_used: 1,
                    }),
                    Answer::Pending | Answer::Withdrawn => None,
                },
                withdrawn: matches!(answer, Answer::Withdrawn),
            })
            .collect();
        JobRecord {
            poster: owner,
            spec_digest: Hash32::of(b"spec"),
            redundancy: 3,
            max_price_per_node: Amount::from_tokens(1),
            posted_ms: 0,
            deadline_ms: 1_000,
            escrow_locked: Amount::from_tokens(3),
            escrow_released: Amount::ZERO,
            state: JobState::Awarded,
            awards,
            agreed: None,
        }
    }

    /// How one award answered.
    #[derive(Clone, Copy)]
    enum Answer {
        /// A result whose digest is that of this byte.
        Claim(u8),
        /// Nothing yet.
        Pending,
        /// A withdrawal.
        Withdrawn,
    }

    #[test]
    fn a_job_is_decided_once_no_majority_can_form_or_every_award_answered() {
        use Answer::{Claim, Pending, Withdrawn};
        // Still open: a majority may form.
        assert!(!decided(&job([Pending, Pending, Pending])));
        assert!(!decided(&job([Withdrawn, Pending, Pending])));
        assert!(!decided(&job([Claim(1), Claim(2), Pending])));
        assert!(!decided(&job([Claim(1), Claim(1), Pending])));
        // Decided: every award answered.
        assert!(decided(&job([Claim(1), Claim(1), Withdrawn])));
        assert!(decided(&job([Claim(1), Claim(2), Claim(3)])));
        // Decided: no claim can reach two of three.
        assert!(decided(&job([Withdrawn, Withdrawn, Pending])));
        assert!(decided(&job([Claim(1), Withdrawn, Withdrawn])));
    }
}
