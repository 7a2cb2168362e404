//! The index's merge rules, tested without a network.

use super::*;
use peercloud_ledger::ObjectRef;
use peercloud_types::{ContentId, Hash32, Keypair};

pub(super) fn entry(key: &str, at_ms: u64) -> Signed<ObjectEntry> {
    Signed::new(
        ObjectEntry {
            bucket: BucketId(Hash32([1; 32])),
            key: key.to_owned(),
            object: Some(ObjectRef {
                manifest: ContentId::of(key.as_bytes()),
                size: at_ms,
                inline: false,
            }),
            at_ms,
        },
        &Keypair::from_seed(&[4; 32]),
    )
}

fn node(i: u8) -> NodeId {
    Keypair::from_seed(&[i; 32]).node_id()
}

#[test]
fn a_merge_takes_the_newest_per_key_and_stops_where_a_full_page_stopped() {
    let a = (
        node(1),
        Answer::Entries(Entries {
            entries: vec![entry("a", 1), entry("b", 5)],
            ..Entries::default()
        }),
    );
    let b = (
        node(2),
        Answer::Entries(Entries {
            entries: vec![entry("a", 2), entry("c", 1)],
            ..Entries::default()
        }),
    );
    let read = merge_answers(&[a.clone(), b.clone()], None);
    let got: Vec<_> = read
        .entries
        .iter()
        .map(|e| (e.body.key.as_str(), e.body.at_ms))
        .collect();
    assert_eq!(got, [("a", 2), ("b", 5), ("c", 1)]);
    assert!(!read.more);
    // Pages of 2: replica a knows nothing past "b", so "c" waits for the next page.
    let read = merge_answers(&[a, b], Some(2));
    let got: Vec<_> = read.entries.iter().map(|e| e.body.key.as_str()).collect();
    assert_eq!(got, ["a", "b"]);
    assert!(read.more);
}

#[test]
fn quorum_is_a_strict_majority() {
    assert_eq!([1, 2, 3, 4, 5].map(quorum), [1, 2, 2, 3, 3]);
}
