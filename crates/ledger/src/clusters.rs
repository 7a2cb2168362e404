//! Clusters on the ledger: created with their managers (an m-of-n multisig
//! of accounts) and terms; nodes join by locking the terms' stake and wait
//! for the managers to admit them; the managers decide on chain (propose,
//! approve; a decision executes once, when its approvals reach the
//! threshold); a member's owner may take it out again.
//!
//! Rules chosen here:
//! - `SetTerms` is refused while the cluster has open buckets (their bills
//!   never see terms change under them); members keep the stake they locked.
//! - A member leaves (or is removed) with its whole stake back. The last
//!   active member may not leave while the cluster has open buckets (their
//!   data would have no holder); the managers may still remove it. A member
//!   judged by its audits leaves through the same path, less a slash
//!   (`audits.rs`).
//! - `SetTerms` clears the failed-audit tally: a new billing period
//!   renumbers the audit epochs.
//! - A proposal goes stale `PROPOSAL_TTL_MS` after it was made; stale ones
//!   are dropped when the next proposal is made.

use std::collections::BTreeMap;

use peercloud_types::{AccountId, Amount, NodeId};

use crate::context::BlockContext;
use crate::error::TxError;
use crate::event::{Event, StorageEvent};
use crate::funds::{credit, debit};
use crate::params::{
    BILLING_PERIOD_MS_MAX, BILLING_PERIOD_MS_MIN, CAPACITY_BYTES_MAX, CAPACITY_BYTES_MIN,
    CLUSTER_MANAGERS_MAX, CLUSTER_MEMBERS_MAX, GRACE_MS_MAX, MANAGER_FEE_BPS_MAX, PROPOSAL_TTL_MS,
    PROPOSALS_OPEN_MAX, REPLICAS_MAX, RS_DATA_MAX, RS_PARITY_MAX, STORAGE_PRICE_MAX,
};
use crate::state::State;
use crate::storage_error::StorageError;
use crate::storage_records::{
    ClusterAction, ClusterId, ClusterRecord, ClusterTerms, Member, MemberStatus, Proposal,
    Redundancy,
};

/// Checks every field of `terms` against its bounds.
pub(crate) fn validate_terms(terms: &ClusterTerms) -> Result<(), StorageError> {
    match terms.redundancy {
        Redundancy::Replicas(replicas) => {
            if replicas == 0 || replicas > REPLICAS_MAX {
                return Err(StorageError::BadReplicas {
                    replicas,
                    max: REPLICAS_MAX,
                });
            }
        }
        Redundancy::ReedSolomon { data, parity } => {
            if data == 0 || data > RS_DATA_MAX || parity == 0 || parity > RS_PARITY_MAX {
                return Err(StorageError::BadReedSolomon {
                    data,
                    parity,
                    data_max: RS_DATA_MAX,
                    parity_max: RS_PARITY_MAX,
                });
            }
        }
    }
    for (what, price) in [
        ("price per GiB-month", terms.price_per_gib_month),
        ("price per GiB served", terms.price_per_gib_served),
    ] {
        if price > STORAGE_PRICE_MAX {
            return Err(StorageError::PriceTooHigh {
                what,
                price,
                max: STORAGE_PRICE_MAX,
            });
        }
    }
    if terms.manager_fee_bps > MANAGER_FEE_BPS_MAX {
        return Err(StorageError::FeeTooHigh {
            bps: terms.manager_fee_bps,
            max: MANAGER_FEE_BPS_MAX,
        });
    }
    if !(BILLING_PERIOD_MS_MIN..=BILLING_PERIOD_MS_MAX).contains(&terms.billing_period_ms) {
        return Err(StorageError::BillingPeriodOutOfRange {
            period_ms: terms.billing_period_ms,
            min: BILLING_PERIOD_MS_MIN,
            max: BILLING_PERIOD_MS_MAX,
        });
    }
    if !(terms.billing_period_ms..=GRACE_MS_MAX).contains(&terms.grace_ms) {
        return Err(StorageError::GraceOutOfRange {
            grace_ms: terms.grace_ms,
            min: terms.billing_period_ms,
            max: GRACE_MS_MAX,
        });
    }
    Ok(())
}

