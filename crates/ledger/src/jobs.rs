//! The job life cycle on the ledger: post (escrow locks), award (k signed
//! offers bind), submit (each node's result) or withdraw (a node says it will
//! not deliver), then exactly one of settle (majority paid, the rest
//! refunded, dissenters slashed) or expire (all refunded). A job past its
//! deadline can always be closed by one of the two; so can a job whose
//! awards have all answered with a majority (settle) or that can no longer
//! reach a majority (expire), without waiting for the deadline. A closed job
//! never pays again: escrow released never exceeds escrow locked.

use std::collections::BTreeSet;

use peercloud_types::job::{DEADLINE_SECS_MAX, REDUNDANCY_MAX};
use peercloud_types::{AccountId, Amount, Hash32, JobId, NodeId, Offer, Signed};

use crate::context::BlockContext;
use crate::error::TxError;
use crate::event::Event;
use crate::funds::{account_or_default, credit, debit, slash_share};
use crate::records::{Award, JobRecord, JobState, ReputationReason, ResultClaim};
use crate::reputation;
use crate::state::State;

/// The longest a job may run: its deadline at most this far after the block
/// that posts it (the job spec's own bound, in ms).
const DEADLINE_LEAD_MS_MAX: u64 = DEADLINE_SECS_MAX * 1000;

/// The fields of a `PostJob` transaction.
pub(crate) struct Post {
    pub(crate) spec_digest: Hash32,
    pub(crate) redundancy: u8,
    pub(crate) max_price_per_node: Amount,
    pub(crate) deadline_ms: u64,
}

pub(crate) fn post(
    state: &mut State,
    poster: &AccountId,
    nonce: u64,
    post: Post,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if post.redundancy == 0 || post.redundancy > REDUNDANCY_MAX {
        return Err(TxError::BadRedundancy {
            redundancy: post.redundancy,
            max: REDUNDANCY_MAX,
        });
    }
    if post.max_price_per_node.is_zero() {
        // Nothing would be locked, nobody could be paid, and the record
        // would outlive every settlement rule.
        return Err(TxError::ZeroAmount {
            what: "job's price per node",
        });
    }
    if post.deadline_ms <= ctx.time_ms {
        return Err(TxError::DeadlineNotInFuture {
            deadline_ms: post.deadline_ms,
            time_ms: ctx.time_ms,
        });
    }
    if post.deadline_ms - ctx.time_ms > DEADLINE_LEAD_MS_MAX {
        return Err(TxError::DeadlineTooFar {
            deadline_ms: post.deadline_ms,
            time_ms: ctx.time_ms,
            max_ms: DEADLINE_LEAD_MS_MAX,
        });
    }
    let job = JobId::derive(poster, nonce);
    if state.job(&job).is_some() {
        return Err(TxError::JobExists { job });
    }
    let escrow = post
        .max_price_per_node
        .checked_mul(u128::from(post.redundancy))
        .ok_or(TxError::Overflow {
            what: "the job's escrow",
        })?;
    debit(state, poster, escrow)?;
    let record = JobRecord {
        poster: *poster,
        spec_digest: post.spec_digest,
        redundancy: post.redundancy,
        max_price_per_node: post.max_price_per_node,
        posted_ms: ctx.time_ms,
        deadline_ms: post.deadline_ms,
        escrow_locked: escrow,
        escrow_released: Amount::ZERO,
        state: JobState::Posted,
        awards: Vec::new(),
        agreed: None,
    };
    state.jobs.put(job, record);
    events.push(Event::JobPosted {
        job,
        poster: *poster,
        escrow,
    });
    Ok(())
}

fn job_record(state: &State, job: &JobId) -> Result<JobRecord, TxError> {
    state
        .job(job)
        .cloned()
        .ok_or(TxError::UnknownJob { job: *job })
}

fn expect_poster(record: &JobRecord, job: &JobId, signer: &AccountId) -> Result<(), TxError> {
    if record.poster != *signer {
        return Err(TxError::NotPoster {
            job: *job,
            poster: record.poster,
            signer: *signer,
        });
    }
    Ok(())
}

