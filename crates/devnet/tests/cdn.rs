//! The edge cache: a node that serves a public object to web visitors keeps
//! its pieces on disk, answers the next visitor from them, serves another
//! node's visitors when the holders lost the pieces (it announced them in
//! Kademlia), and keeps serving the site when every other node (its holders
//! and its index replicas) is gone: the index's last answer stands in.

mod common;

use common::*;

use peercloud_client::bucket::{self, NewObject};
use peercloud_devnet::Grid;
use peercloud_store::{ChunkInventory, Manifest};
use peercloud_types::ContentId;
use reqwest::StatusCode;
use reqwest::blocking::Client;

/// The node visitors ask: the validator, which is no member of the
/// cluster, so it holds no piece and no index replica of its own.
const EDGE: usize = 0;
/// The providers (the cluster's members).
const PROVIDERS: usize = 4;

#[test]
fn a_served_site_is_kept_at_the_edge_and_outlives_its_holders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grid = Grid::start(dir.path(), PROVIDERS).expect("a grid of four providers");
    let user = grid.user().clone();
    let node = grid.node(1).expect("node 1");
    let site = new_bucket(&grid, &node, 50, true);
    // Larger than what the gateway keeps in memory (1 MiB): read in pieces.
    let big = content(3 << 20, 11);
    let files: Vec<(&str, &[u8])> = vec![("index.html", b"<h1>edge</h1>"), ("big.bin", &big)];
    let objects: Vec<NewObject<'_>> = files
        .iter()
        .map(|(key, bytes)| NewObject { key, bytes })
        .collect();
    bucket::put_many(&node, &user, &site, &objects).expect("the site's files");

    let edge = inner(&grid, EDGE);
    let web = edge
        .web_url
        .get()
        .cloned()
        .expect("the edge serves the web");
    let base = format!("{web}/{}", site.0);
    let http = Client::new();
    let fetch_at = |base: &str, key: &str| {
        let answer = http
            .get(format!("{base}/{key}"))
            .send()
            .expect("the gateway answers");
        assert_eq!(answer.status(), StatusCode::OK, "{key} at {base}");
        let etag = answer.headers()[reqwest::header::ETAG]
            .to_str()
            .expect("an ETag")
            .trim_matches('"')
            .to_owned();
        (answer.bytes().expect("the body").to_vec(), etag)
    };
    let fetch = |key: &str| fetch_at(&base, key).0;

    assert!(fetch("big.bin") == big, "the first visit reads the holders");
    let first = edge.edge.usage();
    assert!(first.pieces > 0, "pieces kept: {first:?}");
    assert!(first.misses > 0, "{first:?}");
    assert!(first.bytes <= first.budget_bytes);

    assert!(fetch("big.bin") == big, "the second visit");
    let second = edge.edge.usage();
    assert_eq!(second.misses, first.misses, "nothing went to the holders");
    assert_eq!(
        second.hits - first.hits,
        first.pieces,
        "every piece from the cache"
    );
    assert_eq!(fetch("index.html"), b"<h1>edge</h1>");

    // The holders lose every piece of big.bin: another node's visitor is
    // served from the edge's cache, found through Kademlia.
    let (_, etag) = fetch_at(&base, "big.bin");
    let manifest: ContentId = etag.parse().expect("the ETag is the manifest CID");
    let manifest_bytes = edge.edge.get(&manifest).expect("the manifest is cached");
    let pieces: Vec<ContentId> = Manifest::decode(&manifest_bytes)
        .expect("a manifest")
        .all_chunks()
        .copied()
        .chain([manifest])
        .collect();
    for i in 1..=PROVIDERS {
        let store = &inner(&grid, i).store;
        for piece in &pieces {
            store.delete(piece).expect("a holder drops a piece");
        }
    }
    for piece in &pieces {
        assert!(holders(&grid, piece).is_empty(), "{piece} is still held");
    }
    let other = inner(&grid, PROVIDERS);
    let other_base = format!(
        "{}/{}",
        other.web_url.get().expect("node 4 serves the web"),
        site.0
    );
    let (read, _) = fetch_at(&other_base, "big.bin");
    assert!(read == big, "served from the edge's cache");
    assert!(
        other.edge.usage().pieces >= pieces.len() as u64,
        "and kept at the second edge too: {:?}",
        other.edge.usage()
    );

    // Every member goes: the chunks' holders and the index replicas.
    for i in 1..=PROVIDERS {
        assert!(grid.stop(i));
    }
    // Past the second a key's lookup is fresh for: the index is asked, no
    // replica answers, and its last answer serves.
    std::thread::sleep(peercloud_node::web::LOOKUP_FRESH);
    assert!(
        fetch("big.bin") == big,
        "served at the edge with every holder gone"
    );
    assert_eq!(fetch("index.html"), b"<h1>edge</h1>");
    let missing = http
        .get(format!("{base}/never-fetched.html"))
        .send()
        .expect("the edge answers");
    assert!(
        missing.status().is_server_error(),
        "a key the edge never saw cannot be looked up: {}",
        missing.status()
    );
}