/// `cluster`'s record, or why there is none.
pub(crate) fn cluster_record(
    state: &State,
    cluster: &ClusterId,
) -> Result<ClusterRecord, StorageError> {
    state
        .cluster(cluster)
        .cloned()
        .ok_or(StorageError::UnknownCluster { cluster: *cluster })
}

pub(crate) fn create(
    state: &mut State,
    creator: &AccountId,
    nonce: u64,
    managers: &[AccountId],
    threshold: u8,
    terms: &ClusterTerms,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if managers.is_empty() || managers.len() > CLUSTER_MANAGERS_MAX {
        return Err(StorageError::ManagerCount {
            count: managers.len(),
            max: CLUSTER_MANAGERS_MAX,
        }
        .into());
    }
    for (index, manager) in managers.iter().enumerate() {
        if managers[..index].contains(manager) {
            return Err(StorageError::DuplicateManager { manager: *manager }.into());
        }
        if !manager.key().is_usable() {
            return Err(TxError::UnusableAccount { account: *manager });
        }
    }
    if threshold == 0 || usize::from(threshold) > managers.len() {
        return Err(StorageError::BadThreshold {
            threshold,
            managers: managers.len(),
        }
        .into());
    }
    validate_terms(terms)?;
    let cluster = ClusterId::derive(creator, nonce);
    if state.cluster(&cluster).is_some() {
        return Err(StorageError::ClusterExists { cluster }.into());
    }
    let record = ClusterRecord {
        creator: *creator,
        managers: managers.to_vec(),
        threshold,
        terms: *terms,
        members: BTreeMap::new(),
        proposals: BTreeMap::new(),
        next_proposal: 0,
        open_buckets: 0,
        audit_reports: BTreeMap::new(),
    };
    state.clusters.put(cluster, record);
    events.push(Event::Storage(StorageEvent::ClusterCreated {
        cluster,
        creator: *creator,
    }));
    Ok(())
}

pub(crate) fn join(
    state: &mut State,
    signer: &AccountId,
    cluster: &ClusterId,
    node: &NodeId,
    capacity_bytes: u64,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = cluster_record(state, cluster)?;
    let owner = state
        .node(node)
        .map(|n| n.owner)
        .ok_or(TxError::UnknownNode { node: *node })?;
    if owner != *signer {
        return Err(TxError::NotOwner {
            node: *node,
            owner,
            signer: *signer,
        });
    }
    if record.members.contains_key(node) {
        return Err(StorageError::AlreadyMember {
            cluster: *cluster,
            node: *node,
        }
        .into());
    }
    if !(CAPACITY_BYTES_MIN..=CAPACITY_BYTES_MAX).contains(&capacity_bytes) {
        return Err(StorageError::CapacityOutOfRange {
            capacity: capacity_bytes,
            min: CAPACITY_BYTES_MIN,
            max: CAPACITY_BYTES_MAX,
        }
        .into());
    }
    if record.members.len() >= CLUSTER_MEMBERS_MAX {
        return Err(StorageError::TooManyMembers {
            cluster: *cluster,
            max: CLUSTER_MEMBERS_MAX,
        }
        .into());
    }
    let stake = record.terms.node_stake;
    debit(state, signer, stake)?;
    record.members.insert(
        *node,
        Member {
            owner,
            capacity_bytes,
            stake,
            status: MemberStatus::Pending,
        },
    );
    state.clusters.put(*cluster, record);
    events.push(Event::Storage(StorageEvent::MemberJoined {
        cluster: *cluster,
        node: *node,
        stake,
    }));
    Ok(())
}

