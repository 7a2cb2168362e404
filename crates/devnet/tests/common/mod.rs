//! What the grid tests that look inside nodes share: a node's shared state,
//! its id, and which nodes hold a chunk.

#![allow(dead_code)] // each test file uses a different part

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
