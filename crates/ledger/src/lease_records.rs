//! The ledger's record of a lease (issue 11) and the arithmetic of its
//! periods: when it ends, what each period costs, what is still owed.
//!
//! A lease's periods count from its activation: period `p` covers
//! `[since + p * period, since + (p + 1) * period)`. The deposit buys
//! `deposited / price` whole periods (a fixed-length lease at most its
//! `max_periods`), so the lease ends at the earlier of that and a close.
//! Every period is either paid to the node (proven up by probes) or credited
//! back to the user, never both; a period cut short by a close costs
//! `price * used_ms / period_ms`, rounded down.

use peercloud_types::{
    AccountId, Amount, Hash32, Kind, LeaseId, NodeId, Resources, SpaceKind, Versioned,
};
use serde::{Deserialize, Serialize};

use crate::table::TableKey;

impl TableKey for LeaseId {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.0.0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(|k| LeaseId(Hash32(k)))
    }
}

/// Where a lease is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseStatus {
    /// Agreed and funded; the node builds the space, the user has until
    /// `activate_by_ms` to verify access.
    Pending,
    /// The user verified access at `since_ms`: periods run from then.
    Active {
        /// Block time of the activation.
        since_ms: u64,
    },
    /// Closed early (by the user or the node) at `end_ms`; periods up to it
    /// may still be billed until the bill window passes.
    Closed {
        /// Block time of the activation.
        since_ms: u64,
        /// Block time of the close.
        end_ms: u64,
    },
    /// Over: everything it held is paid or refunded.
    Settled,
    /// Never activated; the whole deposit went back.
    Cancelled,
}

impl LeaseStatus {
    /// Short name for errors and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            LeaseStatus::Pending => "pending",
            LeaseStatus::Active { .. } => "active",
            LeaseStatus::Closed { .. } => "closed",
            LeaseStatus::Settled => "settled",
            LeaseStatus::Cancelled => "cancelled",
        }
    }

    /// Whether periods run (activated, not settled): active or closed,
    /// the statuses a bill and a settlement take.
    pub fn billable(self) -> bool {
        matches!(
            self,
            LeaseStatus::Active { .. } | LeaseStatus::Closed { .. }
        )
    }

    /// Whether the lease holds nothing any more.
    pub fn is_final(self) -> bool {
        matches!(self, LeaseStatus::Settled | LeaseStatus::Cancelled)
    }
}

/// A lease between a user and a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The renter: the only one let into the space; refunds go to it.
    pub user: AccountId,
    /// The node that runs the space; its owner is paid.
    pub node: NodeId,
    /// The digest of the request it was awarded for.
    pub request: Hash32,
    /// The kind of space.
    pub kind: SpaceKind,
    /// What the space gets.
    pub resources: Resources,
    /// The awarded price per period (the auction's clearing price).
    pub price_per_period: Amount,
    /// The billing period in ms.
    pub period_ms: u64,
    /// Periods bought for a fixed-length lease; `None` is open-ended.
    pub max_periods: Option<u64>,
    /// Block time of the `OpenLease`.
    pub opened_ms: u64,
    /// The user must activate by then, or anyone may cancel.
    pub activate_by_ms: u64,
    /// Tokens deposited, ever.
    pub deposited: Amount,
    /// Paid to the node's owner, ever.
    pub paid: Amount,
    /// Given back to the user, ever (unproven periods, a close, the end).
    pub refunded: Amount,
    /// The first period not yet billed.
    pub next_period: u64,
    /// Periods billed as paid (proven up).
    pub periods_up: u64,
    /// Periods credited back to the user (nobody proved the space up).
    pub periods_down: u64,
    /// Whether the low-deposit warning is raised (emitted once per crossing).
    pub low_warned: bool,
    /// Its status.
    pub status: LeaseStatus,
}

impl Versioned for LeaseRecord {
    const KIND: u8 = Kind::StateEntry as u8;
    const VERSION: u8 = 1;
}

impl LeaseRecord {
    /// Tokens the lease holds (`deposited - paid - refunded`); `None` only
    /// if the escrow invariant is broken.
    pub fn held(&self) -> Option<Amount> {
        self.deposited
            .checked_sub(self.paid)?
            .checked_sub(self.refunded)
    }

    /// Whole periods the deposits pay for (a fixed-length lease: at most
    /// its length).
    pub fn covered_periods(&self) -> u64 {
        let bought = match self.price_per_period.base_units() {
            0 => u64::MAX,
            price => u64::try_from(self.deposited.base_units() / price).unwrap_or(u64::MAX),
        };
        self.max_periods.map_or(bought, |max| bought.min(max))
    }

    /// When periods started counting, for an activated lease.
    pub fn since_ms(&self) -> Option<u64> {
        match self.status {
            LeaseStatus::Active { since_ms } | LeaseStatus::Closed { since_ms, .. } => {
                Some(since_ms)
            }
            _ => None,
        }
    }

