//! The node's side of the network: a cheap, cloneable [`NetHandle`] that sends
//! commands to the swarm actor, and the [`NetEvent`]s the actor sends back.
//!
//! Every call is a message on a bounded queue plus a one-shot reply, so a slow
//! actor slows callers down instead of growing memory. Limits that can be
//! checked without the swarm (message sizes, requests to ourselves) are checked
//! here, before anything is queued.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::actor::Command;
use crate::config::{GOSSIP_DATA_BYTES_MAX, STREAMS_PER_CONNECTION_MAX};
use crate::error::{NetError, RequestFailure};
use crate::metrics::{NetMetrics, NetMetricsSnapshot};
use crate::protocol::{GossipTopic, Protocol};

/// Addresses the swarm listens on, written by the actor, read by handles.
pub(crate) type ListenAddrs = Arc<RwLock<Vec<Multiaddr>>>;

/// Requests this node has in flight to one peer on one protocol at most:
/// what the peer takes at once on one connection
/// ([`STREAMS_PER_CONNECTION_MAX`]), so a burst of callers waits here
/// instead of overrunning the peer's stream limit and losing the
/// connection with every request on it.
pub const REQUESTS_IN_FLIGHT_PER_PEER_MAX: usize = STREAMS_PER_CONNECTION_MAX;
/// (peer, protocol) pairs whose in-flight gates are kept; past it, idle ones go.
const REQUEST_GATES_MAX: usize = 4096;

/// The per-(peer, protocol) gates of [`REQUESTS_IN_FLIGHT_PER_PEER_MAX`],
/// and how long a request may wait at one: as long as a request may take
/// (the protocol's timeout), so a burst to a peer that never answers fails
/// in bounded time instead of queueing behind every earlier timeout.
#[derive(Debug)]
pub(crate) struct RequestGates {
    gates: Mutex<HashMap<(PeerId, Protocol), Arc<Semaphore>>>,
    waits: HashMap<Protocol, std::time::Duration>,
}

impl RequestGates {
    /// Gates whose waits are `config`'s request timeouts.
    pub(crate) fn new(config: &crate::NetConfig) -> RequestGates {
        RequestGates {
            gates: Mutex::new(HashMap::new()),
            waits: Protocol::ALL
                .iter()
                .map(|p| (*p, config.timeout_of(*p)))
                .collect(),
        }
    }

    fn gate(&self, peer: PeerId, protocol: Protocol) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if gates.len() >= REQUEST_GATES_MAX {
            gates.retain(|_, g| g.available_permits() < REQUESTS_IN_FLIGHT_PER_PEER_MAX);
        }
        gates
            .entry((peer, protocol))
            .or_insert_with(|| Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_PER_PEER_MAX)))
            .clone()
    }
}

/// Which gossip message a [`Verdict`] is about: its id and the peer that
/// forwarded it to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipId {
    pub(crate) message: libp2p::gossipsub::MessageId,
    pub(crate) from: PeerId,
}

/// The node's judgement of a gossip message: nothing is forwarded before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to the mesh.
    Accept,
    /// Invalid (undecodable, badly signed, from the wrong key): drop it and
    /// count it against the peer that sent it.
    Reject,
    /// Not worth forwarding but no fault (stale, a duplicate, not ours to judge).
    Ignore,
}

/// What the network tells the node.
pub enum NetEvent {
    /// A gossip message from another node (never one this node published).
    /// It is forwarded to other peers only after the node reports a
    /// [`Verdict`] on `id` with [`NetHandle::validate`].
    Gossip {
        /// The topic it arrived on.
        topic: GossipTopic,
        /// The node that published (signed) it; gossipsub's strict validation
        /// has checked the signature.
        source: Option<PeerId>,
        /// The payload.
        data: Vec<u8>,
        /// What to name in the verdict.
        id: GossipId,
    },
    /// A peer's request; answer through `reply` (or drop it to refuse).
    Request {
        /// The asking peer (authenticated by noise).
        peer: PeerId,
        /// The protocol it arrived on.
        protocol: Protocol,
        /// The request payload, within `protocol.request_bytes_max()`.
        data: Vec<u8>,
        /// Where the answer goes.
        reply: Responder,
    },
    /// The first connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
}

