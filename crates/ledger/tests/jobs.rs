//! Handler tests for the job life cycle: post, award, submit, settle,
//! expire, cancel, each success and each refusal (which must leave the state
//! untouched). Withdrawals and the jobs they end early: `withdraw.rs`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use peercloud_ledger::genesis::{
    REPUTATION_PENALTY_DISAGREE, REPUTATION_PENALTY_MISSING, REPUTATION_PENALTY_NO_MAJORITY,
    REPUTATION_REWARD, REPUTATION_START,
};
use peercloud_ledger::{Event, JobState, ResultClaim, TxError, TxKind};
use peercloud_types::job::REDUNDANCY_MAX;
use peercloud_types::{Amount, Hash32, JobId, Offer, Signed};

const MAX: Amount = Amount::from_tokens(10);
const PRICE: Amount = Amount::from_tokens(6);

fn post_kind(k: u8, max: Amount, deadline_ms: u64) -> TxKind {
    TxKind::PostJob {
        spec_digest: Hash32::of(b"spec"),
        redundancy: k,
        max_price_per_node: max,
        deadline_ms,
    }
}

#[test]
fn post_locks_escrow_under_the_derived_id() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let nonce = world.state.next_nonce(&alice.public());
    let kind = post_kind(3, MAX, world.time_ms + 1);
    let events = world.ok(&alice, kind);
    let job = JobId::derive(&alice.account_id(), nonce);
    let escrow = MAX.checked_mul(3).unwrap();
    assert!(events.contains(&Event::JobPosted {
        job,
        poster: alice.account_id(),
        escrow
    }));
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.state, JobState::Posted);
    assert_eq!(record.escrow_locked, escrow);
    let spent = escrow.checked_add(MIN_FEE).unwrap();
    assert_eq!(
        world.balance(&alice),
        ALLOCATION.checked_sub(spent).unwrap()
    );
}

#[test]
fn post_refuses_bad_redundancy_deadlines_and_overdrafts() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let now = world.time_ms;
    for k in [0, REDUNDANCY_MAX + 1] {
        assert_eq!(
            world.refused(&alice, post_kind(k, MAX, now + 1)),
            TxError::BadRedundancy {
                redundancy: k,
                max: REDUNDANCY_MAX
            }
        );
    }
    assert_eq!(
        world.refused(&alice, post_kind(1, MAX, now)),
        TxError::DeadlineNotInFuture {
            deadline_ms: now,
            time_ms: now
        }
    );
    assert!(matches!(
        world.refused(&alice, post_kind(1, MAX, now + 30 * 24 * 3600 * 1000)),
        TxError::DeadlineTooFar { .. }
    ));
    assert!(matches!(
        world.refused(&alice, post_kind(3, ALLOCATION, now + 1)),
        TxError::InsufficientFunds { needed, .. } if needed == ALLOCATION.checked_mul(3).unwrap()
    ));
}

#[test]
fn award_binds_k_offers_and_the_owners_stake() {
    let mut world = World::new();
    let job = world.post(2, MAX);
    let offers = vec![world.offer(0, job, PRICE), world.offer(1, job, MAX)];
    let alice = world.alice.clone();
    let events = world.ok(&alice, TxKind::AwardJob { job, offers });
    let nodes = vec![world.nodes[0].node_id(), world.nodes[1].node_id()];
    assert!(events.contains(&Event::JobAwarded { job, nodes }));
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.state, JobState::Awarded);
    assert_eq!(record.awards[0].price, PRICE);
    assert_eq!(record.awards[1].owner, world.owners[1].account_id());
    assert_eq!(
        world
            .state
            .account(&world.owners[0].account_id())
            .unwrap()
            .bound_awards,
        1
    );
}

