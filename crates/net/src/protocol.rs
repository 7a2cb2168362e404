//! Versioned protocol names and the bound on every message.

/// A request-response protocol between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// A provider's signed offer for a capacity request.
    Offer,
    /// Putting and getting sealed chunks.
    Chunk,
    /// Handing an awarded job (and its sealed key) to a provider.
    JobDispatch,
    /// A provider's result for a job.
    JobResult,
    /// Fetching blocks a node is missing.
    BlockSync,
    /// Reading and writing the replicas of buckets' object indexes.
    Index,
    /// A leased space: its user's signed commands and its probes.
    Space,
    /// Opening a session of the bulk channel (answered by the network
    /// layer itself, never handed to the node).
    BulkOpen,
}

impl Protocol {
    /// Every protocol, for registering them all.
    pub const ALL: [Protocol; 8] = [
        Protocol::Offer,
        Protocol::Chunk,
        Protocol::JobDispatch,
        Protocol::JobResult,
        Protocol::BlockSync,
        Protocol::Index,
        Protocol::BulkOpen,
        Protocol::Space,
    ];

    /// The protocol name on the wire; the trailing number is its version.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Offer => "/peercloud/offer/1",
            Protocol::Chunk => "/peercloud/chunk/1",
            Protocol::JobDispatch => "/peercloud/job-dispatch/1",
            Protocol::JobResult => "/peercloud/job-result/1",
            Protocol::BlockSync => "/peercloud/block-sync/1",
            Protocol::Index => "/peercloud/index/1",
            Protocol::BulkOpen => "/peercloud/bulk-open/1",
            Protocol::Space => "/peercloud/space/1",
        }
    }

    /// Whether the node asks and answers on this protocol
    /// ([`Protocol::BulkOpen`] is the network layer's own).
    pub const fn node(self) -> bool {
        !matches!(self, Protocol::BulkOpen)
    }

    /// Whether requests on this protocol go over the bulk channel when the
    /// peer offers one: chunks, sealed or public and checked against their
    /// CIDs, which need no second encryption (see the `bulk` module).
    pub const fn bulk(self) -> bool {
        matches!(self, Protocol::Chunk)
    }

    /// Largest request accepted, in bytes: a chunk put carries one sealed
    /// chunk, a batch put up to [`CHUNK_BATCH_BYTES_MAX`] of them; a block-sync request is a height and a count; the rest are
    /// small signed records. A request is never allowed the size of a large
    /// response it asks for.
    pub const fn request_bytes_max(self) -> usize {
        match self {
            Protocol::Chunk => CHUNK_BATCH_MESSAGE_BYTES_MAX,
            Protocol::BlockSync => SYNC_REQUEST_BYTES_MAX,
            Protocol::Index => INDEX_MESSAGE_BYTES_MAX,
            Protocol::Space => SPACE_MESSAGE_BYTES_MAX,
            Protocol::Offer | Protocol::JobDispatch | Protocol::JobResult | Protocol::BulkOpen => {
                SMALL_MESSAGE_BYTES_MAX
            }
        }
    }

    /// Largest response accepted, in bytes: a chunk get answers one sealed
    /// chunk; block sync answers a batch of blocks; the rest answer an
    /// acknowledgement or a short refusal. Never below the request bound.
    pub const fn response_bytes_max(self) -> usize {
        match self {
            // A get answers one chunk, but no bound is below the request's.
            Protocol::Chunk => CHUNK_BATCH_MESSAGE_BYTES_MAX,
            Protocol::BlockSync => BLOCK_SYNC_MESSAGE_BYTES_MAX,
            Protocol::Index => INDEX_MESSAGE_BYTES_MAX,
            Protocol::Space => SPACE_MESSAGE_BYTES_MAX,
            Protocol::Offer | Protocol::JobDispatch | Protocol::JobResult | Protocol::BulkOpen => {
                SMALL_MESSAGE_BYTES_MAX
            }
        }
    }

    /// The larger of the two bounds: no message on this protocol is bigger.
    pub const fn message_bytes_max(self) -> usize {
        let (request, response) = (self.request_bytes_max(), self.response_bytes_max());
        if request > response {
            request
        } else {
            response
        }
    }
}

/// A command for a leased space with up to 1 MiB of input, or its output:
/// up to 1 MiB of each stream.
pub const SPACE_MESSAGE_BYTES_MAX: usize = (2 << 20) + 64 * 1024;
/// One sealed chunk of the default 1 MiB size, its tag, CID and framing, with room to spare.
pub const CHUNK_MESSAGE_BYTES_MAX: usize = 1_100 * 1024;
/// Chunk bytes one batch put carries at most: eight chunks of the default
/// 1 MiB, so a put's 8 MiB batch reaches a holder in one request.
pub const CHUNK_BATCH_BYTES_MAX: usize = 8 << 20;
/// A batch put's request: its chunks and, per chunk, a CID and a length.
pub const CHUNK_BATCH_MESSAGE_BYTES_MAX: usize = CHUNK_BATCH_BYTES_MAX + 64 * 1024;
/// A batch of blocks during sync: bounded so one answer cannot exhaust memory.
pub const BLOCK_SYNC_MESSAGE_BYTES_MAX: usize = 8 << 20;
/// A block-sync request: a start height and a count, a few dozen bytes encoded.
pub const SYNC_REQUEST_BYTES_MAX: usize = 1024;
/// Index requests and answers: a batch of signed entries or a page of a
/// listing (1,000 entries of keys up to 1 KiB, with their signatures).
pub const INDEX_MESSAGE_BYTES_MAX: usize = 2 << 20;
/// Offers, dispatches and results are signed records of a few hundred bytes.
pub const SMALL_MESSAGE_BYTES_MAX: usize = 64 * 1024;

/// A gossipsub topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GossipTopic {
    /// Users' capacity requests, answered by offers.
    CapacityRequests,
    /// Signed transactions on their way to the validator.
    Transactions,
    /// Blocks from the validator.
    Blocks,
}

impl GossipTopic {
    /// Every topic, for subscribing to them all.
    pub const ALL: [GossipTopic; 3] = [
        GossipTopic::CapacityRequests,
        GossipTopic::Transactions,
        GossipTopic::Blocks,
    ];

    /// The topic with this wire name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<GossipTopic> {
        GossipTopic::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The topic name; versioned like the protocols.
    pub const fn name(self) -> &'static str {
        match self {
            GossipTopic::CapacityRequests => "peercloud/capacity-requests/1",
            GossipTopic::Transactions => "peercloud/transactions/1",
            GossipTopic::Blocks => "peercloud/blocks/1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_versioned_and_bounded() {
        let mut names: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Protocol::ALL.len());
        for p in Protocol::ALL {
            assert!(
                p.name().starts_with("/peercloud/") && p.name().ends_with("/1"),
                "{}",
                p.name()
            );
            assert!(p.response_bytes_max() >= SMALL_MESSAGE_BYTES_MAX);
            assert!(p.response_bytes_max() >= p.request_bytes_max());
            assert_eq!(p.message_bytes_max(), p.response_bytes_max());
        }
        assert!(
            Protocol::Chunk.request_bytes_max() > 1 << 20,
            "a whole chunk must fit a put"
        );
        assert!(
            Protocol::BlockSync.request_bytes_max() <= 1024,
            "a sync request is small however large its answer"
        );
        for t in GossipTopic::ALL {
            assert_eq!(GossipTopic::from_name(t.name()), Some(t));
        }
        assert_eq!(GossipTopic::from_name("peercloud/unknown/1"), None);
    }
}
