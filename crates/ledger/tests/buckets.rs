//! Buckets: creation, deposits, the bill of a period (a hand-computed
//! example with remainders), the evidence a bill may carry and every
//! refusal, the low-deposit warning, read-only grace and recovery, expiry
//! and closing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
mod storage_common;

use common::*;
use peercloud_ledger::params::DAY_MS;
use peercloud_ledger::{
    BandwidthReceipt, BucketId, BucketStatus, BucketUsage, ClusterId, StorageError, StorageEvent,
    TxError, TxKind,
};
use peercloud_types::{Amount, Signed};
use storage_common::*;

/// Whether a refusal is the one a case expects.
type Expected = fn(&StorageError) -> bool;

fn storage_error(error: TxError) -> StorageError {
    match error {
        TxError::Storage(e) => e,
        other => panic!("expected a storage error, got {other}"),
    }
}

fn units(n: u128) -> Amount {
    Amount::from_base_units(n)
}

/// Alice's cluster (nodes 0 and 1, 1 and 2 GiB) and a bucket of bob's
/// holding `deposit` base units.
fn setup(deposit_units: u128) -> (World, ClusterId, BucketId) {
    let mut w = World::new();
    let cluster = alice_cluster(&mut w);
    let bob = w.bob.clone();
    let bucket = create_bucket(&mut w, &bob, cluster);
    if deposit_units > 0 {
        deposit(&mut w, &bob, bucket, deposit_units);
    }
    (w, cluster, bucket)
}

/// Bob's usage of 1 GiB (seq `seq`) and his receipt for 512 MiB node 1 served.
fn bill_kind(w: &World, bucket: BucketId, period: u64, seq: u64) -> TxKind {
    TxKind::BillBucket {
        bucket,
        period,
        usage: Some(usage(&w.bob, bucket, GIB, seq)),
        receipts: vec![receipt(w, &w.bob, bucket, 1, period, GIB / 2)],
        repairs: Vec::new(),
    }
}

/// Node 0's owner bills `period` with [`bill_kind`].
fn bill(w: &mut World, bucket: BucketId, period: u64, seq: u64) -> Vec<peercloud_ledger::Event> {
    let kind = bill_kind(w, bucket, period, seq);
    let owner = w.owners[0].clone();
    w.ok(&owner, kind)
}

#[test]
fn create_deposit_and_close_refund() {
    let mut w = World::new();
    let cluster = alice_cluster(&mut w);
    let (bob, carol) = (w.bob.clone(), w.carol.clone());
    let nowhere = ClusterId::derive(&bob.account_id(), 12345);
    let error = storage_error(w.refused(
        &bob,
        TxKind::CreateBucket {
            cluster: nowhere,
            public: true,
        },
    ));
    assert!(matches!(error, StorageError::UnknownCluster { .. }));
    let bucket = create_bucket(&mut w, &bob, cluster);
    let record = w.state.bucket(&bucket).unwrap();
    assert_eq!(record.owner, bob.account_id());
    assert_eq!(record.status, BucketStatus::Active);
    assert_eq!(w.state.cluster(&cluster).unwrap().open_buckets, 1);

    // Anyone may top up; nothing is refused for a zero amount or a missing bucket.
    let before = w.balance(&carol);
    deposit(&mut w, &carol, bucket, 5_000);
    assert_eq!(
        w.balance(&carol),
        before
            .checked_sub(units(5_000))
            .unwrap()
            .checked_sub(MIN_FEE)
            .unwrap()
    );
    assert_eq!(
        w.state.bucket(&bucket).unwrap().deposit(),
        Some(units(5_000))
    );
    assert!(matches!(
        w.refused(
            &carol,
            TxKind::DepositBucket {
                bucket,
                amount: Amount::ZERO
            }
        ),
        TxError::ZeroAmount { .. }
    ));
    let ghost = BucketId::derive(&carol.account_id(), 999);
    let error = storage_error(w.refused(
        &carol,
        TxKind::DepositBucket {
            bucket: ghost,
            amount: units(1),
        },
    ));
    assert!(matches!(error, StorageError::UnknownBucket { .. }));
    assert!(matches!(
        w.refused(
            &carol,
            TxKind::DepositBucket {
                bucket,
                amount: ALLOCATION
            }
        ),
        TxError::InsufficientFunds { .. }
    ));

    // Only the owner closes; nothing stored, so the whole deposit comes back.
    let error = storage_error(w.refused(&carol, TxKind::CloseBucket { bucket }));
    assert!(matches!(error, StorageError::NotBucketOwner { .. }));
    let before = w.balance(&bob);
    let events = w.ok(&bob, TxKind::CloseBucket { bucket });
    assert!(
        storage_events(&events).contains(&StorageEvent::BucketEnded {
            bucket,
            expired: false,
            refund: units(5_000),
        })
    );
    assert_eq!(
        w.balance(&bob),
        before
            .checked_add(units(5_000))
            .unwrap()
            .checked_sub(MIN_FEE)
            .unwrap()
    );
    assert_eq!(
        w.state.bucket(&bucket).unwrap().status,
        BucketStatus::Closed
    );
    assert_eq!(w.state.cluster(&cluster).unwrap().open_buckets, 0);
    let error = storage_error(w.refused(
        &carol,
        TxKind::DepositBucket {
            bucket,
            amount: units(1),
        },
    ));
    assert!(matches!(error, StorageError::BucketClosed { .. }));
    let error = storage_error(w.refused(&bob, TxKind::CloseBucket { bucket }));
    assert!(matches!(error, StorageError::BucketClosed { .. }));
}