fn expect_state(record: &JobRecord, job: &JobId, wanted: JobState) -> Result<(), TxError> {
    if record.state != wanted {
        let expected = match wanted {
            JobState::Posted => "posted",
            JobState::Awarded => "awarded",
            JobState::Settled => "settled",
            JobState::Expired => "expired",
            JobState::Cancelled => "cancelled",
        };
        return Err(TxError::WrongJobState {
            job: *job,
            state: record.state,
            expected,
        });
    }
    Ok(())
}

pub(crate) fn award(
    state: &mut State,
    signer: &AccountId,
    job: &JobId,
    offers: &[Signed<Offer>],
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = job_record(state, job)?;
    expect_poster(&record, job, signer)?;
    expect_state(&record, job, JobState::Posted)?;
    if ctx.time_ms > record.deadline_ms {
        return Err(TxError::DeadlinePassed {
            job: *job,
            deadline_ms: record.deadline_ms,
            time_ms: ctx.time_ms,
        });
    }
    if offers.len() != usize::from(record.redundancy) {
        return Err(TxError::WrongOfferCount {
            job: *job,
            expected: usize::from(record.redundancy),
            got: offers.len(),
        });
    }
    let stake_min = state.params().stake_min_to_serve;
    let mut seen = BTreeSet::new();
    let mut awards = Vec::with_capacity(offers.len());
    for (index, signed) in offers.iter().enumerate() {
        let offer = &signed.body;
        if offer.job != *job {
            return Err(TxError::OfferForOtherJob {
                index,
                job: *job,
                offered: offer.job,
            });
        }
        if !seen.insert(offer.node) {
            return Err(TxError::DuplicateOfferNode { node: offer.node });
        }
        let node = state
            .node(&offer.node)
            .ok_or(TxError::UnknownNode { node: offer.node })?;
        if offer.price > record.max_price_per_node {
            return Err(TxError::OfferPriceTooHigh {
                node: offer.node,
                price: offer.price,
                max: record.max_price_per_node,
            });
        }
        if offer.valid_until_ms < ctx.time_ms {
            return Err(TxError::OfferExpired {
                node: offer.node,
                valid_until_ms: offer.valid_until_ms,
                time_ms: ctx.time_ms,
            });
        }
        let owner_stake = state.stake(&node.owner);
        if owner_stake < stake_min {
            return Err(TxError::OwnerStakeTooLow {
                node: offer.node,
                owner: node.owner,
                stake: owner_stake,
                required: stake_min,
            });
        }
        if signed.signer != *offer.node.key() || signed.verify().is_err() {
            return Err(TxError::BadOfferSignature {
                index,
                node: offer.node,
            });
        }
        awards.push(Award {
            node: offer.node,
            owner: node.owner,
            price: offer.price,
            result: None,
            withdrawn: false,
        });
    }
    for award in &awards {
        let mut owner = account_or_default(state, &award.owner);
        owner.bound_awards = owner.bound_awards.checked_add(1).ok_or(TxError::Overflow {
            what: "open awards",
        })?;
        state.accounts.put(award.owner, owner);
    }
    let nodes = awards.iter().map(|award| award.node).collect();
    record.awards = awards;
    record.state = JobState::Awarded;
    state.jobs.put(*job, record);
    events.push(Event::JobAwarded { job: *job, nodes });
    Ok(())
}

pub(crate) fn submit(
    state: &mut State,
    node: &NodeId,
    job: &JobId,
    claim: ResultClaim,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = job_record(state, job)?;
    let award = open_award(&mut record, job, node, ctx)?;
    award.result = Some(claim);
    let all_in = record.results_in() == usize::from(record.redundancy);
    let spec_digest = record.spec_digest;
    state.jobs.put(*job, record);
    events.push(Event::ResultSubmitted {
        job: *job,
        node: *node,
        claim,
    });
    if all_in {
        events.push(Event::AllResultsIn {
            job: *job,
            spec_digest,
        });
    }
    Ok(())
}