#[test]
fn award_refusals() {
    let mut world = World::new();
    let job = world.post(2, MAX);
    let alice = world.alice.clone();
    let bob = world.bob.clone();
    let good = |w: &World| vec![w.offer(0, job, PRICE), w.offer(1, job, PRICE)];
    let award = |offers| TxKind::AwardJob { job, offers };

    assert!(matches!(
        world.refused(&bob, award(good(&world))),
        TxError::NotPoster { .. }
    ));
    let unknown_job = JobId(Hash32::of(b"nope"));
    assert_eq!(
        world.refused(
            &alice,
            TxKind::AwardJob {
                job: unknown_job,
                offers: good(&world)
            }
        ),
        TxError::UnknownJob { job: unknown_job }
    );
    assert_eq!(
        world.refused(&alice, award(vec![world.offer(0, job, PRICE)])),
        TxError::WrongOfferCount {
            job,
            expected: 2,
            got: 1
        }
    );
    // A tampered price breaks the node's signature.
    let mut tampered = good(&world);
    tampered[1].body.price = Amount::from_tokens(1);
    assert_eq!(
        world.refused(&alice, award(tampered)),
        TxError::BadOfferSignature {
            index: 1,
            node: world.nodes[1].node_id()
        }
    );
    // An offer naming node 1 but signed by node 2's key.
    let mut forged = good(&world);
    forged[1] = Signed::new(forged[1].body.clone(), &world.nodes[2]);
    assert!(matches!(
        world.refused(&alice, award(forged)),
        TxError::BadOfferSignature { index: 1, .. }
    ));
    let other = JobId(Hash32::of(b"other"));
    assert!(matches!(
        world.refused(
            &alice,
            award(vec![
                world.offer(0, job, PRICE),
                world.offer(1, other, PRICE)
            ])
        ),
        TxError::OfferForOtherJob { index: 1, .. }
    ));
    assert_eq!(
        world.refused(
            &alice,
            award(vec![world.offer(0, job, PRICE), world.offer(0, job, PRICE)])
        ),
        TxError::DuplicateOfferNode {
            node: world.nodes[0].node_id()
        }
    );
    let stranger = key(60);
    let unregistered = Signed::new(
        Offer {
            job,
            node: stranger.node_id(),
            price: PRICE,
            valid_until_ms: world.time_ms + 1,
        },
        &stranger,
    );
    assert_eq!(
        world.refused(
            &alice,
            award(vec![world.offer(0, job, PRICE), unregistered])
        ),
        TxError::UnknownNode {
            node: stranger.node_id()
        }
    );
    let over = Amount::from_tokens(11);
    assert_eq!(
        world.refused(
            &alice,
            award(vec![world.offer(0, job, PRICE), world.offer(1, job, over)])
        ),
        TxError::OfferPriceTooHigh {
            node: world.nodes[1].node_id(),
            price: over,
            max: MAX
        }
    );
    let mut lapsed = world.offer(1, job, PRICE).body;
    lapsed.valid_until_ms = world.time_ms - 1;
    let lapsed = Signed::new(lapsed, &world.nodes[1]);
    assert!(matches!(
        world.refused(&alice, award(vec![world.offer(0, job, PRICE), lapsed])),
        TxError::OfferExpired { .. }
    ));
    // Owner 2 unstakes below the minimum: node 2 may no longer serve.
    let owner2 = world.owners[2].clone();
    world.ok(
        &owner2,
        TxKind::Unstake {
            amount: Amount::from_tokens(95),
        },
    );
    assert_eq!(
        world.refused(
            &alice,
            award(vec![world.offer(0, job, PRICE), world.offer(2, job, PRICE)])
        ),
        TxError::OwnerStakeTooLow {
            node: world.nodes[2].node_id(),
            owner: owner2.account_id(),
            stake: Amount::from_tokens(5),
            required: STAKE_MIN
        }
    );
    world.time_ms += 10_001;
    assert!(matches!(
        world.refused(&alice, award(good(&world))),
        TxError::DeadlinePassed { .. }
    ));
    world.time_ms -= 10_001;
    world.ok(&alice, award(good(&world)));
    assert!(matches!(
        world.refused(&alice, award(good(&world))),
        TxError::WrongJobState {
            state: JobState::Awarded,
            ..
        }
    ));
}

