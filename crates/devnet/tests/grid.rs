//! The user-side flow (`peercloud_client::run_job`, the one the CLI drives
//! over HTTP) against the real daemons running in this process: escrow,
//! payment, refund, replication and output verification.

use peercloud_client::{
    ApiStore, Content, JobBundle, NodeApi, Phase, RemoteError, RunOptions, run_job,
};
use peercloud_devnet::amounts::TX_FEE;
use peercloud_devnet::{Grid, InProcessNode};
use peercloud_store::{ChunkInventory, ChunkStore};
use peercloud_types::{Amount, JobSpec};

fn wordcount() -> JobBundle {
    let spec = JobSpec::from_json(peercloud_workloads::WORDCOUNT_SPEC)
        .expect("the embedded wordcount spec parses");
    JobBundle {
        spec,
        module: Content::Bytes(peercloud_workloads::WORDCOUNT.to_vec()),
        inputs: peercloud_workloads::corpus()
            .iter()
            .map(|(n, b)| ((*n).to_owned(), Content::Bytes(b.to_vec())))
            .collect(),
    }
}

fn entry(grid: &Grid) -> InProcessNode {
    grid.node(1).expect("a provider")
}

/// Waits (bounded) until every node has applied the entry node's tip.
fn same_root_everywhere(grid: &Grid) {
    let want = entry(grid).ledger().expect("the entry node's ledger");
    for _ in 0..200 {
        let roots: Vec<_> = (0..grid.len())
            .map(|i| grid.node(i).expect("a node").ledger().expect("its ledger"))
            .collect();
        if roots.iter().all(|l| l.height >= want.height) {
            let at_tip: Vec<_> = roots.iter().filter(|l| l.height == want.height).collect();
            assert!(at_tip.iter().all(|l| l.state_root == want.state_root));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the nodes did not reach height {} in 4 s", want.height);
}

#[test]
fn a_job_pays_the_agreeing_nodes_refunds_the_rest_and_conserves_supply() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let node = entry(&grid);
    let user = grid.user().account_id();
    let before = node.account(&user).unwrap();
    let bundle = wordcount();

    let report = run_job(&node, grid.user(), &bundle, &RunOptions::default()).unwrap();

    // Two distinct nodes ran it and both were paid their (equal-digest) price.
    assert_eq!(report.nodes.len(), 2);
    assert_ne!(report.nodes[0], report.nodes[1]);
    assert_eq!(report.paid.len(), 2);
    let paid = report
        .paid
        .iter()
        .fold(Amount::ZERO, |a, (_, p)| a.checked_add(*p).unwrap());
    let escrow = bundle.spec.max_price.checked_mul(2).unwrap();
    assert_eq!(paid.checked_add(report.refunded).unwrap(), escrow);
    // The user paid exactly the providers plus fees: post, award, settle.
    let after = node.account(&user).unwrap();
    let fees = TX_FEE.checked_mul(3).unwrap();
    assert_eq!(
        before.balance.checked_sub(after.balance).unwrap(),
        paid.checked_add(fees).unwrap()
    );
    let ledger = node.ledger().unwrap();
    assert_eq!(ledger.supply, ledger.accounted, "supply conserved");
    same_root_everywhere(&grid);

    // Phases in order, and the output the user got is the real count.
    let names: Vec<Phase> = report.phases.iter().map(|(p, _)| *p).collect();
    assert_eq!(names, Phase::ALL);
    let (name, counts) = &report.outputs[0];
    assert_eq!(name, "counts.json");
    let counts: serde_json::Value = serde_json::from_slice(counts).unwrap();
    let expected: usize = peercloud_workloads::corpus()
        .iter()
        .map(|(_, b)| {
            String::from_utf8_lossy(b)
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .count()
        })
        .sum();
    assert_eq!(counts["total_words"].as_u64().unwrap() as usize, expected);
}

#[test]
fn every_chunk_lands_on_three_distinct_owners_and_survives_a_lost_replica() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 5).unwrap();
    let store = ApiStore::new(entry(&grid));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let key = grid.user().clone();
    let receipt = peercloud_store::put_object(
        &store,
        data.as_slice(),
        &key.public(),
        &peercloud_store::PutOptions::default(),
    )
    .unwrap();
    let mut all = receipt.manifest.chunks.clone();
    all.push(receipt.manifest_cid);
    let nodes: Vec<InProcessNode> = (0..grid.len()).map(|i| grid.node(i).unwrap()).collect();
    for cid in &all {
        let holders: Vec<&InProcessNode> = nodes
            .iter()
            .filter(|n| n.service().inner().store.has(cid).unwrap())
            .collect();
        assert_eq!(holders.len(), 3, "{cid} on three nodes");
        let mut owners: Vec<_> = holders
            .iter()
            .map(|h| h.service().inner().owner_key.account_id())
            .collect();
        owners.sort();
        owners.dedup();
        assert_eq!(owners.len(), 3, "distinct owners");
    }
    // Lose one replica of every chunk: the object still reads back intact.
    for cid in &all {
        let holder = nodes
            .iter()
            .find(|n| n.service().inner().store.has(cid).unwrap())
            .unwrap();
        holder.service().inner().store.delete(cid).unwrap();
    }
    let mut back = Vec::new();
    peercloud_store::get_object(
        &store,
        &receipt.manifest_cid,
        &key.x25519_secret(),
        &mut back,
    )
    .unwrap();
    assert_eq!(back, data);
}

