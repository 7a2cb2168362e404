//! Staging a local run's inputs: each spec input, a file or a directory
//! tree, copied into the private directory the sandbox mounts at `/input`.
//!
//! A directory input is staged as its files: each regular file at its path
//! under `/input/<name>/`, the directories its files need created, empty
//! directories left out (as the grid carries one object per file, so a tree
//! runs the same locally and on the grid). Every path must pass
//! [`check_input_path`] (no names starting with `.`, bounded depth and
//! length); a symbolic link is followed only to a regular file inside the
//! same directory input, and is staged as a copy of it; FIFOs, sockets and
//! devices are refused. Every error names the spec field, `inputs[N].source`.

use std::path::{Path, PathBuf};

use peercloud_types::job::check_input_path;

use super::{INPUT_BYTES_MAX, LocalRunError};

/// Most files one directory input may hold: each is copied before the run
/// and listed by the module, and a tree larger than this is a data set that
/// belongs in storage.
pub const INPUT_DIR_FILES_MAX: usize = 10_000;

/// What one directory walk has staged so far.
struct Tree<'a> {
    /// `inputs[N].source`.
    field: &'a str,
    /// The input's name, the first component of every path.
    name: &'a str,
    /// The directory input, canonical (links must resolve inside it).
    root: PathBuf,
    files: usize,
    bytes: u64,
}

impl Tree<'_> {
    fn refuse(&self, path: &Path, reason: impl Into<String>) -> LocalRunError {
        LocalRunError::Input {
            field: self.field.to_owned(),
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Copies the input at `from` (a file, or a directory and its tree) to `to`.
pub(super) fn stage_input(
    field: &str,
    name: &str,
    from: &Path,
    to: &Path,
) -> Result<(), LocalRunError> {
    let read_err = |source| LocalRunError::ReadFile {
        field: field.to_owned(),
        path: from.to_owned(),
        source,
        hint: "",
    };
    let metadata = std::fs::metadata(from).map_err(read_err)?;
    if metadata.is_file() {
        if metadata.len() > INPUT_BYTES_MAX {
            return Err(LocalRunError::InputTooLarge {
                field: field.to_owned(),
                path: from.to_owned(),
                size: metadata.len(),
            });
        }
        return copy_file(field, from, to);
    }
    if !metadata.is_dir() {
        return Err(LocalRunError::Input {
            field: field.to_owned(),
            path: from.to_owned(),
            reason: "is not a regular file or a directory".into(),
        });
    }
    let root = std::fs::canonicalize(from).map_err(read_err)?;
    let mut tree = Tree {
        field,
        name,
        root,
        files: 0,
        bytes: 0,
    };
    stage_dir(&mut tree, from, to, name)?;
    if tree.files == 0 {
        return Err(tree.refuse(
            from,
            "holds no files; a directory input is staged as its files",
        ));
    }
    Ok(())
}

/// Stages the files under `dir` (at `/input/<relative>`) into `to`, in name
/// order, creating `to` only when a file needs it.
fn stage_dir(
    tree: &mut Tree<'_>,
    dir: &Path,
    to: &Path,
    relative: &str,
) -> Result<(), LocalRunError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| tree.refuse(dir, e.to_string()))? {
        let entry = entry.map_err(|e| tree.refuse(dir, e.to_string()))?;
        entries.push(entry.file_name());
    }
    entries.sort();
    for file_name in entries {
        let path = dir.join(&file_name);
        let Some(file_name) = file_name.to_str() else {
            return Err(tree.refuse(&path, "has a name that is not UTF-8"));
        };
        let inner = format!("{relative}/{file_name}");
        check_input_path(&inner)
            .map_err(|e| tree.refuse(&path, format!("its path in /input, {inner:?}, {e}")))?;
        let target = to.join(file_name);
        let metadata =
            std::fs::symlink_metadata(&path).map_err(|e| tree.refuse(&path, e.to_string()))?;
        if metadata.is_dir() {
            stage_dir(tree, &path, &target, &inner)?;
            continue;
        }
        let size = if metadata.is_file() {
            metadata.len()
        } else if metadata.file_type().is_symlink() {
            linked_file_size(tree, &path)?
        } else {
            return Err(tree.refuse(
                &path,
                "is not a regular file, directory or link (a FIFO, socket or device)",
            ));
        };
        tree.files += 1;
        tree.bytes = tree.bytes.saturating_add(size);
        if tree.files > INPUT_DIR_FILES_MAX {
            return Err(tree.refuse(
                &tree.root.clone(),
                format!("holds more than {INPUT_DIR_FILES_MAX} files"),
            ));
        }
        if tree.bytes > INPUT_BYTES_MAX {
            return Err(tree.refuse(
                &tree.root.clone(),
                format!("holds more than {INPUT_BYTES_MAX} bytes"),
            ));
        }
        std::fs::create_dir_all(to).map_err(|e| staging_err(tree.field, &path, e))?;
        copy_file(tree.field, &path, &target)?;
    }
    Ok(())
}

/// The size of the regular file the link at `path` leads to, which must be
/// inside the directory input.
fn linked_file_size(tree: &Tree<'_>, path: &Path) -> Result<u64, LocalRunError> {
    let resolved = std::fs::canonicalize(path).map_err(|e| {
        tree.refuse(
            path,
            format!("is a symbolic link that does not resolve: {e}"),
        )
    })?;
    if !resolved.starts_with(&tree.root) {
        return Err(tree.refuse(
            path,
            format!(
                "is a symbolic link to {}, outside the directory input {:?}",
                resolved.display(),
                tree.name
            ),
        ));
    }
    let metadata = std::fs::metadata(&resolved).map_err(|e| tree.refuse(path, e.to_string()))?;
    if !metadata.is_file() {
        return Err(tree.refuse(
            path,
            "is a symbolic link to a directory or special file; only links to files are followed",
        ));
    }
    Ok(metadata.len())
}

/// Copies one file's contents (a link's target's) into the staging directory.
fn copy_file(field: &str, from: &Path, to: &Path) -> Result<(), LocalRunError> {
    std::fs::copy(from, to).map_err(|e| staging_err(field, from, e))?;
    Ok(())
}

/// Staging `from` failed on this machine's side (the staging directory).
fn staging_err(field: &str, from: &Path, e: std::io::Error) -> LocalRunError {
    LocalRunError::Input {
        field: field.to_owned(),
        path: from.to_owned(),
        reason: format!("cannot be copied into the run's private input directory: {e}"),
    }
}
