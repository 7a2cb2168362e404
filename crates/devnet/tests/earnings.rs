//! A farmer's view of its node's storage earnings across real daemons (an
//! in-process grid whose cluster bills every 2 s at a high price): after a
//! put, a get and two billed periods, every provider's earnings show the
//! storage income the ledger's `StoragePaid` events paid it, payment by
//! payment; the nodes whose copies served the read show bandwidth income and
//! the others none; an owner that paid no fees meanwhile gained exactly what
//! its node recorded; the view comes over HTTP too. Then the grid stops and
//! a provider whose record is gone starts again: it rebuilds the same record
//! from its block log.

mod common;

use common::*;
use peercloud_ledger::billing::PaidFor;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peercloud_api::{
    EARNINGS_LIMIT_MAX, EarningsQuery, EarningsView, ErrorCode, EvidenceQuery, MemberState,
    PaymentKind,
};
use peercloud_client::{ClientError, NodeApi, NodeClient, bucket};
use peercloud_devnet::amounts::{FARMER_STAKE_TOKENS, cluster_terms};
use peercloud_devnet::{Grid, node_dir};
use peercloud_ledger::{BucketId, Event, StorageEvent};
use peercloud_node::api::Service;
use peercloud_node::chain::Committed;
use peercloud_node::config::{NodeConfig, Settings};
use peercloud_node::daemon::{EARNINGS_FILE, Earnings, Node};
use peercloud_types::{AccountId, Amount, Keypair, NodeId};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// Providers: enough for 3 replicas and one that holds no copy.
const PROVIDERS: usize = 4;
/// The test cluster's billing period.
const PERIOD_MS: u64 = 2_000;
/// The most a test waits for bills or for a node to see a block.
const WAIT: Duration = Duration::from_secs(40);

/// One payment as the events and the record both name it.
type Paid = (u64, BucketId, PaymentKind, Amount);

/// Every block node 1 committed since the test subscribed, by height.
struct Seen {
    blocks: broadcast::Receiver<Arc<Committed>>,
    events: BTreeMap<u64, Vec<Event>>,
}

impl Seen {
    fn drain(&mut self) {
        loop {
            match self.blocks.try_recv() {
                Ok(committed) => {
                    self.events
                        .insert(committed.block.height(), committed.events.clone());
                }
                Err(TryRecvError::Empty) => return,
                Err(e) => panic!("blocks missed by the test: {e}"),
            }
        }
    }

    /// Waits until every block up to `height` is seen.
    fn through(&mut self, height: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.drain();
            if self.events.keys().next_back().is_some_and(|h| *h >= height) {
                return;
            }
            assert!(Instant::now() < deadline, "node 1 never reached {height}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn in_range(&self, after: u64, through: u64) -> impl Iterator<Item = (u64, &Event)> {
        self.events
            .range(after + 1..=through)
            .flat_map(|(h, events)| events.iter().map(move |e| (*h, e)))
    }

    /// `node`'s payments in blocks up to `through`, oldest first.
    fn paid_to(&self, node: &NodeId, through: u64) -> Vec<Paid> {
        self.in_range(0, through)
            .filter_map(|(height, event)| match event {
                Event::Storage(StorageEvent::StoragePaid {
                    bucket,
                    node: Some(paid),
                    amount,
                    paid_for,
                    ..
                }) if paid == node => {
                    let kind = match paid_for {
                        PaidFor::Storage => PaymentKind::Storage,
                        PaidFor::Bandwidth => PaymentKind::Bandwidth,
                        PaidFor::Repair => PaymentKind::Repair,
                    };
                    Some((height, *bucket, kind, *amount))
                }
                _ => None,
            })
            .collect()
    }

    /// Accounts that paid a fee in blocks `after..=through`.
    fn fee_payers(&self, after: u64, through: u64) -> BTreeSet<AccountId> {
        self.in_range(after, through)
            .filter_map(|(_, event)| match event {
                Event::FeeCharged { payer, .. } => Some(*payer),
                _ => None,
            })
            .collect()
    }
}

fn sum(paid: &[Paid], kind: PaymentKind) -> Amount {
    paid.iter()
        .filter(|p| p.2 == kind)
        .fold(Amount::ZERO, |t, p| {
            t.checked_add(p.3).expect("no overflow")
        })
}

fn recent(view: &EarningsView) -> Vec<Paid> {
    view.recent
        .iter()
        .map(|p| (p.height, p.bucket, p.kind, p.amount))
        .collect()
}

#[test]
fn every_provider_sees_what_it_earned_and_a_restart_rebuilds_it_from_the_block_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terms = cluster_terms(PROVIDERS);
    terms.billing_period_ms = PERIOD_MS;
    terms.grace_ms = 10 * PERIOD_MS;
    // Dear enough that 2 MiB for 2 s pays every member visibly (about
    // 0.015 PCL a period), and a read pays its servers tenths of a PCL.
    terms.price_per_gib_month = Amount::from_tokens(10_000_000);
    terms.price_per_gib_served = Amount::from_tokens(100);
    let node_stake = terms.node_stake;
    let grid = Grid::start_with_terms(dir.path(), PROVIDERS, Keypair::generate(), |_, _| {}, terms)
        .expect("a grid whose cluster bills every 2 s");
    let mut seen = Seen {
        blocks: inner(&grid, 1).committed.subscribe(),
        events: BTreeMap::new(),
    };
    let providers: Vec<usize> = (1..=PROVIDERS).collect();
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let bucket = funded_bucket(&grid, &node, 100);

