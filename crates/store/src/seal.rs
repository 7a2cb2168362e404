//! Sealing: how an object's bytes and its key are encrypted.
//!
//! Each object gets its own random 256-bit [`ObjectKey`] (from the operating
//! system's random source). Every chunk is sealed with **AES-256-GCM** (ring)
//! under that key:
//!
//! - **Nonce** = 96 bits: a 32-bit domain (0 for chunks, 1 for the sealed
//!   object description in the manifest) followed by the chunk index as a
//!   64-bit big-endian number. GCM's one hard rule is "never two messages under
//!   one key with one nonce". The key is fresh and random for every object and
//!   never used for another, and within an object each chunk index occurs once
//!   and the description has its own domain, so every (key, nonce) pair is used
//!   exactly once. Putting the same file twice draws a new key, so identical
//!   plaintexts do not give identical chunks (no convergent encryption: it
//!   would tell providers which users hold the same file).
//! - **AAD** = `"pc-chunk"`, the manifest format version, the chunk index. A
//!   chunk cannot be moved to another position (its index is authenticated),
//!   nor read under a later format by mistake, nor moved to another object
//!   (another object has another key). Dropping trailing chunks is caught by
//!   the manifest, which lists every chunk's CID and is itself named by its
//!   hash.
//!
//! Why AES-256-GCM and not XChaCha20-Poly1305 (which DESIGN.md first named):
//! PERF.md measures ring's AES-256-GCM at ~7.6 GB/s on this class of machine
//! (hardware AES and carry-less multiply) against ~1.5 GB/s for RustCrypto's
//! XChaCha20-Poly1305 and ~2.0 GB/s for ring's ChaCha20-Poly1305. A put also
//! pays BLAKE3 twice (the plaintext hash and the chunk CID, ~4–6 GB/s each)
//! and a disk write. At the 1 GB/s target the whole per-byte budget is 1 ns;
//! XChaCha alone would eat 0.67 ns of it, AES-GCM eats 0.13 ns. XChaCha's
//! 192-bit random nonces buy nothing here because our nonces are counters
//! under single-use keys.
//!
//! The object key is **wrapped** to its owner with a libsodium-compatible
//! sealed box (`crypto_box` X25519 + XSalsa20-Poly1305, an ephemeral sender
//! key per box) on the owner's X25519 key (the birational image of their
//! ed25519 key, see [`peercloud_types::PublicKey::x25519`]). The same
//! [`seal_key_to`] hands the key to a job's executor once it is awarded the
//! job; only the holder of the matching X25519 secret opens it.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// Bytes in an object key (AES-256).
pub const KEY_BYTES: usize = 32;
/// Bytes the GCM tag adds to every sealed chunk.
pub const TAG_BYTES: usize = 16;
/// Bytes of an object key sealed to a recipient: the ephemeral X25519 public
/// key, the Poly1305 tag and the key itself.
pub const SEALED_KEY_BYTES: usize = crypto_box::SEALBYTES + KEY_BYTES;

/// Nonce domain of object chunks.
const NONCE_DOMAIN_CHUNK: u32 = 0;
/// Nonce domain of the sealed object description inside a manifest.
const NONCE_DOMAIN_INFO: u32 = 1;
/// Leading bytes of a chunk's associated data.
const AAD_CHUNK: &[u8; 8] = b"pc-chunk";
/// Leading bytes of the object description's associated data.
const AAD_INFO: &[u8; 8] = b"pc-info\0";

/// A sealing or opening step failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The operating system's random source failed.
    #[error("the operating system random source failed: {reason}")]
    Random {
        /// What getrandom said.
        reason: String,
    },
    /// A chunk did not authenticate under this key at this position.
    #[error(
        "chunk at index {index} failed authentication: wrong object key, wrong position, or altered bytes"
    )]
    Unauthentic {
        /// The index it was opened at.
        index: u64,
    },
    /// A sealed chunk is too short to even hold its tag.
    #[error("sealed chunk at index {index} is {len} bytes, shorter than its {TAG_BYTES}-byte tag")]
    TooShort {
        /// The index it was opened at.
        index: u64,
        /// Its length.
        len: usize,
    },
    /// AES-GCM refused to seal (input beyond GCM's 64 GiB message bound).
    #[error("AES-GCM refused to seal {len} bytes at index {index}")]
    SealFailed {
        /// The chunk index.
        index: u64,
        /// The plaintext length.
        len: usize,
    },
    /// A sealed key did not open with this secret: sealed to someone else, or altered.
    #[error("sealed object key does not open with this secret (sealed to another key, or altered)")]
    KeyNotForRecipient,
    /// A sealed key opened but does not hold a 32-byte key.
    #[error("sealed object key holds {len} bytes, an object key is {KEY_BYTES}")]
    KeyLength {
        /// Bytes found.
        len: usize,
    },
    /// Sealing a key to a recipient failed.
    #[error("sealing an object key to its recipient failed")]
    KeySealFailed,
    /// A public object has no object key (its chunks are plaintext).
    #[error("the object is public: it has no object key")]
    PublicObject,
    /// A sealed object was opened without its key.
    #[error("the object is sealed and no object key was given")]
    NoKey,
}

