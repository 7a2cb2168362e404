//! The edge cache: a node that serves a public object to web visitors keeps
//! its pieces on disk, answers the next visitor from them, and keeps
//! serving the site when every other node (its holders and its index
//! replicas) is gone: the index's last answer stands in for it.

mod common;

use common::*;

use peercloud_client::bucket::{self, NewObject};
use peercloud_devnet::Grid;
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
    let fetch = |key: &str| {
        let answer = http
            .get(format!("{base}/{key}"))
            .send()
            .expect("the edge answers");
        assert_eq!(answer.status(), StatusCode::OK, "{key}");
        answer.bytes().expect("the body").to_vec()
    };

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
