//! What nodes say to each other: one versioned message type carried as the
//! opaque payload of every gossip topic and request-response protocol.
//!
//! The net crate moves bytes and enforces size bounds; this module gives the
//! bytes meaning. Every payload is `encode(&Message)` — `[Kind::Message][2]
//! [postcard]` — and a decode failure is a peer's error, answered with
//! [`Message::Error`] and never trusted further.

use peercloud_api::ErrorCode;
use peercloud_ledger::{
    BandwidthReceipt, Block, BucketId, BucketUsage, ClusterId, InlineObject, ObjectEntry,
    RepairReceipt, Tx,
};
use peercloud_types::encoding::{DecodeError, Kind, Versioned, decode, encode};
use peercloud_types::{
    ContentId, Decline, Hash32, JobId, JobSpec, LeaseId, LeaseOffer, LeaseProbe, LeaseRequest,
    NodeId, Offer, Signed, SpaceCommand,
};
use serde::{Deserialize, Serialize};

/// Most blocks one sync answer carries; the message size bound caps it too.
pub const SYNC_BLOCKS_MAX: u32 = 256;
/// Most keys one index get asks a replica for.
pub const INDEX_GET_KEYS_MAX: usize = 256;

/// A job's capacity request, gossiped to every provider by the requesting node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityRequest {
    /// The posted job.
    pub job: JobId,
    /// The job spec (its digest is on the ledger).
    pub spec: JobSpec,
    /// The node collecting offers: providers send theirs to it.
    pub requester: NodeId,
    /// Offers arriving after this time (ms since the Unix epoch) are not read.
    pub offers_until_ms: u64,
}

impl Versioned for CapacityRequest {
    const KIND: u8 = Kind::CapacityRequest as u8;
    /// 2: the spec in its canonical encoding (1 carried JSON).
    const VERSION: u8 = 2;
}

/// An object a job reads, with its key sealed to the node receiving the dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedObject {
    /// Path under `/input`: an input's name, or `name/sub/file` for a file
    /// of a directory input (`job.wasm` for the module). Checked with
    /// `peercloud_types::job::check_staged_paths` before anything is written.
    pub name: String,
    /// Manifest CID.
    pub cid: ContentId,
    /// The object key, sealed (X25519) to the receiving node.
    pub sealed_key: Vec<u8>,
}

/// An awarded job handed to one of its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// The job (its award must be on the ledger).
    pub job: JobId,
    /// The spec; its digest must equal the posted one.
    pub spec: JobSpec,
    /// The module.
    pub module: SealedObject,
    /// The inputs.
    pub inputs: Vec<SealedObject>,
}

/// One stored output of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutput {
    /// Path under `/output`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the plaintext.
    pub blake3: Hash32,
    /// Manifest CID of the encrypted object.
    pub cid: ContentId,
}

/// A provider's answer to a dispatch: what it ran and where the outputs are,
/// or how the module failed when it failed in a way every node reproduces
/// (`failure`: then the digest is the failed run's, there are no outputs
/// and the exit code is 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The job.
    pub job: JobId,
    /// Exit code of the module (0 when `failure` is set).
    pub exit_code: i32,
    /// The digest submitted to the ledger (a failed run's digest when
    /// `failure` is set).
    pub digest: Hash32,
    /// Fuel burned.
    pub fuel: u64,
    /// The outputs, encrypted to the poster.
    pub outputs: Vec<StoredOutput>,
    /// Standard error, capped.
    pub stderr: Vec<u8>,
    /// Time fetching inputs, ms.
    pub staging_ms: u64,
    /// Time in the sandbox, ms.
    pub running_ms: u64,
    /// Time storing outputs and submitting the result, ms.
    pub storing_ms: u64,
    /// How the module failed (the error, with the end of its stderr), when
    /// the run failed in a way every node reproduces: a paid result, not an
    /// outcome. `stderr` then holds the end of the module's stderr.
    pub failure: Option<String>,
}

