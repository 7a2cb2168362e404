//! The one canonical, versioned byte encoding of everything signed or persisted.
//!
//! Layout: `[kind: u8][version: u8][postcard body]`. The kind byte names the type
//! (so a manifest can never be mistaken for a block), the version byte lets a
//! reader keep decoding old records after the format moves on. Postcard is
//! deterministic for a given value; [`decode`] additionally re-encodes what it
//! read and refuses input that is not byte-for-byte the canonical form, so two
//! different byte strings never decode to the same value.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Registry of kind bytes. A kind is never reused for another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A ledger transaction body.
    Tx = 1,
    /// A ledger block.
    Block = 2,
    /// A storage manifest.
    Manifest = 3,
    /// Metadata the chunk store keeps per chunk.
    ChunkMeta = 4,
    /// A provider's offer for a capacity request.
    Offer = 5,
    /// A provider's result for a job.
    JobResult = 6,
    /// A record of the ledger's persisted state (one entry).
    StateEntry = 7,
    /// A network message envelope.
    Message = 8,
    /// A capacity request.
    CapacityRequest = 9,
    /// A compiled-module cache record.
    ModuleCache = 10,
    /// A job spec (its canonical form, hashed into `PostJob`).
    JobSpec = 11,
    /// A chain's genesis: its params and its signed genesis block.
    Genesis = 12,
    /// A provider's answer that it will not take a job.
    Decline = 13,
    /// A bucket owner's signed running usage (bytes stored) of a bucket.
    BucketUsage = 14,
    /// A receiver's signed acknowledgement of bytes a node served it.
    BandwidthReceipt = 15,
    /// A holder's proof of storage: a BLAKE3 verified slice of a chunk.
    AuditProof = 16,
    /// A bucket owner's signed entry of a bucket's object index.
    ObjectEntry = 17,
    /// A node's signed acknowledgement of the repair pieces another node
    /// rebuilt onto it.
    RepairReceipt = 18,
    /// The stored chunks of an object kept in its bucket's index.
    InlineObject = 19,
    /// Several sealed chunks for one holder in one request (a batch put).
    ChunkBatch = 20,
    /// A node's S3 access keys (its `s3.keys` file).
    S3Keys = 21,
    /// A multipart upload under way at a node's S3 gateway.
    S3Upload = 22,
    /// A user's request for capacity over time.
    LeaseRequest = 23,
    /// A node's sealed bid for a lease request.
    LeaseOffer = 24,
    /// A node's observation that a leased space answered in a period.
    LeaseProbe = 25,
    /// A user's signed command for a leased space.
    SpaceCommand = 26,
}

/// Flag OR-ed into the kind byte of a [`crate::Signed`] envelope.
pub const SIGNED_FLAG: u8 = 0x80;

/// A type with a place in the encoding registry.
pub trait Versioned {
    /// The kind byte written first.
    const KIND: u8;
    /// The current format version written second.
    const VERSION: u8;
}

/// Errors met while decoding bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than the two header bytes.
    #[error("encoded record is too short ({len} bytes) to carry a kind and version")]
    TooShort {
        /// Length seen.
        len: usize,
    },
    /// The kind byte names another type.
    #[error("encoded record is of kind {found}, expected kind {expected}")]
    WrongKind {
        /// Kind expected by the caller.
        expected: u8,
        /// Kind found in the bytes.
        found: u8,
    },
    /// The version is not one this build can read.
    #[error("encoded record has version {found}, this build reads version {supported}")]
    UnsupportedVersion {
        /// Version found.
        found: u8,
        /// Version supported.
        supported: u8,
    },
    /// The body does not parse.
    #[error("encoded record body is malformed: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// Bytes left over after the body.
    #[error("encoded record has {extra} trailing bytes")]
    TrailingBytes {
        /// Count of bytes left over.
        extra: usize,
    },
    /// The body parses but is not in canonical form.
    #[error("encoded record is not in canonical form")]
    NonCanonical,
}

/// Encodes `value` in its canonical, versioned form.
pub fn encode<T: Versioned + Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + body_size(value));
    out.extend_from_slice(&[T::KIND, T::VERSION]);
    extend_with_body(value, out)
}

/// Appends the postcard body of `value` (no header) to `out`, in place:
/// room for the whole body is reserved first, so a record carrying a
/// megabyte (a chunk) is written once, not grown by doubling and copied.
pub fn encode_body_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    out.reserve(body_size(value));
    *out = extend_with_body(value, std::mem::take(out));
}

/// Writes `value`'s postcard body after what `out` holds (room reserved).
fn extend_with_body<T: Serialize + ?Sized>(value: &T, out: Vec<u8>) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail: postcard only errors on
    // unsupported serde features (which our types do not use) or full buffers.
    #[allow(clippy::expect_used)]
    postcard::serialize_with_flavor(value, VecTail(out))
        .expect("postcard encoding of plain data is infallible")
}

