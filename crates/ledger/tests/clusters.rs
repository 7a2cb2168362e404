//! Clusters: creation with every field checked, joins that lock stake,
//! 1-of-1 and 2-of-3 manager decisions (admit, remove, set terms) with
//! every refusal, leaving, and the placement weights.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
mod storage_common;

use common::*;
use peercloud_ledger::params::{
    BILLING_PERIOD_MS_MAX, CAPACITY_BYTES_MIN, CLUSTER_MANAGERS_MAX, DAY_MS, PROPOSAL_TTL_MS,
    STORAGE_PRICE_MAX,
};
use peercloud_ledger::{
    ClusterAction, ClusterId, ClusterTerms, MemberStatus, Redundancy, StorageError, StorageEvent,
    TxError, TxKind,
};
use peercloud_types::{AccountId, Amount, Keypair, PublicKey};
use storage_common::*;

/// Whether a refusal is the one a case expects.
type Expected = fn(&StorageError) -> bool;

fn storage_error(error: TxError) -> StorageError {
    match error {
        TxError::Storage(e) => e,
        other => panic!("expected a storage error, got {other}"),
    }
}

fn create_kind(managers: Vec<AccountId>, threshold: u8, terms: ClusterTerms) -> TxKind {
    TxKind::CreateCluster {
        managers,
        threshold,
        terms,
    }
}

#[test]
fn create_cluster_checks_every_field() {
    let mut w = World::new();
    let alice = w.alice.clone();
    let me = vec![alice.account_id()];
    let bad_terms: Vec<(ClusterTerms, Expected)> = vec![
        (
            ClusterTerms {
                redundancy: Redundancy::Replicas(0),
                ..terms()
            },
            |e| matches!(e, StorageError::BadReplicas { replicas: 0, .. }),
        ),
        (
            ClusterTerms {
                redundancy: Redundancy::ReedSolomon { data: 4, parity: 0 },
                ..terms()
            },
            |e| matches!(e, StorageError::BadReedSolomon { parity: 0, .. }),
        ),
        (
            ClusterTerms {
                price_per_gib_month: STORAGE_PRICE_MAX
                    .checked_add(Amount::from_base_units(1))
                    .unwrap(),
                ..terms()
            },
            |e| {
                matches!(
                    e,
                    StorageError::PriceTooHigh {
                        what: "price per GiB-month",
                        ..
                    }
                )
            },
        ),
        (
            ClusterTerms {
                price_per_gib_served: STORAGE_PRICE_MAX
                    .checked_add(Amount::from_base_units(1))
                    .unwrap(),
                ..terms()
            },
            |e| {
                matches!(
                    e,
                    StorageError::PriceTooHigh {
                        what: "price per GiB served",
                        ..
                    }
                )
            },
        ),
        (
            ClusterTerms {
                manager_fee_bps: 5_001,
                ..terms()
            },
            |e| matches!(e, StorageError::FeeTooHigh { bps: 5_001, .. }),
        ),
        (
            ClusterTerms {
                billing_period_ms: BILLING_PERIOD_MS_MAX + 1,
                ..terms()
            },
            |e| matches!(e, StorageError::BillingPeriodOutOfRange { .. }),
        ),
        (
            ClusterTerms {
                billing_period_ms: 10,
                ..terms()
            },
            |e| {
                matches!(
                    e,
                    StorageError::BillingPeriodOutOfRange { period_ms: 10, .. }
                )
            },
        ),
        (
            ClusterTerms {
                grace_ms: DAY_MS - 1,
                ..terms()
            },
            |e| matches!(e, StorageError::GraceOutOfRange { min, .. } if *min == DAY_MS),
        ),
    ];
    for (terms, expected) in bad_terms {
        let error = storage_error(w.refused(&alice, create_kind(me.clone(), 1, terms)));
        assert!(expected(&error), "{error}");
    }
    let error = storage_error(w.refused(&alice, create_kind(vec![], 1, terms())));
    assert!(matches!(error, StorageError::ManagerCount { count: 0, .. }));
    let many = (0..=CLUSTER_MANAGERS_MAX as u8)
        .map(|i| key(100 + i).account_id())
        .collect();
    let error = storage_error(w.refused(&alice, create_kind(many, 1, terms())));
    assert!(matches!(error, StorageError::ManagerCount { .. }));
    let twice = vec![alice.account_id(), alice.account_id()];
    let error = storage_error(w.refused(&alice, create_kind(twice, 1, terms())));
    assert!(matches!(error, StorageError::DuplicateManager { .. }));
    for threshold in [0, 2] {
        let error = storage_error(w.refused(&alice, create_kind(me.clone(), threshold, terms())));
        assert!(
            matches!(error, StorageError::BadThreshold { .. }),
            "{error}"
        );
    }
    // The identity point is no key anyone signs with.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let unusable = vec![AccountId(PublicKey(identity))];
    assert!(matches!(
        w.refused(&alice, create_kind(unusable, 1, terms())),
        TxError::UnusableAccount { .. }
    ));

    let cluster = create_cluster(&mut w, &alice, me, 1, terms());
    let record = w.state.cluster(&cluster).unwrap();
    assert_eq!(record.creator, alice.account_id());
    assert_eq!(record.terms, terms());
    assert!(record.members.is_empty());
    // Reed-Solomon inside its bounds is fine.
    let rs = ClusterTerms {
        redundancy: Redundancy::ReedSolomon { data: 4, parity: 2 },
        ..terms()
    };
    create_cluster(&mut w, &alice, vec![alice.account_id()], 1, rs);
}

