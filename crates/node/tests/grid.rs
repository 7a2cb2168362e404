//! The run-once flow on the in-process grid: escrow, payment, refund,
//! replication and output verification, with the real parts.

use peercloud_node::{LocalGrid, PHASES};
use peercloud_types::job::Source;
use peercloud_types::{Amount, ContentId, JobSpec};

fn wordcount_spec() -> JobSpec {
    let mut spec = JobSpec::from_json(peercloud_workloads::WORDCOUNT_SPEC)
        .expect("the embedded wordcount spec parses");
    spec.module = Source::Cid(ContentId::of(peercloud_workloads::WORDCOUNT));
    spec
}

#[test]
fn a_job_pays_the_agreeing_nodes_refunds_the_rest_and_conserves_supply() {
    let dir = tempfile::tempdir().unwrap();
    let mut grid = LocalGrid::start(dir.path(), 4).unwrap();
    let accounts = grid.accounts();
    let total = |g: &LocalGrid| {
        accounts.iter().fold(Amount::ZERO, |acc, (_, id)| {
            let (b, s) = g.holdings(id);
            acc.checked_add(b).unwrap().checked_add(s).unwrap()
        })
    };
    let supply_before = total(&grid);
    let user = grid.user.account_id();
    let (user_before, _) = grid.holdings(&user);

    let spec = wordcount_spec();
    let inputs: Vec<(String, Vec<u8>)> = peercloud_workloads::corpus()
        .iter()
        .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
        .collect();
    let report = grid
        .run_job(&spec, peercloud_workloads::WORDCOUNT, &inputs)
        .unwrap();

    // Two distinct nodes ran it and both were paid their (equal-digest) price.
    assert_eq!(report.nodes.len(), 2);
    assert_ne!(report.nodes[0], report.nodes[1]);
    assert_eq!(report.paid.len(), 2);
    let paid: Amount = report
        .paid
        .iter()
        .fold(Amount::ZERO, |a, (_, p)| a.checked_add(*p).unwrap());
    let escrow = spec.max_price.checked_mul(2).unwrap();
    assert_eq!(
        paid.checked_add(report.refunded).unwrap(),
        escrow,
        "escrow fully accounted for"
    );
    // The user paid exactly the providers plus fees: post, award, settle.
    let (user_after, _) = grid.holdings(&user);
    let fees = peercloud_node::grid::TX_FEE.checked_mul(3).unwrap();
    assert_eq!(
        user_before.checked_sub(user_after).unwrap(),
        paid.checked_add(fees).unwrap()
    );
    assert_eq!(total(&grid), supply_before, "supply conserved");
    grid.state().check_invariants().unwrap();
    assert_eq!(grid.verify_replay().unwrap(), grid.state().state_root());

    // Phases in order, and the output the user got is the real count.
    let names: Vec<&str> = report.phases.iter().map(|(p, _)| *p).collect();
    assert_eq!(names, PHASES);
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
    let grid = LocalGrid::start(dir.path(), 5).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let key = grid.user.clone();
    let receipt = peercloud_store::put_object(
        grid.store(),
        data.as_slice(),
        &key.public(),
        &peercloud_store::PutOptions::default(),
    )
    .unwrap();
    let mut all = receipt.manifest.chunks.clone();
    all.push(receipt.manifest_cid);
    for cid in &all {
        let holders = grid.store().holders(cid);
        assert_eq!(holders.len(), 3);
        let mut owners: Vec<_> = holders.iter().map(|h| h.placement.owner).collect();
        owners.dedup();
        assert_eq!(owners.len(), 3, "distinct owners");
        for h in holders {
            assert!(
                h.store.has(cid).unwrap(),
                "every placed replica holds the chunk"
            );
        }
    }
    // Lose the first replica of every chunk: the object still reads back intact.
    for cid in &all {
        grid.store().holders(cid)[0].store.delete(cid).unwrap();
    }
    let mut back = Vec::new();
    peercloud_store::get_object(
        grid.store(),
        &receipt.manifest_cid,
        &key.x25519_secret(),
        &mut back,
    )
    .unwrap();
    assert_eq!(back, data);
}

#[test]
fn a_job_no_node_can_take_is_refused_with_the_auction_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut grid = LocalGrid::start(dir.path(), 3).unwrap();
    let mut spec = wordcount_spec();
    spec.resources.gpus = 8;
    let err = grid
        .run_job(&spec, peercloud_workloads::WORDCOUNT, &[])
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("needs 2 nodes, 0 acceptable offers"),
        "{text}"
    );
}
