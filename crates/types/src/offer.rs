//! What a node publishes about its prices, and what it answers to a job's
//! capacity request: shared by the ledger (which checks awarded offers) and
//! the market (which makes and ranks them).

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::encoding::{Kind, Versioned};
use crate::hash::Hash32;
use crate::keys::NodeId;

/// A job's id: fixed by its poster and the nonce of the `PostJob` transaction,
/// so the poster knows it before the transaction lands.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct JobId(pub Hash32);

impl JobId {
    /// The id of the job posted by `poster` with transaction nonce `nonce`.
    pub fn derive(poster: &crate::keys::AccountId, nonce: u64) -> JobId {
        let mut h = blake3::Hasher::new_derive_key("peercloud job id v1");
        h.update(&poster.key().0);
        h.update(&nonce.to_le_bytes());
        JobId(h.finalize().into())
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for JobId {
    type Err = crate::hash::HashParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}

/// A node's published base prices, per resource unit. The market raises them
/// with utilisation; these are the floor.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct PriceSheet {
    /// Per CPU core-second (1000 millicores for one second).
    pub cpu_core_sec: Amount,
    /// Per GiB of memory held for one second.
    pub memory_gib_sec: Amount,
    /// Per GiB stored for one hour.
    pub storage_gib_hour: Amount,
    /// Per GiB transferred.
    pub bandwidth_gib: Amount,
    /// Per billion units of WebAssembly fuel burned.
    pub gigafuel: Amount,
    /// Flat fee per job taken (staging, verification).
    pub job_base: Amount,
}

/// A node's signed answer to a job's capacity request.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Offer {
    /// The job offered for.
    pub job: JobId,
    /// The node that would run it (and signs this offer).
    pub node: NodeId,
    /// Total price for running the job once.
    pub price: Amount,
    /// Milliseconds since the Unix epoch after which the offer lapses.
    pub valid_until_ms: u64,
}

impl Versioned for Offer {
    const KIND: u8 = Kind::Offer as u8;
    const VERSION: u8 = 1;
}

/// A node's signed answer that it will not take a job, and why. Signed so
/// that nobody but the node can speak for it: a requester ends its offer
/// window once every registered node has answered, and a forged decline
/// could otherwise end it early and get a job cancelled.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Decline {
    /// The job declined.
    pub job: JobId,
    /// The node declining (and signing).
    pub node: NodeId,
    /// Why, for the user.
    pub reason: String,
}

impl Versioned for Decline {
    const KIND: u8 = Kind::Decline as u8;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypair, Signed, decode, encode};

    #[test]
    fn job_ids_differ_by_poster_and_nonce() {
        let a = Keypair::from_seed(&[1; 32]).account_id();
        let b = Keypair::from_seed(&[2; 32]).account_id();
        assert_ne!(JobId::derive(&a, 1), JobId::derive(&a, 2));
        assert_ne!(JobId::derive(&a, 1), JobId::derive(&b, 1));
        assert_eq!(JobId::derive(&a, 1), JobId::derive(&a, 1));
    }

    #[test]
    fn signed_offers_round_trip() {
        let node = Keypair::generate();
        let offer = Offer {
            job: JobId(Hash32::of(b"j")),
            node: node.node_id(),
            price: Amount::from_tokens(2),
            valid_until_ms: 99,
        };
        let signed = Signed::new(offer, &node);
        let back: Signed<Offer> = decode(&encode(&signed)).unwrap();
        back.verify().unwrap();
        assert_eq!(back, signed);
    }
}
