//! Storage pipeline throughput, next to the ceilings it is bounded by, all
//! measured in the same run (PERF.md: quote figures as a ratio to these).
//!
//! - `ceilings/*`: BLAKE3 and AES-256-GCM alone over 1 MiB chunks, and the
//!   disk's sequential write + fsync of one 1 GiB file.
//! - `seal/*`: the CPU part of a put (plaintext BLAKE3, seal, CID), no store;
//!   and `put_object` into the in-memory store.
//! - `fs/*`: `put_object` of a 1 GiB object into an `FsChunkStore` in a temp
//!   dir under the target directory (the same disk), and `get_object` of it
//!   (its chunks are then in the page cache: a warm read); and the store
//!   alone (`put_many` of already-sealed chunks), to split a put's time
//!   between CPU and disk.
//!
//! - `erasure/*`: Reed-Solomon RS(4+2) parity of a group of four 1 MiB
//!   sealed chunks, and recovery of the group with two of its six shards
//!   lost (both data: the worst case); throughput counts the group's data.
//!   Then whole 64 MiB RS(4+2) objects in memory: `put_object` (next to
//!   `seal/put_object_mem_store`), and `get_object` intact and with one
//!   data chunk of every group lost (each group recovered).
//!
//! Run: `cargo bench -p peercloud-store -- --warm-up-time 1 --measurement-time 10`

// A bench has no caller to report an error to: a failure should abort it loudly.
#![allow(clippy::unwrap_used)]

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use peercloud_store::{
    CHUNK_BYTES_DEFAULT, ChunkInventory, ChunkStore, FsChunkStore, MemChunkStore, ObjectKey,
    PutOptions, Redundancy, TAG_BYTES, VerifiedChunk, delete_object, get_object, put_object,
};
use peercloud_types::{ContentId, Keypair};

/// The object size of the disk benches: large enough that page-cache
/// write-back and per-batch costs are all paid inside the measurement.
const OBJECT_BYTES: u64 = 1 << 30;
/// Input of the CPU-only benches: 64 MiB, well past every CPU cache.
const CPU_BYTES: usize = 64 << 20;
/// Distinct sealed-chunk bytes of the store-only bench (held in memory).
const STORE_ONLY_BYTES: usize = 256 << 20;
/// Write size of the raw disk ceiling.
const DISK_WRITE_BYTES: usize = 8 << 20;

/// A reader of `remaining` bytes cycling through a random 1 MiB pattern.
/// Repeated plaintext is fine: each put draws a fresh key, so every sealed
/// chunk (and so every file written) is distinct.
struct PatternReader<'a> {
    pattern: &'a [u8],
    offset: usize,
    remaining: u64,
}

impl Read for PatternReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.pattern.len() - self.offset)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.pattern[self.offset..self.offset + n]);
        self.offset = (self.offset + n) % self.pattern.len();
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"peercloud bench")
        .finalize_xof()
        .fill(&mut out);
    out
}

fn ceilings(c: &mut Criterion) {
    let data = random_bytes(CPU_BYTES);
    let chunk = CHUNK_BYTES_DEFAULT as usize;
    let mut group = c.benchmark_group("ceilings");
    group.throughput(Throughput::Bytes(CPU_BYTES as u64));
    group.sample_size(10);
    group.bench_function("blake3_1MiB_chunks", |b| {
        b.iter(|| {
            for part in data.chunks(chunk) {
                std::hint::black_box(blake3::hash(part));
            }
        })
    });
    let cipher = ObjectKey::generate().unwrap().cipher();
    let mut buf = Vec::with_capacity(chunk + TAG_BYTES);
    buf.extend_from_slice(&data[..chunk]);
    group.bench_function("aes256gcm_1MiB_chunks", |b| {
        b.iter(|| {
            for index in 0..(CPU_BYTES / chunk) as u64 {
                cipher.seal_in_place(index, &mut buf).unwrap();
                buf.truncate(chunk);
            }
            std::hint::black_box(&buf);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ceilings");
    group.throughput(Throughput::Bytes(OBJECT_BYTES));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let block = random_bytes(DISK_WRITE_BYTES);
    group.bench_function("disk_write_fsync_1GiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = dir.path().join("ceiling");
                let start = Instant::now();
                let mut file = std::fs::File::create(&path).unwrap();
                for _ in 0..OBJECT_BYTES as usize / DISK_WRITE_BYTES {
                    file.write_all(&block).unwrap();
                }
                file.sync_all().unwrap();
                total += start.elapsed();
                drop(file);
                std::fs::remove_file(&path).unwrap();
            }
            total
        })
    });
    group.finish();
}

fn seal_only(c: &mut Criterion) {
    let data = random_bytes(CPU_BYTES);
    let chunk = CHUNK_BYTES_DEFAULT as usize;
    let owner = Keypair::generate();
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(CPU_BYTES as u64));
    group.sample_size(10);
    let cipher = ObjectKey::generate().unwrap().cipher();
    let mut buf = Vec::with_capacity(chunk + TAG_BYTES);
    group.bench_function("hash_seal_cid_no_store", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for (index, part) in data.chunks(chunk).enumerate() {
                buf.clear();
                buf.extend_from_slice(part);
                hasher.update(&buf);
                cipher.seal_in_place(index as u64, &mut buf).unwrap();
                std::hint::black_box(ContentId::of(&buf));
            }
            std::hint::black_box(hasher.finalize());
        })
    });
    let store = MemChunkStore::new();
    group.bench_function("put_object_mem_store", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let receipt =
                    put_object(&store, &data[..], &owner.public(), &PutOptions::default()).unwrap();
                total += start.elapsed();
                delete_object(&store, &receipt.manifest_cid).unwrap();
            }
            total
        })
    });
    group.finish();
}

