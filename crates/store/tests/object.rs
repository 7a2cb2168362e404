//! The object pipeline end to end: put and get through real stores, and every
//! way a read must fail loudly instead of returning wrong bytes.

// Helpers outside #[test] fns panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

mod common;

use common::FailingReader;
use std::io::{self, Read};

use peercloud_store::{
    CHUNK_BYTES_DEFAULT, ChunkInventory, ChunkStore, FsChunkStore, Manifest, ManifestError,
    MemChunkStore, ObjectKey, PutOptions, Redundancy, SealError, StoreError, delete_object,
    get_object, get_object_range, get_object_with_key, get_public_object, open_sealed_key,
    put_object, read_manifest, seal_chunk, seal_key_to,
};
use peercloud_types::{ContentId, Hash32, Keypair, PublicKey};
use proptest::prelude::*;

const MIB: usize = 1 << 20;
/// Small chunks keep the multi-chunk cases fast.
const SMALL_CHUNK_BYTES: u32 = 64 << 10;

/// Deterministic, incompressible-looking test content.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = *blake3::hash(&[seed]).as_bytes();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = *blake3::hash(&block).as_bytes();
    }
    out.truncate(len);
    out
}

fn small() -> PutOptions {
    PutOptions {
        chunk_bytes: SMALL_CHUNK_BYTES,
        ..PutOptions::default()
    }
}

fn fs_store() -> (tempfile::TempDir, FsChunkStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    (dir, store)
}

fn get_bytes<S: ChunkStore>(
    store: &S,
    cid: &ContentId,
    owner: &Keypair,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    get_object(store, cid, &owner.x25519_secret(), &mut out)?;
    Ok(out)
}

/// A get that must fail: its error and what it wrote before failing.
fn get_failing<S: ChunkStore>(
    store: &S,
    cid: &ContentId,
    owner: &Keypair,
) -> (StoreError, Vec<u8>) {
    let mut partial = Vec::new();
    let err = get_object(store, cid, &owner.x25519_secret(), &mut partial).unwrap_err();
    (err, partial)
}

#[test]
fn round_trips_at_the_chunk_boundaries_on_disk() {
    let (_dir, store) = fs_store();
    let owner = Keypair::generate();
    let chunk = SMALL_CHUNK_BYTES as usize;
    for len in [
        0,
        1,
        chunk - 1,
        chunk,
        chunk + 1,
        MIB,
        MIB + 1,
        3 * MIB + 17,
    ] {
        let data = content(len, len as u8);
        let receipt = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
        assert_eq!(receipt.size_bytes, len as u64);
        assert_eq!(
            receipt.manifest.chunks.len(),
            len.div_ceil(chunk),
            "len {len}"
        );
        assert!(
            receipt
                .manifest
                .chunk_sizes
                .iter()
                .all(|&s| s as usize <= chunk)
        );
        assert_eq!(receipt.manifest_cid, receipt.manifest.cid());
        assert_eq!(
            get_bytes(&store, &receipt.manifest_cid, &owner).unwrap(),
            data,
            "len {len}"
        );
    }
}

#[test]
fn default_chunking_and_the_sealed_description() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let data = content(2 * MIB + 3, 1);
    let options = PutOptions {
        content_type: Some("application/octet-stream".into()),
        name: Some("photos/cat.raw".into()),
        ..PutOptions::default()
    };
    let receipt = put_object(&store, &data[..], &owner.public(), &options).unwrap();
    let manifest = &receipt.manifest;
    assert_eq!(
        manifest.chunk_sizes,
        vec![CHUNK_BYTES_DEFAULT, CHUNK_BYTES_DEFAULT, 3]
    );
    assert_eq!(manifest.redundancy, Redundancy::Replicas(3));
    assert_eq!(manifest.sealed_bytes(), data.len() as u64 + 3 * 16);
    // Chunks, then the manifest: four chunks in the store.
    assert_eq!(store.usage().unwrap().chunks, 4);
    let mut out = Vec::new();
    let got = get_object(
        &store,
        &receipt.manifest_cid,
        &owner.x25519_secret(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, data);
    assert_eq!(got.info.plaintext_hash, Hash32::of(&data));
    assert_eq!(got.info, receipt.info);
    assert_eq!(got.info.name.as_deref(), Some("photos/cat.raw"));
    assert_eq!(
        got.info.content_type.as_deref(),
        Some("application/octet-stream")
    );
    // The public manifest bytes reveal neither the name nor the content hash.
    let public = manifest.encode();
    assert!(!public.windows(7).any(|w| w == b"cat.raw"));
    assert!(
        !public
            .windows(32)
            .any(|w| w == Hash32::of(&data).as_bytes())
    );
}

