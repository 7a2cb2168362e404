//! Objects: the streaming put and get pipelines over any [`ChunkStore`].
//!
//! ```text
//! put:  reader ─▶ [caller's thread] read chunk ─▶ BLAKE3(plaintext) ─▶ AES-GCM seal ─▶ CID
//!                     │ batches of ~WRITE_BATCH_BYTES, bounded queue of WRITE_QUEUE_BATCHES
//!                     ▼
//!                 [WRITER_THREADS writers] store.put_many (write, fsync, rename, commit)
//!                     │ emptied batches return; their buffers are reused
//!                     ▼
//!                 manifest (chunk CIDs, sizes, wrapped key, sealed info) ─▶ store ─▶ object CID
//!
//! get:  [read-ahead threads, `store.read_parallelism()` of them, round-robin]
//!       store.get_into (read, verify CID) ─▶ queues of READ_AHEAD_CHUNKS in all
//!       (a sealed chunk: store.get_sealed_into, which a trusted link may leave unhashed)
//!                     ▼
//!       [caller's thread] AES-GCM open at index i ─▶ size check ─▶ writer
//!                     ▼ a public object: BLAKE3 of the whole plaintext == the manifest's
//! ```
//!
//! **Erasure coding** ([`Redundancy::Erasure`]): the sealer also closes a
//! group every `data` chunks (and at the end): it computes the group's
//! parity chunks ([`crate::erasure::encode`] over the sealed chunks, padded
//! to the group's shard length) and names them, batches hold whole groups,
//! and a writer stores each group with [`ChunkStore::put_group`] (one copy
//! of each piece, on distinct nodes). A get reads the data chunks as for
//! replicas; a data chunk that cannot be read or is corrupt makes the opener
//! recover its group from the group's other pieces
//! ([`crate::erasure::recover_group`]) once, and take the group's later
//! chunks from that too when their reads fail.
//!
//! All hashing and sealing happens on the caller's thread; the writers only
//! write and wait for the disk. Naming the chunks on the writers instead
//! (to spread the CPU) measured ~15% slower: their per-batch latency grew and
//! the disk idled more.
//!
//! Memory is bounded whatever the object's size: a put owns exactly
//! `BATCHES_IN_FLIGHT` batches of chunk buffers, a get about
//! `READ_AHEAD_CHUNKS + 3 × readers` chunks, and the buffers are reused. The manifest is
//! written only after every data chunk is durable, so an object CID never
//! names an object whose chunks could be lost in a crash. An object of one
//! replicated chunk (a small file) skips the writer threads: its chunk and
//! its manifest go to the store in one `put_many`, and the put returns its
//! name only once both are durable (one round to the holders, not two).
//! A put that fails
//! removes the chunks it already wrote (they are unique to its fresh key;
//! a public object's, named by their content, may be shared and are left).
//!
//! A get writes plaintext as it goes; every chunk written has been
//! authenticated (a sealed one by its GCM tag, a public one by its CID), but if the call fails the writer holds a
//! prefix of the object and the caller must discard it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use peercloud_types::{ContentId, Hash32, PublicKey};

use crate::error::StoreError;
use crate::manifest::{
    Access, CHUNK_BYTES_DEFAULT, CHUNK_BYTES_MAX, CHUNK_BYTES_MIN, Manifest, ManifestError,
    OBJECT_CHUNKS_MAX, OBJECT_PARITY_CHUNKS_MAX, ObjectInfo, Redundancy,
};
use crate::seal::{ChunkCipher, ObjectKey, TAG_BYTES};
use crate::store::{ChunkInventory, ChunkStore, VerifiedChunk, put_batch};

mod read;
use read::read_chunks;

