//! One market round: the farmers' standing offers in one `OfferBook` per
//! market class, a request's sealed bids from `OfferBook::best`, and the
//! award by the ledger's own rule (`peercloud_types::lease_award`).
//!
//! ```text
//!  every farmer, per class: lease_bid(floor, utilisation) ──► LeaseCandidate ──► OfferBook
//!  request ──► book.best(request, k + slack) ──► re-quote the farmers that won since the build
//!          ──► the k best bids (the book's order) ──► lease_award: lowest wins, paid the first losing bid
//! ```
//!
//! The books are the requesters' snapshot of the standing offers: built
//! at the start of each hour (nodes republish their offers hourly), after
//! the hour's bills, ends, closes and price changes. A request solicits
//! the book's best offers in its order until k nodes answered: a node
//! whose state has not changed since the snapshot answers its standing
//! bid; one that won since answers its current bid (its utilisation, so
//! its surge, rose), or declines when the lease no longer fits it or its
//! bid now exceeds the reserve. The k answers are the sealed bids the
//! award (and the ledger's `OpenLease`) takes. A book keeps each
//! continent's [`BOOK_PER_CONTINENT`] best offers for its class: no
//! request reads deeper in an hour, and it keeps a build small. When the book's top has
//! declined past [`FETCH_MAX`] offers (the steady state's first hour, when
//! 55,000 requests meet one snapshot), every book is built again.

use std::cmp::Reverse;
use std::collections::HashMap;

use peercloud_market::{LeaseCandidate, OfferBook, lease_bid};
use peercloud_types::lease::{LeaseFilters, LeaseRequest};
use peercloud_types::{AccountId, Amount, NodeId, PublicKey, SpaceKind, lease_award};

use crate::farmers::{CONTINENT_OF, CONTINENTS, Farmer, FarmerStatus, LOCATIONS};
use crate::users::{MarketClass, Want};

/// Offers per continent a class's book keeps (the cheapest that fit): an
/// hour of the default market makes about 350 awards over 10 classes, so
/// a request never needs to read this deep, and a book of 768 offers
/// builds an order of magnitude faster than one of all 10,000 farmers.
pub const BOOK_PER_CONTINENT: usize = 256;
/// The most offers a request asks one book for before the books are built
/// again: `OfferBook::best` keeps one answer per node by comparing each
/// new one with those taken, so its cost grows with the square of the
/// count, and past about 64 a fresh snapshot is cheaper.
pub const FETCH_MAX: usize = 64;

/// An offer as the book ranks it (bid, most reputable, node id), and its farmer.
type Ranked = (Amount, Reverse<u32>, NodeId, u32);

/// A bid a request took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bid {
    /// The farmer.
    pub farmer: u32,
    /// Its node.
    pub node: NodeId,
    /// Its bid per period.
    pub price: Amount,
}

/// The outcome of one request.
#[derive(Debug, Clone)]
pub struct Award {
    /// The bids taken, in the order the nodes were solicited (the ledger's
    /// `OpenLease` carries them all).
    pub bids: Vec<Bid>,
    /// Index of the winner in `bids`.
    pub winner: usize,
    /// What it is paid per period: the first losing bid, or the reserve.
    pub price: Amount,
}

/// The offer books, one per class, and when each was built.
#[derive(Debug)]
pub struct Market {
    classes: Vec<MarketClass>,
    /// The highest reserve any user can set per class: offers above it
    /// are left out of the books.
    reserve_max: Vec<Amount>,
    /// One per class with the tick it was built at (`None` only if a book
    /// refused its offers, which the config's bound on farmers rules out).
    books: Vec<Option<(OfferBook, u64)>>,
    /// Which farmer each node is.
    farmer_of: HashMap<NodeId, u32>,
    /// Counts builds and farmers' changes: a farmer whose `changed_tick`
    /// is after a book's build is dirty in that book.
    tick: u64,
    /// Times every book was built again within an hour.
    pub refreshes: u64,
}

/// The stand-in owner account the books see for every farmer: requests
/// filter by location, never by farmer, so it plays no part.
fn owner_account() -> AccountId {
    AccountId(PublicKey([0; 32]))
}

impl Market {
    /// A market for `classes`, with no books yet.
    pub fn new(classes: Vec<MarketClass>, reserve_max: Vec<Amount>) -> Market {
        Market {
            books: (0..classes.len()).map(|_| None).collect(),
            classes,
            reserve_max,
            farmer_of: HashMap::new(),
            tick: 0,
            refreshes: 0,
        }
    }

    /// The market classes.
    pub fn classes(&self) -> &[MarketClass] {
        &self.classes
    }

    /// Records which farmer runs `node`.
    pub fn add_farmer(&mut self, node: NodeId, farmer: u32) {
        self.farmer_of.insert(node, farmer);
    }