    // Nothing earned yet: no bucket was ever billed.
    let before: BTreeMap<usize, EarningsView> = providers
        .iter()
        .map(|&i| {
            let view = grid
                .node(i)
                .expect("node")
                .earnings(Some(0))
                .expect("earnings");
            assert_eq!((view.payments, view.total), (0, Amount::ZERO));
            (i, view)
        })
        .collect();

    let data = vec![5u8; 2 << 20];
    bucket::put(&node, user, &bucket, "data.bin", &data[..]).expect("put");
    let mut out = Vec::new();
    bucket::get(&node, user, &bucket, "data.bin", &mut out).expect("get");
    assert_eq!(out, data);
    // The nodes whose copies served the read, by the owner's receipts (of
    // this period, or the last when the read straddled its end).
    let view = node.bucket(&bucket).expect("bucket");
    let period = bucket::period_at(
        view.created_ms,
        view.billing_period_ms,
        peercloud_types::clock::now_ms(),
    );
    let served: BTreeSet<NodeId> = (period.saturating_sub(1)..=period)
        .flat_map(|period| {
            let query = EvidenceQuery {
                period,
                until_ms: None,
            };
            node.index_evidence(&bucket, &query)
                .expect("evidence")
                .receipts
        })
        .map(|r| r.0.body.node)
        .collect();
    assert!(!served.is_empty(), "the read named no serving node");

