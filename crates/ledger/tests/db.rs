//! The ledger on disk: blocks survive a reopen, the tail is checked, and
//! corruption or a refused block never reaches the state.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::*;
use peercloud_ledger::{
    Block, BlockContext, DbError, GenesisConfig, LedgerDb, State, Tx, TxKind, apply_block,
    build_block,
};
use peercloud_types::{Amount, Hash32, Keypair, Signed};
use redb::{Database, ReadableTable, TableDefinition};

const BLOCKS: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("blocks");
const ENTRIES: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("state_entries");

fn users() -> Vec<Keypair> {
    (0..4).map(|i| key(50 + i)).collect()
}

/// Creates a ledger at `path` with genesis and `blocks` more blocks of
/// transfers, each committed; returns the final state.
fn make_chain(path: &Path, blocks: u64) -> State {
    let users = users();
    let config = GenesisConfig {
        params: params(),
        allocations: users.iter().map(|u| (u.account_id(), ALLOCATION)).collect(),
        time_ms: GENESIS_MS,
    };
    let (mut db, mut state) = LedgerDb::open(path, &params()).unwrap();
    assert!(state.tip().is_none());
    let (mut state_after, built) = config.build(&key(1), &key(2), vec![]).unwrap();
    apply_block(&mut state, &built.block).unwrap();
    db.commit_block(&built.block, &mut state).unwrap();
    state_after.check_invariants().unwrap();
    for height in 1..=blocks {
        let txs = users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let to = users[(i + 1) % users.len()].account_id();
                let kind = TxKind::Transfer {
                    to,
                    amount: Amount::from_tokens(height),
                };
                Signed::new(
                    Tx {
                        chain: params().digest(),
                        nonce: height,
                        fee: MIN_FEE,
                        kind,
                    },
                    user,
                )
            })
            .collect();
        let ctx = BlockContext {
            height,
            time_ms: GENESIS_MS + height * 1_000,
            seed: Hash32::ZERO,
        };
        let built = build_block(&mut state_after, txs, &ctx, &key(2)).unwrap();
        assert!(built.rejected.is_empty());
        apply_block(&mut state, &built.block).unwrap();
        db.commit_block(&built.block, &mut state).unwrap();
    }
    assert_eq!(state.state_root(), state_after.state_root());
    state
}

fn rewrite_block(path: &Path, height: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(BLOCKS).unwrap();
        let mut bytes = table.get(height).unwrap().unwrap().value().to_vec();
        edit(&mut bytes);
        table.insert(height, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn reopen_resumes_at_the_same_tip_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let state = make_chain(&path, 5);
    let (db, reopened) = LedgerDb::open(&path, &params()).unwrap();
    assert_eq!(reopened.tip(), state.tip());
    assert_eq!(reopened.state_root(), state.state_root());
    assert_eq!(reopened.state_root(), reopened.root_from_scratch());
    let tip = db.tip().unwrap().unwrap();
    assert_eq!(tip.height, 5);
    assert_eq!(Some(tip.hash), state.tip().map(|t| t.hash));
    let replayed = db.replay_from_genesis().unwrap();
    assert_eq!(replayed.state_root(), state.state_root());
    // Queries read the committed records.
    let user = users()[0].account_id();
    assert_eq!(db.balance(&user).unwrap(), state.balance(&user));
    assert_eq!(db.account(&user).unwrap().as_ref(), state.account(&user));
    assert_eq!(db.block(5).unwrap().unwrap().height(), 5);
    assert!(db.block(6).unwrap().is_none());
    assert!(db.node(&key(9).node_id()).unwrap().is_none());
    assert!(
        db.job(&peercloud_types::JobId(Hash32::ZERO))
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_reopened_ledger_keeps_building() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    make_chain(&path, 2);
    let (mut db, mut state) = LedgerDb::open(&path, &params()).unwrap();
    let user = &users()[0];
    let tx = Signed::new(
        Tx {
            chain: params().digest(),
            nonce: 3,
            fee: MIN_FEE,
            kind: TxKind::Stake {
                amount: Amount::from_tokens(1),
            },
        },
        user,
    );
    let ctx = BlockContext {
        height: 3,
        time_ms: GENESIS_MS + 3_000,
        seed: Hash32::ZERO,
    };
    let built = build_block(&mut state, vec![tx], &ctx, &key(2)).unwrap();
    assert!(built.rejected.is_empty());
    db.commit_block(&built.block, &mut state).unwrap();
    drop(db);
    let (db, reopened) = LedgerDb::open(&path, &params()).unwrap();
    assert_eq!(reopened.stake(&user.account_id()), Amount::from_tokens(1));
    assert_eq!(
        db.replay_from_genesis().unwrap().state_root(),
        reopened.state_root()
    );
}

#[test]
fn a_corrupted_last_block_is_reported_with_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    make_chain(&path, 3);
    rewrite_block(&path, 3, |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
    });
    let error = LedgerDb::open(&path, &params()).unwrap_err();
    assert!(
        matches!(error, DbError::BlockChecksum { height: 3 }),
        "{error}"
    );
    assert!(error.to_string().contains("block 3"));
}