#[test]
fn join_locks_stake_and_waits_for_admission() {
    let mut w = World::new();
    let alice = w.alice.clone();
    let cluster = create_cluster(&mut w, &alice, vec![alice.account_id()], 1, terms());
    let owner = w.owners[0].clone();
    let node = w.nodes[0].node_id();
    let before = w.balance(&owner);
    let events = join(&mut w, cluster, 0, GIB);
    assert!(
        storage_events(&events).contains(&StorageEvent::MemberJoined {
            cluster,
            node,
            stake: terms().node_stake,
        })
    );
    let fee_and_stake = MIN_FEE.checked_add(terms().node_stake).unwrap();
    assert_eq!(
        w.balance(&owner),
        before.checked_sub(fee_and_stake).unwrap()
    );
    let member = w.state.cluster(&cluster).unwrap().members[&node];
    assert_eq!(member.status, MemberStatus::Pending);
    assert_eq!(member.stake, terms().node_stake);
    // Pending members carry no weight.
    assert!(w.state.weights(&cluster).unwrap().is_empty());
    w.state.check_invariants().unwrap();

    let ids: Vec<_> = w.nodes.iter().map(|n| n.node_id()).collect();
    let join_kind = |cluster, node: usize, capacity| TxKind::JoinCluster {
        cluster,
        node: ids[node],
        capacity_bytes: capacity,
    };
    let error = storage_error(w.refused(&owner, join_kind(cluster, 0, GIB)));
    assert!(matches!(error, StorageError::AlreadyMember { .. }));
    let nowhere = ClusterId::derive(&alice.account_id(), 999);
    let error = storage_error(w.refused(&owner, join_kind(nowhere, 0, GIB)));
    assert!(matches!(error, StorageError::UnknownCluster { .. }));
    assert!(matches!(
        w.refused(&owner, join_kind(cluster, 1, GIB)),
        TxError::NotOwner { .. }
    ));
    let owner1 = w.owners[1].clone();
    let error = storage_error(w.refused(&owner1, join_kind(cluster, 1, CAPACITY_BYTES_MIN - 1)));
    assert!(matches!(error, StorageError::CapacityOutOfRange { .. }));
    let stranger = Keypair::from_seed(&[99; 32]);
    let unregistered = TxKind::JoinCluster {
        cluster,
        node: stranger.node_id(),
        capacity_bytes: GIB,
    };
    assert!(matches!(
        w.refused(&owner1, unregistered),
        TxError::UnknownNode { .. }
    ));
    // A stake the owner cannot pay.
    let rich = ClusterTerms {
        node_stake: ALLOCATION,
        ..terms()
    };
    let dear = create_cluster(&mut w, &alice, vec![alice.account_id()], 1, rich);
    assert!(matches!(
        w.refused(&owner1, join_kind(dear, 1, GIB)),
        TxError::InsufficientFunds { .. }
    ));
}

