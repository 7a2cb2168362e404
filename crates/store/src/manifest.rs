//! The manifest: an object's recipe, stored as a chunk of its own whose CID
//! names the object.
//!
//! A manifest is public to the nodes that hold it, so it carries only what
//! they need to store, account for and repair the object: the chunk CIDs in
//! order, each chunk's plaintext size, the total size, the redundancy policy,
//! the parity chunks' CIDs of an erasure-coded object, and the object key
//! wrapped to the owner (a sealed box only the owner's
//! X25519 secret opens). What describes the *content* — the plaintext BLAKE3 of
//! the whole object, its content type and name — is the [`ObjectInfo`], sealed
//! with the object key under its own nonce domain: a provider cannot confirm a
//! guess of "is this file X?" from a manifest, nor read file names.
//!
//! **Erasure-coded objects** ([`Redundancy::Erasure`]): the data chunks are
//! taken `data` at a time, in order, into groups ([`ChunkGroup`]); the last
//! group may hold fewer. Each group has exactly `parity` parity chunks, listed
//! in [`Manifest::parity_chunks`] group after group, so group `g` is data
//! chunks `g·data ..` and parity chunks `g·parity ..`. A parity chunk is
//! [`crate::erasure::shard_bytes`] of its group's sealed data chunks long.
//!
//! Encoding: [`peercloud_types::encode`] with [`Kind::Manifest`] and
//! [`MANIFEST_VERSION`] in the header byte (the format version; it is also
//! bound into every chunk's AAD, see [`crate::seal`]). [`Manifest::decode`]
//! checks kind, version, canonical form, and every bound below, so a CID that
//! names some other chunk is refused with a typed error.
//!
//! **Public objects** ([`Access::Public`], the objects of a public bucket):
//! the chunks are the plaintext itself, so a chunk's CID is the BLAKE3 of
//! its content and anyone holding the object's CID reads it; the
//! description is in the clear, and there is no object key. The same bytes
//! put twice with the same options name the same object.
//!
//! Version 2 added [`Manifest::parity_chunks`], version 3 [`Access`].
//! Older manifests are not read: the version is also in every chunk's AAD,
//! so an older object's chunks would need the opener to seal under the old
//! byte as well, and no such object outlives a devnet (there was no release).

use peercloud_types::{ContentId, DecodeError, Hash32, Kind, Versioned, decode, encode};
use serde::{Deserialize, Serialize};

use crate::seal::{ChunkCipher, ObjectKey, SEALED_KEY_BYTES, SealError, TAG_BYTES};

/// The manifest format version (the encoding's version byte; bound into chunk
/// AAD). 2: the parity chunks of erasure-coded objects; 3: public objects.
pub const MANIFEST_VERSION: u8 = 3;
/// Default plaintext bytes per chunk: 1 MiB. Large enough that per-chunk costs
/// (a file, an fsync, 36 manifest bytes, a placement lookup) vanish against
/// the data; small enough that a repair or a range read moves little.
pub const CHUNK_BYTES_DEFAULT: u32 = 1 << 20;
/// Smallest configurable chunk: 4 KiB, one file-system block; below it the
/// 16-byte tag and the per-file overhead dominate.
pub const CHUNK_BYTES_MIN: u32 = 4 << 10;
/// Largest chunk: 16 MiB. The put pipeline keeps a few batches of chunks in
/// memory and a network transfer moves a whole chunk; this bounds both.
pub const CHUNK_BYTES_MAX: u32 = 16 << 20;
/// Most chunks one manifest lists: 2^20, i.e. 1 TiB at the default chunk size,
/// a manifest of at most ~40 MiB. Larger objects are split by the caller.
pub const OBJECT_CHUNKS_MAX: usize = 1 << 20;
/// Default number of replicas of every chunk (DESIGN.md: 3x replication).
pub const REPLICAS_DEFAULT: u8 = 3;
/// Most replicas a manifest may ask for: beyond 16 copies erasure coding is
/// cheaper for any durability target.
pub const REPLICAS_MAX: u8 = 16;
/// Most data + parity shards of an erasure code over GF(2^8).
pub const ERASURE_SHARDS_MAX: u16 = 256;
/// Most parity chunks one manifest lists: as many as data chunks at most
/// (the same bound, so a manifest stays under ~80 MiB).
pub const OBJECT_PARITY_CHUNKS_MAX: usize = OBJECT_CHUNKS_MAX;
/// Longest object name in bytes (S3 allows keys of 1024 bytes).
pub const NAME_BYTES_MAX: usize = 1024;
/// Longest content type in bytes (RFC 6838 names are far shorter).
pub const CONTENT_TYPE_BYTES_MAX: usize = 255;
/// Largest sealed [`ObjectInfo`]: a digest, the two strings at their bounds,
/// postcard length prefixes and the tag fit well under 2 KiB.
pub const SEALED_INFO_BYTES_MAX: usize = 2048;

