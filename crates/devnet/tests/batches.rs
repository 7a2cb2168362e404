//! Batch puts across the real daemons of an in-process grid: an object put
//! through a node's HTTP API goes in chunk batches (`POST
//! /v1/chunk-batches`; the node sends each holder all of its chunks in one
//! request) and every chunk still lands on three distinct providers; a
//! holder that is stopped fails its batch and each of its chunks falls
//! through to the next candidate; a batch holding a chunk that does not
//! hash to its CID is refused naming it, and nothing of it is stored.

mod common;

use common::*;

use bytes::Bytes;
use peercloud_api::ErrorCode;
use peercloud_client::{ApiStore, NodeClient};
use peercloud_devnet::{Grid, node_dir};
use peercloud_store::{
    ChunkInventory, ChunkStore, PlacementNode, PutOptions, REPLICAS_DEFAULT, candidates, put_object,
};
use peercloud_types::ContentId;

/// Providers of the grid: five, so a stopped one leaves four for three copies.
const PROVIDERS: usize = 5;
/// The provider stopped in the second put.
const STOPPED: usize = 4;
/// Each object: 16 chunks of 1 MiB, two batches of the put pipeline.
const OBJECT_BYTES: usize = 16 << 20;

/// The grid's node indexes holding `cid`, among those not `stopped`.
fn live_holders(grid: &Grid, cid: &ContentId, stopped: Option<usize>) -> Vec<usize> {
    (0..grid.len())
        .filter(|&i| Some(i) != stopped)
        .filter(|&i| inner(grid, i).store.has(cid).expect("a readable store"))
        .collect()
}

/// The grid index of each registered node, as placement sees them.
fn placement(grid: &Grid) -> Vec<(usize, PlacementNode)> {
    (1..grid.len())
        .map(|i| {
            let node = inner(grid, i);
            let owner = node
                .chain()
                .state()
                .node(&node.node_id())
                .expect("a registered provider")
                .owner;
            (i, PlacementNode::new(node.node_id(), owner))
        })
        .collect()
}

#[test]
fn a_batch_put_keeps_three_copies_falls_through_a_stopped_holder_and_refuses_a_chunk_that_lies() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let grid = Grid::start(dir.path(), PROVIDERS).expect("a grid");
    let http = NodeClient::from_node_dir(&node_dir(dir.path(), 1)).expect("node 1's API");
    let store = ApiStore::new(http.clone());
    let owner = grid.user().public();

    let data = content(OBJECT_BYTES, 1);
    let receipt =
        put_object(&store, &data[..], &owner, &PutOptions::default()).expect("the first put");
    assert_eq!(receipt.manifest.chunks.len(), 16);
    for cid in &receipt.manifest.chunks {
        let held = live_holders(&grid, cid, None);
        assert_eq!(held.len(), 3, "{cid}: three copies, found {held:?}");
        assert!(!held.contains(&0), "the validator holds no chunks");
    }

    // Stopped, the provider is still registered: placement still picks it
    // for some chunks, whose batch to it fails and which go to the next
    // candidate instead.
    let nodes = placement(&grid);
    let ids: Vec<PlacementNode> = nodes.iter().map(|(_, n)| *n).collect();
    assert!(grid.stop(STOPPED));
    let data = content(OBJECT_BYTES, 2);
    let receipt = put_object(&store, &data[..], &owner, &PutOptions::default())
        .expect("a put with a holder stopped");
    let mut fell_through = 0;
    for cid in &receipt.manifest.chunks {
        let held = live_holders(&grid, cid, Some(STOPPED));
        assert_eq!(held.len(), 3, "{cid}: three live copies, found {held:?}");
        let first: Vec<usize> = candidates(cid, &ids, REPLICAS_DEFAULT as usize)
            .iter()
            .take(REPLICAS_DEFAULT as usize)
            .map(|picked| {
                nodes
                    .iter()
                    .find(|(_, n)| n.node == picked.node)
                    .expect("a grid node")
                    .0
            })
            .collect();
        if first.contains(&STOPPED) {
            fell_through += 1;
            assert!(
                held.iter().any(|i| !first.contains(i)),
                "{cid}: placed first on {first:?}, one of them stopped, so another holds it: {held:?}"
            );
        }
    }
    assert!(
        fell_through > 0,
        "some chunk of 16 was placed on the stopped provider"
    );

    // A batch whose second chunk does not hash to its CID: refused naming
    // it, and the good chunk before it is not stored either.
    let good = content(4096, 3);
    let bad = content(4096, 4);
    let claimed = ContentId::of(b"something else");
    let batch = vec![
        (ContentId::of(&good), Bytes::from(good.clone())),
        (claimed, Bytes::from(bad)),
    ];
    let used = |i: usize| inner(&grid, i).store.used_bytes().expect("usage");
    let before: Vec<u64> = (0..grid.len())
        .filter(|&i| i != STOPPED)
        .map(used)
        .collect();
    let node = grid.node(1).expect("provider 1");
    let err = grid
        .runtime()
        .block_on(node.service().put_chunks(batch, None))
        .expect_err("a lying chunk must be refused");
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert!(
        err.message
            .contains("chunk 1 of the batch does not hash to"),
        "{}",
        err.message
    );
    let after: Vec<u64> = (0..grid.len())
        .filter(|&i| i != STOPPED)
        .map(used)
        .collect();
    assert_eq!(before, after, "nothing of a refused batch is stored");
    assert!(live_holders(&grid, &ContentId::of(&good), Some(STOPPED)).is_empty());
}