#[test]
fn the_same_content_twice_shares_no_chunk() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let data = content(300_000, 2);
    let a = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let b = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    assert_ne!(a.manifest_cid, b.manifest_cid);
    assert!(
        a.manifest
            .chunks
            .iter()
            .all(|c| !b.manifest.chunks.contains(c))
    );
}

#[test]
fn only_the_owner_or_a_key_holder_reads() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let stranger = Keypair::generate();
    let data = content(200_000, 3);
    let receipt = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let cid = receipt.manifest_cid;
    let err = get_bytes(&store, &cid, &stranger).unwrap_err();
    assert!(
        matches!(err, StoreError::NotOwner { cid: c } if c == cid),
        "{err}"
    );

    // The owner hands the key to an executor, sealed to the executor's key.
    let executor = Keypair::generate();
    let key = receipt.manifest.unwrap_key(&owner.x25519_secret()).unwrap();
    assert_eq!(Some(&key), receipt.key.as_ref());
    let sealed = seal_key_to(&key, &executor.public().x25519().unwrap()).unwrap();
    assert_eq!(
        open_sealed_key(&sealed, &stranger.x25519_secret()),
        Err(SealError::KeyNotForRecipient)
    );
    let opened = open_sealed_key(&sealed, &executor.x25519_secret()).unwrap();
    let mut out = Vec::new();
    get_object_with_key(&store, &cid, &opened, &mut out).unwrap();
    assert_eq!(out, data);

    let wrong = ObjectKey::generate().unwrap();
    let err = get_object_with_key(&store, &cid, &wrong, io::sink()).unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
}

#[test]
fn a_public_object_is_plaintext_content_addressed_and_read_by_anyone() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let data = content(5 * SMALL_CHUNK_BYTES as usize + 123, 9);
    for redundancy in [
        Redundancy::Replicas(3),
        Redundancy::Erasure { data: 4, parity: 2 },
    ] {
        let options = PutOptions {
            public: true,
            redundancy,
            name: Some("site/index.html".into()),
            content_type: Some("text/html".into()),
            ..small()
        };
        let receipt = put_object(&store, &data[..], &owner.public(), &options).unwrap();
        assert!(receipt.manifest.is_public() && receipt.key.is_none());
        // Chunks are the plaintext: chunk 0's CID is the BLAKE3 of the first bytes.
        assert_eq!(
            receipt.manifest.chunks[0],
            ContentId::of(&data[..SMALL_CHUNK_BYTES as usize])
        );
        assert_eq!(receipt.manifest.sealed_bytes(), data.len() as u64);
        // Content-addressed: the same bytes and options name the same object.
        let again = put_object(&store, &data[..], &owner.public(), &options).unwrap();
        assert_eq!(again.manifest_cid, receipt.manifest_cid);

        let stranger = Keypair::generate();
        let mut out = Vec::new();
        let got = get_public_object(&store, &receipt.manifest_cid, &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(got.info.name.as_deref(), Some("site/index.html"));
        assert_eq!(
            get_bytes(&store, &receipt.manifest_cid, &stranger).unwrap(),
            data
        );
        // The manifest and its description are readable by any node.
        let manifest = read_manifest(&store, &receipt.manifest_cid).unwrap();
        assert_eq!(
            manifest.open_info(None).unwrap().content_type.as_deref(),
            Some("text/html")
        );
    }

    // A private object is not read as a public one.
    let sealed = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let err = get_public_object(&store, &sealed.manifest_cid, io::sink()).unwrap_err();
    assert!(matches!(err, StoreError::NotPublic { .. }), "{err}");
}