/// How an object's chunks are kept alive across nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redundancy {
    /// Every chunk is kept whole on this many distinct nodes.
    Replicas(u8),
    /// Reed-Solomon: chunks in groups of `data`, `parity` parity chunks per
    /// group, each chunk (data or parity) kept once, on its own node; any
    /// `data` of a group's chunks give back all of its data.
    Erasure {
        /// Data shards per group.
        data: u8,
        /// Parity shards per group.
        parity: u8,
    },
}

impl Default for Redundancy {
    fn default() -> Self {
        Redundancy::Replicas(REPLICAS_DEFAULT)
    }
}

impl Redundancy {
    /// Checks the bounds above.
    pub fn validate(&self) -> Result<(), ManifestError> {
        match *self {
            Redundancy::Replicas(n) if n == 0 || n > REPLICAS_MAX => Err(ManifestError::Replicas {
                replicas: n,
                max: REPLICAS_MAX,
            }),
            Redundancy::Erasure { data, parity }
                if data == 0
                    || parity == 0
                    || u16::from(data) + u16::from(parity) > ERASURE_SHARDS_MAX =>
            {
                Err(ManifestError::Erasure {
                    data,
                    parity,
                    shards_max: ERASURE_SHARDS_MAX,
                })
            }
            _ => Ok(()),
        }
    }

    /// Parity chunks per group (0 for replicas).
    pub fn parity_per_group(&self) -> usize {
        match *self {
            Redundancy::Replicas(_) => 0,
            Redundancy::Erasure { parity, .. } => usize::from(parity),
        }
    }
}

/// One erasure group of an object: a run of its data chunks and their parity
/// chunks, as indexes into [`Manifest::chunks`] and [`Manifest::parity_chunks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkGroup {
    /// The group's position in the object (0 first).
    pub index: usize,
    /// Its data chunks' indexes in [`Manifest::chunks`] (also their seal indexes).
    pub data: std::ops::Range<usize>,
    /// Its parity chunks' indexes in [`Manifest::parity_chunks`].
    pub parity: std::ops::Range<usize>,
}

/// What a manifest says about its object's content; sealed under the object key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// BLAKE3 of the whole plaintext object.
    pub plaintext_hash: Hash32,
    /// MIME type, if the writer gave one.
    pub content_type: Option<String>,
    /// A name (file name, S3 key), if the writer gave one.
    pub name: Option<String>,
}