/// `node`'s award in an awarded `record` that has neither a result nor a
/// withdrawal yet, before the deadline: the one a result or a withdrawal may
/// still be written into.
fn open_award<'a>(
    record: &'a mut JobRecord,
    job: &JobId,
    node: &NodeId,
    ctx: &BlockContext,
) -> Result<&'a mut Award, TxError> {
    expect_state(record, job, JobState::Awarded)?;
    if ctx.time_ms > record.deadline_ms {
        return Err(TxError::DeadlinePassed {
            job: *job,
            deadline_ms: record.deadline_ms,
            time_ms: ctx.time_ms,
        });
    }
    let award = record
        .awards
        .iter_mut()
        .find(|award| award.node == *node)
        .ok_or(TxError::NotAwarded {
            job: *job,
            node: *node,
        })?;
    if award.result.is_some() {
        return Err(TxError::AlreadySubmitted {
            job: *job,
            node: *node,
        });
    }
    if award.withdrawn {
        return Err(TxError::AlreadyWithdrawn {
            job: *job,
            node: *node,
        });
    }
    Ok(award)
}

/// An awarded node says it will not deliver (its staging or run failed in a
/// way that is no result): the job need not wait for it, and it loses less
/// reputation than a node that stays silent.
pub(crate) fn withdraw(
    state: &mut State,
    node: &NodeId,
    job: &JobId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = job_record(state, job)?;
    let award = open_award(&mut record, job, node, ctx)?;
    award.withdrawn = true;
    state.jobs.put(*job, record);
    events.push(Event::ResultWithdrawn {
        job: *job,
        node: *node,
    });
    Ok(())
}

pub(crate) fn settle(
    state: &mut State,
    job: &JobId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = job_record(state, job)?;
    expect_state(&record, job, JobState::Awarded)?;
    let results = record.results_in();
    let agreed = record.majority();
    let past_deadline = ctx.time_ms > record.deadline_ms;
    if results < usize::from(record.redundancy) {
        // Without all k results: a majority, and nobody left who may still
        // answer (every other award withdrew) or the deadline passed.
        let reason = match agreed {
            None if past_deadline || !record.majority_possible() => {
                Some("they have no majority (expire it instead)")
            }
            None => Some("its deadline has not passed"),
            Some(_) if record.pending() > 0 && !past_deadline => {
                Some("awarded nodes may still answer before its deadline")
            }
            Some(_) => None,
        };
        if let Some(reason) = reason {
            return Err(TxError::NotSettleable {
                job: *job,
                results,
                redundancy: record.redundancy,
                reason,
            });
        }
    }
    for award in &record.awards {
        let rating = match (award.result, agreed) {
            (Some(claim), Some(majority)) if claim == majority => Rating::Agreed,
            (Some(_), Some(_)) => Rating::Disagreed,
            (None, Some(_)) if award.withdrawn => Rating::Withdrawn,
            (None, Some(_)) => Rating::Missing,
            (_, None) => Rating::NoMajority,
        };
        match rating {
            Rating::Agreed => {
                record.escrow_released = record
                    .escrow_released
                    .checked_add(award.price)
                    .filter(|released| *released <= record.escrow_locked)
                    .ok_or(TxError::Overflow {
                        what: "escrow released",
                    })?;
                credit(state, &award.owner, award.price)?;
                events.push(Event::Paid {
                    job: *job,
                    node: award.node,
                    owner: award.owner,
                    amount: award.price,
                });
            }
            Rating::Disagreed => slash(state, job, &award.node, &award.owner, events)?,
            Rating::Missing | Rating::Withdrawn | Rating::NoMajority => {}
        }
        rate(state, &award.node, rating, events);
    }
    close(state, job, &mut record, events)?;
    record.state = JobState::Settled;
    record.agreed = agreed;
    state.jobs.put(*job, record);
    events.push(Event::JobSettled { job: *job, agreed });
    Ok(())
}

