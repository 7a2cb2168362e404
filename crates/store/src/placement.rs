//! Placement: which nodes hold a chunk's replicas.
//!
//! Rendezvous (highest-random-weight) hashing: every node gets the score
//! `BLAKE3(cid digest || node id)` for a chunk, and the chunk goes to the
//! best-scoring nodes. Everyone who knows the node set computes the same
//! answer with no coordination and no ring state, and membership changes move
//! the minimum: a joining node takes about `1/(n+1)` of the replica slots, a
//! leaving node gives up only the slots it held.
//!
//! Replicas on distinct *owners* come first: a farmer's nodes often share a
//! house, a power line and a person, so two copies on one owner's machines are
//! worth less than two owners. [`place`] walks the ranking once taking only new
//! owners, then, if there are fewer owners than replicas, fills the rest from
//! the ranking with nodes of owners already used. Both passes keep the
//! rendezvous property: a node that is not chosen for a chunk has no effect on
//! which nodes are.
//!
//! A put falls through the ranking past nodes that fail or refuse, but only
//! so far: [`candidates`] are [`place`]'s picks and then the rest of the
//! first `replicas × PLACEMENT_WINDOW_FACTOR` ranks, and a node accepts a
//! chunk only when it is one of them ([`may_hold`]). A chunk therefore lives
//! where a reader looks first, and no node can be made to hold chunks that
//! rendezvous hashing did not give it.
//!
//! Deterministic: ties in score (which need a BLAKE3 collision) break by node id,
//! and a node listed twice counts once.

use peercloud_types::{AccountId, ContentId, NodeId};

/// A node that may hold chunks, and the account that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlacementNode {
    /// The node's id.
    pub node: NodeId,
    /// Its owner (farmer) account.
    pub owner: AccountId,
}

/// The rendezvous score of `node` for `cid`: BLAKE3 of the CID's digest then
/// the node's public key. Higher is preferred.
pub fn score(cid: &ContentId, node: &NodeId) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(cid.digest());
    hasher.update(&node.key().0);
    *hasher.finalize().as_bytes()
}

/// All distinct nodes in preference order for `cid` (best first). Repair uses
/// it to find the next candidates after [`place`]'s choices.
pub fn rank(cid: &ContentId, nodes: &[PlacementNode]) -> Vec<PlacementNode> {
    let mut scored: Vec<([u8; 32], PlacementNode)> =
        nodes.iter().map(|n| (score(cid, &n.node), *n)).collect();
    scored.sort_by(|(sa, a), (sb, b)| sb.cmp(sa).then_with(|| a.node.cmp(&b.node)));
    // Equal nodes have equal scores, so duplicates are adjacent.
    scored.dedup_by(|(_, a), (_, b)| a.node == b.node);
    scored.into_iter().map(|(_, n)| n).collect()
}

/// The `replicas` nodes that hold `cid`, best first: distinct nodes, on
/// distinct owners as far as there are owners, fewer only when there are
/// fewer nodes.
pub fn place(cid: &ContentId, nodes: &[PlacementNode], replicas: usize) -> Vec<PlacementNode> {
    let ranked = rank(cid, nodes);
    let mut chosen: Vec<PlacementNode> = Vec::with_capacity(replicas.min(ranked.len()));
    let mut taken = vec![false; ranked.len()];
    for (i, candidate) in ranked.iter().enumerate() {
        if chosen.len() == replicas {
            break;
        }
        if chosen.iter().all(|c| c.owner != candidate.owner) {
            chosen.push(*candidate);
            taken[i] = true;
        }
    }
    for (i, candidate) in ranked.iter().enumerate() {
        if chosen.len() == replicas {
            break;
        }
        if !taken[i] {
            chosen.push(*candidate);
        }
    }
    debug_assert!(chosen.len() == replicas.min(ranked.len()));
    chosen
}

/// How far past the replica count a put may fall through the ranking, as a
/// multiple of it: 2 lets a chunk of 3 replicas skip up to 3 nodes that are
/// down, full or refusing (a node each of several owners going away at
/// once), while a holder still refuses a chunk ranked far from it, so a put
/// cannot pick its holders and reads find a chunk in the first ranks.
pub const PLACEMENT_WINDOW_FACTOR: usize = 2;

/// The nodes a put of `cid` may use, in the order it tries them: [`place`]'s
/// `replicas` picks (distinct owners first), then the other nodes among the
/// first `replicas × PLACEMENT_WINDOW_FACTOR` of the ranking, best first.
pub fn candidates(cid: &ContentId, nodes: &[PlacementNode], replicas: usize) -> Vec<PlacementNode> {
    let mut chosen = place(cid, nodes, replicas);
    let window = replicas.saturating_mul(PLACEMENT_WINDOW_FACTOR);
    for node in rank(cid, nodes).into_iter().take(window) {
        if !chosen.contains(&node) {
            chosen.push(node);
        }
    }
    chosen
}

