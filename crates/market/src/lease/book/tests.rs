//! The book against `rank`, its reference: fixed cases, then random books
//! and requests through every plan.

use peercloud_types::NodeId;
use proptest::prelude::*;

use super::*;
use crate::lease::rank;
use crate::lease::tests::{account, candidate, node, request};

const GIB: u64 = 1 << 30;

fn book(candidates: &[LeaseCandidate]) -> OfferBook {
    OfferBook::new(candidates.to_vec()).expect("a small book")
}

/// `best`, then each plan forced: all must be `rank`'s answer.
fn assert_answers_as_rank(candidates: &[LeaseCandidate], request: &LeaseRequest, k: usize) {
    let expected = rank(request, candidates, k);
    let book = book(candidates);
    assert_eq!(book.best(request, k), expected, "best");
    for plan in [Plan::Scan, Plan::Locations, Plan::Owners] {
        assert_eq!(book.answer(request, k, Some(plan)), expected, "{plan:?}");
    }
}

#[test]
fn the_book_ranks_cheapest_then_most_reputable_then_lowest_node() {
    let candidates = vec![
        candidate(9, 300, 50),
        candidate(8, 200, 10),
        candidate(7, 200, 90),
        candidate(5, 200, 10),
        candidate(4, 100, 0),
        candidate(6, 1_001, 99),
    ];
    let book = book(&candidates);
    let nodes = |k| -> Vec<NodeId> { book.best(&request(), k).iter().map(|c| c.node).collect() };
    assert_eq!(nodes(10), vec![node(4), node(7), node(5), node(8), node(9)]);
    assert_eq!(nodes(1), vec![node(4)]);
    assert!(nodes(0).is_empty());
    for k in 0..7 {
        assert_answers_as_rank(&candidates, &request(), k);
    }
}

#[test]
fn the_book_excludes_by_kind_resources_filters_and_reserve() {
    let good = candidate(1, 500, 100);
    let mut wasm = candidate(2, 1, 100);
    wasm.kinds = vec![SpaceKind::WasmService];
    let mut small = candidate(3, 1, 100);
    small.free.memory_bytes = GIB - 1;
    let dear = candidate(4, 1_001, 100);
    let mut far = candidate(5, 1, 100);
    far.location = "us-east".into();
    let mut stranger = candidate(6, 1, 100);
    stranger.owner = account(2);
    let unknown = candidate(7, 1, 99);
    let candidates = vec![good, wasm, small, dear, far, stranger, unknown];

    let mut picky = request();
    picky.filters.locations = vec!["eu".into()];
    picky.filters.farmers = vec![account(1)];
    picky.filters.min_reputation = 100;
    let book = book(&candidates);
    assert_eq!(book.best(&picky, 10), vec![&candidates[0]]);
    assert_answers_as_rank(&candidates, &picky, 10);

    // The other kind finds the wasm node only.
    let mut wasm_request = request();
    wasm_request.kind = SpaceKind::WasmService;
    assert_eq!(book.best(&wasm_request, 10), vec![&candidates[1]]);
    // A reserve under every bid finds nobody.
    let mut cheap = request();
    cheap.max_price_per_period = Amount::ZERO;
    assert!(book.best(&cheap, 10).is_empty());
}

#[test]
fn a_filter_that_names_no_one_in_the_book_admits_no_one() {
    let candidates = vec![candidate(1, 10, 0), candidate(2, 20, 0)];
    let book = book(&candidates);
    let mut unknown_farmer = request();
    unknown_farmer.filters.farmers = vec![account(77)];
    assert!(book.best(&unknown_farmer, 5).is_empty());
    let mut nowhere = request();
    nowhere.filters.locations = vec!["mars".into()];
    assert!(book.best(&nowhere, 5).is_empty());
    for request in [unknown_farmer, nowhere] {
        assert_answers_as_rank(&candidates, &request, 5);
    }
}

#[test]
fn a_node_is_answered_once_at_its_best_offer() {
    let mut small = candidate(3, 10, 0);
    small.free.cpu_millicores = 500;
    let candidates = vec![
        candidate(3, 400, 0),
        small,
        candidate(2, 300, 0),
        candidate(3, 200, 0),
        candidate(3, 200, 0),
    ];
    let book = book(&candidates);
    assert_eq!(
        book.best(&request(), 3),
        vec![&candidates[3], &candidates[2]]
    );
    assert_answers_as_rank(&candidates, &request(), 3);
}

#[test]
fn the_only_fitting_offer_is_found_behind_many_blocks() {
    let mut candidates: Vec<LeaseCandidate> = (0..1_000u32)
        .map(|i| candidate((i % 250) as u8, u128::from(i), 0))
        .collect();
    candidates[998].free.gpus = 2;
    let mut gpu = request();
    gpu.resources.gpus = 1;
    assert_eq!(book(&candidates).best(&gpu, 3), vec![&candidates[998]]);
    assert_answers_as_rank(&candidates, &gpu, 3);
}

