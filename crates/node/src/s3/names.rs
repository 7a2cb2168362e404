//! The gateway's own records ([`super::S3_DB_FILE`], redb): the S3 name of
//! each bucket a wallet made through the gateway, the ETag an S3 client
//! knows each object by, and the multipart uploads under way.
//!
//! Buckets on the ledger have ids, not names; S3 has names. A name is the
//! wallet's own (two wallets may each have a `photos`). A bucket the gateway
//! did not create is reached by its site label (its id in base32, a valid
//! S3 name). An object's ETag is the MD5 of its bytes (or, for a multipart
//! upload, S3's MD5 of the parts' MD5s and the part count), recorded here by
//! its manifest CID when the gateway writes it: the index does not carry
//! an MD5 (a private bucket's index holders would learn one of the
//! plaintext). An object written some other way is known by an ETag made
//! from its manifest CID.

use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

use peercloud_ledger::BucketId;
use peercloud_types::{AccountId, ContentId, Hash32, Kind, Versioned, decode, encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// A bucket name's key: the owner's account key and the name.
type NameKey = (&'static [u8; 32], &'static str);
/// (owner, name) -> (bucket id, created ms). Raw fixed-width values: a
/// change of layout takes a new table name.
const BUCKETS: TableDefinition<'static, NameKey, ([u8; 32], u64)> =
    TableDefinition::new("s3-buckets");
/// manifest CID digest -> ETag (without quotes).
const ETAGS: TableDefinition<'static, &'static [u8; 32], &'static str> =
    TableDefinition::new("s3-etags");
/// upload id -> encoded [`Upload`].
const UPLOADS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("s3-uploads");

/// A multipart upload under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The wallet that started it (only its keys may add to it).
    pub owner: AccountId,
    /// The bucket's S3 name.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// When it started, ms since the Unix epoch.
    pub created_ms: u64,
}

impl Versioned for Upload {
    const KIND: u8 = Kind::S3Upload as u8;
    const VERSION: u8 = 1;
}

/// The gateway's database failed.
#[derive(Debug, thiserror::Error)]
#[error("S3 gateway records: {0}")]
pub struct NamesError(String);

fn fail(e: impl std::fmt::Display) -> NamesError {
    NamesError(e.to_string())
}

/// The gateway's records.
pub struct Names {
    db: Database,
    /// ETags waiting for their commit (see [`Names::set_etag`]).
    etags: Mutex<EtagBatch>,
    committed: Condvar,
}

/// ETag records on their way to disk: whoever finds no commit running
/// commits everything waiting in one transaction (one fsync for all the
/// puts that finished meanwhile: a commit per put capped a gateway's small
/// puts at the disk's fsync rate).
#[derive(Default)]
struct EtagBatch {
    waiting: Vec<([u8; 32], String)>,
    /// The batch `waiting` will be committed as.
    next: u64,
    /// Batches committed so far (ids below this are done).
    done: u64,
    committing: bool,
    /// Recent batches that failed, and why (their waiters may wake late).
    failed: std::collections::BTreeMap<u64, String>,
}

impl Names {
    /// Opens (or creates) the records at `path`.
    pub fn open(path: &Path) -> Result<Names, NamesError> {
        let db = Database::create(path).map_err(fail)?;
        let txn = db.begin_write().map_err(fail)?;
        txn.open_table(BUCKETS).map_err(fail)?;
        txn.open_table(ETAGS).map_err(fail)?;
        txn.open_table(UPLOADS).map_err(fail)?;
        txn.commit().map_err(fail)?;
        Ok(Names {
            db,
            etags: Mutex::new(EtagBatch::default()),
            committed: Condvar::new(),
        })
    }

