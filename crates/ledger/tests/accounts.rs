//! Handler tests for the gate every transaction passes (signature, nonce,
//! fee), genesis, transfers, nodes and stake. Every refusal is checked to
//! leave the state exactly as it was.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use peercloud_ledger::{Event, GenesisConfig, Tx, TxError, TxKind, apply, registration_proof};
use peercloud_types::{Amount, PriceSheet, Resources, Signed};

#[test]
fn genesis_mints_the_supply_once() {
    let world = World::new();
    // 6 funded accounts; fees moved some to the treasury but nothing was created.
    assert_eq!(
        world.state.minted_supply(),
        ALLOCATION.checked_mul(6).unwrap()
    );
    world.state.check_invariants().unwrap();
    assert!(world.state.genesis_done());
}

#[test]
fn genesis_is_refused_after_height_zero_by_others_twice_or_with_a_fee() {
    let mut world = World::new();
    let config = GenesisConfig {
        params: params(),
        allocations: vec![],
        time_ms: 0,
    };
    // Height 1: refused whoever signs.
    let tx = world.tx(
        &world.authority,
        TxKind::Genesis {
            allocations: vec![(world.alice.account_id(), ALLOCATION)],
        },
    );
    let tx = Signed::new(
        Tx {
            chain: params().digest(),
            fee: Amount::ZERO,
            ..tx.body
        },
        &world.authority,
    );
    assert_eq!(
        world.refused_tx(&tx),
        TxError::GenesisNotAtHeightZero { height: 1 }
    );
    // Height 0, already applied.
    world.height = 0;
    assert_eq!(world.refused_tx(&tx), TxError::GenesisAlreadyApplied);
    // Height 0 on a fresh chain, wrong signer and a fee.
    let mut fresh = peercloud_ledger::State::new(params()).unwrap();
    let ctx = world.ctx();
    let by_alice = config.genesis_tx(&world.alice);
    assert!(matches!(
        apply(&mut fresh, &by_alice, &ctx),
        Err(TxError::NotGenesisAuthority { .. })
    ));
    let with_fee = Signed::new(
        Tx {
            chain: params().digest(),
            fee: MIN_FEE,
            ..config.genesis_tx(&world.authority).body
        },
        &world.authority,
    );
    assert_eq!(
        apply(&mut fresh, &with_fee, &ctx),
        Err(TxError::GenesisFee { fee: MIN_FEE })
    );
    assert!(!fresh.genesis_done());
    assert!(
        fresh.accounts().next().is_none(),
        "a refused genesis left an account"
    );
}

#[test]
fn a_bad_signature_is_refused() {
    let mut world = World::new();
    let mut tx = world.tx(
        &world.alice,
        TxKind::Transfer {
            to: world.bob.account_id(),
            amount: ALLOCATION,
        },
    );
    tx.body.kind = TxKind::Transfer {
        to: world.carol.account_id(),
        amount: ALLOCATION,
    };
    assert_eq!(
        world.refused_tx(&tx),
        TxError::BadSignature {
            signer: world.alice.public()
        }
    );
    let mut other = world.tx(&world.alice, TxKind::Stake { amount: MIN_FEE });
    other.signer = world.bob.public();
    assert!(matches!(
        world.refused_tx(&other),
        TxError::BadSignature { .. }
    ));
}

#[test]
fn replayed_and_skipped_nonces_are_refused() {
    let mut world = World::new();
    let tx = world.tx(
        &world.alice,
        TxKind::Transfer {
            to: world.bob.account_id(),
            amount: MIN_FEE,
        },
    );
    assert_eq!(tx.body.nonce, 1);
    world.apply_signed(&tx).unwrap();
    assert_eq!(
        world.refused_tx(&tx),
        TxError::BadNonce {
            expected: 2,
            got: 1
        }
    );
    let skipped = Signed::new(
        Tx {
            chain: params().digest(),
            nonce: 5,
            ..tx.body.clone()
        },
        &world.alice,
    );
    assert_eq!(
        world.refused_tx(&skipped),
        TxError::BadNonce {
            expected: 2,
            got: 5
        }
    );
}

