//! Failed storage audits on the ledger: a cluster's members audit each
//! other (a challenge of a piece, answered with a proof checked against the
//! piece's CID, off the ledger) and report the failures here; enough
//! independent reports of one node in one audit epoch judge it.
//!
//! ```text
//!   ReportAudit { cluster, auditor, node, epoch, cid }   signed by auditor's owner
//!        │ checks: cluster, both active members, auditor ≠ node, the owner
//!        │         signs, epoch ∈ {current − 1, current}, not reported twice
//!        ▼
//!   audit_reports[epoch][node] += auditor     (ClusterRecord, in the state root)
//!        │ AuditReported
//!        ▼ auditors of AUDIT_REPORTS_TO_SLASH distinct owners?
//!   judged: slash_bps of its member stake ─► treasury, the rest ─► owner,
//!           it leaves the cluster, reputation − REPUTATION_PENALTY_AUDIT
//!           AuditFailed, MemberLeft, ReputationChanged
//! ```
//!
//! Rules chosen here:
//! - Only failures go on the ledger (missing, corrupt, a bad proof, no
//!   answer): a pass would cost a transaction per audit and change nothing.
//! - The audit epoch is the cluster's billing period counted from time
//!   zero: `epoch = block time / terms.billing_period_ms`. A report names
//!   the current epoch or the one before (its block may come late); any
//!   other is refused naming both. `SetTerms` clears the tally, since a new
//!   period renumbers the epochs (`clusters.rs`).
//! - Both nodes must be active members (a pending node holds nothing and
//!   audits nothing), distinct, and the signer must be the auditor's owner
//!   as the cluster recorded it at its join. The signer pays the fee.
//! - The tally records the auditor nodes per (epoch, node); one auditor
//!   reports one node once per epoch (a second report is refused, whatever
//!   piece it names). The pieces of the reports need not agree: failing two
//!   auditors on different pieces is as bad as on one.
//! - Judged once auditors of [`AUDIT_REPORTS_TO_SLASH`] distinct *owners*
//!   reported it (one farmer's two nodes count once): `slash_bps` of its
//!   member stake goes to the treasury (rounding down, the rule a job's
//!   dissenter is slashed by, [`slash_share`]), the rest back to its owner,
//!   and it leaves the cluster by the path every removal takes
//!   ([`remove_member`]), which drops the reports of it and by it (a report
//!   counts while its auditor is a member). It leaves whatever the
//!   cluster's open buckets: keeping a node that lost data helps no one
//!   (and it is never the last active member, the rule that holds back
//!   `LeaveCluster`: its auditors are active members too). It may join
//!   again (a fresh stake, and the managers must admit it again).
//! - The tally keeps only the current epoch and the one before: older ones
//!   are pruned whenever a report applies. A node's entry never holds
//!   auditors of [`AUDIT_REPORTS_TO_SLASH`] owners (that report judges it
//!   and drops the entry), so a cluster's tally is at most two epochs × its
//!   members × its members.
//!
//! What the ledger cannot check: whether `cid` is a piece of one of the
//! cluster's buckets and whether `node` was meant to hold it (a bucket's
//! object index is not ledger state), nor the audit itself. A report is a
//! member's word, recorded with its piece for anyone to re-audit; the
//! quorum is the defence. It assumes, as the index does, that a majority of
//! each bucket's index replicas is honest: two colluding owners can judge
//! a third node. The managers, who admit members, are the check on that.

use peercloud_types::{AccountId, ContentId, NodeId};

use crate::clusters::{cluster_record, remove_member};
use crate::context::BlockContext;
use crate::error::TxError;
use crate::event::{Event, StorageEvent};
use crate::funds::slash_share;
use crate::params::AUDIT_REPORTS_TO_SLASH;
use crate::records::ReputationReason;
use crate::reputation;
use crate::state::State;
use crate::storage_error::StorageError;
use crate::storage_records::{ClusterId, ClusterRecord, Member, MemberStatus};

/// The fields of a `ReportAudit` transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report {
    pub(crate) cluster: ClusterId,
    pub(crate) auditor: NodeId,
    pub(crate) node: NodeId,
    pub(crate) epoch: u64,
    pub(crate) cid: ContentId,
}

