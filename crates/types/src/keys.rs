//! Account and node identities: ed25519 keys, their self-checking text form and
//! the key files that hold secrets.
//!
//! An id prints as bech32m (`pc1…` for accounts, `pcn1…` for nodes): a typo is
//! caught by the checksum instead of sending tokens to a stranger. Every ed25519
//! key also yields an X25519 key (the birational map used by libsodium), which
//! is what objects' keys are wrapped and sealed to.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bech32::{Bech32m, Hrp};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text prefix of account ids.
pub const ACCOUNT_HRP: &str = "pc";
/// Text prefix of node ids.
pub const NODE_HRP: &str = "pcn";
/// First line of a key file; names the format and its version.
const KEY_FILE_HEADER: &str = "peercloud-secret-key v2";
/// The first line of a key file written before the account line was added.
const KEY_FILE_HEADER_V1: &str = "peercloud-secret-key v1";

/// Raw ed25519 public key bytes. Accounts and nodes are both public keys;
/// [`AccountId`] and [`NodeId`] give them distinct types and text forms.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Checks `signature` over `message` under this key (strict: rejects
    /// small-order keys and malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// The dalek verifying key, if these bytes are a valid curve point.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }

    /// Whether a key could ever sign: a valid curve point of full order. The
    /// all-zero bytes, the identity and other small-order points decode but
    /// no one holds a secret for them; bytes off the curve do not decode.
    pub fn is_usable(&self) -> bool {
        self.verifying_key().is_some_and(|key| !key.is_weak())
    }

    /// The X25519 public key that objects and job keys are sealed to.
    pub fn x25519(&self) -> Option<crypto_box::PublicKey> {
        let key = self.verifying_key()?;
        Some(crypto_box::PublicKey::from(key.to_montgomery().to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &hex::encode(self.0)[..12])
    }
}

/// Why an id's text form was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Not bech32m, or the checksum does not match (a typo).
    #[error("{text:?} is not a valid id: {reason}")]
    Malformed {
        /// The text given.
        text: String,
        /// What the decoder said.
        reason: String,
    },
    /// A valid string of the other kind (a node id where an account was wanted).
    #[error("{text:?} has prefix {found:?}, expected {expected:?}")]
    WrongPrefix {
        /// The text given.
        text: String,
        /// Prefix wanted.
        expected: &'static str,
        /// Prefix found.
        found: String,
    },
    /// The payload is not 32 bytes.
    #[error("{text:?} carries {len} bytes, an id carries 32")]
    WrongLength {
        /// The text given.
        text: String,
        /// Payload length.
        len: usize,
    },
}

macro_rules! id_type {
    ($name:ident, $hrp:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub PublicKey);

        impl $name {
            /// The underlying public key.
            pub fn key(&self) -> &PublicKey {
                &self.0
            }
        }

        impl From<PublicKey> for $name {
            fn from(k: PublicKey) -> Self {
                $name(k)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode_id($hrp, &self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let text = self.to_string();
                write!(f, "{}", &text[..text.len().min(16)])
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                decode_id($hrp, s).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() { s.collect_str(self) } else { self.0.serialize(s) }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    PublicKey::deserialize(d).map($name)
                }
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!($doc, " Printed as bech32m with prefix `", $hrp, "1`."),
                    "pattern": concat!("^", $hrp, "1[02-9ac-hj-np-z]{58}$"),
                })
            }
        }
    };
}

id_type!(
    AccountId,
    "pc",
    "An account: an ed25519 public key that holds tokens and signs."
);
id_type!(
    NodeId,
    "pcn",
    "A node: the ed25519 public key that is its network identity."
);

fn encode_id(hrp: &str, key: &PublicKey) -> String {
    // The HRPs are compile-time constants known to be valid, and 32 bytes are far
    // below bech32m's length limit, so neither step can fail.
    #[allow(clippy::expect_used)]
    let hrp = Hrp::parse(hrp).expect("static hrp is valid");
    #[allow(clippy::expect_used)]
    bech32::encode::<Bech32m>(hrp, &key.0).expect("32 bytes fit in bech32m")
}

fn decode_id(expected: &'static str, text: &str) -> Result<PublicKey, IdError> {
    let checked =
        bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(text).map_err(|e| {
            IdError::Malformed {
                text: text.to_owned(),
                reason: e.to_string(),
            }
        })?;
    let found = checked.hrp().to_string();
    if found != expected {
        return Err(IdError::WrongPrefix {
            text: text.to_owned(),
            expected,
            found,
        });
    }
    let bytes: Vec<u8> = checked.byte_iter().collect();
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| IdError::WrongLength {
            text: text.to_owned(),
            len: bytes.len(),
        })?;
    Ok(PublicKey(arr))
}

/// An ed25519 key pair. Holds a secret: never logged, never serialised
/// except by [`Keypair::save`].
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair {
            signing: SigningKey::from_bytes(&self.signing.to_bytes()),
        }
    }
}

