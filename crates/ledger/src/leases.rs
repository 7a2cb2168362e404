//! Leases on the ledger (issue 11): capacity rented over time.
//!
//! ```text
//! OpenLease ──► Pending ──ActivateLease──► Active ──CloseLease──► Closed
//!   (award,        │  (user verified        │  BillLease: periods    │
//!    deposit)      │   access)              │  proven up are paid,   │
//!                  ▼                        │  the rest credited     ▼
//!             CancelLease                   └──(ran out)──► SettleLease ──► Settled
//!             (refund all)
//! ```
//!
//! Rules chosen here:
//! - The award is a sealed-bid auction checked in full: `OpenLease` carries
//!   the request and every bid taken; the lowest bid wins and is paid the
//!   first losing bid (`peercloud_types::lease::award`). Every bid must be
//!   its node's signature, for this request, unexpired, at most the reserve,
//!   from a staked node that passes the request's filters.
//! - A period is paid only when nodes of `LEASE_PROBE_QUORUM` distinct
//!   owners (staked, none the leasing node or its owner) signed that they
//!   saw the space up in it. Any other period billed is credited back to
//!   the user and costs the node reputation. Billing is in order, once per
//!   period, by the node's owner, after the period ended.
//! - A close refunds at once everything but the periods not billed yet (the
//!   last one pro rata); those wait for the node's bill. After the end plus
//!   the bill window anyone settles: what was never billed is credited to
//!   the user as down time.
//! - Refunds always go to the user, whoever deposited.

use std::collections::{BTreeMap, BTreeSet};

use peercloud_types::{
    AccountId, Amount, Hash32, LeaseId, LeaseProbe, LeaseRequest, NodeId, Signed, lease_award,
};
use peercloud_types::{LeaseOffer, job::REPUTATION_MAX};

use crate::context::BlockContext;
use crate::error::TxError;
use crate::event::{Event, LeaseEvent};
use crate::funds::{credit, debit};
use crate::lease_error::LeaseError;
use crate::lease_records::{LeaseRecord, LeaseStatus};
use crate::params::{
    LEASE_ACTIVATE_MS_MAX, LEASE_ACTIVATE_MS_MIN, LEASE_BILL_PERIODS_MAX, LEASE_BILL_WINDOW_MS_MIN,
    LEASE_BILL_WINDOW_PERIODS, LEASE_FILTERS_MAX, LEASE_OFFERS_MAX, LEASE_PERIOD_MS_MAX,
    LEASE_PERIOD_MS_MIN, LEASE_PERIODS_MAX, LEASE_PRICE_MAX, LEASE_PROBE_QUORUM,
    LOCATION_BYTES_MAX, LOW_DEPOSIT_PERIODS, REPUTATION_PENALTY_LEASE_DOWN,
    REPUTATION_PENALTY_LEASE_DOWN_MAX,
};
use crate::records::ReputationReason;
use crate::reputation;
use crate::state::State;

fn overflow(what: &'static str) -> TxError {
    TxError::Overflow { what }
}

fn lease_record(state: &State, lease: &LeaseId) -> Result<LeaseRecord, LeaseError> {
    state
        .lease(lease)
        .cloned()
        .ok_or(LeaseError::UnknownLease { lease: *lease })
}

fn wrong_status(lease: &LeaseId, record: &LeaseRecord, expected: &'static str) -> TxError {
    LeaseError::WrongStatus {
        lease: *lease,
        status: record.status.name(),
        expected,
    }
    .into()
}

fn held(record: &LeaseRecord) -> Result<Amount, TxError> {
    record.held().ok_or(overflow("a lease's escrow"))
}

/// The owner of `node` now (nodes are never deregistered).
fn node_owner(state: &State, node: &NodeId) -> Result<AccountId, TxError> {
    state
        .node(node)
        .map(|n| n.owner)
        .ok_or(TxError::UnknownNode { node: *node })
}

