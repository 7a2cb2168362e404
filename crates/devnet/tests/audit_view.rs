//! A farmer sees each audit of its node and its outcome, across real
//! daemons (an in-process grid of eight providers keeping RS(4+2)): after a
//! put, the members' own audit rounds show in a holder's earnings view as
//! proofs it sent, naming the piece and the member that asked. Then a
//! piece goes bad behind the holder's store: its view shows the corrupt
//! answers, and once the ledger judges it, the reports of it (who, which
//! piece, which epoch) and the judgement with the stake it lost.

mod common;

use common::*;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use peercloud_api::{AuditAnswerKind, EARNINGS_LIMIT_MAX, EarningsView};
use peercloud_client::{NodeApi, bucket};
use peercloud_devnet::Grid;
use peercloud_devnet::amounts::cluster_terms;
use peercloud_node::daemon::REPAIR_INTERVAL;
use peercloud_store::testing::Tamper;
use peercloud_types::{Keypair, NodeId};

const PROVIDERS: usize = 8;
/// The most the test waits for audits, reports or a judgement.
const WAIT: Duration = Duration::from_secs(60);

fn view(grid: &Grid, i: usize) -> EarningsView {
    grid.node(i)
        .expect("a node of the grid")
        .earnings(Some(EARNINGS_LIMIT_MAX))
        .expect("earnings")
}

/// Polls node `i`'s view until `done` holds for it.
fn wait_for(
    grid: &Grid,
    i: usize,
    what: &str,
    done: impl Fn(&EarningsView) -> bool,
) -> EarningsView {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = view(grid, i);
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "node {i}: {what} not seen in {WAIT:?}: {:?}",
            view.audits
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_holder_sees_the_audits_it_answered_and_the_reports_and_judgement_of_a_bad_piece() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terms = cluster_terms(PROVIDERS);
    // Audit epochs are billing periods: a few seconds here.
    terms.billing_period_ms = 4_000;
    let grid = Grid::start_with_terms(dir.path(), PROVIDERS, Keypair::generate(), |_, _| {}, terms)
        .expect("a grid of eight providers");
    let node = grid.node(1).expect("node 1");
    let bucket = funded_bucket(&grid, &node, 50);
    let data = content(8 << 20, 3);
    let put = bucket::put(&node, grid.user(), &bucket, "data.bin", &data[..]).expect("put");
    let members: BTreeSet<NodeId> = (1..=PROVIDERS).map(|i| node_id(&grid, i)).collect();

    // A data piece held by a provider other than node 1: its holder.
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

    // The members' audit rounds: the holder proved its piece to a member.
    let proved = |v: &EarningsView| {
        v.audits.recent.iter().any(|a| {
            a.cid == cid
                && a.outcome == AuditAnswerKind::Proved
                && a.auditor.is_some_and(|n| members.contains(&n))
        })
    };
    let before = wait_for(&grid, victim, "a proof of its piece", proved);
    let counts = before.audits.answered;
    assert!(counts.passed() > 0, "{counts:?}");
    // Its piece, sound, is proved every time it is asked.
    assert!(
        before
            .audits
            .recent
            .iter()
            .filter(|a| a.cid == cid)
            .all(|a| a.outcome == AuditAnswerKind::Proved),
        "a sound piece is answered with a proof: {:?}",
        before.audits.recent
    );
    assert_eq!(before.audits.reports_total, 0);
    assert!(before.audits.reports.is_empty() && before.audits.judgements.is_empty());
    // Let every piece be proved once (the repairers remember who proved what).
    std::thread::sleep(REPAIR_INTERVAL * 2 + Duration::from_millis(500));

    // The piece goes bad behind the holder's store.
    inner(&grid, victim).store.tamper(&cid);

    // Judged on the ledger: the view shows the answers, reports, judgement.
    let judged = wait_for(&grid, victim, "a judgement", |v| {
        !v.audits.judgements.is_empty()
    });
    let audits = &judged.audits;
    assert!(
        audits
            .recent
            .iter()
            .any(|a| a.cid == cid && a.outcome == AuditAnswerKind::Corrupt),
        "the corrupt answers are listed: {:?}",
        audits.recent
    );
    assert!(audits.answered.corrupt > 0);
    assert!(audits.answered.proved >= counts.proved, "counts only grow");
    assert!(
        audits.reports_total >= 2,
        "two owners' auditors reported it"
    );
    let reporters: BTreeSet<NodeId> = audits.reports.iter().map(|r| r.auditor).collect();
    assert!(
        reporters.len() >= 2,
        "distinct auditors: {:?}",
        audits.reports
    );
    for report in &audits.reports {
        assert_eq!(report.cluster, grid.cluster());
        assert_eq!(report.cid, cid, "the report names the bad piece");
        assert!(report.auditor != victim_id && members.contains(&report.auditor));
    }
    assert_eq!(audits.judgements_total, 1);
    let judgement = audits.judgements[0];
    assert_eq!(judgement.cluster, grid.cluster());
    assert!(!judgement.slashed.is_zero(), "a judgement slashes");
    assert!(
        audits
            .reports
            .iter()
            .any(|r| r.epoch == judgement.epoch && r.height <= judgement.height),
        "judged on reports of its epoch"
    );
    // The other members see no reports of themselves.
    let witness = (1..=PROVIDERS)
        .find(|&i| i != victim && !reporters.contains(&node_id(&grid, i)))
        .unwrap_or(if victim == 1 { 2 } else { 1 });
    assert_eq!(view(&grid, witness).audits.reports_total, 0);
}
