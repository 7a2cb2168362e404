//! The base image every container space starts from, made on the node with
//! no registry: a root filesystem assembled in memory as a tar and imported
//! into the engine (`docker import`), named by the hash of its bytes so it
//! is imported once and a change makes a new name.
//!
//! Its tools come from this machine: a static busybox when there is one
//! (`apt install busybox-static`: one 2 MB file, every applet, `nc` for port
//! forwarding), else the host's own shell and core tools with the shared
//! libraries `ldd` names for them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use peercloud_types::Hash32;

use crate::error::SpaceError;

/// Where a static busybox may be.
const BUSYBOX_PATHS: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];
/// The host tools copied when there is no busybox.
const HOST_TOOLS: [&str; 24] = [
    "sh", "ls", "cat", "echo", "sleep", "head", "tail", "dd", "id", "mkdir", "rm", "cp", "mv",
    "wc", "env", "true", "false", "uname", "touch", "sort", "tr", "grep", "sed", "timeout",
];
/// Accounts in the image: `nobody` runs the user's processes.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/data:/bin/sh\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
/// Empty directories of the image (mount points among them).
const DIRS: [&str; 8] = ["bin", "data", "dev", "etc", "proc", "root", "sys", "tmp"];

/// A base image's root filesystem and the name it is imported under.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// `peercloud/space:<12 hex of the tar's BLAKE3>`.
    pub tag: String,
    /// The root filesystem as a tar.
    pub tar: Vec<u8>,
    /// Where its tools came from (`busybox` or `host`).
    pub source: &'static str,
}

/// Builds the base image's root filesystem from this machine's files.
pub fn base_image_rootfs() -> Result<BaseImage, SpaceError> {
    let mut tar = RootFs::new();
    let source = match BUSYBOX_PATHS.iter().map(Path::new).find(|p| is_static(p)) {
        Some(busybox) => {
            tar.file("bin/busybox", &read(busybox)?, 0o755)?;
            for applet in busybox_applets(busybox)? {
                tar.symlink(&format!("bin/{applet}"), "busybox")?;
            }
            "busybox"
        }
        None => {
            let mut libraries = BTreeSet::new();
            for tool in HOST_TOOLS {
                let Some(path) = which(tool) else {
                    if tool == "sh" {
                        return Err(SpaceError::BaseImage {
                            reason: "this machine has no /bin/sh and no static busybox".into(),
                        });
                    }
                    continue;
                };
                tar.file(&format!("bin/{tool}"), &read(&path)?, 0o755)?;
                libraries.extend(shared_libraries(&path)?);
            }
            for library in libraries {
                let inside = library.to_string_lossy().trim_start_matches('/').to_owned();
                tar.file(&inside, &read(&library)?, 0o755)?;
            }
            "host"
        }
    };
    tar.file("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    tar.file("etc/group", GROUP.as_bytes(), 0o644)?;
    let tar = tar.finish()?;
    let digest = Hash32::of(&tar).to_string();
    Ok(BaseImage {
        tag: format!("peercloud/space:{}", &digest[..12]),
        tar,
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, SpaceError> {
    std::fs::read(path).map_err(|e| SpaceError::BaseImage {
        reason: format!("reading {}: {e}", path.display()),
    })
}

/// Whether `path` is an executable that needs no shared libraries.
fn is_static(path: &Path) -> bool {
    path.is_file()
        && Command::new("ldd")
            .arg(path)
            .output()
            .map(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                text.contains("not a dynamic executable") || text.contains("statically linked")
            })
            .unwrap_or(false)
}

fn busybox_applets(busybox: &Path) -> Result<Vec<String>, SpaceError> {
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| SpaceError::BaseImage {
            reason: format!("{} --list: {e}", busybox.display()),
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(str::to_owned)
        .collect())
}

/// The tool's real file (symlinks followed: `/bin/sh` is often `dash`).
fn which(tool: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// The shared libraries (and the loader) `ldd` names for `binary`.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, SpaceError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| SpaceError::BaseImage {
            reason: format!("ldd {}: {e}", binary.display()),
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// A root filesystem tar written with fixed owners and times, directories
/// first, so the same files always give the same bytes (and image name).
struct RootFs {
    dirs: BTreeSet<String>,
    /// (path, symlink target or file bytes, mode)
    entries: Vec<(String, Entry, u32)>,
}

enum Entry {
    File(Vec<u8>),
    Symlink(String),
}

impl RootFs {
    fn new() -> RootFs {
        RootFs {
            dirs: DIRS.iter().map(|d| (*d).to_owned()).collect(),
            entries: Vec::new(),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(size);
        header
    }

    fn add(&mut self, path: &str, entry: Entry, mode: u32) {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            self.dirs.insert(dir.to_string_lossy().into_owned());
            parent = dir.parent();
        }
        self.entries.push((path.to_owned(), entry, mode));
    }

    fn file(&mut self, path: &str, bytes: &[u8], mode: u32) -> Result<(), SpaceError> {
        self.add(path, Entry::File(bytes.to_vec()), mode);
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<(), SpaceError> {
        self.add(path, Entry::Symlink(target.to_owned()), 0o777);
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, SpaceError> {
        let mut builder = tar::Builder::new(Vec::new());
        for dir in &self.dirs {
            let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
            let mut header = Self::header(tar::EntryType::Directory, mode, 0);
            builder
                .append_data(&mut header, format!("{dir}/"), std::io::empty())
                .map_err(tar_error)?;
        }
        for (path, entry, mode) in &self.entries {
            match entry {
                Entry::File(bytes) => {
                    let mut header =
                        Self::header(tar::EntryType::Regular, *mode, bytes.len() as u64);
                    builder.append_data(&mut header, path, bytes.as_slice())
                }
                Entry::Symlink(target) => {
                    let mut header = Self::header(tar::EntryType::Symlink, *mode, 0);
                    builder.append_link(&mut header, path, target)
                }
            }
            .map_err(tar_error)?;
        }
        builder.into_inner().map_err(tar_error)
    }
}

fn tar_error(e: std::io::Error) -> SpaceError {
    SpaceError::BaseImage {
        reason: format!("writing the root filesystem tar: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootfs_has_a_shell_accounts_and_a_stable_name() {
        let first = base_image_rootfs().unwrap();
        let second = base_image_rootfs().unwrap();
        assert_eq!(first.tag, second.tag, "the same files name the same image");
        let mut archive = tar::Archive::new(first.tar.as_slice());
        let paths: BTreeSet<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        for wanted in ["bin/sh", "bin/cat", "etc/passwd", "data/", "tmp/"] {
            assert!(paths.contains(wanted), "{wanted} missing from {paths:?}");
        }
    }
}
