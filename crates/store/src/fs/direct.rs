//! Chunk files written around the page cache (`O_DIRECT`, Linux).
//!
//! A holder writes chunks it will rarely read soon: copying each one into the
//! page cache first cost more CPU than anything else on the put path (the
//! kernel's copy into freshly allocated cache pages, about 1–2.5 ms per MiB
//! measured on the build machine, against ~0.3 ms with `O_DIRECT`). So a new
//! chunk file is opened with `O_DIRECT` and its block-aligned head written
//! from an aligned staging buffer; the tail that does not fill a block (a
//! sealed chunk is 1 MiB + 16 bytes) goes through a second, buffered handle
//! at its offset, so nothing is padded and the file is never cut back. The
//! caller's `fdatasync` flushes the inode, both writes and the size.
//!
//! A file system that refuses `O_DIRECT` (tmpfs before Linux 6.6, some
//! network file systems) answers `EINVAL` at the open or the first write;
//! the store then writes that file, and every later one, through the page
//! cache ([`ChunkWriter::direct`] turns off once). A short or failed write
//! later in a file is that file's error, not a reason to turn it off. Other
//! platforms always write through the page cache.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Alignment `O_DIRECT` needs of the buffer's address, the file offset and
/// the length: the largest logical block size in common use.
const DIRECT_ALIGN: usize = 4096;
/// Bytes staged per `O_DIRECT` write: a whole 1 MiB chunk's head in one call.
const DIRECT_BUFFER_BYTES: usize = 1 << 20;
/// Staging buffers kept for reuse: one, warm for the next chunk; more
/// writers at once allocate their own and drop it after (the allocator
/// hands a just-freed megabyte back without new page faults, and returns
/// it to the system when the node goes idle, which a larger pool would
/// keep resident: eight of them cost an idle node 8 MB).
const STAGING_KEPT_MAX: usize = 1;

/// Creates and writes new chunk files, around the page cache while the file
/// system allows it.
#[derive(Debug)]
pub(super) struct ChunkWriter {
    direct: AtomicBool,
    staging: Mutex<Vec<Vec<u8>>>,
}

/// Why a direct write did not complete.
enum DirectFailure {
    /// The file system refuses `O_DIRECT` here: write through the page cache.
    Refused(io::Error),
    /// The write failed for another reason: the file's error.
    Failed(io::Error),
}

impl ChunkWriter {
    pub(super) fn new() -> ChunkWriter {
        ChunkWriter {
            direct: AtomicBool::new(cfg!(target_os = "linux")),
            staging: Mutex::new(Vec::new()),
        }
    }

    /// Whether new files still go around the page cache.
    pub(super) fn direct(&self) -> bool {
        self.direct.load(Ordering::Relaxed)
    }

    /// Creates `path` (it must not exist) and writes `bytes` to it, not yet
    /// synced. The file handed back is the one to fsync.
    pub(super) fn create(&self, path: &Path, bytes: &[u8]) -> io::Result<File> {
        if !self.direct() {
            return create_buffered(path, bytes, false);
        }
        let mut staging = self.take_staging();
        let outcome = create_direct(path, bytes, &mut staging);
        self.return_staging(staging);
        match outcome {
            Ok(file) => Ok(file),
            Err(DirectFailure::Failed(e)) => Err(e),
            Err(DirectFailure::Refused(e)) => {
                self.direct.store(false, Ordering::Relaxed);
                tracing::info!(
                    path = %path.display(),
                    err = %e,
                    "the file system refuses O_DIRECT; chunk files go through the page cache"
                );
                // The refused attempt may have created the file: start over.
                create_buffered(path, bytes, true)
            }
        }
    }

    fn take_staging(&self) -> Vec<u8> {
        let kept = self
            .staging
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        kept.unwrap_or_else(|| vec![0u8; DIRECT_BUFFER_BYTES + DIRECT_ALIGN])
    }

    fn return_staging(&self, staging: Vec<u8>) {
        let mut kept = self.staging.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < STAGING_KEPT_MAX {
            kept.push(staging);
        }
    }
}

