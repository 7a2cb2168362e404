//! Peercloud's shared vocabulary: the words every other crate speaks.
//!
//! Nothing here does network or disk I/O except [`keys::Keypair::save`] and
//! [`keys::Keypair::load`], which own the one rule about secrets on disk (0600,
//! refused when readable by others). Everything that is signed or persisted goes
//! through [`encoding`]: one canonical, versioned byte form.

pub mod amount;
pub mod cid;
pub mod clock;
pub mod encoding;
pub mod hash;
pub mod job;
pub mod keys;
pub mod lease;
pub mod offer;
pub mod resources;
pub mod signed;

pub use amount::{Amount, AmountError};
pub use cid::{CidError, ContentId};
pub use encoding::{DecodeError, Kind, Versioned, decode, decode_borrowed, encode};
pub use hash::Hash32;
pub use job::{JobSpec, Limits, SpecError};
pub use keys::{AccountId, IdError, KeyFileError, Keypair, NodeId, PublicKey};
pub use lease::{
    LeaseFilters, LeaseId, LeaseOffer, LeaseProbe, LeaseRequest, SpaceCommand, SpaceKind,
    award as lease_award,
};
pub use offer::{Decline, JobId, Offer, PriceSheet};
pub use resources::Resources;
pub use signed::{SignatureBatch, SignatureError, Signed};
