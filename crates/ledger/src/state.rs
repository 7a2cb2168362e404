//! The ledger's state: seven journaled tables (meta, accounts, nodes, jobs,
//! clusters, buckets, leases),
//! their incrementally kept LtHash accumulators, the chain tip, and the
//! invariants that must hold after every transaction.
//!
//! Everything a handler changes goes through [`Table::put`], so one
//! `begin` / `rollback` / `commit` over the tables undoes a refused
//! transaction or block exactly, the root folds only changed entries, and the
//! database writes only changed entries.

use std::collections::BTreeMap;

use peercloud_types::{
    AccountId, Amount, DecodeError, Hash32, JobId, LeaseId, NodeId, PublicKey, Versioned, decode,
    encode,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::lease_records::LeaseRecord;
use crate::params::{Params, ParamsError};
use crate::records::{Account, JobRecord, Meta, NodeRecord};
use crate::root::{LtHash, state_root};
use crate::storage_records::{BucketId, BucketRecord, ClusterId, ClusterRecord};
use crate::table::{Table, TableKey};

/// Tag of the meta table in the root and on disk.
pub(crate) const TAG_META: u8 = 0;
/// Tag of the accounts table.
pub(crate) const TAG_ACCOUNTS: u8 = 1;
/// Tag of the nodes table.
pub(crate) const TAG_NODES: u8 = 2;
/// Tag of the jobs table.
pub(crate) const TAG_JOBS: u8 = 3;
/// Tag of the clusters table.
pub(crate) const TAG_CLUSTERS: u8 = 4;
/// Tag of the buckets table.
pub(crate) const TAG_BUCKETS: u8 = 5;
/// Tag of the leases table.
pub(crate) const TAG_LEASES: u8 = 6;

/// The one key of the meta table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MetaKey;

const META_KEY_BYTES: &[u8] = b"meta";

impl TableKey for MetaKey {
    fn to_key_bytes(&self) -> Vec<u8> {
        META_KEY_BYTES.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes == META_KEY_BYTES).then_some(MetaKey)
    }
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

impl TableKey for AccountId {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.key().0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        key32(bytes).map(|k| AccountId(PublicKey(k)))
    }
}

impl TableKey for NodeId {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.key().0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        key32(bytes).map(|k| NodeId(PublicKey(k)))
    }
}

impl TableKey for JobId {
    fn to_key_bytes(&self) -> Vec<u8> {
        self.0.0.to_vec()
    }
    fn from_key_bytes(bytes: &[u8]) -> Option<Self> {
        key32(bytes).map(|k| JobId(Hash32(k)))
    }
}

/// The last applied block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its height.
    pub height: u64,
    /// Its hash (the hash of its signed header).
    pub hash: Hash32,
    /// Its time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The state root after it.
    pub state_root: Hash32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Accumulators {
    meta: LtHash,
    accounts: LtHash,
    nodes: LtHash,
    jobs: LtHash,
    clusters: LtHash,
    buckets: LtHash,
    leases: LtHash,
}

/// A stored state entry that cannot be read back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The key's first byte names no table.
    #[error("state entry key starts with unknown table tag {tag}")]
    UnknownTag {
        /// The tag found.
        tag: u8,
    },
    /// The key bytes do not form a key of the table.
    #[error("state entry key of table {tag} is malformed ({len} bytes)")]
    BadKey {
        /// The table.
        tag: u8,
        /// Key length after the tag.
        len: usize,
    },
    /// The value does not decode.
    #[error("state entry value of table {tag} does not decode: {source}")]
    BadValue {
        /// The table.
        tag: u8,
        /// What the decoder said.
        source: DecodeError,
    },
    /// The params cannot run a chain.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

/// Where a state stood before a block, so the block can be undone when it
/// could not be made durable ([`State::checkpoint`]).
#[must_use = "a checkpoint must be released or restored"]
#[derive(Debug)]
pub struct Checkpoint {
    tip: Option<Tip>,
    accumulators: Accumulators,
    root_pending: RootPending,
}

