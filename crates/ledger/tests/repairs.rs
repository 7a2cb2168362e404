//! Paying the repairer: a bill's repair receipts, signed by the node that
//! received the rebuilt pieces, pay the repairer's owner at the price of
//! bytes served (less the managers' fee), at most one full rebuild of the
//! bucket per bill; every receipt that is not the receiver's, not a
//! member's, or twice in a bill refuses the whole bill and changes nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
mod storage_common;

use common::*;
use peercloud_ledger::billing::PaidFor;
use peercloud_ledger::params::DAY_MS;
use peercloud_ledger::repairs::REPAIR_RECEIPTS_PER_BILL_MAX;
use peercloud_ledger::{BucketId, RepairReceipt, StorageError, StorageEvent, TxError, TxKind};
use peercloud_types::{Amount, Signed};
use storage_common::*;

const MIB: u64 = 1 << 20;

/// Alice's cluster (nodes 0 and 1), bob's bucket holding 1 000 000 units,
/// one day later (period 0 has ended).
fn setup() -> (World, BucketId) {
    let mut w = World::new();
    let cluster = alice_cluster(&mut w);
    let bob = w.bob.clone();
    let bucket = create_bucket(&mut w, &bob, cluster);
    deposit(&mut w, &bob, bucket, 1_000_000);
    w.time_ms += DAY_MS;
    (w, bucket)
}

/// A bill of period 0 with bob's usage of `stored` bytes and `repairs`.
fn bill(w: &World, bucket: BucketId, stored: u64, repairs: Vec<Signed<RepairReceipt>>) -> TxKind {
    TxKind::BillBucket {
        bucket,
        period: 0,
        usage: Some(usage(&w.bob, bucket, stored, 1)),
        receipts: Vec::new(),
        repairs,
    }
}

/// The repair payments among `events`: (to, amount).
fn repair_paid(events: &[peercloud_ledger::Event]) -> Vec<(peercloud_types::AccountId, Amount)> {
    storage_events(events)
        .into_iter()
        .filter_map(|e| match e {
            StorageEvent::StoragePaid {
                to,
                amount,
                paid_for: PaidFor::Repair,
                ..
            } => Some((to, amount)),
            _ => None,
        })
        .collect()
}

/// 1 GiB stored for a day (the storage part of the hand-computed bill in
/// `buckets.rs`: 33 333 charged, 31 666 paid to members, 1 666 fee) and
/// 512 MiB node 1 rebuilt onto node 0 at 1 000 003 per GiB: 500 001,
/// fee 25 000, node 1's owner gets 475 001 for the repair.
#[test]
fn the_repairer_is_paid_for_the_bytes_its_receiver_acknowledged() {
    let (mut w, bucket) = setup();
    let (alice, owner0, owner1) = (w.alice.clone(), w.owners[0].clone(), w.owners[1].clone());
    let before = [w.balance(&alice), w.balance(&owner1)];
    let supply = w.state.held_supply().unwrap();
    let receipt = repair_receipt(&w, (1, 0, 0), bucket, 0, GIB / 2);
    let events = w.ok(&owner0, bill(&w, bucket, GIB, vec![receipt]));
    assert_eq!(
        repair_paid(&events),
        vec![(owner1.account_id(), Amount::from_base_units(475_001))]
    );
    assert!(
        storage_events(&events).contains(&StorageEvent::BucketBilled {
            bucket,
            period: Some(0),
            charged: Amount::from_base_units(533_334),
            paid: Amount::from_base_units(533_333),
        })
    );
    assert_eq!(
        w.balance(&alice),
        before[0]
            .checked_add(Amount::from_base_units(1_666 + 25_000))
            .unwrap()
    );
    assert_eq!(
        w.balance(&owner1),
        before[1]
            .checked_add(Amount::from_base_units(21_111 + 475_001))
            .unwrap()
    );
    assert_eq!(w.state.held_supply().unwrap(), supply);
    w.state.check_invariants().unwrap();
}

