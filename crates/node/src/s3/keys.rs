//! S3 credentials: the access keys a user creates with `peercloud s3 key
//! create`, kept in the node's data directory ([`S3_KEYS_FILE`], mode
//! 0600, refused when group or others may read it).
//!
//! A key acts as one wallet: the gateway seals, signs and pays with that
//! wallet's key for whoever signs requests with the secret (SigV4, checked
//! by s3s). A new bucket goes on the key's cluster with the key's deposit.
//! The file is one canonical, versioned record; a write replaces it
//! atomically (temp file, fsync, rename, directory fsync).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use peercloud_ledger::ClusterId;
use peercloud_types::{Amount, DecodeError, Keypair, Kind, Versioned, decode, encode};
use serde::{Deserialize, Serialize};

/// The credentials file in a node's data directory.
pub const S3_KEYS_FILE: &str = "s3.keys";

/// Characters of an access key id (AWS uses 20).
const ACCESS_KEY_CHARS: usize = 20;
/// Random bytes of a secret: 30, 40 characters of base64 (as AWS's).
const SECRET_BYTES: usize = 30;

/// One access key and what it acts as.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Key {
    /// The access key id clients send (`PC` and 18 base32 characters).
    pub access_key: String,
    /// The secret clients sign with.
    pub secret_key: String,
    /// The seed of the wallet the key acts as.
    pub wallet_seed: [u8; 32],
    /// Where buckets created through the key go.
    pub cluster: ClusterId,
    /// What each bucket created through the key is funded with.
    pub deposit: Amount,
}

impl std::fmt::Debug for S3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Key")
            .field("access_key", &self.access_key)
            .field("wallet", &self.wallet().account_id())
            .field("cluster", &self.cluster)
            .field("deposit", &self.deposit)
            .finish_non_exhaustive()
    }
}

impl S3Key {
    /// A new key acting as `wallet`: a random id and secret.
    pub fn generate(
        wallet: &Keypair,
        cluster: ClusterId,
        deposit: Amount,
    ) -> Result<S3Key, KeysError> {
        let mut id = [0u8; ACCESS_KEY_CHARS];
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut id).map_err(|e| KeysError::Random(e.to_string()))?;
        getrandom::fill(&mut secret).map_err(|e| KeysError::Random(e.to_string()))?;
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let access_key = "PC"
            .chars()
            .chain(
                id[2..]
                    .iter()
                    .map(|b| ALPHABET[usize::from(b % 32)] as char),
            )
            .collect();
        Ok(S3Key {
            access_key,
            secret_key: data_encoding::BASE64URL_NOPAD.encode(&secret),
            wallet_seed: wallet.seed(),
            cluster,
            deposit,
        })
    }

    /// The wallet the key acts as.
    pub fn wallet(&self) -> Keypair {
        Keypair::from_seed(&self.wallet_seed)
    }
}

/// Every access key of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Keys {
    /// The keys, in the order they were created.
    pub keys: Vec<S3Key>,
}

impl Versioned for S3Keys {
    const KIND: u8 = Kind::S3Keys as u8;
    const VERSION: u8 = 1;
}

/// The credentials file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error("{path} is open to group or others (mode {mode:o}): chmod 600 it")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a credentials record.
    #[error("{path} is not an S3 credentials file: {source}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        source: DecodeError,
    },
    /// No randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

impl S3Keys {
    /// The keys in `path`; none when there is no file.
    pub fn load(path: &Path) -> Result<S3Keys, KeysError> {
        let io = |source| KeysError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(S3Keys::default()),
            Err(e) => return Err(io(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeysError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        decode(&bytes).map_err(|source| KeysError::Malformed {
            path: path.to_owned(),
            source,
        })
    }

    /// Replaces `path` with these keys, mode 0600, atomically and durably.
    pub fn save(&self, path: &Path) -> Result<(), KeysError> {
        let temp = path.with_extension("keys.tmp");
        let io = |at: &Path| {
            let at = at.to_owned();
            move |source| KeysError::Io { path: at, source }
        };
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io(&temp))?;
        file.write_all(&encode(self)).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        std::fs::rename(&temp, path).map_err(io(path))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }

    /// The key with this id.
    pub fn find(&self, access_key: &str) -> Option<&S3Key> {
        self.keys.iter().find(|k| k.access_key == access_key)
    }
}

/// The node's keys as the gateway sees them: read again whenever the file
/// changes, so a key created or deleted by the CLI counts at once.
#[derive(Debug)]
pub struct KeyRing {
    path: PathBuf,
    loaded: Mutex<(Option<SystemTime>, S3Keys)>,
}

impl KeyRing {
    /// The keys of the file at `path`.
    pub fn new(path: PathBuf) -> KeyRing {
        KeyRing {
            path,
            loaded: Mutex::new((None, S3Keys::default())),
        }
    }

    /// The key with this id, as the file holds it now.
    pub fn find(&self, access_key: &str) -> Result<Option<S3Key>, KeysError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.0 != modified || modified.is_none() {
            *loaded = (modified, S3Keys::load(&self.path)?);
        }
        Ok(loaded.1.find(access_key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Hash32;

    #[test]
    fn keys_round_trip_through_a_private_file_and_an_open_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(S3_KEYS_FILE);
        assert_eq!(S3Keys::load(&path).unwrap(), S3Keys::default());
        let wallet = Keypair::generate();
        let cluster = ClusterId(Hash32::of(b"cluster"));
        let key = S3Key::generate(&wallet, cluster, Amount::from_base_units(5)).unwrap();
        assert_eq!(key.access_key.len(), ACCESS_KEY_CHARS);
        assert!(key.access_key.starts_with("PC"));
        assert_eq!(key.secret_key.len(), 40);
        assert_eq!(key.wallet().account_id(), wallet.account_id());
        assert!(
            !format!("{key:?}").contains(&key.secret_key),
            "Debug hides the secret"
        );
        let keys = S3Keys {
            keys: vec![key.clone()],
        };
        keys.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(S3Keys::load(&path).unwrap(), keys);
        let ring = KeyRing::new(path.clone());
        assert_eq!(ring.find(&key.access_key).unwrap(), Some(key.clone()));
        assert_eq!(ring.find("PCNOSUCHKEY").unwrap(), None);
        // A second key written later is seen without a restart.
        let other = S3Key::generate(&wallet, cluster, Amount::from_base_units(5)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        S3Keys {
            keys: vec![key, other.clone()],
        }
        .save(&path)
        .unwrap();
        assert_eq!(ring.find(&other.access_key).unwrap(), Some(other));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            S3Keys::load(&path),
            Err(KeysError::TooOpen { .. })
        ));
        std::fs::write(&path, b"not a record").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            S3Keys::load(&path),
            Err(KeysError::Malformed { .. })
        ));
    }
}
