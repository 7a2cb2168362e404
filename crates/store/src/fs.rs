//! [`FsChunkStore`]: chunks as files in a sharded directory tree, metadata in redb.
//!
//! Layout under the store's root:
//!
//! ```text
//! root/
//!   meta.redb               cid digest -> ChunkMeta (versioned); running totals;
//!                           cid digest -> {node key} (the chunk's putters: raw
//!                           32-byte ed25519 keys, a set in a multimap table)
//!   chunks/ab/cd/abcd…ef    one file per chunk, named by the hex of its BLAKE3 digest,
//!                           sharded by the first two bytes (65 536 leaf directories
//!                           keep every directory small even at tens of millions of chunks)
//! ```
//!
//! Durability protocol of [`ChunkStore::put_many`] (a batch shares the costly steps):
//!
//! 1. write every new chunk to a temp file `.<hex>.<pid>.<n>.tmp` in its final
//!    directory (same file system, so the rename below is atomic);
//! 2. fsync every temp file, each started on a helper thread as soon as it is
//!    written (up to `FSYNCS_IN_FLIGHT_MAX` at once: concurrent flushes share
//!    journal commits and keep the device's queue full);
//! 3. under the commit lock: rename each into place, fsync every directory that
//!    gained an entry (and the parents of directories created), again
//!    concurrently, then commit the metadata of the whole batch in one redb
//!    transaction (itself fsync'd).
//!
//! Invariant: **metadata present ⇒ the file is complete and durable.** A crash
//! anywhere leaves at worst a temp file (swept by [`FsChunkStore::open`]) or a
//! complete chunk file without metadata (an orphan; rewritten by the next put
//! of that chunk). Deletes remove the metadata first, then the file, for the
//! same reason. Something outside the store can still remove or cut a file
//! (an operator, a failing disk): a put of a chunk whose metadata is present
//! checks that its file exists at the chunk's length (one `stat`) and writes
//! it again when not, so a re-upload repairs it. On any error the batch removes its temp files and any file it
//! renamed but did not commit, so no partial chunk is left behind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use peercloud_types::{ContentId, NodeId, PublicKey, decode, encode};
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

use crate::error::StoreError;
use crate::store::{
    ChunkInventory, ChunkMeta, ChunkPutters, ChunkStore, LIST_PAGE_MAX, Released, StoreUsage,
    VerifiedChunk, verify_read,
};

/// Directory of chunk files under the root.
const CHUNKS_DIR: &str = "chunks";
/// The metadata database under the root.
const DB_FILE: &str = "meta.redb";
/// Ending of temp files (they also start with a dot, which chunk files never do).
const TEMP_SUFFIX: &str = ".tmp";
/// cid digest -> encoded [`ChunkMeta`].
const CHUNKS_TABLE: TableDefinition<'static, &'static [u8; 32], &'static [u8]> =
    TableDefinition::new("chunks");
/// Running totals, updated in the same transaction as the chunks table.
const TOTALS_TABLE: TableDefinition<'static, &'static str, u64> = TableDefinition::new("totals");
/// cid digest -> the ed25519 keys of the nodes that put the chunk. Raw fixed-width
/// keys need no encoding version; a change of layout takes a new table name.
const PUTTERS_TABLE: MultimapTableDefinition<'static, &'static [u8; 32], &'static [u8; 32]> =
    MultimapTableDefinition::new("putters");
/// Attempts a put makes when a delete of the same chunk keeps removing it
/// between the put's look and its commit: a few, since each needs a delete
/// landing in a window of milliseconds.
const PUT_ATTEMPTS_MAX: usize = 4;
/// Key of the chunk count in [`TOTALS_TABLE`].
const TOTAL_CHUNKS: &str = "chunks";
/// Key of the byte count in [`TOTALS_TABLE`].
const TOTAL_BYTES: &str = "bytes";

mod direct;
mod durable;

use direct::ChunkWriter;
use durable::{Batch, Pending, Syncer};

