//! Chunks on the network, against the real daemons of an in-process grid:
//! a holder takes a chunk only from a registered node, only when placement
//! gives it the chunk and only within the storage it offers; unstaked nodes
//! hold nothing; a chunk lost from a holder is written again by the next
//! put; a failed object put releases what it placed, and only a node that
//! put a chunk can release it; a chunk bad on every holder is corrupt, not
//! missing.

mod common;

use common::*;

use std::io::Read;
use std::time::{Duration, Instant};

use peercloud_api::ErrorCode;
use peercloud_client::{ApiStore, ClientError, NodeApi, NodeClient, submit_signed};
use peercloud_devnet::{Grid, node_dir};
use peercloud_ledger::TxKind;
use peercloud_node::daemon::{AskError, NetStore};
use peercloud_store::testing::Tamper;
use peercloud_store::{
    ChunkInventory, ChunkPutters, ChunkStore, PlacementNode, PutOptions, REPLICAS_DEFAULT,
    StoreError, place, put_object,
};
use peercloud_types::{Amount, ContentId};

/// `len` bytes that differ for each `tag`.
fn blob(tag: u32, len: usize) -> Vec<u8> {
    let seed = tag.to_le_bytes();
    (0..len).map(|i| seed[i % 4] ^ (i / 4) as u8).collect()
}

/// The registered nodes as node 1 sees them, for computing placements.
fn placement_nodes(grid: &Grid) -> Vec<PlacementNode> {
    grid.node(1)
        .expect("a provider")
        .ledger()
        .expect("its ledger")
        .nodes
        .iter()
        .map(|n| PlacementNode::new(n.node, n.owner))
        .collect()
}