/// Each table's changes not yet folded into the root, as they stood at a checkpoint.
#[derive(Debug)]
struct RootPending {
    meta: BTreeMap<MetaKey, Option<Meta>>,
    accounts: BTreeMap<AccountId, Option<Account>>,
    nodes: BTreeMap<NodeId, Option<NodeRecord>>,
    jobs: BTreeMap<JobId, Option<JobRecord>>,
    clusters: BTreeMap<ClusterId, Option<ClusterRecord>>,
    buckets: BTreeMap<BucketId, Option<BucketRecord>>,
    leases: BTreeMap<LeaseId, Option<LeaseRecord>>,
}

/// The ledger's state. Changed only by [`crate::apply()`] and the block functions.
#[derive(Debug, Clone)]
pub struct State {
    params: Params,
    params_digest: Hash32,
    pub(crate) meta: Table<MetaKey, Meta>,
    pub(crate) accounts: Table<AccountId, Account>,
    pub(crate) nodes: Table<NodeId, NodeRecord>,
    pub(crate) jobs: Table<JobId, JobRecord>,
    pub(crate) clusters: Table<ClusterId, ClusterRecord>,
    pub(crate) buckets: Table<BucketId, BucketRecord>,
    pub(crate) leases: Table<LeaseId, LeaseRecord>,
    accumulators: Accumulators,
    tip: Option<Tip>,
}

impl State {
    /// An empty state (no genesis yet) under `params`.
    pub fn new(params: Params) -> Result<State, ParamsError> {
        params.validate()?;
        Ok(State {
            params_digest: params.digest(),
            params,
            meta: Table::new(),
            accounts: Table::new(),
            nodes: Table::new(),
            jobs: Table::new(),
            clusters: Table::new(),
            buckets: Table::new(),
            leases: Table::new(),
            accumulators: Accumulators::default(),
            tip: None,
        })
    }

    /// The chain's params.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The chain's id, which every transaction names: its params' digest
    /// (computed once, when the state was made).
    pub fn chain_id(&self) -> Hash32 {
        self.params_digest
    }

    /// The last applied block, if any.
    pub fn tip(&self) -> Option<&Tip> {
        self.tip.as_ref()
    }

    pub(crate) fn set_tip(&mut self, tip: Tip) {
        self.tip = Some(tip);
    }