/// Sealed bytes handed to the store per `put_many`: 8 MiB. One batch pays one
/// metadata commit (an fsync, ~0.25 ms) and shares directory fsyncs; 8 MiB of
/// data makes that commit ~2% of the batch's disk time at 1 GB/s.
pub const WRITE_BATCH_BYTES: usize = 8 << 20;
/// Batches queued between the sealing thread and the writers: two keep the
/// writers busy while the sealer fills the next, and bound a put's memory to
/// ~(2 + 2 + 1) x 8 MiB.
pub const WRITE_QUEUE_BATCHES: usize = 2;
/// Threads naming and storing batches concurrently. A batch's last steps
/// (rename, directory fsyncs, metadata commit) are serial waits during which
/// the disk idles; a second writer fills that time with the next batch's
/// data. A third measured slower on a 2-vCPU machine (more CPU contention).
pub const WRITER_THREADS: usize = 2;
/// Batches a put owns: one being filled, the queue, one per writer. The sealer
/// takes a batch only from the ones returned, so this also bounds memory.
const BATCHES_IN_FLIGHT: usize = WRITE_QUEUE_BATCHES + WRITER_THREADS + 1;
/// Chunks read ahead of decryption in a get: enough to hide a file open and
/// read behind the decryption of the previous chunks, ~8 MiB at the default size.
pub const READ_AHEAD_CHUNKS: usize = 8;
/// Reads in flight a store reached over a network should ask for
/// ([`crate::ChunkStore::read_parallelism`]): each read waits on a round
/// trip and a holder's disk read, so several overlap them (8 against 4:
/// a 256 MiB get from 655 to 698 MB/s in the grid bench).
pub const READ_PARALLELISM_REMOTE: usize = 8;
/// Room a put reserves before it knows whether the object is small: a
/// larger first chunk grows the buffer as it is read.
const SMALL_PROBE_BYTES: usize = 64 << 10;
/// Most reader threads one get runs, whatever the store asks for.
pub const READERS_MAX: usize = 8;

/// How to store an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    /// Plaintext bytes per chunk, [`CHUNK_BYTES_MIN`]..=[`CHUNK_BYTES_MAX`].
    pub chunk_bytes: u32,
    /// The redundancy: replicas are recorded in the manifest (replication is
    /// the network's job); an erasure code is built here (parity chunks,
    /// stored with [`ChunkStore::put_group`]).
    pub redundancy: Redundancy,
    /// MIME type to record (sealed).
    pub content_type: Option<String>,
    /// Name to record (sealed).
    pub name: Option<String>,
    /// Store the object public: plaintext chunks and description, no key
    /// (the objects of a public bucket).
    pub public: bool,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            chunk_bytes: CHUNK_BYTES_DEFAULT,
            redundancy: Redundancy::default(),
            content_type: None,
            name: None,
            public: false,
        }
    }
}

impl PutOptions {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !(CHUNK_BYTES_MIN..=CHUNK_BYTES_MAX).contains(&self.chunk_bytes) {
            return Err(ManifestError::ChunkBytes {
                chunk_bytes: self.chunk_bytes,
                min: CHUNK_BYTES_MIN,
                max: CHUNK_BYTES_MAX,
            });
        }
        self.redundancy.validate()?;
        ObjectInfo {
            plaintext_hash: Hash32::ZERO,
            content_type: self.content_type.clone(),
            name: self.name.clone(),
        }
        .validate()
    }
}

/// What a put produced.
#[derive(Debug, Clone)]
pub struct PutReceipt {
    /// The object's name: the CID of its manifest chunk.
    pub manifest_cid: ContentId,
    /// The manifest stored.
    pub manifest: Manifest,
    /// The object's description as sealed in the manifest (plaintext BLAKE3,
    /// content type, name).
    pub info: ObjectInfo,
    /// Plaintext bytes stored.
    pub size_bytes: u64,
    /// The object key, for handing to an executor with
    /// [`crate::seal_key_to`] (`None` for a public object). The owner can
    /// always recover it from the manifest.
    pub key: Option<ObjectKey>,
}

/// What a get read.
#[derive(Debug, Clone)]
pub struct GetReceipt {
    /// The object's manifest.
    pub manifest: Manifest,
    /// The object's opened description (hash, content type, name).
    pub info: ObjectInfo,
    /// Plaintext bytes written.
    pub size_bytes: u64,
}

