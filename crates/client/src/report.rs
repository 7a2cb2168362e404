//! What a job went through, as the user's side saw it: the phases in order
//! and the report a finished job leaves, or the failure its nodes agreed on.

use std::time::Duration;

use peercloud_types::{Amount, Hash32, JobId, NodeId};

/// The phases of a run-once job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Module and inputs stored encrypted; escrow locked by `PostJob`.
    Queued,
    /// Offers collected, the auction run, `AwardJob` on the ledger.
    Matched,
    /// The awarded nodes fetch, verify and decrypt the inputs.
    Staging,
    /// The module runs in each node's sandbox.
    Running,
    /// Outputs stored, digests on the ledger, the job settled (or expired).
    Verifying,
    /// The outputs downloaded, checked against the agreed digest, decrypted.
    Settled,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 6] = [
        Phase::Queued,
        Phase::Matched,
        Phase::Staging,
        Phase::Running,
        Phase::Verifying,
        Phase::Settled,
    ];

    /// The phase's name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Matched => "matched",
            Phase::Staging => "staging",
            Phase::Running => "running",
            Phase::Verifying => "verifying",
            Phase::Settled => "settled",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What happened to one job.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's id on the ledger.
    pub job: JobId,
    /// The spec's name.
    pub name: String,
    /// Time spent in each phase, in [`Phase::ALL`] order.
    pub phases: Vec<(Phase, Duration)>,
    /// The awarded nodes.
    pub nodes: Vec<NodeId>,
    /// Payments made by the settlement.
    pub paid: Vec<(NodeId, Amount)>,
    /// Escrow returned to the user.
    pub refunded: Amount,
    /// The agreed output digest.
    pub digest: Hash32,
    /// Fuel the module burned.
    pub fuel: u64,
    /// The module's exit code: a nonzero one is a result too (the nodes
    /// agreed on it and were paid).
    pub exit_code: i32,
    /// The start of the module's stderr, as the node that reported the
    /// agreed result sent it (lossy UTF-8).
    pub stderr: String,
    /// The outputs, downloaded, verified and decrypted by the user.
    pub outputs: Vec<(String, Vec<u8>)>,
}

/// A job whose nodes agreed its module failed, the same way (out of fuel, a
/// trap, ...): a result, settled and paid like any other, with no outputs.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "job {job} ({name:?}) failed the same way on {agreeing} of {redundancy} nodes, which were \
     paid {} PCL ({refunded} PCL of the escrow refunded): {failure}",
    self.paid_total()
)]
pub struct FailedJob {
    /// The job's id on the ledger.
    pub job: JobId,
    /// The spec's name.
    pub name: String,
    /// Nodes whose result was the agreed failure.
    pub agreeing: usize,
    /// k.
    pub redundancy: u8,
    /// Payments made by the settlement.
    pub paid: Vec<(NodeId, Amount)>,
    /// Escrow returned to the user.
    pub refunded: Amount,
    /// How the module failed: the error, with the end of its stderr.
    pub failure: String,
}

impl FailedJob {
    /// What the settlement paid in all (saturating: an amount to show).
    pub fn paid_total(&self) -> Amount {
        self.paid.iter().fold(Amount::ZERO, |sum, (_, amount)| {
            sum.checked_add(*amount).unwrap_or(sum)
        })
    }
}
