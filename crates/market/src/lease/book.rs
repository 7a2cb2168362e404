//! The offer book: many nodes' standing lease offers, indexed so that one
//! request finds its k best among 100,000 in microseconds.
//!
//! ```text
//!  candidates ──► OfferBook::new ──► per space kind:
//!                   entries, sorted by (bid, most reputable, node)
//!                   blocks of BLOCK_LEN entries: each field's maximum (what could fit)
//!                   entry positions grouped by location (sorted text) and by owner
//!
//!  request ──► filters compiled: location prefixes → ranges of location ids,
//!              farmers → owner ids
//!          ──► end = the first entry bid above the reserve (binary search)
//!          ──► narrow location or farmer filter? ──yes──► merge its groups' positions
//!                     │ no                                  in rank order
//!                     ▼
//!              scan entries[..end], skipping blocks nothing in which fits
//!          ──► the first k acceptable entries, one per node
//! ```
//!
//! Entries are ranked once, when the book is built, so a request reads them
//! cheapest first and stops at the k-th acceptable one: a broad request
//! touches a handful. A request that admits few nodes has two shortcuts:
//! the block maxima skip 16 entries at a time whose free resources or
//! reputation cannot meet it, and a location or farmer filter naming a
//! small part of the book walks only that part. Answers equal
//! [`rank`](super::rank)'s (a property test checks every plan).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use peercloud_types::lease::{LeaseRequest, SpaceKind};
use peercloud_types::{AccountId, Amount, Resources};

use super::LeaseCandidate;

/// The most candidates one book holds: 160 times the 100,000 nodes the
/// matcher is sized for. It keeps every position and id in a `u32`, which
/// keeps an entry the scan reads at 56 bytes.
pub const OFFER_BOOK_CANDIDATES_MAX: usize = 1 << 24;

/// Entries per block of the block maxima. Small, so that a block often
/// holds no single node a demanding request fits even when every field is
/// met by one node or another: on the bench's 100,000 offers a request for
/// that rare combination (`needle_k5`) took 200 µs with blocks of 64 and
/// 28 µs with 16, for 8 µs instead of 2 µs when every block is skipped.
const BLOCK_LEN: usize = 16;

/// A location or farmer filter is walked group by group when the entries it
/// admits are at most 1 in this many of those under the reserve. Merging
/// groups costs a heap operation per entry where a scan costs a few
/// comparisons, and a scan of a broad filter stops early anyway.
const NARROW_FILTER_RATIO: usize = 8;

/// More candidates than a book holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{count} lease candidates, an offer book holds at most {max}")]
pub struct TooManyCandidates {
    /// Candidates given.
    pub count: usize,
    /// [`OFFER_BOOK_CANDIDATES_MAX`].
    pub max: usize,
}

/// Lease offers indexed for matching: build it once from the offers at
/// hand, then ask it for the best answers to each request.
#[derive(Debug, Clone)]
pub struct OfferBook {
    candidates: Vec<LeaseCandidate>,
    /// Distinct locations, sorted: a prefix names a contiguous range of them.
    locations: Vec<String>,
    /// Distinct owners, sorted.
    owners: Vec<AccountId>,
    /// One index per [`SpaceKind`], in the order of [`SpaceKind::ALL`].
    kinds: [KindIndex; SpaceKind::ALL.len()],
}

/// The offers of one kind of space.
#[derive(Debug, Clone, Default)]
struct KindIndex {
    /// Sorted by the candidates' ranking key: position is rank.
    entries: Vec<Entry>,
    /// `entries`' bids, apart: only the binary search for the reserve reads them.
    bids: Vec<Amount>,
    /// Field-wise maxima of each `BLOCK_LEN` entries.
    blocks: Vec<BlockMaxima>,
    /// Entry positions by location id.
    by_location: Groups,
    /// Entry positions by owner id.
    by_owner: Groups,
}

/// What a scan reads of one candidate, kept together and small.
#[derive(Debug, Clone, Copy)]
struct Entry {
    free: Resources,
    reputation: u32,
    /// Index into the book's `locations`.
    location: u32,
    /// Index into the book's `owners`.
    owner: u32,
    /// Index into the book's `candidates`.
    candidate: u32,
}