impl ObjectInfo {
    /// Checks the string bounds.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if let Some(name) = &self.name
            && name.len() > NAME_BYTES_MAX
        {
            return Err(ManifestError::NameTooLong {
                len: name.len(),
                max: NAME_BYTES_MAX,
            });
        }
        if let Some(content_type) = &self.content_type
            && content_type.len() > CONTENT_TYPE_BYTES_MAX
        {
            return Err(ManifestError::ContentTypeTooLong {
                len: content_type.len(),
                max: CONTENT_TYPE_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Seals this description under `cipher` (the object's key).
    pub fn seal(&self, cipher: &ChunkCipher) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let mut buf = Vec::new();
        peercloud_types::encoding::encode_body_into(self, &mut buf);
        buf.reserve(TAG_BYTES);
        cipher
            .seal_info(&mut buf)
            .map_err(|source| ManifestError::InfoSeal { source })?;
        Ok(buf)
    }
}

/// An object's manifest. Construct it through [`crate::put_object`]; decode it
/// with [`Manifest::decode`], which validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The sealed chunks' CIDs, in object order (chunk `i` was sealed at index `i`).
    pub chunks: Vec<ContentId>,
    /// Each chunk's plaintext size in bytes (its sealed size is `TAG_BYTES` more).
    pub chunk_sizes: Vec<u32>,
    /// The parity chunks' CIDs of an erasure-coded object, `parity` per group,
    /// group after group (see the module documentation); empty for replicas.
    pub parity_chunks: Vec<ContentId>,
    /// The object's size in bytes: the sum of `chunk_sizes`.
    pub total_bytes: u64,
    /// How the chunks are kept alive.
    pub redundancy: Redundancy,
    /// Who can read the object.
    pub access: Access,
}

/// Who can read an object, and how its content is described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// Only the owner (and whoever the owner hands the object key): the
    /// chunks are sealed under a fresh object key.
    Sealed {
        /// The object key sealed to the owner's X25519 key.
        wrapped_key: Vec<u8>,
        /// The [`ObjectInfo`], sealed under the object key.
        sealed_info: Vec<u8>,
    },
    /// Anyone with the object's CID: the chunks are the plaintext.
    Public {
        /// The object's description, in the clear.
        info: ObjectInfo,
    },
}

impl Versioned for Manifest {
    const KIND: u8 = Kind::Manifest as u8;
    const VERSION: u8 = MANIFEST_VERSION;
}

/// A manifest (or the options to build one) is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// The bytes are not an encoded manifest.
    #[error("not an encoded manifest: {source}")]
    Decode {
        /// The decoder's error.
        source: DecodeError,
    },
    /// The two per-chunk lists differ in length.
    #[error("manifest lists {cids} chunk CIDs but {sizes} chunk sizes")]
    ChunkListMismatch {
        /// CIDs listed.
        cids: usize,
        /// Sizes listed.
        sizes: usize,
    },
    /// More chunks than one manifest may list.
    #[error("manifest lists {count} chunks, at most {max} are allowed")]
    TooManyChunks {
        /// Chunks listed.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A chunk is empty or larger than any chunk may be.
    #[error("chunk {index} has plaintext size {size}, chunks hold 1..={max} bytes")]
    ChunkSizeOutOfRange {
        /// The chunk's position.
        index: usize,
        /// Its size.
        size: u32,
        /// The bound.
        max: u32,
    },
    /// The chunk sizes do not add up to the total.
    #[error(
        "chunk sizes add up to {chunk_bytes_sum} bytes but the manifest's total is {total_bytes}"
    )]
    SizeMismatch {
        /// Sum of chunk sizes.
        chunk_bytes_sum: u64,
        /// The stated total.
        total_bytes: u64,
    },
    /// The wrapped key is not a sealed 32-byte key.
    #[error("wrapped key is {len} bytes, a sealed object key is {expected}")]
    WrappedKeyLength {
        /// Bytes found.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// The sealed description is too short or too long.
    #[error("sealed object description is {len} bytes, it must be {min}..={max}")]
    SealedInfoLength {
        /// Bytes found.
        len: usize,
        /// At least the tag.
        min: usize,
        /// The bound.
        max: usize,
    },
    /// Zero or too many replicas.
    #[error("redundancy of {replicas} replicas; 1..={max} are allowed")]
    Replicas {
        /// Replicas asked for.
        replicas: u8,
        /// The bound.
        max: u8,
    },
    /// An impossible erasure code.
    #[error(
        "erasure code {data}+{parity}: both must be at least 1 and together at most {shards_max}"
    )]
    Erasure {
        /// Data shards.
        data: u8,
        /// Parity shards.
        parity: u8,
        /// The bound.
        shards_max: u16,
    },
    /// The parity chunks listed do not fit the redundancy's group shape.
    #[error(
        "manifest lists {found} parity chunks; {groups} groups of {parity} parity chunks need {expected}"
    )]
    ParityCount {
        /// Groups of data chunks.
        groups: usize,
        /// Parity chunks per group.
        parity: usize,
        /// Parity chunks the shape needs.
        expected: usize,
        /// Parity chunks listed.
        found: usize,
    },
    /// A chunk size outside the configurable range.
    #[error("chunk size {chunk_bytes} bytes is outside {min}..={max}")]
    ChunkBytes {
        /// Size asked for.
        chunk_bytes: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The name is too long.
    #[error("object name is {len} bytes, at most {max} are allowed")]
    NameTooLong {
        /// Bytes given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The content type is too long.
    #[error("content type is {len} bytes, at most {max} are allowed")]
    ContentTypeTooLong {
        /// Bytes given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The description did not seal or open under the object key.
    #[error("object description: {source}")]
    InfoSeal {
        /// What failed.
        source: SealError,
    },
    /// The description opened but does not parse.
    #[error("object description is malformed: {reason}")]
    InfoMalformed {
        /// What the parser said.
        reason: String,
    },
}

impl Manifest {
    /// The canonical, versioned bytes stored as the manifest chunk.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes and validates manifest bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            decode(bytes).map_err(|source| ManifestError::Decode { source })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The CID that names this object: BLAKE3 of [`Manifest::encode`].
    pub fn cid(&self) -> ContentId {
        ContentId::of(&self.encode())
    }

    /// Checks every structural bound; [`Manifest::decode`] calls it.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.chunks.len() != self.chunk_sizes.len() {
            return Err(ManifestError::ChunkListMismatch {
                cids: self.chunks.len(),
                sizes: self.chunk_sizes.len(),
            });
        }
        if self.chunks.len() > OBJECT_CHUNKS_MAX {
            return Err(ManifestError::TooManyChunks {
                count: self.chunks.len(),
                max: OBJECT_CHUNKS_MAX,
            });
        }
        let mut sum: u64 = 0;
        for (index, &size) in self.chunk_sizes.iter().enumerate() {
            if size == 0 || size > CHUNK_BYTES_MAX {
                return Err(ManifestError::ChunkSizeOutOfRange {
                    index,
                    size,
                    max: CHUNK_BYTES_MAX,
                });
            }
            sum += u64::from(size);
        }
        if sum != self.total_bytes {
            return Err(ManifestError::SizeMismatch {
                chunk_bytes_sum: sum,
                total_bytes: self.total_bytes,
            });
        }
        match &self.access {
            Access::Sealed {
                wrapped_key,
                sealed_info,
            } => {
                if wrapped_key.len() != SEALED_KEY_BYTES {
                    return Err(ManifestError::WrappedKeyLength {
                        len: wrapped_key.len(),
                        expected: SEALED_KEY_BYTES,
                    });
                }
                if !(TAG_BYTES..=SEALED_INFO_BYTES_MAX).contains(&sealed_info.len()) {
                    return Err(ManifestError::SealedInfoLength {
                        len: sealed_info.len(),
                        min: TAG_BYTES,
                        max: SEALED_INFO_BYTES_MAX,
                    });
                }
            }
            Access::Public { info } => info.validate()?,
        }
        self.redundancy.validate()?;
        self.validate_parity()
    }

    /// Checks that every group has exactly `parity` parity chunks (and a
    /// replicated object none).
    fn validate_parity(&self) -> Result<(), ManifestError> {
        let parity = self.redundancy.parity_per_group();
        let groups = self.group_count();
        let expected = groups.saturating_mul(parity);
        if self.parity_chunks.len() != expected {
            return Err(ManifestError::ParityCount {
                groups,
                parity,
                expected,
                found: self.parity_chunks.len(),
            });
        }
        if self.parity_chunks.len() > OBJECT_PARITY_CHUNKS_MAX {
            return Err(ManifestError::TooManyChunks {
                count: self.parity_chunks.len(),
                max: OBJECT_PARITY_CHUNKS_MAX,
            });
        }
        Ok(())
    }

    /// How many erasure groups the object has (0 for replicas).
    pub fn group_count(&self) -> usize {
        match self.redundancy {
            Redundancy::Replicas(_) => 0,
            Redundancy::Erasure { data, .. } => {
                self.chunks.len().div_ceil(usize::from(data.max(1)))
            }
        }
    }

    /// Erasure group `index`, or `None` past the last (or for replicas).
    pub fn group(&self, index: usize) -> Option<ChunkGroup> {
        let Redundancy::Erasure { data, parity } = self.redundancy else {
            return None;
        };
        if index >= self.group_count() {
            return None;
        }
        let (data, parity) = (usize::from(data), usize::from(parity));
        let start = index * data;
        Some(ChunkGroup {
            index,
            data: start..(start + data).min(self.chunks.len()),
            parity: index * parity..(index + 1) * parity,
        })
    }

    /// The erasure group data chunk `chunk` belongs to (`None` for replicas).
    pub fn group_of(&self, chunk: usize) -> Option<ChunkGroup> {
        match self.redundancy {
            Redundancy::Replicas(_) => None,
            Redundancy::Erasure { data, .. } => self.group(chunk / usize::from(data.max(1))),
        }
    }

    /// Every chunk the object stores besides its manifest: the data chunks,
    /// then the parity chunks.
    pub fn all_chunks(&self) -> impl Iterator<Item = &ContentId> {
        self.chunks.iter().chain(&self.parity_chunks)
    }

    /// Whether anyone can read the object (its chunks are plaintext).
    pub fn is_public(&self) -> bool {
        matches!(self.access, Access::Public { .. })
    }

    /// Bytes a data chunk of `size` plaintext bytes occupies as stored: the
    /// sealing tag more for a sealed object, the plaintext for a public one.
    pub fn stored_len(&self, size: u32) -> usize {
        match self.access {
            Access::Sealed { .. } => size as usize + TAG_BYTES,
            Access::Public { .. } => size as usize,
        }
    }

    /// The stored lengths of `group`'s data chunks, in order.
    pub fn group_lens(&self, group: &ChunkGroup) -> Vec<usize> {
        self.chunk_sizes[group.data.clone()]
            .iter()
            .map(|&size| self.stored_len(size))
            .collect()
    }

    /// Unwraps the object key with the owner's X25519 secret
    /// (`Keypair::x25519_secret()`); a public object has none.
    pub fn unwrap_key(&self, owner_secret: &crypto_box::SecretKey) -> Result<ObjectKey, SealError> {
        match &self.access {
            Access::Sealed { wrapped_key, .. } => ObjectKey::open_sealed(wrapped_key, owner_secret),
            Access::Public { .. } => Err(SealError::PublicObject),
        }
    }

    /// The description: in the clear for a public object, else opened with
    /// the object key (a public object needs none).
    pub fn open_info(&self, key: Option<&ObjectKey>) -> Result<ObjectInfo, ManifestError> {
        let (sealed_info, key) = match (&self.access, key) {
            (Access::Public { info }, _) => return Ok(info.clone()),
            (Access::Sealed { sealed_info, .. }, Some(key)) => (sealed_info, key),
            (Access::Sealed { .. }, None) => {
                return Err(ManifestError::InfoSeal {
                    source: SealError::NoKey,
                });
            }
        };
        let mut buf = sealed_info.clone();
        key.cipher()
            .open_info(&mut buf)
            .map_err(|source| ManifestError::InfoSeal { source })?;
        let (info, rest): (ObjectInfo, &[u8]) =
            postcard::take_from_bytes(&buf).map_err(|e| ManifestError::InfoMalformed {
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(ManifestError::InfoMalformed {
                reason: format!("{} trailing bytes", rest.len()),
            });
        }
        info.validate()?;
        Ok(info)
    }

    /// Bytes the stored data chunks occupy on one node (plaintext plus one
    /// tag per chunk when sealed).
    pub fn sealed_bytes(&self) -> u64 {
        match self.access {
            Access::Sealed { .. } => {
                self.total_bytes + (self.chunks.len() as u64) * (TAG_BYTES as u64)
            }
            Access::Public { .. } => self.total_bytes,
        }
    }

    /// Bytes the parity chunks occupy (0 for replicas): each is its group's
    /// [`crate::erasure::shard_bytes`] long.
    pub fn parity_bytes(&self) -> u64 {
        (0..self.group_count())
            .filter_map(|g| self.group(g))
            .map(|group| {
                (crate::erasure::shard_bytes(&self.group_lens(&group)) * group.parity.len()) as u64
            })
            .sum()
    }
}

#[cfg(test)]
mod tests;
