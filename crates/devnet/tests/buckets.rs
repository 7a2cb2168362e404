//! Objects in a bucket across real daemons (an in-process grid): named
//! objects are put, listed by prefix, overwritten, read back and deleted
//! through the bucket's index, which lives on three members of the cluster
//! and is written by quorum, so it keeps every acknowledged write with one
//! of its replicas stopped. Only the bucket's owner can write an entry; the
//! usage the owner signs follows what the bucket holds.

mod common;

use common::*;

use peercloud_api::{Canonical, ErrorCode, IndexWrite, ListQuery};
use peercloud_client::bucket::{self, BucketError};
use peercloud_client::{ClientError, NodeApi, NodeClient};
use peercloud_devnet::{Grid, InProcessNode, node_dir};
use peercloud_ledger::{BucketId, InlineObject, ObjectEntry, ObjectRef};
use peercloud_node::daemon::INDEX_REPLICAS;
use peercloud_types::{ContentId, Keypair, Signed, clock::now_ms};

/// Nodes whose own index replica holds `key` of `bucket`.
fn index_holders(grid: &Grid, bucket: &BucketId, key: &str) -> Vec<usize> {
    (0..grid.len())
        .filter(|&i| {
            inner(grid, i)
                .index
                .table()
                .get(bucket, key)
                .expect("a readable index")
                .is_some()
        })
        .collect()
}