#[test]
fn a_public_object_missing_a_chunk_fails_loudly() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let data = content(3 * SMALL_CHUNK_BYTES as usize, 10);
    let options = PutOptions {
        public: true,
        ..small()
    };
    let receipt = put_object(&store, &data[..], &owner.public(), &options).unwrap();
    // A replicated public object with a chunk gone: the read names it.
    let cid = receipt.manifest.chunks[1];
    store.delete(&cid).unwrap();
    let err = get_public_object(&store, &receipt.manifest_cid, io::sink()).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[test]
fn a_cid_that_is_not_a_manifest_is_refused() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let receipt = put_object(&store, &content(100_000, 4)[..], &owner.public(), &small()).unwrap();
    let data_chunk = receipt.manifest.chunks[0];
    let err = get_bytes(&store, &data_chunk, &owner).unwrap_err();
    assert!(
        matches!(err, StoreError::NotAManifest { cid, source: ManifestError::Decode { .. } } if cid == data_chunk),
        "{err}"
    );
    let absent = ContentId::of(b"never stored");
    assert!(matches!(
        read_manifest(&store, &absent),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_flipped_byte_on_disk_is_corrupt_never_data() {
    let (_dir, store) = fs_store();
    let owner = Keypair::generate();
    let data = content(500_000, 5);
    let receipt = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let victim = receipt.manifest.chunks[3];
    let path = store.chunk_path(&victim);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = get_bytes(&store, &receipt.manifest_cid, &owner).unwrap_err();
    match &err {
        StoreError::Corrupt {
            cid, path: Some(p), ..
        } => {
            assert_eq!(*cid, victim);
            assert_eq!(p, &path);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(
        err.to_string().contains(&victim.to_hex()),
        "message names the file: {err}"
    );

    // The manifest itself is checked the same way.
    let manifest_path = store.chunk_path(&receipt.manifest_cid);
    let mut bytes = std::fs::read(&manifest_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&manifest_path, &bytes).unwrap();
    assert!(matches!(
        read_manifest(&store, &receipt.manifest_cid),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn missing_chunks_and_truncated_or_reordered_objects_fail() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let data = content(5 * SMALL_CHUNK_BYTES as usize - 1000, 6);
    let receipt = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let key = receipt.key.clone().unwrap();
    let last = receipt.manifest.chunks.len() - 1;

    // Truncated: the last chunk, validly sealed at its index, holds fewer bytes.
    let start = last * SMALL_CHUNK_BYTES as usize;
    let short = seal_chunk(&key, last as u64, &data[start..data.len() - 10]).unwrap();
    let short_cid = ContentId::of(&short);
    store.put(&short_cid, &short).unwrap();
    let mut truncated = receipt.manifest.clone();
    truncated.chunks[last] = short_cid;
    let truncated_cid = store_manifest(&store, &truncated);
    let err = get_bytes(&store, &truncated_cid, &owner).unwrap_err();
    assert!(
        matches!(err, StoreError::Truncated { expected_bytes, found_bytes, .. }
            if expected_bytes == data.len() as u64 && found_bytes == data.len() as u64 - 10),
        "{err}"
    );

    // Reordered: two chunks swapped fail authentication at their new index.
    let mut swapped = receipt.manifest.clone();
    swapped.chunks.swap(0, 1);
    let swapped_cid = store_manifest(&store, &swapped);
    let err = get_bytes(&store, &swapped_cid, &owner).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Seal {
                index: 0,
                source: SealError::Unauthentic { index: 0 },
                ..
            }
        ),
        "{err}"
    );

    // Moved between objects: another object's chunk does not open under this key.
    let other = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let mut foreign = receipt.manifest.clone();
    foreign.chunks[2] = other.manifest.chunks[2];
    let foreign_cid = store_manifest(&store, &foreign);
    let err = get_bytes(&store, &foreign_cid, &owner).unwrap_err();
    assert!(matches!(err, StoreError::Seal { index: 2, .. }), "{err}");

    // Missing: a chunk gone from the store.
    store.delete(&receipt.manifest.chunks[1]).unwrap();
    let err = get_bytes(&store, &receipt.manifest_cid, &owner).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { cid } if cid == receipt.manifest.chunks[1]),
        "{err}"
    );
}

fn store_manifest<S: ChunkStore>(store: &S, manifest: &Manifest) -> ContentId {
    let bytes = manifest.encode();
    let cid = ContentId::of(&bytes);
    store.put(&cid, &bytes).unwrap();
    cid
}

#[test]
fn bad_options_and_owner_keys_are_refused_before_any_write() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let tiny = PutOptions {
        chunk_bytes: 100,
        ..PutOptions::default()
    };
    let err = put_object(&store, &b"x"[..], &owner.public(), &tiny).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Options {
                source: ManifestError::ChunkBytes { .. }
            }
        ),
        "{err}"
    );
    let erasure = PutOptions {
        redundancy: Redundancy::Erasure {
            data: 200,
            parity: 100,
        },
        ..PutOptions::default()
    };
    let err = put_object(&store, &b"x"[..], &owner.public(), &erasure).unwrap_err();
    assert!(matches!(
        err,
        StoreError::Options {
            source: ManifestError::Erasure {
                data: 200,
                parity: 100,
                ..
            }
        }
    ));
    let not_a_point = (0u8..=255)
        .map(|i| PublicKey([i; 32]))
        .find(|k| k.x25519().is_none())
        .expect("some 32-byte strings are not curve points");
    let err = put_object(&store, &b"x"[..], &not_a_point, &PutOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOwnerKey { .. }), "{err}");
    assert_eq!(store.usage().unwrap().chunks, 0);
}

