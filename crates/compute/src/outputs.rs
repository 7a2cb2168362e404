//! The `/output` tree on the host side: measuring it while the module runs,
//! listing and hashing it afterwards, emptying it when the module broke its
//! limits, and the run's deterministic output digest. Also the measure of
//! the run's scratch directory ([`check_scratch`]), which is bounded the
//! same way but never listed, hashed or returned.
//!
//! The tree is walked without following symbolic links. Only regular files
//! are outputs; directories only give them their paths, so an empty
//! directory leaves no trace in the digest. Anything else (a symbolic link,
//! a FIFO) is refused: whoever later reads the outputs must never be led
//! outside the directory.

use std::fs;
use std::path::{Path, PathBuf};

use peercloud_types::Hash32;
use serde::{Deserialize, Serialize};

use crate::error::ComputeError;

/// Most entries (files and directories) a job may create under `/output`.
/// Bounds the work of measuring the tree every epoch tick and of hashing it.
/// Part of the protocol: every node must refuse the same runs.
pub const OUTPUT_FILES_MAX: usize = 4096;
/// Most entries (files and directories) a job may keep in its scratch
/// directory at once. Bounds the work of measuring it every epoch tick, as
/// [`OUTPUT_FILES_MAX`] does for `/output`. Part of the protocol: every
/// node must refuse the same runs.
pub const SCRATCH_FILES_MAX: usize = 4096;
/// BLAKE3 `derive_key` context of [`output_digest`].
pub const OUTPUT_DIGEST_CONTEXT: &str = "peercloud output digest v1";

/// One file the module wrote under `/output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path relative to `/output`, `/`-separated (`tiles/0-0.png`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the contents.
    pub blake3: Hash32,
}

/// Size of the tree under `/output`, as measured during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Sum of the sizes of everything but directories.
    pub bytes: u64,
    /// Entries seen (stops counting past [`OUTPUT_FILES_MAX`]).
    pub entries: usize,
}

/// What one walk found.
enum Entry {
    File {
        relative: String,
        path: PathBuf,
        size: u64,
    },
    Other {
        relative: String,
        kind: &'static str,
    },
}

/// Walks the tree under `root` (not following links), calling `visit` for
/// every entry that is not a directory, and stops with an error past
/// [`OUTPUT_FILES_MAX`] entries.
fn walk(root: &Path, mut visit: impl FnMut(Entry)) -> Result<usize, WalkError> {
    let mut entries = 0usize;
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let listing = fs::read_dir(&dir).map_err(|e| WalkError::Io {
            path: dir.clone(),
            error: e,
        })?;
        for entry in listing {
            let entry = entry.map_err(|e| WalkError::Io {
                path: dir.clone(),
                error: e,
            })?;
            entries += 1;
            if entries > OUTPUT_FILES_MAX {
                return Err(WalkError::TooMany);
            }
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(WalkError::NotUtf8 {
                    relative: format!("{prefix}{}", name.to_string_lossy()),
                });
            };
            let relative = format!("{prefix}{name}");
            // `DirEntry::metadata` does not follow symbolic links.
            let metadata = entry.metadata().map_err(|e| WalkError::Io {
                path: path.clone(),
                error: e,
            })?;
            let kind = metadata.file_type();
            if kind.is_dir() {
                pending.push((path, format!("{relative}/")));
            } else if kind.is_file() {
                visit(Entry::File {
                    relative,
                    path,
                    size: metadata.len(),
                });
            } else {
                let kind = if kind.is_symlink() {
                    "a symbolic link"
                } else {
                    "not a regular file"
                };
                visit(Entry::Other { relative, kind });
            }
        }
    }
    Ok(entries)
}

