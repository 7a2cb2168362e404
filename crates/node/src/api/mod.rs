//! The node's HTTP API on localhost: what the CLI talks to. JSON bodies
//! ([`model`]), errors as `{code, message}`, a bearer token from a file in
//! the data directory.

pub mod model;
pub mod server;