#[test]
fn a_failed_put_leaves_no_chunk_behind() {
    let (_dir, store) = fs_store();
    let owner = Keypair::generate();
    let reader = FailingReader {
        good: 40 * SMALL_CHUNK_BYTES as usize + 5,
    };
    let err = put_object(&store, reader, &owner.public(), &small()).unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert!(err.to_string().contains("the source broke"));
    assert_eq!(
        store.usage().unwrap().chunks,
        0,
        "chunks of the failed put are removed"
    );
}

#[test]
fn a_failing_writer_is_a_typed_error() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let receipt = put_object(&store, &content(300_000, 8)[..], &owner.public(), &small()).unwrap();
    let mut full = [0u8; 1000];
    let err = get_object(
        &store,
        &receipt.manifest_cid,
        &owner.x25519_secret(),
        &mut full[..],
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Write { .. }), "{err}");
}

#[test]
fn delete_object_removes_every_chunk() {
    let (_dir, store) = fs_store();
    let owner = Keypair::generate();
    let keep = put_object(&store, &content(70_000, 9)[..], &owner.public(), &small()).unwrap();
    let gone = put_object(&store, &content(300_000, 10)[..], &owner.public(), &small()).unwrap();
    let removed = delete_object(&store, &gone.manifest_cid).unwrap();
    assert_eq!(removed, gone.manifest.chunks.len() as u64 + 1);
    assert_eq!(
        store.usage().unwrap().chunks,
        keep.manifest.chunks.len() as u64 + 1
    );
    assert!(matches!(
        get_bytes(&store, &gone.manifest_cid, &owner),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        get_bytes(&store, &keep.manifest_cid, &owner).unwrap(),
        content(70_000, 9)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_size_round_trips(len in 0usize..300_000, seed: u8, chunk_kib in 4u32..=64) {
        let store = MemChunkStore::new();
        let owner = Keypair::from_seed(&[seed; 32]);
        let data = content(len, seed);
        let options = PutOptions { chunk_bytes: chunk_kib << 10, ..PutOptions::default() };
        let receipt = put_object(&store, &data[..], &owner.public(), &options).unwrap();
        prop_assert_eq!(receipt.size_bytes, len as u64);
        prop_assert_eq!(receipt.manifest.chunks.len(), len.div_ceil((chunk_kib << 10) as usize));
        prop_assert_eq!(get_bytes(&store, &receipt.manifest_cid, &owner).unwrap(), data);
    }

    #[test]
    fn a_reader_giving_few_bytes_at_a_time_changes_nothing(len in 0usize..100_000, step in 1usize..5000) {
        struct Dribble<'a> { data: &'a [u8], step: usize }
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.step).min(self.data.len());
                buf[..n].copy_from_slice(&self.data[..n]);
                self.data = &self.data[n..];
                Ok(n)
            }
        }
        let store = MemChunkStore::new();
        let owner = Keypair::from_seed(&[3; 32]);
        let data = content(len, 11);
        let options = PutOptions { chunk_bytes: 4096, ..PutOptions::default() };
        let receipt = put_object(&store, Dribble { data: &data, step }, &owner.public(), &options).unwrap();
        prop_assert!(receipt.manifest.chunk_sizes[..receipt.manifest.chunk_sizes.len().saturating_sub(1)]
            .iter().all(|&s| s == 4096), "every chunk but the last is full");
        prop_assert_eq!(get_bytes(&store, &receipt.manifest_cid, &owner).unwrap(), data);
    }
}