pub(crate) fn expire(
    state: &mut State,
    job: &JobId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = job_record(state, job)?;
    if record.state.is_closed() {
        return Err(TxError::WrongJobState {
            job: *job,
            state: record.state,
            expected: "posted or awarded",
        });
    }
    let awarded = record.state == JobState::Awarded;
    let past_deadline = ctx.time_ms > record.deadline_ms;
    let all_in = record.results_in() == usize::from(record.redundancy);
    let decided = record.majority().is_some() && (past_deadline || record.pending() == 0);
    if awarded && (all_in || decided) {
        return Err(TxError::JobSettleable { job: *job });
    }
    if !past_deadline {
        // Before the deadline only an awarded job that can no longer reach
        // a majority ends: waiting would change nothing.
        if !awarded {
            return Err(TxError::DeadlineNotPassed {
                job: *job,
                deadline_ms: record.deadline_ms,
                time_ms: ctx.time_ms,
            });
        }
        if record.majority_possible() {
            return Err(TxError::MajorityStillPossible {
                job: *job,
                pending: record.pending(),
                deadline_ms: record.deadline_ms,
                time_ms: ctx.time_ms,
            });
        }
    }
    for award in &record.awards {
        // A node still pending before the deadline was not late: the job
        // ended under it because the others withdrew or disagreed.
        let rating = match (award.result, award.withdrawn) {
            (Some(_), _) => None,
            (None, true) => Some(Rating::Withdrawn),
            (None, false) if past_deadline => Some(Rating::Missing),
            (None, false) => None,
        };
        if let Some(rating) = rating {
            rate(state, &award.node, rating, events);
        }
    }
    close(state, job, &mut record, events)?;
    record.state = JobState::Expired;
    state.jobs.put(*job, record);
    events.push(Event::JobExpired { job: *job });
    Ok(())
}

pub(crate) fn cancel(
    state: &mut State,
    signer: &AccountId,
    job: &JobId,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = job_record(state, job)?;
    expect_poster(&record, job, signer)?;
    expect_state(&record, job, JobState::Posted)?;
    close(state, job, &mut record, events)?;
    record.state = JobState::Cancelled;
    state.jobs.put(*job, record);
    events.push(Event::JobCancelled { job: *job });
    Ok(())
}

/// Unbinds the awards from their owners' stake and refunds what the escrow
/// still holds to the poster: afterwards released == locked.
fn close(
    state: &mut State,
    job: &JobId,
    record: &mut JobRecord,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    for award in &record.awards {
        let mut owner = account_or_default(state, &award.owner);
        owner.bound_awards = owner.bound_awards.checked_sub(1).ok_or(TxError::Overflow {
            what: "open awards",
        })?;
        state.accounts.put(award.owner, owner);
    }
    let refund = record.escrow_held().ok_or(TxError::Overflow {
        what: "escrow held",
    })?;
    if !refund.is_zero() {
        credit(state, &record.poster, refund)?;
        events.push(Event::Refunded {
            job: *job,
            to: record.poster,
            amount: refund,
        });
    }
    record.escrow_released = record.escrow_locked;
    Ok(())
}

/// Takes `slash_bps` of the owner's stake to the treasury.
fn slash(
    state: &mut State,
    job: &JobId,
    node: &NodeId,
    owner: &AccountId,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let treasury = state.params().treasury;
    let mut account = account_or_default(state, owner);
    let amount = slash_share(state, account.stake)?;
    if amount.is_zero() {
        return Ok(());
    }
    account.stake = account
        .stake
        .checked_sub(amount)
        .ok_or(TxError::Overflow { what: "a slash" })?;
    state.accounts.put(*owner, account);
    credit(state, &treasury, amount)?;
    events.push(Event::Slashed {
        job: *job,
        node: *node,
        owner: *owner,
        amount,
    });
    Ok(())
}

/// How a node did in a closed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rating {
    Agreed,
    Disagreed,
    Missing,
    Withdrawn,
    NoMajority,
}

fn rate(state: &mut State, node: &NodeId, rating: Rating, events: &mut Vec<Event>) {
    let reason = match rating {
        Rating::Agreed => ReputationReason::JobAgreed,
        Rating::Disagreed => ReputationReason::JobOutvoted,
        Rating::Missing => ReputationReason::JobMissed,
        Rating::Withdrawn => ReputationReason::JobWithdrawn,
        Rating::NoMajority => ReputationReason::JobNoMajority,
    };
    // Nodes are never deregistered, so an awarded node always has a record.
    if let Some(mut record) = state.node(node).cloned() {
        if rating == Rating::Agreed {
            record.jobs_agreed = record.jobs_agreed.saturating_add(1);
        } else {
            record.jobs_faulted = record.jobs_faulted.saturating_add(1);
        }
        state.nodes.put(*node, record);
    }
    reputation::change(state, node, reason, 1, events);
}
