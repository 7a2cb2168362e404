//! Peercloud's storage pipeline: an object becomes sealed, content-addressed
//! chunks and a manifest that names it; chunks live in a [`ChunkStore`] and are
//! placed on nodes by rendezvous hashing. This crate knows no network: the
//! network layer moves the sealed chunks it produces ([`seal_chunk`],
//! [`ChunkStore::put`] with verification) between nodes.
//!
//! ```text
//! object ─▶ chunks (1 MiB) ─▶ AES-256-GCM under a per-object key ─▶ CID = BLAKE3(sealed)
//!                                                                 ─▶ ChunkStore (FS or memory)
//!        ├▶ erasure-coded: every `data` sealed chunks ─▶ `parity` parity chunks (RS)
//!        └▶ Manifest { CIDs, sizes, parity CIDs, redundancy, key wrapped to owner, sealed info }
//!              ─▶ stored as a chunk; its CID names the object
//! ```
//!
//! Modules, one idea each:
//! - [`seal`]: the object key, chunk sealing (and why AES-256-GCM), key wrapping.
//! - [`manifest`]: the manifest format, its bounds and the sealed object description.
//! - [`store`]: the [`ChunkStore`] trait and its two rules (verified in, verified out).
//! - [`fs`] / [`mem`]: the file-system store (files + redb) and the in-memory one.
//! - [`object`]: the streaming put/get pipelines.
//! - [`erasure`]: Reed-Solomon parity for groups of chunks (any `data` of a group's chunks recover it).
//! - [`audit`]: proof of storage: a random challenge, a BLAKE3 verified slice, checked against the CID.
//! - [`placement`]: which nodes hold a chunk (rendezvous hashing, distinct owners).
//! - [`error`]: [`StoreError`], the one error callers map to statuses.
//! - `testing` (tests, or the `testing` feature): the contract suite every store passes.

pub mod audit;
pub mod erasure;
pub mod error;
pub mod fs;
pub mod manifest;
pub mod mem;
pub mod object;
pub mod placement;
pub mod seal;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use audit::{AuditError, AuditProof, Challenge};
pub use erasure::{ErasureError, recover_group};
pub use error::StoreError;
pub use fs::FsChunkStore;
pub use manifest::{
    Access, CHUNK_BYTES_DEFAULT, CHUNK_BYTES_MAX, CHUNK_BYTES_MIN, ChunkGroup, ERASURE_SHARDS_MAX,
    MANIFEST_VERSION, Manifest, ManifestError, OBJECT_CHUNKS_MAX, ObjectInfo, REPLICAS_DEFAULT,
    Redundancy,
};
pub use mem::MemChunkStore;
pub use object::{
    GetReceipt, PutOptions, PutReceipt, READ_PARALLELISM_REMOTE, delete_object, get_object,
    get_object_range, get_object_with_key, get_public_object, put_object, read_manifest,
};
pub use placement::{
    GROUP_PIECES_MAX, GroupPlacementError, PLACEMENT_WINDOW_FACTOR, PlacementNode, VNODES_MAX,
    candidates, group_candidate, may_hold, place, place_group, rank, vnodes_for, weighted_score,
    window,
};
pub use seal::{
    ChunkCipher, ObjectKey, SealError, TAG_BYTES, open_chunk, open_sealed_key, seal_chunk,
    seal_key_to,
};
pub use store::{
    ChunkInventory, ChunkMeta, ChunkPutters, ChunkStore, Released, StoreUsage, VerifiedChunk,
};