/// Sealed chunks and their CIDs on their way to a writer (and back empty,
/// for their buffers to be reused).
#[derive(Debug, Default)]
struct Batch {
    /// The sealed chunks, in object order; for an erasure-coded object each
    /// group's data chunks then its parity chunks.
    sealed: Vec<Vec<u8>>,
    /// Their CIDs, same order.
    cids: Vec<ContentId>,
    /// For an erasure-coded object, how many of `sealed` each group takes,
    /// in order (empty for replicas).
    groups: Vec<usize>,
    /// Data chunks in the batch.
    data_chunks: usize,
}

impl Batch {
    /// Empties the batch, its chunk buffers appended to `buffers`.
    fn drain_into(&mut self, buffers: &mut Vec<Vec<u8>>) {
        buffers.append(&mut self.sealed);
        self.cids.clear();
        self.groups.clear();
        self.data_chunks = 0;
    }
}

/// What the sealing loop produced so far (kept by the caller so a failed put
/// can remove the chunks already written).
#[derive(Debug, Default)]
struct Produced {
    chunks: Vec<ContentId>,
    chunk_sizes: Vec<u32>,
    parity_chunks: Vec<ContentId>,
    total_bytes: u64,
}

impl Produced {
    /// Every chunk named so far, data and parity.
    fn all(&self) -> Vec<ContentId> {
        self.chunks
            .iter()
            .chain(&self.parity_chunks)
            .copied()
            .collect()
    }
}

/// Streams `reader` into `store` as a new object owned by `owner`; returns once
/// every chunk and the manifest are durable. See the module documentation.
pub fn put_object<S: ChunkStore + ?Sized, R: Read>(
    store: &S,
    reader: R,
    owner: &PublicKey,
    options: &PutOptions,
) -> Result<PutReceipt, StoreError> {
    let sealing = new_object_key(owner, options)?;
    let cipher = sealing.as_ref().map(|(key, _)| key.cipher());
    let mut produced = Produced::default();
    let mut hasher = blake3::Hasher::new();
    let outcome = seal_and_write(
        store,
        reader,
        cipher.as_ref(),
        options,
        &mut hasher,
        &mut produced,
    );
    let pending = match outcome {
        Ok(pending) => pending,
        Err(err) => {
            remove_chunks(store, &produced.all(), options);
            return Err(err);
        }
    };

    let info = ObjectInfo {
        plaintext_hash: Hash32::from(hasher.finalize()),
        content_type: options.content_type.clone(),
        name: options.name.clone(),
    };
    let (key, wrapped_key) = sealing.unzip();
    let access = match (cipher.as_ref(), wrapped_key) {
        (Some(cipher), Some(wrapped_key)) => match info.seal(cipher) {
            Ok(sealed_info) => Access::Sealed {
                wrapped_key,
                sealed_info,
            },
            Err(source) => {
                remove_chunks(store, &produced.all(), options);
                return Err(StoreError::Options { source });
            }
        },
        _ => Access::Public { info: info.clone() },
    };
    let (manifest_cid, manifest) = write_manifest(store, produced, options, access, pending)?;
    tracing::debug!(
        object = %manifest_cid,
        size_bytes = manifest.total_bytes,
        chunks = manifest.chunks.len(),
        "object stored"
    );
    Ok(PutReceipt {
        manifest_cid,
        size_bytes: manifest.total_bytes,
        manifest,
        info,
        key,
    })
}

/// A put's set-up: checks the options and the owner's key, then (unless the
/// object is public) draws a fresh object key and wraps it to the owner.
fn new_object_key(
    owner: &PublicKey,
    options: &PutOptions,
) -> Result<Option<(ObjectKey, Vec<u8>)>, StoreError> {
    options
        .validate()
        .map_err(|source| StoreError::Options { source })?;
    if options.public {
        return Ok(None);
    }
    let owner_x25519 = owner
        .x25519()
        .ok_or(StoreError::InvalidOwnerKey { owner: *owner })?;
    let key = ObjectKey::generate().map_err(|source| StoreError::Sealing { source })?;
    let wrapped_key = key
        .seal_to(&owner_x25519)
        .map_err(|source| StoreError::Sealing { source })?;
    Ok(Some((key, wrapped_key)))
}

