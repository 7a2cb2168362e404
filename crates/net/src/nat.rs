//! A node behind a home router as a full member: it learns that it is not
//! reachable (AutoNAT), keeps slots on relays so others reach it through
//! them (circuit relay v2), and lets DCUtR turn a relayed connection into a
//! direct one where the routers allow.
//!
//! ```text
//!  AutoNAT: peers dial our addresses back
//!     ├─ public  ─▶ the address is confirmed; this node relays for others
//!     └─ private ─▶ reserve on RELAY_RESERVATIONS_WANTED relays (configured
//!                   ones first, then connected peers offering the relay
//!                   protocol); each reservation is a listen address
//!                   <relay addr>/p2p/<relay>/p2p-circuit that identify
//!                   pushes to peers and Kademlia spreads
//!  a peer dials that address ─▶ relayed connection ─▶ DCUtR: both sides
//!  dial each other at once ─▶ direct connection (or the relay carries it)
//!  a relay dies ─▶ its listener closes ─▶ the next candidate is reserved
//! ```
//!
//! The swarm actor owns a [`Nat`] and hands it the events; [`NatView`] is
//! what the node shows of it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, relay};
use tracing::{debug, info, warn};

use crate::addrs::{peer_of, without_peer};
use crate::behaviour::Behaviour;
use crate::config::{
    NetConfig, RELAY_CANDIDATES_MAX, RELAY_RESERVATIONS_WANTED, RELAY_RETRY_AFTER,
};

/// Whether peers can dial this node, as AutoNAT last found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reachability {
    /// Not known yet (no probe answered; or, on the internet, only private
    /// addresses to test).
    #[default]
    Unknown,
    /// Peers dialled this address back.
    Public {
        /// The address they reached.
        address: Multiaddr,
    },
    /// Peers could not dial any of our addresses: behind NAT or a firewall.
    Private,
}

/// What a node knows of its own reachability ([`crate::NetHandle::nat`]).
#[derive(Debug, Clone, Default)]
pub struct NatView {
    /// AutoNAT's finding.
    pub reachability: Reachability,
    /// Relays holding a reservation for this node.
    pub relays: Vec<PeerId>,
    /// The addresses peers reach this node at through them.
    pub relayed_addrs: Vec<Multiaddr>,
    /// Whether this node relays for others now.
    pub relaying: bool,
    /// Relayed connections DCUtR turned into direct ones.
    pub hole_punches: u64,
    /// Hole punches that failed (the relay carries those connections).
    pub hole_punch_failures: u64,
}

pub(crate) type SharedNat = Arc<RwLock<NatView>>;

/// One reservation asked of a relay: its listener, until it closes.
struct Reservation {
    relay: PeerId,
    accepted: bool,
    addrs: Vec<Multiaddr>,
}

/// The actor's NAT state.
pub(crate) struct Nat {
    view: SharedNat,
    /// Configured relays, in the order given.
    configured: Vec<(PeerId, Multiaddr)>,
    /// Connected peers that offer the relay protocol, with an address to
    /// reach them at (at most [`RELAY_CANDIDATES_MAX`]).
    candidates: BTreeMap<PeerId, Multiaddr>,
    reservations: HashMap<ListenerId, Reservation>,
    /// Relays that refused or dropped us, and when.
    passed_over: HashMap<PeerId, Instant>,
    reachability: Reachability,
}

impl Nat {
    /// The state for `config`; configured relays without a `/p2p/<peer id>`
    /// are reported and skipped.
    pub(crate) fn new(config: &NetConfig, view: SharedNat) -> Nat {
        let configured = config
            .relays
            .iter()
            .filter_map(|addr| match peer_of(addr) {
                Some(peer) => Some((peer, without_peer(addr.clone()))),
                None => {
                    warn!(%addr, "relay address without /p2p/<peer id>: skipped");
                    None
                }
            })
            .collect();
        Nat {
            view,
            configured,
            candidates: BTreeMap::new(),
            reservations: HashMap::new(),
            passed_over: HashMap::new(),
            reachability: Reachability::Unknown,
        }
    }

    /// Whether this node wants relay reservations now: it was found
    /// unreachable, or it was given relays to use.
    fn wants_relays(&self) -> bool {
        self.reachability == Reachability::Private || !self.configured.is_empty()
    }

    /// A connected peer said which protocols it speaks; `addr` is where we
    /// reach it directly (none when it reached us only through a relay).
    pub(crate) fn on_identified(
        &mut self,
        peer: PeerId,
        relays: bool,
        addr: Option<Multiaddr>,
        swarm: &mut Swarm<Behaviour>,
    ) {
        match addr {
            Some(addr) if relays => {
                if self.candidates.len() < RELAY_CANDIDATES_MAX
                    || self.candidates.contains_key(&peer)
                {
                    self.candidates.insert(peer, without_peer(addr));
                    self.maintain(swarm);
                }
            }
            _ => {
                self.candidates.remove(&peer);
            }
        }
    }

