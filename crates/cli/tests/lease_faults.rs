//! Leases when something goes wrong, across `peercloud node` processes: the
//! node running a space is killed mid-lease (it is paid up to its last
//! period proven up, its probers settle the lease, the user gets the rest
//! back, its reputation records it), and a user who disappears after the
//! award (the lease is never left half-open: its node cancels it and the
//! deposit comes back). After each, every running node holds the same state
//! root and the supply is conserved.
//!
//! They need a running Docker engine: without one they say they were
//! skipped, unless `PEERCLOUD_DOCKER=required` (CI sets it), when they fail.

mod common;

use std::time::{Duration, Instant};

use common::{Net, bounded};
use peercloud_api::LeaseView;
use peercloud_client::NodeClient;
use peercloud_client::lease::{self, LeaseAsk};
use peercloud_devnet::spaces;
use peercloud_ledger::TxKind;
use peercloud_types::{AccountId, Amount, LeaseFilters, LeaseId, Resources, Signed, SpaceKind};

/// The leasing node, two probers of other owners and the user's node.
const PROVIDERS: usize = 4;
/// The node that wins (by the request's farmer filter) and is killed.
const VICTIM: usize = 4;
const PERIOD_MS: u64 = 2_000;
/// Bound of each test, devnet startup included.
const LIMIT: Duration = Duration::from_secs(120);

fn ask(farmer: AccountId, periods: u64, activate_within_ms: u64) -> LeaseAsk {
    LeaseAsk {
        kind: SpaceKind::Container,
        resources: Resources {
            cpu_millicores: 250,
            memory_bytes: 32 << 20,
            storage_bytes: 8 << 20,
            ..Resources::default()
        },
        period_ms: PERIOD_MS,
        periods: Some(periods),
        max_price_per_period: Amount::from_tokens(1),
        filters: LeaseFilters {
            farmers: vec![farmer],
            ..LeaseFilters::default()
        },
        offer_window_ms: 2_000,
        activate_within_ms,
        fund_periods: periods,
    }
}

fn wait_for(
    client: &NodeClient,
    lease: &LeaseId,
    timeout: Duration,
    what: &str,
    check: impl Fn(&LeaseView) -> bool,
) -> LeaseView {
    let deadline = Instant::now() + timeout;
    loop {
        let view = client.lease(lease).expect("the lease");
        if check(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "{what}: {view:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The owner of provider `i`.
fn owner_of(net: &Net, i: usize) -> AccountId {
    let view = net.converged(&(0..=PROVIDERS).collect::<Vec<_>>());
    Net::owners(&view)[&net.node_id(i)]
}

#[test]
fn a_node_killed_mid_lease_is_paid_to_its_last_proven_period_and_the_user_gets_the_rest() {
    if !spaces::engine_present() {
        return;
    }
    bounded("lease: node killed mid-lease", LIMIT, || {
        let mut net = Net::up(PROVIDERS, Vec::new());
        let client = net.client(1);
        let farmer = owner_of(&net, VICTIM);
        let opened = lease::open_lease(&client, &net.user, &ask(farmer, 6, 30_000))
            .expect("a lease on the victim");
        assert_eq!(opened.node, net.node_id(VICTIM));
        let up = wait_for(
            &client,
            &opened.lease,
            Duration::from_secs(20),
            "a period paid",
            |v| v.periods_up >= 1,
        );
        let reputation_before = {
            let view = net.converged(&[0, 1, 2, 3]);
            Net::reputation(&view, &opened.node)
        };
        net.devnet.nodes[VICTIM].kill();
        // Its probers settle it once its bill window is over: every period
        // not billed by then counts as down and comes back to the user.
        let settled = wait_for(
            &client,
            &opened.lease,
            Duration::from_secs(75),
            "settled by the probers",
            |v| v.status == "settled",
        );
        assert!(settled.periods_up >= up.periods_up);
        assert!(
            settled.periods_down >= 1,
            "the periods after the kill were down: {settled:#?}"
        );
        assert_eq!(
            settled.paid,
            opened
                .price_per_period
                .checked_mul(u128::from(settled.periods_up))
                .unwrap(),
            "paid exactly the periods proven up"
        );
        assert_eq!(
            settled.paid.checked_add(settled.refunded),
            Some(settled.deposited)
        );
        let view = net.converged(&[0, 1, 2, 3]);
        assert!(
            Net::reputation(&view, &opened.node) < reputation_before,
            "the down periods cost the node reputation"
        );
        spaces::remove_lease_spaces(&[opened.lease]).expect("spaces removed");
    });
}

#[test]
fn a_user_who_vanishes_after_the_award_gets_the_deposit_back() {
    if !spaces::engine_present() {
        return;
    }
    bounded("lease: user vanishes after the award", LIMIT, || {
        let net = Net::up(PROVIDERS, Vec::new());
        let client = net.client(1);
        let user = &net.user;
        let farmer = owner_of(&net, 2);
        let ask = ask(farmer, 5, 3_000);
        // The award, signed and committed; then the user's CLI is gone: it
        // never checks access nor activates.
        let request = lease::request_of(user, &ask);
        let offers: Vec<_> = client
            .lease_offers(&request)
            .expect("bids")
            .offers
            .into_iter()
            .map(|o| o.offer.0)
            .collect();
        assert_eq!(offers.len(), 1, "only the filtered farmer's node bids");
        // A lone bid is paid the reserve: five periods of it.
        let deposit = ask.max_price_per_period.checked_mul(5).unwrap();
        let before = client.account(&user.account_id()).expect("account");
        let tx = Signed::new(
            peercloud_ledger::Tx {
                chain: before.chain,
                nonce: before.next_nonce,
                fee: before.min_fee,
                kind: TxKind::OpenLease {
                    request,
                    offers,
                    deposit,
                },
            },
            user,
        );
        client.submit(&tx, true).expect("the award");
        let lease = LeaseId::derive(&user.account_id(), before.next_nonce);
        let cancelled = wait_for(
            &client,
            &lease,
            Duration::from_secs(30),
            "cancelled by its node",
            |v| v.status == "cancelled",
        );
        assert_eq!(cancelled.refunded, cancelled.deposited);
        assert!(cancelled.paid.is_zero());
        let after = client.account(&user.account_id()).expect("account").balance;
        assert_eq!(
            before.balance.checked_sub(after),
            Some(before.min_fee),
            "only the fee is spent"
        );
        net.converged(&(0..=PROVIDERS).collect::<Vec<_>>());
        spaces::remove_lease_spaces(&[lease]).expect("spaces removed");
    });
}
