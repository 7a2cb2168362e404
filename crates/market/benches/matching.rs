//! Lease matching at network scale: one request against 100,000 node offers
//! (the target: 10,000 requests a second on one core, so at most
//! 100 µs a request), and building the book those offers go into.
//!
//! The offers are simulated, the same on every run (a seeded SplitMix64):
//! 5,000 farmers, 16 locations, reputations 0–10000, one node in 20 with
//! GPUs, and bids from `lease_quote` at each node's own prices and
//! utilisation. Every `best` bench counts one request as one element, so
//! criterion's `thrpt` line reads as requests per second on one core.
//!
//! `cargo bench -p peercloud-market --bench matching`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use peercloud_market::{LeaseCandidate, OfferBook, PricePolicy, lease_quote, rank};
use peercloud_types::lease::{LeaseFilters, LeaseRequest, SpaceKind};
use peercloud_types::{AccountId, Amount, NodeId, PriceSheet, PublicKey, Resources};

/// Offers in the book.
const NODES: usize = 100_000;
/// Distinct owners: about 20 nodes each.
const FARMERS: u64 = 5_000;
const GIB: u64 = 1 << 30;
const HOUR_MS: u64 = 3_600_000;
const LOCATIONS: [&str; 16] = [
    "eu-west/paris",
    "eu-west/london",
    "eu-west/dublin",
    "eu-central/frankfurt",
    "eu-central/warsaw",
    "eu-north/stockholm",
    "us-east/virginia",
    "us-east/ohio",
    "us-west/oregon",
    "us-west/california",
    "ca-central/montreal",
    "sa-east/sao-paulo",
    "ap-south/mumbai",
    "ap-east/tokyo",
    "ap-east/seoul",
    "af-south/cape-town",
];

/// SplitMix64: a tiny, good-enough, seeded generator for simulated offers.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }

    fn key(&mut self) -> PublicKey {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        PublicKey(bytes)
    }
}

/// The lease every simulated bid is for, and the typical request's size.
fn typical_resources() -> Resources {
    Resources {
        cpu_millicores: 1_000,
        memory_bytes: 2 * GIB,
        storage_bytes: 20 * GIB,
        ..Resources::default()
    }
}

fn farmer(index: u64) -> AccountId {
    AccountId(SplitMix64(index ^ 0xfa44_e400).key())
}

fn candidates() -> Vec<LeaseCandidate> {
    let mut rng = SplitMix64(2024);
    (0..NODES)
        .map(|_| {
            let policy = PricePolicy::new(PriceSheet {
                cpu_core_sec: Amount::from_base_units(u128::from(rng.between(2_000, 4_000))),
                memory_gib_sec: Amount::from_base_units(u128::from(rng.between(300, 600))),
                storage_gib_hour: Amount::from_base_units(u128::from(rng.between(50, 150))),
                ..PriceSheet::default()
            });
            let utilisation_bps = rng.between(0, 10_001) as u32;
            let bid = lease_quote(&policy, &typical_resources(), HOUR_MS, utilisation_bps)
                .unwrap_or(Amount::ZERO);
            let kinds = match rng.between(0, 10) {
                0..5 => vec![SpaceKind::Container, SpaceKind::WasmService],
                5..8 => vec![SpaceKind::Container],
                _ => vec![SpaceKind::WasmService],
            };
            let gpus = if rng.between(0, 20) == 0 {
                rng.between(1, 9) as u32
            } else {
                0
            };
            LeaseCandidate {
                node: NodeId(rng.key()),
                owner: farmer(rng.between(0, FARMERS)),
                location: LOCATIONS[rng.between(0, LOCATIONS.len() as u64) as usize].into(),
                reputation: rng.between(0, 10_001) as u32,
                kinds,
                free: Resources {
                    cpu_millicores: rng.between(1, 33) * 500,
                    memory_bytes: rng.between(1, 129) * GIB,
                    storage_bytes: rng.between(10, 2_001) * GIB,
                    bandwidth_bytes_per_sec: rng.between(10, 1_001) << 20,
                    gpus,
                },
                bid_per_period: bid,
            }
        })
        .collect()
}

