//! Buckets on the ledger: created in a cluster, funded by deposits (anyone
//! may top one up), billed period by period from the owner's signed usage
//! and the receivers' signed bandwidth receipts, warned when the deposit
//! runs low, read-only for the cluster's grace when a bill finds it short,
//! and ended by its owner (`CloseBucket`) or after its grace (`ExpireBucket`).
//!
//! Rules chosen here:
//! - Periods are billed in order, each once, by the owner of any active
//!   member, once the period has ended. The usage must be the owner's, for
//!   this bucket, signed no later than the period's end, and not older than
//!   the usage the last bill used; a bill without one charges the bytes the
//!   last bill used (nothing was written since). Receipts must be signed by their
//!   receiver, which must be the bucket's owner. Repair receipts are
//!   `repairs.rs`'s.
//! - A read-only bucket becomes active again when a deposit brings it to at
//!   least the last period's charge.
//! - `CloseBucket` bills the storage since the last billed period at the last
//!   billed usage (no bandwidth: unbilled receipts are forfeited, so members
//!   bill promptly), then refunds the rest. `ExpireBucket` refunds the rest
//!   without billing the grace.

use std::collections::{BTreeMap, BTreeSet};

use peercloud_types::{AccountId, Amount, Signed};

use crate::billing::{Holder, Parts, bandwidth_charge, settle, storage_charge};
use crate::clusters::cluster_record;
use crate::context::BlockContext;
use crate::error::TxError;
use crate::event::{Event, StorageEvent};
use crate::funds::{credit, debit};
use crate::params::LOW_DEPOSIT_PERIODS;
use crate::repairs::repair_parts;
use crate::state::State;
use crate::storage_error::StorageError;
use crate::storage_records::{
    BandwidthReceipt, BucketId, BucketRecord, BucketStatus, BucketUsage, ClusterId, ClusterRecord,
    MemberStatus, RepairReceipt,
};

fn bucket_record(state: &State, bucket: &BucketId) -> Result<BucketRecord, StorageError> {
    let record = state
        .bucket(bucket)
        .cloned()
        .ok_or(StorageError::UnknownBucket { bucket: *bucket })?;
    if record.status.is_closed() {
        return Err(StorageError::BucketClosed { bucket: *bucket });
    }
    Ok(record)
}

fn held(record: &BucketRecord) -> Result<Amount, TxError> {
    record.deposit().ok_or(TxError::Overflow {
        what: "a bucket's deposit",
    })
}

pub(crate) fn create(
    state: &mut State,
    owner: &AccountId,
    nonce: u64,
    cluster: &ClusterId,
    public: bool,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut cluster_rec = cluster_record(state, cluster)?;
    let bucket = BucketId::derive(owner, nonce);
    if state.bucket(&bucket).is_some() {
        return Err(StorageError::BucketExists { bucket }.into());
    }
    cluster_rec.open_buckets =
        cluster_rec
            .open_buckets
            .checked_add(1)
            .ok_or(TxError::Overflow {
                what: "a cluster's open buckets",
            })?;
    state.clusters.put(*cluster, cluster_rec);
    let record = BucketRecord {
        owner: *owner,
        cluster: *cluster,
        public,
        created_ms: ctx.time_ms,
        deposited: Amount::ZERO,
        released: Amount::ZERO,
        next_period: 0,
        billed_until_ms: ctx.time_ms,
        usage_seq: 0,
        stored_bytes: 0,
        last_charge: Amount::ZERO,
        low_warned: false,
        status: BucketStatus::Active,
    };
    state.buckets.put(bucket, record);
    events.push(Event::Storage(StorageEvent::BucketCreated {
        bucket,
        cluster: *cluster,
        owner: *owner,
    }));
    Ok(())
}

/// Raises `BucketLow` when the deposit first falls under
/// `LOW_DEPOSIT_PERIODS` times the last charge; lowers the flag when it is
/// back above.
fn check_low(
    bucket: &BucketId,
    record: &mut BucketRecord,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let deposit = held(record)?;
    let per_period = record.last_charge;
    let floor = per_period
        .checked_mul(LOW_DEPOSIT_PERIODS)
        .unwrap_or(Amount::from_base_units(u128::MAX));
    let low = !per_period.is_zero() && deposit < floor;
    if low && !record.low_warned {
        events.push(Event::Storage(StorageEvent::BucketLow {
            bucket: *bucket,
            deposit,
            per_period,
        }));
    }
    record.low_warned = low;
    Ok(())
}