#[test]
fn a_job_no_node_can_take_is_cancelled_with_the_auction_figures_and_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let node = entry(&grid);
    let user = grid.user().account_id();
    let before = node.account(&user).unwrap();
    let mut bundle = wordcount();
    bundle.spec.resources.gpus = 8;
    let err = run_job(&node, grid.user(), &bundle, &RunOptions::default()).unwrap_err();
    let RemoteError::NoMatch {
        wanted, acceptable, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((*wanted, *acceptable), (2, 0), "{err}");
    assert!(
        err.to_string().contains("gpu"),
        "the declines say why: {err}"
    );
    // Only the fees of PostJob and CancelJob are gone; the escrow came back.
    let after = node.account(&user).unwrap();
    assert_eq!(
        before.balance.checked_sub(after.balance).unwrap(),
        TX_FEE.checked_mul(2).unwrap()
    );
}

#[test]
fn a_transaction_signed_for_one_network_is_refused_on_another() {
    let user = peercloud_types::Keypair::generate();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Grid::start_for(dir_a.path(), 1, user.clone()).unwrap();
    let b = Grid::start_for(dir_b.path(), 1, user.clone()).unwrap();
    let (node_a, node_b) = (entry(&a), entry(&b));
    let to = peercloud_types::Keypair::generate().account_id();
    let account = node_a.account(&user.account_id()).unwrap();
    assert_ne!(
        account.chain,
        node_b.account(&user.account_id()).unwrap().chain
    );
    let tx = peercloud_types::Signed::new(
        peercloud_ledger::Tx {
            chain: account.chain,
            nonce: account.next_nonce,
            fee: account.min_fee,
            kind: peercloud_ledger::TxKind::Transfer {
                to,
                amount: Amount::from_tokens(1),
            },
        },
        &user,
    );
    let before_b = node_b.account(&user.account_id()).unwrap();
    let err = node_b.submit(&tx, true).unwrap_err();
    assert_eq!(
        err.api_code(),
        Some(peercloud_api::ErrorCode::TxRefused),
        "{err}"
    );
    assert!(err.to_string().contains("for chain"), "{err}");
    assert_eq!(
        node_b.account(&user.account_id()).unwrap().balance,
        before_b.balance,
        "nothing moved on the other network"
    );
    // On its own network it applies.
    node_a.submit(&tx, true).unwrap();
    assert_eq!(node_a.account(&to).unwrap().balance, Amount::from_tokens(1));
}

