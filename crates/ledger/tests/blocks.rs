//! Blocks: the sequencer builds, a follower applies and reaches the same
//! root; every kind of bad block is refused and leaves the follower's state
//! as it was.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use peercloud_ledger::{
    BLOCK_TXS_MAX, Block, BlockContext, BlockError, BuiltBlock, GenesisConfig, State, Tx, TxError,
    TxKind, apply_block, build_block, registration_proof, verify_tx_signatures,
};
use peercloud_types::{Amount, Hash32, Keypair, PriceSheet, Resources, Signed};

struct Chain {
    sequencer: State,
    follower: State,
    validator: Keypair,
    users: Vec<Keypair>,
    time_ms: u64,
}

impl Chain {
    fn new() -> Chain {
        let users: Vec<Keypair> = (0..4).map(|i| key(50 + i)).collect();
        let config = GenesisConfig {
            params: params(),
            allocations: users.iter().map(|u| (u.account_id(), ALLOCATION)).collect(),
            time_ms: GENESIS_MS,
        };
        let (sequencer, built) = config.build(&key(1), &key(2), vec![]).unwrap();
        assert!(built.rejected.is_empty());
        let mut follower = State::new(params()).unwrap();
        apply_block(&mut follower, &built.block).unwrap();
        assert_eq!(follower.state_root(), sequencer.state_root());
        Chain {
            sequencer,
            follower,
            validator: key(2),
            users,
            time_ms: GENESIS_MS,
        }
    }

    fn transfer(&self, from: usize, nonce: u64, amount: Amount) -> Signed<Tx> {
        let to = self.users[(from + 1) % self.users.len()].account_id();
        Signed::new(
            Tx {
                chain: params().digest(),
                nonce,
                fee: MIN_FEE,
                kind: TxKind::Transfer { to, amount },
            },
            &self.users[from],
        )
    }

    fn ctx(&mut self) -> BlockContext {
        self.time_ms += 1_000;
        BlockContext {
            height: self.sequencer.next_height(),
            time_ms: self.time_ms,
            seed: Hash32::of(&self.time_ms.to_le_bytes()),
        }
    }

    fn build(&mut self, txs: Vec<Signed<Tx>>) -> BuiltBlock {
        let ctx = self.ctx();
        build_block(&mut self.sequencer, txs, &ctx, &self.validator).unwrap()
    }

    /// Applies `block` to the follower, expecting a refusal that leaves it untouched.
    fn refused(&mut self, block: &Block) -> BlockError {
        let before = snapshot(&self.follower);
        let tip = self.follower.tip().copied();
        let error = apply_block(&mut self.follower, block).expect_err("block should be refused");
        assert_eq!(
            snapshot(&self.follower),
            before,
            "refused block changed the state: {error}"
        );
        assert_eq!(self.follower.tip().copied(), tip);
        error
    }
}

#[test]
fn sequencer_drops_refused_txs_and_the_follower_agrees() {
    let mut chain = Chain::new();
    let good = chain.transfer(0, 1, Amount::from_tokens(1));
    let replay = good.clone();
    let overdraft = chain.transfer(1, 1, Amount::from_tokens(5_000));
    let mut forged = chain.transfer(2, 1, Amount::from_tokens(1));
    forged.body.fee = Amount::from_tokens(2);
    let next = chain.transfer(0, 2, Amount::from_tokens(1));
    let built = chain.build(vec![good.clone(), replay, overdraft, forged, next.clone()]);
    assert_eq!(built.block.txs, vec![good, next]);
    let reasons: Vec<_> = built.rejected.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(reasons.len(), 3);
    assert!(reasons.contains(&TxError::BadNonce {
        expected: 2,
        got: 1
    }));
    assert!(
        reasons
            .iter()
            .any(|e| matches!(e, TxError::InsufficientFunds { .. }))
    );
    assert!(
        reasons
            .iter()
            .any(|e| matches!(e, TxError::BadSignature { .. }))
    );
    let events = apply_block(&mut chain.follower, &built.block).unwrap();
    assert_eq!(events, built.events);
    assert_eq!(chain.follower.state_root(), chain.sequencer.state_root());
    assert_eq!(chain.follower.tip(), chain.sequencer.tip());
    assert_eq!(
        chain.sequencer.state_root(),
        chain.sequencer.root_from_scratch()
    );
}

