//! What the grid tests that look inside nodes share: a node's shared state,
//! its id, and which nodes hold a chunk.

#![allow(dead_code)] // each test file uses a different part

pub mod s3;

use std::sync::Arc;

use peercloud_devnet::Grid;
use peercloud_node::daemon::Inner;
use peercloud_store::ChunkStore;
use peercloud_types::{ContentId, NodeId};

/// Node `i`'s shared state (0 is the validator).
pub fn inner(grid: &Grid, i: usize) -> Arc<Inner> {
    grid.node(i)
        .expect("a node of the grid")
        .service()
        .inner()
        .clone()
}

/// Node `i`'s id.
pub fn node_id(grid: &Grid, i: usize) -> NodeId {
    inner(grid, i).node_id()
}

/// The indexes of the nodes whose own store holds `cid`.
pub fn holders(grid: &Grid, cid: &ContentId) -> Vec<usize> {
    (0..grid.len())
        .filter(|&i| inner(grid, i).store.has(cid).expect("a readable store"))
        .collect()
}

/// Creates a bucket in the grid's cluster, owned by the grid's user, through
/// `node`, and (unless `tokens` is 0) funds it with `tokens` PCL; returns its id.
pub fn funded_bucket(
    grid: &Grid,
    node: &peercloud_devnet::InProcessNode,
    tokens: u64,
) -> peercloud_ledger::BucketId {
    new_bucket(grid, node, tokens, false)
}

/// [`funded_bucket`], public (plaintext objects readable by anyone) or not.
pub fn new_bucket(
    grid: &Grid,
    node: &peercloud_devnet::InProcessNode,
    tokens: u64,
    public: bool,
) -> peercloud_ledger::BucketId {
    use peercloud_client::{NodeApi, submit_signed};
    use peercloud_ledger::{BucketId, TxKind};
    let user = grid.user();
    let nonce = node
        .account(&user.account_id())
        .expect("the user's account")
        .next_nonce;
    let create = TxKind::CreateBucket {
        cluster: grid.cluster(),
        public,
    };
    submit_signed(node, user, create, true).expect("the bucket is created");
    let bucket = BucketId::derive(&user.account_id(), nonce);
    if tokens > 0 {
        let deposit = TxKind::DepositBucket {
            bucket,
            amount: peercloud_types::Amount::from_tokens(tokens),
        };
        submit_signed(node, user, deposit, true).expect("the deposit");
    }
    bucket
}

/// Deterministic, incompressible-looking content (xorshift64).
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Waits (at most 10 s) until every node that reached node 0's height has
/// the same state root, then checks each node's invariants (supply
/// conserved, escrow, deposits and leases whole).
pub fn assert_nodes_agree(grid: &Grid) {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};
    let height = inner(grid, 0).chain().state().tip().map(|t| t.height);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let roots: BTreeSet<_> = (0..grid.len())
            .map(|i| {
                let node = inner(grid, i);
                let chain = node.chain();
                (
                    chain.state().tip().map(|t| t.height),
                    chain.state().state_root(),
                )
            })
            .filter(|(h, _)| *h >= height)
            .map(|(_, root)| root)
            .collect();
        if roots.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "nodes disagree: {roots:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..grid.len() {
        inner(grid, i)
            .chain()
            .state()
            .check_invariants()
            .expect("supply conserved, escrow and deposits whole");
    }
}