    /// The height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.tip.map_or(0, |tip| tip.height.saturating_add(1))
    }

    /// An account's record, if it ever held tokens or signed.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// An account's spendable balance (zero if unknown).
    pub fn balance(&self, id: &AccountId) -> Amount {
        self.accounts.get(id).map_or(Amount::ZERO, |a| a.balance)
    }

    /// An account's stake (zero if unknown).
    pub fn stake(&self, id: &AccountId) -> Amount {
        self.accounts.get(id).map_or(Amount::ZERO, |a| a.stake)
    }

    /// The nonce the signer's next transaction must carry.
    pub fn next_nonce(&self, signer: &PublicKey) -> u64 {
        self.accounts
            .get(&AccountId(*signer))
            .map_or(0, |a| a.nonce)
            .saturating_add(1)
    }

    /// All accounts in id order.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &Account)> {
        self.accounts.iter()
    }

    /// A node's record, if registered.
    pub fn node(&self, id: &NodeId) -> Option<&NodeRecord> {
        self.nodes.get(id)
    }

    /// All registered nodes in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, &NodeRecord)> {
        self.nodes.iter()
    }

    /// A job's record, if posted.
    pub fn job(&self, id: &JobId) -> Option<&JobRecord> {
        self.jobs.get(id)
    }

    /// All jobs in id order.
    pub fn jobs(&self) -> impl Iterator<Item = (&JobId, &JobRecord)> {
        self.jobs.iter()
    }

    /// A cluster's record, if created.
    pub fn cluster(&self, id: &ClusterId) -> Option<&ClusterRecord> {
        self.clusters.get(id)
    }

    /// All clusters in id order.
    pub fn clusters(&self) -> impl Iterator<Item = (&ClusterId, &ClusterRecord)> {
        self.clusters.iter()
    }

    /// A cluster's placement weights (active node → capacity, node id
    /// order), if the cluster exists. See [`ClusterRecord::weights`].
    pub fn weights(&self, id: &ClusterId) -> Option<Vec<(NodeId, u64)>> {
        self.clusters.get(id).map(ClusterRecord::weights)
    }

    /// A bucket's record, if created.
    pub fn bucket(&self, id: &BucketId) -> Option<&BucketRecord> {
        self.buckets.get(id)
    }

    /// All buckets in id order.
    pub fn buckets(&self) -> impl Iterator<Item = (&BucketId, &BucketRecord)> {
        self.buckets.iter()
    }

    /// A lease's record.
    pub fn lease(&self, id: &LeaseId) -> Option<&LeaseRecord> {
        self.leases.get(id)
    }

    /// All leases in id order.
    pub fn leases(&self) -> impl Iterator<Item = (&LeaseId, &LeaseRecord)> {
        self.leases.iter()
    }

    /// Whether genesis has been applied.
    pub fn genesis_done(&self) -> bool {
        self.meta_record().genesis_done
    }

    /// The total supply genesis minted.
    pub fn minted_supply(&self) -> Amount {
        self.meta_record().minted
    }

    pub(crate) fn meta_record(&self) -> Meta {
        self.meta.get(&MetaKey).copied().unwrap_or_default()
    }

    pub(crate) fn put_meta(&mut self, meta: Meta) {
        self.meta.put(MetaKey, meta);
    }

    /// Opens a savepoint on every table.
    pub(crate) fn begin(&mut self) {
        self.meta.begin();
        self.accounts.begin();
        self.nodes.begin();
        self.jobs.begin();
        self.clusters.begin();
        self.buckets.begin();
        self.leases.begin();
    }

    /// Undoes every change since the innermost savepoint.
    pub(crate) fn rollback(&mut self) {
        self.meta.rollback();
        self.accounts.rollback();
        self.nodes.rollback();
        self.jobs.rollback();
        self.clusters.rollback();
        self.buckets.rollback();
        self.leases.rollback();
    }

    /// Marks this state so that what follows (typically one block) can be
    /// undone exactly with [`State::restore`]; [`State::release`] keeps it.
    /// A node takes one before each block and restores it when the block
    /// cannot be written to disk, so memory never runs ahead of the disk.
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.begin();
        Checkpoint {
            tip: self.tip,
            accumulators: self.accumulators.clone(),
            root_pending: RootPending {
                meta: self.meta.root_pending().clone(),
                accounts: self.accounts.root_pending().clone(),
                nodes: self.nodes.root_pending().clone(),
                jobs: self.jobs.root_pending().clone(),
                clusters: self.clusters.root_pending().clone(),
                buckets: self.buckets.root_pending().clone(),
                leases: self.leases.root_pending().clone(),
            },
        }
    }

    /// Keeps everything since `checkpoint`.
    pub fn release(&mut self, checkpoint: Checkpoint) {
        drop(checkpoint);
        self.commit();
    }

    /// Puts the state back exactly where it was at `checkpoint`: rows, tip
    /// and root. Entries it touched stay marked unpersisted, which only
    /// rewrites the same values at the next database commit.
    pub fn restore(&mut self, checkpoint: Checkpoint) {
        self.rollback();
        self.tip = checkpoint.tip;
        self.accumulators = checkpoint.accumulators;
        let pending = checkpoint.root_pending;
        self.meta.set_root_pending(pending.meta);
        self.accounts.set_root_pending(pending.accounts);
        self.nodes.set_root_pending(pending.nodes);
        self.jobs.set_root_pending(pending.jobs);
        self.clusters.set_root_pending(pending.clusters);
        self.buckets.set_root_pending(pending.buckets);
        self.leases.set_root_pending(pending.leases);
    }

    /// Keeps the changes since the innermost savepoint.
    pub(crate) fn commit(&mut self) {
        self.meta.commit();
        self.accounts.commit();
        self.nodes.commit();
        self.jobs.commit();
        self.clusters.commit();
        self.buckets.commit();
        self.leases.commit();
    }

    /// The state root now: the folded accumulators plus the entries changed
    /// since, at O(changed entries). Does not change the state.
    pub fn state_root(&self) -> Hash32 {
        self.root_of(&self.folded_accumulators())
    }

    /// The state root recomputed from every entry, ignoring the incremental
    /// accumulators: O(state). For tests and for checking a loaded state.
    pub fn root_from_scratch(&self) -> Hash32 {
        let mut acc = Accumulators::default();
        scratch(&mut acc.meta, TAG_META, &self.meta);
        scratch(&mut acc.accounts, TAG_ACCOUNTS, &self.accounts);
        scratch(&mut acc.nodes, TAG_NODES, &self.nodes);
        scratch(&mut acc.jobs, TAG_JOBS, &self.jobs);
        scratch(&mut acc.clusters, TAG_CLUSTERS, &self.clusters);
        scratch(&mut acc.buckets, TAG_BUCKETS, &self.buckets);
        scratch(&mut acc.leases, TAG_LEASES, &self.leases);
        self.root_of(&acc)
    }

    /// The accumulators with every pending change folded in.
    pub(crate) fn folded_accumulators(&self) -> Accumulators {
        let mut acc = self.accumulators.clone();
        fold(&mut acc.meta, TAG_META, &self.meta);
        fold(&mut acc.accounts, TAG_ACCOUNTS, &self.accounts);
        fold(&mut acc.nodes, TAG_NODES, &self.nodes);
        fold(&mut acc.jobs, TAG_JOBS, &self.jobs);
        fold(&mut acc.clusters, TAG_CLUSTERS, &self.clusters);
        fold(&mut acc.buckets, TAG_BUCKETS, &self.buckets);
        fold(&mut acc.leases, TAG_LEASES, &self.leases);
        acc
    }

    /// Adopts accumulators computed by [`State::folded_accumulators`] (no
    /// change in between) as the new fold point.
    pub(crate) fn accept_accumulators(&mut self, acc: Accumulators) {
        self.accumulators = acc;
        self.meta.clear_root_pending();
        self.accounts.clear_root_pending();
        self.nodes.clear_root_pending();
        self.jobs.clear_root_pending();
        self.clusters.clear_root_pending();
        self.buckets.clear_root_pending();
        self.leases.clear_root_pending();
    }

    pub(crate) fn root_of(&self, acc: &Accumulators) -> Hash32 {
        state_root(
            &self.params_digest,
            &[
                (TAG_META, &acc.meta),
                (TAG_ACCOUNTS, &acc.accounts),
                (TAG_NODES, &acc.nodes),
                (TAG_JOBS, &acc.jobs),
                (TAG_CLUSTERS, &acc.clusters),
                (TAG_BUCKETS, &acc.buckets),
                (TAG_LEASES, &acc.leases),
            ],
        )
    }

    /// Entries changed since the last database commit: `(entry key, value)`,
    /// `None` for a deleted entry.
    pub(crate) fn unpersisted_entries(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        unpersisted(&mut out, TAG_META, &self.meta);
        unpersisted(&mut out, TAG_ACCOUNTS, &self.accounts);
        unpersisted(&mut out, TAG_NODES, &self.nodes);
        unpersisted(&mut out, TAG_JOBS, &self.jobs);
        unpersisted(&mut out, TAG_CLUSTERS, &self.clusters);
        unpersisted(&mut out, TAG_BUCKETS, &self.buckets);
        unpersisted(&mut out, TAG_LEASES, &self.leases);
        out
    }

    /// Marks every change as written to the database.
    pub(crate) fn mark_persisted(&mut self) {
        self.meta.clear_unpersisted();
        self.accounts.clear_unpersisted();
        self.nodes.clear_unpersisted();
        self.jobs.clear_unpersisted();
        self.clusters.clear_unpersisted();
        self.buckets.clear_unpersisted();
        self.leases.clear_unpersisted();
    }

    /// Rebuilds a state from stored entries; the root is recomputed from them.
    pub(crate) fn from_entries(
        params: Params,
        tip: Option<Tip>,
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<State, EntryError> {
        let mut meta = BTreeMap::new();
        let mut accounts = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        let mut jobs = BTreeMap::new();
        let mut clusters = BTreeMap::new();
        let mut buckets = BTreeMap::new();
        let mut leases = BTreeMap::new();
        for (key, value) in entries {
            let Some((&tag, key)) = key.split_first() else {
                return Err(EntryError::BadKey { tag: 0, len: 0 });
            };
            match tag {
                TAG_META => read_entry(&mut meta, tag, key, &value)?,
                TAG_ACCOUNTS => read_entry(&mut accounts, tag, key, &value)?,
                TAG_NODES => read_entry(&mut nodes, tag, key, &value)?,
                TAG_JOBS => read_entry(&mut jobs, tag, key, &value)?,
                TAG_CLUSTERS => read_entry(&mut clusters, tag, key, &value)?,
                TAG_BUCKETS => read_entry(&mut buckets, tag, key, &value)?,
                TAG_LEASES => read_entry(&mut leases, tag, key, &value)?,
                tag => return Err(EntryError::UnknownTag { tag }),
            }
        }
        let mut state = State::new(params)?;
        state.meta = Table::from_rows(meta);
        state.accounts = Table::from_rows(accounts);
        state.nodes = Table::from_rows(nodes);
        state.jobs = Table::from_rows(jobs);
        state.clusters = Table::from_rows(clusters);
        state.buckets = Table::from_rows(buckets);
        state.leases = Table::from_rows(leases);
        let mut acc = Accumulators::default();
        scratch(&mut acc.meta, TAG_META, &state.meta);
        scratch(&mut acc.accounts, TAG_ACCOUNTS, &state.accounts);
        scratch(&mut acc.nodes, TAG_NODES, &state.nodes);
        scratch(&mut acc.jobs, TAG_JOBS, &state.jobs);
        scratch(&mut acc.clusters, TAG_CLUSTERS, &state.clusters);
        scratch(&mut acc.buckets, TAG_BUCKETS, &state.buckets);
        scratch(&mut acc.leases, TAG_LEASES, &state.leases);
        state.accumulators = acc;
        state.tip = tip;
        Ok(state)
    }
}