pub(crate) fn deposit(
    state: &mut State,
    from: &AccountId,
    bucket: &BucketId,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if amount.is_zero() {
        return Err(TxError::ZeroAmount {
            what: "bucket deposit",
        });
    }
    let mut record = bucket_record(state, bucket)?;
    debit(state, from, amount)?;
    record.deposited = record
        .deposited
        .checked_add(amount)
        .ok_or(TxError::Overflow {
            what: "a bucket's deposit",
        })?;
    events.push(Event::Storage(StorageEvent::BucketDeposited {
        bucket: *bucket,
        from: *from,
        amount,
    }));
    if let BucketStatus::ReadOnly { .. } = record.status
        && held(&record)? >= record.last_charge
    {
        record.status = BucketStatus::Active;
        events.push(Event::Storage(StorageEvent::BucketReactivated {
            bucket: *bucket,
        }));
    }
    check_low(bucket, &mut record, events)?;
    state.buckets.put(*bucket, record);
    Ok(())
}

/// The active members as the storage split sees them, in node id order.
fn holders(cluster: &ClusterRecord) -> Vec<Holder> {
    cluster
        .members
        .iter()
        .filter(|(_, m)| m.status == MemberStatus::Active)
        .map(|(node, m)| Holder {
            node: *node,
            owner: m.owner,
            capacity_bytes: m.capacity_bytes,
        })
        .collect()
}

/// Pays a bill of `storage`, `bandwidth` and `repairs` out of `record`'s
/// deposit; returns (charged, paid, whether the deposit covered the bill).
fn pay(
    state: &mut State,
    bucket: &BucketId,
    record: &mut BucketRecord,
    cluster: &ClusterRecord,
    storage: Amount,
    (bandwidth, repairs): (&Parts, &Parts),
    events: &mut Vec<Event>,
) -> Result<(Amount, Amount, bool), TxError> {
    let overflow = TxError::Overflow { what: "a bill" };
    let available = held(record)?;
    let settlement = settle(
        storage,
        bandwidth,
        repairs,
        &holders(cluster),
        available,
        cluster.terms.manager_fee_bps,
        cluster.creator,
    )
    .ok_or(overflow.clone())?;
    let paid = settlement.paid().ok_or(overflow.clone())?;
    if paid > available {
        return Err(overflow);
    }
    for payout in &settlement.payouts {
        credit(state, &payout.to, payout.amount)?;
        events.push(Event::Storage(StorageEvent::StoragePaid {
            bucket: *bucket,
            node: payout.node,
            to: payout.to,
            amount: payout.amount,
            paid_for: payout.paid_for,
        }));
    }
    record.released = record.released.checked_add(paid).ok_or(overflow)?;
    // Covered when the deposit held the whole bill: what shares split by
    // capacity round down (a few base units) stays in the deposit and is
    // no shortfall.
    Ok((settlement.charged, paid, available >= settlement.charged))
}

/// The fields of a `BillBucket` transaction.
pub(crate) struct Bill<'a> {
    pub(crate) bucket: BucketId,
    pub(crate) period: u64,
    pub(crate) usage: Option<&'a Signed<BucketUsage>>,
    pub(crate) receipts: &'a [Signed<BandwidthReceipt>],
    pub(crate) repairs: &'a [Signed<RepairReceipt>],
}

