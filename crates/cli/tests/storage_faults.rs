//! Storage when something goes wrong, across real node processes: two of
//! six providers holding RS(4+2) data killed, and a holder whose copy of a
//! piece goes bad on disk. Each test checks that the user still reads every
//! byte right, that the cluster rebuilds what was lost by itself, what the
//! ledger did about the nodes at fault (reported, slashed, removed — so a
//! node that comes back is not paid for data it no longer holds), and that
//! every live node ends on the same state root.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Net, bounded};
use peercloud_client::{NodeClient, bucket, submit_signed};
use peercloud_devnet::amounts::cluster_terms;
use peercloud_ledger::{BucketId, TxKind};
use peercloud_types::{Amount, ContentId, NodeId};

/// Providers: exactly one per piece of an RS(4+2) group.
const PROVIDERS: usize = 6;
/// Bound of each test, devnet startup included.
const LIMIT: Duration = Duration::from_secs(150);
/// How long the cluster may take to notice, judge and rebuild.
const REPAIR_WAIT: Duration = Duration::from_secs(90);

/// A devnet of six providers whose cluster's audit epochs (its billing
/// periods) last 3 s, and a funded bucket in it owned by the user.
fn net_with_bucket() -> (Net, BucketId) {
    let mut terms = cluster_terms(PROVIDERS);
    terms.billing_period_ms = 3_000;
    let net = Net::up_with_terms(PROVIDERS, Vec::new(), terms);
    let node = net.client(1);
    let nonce = node
        .account(&net.user.account_id())
        .expect("account")
        .next_nonce;
    let cluster = net.devnet.cluster;
    let create = TxKind::CreateBucket {
        cluster,
        public: false,
    };
    submit_signed(&node, &net.user, create, true).expect("bucket");
    let bucket = BucketId::derive(&net.user.account_id(), nonce);
    let deposit = TxKind::DepositBucket {
        bucket,
        amount: Amount::from_tokens(50),
    };
    submit_signed(&node, &net.user, deposit, true).expect("deposit");
    (net, bucket)
}