/// A sealed chunk not stored yet: it goes with the manifest.
type Pending = Option<(ContentId, Vec<u8>)>;

/// The put pipeline: seals `reader` on the caller's thread while
/// [`WRITER_THREADS`] writers store the batches. On failure `produced` holds
/// the chunks named so far, for the caller to remove. An object of one
/// replicated chunk is sealed here and that chunk returned, not stored: it
/// goes to the store in one call with the manifest.
fn seal_and_write<S: ChunkStore + ?Sized, R: Read>(
    store: &S,
    reader: R,
    cipher: Option<&ChunkCipher>,
    options: &PutOptions,
    hasher: &mut blake3::Hasher,
    produced: &mut Produced,
) -> Result<Pending, StoreError> {
    let chunk_bytes = options.chunk_bytes as usize;
    let shape = Shape::of(options.redundancy, chunk_bytes);
    // An object of one replicated chunk (most small files, every S3 small
    // put) is sealed and stored on this thread: starting the writers cost
    // more than the whole put.
    let mut head = Vec::with_capacity(chunk_bytes.min(SMALL_PROBE_BYTES) + TAG_BYTES);
    let mut reader = reader;
    (&mut reader)
        .take(chunk_bytes as u64 + 1)
        .read_to_end(&mut head)
        .map_err(|source| StoreError::Read { source })?;
    if head.len() <= chunk_bytes && shape.erasure.is_none() {
        return seal_one(head, cipher, hasher, produced);
    }
    let reader = std::io::Cursor::new(head).chain(reader);
    let failed = AtomicBool::new(false);
    thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Batch>(WRITE_QUEUE_BATCHES);
        // Capacity = every batch there is, so returning one never blocks.
        let (free_tx, free_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        for _ in 0..BATCHES_IN_FLIGHT {
            let _ = free_tx.try_send(Batch::default());
        }
        // The writers hold the only receiver of `full` and the only senders of
        // `free`, so when the last writer ends a sealer blocked on either
        // channel wakes up with an error instead of waiting forever.
        let full_rx = Arc::new(Mutex::new(full_rx));
        let writers: Vec<_> = (0..WRITER_THREADS)
            .map(|_| {
                let (full_rx, free_tx, failed) = (Arc::clone(&full_rx), free_tx.clone(), &failed);
                scope.spawn(move || write_batches(store, &full_rx, &free_tx, failed))
            })
            .collect();
        drop((full_rx, free_tx));
        let sealed = seal_chunks(reader, cipher, &shape, &full_tx, &free_rx, hasher, produced);
        drop(full_tx);
        // A writer's error explains a sealer that found the queue closed.
        join_writers(writers).and(sealed).map(|()| None)
    })
}

/// Joins every writer; the first error (a panic counts as one) is the one returned.
fn join_writers(
    writers: Vec<thread::ScopedJoinHandle<'_, Result<(), StoreError>>>,
) -> Result<(), StoreError> {
    let mut written = Ok(());
    for writer in writers {
        let result = writer
            .join()
            .map_err(|_| StoreError::ThreadPanicked {
                thread: "chunk writer",
            })
            .and_then(|r| r);
        written = written.and(result);
    }
    written
}

/// Builds the manifest of the chunks `produced` and stores it, giving the
/// object its name; on failure removes the object's chunks.
fn write_manifest<S: ChunkStore + ?Sized>(
    store: &S,
    produced: Produced,
    options: &PutOptions,
    access: Access,
    pending: Pending,
) -> Result<(ContentId, Manifest), StoreError> {
    let manifest = Manifest {
        chunks: produced.chunks,
        chunk_sizes: produced.chunk_sizes,
        parity_chunks: produced.parity_chunks,
        total_bytes: produced.total_bytes,
        redundancy: options.redundancy,
        access,
    };
    debug_assert_eq!(manifest.validate(), Ok(()));
    let bytes = manifest.encode();
    let manifest_cid = ContentId::of(&bytes);
    // Only now, with every data chunk durable, does the object get its name:
    // the data chunk of a one-chunk object is stored in the same call,
    // which returns once both are durable, so the name still comes last.
    let mut chunks = Vec::with_capacity(2);
    if let Some((cid, sealed)) = &pending {
        chunks.push(VerifiedChunk::already_hashed(*cid, sealed));
    }
    chunks.push(VerifiedChunk::new(&bytes));
    if let Err(err) = store.put_many(&chunks) {
        let chunks: Vec<ContentId> = manifest.all_chunks().copied().collect();
        remove_chunks(store, &chunks, options);
        return Err(err);
    }
    Ok((manifest_cid, manifest))
}