/// The most any entry of a block has: a request beyond it fits none of them.
#[derive(Debug, Clone, Copy, Default)]
struct BlockMaxima {
    free: Resources,
    reputation: u32,
}

/// Entry positions grouped by an id (counting sort), each group ascending.
#[derive(Debug, Clone, Default)]
struct Groups {
    /// Group `id` is `positions[starts[id]..starts[id + 1]]`.
    starts: Vec<u32>,
    positions: Vec<u32>,
}

/// A request's filters in the book's ids. `None` admits everyone.
#[derive(Debug)]
struct Admission {
    /// Disjoint, ascending ranges of admitted location ids.
    locations: Option<Vec<Range<u32>>>,
    /// Admitted owner ids, ascending.
    owners: Option<Vec<u32>>,
    reputation_min: u32,
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Scan the kind's entries in rank order.
    Scan,
    /// Merge the groups of the admitted locations.
    Locations,
    /// Merge the groups of the admitted owners.
    Owners,
}

impl OfferBook {
    /// Indexes `candidates`. Costs a sort of each kind's offers.
    pub fn new(candidates: Vec<LeaseCandidate>) -> Result<OfferBook, TooManyCandidates> {
        if candidates.len() > OFFER_BOOK_CANDIDATES_MAX {
            return Err(TooManyCandidates {
                count: candidates.len(),
                max: OFFER_BOOK_CANDIDATES_MAX,
            });
        }
        let locations: Vec<String> =
            distinct_sorted(candidates.iter().map(|c| c.location.as_str()))
                .into_iter()
                .map(str::to_owned)
                .collect();
        let owners = distinct_sorted(candidates.iter().map(|c| c.owner));
        let kinds = std::array::from_fn(|slot| {
            KindIndex::build(SpaceKind::ALL[slot], &candidates, &locations, &owners)
        });
        Ok(OfferBook {
            candidates,
            locations,
            owners,
            kinds,
        })
    }

    /// The offers the book holds, in the order given.
    pub fn candidates(&self) -> &[LeaseCandidate] {
        &self.candidates
    }

    /// How many offers the book holds.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether the book holds no offer.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The `k` best offers for `request`, best first: exactly what
    /// [`rank`](super::rank) answers over [`Self::candidates`].
    pub fn best(&self, request: &LeaseRequest, k: usize) -> Vec<&LeaseCandidate> {
        self.answer(request, k, None)
    }

    /// [`Self::best`], by `plan` when given, else by the cheaper plan.
    fn answer(&self, request: &LeaseRequest, k: usize, plan: Option<Plan>) -> Vec<&LeaseCandidate> {
        let mut chosen = Chosen::new(k);
        if k == 0 {
            return chosen.picked;
        }
        // `SpaceKind::ALL` lists the kinds in declaration order.
        let index = &self.kinds[request.kind as usize];
        let admission = self.admission(request);
        let end = index.end(request.max_price_per_period);
        let plan = plan.unwrap_or_else(|| index.plan(&admission, end));
        let wanted = &request.resources;
        let mut take = |entry: &Entry| {
            admission.accepts(entry, wanted)
                && chosen.offer(&self.candidates[entry.candidate as usize])
        };
        match (plan, &admission.locations, &admission.owners) {
            (Plan::Locations, Some(ranges), _) => {
                let runs = ranges
                    .iter()
                    .flat_map(|ids| index.by_location.runs(ids.clone()));
                index.merge(runs, end, take);
            }
            (Plan::Owners, _, Some(ids)) => {
                let runs = ids.iter().flat_map(|id| index.by_owner.runs(*id..id + 1));
                index.merge(runs, end, take);
            }
            _ => {
                let blocks = index.entries[..end].chunks(BLOCK_LEN).zip(&index.blocks);
                for (entries, maxima) in blocks {
                    if admission.may_hold(maxima, wanted) && entries.iter().any(&mut take) {
                        break;
                    }
                }
            }
        }
        chosen.picked
    }

