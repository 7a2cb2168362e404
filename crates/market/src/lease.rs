//! Leases: what a period of capacity costs a node, what it bids, and which
//! nodes' standing offers answer a user's [`LeaseRequest`] best.
//!
//! ```text
//!  PriceSheet, resources, period ──► lease_floor ──► lease_bid (× utilisation surge) ──► bid
//!  node offers ──► OfferBook::new ──► book.best(request, k) ──► the k cheapest acceptable
//!                                     rank(request, offers, k): the same answer, one linear pass
//! ```
//!
//! A candidate answers a request when it offers the request's kind, its free
//! resources hold the request's, it passes the request's filters
//! ([`LeaseRequest::admits`]) and its bid is at most the reserve. Answers are
//! ranked cheapest first, then the more reputable, then the lower node id,
//! one per node. The ledger's award (`peercloud_types::lease::award`) then
//! picks the lowest bid among the offers the user takes (ties to the lower
//! node id: reputation plays no part there) and pays it the first losing bid.
//!
//! All money arithmetic is exact integer arithmetic on base units.

mod book;

use std::cmp::Reverse;

use peercloud_types::lease::{LeaseRequest, SpaceKind};
use peercloud_types::{AccountId, Amount, NodeId, PriceSheet, Resources};

pub use book::{OFFER_BOOK_CANDIDATES_MAX, OfferBook, TooManyCandidates};

use crate::pricing::{BPS, BYTES_PER_GIB, MILLICORES_PER_CORE, MS_PER_SEC, PricePolicy, surge_bps};

/// Milliseconds in one hour (storage is priced per GiB-hour).
const MS_PER_HOUR: u128 = 3_600 * MS_PER_SEC;
/// Millicore-milliseconds in one core-second.
const CPU_UNITS_PER_PRICE: u128 = MILLICORES_PER_CORE * MS_PER_SEC;
/// Byte-milliseconds in one GiB-second.
const MEMORY_UNITS_PER_PRICE: u128 = BYTES_PER_GIB * MS_PER_SEC;
/// Byte-milliseconds in one GiB-hour.
const STORAGE_UNITS_PER_PRICE: u128 = BYTES_PER_GIB * MS_PER_HOUR;
/// A denominator every resource's price unit divides: the sum of the parts'
/// fractions is kept exact in it and rounded once.
const FLOOR_DENOMINATOR: u128 = lcm(
    lcm(CPU_UNITS_PER_PRICE, MEMORY_UNITS_PER_PRICE),
    STORAGE_UNITS_PER_PRICE,
);

const fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

const fn lcm(a: u128, b: u128) -> u128 {
    a / gcd(a, b) * b
}

/// What holding `resources` for one period of `period_ms` costs at the
/// node's base prices: its floor, under which it never sells.
///
/// - cpu: `cpu_core_sec` per core (1000 millicores) per second,
/// - memory: `memory_gib_sec` per GiB per second,
/// - storage: `storage_gib_hour` per GiB per hour.
///
/// Bandwidth is billed by use elsewhere, GPUs are not priced by the sheet,
/// and fuel and the job base are for jobs, so none of them count here.
///
/// The parts are added exactly (fractions of a base unit included) and the
/// sum is rounded up once to a whole base unit. `None` when a part's
/// product `price × amount × period_ms` overflows `u128` (absurd prices).
pub fn lease_floor(prices: &PriceSheet, resources: &Resources, period_ms: u64) -> Option<Amount> {
    let parts = [
        (
            prices.cpu_core_sec,
            resources.cpu_millicores,
            CPU_UNITS_PER_PRICE,
        ),
        (
            prices.memory_gib_sec,
            resources.memory_bytes,
            MEMORY_UNITS_PER_PRICE,
        ),
        (
            prices.storage_gib_hour,
            resources.storage_bytes,
            STORAGE_UNITS_PER_PRICE,
        ),
    ];
    let mut whole: u128 = 0;
    // In units of 1 / FLOOR_DENOMINATOR base units; each part adds less
    // than FLOOR_DENOMINATOR (about 2^54), so three never overflow.
    let mut fraction: u128 = 0;
    for (price, amount, units_per_price) in parts {
        // A u64 times a u64 always fits in a u128.
        let held = u128::from(amount) * u128::from(period_ms);
        let numerator = price.base_units().checked_mul(held)?;
        whole = whole.checked_add(numerator / units_per_price)?;
        fraction += numerator % units_per_price * (FLOOR_DENOMINATOR / units_per_price);
    }
    whole
        .checked_add(fraction.div_ceil(FLOOR_DENOMINATOR))
        .map(Amount::from_base_units)
}

