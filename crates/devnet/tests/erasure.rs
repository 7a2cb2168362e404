//! Erasure-coded objects across real daemons (an in-process grid of six
//! providers): an RS(4+2) object put through a node's HTTP API, as
//! `peercloud store put --erasure 4+2` does, has each group's six pieces on
//! six distinct nodes, one copy each (1.5x the data, not 3x); with any two
//! providers stopped it reads back byte-identical, and with a third stopped
//! the read fails naming the group. A put that cannot find six live nodes
//! fails rather than doubling pieces up, and releases what it placed.

mod common;

use common::*;

use std::collections::BTreeSet;

use peercloud_client::{ApiStore, NodeClient};
use peercloud_devnet::{Grid, node_dir};
use peercloud_store::{
    ChunkInventory, Manifest, PutOptions, PutReceipt, Redundancy, StoreError, get_object,
    put_object,
};
use peercloud_types::ContentId;

/// Providers of the grid: exactly one node per piece of an RS(4+2) group.
const PROVIDERS: usize = 6;
/// The object: 20 MiB, five groups of four 1 MiB chunks.
const OBJECT_BYTES: usize = 20 << 20;

/// Each group's pieces: its data chunks, then its parity chunks.
fn pieces(manifest: &Manifest) -> Vec<Vec<ContentId>> {
    (0..manifest.group_count())
        .map(|g| {
            let group = manifest.group(g).expect("a group of the manifest");
            manifest.chunks[group.data]
                .iter()
                .chain(&manifest.parity_chunks[group.parity])
                .copied()
                .collect()
        })
        .collect()
}

fn rs_4_2() -> PutOptions {
    PutOptions {
        redundancy: Redundancy::Erasure { data: 4, parity: 2 },
        ..PutOptions::default()
    }
}

/// Starts the grid and puts the object through node 1's HTTP API; checks
/// where every piece landed.
fn grid_with_object(dir: &std::path::Path, seed: u8) -> (Grid, Vec<u8>, PutReceipt) {
    let grid = Grid::start(dir, PROVIDERS).expect("a grid of six providers");
    let http = NodeClient::from_node_dir(&node_dir(dir, 1)).expect("node 1's API");
    let data = content(OBJECT_BYTES, u64::from(seed));
    let receipt = put_object(
        &ApiStore::new(http),
        &data[..],
        &grid.user().public(),
        &rs_4_2(),
    )
    .expect("the RS(4+2) put");
    assert_eq!(receipt.manifest.group_count(), 5);
    for (g, group) in pieces(&receipt.manifest).iter().enumerate() {
        let mut nodes = BTreeSet::new();
        for cid in group {
            let held = holders(&grid, cid);
            assert_eq!(
                held.len(),
                1,
                "group {g}: one copy of {cid}, found {held:?}"
            );
            assert!(held[0] != 0, "the validator is no storage node");
            nodes.insert(held[0]);
        }
        assert_eq!(nodes.len(), 6, "group {g}: six pieces on six nodes");
    }
    let stored: u64 = (0..grid.len())
        .map(|i| inner(&grid, i).store.used_bytes().expect("usage"))
        .sum();
    let manifest_bytes = 3 * receipt.manifest.encode().len() as u64;
    assert_eq!(
        stored,
        receipt.manifest.sealed_bytes() + receipt.manifest.parity_bytes() + manifest_bytes,
        "data and parity once each, the manifest on three replicas"
    );
    (grid, data, receipt)
}

/// Reads the object through the validator (never stopped).
fn read(grid: &Grid, receipt: &PutReceipt) -> Result<Vec<u8>, StoreError> {
    let store = ApiStore::new(grid.node(0).expect("the validator"));
    let mut out = Vec::with_capacity(OBJECT_BYTES);
    get_object(
        &store,
        &receipt.manifest_cid,
        &grid.user().x25519_secret(),
        &mut out,
    )?;
    Ok(out)
}

#[test]
fn rs_4_2_reads_back_with_any_two_providers_stopped() {
    // Every group spans all six providers, so each pair costs every group
    // two pieces, data or parity depending on the group.
    for a in 1..=PROVIDERS {
        for b in a + 1..=PROVIDERS {
            let dir = tempfile::tempdir().expect("a temp dir");
            let (grid, data, receipt) = grid_with_object(dir.path(), (a * 10 + b) as u8);
            assert!(grid.stop(a) && grid.stop(b));
            let out = read(&grid, &receipt)
                .unwrap_or_else(|e| panic!("providers {a} and {b} stopped: {e}"));
            assert!(
                out == data,
                "providers {a} and {b} stopped: the object differs"
            );
        }
    }
}

#[test]
fn a_third_provider_stopped_names_the_group_and_a_put_short_of_nodes_releases() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (grid, data, receipt) = grid_with_object(dir.path(), 1);
    // Node 1 took the put: its API goes too.
    assert!(grid.stop(1) && grid.stop(4));
    let out = read(&grid, &receipt).expect("read with providers 1 and 4 stopped");
    assert!(out == data, "the object read back differs");

    // Four live providers cannot take six pieces on distinct nodes: the put
    // fails naming the piece, and what it placed is released.
    let live = [2, 3, 5, 6];
    let usage = || -> Vec<u64> {
        live.iter()
            .map(|&i| inner(&grid, i).store.used_bytes().expect("usage"))
            .collect()
    };
    let before = usage();
    let store = ApiStore::new(grid.node(3).expect("provider 3"));
    let err = put_object(
        &store,
        &content(4 << 20, 3)[..],
        &grid.user().public(),
        &rs_4_2(),
    )
    .expect_err("six pieces need six live nodes");
    let text = err.to_string();
    assert!(
        text.contains("erasure group piece") && text.contains("4 of 6 pieces stored"),
        "{text}"
    );
    assert_eq!(usage(), before, "no piece of the failed put is left");

    // A third provider stopped: three of each group's six pieces are left.
    // (One that leaves the manifest a live copy: its three replicas may all
    // be on the three stopped otherwise, and the read would fail on it first.)
    let manifest_on = holders(&grid, &receipt.manifest_cid);
    let third = *live
        .iter()
        .find(|&&i| manifest_on.iter().any(|&h| h != i && live.contains(&h)))
        .expect("a live provider whose stop leaves the manifest a live copy");
    assert!(grid.stop(third));
    let err = read(&grid, &receipt).expect_err("three of six pieces per group are gone");
    assert!(
        matches!(
            &err,
            StoreError::GroupUnrecoverable {
                found: 3,
                needed: 4,
                pieces: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("group 0"), "{err}");
}
