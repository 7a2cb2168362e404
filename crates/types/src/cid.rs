//! Content ids: CIDv1, raw codec, BLAKE3 multihash. A chunk, a manifest and a
//! module are all named by the BLAKE3 hash of their bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Multicodec of raw bytes.
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of BLAKE3 (32-byte digest).
pub const BLAKE3_CODE: u64 = 0x1e;

/// A CIDv1 whose multihash is BLAKE3-256. Kept as the bare digest (it is
/// `Copy` and cheap to compare); the multiformats text form is produced and
/// parsed by the `cid` crate.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId([u8; 32]);

impl ContentId {
    /// The CID of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentId(*blake3::hash(bytes).as_bytes())
    }

    /// The CID whose digest is `digest` (the caller hashed the bytes).
    pub fn from_digest(digest: [u8; 32]) -> Self {
        ContentId(digest)
    }

    /// The BLAKE3 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `bytes` hash to this CID.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        blake3::hash(bytes).as_bytes() == &self.0
    }

    /// The `cid` crate's value.
    pub fn to_cid(&self) -> cid::Cid {
        // A 32-byte digest always fits the 64-byte multihash.
        #[allow(clippy::expect_used)]
        let mh = multihash::Multihash::<64>::wrap(BLAKE3_CODE, &self.0)
            .expect("32-byte digest fits a multihash");
        cid::Cid::new_v1(RAW_CODEC, mh)
    }

    /// Hex of the digest, for file names and shard directories.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A CID's text could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidError {
    /// Not a CID at all.
    #[error("{text:?} is not a CID: {reason}")]
    Malformed {
        /// The text given.
        text: String,
        /// What the parser said.
        reason: String,
    },
    /// A CID, but not one Peercloud makes.
    #[error("{text:?} is a CID with hash code {code:#x}; Peercloud names content by BLAKE3 (0x1e)")]
    NotBlake3 {
        /// The text given.
        text: String,
        /// The multihash code found.
        code: u64,
    },
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_cid())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({})", &hex::encode(self.0)[..12])
    }
}

impl FromStr for ContentId {
    type Err = CidError;
    fn from_str(text: &str) -> Result<Self, CidError> {
        let cid = cid::Cid::try_from(text).map_err(|e| CidError::Malformed {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
        let mh = cid.hash();
        if mh.code() != BLAKE3_CODE || mh.digest().len() != 32 {
            return Err(CidError::NotBlake3 {
                text: text.to_owned(),
                code: mh.code(),
            });
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(mh.digest());
        Ok(ContentId(digest))
    }
}

impl Serialize for ContentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(d).map(ContentId)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_names_blake3() {
        let id = ContentId::of(b"hello peercloud");
        let text = id.to_string();
        assert!(text.starts_with('b'), "multibase base32: {text}");
        assert_eq!(text.parse::<ContentId>().unwrap(), id);
        assert!(id.matches(b"hello peercloud"));
        assert!(!id.matches(b"hello peercloue"));
        assert_eq!(id.to_cid().hash().code(), BLAKE3_CODE);
    }

    #[test]
    fn refuses_garbage_and_foreign_hashes() {
        assert!(matches!(
            "nope".parse::<ContentId>(),
            Err(CidError::Malformed { .. })
        ));
        let sha = multihash::Multihash::<64>::wrap(0x12, &[0u8; 32]).unwrap();
        let foreign = cid::Cid::new_v1(RAW_CODEC, sha).to_string();
        assert!(matches!(
            foreign.parse::<ContentId>(),
            Err(CidError::NotBlake3 { code: 0x12, .. })
        ));
    }
}
