//! Failed audits: reports tallied per (epoch, node), a judgement at the
//! second distinct auditor (slash to the treasury, the rest of the stake
//! back, removal, reputation), every refusal, late reports, pruning, and
//! supply conserved throughout.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
mod storage_common;

use common::*;
use peercloud_ledger::params::{
    BPS_DENOMINATOR, DAY_MS, REPUTATION_PENALTY_AUDIT, REPUTATION_START,
};
use peercloud_ledger::{
    ClusterAction, ClusterId, Event, MemberStatus, StorageError, StorageEvent, TxError, TxKind,
};
use peercloud_types::{Amount, ContentId, NodeId};
use storage_common::*;

fn storage_error(error: TxError) -> StorageError {
    match error {
        TxError::Storage(e) => e,
        other => panic!("expected a storage error, got {other}"),
    }
}

/// Alice's 1-of-1 cluster with fixture nodes 0, 1 and 2 all active.
fn three_members(w: &mut World) -> ClusterId {
    let cluster = alice_cluster(w);
    join(w, cluster, 2, GIB);
    let alice = w.alice.clone();
    let node = w.nodes[2].node_id();
    propose(w, &alice, cluster, ClusterAction::Admit(node));
    cluster
}

/// The audit epoch of the world's clock under [`terms`] (1-day periods).
fn epoch(w: &World) -> u64 {
    w.time_ms / DAY_MS
}

fn piece(name: &[u8]) -> ContentId {
    ContentId::of(name)
}

/// Fixture node `auditor` reports fixture node `node` for `epoch`.
fn report_kind(w: &World, cluster: ClusterId, auditor: usize, node: usize, epoch: u64) -> TxKind {
    TxKind::ReportAudit {
        cluster,
        auditor: w.nodes[auditor].node_id(),
        node: w.nodes[node].node_id(),
        epoch,
        cid: piece(b"piece"),
    }
}

/// `auditor`'s owner reports `node` for `epoch`; expects success.
fn report(
    w: &mut World,
    cluster: ClusterId,
    auditor: usize,
    node: usize,
    epoch: u64,
) -> Vec<Event> {
    let owner = w.owners[auditor].clone();
    let kind = report_kind(w, cluster, auditor, node, epoch);
    w.ok(&owner, kind)
}

/// `auditor`'s owner reports, expecting the refusal's storage error.
fn refused_report(
    w: &mut World,
    cluster: ClusterId,
    auditor: usize,
    node: usize,
    epoch: u64,
) -> StorageError {
    let owner = w.owners[auditor].clone();
    let kind = report_kind(w, cluster, auditor, node, epoch);
    storage_error(w.refused(&owner, kind))
}

/// The auditors `cluster`'s tally holds for `node` in `epoch`.
fn tallied(w: &World, cluster: ClusterId, epoch: u64, node: usize) -> Vec<NodeId> {
    let record = w.state.cluster(&cluster).unwrap();
    record
        .audit_reports
        .get(&epoch)
        .and_then(|reports| reports.get(&w.nodes[node].node_id()))
        .map(|auditors| auditors.iter().copied().collect())
        .unwrap_or_default()
}

fn is_member(w: &World, cluster: ClusterId, node: usize) -> bool {
    w.state
        .cluster(&cluster)
        .unwrap()
        .members
        .contains_key(&w.nodes[node].node_id())
}

fn assert_books_balance(w: &World) {
    assert_eq!(w.state.held_supply().unwrap(), w.state.minted_supply());
    w.state.check_invariants().unwrap();
    assert_eq!(w.state.state_root(), w.state.root_from_scratch());
}

#[test]
fn one_report_is_tallied_and_judges_nothing() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let now = epoch(&w);
    let stake_before = w.state.cluster(&cluster).unwrap().members[&w.nodes[2].node_id()].stake;
    let root_before = w.state.state_root();
    let events = report(&mut w, cluster, 0, 2, now);
    let reported = storage_events(&events);
    assert_eq!(
        reported,
        vec![StorageEvent::AuditReported {
            cluster,
            auditor: w.nodes[0].node_id(),
            node: w.nodes[2].node_id(),
            epoch: now,
            cid: piece(b"piece"),
        }]
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ReputationChanged { .. }))
    );
    assert_eq!(tallied(&w, cluster, now, 2), vec![w.nodes[0].node_id()]);
    let member = w.state.cluster(&cluster).unwrap().members[&w.nodes[2].node_id()];
    assert_eq!(member.status, MemberStatus::Active);
    assert_eq!(member.stake, stake_before);
    assert_eq!(w.reputation(2), REPUTATION_START);
    assert_ne!(w.state.state_root(), root_before);
    assert_books_balance(&w);
}