/// postcard's output appended to a `Vec`, byte strings copied whole
/// (postcard's own `to_extend` pushes them a byte at a time, which made
/// encoding a chunk slower than sealing it).
struct VecTail(Vec<u8>);

impl postcard::ser_flavors::Flavor for VecTail {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// The postcard body's length: a walk that writes nothing (byte strings
/// count in one step).
fn body_size<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(0)
}

/// Decodes bytes produced by [`encode`], checking kind, version and canonicity.
pub fn decode<T: Versioned + Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_borrowed(bytes)
}

/// [`decode`] into a value that may borrow from `bytes` (byte strings
/// taken as slices of the input, not copied): the same checks.
pub fn decode_borrowed<'a, T: Versioned + Serialize + Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<T, DecodeError> {
    let [kind, version, body @ ..] = bytes else {
        return Err(DecodeError::TooShort { len: bytes.len() });
    };
    if *kind != T::KIND {
        return Err(DecodeError::WrongKind {
            expected: T::KIND,
            found: *kind,
        });
    }
    if *version != T::VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: *version,
            supported: T::VERSION,
        });
    }
    let (value, rest): (T, &'a [u8]) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { extra: rest.len() });
    }
    // Re-encoded against the input as it goes, never into a buffer: a
    // message carrying a chunk is a megabyte, and a copy of it per decode
    // showed in the chunk put profile.
    match postcard::serialize_with_flavor(&value, Matches { rest: body }) {
        Ok(true) => Ok(value),
        Ok(false) | Err(_) => Err(DecodeError::NonCanonical),
    }
}

/// A postcard output that compares what is written with `rest` instead of
/// storing it: [`decode`]'s canonicity check. It fails at the first byte
/// that differs and finishes `true` only when the input is used up.
struct Matches<'a> {
    rest: &'a [u8],
}

impl postcard::ser_flavors::Flavor for Matches<'_> {
    type Output = bool;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // A byte string decoded borrowed is the input itself: the same
        // address needs no comparison (a pass over a chunk otherwise).
        match self.rest.split_at_checked(data.len()) {
            Some((head, tail)) if std::ptr::eq(head, data) || head == data => {
                self.rest = tail;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        // One byte at a time is how hashes and keys arrive (serde writes a
        // `[u8; 32]` element by element): compare it as a byte, not as a
        // one-byte slice (a `memcmp` call each, which showed in list decodes).
        match self.rest.split_first() {
            Some((&first, tail)) if first == data => {
                self.rest = tail;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.rest.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Probe {
        a: u64,
        b: String,
    }
    impl Versioned for Probe {
        const KIND: u8 = 0x7e;
        const VERSION: u8 = 3;
    }

    #[test]
    fn round_trip_and_header() {
        let p = Probe {
            a: 300,
            b: "x".into(),
        };
        let bytes = encode(&p);
        assert_eq!(&bytes[..2], &[0x7e, 3]);
        assert_eq!(decode::<Probe>(&bytes).unwrap(), p);
    }

    #[test]
    fn rejects_wrong_kind_version_trailing_and_overlong() {
        let mut bytes = encode(&Probe {
            a: 1,
            b: String::new(),
        });
        let mut wrong = bytes.clone();
        wrong[0] = 1;
        assert!(matches!(
            decode::<Probe>(&wrong),
            Err(DecodeError::WrongKind { .. })
        ));
        wrong = bytes.clone();
        wrong[1] = 9;
        assert!(matches!(
            decode::<Probe>(&wrong),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        bytes.push(0);
        assert_eq!(
            decode::<Probe>(&bytes),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        // 1 as an overlong varint (0x81 0x00) is the same number in a second form.
        let overlong = vec![0x7e, 3, 0x81, 0x00, 0x00];
        assert_eq!(decode::<Probe>(&overlong), Err(DecodeError::NonCanonical));
        // The canonical bytes of a value whose re-encoding is long still pass.
        let long = Probe {
            a: u64::MAX,
            b: "y".repeat(70_000),
        };
        assert_eq!(decode::<Probe>(&encode(&long)).unwrap(), long);
        assert_eq!(
            decode::<Probe>(&[0x7e]),
            Err(DecodeError::TooShort { len: 1 })
        );
    }

    proptest::proptest! {
        #[test]
        fn any_value_round_trips(a: u64, b in ".{0,40}") {
            let p = Probe { a, b };
            proptest::prop_assert_eq!(decode::<Probe>(&encode(&p)).unwrap(), p);
        }

        #[test]
        fn corrupted_bytes_never_decode_to_the_same_value(a: u64, b in ".{0,20}", at: usize, flip in 1u8..) {
            let p = Probe { a, b };
            let mut bytes = encode(&p);
            let i = at % bytes.len();
            bytes[i] ^= flip;
            if let Ok(q) = decode::<Probe>(&bytes) {
                proptest::prop_assert_ne!(q, p);
            }
        }
    }
}
