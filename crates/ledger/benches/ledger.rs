//! Ledger throughput: signed transfers applied and durably committed.
//!
//! 20,000 transfers among 2,000 accounts are signed up front. Measured, per
//! block of 1,000:
//! - `build_and_commit`: the sequencer's path — batch signature
//!   verification, apply, state root, header signature — then one fsync'd
//!   redb commit of the block and the changed entries;
//! - `apply_block`: a follower's path (batch verification, apply, root
//!   check), no disk;
//! - `verify_signatures`: the batch verification alone, for comparison.
//!
//! After 20 blocks the signed transfers are used up; a fresh chain is set up
//! outside the timed region.

#![allow(clippy::unwrap_used)] // bench code: a failure aborts the run
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peercloud_ledger::{
    Block, BlockContext, GenesisConfig, LedgerDb, Params, State, Tx, TxKind, apply_block,
    build_block, verify_tx_signatures,
};
use peercloud_types::{Amount, Hash32, Keypair, Signed};

const ACCOUNTS: usize = 2_000;
const TXS_PER_BLOCK: usize = 1_000;
const BLOCKS: usize = 20;
const GENESIS_MS: u64 = 1_700_000_000_000;

fn key(index: usize) -> Keypair {
    Keypair::from_seed(Hash32::of(&index.to_le_bytes()).as_bytes())
}

struct Fixture {
    config: GenesisConfig,
    authority: Keypair,
    validator: Keypair,
    /// Block `b` of pre-signed transfers.
    blocks_of_txs: Vec<Vec<Signed<Tx>>>,
}

fn fixture() -> Fixture {
    let authority = key(usize::MAX);
    let validator = key(usize::MAX - 1);
    let accounts: Vec<Keypair> = (0..ACCOUNTS).map(key).collect();
    let params = Params {
        genesis_authority: authority.account_id(),
        validator: validator.public(),
        treasury: key(usize::MAX - 2).account_id(),
        min_fee: Amount::from_base_units(1_000),
        stake_min_to_serve: Amount::from_tokens(10),
        slash_bps: 1_000,
    };
    let chain = params.digest();
    let config = GenesisConfig {
        params,
        allocations: accounts
            .iter()
            .map(|a| (a.account_id(), Amount::from_tokens(1_000_000)))
            .collect(),
        time_ms: GENESIS_MS,
    };
    // Block b: accounts of half (b % 2) send their (b / 2 + 1)-th transfer.
    let blocks_of_txs = (0..BLOCKS)
        .map(|b| {
            let first = (b % 2) * TXS_PER_BLOCK;
            (first..first + TXS_PER_BLOCK)
                .map(|i| {
                    let to = accounts[(i + 1) % ACCOUNTS].account_id();
                    let tx = Tx {
                        chain,
                        nonce: (b / 2 + 1) as u64,
                        fee: Amount::from_base_units(1_000),
                        kind: TxKind::Transfer {
                            to,
                            amount: Amount::from_base_units(7),
                        },
                    };
                    Signed::new(tx, &accounts[i])
                })
                .collect()
        })
        .collect();
    Fixture {
        config,
        authority,
        validator,
        blocks_of_txs,
    }
}

fn ctx(height: u64) -> BlockContext {
    BlockContext {
        height,
        time_ms: GENESIS_MS + height * 1_000,
        seed: Hash32::ZERO,
    }
}

/// A fresh chain at genesis: its state, and its database with genesis committed.
fn fresh_chain(f: &Fixture) -> (State, Block, tempfile::TempDir, LedgerDb) {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, mut state) =
        LedgerDb::open(&dir.path().join("ledger.redb"), &f.config.params).unwrap();
    let (_, genesis) = f.config.build(&f.authority, &f.validator, vec![]).unwrap();
    apply_block(&mut state, &genesis.block).unwrap();
    db.commit_block(&genesis.block, &mut state).unwrap();
    (state, genesis.block, dir, db)
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("ledger");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TXS_PER_BLOCK as u64));

    group.bench_function("build_and_commit_1000_transfers", |b| {
        let mut chain = fresh_chain(&f);
        let mut next = 0;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if next == BLOCKS {
                    chain = fresh_chain(&f);
                    next = 0;
                }
                let txs = f.blocks_of_txs[next].clone();
                let (state, _, _, db) = &mut chain;
                let start = Instant::now();
                let built = build_block(state, txs, &ctx(next as u64 + 1), &f.validator).unwrap();
                db.commit_block(&built.block, state).unwrap();
                total += start.elapsed();
                assert!(built.rejected.is_empty());
                next += 1;
            }
            total
        });
    });

    // The blocks a follower applies, built once.
    let (mut sequencer, genesis, _dir, _db) = fresh_chain(&f);
    let blocks: Vec<Block> = (0..BLOCKS)
        .map(|i| {
            let txs = f.blocks_of_txs[i].clone();
            build_block(&mut sequencer, txs, &ctx(i as u64 + 1), &f.validator)
                .unwrap()
                .block
        })
        .collect();
    let follower_at_genesis = || {
        let mut state = State::new(f.config.params.clone()).unwrap();
        apply_block(&mut state, &genesis).unwrap();
        state
    };
    group.bench_function("apply_block_1000_transfers", |b| {
        let mut follower = follower_at_genesis();
        let mut next = 0;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if next == BLOCKS {
                    follower = follower_at_genesis();
                    next = 0;
                }
                let start = Instant::now();
                black_box(apply_block(&mut follower, &blocks[next]).unwrap());
                total += start.elapsed();
                next += 1;
            }
            total
        });
    });

    group.bench_function("verify_signatures_1000", |b| {
        b.iter(|| assert!(verify_tx_signatures(black_box(&f.blocks_of_txs[0])).is_empty()));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