/// Writes `bytes` to `path` through the page cache: a new file, or (after a
/// refused direct attempt) the one that attempt may have left.
fn create_buffered(path: &Path, bytes: &[u8], may_exist: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if may_exist {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    Ok(file)
}

#[cfg(target_os = "linux")]
fn create_direct(path: &Path, bytes: &[u8], staging: &mut [u8]) -> Result<File, DirectFailure> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};

    let refused_or_failed = |e: io::Error| {
        if e.raw_os_error() == Some(libc::EINVAL) {
            DirectFailure::Refused(e)
        } else {
            DirectFailure::Failed(e)
        }
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .map_err(refused_or_failed)?;
    let start = staging.as_ptr().align_offset(DIRECT_ALIGN);
    let aligned = start
        .checked_add(DIRECT_BUFFER_BYTES)
        .and_then(|end| staging.get_mut(start..end))
        .ok_or_else(|| DirectFailure::Refused(io::Error::other("no aligned staging buffer")))?;
    let head = bytes.len() - bytes.len() % DIRECT_ALIGN;
    let mut offset = 0usize;
    for piece in bytes[..head].chunks(DIRECT_BUFFER_BYTES) {
        aligned[..piece.len()].copy_from_slice(piece);
        let written = file
            .write_at(&aligned[..piece.len()], offset as u64)
            .map_err(|e| {
                // Only the first write tells whether the file system takes
                // O_DIRECT at all.
                if offset == 0 {
                    refused_or_failed(e)
                } else {
                    DirectFailure::Failed(e)
                }
            })?;
        if written != piece.len() {
            return Err(DirectFailure::Failed(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short direct write: {written} of {} bytes at offset {offset}",
                    piece.len()
                ),
            )));
        }
        offset += piece.len();
    }
    if head == bytes.len() {
        return Ok(file);
    }
    let tail = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(DirectFailure::Failed)?;
    tail.write_all_at(&bytes[head..], head as u64)
        .map_err(DirectFailure::Failed)?;
    Ok(tail)
}

#[cfg(not(target_os = "linux"))]
fn create_direct(_path: &Path, _bytes: &[u8], _staging: &mut [u8]) -> Result<File, DirectFailure> {
    Err(DirectFailure::Refused(io::Error::other(
        "O_DIRECT is used on Linux only",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths around the block and buffer edges read back exactly, with no
    /// padding left at the end, through whichever path the file system takes.
    #[test]
    fn files_read_back_at_their_length() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = ChunkWriter::new();
        let lengths = [
            0,
            1,
            DIRECT_ALIGN - 1,
            DIRECT_ALIGN,
            DIRECT_ALIGN + 1,
            DIRECT_BUFFER_BYTES - 1,
            DIRECT_BUFFER_BYTES,
            DIRECT_BUFFER_BYTES + DIRECT_ALIGN + 7,
            3 * DIRECT_BUFFER_BYTES,
        ];
        for (i, len) in lengths.into_iter().enumerate() {
            let bytes: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
            let path = dir.path().join(format!("chunk-{i}"));
            let file = writer.create(&path, &bytes).expect("write");
            file.sync_data().expect("sync");
            drop(file);
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "length {len}");
        }
    }

    /// The page-cache path after a refused direct attempt takes over the
    /// file that attempt may have created, and writes it whole.
    #[test]
    fn the_fallback_rewrites_a_file_the_refused_attempt_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chunk");
        std::fs::write(&path, vec![9u8; 3 * DIRECT_ALIGN]).expect("left over");
        let bytes: Vec<u8> = (0..DIRECT_ALIGN + 5).map(|b| b as u8).collect();
        let file = create_buffered(&path, &bytes, true).expect("write");
        file.sync_data().expect("sync");
        assert_eq!(std::fs::read(&path).expect("read"), bytes);
        let missing = dir.path().join("never-created");
        create_buffered(&missing, b"abc", true).expect("created");
        assert_eq!(std::fs::read(&missing).expect("read"), b"abc");
        assert!(create_buffered(&path, b"x", false).is_err(), "create_new");
    }

    /// Staging buffers are reused, and at most a few are kept.
    #[test]
    fn staging_buffers_are_kept_up_to_the_bound() {
        let writer = ChunkWriter::new();
        let taken: Vec<Vec<u8>> = (0..STAGING_KEPT_MAX + 3)
            .map(|_| writer.take_staging())
            .collect();
        for staging in taken {
            assert!(staging.len() >= DIRECT_BUFFER_BYTES + DIRECT_ALIGN);
            writer.return_staging(staging);
        }
        let kept = writer.staging.lock().expect("lock").len();
        assert_eq!(kept, STAGING_KEPT_MAX);
    }

    /// A file that already exists is refused, not overwritten.
    #[test]
    fn an_existing_file_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chunk");
        std::fs::write(&path, b"kept").expect("write");
        let err = ChunkWriter::new()
            .create(&path, b"other")
            .expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"kept");
    }

    /// On an ext4 or xfs temp dir (the build machines) the direct path is
    /// the one taken.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_direct_path_stays_on_where_the_file_system_allows_it() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let probe = dir.path().join("probe");
        let allowed = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .and_then(|f| {
                use std::os::unix::fs::FileExt;
                let mut block = vec![0u8; 2 * DIRECT_ALIGN];
                let start = block.as_ptr().align_offset(DIRECT_ALIGN);
                f.write_all_at(&block[start..start + DIRECT_ALIGN], 0)?;
                block.clear();
                Ok(())
            })
            .is_ok();
        let writer = ChunkWriter::new();
        // A chunk under a block has no direct part: it must not turn the
        // direct path off either.
        for len in [1, DIRECT_ALIGN - 1, 5000] {
            writer
                .create(&dir.path().join(format!("chunk-{len}")), &vec![7u8; len])
                .expect("write");
        }
        assert_eq!(writer.direct(), allowed);
    }
}
