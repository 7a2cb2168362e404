//! Peercloud's market: how a node prices a job, whether it may take it, and
//! how the requester picks among offers. Pure functions of their inputs — no
//! clock, no I/O — so a node's quote and a requester's choice can be replayed
//! and tested exactly.
//!
//! ```text
//!  JobAsk ──► evaluate(ask, node) ──► Quote (or Decline) ──► node signs an Offer
//!  offers ──► select(offers, k)  ──► the k awarded (cheapest, then most reputable)
//! ```

pub mod ask;
pub mod pricing;
pub mod select;

pub use ask::{Decline, JobAsk, NodeProfile, evaluate};
pub use pricing::{PricePolicy, quote, surge_bps};
pub use select::{Candidate, SelectionError, select};
