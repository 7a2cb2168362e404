//! Peercloud's node: the agents that turn the library crates into a working
//! grid member.
//!
//! - [`local`]: a job spec run in this machine's sandbox, the way a provider
//!   runs it, so a user can try a job before paying for it.
//! - [`grid`] / [`flow`]: an in-process grid (validator, providers, user) that
//!   runs the whole run-once flow with the real ledger, store, market and
//!   sandbox; `peercloud demo` drives it.
//! - [`replicated`]: a chunk store that places every chunk on three nodes.
//! - [`tiles`]: stitching rendered tiles into one picture.

pub mod api;
pub mod chain;
pub mod client;
pub mod config;
pub mod daemon;
pub mod devnet;
pub mod flow;
pub mod genesis;
pub mod grid;
pub mod local;
pub mod remote;
pub mod replicated;
pub mod tiles;
pub mod wire;

pub use flow::{FlowError, JobReport, PHASES};
pub use grid::{GridError, LocalGrid};
pub use local::{LocalRun, LocalRunError, run_local};