/// Whether a report for `epoch` is accepted in `current`: the same epoch or
/// the one before. Also what the tally keeps.
fn reportable(epoch: u64, current: u64) -> bool {
    epoch == current || epoch.checked_add(1) == Some(current)
}

/// `node`'s membership if it is active.
fn active(record: &ClusterRecord, node: &NodeId) -> Option<Member> {
    record
        .members
        .get(node)
        .copied()
        .filter(|m| m.status == MemberStatus::Active)
}

/// Records a failed audit and judges the node once enough distinct
/// auditors reported it in the epoch.
pub(crate) fn report(
    state: &mut State,
    signer: &AccountId,
    report: &Report,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let Report {
        cluster,
        auditor,
        node,
        epoch,
        cid,
    } = *report;
    let mut record = cluster_record(state, &cluster)?;
    let auditor_member =
        active(&record, &auditor).ok_or(StorageError::AuditorNotActive { cluster, auditor })?;
    if auditor_member.owner != *signer {
        return Err(StorageError::NotAuditorOwner {
            auditor,
            owner: auditor_member.owner,
            signer: *signer,
        }
        .into());
    }
    if auditor == node {
        return Err(StorageError::SelfAudit { cluster, node }.into());
    }
    if active(&record, &node).is_none() {
        return Err(StorageError::AuditedNotActive { cluster, node }.into());
    }
    // Validated terms have a period of at least BILLING_PERIOD_MS_MIN.
    let current = ctx
        .time_ms
        .checked_div(record.terms.billing_period_ms)
        .ok_or(TxError::Overflow {
            what: "an audit epoch",
        })?;
    if !reportable(epoch, current) {
        return Err(StorageError::AuditEpochOutOfRange {
            cluster,
            epoch,
            current,
        }
        .into());
    }
    record
        .audit_reports
        .retain(|kept, _| reportable(*kept, current));
    let auditors = record
        .audit_reports
        .entry(epoch)
        .or_default()
        .entry(node)
        .or_default();
    if !auditors.insert(auditor) {
        return Err(StorageError::AuditAlreadyReported {
            cluster,
            auditor,
            node,
            epoch,
        }
        .into());
    }
    let reporters = auditors.clone();
    // Distinct owners, not nodes: one farmer with two member nodes cannot
    // judge a third node alone.
    let owners: std::collections::BTreeSet<_> = reporters
        .iter()
        .filter_map(|a| record.members.get(a).map(|m| m.owner))
        .collect();
    let judged = owners.len() >= AUDIT_REPORTS_TO_SLASH;
    events.push(Event::Storage(StorageEvent::AuditReported {
        cluster,
        auditor,
        node,
        epoch,
        cid,
    }));
    if judged {
        judge(state, &mut record, &cluster, &node, epoch, events)?;
    }
    state.clusters.put(cluster, record);
    Ok(())
}

/// Slashes `node`'s member stake, returns the rest, takes it out of
/// `record` (the caller writes it back) and lowers its reputation.
fn judge(
    state: &mut State,
    record: &mut ClusterRecord,
    cluster: &ClusterId,
    node: &NodeId,
    epoch: u64,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let stake =
        record
            .members
            .get(node)
            .map(|m| m.stake)
            .ok_or(StorageError::AuditedNotActive {
                cluster: *cluster,
                node: *node,
            })?;
    let slashed = slash_share(state, stake)?;
    let returned = stake
        .checked_sub(slashed)
        .ok_or(TxError::Overflow { what: "a slash" })?;
    events.push(Event::Storage(StorageEvent::AuditFailed {
        cluster: *cluster,
        node: *node,
        epoch,
        slashed,
        returned,
    }));
    remove_member(state, record, cluster, node, slashed, events)?;
    lower_reputation(state, node, events);
    Ok(())
}

/// Takes [`REPUTATION_PENALTY_AUDIT`] from `node`'s reputation (not below 0).
fn lower_reputation(state: &mut State, node: &NodeId, events: &mut Vec<Event>) {
    reputation::change(state, node, ReputationReason::AuditFailed, 1, events);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_epoch_and_the_one_before_are_reportable() {
        assert!(reportable(7, 7));
        assert!(reportable(6, 7));
        assert!(!reportable(5, 7));
        assert!(!reportable(8, 7));
        assert!(reportable(0, 0));
        assert!(!reportable(u64::MAX, 0));
        assert!(reportable(u64::MAX, u64::MAX));
    }
}
