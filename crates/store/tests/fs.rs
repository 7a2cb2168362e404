//! The file-system store beyond the shared contract: persistence across a
//! reopen, crash leftovers, and failures that must leave nothing partial.

// Helpers outside #[test] fns panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use peercloud_store::{ChunkInventory, ChunkStore, FsChunkStore, StoreError, VerifiedChunk};
use peercloud_types::ContentId;

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn chunks_and_totals_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Vec<Vec<u8>> = (0u8..20).map(|i| vec![i; 1000 + usize::from(i)]).collect();
    {
        let store = FsChunkStore::open(dir.path()).unwrap();
        let chunks: Vec<_> = blobs.iter().map(|b| VerifiedChunk::new(b)).collect();
        store.put_many(&chunks).unwrap();
    }
    let store = FsChunkStore::open(dir.path()).unwrap();
    let usage = store.usage().unwrap();
    assert_eq!(usage.chunks, 20);
    assert_eq!(
        usage.bytes,
        blobs.iter().map(|b| b.len() as u64).sum::<u64>()
    );
    for blob in &blobs {
        assert_eq!(&store.get(&ContentId::of(blob)).unwrap(), blob);
    }
}

#[test]
fn chunk_files_are_sharded_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    let cid = ContentId::of(b"where am I");
    store.put(&cid, b"where am I").unwrap();
    let hex = cid.to_hex();
    let expected = dir
        .path()
        .join("chunks")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(&hex);
    assert_eq!(store.chunk_path(&cid), expected);
    assert_eq!(std::fs::read(expected).unwrap(), b"where am I");
}

#[test]
fn temp_files_left_by_a_crash_are_swept_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let cid = ContentId::of(b"kept");
    let leftover = {
        let store = FsChunkStore::open(dir.path()).unwrap();
        store.put(&cid, b"kept").unwrap();
        let path = store.chunk_path(&cid);
        let leftover = path.with_file_name(format!(".{}.1.1.tmp", cid.to_hex()));
        std::fs::write(&leftover, b"half a chu").unwrap();
        leftover
    };
    let store = FsChunkStore::open(dir.path()).unwrap();
    assert!(!leftover.exists(), "temp file swept");
    assert_eq!(store.get(&cid).unwrap(), b"kept", "chunks untouched");
}

#[test]
fn an_io_error_names_the_path_and_leaves_no_partial_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    // Two chunks in different top-level shards; block the second one's shard
    // with a plain file so creating its directory fails after the first
    // chunk's temp file was written.
    let first = b"first chunk".to_vec();
    let first_cid = ContentId::of(&first);
    let second = (0u32..)
        .map(|i| i.to_le_bytes().to_vec())
        .find(|b| ContentId::of(b).digest()[0] != first_cid.digest()[0])
        .unwrap();
    let second_cid = ContentId::of(&second);
    let blocked = dir
        .path()
        .join("chunks")
        .join(format!("{:02x}", second_cid.digest()[0]));
    std::fs::write(&blocked, b"not a directory").unwrap();

    let err = store
        .put_many(&[VerifiedChunk::new(&first), VerifiedChunk::new(&second)])
        .unwrap_err();
    match &err {
        StoreError::Io { path, .. } => assert!(path.starts_with(&blocked), "{err}"),
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(
        err.to_string().contains(&blocked.display().to_string()),
        "{err}"
    );
    assert!(
        !store.has(&first_cid).unwrap(),
        "the batch is all or nothing"
    );
    let files = files_under(&dir.path().join("chunks"));
    assert_eq!(
        files,
        vec![blocked.clone()],
        "no temp or chunk file left behind"
    );
    assert_eq!(store.usage().unwrap().chunks, 0);

    // Once the obstacle is gone the same batch goes through.
    std::fs::remove_file(&blocked).unwrap();
    store
        .put_many(&[VerifiedChunk::new(&first), VerifiedChunk::new(&second)])
        .unwrap();
    assert_eq!(store.get(&second_cid).unwrap(), second);
}

#[test]
fn a_second_open_of_the_same_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = FsChunkStore::open(dir.path()).unwrap();
    let err = FsChunkStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Metadata { .. }), "{err}");
    assert!(err.to_string().contains("meta.redb"), "{err}");
}

#[test]
fn concurrent_puts_and_deletes_keep_totals_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsChunkStore::open(dir.path()).unwrap();
    let blobs: Vec<Vec<u8>> = (0u16..40).map(|i| i.to_le_bytes().repeat(50)).collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = &store;
            let blobs = &blobs;
            scope.spawn(move || {
                for (i, blob) in blobs.iter().enumerate() {
                    store.put(&ContentId::of(blob), blob).unwrap();
                    if (i + t) % 3 == 0 {
                        store.delete(&ContentId::of(blob)).unwrap();
                    }
                }
            });
        }
    });
    let listed = store.list(None, 1000).unwrap();
    let usage = store.usage().unwrap();
    assert_eq!(usage.chunks, listed.len() as u64);
    assert_eq!(usage.bytes, listed.len() as u64 * 100);
    for cid in &listed {
        store.get(cid).unwrap();
    }
}
