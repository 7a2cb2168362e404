//! Peercloud's node daemon: the agents that turn the library crates into a
//! working grid member, and the HTTP API a user's client talks to.
//!
//! - [`daemon`]: validator, follower, provider and requester agents, the
//!   chunk service and the network chunk store.
//! - [`api`]: the HTTP server (its bodies are the `peercloud-api` crate).
//! - [`chain`], [`genesis`]: the ledger on disk and the network's genesis file.
//! - [`config`]: settings from flags, environment, `config.toml` and defaults.
//! - [`wire`]: the one message enum every gossip topic and protocol carries.
//! - [`ready`]: the line a node prints once it serves.
//! - [`web`]: the public web gateway: public buckets served as websites.

pub mod api;
pub mod chain;
pub mod config;
pub mod daemon;
pub mod edge;
pub mod genesis;
pub mod ready;
pub mod s3;
pub mod web;
pub mod wire;
