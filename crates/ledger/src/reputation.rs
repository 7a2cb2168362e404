//! Reputation that explains itself: every change of a node's reputation
//! has a reason with a fixed weight, and the node's record keeps how many
//! times each reason moved it, so anyone reading the ledger sees why a
//! node's reputation is what it is: the start, plus each reason's count
//! times its weight, kept on the scale `0..=REPUTATION_MAX` as it went.

use peercloud_types::NodeId;
use peercloud_types::job::REPUTATION_MAX;

use crate::event::Event;
use crate::records::ReputationReason;
use crate::state::State;

/// Moves `node`'s reputation by `count` times `reason`'s weight (kept on
/// the scale), tallies it, and emits `ReputationChanged` when it moved.
pub(crate) fn change(
    state: &mut State,
    node: &NodeId,
    reason: ReputationReason,
    count: u64,
    events: &mut Vec<Event>,
) {
    // Nodes are never deregistered: a node that took part has a record.
    let Some(mut record) = state.node(node).cloned() else {
        return;
    };
    if count == 0 {
        return;
    }
    let before = record.reputation;
    let delta = i64::try_from(count)
        .unwrap_or(i64::MAX)
        .saturating_mul(reason.weight());
    let after = i64::from(before)
        .saturating_add(delta)
        .clamp(0, i64::from(REPUTATION_MAX));
    let after = u32::try_from(after).unwrap_or(REPUTATION_MAX);
    record.reputation = after;
    record.tally.add(reason, count);
    state.nodes.put(*node, record);
    if before != after {
        events.push(Event::ReputationChanged {
            node: *node,
            before,
            after,
        });
    }
}
