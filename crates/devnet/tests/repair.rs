//! Repair across real daemons (an in-process grid of eight providers whose
//! cluster keeps RS(4+2)): with two providers stopped, an erasure-coded
//! object and a small one still read back at once, and without anyone
//! asking, the bucket's index replicas rebuild every lost piece from the
//! survivors and place it on a member the group does not use, until every
//! group again has its six pieces on six distinct running nodes and every
//! manifest three running holders. The repairers are paid for the pieces
//! their receivers acknowledged, in the next bills.

mod common;

use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use peercloud_client::{NodeApi, bucket};
use peercloud_devnet::Grid;
use peercloud_devnet::amounts::cluster_terms;
use peercloud_ledger::billing::PaidFor;
use peercloud_ledger::{Event, StorageEvent};
use peercloud_store::Manifest;
use peercloud_types::{Amount, ContentId, Keypair, NodeId};

/// Providers: six pieces per group on distinct nodes even with two stopped.
const PROVIDERS: usize = 8;

/// The running nodes (of `running`) whose own store holds `cid`.
fn running_holders(grid: &Grid, running: &[usize], cid: &ContentId) -> BTreeSet<usize> {
    holders(grid, cid)
        .into_iter()
        .filter(|i| running.contains(i))
        .collect()
}

#[test]
fn two_providers_lost_every_object_reads_and_returns_to_full_redundancy_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terms = cluster_terms(PROVIDERS);
    // Short periods and bytes dear enough that a few MiB of repair pay.
    terms.billing_period_ms = 3_000;
    terms.price_per_gib_served = Amount::from_tokens(1_000);
    let grid = Grid::start_with_terms(dir.path(), PROVIDERS, Keypair::generate(), |_, _| {}, terms)
        .expect("a grid of eight providers");
    let mut blocks = inner(&grid, 1).committed.subscribe();
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let bucket = funded_bucket(&grid, &node, 50);
    let big = content(10 << 20, 1);
    let small = content(5_000, 2);
    let tiny = content(200, 3);
    let put = bucket::put(&node, user, &bucket, "big.bin", &big[..]).expect("put big");
    bucket::put(&node, user, &bucket, "small.txt", &small[..]).expect("put small");
    // Kept in the index, not on chunk holders: no piece of it to repair.
    bucket::put(&node, user, &bucket, "tiny.txt", &tiny[..]).expect("put tiny");
    let manifest: &Manifest = &put.receipt.manifest;
    assert_eq!(
        manifest.group_count(),
        3,
        "10 MiB in groups of four 1 MiB chunks"
    );

    let health = node.bucket_health(&bucket).expect("health");
    assert_eq!((health.objects, health.lost), (3, 0), "{health:?}");
    // 1 manifest + 3 groups of 6 pieces, and the small object's manifest and chunk.
    assert_eq!(health.pieces, 1 + 18 + 2);

    // Stop two providers that hold pieces, not the one the user talks to.
    let stopped = [PROVIDERS - 1, PROVIDERS];
    for i in stopped {
        assert!(grid.stop(i));
    }
    let running: Vec<usize> = (0..=PROVIDERS).filter(|i| !stopped.contains(i)).collect();
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "big.bin", &mut out).expect("read with two lost");
    assert!(out == big, "the object reads back byte-identical");
    let health = node.bucket_health(&bucket).expect("health");
    assert!(
        health.lost > 0,
        "two stopped holders show as lost pieces: {health:?}"
    );

    // Repair: every group's six pieces on six distinct running nodes, every
    // manifest on three, without anyone asking.
    let small_manifest = bucket::head(&node, &bucket, "small.txt")
        .expect("small")
        .object
        .manifest;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut short = Vec::new();
        for g in 0..manifest.group_count() {
            let group = manifest.group(g).expect("a group");
            let pieces: Vec<ContentId> = manifest.chunks[group.data]
                .iter()
                .chain(&manifest.parity_chunks[group.parity])
                .copied()
                .collect();
            let mut nodes = BTreeSet::new();
            let mut held = 0;
            for cid in &pieces {
                let on = running_holders(&grid, &running, cid);
                held += usize::from(!on.is_empty());
                nodes.extend(on);
            }
            if held < pieces.len() || nodes.len() < pieces.len() {
                short.push(format!(
                    "group {g}: {held} of 6 pieces on {} nodes",
                    nodes.len()
                ));
            }
        }
        for cid in [put.receipt.manifest_cid, small_manifest] {
            let on = running_holders(&grid, &running, &cid);
            if on.len() < 3 {
                short.push(format!("manifest {cid} on {} running nodes", on.len()));
            }
        }
        if short.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not repaired within 60 s: {}",
            short.join("; ")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let health = node.bucket_health(&bucket).expect("health");
    assert_eq!(health.lost, 0, "the health check agrees: {health:?}");
    // And it still reads, now from full redundancy.
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "small.txt", &mut out).expect("small reads");
    assert_eq!(out, small);
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "tiny.txt", &mut out).expect("tiny reads");
    assert_eq!(out, tiny);

    // The repairers are paid for what their receivers acknowledged: a bill
    // of a later period carries the receipts, and only running members
    // (the index replicas that rebuilt) are paid for repair.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut repaid: BTreeMap<NodeId, Amount> = BTreeMap::new();
    while repaid.is_empty() {
        while let Ok(committed) = blocks.try_recv() {
            for event in &committed.events {
                if let Event::Storage(StorageEvent::StoragePaid {
                    node: Some(paid),
                    amount,
                    paid_for: PaidFor::Repair,
                    bucket: b,
                    ..
                }) = event
                    && *b == bucket
                {
                    let sum = repaid.entry(*paid).or_insert(Amount::ZERO);
                    *sum = sum.checked_add(*amount).expect("a sum");
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no repair paid within 30 s of the repair"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped_ids: Vec<NodeId> = stopped.iter().map(|&i| node_id(&grid, i)).collect();
    for (paid, amount) in &repaid {
        assert!(
            !stopped_ids.contains(paid),
            "a stopped node was paid for repair"
        );
        assert!(*amount > Amount::ZERO);
    }
}