/// Deterministic content that compresses badly.
fn content(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

/// Waits (bounded) until the bucket's health shows nothing lost.
fn wait_whole(node: &NodeClient, bucket: &BucketId) -> Duration {
    let start = Instant::now();
    loop {
        let health = node.bucket_health(bucket).expect("health");
        if health.lost == 0 && health.problems.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < REPAIR_WAIT,
            "not repaired within {} s: {health:?}",
            REPAIR_WAIT.as_secs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits (bounded) until the cluster no longer lists `gone` as members.
fn wait_removed(node: &NodeClient, net: &Net, gone: &[NodeId]) {
    let start = Instant::now();
    loop {
        let view = node.cluster(&net.devnet.cluster).expect("cluster");
        if gone.iter().all(|n| view.member(n).is_none()) {
            return;
        }
        assert!(
            start.elapsed() < REPAIR_WAIT,
            "{gone:?} still members after {} s",
            REPAIR_WAIT.as_secs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The file a node process keeps chunk `cid` in, under its data directory.
fn chunk_file(node_dir: &Path, cid: &ContentId) -> Option<PathBuf> {
    let name = cid.to_hex();
    let mut stack = vec![node_dir.join("chunks")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|f| f == name.as_str()) {
                return Some(path);
            }
        }
    }
    None
}

#[test]
fn two_of_six_providers_killed_rs_data_reads_is_rebuilt_and_they_are_not_paid_after() {
    bounded(
        "two_of_six_providers_killed_rs_data_reads_is_rebuilt_and_they_are_not_paid_after",
        LIMIT,
        || {
            let (mut net, bucket) = net_with_bucket();
            let node = net.client(1);
            let data = content(8 << 20);
            bucket::put(&node, &net.user, &bucket, "data.bin", &data[..]).expect("put");
            // The cluster's auditors see every piece proved once.
            std::thread::sleep(Duration::from_secs(7));

            let killed = [PROVIDERS - 1, PROVIDERS];
            let killed_ids: Vec<NodeId> = killed.iter().map(|&i| net.node_id(i)).collect();
            for i in killed {
                net.devnet.nodes[i].kill();
            }
            let mut out = Vec::new();
            bucket::get(&node, &net.user, &bucket, "data.bin", &mut out)
                .expect("a read with two providers gone");
            assert!(out == data, "byte-identical with two of six gone");

            wait_removed(&node, &net, &killed_ids);
            let took = wait_whole(&node, &bucket);
            println!("rebuilt in {:.1} s after the judgement", took.as_secs_f64());
            let mut out = Vec::new();
            bucket::get(&node, &net.user, &bucket, "data.bin", &mut out).expect("read");
            assert!(out == data, "byte-identical after the repair");

            // They come back: no longer members, so never paid for storage again.
            let options = peercloud_devnet::UpOptions {
                exe: PathBuf::from(env!("CARGO_BIN_EXE_peercloud")),
                env: Vec::new(),
                log: Some("info".into()),
                netns: Vec::new(),
            };
            for i in killed {
                net.devnet.restart(i, &options).expect("restart");
            }
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            net.converged(&all);
            std::thread::sleep(Duration::from_secs(4));
            let view = node.cluster(&net.devnet.cluster).expect("cluster");
            assert_eq!(view.members.len(), PROVIDERS - 2, "{view:?}");
            let bucket_view = node.bucket(&bucket).expect("bucket");
            assert_eq!(bucket_view.stored_bytes, data.len() as u64, "billed once");
            net.converged(&all);
        },
    );
}

#[test]
fn a_holder_whose_piece_goes_bad_is_reported_slashed_and_the_piece_rebuilt() {
    bounded(
        "a_holder_whose_piece_goes_bad_is_reported_slashed_and_the_piece_rebuilt",
        LIMIT,
        || {
            let (net, bucket) = net_with_bucket();
            let node = net.client(1);
            let data = content(6 << 20);
            let put = bucket::put(&node, &net.user, &bucket, "data.bin", &data[..]).expect("put");
            std::thread::sleep(Duration::from_secs(7));

            // Flip a byte of a data piece in a file of another provider's store.
            let (victim, file) = put
                .receipt
                .manifest
                .chunks
                .iter()
                .find_map(|cid| {
                    (2..=PROVIDERS).find_map(|i| chunk_file(&net.node_dir(i), cid).map(|f| (i, f)))
                })
                .expect("a piece on a provider other than node 1");
            let mut bytes = std::fs::read(&file).expect("read the chunk file");
            bytes[100] ^= 0x40;
            std::fs::write(&file, &bytes).expect("write the chunk file");
            let victim_id = net.node_id(victim);
            let owners = Net::owners(&net.converged(&[0, 1]));
            let stake_before = node
                .cluster(&net.devnet.cluster)
                .expect("cluster")
                .member(&victim_id)
                .expect("a member")
                .stake;
            let owner_before = net.account(1, &owners[&victim_id]);

            // The user never receives a wrong byte.
            let mut out = Vec::new();
            bucket::get(&node, &net.user, &bucket, "data.bin", &mut out).expect("read");
            assert!(out == data, "byte-identical around a bad piece");

            wait_removed(&node, &net, &[victim_id]);
            let owner_after = net.account(1, &owners[&victim_id]);
            // Its stake came back to its owner less the slash.
            assert!(owner_after.balance > owner_before.balance);
            assert!(
                owner_after.balance < owner_before.balance.checked_add(stake_before).expect("sum"),
                "part of the stake was slashed"
            );
            wait_whole(&node, &bucket);
            let mut out = Vec::new();
            bucket::get(&node, &net.user, &bucket, "data.bin", &mut out).expect("read");
            assert!(out == data, "byte-identical after the repair");
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            net.converged(&all);
        },
    );
}

#[test]
fn a_node_claiming_bandwidth_no_one_acknowledged_is_not_paid_for_it() {
    bounded(
        "a_node_claiming_bandwidth_no_one_acknowledged_is_not_paid_for_it",
        LIMIT,
        || {
            let (net, bucket) = net_with_bucket();
            let node = net.client(1);
            let data = content(2 << 20);
            bucket::put(&node, &net.user, &bucket, "data.bin", &data[..]).expect("put");
            let mut out = Vec::new();
            bucket::get(&node, &net.user, &bucket, "data.bin", &mut out).expect("get");
            let view = node.bucket(&bucket).expect("bucket");
            let period = bucket::period_at(
                view.created_ms,
                view.billing_period_ms,
                peercloud_types::clock::now_ms(),
            );
            let evidence = node
                .index_evidence(
                    &bucket,
                    &peercloud_api::EvidenceQuery {
                        period,
                        until_ms: None,
                    },
                )
                .expect("evidence");
            let served: std::collections::BTreeSet<NodeId> =
                evidence.receipts.iter().map(|r| r.0.body.node).collect();
            assert!(!served.is_empty(), "the read was acknowledged");

            // A provider that served nothing claims a TiB, signing the receipt itself.
            let claimant = (1..=PROVIDERS)
                .find(|i| !served.contains(&net.node_id(*i)))
                .expect("a provider that served nothing");
            let owner = peercloud_types::Keypair::load(
                &net.node_dir(claimant)
                    .join(peercloud_node::daemon::OWNER_KEY_FILE),
            )
            .expect("the claimant's owner key");
            let forged = peercloud_types::Signed::new(
                peercloud_ledger::BandwidthReceipt {
                    bucket,
                    node: net.node_id(claimant),
                    period,
                    bytes: 1 << 40,
                    receiver: owner.account_id(),
                },
                &owner,
            );
            let write = peercloud_api::IndexWrite {
                receipts: vec![peercloud_api::Canonical(forged.clone())],
                ..Default::default()
            };
            let err = node
                .index_write(&bucket, &write)
                .expect_err("not the owner's");
            assert!(err.to_string().contains("not by"), "{err}");
            // Straight to the ledger in a bill: refused too.
            let bill = TxKind::BillBucket {
                bucket,
                period,
                usage: None,
                receipts: vec![forged],
                repairs: Vec::new(),
            };
            let err = submit_signed(&node, &owner, bill, true).expect_err("a forged receipt");
            assert!(err.to_string().contains("receipt"), "{err}");

            // The bills the cluster runs pay bandwidth only to nodes that served.
            let start = Instant::now();
            loop {
                let paid: Vec<(usize, Amount)> = (1..=PROVIDERS)
                    .map(|i| (i, net.client(i).earnings(None).expect("earnings").bandwidth))
                    .collect();
                let served_paid = paid
                    .iter()
                    .filter(|(i, _)| served.contains(&net.node_id(*i)))
                    .all(|(_, a)| !a.is_zero());
                for (i, amount) in &paid {
                    if !served.contains(&net.node_id(*i)) {
                        assert!(amount.is_zero(), "node-{i} served nothing, paid {amount}");
                    }
                }
                if served_paid {
                    break;
                }
                assert!(
                    start.elapsed() < REPAIR_WAIT,
                    "the serving nodes were not paid: {paid:?}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            net.converged(&all);
        },
    );
}