impl fmt::Debug for NetEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads can be megabytes: show their length, not their bytes.
        match self {
            NetEvent::Gossip {
                topic,
                source,
                data,
                id: _,
            } => f
                .debug_struct("Gossip")
                .field("topic", topic)
                .field("source", source)
                .field("data_bytes", &data.len())
                .finish(),
            NetEvent::Request {
                peer,
                protocol,
                data,
                ..
            } => f
                .debug_struct("Request")
                .field("peer", peer)
                .field("protocol", protocol)
                .field("data_bytes", &data.len())
                .finish(),
            NetEvent::PeerConnected(peer) => f.debug_tuple("PeerConnected").field(peer).finish(),
            NetEvent::PeerDisconnected(peer) => {
                f.debug_tuple("PeerDisconnected").field(peer).finish()
            }
        }
    }
}

/// The answer slot of one inbound request. Dropping it without [`Responder::send`]
/// closes the stream: the asking peer sees an error. An answer larger than the
/// protocol's limit is dropped the same way (and logged).
#[derive(Debug)]
pub struct Responder {
    pub(crate) sender: oneshot::Sender<Vec<u8>>,
}

impl Responder {
    /// Sends the response. If the request already timed out or the peer went
    /// away, the response is silently discarded.
    pub fn send(self, data: Vec<u8>) {
        // Err only means the actor stopped waiting (timeout, shutdown): nothing to do.
        let _ = self.sender.send(data);
    }
}

/// A handle on the running swarm; clone it freely.
#[derive(Clone, Debug)]
pub struct NetHandle {
    pub(crate) peer_id: PeerId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) listen_addrs: ListenAddrs,
    pub(crate) metrics: Arc<NetMetrics>,
    pub(crate) gates: Arc<RequestGates>,
    pub(crate) bulk: Arc<crate::bulk::BulkPool>,
    pub(crate) bulk_enabled: bool,
    pub(crate) nat: crate::nat::SharedNat,
    pub(crate) rtts: Rtts,
}

/// The latest ping round trip to each connected peer (written by the actor).
pub(crate) type Rtts = Arc<RwLock<HashMap<PeerId, Duration>>>;