#[test]
fn a_second_auditor_judges_the_node() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let bob = w.bob.clone();
    let bucket = create_bucket(&mut w, &bob, cluster);
    deposit(&mut w, &bob, bucket, 1_000_000);
    let now = epoch(&w);
    let held = w.state.held_supply().unwrap();
    report(&mut w, cluster, 0, 2, now);

    let stake = terms().node_stake;
    let slashed = stake
        .checked_mul_div(u128::from(SLASH_BPS), u128::from(BPS_DENOMINATOR))
        .unwrap();
    assert_eq!(slashed, Amount::from_base_units(700_000_000)); // 10% of 7 tokens
    let returned = stake.checked_sub(slashed).unwrap();
    let treasury_before = w.state.balance(&w.treasury);
    let owner_before = w.balance(&w.owners[2]);
    let node = w.nodes[2].node_id();

    // The second auditor names another piece: any two failures in one epoch judge.
    let owner = w.owners[1].clone();
    let kind = TxKind::ReportAudit {
        cluster,
        auditor: w.nodes[1].node_id(),
        node,
        epoch: now,
        cid: piece(b"another piece"),
    };
    let events = w.ok(&owner, kind);
    assert_eq!(
        storage_events(&events),
        vec![
            StorageEvent::AuditReported {
                cluster,
                auditor: w.nodes[1].node_id(),
                node,
                epoch: now,
                cid: piece(b"another piece"),
            },
            StorageEvent::AuditFailed {
                cluster,
                node,
                epoch: now,
                slashed,
                returned,
            },
            StorageEvent::MemberLeft {
                cluster,
                node,
                stake: returned,
            },
        ]
    );
    let after = REPUTATION_START - REPUTATION_PENALTY_AUDIT;
    assert!(events.contains(&Event::ReputationChanged {
        node,
        before: REPUTATION_START,
        after,
    }));
    assert_eq!(w.reputation(2), after);
    assert_eq!(
        w.state.balance(&w.treasury),
        treasury_before
            .checked_add(slashed)
            .and_then(|t| t.checked_add(MIN_FEE))
            .unwrap()
    );
    assert_eq!(
        w.balance(&w.owners[2]),
        owner_before.checked_add(returned).unwrap()
    );
    assert!(!is_member(&w, cluster, 2));
    // The judged node's reports left with it; the bucket keeps its members.
    assert!(w.state.cluster(&cluster).unwrap().audit_reports.is_empty());
    assert_eq!(w.state.weights(&cluster).unwrap().len(), 2);
    assert_eq!(w.state.held_supply().unwrap(), held);
    assert_books_balance(&w);

    // Judged and gone: a further report is refused.
    let error = refused_report(&mut w, cluster, 0, 2, now);
    assert_eq!(error, StorageError::AuditedNotActive { cluster, node });
}

#[test]
fn every_bad_report_is_refused_and_changes_nothing() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let now = epoch(&w);
    let node = |w: &World, i: usize| w.nodes[i].node_id();

    let unknown = ClusterId::derive(&w.carol.account_id(), 99);
    let error = refused_report(&mut w, unknown, 0, 2, now);
    assert_eq!(error, StorageError::UnknownCluster { cluster: unknown });

    let error = refused_report(&mut w, cluster, 0, 0, now);
    assert_eq!(
        error,
        StorageError::SelfAudit {
            cluster,
            node: node(&w, 0),
        }
    );

    // Signed by another member's owner.
    let kind = report_kind(&w, cluster, 0, 2, now);
    let intruder = w.owners[1].clone();
    let error = storage_error(w.refused(&intruder, kind));
    assert_eq!(
        error,
        StorageError::NotAuditorOwner {
            auditor: node(&w, 0),
            owner: w.owners[0].account_id(),
            signer: w.owners[1].account_id(),
        }
    );
    assert!(error.to_string().contains("not by the signer"), "{error}");

    // Two epochs ago, and the next epoch.
    for (bad, name) in [(now - 2, "two epochs ago"), (now + 1, "the next epoch")] {
        let error = refused_report(&mut w, cluster, 0, 2, bad);
        assert_eq!(
            error,
            StorageError::AuditEpochOutOfRange {
                cluster,
                epoch: bad,
                current: now,
            },
            "{name}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&bad.to_string()) && text.contains(&now.to_string()),
            "{text}"
        );
    }

    report(&mut w, cluster, 0, 2, now);
    let error = refused_report(&mut w, cluster, 0, 2, now);
    assert_eq!(
        error,
        StorageError::AuditAlreadyReported {
            cluster,
            auditor: node(&w, 0),
            node: node(&w, 2),
            epoch: now,
        }
    );
    assert!(is_member(&w, cluster, 2));
    assert_books_balance(&w);
}