/// Makes temp file names unique among the threads of this process (the pid
/// separates processes, though redb's lock already keeps a second one out).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A chunk store on the local file system. See the module documentation for
/// the layout and the durability protocol.
pub struct FsChunkStore {
    root: PathBuf,
    chunks_dir: PathBuf,
    db_path: PathBuf,
    db: Database,
    /// Serialises the rename + commit step of puts with deletes, so a delete
    /// cannot slip between a put's rename and its metadata commit.
    commit_lock: Mutex<()>,
    /// Writes new chunk files (around the page cache where it can).
    writer: ChunkWriter,
}

impl std::fmt::Debug for FsChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsChunkStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl FsChunkStore {
    /// Opens the store at `root`, creating it if needed, and removes temp files
    /// left by a crash. Only one process may open a store at a time (redb locks
    /// the database file).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref().to_path_buf();
        let chunks_dir = root.join(CHUNKS_DIR);
        fs::create_dir_all(&chunks_dir)
            .map_err(|e| StoreError::io("creating directory", &chunks_dir, e))?;
        let db_path = root.join(DB_FILE);
        let db = Database::create(&db_path).map_err(|e| StoreError::metadata(&db_path, e))?;
        let store = FsChunkStore {
            root,
            chunks_dir,
            db_path,
            db,
            commit_lock: Mutex::new(()),
            writer: ChunkWriter::new(),
        };
        let txn = store.db.begin_write().map_err(|e| store.meta_error(e))?;
        txn.open_table(CHUNKS_TABLE)
            .map_err(|e| store.meta_error(e))?;
        txn.open_table(TOTALS_TABLE)
            .map_err(|e| store.meta_error(e))?;
        txn.open_multimap_table(PUTTERS_TABLE)
            .map_err(|e| store.meta_error(e))?;
        txn.commit().map_err(|e| store.meta_error(e))?;
        let swept = store.sweep_temp_files()?;
        if swept > 0 {
            tracing::info!(root = %store.root.display(), swept, "removed temp files left by a crash");
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the chunk's file lives (whether or not it is stored).
    pub fn chunk_path(&self, cid: &ContentId) -> PathBuf {
        let (_, leaf) = self.shard_dirs(cid);
        leaf.join(cid.to_hex())
    }

    fn shard_dirs(&self, cid: &ContentId) -> (PathBuf, PathBuf) {
        let digest = cid.digest();
        let top = self.chunks_dir.join(format!("{:02x}", digest[0]));
        let leaf = top.join(format!("{:02x}", digest[1]));
        (top, leaf)
    }

    fn meta_error(&self, source: impl Into<redb::Error>) -> StoreError {
        StoreError::metadata(&self.db_path, source)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The lock guards no data, only ordering; a poisoned one is still usable.
        self.commit_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes temp files in the shard tree; returns how many.
    fn sweep_temp_files(&self) -> Result<usize, StoreError> {
        let mut swept = 0;
        for top in read_dir(&self.chunks_dir)? {
            if !top.is_dir() {
                continue;
            }
            for leaf in read_dir(&top)? {
                if !leaf.is_dir() {
                    continue;
                }
                for file in read_dir(&leaf)? {
                    if is_temp_file(&file) {
                        fs::remove_file(&file)
                            .map_err(|e| StoreError::io("removing temp file", &file, e))?;
                        swept += 1;
                    }
                }
            }
        }
        Ok(swept)
    }

    /// Creates `dir` if missing; if created, its parent needs an fsync.
    fn ensure_dir(
        dir: &Path,
        parent: &Path,
        to_sync: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        match fs::create_dir(dir) {
            Ok(()) => {
                to_sync.insert(parent.to_path_buf());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::io("creating directory", dir, e)),
        }
    }

    /// Steps 1 and 2 of the protocol: writes each chunk to a temp file and
    /// starts its fsync at once on a helper thread, so the device sees several
    /// flushes in flight while later chunks are still being written. Returns
    /// when every temp file is durable.
    fn write_temp_files(
        &self,
        needed: &[Needed<'_, '_>],
        batch: &mut Batch,
        dirs: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let pid = std::process::id();
        thread::scope(|scope| {
            let mut syncer = Syncer::new(scope);
            for &Needed { chunk, repair } in needed {
                let (top, leaf) = self.shard_dirs(chunk.cid());
                Self::ensure_dir(&top, &self.chunks_dir, dirs)?;
                Self::ensure_dir(&leaf, &top, dirs)?;
                let hex = chunk.cid().to_hex();
                let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let temp = leaf.join(format!(".{hex}.{pid}.{n}{TEMP_SUFFIX}"));
                // Registered before the write, so a failed write's temp file
                // is removed with the rest of the batch.
                batch.pending.push(Pending {
                    target: leaf.join(&hex),
                    digest: *chunk.cid().digest(),
                    size_bytes: chunk.bytes().len() as u64,
                    repair,
                    renamed: false,
                    temp: temp.clone(),
                });
                dirs.insert(leaf);
                let file = self
                    .writer
                    .create(&temp, chunk.bytes())
                    .map_err(|e| StoreError::io("writing temp file", &temp, e))?;
                // fdatasync is enough: it also flushes the size, the only
                // metadata needed to read the data back; the name is made
                // durable by the directory fsync after the rename.
                syncer.start(temp, "syncing temp file", file, true)?;
            }
            syncer.finish()
        })
    }

    /// The chunks of `chunks` that need writing, each once, in order: those
    /// not stored yet, and those recorded whose file is gone or of the
    /// wrong length (a repair).
    fn needed<'c, 'b>(
        &self,
        chunks: &'c [VerifiedChunk<'b>],
    ) -> Result<Vec<Needed<'c, 'b>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let table = txn
            .open_table(CHUNKS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        let mut seen = BTreeSet::new();
        let mut needed = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if !seen.insert(*chunk.cid()) {
                continue;
            }
            let recorded = table
                .get(chunk.cid().digest())
                .map_err(|e| self.meta_error(e))?
                .is_some();
            if !recorded {
                needed.push(Needed {
                    chunk,
                    repair: false,
                });
            } else if !self.file_intact(chunk)? {
                tracing::warn!(chunk = %chunk.cid(), "chunk file missing or cut short; writing it again");
                needed.push(Needed {
                    chunk,
                    repair: true,
                });
            }
        }
        Ok(needed)
    }

