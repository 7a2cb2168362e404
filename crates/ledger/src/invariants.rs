//! The ledger's invariants, checked after every applied transaction in
//! debug builds and by tests: supply conserved (balances, stakes, job
//! escrow, cluster member stakes, bucket deposits and lease escrow add up
//! to what genesis minted), escrow and deposits never over-released, closed
//! jobs, buckets and leases hold nothing, every billed lease period paid or
//! credited once, counters agree with the records they count, audit
//! tallies hold only active members short of a judgement.

use std::collections::BTreeMap;

use peercloud_types::{AccountId, Amount, JobId, LeaseId, NodeId};

use crate::lease_records::LeaseRecord;
use crate::params::AUDIT_REPORTS_TO_SLASH;
use crate::records::JobRecord;
use crate::state::State;
use crate::storage_records::{BucketId, ClusterId, ClusterRecord, MemberStatus};

/// A broken ledger invariant: a bug, never a user error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantError {
    /// Balances, stakes and escrow do not add up to what genesis minted.
    #[error("supply is not conserved: {held:?} held, {minted:?} minted")]
    SupplyNotConserved {
        /// Sum of balances, stakes and escrow.
        held: Amount,
        /// Minted at genesis.
        minted: Amount,
    },
    /// A sum overflowed u128 (impossible while supply is conserved).
    #[error("overflow summing {what}")]
    Overflow {
        /// What was summed.
        what: &'static str,
    },
    /// A job released more escrow than it locked.
    #[error("job {job} released {released:?}, more than the {locked:?} it locked")]
    EscrowOverReleased {
        /// The job.
        job: JobId,
        /// Locked.
        locked: Amount,
        /// Released.
        released: Amount,
    },
    /// A closed job still holds escrow.
    #[error("closed job {job} still holds {held:?} of escrow")]
    ClosedJobHoldsEscrow {
        /// The job.
        job: JobId,
        /// Held.
        held: Amount,
    },
    /// An awarded job's award count is not its redundancy.
    #[error("job {job} has {awards} awards, its redundancy is {redundancy}")]
    AwardCount {
        /// The job.
        job: JobId,
        /// Awards.
        awards: usize,
        /// Redundancy.
        redundancy: u8,
    },
    /// An award both withdrew and submitted a result.
    #[error("job {job}: node {node} both withdrew and submitted a result")]
    WithdrawnWithResult {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
    },
    /// An account's count of open awards disagrees with the jobs.
    #[error("{account} records {recorded} open awards, the jobs hold {counted}")]
    BoundAwards {
        /// The account.
        account: AccountId,
        /// What the account records.
        recorded: u32,
        /// What the open jobs hold.
        counted: u32,
    },
    /// A reputation outside the scale.
    #[error("node {node} has reputation {reputation}, above the maximum")]
    Reputation {
        /// The node.
        node: NodeId,
        /// Its reputation.
        reputation: u32,
    },
    /// A bucket paid or refunded more than was deposited into it.
    #[error("{bucket} released {released:?}, more than the {deposited:?} deposited")]
    BucketOverReleased {
        /// The bucket.
        bucket: BucketId,
        /// Deposited.
        deposited: Amount,
        /// Released.
        released: Amount,
    },
    /// A closed or expired bucket still holds a deposit.
    #[error("closed {bucket} still holds {held:?}")]
    ClosedBucketHoldsDeposit {
        /// The bucket.
        bucket: BucketId,
        /// Held.
        held: Amount,
    },
    /// A cluster's failed-audit tally holds an entry it should not: for a
    /// node that is no active member, or with enough auditors to have
    /// judged it.
    #[error("{cluster}'s audit tally of epoch {epoch} holds node {node}, which {reason}")]
    AuditTally {
        /// The cluster.
        cluster: ClusterId,
        /// The epoch.
        epoch: u64,
        /// The node.
        node: NodeId,
        /// What is wrong with the entry.
        reason: &'static str,
    },
    /// A cluster's count of open buckets disagrees with the buckets.
    #[error("{cluster} records {recorded} open buckets, the buckets table holds {counted}")]
    OpenBuckets {
        /// The cluster.
        cluster: ClusterId,
        /// What the cluster records.
        recorded: u32,
        /// What the buckets hold.
        counted: u32,
    },
    /// A lease paid and refunded more than was deposited into it.
    #[error("{lease} paid {paid:?} and refunded {refunded:?} of {deposited:?} deposited")]
    LeaseOverReleased {
        /// The lease.
        lease: LeaseId,
        /// Deposited, ever.
        deposited: Amount,
        /// Paid to the node.
        paid: Amount,
        /// Refunded to the user.
        refunded: Amount,
    },
    /// A lease's record disagrees with itself.
    #[error("{lease}: {reason}")]
    Lease {
        /// The lease.
        lease: LeaseId,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The ledger's invariant checks.
impl State {
    /// Every token the state holds: balances, stakes, the escrow jobs
    /// still hold, cluster members' stakes and bucket deposits. Equal to [`State::minted_supply`] while the books balance.
    pub fn held_supply(&self) -> Result<Amount, InvariantError> {
        let overflow = |what| InvariantError::Overflow { what };
        let mut held = Amount::ZERO;
        for (_, account) in self.accounts.iter() {
            held = held
                .checked_add(account.balance)
                .and_then(|h| h.checked_add(account.stake))
                .ok_or(overflow("balances and stakes"))?;
        }
        for (job, record) in self.jobs.iter() {
            let escrow = escrow_held(job, record)?;
            held = held.checked_add(escrow).ok_or(overflow("escrow"))?;
        }
        for (_, cluster) in self.clusters.iter() {
            for member in cluster.members.values() {
                held = held
                    .checked_add(member.stake)
                    .ok_or(overflow("member stakes"))?;
            }
        }
        for (bucket, record) in self.buckets.iter() {
            let deposit = record.deposit().ok_or(InvariantError::BucketOverReleased {
                bucket: *bucket,
                deposited: record.deposited,
                released: record.released,
            })?;
            held = held
                .checked_add(deposit)
                .ok_or(overflow("bucket deposits"))?;
        }
        for (lease, record) in self.leases.iter() {
            held = held
                .checked_add(lease_held(lease, record)?)
                .ok_or(overflow("lease escrow"))?;
        }
        Ok(held)
    }

    /// Checks the ledger's invariants: supply conserved, escrow never
    /// over-released, closed jobs hold nothing, open awards counted right,
    /// reputations on the scale. O(state).
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let overflow = |what| InvariantError::Overflow { what };
        let held = self.held_supply()?;
        let mut bound: BTreeMap<AccountId, u32> = BTreeMap::new();
        for (job, record) in self.jobs.iter() {
            let escrow = escrow_held(job, record)?;
            if record.state.is_closed() && !escrow.is_zero() {
                return Err(InvariantError::ClosedJobHoldsEscrow {
                    job: *job,
                    held: escrow,
                });
            }
            if !record.state.is_closed() && !record.awards.is_empty() {
                if record.awards.len() != usize::from(record.redundancy) {
                    return Err(InvariantError::AwardCount {
                        job: *job,
                        awards: record.awards.len(),
                        redundancy: record.redundancy,
                    });
                }
                for award in &record.awards {
                    if award.withdrawn && award.result.is_some() {
                        return Err(InvariantError::WithdrawnWithResult {
                            job: *job,
                            node: award.node,
                        });
                    }
                    let count = bound.entry(award.owner).or_default();
                    *count = count.checked_add(1).ok_or(overflow("open awards"))?;
                }
            }
        }
        let minted = self.minted_supply();
        if held != minted {
            return Err(InvariantError::SupplyNotConserved { held, minted });
        }
        for (id, account) in self.accounts.iter() {
            let counted = bound.get(id).copied().unwrap_or(0);
            if account.bound_awards != counted {
                return Err(InvariantError::BoundAwards {
                    account: *id,
                    recorded: account.bound_awards,
                    counted,
                });
            }
        }
        self.check_storage()?;
        for (lease, record) in self.leases.iter() {
            check_lease(lease, record)?;
        }
        for (node, record) in self.nodes.iter() {
            if record.reputation > peercloud_types::job::REPUTATION_MAX {
                return Err(InvariantError::Reputation {
                    node: *node,
                    reputation: record.reputation,
                });
            }
        }
        Ok(())
    }

    /// Buckets never release more than was deposited, closed buckets hold
    /// nothing, each cluster counts its open buckets right.
    fn check_storage(&self) -> Result<(), InvariantError> {
        let mut open: BTreeMap<ClusterId, u32> = BTreeMap::new();
        for (bucket, record) in self.buckets.iter() {
            let held = record.deposit().ok_or(InvariantError::BucketOverReleased {
                bucket: *bucket,
                deposited: record.deposited,
                released: record.released,
            })?;
            if record.status.is_closed() {
                if !held.is_zero() {
                    return Err(InvariantError::ClosedBucketHoldsDeposit {
                        bucket: *bucket,
                        held,
                    });
                }
            } else {
                let count = open.entry(record.cluster).or_default();
                *count = count.checked_add(1).ok_or(InvariantError::Overflow {
                    what: "open buckets",
                })?;
            }
        }
        for (cluster, record) in self.clusters.iter() {
            check_audit_tally(cluster, record)?;
            let counted = open.get(cluster).copied().unwrap_or(0);
            if record.open_buckets != counted {
                return Err(InvariantError::OpenBuckets {
                    cluster: *cluster,
                    recorded: record.open_buckets,
                    counted,
                });
            }
        }
        Ok(())
    }
}

