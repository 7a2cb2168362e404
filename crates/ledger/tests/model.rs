//! Property tests over random sequences of transactions among a few accounts
//! and nodes: transfers, stakes, posts, awards, results (right and wrong),
//! withdrawals, settles, expires (early ones included), clusters (creation,
//! joins, 1-of-2 and 2-of-2 decisions, leaves), buckets (deposits, bills
//! with usage and receipts, some from strangers, closes, expiries), failed
//! audit reports (judgements included), leases (sealed-bid awards,
//! activation, bills with and without probes, extensions, closes, cancels,
//! settlements), replays and forgeries, at random times.
//!
//! Each transaction is first applied alone to a shadow state, where a refusal
//! must leave the state and its root untouched; the sequencer then builds the
//! block from the same transactions and must include exactly the accepted
//! ones; every block is committed to redb; at the end a fresh follower replays
//! the block log and the reopened database matches. Throughout: supply is
//! conserved, escrow released never exceeds escrow locked (nor a bucket's
//! payouts its deposits, nor a lease's pay and refunds its deposits; a
//! lease that is over gave back all it held), and the
//! incremental root equals the root recomputed from scratch.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "model/leases.rs"]
mod leases;
#[path = "model/storage.rs"]
mod storage;

use common::*;
use leases::{LeaseOp, check_leases, lease_op};
use peercloud_ledger::{
    BlockContext, BucketId, ClusterId, GenesisConfig, JobState, LedgerDb, State, Tx, TxError,
    TxKind, apply, apply_block, build_block, registration_proof,
};
use peercloud_types::{
    Amount, Hash32, JobId, Keypair, LeaseId, Offer, PriceSheet, Resources, Signed,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use storage::{StorageOp, storage_op};

const USERS: usize = 4;
const NODES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        tokens: u64,
    },
    Stake {
        who: usize,
        tokens: u64,
    },
    Unstake {
        who: usize,
        tokens: u64,
    },
    Post {
        who: usize,
        k: u8,
        max_tokens: u64,
        deadline_s: u64,
    },
    Award {
        job: usize,
        start: usize,
        price_percent: u128,
        by_poster: bool,
    },
    Submit {
        job: usize,
        node: usize,
        digest: u8,
        fuel: u64,
    },
    Withdraw {
        job: usize,
        node: usize,
    },
    Settle {
        job: usize,
        by: usize,
    },
    Expire {
        job: usize,
        by: usize,
    },
    Cancel {
        job: usize,
        by: usize,
    },
    Replay {
        pick: usize,
    },
    Forge {
        from: usize,
    },
    /// A storage operation (clusters, buckets, billing).
    Storage(StorageOp),
    /// A lease operation (awards, activation, billing with probes, ends).
    Lease(LeaseOp),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        3 => (user.clone(), 0..USERS, 0u64..400).prop_map(|(from, to, tokens)| Op::Transfer { from, to, tokens }),
        1 => (user.clone(), 0u64..60).prop_map(|(who, tokens)| Op::Stake { who, tokens }),
        1 => (user.clone(), 0u64..60).prop_map(|(who, tokens)| Op::Unstake { who, tokens }),
        3 => (user.clone(), 1u8..=3, 0u64..30, 1u64..20)
            .prop_map(|(who, k, max_tokens, deadline_s)| Op::Post { who, k, max_tokens, deadline_s }),
        4 => (any::<usize>(), 0..NODES, 0u128..120, prop::bool::weighted(0.9))
            .prop_map(|(job, start, price_percent, by_poster)| Op::Award { job, start, price_percent, by_poster }),
        6 => (any::<usize>(), 0..=NODES, prop::sample::select(vec![0u8, 0, 0, 0, 1, 2]), prop::sample::select(vec![0u64, 0, 0, 1]))
            .prop_map(|(job, node, digest, fuel)| Op::Submit { job, node, digest, fuel }),
        2 => (any::<usize>(), 0..=NODES).prop_map(|(job, node)| Op::Withdraw { job, node }),
        2 => (any::<usize>(), user.clone()).prop_map(|(job, by)| Op::Settle { job, by }),
        2 => (any::<usize>(), user.clone()).prop_map(|(job, by)| Op::Expire { job, by }),
        1 => (any::<usize>(), user.clone()).prop_map(|(job, by)| Op::Cancel { job, by }),
        1 => any::<usize>().prop_map(|pick| Op::Replay { pick }),
        1 => user.prop_map(|from| Op::Forge { from }),
        12 => storage_op().prop_map(Op::Storage),
        10 => lease_op().prop_map(Op::Lease),
    ]
}

