//! The object index benchmark: a grid of six providers (in-process daemons
//! serving their HTTP APIs on loopback), a funded bucket in its cluster, and
//! clients talking HTTP to one provider as the CLI does:
//!
//! 1. **Index writes/s**: owner-signed entries, one per request, from
//!    [`WRITERS_DEFAULT`] client threads at once (the node sends what arrives
//!    together to the three replicas in one round, a quorum write, each
//!    replica's part a durable group commit), with one of the bucket's
//!    index replicas stopped half way through the last run; then every
//!    acknowledged key is listed back, and the count of missing ones printed
//!    (it must be 0).
//! 2. **Small-object puts/s**: `bucket::put` of 1 KiB objects (sealed, and
//!    kept inline in the index: the manifest and chunk ride in the entry's
//!    quorum write) from [`WRITERS_DEFAULT`] threads, and of 16 KiB objects
//!    (stored on three members of the cluster, then indexed) for comparison.
//!    Then 1 KiB objects in batches of [`BATCH_OBJECTS`] per request
//!    ([`bucket::put_many`], as `bucket put DIR` stores a directory's files)
//!    from [`BATCH_WRITERS`] threads, the last run listed back.
//! 3. **Lists of 1,000 keys per minute**: from [`LISTERS`] threads for a few
//!    seconds.
//!
//! Run: `cargo bench -p peercloud-devnet --bench index`. It prints medians
//! of [`RUNS`] runs itself (no criterion): every sample is a whole
//! multi-node flow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use peercloud_api::{Canonical, IndexWrite, ListQuery};
use peercloud_client::{NodeClient, bucket};
use peercloud_devnet::{Grid, node_dir};
use peercloud_ledger::{BucketId, ObjectEntry, ObjectRef};
use peercloud_types::{ContentId, Keypair, Signed, clock::now_ms};

#[path = "../tests/common/mod.rs"]
mod common;

/// Providers of the grid.
const PROVIDERS: usize = 6;
/// Client threads writing at once (`PEERCLOUD_BENCH_WRITERS` to change).
const WRITERS_DEFAULT: usize = 32;
/// Entries each run of the write benchmark writes.
const ENTRIES_PER_RUN: usize = 4_000;
/// Objects each run of the put benchmark stores on chunk holders.
const OBJECTS_PER_RUN: usize = 300;
/// Objects each run of the put benchmark keeps inline in the index.
const INLINE_OBJECTS_PER_RUN: usize = 3_000;
/// Objects each run of the batched put benchmark stores (inline).
const BATCHED_OBJECTS_PER_RUN: usize = 20_000;
/// Objects per batch: as `bucket put DIR` sends a directory's small files.
const BATCH_OBJECTS: usize = 500;
/// Client threads putting batches at once.
const BATCH_WRITERS: usize = 4;
/// Client threads listing at once.
const LISTERS: usize = 4;
/// How long each list run lasts.
const LIST_RUN: Duration = Duration::from_secs(5);
/// Runs of each benchmark; the median is printed.
const RUNS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs `work(thread, i)` for `total` items over `threads` threads; the
/// items done per second.
fn rate(threads: usize, total: usize, work: impl Fn(usize) + Sync) -> f64 {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    work(i);
                }
            });
        }
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn entry(owner: &Keypair, bucket: BucketId, key: String) -> Signed<ObjectEntry> {
    Signed::new(
        ObjectEntry {
            bucket,
            object: Some(ObjectRef {
                manifest: ContentId::of(key.as_bytes()),
                size: 1_024,
                inline: false,
            }),
            key,
            at_ms: now_ms(),
        },
        owner,
    )
}

