//! [`FsChunkStore`]: chunks as files in a sharded directory tree, metadata in redb.
//!
//! Layout under the store's root:
//!
//! ```text
//! root/
//!   meta.redb               cid digest -> ChunkMeta (versioned); running totals
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
//! same reason. On any error the batch removes its temp files and any file it
//! renamed but did not commit, so no partial chunk is left behind.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use peercloud_types::{ContentId, decode, encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::StoreError;
use crate::store::{
    ChunkInventory, ChunkMeta, ChunkStore, LIST_PAGE_MAX, StoreUsage, VerifiedChunk, verify_read,
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
/// Key of the chunk count in [`TOTALS_TABLE`].
const TOTAL_CHUNKS: &str = "chunks";
/// Key of the byte count in [`TOTALS_TABLE`].
const TOTAL_BYTES: &str = "bytes";

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
        };
        let txn = store.db.begin_write().map_err(|e| store.meta_error(e))?;
        txn.open_table(CHUNKS_TABLE)
            .map_err(|e| store.meta_error(e))?;
        txn.open_table(TOTALS_TABLE)
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
        fresh: &[&VerifiedChunk<'_>],
        batch: &mut Batch,
        dirs: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let pid = std::process::id();
        thread::scope(|scope| {
            let mut syncer = Syncer::new(scope);
            for chunk in fresh {
                let (top, leaf) = self.shard_dirs(chunk.cid());
                Self::ensure_dir(&top, &self.chunks_dir, dirs)?;
                Self::ensure_dir(&leaf, &top, dirs)?;
                let hex = chunk.cid().to_hex();
                let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let temp = leaf.join(format!(".{hex}.{pid}.{n}{TEMP_SUFFIX}"));
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&temp)
                    .map_err(|e| StoreError::io("creating temp file", &temp, e))?;
                let written = file
                    .write_all(chunk.bytes())
                    .map_err(|e| StoreError::io("writing temp file", &temp, e));
                // Registered before the write's result is looked at, so a failed
                // write's temp file is removed with the rest of the batch.
                batch.pending.push(Pending {
                    target: leaf.join(&hex),
                    digest: *chunk.cid().digest(),
                    size_bytes: chunk.bytes().len() as u64,
                    renamed: false,
                    temp: temp.clone(),
                });
                dirs.insert(leaf);
                written?;
                // fdatasync is enough: it also flushes the size, the only
                // metadata needed to read the data back; the name is made
                // durable by the directory fsync after the rename.
                syncer.start(temp, "syncing temp file", file, true)?;
            }
            syncer.finish()
        })
    }

    /// The chunks of `chunks` not yet stored, each once, in order.
    fn fresh<'c, 'b>(
        &self,
        chunks: &'c [VerifiedChunk<'b>],
    ) -> Result<Vec<&'c VerifiedChunk<'b>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.meta_error(e))?;
        let table = txn
            .open_table(CHUNKS_TABLE)
            .map_err(|e| self.meta_error(e))?;
        let mut seen = BTreeSet::new();
        let mut fresh = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if seen.insert(*chunk.cid())
                && table
                    .get(chunk.cid().digest())
                    .map_err(|e| self.meta_error(e))?
                    .is_none()
            {
                fresh.push(chunk);
            }
        }
        Ok(fresh)
    }
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

/// fsyncs in flight at once: enough for the device to see a queue and for
/// ext4 to merge the journal commits of concurrent fsyncs (one fsync at a time
/// measured 2-5x slower for 1 MiB files here); bounded so a large batch does
/// not start a thread per chunk at once.
const FSYNCS_IN_FLIGHT_MAX: usize = 16;

/// Runs fsyncs on scoped helper threads, at most [`FSYNCS_IN_FLIGHT_MAX`] at a time.
struct Syncer<'scope, 'env> {
    scope: &'scope thread::Scope<'scope, 'env>,
    in_flight: VecDeque<InFlight<'scope>>,
}

/// One fsync under way: the path and action name its error.
struct InFlight<'scope> {
    path: PathBuf,
    action: &'static str,
    handle: thread::ScopedJoinHandle<'scope, io::Result<()>>,
}

