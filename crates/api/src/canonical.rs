//! Byte values inside JSON bodies: a signed record as the hex of its
//! canonical encoding, and opaque bytes (sealed keys) as hex.

use peercloud_types::encoding::{Versioned, decode, encode};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value carried as the hex of its canonical encoding (`[kind][version]
/// [postcard]`): what was signed is exactly what arrives, and a body that is
/// not the canonical form of the expected kind is refused while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical<T>(pub T);

impl<T: Versioned + Serialize> Serialize for Canonical<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(encode(&self.0)))
    }
}

impl<'de, T: Versioned + for<'a> Deserialize<'a> + Serialize> Deserialize<'de> for Canonical<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes =
            hex::decode(text.trim()).map_err(|e| D::Error::custom(format!("not hex: {e}")))?;
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
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.trim())
            .map(HexBytes)
            .map_err(|e| D::Error::custom(format!("not hex: {e}")))
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
    }
}
