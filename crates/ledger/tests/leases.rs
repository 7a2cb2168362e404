//! Leases on the ledger: the sealed-bid award and the rules every bid must
//! keep, activation and its window, billing that pays only periods other
//! owners' nodes proved up, exact refunds on an early close, deposits that
//! run out, and settlement after the bill window.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use peercloud_ledger::{
    Event, LeaseError, LeaseEvent, LeaseRecord, LeaseStatus, ReputationReason, TxError, TxKind,
    lease_settles_at_ms,
};
use peercloud_types::{
    Amount, Keypair, LeaseFilters, LeaseId, LeaseOffer, LeaseProbe, LeaseRequest, Resources,
    Signed, SpaceKind,
};

const PERIOD_MS: u64 = 2_000;
const RESERVE: Amount = Amount::from_tokens(1);

fn units(n: u128) -> Amount {
    Amount::from_base_units(n)
}

fn request(world: &World, periods: Option<u64>) -> LeaseRequest {
    LeaseRequest {
        user: world.alice.account_id(),
        salt: world.time_ms,
        kind: SpaceKind::Container,
        resources: Resources {
            cpu_millicores: 500,
            memory_bytes: 64 << 20,
            ..Resources::default()
        },
        period_ms: PERIOD_MS,
        periods,
        max_price_per_period: RESERVE,
        filters: LeaseFilters::default(),
        offers_until_ms: world.time_ms + 5_000,
        activate_within_ms: 30_000,
    }
}

fn bid(world: &World, node: usize, request: &LeaseRequest, price: Amount) -> Signed<LeaseOffer> {
    let offer = LeaseOffer {
        request: request.digest(),
        node: world.nodes[node].node_id(),
        price_per_period: price,
        valid_until_ms: world.time_ms + 10_000,
    };
    Signed::new(offer, &world.nodes[node])
}

/// Alice opens a lease on `request` with `offers` and `deposit`.
fn open(
    world: &mut World,
    request: LeaseRequest,
    offers: Vec<Signed<LeaseOffer>>,
    deposit: Amount,
) -> LeaseId {
    let alice = world.alice.clone();
    let nonce = world.state.next_nonce(&alice.public());
    let kind = TxKind::OpenLease {
        request,
        offers,
        deposit,
    };
    world.ok(&alice, kind);
    LeaseId::derive(&alice.account_id(), nonce)
}

/// A lease on node 0 alone at `price`, activated now.
fn active_lease(world: &mut World, periods: Option<u64>, deposit: Amount) -> LeaseId {
    let request = request(world, periods);
    // Node 0 bids `RESERVE / 2`, node 1 the reserve: 0 wins at node 1's bid.
    let offers = vec![
        bid(world, 0, &request, units(RESERVE.base_units() / 2)),
        bid(world, 1, &request, RESERVE),
    ];
    let lease = open(world, request, offers, deposit);
    let alice = world.alice.clone();
    world.ok(&alice, TxKind::ActivateLease { lease });
    lease
}

fn record(world: &World, lease: &LeaseId) -> LeaseRecord {
    world.state.lease(lease).unwrap().clone()
}

fn probe(world: &World, prober: usize, lease: LeaseId, period: u64) -> Signed<LeaseProbe> {
    let probe = LeaseProbe {
        lease,
        period,
        prober: world.nodes[prober].node_id(),
        up: true,
    };
    Signed::new(probe, &world.nodes[prober])
}

/// Probes by nodes 1 and 2 (two other owners) that saw `periods` up.
fn seen_up(
    world: &World,
    lease: LeaseId,
    periods: std::ops::Range<u64>,
) -> Vec<Signed<LeaseProbe>> {
    periods
        .flat_map(|p| [probe(world, 1, lease, p), probe(world, 2, lease, p)])
        .collect()
}

fn bill(
    world: &mut World,
    lease: LeaseId,
    periods: u64,
    probes: Vec<Signed<LeaseProbe>>,
) -> Vec<Event> {
    let owner = world.owners[0].clone();
    world.ok(
        &owner,
        TxKind::BillLease {
            lease,
            periods,
            probes,
        },
    )
}