impl<'scope, 'env> Syncer<'scope, 'env> {
    fn new(scope: &'scope thread::Scope<'scope, 'env>) -> Self {
        Syncer {
            scope,
            in_flight: VecDeque::with_capacity(FSYNCS_IN_FLIGHT_MAX),
        }
    }

    /// Starts syncing `file` (its data only, or data and metadata).
    fn start(
        &mut self,
        path: PathBuf,
        action: &'static str,
        file: File,
        data_only: bool,
    ) -> Result<(), StoreError> {
        if self.in_flight.len() >= FSYNCS_IN_FLIGHT_MAX {
            self.wait_oldest()?;
        }
        let handle = self.scope.spawn(move || {
            if data_only {
                file.sync_data()
            } else {
                file.sync_all()
            }
        });
        self.in_flight.push_back(InFlight {
            path,
            action,
            handle,
        });
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), StoreError> {
        if let Some(InFlight {
            path,
            action,
            handle,
        }) = self.in_flight.pop_front()
        {
            handle
                .join()
                .map_err(|_| StoreError::ThreadPanicked { thread: "fsync" })?
                .map_err(|e| StoreError::io(action, path, e))?;
        }
        Ok(())
    }

    /// Waits for every fsync started; the first failure is the error.
    fn finish(mut self) -> Result<(), StoreError> {
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        Ok(())
    }
}

/// One chunk of a batch on its way to disk.
#[derive(Debug)]
struct Pending {
    temp: PathBuf,
    target: PathBuf,
    digest: [u8; 32],
    size_bytes: u64,
    renamed: bool,
}

/// The files of one batch. Dropped before [`Batch::committed`], it removes
/// every temp file and every file it renamed into place, so a failed batch
/// leaves nothing behind; after, it removes only the temp files it did not
/// need (chunks another writer committed meanwhile).
#[derive(Debug, Default)]
struct Batch {
    pending: Vec<Pending>,
    committed: bool,
}

impl Batch {
    fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for p in &self.pending {
            // Best effort: the operation has already failed (or the file is
            // redundant) and its error is what the caller sees.
            if !p.renamed {
                let _ = fs::remove_file(&p.temp);
            } else if !self.committed {
                let _ = fs::remove_file(&p.target);
            }
        }
    }
}

impl ChunkStore for FsChunkStore {
    fn put_many(&self, chunks: &[VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let fresh = self.fresh(chunks)?;
        if fresh.is_empty() {
            return Ok(());
        }
        let mut batch = Batch {
            pending: Vec::with_capacity(fresh.len()),
            committed: false,
        };
        let mut dirs = BTreeSet::new();
        self.write_temp_files(&fresh, &mut batch, &mut dirs)?;

        let _guard = self.lock();
        let txn = self.db.begin_write().map_err(|e| self.meta_error(e))?;
        {
            let mut table = txn
                .open_table(CHUNKS_TABLE)
                .map_err(|e| self.meta_error(e))?;
            let mut totals = txn
                .open_table(TOTALS_TABLE)
                .map_err(|e| self.meta_error(e))?;
            let (mut added_chunks, mut added_bytes) = (0u64, 0u64);
            for p in &mut batch.pending {
                if table
                    .get(&p.digest)
                    .map_err(|e| self.meta_error(e))?
                    .is_some()
                {
                    continue; // another writer committed it since we looked
                }
                fs::rename(&p.temp, &p.target)
                    .map_err(|e| StoreError::io("renaming temp file into", &p.target, e))?;
                p.renamed = true;
                let meta = encode(&ChunkMeta {
                    size_bytes: p.size_bytes,
                });
                table
                    .insert(&p.digest, meta.as_slice())
                    .map_err(|e| self.meta_error(e))?;
                added_chunks += 1;
                added_bytes += p.size_bytes;
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
        Ok(())
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
        {
            let mut table = txn
                .open_table(CHUNKS_TABLE)
                .map_err(|e| self.meta_error(e))?;
            let removed = table.remove(cid.digest()).map_err(|e| self.meta_error(e))?;
            let Some(record) = removed else {
                return Ok(false);
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
        }
        txn.commit().map_err(|e| self.meta_error(e))?;
        let path = self.chunk_path(cid);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(StoreError::io("removing chunk", &path, e)),
        }
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