fn main() {
    let writers = std::env::var("PEERCLOUD_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WRITERS_DEFAULT);
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), PROVIDERS).expect("a grid of six providers");
    let owner = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let bucket = common::funded_bucket(&grid, &node, 100);
    let http = NodeClient::from_node_dir(&node_dir(dir.path(), 1)).expect("node 1's API");

    // 1. Index writes, a replica stopped half way through the last run.
    let mut writes = Vec::new();
    for run in 0..RUNS {
        let last = run + 1 == RUNS;
        let per_second = rate(writers, ENTRIES_PER_RUN, |i| {
            if last && i == ENTRIES_PER_RUN / 2 {
                stop_an_index_replica(&grid, &bucket, 1);
            }
            let write = IndexWrite {
                entries: vec![Canonical(entry(&owner, bucket, format!("w{run}/{i:05}")))],
                ..IndexWrite::default()
            };
            http.index_write(&bucket, &write).expect("an index write");
        });
        writes.push(per_second);
    }
    let listed = bucket::list(&http, &bucket, &format!("w{}/", RUNS - 1)).expect("list back");
    let lost = ENTRIES_PER_RUN - listed.len();
    println!(
        "index writes: {:.0}/s median of {RUNS} runs ({}), {writers} writers, one entry per request; \
         {lost} of {ENTRIES_PER_RUN} acknowledged writes missing after stopping an index replica mid-run",
        median(writes.clone()),
        writes
            .iter()
            .map(|w| format!("{w:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
    );

    // 2. Small-object puts (data and index), with the replica still stopped:
    // inline in the index, and just past the inline bound, on chunk holders.
    for (what, size, count) in [
        ("1 KiB, inline in the index", 1_024, INLINE_OBJECTS_PER_RUN),
        ("16 KiB, on 3 holders + index", 16 << 10, OBJECTS_PER_RUN),
    ] {
        let object = vec![5u8; size];
        let mut puts = Vec::new();
        for run in 0..RUNS {
            puts.push(rate(writers, count, |i| {
                bucket::put(
                    &http,
                    &owner,
                    &bucket,
                    &format!("o{size}/{run}/{i:05}"),
                    &object[..],
                )
                .expect("a small-object put");
            }));
        }
        println!(
            "small-object puts ({what}): {:.0}/s median of {RUNS} runs ({})",
            median(puts.clone()),
            puts.iter()
                .map(|p| format!("{p:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }

    // 2b. Small objects in batches, as `bucket put DIR` stores a directory:
    // one request reads what a batch replaces, one index write stores it.
    let object = vec![6u8; 1_024];
    let mut batched = Vec::new();
    for run in 0..RUNS {
        let keys: Vec<String> = (0..BATCHED_OBJECTS_PER_RUN)
            .map(|i| format!("b/{run}/{i:06}"))
            .collect();
        let batches: Vec<&[String]> = keys.chunks(BATCH_OBJECTS).collect();
        let per_second = rate(BATCH_WRITERS, batches.len(), |i| {
            let objects: Vec<bucket::NewObject<'_>> = batches[i]
                .iter()
                .map(|key| bucket::NewObject {
                    key,
                    bytes: &object,
                })
                .collect();
            bucket::put_many(&http, &owner, &bucket, &objects).expect("a put of many");
        });
        batched.push(per_second * BATCH_OBJECTS as f64);
    }
    let listed = bucket::list(&http, &bucket, &format!("b/{}/", RUNS - 1)).expect("list back");
    println!(
        "small-object puts (1 KiB, inline, {BATCH_OBJECTS} per request as a directory upload, \
         {BATCH_WRITERS} writers): {:.0}/s median of {RUNS} runs ({}); {} of {BATCHED_OBJECTS_PER_RUN} \
         acknowledged objects missing, an index replica still stopped",
        median(batched.clone()),
        batched
            .iter()
            .map(|p| format!("{p:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        BATCHED_OBJECTS_PER_RUN - listed.len(),
    );

    // 3. Lists of 1,000 keys.
    let query = ListQuery {
        prefix: Some("w0/".into()),
        after: None,
        limit: Some(1_000),
    };
    let mut lists = Vec::new();
    for _ in 0..RUNS {
        let done = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..LISTERS {
                scope.spawn(|| {
                    while start.elapsed() < LIST_RUN {
                        let page = http.index_list(&bucket, &query).expect("a list");
                        assert_eq!(page.entries.len(), 1_000);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        lists.push(done.load(Ordering::Relaxed) as f64 * 60.0 / start.elapsed().as_secs_f64());
    }
    println!(
        "lists of 1,000 keys: {:.0}/min median of {RUNS} runs ({}), {LISTERS} listers",
        median(lists.clone()),
        lists
            .iter()
            .map(|l| format!("{l:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// Stops one of the bucket's index replicas other than node `keep`.
fn stop_an_index_replica(grid: &Grid, bucket: &BucketId, keep: usize) {
    let holder = (1..grid.len()).find(|&i| {
        i != keep
            && grid.node(i).is_some_and(|n| {
                n.service()
                    .inner()
                    .index
                    .table()
                    .list(bucket, "", None, 1)
                    .is_ok_and(|e| !e.is_empty())
            })
    });
    if let Some(i) = holder {
        grid.stop(i);
        println!("(stopped node {i}, an index replica of the bucket)");
    }
}
