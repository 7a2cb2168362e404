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
//!   [`BytesCodec`] limit and timeout.
//!
//! Nothing here knows what the bytes mean.

use std::num::NonZeroUsize;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, gossipsub, identify, kad, ping};

use crate::codec::BytesCodec;
use crate::config::{
    GOSSIP_HEARTBEAT, GOSSIP_TRANSMIT_BYTES_MAX, IDENTIFY_PROTOCOL_VERSION, KADEMLIA_PROTOCOL,
    NetConfig, STREAMS_PER_CONNECTION_MAX,
};
use crate::protocol::{GossipTopic, Protocol};

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
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kademlia: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) offer: request_response::Behaviour<BytesCodec>,
    pub(crate) chunk: request_response::Behaviour<BytesCodec>,
    pub(crate) job_dispatch: request_response::Behaviour<BytesCodec>,
    pub(crate) job_result: request_response::Behaviour<BytesCodec>,
    pub(crate) block_sync: request_response::Behaviour<BytesCodec>,
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
    /// all gossip topics.
    pub(crate) fn new(keypair: &Keypair, config: &NetConfig) -> Result<Self, BehaviourError> {
        let peer_id = keypair.public().to_peer_id();

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), keypair.public())
                .with_agent_version(AGENT_VERSION.to_owned()),
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

        Ok(Behaviour {
            identify,
            ping: ping::Behaviour::default(),
            kademlia,
            gossipsub,
            offer: request_response(Protocol::Offer),
            chunk: request_response(Protocol::Chunk),
            job_dispatch: request_response(Protocol::JobDispatch),
            job_result: request_response(Protocol::JobResult),
            block_sync: request_response(Protocol::BlockSync),
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
        }
    }
}

/// The gossipsub topic for one of ours (identity-hashed: the hash is the name,
/// so a topic is readable on the wire and maps back with [`GossipTopic::from_name`]).
pub(crate) fn ident_topic(topic: GossipTopic) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(topic.name())
}

/// A gossip message's id: the BLAKE3 of its data, so the same payload
/// published twice (or by two nodes) is delivered once.
pub(crate) fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::new(blake3::hash(&message.data).as_bytes())
}

fn gossip_config() -> Result<gossipsub::Config, BehaviourError> {
    gossipsub::ConfigBuilder::default()
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .validation_mode(gossipsub::ValidationMode::Strict)
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

    #[test]
    fn message_ids_depend_on_data_only() {
        let message = |data: &[u8], seq| gossipsub::Message {
            source: None,
            data: data.to_vec(),
            sequence_number: Some(seq),
            topic: ident_topic(GossipTopic::Blocks).hash(),
        };
        assert_eq!(message_id(&message(b"a", 1)), message_id(&message(b"a", 2)));
        assert_ne!(message_id(&message(b"a", 1)), message_id(&message(b"b", 1)));
    }

    #[test]
    fn builds_with_every_topic_and_protocol() {
        let config = NetConfig::new([3; 32]);
        let keypair = crate::identity::keypair_of(&config.secret);
        let mut behaviour = Behaviour::new(&keypair, &config).unwrap();
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