fn lease_error(error: TxError) -> LeaseError {
    match error {
        TxError::Lease(e) => e,
        other => panic!("expected a lease error, got {other}"),
    }
}

#[test]
fn the_lowest_bid_wins_and_is_paid_the_first_losing_bid() {
    let mut world = World::new();
    let request = request(&world, Some(4));
    let offers = vec![
        bid(&world, 0, &request, units(700)),
        bid(&world, 1, &request, units(400)),
        bid(&world, 2, &request, units(550)),
    ];
    let before = world.balance(&world.alice.clone());
    let lease = open(&mut world, request, offers, units(2_200));
    let lease = record(&world, &lease);
    assert_eq!(lease.node, world.nodes[1].node_id());
    assert_eq!(lease.price_per_period, units(550));
    assert_eq!(lease.status, LeaseStatus::Pending);
    let after = world.balance(&world.alice.clone());
    assert_eq!(before.checked_sub(after), units(2_200).checked_add(MIN_FEE));
}

#[test]
fn an_award_that_breaks_a_rule_is_refused_and_changes_nothing() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let req = request(&world, Some(2));
    let good = bid(&world, 0, &req, units(100));
    let open_kind =
        |request: &LeaseRequest, offers: Vec<Signed<LeaseOffer>>, deposit| TxKind::OpenLease {
            request: request.clone(),
            offers,
            deposit,
        };
    // A bid signed by another node than the one it names.
    let mut forged = good.clone();
    forged.body.node = world.nodes[1].node_id();
    let e = world.refused(&alice, open_kind(&req, vec![forged], RESERVE));
    assert!(matches!(
        lease_error(e),
        LeaseError::BadOfferSignature { index: 0, .. }
    ));
    // A bid for another request.
    let mut other = req.clone();
    other.salt += 1;
    let stray = bid(&world, 1, &other, units(100));
    let e = world.refused(&alice, open_kind(&req, vec![good.clone(), stray], RESERVE));
    assert!(matches!(
        lease_error(e),
        LeaseError::OfferForOtherRequest { index: 1, .. }
    ));
    // Over the reserve, twice from one node, none at all.
    let greedy = bid(&world, 1, &req, RESERVE.checked_add(units(1)).unwrap());
    let e = world.refused(&alice, open_kind(&req, vec![greedy], RESERVE));
    assert!(matches!(lease_error(e), LeaseError::AboveReserve { .. }));
    let e = world.refused(
        &alice,
        open_kind(&req, vec![good.clone(), good.clone()], RESERVE),
    );
    assert!(matches!(lease_error(e), LeaseError::DuplicateOffer { .. }));
    let e = world.refused(&alice, open_kind(&req, vec![], RESERVE));
    assert!(matches!(
        lease_error(e),
        LeaseError::OfferCount { count: 0, .. }
    ));
    // Filtered out by location.
    let mut far = req.clone();
    far.filters.locations = vec!["us".into()];
    let e = world.refused(
        &alice,
        open_kind(&far, vec![bid(&world, 0, &far, units(1))], RESERVE),
    );
    assert!(matches!(lease_error(e), LeaseError::Filtered { .. }));
    // Someone else's request, a short deposit (2 periods at the reserve:
    // the sole bid is paid the reserve), a bad period.
    let bob = world.bob.clone();
    let e = world.refused(&bob, open_kind(&req, vec![good.clone()], RESERVE));
    assert!(matches!(
        lease_error(e),
        LeaseError::RequestNotSigners { .. }
    ));
    let e = world.refused(&alice, open_kind(&req, vec![good.clone()], RESERVE));
    assert!(matches!(lease_error(e), LeaseError::DepositTooSmall { .. }));
    let mut fast = req.clone();
    fast.period_ms = 10;
    let e = world.refused(
        &alice,
        open_kind(&fast, vec![bid(&world, 0, &fast, units(1))], RESERVE),
    );
    assert!(matches!(
        lease_error(e),
        LeaseError::OutOfBounds {
            what: "period (ms)",
            ..
        }
    ));
    // A farmer renting its own node (reputation for fees): refused.
    let owner = world.owners[0].clone();
    let mut own = req.clone();
    own.user = owner.account_id();
    let e = world.refused(
        &owner,
        open_kind(
            &own,
            vec![bid(&world, 0, &own, units(1))],
            RESERVE.checked_mul(2).unwrap(),
        ),
    );
    assert!(matches!(lease_error(e), LeaseError::OwnNode { .. }));
    // A lapsed bid.
    world.time_ms += 20_000;
    let e = world.refused(
        &alice,
        open_kind(&req, vec![good], RESERVE.checked_mul(2).unwrap()),
    );
    assert!(matches!(lease_error(e), LeaseError::OfferExpired { .. }));
}