/// A writer thread: stores batches until the queue closes or a writer fails,
/// returning each emptied batch for reuse.
fn write_batches<S: ChunkStore + ?Sized>(
    store: &S,
    full: &Mutex<Receiver<Batch>>,
    free: &SyncSender<Batch>,
    failed: &AtomicBool,
) -> Result<(), StoreError> {
    loop {
        if failed.load(Ordering::Relaxed) {
            return Ok(()); // the failing writer reports the error
        }
        // Held only while waiting for the next batch, never while writing.
        let next = full.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(batch) = next else {
            return Ok(()); // queue closed: the sealer is done
        };
        let chunks: Vec<VerifiedChunk<'_>> = batch
            .sealed
            .iter()
            .zip(&batch.cids)
            .map(|(sealed, cid)| VerifiedChunk::already_hashed(*cid, sealed))
            .collect();
        if let Err(err) = put_batch(store, &chunks, &batch.groups) {
            failed.store(true, Ordering::Relaxed);
            return Err(err);
        }
        drop(chunks);
        // Cannot be full (its capacity is every batch there is); the caller
        // keeps the receiver until the writers are joined.
        let _ = free.try_send(batch);
    }
}

/// Seals an object that fits in one chunk (`plaintext`, possibly empty:
/// then no chunk at all) on the caller's thread; the chunk, to be stored
/// with the manifest.
fn seal_one(
    mut plaintext: Vec<u8>,
    cipher: Option<&ChunkCipher>,
    hasher: &mut blake3::Hasher,
    produced: &mut Produced,
) -> Result<Pending, StoreError> {
    if plaintext.is_empty() {
        return Ok(None);
    }
    hasher.update(&plaintext);
    let read = plaintext.len();
    if let Some(cipher) = cipher {
        cipher
            .seal_in_place(0, &mut plaintext)
            .map_err(|source| StoreError::Sealing { source })?;
    }
    let cid = ContentId::of(&plaintext);
    produced.chunks.push(cid);
    // At most `chunk_bytes`, itself at most CHUNK_BYTES_MAX (a u32).
    produced.chunk_sizes.push(read as u32);
    produced.total_bytes = read as u64;
    Ok(Some((cid, plaintext)))
}

/// How the sealer cuts an object: chunk size, batch size and the erasure
/// group shape.
#[derive(Debug, Clone, Copy)]
struct Shape {
    chunk_bytes: usize,
    /// Data chunks per batch (a whole number of groups when erasure-coded).
    per_batch: usize,
    /// `(data, parity)` chunks per group, for an erasure-coded object.
    erasure: Option<(usize, usize)>,
}

impl Shape {
    fn of(redundancy: Redundancy, chunk_bytes: usize) -> Shape {
        let per_batch = (WRITE_BATCH_BYTES / chunk_bytes).max(1);
        match redundancy {
            Redundancy::Replicas(_) => Shape {
                chunk_bytes,
                per_batch,
                erasure: None,
            },
            Redundancy::Erasure { data, parity } => {
                let (data, parity) = (usize::from(data), usize::from(parity));
                Shape {
                    chunk_bytes,
                    per_batch: per_batch.div_ceil(data) * data,
                    erasure: Some((data, parity)),
                }
            }
        }
    }
}