    /// The peer is no longer connected: not a candidate until it is again.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId) {
        self.candidates.remove(peer);
    }

    pub(crate) fn on_autonat(&mut self, event: autonat::Event, swarm: &mut Swarm<Behaviour>) {
        let autonat::Event::StatusChanged { old, new } = event else {
            return;
        };
        let reachability = match new {
            autonat::NatStatus::Public(address) => Reachability::Public { address },
            autonat::NatStatus::Private => Reachability::Private,
            autonat::NatStatus::Unknown => Reachability::Unknown,
        };
        info!(?old, ?reachability, "reachability changed");
        // A node others cannot dial does not offer to relay (its only
        // external addresses would be its own relayed ones).
        if let Some(relay) = swarm.behaviour_mut().relay.as_mut() {
            if reachability == Reachability::Private {
                relay.0.set_status(Some(relay::Status::Disable));
                self.view_mut(|view| view.relaying = false);
            } else {
                relay.0.set_status(None);
            }
        }
        self.reachability = reachability;
        self.publish();
        if !self.wants_relays() {
            let listeners: Vec<ListenerId> = self.reservations.keys().copied().collect();
            for listener in listeners {
                swarm.remove_listener(listener);
            }
        }
        self.maintain(swarm);
    }

    pub(crate) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    info!(relay = %relay_peer_id, "relay reservation accepted");
                }
                for reservation in self.reservations.values_mut() {
                    if reservation.relay == relay_peer_id {
                        reservation.accepted = true;
                    }
                }
                self.publish();
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                debug!(relay = %relay_peer_id, "connected to a peer through a relay");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                debug!(peer = %src_peer_id, "a peer connected through our relay");
            }
        }
    }

    pub(crate) fn on_relay_server(&mut self, event: relay::Event) {
        match event {
            relay::Event::StatusChanged { status } => {
                info!(?status, "relay service");
                self.view_mut(|view| view.relaying = status == relay::Status::Enable);
            }
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                debug!(peer = %src_peer_id, "relaying for a peer");
            }
            other => debug!(event = ?other, "relay"),
        }
    }

    pub(crate) fn on_dcutr(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => {
                info!(peer = %event.remote_peer_id, "hole punched: direct connection");
                self.view_mut(|view| view.hole_punches += 1);
            }
            Err(error) => {
                debug!(peer = %event.remote_peer_id, %error, "hole punching failed");
                self.view_mut(|view| view.hole_punch_failures += 1);
            }
        }
    }

    /// A listener gave an address: a reservation's is a relayed address.
    pub(crate) fn on_new_listen_addr(&mut self, listener: ListenerId, addr: &Multiaddr) {
        if let Some(reservation) = self.reservations.get_mut(&listener) {
            if !reservation.addrs.contains(addr) {
                reservation.addrs.push(addr.clone());
            }
            self.publish();
        }
    }

    /// A listener closed: a reservation's means the relay dropped us or
    /// died; another is reserved.
    pub(crate) fn on_listener_closed(
        &mut self,
        listener: ListenerId,
        swarm: &mut Swarm<Behaviour>,
    ) {
        if let Some(reservation) = self.reservations.remove(&listener) {
            info!(relay = %reservation.relay, "relay reservation ended");
            self.passed_over.insert(reservation.relay, Instant::now());
            self.candidates.remove(&reservation.relay);
            self.publish();
            self.maintain(swarm);
        }
    }

    /// Tops reservations up to [`RELAY_RESERVATIONS_WANTED`] while the node
    /// wants relays: configured relays first, then candidates, none that
    /// refused or dropped us in the last [`RELAY_RETRY_AFTER`].
    pub(crate) fn maintain(&mut self, swarm: &mut Swarm<Behaviour>) {
        if !self.wants_relays() {
            return;
        }
        let now = Instant::now();
        self.passed_over
            .retain(|_, at| now.duration_since(*at) < RELAY_RETRY_AFTER);
        let held: HashSet<PeerId> = self.reservations.values().map(|r| r.relay).collect();
        let mut missing = RELAY_RESERVATIONS_WANTED.saturating_sub(held.len());
        let me = *swarm.local_peer_id();
        let choices: Vec<(PeerId, Multiaddr)> = self
            .configured
            .iter()
            .cloned()
            .chain(self.candidates.iter().map(|(p, a)| (*p, a.clone())))
            .collect();
        for (relay, addr) in choices {
            if missing == 0 {
                break;
            }
            if relay == me || held.contains(&relay) || self.passed_over.contains_key(&relay) {
                continue;
            }
            let circuit = addr
                .with(AddrProtocol::P2p(relay))
                .with(AddrProtocol::P2pCircuit);
            match swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    debug!(%circuit, "asking a relay for a reservation");
                    self.reservations.insert(
                        listener,
                        Reservation {
                            relay,
                            accepted: false,
                            addrs: Vec::new(),
                        },
                    );
                    missing -= 1;
                }
                Err(error) => {
                    warn!(%circuit, %error, "cannot listen through a relay");
                    self.passed_over.insert(relay, now);
                }
            }
        }
        self.publish();
    }

    /// Writes the state into the shared view.
    fn publish(&self) {
        let mut relays: Vec<PeerId> = self
            .reservations
            .values()
            .filter(|r| r.accepted)
            .map(|r| r.relay)
            .collect();
        relays.sort();
        relays.dedup();
        let relayed_addrs = self
            .reservations
            .values()
            .filter(|r| r.accepted)
            .flat_map(|r| r.addrs.iter().cloned())
            .collect();
        let reachability = self.reachability.clone();
        self.view_mut(|view| {
            view.reachability = reachability;
            view.relays = relays;
            view.relayed_addrs = relayed_addrs;
        });
    }

    fn view_mut(&self, change: impl FnOnce(&mut NatView)) {
        match self.view.write() {
            Ok(mut view) => change(&mut view),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }
}
