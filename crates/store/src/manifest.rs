//! The manifest: an object's recipe, stored as a chunk of its own whose CID
//! names the object.
//!
//! A manifest is public to the nodes that hold it, so it carries only what
//! they need to store, account for and repair the object: the chunk CIDs in
//! order, each chunk's plaintext size, the total size, the redundancy policy,
//! and the object key wrapped to the owner (a sealed box only the owner's
//! X25519 secret opens). What describes the *content* — the plaintext BLAKE3 of
//! the whole object, its content type and name — is the [`ObjectInfo`], sealed
//! with the object key under its own nonce domain: a provider cannot confirm a
//! guess of "is this file X?" from a manifest, nor read file names.
//!
//! Encoding: [`peercloud_types::encode`] with [`Kind::Manifest`] and
//! [`MANIFEST_VERSION`] in the header byte (the format version; it is also
//! bound into every chunk's AAD, see [`crate::seal`]). [`Manifest::decode`]
//! checks kind, version, canonical form, and every bound below, so a CID that
//! names some other chunk is refused with a typed error.

use peercloud_types::{ContentId, DecodeError, Hash32, Kind, Versioned, decode, encode};
use serde::{Deserialize, Serialize};

use crate::seal::{ChunkCipher, ObjectKey, SEALED_KEY_BYTES, SealError, TAG_BYTES};