/// The sealing loop on the caller's thread: read, hash, seal, name, batch;
/// for an erasure-coded object also close each group with its parity.
fn seal_chunks<R: Read>(
    mut reader: R,
    cipher: Option<&ChunkCipher>,
    shape: &Shape,
    full_tx: &SyncSender<Batch>,
    free_rx: &Receiver<Batch>,
    hasher: &mut blake3::Hasher,
    produced: &mut Produced,
) -> Result<(), StoreError> {
    let chunk_bytes = shape.chunk_bytes;
    let writer_gone = || StoreError::ThreadPanicked {
        thread: "chunk writer",
    };
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    // Waits for a free batch and takes its buffers for reuse: as many as a
    // batch seals (parity shards come back too; the rest are freed).
    let take_free = |buffers: &mut Vec<Vec<u8>>| {
        let mut batch = free_rx.recv().map_err(|_| writer_gone())?;
        batch.drain_into(buffers);
        buffers.truncate(shape.per_batch);
        Ok::<Batch, StoreError>(batch)
    };
    let mut batch = take_free(&mut buffers)?;
    // Where the open group starts in `batch.sealed`.
    let mut group_start = 0;
    loop {
        let mut buf = buffers
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(chunk_bytes + TAG_BYTES));
        buf.clear();
        let read = (&mut reader)
            .take(chunk_bytes as u64)
            .read_to_end(&mut buf)
            .map_err(|source| StoreError::Read { source })?;
        if read == 0 {
            break;
        }
        if produced.chunks.len() >= OBJECT_CHUNKS_MAX {
            return Err(StoreError::ObjectTooLarge {
                chunk_bytes: chunk_bytes as u32,
                chunks_max: OBJECT_CHUNKS_MAX,
            });
        }
        hasher.update(&buf);
        let index = produced.chunks.len() as u64;
        if let Some(cipher) = cipher {
            cipher
                .seal_in_place(index, &mut buf)
                .map_err(|source| StoreError::Sealing { source })?;
        }
        let cid = ContentId::of(&buf);
        produced.chunks.push(cid);
        // `read` is at most `chunk_bytes`, itself at most CHUNK_BYTES_MAX (a u32).
        produced.chunk_sizes.push(read as u32);
        produced.total_bytes += read as u64;
        batch.cids.push(cid);
        batch.sealed.push(buf);
        batch.data_chunks += 1;
        let last = read < chunk_bytes; // `read_to_end` stops short only at the end
        if let Some((data, parity)) = shape.erasure
            && batch.sealed.len() - group_start == data
        {
            close_group(&mut batch, group_start, parity, shape, produced)?;
            group_start = batch.sealed.len();
        }
        let at_group_end = shape.erasure.is_none() || group_start == batch.sealed.len();
        if batch.data_chunks >= shape.per_batch && at_group_end {
            full_tx.send(batch).map_err(|_| writer_gone())?;
            batch = take_free(&mut buffers)?;
            group_start = 0;
        }
        if last {
            break;
        }
    }
    if let Some((_, parity)) = shape.erasure
        && batch.sealed.len() > group_start
    {
        close_group(&mut batch, group_start, parity, shape, produced)?;
    }
    if !batch.sealed.is_empty() {
        full_tx.send(batch).map_err(|_| writer_gone())?;
    }
    Ok(())
}

/// Closes the group of `batch.sealed[start..]`: computes its `parity`
/// parity chunks, names them and appends them to the batch.
fn close_group(
    batch: &mut Batch,
    start: usize,
    parity: usize,
    shape: &Shape,
    produced: &mut Produced,
) -> Result<(), StoreError> {
    let group = produced.chunks.len().saturating_sub(1) / shape.erasure.map_or(1, |(d, _)| d);
    if produced.parity_chunks.len() + parity > OBJECT_PARITY_CHUNKS_MAX {
        return Err(StoreError::ObjectTooLarge {
            chunk_bytes: shape.chunk_bytes as u32,
            chunks_max: OBJECT_PARITY_CHUNKS_MAX,
        });
    }
    let data: Vec<&[u8]> = batch.sealed[start..].iter().map(Vec::as_slice).collect();
    let shards = crate::erasure::encode(&data, parity)
        .map_err(|source| StoreError::Erasure { group, source })?;
    let pieces = batch.sealed.len() - start + shards.len();
    for shard in shards {
        let cid = ContentId::of(&shard);
        produced.parity_chunks.push(cid);
        batch.cids.push(cid);
        batch.sealed.push(shard);
    }
    batch.groups.push(pieces);
    Ok(())
}