#[test]
fn fee_below_minimum_is_refused_and_fees_reach_the_treasury() {
    let mut world = World::new();
    let tx = world.tx(
        &world.alice,
        TxKind::Transfer {
            to: world.bob.account_id(),
            amount: MIN_FEE,
        },
    );
    let cheap = Signed::new(
        Tx {
            chain: params().digest(),
            fee: Amount::from_base_units(MIN_FEE.base_units() - 1),
            ..tx.body.clone()
        },
        &world.alice,
    );
    assert!(matches!(
        world.refused_tx(&cheap),
        TxError::FeeTooLow { .. }
    ));
    let treasury_before = world.state.balance(&world.treasury);
    let events = world.apply_signed(&tx).unwrap();
    assert_eq!(
        events[0],
        Event::FeeCharged {
            payer: world.alice.account_id(),
            amount: MIN_FEE
        }
    );
    assert_eq!(
        world.state.balance(&world.treasury),
        treasury_before.checked_add(MIN_FEE).unwrap()
    );
}

#[test]
fn transfer_moves_tokens_and_refuses_overdrafts_and_zero() {
    let mut world = World::new();
    let (alice, bob) = (world.alice.clone(), world.bob.clone());
    let amount = Amount::from_tokens(250);
    let events = world.ok(
        &alice,
        TxKind::Transfer {
            to: bob.account_id(),
            amount,
        },
    );
    assert!(events.contains(&Event::Transferred {
        from: alice.account_id(),
        to: bob.account_id(),
        amount
    }));
    let spent = amount.checked_add(MIN_FEE).unwrap();
    assert_eq!(
        world.balance(&alice),
        ALLOCATION.checked_sub(spent).unwrap()
    );
    assert_eq!(world.balance(&bob), ALLOCATION.checked_add(amount).unwrap());

    let available = world.balance(&alice).checked_sub(MIN_FEE).unwrap();
    let too_much = available.checked_add(Amount::from_base_units(1)).unwrap();
    assert_eq!(
        world.refused(
            &alice,
            TxKind::Transfer {
                to: bob.account_id(),
                amount: too_much
            }
        ),
        TxError::InsufficientFunds {
            account: alice.account_id(),
            needed: too_much,
            available
        }
    );
    assert_eq!(
        world.refused(
            &alice,
            TxKind::Transfer {
                to: bob.account_id(),
                amount: Amount::ZERO
            }
        ),
        TxError::ZeroAmount { what: "transfer" }
    );
    // An account with nothing cannot even pay the fee.
    let pauper = key(99);
    assert!(matches!(
        world.refused(&pauper, TxKind::Transfer { to: bob.account_id(), amount: MIN_FEE }),
        TxError::InsufficientFunds { needed, .. } if needed == MIN_FEE
    ));
}

#[test]
fn register_node_needs_the_node_keys_proof_naming_the_owner() {
    let mut world = World::new();
    let bob = world.bob.clone();
    let node = key(40);
    let kind = |proof| TxKind::RegisterNode {
        node: node.node_id(),
        proof,
        resources: Resources::default(),
        location: "home".into(),
        prices: PriceSheet::default(),
    };
    // A proof naming alice cannot be used by bob.
    let stolen = registration_proof(&node, &world.alice.account_id());
    assert_eq!(
        world.refused(&bob, kind(stolen)),
        TxError::BadRegistrationProof {
            node: node.node_id(),
            owner: bob.account_id()
        }
    );
    let events = world.ok(&bob, kind(registration_proof(&node, &bob.account_id())));
    assert!(events.contains(&Event::NodeRegistered {
        node: node.node_id(),
        owner: bob.account_id()
    }));
    let record = world.state.node(&node.node_id()).unwrap();
    assert_eq!(record.owner, bob.account_id());
    assert_eq!(
        record.reputation,
        peercloud_ledger::genesis::REPUTATION_START
    );
    assert_eq!(
        world.refused(&bob, kind(registration_proof(&node, &bob.account_id()))),
        TxError::NodeAlreadyRegistered {
            node: node.node_id()
        }
    );
}

#[test]
fn register_node_refuses_a_long_location() {
    let mut world = World::new();
    let bob = world.bob.clone();
    let node = key(41);
    let location = "x".repeat(peercloud_ledger::apply::LOCATION_BYTES_MAX + 1);
    let error = world.refused(
        &bob,
        TxKind::RegisterNode {
            node: node.node_id(),
            proof: registration_proof(&node, &bob.account_id()),
            resources: Resources::default(),
            location,
            prices: PriceSheet::default(),
        },
    );
    assert!(matches!(error, TxError::LocationTooLong { .. }));
}

