//! The fast path's leases: every lease is a ledger [`LeaseRecord`], moved
//! through its life by the same rules and the record's own period
//! arithmetic as the ledger's handlers (`crates/ledger/src/leases.rs`), so
//! its numbers are the ledger's numbers. What the fast path skips is the
//! ledger's checking: signatures, nonces, stakes, the state root.
//!
//! ```text
//!  open (awarded, deposit = price × periods, activated at once)
//!    └─► a bill at the end of each period: paid when up, credited when down
//!          (the last one may be partial after a close; period_cost says how much)
//!    └─► close (user leaves, farmer quits): refund all but the unbilled periods
//!    └─► settle at end + bill window: refund what is left ──► slot freed
//! ```
//!
//! Bills and settlements wait on a time wheel of hourly slots; a lease's
//! slot is reused after it settles, and every wheel entry names the lease's
//! sequence number so a stale one is skipped.

use std::collections::BTreeMap;

use peercloud_ledger::{LeaseRecord, LeaseStatus, lease_settles_at_ms};
use peercloud_types::{AccountId, Amount, Hash32, NodeId, PublicKey, Resources, SpaceKind};

use crate::error::SimError;
use crate::prices::MS_PER_HOUR;
use crate::random::hashed_unit;

/// The simulated clock's origin, ms since the Unix epoch
/// (2025-06-01T00:00:00Z): the ledger's block times start here.
pub const EPOCH_MS: u64 = 1_748_736_000_000;
/// How long a user has to activate a lease it opened (the ledger's bounds
/// are 1 s..1 day); the simulation activates at once.
pub const ACTIVATE_WITHIN_MS: u64 = MS_PER_HOUR;

/// The time of step `step`, ms.
pub fn step_ms(step: u64) -> u64 {
    EPOCH_MS + step * MS_PER_HOUR
}

/// The first step at or after `ms`.
fn step_at_or_after(ms: u64) -> u64 {
    ms.saturating_sub(EPOCH_MS).div_ceil(MS_PER_HOUR)
}

/// What a lease is opened with.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The winning farmer.
    pub farmer: u32,
    /// Its node.
    pub node: NodeId,
    /// The user.
    pub user: u32,
    /// The market class.
    pub class: u32,
    /// What the space gets.
    pub resources: Resources,
    /// The award's price per period.
    pub price: Amount,
    /// The billing period, ms.
    pub period_ms: u64,
    /// How many periods.
    pub periods: u64,
    /// The price's split among cpu, mem and disk (the winner's floor's parts).
    pub weights: [f64; 3],
    /// What a period costs on the cloud list, USD.
    pub cloud_usd_per_period: f64,
    /// The farmer's chance a period is up.
    pub availability: f64,
}

/// One live lease.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Its sequence number in the run (every `ledger_every`-th is sampled).
    pub seq: u64,
    /// The ledger's record of it.
    pub record: LeaseRecord,
    /// The farmer.
    pub farmer: u32,
    /// The user.
    pub user: u32,
    /// The market class.
    pub class: u32,
    /// The price's split among cpu, mem and disk.
    pub weights: [f64; 3],
    /// What a period costs on the cloud list, USD.
    pub cloud_usd_per_period: f64,
    /// The farmer's chance a period is up.
    pub availability: f64,
    /// Whether the ledger runs it too.
    pub sampled: bool,
    /// Whether its resources are still held on the farmer's node.
    pub holds_capacity: bool,
}

/// What one bill did.
#[derive(Debug, Clone, Default)]
pub struct Billed {
    /// The first period billed.
    pub first_period: u64,
    /// Whether each period billed was up.
    pub ups: Vec<bool>,
    /// Paid to the farmer.
    pub paid: Amount,
    /// Credited back to the user.
    pub credited: Amount,
    /// The cloud list's price of the periods that were up, USD.
    pub cloud_usd: f64,
    /// Whether the lease has now billed its last period.
    pub ended: bool,
}

/// What settling did.
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    /// Whether it ran clean (no period down, at least one up).
    pub clean: bool,
}

/// Something due at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Bill the periods ended by now.
    Bill {
        /// The lease's slot.
        slot: u32,
        /// Its sequence number.
        seq: u64,
    },
    /// Settle it.
    Settle {
        /// The lease's slot.
        slot: u32,
        /// Its sequence number.
        seq: u64,
    },
}