/// The random 256-bit key of one object. Never stored in the clear: the
/// manifest holds it wrapped to the owner. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ObjectKey([u8; KEY_BYTES]);

impl std::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectKey(..)")
    }
}

impl ObjectKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| SealError::Random {
            reason: e.to_string(),
        })?;
        Ok(ObjectKey(bytes))
    }

    /// The key with these bytes (a key handed over out of band, tests).
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        ObjectKey(bytes)
    }

    /// The raw key. Handle with care: whoever holds it reads the object.
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The AES-256-GCM cipher for this key (expands the key schedule once; make
    /// one per object, not per chunk).
    pub fn cipher(&self) -> ChunkCipher {
        // AES_256_GCM takes exactly 32 bytes and `self.0` is `[u8; 32]`, so
        // `UnboundKey::new` cannot fail.
        #[allow(clippy::expect_used)]
        let key = UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte key fits AES-256-GCM");
        ChunkCipher {
            key: LessSafeKey::new(key),
        }
    }

    /// Seals this key to `recipient` (an owner or an awarded executor) in a
    /// sealed box of [`SEALED_KEY_BYTES`] bytes.
    pub fn seal_to(&self, recipient: &crypto_box::PublicKey) -> Result<Vec<u8>, SealError> {
        recipient
            .seal(&mut crypto_box::aead::OsRng, &self.0)
            .map_err(|_| SealError::KeySealFailed)
    }

    /// Opens a key sealed by [`ObjectKey::seal_to`] with the recipient's secret.
    pub fn open_sealed(sealed: &[u8], secret: &crypto_box::SecretKey) -> Result<Self, SealError> {
        let bytes = secret
            .unseal(sealed)
            .map_err(|_| SealError::KeyNotForRecipient)?;
        let key: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::KeyLength { len: bytes.len() })?;
        Ok(ObjectKey(key))
    }
}

/// Seals `key` to `recipient`'s X25519 public key (for the owner:
/// `owner.x25519()`; for an executor: its node key's `x25519()`).
pub fn seal_key_to(
    key: &ObjectKey,
    recipient: &crypto_box::PublicKey,
) -> Result<Vec<u8>, SealError> {
    key.seal_to(recipient)
}

/// Opens a key sealed with [`seal_key_to`] using the recipient's X25519
/// secret (`Keypair::x25519_secret()`).
pub fn open_sealed_key(
    sealed: &[u8],
    secret: &crypto_box::SecretKey,
) -> Result<ObjectKey, SealError> {
    ObjectKey::open_sealed(sealed, secret)
}

/// AES-256-GCM under one object key, with the nonce and AAD rules of this
/// module. Cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct ChunkCipher {
    key: LessSafeKey,
}

impl std::fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkCipher(AES-256-GCM)")
    }
}