#[test]
fn update_node_only_by_its_owner() {
    let mut world = World::new();
    let owner = world.owners[0].clone();
    let node = world.nodes[0].node_id();
    let prices = PriceSheet {
        job_base: Amount::from_tokens(1),
        ..Default::default()
    };
    let update = |location: &str| TxKind::UpdateNode {
        node,
        resources: Resources {
            cpu_millicores: 8000,
            ..Default::default()
        },
        location: location.into(),
        prices,
    };
    let bob = world.bob.clone();
    assert_eq!(
        world.refused(&bob, update("x")),
        TxError::NotOwner {
            node,
            owner: owner.account_id(),
            signer: bob.account_id()
        }
    );
    let unknown = key(77).node_id();
    assert_eq!(
        world.refused(
            &owner,
            TxKind::UpdateNode {
                node: unknown,
                resources: Resources::default(),
                location: String::new(),
                prices
            }
        ),
        TxError::UnknownNode { node: unknown }
    );
    world.ok(&owner, update("us-east"));
    let record = world.state.node(&node).unwrap();
    assert_eq!(record.location, "us-east");
    assert_eq!(record.resources.cpu_millicores, 8000);
    assert_eq!(record.prices, prices);
}

#[test]
fn stake_and_unstake_move_between_balance_and_stake() {
    let mut world = World::new();
    let bob = world.bob.clone();
    let amount = Amount::from_tokens(40);
    world.ok(&bob, TxKind::Stake { amount });
    assert_eq!(world.state.stake(&bob.account_id()), amount);
    world.ok(
        &bob,
        TxKind::Unstake {
            amount: Amount::from_tokens(15),
        },
    );
    assert_eq!(
        world.state.stake(&bob.account_id()),
        Amount::from_tokens(25)
    );
    let fees = MIN_FEE.checked_mul(2).unwrap();
    let expected = ALLOCATION
        .checked_sub(Amount::from_tokens(25))
        .unwrap()
        .checked_sub(fees)
        .unwrap();
    assert_eq!(world.balance(&bob), expected);

    assert_eq!(
        world.refused(
            &bob,
            TxKind::Unstake {
                amount: Amount::from_tokens(26)
            }
        ),
        TxError::InsufficientStake {
            account: bob.account_id(),
            needed: Amount::from_tokens(26),
            available: Amount::from_tokens(25)
        }
    );
    assert!(matches!(
        world.refused(&bob, TxKind::Stake { amount: ALLOCATION }),
        TxError::InsufficientFunds { .. }
    ));
    assert_eq!(
        world.refused(
            &bob,
            TxKind::Stake {
                amount: Amount::ZERO
            }
        ),
        TxError::ZeroAmount { what: "stake" }
    );
    assert_eq!(
        world.refused(
            &bob,
            TxKind::Unstake {
                amount: Amount::ZERO
            }
        ),
        TxError::ZeroAmount { what: "unstake" }
    );
}

#[test]
fn unstake_is_refused_while_a_node_is_bound_in_an_open_job() {
    let mut world = World::new();
    let job = world.post_and_award(1, Amount::from_tokens(5), Amount::from_tokens(5));
    let owner = world.owners[0].clone();
    assert_eq!(
        world.refused(
            &owner,
            TxKind::Unstake {
                amount: Amount::from_tokens(1)
            }
        ),
        TxError::StakeBound {
            account: owner.account_id(),
            awards: 1
        }
    );
    world.submit(0, job, b"out", 7);
    world.by_carol(TxKind::SettleJob { job }).unwrap();
    world.ok(
        &owner,
        TxKind::Unstake {
            amount: Amount::from_tokens(1),
        },
    );
}

#[test]
fn a_rejected_transaction_costs_nothing_and_keeps_the_nonce() {
    let mut world = World::new();
    let alice = world.alice.clone();
    let before = world.state.next_nonce(&alice.public());
    world.refused(
        &alice,
        TxKind::Transfer {
            to: world.bob.account_id(),
            amount: Amount::from_tokens(5_000),
        },
    );
    assert_eq!(world.state.next_nonce(&alice.public()), before);
    assert_eq!(world.balance(&alice), ALLOCATION);
}