/// One day of 1 GiB at 1 000 000 per GiB-month, and 512 MiB served by node 1
/// at 1 000 003 per GiB, with a 5% fee, split 1:2 between nodes 0 and 1:
///
/// - storage: 1 000 000 / 30 = 33 333.3 → 33 333; fee 1 666.65 → 1 666;
///   the rest, 31 667, splits into 10 555.67 → 10 555 (node 0) and
///   21 111.33 → 21 111 (node 1): one unit left over;
/// - bandwidth: 1 000 003 / 2 = 500 001.5 → 500 001; fee 25 000.05 → 25 000;
///   node 1 gets 475 001;
/// - charged 533 334, paid 533 333: the unit rounding left stays in the deposit.
#[test]
fn a_bill_pays_by_hand_computed_amounts_and_keeps_the_remainder() {
    let (mut w, _, bucket) = setup(1_000_000);
    let (alice, owner0, owner1) = (w.alice.clone(), w.owners[0].clone(), w.owners[1].clone());
    let before = [w.balance(&alice), w.balance(&owner0), w.balance(&owner1)];
    let supply = w.state.held_supply().unwrap();
    // The period has not ended yet.
    let kind = bill_kind(&w, bucket, 0, 1);
    let error = storage_error(w.refused(&owner0, kind));
    assert!(matches!(error, StorageError::PeriodNotEnded { .. }));
    w.time_ms += DAY_MS;
    let events = bill(&mut w, bucket, 0, 1);
    let storage = storage_events(&events);
    assert!(storage.contains(&StorageEvent::BucketBilled {
        bucket,
        period: Some(0),
        charged: units(533_334),
        paid: units(533_333),
    }));
    assert_eq!(
        w.balance(&alice),
        before[0].checked_add(units(1_666 + 25_000)).unwrap()
    );
    assert_eq!(
        w.balance(&owner0),
        before[1]
            .checked_add(units(10_555))
            .unwrap()
            .checked_sub(MIN_FEE)
            .unwrap()
    );
    assert_eq!(
        w.balance(&owner1),
        before[2].checked_add(units(21_111 + 475_001)).unwrap()
    );
    let record = w.state.bucket(&bucket).unwrap();
    assert_eq!(record.deposit(), Some(units(1_000_000 - 533_333)));
    assert_eq!(record.next_period, 1);
    assert_eq!(record.usage_seq, 1);
    assert_eq!(record.stored_bytes, GIB);
    assert_eq!(w.state.held_supply().unwrap(), supply);
    w.state.check_invariants().unwrap();
    // 466 667 left covers less than 3 periods of 533 334.
    assert!(warned_low(&events));
}