pub(crate) fn bill(
    state: &mut State,
    signer: &AccountId,
    bill: Bill<'_>,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let Bill {
        bucket,
        period,
        usage,
        receipts,
        repairs,
    } = bill;
    let mut record = bucket_record(state, &bucket)?;
    let cluster = cluster_record(state, &record.cluster)?;
    let is_active_owner = cluster
        .members
        .values()
        .any(|m| m.status == MemberStatus::Active && m.owner == *signer);
    if !is_active_owner {
        return Err(StorageError::NotActiveMember {
            cluster: record.cluster,
            signer: *signer,
        }
        .into());
    }
    // The evidence first: a receipt that is not the owner's is refused as
    // that, whatever the state of the period it names.
    for (index, receipt) in receipts.iter().enumerate() {
        check_receipt(&record, &bucket, period, index, receipt)?;
    }
    if period < record.next_period {
        return Err(StorageError::PeriodAlreadyBilled { bucket, period }.into());
    }
    if period > record.next_period {
        return Err(StorageError::PeriodOutOfOrder {
            bucket,
            period,
            next: record.next_period,
        }
        .into());
    }
    let length = cluster.terms.billing_period_ms;
    let ends_ms = period
        .checked_add(1)
        .and_then(|p| p.checked_mul(length))
        .and_then(|offset| offset.checked_add(record.created_ms))
        .ok_or(TxError::Overflow {
            what: "a period's end",
        })?;
    if ends_ms > ctx.time_ms {
        return Err(StorageError::PeriodNotEnded {
            bucket,
            period,
            ends_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    // No new usage: the bucket holds what the last bill said it held.
    let (stored_bytes, usage_seq) = match usage {
        Some(usage) => {
            check_usage(&record, &bucket, usage, ends_ms)?;
            (usage.body.stored_bytes, usage.body.seq)
        }
        None => (record.stored_bytes, record.usage_seq),
    };
    let price = cluster.terms.price_per_gib_served;
    let mut bandwidth = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (index, receipt) in receipts.iter().enumerate() {
        let body = &receipt.body;
        let owner = match cluster.members.get(&body.node) {
            Some(m) if m.status == MemberStatus::Active => m.owner,
            _ => {
                return Err(StorageError::ReceiptNodeNotMember {
                    index,
                    node: body.node,
                    cluster: record.cluster,
                }
                .into());
            }
        };
        if !seen.insert(body.node) {
            return Err(StorageError::DuplicateReceipt { node: body.node }.into());
        }
        let charge = bandwidth_charge(body.bytes, price).ok_or(TxError::Overflow {
            what: "a bandwidth charge",
        })?;
        bandwidth.insert(body.node, (owner, charge));
    }
    let repairs = repair_parts(&cluster, &bucket, period, stored_bytes, repairs)?;
    let repair_charge = repairs
        .values()
        .try_fold(Amount::ZERO, |sum, (_, part)| sum.checked_add(*part))
        .ok_or(TxError::Overflow {
            what: "a repair charge",
        })?;
    let storage = storage_charge(stored_bytes, length, cluster.terms.price_per_gib_month).ok_or(
        TxError::Overflow {
            what: "a storage charge",
        },
    )?;
    let (charged, paid, covered) = pay(
        state,
        &bucket,
        &mut record,
        &cluster,
        storage,
        (&bandwidth, &repairs),
        events,
    )?;
    record.next_period = period.saturating_add(1);
    record.billed_until_ms = ends_ms;
    record.usage_seq = usage_seq;
    record.stored_bytes = stored_bytes;
    // The estimate of the next bill: a repair is a one-off, not a rate.
    record.last_charge = charged.checked_sub(repair_charge).unwrap_or(charged);
    events.push(Event::Storage(StorageEvent::BucketBilled {
        bucket,
        period: Some(period),
        charged,
        paid,
    }));
    if !covered && record.status == BucketStatus::Active {
        record.status = BucketStatus::ReadOnly {
            since_ms: ctx.time_ms,
        };
        events.push(Event::Storage(StorageEvent::BucketReadOnly {
            bucket,
            grace_ends_ms: ctx.time_ms.saturating_add(cluster.terms.grace_ms),
        }));
    }
    check_low(&bucket, &mut record, events)?;
    state.buckets.put(bucket, record);
    Ok(())
}

fn check_usage(
    record: &BucketRecord,
    bucket: &BucketId,
    usage: &Signed<BucketUsage>,
    ends_ms: u64,
) -> Result<(), StorageError> {
    usage
        .verify()
        .map_err(|_| StorageError::BadEvidenceSignature { what: "usage" })?;
    if usage.body.bucket != *bucket {
        return Err(StorageError::UsageForOtherBucket {
            bucket: *bucket,
            usage_bucket: usage.body.bucket,
        });
    }
    let signer = AccountId(usage.signer);
    if signer != record.owner {
        return Err(StorageError::UsageNotFromOwner {
            bucket: *bucket,
            owner: record.owner,
            signer,
        });
    }
    if usage.body.seq < record.usage_seq {
        return Err(StorageError::UsageStale {
            bucket: *bucket,
            seq: usage.body.seq,
            last: record.usage_seq,
        });
    }
    if usage.body.at_ms > ends_ms {
        return Err(StorageError::UsageAfterPeriod {
            at_ms: usage.body.at_ms,
            ends_ms,
        });
    }
    Ok(())
}

fn check_receipt(
    record: &BucketRecord,
    bucket: &BucketId,
    period: u64,
    index: usize,
    receipt: &Signed<BandwidthReceipt>,
) -> Result<(), StorageError> {
    receipt
        .verify()
        .map_err(|_| StorageError::BadEvidenceSignature {
            what: "bandwidth receipt",
        })?;
    let body = &receipt.body;
    if body.bucket != *bucket {
        return Err(StorageError::ReceiptForOtherBucket {
            index,
            bucket: *bucket,
            receipt_bucket: body.bucket,
        });
    }
    if body.period != period {
        return Err(StorageError::ReceiptForOtherPeriod {
            index,
            period,
            receipt_period: body.period,
        });
    }
    let signer = AccountId(receipt.signer);
    if signer != body.receiver || body.receiver != record.owner {
        return Err(StorageError::ReceiptNotFromReceiver {
            index,
            signer,
            owner: record.owner,
        });
    }
    Ok(())
}

/// Ends `record`: refunds what it holds to its owner, marks it closed or
/// expired, and takes it off its cluster's open buckets.
fn end(
    state: &mut State,
    bucket: &BucketId,
    mut record: BucketRecord,
    expired: bool,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let refund = held(&record)?;
    credit(state, &record.owner, refund)?;
    record.released = record.deposited;
    record.status = if expired {
        BucketStatus::Expired
    } else {
        BucketStatus::Closed
    };
    let mut cluster = cluster_record(state, &record.cluster)?;
    cluster.open_buckets = cluster.open_buckets.saturating_sub(1);
    state.clusters.put(record.cluster, cluster);
    state.buckets.put(*bucket, record);
    events.push(Event::Storage(StorageEvent::BucketEnded {
        bucket: *bucket,
        expired,
        refund,
    }));
    Ok(())
}

pub(crate) fn close(
    state: &mut State,
    signer: &AccountId,
    bucket: &BucketId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = bucket_record(state, bucket)?;
    if record.owner != *signer {
        return Err(StorageError::NotBucketOwner {
            bucket: *bucket,
            owner: record.owner,
            signer: *signer,
        }
        .into());
    }
    let cluster = cluster_record(state, &record.cluster)?;
    let duration = ctx.time_ms.saturating_sub(record.billed_until_ms);
    let storage = storage_charge(
        record.stored_bytes,
        duration,
        cluster.terms.price_per_gib_month,
    )
    .ok_or(TxError::Overflow {
        what: "a storage charge",
    })?;
    if !storage.is_zero() {
        let (charged, paid, _) = pay(
            state,
            bucket,
            &mut record,
            &cluster,
            storage,
            (&Parts::new(), &Parts::new()),
            events,
        )?;
        events.push(Event::Storage(StorageEvent::BucketBilled {
            bucket: *bucket,
            period: None,
            charged,
            paid,
        }));
    }
    record.billed_until_ms = record.billed_until_ms.max(ctx.time_ms);
    end(state, bucket, record, false, events)
}

pub(crate) fn expire(
    state: &mut State,
    bucket: &BucketId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let record = bucket_record(state, bucket)?;
    let BucketStatus::ReadOnly { since_ms } = record.status else {
        return Err(StorageError::NotReadOnly { bucket: *bucket }.into());
    };
    let grace = cluster_record(state, &record.cluster)?.terms.grace_ms;
    let ends_ms = since_ms.saturating_add(grace);
    if ctx.time_ms < ends_ms {
        return Err(StorageError::GraceNotOver {
            bucket: *bucket,
            ends_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    end(state, bucket, record, true, events)
}