#[test]
fn single_manager_decides_at_once_and_weights_follow_capacity() {
    let mut w = World::new();
    let cluster = alice_cluster(&mut w);
    let weights = w.state.weights(&cluster).unwrap();
    let mut expected = vec![(w.nodes[0].node_id(), GIB), (w.nodes[1].node_id(), 2 * GIB)];
    expected.sort();
    assert_eq!(weights, expected);
    // Admitting an active member again is refused at the proposal.
    let alice = w.alice.clone();
    let node = w.nodes[0].node_id();
    let error = storage_error(w.refused(
        &alice,
        TxKind::ProposeCluster {
            cluster,
            action: ClusterAction::Admit(node),
        },
    ));
    assert!(matches!(error, StorageError::MemberNotPending { .. }));
    let ghost = w.nodes[2].node_id();
    let error = storage_error(w.refused(
        &alice,
        TxKind::ProposeCluster {
            cluster,
            action: ClusterAction::Remove(ghost),
        },
    ));
    assert!(matches!(error, StorageError::NotMember { .. }));
    // Removal: the stake goes back to the owner, the weight goes.
    let owner = w.owners[0].clone();
    let before = w.balance(&owner);
    propose(&mut w, &alice, cluster, ClusterAction::Remove(node));
    assert_eq!(
        w.balance(&owner),
        before.checked_add(terms().node_stake).unwrap()
    );
    assert_eq!(w.state.weights(&cluster).unwrap().len(), 1);
    assert!(
        !w.state
            .cluster(&cluster)
            .unwrap()
            .members
            .contains_key(&node)
    );
    w.state.check_invariants().unwrap();
}

/// Alice, bob and carol manage a 2-of-3 cluster; node 0 has joined.
fn two_of_three(w: &mut World) -> ClusterId {
    let managers = vec![
        w.alice.account_id(),
        w.bob.account_id(),
        w.carol.account_id(),
    ];
    let alice = w.alice.clone();
    let cluster = create_cluster(w, &alice, managers, 2, terms());
    join(w, cluster, 0, GIB);
    cluster
}

#[test]
fn two_of_three_admits_on_the_second_approval_only() {
    let mut w = World::new();
    let cluster = two_of_three(&mut w);
    let (alice, bob, carol) = (w.alice.clone(), w.bob.clone(), w.carol.clone());
    let node = w.nodes[0].node_id();
    let events = propose(&mut w, &alice, cluster, ClusterAction::Admit(node));
    assert!(
        storage_events(&events).contains(&StorageEvent::ClusterProposed {
            cluster,
            proposal: 0,
            action: ClusterAction::Admit(node),
        })
    );
    assert_eq!(
        w.state.cluster(&cluster).unwrap().members[&node].status,
        MemberStatus::Pending,
        "one approval of two must not execute"
    );
    let approve = |proposal| TxKind::ApproveCluster { cluster, proposal };
    // The proposer approving again, a non-manager, an unknown proposal.
    let error = storage_error(w.refused(&alice, approve(0)));
    assert!(matches!(error, StorageError::AlreadyApproved { .. }));
    let owner = w.owners[0].clone();
    let error = storage_error(w.refused(&owner, approve(0)));
    assert!(matches!(error, StorageError::NotManager { .. }));
    let error = storage_error(w.refused(&bob, approve(7)));
    assert!(matches!(
        error,
        StorageError::UnknownProposal { proposal: 7, .. }
    ));
    let error = storage_error(w.refused(
        &owner,
        TxKind::ProposeCluster {
            cluster,
            action: ClusterAction::Remove(node),
        },
    ));
    assert!(matches!(error, StorageError::NotManager { .. }));

    let events = w.ok(&bob, approve(0));
    assert!(
        storage_events(&events).contains(&StorageEvent::ClusterDecided {
            cluster,
            proposal: 0,
            action: ClusterAction::Admit(node),
        })
    );
    assert_eq!(
        w.state.cluster(&cluster).unwrap().members[&node].status,
        MemberStatus::Active
    );
    // Executed once: a third approval is refused.
    let error = storage_error(w.refused(&carol, approve(0)));
    assert!(matches!(
        error,
        StorageError::ProposalClosed { proposal: 0, .. }
    ));
    assert!(w.state.cluster(&cluster).unwrap().proposals.is_empty());
}

