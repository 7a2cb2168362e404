//! How the swarm actor finds peers and content: bootstrap peers, addresses
//! learnt from identify (into Kademlia, and relay candidates for the NAT
//! state), peers that stopped answering taken out of the routing table, and
//! Kademlia's answers (peer lookups for parked requests, provider lookups
//! for the edge caches).

use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, kad, relay};
use tracing::{debug, info, warn};

use super::Actor;
use crate::addrs::{ip_of, is_relayed, peer_of, without_peer};
use crate::config::{DEPARTED_AFTER_DIAL_FAILURES, DIAL_FAILURES_TRACKED_MAX, KADEMLIA_PROTOCOL};
use crate::error::NetError;
use crate::metrics::bump;

impl Actor {
    /// Adds the bootstrap peers to Kademlia, dials them and starts a bootstrap.
    /// Every address is checked before any is used; an address naming this
    /// node itself is skipped (a devnet may hand every node the same list).
    pub(super) fn bootstrap(&mut self, addrs: &[Multiaddr]) -> Result<(), NetError> {
        let mut peers = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match peer_of(addr) {
                Some(peer) if peer == *self.swarm.local_peer_id() => {}
                Some(peer) => peers.push((peer, addr.clone())),
                None => return Err(NetError::BootstrapAddress { addr: addr.clone() }),
            }
        }
        for (peer, addr) in &peers {
            self.learn_address(*peer, addr.clone());
            let opts = DialOpts::peer_id(*peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(opts) {
                // A bootstrap peer being down is not fatal: others, or later
                // Kademlia bootstraps, connect us.
                warn!(%addr, %error, "cannot dial bootstrap peer");
            }
        }
        if !peers.is_empty()
            && let Err(error) = self.swarm.behaviour_mut().kademlia.bootstrap()
        {
            warn!(%error, "cannot start a Kademlia bootstrap");
        }
        Ok(())
    }

    /// Counts a failed dial of `peer`; after [`DEPARTED_AFTER_DIAL_FAILURES`]
    /// in a row (and no connection since) the peer is taken out of the
    /// Kademlia routing table, so lookups and other nodes' queries stop
    /// being sent to a node that has left. Kademlia itself keeps such a
    /// peer until a newcomer needs its bucket slot. Bootstrap peers stay:
    /// they are how this node finds the network again when they return.
    pub(super) fn dial_failed(&mut self, peer: PeerId) {
        if self.swarm.is_connected(&peer) {
            return;
        }
        if self.dial_failures.len() >= DIAL_FAILURES_TRACKED_MAX
            && !self.dial_failures.contains_key(&peer)
        {
            // Bounded: forget the counts (a departed peer is counted again).
            self.dial_failures.clear();
        }
        let failures = self.dial_failures.entry(peer).or_insert(0);
        *failures += 1;
        if *failures < DEPARTED_AFTER_DIAL_FAILURES {
            return;
        }
        self.dial_failures.remove(&peer);
        if self
            .config
            .bootstrap
            .iter()
            .any(|addr| peer_of(addr) == Some(peer))
        {
            return;
        }
        if self
            .swarm
            .behaviour_mut()
            .kademlia
            .remove_peer(&peer)
            .is_some()
        {
            bump(&self.metrics.peers_forgotten);
            info!(%peer, failures = DEPARTED_AFTER_DIAL_FAILURES, "peer unreachable: removed from the routing table");
        }
    }

    /// Records where `peer` listens: in Kademlia (for lookups and dials) and
    /// in the swarm (for request-response dials).
    pub(super) fn learn_address(&mut self, peer: PeerId, addr: Multiaddr) {
        let addr = without_peer(addr);
        self.swarm
            .behaviour_mut()
            .kademlia
            .add_address(&peer, addr.clone());
        self.swarm.add_peer_address(peer, addr);
    }

    /// Puts the listen addresses a Peercloud peer reports into Kademlia, so
    /// peers learnt from inbound connections (whose remote port is ephemeral)
    /// can be found and dialled by others.
    pub(super) fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        let relays = info.protocols.contains(&relay::HOP_PROTOCOL_NAME);
        let direct = self.dialed.get(&peer_id).cloned().or_else(|| {
            // A peer that dialled us: the first of its listen addresses that
            // is neither relayed nor loopback.
            info.listen_addrs
                .iter()
                .find(|addr| !is_relayed(addr) && !ip_of(addr).is_some_and(|ip| ip.is_loopback()))
                .cloned()
        });
        self.nat
            .on_identified(peer_id, relays, direct, &mut self.swarm);
        let kademlia = StreamProtocol::new(KADEMLIA_PROTOCOL);
        if !info.protocols.contains(&kademlia) {
            return;
        }
        for addr in info.listen_addrs {
            self.swarm
                .behaviour_mut()
                .kademlia
                .add_address(&peer_id, addr);
        }
    }

    pub(super) fn on_kademlia(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        match result {
            // The first providers found answer (a fallback needs one copy);
            // a query that ends without any answers none.
            kad::QueryResult::GetProviders(found) => {
                let providers = match found {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => providers,
                    _ if !step.last => return,
                    _ => Default::default(),
                };
                if let Some(reply) = self.provider_queries.remove(&id) {
                    let _ = reply.send(providers.into_iter().collect());
                    if let Some(mut query) = self.swarm.behaviour_mut().kademlia.query_mut(&id) {
                        query.finish();
                    }
                }
            }
            kad::QueryResult::GetClosestPeers(Ok(ok)) => {
                self.on_lookup(&ok.key, ok.peers, step.last)
            }
            kad::QueryResult::GetClosestPeers(Err(kad::GetClosestPeersError::Timeout {
                key,
                peers,
            })) => self.on_lookup(&key, peers, true),
            kad::QueryResult::Bootstrap(result) => debug!(?result, "Kademlia bootstrap step"),
            _ => {}
        }
    }
}
