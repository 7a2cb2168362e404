//! Container leases across real daemons (an in-process grid on the real
//! Docker engine): a request gathers sealed bids from every provider, the
//! award is signed, the space answers the access check and only then is
//! the lease activated; the user's commands run in it; the other nodes
//! probe it every period and the provider is paid only for periods they
//! saw up; a space that stops is started again by its node; an early close gives the unused part back at once; a space that
//! hangs under a running node is not paid for; every node ends on the same
//! state root with supply conserved.
//!
//! They need a running Docker engine: without one they say they were
//! skipped, unless `PEERCLOUD_DOCKER=required` (CI sets it), when they fail.

mod common;

use std::time::{Duration, Instant};

use common::*;
use peercloud_client::NodeApi;
use peercloud_client::lease::{self, LeaseAsk, LeaseOpened};
use peercloud_devnet::{Grid, InProcessNode, spaces};
use peercloud_space::{ContainerEngine, container_name, lease_space_name};
use peercloud_types::{Amount, LeaseFilters, Resources, SpaceKind};

/// Enough for the leasing node and two probers of other owners, and one more.
const PROVIDERS: usize = 4;
const PERIOD_MS: u64 = 2_000;

fn ask(periods: Option<u64>) -> LeaseAsk {
    LeaseAsk {
        kind: SpaceKind::Container,
        resources: Resources {
            cpu_millicores: 250,
            memory_bytes: 32 << 20,
            storage_bytes: 8 << 20,
            ..Resources::default()
        },
        period_ms: PERIOD_MS,
        periods,
        max_price_per_period: Amount::from_tokens(1),
        filters: LeaseFilters::default(),
        offer_window_ms: 1_500,
        activate_within_ms: 30_000,
        fund_periods: 10,
    }
}

fn open(grid: &Grid, node: &InProcessNode, periods: Option<u64>) -> LeaseOpened {
    lease::open_lease(node, grid.user(), &ask(periods)).expect("a lease opened and verified")
}

