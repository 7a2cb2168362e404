//! What can go wrong when the node asks the network for something.
//!
//! One enum for the whole public surface ([`NetError`]) plus [`RequestFailure`],
//! the typed reason a request-response exchange failed, so that callers can tell
//! "the peer is unreachable" from "the peer timed out" without parsing strings.

use libp2p::{Multiaddr, PeerId};

use crate::protocol::{GossipTopic, Protocol};

/// Why a call on [`crate::NetHandle`] (or [`crate::spawn`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The swarm actor has stopped (shut down or crashed); the handle is dead.
    #[error("the network actor has stopped")]
    Closed,
    /// The swarm could not be built from the configuration.
    #[error("cannot build the libp2p swarm: {reason}")]
    Build {
        /// What libp2p said.
        reason: String,
    },
    /// A listen address was refused or its listener failed while starting.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address from [`crate::NetConfig::listen`].
        addr: Multiaddr,
        /// What the transport said.
        reason: String,
    },
    /// A bootstrap address does not end in `/p2p/<peer id>`.
    #[error("bootstrap address {addr} does not end in /p2p/<peer id>")]
    BootstrapAddress {
        /// The address from [`crate::NetConfig::bootstrap`].
        addr: Multiaddr,
    },
    /// Dialling an address failed.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address dialled.
        addr: Multiaddr,
        /// What the swarm said.
        reason: String,
    },
    /// Publishing found no connected peer subscribed to the topic (yet: meshes
    /// form within a heartbeat or two of connecting).
    #[error("no peer is subscribed to gossip topic {}", topic.name())]
    NoPeers {
        /// The topic published to.
        topic: GossipTopic,
    },
    /// This exact payload was published recently (message ids are the BLAKE3
    /// of the data, so a repeat is a duplicate by design).
    #[error("the same payload was already published on gossip topic {}", topic.name())]
    Duplicate {
        /// The topic published to.
        topic: GossipTopic,
    },
    /// A gossip payload is larger than a gossip message may carry.
    #[error("gossip payload of {len} bytes on {} exceeds the {max} byte limit", topic.name())]
    GossipTooLarge {
        /// The topic published to.
        topic: GossipTopic,
        /// Payload length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// Publishing failed for another reason (signing, every peer queue full).
    #[error("cannot publish on gossip topic {}: {reason}", topic.name())]
    Publish {
        /// The topic published to.
        topic: GossipTopic,
        /// What gossipsub said.
        reason: String,
    },
    /// A request or response is larger than its protocol allows; refused before
    /// anything was sent.
    #[error("message of {len} bytes on {} exceeds the {max} byte limit", protocol.name())]
    TooLarge {
        /// The protocol of the message.
        protocol: Protocol,
        /// Message length in bytes.
        len: usize,
        /// The bound that applied (the protocol's request or response bound).
        max: usize,
    },
    /// A request-response exchange failed.
    #[error("request to {peer} on {} failed: {reason}", protocol.name())]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// The protocol used.
        protocol: Protocol,
        /// Why it failed.
        reason: RequestFailure,
    },
    /// Too many requests or dials are already in flight; try again later.
    #[error("too many {what} in flight (limit {max})")]
    Busy {
        /// What is at its limit ("requests", "dials").
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

/// Why a request-response exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailure {
    /// No connection could be made: no known address, or every dial failed.
    #[error("peer unreachable")]
    Unreachable,
    /// No response arrived within the protocol's timeout.
    #[error("timed out waiting for the response")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("connection closed before the response")]
    ConnectionClosed,
    /// The peer does not speak this protocol.
    #[error("peer does not support the protocol")]
    Unsupported,
    /// The peer closed the stream without answering (it refused or failed),
    /// or sent a malformed or oversized response.
    #[error("stream failed: {reason}")]
    Stream {
        /// What the stream reported.
        reason: String,
    },
    /// The target is this node itself.
    #[error("a node cannot send a request to itself")]
    SelfRequest,
}

impl From<&libp2p::request_response::OutboundFailure> for RequestFailure {
    fn from(failure: &libp2p::request_response::OutboundFailure) -> Self {
        use libp2p::request_response::OutboundFailure;
        match failure {
            OutboundFailure::DialFailure => RequestFailure::Unreachable,
            OutboundFailure::Timeout => RequestFailure::Timeout,
            OutboundFailure::ConnectionClosed => RequestFailure::ConnectionClosed,
            OutboundFailure::UnsupportedProtocols => RequestFailure::Unsupported,
            OutboundFailure::Io(error) => RequestFailure::Stream {
                reason: error.to_string(),
            },
        }
    }
}