/// Best-effort removal of a failed put's chunks. A sealed object's were
/// sealed under a key drawn for this put alone, so no other object refers
/// to them. A public object's are named by their content and may be
/// another object's too (the same bytes put before): they are left, a
/// little garbage rather than a hole in a live object.
fn remove_chunks<S: ChunkStore + ?Sized>(store: &S, chunks: &[ContentId], options: &PutOptions) {
    if !options.public {
        store.abandon(chunks);
    }
}

/// Reads and validates the manifest named `manifest_cid`.
pub fn read_manifest<S: ChunkStore + ?Sized>(
    store: &S,
    manifest_cid: &ContentId,
) -> Result<Manifest, StoreError> {
    let bytes = store.get(manifest_cid)?;
    Manifest::decode(&bytes).map_err(|source| StoreError::NotAManifest {
        cid: *manifest_cid,
        source,
    })
}

/// Streams the object named `manifest_cid` into `writer`, as its owner
/// (`owner_secret` = `Keypair::x25519_secret()`). Opens every chunk, which
/// authenticates it (its GCM tag at its own index), and checks its size. A
/// public object is read without the key: every chunk's CID and the whole
/// plaintext's BLAKE3 are checked instead.
pub fn get_object<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    manifest_cid: &ContentId,
    owner_secret: &crypto_box::SecretKey,
    writer: W,
) -> Result<GetReceipt, StoreError> {
    let manifest = read_manifest(store, manifest_cid)?;
    if manifest.is_public() {
        return read_object(store, manifest_cid, manifest, None, writer);
    }
    let key = manifest
        .unwrap_key(owner_secret)
        .map_err(|_| StoreError::NotOwner { cid: *manifest_cid })?;
    read_object(store, manifest_cid, manifest, Some(&key), writer)
}

/// Streams the public object named `manifest_cid` into `writer`, as anyone:
/// verifies every chunk's CID and the whole plaintext's BLAKE3. A sealed
/// object is refused ([`StoreError::NotPublic`]).
pub fn get_public_object<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    manifest_cid: &ContentId,
    writer: W,
) -> Result<GetReceipt, StoreError> {
    let manifest = read_manifest(store, manifest_cid)?;
    if !manifest.is_public() {
        return Err(StoreError::NotPublic { cid: *manifest_cid });
    }
    read_object(store, manifest_cid, manifest, None, writer)
}

/// Streams bytes `range` of the object named `manifest_cid` (cut to its
/// size) into `writer`; returns how many were written. Only the chunks that
/// hold the range are read, each verified (CID, and its seal at its own
/// index, which binds it to its place) as in [`get_object`]; the whole
/// plaintext's hash cannot be checked on a part. `owner_secret` opens a
/// sealed object; a public one needs none.
pub fn get_object_range<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    manifest_cid: &ContentId,
    owner_secret: Option<&crypto_box::SecretKey>,
    range: std::ops::Range<u64>,
    writer: W,
) -> Result<u64, StoreError> {
    let manifest = read_manifest(store, manifest_cid)?;
    let key = match (manifest.is_public(), owner_secret) {
        (true, _) => None,
        (false, Some(secret)) => Some(
            manifest
                .unwrap_key(secret)
                .map_err(|_| StoreError::NotOwner { cid: *manifest_cid })?,
        ),
        (false, None) => return Err(StoreError::NotPublic { cid: *manifest_cid }),
    };
    let end = range.end.min(manifest.total_bytes);
    if range.start >= end {
        return Ok(0);
    }
    // The chunks holding [start, end), and where the first one begins.
    let (mut first, mut last, mut first_at, mut at) = (None, 0, 0, 0u64);
    for (index, &size) in manifest.chunk_sizes.iter().enumerate() {
        let next = at + u64::from(size);
        if first.is_none() && next > range.start {
            first = Some(index);
            first_at = at;
        }
        if next >= end {
            last = index;
            break;
        }
        at = next;
    }
    let first = first.unwrap_or(0);
    let cipher = key.as_ref().map(ObjectKey::cipher);
    let mut window = Window {
        inner: writer,
        skip: range.start - first_at,
        take: end - range.start,
    };
    read_chunks(
        store,
        manifest_cid,
        &manifest,
        first..last + 1,
        cipher.as_ref(),
        None,
        &mut window,
    )?;
    window
        .inner
        .flush()
        .map_err(|source| StoreError::Write { source })?;
    Ok(end - range.start)
}