#[test]
fn submit_records_each_node_once_and_the_owner_pays_the_fee() {
    let mut world = World::new();
    let job = world.post_and_award(2, MAX, PRICE);
    let owner = world.owners[0].account_id();
    let before = world.state.balance(&owner);
    let events = world.submit(0, job, b"out", 10);
    assert!(events.contains(&Event::FeeCharged {
        payer: owner,
        amount: MIN_FEE
    }));
    assert_eq!(
        world.state.balance(&owner),
        before.checked_sub(MIN_FEE).unwrap()
    );
    let claim = ResultClaim {
        output_digest: Hash32::of(b"out"),
        fuel_used: 10,
    };
    assert_eq!(world.state.job(&job).unwrap().awards[0].result, Some(claim));
    let node0 = world.nodes[0].clone();
    let again = TxKind::SubmitResult {
        job,
        output_digest: Hash32::of(b"out"),
        fuel_used: 10,
    };
    assert_eq!(
        world.refused(&node0, again.clone()),
        TxError::AlreadySubmitted {
            job,
            node: node0.node_id()
        }
    );
    // Node 2 is registered but not awarded this job.
    let node2 = world.nodes[2].clone();
    assert_eq!(
        world.refused(&node2, again.clone()),
        TxError::NotAwarded {
            job,
            node: node2.node_id()
        }
    );
    // A key that is no node has no owner to pay its fee.
    let bob = world.bob.clone();
    assert_eq!(
        world.refused(&bob, again),
        TxError::UnknownNode {
            node: peercloud_types::NodeId(bob.public())
        }
    );
    let node1 = world.nodes[1].clone();
    world.time_ms += 10_001;
    assert!(matches!(
        world.refused(
            &node1,
            TxKind::SubmitResult {
                job,
                output_digest: Hash32::of(b"out"),
                fuel_used: 10
            }
        ),
        TxError::DeadlinePassed { .. }
    ));
}

#[test]
fn submit_refuses_unknown_and_unawarded_jobs() {
    let mut world = World::new();
    let job = world.post(1, MAX);
    let node0 = world.nodes[0].clone();
    let kind = |job| TxKind::SubmitResult {
        job,
        output_digest: Hash32::ZERO,
        fuel_used: 1,
    };
    assert!(matches!(
        world.refused(&node0, kind(job)),
        TxError::WrongJobState {
            state: JobState::Posted,
            ..
        }
    ));
    let unknown = JobId(Hash32::of(b"x"));
    assert_eq!(
        world.refused(&node0, kind(unknown)),
        TxError::UnknownJob { job: unknown }
    );
}

#[test]
fn settle_with_unanimous_results_pays_all_and_refunds_the_rest() {
    let mut world = World::new();
    let job = world.post_and_award(3, MAX, PRICE);
    let alice_before = world.balance(&world.alice.clone());
    let owner_balances: Vec<Amount> = world
        .owners
        .iter()
        .map(|o| world.state.balance(&o.account_id()))
        .collect();
    for node in 0..3 {
        world.submit(node, job, b"out", 42);
    }
    let events = world.by_carol(TxKind::SettleJob { job }).unwrap();
    let refund = MAX.checked_sub(PRICE).unwrap().checked_mul(3).unwrap();
    assert!(events.contains(&Event::Refunded {
        job,
        to: world.alice.account_id(),
        amount: refund
    }));
    assert_eq!(
        world.balance(&world.alice.clone()),
        alice_before.checked_add(refund).unwrap()
    );
    for (node, before) in owner_balances.iter().enumerate() {
        // Paid the price, minus the fee of its result.
        let expected = before
            .checked_add(PRICE)
            .unwrap()
            .checked_sub(MIN_FEE)
            .unwrap();
        assert_eq!(
            world.state.balance(&world.owners[node].account_id()),
            expected
        );
        assert_eq!(world.reputation(node), REPUTATION_START + REPUTATION_REWARD);
    }
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.state, JobState::Settled);
    assert_eq!(record.escrow_released, record.escrow_locked);
    assert_eq!(
        record.agreed,
        Some(ResultClaim {
            output_digest: Hash32::of(b"out"),
            fuel_used: 42
        })
    );
    assert!(matches!(
        world.by_carol(TxKind::SettleJob { job }),
        Err(TxError::WrongJobState {
            state: JobState::Settled,
            ..
        })
    ));
    assert!(matches!(
        world.by_carol(TxKind::ExpireJob { job }),
        Err(TxError::WrongJobState {
            state: JobState::Settled,
            ..
        })
    ));
}

