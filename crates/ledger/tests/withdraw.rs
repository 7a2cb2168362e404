//! Handler tests for withdrawals: an awarded node saying it will not
//! deliver, and the jobs that end early (settled or expired before their
//! deadline) once every award has answered or no majority can form.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use peercloud_ledger::genesis::{
    REPUTATION_PENALTY_MISSING, REPUTATION_PENALTY_WITHDRAWN, REPUTATION_REWARD, REPUTATION_START,
};
use peercloud_ledger::{Event, JobState, TxError, TxKind};
use peercloud_types::{Amount, Hash32, JobId};

const MAX: Amount = Amount::from_tokens(10);
const PRICE: Amount = Amount::from_tokens(6);

#[test]
fn withdraw_marks_the_award_and_the_owner_pays_the_fee() {
    let mut world = World::new();
    let job = world.post_and_award(2, MAX, PRICE);
    let owner = world.owners[1].account_id();
    let before = world.state.balance(&owner);
    let events = world.withdraw(1, job);
    assert!(events.contains(&Event::ResultWithdrawn {
        job,
        node: world.nodes[1].node_id()
    }));
    assert!(events.contains(&Event::FeeCharged {
        payer: owner,
        amount: MIN_FEE
    }));
    assert_eq!(
        world.state.balance(&owner),
        before.checked_sub(MIN_FEE).unwrap()
    );
    let record = world.state.job(&job).unwrap();
    assert!(record.awards[1].withdrawn);
    assert_eq!(record.awards[1].result, None);
    assert_eq!(record.pending(), 1);
    // Nothing moved but the fee: the job is still open, its escrow held.
    assert_eq!(record.state, JobState::Awarded);
    assert_eq!(record.escrow_released, Amount::ZERO);
}

#[test]
fn withdraw_refusals() {
    let mut world = World::new();
    let node0 = world.nodes[0].clone();
    let node2 = world.nodes[2].clone();
    let withdraw = |job| TxKind::WithdrawResult { job };
    let unknown = JobId(Hash32::of(b"none"));
    assert_eq!(
        world.refused(&node0, withdraw(unknown)),
        TxError::UnknownJob { job: unknown }
    );
    let posted = world.post(1, MAX);
    assert!(matches!(
        world.refused(&node0, withdraw(posted)),
        TxError::WrongJobState {
            state: JobState::Posted,
            ..
        }
    ));
    let job = world.post_and_award(2, MAX, PRICE);
    // Node 2 is registered but not awarded this job.
    assert_eq!(
        world.refused(&node2, withdraw(job)),
        TxError::NotAwarded {
            job,
            node: node2.node_id()
        }
    );
    // A key that is no node has no owner to pay its fee.
    let bob = world.bob.clone();
    assert_eq!(
        world.refused(&bob, withdraw(job)),
        TxError::UnknownNode {
            node: peercloud_types::NodeId(bob.public())
        }
    );
    // A node that submitted cannot take its result back.
    world.submit(0, job, b"out", 1);
    assert_eq!(
        world.refused(&node0, withdraw(job)),
        TxError::AlreadySubmitted {
            job,
            node: node0.node_id()
        }
    );
    // A node that withdrew can neither withdraw again nor submit.
    let node1 = world.nodes[1].clone();
    world.withdraw(1, job);
    let already = TxError::AlreadyWithdrawn {
        job,
        node: node1.node_id(),
    };
    assert_eq!(world.refused(&node1, withdraw(job)), already);
    assert_eq!(
        world.refused(
            &node1,
            TxKind::SubmitResult {
                job,
                output_digest: Hash32::of(b"out"),
                fuel_used: 1
            }
        ),
        already
    );
    // After the deadline the node is missing, not withdrawn.
    let late = world.post_and_award(2, MAX, PRICE);
    world.time_ms += 10_001;
    assert!(matches!(
        world.refused(&node0, withdraw(late)),
        TxError::DeadlinePassed { .. }
    ));
    // A closed job takes no withdrawal.
    world.by_carol(TxKind::ExpireJob { job: late }).unwrap();
    assert!(matches!(
        world.refused(&node0, withdraw(late)),
        TxError::WrongJobState {
            state: JobState::Expired,
            ..
        }
    ));
}