#[test]
fn a_narrow_filter_is_walked_by_its_groups() {
    let mut candidates: Vec<LeaseCandidate> = (0..200u32)
        .map(|i| candidate((i % 250) as u8, u128::from(i), 0))
        .collect();
    candidates[150].location = "us-east/virginia".into();
    candidates[160].owner = account(9);
    let book = book(&candidates);
    let index = &book.kinds[SpaceKind::Container as usize];
    let plan = |request: &LeaseRequest| {
        let admission = book.admission(request);
        index.plan(&admission, index.end(request.max_price_per_period))
    };
    let mut us = request();
    us.filters.locations = vec!["us".into()];
    assert_eq!(plan(&us), Plan::Locations);
    assert_eq!(book.best(&us, 2), vec![&candidates[150]]);
    let mut farmer = request();
    farmer.filters.farmers = vec![account(9)];
    assert_eq!(plan(&farmer), Plan::Owners);
    assert_eq!(book.best(&farmer, 2), vec![&candidates[160]]);
    let mut europe = request();
    europe.filters.locations = vec!["eu".into()];
    assert_eq!(plan(&europe), Plan::Scan);
    assert_eq!(plan(&request()), Plan::Scan);
}

#[test]
fn location_prefixes_name_contiguous_ranges() {
    let sorted: Vec<String> = ["", "eu", "eu-west", "eu-west/paris", "euro", "us"]
        .map(String::from)
        .to_vec();
    assert_eq!(prefixed_range(&sorted, ""), 0..6);
    assert_eq!(prefixed_range(&sorted, "eu"), 1..5);
    assert_eq!(prefixed_range(&sorted, "eu-"), 2..4);
    assert_eq!(prefixed_range(&sorted, "eu-west/paris"), 3..4);
    assert_eq!(prefixed_range(&sorted, "eu-west/parisx"), 4..4);
    assert_eq!(prefixed_range(&sorted, "zz"), 6..6);
    let mut ranges = vec![4..5, 1..3, 2..4, 7..8];
    coalesce(&mut ranges);
    assert_eq!(ranges, vec![1..5, 7..8]);
}

const LOCATIONS: [&str; 9] = [
    "",
    "eu",
    "eu-west",
    "eu-west/paris",
    "eu-west/lyon",
    "eu-central",
    "us",
    "us-east",
    "asia/tokyo",
];
const PREFIXES: [&str; 8] = [
    "",
    "eu",
    "eu-west",
    "eu-west/",
    "us",
    "asia",
    "zz",
    "eu-west/paris",
];

fn kinds(mask: u8) -> Vec<SpaceKind> {
    SpaceKind::ALL
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, kind)| kind)
        .collect()
}

fn resources(fields: [u64; 4], gpus: u32) -> Resources {
    Resources {
        cpu_millicores: fields[0],
        memory_bytes: fields[1],
        storage_bytes: fields[2],
        bandwidth_bytes_per_sec: fields[3],
        gpus,
    }
}

prop_compose! {
    fn any_candidate()(
        node_byte in 0u8..24,
        owner in 0u8..6,
        location in 0..LOCATIONS.len(),
        reputation in 0u32..4,
        mask in 0u8..4,
        free in [0u64..4, 0u64..4, 0u64..4, 0u64..4],
        gpus in 0u32..2,
        bid in 0u128..12,
    ) -> LeaseCandidate {
        LeaseCandidate {
            node: node(node_byte),
            owner: account(owner),
            location: LOCATIONS[location].into(),
            reputation,
            kinds: kinds(mask),
            free: resources(free, gpus),
            bid_per_period: Amount::from_base_units(bid),
        }
    }
}

prop_compose! {
    fn any_request()(
        wasm in any::<bool>(),
        wanted in [0u64..2, 0u64..2, 0u64..2, 0u64..2],
        gpus in 0u32..2,
        reserve in 0u128..14,
        prefixes in proptest::collection::vec(0..PREFIXES.len(), 0..3),
        farmers in proptest::collection::vec(0u8..8, 0..3),
        min_reputation in 0u32..5,
    ) -> LeaseRequest {
        let mut request = request();
        request.kind = if wasm { SpaceKind::WasmService } else { SpaceKind::Container };
        request.resources = resources(wanted, gpus);
        request.max_price_per_period = Amount::from_base_units(reserve);
        request.filters.locations = prefixes.into_iter().map(|i| PREFIXES[i].into()).collect();
        request.filters.farmers = farmers.into_iter().map(account).collect();
        request.filters.min_reputation = min_reputation;
        request
    }
}

proptest! {
    #[test]
    fn the_book_answers_as_rank_does(
        candidates in proptest::collection::vec(any_candidate(), 0..300),
        requests in proptest::collection::vec(any_request(), 1..4),
        k in 0usize..8,
    ) {
        let book = book(&candidates);
        for request in &requests {
            let expected = rank(request, &candidates, k);
            prop_assert_eq!(&book.best(request, k), &expected);
            for plan in [Plan::Scan, Plan::Locations, Plan::Owners] {
                prop_assert_eq!(&book.answer(request, k, Some(plan)), &expected, "{:?}", plan);
            }
        }
    }
}

#[test]
fn kinds_index_their_slots_in_declaration_order() {
    // The book finds a kind's index at `kind as usize`.
    for (slot, kind) in SpaceKind::ALL.into_iter().enumerate() {
        assert_eq!(kind as usize, slot, "{kind}");
    }
}
