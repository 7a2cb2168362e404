//! Paying for repair: the receipts a bill carries for pieces rebuilt onto
//! other nodes, checked and turned into one charge per repairer.
//!
//! A repair receipt is signed by the node that *received* the rebuilt
//! pieces (its node key), cumulative per (repairer, receiver) and period,
//! so a repairer is paid only for bytes another node acknowledges. Rules:
//! - the receipt is the receiver's signature, for this bucket and period;
//! - both nodes are members of the bucket's cluster (the repairer an
//!   active one: it is paid), and their owners differ — nobody is paid for
//!   moving bytes between its own nodes;
//! - one receipt per pair in a bill, at most [`REPAIR_RECEIPTS_PER_BILL_MAX`];
//! - the bytes paid in one bill are at most one full rebuild of the bucket
//!   (its stored bytes times the cluster's expansion: `n` for `n` replicas,
//!   `(k + m) / k` for Reed-Solomon, rounded up), taken in the order the
//!   receipts come; two colluding members can at worst bill one rebuild a
//!   period, at the price of bytes served.

use std::collections::BTreeSet;

use peercloud_types::Signed;

use crate::billing::{Parts, bandwidth_charge};
use crate::error::TxError;
use crate::storage_error::StorageError;
use crate::storage_records::{BucketId, ClusterRecord, MemberStatus, Redundancy, RepairReceipt};

/// Most repair receipts one bill carries: a bill stays small and quick to
/// check whatever receivers sign (the bill runner keeps the largest).
pub const REPAIR_RECEIPTS_PER_BILL_MAX: usize = 64;

/// The most repair bytes one bill of a bucket holding `stored_bytes` pays
/// for: one full rebuild under `redundancy`.
pub fn repair_cap_bytes(stored_bytes: u64, redundancy: Redundancy) -> u64 {
    let stored = u128::from(stored_bytes);
    let cap = match redundancy {
        Redundancy::Replicas(n) => stored * u128::from(n),
        Redundancy::ReedSolomon { data, parity } => {
            let pieces = u128::from(data) + u128::from(parity);
            let data = u128::from(data.max(1));
            // ceil(stored × pieces / data): stored < 2^64 and pieces < 2^9,
            // so the product fits.
            (stored * pieces).div_ceil(data)
        }
    };
    u64::try_from(cap).unwrap_or(u64::MAX)
}

/// Checks a bill's repair receipts and prices them: one part per repairer
/// (its owner and the charge for the bytes its receivers acknowledged,
/// within [`repair_cap_bytes`]).
pub(crate) fn repair_parts(
    cluster: &ClusterRecord,
    bucket: &BucketId,
    period: u64,
    stored_bytes: u64,
    repairs: &[Signed<RepairReceipt>],
) -> Result<Parts, TxError> {
    if repairs.len() > REPAIR_RECEIPTS_PER_BILL_MAX {
        return Err(StorageError::BadRepairReceipt {
            index: REPAIR_RECEIPTS_PER_BILL_MAX,
            reason: format!(
                "is one too many: a bill carries at most {REPAIR_RECEIPTS_PER_BILL_MAX} repair receipts"
            ),
        }
        .into());
    }
    let mut left = repair_cap_bytes(stored_bytes, cluster.terms.redundancy);
    let mut bytes_by_repairer = std::collections::BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (index, receipt) in repairs.iter().enumerate() {
        let body = &receipt.body;
        check(receipt, index, bucket, period)?;
        let not_payable = |reason| StorageError::RepairNotPayable {
            index,
            repairer: body.repairer,
            receiver: body.receiver,
            reason,
        };
        let repairer = match cluster.members.get(&body.repairer) {
            Some(m) if m.status == MemberStatus::Active => m,
            _ => return Err(not_payable("the repairer is not an active member").into()),
        };
        let Some(receiver) = cluster.members.get(&body.receiver) else {
            return Err(not_payable("the receiver is not a member").into());
        };
        if repairer.owner == receiver.owner {
            return Err(not_payable("both nodes have one owner").into());
        }
        if !seen.insert((body.repairer, body.receiver)) {
            return Err(StorageError::DuplicateRepairReceipt {
                repairer: body.repairer,
                receiver: body.receiver,
            }
            .into());
        }
        let bytes = body.bytes.min(left);
        left -= bytes;
        let (_, total) = bytes_by_repairer
            .entry(body.repairer)
            .or_insert((repairer.owner, 0u64));
        *total = total.saturating_add(bytes);
    }
    let price = cluster.terms.price_per_gib_served;
    let mut parts = Parts::new();
    for (node, (owner, bytes)) in bytes_by_repairer {
        let charge = bandwidth_charge(bytes, price).ok_or(TxError::Overflow {
            what: "a repair charge",
        })?;
        parts.insert(node, (owner, charge));
    }
    Ok(parts)
}

/// The receipt is the receiver node's signature, for this bucket and period.
fn check(
    receipt: &Signed<RepairReceipt>,
    index: usize,
    bucket: &BucketId,
    period: u64,
) -> Result<(), StorageError> {
    let body = &receipt.body;
    let bad = |reason: String| StorageError::BadRepairReceipt { index, reason };
    if receipt.signer != *body.receiver.key() {
        return Err(bad(format!(
            "is not signed by its receiver {}",
            body.receiver
        )));
    }
    if receipt.verify().is_err() {
        return Err(bad("has a bad signature".into()));
    }
    if body.bucket != *bucket {
        return Err(bad(format!("is for {}, not {bucket}", body.bucket)));
    }
    if body.period != period {
        return Err(bad(format!(
            "is for period {}, not period {period}",
            body.period
        )));
    }
    if body.repairer == body.receiver {
        return Err(bad("names one node as repairer and receiver".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_one_full_rebuild() {
        assert_eq!(repair_cap_bytes(100, Redundancy::Replicas(3)), 300);
        // RS(4+2): 1.5x, rounded up.
        let rs = Redundancy::ReedSolomon { data: 4, parity: 2 };
        assert_eq!(repair_cap_bytes(100, rs), 150);
        assert_eq!(repair_cap_bytes(101, rs), 152, "151.5 rounds up");
        assert_eq!(repair_cap_bytes(0, Redundancy::Replicas(3)), 0);
        assert_eq!(
            repair_cap_bytes(u64::MAX, Redundancy::Replicas(3)),
            u64::MAX
        );
    }
}