fn nonce(domain: u32, index: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[..4].copy_from_slice(&domain.to_be_bytes());
    bytes[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn aad(tag: &[u8; 8], index: u64) -> [u8; 17] {
    let mut bytes = [0u8; 17];
    bytes[..8].copy_from_slice(tag);
    bytes[8] = crate::manifest::MANIFEST_VERSION;
    bytes[9..].copy_from_slice(&index.to_be_bytes());
    bytes
}

impl ChunkCipher {
    /// Seals the plaintext in `buf` as chunk `index`, appending the tag. Reserve
    /// [`TAG_BYTES`] of spare capacity to avoid a reallocation.
    pub fn seal_in_place(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        self.seal_domain(NONCE_DOMAIN_CHUNK, AAD_CHUNK, index, buf)
    }

    /// Opens the sealed chunk in `buf` as chunk `index`, leaving the plaintext
    /// in `buf` (the tag is cut off).
    pub fn open_in_place(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        self.open_domain(NONCE_DOMAIN_CHUNK, AAD_CHUNK, index, buf)
    }

    /// Seals an object's description (manifest-internal; its own nonce domain).
    pub(crate) fn seal_info(&self, buf: &mut Vec<u8>) -> Result<(), SealError> {
        self.seal_domain(NONCE_DOMAIN_INFO, AAD_INFO, 0, buf)
    }

    /// Opens an object's description.
    pub(crate) fn open_info(&self, buf: &mut Vec<u8>) -> Result<(), SealError> {
        self.open_domain(NONCE_DOMAIN_INFO, AAD_INFO, 0, buf)
    }

    fn seal_domain(
        &self,
        domain: u32,
        tag: &[u8; 8],
        index: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let len = buf.len();
        self.key
            .seal_in_place_append_tag(nonce(domain, index), Aad::from(aad(tag, index)), buf)
            .map_err(|_| SealError::SealFailed { index, len })
    }

    fn open_domain(
        &self,
        domain: u32,
        tag: &[u8; 8],
        index: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        if buf.len() < TAG_BYTES {
            return Err(SealError::TooShort {
                index,
                len: buf.len(),
            });
        }
        let plain_len = self
            .key
            .open_in_place(nonce(domain, index), Aad::from(aad(tag, index)), buf)
            .map_err(|_| SealError::Unauthentic { index })?
            .len();
        buf.truncate(plain_len);
        Ok(())
    }
}

/// Seals `plaintext` as chunk `index` of the object keyed by `key`; returns
/// the sealed bytes (plaintext length + [`TAG_BYTES`]). For many chunks, make
/// one [`ChunkCipher`] with [`ObjectKey::cipher`] instead.
pub fn seal_chunk(key: &ObjectKey, index: u64, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_BYTES);
    buf.extend_from_slice(plaintext);
    key.cipher().seal_in_place(index, &mut buf)?;
    Ok(buf)
}

/// Opens a chunk sealed by [`seal_chunk`] at the same `index` under the same key.
pub fn open_chunk(key: &ObjectKey, index: u64, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut buf = sealed.to_vec();
    key.cipher().open_in_place(index, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;

    #[test]
    fn chunks_round_trip_and_only_at_their_index_under_their_key() {
        let key = ObjectKey::generate().unwrap();
        let sealed = seal_chunk(&key, 7, b"hello chunk").unwrap();
        assert_eq!(sealed.len(), 11 + TAG_BYTES);
        assert_eq!(open_chunk(&key, 7, &sealed).unwrap(), b"hello chunk");
        assert_eq!(
            open_chunk(&key, 8, &sealed),
            Err(SealError::Unauthentic { index: 8 })
        );
        let other = ObjectKey::generate().unwrap();
        assert_eq!(
            open_chunk(&other, 7, &sealed),
            Err(SealError::Unauthentic { index: 7 })
        );
        let mut flipped = sealed.clone();
        flipped[3] ^= 1;
        assert_eq!(
            open_chunk(&key, 7, &flipped),
            Err(SealError::Unauthentic { index: 7 })
        );
        assert_eq!(
            open_chunk(&key, 7, &sealed[..5]),
            Err(SealError::TooShort { index: 7, len: 5 })
        );
    }

    #[test]
    fn empty_plaintext_seals_to_a_bare_tag() {
        let key = ObjectKey::from_bytes([9; KEY_BYTES]);
        let sealed = seal_chunk(&key, 0, b"").unwrap();
        assert_eq!(sealed.len(), TAG_BYTES);
        assert_eq!(open_chunk(&key, 0, &sealed).unwrap(), b"");
    }

    #[test]
    fn same_plaintext_under_fresh_keys_seals_differently() {
        let a = seal_chunk(&ObjectKey::generate().unwrap(), 0, &[0; 64]).unwrap();
        let b = seal_chunk(&ObjectKey::generate().unwrap(), 0, &[0; 64]).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn description_domain_never_opens_as_a_chunk() {
        let key = ObjectKey::generate().unwrap();
        let cipher = key.cipher();
        let mut buf = b"info".to_vec();
        cipher.seal_info(&mut buf).unwrap();
        let mut as_chunk = buf.clone();
        assert!(cipher.open_in_place(0, &mut as_chunk).is_err());
        cipher.open_info(&mut buf).unwrap();
        assert_eq!(buf, b"info");
    }

    #[test]
    fn keys_seal_to_their_recipient_only() {
        let owner = Keypair::generate();
        let executor = Keypair::generate();
        let key = ObjectKey::generate().unwrap();
        let for_owner = seal_key_to(&key, &owner.public().x25519().unwrap()).unwrap();
        assert_eq!(for_owner.len(), SEALED_KEY_BYTES);
        assert_eq!(
            open_sealed_key(&for_owner, &owner.x25519_secret()).unwrap(),
            key
        );
        assert_eq!(
            open_sealed_key(&for_owner, &executor.x25519_secret()),
            Err(SealError::KeyNotForRecipient)
        );
        let for_executor = seal_key_to(&key, &executor.public().x25519().unwrap()).unwrap();
        assert_eq!(
            open_sealed_key(&for_executor, &executor.x25519_secret()).unwrap(),
            key
        );
        assert_eq!(format!("{key:?}"), "ObjectKey(..)");
    }
}
