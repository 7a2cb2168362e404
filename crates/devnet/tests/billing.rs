//! Bills across real daemons (an in-process grid whose cluster bills every
//! few seconds): the bucket's runner submits a bill for each ended period
//! with the owner's usage and the owner's receipts from the index, every
//! active member is paid for the bytes stored, only the nodes whose copies
//! served the owner's reads are paid for bandwidth, a receipt signed by
//! anyone but the owner never reaches the index, and every node ends on the
//! same state root with supply conserved.

mod common;

use common::*;
use peercloud_ledger::billing::PaidFor;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use peercloud_api::{Canonical, ErrorCode, EvidenceQuery, IndexWrite};
use peercloud_client::{ClientError, NodeApi, bucket};
use peercloud_devnet::Grid;
use peercloud_devnet::amounts::cluster_terms;
use peercloud_ledger::{BandwidthReceipt, Event, StorageEvent};
use peercloud_types::{Amount, Keypair, NodeId, Signed};

/// Providers: enough for 3 replicas and one that holds no copy.
const PROVIDERS: usize = 4;
/// The test cluster's billing period.
const PERIOD_MS: u64 = 2_000;

#[test]
fn members_are_paid_per_period_for_bytes_stored_and_only_servers_for_bytes_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terms = cluster_terms(PROVIDERS);
    terms.billing_period_ms = PERIOD_MS;
    terms.grace_ms = 10 * PERIOD_MS;
    // Dear enough that 2 MiB for 2 s pays every member something (about
    // 0.015 PCL a period at 10 million PCL per GiB-month).
    terms.price_per_gib_month = Amount::from_tokens(10_000_000);
    let grid = Grid::start_with_terms(dir.path(), PROVIDERS, Keypair::generate(), |_, _| {}, terms)
        .expect("a grid whose cluster bills every 2 s");
    let mut blocks = inner(&grid, 1).committed.subscribe();
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let bucket = funded_bucket(&grid, &node, 100);

    let data = vec![3u8; 2 << 20];
    bucket::put(&node, user, &bucket, "data.bin", &data[..]).expect("put");
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "data.bin", &mut out).expect("get");
    assert_eq!(out, data);

    // The owner's receipts name the nodes whose copies served the read.
    let view = node.bucket(&bucket).expect("bucket");
    let period = bucket::period_at(
        view.created_ms,
        view.billing_period_ms,
        peercloud_types::clock::now_ms(),
    );
    let evidence = node
        .index_evidence(
            &bucket,
            &EvidenceQuery {
                period,
                until_ms: None,
            },
        )
        .expect("evidence");
    let served: BTreeSet<NodeId> = evidence.receipts.iter().map(|r| r.0.body.node).collect();
    let acknowledged: u64 = evidence.receipts.iter().map(|r| r.0.body.bytes).sum();
    assert!(!served.is_empty());
    assert!(
        acknowledged >= data.len() as u64,
        "{acknowledged} bytes acknowledged"
    );

    // A node claiming bandwidth with a receipt it signed itself: refused.
    let claimant = Keypair::from_seed(&[7; 32]);
    let forged = Signed::new(
        BandwidthReceipt {
            bucket,
            node: grid.node(2).expect("node 2").service().inner().node_id(),
            period,
            bytes: 1 << 40,
            receiver: claimant.account_id(),
        },
        &claimant,
    );
    let write = IndexWrite {
        receipts: vec![Canonical(forged)],
        ..IndexWrite::default()
    };
    match node.index_write(&bucket, &write) {
        Err(ClientError::Api { code, .. }) => assert_eq!(code, ErrorCode::NotOwner),
        other => panic!("a receipt not signed by the owner must be refused: {other:?}"),
    }

    // Periods end and are billed without anyone asking.
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut storage_paid, mut bandwidth_paid) = (BTreeSet::new(), BTreeSet::new());
    loop {
        while let Ok(committed) = blocks.try_recv() {
            for event in &committed.events {
                if let Event::Storage(StorageEvent::StoragePaid {
                    node: Some(paid),
                    paid_for,
                    bucket: b,
                    ..
                }) = event
                    && *b == bucket
                {
                    match paid_for {
                        PaidFor::Bandwidth => bandwidth_paid.insert(*paid),
                        PaidFor::Storage => storage_paid.insert(*paid),
                        PaidFor::Repair => false,
                    };
                }
            }
        }
        let view = node.bucket(&bucket).expect("bucket");
        if view.next_period > period + 1 && !bandwidth_paid.is_empty() {
            assert_eq!(view.stored_bytes, data.len() as u64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "periods not billed in 40 s: next period {}, bandwidth paid to {bandwidth_paid:?}",
            view.next_period
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let members: BTreeSet<NodeId> = (1..=PROVIDERS).map(|i| node_id(&grid, i)).collect();
    assert_eq!(
        storage_paid, members,
        "every active member is paid for storage"
    );
    assert!(
        bandwidth_paid.is_subset(&served),
        "only nodes that served acknowledged bytes are paid for bandwidth: {bandwidth_paid:?} of {served:?}"
    );

    // Every node agrees, and no token was made or lost.
    assert_nodes_agree(&grid);
}