    // Two periods after the read are billed without anyone asking.
    let deadline = Instant::now() + WAIT;
    while node.bucket(&bucket).expect("bucket").next_period <= period + 1 {
        assert!(Instant::now() < deadline, "periods not billed in time");
        seen.drain();
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut no_fees = 0;
    for &i in &providers {
        let me = node_id(&grid, i);
        let view = grid
            .node(i)
            .expect("node")
            .earnings(Some(EARNINGS_LIMIT_MAX))
            .expect("earnings");
        assert_eq!(view.node, me);
        let recorded = view.recorded_height.expect("a recorded block");
        assert!(!view.behind(), "node {i}'s record is behind its chain");
        seen.through(recorded);
        let paid = seen.paid_to(&me, recorded);

        // Payment by payment, as the ledger paid them, newest first.
        let mut expected = paid.clone();
        expected.reverse();
        assert_eq!(recent(&view), expected, "node {i}'s payments");
        assert_eq!(view.payments, paid.len() as u64);
        assert_eq!(view.storage, sum(&paid, PaymentKind::Storage));
        assert_eq!(view.bandwidth, sum(&paid, PaymentKind::Bandwidth));
        assert_eq!(
            view.total,
            view.storage.checked_add(view.bandwidth).expect("sum")
        );
        assert!(
            view.storage > Amount::ZERO,
            "every active member is paid for storage"
        );
        if served.contains(&me) {
            assert!(
                view.bandwidth > Amount::ZERO,
                "node {i} served the read but shows no bandwidth income"
            );
        } else {
            assert_eq!(
                view.bandwidth,
                Amount::ZERO,
                "node {i} served nothing but shows bandwidth income"
            );
        }
        assert_eq!(view.buckets.len(), 1);
        let only = view.buckets[0];
        assert_eq!(only.bucket, bucket);
        assert_eq!(
            (only.storage, only.bandwidth, only.payments),
            (view.storage, view.bandwidth, view.payments)
        );

        // How it stands: registered, staked to serve, staked in the cluster.
        let standing = &view.standing;
        assert!(standing.registered && standing.reputation.is_some());
        assert_eq!(standing.stake, Amount::from_tokens(FARMER_STAKE_TOKENS));
        assert_eq!(standing.cluster_stake, node_stake);
        assert_eq!(standing.clusters.len(), 1);
        assert_eq!(standing.clusters[0].cluster, grid.cluster());
        assert_eq!(standing.clusters[0].status, MemberState::Active);

        // An owner that ran no bill paid no fee: what it gained is what its
        // node earned (the balance is read in one step with the record).
        let first = &before[&i];
        let first_height = first.height.expect("a tip");
        if !seen
            .fee_payers(first_height, recorded)
            .contains(&view.owner)
        {
            no_fees += 1;
            let gained = standing
                .balance
                .checked_sub(first.standing.balance)
                .expect("the balance grew");
            assert_eq!(gained, view.total, "node {i}'s owner gained");
        }
    }
    assert!(no_fees > 0, "every owner ran a bill: no balance to compare");

    // The same view over HTTP, and a limit past what a node keeps refused.
    let client = NodeClient::from_node_dir(&node_dir(dir.path(), 1)).expect("node 1's API");
    let over_http = client.earnings(Some(1)).expect("earnings over HTTP");
    assert_eq!(over_http.node, node_id(&grid, 1));
    assert!(over_http.recent.len() == 1 && over_http.payments > 0);
    match client.earnings(Some(EARNINGS_LIMIT_MAX + 1)) {
        Err(ClientError::Api { code, .. }) => assert_eq!(code, ErrorCode::BadRequest),
        other => panic!("a limit over {EARNINGS_LIMIT_MAX} must be refused: {other:?}"),
    }

    // Stop the grid; provider 2 loses its record and starts again.
    let restarted = node_dir(dir.path(), 2);
    let me = node_id(&grid, 2);
    drop((node, client));
    drop(grid);
    let path = restarted.join(EARNINGS_FILE);
    let kept = Earnings::open(&path, me)
        .expect("the record as the node left it")
        .summary(EARNINGS_LIMIT_MAX as usize)
        .expect("summary");
    assert!(kept.totals.payments > 0);
    std::fs::remove_file(&path).expect("remove the record");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = NodeConfig::resolve(&restarted, None, Settings::default()).expect("config");
    let again = runtime
        .block_on(Node::start(config))
        .expect("provider 2 restarts");
    let view = Service::new(again.inner.clone())
        .earnings(EarningsQuery {
            limit: Some(EARNINGS_LIMIT_MAX),
        })
        .expect("earnings after the restart");
    assert_eq!(view.recorded_height, kept.recorded_height);
    assert_eq!(view.height, kept.recorded_height, "caught up to its tip");
    assert_eq!(
        (view.storage, view.bandwidth, view.payments),
        (
            kept.totals.storage,
            kept.totals.bandwidth,
            kept.totals.payments
        )
    );
    let rebuilt: Vec<_> = view
        .recent
        .iter()
        .map(|p| (p.height, p.bucket, p.amount, p.kind.to_string()))
        .collect();
    let original: Vec<_> = kept
        .recent
        .iter()
        .map(|p| {
            let kind = match p.paid_for {
                PaidFor::Storage => PaymentKind::Storage,
                PaidFor::Bandwidth => PaymentKind::Bandwidth,
                PaidFor::Repair => PaymentKind::Repair,
            };
            (p.height, p.bucket, p.amount, kind.to_string())
        })
        .collect();
    assert_eq!(rebuilt, original);
    runtime.block_on(again.shutdown());
}
