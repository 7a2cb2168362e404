//! Chunk files written around the page cache (`O_DIRECT`, Linux).
//!
//! A holder writes chunks it will rarely read soon: copying each one into the
//! page cache first cost more CPU than anything else on the put path (the
//! kernel's copy into freshly allocated cache pages, about 1–2.5 ms per MiB
//! measured on the build machine, against ~0.3 ms with `O_DIRECT`). So a new
//! chunk file is opened with `O_DIRECT` and written from a block-aligned
//! buffer: the bytes go in pieces of [`DIRECT_BUFFER_BYTES`], the last one
//! padded with zeros to the block size and the file then cut back to the
//! chunk's length (`ftruncate`; the `fdatasync` that follows makes the size
//! durable with the data).
//!
//! A file system that refuses `O_DIRECT` (tmpfs, some network file systems)
//! answers `EINVAL` at the open or the first write; the store then writes
//! that file, and every later one, through the page cache as before
//! ([`ChunkWriter::direct`] turns off once). Other platforms always write
//! through the page cache.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Alignment `O_DIRECT` needs of the buffer's address, the file offset and
/// the length: the largest logical block size in common use.
const DIRECT_ALIGN: usize = 4096;
/// Bytes written per `O_DIRECT` write: one 1 MiB chunk in one call.
const DIRECT_BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    /// This thread's aligned staging buffer (allocated on first use, then
    /// reused: a fresh megabyte per chunk would page-fault it in each time).
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Creates and writes new chunk files, around the page cache while the file
/// system allows it.
#[derive(Debug)]
pub(super) struct ChunkWriter {
    direct: AtomicBool,
}

impl ChunkWriter {
    pub(super) fn new() -> ChunkWriter {
        ChunkWriter {
            direct: AtomicBool::new(cfg!(target_os = "linux")),
        }
    }

    /// Whether new files still go around the page cache.
    pub(super) fn direct(&self) -> bool {
        self.direct.load(Ordering::Relaxed)
    }

    /// Creates `path` (it must not exist) and writes `bytes` to it, not yet
    /// synced. The file handed back is the one to fsync.
    pub(super) fn create(&self, path: &Path, bytes: &[u8]) -> io::Result<File> {
        if self.direct() {
            match create_direct(path, bytes) {
                Ok(file) => return Ok(file),
                Err(e) if e.raw_os_error() == Some(EINVAL) => {
                    self.direct.store(false, Ordering::Relaxed);
                    tracing::info!(
                        path = %path.display(),
                        "the file system refuses O_DIRECT; chunk files go through the page cache"
                    );
                    // A refused write may have left the file created: start over.
                    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
                    file.write_all(bytes)?;
                    return Ok(file);
                }
                Err(e) => return Err(e),
            }
        }
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(bytes)?;
        Ok(file)
    }
}

#[cfg(target_os = "linux")]
const EINVAL: i32 = libc::EINVAL;
#[cfg(not(target_os = "linux"))]
const EINVAL: i32 = 22;

#[cfg(target_os = "linux")]
fn create_direct(path: &Path, bytes: &[u8]) -> io::Result<File> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};

    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    STAGING.with_borrow_mut(|staging| {
        if staging.is_empty() {
            *staging = vec![0u8; DIRECT_BUFFER_BYTES + DIRECT_ALIGN];
        }
        let start = staging.as_ptr().align_offset(DIRECT_ALIGN);
        let Some(aligned) = staging.get_mut(start..start + DIRECT_BUFFER_BYTES) else {
            return Err(io::Error::from_raw_os_error(EINVAL));
        };
        let mut offset = 0u64;
        for piece in bytes.chunks(DIRECT_BUFFER_BYTES) {
            let padded = piece.len().next_multiple_of(DIRECT_ALIGN);
            aligned[..piece.len()].copy_from_slice(piece);
            aligned[piece.len()..padded].fill(0);
            file.write_all_at(&aligned[..padded], offset)?;
            offset += piece.len() as u64;
        }
        Ok(())
    })?;
    if !bytes.len().is_multiple_of(DIRECT_ALIGN) {
        file.set_len(bytes.len() as u64)?;
    }
    Ok(file)
}

#[cfg(not(target_os = "linux"))]
fn create_direct(_path: &Path, _bytes: &[u8]) -> io::Result<File> {
    Err(io::Error::from_raw_os_error(EINVAL))
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
        writer
            .create(&dir.path().join("chunk"), &[7u8; 5000])
            .expect("write");
        assert_eq!(writer.direct(), allowed);
    }
}