/// A block's worth of operations and how far the clock moves before it.
fn block() -> impl Strategy<Value = (Vec<Op>, u64)> {
    // Now and then a long pause, so billing windows and grace periods end.
    let pause = prop_oneof![9 => 0u64..5_000, 1 => 20_000u64..60_000];
    (prop::collection::vec(op(), 0..16), pause)
}

struct Model {
    users: Vec<Keypair>,
    nodes: Vec<Keypair>,
    jobs: Vec<JobId>,
    clusters: Vec<ClusterId>,
    buckets: Vec<BucketId>,
    leases: Vec<LeaseId>,
    accepted: Vec<Signed<Tx>>,
}

impl Model {
    fn sign(&self, shadow: &State, signer: &Keypair, kind: TxKind) -> Signed<Tx> {
        let nonce = shadow.next_nonce(&signer.public());
        Signed::new(
            Tx {
                chain: shadow.params().digest(),
                nonce,
                fee: MIN_FEE,
                kind,
            },
            signer,
        )
    }

    /// Picks a job, preferring those in `wanted` state (so most operations
    /// meet a job they can act on), and any job one time in eight.
    fn job(&self, shadow: &State, pick: usize, wanted: &[JobState]) -> Option<JobId> {
        let fitting: Vec<JobId> = self
            .jobs
            .iter()
            .copied()
            .filter(|id| {
                shadow
                    .job(id)
                    .is_some_and(|job| wanted.contains(&job.state))
            })
            .collect();
        let pool = if fitting.is_empty() || pick.is_multiple_of(8) {
            &self.jobs
        } else {
            &fitting
        };
        (!pool.is_empty()).then(|| pool[(pick / 8) % pool.len()])
    }

    /// Mostly one of `job`'s awarded nodes; `node == NODES` picks node 0
    /// whether awarded or not.
    fn awarded_key(&self, shadow: &State, job: &JobId, node: usize) -> Option<&Keypair> {
        let awarded: Vec<_> = shadow.job(job)?.awards.iter().map(|a| a.node).collect();
        match awarded.get(node % awarded.len().max(1)) {
            Some(id) if node < NODES => self.nodes.iter().find(|n| n.node_id() == *id),
            _ => Some(&self.nodes[0]),
        }
    }

    /// The transaction for `op` against the shadow state, if the op applies.
    fn tx(&self, shadow: &State, op: &Op, time_ms: u64) -> Option<Signed<Tx>> {
        let tokens = Amount::from_tokens;
        Some(match op {
            Op::Transfer {
                from,
                to,
                tokens: n,
            } => {
                let kind = TxKind::Transfer {
                    to: self.users[*to].account_id(),
                    amount: tokens(*n),
                };
                self.sign(shadow, &self.users[*from], kind)
            }
            Op::Stake { who, tokens: n } => self.sign(
                shadow,
                &self.users[*who],
                TxKind::Stake { amount: tokens(*n) },
            ),
            Op::Unstake { who, tokens: n } => self.sign(
                shadow,
                &self.users[*who],
                TxKind::Unstake { amount: tokens(*n) },
            ),
            Op::Post {
                who,
                k,
                max_tokens,
                deadline_s,
            } => {
                let kind = TxKind::PostJob {
                    spec_digest: Hash32::of(b"spec"),
                    redundancy: *k,
                    max_price_per_node: tokens(*max_tokens),
                    deadline_ms: time_ms + deadline_s * 1_000,
                };
                self.sign(shadow, &self.users[*who], kind)
            }
            Op::Award {
                job,
                start,
                price_percent,
                by_poster,
            } => {
                let job = self.job(shadow, *job, &[JobState::Posted])?;
                let record = shadow.job(&job)?;
                let offers = (0..usize::from(record.redundancy))
                    .map(|i| {
                        let node = &self.nodes[(start + i) % NODES];
                        let offer = Offer {
                            job,
                            node: node.node_id(),
                            price: record
                                .max_price_per_node
                                .checked_mul_div(*price_percent, 100)
                                .unwrap_or(Amount::ZERO),
                            valid_until_ms: time_ms + 5_000,
                        };
                        Signed::new(offer, node)
                    })
                    .collect();
                let poster = self
                    .users
                    .iter()
                    .find(|u| u.account_id() == record.poster)?;
                let signer = if *by_poster { poster } else { &self.users[0] };
                self.sign(shadow, signer, TxKind::AwardJob { job, offers })
            }
            Op::Submit {
                job,
                node,
                digest,
                fuel,
            } => {
                let job = self.job(shadow, *job, &[JobState::Awarded])?;
                let key = self.awarded_key(shadow, &job, *node)?;
                let kind = TxKind::SubmitResult {
                    job,
                    output_digest: Hash32::of(&[*digest]),
                    fuel_used: 100 + fuel,
                };
                self.sign(shadow, key, kind)
            }
            Op::Withdraw { job, node } => {
                let job = self.job(shadow, *job, &[JobState::Awarded])?;
                let key = self.awarded_key(shadow, &job, *node)?;
                self.sign(shadow, key, TxKind::WithdrawResult { job })
            }
            Op::Settle { job, by } => self.sign(
                shadow,
                &self.users[*by],
                TxKind::SettleJob {
                    job: self.job(shadow, *job, &[JobState::Awarded])?,
                },
            ),
            Op::Expire { job, by } => self.sign(
                shadow,
                &self.users[*by],
                TxKind::ExpireJob {
                    job: self.job(shadow, *job, &[JobState::Posted, JobState::Awarded])?,
                },
            ),
            Op::Cancel { job, by } => self.sign(
                shadow,
                &self.users[*by],
                TxKind::CancelJob {
                    job: self.job(shadow, *job, &[JobState::Posted, JobState::Awarded])?,
                },
            ),
            Op::Storage(op) => self.storage_tx(shadow, op, time_ms)?,
            Op::Lease(op) => self.lease_tx(shadow, op, time_ms)?,
            Op::Replay { pick } => {
                if self.accepted.is_empty() {
                    return None;
                }
                self.accepted[pick % self.accepted.len()].clone()
            }
            Op::Forge { from } => {
                let to = self.users[(from + 1) % USERS].account_id();
                let mut tx = self.sign(
                    shadow,
                    &self.users[*from],
                    TxKind::Transfer {
                        to,
                        amount: tokens(1),
                    },
                );
                tx.body.kind = TxKind::Transfer {
                    to,
                    amount: tokens(300),
                };
                tx
            }
        })
    }
}

