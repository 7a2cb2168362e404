//! `Signed<T>`: a body, the key that signed it and the signature, over the
//! body's canonical encoding with a domain tag so a signature on one kind of
//! record can never be replayed as another.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::encoding::{SIGNED_FLAG, Versioned, encode_body_into};
use crate::hash::Hash32;
use crate::keys::{Keypair, PublicKey};

/// Prefix of every signed message; the kind and version bytes follow it.
const DOMAIN: &[u8] = b"peercloud-signed-v1";

/// A signature did not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad signature by {signer:?} on a record of kind {kind}")]
pub struct SignatureError {
    /// Who claims to have signed.
    pub signer: PublicKey,
    /// The kind byte of the record.
    pub kind: u8,
}

/// A record and its ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// What was signed.
    pub body: T,
    /// Who signed it.
    pub signer: PublicKey,
    /// The signature over [`Signed::signing_message`].
    #[serde(with = "sig_bytes")]
    pub signature: [u8; 64],
}

impl<T: Versioned> Versioned for Signed<T> {
    const KIND: u8 = T::KIND | SIGNED_FLAG;
    const VERSION: u8 = T::VERSION;
}

impl<T: Versioned + Serialize> Signed<T> {
    /// Signs `body` with `key`.
    pub fn new(body: T, key: &Keypair) -> Self {
        let message = message_for(&body);
        Signed {
            signature: key.sign(&message),
            signer: key.public(),
            body,
        }
    }

    /// The exact bytes the signature covers.
    pub fn signing_message(&self) -> Vec<u8> {
        message_for(&self.body)
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        if self.signer.verify(&self.signing_message(), &self.signature) {
            Ok(())
        } else {
            Err(SignatureError {
                signer: self.signer,
                kind: T::KIND,
            })
        }
    }

    /// BLAKE3 of the whole envelope's canonical encoding: the record's id.
    pub fn hash(&self) -> Hash32
    where
        T: DeserializeOwned,
    {
        Hash32::of(&crate::encoding::encode(self))
    }
}

/// Signatures checked together in one ed25519 batch verification (a
/// fraction of the cost of checking each: one multiscalar multiplication,
/// each signer's key decoded once). Undecodable and weak (small-order) keys
/// are bad outright; if the batch fails, each record is checked alone
/// (strictly) to name the bad ones.
#[derive(Default)]
pub struct SignatureBatch {
    keys: BTreeMap<PublicKey, Option<VerifyingKey>>,
    pending: Vec<Pending>,
    bad: Vec<usize>,
    count: usize,
}

impl std::fmt::Debug for SignatureBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureBatch")
            .field("records", &self.count)
            .field("bad_keys", &self.bad.len())
            .finish_non_exhaustive()
    }
}

struct Pending {
    index: usize,
    message: Vec<u8>,
    signature: Signature,
    key: VerifyingKey,
}

impl SignatureBatch {
    /// Adds `signed`; its index in the batch (0, 1, … in the order added).
    pub fn push<T: Versioned + Serialize>(&mut self, signed: &Signed<T>) -> usize {
        let index = self.count;
        self.count += 1;
        let key = *self
            .keys
            .entry(signed.signer)
            .or_insert_with(|| signed.signer.verifying_key().filter(|k| !k.is_weak()));
        match key {
            Some(key) => self.pending.push(Pending {
                index,
                message: signed.signing_message(),
                signature: Signature::from_bytes(&signed.signature),
                key,
            }),
            None => self.bad.push(index),
        }
        index
    }

    /// The indices of the records whose signature is bad, in order (empty
    /// when every one is good).
    pub fn bad(mut self) -> Vec<usize> {
        if self.pending.is_empty() {
            return self.bad;
        }
        let messages: Vec<&[u8]> = self.pending.iter().map(|p| p.message.as_slice()).collect();
        let signatures: Vec<Signature> = self.pending.iter().map(|p| p.signature).collect();
        let keys: Vec<VerifyingKey> = self.pending.iter().map(|p| p.key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_err() {
            self.bad.extend(
                self.pending
                    .iter()
                    .filter(|p| p.key.verify_strict(&p.message, &p.signature).is_err())
                    .map(|p| p.index),
            );
            self.bad.sort_unstable();
        }
        self.bad
    }
}

fn message_for<T: Versioned + Serialize>(body: &T) -> Vec<u8> {
    let mut message = Vec::with_capacity(64);
    message.extend_from_slice(DOMAIN);
    message.push(T::KIND);
    message.push(T::VERSION);
    encode_body_into(body, &mut message);
    message
}

mod sig_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(sig))
        } else {
            s.serialize_bytes(sig)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes: Vec<u8> = if d.is_human_readable() {
            hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)?
        } else {
            serde_bytes_vec(d)?
        };
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a signature is 64 bytes"))
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{decode, encode};

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Note(String);
    impl Versioned for Note {
        const KIND: u8 = 0x70;
        const VERSION: u8 = 1;
    }

    #[test]
    fn a_batch_names_exactly_the_bad_signatures() {
        let (a, b) = (Keypair::generate(), Keypair::generate());
        let good: Vec<Signed<Note>> = (0..5)
            .map(|i| Signed::new(Note(format!("n{i}")), if i % 2 == 0 { &a } else { &b }))
            .collect();
        let mut batch = SignatureBatch::default();
        good.iter().for_each(|s| {
            batch.push(s);
        });
        assert!(batch.bad().is_empty());
        let mut forged = good.clone();
        forged[1].body = Note("changed".into());
        forged[4].signer = a.public();
        forged[4].body = Note("n4 by b".into());
        let mut weak = good[2].clone();
        weak.signer = PublicKey([0; 32]);
        forged[2] = weak;
        let mut batch = SignatureBatch::default();
        let indices: Vec<usize> = forged.iter().map(|s| batch.push(s)).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4]);
        assert_eq!(batch.bad(), vec![1, 2, 4]);
        assert!(SignatureBatch::default().bad().is_empty());
    }

    #[test]
    fn signed_round_trips_and_tampering_is_caught() {
        let key = Keypair::generate();
        let signed = Signed::new(Note("pay 5".into()), &key);
        signed.verify().unwrap();
        let bytes = encode(&signed);
        assert_eq!(bytes[0], 0x70 | SIGNED_FLAG);
        let back: Signed<Note> = decode(&bytes).unwrap();
        back.verify().unwrap();
        let mut forged = back.clone();
        forged.body = Note("pay 500".into());
        assert_eq!(
            forged.verify(),
            Err(SignatureError {
                signer: key.public(),
                kind: 0x70
            })
        );
        let mut other_signer = back;
        other_signer.signer = Keypair::generate().public();
        assert!(other_signer.verify().is_err());
    }

    #[test]
    fn json_form_is_readable() {
        let signed = Signed::new(Note("x".into()), &Keypair::from_seed(&[1; 32]));
        let json = serde_json::to_string(&signed).unwrap();
        let back: Signed<Note> = serde_json::from_str(&json).unwrap();
        back.verify().unwrap();
    }
}