/// Waits (at most `timeout`) until `check` holds of the lease's view.
fn wait_for(
    node: &InProcessNode,
    opened: &LeaseOpened,
    timeout: Duration,
    what: &str,
    check: impl Fn(&peercloud_api::LeaseView) -> bool,
) -> peercloud_api::LeaseView {
    let deadline = Instant::now() + timeout;
    loop {
        let view = node.lease(&opened.lease).expect("the lease");
        if check(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "{what}: {view:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_container_lease_is_awarded_verified_paid_per_proven_period_and_refunded_on_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), PROVIDERS).expect("a grid");
    if !spaces::engine_present() {
        return;
    }
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let before = node.account(&user.account_id()).expect("account").balance;
    let opened = open(&grid, &node, Some(30));
    assert_eq!(opened.bids, PROVIDERS, "every provider bid");
    let view = node.lease(&opened.lease).expect("the lease");
    assert_eq!(view.status, "active");
    assert_eq!(
        view.deposited,
        opened.price_per_period.checked_mul(30).unwrap()
    );

    // The user's commands run in the space, as nobody, with the lease's limits.
    let out = lease::run(
        &node,
        user,
        opened.lease,
        vec![
            "sh".into(),
            "-c".into(),
            "id -u; echo hi > /data/f; cat /data/f".into(),
        ],
        Vec::new(),
    )
    .expect("a command");
    assert_eq!(
        (
            out.exit_code,
            String::from_utf8_lossy(&out.stdout.0).as_ref()
        ),
        (0, "65534\nhi\n")
    );
    // Someone else's signature runs nothing.
    let stranger = peercloud_types::Keypair::generate();
    let refused = lease::run(
        &node,
        &stranger,
        opened.lease,
        vec!["true".into()],
        Vec::new(),
    );
    assert!(refused.is_err(), "a stranger's command ran");

    // Probers see the space up; the node is paid period by period.
    let paid = wait_for(
        &node,
        &opened,
        Duration::from_secs(20),
        "three periods paid",
        |v| v.periods_up >= 3,
    );
    assert_eq!(paid.periods_down, 0, "an up space was billed as down");
    assert_eq!(
        paid.paid,
        opened
            .price_per_period
            .checked_mul(u128::from(paid.periods_up))
            .unwrap()
    );

    // A space that stops (a crash, a reboot) is started again by its node.
    let space = grid.runtime().block_on(async {
        let engine = ContainerEngine::connect().await.expect("engine");
        let spaces = engine.list().await.expect("spaces");
        let space = spaces
            .into_iter()
            .find(|s| s.name == lease_space_name(&opened.lease))
            .expect("the lease's space");
        engine.stop(&space).await.expect("stopped");
        space
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = grid.runtime().block_on(async {
            let engine = ContainerEngine::connect().await.expect("engine");
            engine.state(&space).await.expect("state")
        });
        if state == peercloud_space::SpaceState::Running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the space was not started again: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // It answers again (its /data lives in memory: a stop empties it).
    let again = vec![
        "sh".into(),
        "-c".into(),
        "echo back > /data/g && cat /data/g".into(),
    ];
    let out = lease::run(&node, user, opened.lease, again, Vec::new())
        .expect("a command after the restart");
    assert_eq!(String::from_utf8_lossy(&out.stdout.0), "back\n");

    // An early close gives back all but the periods not billed yet at once;
    // the node bills those, and the lease ends holding nothing.
    lease::close(&node, user, opened.lease).expect("close");
    let closed = node.lease(&opened.lease).expect("the lease");
    assert_eq!(closed.status, "closed");
    let done = wait_for(
        &node,
        &opened,
        Duration::from_secs(20),
        "the last periods billed",
        |v| v.held.is_zero(),
    );
    assert_eq!(done.paid.checked_add(done.refunded), Some(done.deposited));
    let used = done.periods_billed;
    assert!(used < 30, "a close after {used} periods");
    let after = node.account(&user.account_id()).expect("account").balance;
    let spent = before.checked_sub(after).expect("the user spent");
    // What the user is out: what the node was paid, and its fees (tiny).
    assert!(spent >= done.paid && spent < done.paid.checked_add(Amount::from_tokens(1)).unwrap());
    assert_nodes_agree(&grid);
    spaces::remove_lease_spaces(&[opened.lease]).expect("spaces removed");
}

#[test]
fn a_space_that_dies_under_a_running_node_is_not_paid_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), PROVIDERS).expect("a grid");
    if !spaces::engine_present() {
        return;
    }
    let node = grid.node(2).expect("node 2");
    let opened = open(&grid, &node, None);
    let leasing = (1..grid.len())
        .find(|i| node_id(&grid, *i) == opened.node)
        .expect("the leasing node is in the grid");
    let reputation = || {
        inner(&grid, leasing)
            .chain()
            .state()
            .node(&opened.node)
            .expect("registered")
            .reputation
    };
    wait_for(
        &node,
        &opened,
        Duration::from_secs(20),
        "a period paid",
        |v| v.periods_up >= 1,
    );
    let before = reputation();
    // The container hangs (frozen: it still "runs", so its node does not
    // restart it); the node runs on and keeps billing, but the probes no
    // longer get an answer through the space: its periods are credited back.
    let name = container_name(&lease_space_name(&opened.lease));
    let paused = std::process::Command::new("docker")
        .args(["pause", &name])
        .status()
        .expect("docker pause");
    assert!(paused.success(), "docker pause {name}");
    let view = wait_for(
        &node,
        &opened,
        Duration::from_secs(30),
        "two periods credited",
        |v| v.periods_down >= 2,
    );
    assert!(view.refunded >= opened.price_per_period.checked_mul(2).unwrap());
    assert!(reputation() < before, "the down periods cost reputation");
    // And the ledger says why, to anyone who asks.
    let ledger = node.ledger().expect("the ledger");
    let view = ledger
        .nodes
        .iter()
        .find(|n| n.node == opened.node)
        .expect("the leasing node");
    let down = view
        .reputation_explained
        .iter()
        .find(|l| l.reason == peercloud_ledger::ReputationReason::LeasePeriodDown.name())
        .expect("a line for lease periods down");
    assert!(
        down.count >= 2 && down.total == down.weight * down.count as i64,
        "{down:?}"
    );
    lease::close(&node, grid.user(), opened.lease).expect("close");
    assert_nodes_agree(&grid);
    let _ = std::process::Command::new("docker")
        .args(["unpause", &name])
        .status();
    spaces::remove_lease_spaces(&[opened.lease]).expect("spaces removed");
}