#[test]
fn an_early_close_refunds_the_unused_part_exactly_and_the_node_bills_what_was_used() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let owner = world.owners[0].clone();
    let alice_start = world.balance(&alice);
    let owner_start = world.balance(&owner);
    let deposit = RESERVE.checked_mul(10).unwrap();
    let lease = active_lease(&mut world, Some(10), deposit);
    assert_eq!(record(&world, &lease).price_per_period, RESERVE);
    // Two and a half periods later, the user closes.
    world.time_ms += 5_000;
    let events = world.ok(&alice, TxKind::CloseLease { lease });
    let refund = events.iter().find_map(|e| match e {
        Event::Lease(LeaseEvent::Closed { refund, owed, .. }) => Some((*refund, *owed)),
        _ => None,
    });
    let owed = units(RESERVE.base_units() * 5 / 2);
    assert_eq!(refund, Some((deposit.checked_sub(owed).unwrap(), owed)));
    // Billing past the end is refused; the three periods (the last half) are paid.
    let too_far = TxKind::BillLease {
        lease,
        periods: 4,
        probes: seen_up(&world, lease, 0..4),
    };
    let e = world.refused(&owner, too_far);
    assert!(matches!(lease_error(e), LeaseError::PeriodPastEnd { .. }));
    let probes = seen_up(&world, lease, 0..3);
    let events = bill(&mut world, lease, 3, probes);
    assert!(events.iter().any(
        |e| matches!(e, Event::Lease(LeaseEvent::Billed { paid, down: 0, .. }) if *paid == owed)
    ));
    assert_eq!(record(&world, &lease).held(), Some(Amount::ZERO));
    // Settled after the window: nothing more moves.
    let settles = lease_settles_at_ms(&record(&world, &lease)).unwrap();
    let early = world.refused(&alice, TxKind::SettleLease { lease });
    assert!(matches!(
        lease_error(early),
        LeaseError::BillWindowOpen { .. }
    ));
    world.time_ms = settles;
    world.ok(&alice, TxKind::SettleLease { lease });
    assert_eq!(record(&world, &lease).status, LeaseStatus::Settled);
    let fees = MIN_FEE.checked_mul(4).unwrap();
    let alice_spent = alice_start.checked_sub(world.balance(&alice)).unwrap();
    assert_eq!(alice_spent, owed.checked_add(fees).unwrap());
    let owner_gain = world.balance(&owner).checked_sub(owner_start).unwrap();
    assert_eq!(owner_gain, owed.checked_sub(MIN_FEE).unwrap());
    // A lease that ran clean raised its node's reputation, and says so.
    assert!(world.reputation(0) > peercloud_ledger::params::REPUTATION_START);
    let tally = world.state.node(&world.nodes[0].node_id()).unwrap().tally;
    assert_eq!(tally.count(ReputationReason::LeaseClean), 1);
    assert_eq!(tally.count(ReputationReason::LeasePeriodDown), 0);
}