/// Polls (bounded) until `job` is closed on `node`'s ledger.
fn closed_within(
    node: &InProcessNode,
    job: &peercloud_types::JobId,
    bound: std::time::Duration,
) -> peercloud_api::JobView {
    let started = std::time::Instant::now();
    loop {
        let view = node
            .job(job, peercloud_api::WaitQuery::past(0, 200))
            .expect("the job view");
        if view.state.is_closed() || started.elapsed() > bound {
            return view;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn jobs_their_poster_abandons_are_closed_by_the_nodes_and_refunded() {
    use peercloud_client::submit_signed;
    use peercloud_ledger::{JobState, TxKind};
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let node = entry(&grid);
    let user = grid.user().clone();
    let mut spec = wordcount().spec;
    spec.deadline_secs = 2;
    let post = |spec: &JobSpec| {
        let nonce = node.account(&user.account_id()).unwrap().next_nonce;
        let deadline_ms = peercloud_types::clock::now_ms() + spec.deadline_secs * 1_000;
        submit_signed(
            &node,
            &user,
            TxKind::PostJob {
                spec_digest: spec.digest(),
                redundancy: spec.redundancy,
                max_price_per_node: spec.max_price,
                deadline_ms,
            },
            true,
        )
        .unwrap();
        peercloud_types::JobId::derive(&user.account_id(), nonce)
    };
    let before = node.account(&user.account_id()).unwrap().balance;

    // Posted, then the poster vanished: never awarded.
    let unawarded = post(&spec);
    // Posted and awarded, then the poster vanished: never dispatched.
    let awarded = post(&spec);
    let offers = node
        .offers(
            &awarded,
            &peercloud_api::OffersRequest {
                spec: spec.clone(),
                window_ms: 2_000,
                enough: 0,
            },
        )
        .unwrap();
    let candidates: Vec<_> = offers
        .offers
        .into_iter()
        .map(|o| peercloud_market::Candidate {
            offer: o.offer.0,
            reputation: o.reputation,
        })
        .collect();
    let chosen = peercloud_market::select(
        &candidates,
        2,
        spec.max_price,
        peercloud_types::clock::now_ms(),
    )
    .unwrap();
    let offers = chosen.into_iter().map(|c| c.offer).collect();
    submit_signed(
        &node,
        &user,
        TxKind::AwardJob {
            job: awarded,
            offers,
        },
        true,
    )
    .unwrap();

    let bound = std::time::Duration::from_secs(20);
    for job in [unawarded, awarded] {
        let view = closed_within(&node, &job, bound);
        assert_eq!(view.state, JobState::Expired, "{job}: {view:?}");
        assert_eq!(view.escrow_released, view.escrow_locked);
    }
    // The user paid only the fees of its own transactions: two posts, one award.
    let after = node.account(&user.account_id()).unwrap().balance;
    assert_eq!(
        before.checked_sub(after).unwrap(),
        TX_FEE.checked_mul(3).unwrap()
    );
    // Closing again is harmless: it is already closed.
    let view = peercloud_client::close_job(&node, &user, &awarded).unwrap();
    assert_eq!(view.state, JobState::Expired);
}

#[test]
fn a_dispatch_for_a_job_the_ledger_does_not_know_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 2).unwrap();
    let node = entry(&grid);
    let provider = grid.node(2).unwrap().ledger().unwrap().nodes[0].node;
    let object = peercloud_api::ObjectRef {
        name: "job.wasm".into(),
        cid: peercloud_types::ContentId::of(b"no such object"),
    };
    let request = peercloud_api::DispatchRequest {
        spec: wordcount().spec,
        module: object,
        inputs: Vec::new(),
        nodes: vec![peercloud_api::NodeKeys {
            node: provider,
            module_key: peercloud_api::HexBytes(vec![0; 80]),
            input_keys: Vec::new(),
        }],
    };
    let job = peercloud_types::JobId::derive(&grid.user().account_id(), 9_999);
    let started = std::time::Instant::now();
    let answer = node.dispatch(&job, &request).unwrap();
    let result = &answer.results[0];
    let text = format!("{result:?}");
    assert!(text.contains("no job") && text.contains("ledger"), "{text}");
    // Not the 10 s an award may take to arrive: a job never posted gets no wait.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused after {:?}",
        started.elapsed()
    );
}

/// Each node's reputation on `node`'s ledger.
fn reputations(node: &InProcessNode) -> std::collections::BTreeMap<peercloud_types::NodeId, u32> {
    node.ledger()
        .expect("the ledger view")
        .nodes
        .iter()
        .map(|n| (n.node, n.reputation))
        .collect()
}