    /// The bucket `owner` named `name`, and when it was named.
    pub fn bucket(
        &self,
        owner: &AccountId,
        name: &str,
    ) -> Result<Option<(BucketId, u64)>, NamesError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(BUCKETS).map_err(fail)?;
        let found = table.get((&owner.0.0, name)).map_err(fail)?;
        Ok(found.map(|v| {
            let (id, created_ms) = v.value();
            (BucketId(Hash32(id)), created_ms)
        }))
    }

    /// Every bucket name of `owner`, in name order.
    pub fn buckets(&self, owner: &AccountId) -> Result<Vec<(String, BucketId, u64)>, NamesError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(BUCKETS).map_err(fail)?;
        let key = &owner.0.0;
        let mut out = Vec::new();
        for entry in table.range((key, "")..).map_err(fail)? {
            let (k, v) = entry.map_err(fail)?;
            let (entry_owner, name) = k.value();
            if entry_owner != key {
                break;
            }
            let (id, created_ms) = v.value();
            out.push((name.to_owned(), BucketId(Hash32(id)), created_ms));
        }
        Ok(out)
    }

    /// Names `bucket` `name` for `owner`; `false` (nothing changed) when the
    /// name is taken.
    pub fn name_bucket(
        &self,
        owner: &AccountId,
        name: &str,
        bucket: &BucketId,
        created_ms: u64,
    ) -> Result<bool, NamesError> {
        let txn = self.db.begin_write().map_err(fail)?;
        {
            let mut table = txn.open_table(BUCKETS).map_err(fail)?;
            if table.get((&owner.0.0, name)).map_err(fail)?.is_some() {
                return Ok(false);
            }
            table
                .insert((&owner.0.0, name), (bucket.0.0, created_ms))
                .map_err(fail)?;
        }
        txn.commit().map_err(fail)?;
        Ok(true)
    }

    /// Forgets `owner`'s name `name`.
    pub fn forget_bucket(&self, owner: &AccountId, name: &str) -> Result<(), NamesError> {
        let txn = self.db.begin_write().map_err(fail)?;
        txn.open_table(BUCKETS)
            .map_err(fail)?
            .remove((&owner.0.0, name))
            .map_err(fail)?;
        txn.commit().map_err(fail)
    }

    /// The ETag recorded for the object of this manifest.
    pub fn etag(&self, manifest: &ContentId) -> Result<Option<String>, NamesError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(ETAGS).map_err(fail)?;
        Ok(table
            .get(manifest.digest())
            .map_err(fail)?
            .map(|v| v.value().to_owned()))
    }

    /// Records the ETag of the object of this manifest, durably, by group
    /// commit: blocks until a commit holding it is done (call it from a
    /// blocking thread).
    pub fn set_etag(&self, manifest: &ContentId, etag: &str) -> Result<(), NamesError> {
        let mut batch = self.etags.lock().unwrap_or_else(PoisonError::into_inner);
        batch.waiting.push((*manifest.digest(), etag.to_owned()));
        let mine = batch.next;
        loop {
            if batch.done > mine {
                return match batch.failed.get(&mine) {
                    Some(why) => Err(NamesError(why.clone())),
                    None => Ok(()),
                };
            }
            if !batch.committing {
                // Lead: commit everything waiting, this record included.
                let records = std::mem::take(&mut batch.waiting);
                let id = batch.next;
                batch.next += 1;
                batch.committing = true;
                drop(batch);
                let outcome = self.commit_etags(&records);
                batch = self.etags.lock().unwrap_or_else(PoisonError::into_inner);
                batch.committing = false;
                batch.done = id + 1;
                if let Err(e) = &outcome {
                    batch.failed.insert(id, e.to_string());
                    // Waiters of a batch this old have long woken.
                    batch.failed = batch.failed.split_off(&id.saturating_sub(1024));
                }
                self.committed.notify_all();
                continue;
            }
            batch = self
                .committed
                .wait(batch)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn commit_etags(&self, records: &[([u8; 32], String)]) -> Result<(), NamesError> {
        let txn = self.db.begin_write().map_err(fail)?;
        {
            let mut table = txn.open_table(ETAGS).map_err(fail)?;
            for (digest, etag) in records {
                table.insert(digest, etag.as_str()).map_err(fail)?;
            }
        }
        txn.commit().map_err(fail)
    }

    /// The upload of this id.
    pub fn upload(&self, id: &str) -> Result<Option<Upload>, NamesError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(UPLOADS).map_err(fail)?;
        table
            .get(id)
            .map_err(fail)?
            .map(|v| decode(v.value()).map_err(fail))
            .transpose()
    }

    /// Every upload under way, by id.
    pub fn uploads(&self) -> Result<Vec<(String, Upload)>, NamesError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(UPLOADS).map_err(fail)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(fail)? {
            let (k, v) = entry.map_err(fail)?;
            out.push((k.value().to_owned(), decode(v.value()).map_err(fail)?));
        }
        Ok(out)
    }

    /// Records an upload under way.
    pub fn start_upload(&self, id: &str, upload: &Upload) -> Result<(), NamesError> {
        let txn = self.db.begin_write().map_err(fail)?;
        txn.open_table(UPLOADS)
            .map_err(fail)?
            .insert(id, encode(upload).as_slice())
            .map_err(fail)?;
        txn.commit().map_err(fail)
    }

    /// Forgets an upload (completed or aborted).
    pub fn end_upload(&self, id: &str) -> Result<(), NamesError> {
        let txn = self.db.begin_write().map_err(fail)?;
        txn.open_table(UPLOADS)
            .map_err(fail)?
            .remove(id)
            .map_err(fail)?;
        txn.commit().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::Keypair;

    #[test]
    fn names_are_each_owner_s_own_and_records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s3.redb");
        let (alice, bob) = (
            Keypair::generate().account_id(),
            Keypair::generate().account_id(),
        );
        let (b1, b2) = (BucketId(Hash32::of(b"1")), BucketId(Hash32::of(b"2")));
        {
            let names = Names::open(&path).unwrap();
            assert!(names.name_bucket(&alice, "photos", &b1, 10).unwrap());
            assert!(
                !names.name_bucket(&alice, "photos", &b2, 11).unwrap(),
                "taken"
            );
            assert!(
                names.name_bucket(&bob, "photos", &b2, 12).unwrap(),
                "bob's own"
            );
            assert!(names.name_bucket(&alice, "archive", &b2, 13).unwrap());
            let manifest = ContentId::of(b"manifest");
            names.set_etag(&manifest, "abc-2").unwrap();
            let upload = Upload {
                owner: alice,
                bucket: "photos".into(),
                key: "big.bin".into(),
                created_ms: 5,
            };
            names.start_upload("u1", &upload).unwrap();
        }
        let names = Names::open(&path).unwrap();
        assert_eq!(names.bucket(&alice, "photos").unwrap(), Some((b1, 10)));
        assert_eq!(names.bucket(&bob, "photos").unwrap(), Some((b2, 12)));
        let listed: Vec<String> = names
            .buckets(&alice)
            .unwrap()
            .into_iter()
            .map(|b| b.0)
            .collect();
        assert_eq!(listed, ["archive", "photos"]);
        names.forget_bucket(&alice, "photos").unwrap();
        assert_eq!(names.bucket(&alice, "photos").unwrap(), None);
        assert_eq!(names.bucket(&bob, "photos").unwrap(), Some((b2, 12)));
        assert_eq!(
            names.etag(&ContentId::of(b"manifest")).unwrap().as_deref(),
            Some("abc-2")
        );
        assert_eq!(names.upload("u1").unwrap().unwrap().key, "big.bin");
        assert_eq!(names.uploads().unwrap().len(), 1);
        names.end_upload("u1").unwrap();
        assert!(names.upload("u1").unwrap().is_none());
    }

    #[test]
    fn etags_set_at_once_from_many_threads_are_all_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::open(&dir.path().join("s3.redb")).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8u32 {
                let names = &names;
                scope.spawn(move || {
                    for i in 0..50u32 {
                        let cid = ContentId::of(&[t.to_le_bytes(), i.to_le_bytes()].concat());
                        names.set_etag(&cid, &format!("{t}-{i}")).unwrap();
                    }
                });
            }
        });
        for t in 0..8u32 {
            for i in 0..50u32 {
                let cid = ContentId::of(&[t.to_le_bytes(), i.to_le_bytes()].concat());
                assert_eq!(names.etag(&cid).unwrap(), Some(format!("{t}-{i}")));
            }
        }
    }
}
