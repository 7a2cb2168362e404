//! [`StoreError`]: everything that can go wrong storing or reading chunks and
//! objects, in one enum so the node daemon maps it to an HTTP/S3 status in one
//! place.
//!
//! The lower layers keep their own enums ([`crate::seal::SealError`],
//! [`crate::manifest::ManifestError`]) because the network layer calls them
//! directly; this enum wraps them with the CID they were met on. Every variant
//! that comes from the disk names the path, and a chunk whose bytes do not hash
//! to its CID is always [`StoreError::Corrupt`], never data.

use std::io;
use std::path::PathBuf;

use peercloud_types::{ContentId, DecodeError, NodeId, PublicKey};

use crate::manifest::ManifestError;
use crate::seal::SealError;

/// A chunk store or object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No chunk with this CID is stored here.
    #[error("chunk {cid} is not in this store")]
    NotFound {
        /// The CID asked for.
        cid: ContentId,
    },
    /// The stored bytes do not hash to their CID: bit rot, a bad disk or
    /// tampering. The bytes are never returned. A network store says this
    /// when no holder had good bytes and at least one had bad ones.
    #[error("chunk {cid} is corrupt{}", corrupt_detail(actual, path, reported))]
    Corrupt {
        /// The CID asked for.
        cid: ContentId,
        /// What the bytes hash to, when they were seen here (a holder that
        /// found its own copy bad reports only that it is bad).
        actual: Option<ContentId>,
        /// The file that holds the bytes, when the store is on disk.
        path: Option<PathBuf>,
        /// What the holders said, when the store is the network.
        reported: Option<String>,
    },
    /// A put for a node would take the store past the bytes it offers.
    /// Nothing was written.
    #[error(
        "chunk {cid} ({chunk_bytes} bytes) does not fit: {used_bytes} of {quota_bytes} bytes are in use"
    )]
    QuotaExceeded {
        /// The chunk refused.
        cid: ContentId,
        /// Its size.
        chunk_bytes: u64,
        /// Bytes stored already.
        used_bytes: u64,
        /// The most this store keeps.
        quota_bytes: u64,
    },
    /// A node asked to delete a chunk it never put here: only a chunk's
    /// putters may release it.
    #[error("node {node} did not put chunk {cid} here, so it may not delete it")]
    NotPutter {
        /// The chunk.
        cid: ContentId,
        /// The node that asked.
        node: NodeId,
    },
    /// A put kept losing its chunk to deletes of the same chunk running at
    /// the same time (each attempt found it removed before it committed).
    #[error(
        "chunk {cid} was deleted while being put, {attempts} times in a row; nothing is recorded"
    )]
    Contended {
        /// The chunk.
        cid: ContentId,
        /// Attempts made.
        attempts: usize,
    },
    /// The store is remote (other nodes, a node's API) and the operation failed there.
    #[error("remote store: {reason}")]
    Remote {
        /// What the remote side or the transport said.
        reason: String,
    },
    /// This kind of store does not do that.
    #[error("{what} is not supported")]
    Unsupported {
        /// The operation and the store.
        what: String,
    },
    /// A put was refused: the bytes do not hash to the CID they were offered under.
    #[error("refused to store bytes under {cid}: they hash to {actual}")]
    CidMismatch {
        /// The CID the caller gave.
        cid: ContentId,
        /// What the bytes hash to.
        actual: ContentId,
    },
    /// The disk is full. Nothing partial was left behind.
    #[error("disk full while {action} {}", path.display())]
    DiskFull {
        /// What the store was doing ("writing", "creating directory", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Any other I/O failure on the store's files. Nothing partial was left behind.
    #[error("I/O error while {action} {}: {source}", path.display())]
    Io {
        /// What the store was doing.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The metadata database (redb) failed.
    #[error("chunk metadata database {}: {source}", path.display())]
    Metadata {
        /// The database file.
        path: PathBuf,
        /// redb's error.
        source: Box<redb::Error>,
    },
    /// A metadata record does not decode.
    #[error("metadata of chunk {cid} does not decode: {source}")]
    MetadataCorrupt {
        /// The chunk whose record is bad.
        cid: ContentId,
        /// The decoder's error.
        source: DecodeError,
    },
    /// The CID names a chunk that is not a valid manifest.
    #[error("{cid} does not name an object: {source}")]
    NotAManifest {
        /// The CID given as an object's name.
        cid: ContentId,
        /// Why the chunk is not a manifest.
        source: ManifestError,
    },
    /// The secret given is not the one the object's key was wrapped to.
    #[error("object {cid} is not owned by this key: its object key is wrapped to another owner")]
    NotOwner {
        /// The object.
        cid: ContentId,
    },
    /// The object is sealed to its owner, and was asked for as a public one.
    #[error("object {cid} is private: it is sealed to its owner, not public")]
    NotPublic {
        /// The object.
        cid: ContentId,
    },
    /// An object key was given that does not open this object.
    #[error("the object key given does not open object {cid}")]
    KeyMismatch {
        /// The object.
        cid: ContentId,
    },
    /// The owner's public key is not a valid curve point, so nothing can be
    /// wrapped to it.
    #[error("owner key {owner:?} is not a valid ed25519 point; cannot wrap an object key to it")]
    InvalidOwnerKey {
        /// The key given.
        owner: PublicKey,
    },
    /// A sealing or opening step failed on one chunk of an object.
    #[error("object {object}, chunk {index} ({chunk}): {source}")]
    Seal {
        /// The object.
        object: ContentId,
        /// The chunk's position in the object.
        index: u64,
        /// The chunk's CID.
        chunk: ContentId,
        /// What failed.
        source: SealError,
    },
    /// Sealing a chunk, the object's key or its description failed while
    /// storing an object.
    #[error("sealing failed while storing an object: {source}")]
    Sealing {
        /// What failed.
        source: SealError,
    },
    /// The object's chunks hold fewer bytes than its manifest promises.
    #[error(
        "object {cid} is truncated: manifest promises {expected_bytes} bytes, chunks hold {found_bytes}"
    )]
    Truncated {
        /// The object.
        cid: ContentId,
        /// The size in the manifest.
        expected_bytes: u64,
        /// The bytes the chunks actually hold (up to the first short chunk).
        found_bytes: u64,
    },
    /// A chunk opened to a different size than the manifest says.
    #[error(
        "object {cid}, chunk {index} opened to {found_bytes} bytes, manifest says {expected_bytes}"
    )]
    ChunkSize {
        /// The object.
        cid: ContentId,
        /// The chunk's position.
        index: u64,
        /// Size in the manifest.
        expected_bytes: u32,
        /// Size found.
        found_bytes: u64,
    },
    /// Every chunk opened but the whole object's BLAKE3 differs from the manifest's.
    #[error("object {cid} reassembled to content whose BLAKE3 differs from its manifest")]
    PlaintextMismatch {
        /// The object.
        cid: ContentId,
    },
    /// Fewer than `needed` pieces of an erasure group could be read, so the
    /// group's data cannot be recovered.
    #[error(
        "object {object}, erasure group {group}: {found} of its {pieces} pieces could be read, {needed} are needed ({reasons})"
    )]
    GroupUnrecoverable {
        /// The object.
        object: ContentId,
        /// The group's position in the object.
        group: usize,
        /// Pieces (data or parity chunks) read and verified.
        found: usize,
        /// Pieces any recovery needs (the group's data chunk count).
        needed: usize,
        /// The group's pieces, data and parity.
        pieces: usize,
        /// Why each other piece was not used.
        reasons: String,
    },
    /// Reed-Solomon coding of an erasure group failed.
    #[error("erasure group {group}: {source}")]
    Erasure {
        /// The group's position in the object.
        group: usize,
        /// What the code said.
        source: crate::erasure::ErasureError,
    },
    /// The object is larger than one manifest may describe.
    #[error("object exceeds {chunks_max} chunks of {chunk_bytes} bytes")]
    ObjectTooLarge {
        /// The chunk size in use.
        chunk_bytes: u32,
        /// The bound on chunks per object.
        chunks_max: usize,
    },
    /// The put options are out of bounds or ask for what is not built.
    #[error("invalid put options: {source}")]
    Options {
        /// What is wrong with them.
        source: ManifestError,
    },
    /// The caller's reader failed.
    #[error("reading the object's content failed: {source}")]
    Read {
        /// The reader's error.
        source: io::Error,
    },
    /// The caller's writer failed.
    #[error("writing the object's content failed: {source}")]
    Write {
        /// The writer's error.
        source: io::Error,
    },
    /// A helper thread of the pipeline panicked (a bug).
    #[error("the {thread} thread of the storage pipeline panicked")]
    ThreadPanicked {
        /// Which thread.
        thread: &'static str,
    },
}

