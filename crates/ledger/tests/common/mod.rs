//! A small chain for tests: an authority, a validator, three users, three node
//! owners each with a registered, staked node, and helpers that sign
//! transactions with the right nonce and check a refusal left no trace.

#![allow(dead_code)] // each test file uses a different part of the fixture
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use peercloud_ledger::{
    Account, BlockContext, BucketId, BucketRecord, ClusterId, ClusterRecord, Event, GenesisConfig,
    JobRecord, NodeRecord, Params, State, Tx, TxError, TxKind, apply, registration_proof,
};
use peercloud_types::{
    AccountId, Amount, Hash32, JobId, Keypair, NodeId, Offer, PriceSheet, Resources, Signed,
};

/// Minimum fee of the test chain.
pub const MIN_FEE: Amount = Amount::from_base_units(1_000_000);
/// Stake an owner needs to serve.
pub const STAKE_MIN: Amount = Amount::from_tokens(10);
/// What each node owner stakes in the fixture.
pub const OWNER_STAKE: Amount = Amount::from_tokens(100);
/// What genesis gives each funded account.
pub const ALLOCATION: Amount = Amount::from_tokens(1_000);
/// Slash in basis points (10%).
pub const SLASH_BPS: u32 = 1_000;
/// Genesis time.
pub const GENESIS_MS: u64 = 1_700_000_000_000;

pub fn key(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

pub fn params() -> Params {
    Params {
        genesis_authority: key(1).account_id(),
        validator: key(2).public(),
        treasury: key(3).account_id(),
        min_fee: MIN_FEE,
        stake_min_to_serve: STAKE_MIN,
        slash_bps: SLASH_BPS,
    }
}

/// Everything a test could compare to see a state is untouched.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub accounts: Vec<(AccountId, Account)>,
    pub nodes: Vec<(NodeId, NodeRecord)>,
    pub jobs: Vec<(JobId, JobRecord)>,
    pub clusters: Vec<(ClusterId, ClusterRecord)>,
    pub buckets: Vec<(BucketId, BucketRecord)>,
    pub root: Hash32,
    pub scratch_root: Hash32,
}

pub fn snapshot(state: &State) -> Snapshot {
    Snapshot {
        accounts: state.accounts().map(|(k, v)| (*k, *v)).collect(),
        nodes: state.nodes().map(|(k, v)| (*k, v.clone())).collect(),
        jobs: state.jobs().map(|(k, v)| (*k, v.clone())).collect(),
        clusters: state.clusters().map(|(k, v)| (*k, v.clone())).collect(),
        buckets: state.buckets().map(|(k, v)| (*k, v.clone())).collect(),
        root: state.state_root(),
        scratch_root: state.root_from_scratch(),
    }
}

pub struct World {
    pub authority: Keypair,
    pub validator: Keypair,
    pub treasury: AccountId,
    pub alice: Keypair,
    pub bob: Keypair,
    pub carol: Keypair,
    pub owners: Vec<Keypair>,
    pub nodes: Vec<Keypair>,
    pub state: State,
    pub time_ms: u64,
    pub height: u64,
}

impl World {
    /// The reputation of fixture node `node`.
    pub fn reputation(&self, node: usize) -> u32 {
        self.state
            .node(&self.nodes[node].node_id())
            .unwrap()
            .reputation
    }

    /// Genesis funds alice, bob, carol and three owners; each owner registers
    /// a node and stakes [`OWNER_STAKE`].
    pub fn new() -> World {
        let owners: Vec<Keypair> = (0..3).map(|i| key(20 + i)).collect();
        let nodes: Vec<Keypair> = (0..3).map(|i| key(30 + i)).collect();
        let (alice, bob, carol) = (key(10), key(11), key(12));
        let mut allocations = vec![
            (alice.account_id(), ALLOCATION),
            (bob.account_id(), ALLOCATION),
            (carol.account_id(), ALLOCATION),
        ];
        allocations.extend(owners.iter().map(|o| (o.account_id(), ALLOCATION)));
        let config = GenesisConfig {
            params: params(),
            allocations,
            time_ms: GENESIS_MS,
        };
        let state = State::new(params()).unwrap();
        let mut world = World {
            authority: key(1),
            validator: key(2),
            treasury: key(3).account_id(),
            alice,
            bob,
            carol,
            owners,
            nodes,
            state,
            time_ms: GENESIS_MS,
            height: 0,
        };
        let genesis = config.genesis_tx(&world.authority);
        world.apply_signed(&genesis).unwrap();
        for i in 0..3 {
            let owner = world.owners[i].clone();
            let kind = world.register_kind(i, &owner);
            world.ok(&owner, kind);
            world.ok(
                &owner,
                TxKind::Stake {
                    amount: OWNER_STAKE,
                },
            );
        }
        world.height = 1;
        world
    }