/// A store whose `put_many` fails from the `fail_at`-th call on (a disk that
/// fills up), and that asks gets for `readers` reads in flight (as a network
/// store does).
struct FillingStore {
    inner: MemChunkStore,
    calls: std::sync::atomic::AtomicUsize,
    fail_at: usize,
    readers: usize,
}

impl ChunkStore for FillingStore {
    fn put_many(&self, chunks: &[peercloud_store::VerifiedChunk<'_>]) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if call >= self.fail_at {
            return Err(StoreError::io(
                "writing",
                "/full/disk",
                io::ErrorKind::StorageFull.into(),
            ));
        }
        self.inner.put_many(chunks)
    }
    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        self.inner.get_into(cid, buf)
    }
    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        self.inner.has(cid)
    }
    fn abandon(&self, cids: &[ContentId]) {
        self.inner.abandon(cids)
    }
    fn read_parallelism(&self) -> usize {
        self.readers
    }
}

#[test]
fn a_store_failing_mid_put_stops_the_put_and_leaves_nothing() {
    let owner = Keypair::generate();
    // 40 MiB in 8 MiB batches: five put_many calls if nothing fails.
    for fail_at in [0, 1, 3, 5] {
        let store = FillingStore {
            inner: MemChunkStore::new(),
            calls: 0.into(),
            fail_at,
            readers: 1,
        };
        let reader = io::repeat(7).take(40 << 20);
        let err = put_object(&store, reader, &owner.public(), &small()).unwrap_err();
        assert!(
            matches!(err, StoreError::DiskFull { .. }),
            "fail_at {fail_at}: {err}"
        );
        assert_eq!(store.inner.usage().unwrap().chunks, 0, "fail_at {fail_at}");
    }
}