#[test]
fn a_bill_without_a_new_usage_charges_the_bytes_of_the_last_bill() {
    let (mut w, _, bucket) = setup(1_000_000);
    w.time_ms += DAY_MS;
    bill(&mut w, bucket, 0, 1);
    let supply = w.state.held_supply().unwrap();
    w.time_ms += DAY_MS;
    let owner = w.owners[0].clone();
    let events = w.ok(
        &owner,
        TxKind::BillBucket {
            bucket,
            period: 1,
            usage: None,
            receipts: Vec::new(),
            repairs: Vec::new(),
        },
    );
    let charged = storage_events(&events)
        .into_iter()
        .find_map(|e| match e {
            StorageEvent::BucketBilled {
                period: Some(1),
                charged,
                ..
            } => Some(charged),
            _ => None,
        })
        .expect("period 1 billed");
    // The storage part of period 0's bill: 1 GiB for a day, no bandwidth.
    assert!(!charged.is_zero() && charged < units(533_334), "{charged}");
    let record = w.state.bucket(&bucket).unwrap();
    assert_eq!((record.next_period, record.usage_seq), (2, 1));
    assert_eq!(record.stored_bytes, GIB);
    assert_eq!(w.state.held_supply().unwrap(), supply);
    w.state.check_invariants().unwrap();
}

#[test]
fn evidence_that_is_not_the_owners_or_not_this_periods_is_refused() {
    let (mut w, cluster, bucket) = setup(10_000_000);
    let (bob, carol) = (w.bob.clone(), w.carol.clone());
    let owner0 = w.owners[0].clone();
    let owner2 = w.owners[2].clone();
    let other = create_bucket(&mut w, &bob, cluster);
    w.time_ms += DAY_MS;
    let with =
        |usage: Signed<BucketUsage>, receipts: Vec<Signed<BandwidthReceipt>>| TxKind::BillBucket {
            bucket,
            period: 0,
            usage: Some(usage),
            receipts,
            repairs: Vec::new(),
        };
    let good_usage = usage(&bob, bucket, GIB, 1);
    let cases: Vec<(TxKind, Expected)> = vec![
        // A receipt signed by a stranger (carol is not the bucket's receiver).
        (
            with(
                good_usage.clone(),
                vec![receipt(&w, &carol, bucket, 1, 0, GIB)],
            ),
            |e| matches!(e, StorageError::ReceiptNotFromReceiver { index: 0, .. }),
        ),
        // A receipt for another bucket.
        (
            with(
                good_usage.clone(),
                vec![receipt(&w, &bob, other, 1, 0, GIB)],
            ),
            |e| matches!(e, StorageError::ReceiptForOtherBucket { .. }),
        ),
        // A receipt for another period.
        (
            with(
                good_usage.clone(),
                vec![receipt(&w, &bob, bucket, 1, 3, GIB)],
            ),
            |e| {
                matches!(
                    e,
                    StorageError::ReceiptForOtherPeriod {
                        receipt_period: 3,
                        ..
                    }
                )
            },
        ),
        // A node that is not an active member (node 2 never joined).
        (
            with(
                good_usage.clone(),
                vec![receipt(&w, &bob, bucket, 2, 0, GIB)],
            ),
            |e| matches!(e, StorageError::ReceiptNodeNotMember { .. }),
        ),
        // Two receipts for one node.
        (
            with(
                good_usage.clone(),
                vec![
                    receipt(&w, &bob, bucket, 1, 0, GIB),
                    receipt(&w, &bob, bucket, 1, 0, GIB),
                ],
            ),
            |e| matches!(e, StorageError::DuplicateReceipt { .. }),
        ),
        // A usage carol signed, a usage for another bucket, one after the period.
        (with(usage(&carol, bucket, GIB, 1), vec![]), |e| {
            matches!(e, StorageError::UsageNotFromOwner { .. })
        }),
        (with(usage(&bob, other, GIB, 1), vec![]), |e| {
            matches!(e, StorageError::UsageForOtherBucket { .. })
        }),
        (
            with(
                Signed::new(
                    BucketUsage {
                        bucket,
                        stored_bytes: GIB,
                        seq: 1,
                        at_ms: w.time_ms + 1,
                    },
                    &bob,
                ),
                vec![],
            ),
            |e| matches!(e, StorageError::UsageAfterPeriod { .. }),
        ),
    ];
    for (kind, expected) in cases {
        let error = storage_error(w.refused(&owner0, kind));
        assert!(expected(&error), "{error}");
    }
    // A tampered receipt (bytes raised after signing).
    let mut forged = receipt(&w, &bob, bucket, 1, 0, GIB);
    forged.body.bytes *= 10;
    let error = storage_error(w.refused(&owner0, with(good_usage.clone(), vec![forged])));
    assert!(matches!(
        error,
        StorageError::BadEvidenceSignature {
            what: "bandwidth receipt"
        }
    ));
    // Only the owner of an active member bills (node 2's owner is not one).
    let kind = bill_kind(&w, bucket, 0, 1);
    let error = storage_error(w.refused(&owner2, kind));
    assert!(matches!(error, StorageError::NotActiveMember { .. }));
    let kind = bill_kind(&w, bucket, 1, 1);
    let error = storage_error(w.refused(&owner0, kind));
    assert!(matches!(
        error,
        StorageError::PeriodOutOfOrder {
            period: 1,
            next: 0,
            ..
        }
    ));

    bill(&mut w, bucket, 0, 5);
    // The period is billed once: the same bill again is refused.
    let kind = bill_kind(&w, bucket, 0, 5);
    let error = storage_error(w.refused(&owner0, kind));
    assert!(matches!(
        error,
        StorageError::PeriodAlreadyBilled { period: 0, .. }
    ));
    // An older usage than the one billed.
    w.time_ms += DAY_MS;
    let kind = bill_kind(&w, bucket, 1, 4);
    let error = storage_error(w.refused(&owner0, kind));
    assert!(matches!(
        error,
        StorageError::UsageStale {
            seq: 4,
            last: 5,
            ..
        }
    ));
    bill(&mut w, bucket, 1, 5);
    w.state.check_invariants().unwrap();
}

