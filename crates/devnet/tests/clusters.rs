//! The storage cluster a grid comes with, through the `NodeApi` a user's
//! client uses: every provider an active member with its storage as its
//! capacity; a bucket created and funded in it shows with its deposit, by
//! id and among its owner's buckets; the manager removes a member and its
//! stake goes back to its owner; unknown ids are `not_found`, naming them.

mod common;

use common::node_id;
use peercloud_api::{BucketState, MemberState, RedundancyView};
use peercloud_client::{NodeApi, submit_signed};
use peercloud_devnet::Grid;
use peercloud_devnet::amounts::{CLUSTER_NODE_STAKE_TOKENS, TX_FEE, cluster_terms};
use peercloud_ledger::{BucketId, ClusterAction, ClusterId, TxKind};
use peercloud_types::{Amount, Keypair};

const PROVIDERS: usize = 3;

#[test]
fn the_grid_cluster_holds_every_provider_takes_a_funded_bucket_and_loses_a_removed_member() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), PROVIDERS).unwrap();
    let node = grid.node(1).expect("a provider");
    let cluster = grid.cluster();

    // Every provider is an active member, with the storage it registered.
    let view = node.cluster(&cluster).unwrap();
    assert_eq!(view.creator, grid.manager().account_id());
    assert_eq!(view.managers, vec![grid.manager().account_id()]);
    assert_eq!(view.threshold, 1);
    assert_eq!(
        view.terms.redundancy,
        RedundancyView::Replicas { copies: 3 }
    );
    assert_eq!(view.terms, (&cluster_terms(PROVIDERS)).into());
    let ledger = node.ledger().unwrap();
    assert_eq!(view.members.len(), PROVIDERS);
    for index in 1..=PROVIDERS {
        let id = node_id(&grid, index);
        let member = view
            .member(&id)
            .unwrap_or_else(|| panic!("provider {index} ({id}) is a member"));
        let registered = ledger.nodes.iter().find(|n| n.node == id).unwrap();
        assert_eq!(member.status, MemberState::Active, "{id}");
        assert_eq!(member.owner, registered.owner, "{id}");
        assert_eq!(member.capacity_bytes, registered.resources.storage_bytes);
        assert_eq!(member.stake, Amount::from_tokens(CLUSTER_NODE_STAKE_TOKENS));
    }
    assert_eq!(node.clusters().unwrap(), vec![view.clone()]);

    // A bucket created and funded through the NodeApi shows its deposit.
    let user = grid.user();
    let before = node.account(&user.account_id()).unwrap();
    let create = TxKind::CreateBucket {
        cluster,
        public: false,
    };
    submit_signed(&node, user, create, true).unwrap();
    let bucket = BucketId::derive(&user.account_id(), before.next_nonce);
    let deposit = Amount::from_tokens(5);
    let fund = TxKind::DepositBucket {
        bucket,
        amount: deposit,
    };
    submit_signed(&node, user, fund, true).unwrap();
    let shown = node.bucket(&bucket).unwrap();
    assert_eq!(shown.id, bucket);
    assert_eq!(shown.owner, user.account_id());
    assert_eq!(shown.cluster, cluster);
    assert_eq!(shown.status, BucketState::Active);
    assert_eq!((shown.deposit, shown.deposited), (deposit, deposit));
    assert_eq!(shown.released, Amount::ZERO);
    assert_eq!(
        shown.periods_covered, None,
        "nothing stored, nothing charged"
    );
    assert_eq!(node.buckets_of(&user.account_id()).unwrap(), vec![shown]);
    let after = node.account(&user.account_id()).unwrap();
    let spent = deposit.checked_add(TX_FEE.checked_mul(2).unwrap()).unwrap();
    assert_eq!(before.balance.checked_sub(after.balance), Some(spent));
    assert_eq!(node.cluster(&cluster).unwrap().open_buckets, 1);
    let stranger = Keypair::generate().account_id();
    assert!(node.buckets_of(&stranger).unwrap().is_empty());

    // The manager removes a member: it is gone, its stake back with its owner.
    let removed = node_id(&grid, PROVIDERS);
    let owner = view.member(&removed).unwrap().owner;
    let owner_before = node.account(&owner).unwrap().balance;
    let remove = TxKind::ProposeCluster {
        cluster,
        action: ClusterAction::Remove(removed),
    };
    submit_signed(&node, grid.manager(), remove, true).unwrap();
    let view = node.cluster(&cluster).unwrap();
    assert!(view.member(&removed).is_none(), "{removed} was removed");
    assert_eq!(view.active(), PROVIDERS - 1);
    assert!(
        view.proposals.is_empty(),
        "a 1-of-1 decision executes at once"
    );
    assert_eq!(
        node.account(&owner).unwrap().balance,
        owner_before
            .checked_add(Amount::from_tokens(CLUSTER_NODE_STAKE_TOKENS))
            .unwrap()
    );

    // Unknown ids are not found, and the answer names them.
    let unknown_cluster = ClusterId::derive(&stranger, 1);
    let err = node.cluster(&unknown_cluster).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains(&unknown_cluster.0.to_string()),
        "{err}"
    );
    let unknown_bucket = BucketId::derive(&stranger, 1);
    let err = node.bucket(&unknown_bucket).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains(&unknown_bucket.0.to_string()),
        "{err}"
    );
}

#[test]
fn a_non_manager_cannot_remove_a_member_and_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 1).unwrap();
    let node = grid.node(1).expect("a provider");
    let cluster = grid.cluster();
    let view = node.cluster(&cluster).unwrap();
    assert_eq!(
        view.terms.redundancy,
        RedundancyView::Replicas { copies: 1 }
    );
    let member = node_id(&grid, 1);
    let remove = TxKind::ProposeCluster {
        cluster,
        action: ClusterAction::Remove(member),
    };
    let err = submit_signed(&node, grid.user(), remove, true).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("is not a manager of"), "{text}");
    assert!(text.contains(&cluster.to_string()), "{text}");
    assert_eq!(node.cluster(&cluster).unwrap().active(), 1);
}