#[test]
fn parallel_readers_keep_the_chunk_order_and_fail_on_a_bad_chunk() {
    let owner = Keypair::from_seed(&[9; 32]);
    let data = content(23 * SMALL_CHUNK_BYTES as usize + 17, 4);
    for readers in [2, 3, 4, 8, 50] {
        let store = FillingStore {
            inner: MemChunkStore::new(),
            calls: std::sync::atomic::AtomicUsize::new(0),
            fail_at: usize::MAX,
            readers,
        };
        let receipt = put_object(&store, data.as_slice(), &owner.public(), &small()).unwrap();
        let mut back = Vec::new();
        get_object(
            &store,
            &receipt.manifest_cid,
            &owner.x25519_secret(),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, data, "{readers} readers");
        // A missing chunk in the middle is an error, never a short or shuffled object.
        let victim = receipt.manifest.chunks[11];
        store.inner.delete(&victim).unwrap();
        let (err, partial) = get_failing(&store, &receipt.manifest_cid, &owner);
        assert!(
            matches!(err, StoreError::NotFound { cid } if cid == victim),
            "{err}"
        );
        assert_eq!(
            partial[..],
            data[..partial.len()],
            "what was written is a prefix"
        );
    }
}

#[test]
fn a_range_reads_only_its_chunks_and_cuts_them_exactly() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let data = content(5 * SMALL_CHUNK_BYTES as usize + 1234, 7);
    let receipt = put_object(&store, &data[..], &owner.public(), &small()).unwrap();
    let chunk = u64::from(SMALL_CHUNK_BYTES);
    let len = data.len() as u64;
    let read = |store: &MemChunkStore, range: std::ops::Range<u64>| {
        let mut out = Vec::new();
        let n = get_object_range(
            store,
            &receipt.manifest_cid,
            Some(&owner.x25519_secret()),
            range,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, out.len() as u64);
        out
    };
    for range in [
        0..len,
        0..1,
        chunk - 1..chunk + 1,
        chunk..2 * chunk,
        2 * chunk + 5..4 * chunk + 9,
        len - 3..len,
        len - 3..len + 100,
    ] {
        let end = range.end.min(len) as usize;
        assert!(
            read(&store, range.clone()) == data[range.start as usize..end],
            "range {range:?}"
        );
    }
    assert!(read(&store, len..len + 5).is_empty());
    // Only the chunks that hold the range are read: the others may be gone.
    let lost = receipt.manifest.chunks[0];
    store.delete(&lost).unwrap();
    assert!(read(&store, chunk..3 * chunk) == data[chunk as usize..3 * chunk as usize]);
    // A sealed object is not read without its owner's key.
    let err =
        get_object_range(&store, &receipt.manifest_cid, None, 0..1, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, StoreError::NotPublic { .. }), "{err}");
    let stranger = Keypair::generate();
    let err = get_object_range(
        &store,
        &receipt.manifest_cid,
        Some(&stranger.x25519_secret()),
        0..1,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::NotOwner { .. }), "{err}");
}

#[test]
fn a_range_of_an_erasure_coded_object_is_rebuilt_past_a_lost_chunk() {
    let store = MemChunkStore::new();
    let owner = Keypair::generate();
    let options = PutOptions {
        redundancy: Redundancy::Erasure { data: 4, parity: 2 },
        ..small()
    };
    // Ten chunks: groups of 4, 4 and 2.
    let data = content(9 * SMALL_CHUNK_BYTES as usize + 77, 9);
    let receipt = put_object(&store, &data[..], &owner.public(), &options).unwrap();
    assert_eq!(receipt.manifest.chunks.len(), 10);
    // Chunk 5 (the second group's second) is lost; a range from inside
    // chunk 3 to inside chunk 7 crosses the group boundary and the loss.
    store.delete(&receipt.manifest.chunks[5]).unwrap();
    let chunk = u64::from(SMALL_CHUNK_BYTES);
    let range = 3 * chunk + 100..7 * chunk + 200;
    let mut out = Vec::new();
    get_object_range(
        &store,
        &receipt.manifest_cid,
        Some(&owner.x25519_secret()),
        range.clone(),
        &mut out,
    )
    .unwrap();
    assert!(out == data[range.start as usize..range.end as usize]);
}