#[test]
fn the_low_deposit_warning_is_raised_once_per_crossing() {
    // 3 000 000 covers five bills of 533 334 and is low after the second.
    let (mut w, _, bucket) = setup(3_000_000);
    let bob = w.bob.clone();
    let mut warnings = Vec::new();
    for period in 0..4 {
        w.time_ms += DAY_MS;
        warnings.push(warned_low(&bill(&mut w, bucket, period, 1)));
        // Each bill of 533 334 pays 533 333 (the holders' shares round
        // down); the deposit covered it, so the bucket stays writable.
        assert_eq!(
            w.state.bucket(&bucket).unwrap().status,
            BucketStatus::Active,
            "after the bill of period {period}"
        );
    }
    // After each bill: 2 466 667, 1 933 334 (≥ 1 600 002), 1 400 001 (low), 866 668.
    assert_eq!(warnings, vec![false, false, true, false]);
    assert!(w.state.bucket(&bucket).unwrap().low_warned);
    // A deposit back above the line lowers the flag; the next crossing warns again.
    assert!(!warned_low(&deposit(&mut w, &bob, bucket, 1_000_000)));
    assert!(!w.state.bucket(&bucket).unwrap().low_warned);
    w.time_ms += DAY_MS;
    assert!(warned_low(&bill(&mut w, bucket, 4, 1)));
    // A deposit that stays below the line does not warn again.
    assert!(!warned_low(&deposit(&mut w, &bob, bucket, 1)));
}