/// The default provider strategy's bid: `floor` raised by the surge factor
/// of `policy` at `utilisation_bps` (see [`surge_bps`]), rounded down. The
/// factor is at least 1, so the bid is never below the floor. `None` on
/// overflow.
pub fn lease_bid(policy: &PricePolicy, floor: Amount, utilisation_bps: u32) -> Option<Amount> {
    let bid = floor.checked_mul_div(surge_bps(policy, utilisation_bps), BPS)?;
    debug_assert!(bid >= floor, "a bid under its floor");
    Some(bid)
}

/// [`lease_floor`] at the policy's sheet, then [`lease_bid`]: what a node
/// bids per period for a request of `resources` at `utilisation_bps`.
pub fn lease_quote(
    policy: &PricePolicy,
    resources: &Resources,
    period_ms: u64,
    utilisation_bps: u32,
) -> Option<Amount> {
    let floor = lease_floor(&policy.sheet, resources, period_ms)?;
    lease_bid(policy, floor, utilisation_bps)
}

/// A node's standing lease offer, with what the requester knows of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseCandidate {
    /// The node.
    pub node: NodeId,
    /// The node's owner (the farmer).
    pub owner: AccountId,
    /// The node's location, matched by prefix against a request's filters.
    pub location: String,
    /// The node's ledger reputation.
    pub reputation: u32,
    /// The kinds of space it runs.
    pub kinds: Vec<SpaceKind>,
    /// The resources it has free to lease.
    pub free: Resources,
    /// What it asks per billing period.
    pub bid_per_period: Amount,
}

/// The order answers are ranked in: the cheapest, then the most reputable,
/// then the lowest node id.
pub(crate) type RankingKey = (Amount, Reverse<u32>, NodeId);

impl LeaseCandidate {
    /// Whether this offer answers `request`: the kind is offered, the free
    /// resources hold the request's, the node passes the request's filters
    /// and the bid is at most the reserve.
    pub fn serves(&self, request: &LeaseRequest) -> bool {
        self.kinds.contains(&request.kind)
            && request.resources.fits_within(&self.free)
            && self.bid_per_period <= request.max_price_per_period
            && request.admits(&self.location, &self.owner, self.reputation)
    }

    /// Where this offer ranks: lower is better.
    pub(crate) fn ranking_key(&self) -> RankingKey {
        (self.bid_per_period, Reverse(self.reputation), self.node)
    }
}