    fn admission(&self, request: &LeaseRequest) -> Admission {
        let filters = &request.filters;
        let locations = (!filters.locations.is_empty()).then(|| {
            let mut ranges: Vec<Range<u32>> = filters
                .locations
                .iter()
                .map(|prefix| prefixed_range(&self.locations, prefix))
                .filter(|ids| !ids.is_empty())
                .collect();
            coalesce(&mut ranges);
            ranges
        });
        let owners = (!filters.farmers.is_empty()).then(|| {
            let mut ids: Vec<u32> = filters
                .farmers
                .iter()
                .filter_map(|farmer| self.owners.binary_search(farmer).ok())
                .map(as_u32)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        Admission {
            locations,
            owners,
            reputation_min: filters.min_reputation,
        }
    }
}

impl KindIndex {
    fn build(
        kind: SpaceKind,
        candidates: &[LeaseCandidate],
        locations: &[String],
        owners: &[AccountId],
    ) -> KindIndex {
        let mut ranked: Vec<(usize, &LeaseCandidate)> = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kinds.contains(&kind))
            .collect();
        // The index breaks exact ties as `rank`'s stable sort does.
        ranked.sort_unstable_by_key(|(at, c)| (c.ranking_key(), *at));
        let bids = ranked.iter().map(|(_, c)| c.bid_per_period).collect();
        let entries: Vec<Entry> = ranked
            .into_iter()
            .map(|(at, c)| Entry {
                free: c.free,
                reputation: c.reputation,
                location: id_of(locations, c.location.as_str()),
                owner: id_of(owners, &c.owner),
                candidate: as_u32(at),
            })
            .collect();
        let blocks = entries.chunks(BLOCK_LEN).map(BlockMaxima::of).collect();
        let by_location = Groups::build(entries.iter().map(|e| e.location), locations.len());
        let by_owner = Groups::build(entries.iter().map(|e| e.owner), owners.len());
        KindIndex {
            entries,
            bids,
            blocks,
            by_location,
            by_owner,
        }
    }

    /// The number of entries whose bid is at most `reserve`.
    fn end(&self, reserve: Amount) -> usize {
        self.bids.partition_point(|bid| *bid <= reserve)
    }

    /// The cheaper way to answer: a narrow filter's groups, or the scan.
    fn plan(&self, admission: &Admission, end: usize) -> Plan {
        let by_location = admission.locations.as_ref().map(|ranges| {
            let count: usize = ranges
                .iter()
                .map(|ids| self.by_location.count(ids.clone()))
                .sum();
            (count, Plan::Locations)
        });
        let by_owner = admission.owners.as_ref().map(|ids| {
            let count: usize = ids.iter().map(|id| self.by_owner.count(*id..id + 1)).sum();
            (count, Plan::Owners)
        });
        match by_location
            .into_iter()
            .chain(by_owner)
            .min_by_key(|(count, _)| *count)
        {
            Some((count, plan)) if count.saturating_mul(NARROW_FILTER_RATIO) <= end => plan,
            _ => Plan::Scan,
        }
    }

    /// Feeds `take` the entries at the positions in `runs` (each ascending),
    /// in ascending position (rank) order below `end`, until it says stop.
    fn merge<'a>(
        &self,
        runs: impl Iterator<Item = &'a [u32]>,
        end: usize,
        mut take: impl FnMut(&Entry) -> bool,
    ) {
        // (position, run, offset in the run), smallest position first.
        let mut heads: BinaryHeap<Reverse<(u32, usize, usize)>> = BinaryHeap::new();
        let runs: Vec<&[u32]> = runs.filter(|run| !run.is_empty()).collect();
        for (run, positions) in runs.iter().enumerate() {
            heads.push(Reverse((positions[0], run, 0)));
        }
        while let Some(Reverse((position, run, offset))) = heads.pop() {
            let position = position as usize;
            if position >= end || take(&self.entries[position]) {
                return;
            }
            if let Some(next) = runs[run].get(offset + 1) {
                heads.push(Reverse((*next, run, offset + 1)));
            }
        }
    }
}

impl BlockMaxima {
    fn of(entries: &[Entry]) -> BlockMaxima {
        entries
            .iter()
            .fold(BlockMaxima::default(), |max, e| BlockMaxima {
                free: Resources {
                    cpu_millicores: max.free.cpu_millicores.max(e.free.cpu_millicores),
                    memory_bytes: max.free.memory_bytes.max(e.free.memory_bytes),
                    storage_bytes: max.free.storage_bytes.max(e.free.storage_bytes),
                    bandwidth_bytes_per_sec: max
                        .free
                        .bandwidth_bytes_per_sec
                        .max(e.free.bandwidth_bytes_per_sec),
                    gpus: max.free.gpus.max(e.free.gpus),
                },
                reputation: max.reputation.max(e.reputation),
            })
    }
}

