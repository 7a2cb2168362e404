//! The repair benchmark: a grid of eight providers (in-process daemons)
//! whose cluster keeps RS(4+2), one 256 MiB object in a funded bucket, then
//! two providers stopped. It measures how long the cluster takes, with no
//! one asking, to bring every erasure group back to six pieces on six
//! distinct running nodes (the grace before an unreachable holder counts
//! as lost, [`HOLDER_GRACE`], is part of it), and what the repair moved:
//! the pieces rebuilt, the bytes written to new holders and the bytes read
//! to rebuild them (the index replicas' [`RepairTotals`], added up).
//!
//! Run: `cargo bench -p peercloud-devnet --bench repair`
//! (`PEERCLOUD_BENCH_MIB=64` for a smaller object).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use peercloud_client::bucket;
use peercloud_devnet::Grid;
use peercloud_node::daemon::HOLDER_GRACE;
use peercloud_store::ChunkStore;
use peercloud_types::ContentId;

#[path = "../tests/common/mod.rs"]
mod common;

/// Providers of the grid: six pieces per group on distinct nodes with two stopped.
const PROVIDERS: usize = 8;
/// The object's size, MiB, unless `PEERCLOUD_BENCH_MIB` says otherwise.
const OBJECT_MIB: usize = 256;
/// Longest the repair may take before the benchmark gives up.
const REPAIR_DEADLINE: Duration = Duration::from_secs(600);

/// The groups of `pieces` (each group's data and parity CIDs) not yet on
/// six distinct running nodes.
fn short_groups(grid: &Grid, running: &[usize], groups: &[Vec<ContentId>]) -> usize {
    groups
        .iter()
        .filter(|pieces| {
            let mut nodes = BTreeSet::new();
            let mut held = 0;
            for cid in pieces.iter() {
                let on: Vec<usize> = running
                    .iter()
                    .copied()
                    .filter(|&i| {
                        grid.node(i)
                            .is_some_and(|n| n.service().inner().store.has(cid).unwrap_or(false))
                    })
                    .collect();
                held += usize::from(!on.is_empty());
                nodes.extend(on);
            }
            held < pieces.len() || nodes.len() < pieces.len()
        })
        .count()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let object_mib = std::env::var("PEERCLOUD_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OBJECT_MIB);
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), PROVIDERS).expect("a grid of eight providers");
    let owner = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let bucket = common::funded_bucket(&grid, &node, 500);

    let data = common::content(object_mib << 20, 1);
    let started = Instant::now();
    let put = bucket::put(&node, &owner, &bucket, "big.bin", &data[..]).expect("put");
    let put_secs = started.elapsed().as_secs_f64();
    drop(data);
    let manifest = &put.receipt.manifest;
    let groups: Vec<Vec<ContentId>> = (0..manifest.group_count())
        .filter_map(|g| manifest.group(g))
        .map(|group| {
            manifest.chunks[group.data]
                .iter()
                .chain(&manifest.parity_chunks[group.parity])
                .copied()
                .collect()
        })
        .collect();
    let stored: u64 = manifest.sealed_bytes() + manifest.parity_bytes();

    // Stop two providers (not the one the user talks to).
    let stopped = [PROVIDERS - 1, PROVIDERS];
    let running: Vec<usize> = (0..=PROVIDERS).filter(|i| !stopped.contains(i)).collect();
    let lost_pieces: usize = groups
        .iter()
        .flatten()
        .filter(|cid| {
            stopped.iter().any(|&i| {
                grid.node(i)
                    .is_some_and(|n| n.service().inner().store.has(cid).unwrap_or(false))
            })
        })
        .count();
    let start = Instant::now();
    for i in stopped {
        assert!(grid.stop(i), "provider {i} stops");
    }
    let short_at_start = short_groups(&grid, &running, &groups);
    loop {
        if short_groups(&grid, &running, &groups) == 0 {
            break;
        }
        assert!(
            start.elapsed() < REPAIR_DEADLINE,
            "not repaired within {REPAIR_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let repaired = start.elapsed().as_secs_f64();
    let (mut rebuilt, mut written, mut read) = (0, 0, 0);
    for &i in &running {
        let Some(n) = grid.node(i) else { continue };
        let totals = &n.service().inner().repairs;
        rebuilt += totals.rebuilt.load(Ordering::Relaxed);
        written += totals.bytes_written.load(Ordering::Relaxed);
        read += totals.bytes_read.load(Ordering::Relaxed);
    }
    println!(
        "put: {object_mib} MiB RS(4+2) on {PROVIDERS} providers in {put_secs:.1} s ({:.0} MB/s); \
         {:.0} MiB stored with parity",
        (object_mib << 20) as f64 / put_secs / 1e6,
        mib(stored),
    );
    println!(
        "repair: 2 of {PROVIDERS} providers stopped, {lost_pieces} pieces in {short_at_start} of {} groups lost; \
         full redundancy after {repaired:.1} s (of which {:.0} s is the grace before an unreachable holder counts as lost)",
        groups.len(),
        HOLDER_GRACE.as_secs_f64(),
    );
    println!(
        "repair moved: {rebuilt} pieces rebuilt, {:.1} MiB written to new holders, {:.1} MiB read to rebuild \
         ({:.2}x and {:.2}x the object)",
        mib(written),
        mib(read),
        written as f64 / (object_mib << 20) as f64,
        read as f64 / (object_mib << 20) as f64,
    );
}