/// The `k` best offers for `request` among `candidates`, best first: those
/// that [serve](LeaseCandidate::serves) it, cheapest, then most reputable,
/// then lowest node id, one per node (a node's best-ranked offer; equal
/// offers in their order in `candidates`). Fewer than `k` when fewer serve.
///
/// One linear pass and a sort: the reference [`OfferBook::best`] is tested
/// against; use the book when many requests meet the same offers.
pub fn rank<'a>(
    request: &LeaseRequest,
    candidates: &'a [LeaseCandidate],
    k: usize,
) -> Vec<&'a LeaseCandidate> {
    let mut serving: Vec<&LeaseCandidate> =
        candidates.iter().filter(|c| c.serves(request)).collect();
    // Stable: equal keys keep their order in `candidates`.
    serving.sort_by_key(|c| c.ranking_key());
    let mut chosen: Vec<&LeaseCandidate> = Vec::with_capacity(k.min(serving.len()));
    for candidate in serving {
        if chosen.len() == k {
            break;
        }
        if chosen.iter().all(|c| c.node != candidate.node) {
            chosen.push(candidate);
        }
    }
    chosen
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use peercloud_types::PublicKey;
    use peercloud_types::lease::LeaseFilters;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;
    const HOUR_MS: u64 = 3_600_000;

    fn units(n: u128) -> Amount {
        Amount::from_base_units(n)
    }

    pub(crate) fn node(byte: u8) -> NodeId {
        NodeId(PublicKey([byte; 32]))
    }

    pub(crate) fn account(byte: u8) -> AccountId {
        AccountId(PublicKey([byte; 32]))
    }

    /// A request anyone serves: a container of 1 core, 1 GiB, reserve 1000.
    pub(crate) fn request() -> LeaseRequest {
        LeaseRequest {
            user: account(200),
            salt: 1,
            kind: SpaceKind::Container,
            resources: Resources {
                cpu_millicores: 1_000,
                memory_bytes: GIB,
                ..Resources::default()
            },
            period_ms: HOUR_MS,
            periods: Some(24),
            max_price_per_period: units(1_000),
            filters: LeaseFilters::default(),
            offers_until_ms: 0,
            activate_within_ms: 0,
        }
    }

    /// A container node in `eu-west/paris` that serves [`request`].
    pub(crate) fn candidate(node_byte: u8, bid: u128, reputation: u32) -> LeaseCandidate {
        LeaseCandidate {
            node: node(node_byte),
            owner: account(1),
            location: "eu-west/paris".into(),
            reputation,
            kinds: vec![SpaceKind::Container],
            free: Resources {
                cpu_millicores: 4_000,
                memory_bytes: 8 * GIB,
                storage_bytes: 100 * GIB,
                bandwidth_bytes_per_sec: 1 << 20,
                gpus: 0,
            },
            bid_per_period: units(bid),
        }
    }

    fn nodes(chosen: &[&LeaseCandidate]) -> Vec<NodeId> {
        chosen.iter().map(|c| c.node).collect()
    }

    #[test]
    fn the_floor_adds_cpu_memory_and_storage_exactly() {
        let prices = PriceSheet {
            cpu_core_sec: units(1_000),
            memory_gib_sec: units(100),
            storage_gib_hour: units(3_600),
            // None of these count for a lease.
            bandwidth_gib: units(1 << 40),
            gigafuel: units(1 << 40),
            job_base: units(1 << 40),
        };
        let resources = Resources {
            cpu_millicores: 2_000,
            memory_bytes: GIB,
            storage_bytes: 10 * GIB,
            bandwidth_bytes_per_sec: 1 << 30,
            gpus: 8,
        };
        // cpu 2 cores * 3600 s * 1000 + memory 1 GiB * 3600 s * 100
        // + storage 10 GiB * 1 h * 3600
        let expected = 7_200_000 + 360_000 + 36_000;
        assert_eq!(
            lease_floor(&prices, &resources, HOUR_MS),
            Some(units(expected))
        );
        assert_eq!(lease_floor(&prices, &resources, 0), Some(Amount::ZERO));
        assert_eq!(
            lease_floor(&prices, &Resources::default(), HOUR_MS),
            Some(Amount::ZERO)
        );
    }

    #[test]
    fn the_floor_rounds_up_once_over_the_exact_sum() {
        let prices = PriceSheet {
            cpu_core_sec: units(1),
            memory_gib_sec: units(1),
            storage_gib_hour: units(1),
            ..PriceSheet::default()
        };
        let cpu = |millicores| Resources {
            cpu_millicores: millicores,
            ..Resources::default()
        };
        // A millionth of a base unit is still one base unit.
        assert_eq!(lease_floor(&prices, &cpu(1), 1), Some(units(1)));
        // Half a core for a second: half a unit, up to one.
        assert_eq!(lease_floor(&prices, &cpu(500), 1_000), Some(units(1)));
        // Half a unit of cpu and half of memory make exactly one, not two.
        let halves = Resources {
            cpu_millicores: 500,
            memory_bytes: GIB / 2,
            ..Resources::default()
        };
        assert_eq!(lease_floor(&prices, &halves, 1_000), Some(units(1)));
        // A GiB stored for half an hour: half a unit, up to one; three: two.
        let storage = |gib| Resources {
            storage_bytes: gib * GIB,
            ..Resources::default()
        };
        assert_eq!(
            lease_floor(&prices, &storage(1), HOUR_MS / 2),
            Some(units(1))
        );
        assert_eq!(
            lease_floor(&prices, &storage(3), HOUR_MS / 2),
            Some(units(2))
        );
        // Just over one: two.
        let over = Resources {
            cpu_millicores: 501,
            memory_bytes: GIB / 2,
            ..Resources::default()
        };
        assert_eq!(lease_floor(&prices, &over, 1_000), Some(units(2)));
    }

    #[test]
    fn the_floor_overflow_is_none() {
        let prices = PriceSheet {
            memory_gib_sec: units(u128::MAX / 2),
            ..PriceSheet::default()
        };
        let resources = Resources {
            memory_bytes: 4,
            ..Resources::default()
        };
        assert_eq!(lease_floor(&prices, &resources, 1), None);
        // The same price for nothing held is no overflow.
        assert_eq!(
            lease_floor(&prices, &Resources::default(), u64::MAX),
            Some(Amount::ZERO)
        );
        let policy = PricePolicy::new(prices);
        assert_eq!(lease_quote(&policy, &resources, 1, 0), None);
    }

    #[test]
    fn the_bid_is_the_floor_times_the_surge() {
        let policy = PricePolicy::new(PriceSheet {
            cpu_core_sec: units(1_000),
            ..PriceSheet::default()
        });
        let floor = units(10_000);
        assert_eq!(lease_bid(&policy, floor, 0), Some(floor));
        // 50%: 1 + 3 * 0.25 = 1.75x; full (and beyond, clamped): 4x.
        assert_eq!(lease_bid(&policy, floor, 5_000), Some(units(17_500)));
        assert_eq!(lease_bid(&policy, floor, 10_000), Some(units(40_000)));
        assert_eq!(lease_bid(&policy, floor, 60_000), Some(units(40_000)));
        assert_eq!(lease_bid(&policy, units(u128::MAX / 2), 10_000), None);
        // 1 core for an hour at 1000 a core-second, at 50%.
        let resources = Resources {
            cpu_millicores: 1_000,
            ..Resources::default()
        };
        assert_eq!(
            lease_quote(&policy, &resources, HOUR_MS, 5_000),
            Some(units(3_600_000 * 7 / 4))
        );
    }

    proptest! {
        #[test]
        fn the_bid_is_never_below_the_floor_and_rises_with_use(
            floor in any::<u64>(),
            a in any::<u32>(),
            b in any::<u32>(),
            surge_at_full_bps in 0u128..1_000_000,
        ) {
            let policy = PricePolicy { sheet: PriceSheet::default(), surge_at_full_bps };
            let floor = units(u128::from(floor));
            let (low, high) = (a.min(b), a.max(b));
            let low_bid = lease_bid(&policy, floor, low);
            let high_bid = lease_bid(&policy, floor, high);
            prop_assert!(low_bid.is_some_and(|bid| bid >= floor));
            prop_assert!(low_bid <= high_bid);
        }

        #[test]
        fn the_floor_is_the_exact_sum_rounded_up(
            prices in [0u128..1 << 20, 0u128..1 << 20, 0u128..1 << 20],
            amounts in [0u64..1 << 36, 0u64..1 << 36, 0u64..1 << 36],
            period_ms in 0u64..1 << 32,
        ) {
            let sheet = PriceSheet {
                cpu_core_sec: units(prices[0]),
                memory_gib_sec: units(prices[1]),
                storage_gib_hour: units(prices[2]),
                ..PriceSheet::default()
            };
            let resources = Resources {
                cpu_millicores: amounts[0],
                memory_bytes: amounts[1],
                storage_bytes: amounts[2],
                ..Resources::default()
            };
            let per_price = [CPU_UNITS_PER_PRICE, MEMORY_UNITS_PER_PRICE, STORAGE_UNITS_PER_PRICE];
            // Everything over the one common denominator, at once.
            let exact: u128 = (0..3)
                .map(|i| {
                    prices[i] * u128::from(amounts[i]) * u128::from(period_ms)
                        * (FLOOR_DENOMINATOR / per_price[i])
                })
                .sum();
            prop_assert_eq!(
                lease_floor(&sheet, &resources, period_ms),
                Some(units(exact.div_ceil(FLOOR_DENOMINATOR)))
            );
        }
    }

    #[test]
    fn each_unmet_condition_excludes_a_candidate() {
        let request = request();
        let good = candidate(1, 500, 100);
        assert!(good.serves(&request));
        let mut exclusions: Vec<(&str, LeaseCandidate)> = Vec::new();
        let mut other = good.clone();
        other.kinds = vec![SpaceKind::WasmService];
        exclusions.push(("kind", other));
        let mut other = good.clone();
        other.free.cpu_millicores = 999;
        exclusions.push(("cpu", other));
        let mut other = good.clone();
        other.free.memory_bytes = GIB - 1;
        exclusions.push(("memory", other));
        let mut other = good.clone();
        other.bid_per_period = units(1_001);
        exclusions.push(("above the reserve", other));
        for (why, candidate) in &exclusions {
            assert!(!candidate.serves(&request), "{why}");
        }
        // A bid at the reserve is taken.
        let mut at_reserve = good.clone();
        at_reserve.bid_per_period = request.max_price_per_period;
        assert!(at_reserve.serves(&request));

        let mut picky = request.clone();
        picky.resources.gpus = 1;
        assert!(!good.serves(&picky), "gpus");
        picky = request.clone();
        picky.filters.locations = vec!["us".into(), "eu-east".into()];
        assert!(!good.serves(&picky), "location");
        picky.filters.locations.push("eu-west".into());
        assert!(good.serves(&picky), "location prefix");
        picky = request.clone();
        picky.filters.farmers = vec![account(2)];
        assert!(!good.serves(&picky), "farmer");
        picky = request.clone();
        picky.filters.min_reputation = 101;
        assert!(!good.serves(&picky), "reputation");

        let mut all = exclusions.into_iter().map(|(_, c)| c).collect::<Vec<_>>();
        all.push(good.clone());
        assert_eq!(rank(&request, &all, 5), vec![&good]);
    }

    #[test]
    fn cheapest_then_most_reputable_then_lowest_node() {
        let candidates = vec![
            candidate(9, 300, 50),
            candidate(8, 200, 10),
            candidate(7, 200, 90),
            candidate(5, 200, 10),
            candidate(4, 100, 0),
        ];
        let request = request();
        let ranked = rank(&request, &candidates, 10);
        assert_eq!(
            nodes(&ranked),
            vec![node(4), node(7), node(5), node(8), node(9)]
        );
        assert_eq!(
            nodes(&rank(&request, &candidates, 2)),
            vec![node(4), node(7)]
        );
        assert!(rank(&request, &candidates, 0).is_empty());
    }

    #[test]
    fn a_node_is_ranked_once_at_its_best_offer() {
        let mut small = candidate(3, 10, 0);
        small.free.cpu_millicores = 500;
        let candidates = vec![
            candidate(3, 400, 0),
            small,
            candidate(2, 300, 0),
            candidate(3, 200, 0),
        ];
        let ranked = rank(&request(), &candidates, 3);
        assert_eq!(ranked, vec![&candidates[3], &candidates[2]]);
    }
}