impl Groups {
    /// Groups positions `0..` by `ids` (one id per position, each `< id_count`).
    fn build(ids: impl Iterator<Item = u32> + Clone, id_count: usize) -> Groups {
        let mut starts = vec![0u32; id_count + 1];
        for id in ids.clone() {
            starts[id as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut positions = vec![0u32; starts[id_count] as usize];
        for (position, id) in ids.enumerate() {
            let slot = &mut next[id as usize];
            positions[*slot as usize] = as_u32(position);
            *slot += 1;
        }
        Groups { starts, positions }
    }

    fn span(&self, ids: Range<u32>) -> Range<usize> {
        self.starts[ids.start as usize] as usize..self.starts[ids.end as usize] as usize
    }

    /// How many positions the groups `ids` hold.
    fn count(&self, ids: Range<u32>) -> usize {
        self.span(ids).len()
    }

    /// The groups `ids`, one ascending run each.
    fn runs(&self, ids: Range<u32>) -> impl Iterator<Item = &[u32]> {
        ids.map(|id| &self.positions[self.span(id..id + 1)])
    }
}

impl Admission {
    /// Whether `entry` passes the request's resources and filters (its kind
    /// and bid are settled by where it sits in the book).
    fn accepts(&self, entry: &Entry, wanted: &Resources) -> bool {
        wanted.fits_within(&entry.free)
            && entry.reputation >= self.reputation_min
            && self
                .locations
                .as_ref()
                .is_none_or(|ranges| ranges.iter().any(|ids| ids.contains(&entry.location)))
            && self
                .owners
                .as_ref()
                .is_none_or(|ids| ids.binary_search(&entry.owner).is_ok())
    }

    /// Whether any entry of a block with these maxima could be accepted.
    fn may_hold(&self, maxima: &BlockMaxima, wanted: &Resources) -> bool {
        wanted.fits_within(&maxima.free) && maxima.reputation >= self.reputation_min
    }
}

/// The picks so far: at most `k`, one per node.
struct Chosen<'a> {
    k: usize,
    picked: Vec<&'a LeaseCandidate>,
}

impl<'a> Chosen<'a> {
    fn new(k: usize) -> Chosen<'a> {
        Chosen {
            k,
            picked: Vec::with_capacity(k.min(64)),
        }
    }

    /// Takes `candidate` unless its node is already picked; whether `k` are.
    fn offer(&mut self, candidate: &'a LeaseCandidate) -> bool {
        if self.picked.iter().all(|c| c.node != candidate.node) {
            self.picked.push(candidate);
        }
        self.picked.len() >= self.k
    }
}

fn distinct_sorted<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// The id of `item` in the sorted `items` it is known to be among.
fn id_of<T: Ord + ?Sized, U: std::borrow::Borrow<T>>(items: &[U], item: &T) -> u32 {
    let found = items.binary_search_by(|probe| probe.borrow().cmp(item));
    debug_assert!(found.is_ok(), "an id for an item not in the book");
    as_u32(found.unwrap_or_else(|at| at))
}

/// A position or id as stored: every count in a book is at most
/// [`OFFER_BOOK_CANDIDATES_MAX`], which fits.
fn as_u32(at: usize) -> u32 {
    debug_assert!(at <= OFFER_BOOK_CANDIDATES_MAX);
    at as u32
}

/// The ids of the `sorted` locations that start with `prefix`: strings with
/// a prefix sort together, from the first one not below it.
fn prefixed_range(sorted: &[String], prefix: &str) -> Range<u32> {
    let start = sorted.partition_point(|l| l.as_str() < prefix);
    let len = sorted[start..].partition_point(|l| l.starts_with(prefix));
    as_u32(start)..as_u32(start + len)
}

/// Sorts `ranges` and merges those that overlap or touch.
fn coalesce(ranges: &mut Vec<Range<u32>>) {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<Range<u32>> = Vec::with_capacity(ranges.len());
    for range in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests;