#[test]
fn a_truncated_or_missing_block_is_reported_with_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    make_chain(&path, 3);
    rewrite_block(&path, 2, |bytes| bytes.truncate(10));
    // The tip (3) is intact, its parent (2) is torn.
    let error = LedgerDb::open(&path, &params()).unwrap_err();
    assert!(
        matches!(error, DbError::BlockChecksum { height: 2 }),
        "{error}"
    );
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(BLOCKS).unwrap().remove(3).unwrap();
        txn.commit().unwrap();
    }
    let error = LedgerDb::open(&path, &params()).unwrap_err();
    assert!(
        matches!(error, DbError::MissingBlock { height: 3 }),
        "{error}"
    );
}

#[test]
fn a_tampered_state_entry_is_caught_by_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    make_chain(&path, 2);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(ENTRIES).unwrap();
            let (key, mut value) = {
                let mut rows = table.iter().unwrap();
                let (k, v) = rows.nth(1).unwrap().unwrap();
                (k.value().to_vec(), v.value().to_vec())
            };
            // Bump the balance's low varint byte: still decodes, different value.
            value[2] ^= 1;
            table.insert(key.as_slice(), value.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let error = LedgerDb::open(&path, &params()).unwrap_err();
    assert!(
        matches!(error, DbError::StateRootMismatch { height: 2, .. }),
        "{error}"
    );
}

#[test]
fn a_refused_block_is_not_committed_and_the_stored_state_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let built_state = make_chain(&path, 2);
    let (mut db, mut state) = LedgerDb::open(&path, &params()).unwrap();
    // A block whose transaction fails (a replayed nonce), signed by the validator.
    let mut sequencer = state.clone();
    let ctx = BlockContext {
        height: 3,
        time_ms: GENESIS_MS + 3_000,
        seed: Hash32::ZERO,
    };
    let mut block: Block = build_block(&mut sequencer, vec![], &ctx, &key(2))
        .unwrap()
        .block;
    let replayed = Signed::new(
        Tx {
            chain: params().digest(),
            nonce: 1,
            fee: MIN_FEE,
            kind: TxKind::Stake {
                amount: Amount::from_tokens(1),
            },
        },
        &users()[0],
    );
    block.txs.push(replayed);
    let mut header = block.header.body.clone();
    header.tx_root = peercloud_ledger::tx_root(&block.txs);
    block.header = Signed::new(header, &key(2));
    assert!(apply_block(&mut state, &block).is_err());
    // The state is still at block 2, so the block cannot be committed.
    assert!(matches!(
        db.commit_block(&block, &mut state),
        Err(DbError::StateNotAtBlock { height: 3 })
    ));
    drop(db);
    let (db, reopened) = LedgerDb::open(&path, &params()).unwrap();
    assert_eq!(db.tip().unwrap().unwrap().height, 2);
    assert_eq!(reopened.state_root(), built_state.state_root());
}

#[test]
fn commit_refuses_out_of_order_blocks_and_foreign_params() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    make_chain(&path, 1);
    let (mut db, mut state) = LedgerDb::open(&path, &params()).unwrap();
    let genesis = db.block(0).unwrap().unwrap();
    assert!(matches!(
        db.commit_block(&genesis, &mut state),
        Err(DbError::NotNextBlock {
            expected: 2,
            got: 0
        })
    ));
    drop(db);
    let mut other = params();
    other.min_fee = Amount::ZERO;
    assert!(matches!(
        LedgerDb::open(&path, &other),
        Err(DbError::ParamsMismatch { .. })
    ));
}