#[test]
fn periods_nobody_proved_up_are_credited_to_the_user_and_cost_reputation() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let lease = active_lease(&mut world, None, RESERVE.checked_mul(6).unwrap());
    world.time_ms += 3 * PERIOD_MS;
    let reputation = world.reputation(0);
    let alice_before = world.balance(&alice);
    // Period 0: two other owners saw it up; period 1: only one; period 2: none.
    let probes = vec![
        probe(&world, 1, lease, 0),
        probe(&world, 2, lease, 0),
        probe(&world, 2, lease, 1),
    ];
    let events = bill(&mut world, lease, 3, probes);
    let billed = events.iter().find_map(|e| match e {
        Event::Lease(LeaseEvent::Billed {
            paid,
            down,
            credited,
            ..
        }) => Some((*paid, *down, *credited)),
        _ => None,
    });
    assert_eq!(billed, Some((RESERVE, 2, RESERVE.checked_mul(2).unwrap())));
    assert_eq!(
        world.balance(&alice),
        alice_before
            .checked_add(RESERVE.checked_mul(2).unwrap())
            .unwrap()
    );
    let lease = record(&world, &lease);
    assert_eq!(
        (lease.periods_up, lease.periods_down, lease.next_period),
        (1, 2, 3)
    );
    assert_eq!(
        world.reputation(0),
        reputation - 2 * peercloud_ledger::params::REPUTATION_PENALTY_LEASE_DOWN
    );
    // The record says why: two periods down, at their weight.
    let tally = world.state.node(&world.nodes[0].node_id()).unwrap().tally;
    assert_eq!(tally.count(ReputationReason::LeasePeriodDown), 2);
    assert_eq!(
        ReputationReason::LeasePeriodDown.weight(),
        -i64::from(peercloud_ledger::params::REPUTATION_PENALTY_LEASE_DOWN)
    );
}

#[test]
fn probes_count_only_from_other_owners_nodes_for_this_lease_and_period() {
    let mut world = World::new();
    let owner = world.owners[0].clone();
    let lease = active_lease(&mut world, None, RESERVE.checked_mul(6).unwrap());
    let bill_kind = |probes| TxKind::BillLease {
        lease,
        periods: 1,
        probes,
    };
    // Not ended yet.
    let e = world.refused(&owner, bill_kind(vec![]));
    assert!(matches!(
        lease_error(e),
        LeaseError::PeriodNotEnded { period: 0, .. }
    ));
    world.time_ms += PERIOD_MS;
    // The node's own probe, a probe of another period, a forged one, a duplicate.
    let e = world.refused(&owner, bill_kind(vec![probe(&world, 0, lease, 0)]));
    assert!(matches!(
        lease_error(e),
        LeaseError::BadProbe {
            reason: "is the leasing node's own",
            ..
        }
    ));
    let e = world.refused(&owner, bill_kind(vec![probe(&world, 1, lease, 1)]));
    assert!(matches!(lease_error(e), LeaseError::BadProbe { .. }));
    let mut forged = probe(&world, 1, lease, 0);
    forged.body.prober = world.nodes[2].node_id();
    let e = world.refused(&owner, bill_kind(vec![forged]));
    assert!(matches!(
        lease_error(e),
        LeaseError::BadProbe {
            reason: "is not signed by that node",
            ..
        }
    ));
    let twice = vec![probe(&world, 1, lease, 0), probe(&world, 1, lease, 0)];
    let e = world.refused(&owner, bill_kind(twice));
    assert!(matches!(lease_error(e), LeaseError::DuplicateProbe { .. }));
    // A probe from an unregistered key.
    let stranger = Keypair::from_seed(&[99; 32]);
    let fake = Signed::new(
        LeaseProbe {
            lease,
            period: 0,
            prober: stranger.node_id(),
            up: true,
        },
        &stranger,
    );
    let e = world.refused(&owner, bill_kind(vec![fake]));
    assert!(matches!(
        lease_error(e),
        LeaseError::BadProbe {
            reason: "is by an unregistered node",
            ..
        }
    ));
    // Only the node's owner bills.
    let bob = world.bob.clone();
    let e = world.refused(&bob, bill_kind(vec![]));
    assert!(matches!(lease_error(e), LeaseError::NotNodeOwner { .. }));
    // A period billed once: the second bill of it is past the cursor.
    let probes = seen_up(&world, lease, 0..1);
    bill(&mut world, lease, 1, probes);
    let e = world.refused(&owner, bill_kind(vec![]));
    assert!(matches!(
        lease_error(e),
        LeaseError::PeriodNotEnded { period: 1, .. }
    ));
}