enum WalkError {
    TooMany,
    NotUtf8 {
        relative: String,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl WalkError {
    fn into_compute_error(self) -> ComputeError {
        match self {
            WalkError::TooMany => ComputeError::OutputTooManyFiles {
                files_max: OUTPUT_FILES_MAX,
            },
            WalkError::NotUtf8 { relative } => ComputeError::OutputInvalid {
                path: relative,
                reason: "the name is not UTF-8".into(),
            },
            WalkError::Io { path, error } => ComputeError::Host {
                action: "read the output tree at",
                path,
                reason: error.to_string(),
            },
        }
    }
}

/// Measures the tree under `root` while the module runs. `Err` means it is
/// already over a bound that does not depend on sizes (too many entries).
pub(crate) fn usage(root: &Path) -> Result<Usage, ComputeError> {
    let mut bytes = 0u64;
    let entries = walk(root, |entry| {
        if let Entry::File { size, .. } = entry {
            bytes = bytes.saturating_add(size);
        }
    })
    .map_err(WalkError::into_compute_error)?;
    Ok(Usage { bytes, entries })
}

/// Refuses the scratch directory at `root` when it holds more than
/// `limit_bytes` (the sizes of everything but directories) or more than
/// [`SCRATCH_FILES_MAX`] entries. Links are counted, never followed, and
/// names need not be UTF-8: nothing in it is read.
pub(crate) fn check_scratch(root: &Path, limit_bytes: u64) -> Result<(), ComputeError> {
    let io = |path: &Path, e: std::io::Error| ComputeError::Host {
        action: "measure the scratch directory at",
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut bytes = 0u64;
    let mut entries = 0usize;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            entries += 1;
            if entries > SCRATCH_FILES_MAX {
                return Err(ComputeError::ScratchTooManyFiles {
                    files_max: SCRATCH_FILES_MAX,
                });
            }
            // `DirEntry::metadata` does not follow symbolic links.
            let metadata = entry.metadata().map_err(|e| io(&entry.path(), e))?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                bytes = bytes.saturating_add(metadata.len());
            }
        }
    }
    if bytes > limit_bytes {
        return Err(ComputeError::ScratchTooLarge {
            written_bytes: bytes,
            limit_bytes,
        });
    }
    Ok(())
}

