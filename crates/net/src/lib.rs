//! Peercloud's network vocabulary: the names and size limits of the protocols
//! nodes speak. The libp2p swarm actor that speaks them (TCP + noise + yamux,
//! identify, ping, Kademlia, gossipsub, request-response) builds on these names
//! so that a protocol's version is visible on the wire from the first byte.
//!
//! This crate knows no ledger rules: it moves signed, encoded records between
//! peers and leaves judging them to the node.

pub mod protocol;

pub use protocol::{GossipTopic, Protocol};