#[test]
fn dry_run_reports_the_outcome_and_changes_nothing() {
    let mut world = World::new();
    let tx = world.tx(
        &world.alice,
        TxKind::Transfer {
            to: world.bob.account_id(),
            amount: Amount::from_tokens(3),
        },
    );
    let before = snapshot(&world.state);
    let ctx = world.ctx();
    let events = peercloud_ledger::dry_run(&mut world.state, &tx, &ctx).unwrap();
    assert_eq!(snapshot(&world.state), before);
    assert_eq!(world.apply_signed(&tx).unwrap(), events);
    let replay = peercloud_ledger::dry_run(&mut world.state, &tx, &ctx);
    assert_eq!(
        replay,
        Err(TxError::BadNonce {
            expected: 2,
            got: 1
        })
    );
}

#[test]
fn genesis_refuses_too_many_allocations_and_a_supply_that_overflows() {
    let world = World::new();
    let ctx = peercloud_ledger::BlockContext {
        height: 0,
        ..world.ctx()
    };
    let mut fresh = peercloud_ledger::State::new(params()).unwrap();
    let max = peercloud_ledger::genesis::GENESIS_ALLOCATIONS_MAX;
    let many = GenesisConfig {
        params: params(),
        allocations: vec![(world.alice.account_id(), Amount::from_base_units(1)); max + 1],
        time_ms: 0,
    };
    assert_eq!(
        apply(&mut fresh, &many.genesis_tx(&world.authority), &ctx),
        Err(TxError::TooManyAllocations {
            count: max + 1,
            max
        })
    );
    let half = Amount::from_base_units(u128::MAX / 2 + 1);
    let overflowing = GenesisConfig {
        params: params(),
        allocations: vec![
            (world.alice.account_id(), half),
            (world.bob.account_id(), half),
        ],
        time_ms: 0,
    };
    assert_eq!(
        apply(&mut fresh, &overflowing.genesis_tx(&world.authority), &ctx),
        Err(TxError::Overflow { what: "the supply" })
    );
    assert!(fresh.accounts().next().is_none());
    assert!(!fresh.genesis_done());
}

#[test]
fn a_transaction_for_another_chain_is_refused_and_changes_nothing() {
    let mut world = World::new();
    let tx = world.tx(
        &world.alice,
        TxKind::Transfer {
            to: world.bob.account_id(),
            amount: MIN_FEE,
        },
    );
    let mut other = params();
    other.min_fee = Amount::from_base_units(MIN_FEE.base_units() + 1);
    let foreign = Signed::new(
        Tx {
            chain: other.digest(),
            ..tx.body.clone()
        },
        &world.alice,
    );
    let before = snapshot(&world.state);
    assert_eq!(
        world.refused_tx(&foreign),
        TxError::WrongChain {
            expected: params().digest(),
            got: other.digest(),
        }
    );
    assert_eq!(
        snapshot(&world.state),
        before,
        "a refused transaction changes nothing"
    );
    world.apply_signed(&tx).unwrap();
}

#[test]
fn transfers_to_keys_no_one_can_sign_for_and_zero_priced_jobs_are_refused() {
    let mut world = World::new();
    let before = snapshot(&world.state);
    for bytes in [[0u8; 32], {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        identity
    }] {
        let to = peercloud_types::AccountId(peercloud_types::PublicKey(bytes));
        let err = world.refused(
            &world.alice.clone(),
            TxKind::Transfer {
                to,
                amount: MIN_FEE,
            },
        );
        assert_eq!(err, TxError::UnusableAccount { account: to });
    }
    assert_eq!(snapshot(&world.state), before, "no tokens burned");
    let err = world.refused(
        &world.alice.clone(),
        TxKind::PostJob {
            spec_digest: peercloud_types::Hash32::of(b"spec"),
            redundancy: 1,
            max_price_per_node: Amount::ZERO,
            deadline_ms: world.ctx().time_ms + 60_000,
        },
    );
    assert!(matches!(err, TxError::ZeroAmount { .. }), "{err}");
}