fn check_money(state: &State, minted: Amount) -> Result<(), TestCaseError> {
    prop_assert_eq!(state.minted_supply(), minted);
    state
        .check_invariants()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (_, job) in state.jobs() {
        prop_assert!(job.escrow_released <= job.escrow_locked);
    }
    for (_, bucket) in state.buckets() {
        prop_assert!(bucket.released <= bucket.deposited);
    }
    for (_, account) in state.accounts() {
        prop_assert!(account.balance <= minted && account.stake <= minted);
    }
    check_leases(state)?;
    Ok(())
}

fn run(blocks: Vec<(Vec<Op>, u64)>) -> Result<(), TestCaseError> {
    let users: Vec<Keypair> = (0..USERS).map(|i| key(50 + i as u8)).collect();
    let nodes: Vec<Keypair> = (0..NODES).map(|i| key(70 + i as u8)).collect();
    let config = GenesisConfig {
        params: params(),
        allocations: users.iter().map(|u| (u.account_id(), ALLOCATION)).collect(),
        time_ms: GENESIS_MS,
    };
    // Users 1..=3 own node 0..=2 and stake behind them in the genesis block.
    let mut extra = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let owner = &users[i + 1];
        let register = TxKind::RegisterNode {
            node: node.node_id(),
            proof: registration_proof(node, &owner.account_id()),
            resources: Resources::default(),
            location: String::new(),
            prices: PriceSheet::default(),
        };
        extra.push(Signed::new(
            Tx {
                chain: params().digest(),
                nonce: 1,
                fee: MIN_FEE,
                kind: register,
            },
            owner,
        ));
        let stake = TxKind::Stake {
            amount: Amount::from_tokens(50),
        };
        extra.push(Signed::new(
            Tx {
                chain: params().digest(),
                nonce: 2,
                fee: MIN_FEE,
                kind: stake,
            },
            owner,
        ));
    }
    let (clusters, bucket) = storage::genesis_storage(&users, &nodes, &mut extra);
    let (mut sequencer, genesis) = config.build(&key(1), &key(2), extra).unwrap();
    prop_assert!(genesis.rejected.is_empty());
    let minted = ALLOCATION.checked_mul(USERS as u128).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let (mut db, mut stored) = LedgerDb::open(&path, &params()).unwrap();
    apply_block(&mut stored, &genesis.block).unwrap();
    db.commit_block(&genesis.block, &mut stored).unwrap();

    let mut model = Model {
        users,
        nodes,
        jobs: Vec::new(),
        clusters,
        buckets: vec![bucket],
        leases: Vec::new(),
        accepted: Vec::new(),
    };
    let mut log = vec![genesis.block];
    let mut time_ms = GENESIS_MS;
    for (ops, advance_ms) in blocks {
        time_ms += advance_ms;
        let ctx = BlockContext {
            height: sequencer.next_height(),
            time_ms,
            seed: Hash32::of(&time_ms.to_le_bytes()),
        };
        let mut shadow = sequencer.clone();
        let mut txs = Vec::new();
        let mut expected = Vec::new();
        for op in &ops {
            let Some(tx) = model.tx(&shadow, op, time_ms) else {
                continue;
            };
            let root_before = shadow.state_root();
            let jobs_before = shadow.jobs().count();
            match apply(&mut shadow, &tx, &ctx) {
                Ok(_) => {
                    let signer = tx.signer.into();
                    match tx.body.kind {
                        TxKind::PostJob { .. } => {
                            model.jobs.push(JobId::derive(&signer, tx.body.nonce))
                        }
                        TxKind::CreateCluster { .. } => model
                            .clusters
                            .push(ClusterId::derive(&signer, tx.body.nonce)),
                        TxKind::CreateBucket { .. } => {
                            model.buckets.push(BucketId::derive(&signer, tx.body.nonce))
                        }
                        TxKind::OpenLease { .. } => {
                            model.leases.push(LeaseId::derive(&signer, tx.body.nonce))
                        }
                        _ => {}
                    }
                    expected.push(tx.clone());
                }
                Err(error) => {
                    prop_assert_eq!(
                        shadow.state_root(),
                        root_before,
                        "refused {} moved the root",
                        error
                    );
                    prop_assert_eq!(shadow.jobs().count(), jobs_before);
                    match op {
                        Op::Replay { .. } => {
                            prop_assert!(matches!(error, TxError::BadNonce { .. }), "{}", error)
                        }
                        Op::Forge { .. } => {
                            prop_assert!(matches!(error, TxError::BadSignature { .. }), "{}", error)
                        }
                        _ => {}
                    }
                }
            }
            check_money(&shadow, minted)?;
            txs.push(tx);
        }
        let built = build_block(&mut sequencer, txs, &ctx, &key(2)).unwrap();
        prop_assert_eq!(&built.block.txs, &expected);
        prop_assert_eq!(sequencer.state_root(), shadow.state_root());
        prop_assert_eq!(sequencer.state_root(), sequencer.root_from_scratch());
        check_money(&sequencer, minted)?;
        // A block the node could not make durable is undone exactly, and
        // then applies as if it had never been tried.
        let before = snapshot(&stored);
        let tip_before = stored.tip().copied();
        let mark = stored.checkpoint();
        apply_block(&mut stored, &built.block).unwrap();
        stored.restore(mark);
        prop_assert_eq!(snapshot(&stored), before);
        prop_assert_eq!(stored.tip().copied(), tip_before);
        let mark = stored.checkpoint();
        apply_block(&mut stored, &built.block).unwrap();
        db.commit_block(&built.block, &mut stored).unwrap();
        stored.release(mark);
        prop_assert_eq!(stored.state_root(), sequencer.state_root());
        model.accepted.extend(expected);
        log.push(built.block);
    }

    let mut follower = State::new(params()).unwrap();
    for block in &log {
        apply_block(&mut follower, block).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    prop_assert_eq!(follower.state_root(), sequencer.state_root());
    prop_assert_eq!(follower.tip(), sequencer.tip());
    drop(db);
    let (db, reopened) = LedgerDb::open(&path, &params()).unwrap();
    prop_assert_eq!(reopened.state_root(), sequencer.state_root());
    prop_assert_eq!(reopened.tip(), sequencer.tip());
    let replayed = db
        .replay_from_genesis()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(replayed.state_root(), sequencer.state_root());
    Ok(())
}

/// Where failing cases are saved and replayed first on the next run (commit
/// the file). Spelled out because proptest's default looks for a `lib.rs`
/// above the test file, finds none for an integration test, and would fall
/// back to a `tests/model.proptest-regressions` file instead.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/tests/model.txt"
);

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::with_cases(64)
    })]

    #[test]
    fn random_histories_keep_every_invariant(blocks in prop::collection::vec(block(), 1..12)) {
        run(blocks)?;
    }
}
