//! Proof of storage across real daemons (an in-process grid of eight
//! providers keeping RS(4+2)): a holder whose copy of a piece goes bad
//! behind its store's back fails the audits the bucket's index replicas run
//! on their own, is reported on the ledger by two of them, slashed and
//! removed from the cluster; the piece is rebuilt elsewhere, and the user
//! never receives a wrong byte. Supply is conserved throughout.

mod common;

use common::*;

use std::time::{Duration, Instant};

use peercloud_client::{NodeApi, bucket};
use peercloud_devnet::Grid;
use peercloud_devnet::amounts::cluster_terms;
use peercloud_ledger::{Event, StorageEvent};
use peercloud_node::daemon::REPAIR_INTERVAL;
use peercloud_store::testing::Tamper;
use peercloud_types::Keypair;

const PROVIDERS: usize = 8;

#[test]
fn a_holder_that_corrupts_a_piece_is_reported_slashed_removed_and_the_piece_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terms = cluster_terms(PROVIDERS);
    // Audit epochs are billing periods: a few seconds here.
    terms.billing_period_ms = 4_000;
    let grid = Grid::start_with_terms(dir.path(), PROVIDERS, Keypair::generate(), |_, _| {}, terms)
        .expect("a grid of eight providers");
    let mut blocks = inner(&grid, 1).committed.subscribe();
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let bucket = funded_bucket(&grid, &node, 50);
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let put = bucket::put(&node, user, &bucket, "data.bin", &data[..]).expect("put");

    // Let the repairers audit every piece once (they remember who proved what).
    std::thread::sleep(REPAIR_INTERVAL * 2 + Duration::from_millis(500));

    // A data piece goes bad on its holder (not the node the user talks to).
    let (cid, victim) = put
        .receipt
        .manifest
        .chunks
        .iter()
        .find_map(|cid| {
            holders(&grid, cid)
                .into_iter()
                .find(|&h| h != 1)
                .map(|h| (*cid, h))
        })
        .expect("a piece held by another provider");
    let victim_id = node_id(&grid, victim);
    inner(&grid, victim).store.tamper(&cid);

    // The user never gets a wrong byte, even now.
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "data.bin", &mut out).expect("read with a bad piece");
    assert!(out == data, "byte-identical");

    // Reported, slashed and removed, with no one asking.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut judged = None;
    while judged.is_none() {
        while let Ok(committed) = blocks.try_recv() {
            for event in &committed.events {
                if let Event::Storage(StorageEvent::AuditFailed { node, slashed, .. }) = event
                    && *node == victim_id
                {
                    judged = Some(*slashed);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the corrupt holder was not judged in 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(judged.is_some_and(|slashed| !slashed.is_zero()));
    let cluster = node.cluster(&grid.cluster()).expect("cluster");
    assert!(
        cluster.member(&victim_id).is_none(),
        "the judged node left the cluster"
    );

    // The piece is rebuilt on a member the group does not use.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = node.bucket_health(&bucket).expect("health");
        if health.lost == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not repaired in 60 s: {health:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "data.bin", &mut out).expect("read after repair");
    assert!(out == data, "byte-identical after repair");
    for i in 0..grid.len() {
        inner(&grid, i)
            .chain()
            .state()
            .check_invariants()
            .expect("supply conserved");
    }
}