#[test]
fn a_stale_proposal_cannot_be_approved() {
    let mut w = World::new();
    let cluster = two_of_three(&mut w);
    let (alice, bob) = (w.alice.clone(), w.bob.clone());
    let node = w.nodes[0].node_id();
    propose(&mut w, &alice, cluster, ClusterAction::Admit(node));
    w.time_ms += PROPOSAL_TTL_MS;
    let error = storage_error(w.refused(
        &bob,
        TxKind::ApproveCluster {
            cluster,
            proposal: 0,
        },
    ));
    assert!(matches!(
        error,
        StorageError::ProposalStale { proposal: 0, .. }
    ));
    // A new proposal drops the stale one; it is closed for good.
    propose(&mut w, &bob, cluster, ClusterAction::Admit(node));
    let error = storage_error(w.refused(
        &alice,
        TxKind::ApproveCluster {
            cluster,
            proposal: 0,
        },
    ));
    assert!(matches!(error, StorageError::ProposalClosed { .. }));
    w.ok(
        &alice,
        TxKind::ApproveCluster {
            cluster,
            proposal: 1,
        },
    );
    assert_eq!(
        w.state.cluster(&cluster).unwrap().members[&node].status,
        MemberStatus::Active
    );
}

#[test]
fn two_of_three_removes_and_sets_terms() {
    let mut w = World::new();
    let cluster = two_of_three(&mut w);
    let (alice, bob, carol) = (w.alice.clone(), w.bob.clone(), w.carol.clone());
    let node = w.nodes[0].node_id();
    let owner = w.owners[0].clone();
    let new_terms = ClusterTerms {
        manager_fee_bps: 42,
        ..terms()
    };
    propose(&mut w, &bob, cluster, ClusterAction::SetTerms(new_terms));
    w.ok(
        &carol,
        TxKind::ApproveCluster {
            cluster,
            proposal: 0,
        },
    );
    assert_eq!(w.state.cluster(&cluster).unwrap().terms, new_terms);

    let before = w.balance(&owner);
    propose(&mut w, &alice, cluster, ClusterAction::Remove(node));
    w.ok(
        &carol,
        TxKind::ApproveCluster {
            cluster,
            proposal: 1,
        },
    );
    assert_eq!(
        w.balance(&owner),
        before.checked_add(terms().node_stake).unwrap()
    );
    assert!(w.state.cluster(&cluster).unwrap().members.is_empty());
    w.state.check_invariants().unwrap();
}

#[test]
fn terms_are_locked_while_buckets_are_open() {
    let mut w = World::new();
    let cluster = alice_cluster(&mut w);
    let (alice, bob) = (w.alice.clone(), w.bob.clone());
    let bucket = create_bucket(&mut w, &bob, cluster);
    let error = storage_error(w.refused(
        &alice,
        TxKind::ProposeCluster {
            cluster,
            action: ClusterAction::SetTerms(terms()),
        },
    ));
    assert!(matches!(
        error,
        StorageError::TermsLocked {
            open_buckets: 1,
            ..
        }
    ));
    w.ok(&bob, TxKind::CloseBucket { bucket });
    propose(&mut w, &alice, cluster, ClusterAction::SetTerms(terms()));
}

#[test]
fn leaving_returns_the_stake_except_for_the_last_holder_of_buckets() {
    let mut w = World::new();
    let cluster = alice_cluster(&mut w);
    let bob = w.bob.clone();
    let bucket = create_bucket(&mut w, &bob, cluster);
    let leave = |w: &World, node: usize| TxKind::LeaveCluster {
        cluster,
        node: w.nodes[node].node_id(),
    };
    // Only the owner.
    let owner0 = w.owners[0].clone();
    let owner1 = w.owners[1].clone();
    assert!(matches!(
        w.refused(&owner1, leave(&w, 0)),
        TxError::NotOwner { .. }
    ));
    let error = storage_error(w.refused(&owner1, leave(&w, 2)));
    assert!(matches!(error, StorageError::NotMember { .. }));
    let before = w.balance(&owner0);
    let kind = leave(&w, 0);
    w.ok(&owner0, kind);
    let expected = before
        .checked_add(terms().node_stake)
        .and_then(|b| b.checked_sub(MIN_FEE))
        .unwrap();
    assert_eq!(w.balance(&owner0), expected);
    // Node 1 is the last active member and bob's bucket is open.
    let error = storage_error(w.refused(&owner1, leave(&w, 1)));
    assert!(matches!(
        error,
        StorageError::LastMember {
            open_buckets: 1,
            ..
        }
    ));
    w.ok(&bob, TxKind::CloseBucket { bucket });
    let kind = leave(&w, 1);
    w.ok(&owner1, kind);
    assert!(w.state.weights(&cluster).unwrap().is_empty());
    w.state.check_invariants().unwrap();
}