#[test]
fn settle_slashes_the_dissenter_and_pays_the_majority() {
    let mut world = World::new();
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"out", 42);
    world.submit(1, job, b"out", 42);
    // Same digest, different fuel: still a disagreement.
    world.submit(2, job, b"out", 43);
    let treasury_before = world.state.balance(&world.treasury);
    let events = world.by_carol(TxKind::SettleJob { job }).unwrap();
    let slash = OWNER_STAKE
        .checked_mul_div(u128::from(SLASH_BPS), 10_000)
        .unwrap();
    let owner2 = world.owners[2].account_id();
    assert!(events.contains(&Event::Slashed {
        job,
        node: world.nodes[2].node_id(),
        owner: owner2,
        amount: slash
    }));
    assert_eq!(
        world.state.stake(&owner2),
        OWNER_STAKE.checked_sub(slash).unwrap()
    );
    // The treasury got the slash and carol's fee.
    let gained = slash.checked_add(MIN_FEE).unwrap();
    assert_eq!(
        world.state.balance(&world.treasury),
        treasury_before.checked_add(gained).unwrap()
    );
    assert_eq!(
        world.reputation(2),
        REPUTATION_START - REPUTATION_PENALTY_DISAGREE
    );
    assert_eq!(world.reputation(0), REPUTATION_START + REPUTATION_REWARD);
    let paid: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Paid { .. }))
        .collect();
    assert_eq!(paid.len(), 2);
}

#[test]
fn settle_after_the_deadline_with_a_majority_marks_the_missing_node() {
    let mut world = World::new();
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"out", 1);
    world.submit(1, job, b"out", 1);
    let early = world.by_carol(TxKind::SettleJob { job });
    assert!(matches!(
        early,
        Err(TxError::NotSettleable {
            results: 2,
            redundancy: 3,
            ..
        })
    ));
    world.time_ms += 10_001;
    world.by_carol(TxKind::SettleJob { job }).unwrap();
    assert_eq!(
        world.reputation(2),
        REPUTATION_START - REPUTATION_PENALTY_MISSING
    );
    // A missing node is not slashed: only a wrong answer is.
    assert_eq!(
        world.state.stake(&world.owners[2].account_id()),
        OWNER_STAKE
    );
}

#[test]
fn settle_without_a_majority_refunds_everything_and_slashes_nobody() {
    let mut world = World::new();
    let job = world.post_and_award(2, MAX, PRICE);
    world.submit(0, job, b"a", 1);
    world.submit(1, job, b"b", 1);
    let alice_before = world.balance(&world.alice.clone());
    let events = world.by_carol(TxKind::SettleJob { job }).unwrap();
    let all = MAX.checked_mul(2).unwrap();
    assert!(events.contains(&Event::Refunded {
        job,
        to: world.alice.account_id(),
        amount: all
    }));
    assert!(events.contains(&Event::JobSettled { job, agreed: None }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Paid { .. } | Event::Slashed { .. }))
    );
    assert_eq!(
        world.balance(&world.alice.clone()),
        alice_before.checked_add(all).unwrap()
    );
    for node in 0..2 {
        assert_eq!(
            world.reputation(node),
            REPUTATION_START - REPUTATION_PENALTY_NO_MAJORITY
        );
        assert_eq!(
            world.state.stake(&world.owners[node].account_id()),
            OWNER_STAKE
        );
    }
}

#[test]
fn settle_refusals() {
    let mut world = World::new();
    let carol = world.carol.clone();
    let unknown = JobId(Hash32::of(b"none"));
    assert_eq!(
        world.refused(&carol, TxKind::SettleJob { job: unknown }),
        TxError::UnknownJob { job: unknown }
    );
    let posted = world.post(1, MAX);
    assert!(matches!(
        world.refused(&carol, TxKind::SettleJob { job: posted }),
        TxError::WrongJobState {
            state: JobState::Posted,
            ..
        }
    ));
    // 1 of 3 in after the deadline: no majority, expire instead.
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"a", 1);
    world.time_ms += 10_001;
    assert!(matches!(
        world.refused(&carol, TxKind::SettleJob { job }),
        TxError::NotSettleable { results: 1, .. }
    ));
}

