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
//! first [`window`] ranks, and a node accepts a chunk only when it is one of
//! them ([`may_hold`], the one rule both sides apply). A chunk therefore
//! lives where a reader looks first, and no node can be made to hold chunks
//! that rendezvous hashing did not give it.
//!
//! **Erasure groups** ([`place_group`]): every piece of a group (its data
//! and parity chunks) is kept once, and no two on one node, so losing a node
//! costs a group one piece at most. Piece `i` goes to the best-ranked node
//! for its own CID that no earlier piece of the group took, preferring
//! owners the group has not used yet. Such a node is always within the
//! piece's first `pieces` ranks (earlier pieces took fewer than `pieces`
//! nodes), so the [`window`] is at least [`GROUP_PIECES_MAX`]: a holder
//! accepts a piece the group placement gave it, without knowing the group.
//!
//! **Weights** ([`PlacementNode::vnodes`]): a node of a cluster takes a share
//! of the key space in proportion to the capacity it offers. It scores as
//! its best of `vnodes` virtual nodes (`BLAKE3(cid digest || node id ||
//! index)`; index 0 hashes without the index, so a node of one vnode scores
//! as before weights existed), so its chance of ranking first is about its
//! vnodes over everyone's. Integers only: every node computes the same
//! ranking on every machine, and adding, removing or reweighting one node
//! moves only the slots that node gains or loses.
//!
//! Deterministic: ties in score (which need a BLAKE3 collision) break by node id,
//! and a node listed twice counts once.

use peercloud_types::{AccountId, ContentId, NodeId};

/// Most virtual nodes one node has: the weight of the largest member of a
/// cluster. 32 levels of weight are finer than capacities are known, and a
/// ranking costs at most 32 hashes per node.
pub const VNODES_MAX: u16 = 32;

/// A node that may hold chunks, the account that owns it, and its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlacementNode {
    /// The node's id.
    pub node: NodeId,
    /// Its owner (farmer) account.
    pub owner: AccountId,
    /// Its virtual nodes (1..=[`VNODES_MAX`]): its weight in the ranking.
    pub vnodes: u16,
}

impl PlacementNode {
    /// A node of weight one (every registered node outside a cluster).
    pub fn new(node: NodeId, owner: AccountId) -> PlacementNode {
        PlacementNode {
            node,
            owner,
            vnodes: 1,
        }
    }
}

/// The virtual nodes of a node offering `capacity` bytes in a set whose
/// largest offer is `largest`: proportional, at least 1, [`VNODES_MAX`] for
/// the largest.
pub fn vnodes_for(capacity: u64, largest: u64) -> u16 {
    if largest == 0 {
        return 1;
    }
    let scaled = u128::from(capacity) * u128::from(VNODES_MAX) / u128::from(largest);
    scaled.clamp(1, u128::from(VNODES_MAX)) as u16
}

/// The rendezvous score of `node` for `cid`: BLAKE3 of the CID's digest then
/// the node's public key. Higher is preferred.
pub fn score(cid: &ContentId, node: &NodeId) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(cid.digest());
    hasher.update(&node.key().0);
    *hasher.finalize().as_bytes()
}

/// The score of a weighted node: the best of its virtual nodes' scores
/// (vnode 0 is [`score`]; vnode `i` appends `i` as two little-endian bytes).
pub fn weighted_score(cid: &ContentId, node: &PlacementNode) -> [u8; 32] {
    let mut best = score(cid, &node.node);
    for index in 1..node.vnodes.min(VNODES_MAX) {
        let mut hasher = blake3::Hasher::new();
        hasher.update(cid.digest());
        hasher.update(&node.node.key().0);
        hasher.update(&index.to_le_bytes());
        best = best.max(*hasher.finalize().as_bytes());
    }
    best
}