    /// A new tick: a farmer stamps its `changed_tick` with it when its
    /// state changes.
    pub fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Builds every class's book.
    pub fn rebuild(&mut self, farmers: &[Farmer]) {
        for class in 0..self.classes.len() {
            self.build_class(class, farmers);
        }
    }

    /// Builds the book of `index` from the active farmers' standing
    /// offers: each one's bid for the class at its utilisation, where the
    /// class fits its free resources and the bid is at most the highest
    /// reserve; the [`BOOK_PER_CONTINENT`] best of each continent.
    fn build_class(&mut self, index: usize, farmers: &[Farmer]) {
        let built = self.touch();
        let class = &self.classes[index];
        let cap = self.reserve_max.get(index).copied().unwrap_or(Amount::ZERO);
        let mut by_continent: [Vec<Ranked>; CONTINENTS.len()] = Default::default();
        for (at, f) in farmers.iter().enumerate() {
            if f.status != FarmerStatus::Active || !class.resources.fits_within(&f.free()) {
                continue;
            }
            if let Some(bid) = lease_bid(&f.policy, f.floors[index], f.utilisation_bps())
                && bid <= cap
            {
                let continent = CONTINENT_OF[usize::from(f.location)];
                by_continent[continent].push((bid, Reverse(f.reputation), f.node, at as u32));
            }
        }
        let mut candidates = Vec::with_capacity(BOOK_PER_CONTINENT * CONTINENTS.len());
        for mut offers in by_continent {
            if offers.len() > BOOK_PER_CONTINENT {
                offers.select_nth_unstable(BOOK_PER_CONTINENT - 1);
                offers.truncate(BOOK_PER_CONTINENT);
            }
            candidates.extend(offers.into_iter().map(|(bid, _, _, at)| {
                let f = &farmers[at as usize];
                LeaseCandidate {
                    node: f.node,
                    owner: owner_account(),
                    location: LOCATIONS[usize::from(f.location)].to_owned(),
                    reputation: f.reputation,
                    kinds: vec![SpaceKind::Container],
                    free: f.free(),
                    bid_per_period: bid,
                }
            }));
        }
        // A book holds at most 2^24 offers; this one a few hundred.
        self.books[index] = OfferBook::new(candidates).ok().map(|book| (book, built));
    }

    /// The request the book is asked with.
    pub fn request(&self, want: &Want, salt: u64) -> LeaseRequest {
        let class = &self.classes[want.class];
        let locations = want
            .continent
            .map(|c| vec![CONTINENTS[usize::from(c)].to_owned()])
            .unwrap_or_default();
        LeaseRequest {
            user: owner_account(),
            salt,
            kind: SpaceKind::Container,
            resources: class.resources,
            period_ms: class.billing.period_ms(),
            periods: Some(want.periods),
            max_price_per_period: want.reserve,
            filters: LeaseFilters {
                locations,
                ..LeaseFilters::default()
            },
            offers_until_ms: 0,
            activate_within_ms: 0,
        }
    }

    /// The answers of the nodes `want` solicits (see the module doc) and
    /// their award; `None` when no node answers within the reserve.
    pub fn auction(
        &mut self,
        want: &Want,
        request: &LeaseRequest,
        farmers: &[Farmer],
        k: usize,
    ) -> Option<Award> {
        let mut fetch = k;
        let mut refreshed = false;
        let bids = loop {
            let (book, built) = self.books.get(want.class)?.as_ref()?;
            let got = book.best(request, fetch);
            let mut bids = Vec::with_capacity(k);
            for candidate in &got {
                if bids.len() == k {
                    break;
                }
                let Some(&farmer) = self.farmer_of.get(&candidate.node) else {
                    continue;
                };
                let f = &farmers[farmer as usize];
                let price = if f.changed_tick > *built {
                    if !request.resources.fits_within(&f.free()) {
                        continue;
                    }
                    match lease_bid(&f.policy, f.floors[want.class], f.utilisation_bps()) {
                        Some(bid) if bid <= want.reserve => bid,
                        _ => continue,
                    }
                } else {
                    candidate.bid_per_period
                };
                bids.push(Bid {
                    farmer,
                    node: f.node,
                    price,
                });
            }
            if bids.len() == k || got.len() < fetch {
                break bids;
            }
            if fetch * 2 <= FETCH_MAX {
                fetch *= 2;
            } else if !refreshed {
                self.rebuild(farmers);
                self.refreshes += 1;
                refreshed = true;
                fetch = k;
            } else {
                break bids;
            }
        };
        if bids.is_empty() {
            return None;
        }
        let pairs: Vec<(NodeId, Amount)> = bids.iter().map(|b| (b.node, b.price)).collect();
        let (winner, price) = lease_award(&pairs, want.reserve)?;
        Some(Award {
            bids,
            winner,
            price,
        })
    }
}
