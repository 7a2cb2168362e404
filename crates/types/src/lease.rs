//! Leases of capacity over time: what a user asks for (`LeaseRequest`), what
//! a node answers (`LeaseOffer`, sealed: sent to the requester only), and
//! the signed evidence that a leased space was reachable in a billing period
//! (`LeaseProbe`). The ledger (`OpenLease`, `BillLease`) checks all three;
//! the market ranks offers and prices the award.

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::encoding::{Kind, Versioned, encode};
use crate::hash::Hash32;
use crate::keys::{AccountId, NodeId};
use crate::resources::Resources;

/// A lease's id: BLAKE3 of its user and the nonce of the `OpenLease`
/// transaction, so the user knows it before the transaction lands.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct LeaseId(pub Hash32);

impl LeaseId {
    /// The id of the lease `user` opens with transaction nonce `nonce`.
    pub fn derive(user: &AccountId, nonce: u64) -> LeaseId {
        let mut h = blake3::Hasher::new_derive_key("peercloud lease id v1");
        h.update(&user.key().0);
        h.update(&nonce.to_le_bytes());
        LeaseId(h.finalize().into())
    }
}

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lease:{}", self.0)
    }
}

impl std::str::FromStr for LeaseId {
    type Err = crate::hash::HashParseError;
    /// `lease:<64 hex digits>` (as `Display` writes it) or the bare hex.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        s.strip_prefix("lease:").unwrap_or(s).parse().map(LeaseId)
    }
}

/// What kind of resource space a lease is for. A node offers only the kinds
/// it can run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceKind {
    /// A container on the node's container engine, limited by the kernel.
    Container,
    /// A long-running WebAssembly HTTP service (`wasi:http`).
    WasmService,
}

impl SpaceKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SpaceKind; 2] = [SpaceKind::Container, SpaceKind::WasmService];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            SpaceKind::Container => "container",
            SpaceKind::WasmService => "wasm-service",
        }
    }
}

impl std::fmt::Display for SpaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SpaceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpaceKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| format!("unknown space kind {s:?} (container or wasm-service)"))
    }
}

/// Which nodes a request will take offers from. Empty lists allow all.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct LeaseFilters {
    /// A node's location must start with one of these (e.g. `eu`, `eu-west/paris`).
    pub locations: Vec<String>,
    /// A node's owner must be one of these accounts.
    pub farmers: Vec<AccountId>,
    /// A node's ledger reputation must be at least this.
    pub min_reputation: u32,
}

/// A user's request for capacity over time, broadcast to the nodes. Offers
/// name its digest; `OpenLease` carries it whole so the ledger can check
/// every offer against it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// The renter: signs `OpenLease`, is the only one let into the space.
    pub user: AccountId,
    /// Makes two otherwise equal requests distinct (the CLI draws it).
    pub salt: u64,
    /// The kind of space.
    pub kind: SpaceKind,
    /// What the space gets (enforced by the node's kernel or sandbox).
    pub resources: Resources,
    /// The billing period in ms: the lease pays its node once per period.
    pub period_ms: u64,
    /// How many periods; `None` is open-ended (it runs while the deposit lasts).
    pub periods: Option<u64>,
    /// The reserve: the most the user pays per period.
    pub max_price_per_period: Amount,
    /// Which nodes may answer.
    pub filters: LeaseFilters,
    /// Offers after this time (ms since the epoch) are not taken.
    pub offers_until_ms: u64,
    /// Once opened, the user has this long to verify access and activate the
    /// lease; after it anyone may cancel it and the deposit goes back.
    pub activate_within_ms: u64,
}

impl Versioned for LeaseRequest {
    const KIND: u8 = Kind::LeaseRequest as u8;
    const VERSION: u8 = 1;
}

impl LeaseRequest {
    /// The digest offers name: BLAKE3 of the canonical encoding.
    pub fn digest(&self) -> Hash32 {
        Hash32::of(&encode(self))
    }

    /// Whether a node at `location`, owned by `owner`, with `reputation`,
    /// passes the request's filters.
    pub fn admits(&self, location: &str, owner: &AccountId, reputation: u32) -> bool {
        let filters = &self.filters;
        (filters.locations.is_empty()
            || filters
                .locations
                .iter()
                .any(|l| location.starts_with(l.as_str())))
            && (filters.farmers.is_empty() || filters.farmers.contains(owner))
            && reputation >= filters.min_reputation
    }
}

/// The auction's award rule: the lowest bid wins (ties to the lowest node
/// id) and is paid the first losing bid (the next lowest), or the reserve
/// when it is the only bid. Bidding its true cost is then a node's best
/// strategy: its bid decides whether it wins, never what it is paid.
/// `None` when there are no bids. Returns the winner's index and its price.
pub fn award(bids: &[(NodeId, Amount)], reserve: Amount) -> Option<(usize, Amount)> {
    let (winner, _) = bids
        .iter()
        .enumerate()
        .min_by_key(|(_, (node, price))| (*price, *node))?;
    let price = bids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != winner)
        .map(|(_, (_, price))| *price)
        .min()
        .unwrap_or(reserve)
        .min(reserve);
    Some((winner, price))
}

