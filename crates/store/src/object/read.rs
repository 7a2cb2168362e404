//! The get pipeline's reading half: read-ahead threads fetch an object's
//! chunks (round-robin, bounded queues, reused buffers) while the caller's
//! thread opens them in order (all of them, or the run a ranged read
//! needs), recovering an erasure group when a data
//! chunk cannot be read. See the module documentation of `object`.

use std::io::Write;
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use peercloud_types::ContentId;

use super::{READ_AHEAD_CHUNKS, READERS_MAX};
use crate::erasure::chunk_or_recovered;
use crate::error::StoreError;
use crate::manifest::Manifest;
use crate::seal::ChunkCipher;
use crate::store::ChunkStore;

/// The reader pipeline: read-ahead threads fetch the chunks while the
/// caller's thread opens them in order; returns the plaintext bytes written.
pub(super) fn read_chunks<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    object: &ContentId,
    manifest: &Manifest,
    wanted: Range<usize>,
    cipher: Option<&ChunkCipher>,
    hasher: Option<&mut blake3::Hasher>,
    writer: &mut W,
) -> Result<u64, StoreError> {
    thread::scope(|scope| {
        // `readers` threads fetch chunks round-robin (reader r takes chunks r,
        // r + readers, …) into their own bounded queues; taking chunk i from
        // queue i % readers keeps the order without a reorder buffer.
        let readers = store.read_parallelism().clamp(1, READERS_MAX);
        let depth = (READ_AHEAD_CHUNKS / readers).max(1);
        let mut chunk_rxs = Vec::with_capacity(readers);
        let mut spare_txs = Vec::with_capacity(readers);
        let mut read_ahead = Vec::with_capacity(readers);
        let chunks = &manifest.chunks[wanted.clone()];
        // An erasure-coded object's reads go on past a failed chunk: the
        // opener recovers it from its group.
        let past_failures = manifest.group_count() > 0;
        // A sealed chunk is authenticated by its seal when it is opened, so
        // the store may hand it over without hashing it again.
        let sealed = cipher.is_some();
        for reader in 0..readers {
            let (chunk_tx, chunk_rx) = sync_channel::<Result<Vec<u8>, StoreError>>(depth);
            let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(depth + 2);
            chunk_rxs.push(chunk_rx);
            spare_txs.push(spare_tx);
            let mine = chunks.iter().skip(reader).step_by(readers);
            read_ahead.push(scope.spawn(move || {
                read_ahead_chunks(store, mine, chunk_tx, spare_rx, past_failures, sealed)
            }));
        }
        let queues = Queues {
            chunks: &chunk_rxs,
            spares: &spare_txs,
        };
        let opened = open_chunks(
            store, object, manifest, wanted, cipher, &queues, hasher, writer,
        );
        drop(chunk_rxs); // unblocks the read-ahead threads if we stopped early
        for reader in read_ahead {
            reader.join().map_err(|_| StoreError::ThreadPanicked {
                thread: "chunk reader",
            })?;
        }
        opened
    })
}

/// A read-ahead thread: fetches `cids` (reusing buffers from `spare_rx`) onto
/// `chunk_tx`, until the first failure (unless `past_failures`) or until the
/// caller stops taking them; `sealed` chunks with
/// [`ChunkStore::get_sealed_into`].
fn read_ahead_chunks<'a, S: ChunkStore + ?Sized>(
    store: &S,
    cids: impl Iterator<Item = &'a ContentId>,
    chunk_tx: SyncSender<Result<Vec<u8>, StoreError>>,
    spare_rx: Receiver<Vec<u8>>,
    past_failures: bool,
    sealed: bool,
) {
    for cid in cids {
        let mut buf = spare_rx.try_recv().unwrap_or_default();
        let read = if sealed {
            store.get_sealed_into(cid, &mut buf)
        } else {
            store.get_into(cid, &mut buf)
        };
        let result = read.map(|()| buf);
        let failed = result.is_err();
        if chunk_tx.send(result).is_err() || (failed && !past_failures) {
            break;
        }
    }
}

/// The read-ahead threads' queues, reader by reader: chunk `i` arrives on
/// `chunks[i % readers]`, and its emptied buffer goes back on `spares`.
struct Queues<'a> {
    chunks: &'a [Receiver<Result<Vec<u8>, StoreError>>],
    spares: &'a [SyncSender<Vec<u8>>],
}

/// Takes each chunk in order from its reader's queue (or its recovered
/// group), opens it, checks its size, hashes and writes it; returns the
/// plaintext bytes written.
#[allow(clippy::too_many_arguments)]
fn open_chunks<S: ChunkStore + ?Sized, W: Write>(
    store: &S,
    object: &ContentId,
    manifest: &Manifest,
    wanted: Range<usize>,
    cipher: Option<&ChunkCipher>,
    queues: &Queues<'_>,
    mut hasher: Option<&mut blake3::Hasher>,
    writer: &mut W,
) -> Result<u64, StoreError> {
    let readers = queues.chunks.len();
    let mut written: u64 = 0;
    let mut recovered = None;
    let first = wanted.start;
    for (index, (cid, &size)) in manifest
        .chunks
        .iter()
        .zip(&manifest.chunk_sizes)
        .enumerate()
        .skip(first)
        .take(wanted.len())
    {
        let queue = (index - first) % readers;
        let read = queues.chunks[queue]
            .recv()
            .map_err(|_| StoreError::ThreadPanicked {
                thread: "chunk reader",
            })?;
        let mut buf = chunk_or_recovered(store, object, manifest, index, read, &mut recovered)?;
        let index = index as u64;
        if let Some(cipher) = cipher {
            cipher
                .open_in_place(index, &mut buf)
                .map_err(|source| StoreError::Seal {
                    object: *object,
                    index,
                    chunk: *cid,
                    source,
                })?;
        }
        let found = buf.len() as u64;
        if found < u64::from(size) {
            return Err(StoreError::Truncated {
                cid: *object,
                expected_bytes: manifest.total_bytes,
                found_bytes: written + found,
            });
        }
        if found > u64::from(size) {
            return Err(StoreError::ChunkSize {
                cid: *object,
                index,
                expected_bytes: size,
                found_bytes: found,
            });
        }
        if let Some(hasher) = hasher.as_deref_mut() {
            hasher.update(&buf);
        }
        writer
            .write_all(&buf)
            .map_err(|source| StoreError::Write { source })?;
        written += found;
        // A full spare queue only means the reader has buffers enough.
        let _ = queues.spares[queue].try_send(buf);
    }
    Ok(written)
}
