//! Peercloud's network layer: one libp2p swarm per node, owned by one actor
//! task, moving opaque bytes between nodes.
//!
//! - [`spawn`] builds the swarm (TCP with `TCP_NODELAY` + noise + yamux;
//!   identify, ping, Kademlia, gossipsub and one request-response behaviour per
//!   [`Protocol`]) and returns a [`NetHandle`] plus the [`NetEvent`] stream;
//! - gossip goes out on the three [`GossipTopic`]s; requests and responses are
//!   length-prefixed bytes bounded by [`Protocol::request_bytes_max`] and
//!   [`Protocol::response_bytes_max`];
//! - requests on a [`Protocol::bulk`] protocol (chunks) go over the bulk
//!   channel where the peer offers one: TCP, every frame sealed
//!   (AES-256-GCM) with a session key agreed over libp2p (`bulk`);
//! - a node's [`PeerId`] *is* its `NodeId` ([`peer_id_of`], [`node_id_of`]).
//!
//! This crate knows no ledger rules: it moves signed, encoded records between
//! peers and leaves judging them to the node.
//!
//! Modules: `config` (settings and every bound), `identity` (key <-> peer id),
//! `codec` (framing), `behaviour` (the protocols), `actor` (the swarm loop),
//! `handle` (the node's side), `metrics` (counters), `error`, `protocol`
//! (names and limits).

mod actor;
mod addrs;
mod behaviour;
mod bulk;
pub mod codec;
pub mod config;
pub mod error;
mod handle;
mod identity;
mod metrics;
mod nat;
pub mod protocol;
mod relay_server;

pub use actor::spawn;
#[doc(hidden)]
pub use bulk::fuzzing as bulk_fuzzing;
pub use config::{NetConfig, STREAMS_PER_CONNECTION_MAX};
pub use error::{NetError, RequestFailure};
pub use handle::{
    GossipId, NetEvent, NetHandle, REQUESTS_IN_FLIGHT_PER_PEER_MAX, Responder, Verdict,
};
pub use identity::{node_id_of, peer_id_of};
pub use libp2p::{Multiaddr, PeerId, multiaddr};
pub use metrics::NetMetricsSnapshot;
pub use nat::{NatView, Reachability};
pub use protocol::{CHUNK_BATCH_BYTES_MAX, GossipTopic, Protocol};