/// Every node in `record`'s failed-audit tally is an active member that
/// auditors of fewer than `AUDIT_REPORTS_TO_SLASH` distinct owners reported
/// (the report that reaches it judges and removes the node, its entries
/// with it).
fn check_audit_tally(cluster: &ClusterId, record: &ClusterRecord) -> Result<(), InvariantError> {
    for (epoch, reports) in &record.audit_reports {
        for (node, auditors) in reports {
            let active = record
                .members
                .get(node)
                .is_some_and(|m| m.status == MemberStatus::Active);
            let reason = if !active {
                "is not an active member"
            } else if auditors
                .iter()
                .filter_map(|a| record.members.get(a).map(|m| m.owner))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= AUDIT_REPORTS_TO_SLASH
            {
                "has enough auditors to have been judged"
            } else if auditors.is_empty() {
                "has no auditor"
            } else {
                continue;
            };
            return Err(InvariantError::AuditTally {
                cluster: *cluster,
                epoch: *epoch,
                node: *node,
                reason,
            });
        }
    }
    Ok(())
}

/// What `lease` still holds, or the invariant it breaks.
fn lease_held(lease: &LeaseId, record: &LeaseRecord) -> Result<Amount, InvariantError> {
    record.held().ok_or(InvariantError::LeaseOverReleased {
        lease: *lease,
        deposited: record.deposited,
        paid: record.paid,
        refunded: record.refunded,
    })
}