    pub fn ctx(&self) -> BlockContext {
        BlockContext {
            height: self.height,
            time_ms: self.time_ms,
            seed: Hash32::ZERO,
        }
    }

    pub fn register_kind(&self, node: usize, owner: &Keypair) -> TxKind {
        TxKind::RegisterNode {
            node: self.nodes[node].node_id(),
            proof: registration_proof(&self.nodes[node], &owner.account_id()),
            resources: Resources {
                cpu_millicores: 4000,
                ..Default::default()
            },
            location: "eu-west".into(),
            prices: PriceSheet::default(),
        }
    }

    /// `kind` signed by `signer` with its next nonce and the minimum fee.
    pub fn tx(&self, signer: &Keypair, kind: TxKind) -> Signed<Tx> {
        let nonce = self.state.next_nonce(&signer.public());
        Signed::new(
            Tx {
                chain: self.state.params().digest(),
                nonce,
                fee: MIN_FEE,
                kind,
            },
            signer,
        )
    }

    /// Applies an already signed transaction at the world's context.
    pub fn apply_signed(&mut self, tx: &Signed<Tx>) -> Result<Vec<Event>, TxError> {
        let ctx = self.ctx();
        apply(&mut self.state, tx, &ctx)
    }

    pub fn try_apply(&mut self, signer: &Keypair, kind: TxKind) -> Result<Vec<Event>, TxError> {
        let tx = self.tx(signer, kind);
        let ctx = self.ctx();
        apply(&mut self.state, &tx, &ctx)
    }

    /// Applies and expects success.
    pub fn ok(&mut self, signer: &Keypair, kind: TxKind) -> Vec<Event> {
        let name = kind.name();
        match self.try_apply(signer, kind) {
            Ok(events) => events,
            Err(error) => panic!("{name} refused: {error}"),
        }
    }

    /// Applies the signed `tx`, expects a refusal and checks the state is
    /// exactly as before (records, incremental root, root from scratch).
    pub fn refused_tx(&mut self, tx: &Signed<Tx>) -> TxError {
        let before = snapshot(&self.state);
        let ctx = self.ctx();
        let error = apply(&mut self.state, tx, &ctx).expect_err("transaction should be refused");
        assert_eq!(
            snapshot(&self.state),
            before,
            "refused {error} changed the state"
        );
        assert_eq!(before.root, before.scratch_root);
        self.state.check_invariants().unwrap();
        error
    }

    /// Signs `kind`, expects a refusal, checks the state is untouched.
    pub fn refused(&mut self, signer: &Keypair, kind: TxKind) -> TxError {
        let tx = self.tx(signer, kind);
        self.refused_tx(&tx)
    }

    pub fn balance(&self, who: &Keypair) -> Amount {
        self.state.balance(&who.account_id())
    }

    pub fn offer(&self, node: usize, job: JobId, price: Amount) -> Signed<Offer> {
        let offer = Offer {
            job,
            node: self.nodes[node].node_id(),
            price,
            valid_until_ms: self.time_ms + 60_000,
        };
        Signed::new(offer, &self.nodes[node])
    }

    /// Alice posts a job of redundancy `k` at `max` per node, deadline in 10 s.
    pub fn post(&mut self, k: u8, max: Amount) -> JobId {
        let nonce = self.state.next_nonce(&self.alice.public());
        let alice = self.alice.clone();
        self.ok(
            &alice,
            TxKind::PostJob {
                spec_digest: Hash32::of(b"spec"),
                redundancy: k,
                max_price_per_node: max,
                deadline_ms: self.time_ms + 10_000,
            },
        );
        JobId::derive(&alice.account_id(), nonce)
    }

    /// Posts and awards to the first `k` nodes at `price` each.
    pub fn post_and_award(&mut self, k: u8, max: Amount, price: Amount) -> JobId {
        let job = self.post(k, max);
        let offers = (0..usize::from(k))
            .map(|i| self.offer(i, job, price))
            .collect();
        let alice = self.alice.clone();
        self.ok(&alice, TxKind::AwardJob { job, offers });
        job
    }

    pub fn submit(&mut self, node: usize, job: JobId, digest: &[u8], fuel_used: u64) -> Vec<Event> {
        let key = self.nodes[node].clone();
        self.ok(
            &key,
            TxKind::SubmitResult {
                job,
                output_digest: Hash32::of(digest),
                fuel_used,
            },
        )
    }

    /// Node `node` withdraws from `job` (signed by its key).
    pub fn withdraw(&mut self, node: usize, job: JobId) -> Vec<Event> {
        let key = self.nodes[node].clone();
        self.ok(&key, TxKind::WithdrawResult { job })
    }

    /// A third party (carol) sends the transaction.
    pub fn by_carol(&mut self, kind: TxKind) -> Result<Vec<Event>, TxError> {
        let carol = self.carol.clone();
        self.try_apply(&carol, kind)
    }
}