/// [`index_holders`] once all [`INDEX_REPLICAS`] have it: a write is
/// acknowledged by a quorum, the last replica commits in the background.
fn all_index_holders(grid: &Grid, bucket: &BucketId, key: &str) -> Vec<usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let holders = index_holders(grid, bucket, key);
        if holders.len() >= INDEX_REPLICAS || std::time::Instant::now() > deadline {
            return holders;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn keys(items: &[peercloud_client::ObjectItem]) -> Vec<&str> {
    items.iter().map(|i| i.key.as_str()).collect()
}

fn read(node: &InProcessNode, owner: &Keypair, bucket: &BucketId, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    bucket::get(node, owner, bucket, key, &mut out).expect("the object reads back");
    out
}

#[test]
fn objects_are_put_listed_overwritten_read_and_deleted_through_the_quorum_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let node = grid.node(1).expect("node 1");
    let user = grid.user();
    let bucket = funded_bucket(&grid, &node, 50);

    let first = vec![7u8; 3 << 20];
    let put = bucket::put(&node, user, &bucket, "docs/a.txt", &first[..]).expect("put a");
    assert!(put.replicas >= 2, "acknowledged by a quorum");
    assert_eq!(put.bucket_bytes, 3 << 20);
    bucket::put(&node, user, &bucket, "docs/b.txt", &b"bee"[..]).expect("put b");
    bucket::put(&node, user, &bucket, "img/c.png", &b"sea"[..]).expect("put c");
    // A small object is kept in the index with its entry, not on chunk holders.
    let (big, bee) = (
        bucket::head(&node, &bucket, "docs/a.txt").expect("head a"),
        bucket::head(&node, &bucket, "docs/b.txt").expect("head b"),
    );
    assert!(!big.object.inline && bee.object.inline, "{big:?} {bee:?}");
    assert!(!holders(&grid, &big.object.manifest).is_empty());
    assert!(
        holders(&grid, &bee.object.manifest).is_empty(),
        "no chunk holder keeps an inline object"
    );
    assert_eq!(
        read(&grid.node(2).expect("node 2"), user, &bucket, "docs/b.txt"),
        b"bee"
    );
    assert_eq!(
        all_index_holders(&grid, &bucket, "docs/a.txt").len(),
        INDEX_REPLICAS,
        "the entry is on exactly the bucket's index replicas"
    );

    let docs = bucket::list(&node, &bucket, "docs/").expect("list docs/");
    assert_eq!(keys(&docs), ["docs/a.txt", "docs/b.txt"]);
    assert_eq!(docs[0].object.size, 3 << 20);
    assert_eq!(
        keys(&bucket::list(&node, &bucket, "").expect("list all")).len(),
        3
    );
    // Another node reads the same index.
    let other = grid.node(3).expect("node 3");
    assert_eq!(read(&other, user, &bucket, "docs/a.txt"), first);

    // Overwrite: the key names the new object; the usage counts it once.
    let second = b"a shorter second version".to_vec();
    let put = bucket::put(&node, user, &bucket, "docs/a.txt", &second[..]).expect("overwrite");
    assert_eq!(put.bucket_bytes, second.len() as u64 + 3 + 3);
    assert_eq!(read(&other, user, &bucket, "docs/a.txt"), second);

    // Delete: gone from listings and gets; a second delete is not found.
    bucket::delete(&node, user, &bucket, "docs/b.txt").expect("delete b");
    assert_eq!(
        keys(&bucket::list(&node, &bucket, "docs/").expect("list")),
        ["docs/a.txt"]
    );
    let err = bucket::get(&node, user, &bucket, "docs/b.txt", Vec::new()).expect_err("deleted");
    assert!(matches!(err, BucketError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("docs/b.txt"), "{err}");
    assert!(matches!(
        bucket::delete(&node, user, &bucket, "docs/b.txt"),
        Err(BucketError::NotFound { .. })
    ));

    // Someone else's wallet cannot put into the bucket, and an entry it
    // signs is refused by the index itself.
    let stranger = Keypair::generate();
    let err = bucket::put(&node, &stranger, &bucket, "x", &b"x"[..]).expect_err("not the owner");
    assert!(matches!(err, BucketError::NotOwner { .. }), "{err}");
    let forged = Signed::new(
        ObjectEntry {
            bucket,
            key: "docs/a.txt".into(),
            object: Some(ObjectRef {
                manifest: ContentId::of(b"elsewhere"),
                size: 1,
                inline: false,
            }),
            at_ms: u64::MAX / 2,
        },
        &stranger,
    );
    let write = IndexWrite {
        entries: vec![Canonical(forged)],
        ..IndexWrite::default()
    };
    match node.index_write(&bucket, &write) {
        Err(ClientError::Api { code, message, .. }) => {
            assert_eq!(code, ErrorCode::NotOwner, "{message}");
        }
        other => panic!("a forged entry must be refused, got {other:?}"),
    }
    // The owner's inline entry with chunks that are not its object's is
    // refused too, naming what is wrong.
    let manifest = b"not a manifest".to_vec();
    let entry = Signed::new(
        ObjectEntry {
            bucket,
            key: "docs/forged.txt".into(),
            object: Some(ObjectRef {
                manifest: ContentId::of(&manifest),
                size: 4,
                inline: true,
            }),
            at_ms: now_ms(),
        },
        user,
    );
    let write = IndexWrite {
        entries: vec![Canonical(entry)],
        inline: vec![Canonical(InlineObject {
            chunks: vec![manifest, b"data".to_vec()],
        })],
        ..IndexWrite::default()
    };
    match node.index_write(&bucket, &write) {
        Err(ClientError::Api { code, message, .. }) => {
            assert_eq!(code, ErrorCode::BadRequest, "{message}");
            assert!(
                message.contains("docs/forged.txt") && message.contains("manifest"),
                "{message}"
            );
        }
        other => panic!("chunks that are not the object's must be refused, got {other:?}"),
    }
    assert_eq!(read(&node, user, &bucket, "docs/a.txt"), second);
}

#[test]
fn the_index_keeps_every_acknowledged_write_with_one_replica_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let user = grid.user();
    // Through a provider: the validator does not store chunks.
    let node1 = grid.node(1).expect("node 1");
    let bucket = funded_bucket(&grid, &node1, 50);
    bucket::put(&node1, user, &bucket, "k/000", &b"first"[..]).expect("first put");
    let replicas = all_index_holders(&grid, &bucket, "k/000");
    assert_eq!(replicas.len(), INDEX_REPLICAS);
    // Stop one replica (not the validator, which makes the blocks), and
    // write and read through a node that is not a replica when there is one.
    let stopped = *replicas
        .iter()
        .find(|&&i| i != 0)
        .expect("a provider replica");
    assert!(grid.stop(stopped));
    let entry = (1..grid.len())
        .find(|i| *i != stopped && !replicas.contains(i))
        .or_else(|| (1..grid.len()).find(|i| *i != stopped))
        .expect("another provider");
    let node = grid.node(entry).expect("a running node");
    for i in 1..=40 {
        let key = format!("k/{i:03}");
        bucket::put(&node, user, &bucket, &key, key.as_bytes()).expect("a put with a replica down");
    }
    let listed = bucket::list(&node, &bucket, "k/").expect("a list with a replica down");
    assert_eq!(listed.len(), 41, "every acknowledged write is listed");
    assert_eq!(read(&node, user, &bucket, "k/017"), b"k/017");
    // Paging: a small page still walks every key, in order.
    let page = node
        .index_list(
            &bucket,
            &ListQuery {
                prefix: Some("k/".into()),
                after: Some("k/010".into()),
                limit: Some(5),
            },
        )
        .expect("a page");
    let got: Vec<String> = page.entries.iter().map(|e| e.0.body.key.clone()).collect();
    assert_eq!(got, ["k/011", "k/012", "k/013", "k/014", "k/015"]);
    assert!(page.more);
}

