//! Byte values inside JSON bodies: a signed record as the hex of its
//! canonical encoding, and opaque bytes (sealed keys) as hex.
//!
//! Hex is `data-encoding`'s table-driven codec (lower case out, either case
//! in), read straight from the JSON text without copying it first: a list
//! of 1,000 index entries is 1,000 of these each way.

use std::fmt;

use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use peercloud_types::encoding::{Versioned, decode, encode};
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Reads a JSON string of hex into bytes, borrowing the text.
struct HexVisitor;

impl Visitor<'_> for HexVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string of hex")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        HEXLOWER_PERMISSIVE
            .decode(text.trim().as_bytes())
            .map_err(|e| E::custom(format!("not hex: {e}")))
    }
}

/// A value carried as the hex of its canonical encoding (`[kind][version]
/// [postcard]`): what was signed is exactly what arrives, and a body that is
/// not the canonical form of the expected kind is refused while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical<T>(pub T);

impl<T: Versioned + Serialize> Serialize for Canonical<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&HEXLOWER.encode(&encode(&self.0)))
    }
}

impl<'de, T: Versioned + for<'a> Deserialize<'a> + Serialize> Deserialize<'de> for Canonical<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = d.deserialize_str(HexVisitor)?;
        decode(&bytes)
            .map(Canonical)
            .map_err(|e| D::Error::custom(format!("does not decode: {e}")))
    }
}

/// Opaque bytes carried as hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&HEXLOWER.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(HexVisitor).map(HexBytes)
    }
}

#[cfg(test)]
mod tests {
    use peercloud_types::{JobId, Keypair, NodeId, Offer, Signed};

    use super::*;

    fn offer() -> Signed<Offer> {
        let key = Keypair::generate();
        Signed::new(
            Offer {
                job: JobId::derive(&key.account_id(), 1),
                node: NodeId(key.public()),
                price: peercloud_types::Amount::from_base_units(7),
                valid_until_ms: 9,
            },
            &key,
        )
    }

    #[test]
    fn a_signed_record_round_trips_through_json_as_hex() {
        let value = Canonical(offer());
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, format!("\"{}\"", hex::encode(encode(&value.0))));
        let back: Canonical<Signed<Offer>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn bad_hex_and_foreign_bytes_are_refused_by_name() {
        let err = serde_json::from_str::<Canonical<Signed<Offer>>>("\"zz\"").unwrap_err();
        assert!(err.to_string().contains("not hex"), "{err}");
        let err = serde_json::from_str::<Canonical<Signed<Offer>>>("\"0001\"").unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
        let err = serde_json::from_str::<HexBytes>("\"abc\"").unwrap_err();
        assert!(err.to_string().contains("not hex"), "{err}");
        let err = serde_json::from_str::<HexBytes>("7").unwrap_err();
        assert!(err.to_string().contains("a string of hex"), "{err}");
    }

    #[test]
    fn hex_reads_either_case_and_writes_lower_case() {
        let bytes: HexBytes = serde_json::from_str("\" 0aFf \"").unwrap();
        assert_eq!(bytes, HexBytes(vec![0x0a, 0xff]));
        assert_eq!(serde_json::to_string(&bytes).unwrap(), "\"0aff\"");
        // From a reader too (serde_json hands the visitor a scratch copy).
        let read: HexBytes = serde_json::from_reader(&b"\"0aff\""[..]).unwrap();
        assert_eq!(read, bytes);
    }
}
