//! The protocols one Peercloud node speaks, composed into one libp2p
//! `NetworkBehaviour`.
//!
//! - identify: learns peers' listen addresses (fed into Kademlia by the actor);
//! - ping: liveness and round-trip times;
//! - Kademlia (server mode, `/peercloud/kad/1.0.0`): peer discovery, so a
//!   request can reach a peer whose address the caller never saw;
//! - gossipsub (signed, strict validation, BLAKE3 message ids): the three
//!   [`GossipTopic`]s;
//! - one request-response behaviour per [`Protocol`], each with its own
//!   [`BytesCodec`] limits and timeout;
//! - connection limits: in all, per peer, handshakes in flight, and none new
//!   while the process holds too much of the machine's memory;
//! - NAT traversal: AutoNAT (is this node reachable from outside?), circuit
//!   relay v2 (a client that reserves a slot on a relay when it is not, and a
//!   server that relays for others once it is) and DCUtR (hole punching from
//!   a relayed connection to a direct one). The `nat` module drives them.
//!
//! Nothing here knows what the bytes mean.

use std::num::NonZeroUsize;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, autonat, connection_limits, dcutr, gossipsub, identify, kad,
    memory_connection_limits, ping, relay,
};

use crate::codec::BytesCodec;
use crate::config::{
    AUTONAT_BOOT_DELAY, AUTONAT_REFRESH_INTERVAL, AUTONAT_RETRY_INTERVAL,
    AUTONAT_THROTTLE_SERVER_PERIOD, CONNECTIONS_MEMORY_SHARE_MAX, CONNECTIONS_PENDING_INCOMING_MAX,
    GOSSIP_HEARTBEAT, GOSSIP_TRANSMIT_BYTES_MAX, IDENTIFY_PROTOCOL_VERSION, KADEMLIA_PROTOCOL,
    NetConfig, RELAY_CIRCUIT_BYTES_MAX, RELAY_CIRCUIT_DURATION, RELAY_CIRCUITS_MAX,
    RELAY_CIRCUITS_PER_PEER_MAX, RELAY_RESERVATIONS_MAX, STREAMS_PER_CONNECTION_MAX,
};
use crate::protocol::{GossipTopic, Protocol};
use crate::relay_server::RelayServer;

/// Agent string sent in identify: the software and its version.
const AGENT_VERSION: &str = concat!("peercloud/", env!("CARGO_PKG_VERSION"));
/// How long gossipsub remembers a message id to drop repeats: long enough to
/// span the slowest path through a small mesh several times over.
const GOSSIP_DUPLICATE_CACHE: std::time::Duration = std::time::Duration::from_secs(120);
/// Kademlia query timeout: a lookup on a small network takes a few round trips;
/// a minute bounds a lookup through unresponsive peers.
const KADEMLIA_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Peers a Kademlia lookup asks at once (the paper's alpha).
const KADEMLIA_PARALLELISM: usize = 3;

/// The composed behaviour the swarm actor drives.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so a refused connection never reaches the others.
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kademlia: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) offer: request_response::Behaviour<BytesCodec>,
    pub(crate) chunk: request_response::Behaviour<BytesCodec>,
    pub(crate) job_dispatch: request_response::Behaviour<BytesCodec>,
    pub(crate) job_result: request_response::Behaviour<BytesCodec>,
    pub(crate) block_sync: request_response::Behaviour<BytesCodec>,
    pub(crate) index: request_response::Behaviour<BytesCodec>,
    pub(crate) bulk_open: request_response::Behaviour<BytesCodec>,
    pub(crate) space: request_response::Behaviour<BytesCodec>,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    /// Off when the node does not offer to relay ([`NetConfig::relay_service`]);
    /// on, it serves only once the node has a confirmed external address.
    pub(crate) relay: Toggle<RelayServer>,
    pub(crate) dcutr: dcutr::Behaviour,
}

/// Why the behaviour could not be built (a configuration the libraries refuse).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BehaviourError {
    /// The gossipsub configuration was refused.
    #[error("gossipsub configuration refused: {reason}")]
    GossipConfig {
        /// What gossipsub said.
        reason: String,
    },
    /// Subscribing to a topic failed.
    #[error("cannot subscribe to gossip topic {}: {reason}", topic.name())]
    Subscribe {
        /// The topic.
        topic: GossipTopic,
        /// What gossipsub said.
        reason: String,
    },
}