#[test]
fn a_lease_never_activated_goes_back_whole() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let carol = world.carol.clone();
    let alice_start = world.balance(&alice);
    let req = request(&world, Some(3));
    let offers = vec![bid(&world, 0, &req, units(10))];
    let lease = open(&mut world, req, offers, RESERVE.checked_mul(3).unwrap());
    // A stranger cannot cancel while the user may still activate.
    let e = world.refused(&carol, TxKind::CancelLease { lease });
    assert!(matches!(lease_error(e), LeaseError::ActivationOpen { .. }));
    // The window passes: the user can no longer activate, anyone cancels.
    world.time_ms += 30_001;
    let e = world.refused(&alice, TxKind::ActivateLease { lease });
    assert!(matches!(lease_error(e), LeaseError::ActivationOver { .. }));
    let events = world.ok(&carol, TxKind::CancelLease { lease });
    assert!(events.iter().any(|e| matches!(e, Event::Lease(LeaseEvent::Cancelled { refund, .. }) if *refund == RESERVE.checked_mul(3).unwrap())));
    assert_eq!(record(&world, &lease).status, LeaseStatus::Cancelled);
    // Alice is out only her one fee.
    assert_eq!(
        alice_start.checked_sub(world.balance(&alice)),
        Some(MIN_FEE)
    );
}

#[test]
fn an_open_ended_lease_runs_while_its_deposit_lasts_warns_and_settles() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let bob = world.bob.clone();
    // 3.5 periods of deposit: 3 whole periods, the half stays until the end.
    let deposit = units(RESERVE.base_units() * 7 / 2);
    let lease = active_lease(&mut world, None, deposit);
    let since = world.time_ms;
    assert_eq!(record(&world, &lease).end_ms(), Some(since + 3 * PERIOD_MS));
    // Anyone tops it up; the low warning fires once fewer than 3 periods are left.
    world.time_ms += 1_000;
    let events = world.ok(
        &bob,
        TxKind::ExtendLease {
            lease,
            amount: RESERVE,
        },
    );
    assert!(events.iter().any(|e| matches!(e, Event::Lease(LeaseEvent::Deposited { end_ms: Some(end), .. }) if *end == since + 4 * PERIOD_MS)));
    world.time_ms = since + 4 * PERIOD_MS - 1;
    let probes = seen_up(&world, lease, 0..3);
    let events = bill(&mut world, lease, 3, probes);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Lease(LeaseEvent::Low { .. })))
    );
    // It ran out: closing is refused, the last period is billed, the rest settles.
    world.time_ms = since + 4 * PERIOD_MS;
    let e = world.refused(&alice, TxKind::CloseLease { lease });
    assert!(matches!(lease_error(e), LeaseError::Ended { .. }));
    let probes = seen_up(&world, lease, 3..4);
    bill(&mut world, lease, 1, probes);
    world.time_ms = lease_settles_at_ms(&record(&world, &lease)).unwrap();
    let events = world.ok(&alice, TxKind::SettleLease { lease });
    let half = units(RESERVE.base_units() / 2);
    assert!(events.iter().any(|e| matches!(e, Event::Lease(LeaseEvent::Settled { refund, down: 0, .. }) if *refund == half)));
    let lease = record(&world, &lease);
    assert_eq!(lease.paid, RESERVE.checked_mul(4).unwrap());
    assert_eq!(lease.held(), Some(Amount::ZERO));
}

#[test]
fn a_node_that_never_bills_is_not_paid_and_the_user_gets_it_all_back() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let alice_start = world.balance(&alice);
    let deposit = RESERVE.checked_mul(5).unwrap();
    let lease = active_lease(&mut world, Some(5), deposit);
    let reputation = world.reputation(0);
    world.time_ms = lease_settles_at_ms(&record(&world, &lease)).unwrap();
    let events = world.ok(&alice, TxKind::SettleLease { lease });
    assert!(events.iter().any(|e| matches!(e, Event::Lease(LeaseEvent::Settled { down: 5, refund, .. }) if *refund == deposit)));
    assert_eq!(
        alice_start.checked_sub(world.balance(&alice)),
        MIN_FEE.checked_mul(3)
    );
    assert!(world.reputation(0) < reputation);
    let e = world.refused(&alice, TxKind::SettleLease { lease });
    assert!(matches!(
        lease_error(e),
        LeaseError::WrongStatus {
            status: "settled",
            ..
        }
    ));
}