#[test]
fn a_job_every_node_withdrew_from_expires_before_its_deadline_refunding_all() {
    let mut world = World::new();
    let job = world.post_and_award(3, MAX, PRICE);
    let carol = world.carol.clone();
    world.withdraw(0, job);
    // Two nodes may still agree: no early end.
    assert_eq!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::MajorityStillPossible {
            job,
            pending: 2,
            deadline_ms: world.state.job(&job).unwrap().deadline_ms,
            time_ms: world.time_ms
        }
    );
    world.withdraw(1, job);
    world.withdraw(2, job);
    let alice_before = world.balance(&world.alice.clone());
    let events = world.ok(&carol, TxKind::ExpireJob { job });
    assert!(events.contains(&Event::JobExpired { job }));
    let all = MAX.checked_mul(3).unwrap();
    assert_eq!(
        world.balance(&world.alice.clone()),
        alice_before.checked_add(all).unwrap()
    );
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.state, JobState::Expired);
    assert_eq!(record.escrow_released, record.escrow_locked);
    for node in 0..3 {
        assert_eq!(
            world.reputation(node),
            REPUTATION_START - REPUTATION_PENALTY_WITHDRAWN
        );
        assert_eq!(
            world
                .state
                .account(&world.owners[node].account_id())
                .unwrap()
                .bound_awards,
            0
        );
    }
    world.state.check_invariants().unwrap();
}

#[test]
fn a_withdrawal_costs_less_reputation_than_a_missing_result() {
    const { assert!(REPUTATION_PENALTY_WITHDRAWN < REPUTATION_PENALTY_MISSING) };
    let mut world = World::new();
    let job = world.post_and_award(2, MAX, PRICE);
    world.withdraw(0, job);
    world.time_ms += 10_001;
    world.by_carol(TxKind::ExpireJob { job }).unwrap();
    assert_eq!(
        world.reputation(0),
        REPUTATION_START - REPUTATION_PENALTY_WITHDRAWN
    );
    assert_eq!(
        world.reputation(1),
        REPUTATION_START - REPUTATION_PENALTY_MISSING
    );
}

#[test]
fn disagreeing_results_and_a_withdrawal_end_the_job_early_without_blaming_the_pending() {
    let mut world = World::new();
    let carol = world.carol.clone();
    // k = 3: a, b, withdrawn. No claim can reach 2 of 3.
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"a", 1);
    world.submit(1, job, b"b", 1);
    assert!(matches!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::MajorityStillPossible { pending: 1, .. }
    ));
    world.withdraw(2, job);
    assert!(matches!(
        world.refused(&carol, TxKind::SettleJob { job }),
        TxError::NotSettleable { results: 2, reason, .. } if reason.contains("expire")
    ));
    world.ok(&carol, TxKind::ExpireJob { job });
    assert_eq!(world.reputation(0), REPUTATION_START);
    assert_eq!(world.reputation(1), REPUTATION_START);
    assert_eq!(
        world.reputation(2),
        REPUTATION_START - REPUTATION_PENALTY_WITHDRAWN
    );
    // k = 3: two withdrawals leave one pending node, who cannot make a
    // majority alone: the job ends, and the pending node was not late.
    let job = world.post_and_award(3, MAX, PRICE);
    world.withdraw(0, job);
    world.withdraw(1, job);
    world.ok(&carol, TxKind::ExpireJob { job });
    assert_eq!(
        world.reputation(2),
        REPUTATION_START - REPUTATION_PENALTY_WITHDRAWN
    );
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.escrow_released, record.escrow_locked);
    world.state.check_invariants().unwrap();
}

#[test]
fn a_majority_settles_as_soon_as_the_other_awards_withdrew() {
    let mut world = World::new();
    let carol = world.carol.clone();
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"out", 7);
    world.submit(1, job, b"out", 7);
    world.withdraw(2, job);
    assert_eq!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::JobSettleable { job }
    );
    let owner2 = world.owners[2].account_id();
    let owner2_before = world.state.balance(&owner2);
    let events = world.ok(&carol, TxKind::SettleJob { job });
    let paid: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Paid { .. }))
        .collect();
    assert_eq!(paid.len(), 2);
    assert!(!events.iter().any(|e| matches!(e, Event::Slashed { .. })));
    assert_eq!(world.state.balance(&owner2), owner2_before);
    assert_eq!(world.state.stake(&owner2), OWNER_STAKE);
    assert_eq!(world.reputation(0), REPUTATION_START + REPUTATION_REWARD);
    assert_eq!(
        world.reputation(2),
        REPUTATION_START - REPUTATION_PENALTY_WITHDRAWN
    );
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.state, JobState::Settled);
    assert_eq!(record.escrow_released, record.escrow_locked);
}

#[test]
fn a_job_never_awarded_still_waits_for_its_deadline_to_expire() {
    let mut world = World::new();
    let carol = world.carol.clone();
    let job = world.post(2, MAX);
    assert!(matches!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::DeadlineNotPassed { .. }
    ));
}