#[test]
fn a_module_that_runs_out_of_fuel_on_every_node_is_a_paid_result() {
    use peercloud_ledger::JobState;
    use peercloud_ledger::genesis::REPUTATION_REWARD;
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let node = entry(&grid);
    let user = grid.user().account_id();
    let before = node.account(&user).unwrap();
    let reputation_before = reputations(&node);
    let mut bundle = wordcount();
    bundle.spec.limits.fuel = 1_000;

    let err = run_job(&node, grid.user(), &bundle, &RunOptions::default()).unwrap_err();

    let text = err.to_string();
    let RemoteError::Failed(failed) = err else {
        panic!("expected the agreed failure, got {text}");
    };
    let peercloud_client::FailedJob {
        job,
        agreeing,
        redundancy,
        paid,
        refunded,
        failure,
        ..
    } = *failed;
    assert_eq!((agreeing, redundancy), (2, 2), "{text}");
    assert!(failure.starts_with("out of fuel"), "{failure}");
    assert!(text.contains(&job.to_string()), "the job is named: {text}");
    // Settled: both nodes paid their price, the rest refunded.
    let view = node.job(&job, peercloud_api::WaitQuery::NOW).unwrap();
    assert_eq!(view.state, JobState::Settled);
    assert!(view.agreed.is_some());
    assert_eq!(paid.len(), 2);
    let paid_total = paid
        .iter()
        .fold(Amount::ZERO, |a, (_, p)| a.checked_add(*p).unwrap());
    for (award, (paid_node, price)) in view.awards.iter().zip(&paid) {
        assert_eq!((award.node, award.price), (*paid_node, *price));
    }
    let escrow = bundle.spec.max_price.checked_mul(2).unwrap();
    assert_eq!(paid_total.checked_add(refunded).unwrap(), escrow);
    // The user paid the providers plus its fees: post, award, settle.
    let after = node.account(&user).unwrap();
    assert_eq!(
        before.balance.checked_sub(after.balance).unwrap(),
        paid_total
            .checked_add(TX_FEE.checked_mul(3).unwrap())
            .unwrap()
    );
    // Agreeing on the failure is agreeing: no reputation is lost.
    let reputation_after = reputations(&node);
    for award in &view.awards {
        assert_eq!(
            reputation_after[&award.node],
            reputation_before[&award.node] + REPUTATION_REWARD,
            "{}",
            award.node
        );
    }
    let ledger = node.ledger().unwrap();
    assert_eq!(ledger.supply, ledger.accounted, "supply conserved");
}

/// A WASI command that spins forever: with fuel to spare, every node stops
/// it at its wall-time limit, which is the node's clock, not a result.
const SPIN_FOREVER: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $spin (br $spin))))"#;

#[test]
fn a_job_every_node_withdraws_from_expires_long_before_its_deadline_and_is_refunded() {
    use peercloud_ledger::JobState;
    use peercloud_ledger::genesis::REPUTATION_PENALTY_WITHDRAWN;
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let node = entry(&grid);
    let user = grid.user().account_id();
    let before = node.account(&user).unwrap();
    let reputation_before = reputations(&node);
    let mut bundle = wordcount();
    bundle.module = Content::Bytes(SPIN_FOREVER.as_bytes().to_vec());
    // Fuel no node burns in 100 ms (the price grows with it).
    bundle.spec.limits.fuel = 100_000_000_000;
    bundle.spec.max_price = Amount::from_tokens(1);
    bundle.spec.limits.wall_time_ms = 100;
    assert_eq!(bundle.spec.deadline_secs, 600, "the default deadline");

    let err = run_job(&node, grid.user(), &bundle, &RunOptions::default()).unwrap_err();

    let text = err.to_string();
    let RemoteError::NoResult {
        job, state, why, ..
    } = err
    else {
        panic!("expected no result, got {text}");
    };
    let view = node.job(&job, peercloud_api::WaitQuery::NOW).unwrap();
    // Closed with ten minutes of its deadline still to go: the ledger lets
    // a job expire early only once no majority can form.
    assert!(
        peercloud_types::clock::now_ms() < view.deadline_ms,
        "the job ended before its deadline"
    );
    assert_eq!((state, view.state), (JobState::Expired, JobState::Expired));
    assert!(text.contains(&job.to_string()), "the job is named: {text}");
    assert!(
        why.contains("wall time"),
        "each node's error is named: {why}"
    );
    assert_eq!(view.escrow_released, view.escrow_locked);
    assert!(
        view.awards
            .iter()
            .all(|a| a.withdrawn && a.digest.is_none())
    );
    // Only the fees of PostJob, AwardJob and ExpireJob are gone.
    let after = node.account(&user).unwrap();
    assert_eq!(
        before.balance.checked_sub(after.balance).unwrap(),
        TX_FEE.checked_mul(3).unwrap()
    );
    // A withdrawal costs the node less than a missing result would.
    let reputation_after = reputations(&node);
    for award in &view.awards {
        assert_eq!(
            reputation_after[&award.node],
            reputation_before[&award.node] - REPUTATION_PENALTY_WITHDRAWN,
            "{}",
            award.node
        );
    }
    let ledger = node.ledger().unwrap();
    assert_eq!(ledger.supply, ledger.accounted, "supply conserved");
}