/// Exact money totals of the fast path, base units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Money {
    /// Locked by users.
    pub deposited: u128,
    /// Paid to farmers.
    pub paid: u128,
    /// Given back to users.
    pub refunded: u128,
}

/// Every live lease, the wheel of what is due, and the money totals.
#[derive(Debug, Clone)]
pub struct Leases {
    slots: Vec<Option<Lease>>,
    free: Vec<u32>,
    wheel: Vec<Vec<Due>>,
    next_seq: u64,
    /// Exact totals.
    pub money: Money,
    /// Sampled leases' records once they settled.
    pub sampled_final: BTreeMap<u64, LeaseRecord>,
}

fn overflow(what: &'static str) -> SimError {
    SimError::Overflow { what }
}

/// A stand-in account for user `index` in the fast path (the ledger sample
/// uses real keys; no rule of the fast path reads the account).
fn user_account(index: u32) -> AccountId {
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(&index.to_le_bytes());
    AccountId(PublicKey(key))
}

impl Leases {
    /// Room for `steps` steps of dues.
    pub fn new(steps: u64) -> Leases {
        Leases {
            slots: Vec::new(),
            free: Vec::new(),
            wheel: vec![Vec::new(); steps as usize + 1],
            next_seq: 0,
            money: Money::default(),
            sampled_final: BTreeMap::new(),
        }
    }

