//! The swarm actor: one tokio task owns the libp2p `Swarm` and is the only
//! code that touches it.
//!
//! ```text
//!   NetHandle (any task) ──Command (bounded mpsc)──▶ ┌──────────────┐
//!        ▲                                           │    Actor     │◀──▶ Swarm (TCP+noise+yamux)
//!        └────────── oneshot reply ──────────────────│  run() loop  │
//!   node  ◀──────────NetEvent (bounded mpsc)─────────└──────────────┘
//!                                                      │  ▲
//!                           Responder (oneshot) ───────┘  │ inbound answers (bounded, timed)
//! ```
//!
//! The loop selects over swarm events, handle commands, the answers the node
//! gives to inbound requests, a few early Kademlia re-bootstraps and the NAT
//! tick. This file holds start-up, the loop, connections and gossip; finding
//! peers and content (bootstrap, identify, Kademlia's answers) is in the
//! `discovery` submodule, the request-response bookkeeping (outbound
//! requests, lookups of unknown peers, inbound answers) in `requests`, and
//! reachability in [`crate::nat`]. Every map is bounded by a named constant
//! in [`crate::config`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, gossipsub, kad};
use libp2p::{noise, quic, relay, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::addrs::{ip_of, is_relayed, peer_of};
use crate::behaviour::{Behaviour, BehaviourEvent, ident_topic};
use crate::bulk::{BulkServer, ServeContext};
use crate::config::{
    COMMAND_QUEUE_CAPACITY, DIALS_PENDING_MAX, EVENT_QUEUE_CAPACITY, IDLE_CONNECTION_TIMEOUT,
    LISTEN_TIMEOUT, NAT_TICK, NetConfig, PROVIDER_QUERIES_MAX, QUIC_STREAMS_MAX,
    STARTUP_REBOOTSTRAP_DELAYS, YAMUX_STREAMS_MAX,
};
use crate::error::NetError;
use crate::handle::{GossipId, ListenAddrs, NetEvent, NetHandle, RequestGates, Rtts, Verdict};
use crate::identity::keypair_of;
use crate::metrics::{NetMetrics, bump, drop_one};
use crate::nat::{Nat, SharedNat};
use crate::protocol::{GossipTopic, Protocol};

mod discovery;
mod requests;

use requests::{Answer, ParkedRequest, PendingRequest};

/// A request from a [`NetHandle`] to the actor; each carries its reply slot.
pub(crate) enum Command {
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    AddAddress {
        peer: PeerId,
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Publish {
        topic: GossipTopic,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Request {
        peer: PeerId,
        protocol: Protocol,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    Validate {
        id: GossipId,
        verdict: Verdict,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    RoutingPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    SubscribedPeers {
        topic: GossipTopic,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    PeerIp {
        peer: PeerId,
        reply: oneshot::Sender<Option<std::net::IpAddr>>,
    },
    /// Announce (or stop announcing) in Kademlia that this node has `key`.
    Provide {
        key: Vec<u8>,
        stop: bool,
    },
    FindProviders {
        key: Vec<u8>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Starts the swarm on the current tokio runtime. Returns once it listens on
/// every address of `config.listen` (so [`NetHandle::listen_addrs`] is filled)
/// and has dialled the bootstrap peers and started a Kademlia bootstrap.
pub async fn spawn(config: NetConfig) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
    let keypair = keypair_of(&config.secret);
    let peer_id = keypair.public().to_peer_id();
    let build_error = |reason: String| NetError::Build { reason };
    let yamux_config = || {
        let mut config = yamux::Config::default();
        config.set_max_num_streams(YAMUX_STREAMS_MAX);
        config
    };
    // TCP (noise + yamux) and QUIC side by side, and the relay client's
    // transport, so `/p2p-circuit` addresses can be listened on and dialled.
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux_config,
        )
        .map_err(|error| build_error(error.to_string()))?
        .with_quic_config(|mut quic_config: quic::Config| {
            quic_config.max_concurrent_stream_limit = QUIC_STREAMS_MAX;
            quic_config
        })
        .with_relay_client(noise::Config::new, yamux_config)
        .map_err(|error| build_error(error.to_string()))?
        .with_behaviour(|keypair, relay_client: relay::client::Behaviour| {
            Behaviour::new(keypair, &config, relay_client)
                .map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|error| build_error(error.to_string()))?
        .with_swarm_config(|swarm_config| {
            swarm_config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
        })
        .build();

    let (commands_sender, commands) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
    let (events, events_receiver) = mpsc::channel(EVENT_QUEUE_CAPACITY);
    let listen_addrs: ListenAddrs = Arc::new(RwLock::new(Vec::new()));
    let metrics = Arc::new(NetMetrics::default());
    let nat_view = SharedNat::default();
    let rtts = Rtts::default();
    let mut actor = Actor {
        nat: Nat::new(&config, nat_view.clone()),
        swarm,
        config: config.clone(),
        commands,
        events,
        listen_addrs: listen_addrs.clone(),
        metrics: metrics.clone(),
        outbound: HashMap::new(),
        lookups: HashMap::new(),
        parked: 0,
        inbound: FuturesUnordered::new(),
        dials: HashMap::new(),
        dial_failures: HashMap::new(),
        remote_ips: HashMap::new(),
        bulk: None,
        rtts: rtts.clone(),
        provider_queries: HashMap::new(),
        dialed: HashMap::new(),
    };
    actor.listen(&config.listen).await?;
    for addr in &config.external {
        actor.swarm.add_external_address(addr.clone());
    }
    actor.bootstrap(&config.bootstrap)?;
    // Only once libp2p listens: a failed start leaves no listener behind
    // (the node retries on a new port when its last one is taken).
    actor.bulk = bulk_server(&config, &actor.events, &metrics).await;
    info!(%peer_id, addrs = ?listen_addrs_snapshot(&listen_addrs), "network started");
    tokio::spawn(actor.run());

    let handle = NetHandle {
        peer_id,
        commands: commands_sender,
        listen_addrs,
        metrics,
        gates: Arc::new(RequestGates::new(&config)),
        bulk: Arc::default(),
        bulk_enabled: config.bulk,
        nat: nat_view,
        rtts,
    };
    Ok((handle, events_receiver))
}

/// The bulk channel's listener, on the IP of the first listen address (any
/// port), unless `config` turns it off; a node that cannot bind one serves
/// every request over libp2p.
async fn bulk_server(
    config: &NetConfig,
    events: &mpsc::Sender<NetEvent>,
    metrics: &Arc<NetMetrics>,
) -> Option<Arc<BulkServer>> {
    if !config.bulk {
        return None;
    }
    let ip = config.listen.iter().find_map(ip_of)?;
    let context = ServeContext {
        events: events.clone(),
        metrics: metrics.clone(),
        config: config.clone(),
    };
    match BulkServer::bind(ip, context).await {
        Ok(server) => Some(server),
        Err(error) => {
            warn!(%ip, %error, "no bulk channel: chunks go over libp2p");
            None
        }
    }
}

fn listen_addrs_snapshot(addrs: &ListenAddrs) -> Vec<Multiaddr> {
    match addrs.read() {
        Ok(addrs) => addrs.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// An explicit dial waiting for its connection.
struct PendingDial {
    addr: Multiaddr,
    reply: oneshot::Sender<Result<(), NetError>>,
}

struct Actor {
    swarm: Swarm<Behaviour>,
    /// Reachability and relay reservations.
    nat: Nat,
    config: NetConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    listen_addrs: ListenAddrs,
    metrics: Arc<NetMetrics>,
    /// Requests sent, by protocol and libp2p request id.
    outbound: HashMap<(Protocol, OutboundRequestId), PendingRequest>,
    /// Requests waiting for a lookup of their peer, by that peer.
    lookups: HashMap<PeerId, Vec<ParkedRequest>>,
    /// Number of requests in `lookups`.
    parked: usize,
    /// Inbound requests the node has not answered yet; each ends by its
    /// protocol's timeout at the latest.
    inbound: FuturesUnordered<BoxFuture<'static, Answer>>,
    /// Explicit dials, by the connection id they will have.
    dials: HashMap<ConnectionId, PendingDial>,
    /// Failed dials in a row, by peer, since it was last connected (at most
    /// [`DIAL_FAILURES_TRACKED_MAX`] peers).
    dial_failures: HashMap<PeerId, u32>,
    /// The remote IP of the latest connection to each connected peer: where
    /// its bulk channel is.
    remote_ips: HashMap<PeerId, std::net::IpAddr>,
    /// This node's bulk channel, when it has one.
    bulk: Option<Arc<BulkServer>>,
    /// The latest ping round trip to each connected peer.
    rtts: Rtts,
    /// Provider lookups waiting for their first answer (at most
    /// [`PROVIDER_QUERIES_MAX`]).
    provider_queries: HashMap<kad::QueryId, oneshot::Sender<Vec<PeerId>>>,
    /// The address this node dialled each connected peer at (direct
    /// connections only): where a relay candidate is reached.
    dialed: HashMap<PeerId, Multiaddr>,
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Stop(oneshot::Sender<()>),
}

impl Actor {
    /// Starts a listener per address and waits until each reports an address.
    async fn listen(&mut self, addrs: &[Multiaddr]) -> Result<(), NetError> {
        let mut waiting = HashMap::new();
        for addr in addrs {
            let id = self
                .swarm
                .listen_on(addr.clone())
                .map_err(|error| NetError::Listen {
                    addr: addr.clone(),
                    reason: error.to_string(),
                })?;
            waiting.insert(id, addr.clone());
        }
        let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
        tokio::pin!(deadline);
        while !waiting.is_empty() {
            let event = tokio::select! {
                event = self.swarm.select_next_some() => event,
                () = &mut deadline => {
                    let addr = waiting.into_values().next().unwrap_or_else(Multiaddr::empty);
                    return Err(NetError::Listen {
                        addr,
                        reason: format!("no listen address within {LISTEN_TIMEOUT:?}"),
                    });
                }
            };
            match &event {
                SwarmEvent::NewListenAddr { listener_id, .. } => {
                    waiting.remove(listener_id);
                }
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } => {
                    if let Some(addr) = waiting.remove(listener_id) {
                        let reason = match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(error) => error.to_string(),
                        };
                        return Err(NetError::Listen { addr, reason });
                    }
                }
                SwarmEvent::ListenerError { listener_id, error } => {
                    if let Some(addr) = waiting.remove(listener_id) {
                        return Err(NetError::Listen {
                            addr,
                            reason: error.to_string(),
                        });
                    }
                }
                _ => {}
            }
            self.on_swarm_event(event).await;
        }
        Ok(())
    }

    async fn run(mut self) {
        // Early re-bootstraps: the first bootstrap runs before the peers we
        // reach have learnt each other's addresses (identify needs a round
        // trip), so nodes started together would otherwise not meet until
        // Kademlia's periodic bootstrap, minutes later.
        let mut rebootstraps = STARTUP_REBOOTSTRAP_DELAYS.iter();
        let start = tokio::time::Instant::now();
        let rebootstrap = tokio::time::sleep(STARTUP_REBOOTSTRAP_DELAYS[0]);
        tokio::pin!(rebootstrap);
        let mut next_rebootstrap = rebootstraps.next();
        let mut nat_tick = tokio::time::interval(NAT_TICK);
        nat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopped = loop {
            let flow = tokio::select! {
                () = &mut rebootstrap, if next_rebootstrap.is_some() => {
                    if let Err(error) = self.swarm.behaviour_mut().kademlia.bootstrap() {
                        debug!(%error, "no peer to re-bootstrap from yet");
                    }
                    next_rebootstrap = rebootstraps.next();
                    if let Some(delay) = next_rebootstrap {
                        rebootstrap.as_mut().reset(start + *delay);
                    }
                    Flow::Continue
                }
                event = self.swarm.select_next_some() => {
                    self.on_swarm_event(event).await;
                    Flow::Continue
                }
                _ = nat_tick.tick() => {
                    self.nat.maintain(&mut self.swarm);
                    Flow::Continue
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    // Every handle is gone: nobody can use the network any more.
                    None => break None,
                },
                Some(answer) = self.inbound.next(), if !self.inbound.is_empty() => {
                    self.on_answer(answer);
                    Flow::Continue
                }
            };
            if let Flow::Stop(reply) = flow {
                break Some(reply);
            }
        };
        if let Some(bulk) = &self.bulk {
            bulk.stop();
        }
        let peer_id = *self.swarm.local_peer_id();
        // Dropping the swarm closes every connection; pending callers see Closed.
        drop(self);
        info!(%peer_id, "network stopped");
        if let Some(reply) = stopped {
            let _ = reply.send(());
        }
    }

    fn on_command(&mut self, command: Command) -> Flow {
        match command {
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::AddAddress { peer, addr, reply } => {
                self.learn_address(peer, addr);
                let _ = reply.send(Ok(()));
            }
            Command::Validate { id, verdict } => self.report(id, verdict),
            Command::Publish { topic, data, reply } => {
                let len = data.len();
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(ident_topic(topic), data)
                    .map(|_| bump(&self.metrics.gossip_published))
                    .map_err(|error| publish_error(topic, len, error));
                let _ = reply.send(result);
            }
            Command::Request {
                peer,
                protocol,
                data,
                reply,
            } => self.request(peer, protocol, data, reply),
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::RoutingPeers { reply } => {
                let peers = self
                    .swarm
                    .behaviour_mut()
                    .kademlia
                    .kbuckets()
                    .flat_map(|bucket| {
                        bucket
                            .iter()
                            .map(|entry| *entry.node.key.preimage())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::SubscribedPeers { topic, reply } => {
                let hash = ident_topic(topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(peer, _)| *peer)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::PeerIp { peer, reply } => {
                let _ = reply.send(self.remote_ips.get(&peer).copied());
            }
            Command::Provide { key, stop } => {
                let key = kad::RecordKey::new(&key);
                let kademlia = &mut self.swarm.behaviour_mut().kademlia;
                if stop {
                    kademlia.stop_providing(&key);
                } else if let Err(error) = kademlia.start_providing(key) {
                    debug!(%error, "cannot announce a provider record");
                }
            }
            Command::FindProviders { key, reply } => {
                if self.provider_queries.len() >= PROVIDER_QUERIES_MAX {
                    let _ = reply.send(Vec::new());
                } else {
                    let query = self
                        .swarm
                        .behaviour_mut()
                        .kademlia
                        .get_providers(kad::RecordKey::new(&key));
                    self.provider_queries.insert(query, reply);
                }
            }
            Command::Shutdown { reply } => return Flow::Stop(reply),
        }
        Flow::Continue
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<(), NetError>>) {
        if self.dials.len() >= DIALS_PENDING_MAX {
            let _ = reply.send(Err(NetError::Busy {
                what: "dials",
                max: DIALS_PENDING_MAX,
            }));
            return;
        }
        let opts = match peer_of(&addr) {
            Some(peer) => {
                self.learn_address(peer, addr.clone());
                DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::Disconnected)
                    .build()
            }
            None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let connection_id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dials
                    .insert(connection_id, PendingDial { addr, reply });
            }
            // Already connected: what the caller wanted.
            Err(DialError::DialPeerConditionFalse(_)) => {
                let _ = reply.send(Ok(()));
            }
            Err(error) => {
                let _ = reply.send(Err(NetError::Dial {
                    addr,
                    reason: error.to_string(),
                }));
            }
        }
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event).await,
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                debug!(%address, "listening");
                self.nat.on_new_listen_addr(listener_id, &address);
                self.with_listen_addrs(|addrs| {
                    if !addrs.contains(&address) {
                        addrs.push(address);
                    }
                });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.with_listen_addrs(|addrs| addrs.retain(|a| a != &address));
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                addresses,
                listener_id,
                ..
            } => {
                self.with_listen_addrs(|addrs| addrs.retain(|a| !addresses.contains(a)));
                self.nat.on_listener_closed(listener_id, &mut self.swarm);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                // A relayed connection's address is the relay's: the peer's
                // bulk channel is not there.
                let remote = endpoint.get_remote_address();
                if !is_relayed(remote)
                    && let Some(ip) = ip_of(remote)
                {
                    self.remote_ips.insert(peer_id, ip);
                }
                if endpoint.is_dialer() && !is_relayed(remote) {
                    self.dialed.insert(peer_id, remote.clone());
                }
                if let Some(dial) = self.dials.remove(&connection_id) {
                    let _ = dial.reply.send(Ok(()));
                }
                self.dial_failures.remove(&peer_id);
                if num_established.get() == 1 {
                    bump(&self.metrics.peers_connected);
                    self.emit(NetEvent::PeerConnected(peer_id)).await;
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                drop_one(&self.metrics.peers_connected);
                self.remote_ips.remove(&peer_id);
                self.dialed.remove(&peer_id);
                self.with_rtts(|rtts| {
                    rtts.remove(&peer_id);
                });
                self.nat.on_disconnected(&peer_id);
                self.emit(NetEvent::PeerDisconnected(peer_id)).await;
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(?peer_id, %error, "outgoing connection failed");
                if let Some(peer) = peer_id
                    && matches!(
                        error,
                        DialError::Transport(_) | DialError::WrongPeerId { .. }
                    )
                {
                    self.dial_failed(peer);
                }
                if let Some(dial) = self.dials.remove(&connection_id) {
                    let _ = dial.reply.send(Err(NetError::Dial {
                        addr: dial.addr,
                        reason: error.to_string(),
                    }));
                }
            }
            _ => {}
        }
    }

    async fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Limits(never) => match never {},
            BehaviourEvent::Memory(never) => match never {},
            BehaviourEvent::Identify(event) => self.on_identify(event),
            BehaviourEvent::Ping(event) => {
                if let Ok(rtt) = event.result {
                    self.with_rtts(|rtts| {
                        rtts.insert(event.peer, rtt);
                    });
                }
            }
            BehaviourEvent::Kademlia(event) => self.on_kademlia(event),
            BehaviourEvent::Gossipsub(event) => self.on_gossip(event),
            BehaviourEvent::Offer(event) => self.on_request_response(Protocol::Offer, event).await,
            BehaviourEvent::Chunk(event) => self.on_request_response(Protocol::Chunk, event).await,
            BehaviourEvent::JobDispatch(event) => {
                self.on_request_response(Protocol::JobDispatch, event).await
            }
            BehaviourEvent::JobResult(event) => {
                self.on_request_response(Protocol::JobResult, event).await
            }
            BehaviourEvent::BlockSync(event) => {
                self.on_request_response(Protocol::BlockSync, event).await
            }
            BehaviourEvent::Index(event) => self.on_request_response(Protocol::Index, event).await,
            BehaviourEvent::BulkOpen(event) => {
                self.on_request_response(Protocol::BulkOpen, event).await
            }
            BehaviourEvent::Space(event) => self.on_request_response(Protocol::Space, event).await,
            BehaviourEvent::Autonat(event) => self.nat.on_autonat(event, &mut self.swarm),
            BehaviourEvent::RelayClient(event) => self.nat.on_relay_client(event),
            BehaviourEvent::Relay(event) => self.nat.on_relay_server(event),
            BehaviourEvent::Dcutr(event) => self.nat.on_dcutr(event),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            message,
            message_id,
            propagation_source,
        } = event
        else {
            return;
        };
        let id = GossipId {
            message: message_id,
            from: propagation_source,
        };
        let Some(topic) = GossipTopic::from_name(message.topic.as_str()) else {
            debug!(topic = %message.topic, "gossip on a topic we do not know");
            self.report(id, Verdict::Reject);
            return;
        };
        let event = NetEvent::Gossip {
            topic,
            source: message.source,
            data: message.data,
            id: id.clone(),
        };
        // Gossip is never waited for: peers re-send it, and stalling the swarm
        // on a slow consumer would stall every other protocol. A message the
        // node never sees is not forwarded either.
        match self.events.try_send(event) {
            Ok(()) => bump(&self.metrics.gossip_received),
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.metrics.gossip_dropped);
                warn!(
                    topic = topic.name(),
                    "event queue full: gossip message dropped"
                );
                self.report(id, Verdict::Ignore);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Hands the node's verdict on a message to gossipsub (which forwards an
    /// accepted one and scores the sender of a rejected one).
    fn report(&mut self, id: GossipId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Reject => {
                bump(&self.metrics.gossip_rejected);
                gossipsub::MessageAcceptance::Reject
            }
            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id.message, &id.from, acceptance);
    }

    /// Hands an event to the node, waiting while its queue is full (backpressure
    /// on the peers). If the node dropped its receiver the event is discarded.
    async fn emit(&mut self, event: NetEvent) {
        if self.events.send(event).await.is_err() {
            debug!("event receiver dropped: event discarded");
        }
    }

    fn with_rtts(&self, change: impl FnOnce(&mut HashMap<PeerId, std::time::Duration>)) {
        match self.rtts.write() {
            Ok(mut rtts) => change(&mut rtts),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    fn with_listen_addrs(&self, change: impl FnOnce(&mut Vec<Multiaddr>)) {
        match self.listen_addrs.write() {
            Ok(mut addrs) => change(&mut addrs),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }
}

fn publish_error(topic: GossipTopic, len: usize, error: gossipsub::PublishError) -> NetError {
    match error {
        gossipsub::PublishError::NoPeersSubscribedToTopic => NetError::NoPeers { topic },
        gossipsub::PublishError::Duplicate => NetError::Duplicate { topic },
        gossipsub::PublishError::MessageTooLarge => NetError::GossipTooLarge {
            topic,
            len,
            max: crate::config::GOSSIP_DATA_BYTES_MAX,
        },
        other => NetError::Publish {
            topic,
            reason: other.to_string(),
        },
    }
}
