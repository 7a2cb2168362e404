//! The arithmetic of a bucket's bill: pure functions, exact integers,
//! rounding down, in a fixed order.
//!
//! - Storage: `floor(stored_bytes × price_per_gib_month × duration_ms /
//!   (2^30 × 30 days in ms))`, one product of at most 256 bits divided once
//!   ([`mul_div_floor`]), so no intermediate rounding.
//! - Bandwidth, per receipt: `floor(bytes × price_per_gib_served / 2^30)`.
//! - Repair, per repairer: the same price on the bytes its receivers
//!   acknowledged (capped by the caller at one full rebuild of the bucket).
//! - When the deposit cannot cover the whole charge, every part is scaled
//!   by `available / charged` (rounding down): the deposit pays what it has.
//! - The managers' fee is `floor(part × fee_bps / 10 000)` of each part and
//!   goes to the cluster's creator; the rest of the storage part is split
//!   among the active members in proportion to their capacity (rounding
//!   down), the rest of each bandwidth part goes to the owner of the node
//!   that served, the rest of each repair part to the repairer's owner.
//!
//! What rounding leaves over is never paid: it stays in the deposit (and
//! goes back to the owner when the bucket ends), so a bill pays out at most
//! what it charged and supply is conserved to the last unit.

use std::collections::BTreeMap;

use peercloud_types::{AccountId, Amount, NodeId};
use serde::{Deserialize, Serialize};

use crate::params::{BPS_DENOMINATOR, GIB, MONTH_MS};

/// `floor(a × b / d)` with a 256-bit intermediate product: exact, or `None`
/// when `d` is zero or the quotient does not fit in u128.
pub fn mul_div_floor(a: u128, b: u128, d: u128) -> Option<u128> {
    if d == 0 {
        return None;
    }
    let (hi, lo) = widening_mul(a, b);
    if hi >= d {
        return None;
    }
    // Binary long division of (hi, lo) by d; the remainder stays below d.
    let mut rem = hi;
    let mut quotient = 0u128;
    for bit in (0..128).rev() {
        let carry = rem >> 127;
        rem = (rem << 1) | ((lo >> bit) & 1);
        quotient <<= 1;
        if carry == 1 || rem >= d {
            rem = rem.wrapping_sub(d);
            quotient |= 1;
        }
    }
    Some(quotient)
}

/// The 256-bit product `a × b` as `(high, low)` halves.
fn widening_mul(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let lo = (p00 & MASK) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// What storing `stored_bytes` for `duration_ms` costs at `price_per_gib_month`.
pub fn storage_charge(
    stored_bytes: u64,
    duration_ms: u64,
    price_per_gib_month: Amount,
) -> Option<Amount> {
    let per_ms = u128::from(stored_bytes).checked_mul(price_per_gib_month.base_units())?;
    mul_div_floor(per_ms, u128::from(duration_ms), GIB * u128::from(MONTH_MS))
        .map(Amount::from_base_units)
}

/// What serving `bytes` costs at `price_per_gib_served`.
pub fn bandwidth_charge(bytes: u64, price_per_gib_served: Amount) -> Option<Amount> {
    mul_div_floor(u128::from(bytes), price_per_gib_served.base_units(), GIB)
        .map(Amount::from_base_units)
}

/// A member's place in the storage split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// The node.
    pub node: NodeId,
    /// Who is paid for it.
    pub owner: AccountId,
    /// Its capacity: its weight in the split.
    pub capacity_bytes: u64,
}

/// What a payment out of a bucket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PaidFor {
    /// Bytes held (and the managers' fee).
    Storage,
    /// Bytes served to a receiver who acknowledged them.
    Bandwidth,
    /// Pieces rebuilt and put on another node, which acknowledged them.
    Repair,
}

/// One payment out of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payout {
    /// The node paid for (`None`: the managers' fee).
    pub node: Option<NodeId>,
    /// Who receives it.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
    /// What for.
    pub paid_for: PaidFor,
}

/// A bill's transfer parts: per node, its owner and the charge.
pub type Parts = BTreeMap<NodeId, (AccountId, Amount)>;

/// A bill's charge and who gets what of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The full charge (storage, bandwidth and repair) before scaling.
    pub charged: Amount,
    /// The payments: the managers' fee, storage by node id, bandwidth by
    /// node id, repair by repairer id.
    /// Their sum is at most `min(charged, available)`.
    pub payouts: Vec<Payout>,
}