/// All distinct nodes in preference order for `cid` (best first). Repair uses
/// it to find the next candidates after [`place`]'s choices.
pub fn rank(cid: &ContentId, nodes: &[PlacementNode]) -> Vec<PlacementNode> {
    let mut scored: Vec<([u8; 32], PlacementNode)> =
        nodes.iter().map(|n| (weighted_score(cid, n), *n)).collect();
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

/// Most pieces (data + parity chunks) of one erasure group the network
/// places, each on its own node: 20 holds the codes in use for storage at
/// scale (Backblaze's 17+3, RS(10+4), RS(4+2)) and keeps the ranks a holder
/// accepts a chunk in ([`window`]) a small part of a large network.
pub const GROUP_PIECES_MAX: usize = 20;

/// How many of a chunk's first ranks a put may use and a holder accepts it
/// in: `replicas × PLACEMENT_WINDOW_FACTOR` for a replicated chunk's fall
/// through, and at least [`GROUP_PIECES_MAX`] for a piece of an erasure
/// group (which lands within its first `pieces` ranks). A holder cannot
/// tell the two apart, so the rule is the larger of both.
pub fn window(replicas: usize) -> usize {
    replicas
        .saturating_mul(PLACEMENT_WINDOW_FACTOR)
        .max(GROUP_PIECES_MAX)
}

/// The nodes a put of `cid` may use, in the order it tries them: [`place`]'s
/// `replicas` picks (distinct owners first), then the other nodes among the
/// first [`window`] of the ranking, best first.
pub fn candidates(cid: &ContentId, nodes: &[PlacementNode], replicas: usize) -> Vec<PlacementNode> {
    let mut chosen = place(cid, nodes, replicas);
    for node in rank(cid, nodes).into_iter().take(window(replicas)) {
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

/// An erasure group cannot be placed on distinct nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupPlacementError {
    /// Fewer distinct nodes than the group has pieces.
    #[error(
        "an erasure group of {pieces} pieces needs {pieces} distinct storage nodes; only {nodes} are registered and staked"
    )]
    TooFewNodes {
        /// Pieces in the group (data + parity).
        pieces: usize,
        /// Distinct nodes there are.
        nodes: usize,
    },
    /// More pieces than the network places for one group.
    #[error("an erasure group of {pieces} pieces is wider than the {max} the network places")]
    TooWide {
        /// Pieces in the group.
        pieces: usize,
        /// [`GROUP_PIECES_MAX`].
        max: usize,
    },
}

/// The node for the next piece `cid` of a group: the best-ranked of its
/// first [`GROUP_PIECES_MAX`] ranks that is not in `used` (the nodes the
/// group's other pieces took, and any this piece already failed on), of an
/// owner not in `used` when there is one. `None` when every node of the
/// window is used.
pub fn group_candidate(
    cid: &ContentId,
    nodes: &[PlacementNode],
    used: &[PlacementNode],
) -> Option<PlacementNode> {
    let free: Vec<PlacementNode> = rank(cid, nodes)
        .into_iter()
        .take(GROUP_PIECES_MAX)
        .filter(|n| used.iter().all(|u| u.node != n.node))
        .collect();
    free.iter()
        .find(|n| used.iter().all(|u| u.owner != n.owner))
        .or(free.first())
        .copied()
}