/// The stored key of an entry: its table tag, then the key's bytes.
pub(crate) fn entry_key<K: TableKey>(tag: u8, key: &K) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&key.to_key_bytes());
    out
}

/// Decodes a stored entry value.
pub(crate) fn decode_value<V: Versioned + Serialize + DeserializeOwned>(
    tag: u8,
    bytes: &[u8],
) -> Result<V, EntryError> {
    decode(bytes).map_err(|source| EntryError::BadValue { tag, source })
}

fn read_entry<K: TableKey, V: Versioned + Serialize + DeserializeOwned>(
    rows: &mut BTreeMap<K, V>,
    tag: u8,
    key: &[u8],
    value: &[u8],
) -> Result<(), EntryError> {
    let parsed = K::from_key_bytes(key).ok_or(EntryError::BadKey {
        tag,
        len: key.len(),
    })?;
    rows.insert(parsed, decode_value(tag, value)?);
    Ok(())
}

fn fold<K: TableKey, V: Versioned + Serialize + Clone>(
    acc: &mut LtHash,
    tag: u8,
    table: &Table<K, V>,
) {
    for (key, old) in table.root_pending() {
        let old_bytes = old.as_ref().map(encode);
        let new_bytes = table.get(key).map(encode);
        if old_bytes == new_bytes {
            continue;
        }
        let key_bytes = key.to_key_bytes();
        if let Some(bytes) = old_bytes {
            acc.remove(tag, &key_bytes, &bytes);
        }
        if let Some(bytes) = new_bytes {
            acc.insert(tag, &key_bytes, &bytes);
        }
    }
}