impl NetHandle {
    /// This node's peer id (the same key as its `NodeId`, see [`crate::node_id_of`]).
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses this node listens on, each ending in `/p2p/<own peer id>`,
    /// ready to hand to other nodes as bootstrap addresses.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        let addrs = match self.listen_addrs.read() {
            Ok(addrs) => addrs.clone(),
            // A panic while holding the lock cannot leave a Vec half-written.
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        addrs
            .into_iter()
            .map(|addr| addr.with(AddrProtocol::P2p(self.peer_id)))
            .collect()
    }

    /// The latest ping round trip to `peer`, while connected: how near it is.
    pub fn rtt(&self, peer: &PeerId) -> Option<Duration> {
        match self.rtts.read() {
            Ok(rtts) => rtts.get(peer).copied(),
            Err(poisoned) => poisoned.into_inner().get(peer).copied(),
        }
    }

    /// Whether peers can reach this node, and through which relays.
    pub fn nat(&self) -> crate::NatView {
        match self.nat.read() {
            Ok(view) => view.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// What the swarm has done so far (counters for the node's metrics).
    pub fn metrics(&self) -> NetMetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Dials `addr` (ending in `/p2p/<peer id>` or not) and waits until the
    /// connection is established or has failed. Already connected: `Ok`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.call(|reply| Command::Dial { addr, reply }).await?
    }

    /// Tells the swarm (and Kademlia) where `peer` can be reached.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NetError> {
        self.call(|reply| Command::AddAddress { peer, addr, reply })
            .await?
    }

    /// Reports the node's verdict on a gossip message: an accepted one is
    /// forwarded, a rejected one costs its sender peer score (a peer that
    /// keeps sending invalid messages is ignored), an ignored one is dropped.
    pub async fn validate(&self, id: GossipId, verdict: Verdict) {
        let _ = self.commands.send(Command::Validate { id, verdict }).await;
    }

    /// Publishes `data` on `topic` to every subscribed peer. Fails with
    /// [`NetError::NoPeers`] when no connected peer is subscribed yet.
    pub async fn publish(&self, topic: GossipTopic, data: Vec<u8>) -> Result<(), NetError> {
        if data.len() > GOSSIP_DATA_BYTES_MAX {
            return Err(NetError::GossipTooLarge {
                topic,
                len: data.len(),
                max: GOSSIP_DATA_BYTES_MAX,
            });
        }
        self.call(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Sends `data` to `peer` on `protocol` (one the node speaks: [`Protocol::node`]) and
    /// waits for the answer. The peer need not be connected nor its address
    /// known: Kademlia finds it. A message over `protocol.request_bytes_max()`
    /// is refused before sending. A [`Protocol::bulk`] request goes over the
    /// peer's bulk channel when it offers one.
    pub async fn request(
        &self,
        peer: PeerId,
        protocol: Protocol,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        let max = protocol.request_bytes_max();
        if data.len() > max {
            return Err(NetError::TooLarge {
                protocol,
                len: data.len(),
                max,
            });
        }
        if peer == self.peer_id {
            return Err(NetError::Request {
                peer,
                protocol,
                reason: RequestFailure::SelfRequest,
            });
        }
        if !protocol.node() {
            return Err(NetError::Request {
                peer,
                protocol,
                reason: RequestFailure::Unsupported,
            });
        }
        // Never closed, so acquiring only waits, and at most a request's timeout.
        let gate = self.gates.gate(peer, protocol);
        let wait = self
            .gates
            .waits
            .get(&protocol)
            .copied()
            .unwrap_or(std::time::Duration::from_secs(30));
        let _permit = match tokio::time::timeout(wait, gate.acquire()).await {
            Ok(permit) => permit.map_err(|_| NetError::Closed)?,
            Err(_) => {
                return Err(NetError::Request {
                    peer,
                    protocol,
                    reason: RequestFailure::Timeout,
                });
            }
        };
        let data = if protocol.bulk() && self.bulk_enabled {
            match crate::bulk::request(self, peer, protocol, data, wait).await {
                Ok(answer) => return Ok(answer),
                Err(crate::bulk::BulkFailure::Failed(error)) => return Err(error),
                Err(crate::bulk::BulkFailure::Unavailable(reason, data)) => {
                    tracing::debug!(%peer, %reason, "asked over libp2p, not the bulk channel");
                    crate::metrics::bump(&self.metrics.bulk_fallbacks);
                    data
                }
            }
        } else {
            data
        };
        self.call(|reply| Command::Request {
            peer,
            protocol,
            data,
            reply,
        })
        .await?
    }

    /// The peers this node has at least one connection to.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Announces in Kademlia that this node has the content named `key`
    /// (its provider record), or with `stop` that it no longer has. A hint:
    /// dropped when the actor's queue is full.
    pub fn provide(&self, key: &[u8], stop: bool) {
        let _ = self.commands.try_send(Command::Provide {
            key: key.to_vec(),
            stop,
        });
    }

    /// Peers that announced they have the content named `key` (the first
    /// answer a Kademlia lookup gets; none after `wait`).
    pub async fn find_providers(&self, key: &[u8], wait: Duration) -> Vec<PeerId> {
        let key = key.to_vec();
        let found = self.call(|reply| Command::FindProviders { key, reply });
        match tokio::time::timeout(wait, found).await {
            Ok(Ok(peers)) => peers,
            _ => Vec::new(),
        }
    }

    /// The peers in this node's Kademlia routing table (connected or not):
    /// those lookups ask and other nodes' queries are told about.
    pub async fn routing_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(|reply| Command::RoutingPeers { reply }).await
    }

    /// The connected peers subscribed to `topic`: those a publish reaches
    /// directly.
    pub async fn subscribed_peers(&self, topic: GossipTopic) -> Result<Vec<PeerId>, NetError> {
        self.call(|reply| Command::SubscribedPeers { topic, reply })
            .await
    }

    /// Stops the swarm (closing every connection) and waits until it has
    /// stopped. Calls on any clone of this handle then fail with
    /// [`NetError::Closed`]. Shutting down twice is harmless.
    pub async fn shutdown(&self) {
        // Either error means the actor has already stopped, which is the goal.
        let _ = self.call(|reply| Command::Shutdown { reply }).await;
    }

    pub(crate) async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetError::Closed)?;
        answer.await.map_err(|_| NetError::Closed)
    }
}