fn bounded(what: &'static str, value: u128, min: u128, max: u128) -> Result<(), LeaseError> {
    if value < min || value > max {
        return Err(LeaseError::OutOfBounds {
            what,
            value,
            min,
            max,
        });
    }
    Ok(())
}

fn check_request(request: &LeaseRequest) -> Result<(), LeaseError> {
    let len = |n: usize| n as u128;
    bounded(
        "period (ms)",
        u128::from(request.period_ms),
        u128::from(LEASE_PERIOD_MS_MIN),
        u128::from(LEASE_PERIOD_MS_MAX),
    )?;
    if let Some(periods) = request.periods {
        bounded(
            "periods",
            u128::from(periods),
            1,
            u128::from(LEASE_PERIODS_MAX),
        )?;
    }
    bounded(
        "reserve per period (base units)",
        request.max_price_per_period.base_units(),
        0,
        LEASE_PRICE_MAX.base_units(),
    )?;
    bounded(
        "activation window (ms)",
        u128::from(request.activate_within_ms),
        u128::from(LEASE_ACTIVATE_MS_MIN),
        u128::from(LEASE_ACTIVATE_MS_MAX),
    )?;
    let filters = &request.filters;
    bounded(
        "locations filter",
        len(filters.locations.len()),
        0,
        len(LEASE_FILTERS_MAX),
    )?;
    bounded(
        "farmers filter",
        len(filters.farmers.len()),
        0,
        len(LEASE_FILTERS_MAX),
    )?;
    for location in &filters.locations {
        bounded(
            "location filter (bytes)",
            len(location.len()),
            0,
            len(LOCATION_BYTES_MAX),
        )?;
    }
    bounded(
        "minimum reputation",
        u128::from(filters.min_reputation),
        0,
        u128::from(REPUTATION_MAX),
    )?;
    Ok(())
}

/// Whether the ledger takes bid `index` of an award for `request` at
/// `time_ms` (`digest` is the request's): its node's signature, for this
/// request, unexpired, at most
/// the reserve, from a registered node that passes the request's filters
/// and whose owner has the stake to serve. Returns (node, price). A node
/// gathering bids uses it too, to hand the user only bids an award can carry.
pub fn check_lease_offer(
    state: &State,
    request: &LeaseRequest,
    digest: &Hash32,
    index: usize,
    signed: &Signed<LeaseOffer>,
    time_ms: u64,
) -> Result<(NodeId, Amount), TxError> {
    let offer = &signed.body;
    let node = offer.node;
    if signed.signer != *node.key() || signed.verify().is_err() {
        return Err(LeaseError::BadOfferSignature { index, node }.into());
    }
    if offer.request != *digest {
        return Err(LeaseError::OfferForOtherRequest { index, node }.into());
    }
    if offer.valid_until_ms < time_ms {
        return Err(LeaseError::OfferExpired {
            index,
            node,
            valid_until_ms: offer.valid_until_ms,
            time_ms,
        }
        .into());
    }
    if offer.price_per_period > request.max_price_per_period {
        return Err(LeaseError::AboveReserve {
            node,
            price: offer.price_per_period,
            max: request.max_price_per_period,
        }
        .into());
    }
    let record = state.node(&node).ok_or(TxError::UnknownNode { node })?;
    if !request.admits(&record.location, &record.owner, record.reputation) {
        return Err(LeaseError::Filtered { node }.into());
    }
    let stake_min = state.params().stake_min_to_serve;
    let stake = state.stake(&record.owner);
    if stake < stake_min {
        return Err(TxError::OwnerStakeTooLow {
            node,
            owner: record.owner,
            stake,
            required: stake_min,
        });
    }
    Ok((node, offer.price_per_period))
}