#[test]
fn empty_blocks_chain_and_keep_the_root() {
    let mut chain = Chain::new();
    let root = chain.sequencer.state_root();
    for _ in 0..3 {
        let built = chain.build(vec![]);
        apply_block(&mut chain.follower, &built.block).unwrap();
    }
    assert_eq!(chain.follower.tip().unwrap().height, 3);
    assert_eq!(chain.follower.state_root(), root);
}

#[test]
fn follower_refuses_a_bad_tx_signature_naming_it() {
    let mut chain = Chain::new();
    let txs = vec![
        chain.transfer(0, 1, Amount::from_tokens(1)),
        chain.transfer(1, 1, Amount::from_tokens(1)),
    ];
    let mut block = chain.build(txs).block;
    block.txs[1].body.fee = Amount::from_tokens(3);
    // Re-sign the header so only the transaction's signature is wrong.
    let mut header = block.header.body.clone();
    header.tx_root = peercloud_ledger::tx_root(&block.txs);
    block.header = Signed::new(header, &chain.validator);
    assert_eq!(
        chain.refused(&block),
        BlockError::BadTxSignature {
            height: 1,
            index: 1,
            signer: chain.users[1].public()
        }
    );
}

#[test]
fn follower_refuses_a_block_with_a_refused_tx_and_rolls_back_all_of_it() {
    let mut chain = Chain::new();
    // The sequencer's view differs (a tx the follower will refuse is forced in).
    let first = chain.transfer(0, 1, Amount::from_tokens(1));
    let replay = first.clone();
    let ctx = chain.ctx();
    let mut block = build_block(&mut chain.sequencer, vec![first], &ctx, &chain.validator)
        .unwrap()
        .block;
    block.txs.push(replay);
    let mut header = block.header.body.clone();
    header.tx_root = peercloud_ledger::tx_root(&block.txs);
    block.header = Signed::new(header, &chain.validator);
    let error = chain.refused(&block);
    assert!(matches!(
        error,
        BlockError::TxRefused { height: 1, index: 1, ref source } if **source == TxError::BadNonce { expected: 2, got: 1 }
    ));
}

#[test]
fn follower_refuses_a_wrong_state_root() {
    let mut chain = Chain::new();
    let mut block = chain
        .build(vec![chain.transfer(0, 1, Amount::from_tokens(1))])
        .block;
    let mut header = block.header.body.clone();
    header.state_root = Hash32::of(b"lie");
    block.header = Signed::new(header, &chain.validator);
    assert!(matches!(
        chain.refused(&block),
        BlockError::StateRootMismatch { height: 1, .. }
    ));
}

#[test]
fn follower_refuses_wrong_height_parent_time_proposer_header_and_tx_root() {
    let mut chain = Chain::new();
    let good = chain
        .build(vec![chain.transfer(0, 1, Amount::from_tokens(1))])
        .block;
    let resign =
        |block: &Block, edit: &dyn Fn(&mut peercloud_ledger::BlockHeader), key: &Keypair| {
            let mut header = block.header.body.clone();
            edit(&mut header);
            Block {
                header: Signed::new(header, key),
                txs: block.txs.clone(),
            }
        };
    let validator = chain.validator.clone();
    let wrong_height = resign(&good, &|h| h.height = 2, &validator);
    assert_eq!(
        chain.refused(&wrong_height),
        BlockError::WrongHeight {
            expected: 1,
            got: 2
        }
    );
    let wrong_parent = resign(&good, &|h| h.parent = Hash32::of(b"elsewhere"), &validator);
    assert!(matches!(
        chain.refused(&wrong_parent),
        BlockError::WrongParent { height: 1, .. }
    ));
    let backwards = resign(&good, &|h| h.time_ms = GENESIS_MS - 1, &validator);
    assert!(matches!(
        chain.refused(&backwards),
        BlockError::TimeWentBackwards { .. }
    ));
    let intruder = key(66);
    let by_intruder = resign(&good, &|h| h.proposer = intruder.public(), &intruder);
    assert!(matches!(
        chain.refused(&by_intruder),
        BlockError::NotValidator { .. }
    ));
    let mut bad_header = good.clone();
    bad_header.header.body.seed = Hash32::of(b"changed after signing");
    assert_eq!(
        chain.refused(&bad_header),
        BlockError::BadHeaderSignature { height: 1 }
    );
    let mut dropped_tx = good.clone();
    dropped_tx.txs.clear();
    assert_eq!(
        chain.refused(&dropped_tx),
        BlockError::TxRootMismatch { height: 1 }
    );
    apply_block(&mut chain.follower, &good).unwrap();
    assert_eq!(chain.follower.state_root(), chain.sequencer.state_root());
}