/// The refusal code of a failed ask.
fn refusal_code(outcome: Result<(), AskError>) -> ErrorCode {
    match outcome {
        Err(AskError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn holders_take_only_placed_chunks_from_registered_nodes_within_their_quota() {
    const QUOTA_BYTES: u64 = 64 << 10;
    const CHUNK_BYTES: usize = 20 << 10;
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start_with(
        dir.path(),
        4,
        peercloud_types::Keypair::generate(),
        |index, settings| {
            if index == 4 {
                settings.storage_bytes = Some(QUOTA_BYTES);
            }
        },
    )
    .unwrap();
    let rt = grid.runtime();
    let entry = NetStore::new(inner(&grid, 1), rt.clone());
    let (small, small_id) = (inner(&grid, 4), node_id(&grid, 4));

    // An unregistered node (the validator) cannot store anything anywhere.
    let bytes = blob(0, 1000);
    let cid = ContentId::of(&bytes);
    let code = refusal_code(rt.block_on(inner(&grid, 0).put_chunk_to(
        &node_id(&grid, 1),
        cid,
        bytes.clone(),
        None,
    )));
    assert_eq!(code, ErrorCode::NotRegistered);
    assert!(
        holders(&grid, &cid).is_empty(),
        "a refused put stores nothing"
    );

    // Chunks whose placement picks the small node: it takes what fits, and
    // the rest fall through to the next candidate, three copies each.
    let nodes = placement_nodes(&grid);
    let picked: Vec<Vec<u8>> = (1..)
        .map(|tag| blob(tag, CHUNK_BYTES))
        .filter(|b| {
            place(&ContentId::of(b), &nodes, REPLICAS_DEFAULT as usize)
                .iter()
                .any(|p| p.node == small_id)
        })
        .take(5)
        .collect();
    for bytes in &picked {
        entry.put(&ContentId::of(bytes), bytes).unwrap();
    }
    let fits = (QUOTA_BYTES / CHUNK_BYTES as u64) as usize;
    let on_small = picked
        .iter()
        .filter(|b| small.store.has(&ContentId::of(b)).unwrap())
        .count();
    assert_eq!(on_small, fits, "the small node took what fits, no more");
    assert!(small.store.used_bytes().unwrap() <= QUOTA_BYTES);
    for bytes in &picked {
        let cid = ContentId::of(bytes);
        assert_eq!(holders(&grid, &cid).len(), 3, "three copies of {cid}");
        assert_eq!(entry.get(&cid).unwrap(), *bytes);
    }
    // Asked directly, the full node says why.
    let more = blob(1_000, CHUNK_BYTES);
    let code = refusal_code(rt.block_on(inner(&grid, 1).put_chunk_to(
        &small_id,
        ContentId::of(&more),
        more.clone(),
        None,
    )));
    assert_eq!(code, ErrorCode::StorageFull);

    // A node whose owner unstakes is no longer a placement candidate: new
    // chunks never land on it, and it refuses them when asked. (The chunks
    // are small: the small node has 4 KiB left.)
    let (leaver, leaver_id) = (inner(&grid, 3), node_id(&grid, 3));
    let owner = leaver.owner_key.clone();
    let client = grid.node(3).unwrap();
    let stake = client.account(&owner.account_id()).unwrap().stake;
    submit_signed(&client, &owner, TxKind::Unstake { amount: stake }, true).unwrap();
    wait_until("every node sees the owner unstaked", || {
        (0..grid.len()).all(|i| {
            grid.node(i)
                .unwrap()
                .account(&owner.account_id())
                .is_ok_and(|a| a.stake == Amount::ZERO)
        })
    });
    for tag in 2_000..2_010 {
        let bytes = blob(tag, 300);
        let cid = ContentId::of(&bytes);
        entry.put(&cid, &bytes).unwrap();
        let held = holders(&grid, &cid);
        assert_eq!(held.len(), 3, "three staked nodes hold {cid}");
        assert!(!held.contains(&3), "the unstaked node holds nothing new");
    }
    let bytes = blob(3_000, 1000);
    let code = refusal_code(rt.block_on(inner(&grid, 1).put_chunk_to(
        &leaver_id,
        ContentId::of(&bytes),
        bytes.clone(),
        None,
    )));
    assert_eq!(code, ErrorCode::NotPlaced);
    // A bucket's chunk for a cluster the node is no member of is refused too.
    let foreign = peercloud_ledger::ClusterId(peercloud_types::Hash32::of(b"no such cluster"));
    let code = refusal_code(rt.block_on(inner(&grid, 1).put_chunk_to(
        &leaver_id,
        ContentId::of(&bytes),
        bytes.clone(),
        Some(&foreign),
    )));
    assert_eq!(code, ErrorCode::NotPlaced);
}

#[test]
fn a_failed_object_put_releases_its_chunks_and_only_their_putters_can() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let rt = grid.runtime();
    let usage = || -> Vec<u64> {
        (0..grid.len())
            .map(|i| inner(&grid, i).store.used_bytes().unwrap())
            .collect()
    };
    let before = usage();

    // A put whose source breaks after its first batch of chunks is stored
    // (8 MiB at 1 MiB a chunk): the pipeline abandons them, and the holders
    // release them.
    let entry = NetStore::new(inner(&grid, 1), rt.clone());
    let source = BreaksAfter {
        left: 9 << 20,
        tag: 7,
    };
    let err = put_object(
        &entry,
        source,
        &grid.user().public(),
        &PutOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert_eq!(usage(), before, "no chunk of the failed put is left");

    // The same from the user's side, through a node's API: the client asks
    // its node (DELETE /v1/chunks/{cid}) to release what it had placed.
    let api = ApiStore::new(grid.node(2).expect("node 2"));
    let source = BreaksAfter {
        left: 9 << 20,
        tag: 8,
    };
    let err = put_object(&api, source, &grid.user().public(), &PutOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert_eq!(usage(), before, "no chunk of the user's failed put is left");

    // A chunk two nodes put stays until both release it; a node that never
    // put it cannot.
    let bytes = blob(1, 5000);
    let cid = ContentId::of(&bytes);
    let (one, two) = (node_id(&grid, 1), node_id(&grid, 2));
    NetStore::new(inner(&grid, 1), rt.clone())
        .put(&cid, &bytes)
        .unwrap();
    NetStore::new(inner(&grid, 2), rt.clone())
        .put(&cid, &bytes)
        .unwrap();
    let held = holders(&grid, &cid);
    assert_eq!(held, vec![1, 2, 3]);
    let mut both = vec![one, two];
    both.sort();
    for &i in &held {
        assert_eq!(inner(&grid, i).store.putters(&cid).unwrap(), both);
    }
    let code =
        refusal_code(rt.block_on(inner(&grid, 3).delete_chunk_from(&node_id(&grid, 2), cid)));
    assert_eq!(code, ErrorCode::NotPutter, "node 3 never put it");

    let release = rt.block_on(inner(&grid, 1).delete_chunk(cid));
    assert!(release.failures.is_empty(), "{:?}", release.failures);
    assert_eq!(release.released.len(), 3);
    assert_eq!(holders(&grid, &cid), held, "node 2 still wants it");
    for &i in &held {
        assert_eq!(inner(&grid, i).store.putters(&cid).unwrap(), vec![two]);
    }
    let release = rt.block_on(inner(&grid, 2).delete_chunk(cid));
    assert_eq!(release.released.len(), 3, "{:?}", release.failures);
    assert!(
        holders(&grid, &cid).is_empty(),
        "the last putter's release deletes it"
    );
    assert_eq!(usage(), before);
}

#[test]
fn a_lost_copy_is_written_again_and_a_chunk_bad_everywhere_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let rt = grid.runtime();
    let entry = NetStore::new(inner(&grid, 1), rt.clone());
    let bytes = blob(5, 50_000);
    let cid = ContentId::of(&bytes);
    entry.put(&cid, &bytes).unwrap();
    assert_eq!(holders(&grid, &cid), vec![1, 2, 3]);

    // The file goes from one holder behind its store's back; a re-upload
    // writes it there again.
    let victim = inner(&grid, 2);
    victim.store.lose(&cid);
    assert!(victim.store.get(&cid).is_err());
    entry.put(&cid, &bytes).unwrap();
    assert_eq!(victim.store.get(&cid).unwrap(), bytes, "written again");

    // Bad on every holder: corrupt, whichever way a reader comes.
    for i in holders(&grid, &cid) {
        inner(&grid, i).store.tamper(&cid);
    }
    for store in [
        NetStore::new(inner(&grid, 1), rt.clone()),
        NetStore::new(inner(&grid, 0), rt.clone()),
    ] {
        let err = store.get(&cid).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { cid: c, .. } if *c == cid),
            "{err}"
        );
    }
    let err = ApiStore::new(grid.node(3).unwrap()).get(&cid).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { cid: c, .. } if *c == cid),
        "{err}"
    );
    let http = NodeClient::from_node_dir(&node_dir(dir.path(), 2)).unwrap();
    let err = http.get_chunk_into(&cid, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Api {
                code: ErrorCode::ChunkCorrupt,
                status: 502,
                ..
            }
        ),
        "{err}"
    );
    let err = ApiStore::new(http).get(&cid).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

    // A chunk no holder has is still missing, not corrupt.
    let absent = ContentId::of(b"never stored");
    let err = entry.get(&absent).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

/// A source that yields `left` bytes, then fails.
struct BreaksAfter {
    left: usize,
    tag: u8,
}

impl Read for BreaksAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the source broke"));
        }
        let n = buf.len().min(self.left);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.tag ^ (self.left.wrapping_sub(i) as u8);
        }
        self.left -= n;
        Ok(n)
    }
}

/// Polls `done` every 20 ms for up to 20 s.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