/// Where each piece of an erasure group goes, in piece order: distinct
/// nodes, distinct owners first (see the module documentation). Refused when
/// there are fewer distinct nodes than pieces, or more pieces than
/// [`GROUP_PIECES_MAX`].
pub fn place_group(
    cids: &[ContentId],
    nodes: &[PlacementNode],
) -> Result<Vec<PlacementNode>, GroupPlacementError> {
    if cids.len() > GROUP_PIECES_MAX {
        return Err(GroupPlacementError::TooWide {
            pieces: cids.len(),
            max: GROUP_PIECES_MAX,
        });
    }
    let mut distinct: Vec<NodeId> = nodes.iter().map(|n| n.node).collect();
    distinct.sort();
    distinct.dedup();
    let too_few = || GroupPlacementError::TooFewNodes {
        pieces: cids.len(),
        nodes: distinct.len(),
    };
    if distinct.len() < cids.len() {
        return Err(too_few());
    }
    let mut used: Vec<PlacementNode> = Vec::with_capacity(cids.len());
    for cid in cids {
        // Always found: fewer than `cids.len()` nodes are used, and the
        // window holds at least that many distinct nodes.
        let node = group_candidate(cid, nodes, &used).ok_or_else(too_few)?;
        used.push(node);
    }
    Ok(used)
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
            .map(|i| PlacementNode::new(NodeId(key(1, i)), AccountId(key(2, i % owners))))
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
        let window = window(3);
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
    fn a_group_lands_on_distinct_nodes_each_within_its_pieces_first_ranks() {
        let set = nodes(40, 40);
        for group in 0..100u32 {
            let pieces: Vec<ContentId> = (0..6u32)
                .map(|i| ContentId::of(&[group.to_le_bytes(), i.to_le_bytes()].concat()))
                .collect();
            let placed = place_group(&pieces, &set).unwrap();
            let distinct: BTreeSet<_> = placed.iter().map(|n| n.node).collect();
            assert_eq!(distinct.len(), 6, "one piece per node");
            for (i, (cid, node)) in pieces.iter().zip(&placed).enumerate() {
                let ranked = rank(cid, &set);
                let at = ranked.iter().position(|n| n == node).unwrap();
                assert!(at <= i, "piece {i} went past its first {} ranks", i + 1);
                assert!(
                    may_hold(cid, &set, 3, &node.node),
                    "the holder accepts what the group placement gave it"
                );
            }
            assert_eq!(placed, place_group(&pieces, &set).unwrap(), "deterministic");
        }
    }

    #[test]
    fn a_group_uses_new_owners_before_repeating_one() {
        // 12 nodes of 6 owners: a group of 6 takes each owner once.
        let set = nodes(12, 6);
        for group in 0..100u32 {
            let pieces: Vec<ContentId> = (0..6u32)
                .map(|i| ContentId::of(&[group.to_le_bytes(), i.to_le_bytes()].concat()))
                .collect();
            let placed = place_group(&pieces, &set).unwrap();
            let owners: BTreeSet<_> = placed.iter().map(|n| n.owner).collect();
            assert_eq!(owners.len(), 6);
        }
        // 6 nodes of 3 owners: owners repeat, nodes never do.
        let set = nodes(6, 3);
        let pieces: Vec<ContentId> = cids(6);
        let placed = place_group(&pieces, &set).unwrap();
        let distinct: BTreeSet<_> = placed.iter().map(|n| n.node).collect();
        assert_eq!(distinct.len(), 6);
    }

    #[test]
    fn a_group_wider_than_the_network_is_refused_naming_both_numbers() {
        let set = nodes(4, 4);
        let err = place_group(&cids(6), &set).unwrap_err();
        assert_eq!(
            err,
            GroupPlacementError::TooFewNodes {
                pieces: 6,
                nodes: 4
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("6 distinct") && text.contains("only 4"),
            "{text}"
        );
        let err = place_group(&cids(GROUP_PIECES_MAX as u32 + 1), &nodes(64, 64)).unwrap_err();
        assert!(matches!(err, GroupPlacementError::TooWide { .. }), "{err}");
    }

    #[test]
    fn a_failed_piece_falls_to_the_next_node_the_group_does_not_use() {
        let set = nodes(10, 10);
        let pieces = cids(6);
        let placed = place_group(&pieces, &set).unwrap();
        // Piece 2's node refuses: its next candidate is none of the group's.
        let mut used = placed.clone();
        let next = group_candidate(&pieces[2], &set, &used).unwrap();
        assert!(!placed.contains(&next));
        used.push(next);
        let after = group_candidate(&pieces[2], &set, &used).unwrap();
        assert!(!used.contains(&after));
        // Every node used: nothing left.
        assert_eq!(group_candidate(&pieces[2], &set, &set), None);
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

    #[test]
    fn weights_share_the_key_space_by_vnodes_and_a_reweight_moves_only_that_node() {
        // Node 0 offers four times what the others do.
        let mut set = nodes(6, 6);
        set[0].vnodes = vnodes_for(4_000, 4_000);
        for n in &mut set[1..] {
            n.vnodes = vnodes_for(1_000, 4_000);
        }
        assert_eq!(set[0].vnodes, VNODES_MAX);
        assert_eq!(set[1].vnodes, VNODES_MAX / 4);
        let all = cids(20_000);
        let firsts = all
            .iter()
            .filter(|cid| rank(cid, &set)[0].node == set[0].node)
            .count();
        // Expected share 4/9 of first ranks (about 8,900 of 20,000).
        let share = firsts as f64 / all.len() as f64;
        assert!((0.40..0.49).contains(&share), "share {share}");
        // Halving node 0's weight: chunks whose first rank was another node
        // and stays ahead of node 0 do not move between the others.
        let mut lighter = set.clone();
        lighter[0].vnodes = VNODES_MAX / 2;
        for cid in &all[..3_000] {
            let (a, b) = (rank(cid, &set), rank(cid, &lighter));
            let a: Vec<_> = a
                .iter()
                .map(|n| n.node)
                .filter(|n| *n != set[0].node)
                .collect();
            let b: Vec<_> = b
                .iter()
                .map(|n| n.node)
                .filter(|n| *n != set[0].node)
                .collect();
            assert_eq!(a, b, "the others keep their order");
        }
        // One vnode scores as an unweighted node always did.
        let one = PlacementNode::new(set[3].node, set[3].owner);
        assert_eq!(weighted_score(&all[0], &one), score(&all[0], &one.node));
        assert_eq!(vnodes_for(0, 4_000), 1);
        assert_eq!(vnodes_for(5, 0), 1);
    }
}