#[test]
fn pending_and_foreign_nodes_neither_report_nor_are_reported() {
    let mut w = World::new();
    // Nodes 0 and 1 active, node 2 pending.
    let cluster = alice_cluster(&mut w);
    join(&mut w, cluster, 2, GIB);
    let now = epoch(&w);
    let pending = w.nodes[2].node_id();

    let error = refused_report(&mut w, cluster, 2, 0, now);
    assert_eq!(
        error,
        StorageError::AuditorNotActive {
            cluster,
            auditor: pending,
        }
    );
    let error = refused_report(&mut w, cluster, 0, 2, now);
    assert_eq!(
        error,
        StorageError::AuditedNotActive {
            cluster,
            node: pending,
        }
    );
    assert!(
        error.to_string().contains("not an active member"),
        "{error}"
    );

    // A node in no cluster at all, on either side.
    let alice = w.alice.clone();
    let lonely = create_cluster(&mut w, &alice, vec![alice.account_id()], 1, terms());
    join(&mut w, lonely, 0, GIB);
    let admitted = w.nodes[0].node_id();
    propose(&mut w, &alice, lonely, ClusterAction::Admit(admitted));
    let error = refused_report(&mut w, lonely, 1, 0, now);
    assert_eq!(
        error,
        StorageError::AuditorNotActive {
            cluster: lonely,
            auditor: w.nodes[1].node_id(),
        }
    );
    let error = refused_report(&mut w, lonely, 0, 1, now);
    assert_eq!(
        error,
        StorageError::AuditedNotActive {
            cluster: lonely,
            node: w.nodes[1].node_id(),
        }
    );
}

#[test]
fn a_late_report_counts_in_its_own_epoch() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let first = epoch(&w);
    report(&mut w, cluster, 0, 2, first);

    // The next epoch: a report of it does not join the first epoch's count.
    w.time_ms += DAY_MS;
    let second = epoch(&w);
    assert_eq!(second, first + 1);
    let events = report(&mut w, cluster, 1, 2, second);
    assert!(
        !storage_events(&events)
            .iter()
            .any(|e| matches!(e, StorageEvent::AuditFailed { .. }))
    );
    assert_eq!(tallied(&w, cluster, first, 2), vec![w.nodes[0].node_id()]);
    assert_eq!(tallied(&w, cluster, second, 2), vec![w.nodes[1].node_id()]);

    // A late report of the first epoch (its block came after it ended) does.
    let events = report(&mut w, cluster, 1, 2, first);
    assert!(
        storage_events(&events).contains(&StorageEvent::AuditFailed {
            cluster,
            node: w.nodes[2].node_id(),
            epoch: first,
            slashed: Amount::from_base_units(700_000_000),
            returned: Amount::from_base_units(6_300_000_000),
        })
    );
    assert!(!is_member(&w, cluster, 2));
    assert_books_balance(&w);
}

#[test]
fn the_tally_keeps_the_current_epoch_and_the_one_before() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let first = epoch(&w);
    report(&mut w, cluster, 0, 2, first);
    report(&mut w, cluster, 2, 1, first);
    w.time_ms += DAY_MS;
    report(&mut w, cluster, 0, 1, first + 1);
    let epochs = |w: &World| -> Vec<u64> {
        let record = w.state.cluster(&cluster).unwrap();
        record.audit_reports.keys().copied().collect()
    };
    assert_eq!(epochs(&w), vec![first, first + 1]);

    // Two epochs on, the first is pruned by the next report, the one
    // before the current stays.
    w.time_ms += DAY_MS;
    report(&mut w, cluster, 1, 0, first + 2);
    assert_eq!(epochs(&w), vec![first + 1, first + 2]);
    assert!(tallied(&w, cluster, first, 2).is_empty());
    assert_eq!(
        tallied(&w, cluster, first + 1, 1),
        vec![w.nodes[0].node_id()]
    );

    // Much later, only the new report's epoch is left.
    w.time_ms += 10 * DAY_MS;
    report(&mut w, cluster, 2, 0, first + 12);
    assert_eq!(epochs(&w), vec![first + 12]);
    assert_books_balance(&w);
}

#[test]
fn a_node_that_leaves_takes_its_reports_and_rejoins_without_them() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let now = epoch(&w);
    report(&mut w, cluster, 0, 2, now);
    let owner = w.owners[2].clone();
    let node = w.nodes[2].node_id();
    w.ok(&owner, TxKind::LeaveCluster { cluster, node });
    assert!(w.state.cluster(&cluster).unwrap().audit_reports.is_empty());

    join(&mut w, cluster, 2, GIB);
    let alice = w.alice.clone();
    propose(&mut w, &alice, cluster, ClusterAction::Admit(node));
    let events = report(&mut w, cluster, 1, 2, now);
    assert!(
        !storage_events(&events)
            .iter()
            .any(|e| matches!(e, StorageEvent::AuditFailed { .. }))
    );
    assert!(is_member(&w, cluster, 2));
    assert_books_balance(&w);
}