/// Every message between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Gossip: a transaction for the validator.
    Tx(Signed<Tx>),
    /// Gossip: a committed block from the validator.
    Block(Block),
    /// Gossip: a job looking for nodes.
    CapacityRequest(CapacityRequest),
    /// Offer protocol: a provider's signed offer.
    Offer(Signed<Offer>),
    /// Offer protocol: a provider that will not take the job, and why,
    /// signed by the provider's node key.
    Decline(Signed<Decline>),
    /// Chunk protocol: store this sealed chunk.
    ChunkPut {
        /// Its CID (checked against the bytes).
        cid: ContentId,
        /// The cluster it is placed in (a bucket's chunk: the holder must
        /// be one of its candidates among that cluster's active members),
        /// or `None` for network-wide placement over staked nodes.
        cluster: Option<ClusterId>,
        /// The sealed chunk (raw bytes on the wire: postcard writes them as it
        /// writes any byte sequence, length then bytes, only without a per-byte pass).
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Chunk protocol: send this chunk.
    ChunkGet {
        /// Its CID.
        cid: ContentId,
    },
    /// Chunk protocol: the chunk asked for, or `None` when it is not here.
    Chunk(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// Job dispatch protocol: run this awarded job.
    Dispatch(Dispatch),
    /// Job dispatch protocol: the run's result.
    Result(RunResult),
    /// Block sync: blocks from `from` on, at most `max`.
    SyncRequest {
        /// First height wanted.
        from: u64,
        /// Most blocks wanted.
        max: u32,
    },
    /// Block sync: consecutive blocks from the height asked (empty when none).
    Blocks(Vec<Block>),
    /// Any protocol: done.
    Ack,
    /// Any protocol: the request was refused.
    Error {
        /// What kind of refusal (the API's codes).
        code: ErrorCode,
        /// What was wrong.
        message: String,
    },
    /// Chunk protocol: the sender no longer needs a chunk it put here (the
    /// put it belonged to failed): the holder forgets the sender as one of
    /// the chunk's putters and deletes the chunk once no putter is left.
    /// Answered `Ack`, or refused `not_found` / `not_putter`.
    ChunkDelete {
        /// The chunk.
        cid: ContentId,
    },
    /// Chunk protocol: prove that you hold chunk `cid` (an audit). Answered
    /// with [`Message::AuditProof`] of the challenged 1 KiB leaves, or refused
    /// `not_found` / `chunk_corrupt` when the chunk is missing or bad here.
    AuditRequest {
        /// The chunk.
        cid: ContentId,
        /// The leaves to prove (the holder checks them against its chunk's length).
        challenge: peercloud_store::audit::Challenge,
    },
    /// Chunk protocol: a holder's proof of the leaves an audit challenged,
    /// which the auditor verifies against the CID.
    AuditProof(peercloud_store::audit::AuditProof),
    /// Index protocol: keep these entries (all of one bucket, signed by its
    /// owner) and the owner's usages (one per write the coordinator
    /// coalesced into this put). Answered `Ack` once durable, or refused
    /// (`not_owner`, `bucket_read_only`, `not_placed`, …).
    IndexPut {
        /// The entries, merged last-writer-wins per key.
        entries: Vec<Signed<ObjectEntry>>,
        /// The owner's running usages of the bucket (kept by sequence).
        usages: Vec<Signed<BucketUsage>>,
        /// The owner's bandwidth receipts (cumulative per node and period).
        receipts: Vec<Signed<BandwidthReceipt>>,
        /// Receivers' repair receipts (cumulative per repairer, receiver
        /// and period).
        repairs: Vec<Signed<RepairReceipt>>,
        /// The chunks of entries' objects the index keeps (matched to an
        /// entry by manifest CID).
        inline: Vec<InlineObject>,
    },
    /// Index protocol: the entries of some keys (the gets a coordinator
    /// coalesced; answered [`Message::IndexEntries`]).
    IndexGet {
        /// The bucket.
        bucket: BucketId,
        /// The keys (at most [`INDEX_GET_KEYS_MAX`]).
        keys: Vec<String>,
    },
    /// Index protocol: a page of a bucket's entries whose keys start with
    /// `prefix`, after `after`, tombstones included (answered
    /// [`Message::IndexEntries`]).
    IndexList {
        /// The bucket.
        bucket: BucketId,
        /// The key prefix.
        prefix: String,
        /// Start after this key.
        after: Option<String>,
        /// Most entries wanted (at most the index's page bound).
        limit: u32,
        /// Answer the chunks of the page's inline objects too (a pull of
        /// the whole index does; a listing does not).
        inline: bool,
    },
    /// Index protocol: the evidence a bill of `period` carries (answered
    /// [`Message::IndexEvidence`]).
    IndexEvidenceRequest {
        /// The bucket.
        bucket: BucketId,
        /// The billing period.
        period: u64,
        /// The usage wanted is the last one signed at or before this time
        /// (the period's end).
        until_ms: u64,
    },
    /// Index protocol: one replica's evidence for a bill.
    IndexEvidence {
        /// The last usage signed at or before the time asked.
        usage: Option<Signed<BucketUsage>>,
        /// The period's receipts, one per serving node.
        receipts: Vec<Signed<BandwidthReceipt>>,
        /// The period's repair receipts, one per (repairer, receiver).
        repairs: Vec<Signed<RepairReceipt>>,
    },
    /// Index protocol: what one replica holds for a get or a list, and the
    /// bucket's latest usage there.
    IndexEntries {
        /// The entries, in key order.
        entries: Vec<Signed<ObjectEntry>>,
        /// The bucket's latest usage.
        usage: Option<Signed<BucketUsage>>,
        /// The chunks of the entries' inline objects this replica holds
        /// (for a get, and a list that asked for them).
        inline: Vec<InlineObject>,
    },
    /// Chunk protocol: keep this piece, rebuilt by the sender while
    /// repairing `bucket`, and acknowledge its bytes: answered
    /// [`Message::RepairAck`] (a piece already held here adds no bytes),
    /// or refused as a `ChunkPut` would be.
    RepairPut {
        /// Its CID (checked against the bytes).
        cid: ContentId,
        /// The cluster it is placed in.
        cluster: ClusterId,
        /// The bucket repaired (a bucket of `cluster`).
        bucket: BucketId,
        /// The billing period the repair falls in.
        period: u64,
        /// This receiver's last receipt to the sender for the bucket and
        /// period, which the new one adds to (none: the first).
        previous: Option<Signed<RepairReceipt>>,
        /// The piece.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Chunk protocol: the receiver's cumulative receipt for a repair put.
    RepairAck(Signed<RepairReceipt>),
    /// Gossip (capacity requests): a user wants a lease; bids go, sealed,
    /// to `requester` only.
    LeaseRequest {
        /// The request, whole (bids name its digest).
        request: LeaseRequest,
        /// The node collecting the bids.
        requester: NodeId,
    },
    /// Offer protocol: a node's sealed bid for a lease request.
    LeaseOffer(Signed<LeaseOffer>),
    /// Space protocol: the lease's user's signed command for its space.
    SpaceCommand(Signed<SpaceCommand>),
    /// Space protocol: what a command did.
    SpaceOutput {
        /// Its exit code.
        exit_code: i64,
        /// Its standard output.
        #[serde(with = "serde_bytes")]
        stdout: Vec<u8>,
        /// Its standard error.
        #[serde(with = "serde_bytes")]
        stderr: Vec<u8>,
    },
    /// Space protocol: a prober asks the space of `lease` to echo `nonce`
    /// (through the path its user's commands take) in `period`.
    SpaceProbe {
        /// The lease.
        lease: LeaseId,
        /// The billing period probed.
        period: u64,
        /// What the space must echo.
        nonce: u64,
    },
    /// Space protocol: a prober's signed observation, handed to the
    /// leasing node that bills with it.
    LeaseProbeReport(Signed<LeaseProbe>),
}

impl Versioned for Message {
    const KIND: u8 = Kind::Message as u8;
    /// 2: specs travel in their canonical encoding (1 carried JSON), error
    /// codes are the API's `ErrorCode`. 3: declines are signed. 4: a chunk
    /// put names the cluster it is placed in. 5: index writes and evidence
    /// carry repair receipts. (Variants appended since, such as the repair
    /// put's, leave the others' encoding as it was.) 6: index puts, lists
    /// and answers carry inline objects. 7: an index put carries a usage
    /// per write coalesced into it, an index get several keys.
    const VERSION: u8 = 7;
}

impl Message {
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a peer's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Message, DecodeError> {
        decode(bytes)
    }

    /// An error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Message {
        Message::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;

    #[test]
    fn chunk_bytes_encode_as_a_plain_byte_sequence() {
        // serde_bytes must not change the wire form: length, then the bytes.
        #[derive(Serialize)]
        enum Plain {
            #[allow(dead_code)]
            Tx,
            #[allow(dead_code)]
            Block,
            #[allow(dead_code)]
            CapacityRequest,
            #[allow(dead_code)]
            Offer,
            #[allow(dead_code)]
            Decline,
            ChunkPut {
                cid: ContentId,
                cluster: Option<ClusterId>,
                bytes: Vec<u8>,
            },
        }
        let cid = ContentId::of(b"abc");
        let cluster = Some(ClusterId(Hash32::of(b"cluster")));
        let fast = Message::ChunkPut {
            cid,
            cluster,
            bytes: b"abc".to_vec(),
        };
        let plain = Plain::ChunkPut {
            cid,
            cluster,
            bytes: b"abc".to_vec(),
        };
        let mut expected = vec![Message::KIND, Message::VERSION];
        peercloud_types::encoding::encode_body_into(&plain, &mut expected);
        assert_eq!(fast.to_bytes(), expected);
    }

    #[test]
    fn messages_round_trip_and_refuse_other_kinds() {
        let node = Keypair::from_seed(&[3; 32]);
        let offer = Offer {
            job: JobId(Hash32::of(b"job")),
            node: node.node_id(),
            price: peercloud_types::Amount::from_tokens(1),
            valid_until_ms: 5,
        };
        for message in [
            Message::Offer(Signed::new(offer.clone(), &node)),
            Message::ChunkGet {
                cid: ContentId::of(b"chunk"),
            },
            Message::SyncRequest { from: 3, max: 10 },
            Message::error(ErrorCode::BadRequest, "no"),
        ] {
            let bytes = message.to_bytes();
            assert_eq!(Message::from_bytes(&bytes).unwrap(), message);
        }
        let other = encode(&offer);
        assert!(matches!(
            Message::from_bytes(&other),
            Err(DecodeError::WrongKind { .. })
        ));
        assert!(Message::from_bytes(&[]).is_err());
    }
}