/// A node's sealed bid for a lease request: sent to the requester only.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LeaseOffer {
    /// The request's digest.
    pub request: Hash32,
    /// The node bidding (and signing).
    pub node: NodeId,
    /// Its bid per period: never under the node's own floor.
    pub price_per_period: Amount,
    /// The bid lapses after this time (ms since the epoch).
    pub valid_until_ms: u64,
}

impl Versioned for LeaseOffer {
    const KIND: u8 = Kind::LeaseOffer as u8;
    const VERSION: u8 = 1;
}

/// A node's signed observation that a leased space answered (or did not)
/// in one billing period. A period is paid only when enough probers, owned
/// by others than the leasing node's owner, saw it up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LeaseProbe {
    /// The lease.
    pub lease: LeaseId,
    /// The billing period probed.
    pub period: u64,
    /// The probing node (and signer).
    pub prober: NodeId,
    /// Whether the space answered.
    pub up: bool,
}

impl Versioned for LeaseProbe {
    const KIND: u8 = Kind::LeaseProbe as u8;
    const VERSION: u8 = 1;
}

/// A user's signed command for the space of one of its leases: the node
/// runs it only when the lease's user signed it, before it lapses, once.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SpaceCommand {
    /// The lease whose space runs it.
    pub lease: LeaseId,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Fed to its standard input.
    #[serde(with = "serde_bytes")]
    pub stdin: Vec<u8>,
    /// Drawn by the user's CLI: a command is run once.
    pub nonce: u64,
    /// Refused after this time (ms since the epoch).
    pub valid_until_ms: u64,
}

impl Versioned for SpaceCommand {
    const KIND: u8 = Kind::SpaceCommand as u8;
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypair, Signed, decode};

    fn request() -> LeaseRequest {
        LeaseRequest {
            user: Keypair::from_seed(&[1; 32]).account_id(),
            salt: 7,
            kind: SpaceKind::Container,
            resources: Resources {
                cpu_millicores: 500,
                memory_bytes: 64 << 20,
                ..Resources::default()
            },
            period_ms: 2_000,
            periods: Some(10),
            max_price_per_period: Amount::from_base_units(1_000),
            filters: LeaseFilters::default(),
            offers_until_ms: 5_000,
            activate_within_ms: 60_000,
        }
    }

    #[test]
    fn a_request_digest_changes_with_every_field_that_matters() {
        let base = request();
        let mut other = base.clone();
        other.salt += 1;
        assert_ne!(base.digest(), other.digest());
        let mut other = base.clone();
        other.kind = SpaceKind::WasmService;
        assert_ne!(base.digest(), other.digest());
        assert_eq!(base.digest(), request().digest());
    }

    #[test]
    fn filters_admit_by_location_prefix_farmer_and_reputation() {
        let mut req = request();
        let owner = Keypair::from_seed(&[2; 32]).account_id();
        let stranger = Keypair::from_seed(&[3; 32]).account_id();
        assert!(req.admits("anywhere", &owner, 0));
        req.filters.locations = vec!["eu".into()];
        req.filters.farmers = vec![owner];
        req.filters.min_reputation = 10;
        assert!(req.admits("eu-west/paris", &owner, 10));
        assert!(!req.admits("us-east", &owner, 10));
        assert!(!req.admits("eu-west", &stranger, 10));
        assert!(!req.admits("eu-west", &owner, 9));
    }

    #[test]
    fn signed_offers_and_probes_round_trip() {
        let node = Keypair::from_seed(&[4; 32]);
        let offer = Signed::new(
            LeaseOffer {
                request: request().digest(),
                node: node.node_id(),
                price_per_period: Amount::from_base_units(900),
                valid_until_ms: 9_000,
            },
            &node,
        );
        let back: Signed<LeaseOffer> = decode(&encode(&offer)).unwrap();
        back.verify().unwrap();
        assert_eq!(back, offer);
        let probe = Signed::new(
            LeaseProbe {
                lease: LeaseId::derive(&request().user, 3),
                period: 4,
                prober: node.node_id(),
                up: true,
            },
            &node,
        );
        let back: Signed<LeaseProbe> = decode(&encode(&probe)).unwrap();
        assert_eq!(back, probe);
    }

    #[test]
    fn the_winner_is_paid_the_first_losing_bid() {
        let node = |seed: u8| Keypair::from_seed(&[seed; 32]).node_id();
        let price = Amount::from_base_units;
        let reserve = price(1_000);
        let bids = [
            (node(1), price(700)),
            (node(2), price(400)),
            (node(3), price(550)),
        ];
        assert_eq!(award(&bids, reserve), Some((1, price(550))));
        // Alone, it is paid the reserve.
        assert_eq!(award(&bids[1..2], reserve), Some((0, reserve)));
        // A tie pays the tied price to the lower node id.
        let (a, b) = (node(4), node(5));
        let low = a.min(b);
        let tie = [(a, price(300)), (b, price(300))];
        let (winner, paid) = award(&tie, reserve).unwrap();
        assert_eq!((tie[winner].0, paid), (low, price(300)));
        assert_eq!(award(&[], reserve), None);
    }

    #[test]
    fn lease_ids_parse_back_from_their_text() {
        let id = LeaseId::derive(&request().user, 1);
        assert_eq!(id.to_string().parse::<LeaseId>(), Ok(id));
        assert_eq!(id.0.to_string().parse::<LeaseId>(), Ok(id));
        assert_ne!(id, LeaseId::derive(&request().user, 2));
    }
}
