//! A bucket that runs out of funds, across real daemons (an in-process grid
//! whose cluster bills every second): the owner is warned while the deposit
//! still covers a few periods; once a bill finds it short the bucket goes
//! read-only — writes and deletes are refused naming why, every object still
//! reads back, nothing is deleted — until a deposit brings it back, and a
//! bucket left read-only past its grace is ended with the rest refunded.

mod common;

use common::*;

use std::time::{Duration, Instant};

use peercloud_api::{BucketState, BucketView};
use peercloud_client::bucket::{self, BucketError};
use peercloud_client::{NodeApi, submit_signed};
use peercloud_devnet::amounts::cluster_terms;
use peercloud_devnet::{Grid, InProcessNode};
use peercloud_ledger::{BucketId, TxKind};
use peercloud_types::{Amount, Keypair};

const PROVIDERS: usize = 3;
const PERIOD_MS: u64 = 1_000;

/// Waits (bounded) until the bucket's view satisfies `done`.
fn wait_for(
    node: &InProcessNode,
    bucket: &BucketId,
    what: &str,
    done: impl Fn(&BucketView) -> bool,
) -> BucketView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = node.bucket(bucket).expect("bucket");
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached in 30 s: {view:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bucket_out_of_funds_is_warned_then_read_only_with_nothing_deleted_then_ended_after_its_grace()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terms = cluster_terms(PROVIDERS);
    terms.billing_period_ms = PERIOD_MS;
    terms.grace_ms = 6 * PERIOD_MS;
    // 1 MiB for a second costs about 0.39 PCL at this price.
    terms.price_per_gib_month = Amount::from_tokens(1_000_000_000);
    let grid = Grid::start_with_terms(dir.path(), PROVIDERS, Keypair::generate(), |_, _| {}, terms)
        .expect("a grid whose cluster bills every second");
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let bucket = funded_bucket(&grid, &node, 0);
    let deposit = |amount: Amount| {
        submit_signed(&node, user, TxKind::DepositBucket { bucket, amount }, true)
            .expect("deposit");
    };
    deposit(Amount::from_tokens(2));
    let data = vec![9u8; 1 << 20];
    bucket::put(&node, user, &bucket, "kept.bin", &data[..]).expect("put");

    // Warned while it still covers a period or two, then read-only.
    let warned = wait_for(&node, &bucket, "the low-deposit warning", |v| v.low_warned);
    assert_eq!(
        warned.status,
        BucketState::Active,
        "warned before it runs out"
    );
    let read_only = wait_for(&node, &bucket, "read-only", |v| {
        v.status == BucketState::ReadOnly
    });
    assert!(read_only.read_only_since_ms.is_some());

    // Read-only: writes and deletes refused naming why; reads still work.
    let err = bucket::put(&node, user, &bucket, "new.bin", &b"x"[..]).expect_err("read-only");
    assert!(matches!(err, BucketError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("deposit"), "{err}");
    let err = bucket::delete(&node, user, &bucket, "kept.bin").expect_err("read-only");
    assert!(matches!(err, BucketError::ReadOnly { .. }), "{err}");
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "kept.bin", &mut out).expect("reads in grace");
    assert!(out == data, "nothing is lost during the grace");
    assert_eq!(node.bucket_health(&bucket).expect("health").lost, 0);

    // A deposit that covers a period again makes it writable.
    deposit(Amount::from_tokens(1));
    wait_for(&node, &bucket, "active again", |v| {
        v.status == BucketState::Active
    });
    bucket::put(&node, user, &bucket, "after.bin", &b"y"[..]).expect("writable again");

    // Left to run out past its grace: ended, the rest refunded.
    let ended = wait_for(&node, &bucket, "expiry", |v| {
        v.status == BucketState::Expired
    });
    assert_eq!(ended.deposit, Amount::ZERO);
    for i in 0..grid.len() {
        inner(&grid, i)
            .chain()
            .state()
            .check_invariants()
            .expect("supply conserved");
    }
}
