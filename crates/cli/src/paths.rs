//! Where Peercloud keeps its files: the flag, then `PEERCLOUD_DATA_DIR` (clap
//! reads it into the flag), then the platform's data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where `devnet up` writes its devnets, inside the data directory.
pub const DEVNET_DIR: &str = "devnet";
/// The devnet node the CLI talks to when told no other: the first provider.
pub const DEFAULT_NODE_DIR: &str = "node-1";

/// The data directory, created (mode 0700) if missing.
pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = data_dir_path(flag)?;
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    Ok(dir)
}

/// The data directory's path, without creating it (for commands that only read).
pub fn data_dir_path(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(dir) => Ok(dir.to_owned()),
        None => platform_data_dir(),
    }
}

/// The node data directory used when none is named: the local devnet's first
/// provider, `<data-dir>/devnet/node-1`.
pub fn default_node_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DEVNET_DIR).join(DEFAULT_NODE_DIR)
}

fn platform_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("peercloud"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/peercloud")),
        None => bail!("no data directory: pass --data-dir or set PEERCLOUD_DATA_DIR"),
    }
}

/// The wallet key file inside the data directory.
pub fn wallet_key(data_dir: &Path) -> PathBuf {
    data_dir.join("wallet.key")
}