#[test]
fn build_block_refuses_a_wrong_context_or_key_and_too_many_txs() {
    let mut chain = Chain::new();
    let before = snapshot(&chain.sequencer);
    let mut ctx = chain.ctx();
    ctx.height = 5;
    assert!(matches!(
        build_block(&mut chain.sequencer, vec![], &ctx, &chain.validator),
        Err(BlockError::WrongHeight {
            expected: 1,
            got: 5
        })
    ));
    ctx.height = 1;
    assert!(matches!(
        build_block(&mut chain.sequencer, vec![], &ctx, &key(77)),
        Err(BlockError::NotValidator { .. })
    ));
    let many = vec![chain.transfer(0, 1, Amount::from_tokens(1)); BLOCK_TXS_MAX + 1];
    assert!(matches!(
        build_block(&mut chain.sequencer, many, &ctx, &chain.validator),
        Err(BlockError::TooManyTxs { .. })
    ));
    assert_eq!(snapshot(&chain.sequencer), before);
}

#[test]
fn batch_verification_names_bad_and_weak_signers() {
    let chain = Chain::new();
    let mut txs: Vec<_> = (0..8)
        .map(|i| chain.transfer(i % 4, 1 + i as u64 / 4, Amount::from_tokens(1)))
        .collect();
    assert!(verify_tx_signatures(&txs).is_empty());
    txs[3].signature[0] ^= 1;
    txs[6].body.nonce = 99;
    assert_eq!(verify_tx_signatures(&txs), vec![3, 6]);
    // The identity point is a small-order (weak) key: refused even with a
    // signature that would satisfy the cofactorless equation.
    let mut weak = txs[0].clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.signer = peercloud_types::PublicKey(identity);
    assert_eq!(verify_tx_signatures(&[txs[0].clone(), weak]), vec![1]);
}

#[test]
fn node_registration_can_ride_in_the_genesis_block() {
    let owner = key(50);
    let node = key(80);
    let config = GenesisConfig {
        params: params(),
        allocations: vec![(owner.account_id(), ALLOCATION)],
        time_ms: GENESIS_MS,
    };
    let register = Signed::new(
        Tx {
            chain: params().digest(),
            nonce: 1,
            fee: MIN_FEE,
            kind: TxKind::RegisterNode {
                node: node.node_id(),
                proof: registration_proof(&node, &owner.account_id()),
                resources: Resources::default(),
                location: String::new(),
                prices: PriceSheet::default(),
            },
        },
        &owner,
    );
    let (state, built) = config.build(&key(1), &key(2), vec![register]).unwrap();
    assert!(built.rejected.is_empty());
    assert_eq!(built.block.txs.len(), 2);
    assert_eq!(
        state.node(&node.node_id()).unwrap().owner,
        owner.account_id()
    );
    assert_eq!(state.tip().unwrap().height, 0);
}

#[test]
fn next_context_follows_the_tip_with_a_seed_the_proposer_cannot_pick() {
    let mut chain = Chain::new();
    let ctx = BlockContext::next(&chain.sequencer, GENESIS_MS + 5);
    assert_eq!(ctx.height, 1);
    assert_eq!(ctx, BlockContext::next(&chain.follower, GENESIS_MS + 5));
    let built = build_block(&mut chain.sequencer, vec![], &ctx, &chain.validator).unwrap();
    assert_eq!(built.block.header.body.seed, ctx.seed);
    let after = BlockContext::next(&chain.sequencer, GENESIS_MS + 6);
    assert_eq!(after.height, 2);
    assert_ne!(after.seed, ctx.seed);
    apply_block(&mut chain.follower, &built.block).unwrap();
}
