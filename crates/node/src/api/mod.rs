//! The node's HTTP API on localhost: what a user's client talks to. The
//! bodies and error codes are the `peercloud-api` crate; [`service`] is what
//! each call does, [`server`] puts it behind axum, a bearer token from a file
//! in the data directory, and `{code, message}` errors.

mod chunks;
mod earnings;
mod leases;
mod local;
mod objects;
pub mod server;
pub mod service;
mod storage;

pub use local::InProcessNode;
pub use service::Service;
