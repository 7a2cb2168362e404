//! Devnets: a whole Peercloud network on one machine, for trying it out and
//! for tests.
//!
//! - [`launch`]: a validator and N providers as separate `peercloud node`
//!   processes on loopback (`peercloud devnet up`, `peercloud demo`, the
//!   multi-process tests).
//! - [`grid`]: the same daemons in this process (real libp2p on loopback,
//!   real ledger, store and sandbox), reached through the node's service
//!   instead of HTTP: the fast tests of the user-side flow.
//! - [`amounts`]: what a devnet's genesis mints and charges, and its
//!   storage cluster's terms.
//! - [`cluster`]: the storage cluster every devnet comes with (created by a
//!   manager account, joined by every provider, all admitted).

pub mod amounts;
pub mod awscli;
pub mod cluster;
pub mod grid;
pub mod launch;
pub mod spaces;

pub use cluster::ClusterError;
pub use grid::{Grid, GridError, InProcessNode};
pub use launch::{Devnet, DevnetError, NodeProcess, UpOptions, init, node_dir};
