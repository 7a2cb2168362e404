//! Storage helpers on top of the `common` fixture: clusters whose managers
//! are the fixture's users, the fixture's nodes as members, buckets, and
//! the signed usage and receipts a bill carries.

#![allow(dead_code)] // each test file uses a different part of the helpers
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use peercloud_ledger::params::DAY_MS;
use peercloud_ledger::{
    BandwidthReceipt, BucketId, BucketUsage, ClusterAction, ClusterId, ClusterTerms, Event,
    Redundancy, RepairReceipt, StorageEvent, TxKind,
};
use peercloud_types::{AccountId, Amount, Keypair, Signed};

use crate::common::World;

/// A GiB.
pub const GIB: u64 = 1 << 30;

/// Terms of the hand-computed example: 1 000 000 base units per GiB-month,
/// 1 000 003 per GiB served, a 5% fee, 1-day periods, 2 days of grace.
pub fn terms() -> ClusterTerms {
    ClusterTerms {
        redundancy: Redundancy::Replicas(2),
        price_per_gib_month: Amount::from_base_units(1_000_000),
        price_per_gib_served: Amount::from_base_units(1_000_003),
        manager_fee_bps: 500,
        node_stake: Amount::from_tokens(7),
        billing_period_ms: DAY_MS,
        grace_ms: 2 * DAY_MS,
    }
}

/// `creator` creates a cluster; returns its id.
pub fn create_cluster(
    w: &mut World,
    creator: &Keypair,
    managers: Vec<AccountId>,
    threshold: u8,
    terms: ClusterTerms,
) -> ClusterId {
    let id = ClusterId::derive(&creator.account_id(), w.state.next_nonce(&creator.public()));
    w.ok(
        creator,
        TxKind::CreateCluster {
            managers,
            threshold,
            terms,
        },
    );
    id
}

/// Fixture node `node` joins `cluster` offering `capacity` bytes.
pub fn join(w: &mut World, cluster: ClusterId, node: usize, capacity: u64) -> Vec<Event> {
    let owner = w.owners[node].clone();
    let kind = TxKind::JoinCluster {
        cluster,
        node: w.nodes[node].node_id(),
        capacity_bytes: capacity,
    };
    w.ok(&owner, kind)
}

/// `manager` proposes `action`; returns the events.
pub fn propose(
    w: &mut World,
    manager: &Keypair,
    cluster: ClusterId,
    action: ClusterAction,
) -> Vec<Event> {
    w.ok(manager, TxKind::ProposeCluster { cluster, action })
}

/// Alice creates a 1-of-1 cluster under [`terms`]; nodes 0 and 1 join with
/// 1 GiB and 2 GiB and are admitted.
pub fn alice_cluster(w: &mut World) -> ClusterId {
    let alice = w.alice.clone();
    let cluster = create_cluster(w, &alice, vec![alice.account_id()], 1, terms());
    for (node, capacity) in [(0, GIB), (1, 2 * GIB)] {
        join(w, cluster, node, capacity);
        let id = w.nodes[node].node_id();
        propose(w, &alice, cluster, ClusterAction::Admit(id));
    }
    cluster
}

/// `owner` creates a bucket in `cluster`; returns its id.
pub fn create_bucket(w: &mut World, owner: &Keypair, cluster: ClusterId) -> BucketId {
    let id = BucketId::derive(&owner.account_id(), w.state.next_nonce(&owner.public()));
    w.ok(
        owner,
        TxKind::CreateBucket {
            cluster,
            public: false,
        },
    );
    id
}

/// `who` deposits `units` base units into `bucket`.
pub fn deposit(w: &mut World, who: &Keypair, bucket: BucketId, units: u128) -> Vec<Event> {
    w.ok(
        who,
        TxKind::DepositBucket {
            bucket,
            amount: Amount::from_base_units(units),
        },
    )
}

/// `signer`'s usage of `bucket`.
pub fn usage(
    signer: &Keypair,
    bucket: BucketId,
    stored_bytes: u64,
    seq: u64,
) -> Signed<BucketUsage> {
    let usage = BucketUsage {
        bucket,
        stored_bytes,
        seq,
        at_ms: 0,
    };
    Signed::new(usage, signer)
}

/// Fixture node `receiver`'s receipt (signed by `signer`'s node key) for
/// `bytes` of pieces fixture node `repairer` rebuilt onto it in `period`.
pub fn repair_receipt(
    w: &World,
    (repairer, receiver, signer): (usize, usize, usize),
    bucket: BucketId,
    period: u64,
    bytes: u64,
) -> Signed<RepairReceipt> {
    let receipt = RepairReceipt {
        bucket,
        period,
        repairer: w.nodes[repairer].node_id(),
        receiver: w.nodes[receiver].node_id(),
        bytes,
    };
    Signed::new(receipt, &w.nodes[signer])
}

/// `receiver`'s receipt for `bytes` fixture node `node` served from `bucket` in `period`.
pub fn receipt(
    w: &World,
    receiver: &Keypair,
    bucket: BucketId,
    node: usize,
    period: u64,
    bytes: u64,
) -> Signed<BandwidthReceipt> {
    let receipt = BandwidthReceipt {
        bucket,
        node: w.nodes[node].node_id(),
        period,
        bytes,
        receiver: receiver.account_id(),
    };
    Signed::new(receipt, receiver)
}

/// The storage events among `events`.
pub fn storage_events(events: &[Event]) -> Vec<StorageEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Storage(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Whether `events` hold a `BucketLow`.
pub fn warned_low(events: &[Event]) -> bool {
    storage_events(events)
        .iter()
        .any(|e| matches!(e, StorageEvent::BucketLow { .. }))
}