impl Behaviour {
    /// Builds every protocol for this key and configuration and subscribes to
    /// all gossip topics; `relay_client` is the relay transport's other half.
    pub(crate) fn new(
        keypair: &Keypair,
        config: &NetConfig,
        relay_client: relay::client::Behaviour,
    ) -> Result<Self, BehaviourError> {
        let peer_id = keypair.public().to_peer_id();

        // Pushes a change of listen addresses (a relay reservation made or
        // lost) to connected peers at once, so they can reach us through it.
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), keypair.public())
                .with_agent_version(AGENT_VERSION.to_owned())
                .with_push_listen_addr_updates(true),
        );

        let mut kad_config = kad::Config::new(StreamProtocol::new(KADEMLIA_PROTOCOL));
        kad_config.set_query_timeout(KADEMLIA_QUERY_TIMEOUT);
        if let Some(parallelism) = NonZeroUsize::new(KADEMLIA_PARALLELISM) {
            kad_config.set_parallelism(parallelism);
        }
        let mut kademlia =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Server mode from the start: without it a node only answers queries once
        // it has a confirmed external address, which loopback and LAN nodes never get.
        kademlia.set_mode(Some(kad::Mode::Server));

        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config()?,
        )
        .map_err(|reason| BehaviourError::GossipConfig {
            reason: reason.to_owned(),
        })?;
        let (params, thresholds) = peer_score();
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(|reason| BehaviourError::GossipConfig { reason })?;
        for topic in GossipTopic::ALL {
            gossipsub.subscribe(&ident_topic(topic)).map_err(|error| {
                BehaviourError::Subscribe {
                    topic,
                    reason: error.to_string(),
                }
            })?;
        }

        let request_response = |protocol: Protocol| {
            request_response::Behaviour::with_codec(
                BytesCodec::new(protocol),
                [(StreamProtocol::new(protocol.name()), ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(config.timeout_of(protocol))
                    .with_max_concurrent_streams(STREAMS_PER_CONNECTION_MAX),
            )
        };

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.connections_max))
            .with_max_established_per_peer(Some(config.connections_per_peer_max))
            .with_max_pending_incoming(Some(CONNECTIONS_PENDING_INCOMING_MAX));

        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(limits),
            memory: memory_connection_limits::Behaviour::with_max_percentage(
                CONNECTIONS_MEMORY_SHARE_MAX,
            ),
            identify,
            ping: ping::Behaviour::default(),
            kademlia,
            gossipsub,
            offer: request_response(Protocol::Offer),
            chunk: request_response(Protocol::Chunk),
            job_dispatch: request_response(Protocol::JobDispatch),
            job_result: request_response(Protocol::JobResult),
            block_sync: request_response(Protocol::BlockSync),
            index: request_response(Protocol::Index),
            bulk_open: request_response(Protocol::BulkOpen),
            space: request_response(Protocol::Space),
            autonat: autonat::Behaviour::new(peer_id, autonat_config(config)),
            relay_client,
            relay: Toggle::from(
                config
                    .relay_service
                    .then(|| RelayServer(relay::Behaviour::new(peer_id, relay_config()))),
            ),
            dcutr: dcutr::Behaviour::new(peer_id),
        })
    }

    /// The request-response behaviour that speaks `protocol`.
    pub(crate) fn request_response(
        &mut self,
        protocol: Protocol,
    ) -> &mut request_response::Behaviour<BytesCodec> {
        match protocol {
            Protocol::Offer => &mut self.offer,
            Protocol::Chunk => &mut self.chunk,
            Protocol::JobDispatch => &mut self.job_dispatch,
            Protocol::JobResult => &mut self.job_result,
            Protocol::BlockSync => &mut self.block_sync,
            Protocol::Index => &mut self.index,
            Protocol::BulkOpen => &mut self.bulk_open,
            Protocol::Space => &mut self.space,
        }
    }
}

/// The gossipsub topic for one of ours (identity-hashed: the hash is the name,
/// so a topic is readable on the wire and maps back with [`GossipTopic::from_name`]).
pub(crate) fn ident_topic(topic: GossipTopic) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(topic.name())
}

/// A gossip message's id: the BLAKE3 of its publisher, sequence number and
/// data. Each publication is its own message, so a transaction re-published
/// after an outage gets through instead of being taken for the first copy
/// (signatures are deterministic, so a retry is byte-identical); repeats of
/// one payload are the node's to recognise (nonces, heights, job ids).
pub(crate) fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut hasher = blake3::Hasher::new();
    match &message.source {
        Some(source) => {
            hasher.update(&[1]);
            hasher.update(&source.to_bytes());
        }
        None => {
            hasher.update(&[0]);
        }
    }
    hasher.update(&message.sequence_number.unwrap_or(0).to_le_bytes());
    hasher.update(&message.data);
    gossipsub::MessageId::new(hasher.finalize().as_bytes())
}