    /// When the lease ends (or ended): the close, or the end of the last
    /// covered period. `None` before activation and after settlement.
    pub fn end_ms(&self) -> Option<u64> {
        match self.status {
            LeaseStatus::Closed { end_ms, .. } => Some(end_ms),
            LeaseStatus::Active { since_ms } => Some(
                self.covered_periods()
                    .saturating_mul(self.period_ms)
                    .saturating_add(since_ms),
            ),
            _ => None,
        }
    }

    /// `[start, end)` of period `p` cut at the lease's end, or `None` when
    /// it starts at or after the end (or the lease is not running).
    pub fn period_span(&self, period: u64) -> Option<(u64, u64)> {
        let since = self.since_ms()?;
        let end = self.end_ms()?;
        let start = period.checked_mul(self.period_ms)?.checked_add(since)?;
        if start >= end {
            return None;
        }
        let full_end = start.checked_add(self.period_ms)?;
        Some((start, full_end.min(end)))
    }

    /// What period `p` costs: the price, or the used part of it when the
    /// lease ends inside it (rounded down); zero after the end.
    pub fn period_cost(&self, period: u64) -> Option<Amount> {
        match self.period_span(period) {
            None => Some(Amount::ZERO),
            Some((start, end)) => self
                .price_per_period
                .checked_mul_div(u128::from(end - start), u128::from(self.period_ms)),
        }
    }

    /// How many periods have a part before the end (the last may be partial).
    pub fn periods_total(&self) -> Option<u64> {
        let since = self.since_ms()?;
        let end = self.end_ms()?;
        let span = end.saturating_sub(since);
        Some(span.div_ceil(self.period_ms.max(1)))
    }

    /// What the periods not billed yet will cost, in all: every one but the
    /// last is whole.
    pub fn unbilled_cost(&self) -> Option<Amount> {
        let total = self.periods_total().unwrap_or(0);
        if self.next_period >= total {
            return Some(Amount::ZERO);
        }
        let last = total - 1;
        self.price_per_period
            .checked_mul(u128::from(last - self.next_period))?
            .checked_add(self.period_cost(last)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Keypair, decode, encode};

    fn record(deposit: u128, max_periods: Option<u64>) -> LeaseRecord {
        LeaseRecord {
            user: Keypair::from_seed(&[1; 32]).account_id(),
            node: Keypair::from_seed(&[2; 32]).node_id(),
            request: Hash32::of(b"request"),
            kind: SpaceKind::Container,
            resources: Resources::default(),
            price_per_period: Amount::from_base_units(1_000),
            period_ms: 2_000,
            max_periods,
            opened_ms: 10_000,
            activate_by_ms: 70_000,
            deposited: Amount::from_base_units(deposit),
            paid: Amount::ZERO,
            refunded: Amount::ZERO,
            next_period: 0,
            periods_up: 0,
            periods_down: 0,
            low_warned: false,
            status: LeaseStatus::Active { since_ms: 20_000 },
        }
    }

    #[test]
    fn the_deposit_buys_whole_periods_up_to_a_fixed_length() {
        assert_eq!(record(5_500, None).covered_periods(), 5);
        assert_eq!(record(5_500, Some(3)).covered_periods(), 3);
        assert_eq!(record(5_500, None).end_ms(), Some(30_000));
        assert_eq!(record(5_500, None).periods_total(), Some(5));
    }

    #[test]
    fn a_close_inside_a_period_charges_the_used_part() {
        let mut lease = record(10_000, None);
        lease.status = LeaseStatus::Closed {
            since_ms: 20_000,
            end_ms: 25_000,
        };
        assert_eq!(lease.periods_total(), Some(3));
        assert_eq!(lease.period_span(2), Some((24_000, 25_000)));
        assert_eq!(lease.period_cost(1), Some(Amount::from_base_units(1_000)));
        assert_eq!(lease.period_cost(2), Some(Amount::from_base_units(500)));
        assert_eq!(lease.period_cost(3), Some(Amount::ZERO));
        assert_eq!(lease.unbilled_cost(), Some(Amount::from_base_units(2_500)));
        lease.next_period = 2;
        assert_eq!(lease.unbilled_cost(), Some(Amount::from_base_units(500)));
    }

    #[test]
    fn a_pending_lease_has_no_periods_yet() {
        let mut lease = record(10_000, None);
        lease.status = LeaseStatus::Pending;
        assert_eq!(lease.end_ms(), None);
        assert_eq!(lease.period_cost(0), Some(Amount::ZERO));
        assert_eq!(lease.unbilled_cost(), Some(Amount::ZERO));
    }

    #[test]
    fn the_record_round_trips_its_encoding() {
        let lease = record(10_000, Some(4));
        let back: LeaseRecord = decode(&encode(&lease)).unwrap();
        assert_eq!(back, lease);
        assert_eq!(lease.held(), Some(Amount::from_base_units(10_000)));
    }
}