/// A bucket of 1 MiB kept in 2 replicas pays for at most 2 MiB of repair
/// per bill, whatever the receipts claim: 2 MiB at 1 000 003 per GiB is
/// 1 953 (rounded down), fee 97, the repairer gets 1 856.
#[test]
fn a_bill_pays_at_most_one_full_rebuild_of_the_bucket() {
    let (mut w, bucket) = setup();
    let owner0 = w.owners[0].clone();
    let owner1 = w.owners[1].clone();
    let receipt = repair_receipt(&w, (1, 0, 0), bucket, 0, 10 * GIB);
    let events = w.ok(&owner0, bill(&w, bucket, MIB, vec![receipt]));
    assert_eq!(
        repair_paid(&events),
        vec![(owner1.account_id(), Amount::from_base_units(1_856))]
    );
    w.state.check_invariants().unwrap();
}

#[test]
fn receipts_that_are_not_the_receivers_or_not_a_members_refuse_the_bill() {
    let (mut w, bucket) = setup();
    let owner0 = w.owners[0].clone();
    let other_bucket = BucketId::derive(&w.bob.account_id(), 777);
    type Expected = fn(&StorageError) -> bool;
    let cases: Vec<(&str, Vec<Signed<RepairReceipt>>, Expected)> = vec![
        (
            "signed by the repairer, not the receiver",
            vec![repair_receipt(&w, (1, 0, 1), bucket, 0, MIB)],
            |e| matches!(e, StorageError::BadRepairReceipt { index: 0, .. }),
        ),
        (
            "for another bucket",
            vec![repair_receipt(&w, (1, 0, 0), other_bucket, 0, MIB)],
            |e| matches!(e, StorageError::BadRepairReceipt { .. }),
        ),
        (
            "for another period",
            vec![repair_receipt(&w, (1, 0, 0), bucket, 1, MIB)],
            |e| matches!(e, StorageError::BadRepairReceipt { .. }),
        ),
        (
            "a node repairing onto itself",
            vec![repair_receipt(&w, (0, 0, 0), bucket, 0, MIB)],
            |e| matches!(e, StorageError::BadRepairReceipt { .. }),
        ),
        (
            "a receiver that is not a member",
            vec![repair_receipt(&w, (1, 2, 2), bucket, 0, MIB)],
            |e| matches!(e, StorageError::RepairNotPayable { .. }),
        ),
        (
            "a repairer that is not a member",
            vec![repair_receipt(&w, (2, 0, 0), bucket, 0, MIB)],
            |e| matches!(e, StorageError::RepairNotPayable { .. }),
        ),
        (
            "more receipts than a bill carries",
            (0..=REPAIR_RECEIPTS_PER_BILL_MAX)
                .map(|i| repair_receipt(&w, (1, 0, 0), bucket, 0, MIB + i as u64))
                .collect(),
            |e| matches!(e, StorageError::BadRepairReceipt { .. }),
        ),
        (
            "one pair twice",
            vec![
                repair_receipt(&w, (1, 0, 0), bucket, 0, MIB),
                repair_receipt(&w, (1, 0, 0), bucket, 0, 2 * MIB),
            ],
            |e| matches!(e, StorageError::DuplicateRepairReceipt { .. }),
        ),
    ];
    for (what, repairs, expected) in cases {
        match w.refused(&owner0, bill(&w, bucket, GIB, repairs)) {
            TxError::Storage(e) => assert!(expected(&e), "{what}: {e}"),
            other => panic!("{what}: expected a storage error, got {other}"),
        }
    }
    // A forged byte count under the receiver's signature does not verify.
    let mut forged = repair_receipt(&w, (1, 0, 0), bucket, 0, MIB);
    forged.body.bytes = GIB;
    match w.refused(&owner0, bill(&w, bucket, GIB, vec![forged])) {
        TxError::Storage(e) => assert!(matches!(e, StorageError::BadRepairReceipt { .. }), "{e}"),
        other => panic!("expected a storage error, got {other}"),
    }
}