    /// Whether the chunk's file exists at the chunk's length: one `stat`,
    /// cheap enough for every put of a chunk already recorded. (A flipped
    /// bit keeps the length; reads catch that.)
    fn file_intact(&self, chunk: &VerifiedChunk<'_>) -> Result<bool, StoreError> {
        let path = self.chunk_path(chunk.cid());
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file() && meta.len() == chunk.bytes().len() as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("checking chunk file", &path, e)),
        }
    }

    /// Whether every chunk of `chunks` already records `putter`.
    fn all_put_by(
        &self,
        chunks: &[VerifiedChunk<'_>],
        putter: &NodeId,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let putters = txn
            .open_multimap_table(PUTTERS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        for chunk in chunks {
            let mut found = false;
            for entry in putters
                .get(chunk.cid().digest())
                .map_err(|e| self.meta_error(e))?
            {
                if entry.map_err(|e| self.meta_error(e))?.value() == &putter.key().0 {
                    found = true;
                    break;
                }
            }
            if !found {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One attempt at a put (see the module documentation), for `claim`'s
    /// putter when given. [`Attempt::Raced`] when a chunk the attempt found
    /// stored was deleted before it committed (nothing is committed then).
    fn put_attempt(
        &self,
        chunks: &[VerifiedChunk<'_>],
        claim: Option<Claim<'_>>,
    ) -> Result<Attempt, StoreError> {
        let needed = self.needed(chunks)?;
        match claim {
            None if needed.is_empty() => return Ok(Attempt::Done),
            Some(claim) if needed.is_empty() && self.all_put_by(chunks, claim.putter)? => {
                return Ok(Attempt::Done);
            }
            Some(claim) => self.check_quota(&needed, claim.quota_bytes)?,
            None => {}
        }
        let mut batch = Batch {
            pending: Vec::with_capacity(needed.len()),
            committed: false,
        };
        let mut dirs = BTreeSet::new();
        self.write_temp_files(&needed, &mut batch, &mut dirs)?;

        let _guard = self.lock();
        let txn = self.db.begin_write().map_err(|e| self.meta_error(e))?;
        {
            let mut table = txn
                .open_table(CHUNKS_TABLE)
                .map_err(|e| self.meta_error(e))?;
            let mut totals = txn
                .open_table(TOTALS_TABLE)
                .map_err(|e| self.meta_error(e))?;
            let used_bytes = totals
                .get(TOTAL_BYTES)
                .map_err(|e| self.meta_error(e))?
                .map_or(0, |v| v.value());
            let (mut added_chunks, mut added_bytes) = (0u64, 0u64);
            for p in &mut batch.pending {
                let recorded = table
                    .get(&p.digest)
                    .map_err(|e| self.meta_error(e))?
                    .is_some();
                if recorded && !p.repair {
                    continue; // another writer committed it since we looked
                }
                if !recorded && let Some(claim) = claim {
                    let after = used_bytes + added_bytes + p.size_bytes;
                    if after > claim.quota_bytes {
                        return Err(StoreError::QuotaExceeded {
                            cid: ContentId::from_digest(p.digest),
                            chunk_bytes: p.size_bytes,
                            used_bytes: used_bytes + added_bytes,
                            quota_bytes: claim.quota_bytes,
                        });
                    }
                }
                // A repair renames over the lost or cut file: atomic, so a
                // reader sees the old file or the whole new one.
                fs::rename(&p.temp, &p.target)
                    .map_err(|e| StoreError::io("renaming temp file into", &p.target, e))?;
                p.renamed = true;
                if recorded {
                    continue; // repaired: already counted
                }
                let meta = encode(&ChunkMeta {
                    size_bytes: p.size_bytes,
                });
                table
                    .insert(&p.digest, meta.as_slice())
                    .map_err(|e| self.meta_error(e))?;
                added_chunks += 1;
                added_bytes += p.size_bytes;
            }
            // A chunk found stored may have been deleted since: this attempt
            // wrote no file for it, so it must not claim it is stored.
            for chunk in chunks {
                if table
                    .get(chunk.cid().digest())
                    .map_err(|e| self.meta_error(e))?
                    .is_none()
                {
                    return Ok(Attempt::Raced);
                }
            }
            if let Some(claim) = claim {
                let mut putters = txn
                    .open_multimap_table(PUTTERS_TABLE)
                    .map_err(|e| self.meta_error(e))?;
                for chunk in chunks {
                    putters
                        .insert(chunk.cid().digest(), &claim.putter.key().0)
                        .map_err(|e| self.meta_error(e))?;
                }
            }
            add_total(&mut totals, TOTAL_CHUNKS, added_chunks, false)
                .map_err(|e| self.meta_error(e))?;
            add_total(&mut totals, TOTAL_BYTES, added_bytes, false)
                .map_err(|e| self.meta_error(e))?;
        }
        thread::scope(|scope| {
            let mut syncer = Syncer::new(scope);
            for dir in &dirs {
                let handle =
                    File::open(dir).map_err(|e| StoreError::io("opening directory", dir, e))?;
                syncer.start(dir.clone(), "syncing directory", handle, false)?;
            }
            syncer.finish()
        })?;
        txn.commit().map_err(|e| self.meta_error(e))?;
        batch.committed();
        Ok(Attempt::Done)
    }

    /// Refuses, before anything is written, new chunks that do not fit in
    /// `quota_bytes` with what is stored now (the commit checks again).
    fn check_quota(&self, needed: &[Needed<'_, '_>], quota_bytes: u64) -> Result<(), StoreError> {
        let used_bytes = self.usage()?.bytes;
        let mut adding = 0u64;
        for Needed { chunk, repair } in needed {
            if *repair {
                continue;
            }
            let chunk_bytes = chunk.bytes().len() as u64;
            if used_bytes + adding + chunk_bytes > quota_bytes {
                return Err(StoreError::QuotaExceeded {
                    cid: *chunk.cid(),
                    chunk_bytes,
                    used_bytes: used_bytes + adding,
                    quota_bytes,
                });
            }
            adding += chunk_bytes;
        }
        Ok(())
    }

    /// Puts `chunks` (for `claim`'s putter when given), again while deletes
    /// of the same chunks keep racing it, up to [`PUT_ATTEMPTS_MAX`] times.
    fn put_claimed(
        &self,
        chunks: &[VerifiedChunk<'_>],
        claim: Option<Claim<'_>>,
    ) -> Result<(), StoreError> {
        for _ in 0..PUT_ATTEMPTS_MAX {
            if let Attempt::Done = self.put_attempt(chunks, claim)? {
                return Ok(());
            }
        }
        Err(StoreError::Contended {
            cid: chunks.first().map_or(ContentId::of(b""), |c| *c.cid()),
            attempts: PUT_ATTEMPTS_MAX,
        })
    }

    /// Removes the chunk's metadata, putters and count in `txn`; returns its
    /// record when it was there. The caller commits, then removes the file.
    fn remove_record(
        &self,
        txn: &redb::WriteTransaction,
        cid: &ContentId,
    ) -> Result<Option<ChunkMeta>, StoreError> {
        let mut table = txn
            .open_table(CHUNKS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        let removed = table.remove(cid.digest()).map_err(|e| self.meta_error(e))?;
        let Some(record) = removed else {
            return Ok(None);
        };
        let meta: ChunkMeta = decode(record.value())
            .map_err(|source| StoreError::MetadataCorrupt { cid: *cid, source })?;
        drop(record);
        let mut totals = txn
            .open_table(TOTALS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        add_total(&mut totals, TOTAL_CHUNKS, 1, true).map_err(|e| self.meta_error(e))?;
        add_total(&mut totals, TOTAL_BYTES, meta.size_bytes, true)
            .map_err(|e| self.meta_error(e))?;
        let mut putters = txn
            .open_multimap_table(PUTTERS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        putters
            .remove_all(cid.digest())
            .map_err(|e| self.meta_error(e))?;
        Ok(Some(meta))
    }

    /// Removes a chunk's file once its record is committed away.
    fn remove_file(&self, cid: &ContentId) -> Result<(), StoreError> {
        let path = self.chunk_path(cid);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing chunk", &path, e)),
        }
    }
}

/// A chunk a put must write; `repair` when it is recorded but its file is
/// missing or of the wrong length.
#[derive(Debug, Clone, Copy)]
struct Needed<'c, 'b> {
    chunk: &'c VerifiedChunk<'b>,
    repair: bool,
}

/// The node a put is for, and the bytes the store may hold in all.
#[derive(Debug, Clone, Copy)]
struct Claim<'a> {
    putter: &'a NodeId,
    quota_bytes: u64,
}

/// How one attempt at a put ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// Every chunk is stored (and claimed).
    Done,
    /// A chunk found stored was deleted before the commit; nothing committed.
    Raced,
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("listing directory", dir, e))?;
    entries
        .map(|entry| {
            entry
                .map(|e| e.path())
                .map_err(|e| StoreError::io("listing directory", dir, e))
        })
        .collect()
}

fn is_temp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with('.') && name.ends_with(TEMP_SUFFIX))
}

impl ChunkStore for FsChunkStore {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        self.put_claimed(chunks, None)
    }

    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        buf.clear();
        let path = self.chunk_path(cid);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { cid: *cid });
            }
            Err(e) => return Err(StoreError::io("opening chunk", &path, e)),
        };
        file.read_to_end(buf)
            .map_err(|e| StoreError::io("reading chunk", &path, e))?;
        if let Err(err) = verify_read(cid, buf, Some(&path)) {
            buf.clear();
            return Err(err);
        }
        Ok(())
    }

    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let table = txn
            .open_table(CHUNKS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        Ok(table
            .get(cid.digest())
            .map_err(|e| self.meta_error(e))?
            .is_some())
    }

    fn abandon(&self, cids: &[ContentId]) {
        for cid in cids {
            if let Err(err) = self.delete(cid) {
                tracing::warn!(chunk = %cid, %err, "could not remove a chunk of a failed put");
            }
        }
    }
}

