//! The closer: a job must not stay open because its poster went away. The
//! poster normally settles the moment the results are in; if it does not
//! (its CLI was killed, its machine went offline), the nodes close the job
//! themselves, so escrow returns and the farmers' stake is unbound:
//!
//! - a node awarded the job settles it once every result is in and the
//!   poster has had [`SETTLE_GRACE_MS`] to do it, or once the deadline has
//!   passed (settled when a majority exists, expired otherwise);
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
        match record.state {
            JobState::Awarded if record.awards.iter().any(|a| a.node == me) => {
                if past_deadline {
                    due.push((
                        job,
                        vec![TxKind::SettleJob { job }, TxKind::ExpireJob { job }],
                    ));
                } else if all_results_in(record) {
                    let since = *settleable_since.get(&job).unwrap_or(&now);
                    still_settleable.insert(job, since);
                    if now >= since + SETTLE_GRACE_MS {
                        due.push((job, vec![TxKind::SettleJob { job }]));
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

fn all_results_in(record: &JobRecord) -> bool {
    record.awards.iter().all(|a| a.result.is_some())
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