/// Whether `node` is one of `cid`'s [`candidates`]: the rule a holder
/// applies before it accepts a chunk.
pub fn may_hold(cid: &ContentId, nodes: &[PlacementNode], replicas: usize, node: &NodeId) -> bool {
    candidates(cid, nodes, replicas)
        .iter()
        .any(|c| c.node == *node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Keypair, PublicKey};
    use std::collections::BTreeSet;

    fn key(tag: u8, i: u32) -> PublicKey {
        let mut seed = [tag; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        Keypair::from_seed(&seed).public()
    }

    /// `count` nodes; node `i` belongs to owner `i % owners`.
    fn nodes(count: u32, owners: u32) -> Vec<PlacementNode> {
        (0..count)
            .map(|i| PlacementNode {
                node: NodeId(key(1, i)),
                owner: AccountId(key(2, i % owners)),
            })
            .collect()
    }

    fn cids(count: u32) -> Vec<ContentId> {
        (0..count)
            .map(|i| ContentId::of(&i.to_le_bytes()))
            .collect()
    }

    #[test]
    fn picks_distinct_nodes_on_distinct_owners() {
        let set = nodes(12, 4);
        for cid in cids(500) {
            let chosen = place(&cid, &set, 3);
            assert_eq!(chosen.len(), 3);
            let node_set: BTreeSet<_> = chosen.iter().map(|n| n.node).collect();
            let owner_set: BTreeSet<_> = chosen.iter().map(|n| n.owner).collect();
            assert_eq!(node_set.len(), 3);
            assert_eq!(
                owner_set.len(),
                3,
                "4 owners are enough for 3 distinct ones"
            );
        }
    }

    #[test]
    fn repeats_owners_only_when_short_of_owners() {
        let set = nodes(6, 2);
        for cid in cids(200) {
            let chosen = place(&cid, &set, 3);
            let node_set: BTreeSet<_> = chosen.iter().map(|n| n.node).collect();
            let owner_set: BTreeSet<_> = chosen.iter().map(|n| n.owner).collect();
            assert_eq!(node_set.len(), 3);
            assert_eq!(owner_set.len(), 2, "both owners used before one repeats");
        }
        let few = nodes(2, 2);
        assert_eq!(place(&ContentId::of(b"x"), &few, 3).len(), 2);
        assert!(place(&ContentId::of(b"x"), &[], 3).is_empty());
    }

    #[test]
    fn deterministic_whatever_the_input_order_and_duplicates() {
        let set = nodes(20, 7);
        let mut shuffled: Vec<_> = set.iter().rev().copied().collect();
        shuffled.extend_from_slice(&set[..5]);
        for cid in cids(200) {
            assert_eq!(place(&cid, &set, 3), place(&cid, &shuffled, 3));
        }
    }

    /// The fraction of replica slots that change between two node sets.
    fn moved_fraction(before: &[PlacementNode], after: &[PlacementNode], replicas: usize) -> f64 {
        let all = cids(10_000);
        let mut moved = 0usize;
        for cid in &all {
            let a: BTreeSet<_> = place(cid, before, replicas)
                .into_iter()
                .map(|n| n.node)
                .collect();
            let b: BTreeSet<_> = place(cid, after, replicas)
                .into_iter()
                .map(|n| n.node)
                .collect();
            moved += a.difference(&b).count();
        }
        moved as f64 / (all.len() * replicas) as f64
    }

    #[test]
    fn a_joining_node_takes_about_one_share() {
        let n = 20;
        let before = nodes(n, n);
        let after = nodes(n + 1, n + 1);
        let fraction = moved_fraction(&before, &after, 3);
        let ideal = 1.0 / f64::from(n + 1);
        assert!(
            (fraction - ideal).abs() < ideal * 0.15,
            "moved {fraction:.4} of replica slots, ideal {ideal:.4}"
        );
        // Every chunk that moved moved onto the newcomer, and only one slot.
        let newcomer = after[n as usize].node;
        for cid in cids(2_000) {
            let a: BTreeSet<_> = place(&cid, &before, 3)
                .into_iter()
                .map(|p| p.node)
                .collect();
            let b: BTreeSet<_> = place(&cid, &after, 3).into_iter().map(|p| p.node).collect();
            let gained: Vec<_> = b.difference(&a).collect();
            assert!(gained.is_empty() || gained == [&newcomer]);
        }
    }

    #[test]
    fn candidates_are_the_picks_then_the_window_of_the_ranking() {
        // One owner holds most nodes, so the distinct-owner picks reach
        // past the window for some chunks: they stay candidates.
        let mut set = nodes(30, 30);
        for n in set.iter_mut().skip(3) {
            n.owner = set_owner();
        }
        let window = 3 * PLACEMENT_WINDOW_FACTOR;
        for cid in cids(300) {
            let picks = place(&cid, &set, 3);
            let ranked = rank(&cid, &set);
            let got = candidates(&cid, &set, 3);
            assert_eq!(&got[..3], &picks[..], "the picks come first");
            for n in &ranked[..window] {
                assert!(got.contains(n), "every node of the window is a candidate");
            }
            let expected: BTreeSet<_> = picks.iter().chain(&ranked[..window]).collect();
            assert_eq!(got.len(), expected.len(), "nothing else, nothing twice");
            for n in &ranked {
                assert_eq!(may_hold(&cid, &set, 3, &n.node), expected.contains(n));
            }
        }
        assert!(candidates(&ContentId::of(b"x"), &[], 3).is_empty());
        let few = nodes(2, 2);
        assert_eq!(candidates(&ContentId::of(b"x"), &few, 3).len(), 2);
    }

    fn set_owner() -> AccountId {
        AccountId(key(9, 0))
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_chunks() {
        // Shared owners, so the owner rule is exercised too.
        let before = nodes(20, 8);
        for leaver in [0usize, 7, 19] {
            let mut after = before.clone();
            let gone = after.remove(leaver);
            for cid in cids(3_000) {
                let a = place(&cid, &before, 3);
                let b = place(&cid, &after, 3);
                if !a.contains(&gone) {
                    assert_eq!(a, b, "chunk not on the leaver must stay put");
                }
            }
        }
    }
}