#[test]
fn a_short_bill_makes_the_bucket_read_only_until_a_deposit_covers_a_period() {
    let (mut w, _, bucket) = setup(100_000);
    let (bob, carol) = (w.bob.clone(), w.carol.clone());
    w.time_ms += DAY_MS;
    let events = bill(&mut w, bucket, 0, 1);
    let storage = storage_events(&events);
    let Some(StorageEvent::BucketBilled { charged, paid, .. }) = storage
        .iter()
        .find(|e| matches!(e, StorageEvent::BucketBilled { .. }))
    else {
        panic!("no bill event in {storage:?}");
    };
    assert_eq!(*charged, units(533_334));
    assert!(
        *paid <= units(100_000) && *paid > units(99_990),
        "paid {paid:?}"
    );
    let since_ms = w.time_ms;
    assert!(storage.contains(&StorageEvent::BucketReadOnly {
        bucket,
        grace_ends_ms: since_ms + 2 * DAY_MS,
    }));
    assert_eq!(
        w.state.bucket(&bucket).unwrap().status,
        BucketStatus::ReadOnly { since_ms }
    );
    w.state.check_invariants().unwrap();
    // The grace is not over: no expiry.
    w.time_ms += DAY_MS;
    let error = storage_error(w.refused(&carol, TxKind::ExpireBucket { bucket }));
    assert!(matches!(error, StorageError::GraceNotOver { .. }));
    // Too small a deposit leaves it read-only; one covering a period reactivates it.
    deposit(&mut w, &carol, bucket, 1_000);
    assert!(matches!(
        w.state.bucket(&bucket).unwrap().status,
        BucketStatus::ReadOnly { .. }
    ));
    let events = deposit(&mut w, &bob, bucket, 600_000);
    assert!(storage_events(&events).contains(&StorageEvent::BucketReactivated { bucket }));
    assert_eq!(
        w.state.bucket(&bucket).unwrap().status,
        BucketStatus::Active
    );
    let error = storage_error(w.refused(&carol, TxKind::ExpireBucket { bucket }));
    assert!(matches!(error, StorageError::NotReadOnly { .. }));
}

#[test]
fn a_read_only_bucket_expires_after_its_grace_and_refunds_the_rest() {
    let (mut w, cluster, bucket) = setup(100_000);
    let (bob, carol) = (w.bob.clone(), w.carol.clone());
    w.time_ms += DAY_MS;
    bill(&mut w, bucket, 0, 1);
    let left = w.state.bucket(&bucket).unwrap().deposit().unwrap();
    deposit(&mut w, &carol, bucket, 7);
    w.time_ms += 2 * DAY_MS;
    let before = w.balance(&bob);
    let events = w.ok(&carol, TxKind::ExpireBucket { bucket });
    let refund = left.checked_add(units(7)).unwrap();
    assert!(
        storage_events(&events).contains(&StorageEvent::BucketEnded {
            bucket,
            expired: true,
            refund,
        })
    );
    assert_eq!(w.balance(&bob), before.checked_add(refund).unwrap());
    let record = w.state.bucket(&bucket).unwrap();
    assert_eq!(record.status, BucketStatus::Expired);
    assert_eq!(record.deposit(), Some(Amount::ZERO));
    assert_eq!(w.state.cluster(&cluster).unwrap().open_buckets, 0);
    let kind = bill_kind(&w, bucket, 1, 1);
    let owner0 = w.owners[0].clone();
    let error = storage_error(w.refused(&owner0, kind));
    assert!(matches!(error, StorageError::BucketClosed { .. }));
    let error = storage_error(w.refused(&carol, TxKind::ExpireBucket { bucket }));
    assert!(matches!(error, StorageError::BucketClosed { .. }));
    w.state.check_invariants().unwrap();
}

#[test]
fn closing_bills_the_storage_since_the_last_period() {
    let (mut w, _, bucket) = setup(1_000_000);
    let (alice, bob) = (w.alice.clone(), w.bob.clone());
    w.time_ms += DAY_MS;
    bill(&mut w, bucket, 0, 1);
    // Half a day more of 1 GiB: 16 666.67 → 16 666; fee 833.3 → 833; the
    // rest 15 833 splits 5 277.67 → 5 277 and 10 555.33 → 10 555.
    w.time_ms += DAY_MS / 2;
    let alice_before = w.balance(&alice);
    let held = w.state.bucket(&bucket).unwrap().deposit().unwrap();
    let before = w.balance(&bob);
    let events = w.ok(&bob, TxKind::CloseBucket { bucket });
    let paid = units(833 + 5_277 + 10_555);
    assert!(
        storage_events(&events).contains(&StorageEvent::BucketBilled {
            bucket,
            period: None,
            charged: units(16_666),
            paid,
        })
    );
    assert_eq!(
        w.balance(&alice),
        alice_before.checked_add(units(833)).unwrap()
    );
    let refund = held.checked_sub(paid).unwrap();
    assert_eq!(
        w.balance(&bob),
        before
            .checked_add(refund)
            .unwrap()
            .checked_sub(MIN_FEE)
            .unwrap()
    );
    w.state.check_invariants().unwrap();
}