fn expect_manager(
    record: &ClusterRecord,
    cluster: &ClusterId,
    signer: &AccountId,
) -> Result<(), StorageError> {
    if !record.is_manager(signer) {
        return Err(StorageError::NotManager {
            cluster: *cluster,
            signer: *signer,
        });
    }
    Ok(())
}

pub(crate) fn propose(
    state: &mut State,
    signer: &AccountId,
    cluster: &ClusterId,
    action: &ClusterAction,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = cluster_record(state, cluster)?;
    expect_manager(&record, cluster, signer)?;
    record
        .proposals
        .retain(|_, p| ctx.time_ms < p.proposed_ms.saturating_add(PROPOSAL_TTL_MS));
    if record.proposals.len() >= PROPOSALS_OPEN_MAX {
        return Err(StorageError::TooManyProposals {
            cluster: *cluster,
            max: PROPOSALS_OPEN_MAX,
        }
        .into());
    }
    // Refuse now what could never execute.
    check_action(&record, cluster, action)?;
    let proposal = record.next_proposal;
    record.next_proposal = proposal.checked_add(1).ok_or(TxError::Overflow {
        what: "proposal ids",
    })?;
    events.push(Event::Storage(StorageEvent::ClusterProposed {
        cluster: *cluster,
        proposal,
        action: *action,
    }));
    if usize::from(record.threshold) <= 1 {
        execute(state, &mut record, cluster, proposal, action, events)?;
    } else {
        record.proposals.insert(
            proposal,
            Proposal {
                action: *action,
                approvals: vec![*signer],
                proposed_ms: ctx.time_ms,
            },
        );
    }
    state.clusters.put(*cluster, record);
    Ok(())
}