    /// The sequence number the next lease gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The live lease in `slot`.
    pub fn get(&self, slot: u32) -> Option<&Lease> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, slot: u32) -> Option<&mut Lease> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Takes what is due at `step` (empty past the wheel's end).
    pub fn take_due(&mut self, step: u64) -> Vec<Due> {
        self.wheel
            .get_mut(step as usize)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn schedule(&mut self, ms: u64, due: Due) {
        let step = step_at_or_after(ms) as usize;
        // Past the run's end nothing happens any more.
        if let Some(bucket) = self.wheel.get_mut(step) {
            bucket.push(due);
        }
    }

    /// Opens and activates a lease at `now_ms`, as `OpenLease` and
    /// `ActivateLease` in one block would. Returns its slot and sequence.
    pub fn open(
        &mut self,
        now_ms: u64,
        opening: &Opening,
        sampled_every: u64,
    ) -> Result<(u32, u64), SimError> {
        let deposited = opening
            .price
            .checked_mul(u128::from(opening.periods))
            .ok_or(overflow("a lease's deposit"))?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = LeaseRecord {
            user: user_account(opening.user),
            node: opening.node,
            request: Hash32::ZERO,
            kind: SpaceKind::Container,
            resources: opening.resources,
            price_per_period: opening.price,
            period_ms: opening.period_ms,
            max_periods: Some(opening.periods),
            opened_ms: now_ms,
            activate_by_ms: now_ms + ACTIVATE_WITHIN_MS,
            deposited,
            paid: Amount::ZERO,
            refunded: Amount::ZERO,
            next_period: 0,
            periods_up: 0,
            periods_down: 0,
            low_warned: false,
            status: LeaseStatus::Active { since_ms: now_ms },
        };
        self.money.deposited += deposited.base_units();
        let lease = Lease {
            seq,
            record,
            farmer: opening.farmer,
            user: opening.user,
            class: opening.class,
            weights: opening.weights,
            cloud_usd_per_period: opening.cloud_usd_per_period,
            availability: opening.availability,
            sampled: sampled_every != 0 && seq.is_multiple_of(sampled_every),
            holds_capacity: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(lease);
                slot
            }
            None => {
                self.slots.push(Some(lease));
                (self.slots.len() - 1) as u32
            }
        };
        self.schedule(now_ms + opening.period_ms, Due::Bill { slot, seq });
        Ok((slot, seq))
    }

    /// Bills every period of `slot` that ended by `now_ms`, in order, as
    /// `BillLease` does: a period is paid when it was up (decided by a hash
    /// of the seed, the lease and the period, so the ledger's probes say
    /// the same), else credited back. Schedules the next bill, or marks the
    /// lease ended. `None` when nothing was due.
    pub fn bill(&mut self, slot: u32, now_ms: u64, seed: u64) -> Result<Option<Billed>, SimError> {
        let Some(lease) = self.get_mut(slot) else {
            return Ok(None);
        };
        let record = &mut lease.record;
        let total = record.periods_total().unwrap_or(0);
        let first = record.next_period;
        let mut end = first;
        while end < total
            && record
                .period_span(end)
                .is_some_and(|(_, ends_ms)| ends_ms <= now_ms)
        {
            end += 1;
        }
        if end == first {
            return Ok(None);
        }
        let mut billed = Billed {
            first_period: first,
            ..Billed::default()
        };
        for period in first..end {
            let cost = record
                .period_cost(period)
                .ok_or(overflow("a period's cost"))?;
            let up = hashed_unit(seed, lease.seq, period) < lease.availability;
            billed.ups.push(up);
            if up {
                billed.paid = billed.paid.checked_add(cost).ok_or(overflow("a bill"))?;
                let (start, stop) = record.period_span(period).unwrap_or((0, 0));
                let share = (stop - start) as f64 / record.period_ms as f64;
                billed.cloud_usd += lease.cloud_usd_per_period * share;
            } else {
                billed.credited = billed
                    .credited
                    .checked_add(cost)
                    .ok_or(overflow("a bill"))?;
            }
        }
        let escrow = record.held().ok_or(overflow("a lease's escrow"))?;
        let total_billed = billed.paid.checked_add(billed.credited);
        if total_billed.is_none_or(|sum| sum > escrow) {
            return Err(overflow("a bill above the lease's escrow"));
        }
        let down = billed.ups.iter().filter(|up| !**up).count() as u64;
        record.paid = record
            .paid
            .checked_add(billed.paid)
            .ok_or(overflow("a lease's pay"))?;
        record.refunded = record
            .refunded
            .checked_add(billed.credited)
            .ok_or(overflow("a lease's refunds"))?;
        record.next_period = end;
        record.periods_up += (end - first) - down;
        record.periods_down += down;
        billed.ended = end >= total;
        let seq = lease.seq;
        let next_end = record.period_span(end).map(|(_, ends_ms)| ends_ms);
        let settles_at = lease_settles_at_ms(record);
        self.money.paid += billed.paid.base_units();
        self.money.refunded += billed.credited.base_units();
        match (billed.ended, next_end, settles_at) {
            (false, Some(ends_ms), _) => self.schedule(ends_ms, Due::Bill { slot, seq }),
            (true, _, Some(at)) => self.schedule(at, Due::Settle { slot, seq }),
            _ => {}
        }
        Ok(Some(billed))
    }

    /// Closes `slot` at `now_ms`, as `CloseLease` does: everything but the
    /// unbilled periods (the last pro rata) goes back to the user at once.
    /// Returns the refund; the caller bills the rest ([`Self::bill`]).
    pub fn close(&mut self, slot: u32, now_ms: u64) -> Result<Amount, SimError> {
        let Some(lease) = self.get_mut(slot) else {
            return Ok(Amount::ZERO);
        };
        let record = &mut lease.record;
        let LeaseStatus::Active { since_ms } = record.status else {
            return Ok(Amount::ZERO);
        };
        record.status = LeaseStatus::Closed {
            since_ms,
            end_ms: now_ms,
        };
        let owed = record
            .unbilled_cost()
            .ok_or(overflow("a lease's unbilled periods"))?;
        let refund = record
            .held()
            .and_then(|held| held.checked_sub(owed))
            .ok_or(overflow("a lease's refund"))?;
        record.refunded = record
            .refunded
            .checked_add(refund)
            .ok_or(overflow("a lease's refunds"))?;
        record.low_warned = false;
        self.money.refunded += refund.base_units();
        Ok(refund)
    }

    /// Settles `slot`, as `SettleLease` does, and frees it. `None` when it
    /// is not live or not the lease `seq`.
    pub fn settle(&mut self, slot: u32, seq: u64) -> Option<(Lease, Settled)> {
        if self.get(slot).is_none_or(|lease| lease.seq != seq) {
            return None;
        }
        let mut lease = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        let record = &mut lease.record;
        let total = record.periods_total().unwrap_or(0);
        let down = total.saturating_sub(record.next_period);
        record.next_period = record.next_period.max(total);
        record.periods_down += down;
        let refund = record.held().unwrap_or(Amount::ZERO);
        record.refunded = record
            .refunded
            .checked_add(refund)
            .unwrap_or(record.refunded);
        record.status = LeaseStatus::Settled;
        record.low_warned = false;
        self.money.refunded += refund.base_units();
        let clean = down == 0 && record.periods_down == 0 && record.periods_up > 0;
        if lease.sampled {
            self.sampled_final.insert(lease.seq, lease.record.clone());
        }
        Some((lease, Settled { clean }))
    }

    /// Marks that `slot` no longer holds its farmer's resources.
    pub fn release(&mut self, slot: u32) -> Option<(u32, Resources)> {
        let lease = self.get_mut(slot)?;
        if !lease.holds_capacity {
            return None;
        }
        lease.holds_capacity = false;
        Some((lease.farmer, lease.record.resources))
    }

    /// Whether `slot` is the live lease `seq`.
    pub fn is(&self, slot: u32, seq: u64) -> bool {
        self.get(slot).is_some_and(|lease| lease.seq == seq)
    }

    /// What live leases hold in escrow, base units.
    pub fn held(&self) -> u128 {
        self.slots
            .iter()
            .flatten()
            .map(|lease| lease.record.held().map_or(0, Amount::base_units))
            .sum()
    }

    /// Every sampled lease's record: the settled ones and the live ones as
    /// they stand.
    pub fn sampled_records(&self) -> BTreeMap<u64, LeaseRecord> {
        let mut records = self.sampled_final.clone();
        for lease in self.slots.iter().flatten().filter(|lease| lease.sampled) {
            records.insert(lease.seq, lease.record.clone());
        }
        records
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn opening(periods: u64, period_ms: u64, availability: f64) -> Opening {
        Opening {
            farmer: 0,
            node: NodeId(PublicKey([1; 32])),
            user: 0,
            class: 0,
            resources: Resources::default(),
            price: Amount::from_base_units(1_000),
            period_ms,
            periods,
            weights: [1.0, 0.0, 0.0],
            cloud_usd_per_period: 1.0,
            availability,
        }
    }

    #[test]
    fn a_lease_bills_each_period_then_settles_with_nothing_left() {
        let mut leases = Leases::new(100);
        let (slot, seq) = leases
            .open(step_ms(0), &opening(3, MS_PER_HOUR, 1.0), 1)
            .unwrap();
        for step in 1..=3 {
            assert_eq!(leases.take_due(step), vec![Due::Bill { slot, seq }]);
            let billed = leases.bill(slot, step_ms(step), 9).unwrap().unwrap();
            assert_eq!(billed.paid, Amount::from_base_units(1_000));
            assert_eq!(billed.ended, step == 3);
        }
        // The bill window: three periods.
        assert_eq!(leases.take_due(6), vec![Due::Settle { slot, seq }]);
        let (lease, settled) = leases.settle(slot, seq).unwrap();
        assert!(settled.clean);
        assert_eq!(lease.record.paid, Amount::from_base_units(3_000));
        assert_eq!(
            leases.money.deposited,
            leases.money.paid + leases.money.refunded
        );
        assert_eq!(leases.sampled_final.len(), 1);
    }

    #[test]
    fn a_close_refunds_all_but_the_used_part_of_the_period() {
        let mut leases = Leases::new(100);
        let day = 24 * MS_PER_HOUR;
        let (slot, seq) = leases.open(step_ms(0), &opening(5, day, 1.0), 0).unwrap();
        // Six hours in: a quarter of the first day is owed.
        let refund = leases.close(slot, step_ms(6)).unwrap();
        assert_eq!(refund, Amount::from_base_units(5_000 - 250));
        let billed = leases.bill(slot, step_ms(6), 1).unwrap().unwrap();
        assert!(billed.ended);
        assert_eq!(billed.paid, Amount::from_base_units(250));
        assert!(leases.is(slot, seq));
        assert_eq!(leases.held(), 0);
    }

    #[test]
    fn a_period_down_is_credited_back() {
        let mut leases = Leases::new(100);
        let (slot, _) = leases
            .open(step_ms(0), &opening(10, MS_PER_HOUR, 0.0), 0)
            .unwrap();
        let billed = leases.bill(slot, step_ms(10), 3).unwrap().unwrap();
        assert_eq!(billed.paid, Amount::ZERO);
        assert_eq!(billed.credited, Amount::from_base_units(10_000));
        assert_eq!(billed.ups, vec![false; 10]);
    }
}