/// A final lease holds nothing; each billed period was paid or credited
/// once; billing never runs past the lease's periods.
fn check_lease(lease: &LeaseId, record: &LeaseRecord) -> Result<(), InvariantError> {
    let fail = |reason| InvariantError::Lease {
        lease: *lease,
        reason,
    };
    let held = lease_held(lease, record)?;
    if record.status.is_final() && !held.is_zero() {
        return Err(fail("is over but still holds tokens"));
    }
    if record.periods_up.checked_add(record.periods_down) != Some(record.next_period) {
        return Err(fail(
            "its periods up and down do not add up to the periods billed",
        ));
    }
    if let Some(total) = record.periods_total()
        && record.next_period > total
    {
        return Err(fail("is billed past its end"));
    }
    if record.since_ms().is_some() && held < record.unbilled_cost().unwrap_or(Amount::ZERO) {
        return Err(fail("holds less than its unbilled periods cost"));
    }
    Ok(())
}

/// What `job` still holds in escrow, or the invariant it breaks.
fn escrow_held(job: &JobId, record: &JobRecord) -> Result<Amount, InvariantError> {
    record
        .escrow_held()
        .ok_or(InvariantError::EscrowOverReleased {
            job: *job,
            locked: record.escrow_locked,
            released: record.escrow_released,
        })
}
