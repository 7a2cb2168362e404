//! Counters of what the swarm actor did, shared with every handle.
//!
//! The actor increments them; the node reads a [`NetMetricsSnapshot`] (for its
//! Prometheus endpoint or dashboard) through [`crate::NetHandle::metrics`].
//! Plain relaxed atomics: each counter is independent and only ever grows,
//! except `peers_connected`, a gauge.

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters, owned jointly by the actor and the handles.
#[derive(Debug, Default)]
pub(crate) struct NetMetrics {
    pub(crate) peers_connected: AtomicU64,
    pub(crate) gossip_published: AtomicU64,
    pub(crate) gossip_received: AtomicU64,
    pub(crate) gossip_dropped: AtomicU64,
    pub(crate) gossip_rejected: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) requests_received: AtomicU64,
    pub(crate) requests_unanswered: AtomicU64,
    pub(crate) lookups: AtomicU64,
    pub(crate) peers_forgotten: AtomicU64,
    pub(crate) bulk_requests_sent: AtomicU64,
    pub(crate) bulk_requests_received: AtomicU64,
    pub(crate) bulk_fallbacks: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Subtracts one from a gauge, never below zero.
pub(crate) fn drop_one(gauge: &AtomicU64) {
    let _ = gauge.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |value| {
        value.checked_sub(1)
    });
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetMetricsSnapshot {
    /// Peers with at least one open connection now (a gauge).
    pub peers_connected: u64,
    /// Gossip messages this node published.
    pub gossip_published: u64,
    /// Gossip messages received from other nodes and handed to the node.
    pub gossip_received: u64,
    /// Gossip messages dropped because the node's event queue was full.
    pub gossip_dropped: u64,
    /// Gossip messages the node judged invalid (not forwarded; the sender
    /// loses peer score).
    pub gossip_rejected: u64,
    /// Outbound requests handed to libp2p.
    pub requests_sent: u64,
    /// Outbound requests that ended in an error (unreachable, timeout, ...).
    pub requests_failed: u64,
    /// Inbound requests handed to the node.
    pub requests_received: u64,
    /// Inbound requests the node dropped, let time out, answered too large,
    /// or that were refused because too many were pending.
    pub requests_unanswered: u64,
    /// Kademlia lookups started to find a peer before requesting it.
    pub lookups: u64,
    /// Peers taken out of the routing table after failed dials in a row.
    pub peers_forgotten: u64,
    /// Outbound requests sent over the bulk channel (also in `requests_sent`
    /// only when they fell back to libp2p).
    pub bulk_requests_sent: u64,
    /// Inbound requests that arrived over the bulk channel (also counted in
    /// `requests_received`).
    pub bulk_requests_received: u64,
    /// Requests on a bulk protocol that went over libp2p because the peer's
    /// bulk channel could not be opened or reached.
    pub bulk_fallbacks: u64,
}

impl NetMetrics {
    pub(crate) fn snapshot(&self) -> NetMetricsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NetMetricsSnapshot {
            peers_connected: read(&self.peers_connected),
            gossip_published: read(&self.gossip_published),
            gossip_received: read(&self.gossip_received),
            gossip_dropped: read(&self.gossip_dropped),
            gossip_rejected: read(&self.gossip_rejected),
            requests_sent: read(&self.requests_sent),
            requests_failed: read(&self.requests_failed),
            requests_received: read(&self.requests_received),
            requests_unanswered: read(&self.requests_unanswered),
            lookups: read(&self.lookups),
            peers_forgotten: read(&self.peers_forgotten),
            bulk_requests_sent: read(&self.bulk_requests_sent),
            bulk_requests_received: read(&self.bulk_requests_received),
            bulk_fallbacks: read(&self.bulk_fallbacks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_and_the_gauge_stops_at_zero() {
        let metrics = NetMetrics::default();
        bump(&metrics.lookups);
        bump(&metrics.lookups);
        bump(&metrics.peers_connected);
        drop_one(&metrics.peers_connected);
        drop_one(&metrics.peers_connected);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.lookups, 2);
        assert_eq!(snapshot.peers_connected, 0);
    }
}