fn corrupt_detail(
    actual: &Option<ContentId>,
    path: &Option<PathBuf>,
    reported: &Option<String>,
) -> String {
    let mut detail = String::new();
    if let Some(actual) = actual {
        detail.push_str(&format!(": its bytes hash to {actual}"));
    }
    if let Some(path) = path {
        detail.push_str(&format!(" (file {})", path.display()));
    }
    if let Some(reported) = reported {
        detail.push_str(&format!(" ({reported})"));
    }
    detail
}

impl StoreError {
    /// Classifies an I/O error met on the store's own files: a full disk gets
    /// its own variant so operators see it at once.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::StorageFull {
            StoreError::DiskFull {
                action,
                path,
                source,
            }
        } else {
            StoreError::Io {
                action,
                path,
                source,
            }
        }
    }

    /// Wraps a redb error met on the database at `path`.
    pub fn metadata(path: impl Into<PathBuf>, source: impl Into<redb::Error>) -> Self {
        StoreError::Metadata {
            path: path.into(),
            source: Box::new(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_is_its_own_variant_and_names_the_path() {
        let err = StoreError::io(
            "writing",
            "/data/ab/cd/x.tmp",
            io::ErrorKind::StorageFull.into(),
        );
        assert!(matches!(err, StoreError::DiskFull { .. }));
        assert!(err.to_string().contains("/data/ab/cd/x.tmp"), "{err}");
        let err = StoreError::io("writing", "/data/y", io::ErrorKind::PermissionDenied.into());
        assert!(matches!(err, StoreError::Io { .. }));
        assert!(err.to_string().contains("/data/y"), "{err}");
    }
}
