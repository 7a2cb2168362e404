//! `peercloud store`: put a file into the network store and get it back. The
//! file is chunked and sealed here, under a fresh key wrapped to the wallet's
//! key, before any byte leaves the machine; the node only places the sealed
//! chunks. A get authenticates every chunk (it opens its seal), and writes the
//! file atomically (temporary file beside it, then rename), so a failed get
//! never leaves a half-written file under the name asked for.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use peercloud_client::ApiStore;
use peercloud_store::{PutOptions, Redundancy, StoreError, get_object, put_object, read_manifest};
use peercloud_types::ContentId;

use crate::display;
use crate::node_api::NodeArgs;
use crate::wallet::load_wallet;

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Encrypt a file with a fresh key, store it on the network (3 replicas,
    /// or erasure-coded with `--erasure`) and print the CID that names it.
    Put {
        /// The file to store.
        file: PathBuf,
        /// Reed-Solomon K+M instead of 3 replicas: every K chunks get M
        /// parity chunks, each of the K+M kept once on its own node; any K
        /// of them read the group back (4+2 survives 2 lost nodes and writes
        /// 1.5x the data instead of 3x).
        #[arg(long, value_name = "K+M", value_parser = parse_erasure)]
        erasure: Option<Redundancy>,
    },
    /// Fetch an object you own by its CID, verify and decrypt it into FILE.
    Get {
        /// The object's CID (as `store put` printed it).
        cid: ContentId,
        /// Where to write it (replaced atomically if it exists).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// Runs a store command.
pub fn run(
    cmd: StoreCommand,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Put { file, erasure } => put(&file, erasure, data_dir, node, json),
        StoreCommand::Get { cid, output } => get(&cid, &output, data_dir, node, json),
    }
}

/// `K+M` (e.g. `4+2`) as an erasure code, checked against the manifest's bounds.
fn parse_erasure(text: &str) -> Result<Redundancy, String> {
    let (data, parity) = text
        .split_once('+')
        .ok_or_else(|| format!("{text:?} is not K+M (data + parity chunks, e.g. 4+2)"))?;
    let number = |part: &str, what: &str| -> Result<u8, String> {
        part.trim()
            .parse()
            .map_err(|_| format!("{what} {part:?} in {text:?} is not a number from 1 to 255"))
    };
    let redundancy = Redundancy::Erasure {
        data: number(data, "K")?,
        parity: number(parity, "M")?,
    };
    redundancy.validate().map_err(|e| e.to_string())?;
    Ok(redundancy)
}

/// How `redundancy` reads in the output: `3 replicas`, `RS(4+2)`.
pub(crate) fn redundancy_text(redundancy: Redundancy) -> String {
    match redundancy {
        Redundancy::Replicas(n) => format!("{n} replicas"),
        Redundancy::Erasure { data, parity } => format!("RS({data}+{parity})"),
    }
}

fn put(
    file: &Path,
    erasure: Option<Redundancy>,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reader = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = reader
        .metadata()
        .with_context(|| format!("reading the size of {}", file.display()))?
        .len();
    let wallet = load_wallet(data_dir)?;
    let store = ApiStore::new(node.connect(Some(data_dir))?);
    let options = PutOptions {
        // The name travels sealed inside the manifest: only the owner reads it.
        name: file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
        redundancy: erasure.unwrap_or_default(),
        ..PutOptions::default()
    };
    let bar = transfer_bar(Some(size), "storing")?;
    let receipt = put_object(&store, bar.wrap_read(reader), &wallet.public(), &options);
    bar.finish_and_clear();
    let receipt = receipt.with_context(|| {
        format!(
            "storing {} through the node at {}",
            file.display(),
            store.client().base()
        )
    })?;
    if json {
        let value = serde_json::json!({
            "cid": receipt.manifest_cid.to_string(),
            "file": file.display().to_string(),
            "size_bytes": receipt.size_bytes,
            "chunks": receipt.manifest.chunks.len(),
            "parity_chunks": receipt.manifest.parity_chunks.len(),
            "redundancy": redundancy_text(receipt.manifest.redundancy),
            "owner": wallet.account_id().to_string(),
        });
        println!("{value}");
    } else {
        println!("stored   {}", file.display());
        println!("cid      {}", receipt.manifest_cid);
        println!(
            "size     {} ({} bytes, {} chunks)",
            display::bytes(receipt.size_bytes),
            receipt.size_bytes,
            receipt.manifest.chunks.len()
        );
        let redundancy = redundancy_text(receipt.manifest.redundancy);
        if receipt.manifest.parity_chunks.is_empty() {
            println!("kept as  {redundancy}");
        } else {
            println!(
                "kept as  {redundancy}: {} parity chunks ({}), each piece on its own node",
                receipt.manifest.parity_chunks.len(),
                display::bytes(receipt.manifest.parity_bytes())
            );
        }
        println!("owner    {}", wallet.account_id());
    }
    Ok(ExitCode::SUCCESS)
}

fn get(
    cid: &ContentId,
    output: &Path,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let wallet = load_wallet(data_dir)?;
    let store = ApiStore::new(node.connect(Some(data_dir))?);
    // The manifest is read first only to size the progress bar on a terminal.
    let total = if std::io::stderr().is_terminal() {
        let manifest = read_manifest(&store, cid).map_err(|err| get_error(err, cid))?;
        manifest.total_bytes
    } else {
        0
    };
    let receipt = write_atomically(output, total, |out| {
        get_object(&store, cid, &wallet.x25519_secret(), out).map_err(|err| get_error(err, cid))
    })?;
    if json {
        let value = serde_json::json!({
            "cid": cid.to_string(),
            "file": output.display().to_string(),
            "size_bytes": receipt.size_bytes,
            "name": receipt.info.name,
        });
        println!("{value}");
    } else {
        println!("wrote    {}", output.display());
        println!("cid      {cid}");
        println!(
            "size     {} ({} bytes)",
            display::bytes(receipt.size_bytes),
            receipt.size_bytes
        );
        if let Some(name) = &receipt.info.name {
            println!("stored as {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `output` atomically: `fill` writes into a temporary file beside
/// it, behind a progress bar of `total_bytes` on a terminal, which is then
/// synced and renamed over `output`. When `fill` fails the temporary file
/// is removed and nothing appears under `output`.
pub(crate) fn write_atomically<T>(
    output: &Path,
    total_bytes: u64,
    fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(anyhow!(
            "cannot write {}: directory {} does not exist",
            output.display(),
            dir.display()
        ));
    }
    let temp = tempfile::Builder::new()
        .prefix(".peercloud-get-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let bar = transfer_bar(Some(total_bytes), "fetching")?;
    let mut writer = BufWriter::new(bar.wrap_write(temp.as_file()));
    let filled = fill(&mut writer);
    bar.finish_and_clear();
    let value = filled?;
    writer
        .flush()
        .with_context(|| format!("writing {}", temp.path().display()))?;
    drop(writer);
    // A new file keeps the temporary file's 0600 (the object was private on
    // the network, it stays private here); a replaced one keeps its mode.
    if let Ok(existing) = std::fs::metadata(output) {
        temp.as_file()
            .set_permissions(existing.permissions())
            .with_context(|| format!("copying the permissions of {}", output.display()))?;
    }
    temp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", temp.path().display()))?;
    temp.persist(output)
        .map_err(|err| err.error)
        .with_context(|| format!("renaming the fetched object to {}", output.display()))?;
    Ok(value)
}

/// A failed get, said in the words of objects rather than chunks.
fn get_error(err: StoreError, object: &ContentId) -> anyhow::Error {
    match err {
        StoreError::NotFound { cid } if cid == *object => {
            anyhow!("no such object CID {object}: the network holds no manifest under it")
        }
        StoreError::NotFound { cid } => anyhow!(
            "object {object} is incomplete: its chunk {cid} is on none of the nodes that should hold it"
        ),
        other => anyhow::Error::new(other).context(format!("fetching object {object}")),
    }
}

/// A byte progress bar on stderr when it is a terminal; hidden otherwise, so
/// scripts and logs get no control characters. `total_bytes` is `None` when
/// the length is not known (standard input): the bar then counts bytes only.
pub(crate) fn transfer_bar(
    total_bytes: Option<u64>,
    verb: &'static str,
) -> anyhow::Result<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let (bar, template) = match total_bytes {
        Some(total) => (
            ProgressBar::new(total),
            "{prefix} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{prefix} {spinner} {binary_bytes} {binary_bytes_per_sec}",
        ),
    };
    let bar = bar.with_prefix(verb);
    bar.set_style(ProgressStyle::with_template(template)?);
    Ok(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_codes_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_erasure("4+2"),
            Ok(Redundancy::Erasure { data: 4, parity: 2 })
        );
        assert!(parse_erasure("4-2").unwrap_err().contains("K+M"));
        assert!(parse_erasure("4+x").unwrap_err().contains("M \"x\""));
        assert!(parse_erasure("0+2").unwrap_err().contains("at least 1"));
        assert!(parse_erasure("200+100").unwrap_err().contains("256"));
        assert_eq!(redundancy_text(Redundancy::Replicas(3)), "3 replicas");
    }
}