#[test]
fn a_public_bucket_holds_plaintext_that_anyone_reads_and_only_the_owner_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let node = grid.node(2).expect("node 2");
    let user = grid.user();
    let bucket = new_bucket(&grid, &node, 50, true);
    assert!(node.bucket(&bucket).expect("the bucket").public);

    let page = content((2 << 20) + 77, 5);
    let put = bucket::put(&node, user, &bucket, "site/index.html", &page[..]).expect("put");
    let manifest = put.receipt.manifest.clone();
    assert!(manifest.is_public() && put.receipt.key.is_none());
    // Holders keep the plaintext: the first chunk is named by its content.
    let first = ContentId::of(&page[..1 << 20]);
    assert_eq!(manifest.chunks[0], first);
    assert!(!holders(&grid, &first).is_empty(), "the chunk is held");

    // Anyone reads it: without a wallet, and with another wallet.
    let mut out = Vec::new();
    let (item, got) =
        bucket::get_public(&node, &bucket, "site/index.html", &mut out).expect("an anonymous read");
    assert_eq!(out, page);
    assert_eq!(item.object.manifest, put.receipt.manifest_cid);
    assert_eq!(got.info.name.as_deref(), Some("site/index.html"));
    let stranger = Keypair::generate();
    assert_eq!(read(&node, &stranger, &bucket, "site/index.html"), page);
    assert_eq!(read(&node, user, &bucket, "site/index.html"), page);

    // A small page, kept in the index, reads anonymously too.
    let robots = b"User-agent: *\nAllow: /\n";
    bucket::put(&node, user, &bucket, "site/robots.txt", &robots[..]).expect("put robots");
    let mut out = Vec::new();
    let (item, _) = bucket::get_public(
        &grid.node(3).expect("node 3"),
        &bucket,
        "site/robots.txt",
        &mut out,
    )
    .expect("an anonymous read of an inline object");
    assert!(item.object.inline);
    assert_eq!(out, robots);

    // Nobody but the owner writes into it.
    let err = bucket::put(&node, &stranger, &bucket, "site/x", &b"defaced"[..]).unwrap_err();
    assert!(matches!(err, BucketError::NotOwner { .. }), "{err}");

    // A private bucket's object is not read as a public one.
    let private = funded_bucket(&grid, &node, 10);
    bucket::put(&node, user, &private, "secret", &b"mine"[..]).expect("put secret");
    let err = bucket::get_public(&node, &private, "secret", std::io::sink()).unwrap_err();
    assert!(
        matches!(
            err,
            BucketError::Store(peercloud_store::StoreError::NotPublic { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_member_that_becomes_an_index_replica_pulls_the_whole_index_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let user = grid.user();
    let node1 = grid.node(1).expect("node 1");
    let bucket = funded_bucket(&grid, &node1, 50);
    let names: Vec<String> = (0..30).map(|i| format!("s/{i:03}")).collect();
    for key in &names {
        bucket::put(&node1, user, &bucket, key, key.as_bytes()).expect("a put");
    }
    let replicas = all_index_holders(&grid, &bucket, &names[29]);
    assert_eq!(replicas.len(), INDEX_REPLICAS);

    // A replica's owner takes it out of the cluster: the ranking moves and
    // a member that held nothing of the bucket becomes a replica.
    let leaving = *replicas
        .iter()
        .find(|&&i| i != 0 && i != 1)
        .expect("a replica other than the validator and node 1");
    let leaver = inner(&grid, leaving);
    let leave = peercloud_ledger::TxKind::LeaveCluster {
        cluster: grid.cluster(),
        node: leaver.node_id(),
    };
    peercloud_client::submit_signed(&node1, &leaver.owner_key, leave, true).expect("it leaves");
    let held = |i: usize| {
        inner(&grid, i)
            .index
            .table()
            .list(&bucket, "s/", None, 1_000)
            .expect("a readable index")
            .len()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let newcomer = loop {
        let found = (0..grid.len()).find(|i| !replicas.contains(i) && held(*i) == names.len());
        if let Some(i) = found {
            break i;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new replica pulled the index within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_ne!(newcomer, leaving);

    // With another old replica stopped, a quorum of the new replicas (the
    // newcomer and the one old replica left) still lists every key.
    if let Some(&old) = replicas.iter().find(|&&i| i != 0 && i != 1 && i != leaving) {
        assert!(grid.stop(old));
    }
    let listed = bucket::list(&node1, &bucket, "s/").expect("a list");
    assert_eq!(
        keys(&listed),
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // The new replica holds the small objects' chunks with their entries
    // (brought by its pull; entries that reached it first through another
    // read's repair, which carries no chunks for a list, get them from the
    // pull when it lands), and they read back from the new quorum.
    let newcomer = inner(&grid, newcomer);
    let table = newcomer.index.table();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let entries = table.list(&bucket, "s/", None, 1_000).expect("entries");
        let chunks = table.inline(&entries).expect("inline").len();
        if chunks == names.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new replica holds the chunks of {chunks} of {} small objects after 20 s",
            names.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for key in &names {
        assert_eq!(read(&node1, user, &bucket, key), key.as_bytes());
    }
}

#[test]
fn writes_that_arrive_together_travel_in_one_round_and_a_bad_one_is_refused_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let user = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let bucket = funded_bucket(&grid, &node, 50);
    let entry = |key: String| {
        Signed::new(
            ObjectEntry {
                bucket,
                object: Some(ObjectRef {
                    manifest: ContentId::of(key.as_bytes()),
                    size: 10,
                    inline: false,
                }),
                key,
                at_ms: now_ms(),
            },
            &user,
        )
    };
    // Sixteen writers at once, one of them with a tampered signature: the
    // node sends what arrives together as one round to the replicas.
    let outcomes: Vec<(String, Result<(), ClientError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (node, entry) = (&node, &entry);
                scope.spawn(move || {
                    let key = format!("round/{i:02}");
                    let mut signed = entry(key.clone());
                    if i == 7 {
                        signed.signature[0] ^= 1;
                    }
                    let write = IndexWrite {
                        entries: vec![Canonical(signed)],
                        ..IndexWrite::default()
                    };
                    (key, node.index_write(&bucket, &write).map(|_| ()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer"))
            .collect()
    });
    for (key, outcome) in &outcomes {
        match (key.as_str(), outcome) {
            ("round/07", Err(ClientError::Api { code, message, .. })) => {
                assert_eq!(*code, ErrorCode::BadSignature, "{message}");
                assert!(message.contains("round/07"), "{message}");
            }
            ("round/07", Ok(())) => panic!("a tampered signature must be refused"),
            (_, Ok(())) => {}
            (key, Err(err)) => panic!("{key}: a good write beside a bad one must land: {err}"),
        }
    }
    let listed = bucket::list(&node, &bucket, "round/").expect("list");
    assert_eq!(listed.len(), 15, "every good write and not the bad one");
    assert!(listed.iter().all(|item| item.key != "round/07"));
    // Gets that arrive together are answered each with its own key's entry.
    std::thread::scope(|scope| {
        for i in [0, 3, 7, 12, 15] {
            let node = &node;
            scope.spawn(move || {
                let key = format!("round/{i:02}");
                let found = bucket::head(node, &bucket, &key);
                match (i, found) {
                    (7, Err(BucketError::NotFound { .. })) => {}
                    (7, other) => panic!("round/07 was refused, found {other:?}"),
                    (_, Ok(item)) => {
                        assert_eq!(item.key, key);
                        assert_eq!(item.object.manifest, ContentId::of(key.as_bytes()));
                    }
                    (_, Err(err)) => panic!("{key}: {err}"),
                }
            });
        }
    });
}

#[test]
fn puts_at_once_from_one_process_sign_a_usage_that_counts_every_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let user = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let bucket = funded_bucket(&grid, &node, 50);
    // Puts at once, of 100, 200, … bytes: many read the usage before the
    // others wrote theirs.
    const PUTS: u64 = 32;
    std::thread::scope(|scope| {
        for i in 1..=PUTS {
            let (node, user) = (&node, &user);
            scope.spawn(move || {
                let object = vec![1u8; (i * 100) as usize];
                bucket::put(node, user, &bucket, &format!("u/{i:02}"), &object[..]).expect("a put");
            });
        }
    });
    let usage = node
        .index_get(&bucket, "u/01")
        .expect("a get")
        .usage
        .expect("a usage")
        .0
        .body;
    assert_eq!(usage.stored_bytes, (1..=PUTS).map(|i| i * 100).sum::<u64>());
    assert_eq!(usage.seq, PUTS, "one number per put");
}

#[test]
fn a_put_of_many_objects_stores_each_over_http_in_few_writes_and_counts_the_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), 4).expect("a grid of four providers");
    let user = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let bucket = funded_bucket(&grid, &node, 50);
    let http = NodeClient::from_node_dir(&node_dir(dir.path(), 1)).expect("node 1's API");
    bucket::put(&http, &user, &bucket, "d/old", &[7u8; 500][..]).expect("a put");

    // 600 objects: 2 KiB ones kept inline (more than one index write holds
    // of inline bytes), one replacing d/old, and one stored on the cluster.
    let mut contents: Vec<(String, Vec<u8>)> = (0..598)
        .map(|i| (format!("d/{i:04}"), vec![(i % 251) as u8; 2048]))
        .collect();
    contents.push(("d/old".into(), vec![8u8; 2000]));
    contents.push(("d/big".into(), vec![9u8; 64 << 10]));
    let objects: Vec<bucket::NewObject<'_>> = contents
        .iter()
        .map(|(key, bytes)| bucket::NewObject { key, bytes })
        .collect();
    let puts = bucket::put_many(&http, &user, &bucket, &objects).expect("a put of many");
    assert_eq!(puts.len(), 600);
    assert!(
        puts.iter().zip(&contents).all(|(p, (k, _))| p.key == *k),
        "in the order given"
    );
    assert_eq!(puts.iter().filter(|p| p.inline).count(), 599);
    assert!(puts.iter().all(|p| p.replicas >= 2));

    for key in ["d/0000", "d/0597", "d/old", "d/big"] {
        let (_, bytes) = contents.iter().find(|(k, _)| k == key).expect("given");
        assert_eq!(&read(&node, &user, &bucket, key), bytes, "{key} reads back");
    }
    let listed = bucket::list(&http, &bucket, "d/").expect("a list");
    assert_eq!(listed.len(), 600);
    let usage = node
        .index_get(&bucket, "d/old")
        .expect("a get")
        .usage
        .expect("a usage")
        .0
        .body;
    let total: u64 = contents.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(
        usage.stored_bytes, total,
        "d/old's 500 bytes replaced, not added"
    );
    let writes = usage.seq - 1;
    assert!(
        (2..=3).contains(&writes),
        "{writes} index writes for 600 objects"
    );

    // A key given twice is refused before anything is written.
    let twice = [
        bucket::NewObject {
            key: "e/1",
            bytes: b"one",
        },
        bucket::NewObject {
            key: "e/1",
            bytes: b"two",
        },
    ];
    let err = bucket::put_many(&http, &user, &bucket, &twice).expect_err("a key twice");
    assert!(matches!(err, BucketError::Batch { .. }), "{err}");
    assert!(
        bucket::list(&http, &bucket, "e/")
            .expect("a list")
            .is_empty()
    );
    // The API refuses a get of too many keys, naming the limit.
    let keys: Vec<String> = (0..=peercloud_api::INDEX_KEYS_MAX)
        .map(|i| format!("k{i}"))
        .collect();
    let err = http
        .index_get_many(&bucket, &keys)
        .expect_err("too many keys");
    assert!(err.to_string().contains("1..=1000"), "{err}");
}