/// The manifest format version (the encoding's version byte; bound into chunk AAD).
pub const MANIFEST_VERSION: u8 = 1;
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
    /// Reed-Solomon: chunks in groups of `data`, `parity` extra shards per group.
    /// The manifest format has room for it; the put pipeline does not build it yet.
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
    /// The object's size in bytes: the sum of `chunk_sizes`.
    pub total_bytes: u64,
    /// How the chunks are kept alive.
    pub redundancy: Redundancy,
    /// The object key sealed to the owner's X25519 key.
    pub wrapped_key: Vec<u8>,
    /// The [`ObjectInfo`], sealed under the object key.
    pub sealed_info: Vec<u8>,
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
    /// The put pipeline does not build erasure-coded objects yet.
    #[error("erasure-coded objects are not supported by this build; use replicas")]
    ErasureNotSupported,
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
        if self.wrapped_key.len() != SEALED_KEY_BYTES {
            return Err(ManifestError::WrappedKeyLength {
                len: self.wrapped_key.len(),
                expected: SEALED_KEY_BYTES,
            });
        }
        if !(TAG_BYTES..=SEALED_INFO_BYTES_MAX).contains(&self.sealed_info.len()) {
            return Err(ManifestError::SealedInfoLength {
                len: self.sealed_info.len(),
                min: TAG_BYTES,
                max: SEALED_INFO_BYTES_MAX,
            });
        }
        self.redundancy.validate()
    }

    /// Unwraps the object key with the owner's X25519 secret
    /// (`Keypair::x25519_secret()`).
    pub fn unwrap_key(&self, owner_secret: &crypto_box::SecretKey) -> Result<ObjectKey, SealError> {
        ObjectKey::open_sealed(&self.wrapped_key, owner_secret)
    }

    /// Opens the sealed description with the object key.
    pub fn open_info(&self, key: &ObjectKey) -> Result<ObjectInfo, ManifestError> {
        let mut buf = self.sealed_info.clone();
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

    /// Bytes the sealed chunks occupy on one node (plaintext plus one tag per chunk).
    pub fn sealed_bytes(&self) -> u64 {
        self.total_bytes + (self.chunks.len() as u64) * (TAG_BYTES as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_redundancy() -> impl Strategy<Value = Redundancy> {
        prop_oneof![
            (1..=REPLICAS_MAX).prop_map(Redundancy::Replicas),
            (1u8..=128, 1u8..=128).prop_map(|(data, parity)| Redundancy::Erasure { data, parity }),
        ]
    }

    prop_compose! {
        fn arb_manifest()(
            sizes in proptest::collection::vec(1..=CHUNK_BYTES_MAX, 0..40),
            seed in any::<u64>(),
            redundancy in arb_redundancy(),
            wrapped_key in proptest::collection::vec(any::<u8>(), SEALED_KEY_BYTES),
            sealed_info in proptest::collection::vec(any::<u8>(), TAG_BYTES..200),
        ) -> Manifest {
            let chunks = (0..sizes.len())
                .map(|i| ContentId::of(&[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat()))
                .collect();
            let total_bytes = sizes.iter().map(|&s| u64::from(s)).sum();
            Manifest { chunks, chunk_sizes: sizes, total_bytes, redundancy, wrapped_key, sealed_info }
        }
    }

    proptest! {
        #[test]
        fn manifests_round_trip(manifest in arb_manifest()) {
            let bytes = manifest.encode();
            prop_assert_eq!(&bytes[..2], &[Kind::Manifest as u8, MANIFEST_VERSION]);
            prop_assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
        }

        #[test]
        fn a_flipped_byte_never_decodes_to_the_same_manifest(
            manifest in arb_manifest(), at in any::<usize>(), flip in 1u8..,
        ) {
            let mut bytes = manifest.encode();
            let i = at % bytes.len();
            bytes[i] ^= flip;
            if let Ok(other) = Manifest::decode(&bytes) {
                prop_assert_ne!(other, manifest);
            }
        }

        #[test]
        fn truncated_bytes_never_decode(manifest in arb_manifest(), cut in any::<usize>()) {
            let bytes = manifest.encode();
            let len = cut % bytes.len();
            prop_assert!(Manifest::decode(&bytes[..len]).is_err());
        }

        #[test]
        fn inconsistent_manifests_are_refused(manifest in arb_manifest(), extra in 1u64..1000) {
            let mut wrong_total = manifest.clone();
            wrong_total.total_bytes += extra;
            let is_size_mismatch =
                matches!(Manifest::decode(&wrong_total.encode()), Err(ManifestError::SizeMismatch { .. }));
            prop_assert!(is_size_mismatch);
            let mut short_list = manifest.clone();
            short_list.chunk_sizes.push(1);
            let is_list_mismatch = matches!(
                Manifest::decode(&short_list.encode()),
                Err(ManifestError::ChunkListMismatch { .. })
            );
            prop_assert!(is_list_mismatch);
        }
    }

    fn valid() -> Manifest {
        Manifest {
            chunks: vec![ContentId::of(b"a")],
            chunk_sizes: vec![10],
            total_bytes: 10,
            redundancy: Redundancy::default(),
            wrapped_key: vec![0; SEALED_KEY_BYTES],
            sealed_info: vec![0; TAG_BYTES],
        }
    }

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(valid().validate(), Ok(()));
        let mut m = valid();
        m.chunk_sizes = vec![0];
        m.total_bytes = 0;
        assert!(matches!(
            m.validate(),
            Err(ManifestError::ChunkSizeOutOfRange { size: 0, .. })
        ));
        let mut m = valid();
        m.wrapped_key.pop();
        assert!(matches!(
            m.validate(),
            Err(ManifestError::WrappedKeyLength { .. })
        ));
        let mut m = valid();
        m.sealed_info = vec![0; SEALED_INFO_BYTES_MAX + 1];
        assert!(matches!(
            m.validate(),
            Err(ManifestError::SealedInfoLength { .. })
        ));
        let mut m = valid();
        m.redundancy = Redundancy::Replicas(0);
        assert!(matches!(m.validate(), Err(ManifestError::Replicas { .. })));
        m.redundancy = Redundancy::Replicas(REPLICAS_MAX + 1);
        assert!(matches!(m.validate(), Err(ManifestError::Replicas { .. })));
        m.redundancy = Redundancy::Erasure {
            data: 200,
            parity: 100,
        };
        assert!(matches!(m.validate(), Err(ManifestError::Erasure { .. })));
    }

    #[test]
    fn other_kinds_of_record_are_not_manifests() {
        let meta = crate::store::ChunkMeta { size_bytes: 5 };
        let err = Manifest::decode(&encode(&meta)).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::Decode {
                source: DecodeError::WrongKind { .. }
            }
        ));
        assert!(matches!(
            Manifest::decode(b"random bytes"),
            Err(ManifestError::Decode { .. })
        ));
    }

    #[test]
    fn description_seals_and_opens_only_under_its_key() {
        let key = ObjectKey::generate().unwrap();
        let info = ObjectInfo {
            plaintext_hash: Hash32::of(b"x"),
            content_type: Some("text/plain".into()),
            name: Some("notes.txt".into()),
        };
        let mut m = valid();
        m.sealed_info = info.seal(&key.cipher()).unwrap();
        assert_eq!(m.open_info(&key).unwrap(), info);
        let other = ObjectKey::generate().unwrap();
        assert!(matches!(
            m.open_info(&other),
            Err(ManifestError::InfoSeal { .. })
        ));
        let long = ObjectInfo {
            name: Some("n".repeat(NAME_BYTES_MAX + 1)),
            ..info
        };
        assert!(matches!(
            long.seal(&key.cipher()),
            Err(ManifestError::NameTooLong { .. })
        ));
    }
}