impl ChunkInventory for FsChunkStore {
    fn delete(&self, cid: &ContentId) -> Result<bool, StoreError> {
        let _guard = self.lock();
        let txn = self.db.begin_write().map_err(|e| self.meta_error(e))?;
        if self.remove_record(&txn, cid)?.is_none() {
            return Ok(false);
        }
        txn.commit().map_err(|e| self.meta_error(e))?;
        self.remove_file(cid)?;
        Ok(true)
    }
    fn list(&self, after: Option<&ContentId>, limit: usize) -> Result<Vec<ContentId>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let table = txn
            .open_table(CHUNKS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        let start = after.map_or(Bound::Unbounded, |cid| Bound::Excluded(cid.digest()));
        let range = table
            .range::<&[u8; 32]>((start, Bound::Unbounded))
            .map_err(|e| self.meta_error(e))?;
        let mut out = Vec::new();
        for entry in range.take(limit.min(LIST_PAGE_MAX)) {
            let (key, _) = entry.map_err(|e| self.meta_error(e))?;
            out.push(ContentId::from_digest(*key.value()));
        }
        Ok(out)
    }
    fn usage(&self) -> Result<StoreUsage, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let totals = txn
            .open_table(TOTALS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        let read = |key: &str| -> Result<u64, StoreError> {
            Ok(totals
                .get(key)
                .map_err(|e| self.meta_error(e))?
                .map_or(0, |v| v.value()))
        };
        Ok(StoreUsage {
            chunks: read(TOTAL_CHUNKS)?,
            bytes: read(TOTAL_BYTES)?,
        })
    }
}