pub(crate) fn approve(
    state: &mut State,
    signer: &AccountId,
    cluster: &ClusterId,
    proposal: u64,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = cluster_record(state, cluster)?;
    expect_manager(&record, cluster, signer)?;
    if proposal >= record.next_proposal {
        return Err(StorageError::UnknownProposal {
            cluster: *cluster,
            proposal,
        }
        .into());
    }
    let mut open =
        record
            .proposals
            .get(&proposal)
            .cloned()
            .ok_or(StorageError::ProposalClosed {
                cluster: *cluster,
                proposal,
            })?;
    let stale_ms = open.proposed_ms.saturating_add(PROPOSAL_TTL_MS);
    if ctx.time_ms >= stale_ms {
        return Err(StorageError::ProposalStale {
            cluster: *cluster,
            proposal,
            stale_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    if open.approvals.contains(signer) {
        return Err(StorageError::AlreadyApproved {
            cluster: *cluster,
            proposal,
            manager: *signer,
        }
        .into());
    }
    open.approvals.push(*signer);
    events.push(Event::Storage(StorageEvent::ClusterApproved {
        cluster: *cluster,
        proposal,
        manager: *signer,
    }));
    if open.approvals.len() >= usize::from(record.threshold) {
        record.proposals.remove(&proposal);
        execute(state, &mut record, cluster, proposal, &open.action, events)?;
    } else {
        record.proposals.insert(proposal, open);
    }
    state.clusters.put(*cluster, record);
    Ok(())
}

/// Whether `action` can execute on `record` now.
fn check_action(
    record: &ClusterRecord,
    cluster: &ClusterId,
    action: &ClusterAction,
) -> Result<(), StorageError> {
    match action {
        ClusterAction::Admit(node) => match record.members.get(node) {
            None => Err(StorageError::NotMember {
                cluster: *cluster,
                node: *node,
            }),
            Some(member) if member.status != MemberStatus::Pending => {
                Err(StorageError::MemberNotPending {
                    cluster: *cluster,
                    node: *node,
                })
            }
            Some(_) => Ok(()),
        },
        ClusterAction::Remove(node) => {
            if record.members.contains_key(node) {
                Ok(())
            } else {
                Err(StorageError::NotMember {
                    cluster: *cluster,
                    node: *node,
                })
            }
        }
        ClusterAction::SetTerms(terms) => {
            validate_terms(terms)?;
            if record.open_buckets > 0 {
                return Err(StorageError::TermsLocked {
                    cluster: *cluster,
                    open_buckets: record.open_buckets,
                });
            }
            Ok(())
        }
    }
}

/// Carries out an approved decision on `record` (the caller writes it back).
fn execute(
    state: &mut State,
    record: &mut ClusterRecord,
    cluster: &ClusterId,
    proposal: u64,
    action: &ClusterAction,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    check_action(record, cluster, action)?;
    match action {
        ClusterAction::Admit(node) => {
            if let Some(member) = record.members.get_mut(node) {
                member.status = MemberStatus::Active;
            }
        }
        ClusterAction::Remove(node) => {
            remove_member(state, record, cluster, node, Amount::ZERO, events)?;
        }
        ClusterAction::SetTerms(terms) => {
            // A new billing period renumbers the audit epochs: reports
            // counted under the old numbering would mix with the new.
            record.terms = *terms;
            record.audit_reports.clear();
        }
    }
    events.push(Event::Storage(StorageEvent::ClusterDecided {
        cluster: *cluster,
        proposal,
        action: *action,
    }));
    Ok(())
}

/// Takes `node` out of `record` (the caller writes the record back): the
/// one way a member leaves, by a decision (`Remove`), by its owner
/// (`LeaveCluster`) or judged by its audits (`ReportAudit`). `slashed` of
/// its stake goes to the treasury, the rest back to its owner, so the whole
/// stake is accounted for; the reports against it go with it (a node that
/// joins again starts with none).
pub(crate) fn remove_member(
    state: &mut State,
    record: &mut ClusterRecord,
    cluster: &ClusterId,
    node: &NodeId,
    slashed: Amount,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let member = record.members.remove(node).ok_or(StorageError::NotMember {
        cluster: *cluster,
        node: *node,
    })?;
    let returned = member
        .stake
        .checked_sub(slashed)
        .ok_or(TxError::Overflow { what: "a slash" })?;
    if !slashed.is_zero() {
        let treasury = state.params().treasury;
        credit(state, &treasury, slashed)?;
    }
    credit(state, &member.owner, returned)?;
    // Its reports go with it, as the audited and as an auditor: a report
    // counts while its auditor is a member, and one kept would count again,
    // unjudged, if the auditor came back.
    for reports in record.audit_reports.values_mut() {
        reports.remove(node);
        for auditors in reports.values_mut() {
            auditors.remove(node);
        }
        reports.retain(|_, auditors| !auditors.is_empty());
    }
    record
        .audit_reports
        .retain(|_, reports| !reports.is_empty());
    events.push(Event::Storage(StorageEvent::MemberLeft {
        cluster: *cluster,
        node: *node,
        stake: returned,
    }));
    Ok(())
}

pub(crate) fn leave(
    state: &mut State,
    signer: &AccountId,
    cluster: &ClusterId,
    node: &NodeId,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = cluster_record(state, cluster)?;
    let member = record
        .members
        .get(node)
        .copied()
        .ok_or(StorageError::NotMember {
            cluster: *cluster,
            node: *node,
        })?;
    if member.owner != *signer {
        return Err(TxError::NotOwner {
            node: *node,
            owner: member.owner,
            signer: *signer,
        });
    }
    let active = record
        .members
        .values()
        .filter(|m| m.status == MemberStatus::Active)
        .count();
    if member.status == MemberStatus::Active && active == 1 && record.open_buckets > 0 {
        return Err(StorageError::LastMember {
            cluster: *cluster,
            node: *node,
            open_buckets: record.open_buckets,
        }
        .into());
    }
    remove_member(state, &mut record, cluster, node, Amount::ZERO, events)?;
    state.clusters.put(*cluster, record);
    Ok(())
}