impl Settlement {
    /// The sum of the payouts.
    pub fn paid(&self) -> Option<Amount> {
        self.payouts
            .iter()
            .try_fold(Amount::ZERO, |sum, p| sum.checked_add(p.amount))
    }
}

/// Splits a bill of `storage` (for the `holders`), `bandwidth` (per
/// serving node and its owner) and `repairs` (per repairer and its owner)
/// out of `available`, with `fee_bps` to `manager`. With no holders the
/// storage part is not charged (nobody held the data). `None` only on an
/// overflow no bounded input reaches.
pub fn settle(
    storage: Amount,
    bandwidth: &Parts,
    repairs: &Parts,
    holders: &[Holder],
    available: Amount,
    fee_bps: u32,
    manager: AccountId,
) -> Option<Settlement> {
    let total_capacity: u128 = holders.iter().map(|h| u128::from(h.capacity_bytes)).sum();
    let storage = if total_capacity == 0 {
        Amount::ZERO
    } else {
        storage
    };
    let charged = bandwidth
        .values()
        .chain(repairs.values())
        .try_fold(storage, |sum, (_, part)| sum.checked_add(*part))?;
    let scale = |part: Amount| -> Option<Amount> {
        if available >= charged {
            return Some(part);
        }
        mul_div_floor(
            part.base_units(),
            available.base_units(),
            charged.base_units(),
        )
        .map(Amount::from_base_units)
    };
    let fee_of = |part: Amount| -> Option<Amount> {
        mul_div_floor(
            part.base_units(),
            u128::from(fee_bps),
            u128::from(BPS_DENOMINATOR),
        )
        .map(Amount::from_base_units)
    };
    let mut fee = Amount::ZERO;
    let mut payouts = Vec::new();
    let storage = scale(storage)?;
    let storage_fee = fee_of(storage)?;
    fee = fee.checked_add(storage_fee)?;
    let net = storage.checked_sub(storage_fee)?;
    for holder in holders {
        let share = mul_div_floor(
            net.base_units(),
            u128::from(holder.capacity_bytes),
            total_capacity,
        )?;
        payouts.push(Payout {
            node: Some(holder.node),
            to: holder.owner,
            amount: Amount::from_base_units(share),
            paid_for: PaidFor::Storage,
        });
    }
    let transfers = bandwidth
        .iter()
        .map(|part| (part, PaidFor::Bandwidth))
        .chain(repairs.iter().map(|part| (part, PaidFor::Repair)));
    for ((node, (owner, part)), paid_for) in transfers {
        let part = scale(*part)?;
        let part_fee = fee_of(part)?;
        fee = fee.checked_add(part_fee)?;
        payouts.push(Payout {
            node: Some(*node),
            to: *owner,
            amount: part.checked_sub(part_fee)?,
            paid_for,
        });
    }
    payouts.insert(
        0,
        Payout {
            node: None,
            to: manager,
            amount: fee,
            paid_for: PaidFor::Storage,
        },
    );
    payouts.retain(|p| !p.amount.is_zero());
    Some(Settlement { charged, payouts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The 256-bit path agrees with plain u128 arithmetic where that fits.
        #[test]
        fn mul_div_matches_small_arithmetic(a in any::<u64>(), b in any::<u64>(), d in 1u64..) {
            let expected = u128::from(a) * u128::from(b) / u128::from(d);
            prop_assert_eq!(mul_div_floor(a.into(), b.into(), d.into()), Some(expected));
        }

        /// Large operands: `(a × b) / b == a` and the quotient bound is checked.
        #[test]
        fn mul_div_is_exact_on_large_operands(a in any::<u128>(), b in 1u128..) {
            prop_assert_eq!(mul_div_floor(a, b, b), Some(a));
            if a > 1 && b > 1 {
                let fits = a.checked_mul(b).is_some();
                prop_assert_eq!(mul_div_floor(a, b, 1).is_some(), fits);
            }
        }
    }

    #[test]
    fn zero_divisor_is_none() {
        assert_eq!(mul_div_floor(1, 1, 0), None);
    }

    #[test]
    fn one_gib_month_costs_the_price() {
        let price = Amount::from_base_units(1_000_000);
        assert_eq!(storage_charge(1 << 30, MONTH_MS, price), Some(price));
        assert_eq!(bandwidth_charge(1 << 30, price), Some(price));
        // Half a GiB for a day: 1e6 / 2 / 30 = 16 666.67, rounded down.
        assert_eq!(
            storage_charge(1 << 29, crate::params::DAY_MS, price),
            Some(Amount::from_base_units(16_666))
        );
    }
}