/// A store whose sealed reads come unhashed and, for one chunk, altered: a
/// link that skips the CID check and lies.
struct LyingSealedStore {
    inner: MemChunkStore,
    victim: ContentId,
}

impl ChunkStore for LyingSealedStore {
    fn put_many(&self, chunks: &[peercloud_store::VerifiedChunk<'_>]) -> Result<(), StoreError> {
        self.inner.put_many(chunks)
    }
    fn get_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        self.inner.get_into(cid, buf)
    }
    fn get_sealed_into(&self, cid: &ContentId, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        self.inner.get_into(cid, buf)?;
        if *cid == self.victim {
            buf[7] ^= 0x40;
        }
        Ok(())
    }
    fn has(&self, cid: &ContentId) -> Result<bool, StoreError> {
        self.inner.has(cid)
    }
}

#[test]
fn a_sealed_chunk_read_without_its_cid_check_is_still_authenticated() {
    let owner = Keypair::from_seed(&[5; 32]);
    let data = content(9 * SMALL_CHUNK_BYTES as usize + 3, 6);
    let store = LyingSealedStore {
        inner: MemChunkStore::new(),
        victim: ContentId::of(b"none yet"),
    };
    let receipt = put_object(&store, data.as_slice(), &owner.public(), &small()).unwrap();
    assert_eq!(
        get_bytes(&store, &receipt.manifest_cid, &owner).unwrap(),
        data
    );
    let victim = receipt.manifest.chunks[4];
    let store = LyingSealedStore { victim, ..store };
    let (err, partial) = get_failing(&store, &receipt.manifest_cid, &owner);
    assert!(
        matches!(err, StoreError::Seal { index: 4, chunk, .. } if chunk == victim),
        "{err}"
    );
    assert_eq!(partial[..], data[..4 * SMALL_CHUNK_BYTES as usize]);
    // A range over the altered chunk fails the same way.
    let start = 4 * u64::from(SMALL_CHUNK_BYTES) + 10;
    let err = get_object_range(
        &store,
        &receipt.manifest_cid,
        Some(&owner.x25519_secret()),
        start..start + 100,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Seal { index: 4, .. }), "{err}");
}

#[test]
fn a_one_chunk_object_is_stored_with_its_manifest_in_one_call() {
    let owner = Keypair::from_seed(&[8; 32]);
    for len in [1, 4096, SMALL_CHUNK_BYTES as usize] {
        let store = FillingStore {
            inner: MemChunkStore::new(),
            calls: 0.into(),
            fail_at: usize::MAX,
            readers: 1,
        };
        let data = content(len, 2);
        let receipt = put_object(&store, data.as_slice(), &owner.public(), &small()).unwrap();
        assert_eq!(receipt.manifest.chunks.len(), 1, "{len} bytes");
        assert_eq!(store.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            get_bytes(&store, &receipt.manifest_cid, &owner).unwrap(),
            data
        );
        // When that call fails, the put fails and leaves nothing behind.
        let failing = FillingStore {
            inner: MemChunkStore::new(),
            calls: 0.into(),
            fail_at: 0,
            readers: 1,
        };
        let err = put_object(&failing, data.as_slice(), &owner.public(), &small()).unwrap_err();
        assert!(err.to_string().contains("/full/disk"), "{err}");
        assert!(failing.inner.list(None, 10).unwrap().is_empty());
    }
    // One byte more is two chunks: the pipeline, then the manifest alone.
    let store = FillingStore {
        inner: MemChunkStore::new(),
        calls: 0.into(),
        fail_at: usize::MAX,
        readers: 1,
    };
    let data = content(SMALL_CHUNK_BYTES as usize + 1, 3);
    let receipt = put_object(&store, data.as_slice(), &owner.public(), &small()).unwrap();
    assert_eq!(receipt.manifest.chunks.len(), 2);
    assert_eq!(store.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
