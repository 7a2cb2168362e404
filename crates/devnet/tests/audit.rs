//! Proof-of-storage audits across the daemons of an in-process grid: the
//! validator, which holds none of the chunk, audits each of its three holders
//! over the chunk protocol and checks their proofs against the CID. Each
//! honest holder passes; a holder whose copy had a byte flipped fails as
//! corrupt and one whose copy was deleted fails as missing, each naming the
//! holder; a holder is never asked to prove what the auditor has not
//! challenged, and the auditor's answer never depends on a holder's word.

mod common;

use common::*;

use peercloud_devnet::Grid;
use peercloud_node::daemon::{AuditFailure, AuditOutcome, NetStore};
use peercloud_store::audit::{AUDIT_PROOF_BYTES_MAX, AuditError};
use peercloud_store::testing::Tamper;
use peercloud_store::{ChunkInventory, ChunkStore};
use peercloud_types::{ContentId, Hash32};

/// `len` bytes of a fixed pseudo-random pattern (a sealed chunk looks random).
fn sealed_like(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// The validator audits holder `i` under `seed`.
fn audit(grid: &Grid, i: usize, cid: ContentId, len: u64, seed: &Hash32) -> AuditOutcome {
    grid.runtime()
        .block_on(inner(grid, 0).audit(&node_id(grid, i), cid, len, seed))
        .expect("the holder answers")
}

#[test]
fn holders_prove_their_chunks_and_a_flipped_or_deleted_copy_fails_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let bytes = sealed_like((1 << 20) + 16);
    let cid = ContentId::of(&bytes);
    let len = bytes.len() as u64;
    NetStore::new(inner(&grid, 1), grid.runtime())
        .put(&cid, &bytes)
        .unwrap();
    let holders: Vec<usize> = (0..grid.len())
        .filter(|&i| inner(&grid, i).store.has(&cid).unwrap())
        .collect();
    assert_eq!(
        holders,
        vec![1, 2, 3],
        "three copies, none on the validator"
    );

    // Every holder passes, under several seeds (other leaves each time).
    for seed in (0..3u64).map(|n| Hash32::of(&n.to_le_bytes())) {
        for &i in &holders {
            match audit(&grid, i, cid, len, &seed) {
                AuditOutcome::Passed { proof_bytes } => {
                    assert!(proof_bytes <= AUDIT_PROOF_BYTES_MAX + 64, "{proof_bytes}")
                }
                failed => panic!("honest holder {i} failed: {failed:?}"),
            }
        }
    }

    // One byte flipped behind holder 2's store: it fails as corrupt.
    let seed = Hash32::of(b"after the damage");
    inner(&grid, 2).store.tamper(&cid);
    match audit(&grid, 2, cid, len, &seed) {
        AuditOutcome::Failed(AuditFailure::Corrupt { node, cid: c, .. }) => {
            assert_eq!((node, c), (node_id(&grid, 2), cid));
        }
        other => panic!("a flipped copy must fail as corrupt: {other:?}"),
    }

    // Holder 3 deletes its copy: it fails as missing.
    assert!(inner(&grid, 3).store.delete(&cid).unwrap());
    let outcome = audit(&grid, 3, cid, len, &seed);
    match &outcome {
        AuditOutcome::Failed(failure @ AuditFailure::Missing { node, .. }) => {
            assert_eq!(*node, node_id(&grid, 3));
            assert!(failure.to_string().contains(&cid.to_string()), "{failure}");
        }
        other => panic!("a deleted copy must fail as missing: {other:?}"),
    }
    assert!(!outcome.passed());

    // Holder 1 is untouched and still passes; so does a node auditing itself.
    assert!(audit(&grid, 1, cid, len, &seed).passed());
    let own = grid
        .runtime()
        .block_on(inner(&grid, 1).audit(&node_id(&grid, 1), cid, len, &seed))
        .unwrap();
    assert!(own.passed(), "{own:?}");

    // The length is the auditor's, never the holder's: audited for a length
    // the chunk does not have, even an honest holder's proof fails, by name.
    match audit(&grid, 1, cid, len + 1, &seed) {
        AuditOutcome::Failed(AuditFailure::BadProof {
            error: AuditError::WrongLength {
                expected, proved, ..
            },
            ..
        }) => assert_eq!((expected, proved), (len + 1, len)),
        other => panic!("a proof of another length must fail: {other:?}"),
    }
}