/// Checks every bid ([`check_lease_offer`], and one per node); returns
/// them as (node, price).
fn check_offers(
    state: &State,
    request: &LeaseRequest,
    offers: &[Signed<LeaseOffer>],
    ctx: &BlockContext,
) -> Result<Vec<(NodeId, Amount)>, TxError> {
    if offers.is_empty() || offers.len() > LEASE_OFFERS_MAX {
        return Err(LeaseError::OfferCount {
            count: offers.len(),
            max: LEASE_OFFERS_MAX,
        }
        .into());
    }
    let digest = request.digest();
    let mut seen = BTreeSet::new();
    let mut bids = Vec::with_capacity(offers.len());
    for (index, signed) in offers.iter().enumerate() {
        let (node, price) = check_lease_offer(state, request, &digest, index, signed, ctx.time_ms)?;
        if !seen.insert(node) {
            return Err(LeaseError::DuplicateOffer { node }.into());
        }
        bids.push((node, price));
    }
    Ok(bids)
}

/// The fields of an `OpenLease` transaction.
pub(crate) struct Open<'a> {
    pub(crate) request: &'a LeaseRequest,
    pub(crate) offers: &'a [Signed<LeaseOffer>],
    pub(crate) deposit: Amount,
}

pub(crate) fn open(
    state: &mut State,
    signer: &AccountId,
    nonce: u64,
    open: Open<'_>,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let Open {
        request,
        offers,
        deposit,
    } = open;
    if request.user != *signer {
        return Err(LeaseError::RequestNotSigners {
            user: request.user,
            signer: *signer,
        }
        .into());
    }
    check_request(request)?;
    let bids = check_offers(state, request, offers, ctx)?;
    let (winner, price) =
        lease_award(&bids, request.max_price_per_period).ok_or(LeaseError::OfferCount {
            count: 0,
            max: LEASE_OFFERS_MAX,
        })?;
    let node = bids[winner].0;
    if node_owner(state, &node)? == *signer {
        return Err(LeaseError::OwnNode { node }.into());
    }
    let needed = price
        .checked_mul(u128::from(request.periods.unwrap_or(1)))
        .ok_or(overflow("a lease's price"))?;
    if deposit < needed || deposit.is_zero() {
        return Err(LeaseError::DepositTooSmall {
            deposit,
            needed: needed.max(Amount::from_base_units(1)),
        }
        .into());
    }
    let lease = LeaseId::derive(signer, nonce);
    if state.lease(&lease).is_some() {
        return Err(LeaseError::LeaseExists { lease }.into());
    }
    debit(state, signer, deposit)?;
    let activate_by_ms = ctx
        .time_ms
        .checked_add(request.activate_within_ms)
        .ok_or(overflow("an activation deadline"))?;
    state.leases.put(
        lease,
        LeaseRecord {
            user: *signer,
            node,
            request: request.digest(),
            kind: request.kind,
            resources: request.resources,
            price_per_period: price,
            period_ms: request.period_ms,
            max_periods: request.periods,
            opened_ms: ctx.time_ms,
            activate_by_ms,
            deposited: deposit,
            paid: Amount::ZERO,
            refunded: Amount::ZERO,
            next_period: 0,
            periods_up: 0,
            periods_down: 0,
            low_warned: false,
            status: LeaseStatus::Pending,
        },
    );
    events.push(Event::Lease(LeaseEvent::Opened {
        lease,
        user: *signer,
        node,
        kind: request.kind,
        price_per_period: price,
        bids: bids.len(),
        deposit,
        activate_by_ms,
    }));
    Ok(())
}