#[test]
fn an_auditor_that_leaves_takes_its_reports_and_they_do_not_count_on_its_return() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let now = epoch(&w);
    report(&mut w, cluster, 0, 2, now);
    let owner = w.owners[0].clone();
    let auditor = w.nodes[0].node_id();
    w.ok(
        &owner,
        TxKind::LeaveCluster {
            cluster,
            node: auditor,
        },
    );
    assert!(tallied(&w, cluster, now, 2).is_empty());
    assert!(w.state.cluster(&cluster).unwrap().audit_reports.is_empty());

    // Back as a member: its old report would have made a second owner's
    // report a judgement; it is gone, so the next report is the first.
    join(&mut w, cluster, 0, GIB);
    let alice = w.alice.clone();
    propose(&mut w, &alice, cluster, ClusterAction::Admit(auditor));
    w.state.check_invariants().unwrap();
    let events = report(&mut w, cluster, 1, 2, now);
    assert!(
        !storage_events(&events)
            .iter()
            .any(|e| matches!(e, StorageEvent::AuditFailed { .. }))
    );
    assert_eq!(tallied(&w, cluster, now, 2), vec![w.nodes[1].node_id()]);
    assert!(is_member(&w, cluster, 2));
    assert_books_balance(&w);
}

#[test]
fn new_terms_clear_the_tally() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    let now = epoch(&w);
    report(&mut w, cluster, 0, 2, now);
    let alice = w.alice.clone();
    let hourly = peercloud_ledger::ClusterTerms {
        billing_period_ms: DAY_MS / 24,
        ..terms()
    };
    propose(&mut w, &alice, cluster, ClusterAction::SetTerms(hourly));
    assert!(w.state.cluster(&cluster).unwrap().audit_reports.is_empty());
    // Epochs are now hours: the day's number is far in the past.
    let error = refused_report(&mut w, cluster, 1, 2, now);
    assert!(matches!(
        error,
        StorageError::AuditEpochOutOfRange { current, .. } if current == w.time_ms / (DAY_MS / 24)
    ));
    assert_books_balance(&w);
}

#[test]
fn reputation_does_not_go_below_zero() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    // Judge node 2 repeatedly (it rejoins each time) until its reputation is spent.
    let alice = w.alice.clone();
    let node = w.nodes[2].node_id();
    let mut judged = 0;
    while w.reputation(2) > 0 {
        let now = epoch(&w);
        report(&mut w, cluster, 0, 2, now);
        report(&mut w, cluster, 1, 2, now);
        judged += 1;
        join(&mut w, cluster, 2, GIB);
        propose(&mut w, &alice, cluster, ClusterAction::Admit(node));
    }
    assert_eq!(judged, REPUTATION_START.div_ceil(REPUTATION_PENALTY_AUDIT));
    let now = epoch(&w);
    report(&mut w, cluster, 0, 2, now);
    let events = report(&mut w, cluster, 1, 2, now);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ReputationChanged { .. }))
    );
    assert_eq!(w.reputation(2), 0);
    assert_books_balance(&w);
}

#[test]
fn two_nodes_of_one_owner_count_once_towards_a_judgement() {
    let mut w = World::new();
    let cluster = three_members(&mut w);
    // A fourth node, owned by node 0's owner, joins and is admitted.
    w.nodes.push(key(33));
    let owner0 = w.owners[0].clone();
    let kind = w.register_kind(3, &owner0);
    w.ok(&owner0, kind);
    let fourth = w.nodes[3].node_id();
    w.ok(
        &owner0,
        TxKind::JoinCluster {
            cluster,
            node: fourth,
            capacity_bytes: GIB,
        },
    );
    let alice = w.alice.clone();
    propose(&mut w, &alice, cluster, ClusterAction::Admit(fourth));
    w.time_ms += DAY_MS;
    let e = epoch(&w);
    report(&mut w, cluster, 0, 2, e);
    let kind = report_kind(&w, cluster, 3, 2, e);
    let events = w.ok(&owner0, kind);
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, Event::Storage(StorageEvent::AuditFailed { .. }))),
        "one owner's two nodes are one voice"
    );
    let target = w.nodes[2].node_id();
    assert!(
        w.state
            .cluster(&cluster)
            .unwrap()
            .members
            .contains_key(&target)
    );
    w.state.check_invariants().unwrap();
    // Another owner's report judges it.
    let events = report(&mut w, cluster, 1, 2, e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, Event::Storage(StorageEvent::AuditFailed { .. })))
    );
    assert!(
        !w.state
            .cluster(&cluster)
            .unwrap()
            .members
            .contains_key(&target)
    );
    w.state.check_invariants().unwrap();
}