#[test]
fn expire_refunds_a_job_never_awarded() {
    let mut world = World::new();
    let job = world.post(2, MAX);
    let carol = world.carol.clone();
    assert!(matches!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::DeadlineNotPassed { .. }
    ));
    let alice_before = world.balance(&world.alice.clone());
    world.time_ms += 10_001;
    let events = world.ok(&carol, TxKind::ExpireJob { job });
    assert!(events.contains(&Event::JobExpired { job }));
    let all = MAX.checked_mul(2).unwrap();
    assert_eq!(
        world.balance(&world.alice.clone()),
        alice_before.checked_add(all).unwrap()
    );
    assert!(matches!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::WrongJobState {
            state: JobState::Expired,
            ..
        }
    ));
}

#[test]
fn expire_refunds_an_undecided_job_and_marks_the_silent_nodes() {
    let mut world = World::new();
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"a", 1);
    world.time_ms += 10_001;
    let alice_before = world.balance(&world.alice.clone());
    world.by_carol(TxKind::ExpireJob { job }).unwrap();
    let all = MAX.checked_mul(3).unwrap();
    assert_eq!(
        world.balance(&world.alice.clone()),
        alice_before.checked_add(all).unwrap()
    );
    assert_eq!(world.reputation(0), REPUTATION_START);
    assert_eq!(
        world.reputation(1),
        REPUTATION_START - REPUTATION_PENALTY_MISSING
    );
    assert_eq!(
        world
            .state
            .account(&world.owners[1].account_id())
            .unwrap()
            .bound_awards,
        0
    );
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.escrow_released, record.escrow_locked);
}

#[test]
fn expire_is_refused_when_the_results_decide_the_job() {
    let mut world = World::new();
    let carol = world.carol.clone();
    // A majority after the deadline: settle, not expire.
    let job = world.post_and_award(3, MAX, PRICE);
    world.submit(0, job, b"a", 1);
    world.submit(1, job, b"a", 1);
    world.time_ms += 10_001;
    assert_eq!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::JobSettleable { job }
    );
    // All in without a majority is settled too (everyone's reputation moves).
    let job = world.post_and_award(2, MAX, PRICE);
    world.submit(0, job, b"a", 1);
    world.submit(1, job, b"b", 1);
    world.time_ms += 10_001;
    assert_eq!(
        world.refused(&carol, TxKind::ExpireJob { job }),
        TxError::JobSettleable { job }
    );
    let unknown = JobId(Hash32::of(b"none"));
    assert_eq!(
        world.refused(&carol, TxKind::ExpireJob { job: unknown }),
        TxError::UnknownJob { job: unknown }
    );
}

#[test]
fn reputation_stays_on_the_scale() {
    let mut world = World::new();
    for _ in 0..60 {
        let job = world.post_and_award(1, Amount::from_base_units(1), Amount::from_base_units(1));
        world.submit(0, job, b"ok", 1);
        world.by_carol(TxKind::SettleJob { job }).unwrap();
    }
    assert_eq!(world.reputation(0), peercloud_types::job::REPUTATION_MAX);
    world.state.check_invariants().unwrap();
}

#[test]
fn cancel_refunds_the_whole_escrow_of_a_job_never_awarded() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let carol = world.carol.clone();
    let job = world.post(2, MAX);
    assert!(matches!(
        world.refused(&carol, TxKind::CancelJob { job }),
        TxError::NotPoster { .. }
    ));
    let before = world.balance(&alice);
    let events = world.ok(&alice, TxKind::CancelJob { job });
    assert!(events.contains(&Event::JobCancelled { job }));
    let all = MAX.checked_mul(2).unwrap();
    let expected = before
        .checked_add(all)
        .unwrap()
        .checked_sub(MIN_FEE)
        .unwrap();
    assert_eq!(world.balance(&alice), expected);
    let record = world.state.job(&job).unwrap();
    assert_eq!(record.state, JobState::Cancelled);
    assert_eq!(record.escrow_released, record.escrow_locked);
    assert!(matches!(
        world.refused(&alice, TxKind::CancelJob { job }),
        TxError::WrongJobState {
            state: JobState::Cancelled,
            ..
        }
    ));
}

#[test]
fn cancel_is_refused_once_nodes_are_awarded() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let job = world.post_and_award(2, MAX, PRICE);
    assert!(matches!(
        world.refused(&alice, TxKind::CancelJob { job }),
        TxError::WrongJobState {
            state: JobState::Awarded,
            ..
        }
    ));
}