/// Passes on only the bytes after the first `skip`, at most `take` of them.
struct Window<W> {
    inner: W,
    skip: u64,
    take: u64,
}

impl<W: Write> Write for Window<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let skipped = self.skip.min(buf.len() as u64) as usize;
        self.skip -= skipped as u64;
        let rest = &buf[skipped..];
        let keep = (rest.len() as u64).min(self.take) as usize;
        self.inner.write_all(&rest[..keep])?;
        self.take -= keep as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Like [`get_object`] with the object key itself (an executor that opened a
/// key sealed to it with [`crate::open_sealed_key`]).
pub fn get_object_with_key<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    manifest_cid: &ContentId,
    key: &ObjectKey,
    writer: W,
) -> Result<GetReceipt, StoreError> {
    let manifest = read_manifest(store, manifest_cid)?;
    read_object(store, manifest_cid, manifest, Some(key), writer)
}

/// Deletes the object's chunks (data and parity) and then its manifest from
/// `store`; returns how many chunks (manifest included) were removed.
pub fn delete_object<S: ChunkInventory + ?Sized>(
    store: &S,
    manifest_cid: &ContentId,
) -> Result<u64, StoreError> {
    let manifest = read_manifest(store, manifest_cid)?;
    let mut removed = 0;
    for cid in manifest.all_chunks() {
        removed += u64::from(store.delete(cid)?);
    }
    removed += u64::from(store.delete(manifest_cid)?);
    Ok(removed)
}

/// Streams the object described by `manifest` into `writer`: opens its info,
/// runs the reader pipeline, then checks a public object's whole plaintext
/// against its BLAKE3.
fn read_object<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    object: &ContentId,
    manifest: Manifest,
    key: Option<&ObjectKey>,
    mut writer: W,
) -> Result<GetReceipt, StoreError> {
    let info = open_object_info(object, &manifest, key)?;
    let cipher = key.filter(|_| !manifest.is_public()).map(ObjectKey::cipher);
    // A sealed object's chunks are each authenticated when opened (GCM under
    // the object's key, at their own index, their sizes the manifest's), so
    // a whole-plaintext hash would check nothing more and cost a pass over
    // every byte. A public object's chunks are checked by CID alone, by
    // whichever store read them: the whole plaintext is checked here too.
    let mut hasher = cipher.is_none().then(blake3::Hasher::new);
    let written = read_chunks(
        store,
        object,
        &manifest,
        0..manifest.chunks.len(),
        cipher.as_ref(),
        hasher.as_mut(),
        &mut writer,
    )?;
    writer
        .flush()
        .map_err(|source| StoreError::Write { source })?;
    if let Some(hasher) = hasher
        && Hash32::from(hasher.finalize()) != info.plaintext_hash
    {
        return Err(StoreError::PlaintextMismatch { cid: *object });
    }
    debug_assert_eq!(written, manifest.total_bytes);
    Ok(GetReceipt {
        manifest,
        info,
        size_bytes: written,
    })
}

/// Opens the manifest's sealed info with `key` (a public object's is in the
/// clear): a seal that does not open means the wrong key, anything else a
/// bad manifest.
fn open_object_info(
    object: &ContentId,
    manifest: &Manifest,
    key: Option<&ObjectKey>,
) -> Result<ObjectInfo, StoreError> {
    manifest.open_info(key).map_err(|err| match err {
        ManifestError::InfoSeal { .. } => StoreError::KeyMismatch { cid: *object },
        source => StoreError::NotAManifest {
            cid: *object,
            source,
        },
    })
}