pub(crate) fn activate(
    state: &mut State,
    signer: &AccountId,
    lease: &LeaseId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = lease_record(state, lease)?;
    if record.status != LeaseStatus::Pending {
        return Err(wrong_status(lease, &record, "pending"));
    }
    if record.user != *signer {
        return Err(LeaseError::NotUser {
            user: record.user,
            signer: *signer,
        }
        .into());
    }
    if ctx.time_ms > record.activate_by_ms {
        return Err(LeaseError::ActivationOver {
            lease: *lease,
            activate_by_ms: record.activate_by_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    record.status = LeaseStatus::Active {
        since_ms: ctx.time_ms,
    };
    let end_ms = record.end_ms().ok_or(overflow("a lease's end"))?;
    events.push(Event::Lease(LeaseEvent::Activated {
        lease: *lease,
        since_ms: ctx.time_ms,
        end_ms,
    }));
    check_low(lease, &mut record, ctx, events);
    state.leases.put(*lease, record);
    Ok(())
}

pub(crate) fn cancel(
    state: &mut State,
    signer: &AccountId,
    lease: &LeaseId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = lease_record(state, lease)?;
    if record.status != LeaseStatus::Pending {
        return Err(wrong_status(lease, &record, "pending"));
    }
    let owner = node_owner(state, &record.node)?;
    let party = *signer == record.user || *signer == owner;
    if !party && ctx.time_ms <= record.activate_by_ms {
        return Err(LeaseError::ActivationOpen {
            lease: *lease,
            activate_by_ms: record.activate_by_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    let refund = held(&record)?;
    refund_user(state, &mut record, refund)?;
    record.status = LeaseStatus::Cancelled;
    state.leases.put(*lease, record);
    events.push(Event::Lease(LeaseEvent::Cancelled {
        lease: *lease,
        by: *signer,
        refund,
    }));
    Ok(())
}

fn refund_user(state: &mut State, record: &mut LeaseRecord, amount: Amount) -> Result<(), TxError> {
    credit(state, &record.user, amount)?;
    record.refunded = record
        .refunded
        .checked_add(amount)
        .ok_or(overflow("a lease's refunds"))?;
    Ok(())
}

/// The lease's end, refusing one that has passed.
fn running_end(lease: &LeaseId, record: &LeaseRecord, ctx: &BlockContext) -> Result<(), TxError> {
    if let Some(end_ms) = record.end_ms()
        && end_ms <= ctx.time_ms
    {
        return Err(LeaseError::Ended {
            lease: *lease,
            end_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    Ok(())
}

pub(crate) fn extend(
    state: &mut State,
    signer: &AccountId,
    lease: &LeaseId,
    amount: Amount,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if amount.is_zero() {
        return Err(TxError::ZeroAmount {
            what: "lease deposit",
        });
    }
    let mut record = lease_record(state, lease)?;
    if !matches!(
        record.status,
        LeaseStatus::Pending | LeaseStatus::Active { .. }
    ) {
        return Err(wrong_status(lease, &record, "pending or active"));
    }
    running_end(lease, &record, ctx)?;
    debit(state, signer, amount)?;
    record.deposited = record
        .deposited
        .checked_add(amount)
        .ok_or(overflow("a lease's deposit"))?;
    // A fixed-length lease grows by the whole periods the amount buys.
    if let Some(max) = record.max_periods
        && let Some(price) = std::num::NonZeroU128::new(record.price_per_period.base_units())
    {
        let more = u64::try_from(amount.base_units() / price).unwrap_or(u64::MAX);
        record.max_periods = Some(max.saturating_add(more));
    }
    events.push(Event::Lease(LeaseEvent::Deposited {
        lease: *lease,
        from: *signer,
        amount,
        end_ms: record.end_ms(),
    }));
    check_low(lease, &mut record, ctx, events);
    state.leases.put(*lease, record);
    Ok(())
}

/// Raises `LeaseLow` when an active lease has fewer than
/// `LOW_DEPOSIT_PERIODS` periods left; lowers the flag when it has more.
fn check_low(
    lease: &LeaseId,
    record: &mut LeaseRecord,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) {
    let (LeaseStatus::Active { .. }, Some(end_ms)) = (record.status, record.end_ms()) else {
        return;
    };
    let window = u128::from(record.period_ms) * LOW_DEPOSIT_PERIODS;
    let low = u128::from(end_ms.saturating_sub(ctx.time_ms)) < window;
    if low && !record.low_warned {
        events.push(Event::Lease(LeaseEvent::Low {
            lease: *lease,
            user: record.user,
            end_ms,
        }));
    }
    record.low_warned = low;
}

pub(crate) fn close(
    state: &mut State,
    signer: &AccountId,
    lease: &LeaseId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = lease_record(state, lease)?;
    let LeaseStatus::Active { since_ms } = record.status else {
        return Err(wrong_status(lease, &record, "active"));
    };
    let owner = node_owner(state, &record.node)?;
    if *signer != record.user && *signer != owner {
        return Err(LeaseError::NotAParty {
            user: record.user,
            signer: *signer,
        }
        .into());
    }
    running_end(lease, &record, ctx)?;
    record.status = LeaseStatus::Closed {
        since_ms,
        end_ms: ctx.time_ms,
    };
    let owed = record
        .unbilled_cost()
        .ok_or(overflow("a lease's unbilled periods"))?;
    let refund = held(&record)?
        .checked_sub(owed)
        .ok_or(overflow("a lease's refund"))?;
    refund_user(state, &mut record, refund)?;
    record.low_warned = false;
    state.leases.put(*lease, record);
    events.push(Event::Lease(LeaseEvent::Closed {
        lease: *lease,
        by: *signer,
        end_ms: ctx.time_ms,
        refund,
        owed,
    }));
    Ok(())
}

/// The fields of a `BillLease` transaction.
pub(crate) struct Bill<'a> {
    pub(crate) lease: LeaseId,
    pub(crate) periods: u64,
    pub(crate) probes: &'a [Signed<LeaseProbe>],
}

/// For each period of `range`, the distinct owners of valid probers that saw
/// it up.
fn proven_up(
    state: &State,
    lease: &LeaseId,
    node_owner: &AccountId,
    node: &NodeId,
    range: std::ops::Range<u64>,
    probes: &[Signed<LeaseProbe>],
) -> Result<BTreeMap<u64, BTreeSet<AccountId>>, TxError> {
    let stake_min = state.params().stake_min_to_serve;
    let mut seen = BTreeSet::new();
    let mut up: BTreeMap<u64, BTreeSet<AccountId>> = BTreeMap::new();
    for (index, signed) in probes.iter().enumerate() {
        let probe = &signed.body;
        let bad = |reason| LeaseError::BadProbe {
            index,
            prober: probe.prober,
            reason,
        };
        if signed.signer != *probe.prober.key() || signed.verify().is_err() {
            return Err(bad("is not signed by that node").into());
        }
        if probe.lease != *lease {
            return Err(bad("is for another lease").into());
        }
        if !range.contains(&probe.period) {
            return Err(bad("is for a period this bill does not cover").into());
        }
        if probe.prober == *node {
            return Err(bad("is the leasing node's own").into());
        }
        let Some(prober) = state.node(&probe.prober) else {
            return Err(bad("is by an unregistered node").into());
        };
        if prober.owner == *node_owner {
            return Err(bad("is by a node of the leasing node's owner").into());
        }
        if state.stake(&prober.owner) < stake_min {
            return Err(bad("is by a node whose owner has too little stake").into());
        }
        if !seen.insert((probe.period, probe.prober)) {
            return Err(LeaseError::DuplicateProbe {
                prober: probe.prober,
                period: probe.period,
            }
            .into());
        }
        if probe.up {
            up.entry(probe.period).or_default().insert(prober.owner);
        }
    }
    Ok(up)
}

pub(crate) fn bill(
    state: &mut State,
    signer: &AccountId,
    bill: Bill<'_>,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let Bill {
        lease,
        periods,
        probes,
    } = bill;
    let mut record = lease_record(state, &lease)?;
    if !record.status.billable() {
        return Err(wrong_status(&lease, &record, "active or closed"));
    }
    let owner = node_owner(state, &record.node)?;
    if *signer != owner {
        return Err(LeaseError::NotNodeOwner {
            owner,
            signer: *signer,
        }
        .into());
    }
    if periods == 0 || periods > LEASE_BILL_PERIODS_MAX {
        return Err(LeaseError::BillLength {
            periods,
            max: LEASE_BILL_PERIODS_MAX,
        }
        .into());
    }
    let first = record.next_period;
    let end = first
        .checked_add(periods)
        .ok_or(overflow("a bill's periods"))?;
    let total = record.periods_total().unwrap_or(0);
    if end > total {
        return Err(LeaseError::PeriodPastEnd {
            lease,
            period: end - 1,
            periods: total,
        }
        .into());
    }
    if let Some((_, ends_ms)) = record.period_span(end - 1)
        && ends_ms > ctx.time_ms
    {
        return Err(LeaseError::PeriodNotEnded {
            lease,
            period: end - 1,
            ends_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    let up = proven_up(state, &lease, &owner, &record.node, first..end, probes)?;
    let (mut paid, mut credited, mut down) = (Amount::ZERO, Amount::ZERO, 0u64);
    for period in first..end {
        let cost = record
            .period_cost(period)
            .ok_or(overflow("a period's cost"))?;
        if up.get(&period).map_or(0, BTreeSet::len) >= LEASE_PROBE_QUORUM {
            paid = paid.checked_add(cost).ok_or(overflow("a bill"))?;
        } else {
            credited = credited.checked_add(cost).ok_or(overflow("a bill"))?;
            down += 1;
        }
    }
    let escrow = held(&record)?;
    if paid.checked_add(credited).is_none_or(|sum| sum > escrow) {
        return Err(overflow("a bill above the lease's escrow"));
    }
    credit(state, &owner, paid)?;
    record.paid = record
        .paid
        .checked_add(paid)
        .ok_or(overflow("a lease's pay"))?;
    refund_user(state, &mut record, credited)?;
    record.next_period = end;
    record.periods_up += periods - down;
    record.periods_down += down;
    events.push(Event::Lease(LeaseEvent::Billed {
        lease,
        node: record.node,
        first_period: first,
        periods,
        paid,
        to: owner,
        down,
        credited,
    }));
    penalise_down(state, &record.node, down, events);
    check_low(&lease, &mut record, ctx, events);
    state.leases.put(lease, record);
    Ok(())
}

/// Takes reputation for `down` periods nobody proved up (at most
/// `REPUTATION_PENALTY_LEASE_DOWN_MAX` in one go).
fn penalise_down(state: &mut State, node: &NodeId, down: u64, events: &mut Vec<Event>) {
    let most = u64::from(REPUTATION_PENALTY_LEASE_DOWN_MAX / REPUTATION_PENALTY_LEASE_DOWN);
    reputation::change(
        state,
        node,
        ReputationReason::LeasePeriodDown,
        down.min(most),
        events,
    );
}

/// When an ended lease may be settled: its end plus the bill window.
pub fn settles_at_ms(record: &LeaseRecord) -> Option<u64> {
    let window = record
        .period_ms
        .saturating_mul(LEASE_BILL_WINDOW_PERIODS)
        .max(LEASE_BILL_WINDOW_MS_MIN);
    record.end_ms().map(|end| end.saturating_add(window))
}

pub(crate) fn settle(
    state: &mut State,
    lease: &LeaseId,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = lease_record(state, lease)?;
    if !record.status.billable() {
        return Err(wrong_status(lease, &record, "active or closed"));
    }
    let settles_at_ms = settles_at_ms(&record).ok_or(overflow("a lease's end"))?;
    if ctx.time_ms < settles_at_ms {
        return Err(LeaseError::BillWindowOpen {
            lease: *lease,
            settles_at_ms,
            time_ms: ctx.time_ms,
        }
        .into());
    }
    // What was never billed nobody proved up: it counts as down time.
    let total = record.periods_total().unwrap_or(0);
    let down = total.saturating_sub(record.next_period);
    record.next_period = record.next_period.max(total);
    record.periods_down += down;
    let refund = held(&record)?;
    refund_user(state, &mut record, refund)?;
    record.status = LeaseStatus::Settled;
    record.low_warned = false;
    let clean = down == 0 && record.periods_down == 0 && record.periods_up > 0;
    let node = record.node;
    state.leases.put(*lease, record);
    events.push(Event::Lease(LeaseEvent::Settled {
        lease: *lease,
        refund,
        down,
    }));
    penalise_down(state, &node, down, events);
    if clean {
        reputation::change(state, &node, ReputationReason::LeaseClean, 1, events);
    }
    Ok(())
}