fn scratch<K: TableKey, V: Versioned + Serialize + Clone>(
    acc: &mut LtHash,
    tag: u8,
    table: &Table<K, V>,
) {
    for (key, value) in table.iter() {
        acc.insert(tag, &key.to_key_bytes(), &encode(value));
    }
}

fn unpersisted<K: TableKey, V: Versioned + Serialize + Clone>(
    out: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>,
    tag: u8,
    table: &Table<K, V>,
) {
    for key in table.unpersisted() {
        out.push((entry_key(tag, key), table.get(key).map(encode)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;
    use proptest::prelude::*;

    fn params() -> Params {
        let key = Keypair::from_seed(&[1; 32]);
        Params {
            genesis_authority: key.account_id(),
            validator: key.public(),
            treasury: key.account_id(),
            min_fee: Amount::ZERO,
            stake_min_to_serve: Amount::ZERO,
            slash_bps: 0,
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Put { account: u8, balance: u64 },
        Remove { account: u8 },
        Begin,
        Rollback,
        Commit,
        Fold,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..6, 0u64..4).prop_map(|(account, balance)| Step::Put { account, balance }),
            1 => (0u8..6).prop_map(|account| Step::Remove { account }),
            1 => Just(Step::Begin),
            1 => Just(Step::Rollback),
            1 => Just(Step::Commit),
            1 => Just(Step::Fold),
        ]
    }

    fn account(index: u8) -> AccountId {
        AccountId(PublicKey([index; 32]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever mix of writes, rollbacks and folds, the incrementally kept
        /// root equals the root recomputed from every entry.
        #[test]
        fn incremental_root_equals_root_from_scratch(steps in prop::collection::vec(step(), 0..60)) {
            let mut state = State::new(params()).unwrap();
            let mut depth = 0usize;
            for step in steps {
                match step {
                    Step::Put { account: index, balance } => {
                        let record = Account { balance: Amount::from_base_units(balance.into()), ..Account::default() };
                        state.accounts.put(account(index), record);
                    }
                    Step::Remove { account: index } => state.accounts.remove(&account(index)),
                    Step::Begin => {
                        state.begin();
                        depth += 1;
                    }
                    Step::Rollback if depth > 0 => {
                        state.rollback();
                        depth -= 1;
                    }
                    Step::Commit if depth > 0 => {
                        state.commit();
                        depth -= 1;
                    }
                    // Folding is only done with no savepoint that could still roll back.
                    Step::Fold if depth == 0 => {
                        let acc = state.folded_accumulators();
                        state.accept_accumulators(acc);
                    }
                    Step::Rollback | Step::Commit | Step::Fold => {}
                }
                prop_assert_eq!(state.state_root(), state.root_from_scratch());
            }
        }
    }

    #[test]
    fn entries_round_trip_through_storage_form() {
        let mut state = State::new(params()).unwrap();
        state.accounts.put(
            account(1),
            Account {
                nonce: 3,
                ..Account::default()
            },
        );
        state.put_meta(Meta {
            genesis_done: true,
            minted: Amount::from_tokens(5),
        });
        let entries: Vec<(Vec<u8>, Vec<u8>)> = state
            .unpersisted_entries()
            .into_iter()
            .map(|(key, value)| (key, value.unwrap()))
            .collect();
        assert_eq!(entries.len(), 2);
        let loaded = State::from_entries(params(), None, entries.clone()).unwrap();
        assert_eq!(loaded.state_root(), state.state_root());
        assert_eq!(loaded.account(&account(1)).unwrap().nonce, 3);
        let mut bad_tag = entries.clone();
        bad_tag[0].0[0] = 9;
        assert_eq!(
            State::from_entries(params(), None, bad_tag).unwrap_err(),
            EntryError::UnknownTag { tag: 9 }
        );
        let mut bad_value = entries;
        bad_value[1].1.truncate(3);
        assert!(matches!(
            State::from_entries(params(), None, bad_value),
            Err(EntryError::BadValue { .. })
        ));
    }
}
