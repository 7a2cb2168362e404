//! Where Peercloud keeps its files: the flag, then `PEERCLOUD_DATA_DIR` (clap
//! reads it into the flag), then the platform's data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The data directory, created (mode 0700) if missing.
pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match flag {
        Some(dir) => dir.to_owned(),
        None => platform_data_dir()?,
    };
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