fn fs_object(c: &mut Criterion) {
    let pattern = random_bytes(CHUNK_BYTES_DEFAULT as usize);
    let owner = Keypair::generate();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    let object = || PatternReader {
        pattern: &pattern,
        offset: 0,
        remaining: OBJECT_BYTES,
    };

    let mut group = c.benchmark_group("fs");
    group.throughput(Throughput::Bytes(OBJECT_BYTES));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("put_object_1GiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let receipt =
                    put_object(&store, object(), &owner.public(), &PutOptions::default()).unwrap();
                total += start.elapsed();
                // Untimed: keep the disk from filling up across iterations.
                delete_object(&store, &receipt.manifest_cid).unwrap();
            }
            total
        })
    });
    // The store alone: already-sealed 1 MiB chunks in 8 MiB batches from two
    // threads, as put_object's writers hand them over.
    let chunks: Vec<Vec<u8>> = (0..STORE_ONLY_BYTES >> 20)
        .map(|i| {
            let mut chunk = pattern.clone();
            chunk[..8].copy_from_slice(&i.to_le_bytes());
            chunk
        })
        .collect();
    group.throughput(Throughput::Bytes(STORE_ONLY_BYTES as u64));
    group.bench_function("put_many_256MiB_store_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for half in chunks.chunks(chunks.len() / 2) {
                        let store = &store;
                        scope.spawn(move || {
                            for batch in half.chunks(8) {
                                let batch: Vec<_> =
                                    batch.iter().map(|c| VerifiedChunk::new(c)).collect();
                                store.put_many(&batch).unwrap();
                            }
                        });
                    }
                });
                total += start.elapsed();
                for chunk in &chunks {
                    store.delete(&ContentId::of(chunk)).unwrap();
                }
            }
            total
        })
    });
    group.throughput(Throughput::Bytes(OBJECT_BYTES));
    let receipt = put_object(&store, object(), &owner.public(), &PutOptions::default()).unwrap();
    let secret = owner.x25519_secret();
    group.bench_function("get_object_1GiB_warm", |b| {
        b.iter(|| get_object(&store, &receipt.manifest_cid, &secret, io::sink()).unwrap())
    });
    group.finish();
}

fn erasure(c: &mut Criterion) {
    const DATA: usize = 4;
    const PARITY: usize = 2;
    let chunks: Vec<Vec<u8>> = (0..DATA)
        .map(|_| random_bytes(CHUNK_BYTES_DEFAULT as usize + TAG_BYTES))
        .collect();
    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let lens: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let parity = peercloud_store::erasure::encode(&refs, PARITY).unwrap();
    let mut shards: Vec<Option<Vec<u8>>> = chunks.iter().cloned().chain(parity).map(Some).collect();
    shards[0] = None;
    shards[2] = None;

    let mut group = c.benchmark_group("erasure");
    group.throughput(Throughput::Bytes((lens.iter().sum::<usize>()) as u64));
    group.bench_function("encode_rs_4_2", |b| {
        b.iter(|| peercloud_store::erasure::encode(&refs, PARITY).unwrap())
    });
    group.bench_function("recover_rs_4_2_two_data_lost", |b| {
        b.iter(|| peercloud_store::erasure::recover(&lens, &shards).unwrap())
    });
    group.finish();

    // Whole objects in memory: the put's extra CPU (parity, its CIDs) next
    // to `seal/put_object_mem_store`, and a get that recovers every group.
    let data = random_bytes(CPU_BYTES);
    let owner = Keypair::generate();
    let rs = PutOptions {
        redundancy: Redundancy::Erasure {
            data: DATA as u8,
            parity: PARITY as u8,
        },
        ..PutOptions::default()
    };
    let mut group = c.benchmark_group("erasure");
    group.throughput(Throughput::Bytes(CPU_BYTES as u64));
    group.sample_size(10);
    let store = MemChunkStore::new();
    group.bench_function("put_object_rs_4_2_mem_store", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let receipt = put_object(&store, &data[..], &owner.public(), &rs).unwrap();
                total += start.elapsed();
                delete_object(&store, &receipt.manifest_cid).unwrap();
            }
            total
        })
    });
    let receipt = put_object(&store, &data[..], &owner.public(), &rs).unwrap();
    let secret = owner.x25519_secret();
    group.bench_function("get_object_rs_4_2_mem_store_intact", |b| {
        b.iter(|| get_object(&store, &receipt.manifest_cid, &secret, io::sink()).unwrap())
    });
    // The first data chunk of every group lost: each group is recovered.
    for g in 0..receipt.manifest.group_count() {
        let first = receipt.manifest.group(g).unwrap().data.start;
        store.delete(&receipt.manifest.chunks[first]).unwrap();
    }
    group.bench_function("get_object_rs_4_2_mem_store_one_lost_per_group", |b| {
        b.iter(|| get_object(&store, &receipt.manifest_cid, &secret, io::sink()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, ceilings, seal_only, fs_object, erasure);
criterion_main!(benches);