/// Peer score a peer loses per invalid message, squared over the messages
/// (gossipsub's rule): one or two bad messages are a warning (an honest
/// node on another version), three graylist it.
const INVALID_MESSAGE_WEIGHT: f64 = -20.0;
/// How the count of invalid messages decays each second: a graylisted peer
/// is heard again after about 40 s without more of them.
const INVALID_MESSAGE_DECAY: f64 = 0.99;
/// Below this score our gossip to the peer stops.
const GOSSIP_THRESHOLD: f64 = -20.0;
/// Below this score our own messages are not published to the peer.
const PUBLISH_THRESHOLD: f64 = -40.0;
/// Below this score everything from the peer is ignored (graylisted):
/// three invalid messages not yet decayed.
const GRAYLIST_THRESHOLD: f64 = -80.0;

/// Peer scoring: a peer loses score for invalid messages (and gossipsub's
/// own protocol misbehaviour) and nothing else. Mesh-delivery and IP
/// colocation penalties stay off: a quiet Peercloud network delivers few
/// messages, and a devnet runs every node on one address.
fn peer_score() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for topic in GossipTopic::ALL {
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.0,
            first_message_deliveries_weight: 0.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
            invalid_message_deliveries_decay: INVALID_MESSAGE_DECAY,
            ..Default::default()
        };
        params
            .topics
            .insert(ident_topic(topic).hash(), topic_params);
    }
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..Default::default()
    };
    (params, thresholds)
}

/// AutoNAT: peers this node is connected to dial its addresses back; the
/// answers say whether it is reachable. Private addresses count only on a
/// private network ([`NetConfig::private_network`]): on the internet a
/// peer on the same LAN reaching us proves nothing.
fn autonat_config(config: &NetConfig) -> autonat::Config {
    autonat::Config {
        boot_delay: AUTONAT_BOOT_DELAY,
        retry_interval: AUTONAT_RETRY_INTERVAL,
        refresh_interval: AUTONAT_REFRESH_INTERVAL,
        throttle_server_period: AUTONAT_THROTTLE_SERVER_PERIOD,
        only_global_ips: !config.private_network,
        ..autonat::Config::default()
    }
}

/// The relay server's bounds (libp2p's defaults, 2 minutes and 128 KiB a
/// circuit, end a chunk transfer half way).
fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: RELAY_RESERVATIONS_MAX,
        max_circuits: RELAY_CIRCUITS_MAX,
        max_circuits_per_peer: RELAY_CIRCUITS_PER_PEER_MAX,
        max_circuit_duration: RELAY_CIRCUIT_DURATION,
        max_circuit_bytes: RELAY_CIRCUIT_BYTES_MAX,
        ..relay::Config::default()
    }
}

fn gossip_config() -> Result<gossipsub::Config, BehaviourError> {
    gossipsub::ConfigBuilder::default()
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .validation_mode(gossipsub::ValidationMode::Strict)
        // Nothing is forwarded before the node has judged it.
        .validate_messages()
        .max_transmit_size(GOSSIP_TRANSMIT_BYTES_MAX)
        .duplicate_cache_time(GOSSIP_DUPLICATE_CACHE)
        .message_id_fn(message_id)
        .build()
        .map_err(|error| BehaviourError::GossipConfig {
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::PeerId;

    #[test]
    fn each_publication_has_its_own_message_id() {
        let a = PeerId::random();
        let b = PeerId::random();
        let message = |source, data: &[u8], seq| gossipsub::Message {
            source: Some(source),
            data: data.to_vec(),
            sequence_number: Some(seq),
            topic: ident_topic(GossipTopic::Blocks).hash(),
        };
        // The same message relayed is the same id; a re-publication is not.
        assert_eq!(
            message_id(&message(a, b"x", 1)),
            message_id(&message(a, b"x", 1))
        );
        assert_ne!(
            message_id(&message(a, b"x", 1)),
            message_id(&message(a, b"x", 2))
        );
        assert_ne!(
            message_id(&message(a, b"x", 1)),
            message_id(&message(b, b"x", 1))
        );
        assert_ne!(
            message_id(&message(a, b"x", 1)),
            message_id(&message(a, b"y", 1))
        );
    }

    #[test]
    fn builds_with_every_topic_and_protocol() {
        let config = NetConfig::new([3; 32]);
        let keypair = crate::identity::keypair_of(&config.secret);
        let (_, relay_client) = relay::client::new(keypair.public().to_peer_id());
        let mut behaviour = Behaviour::new(&keypair, &config, relay_client).unwrap();
        let topics: Vec<_> = behaviour.gossipsub.topics().cloned().collect();
        assert_eq!(topics.len(), GossipTopic::ALL.len());
        for topic in GossipTopic::ALL {
            assert!(topics.contains(&ident_topic(topic).hash()));
        }
        for protocol in Protocol::ALL {
            // Each protocol maps to its own behaviour (no two share one).
            let pointer = behaviour.request_response(protocol) as *const _ as usize;
            for other in Protocol::ALL {
                if other != protocol {
                    assert_ne!(
                        pointer,
                        behaviour.request_response(other) as *const _ as usize
                    );
                }
            }
        }
    }
}