fn request(reserve: Amount) -> LeaseRequest {
    LeaseRequest {
        user: farmer(u64::MAX),
        salt: 1,
        kind: SpaceKind::Container,
        resources: typical_resources(),
        period_ms: HOUR_MS,
        periods: Some(24 * 30),
        max_price_per_period: reserve,
        filters: LeaseFilters::default(),
        offers_until_ms: 0,
        activate_within_ms: 60_000,
    }
}

/// The requests benched, by name.
fn requests(median_bid: Amount, highest_bid: Amount) -> Vec<(&'static str, LeaseRequest, usize)> {
    // In Europe, reputation at least 5000, paying at most the median bid.
    let mut typical = request(median_bid);
    typical.filters.locations = vec!["eu".into()];
    typical.filters.min_reputation = 5_000;
    // One city, reputation at least 8000: walked by its location group.
    let mut one_city = request(highest_bid);
    one_city.filters.locations = vec!["ap-south/mumbai".into()];
    one_city.filters.min_reputation = 8_000;
    // Three farmers' nodes only: walked by their owner groups.
    let mut three_farmers = request(highest_bid);
    three_farmers.filters.farmers = vec![farmer(7), farmer(70), farmer(700)];
    // Two GPUs and 64 GiB: few fit, found by skipping blocks.
    let mut gpus = request(highest_bid);
    gpus.resources.gpus = 2;
    gpus.resources.memory_bytes = 64 * GIB;
    // The worst case: most blocks hold a node with each of these, almost no
    // node has them all, so nearly every entry under the reserve is read.
    let mut needle = request(highest_bid);
    needle.resources = Resources {
        cpu_millicores: 15_000,
        memory_bytes: 120 * GIB,
        storage_bytes: 1_900 * GIB,
        bandwidth_bytes_per_sec: 0,
        gpus: 1,
    };
    // More GPUs than any node has: every block is skipped, nothing found.
    let mut unmatched = request(highest_bid);
    unmatched.resources.gpus = 16;
    vec![
        ("typical_k1", typical.clone(), 1),
        ("typical_k5", typical, 5),
        ("one_city_k5", one_city, 5),
        ("three_farmers_k5", three_farmers, 5),
        ("gpus_k5", gpus, 5),
        ("needle_k5", needle, 5),
        ("unmatched_k5", unmatched, 5),
    ]
}

fn matching(c: &mut Criterion) {
    let candidates = candidates();
    let mut bids: Vec<Amount> = candidates.iter().map(|c| c.bid_per_period).collect();
    bids.sort_unstable();
    let median_bid = bids[bids.len() / 2];
    let highest_bid = bids[bids.len() - 1];
    let book = OfferBook::new(candidates.clone()).expect("100,000 offers fit a book");
    let requests = requests(median_bid, highest_bid);
    println!(
        "{} offers, bids {} to {} PCL an hour (median {median_bid}), 1 request = 1 element",
        book.len(),
        bids[0],
        highest_bid,
    );
    for (name, request, k) in &requests {
        let found = book.best(request, *k);
        assert_eq!(found, rank(request, &candidates, *k), "{name}");
        let prices: Vec<String> = found.iter().map(|c| c.bid_per_period.to_string()).collect();
        println!(
            "{name}: {} found, bids [{}]",
            found.len(),
            prices.join(", ")
        );
    }

    let mut group = c.benchmark_group("lease_best_of_100k");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for (name, request, k) in &requests {
        group.bench_function(*name, |b| {
            b.iter(|| book.best(black_box(request), *k).len())
        });
    }
    // The linear reference, for scale.
    let (_, typical, _) = &requests[1];
    group.sample_size(10);
    group.bench_function("rank_linear_typical_k5", |b| {
        b.iter(|| rank(black_box(typical), &candidates, 5).len())
    });
    group.finish();

    let mut group = c.benchmark_group("lease_book");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(NODES as u64));
    group.bench_function("build_100k", |b| {
        b.iter_batched(|| candidates.clone(), OfferBook::new, BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