impl Keypair {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        // The OS random source failing is unrecoverable for a key generator.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut seed).expect("operating system random source is available");
        Self::from_seed(&seed)
    }

    /// The key pair for a 32-byte seed (deterministic; tests and devnets).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Keypair {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte secret seed, for deriving this key's identity in another
    /// library (the node's libp2p identity is the same ed25519 key).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// This key as an account id.
    pub fn account_id(&self) -> AccountId {
        AccountId(self.public())
    }

    /// This key as a node id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.public())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The X25519 secret that opens what was sealed to [`PublicKey::x25519`].
    pub fn x25519_secret(&self) -> crypto_box::SecretKey {
        crypto_box::SecretKey::from(self.signing.to_scalar_bytes())
    }

    /// Writes the secret to `path` with mode 0600. Refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        // The account line (bech32m, with its own checksum) lets a load
        // catch an edited seed instead of silently becoming another account.
        let text = format!(
            "{KEY_FILE_HEADER}\n{}\naccount {}\n",
            hex::encode(self.signing.to_bytes()),
            self.account_id()
        );
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }

    /// Reads a key file written by [`Keypair::save`]; refuses one that group
    /// or others may read or write.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let malformed = |reason: &str| KeyFileError::Malformed {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let mut lines = text.lines();
        let version = match lines.next() {
            Some(KEY_FILE_HEADER) => 2,
            Some(KEY_FILE_HEADER_V1) => 1,
            _ => return Err(malformed("first line is not `peercloud-secret-key v2`")),
        };
        let mut seed = [0u8; 32];
        hex::decode_to_slice(lines.next().unwrap_or("").trim(), &mut seed)
            .map_err(|_| malformed("second line is not 64 hex digits"))?;
        let key = Self::from_seed(&seed);
        if version == 2 {
            let named = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("account "))
                .ok_or_else(|| malformed("third line is not `account pc1…`"))?;
            if named.trim() != key.account_id().to_string() {
                return Err(malformed(
                    "the secret does not belong to the account the file names: \
                     the file was edited or damaged",
                ));
            }
        }
        Ok(key)
    }
}

/// A key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Group or others have access: the secret may already be exposed.
    #[error(
        "key file {} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
        path.display()
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not a key file.
    #[error("key file {} is malformed: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_text_round_trips_and_catches_typos() {
        let key = Keypair::from_seed(&[7; 32]);
        let id = key.account_id();
        let text = id.to_string();
        assert!(text.starts_with("pc1"), "{text}");
        assert_eq!(text.parse::<AccountId>().unwrap(), id);
        // Change one character: the checksum must catch it.
        let mut typo: Vec<char> = text.chars().collect();
        let i = typo.len() - 5;
        typo[i] = if typo[i] == 'q' { 'p' } else { 'q' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            typo.parse::<AccountId>(),
            Err(IdError::Malformed { .. })
        ));
        // A node id is not an account id.
        let node = key.node_id().to_string();
        assert!(node.starts_with("pcn1"));
        assert!(matches!(
            node.parse::<AccountId>(),
            Err(IdError::WrongPrefix { .. })
        ));
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let key = Keypair::generate();
        let sig = key.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig));
        assert!(!key.public().verify(b"hellp", &sig));
        assert!(!Keypair::generate().public().verify(b"hello", &sig));
    }

    #[test]
    fn x25519_keys_agree() {
        let a = Keypair::generate();
        let b = Keypair::generate();
        let ab = crypto_box::SalsaBox::new(&b.public().x25519().unwrap(), &a.x25519_secret());
        let ba = crypto_box::SalsaBox::new(&a.public().x25519().unwrap(), &b.x25519_secret());
        use crypto_box::aead::{Aead, AeadCore, OsRng};
        let nonce = crypto_box::SalsaBox::generate_nonce(&mut OsRng);
        let sealed = ab.encrypt(&nonce, &b"secret"[..]).unwrap();
        assert_eq!(ba.decrypt(&nonce, &sealed[..]).unwrap(), b"secret");
    }

    #[test]
    fn key_file_round_trips_and_loose_modes_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.key");
        let key = Keypair::generate();
        key.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Keypair::load(&path).unwrap().public(), key.public());
        assert!(
            matches!(key.save(&path), Err(KeyFileError::Io { .. })),
            "no overwrite"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keypair::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::TooOpen { mode: 0o644, .. }));
        assert!(err.to_string().contains("chmod 600"));
        std::fs::write(dir.path().join("bad.key"), "nope").unwrap();
        std::fs::set_permissions(
            dir.path().join("bad.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            Keypair::load(&dir.path().join("bad.key")),
            Err(KeyFileError::Malformed { .. })
        ));
    }

    #[test]
    fn an_edited_key_file_is_refused_not_read_as_another_account() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.key");
        let key = Keypair::from_seed(&[3; 32]);
        key.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("account {}", key.account_id())));
        // One hex digit of the secret changed: a valid seed of another account.
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let flipped = if lines[1].starts_with('0') { "1" } else { "0" };
        lines[1].replace_range(0..1, flipped);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Keypair::load(&path).unwrap_err();
        assert!(err.to_string().contains("edited or damaged"), "{err}");
        // A file written before the account line still loads.
        let old = dir.path().join("old.key");
        let seed = hex::encode([3u8; 32]);
        std::fs::write(&old, format!("peercloud-secret-key v1\n{seed}\n")).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Keypair::load(&old).unwrap().public(), key.public());
    }

    #[test]
    fn only_full_order_curve_points_are_usable_keys() {
        assert!(Keypair::generate().public().is_usable());
        assert!(!PublicKey([0; 32]).is_usable(), "all-zero bytes");
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!PublicKey(identity).is_usable(), "the identity point");
        // y = 2 is not the y of any curve point.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(PublicKey(off_curve).verifying_key().is_none());
        assert!(!PublicKey(off_curve).is_usable());
    }
}