impl ChunkPutters for FsChunkStore {
    fn put_many_for(
        &self,
        putter: &NodeId,
        chunks: &[VerifiedChunk<'_>],
        quota_bytes: u64,
    ) -> Result<(), StoreError> {
        let claim = Claim {
            putter,
            quota_bytes,
        };
        self.put_claimed(chunks, Some(claim))
    }

    fn delete_for(&self, putter: &NodeId, cid: &ContentId) -> Result<Released, StoreError> {
        let _guard = self.lock();
        let txn = self.db.begin_write().map_err(|e| self.meta_error(e))?;
        let putters_left = {
            let recorded = txn
                .open_table(CHUNKS_TABLE)
                .map_err(|e| self.meta_error(e))?
                .get(cid.digest())
                .map_err(|e| self.meta_error(e))?
                .is_some();
            if !recorded {
                return Err(StoreError::NotFound { cid: *cid });
            }
            let mut putters = txn
                .open_multimap_table(PUTTERS_TABLE)
                .map_err(|e| self.meta_error(e))?;
            if !putters
                .remove(cid.digest(), &putter.key().0)
                .map_err(|e| self.meta_error(e))?
            {
                return Err(StoreError::NotPutter {
                    cid: *cid,
                    node: *putter,
                });
            }
            putters
                .get(cid.digest())
                .map_err(|e| self.meta_error(e))?
                .len()
        };
        if putters_left > 0 {
            txn.commit().map_err(|e| self.meta_error(e))?;
            return Ok(Released::Kept { putters_left });
        }
        self.remove_record(&txn, cid)?;
        txn.commit().map_err(|e| self.meta_error(e))?;
        self.remove_file(cid)?;
        Ok(Released::Deleted)
    }

    fn putters(&self, cid: &ContentId) -> Result<Vec<NodeId>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let putters = txn
            .open_multimap_table(PUTTERS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        let mut nodes = Vec::new();
        for entry in putters.get(cid.digest()).map_err(|e| self.meta_error(e))? {
            let key = entry.map_err(|e| self.meta_error(e))?;
            nodes.push(NodeId(PublicKey(*key.value())));
        }
        Ok(nodes)
    }
}

/// Adds `amount` to (or, with `subtract`, takes it from) a running total.
fn add_total(
    totals: &mut redb::Table<'_, &str, u64>,
    key: &str,
    amount: u64,
    subtract: bool,
) -> Result<(), redb::StorageError> {
    if amount == 0 {
        return Ok(());
    }
    let current = totals.get(key)?.map_or(0, |v| v.value());
    debug_assert!(
        !subtract || current >= amount,
        "total {key} would go below zero"
    );
    let next = if subtract {
        current.saturating_sub(amount)
    } else {
        current.saturating_add(amount)
    };
    totals.insert(key, next)?;
    Ok(())
}
