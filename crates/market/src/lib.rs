//! Peercloud's market: how a node prices a job, whether it may take it, and
//! how the requester picks among offers. Pure functions of their inputs — no
//! clock, no I/O — so a node's quote and a requester's choice can be replayed
//! and tested exactly.
//!
//! ```text
//!  JobAsk ──► evaluate(ask, node) ──► Quote (or Decline) ──► node signs an Offer
//!  offers ──► select(offers, k)  ──► the k awarded (cheapest, then most reputable)
//!
//!  PriceSheet ──► lease_floor(resources, period) ──► lease_bid (× surge) ──► a node's lease bid
//!  lease offers ──► OfferBook::new ──► book.best(request, k) ──► the k best (= rank(request, offers, k))
//! ```

pub mod ask;
pub mod lease;
pub mod pricing;
pub mod select;

pub use ask::{Decline, JobAsk, NodeProfile, evaluate};
pub use lease::{
    LeaseCandidate, OFFER_BOOK_CANDIDATES_MAX, OfferBook, TooManyCandidates, lease_bid,
    lease_floor, lease_quote, rank,
};
pub use pricing::{PricePolicy, quote, surge_bps};
pub use select::{Candidate, SelectionError, select};