/// Lists and hashes the outputs under `root` after a run, sorted by path,
/// enforcing `limit_bytes`. On any refusal the tree is emptied first.
pub(crate) fn collect(root: &Path, limit_bytes: u64) -> Result<Vec<OutputFile>, ComputeError> {
    let mut files = Vec::new();
    let mut refused = None;
    let mut total = 0u64;
    let walked = walk(root, |entry| match entry {
        Entry::File {
            relative,
            path,
            size,
        } => {
            total = total.saturating_add(size);
            files.push((relative, path));
        }
        Entry::Other { relative, kind } => {
            refused.get_or_insert(ComputeError::OutputInvalid {
                path: relative,
                reason: format!("it is {kind}; outputs are regular files"),
            });
        }
    });
    let refused = match walked {
        Err(e) => Some(e.into_compute_error()),
        Ok(_) if total > limit_bytes => Some(ComputeError::OutputTooLarge {
            written_bytes: total,
            limit_bytes,
        }),
        Ok(_) => refused,
    };
    if let Some(error) = refused {
        empty(root)?;
        return Err(error);
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
        .into_iter()
        .map(|(relative, path)| {
            let (size, blake3) = hash_file(&path)?;
            Ok(OutputFile {
                path: relative,
                size,
                blake3,
            })
        })
        .collect()
}

fn hash_file(path: &Path) -> Result<(u64, Hash32), ComputeError> {
    let io = |e: std::io::Error| ComputeError::Host {
        action: "hash the output",
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok((size, hasher.finalize().into()))
}

/// Removes everything under `root`, keeping `root` itself.
pub(crate) fn empty(root: &Path) -> Result<(), ComputeError> {
    let io = |path: &Path, e: std::io::Error| ComputeError::Host {
        action: "empty the output directory at",
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    for entry in fs::read_dir(root).map_err(|e| io(root, e))? {
        let entry = entry.map_err(|e| io(root, e))?;
        let path = entry.path();
        // `remove_dir_all` does not follow symbolic links; a link is removed as a file.
        let is_dir = entry.file_type().map_err(|e| io(&path, e))?.is_dir();
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// The digest k nodes compare: BLAKE3 in `derive_key` mode (context
/// [`OUTPUT_DIGEST_CONTEXT`]) over
///
/// ```text
/// exit_code: i32 LE
/// stdout:    u64 LE length, bytes
/// stderr:    u64 LE length, bytes
/// outputs:   u64 LE count, then per file sorted by path:
///            u64 LE path length, path (UTF-8), u64 LE size, 32-byte BLAKE3
/// ```
///
/// Wall time and fuel are not in it: wall time differs between machines, and
/// the fuel a node reports is checked against the limits, not compared.
pub fn output_digest(
    exit_code: i32,
    stdout: &[u8],
    stderr: &[u8],
    outputs: &[OutputFile],
) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(OUTPUT_DIGEST_CONTEXT);
    hasher.update(&exit_code.to_le_bytes());
    for stream in [stdout, stderr] {
        hasher.update(&(stream.len() as u64).to_le_bytes());
        hasher.update(stream);
    }
    hasher.update(&(outputs.len() as u64).to_le_bytes());
    for file in outputs {
        hasher.update(&(file.path.len() as u64).to_le_bytes());
        hasher.update(file.path.as_bytes());
        hasher.update(&file.size.to_le_bytes());
        hasher.update(file.blake3.as_bytes());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &[u8]) -> OutputFile {
        OutputFile {
            path: path.into(),
            size: contents.len() as u64,
            blake3: Hash32::of(contents),
        }
    }

    #[test]
    fn every_field_moves_the_digest() {
        let outputs = vec![file("a", b"1"), file("b/c", b"2")];
        let base = output_digest(0, b"out", b"err", &outputs);
        assert_eq!(base, output_digest(0, b"out", b"err", &outputs));
        assert_ne!(base, output_digest(1, b"out", b"err", &outputs));
        assert_ne!(
            base,
            output_digest(0, b"ou", b"terr", &outputs),
            "streams are length-prefixed"
        );
        assert_ne!(base, output_digest(0, b"out", b"err", &outputs[..1]));
        assert_ne!(
            base,
            output_digest(0, b"out", b"err", &[file("a", b"1"), file("b/c", b"3")])
        );
        assert_ne!(
            base,
            output_digest(0, b"out", b"err", &[file("a", b"1"), file("b/d", b"2")])
        );
    }

    #[test]
    fn collect_sorts_hashes_and_enforces_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("z/y")).unwrap();
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        fs::write(dir.path().join("z/y/deep.txt"), b"deep").unwrap();
        fs::write(dir.path().join("b.txt"), b"bee").unwrap();
        fs::write(dir.path().join("a.txt"), b"a").unwrap();
        let listed = collect(dir.path(), 8).unwrap();
        assert_eq!(
            listed,
            vec![
                file("a.txt", b"a"),
                file("b.txt", b"bee"),
                file("z/y/deep.txt", b"deep")
            ]
        );
        assert_eq!(
            usage(dir.path()).unwrap(),
            Usage {
                bytes: 8,
                entries: 6
            }
        );

        let refused = collect(dir.path(), 7).unwrap_err();
        assert!(matches!(
            refused,
            ComputeError::OutputTooLarge {
                written_bytes: 8,
                limit_bytes: 7
            }
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "emptied");
        assert!(dir.path().is_dir(), "the directory itself stays");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_refused_and_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        fs::write(&secret, b"keep me").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        let refused = collect(dir.path(), u64::MAX).unwrap_err();
        assert!(
            matches!(&refused, ComputeError::OutputInvalid { path, .. } if path == "escape"),
            "{refused}"
        );
        assert_eq!(fs::read(&secret).unwrap(), b"keep me");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_scratch_is_measured_whole_and_refused_over_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/deep"), [0u8; 600]).unwrap();
        fs::write(dir.path().join("top"), [0u8; 400]).unwrap();
        assert!(check_scratch(dir.path(), 1000).is_ok());
        assert!(matches!(
            check_scratch(dir.path(), 999),
            Err(ComputeError::ScratchTooLarge {
                written_bytes: 1000,
                limit_bytes: 999
            })
        ));
        for i in 0..SCRATCH_FILES_MAX {
            fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
        }
        assert!(matches!(
            check_scratch(dir.path(), u64::MAX),
            Err(ComputeError::ScratchTooManyFiles { .. })
        ));
    }

    #[test]
    fn too_many_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=OUTPUT_FILES_MAX {
            fs::write(dir.path().join(i.to_string()), b"").unwrap();
        }
        assert!(matches!(
            usage(dir.path()),
            Err(ComputeError::OutputTooManyFiles { .. })
        ));
        assert!(matches!(
            collect(dir.path(), u64::MAX),
            Err(ComputeError::OutputTooManyFiles { .. })
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
