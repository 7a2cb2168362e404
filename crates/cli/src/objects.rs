//! `peercloud bucket put|get|ls|rm|head`: named objects in a bucket. The
//! work is `peercloud_client::bucket`'s (sealing, the cluster's redundancy,
//! the owner-signed index written by quorum); this file reads the command
//! line, moves the bytes between files (or standard input and output) and
//! the network behind a progress bar, and prints what happened.
//!
//! A get writes its file atomically, as `store get` does (a temporary file
//! beside it, then a rename), so a failed get never leaves a half-written
//! file under the name asked for. Every error names the bucket and the key.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use peercloud_client::bucket::{self, BucketError};
use peercloud_client::{NodeClient, ObjectItem, ObjectPut};
use peercloud_ledger::BucketId;
use peercloud_store::GetReceipt;

use crate::display;
use crate::node_api::explain;
use crate::store::{redundancy_text, transfer_bar, write_atomically};
use crate::wallet::load_wallet;

/// What `-` stands for as a file: standard input or output.
const STDIO: &str = "-";

/// `bucket put`: store a file as a named object.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The bucket (bucket:<hex>, or the hex alone).
    pub bucket: BucketId,
    /// The file to store, `-` for standard input, or a directory: every
    /// file under it, keyed by its path under it.
    pub file: PathBuf,
    /// The object's key, like docs/report.pdf (default: the file's name;
    /// required when reading standard input). For a directory: the prefix
    /// its files' keys start with, like site/ (default: none).
    #[arg(long)]
    pub key: Option<String>,
}

/// `bucket get`: fetch a named object into a file.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The bucket.
    pub bucket: BucketId,
    /// The object's key.
    pub key: String,
    /// Where to write it, replaced atomically if it exists (default: the
    /// key's last path segment, in the current directory). `-` writes the
    /// object to standard output; a summary then goes to standard error
    /// with --json, and nowhere without.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `bucket ls`: list the objects of a bucket.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The bucket.
    pub bucket: BucketId,
    /// Only keys that start with this, like docs/ (default: every key).
    pub prefix: Option<String>,
}

/// `bucket rm` and `bucket head`: one object by its key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The bucket.
    pub bucket: BucketId,
    /// The object's key.
    pub key: String,
}

/// Stores the file (or standard input) under its key, sealed to the wallet,
/// on the bucket's cluster; prints the key, size, manifest, redundancy, the
/// index replicas that acknowledged it and the bucket's bytes now.
pub fn put(
    client: &NodeClient,
    data_dir: &Path,
    args: PutArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let PutArgs { bucket, file, key } = args;
    if file.is_dir() {
        return crate::upload::put_dir(client, data_dir, bucket, &file, key, json);
    }
    let key = match key {
        Some(key) => key,
        None => default_key(&file)?,
    };
    let what = format!("putting {key:?} into {bucket}");
    let (reader, size): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == STDIO {
        (Box::new(std::io::stdin()), None)
    } else {
        let reader =
            File::open(&file).with_context(|| format!("{what}: opening {}", file.display()))?;
        let size = reader
            .metadata()
            .with_context(|| format!("{what}: reading the size of {}", file.display()))?
            .len();
        (Box::new(reader), Some(size))
    };
    let wallet = load_wallet(data_dir)?;
    let bar = transfer_bar(size, "storing")?;
    let put = bucket::put(client, &wallet, &bucket, &key, bar.wrap_read(reader));
    bar.finish_and_clear();
    let put = put.map_err(|err| object_error(err, &what))?;
    print_put(&bucket, &file, &put, json);
    Ok(ExitCode::SUCCESS)
}

fn print_put(bucket: &BucketId, file: &Path, put: &ObjectPut, json: bool) {
    let manifest = &put.receipt.manifest;
    let redundancy = redundancy_text(manifest.redundancy);
    if json {
        let value = serde_json::json!({
            "bucket": bucket,
            "key": put.key,
            "file": file.display().to_string(),
            "size": put.receipt.size_bytes,
            "manifest": put.receipt.manifest_cid.to_string(),
            "chunks": manifest.chunks.len(),
            "parity_chunks": manifest.parity_chunks.len(),
            "redundancy": redundancy,
            "inline": put.inline,
            "index_replicas": put.replicas,
            "bucket_bytes": put.bucket_bytes,
        });
        println!("{value}");
        return;
    }
    println!("stored   {} in {bucket}", put.key);
    println!(
        "size     {} ({} bytes, {} chunks)",
        display::bytes(put.receipt.size_bytes),
        put.receipt.size_bytes,
        manifest.chunks.len()
    );
    println!("manifest {}", put.receipt.manifest_cid);
    if put.inline {
        println!("kept as  inline: in the bucket's index, with its entry");
    } else if manifest.parity_chunks.is_empty() {
        println!("kept as  {redundancy}");
    } else {
        println!(
            "kept as  {redundancy}: {} parity chunks ({})",
            manifest.parity_chunks.len(),
            display::bytes(manifest.parity_bytes())
        );
    }
    println!("index    {} replicas acknowledged", put.replicas);
    println!(
        "bucket   {} ({} bytes) stored now",
        display::bytes(put.bucket_bytes),
        put.bucket_bytes
    );
}

/// Fetches the object under its key, verified and decrypted with the
/// wallet's key, into a file (atomically) or standard output.
pub fn get(
    client: &NodeClient,
    data_dir: &Path,
    args: GetArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let GetArgs {
        bucket,
        key,
        output,
    } = args;
    let what = format!("getting {key:?} from {bucket}");
    let to_stdout = output.as_deref() == Some(Path::new(STDIO));
    let output = match output {
        Some(output) => output,
        None => default_output(&key)?,
    };
    // A public bucket is read by anyone, wallet or not; only its owner's
    // reads sign bandwidth receipts.
    let view = client.bucket(&bucket).map_err(explain)?;
    let wallet = if view.public {
        load_wallet(data_dir)
            .ok()
            .filter(|w| w.account_id() == view.owner)
    } else {
        Some(load_wallet(data_dir)?)
    };
    // The key is looked up first only to size the progress bar on a terminal.
    let total = if std::io::stderr().is_terminal() {
        bucket::head(client, &bucket, &key)
            .map_err(|err| object_error(err, &what))?
            .object
            .size
    } else {
        0
    };
    let fetch = |out: &mut dyn Write| {
        match &wallet {
            Some(wallet) => bucket::get(client, wallet, &bucket, &key, out),
            None => bucket::get_public(client, &bucket, &key, out),
        }
        .map_err(|err| object_error(err, &what))
    };
    if to_stdout {
        let bar = transfer_bar(Some(total), "fetching")?;
        let mut out = BufWriter::new(bar.wrap_write(std::io::stdout().lock()));
        let fetched = fetch(&mut out);
        bar.finish_and_clear();
        let (item, receipt) = fetched?;
        out.flush()
            .with_context(|| format!("{what}: writing standard output"))?;
        if json {
            eprintln!("{}", got_json(&bucket, &item, &receipt, None));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (item, receipt) = write_atomically(&output, total, fetch)?;
    if json {
        println!("{}", got_json(&bucket, &item, &receipt, Some(&output)));
    } else {
        println!("wrote    {}", output.display());
        println!("key      {} in {bucket}", item.key);
        println!(
            "size     {} ({} bytes)",
            display::bytes(receipt.size_bytes),
            receipt.size_bytes
        );
        println!("manifest {}", item.object.manifest);
        println!("written  {}", display::utc(item.at_ms));
    }
    Ok(ExitCode::SUCCESS)
}

fn got_json(
    bucket: &BucketId,
    item: &ObjectItem,
    receipt: &GetReceipt,
    file: Option<&Path>,
) -> serde_json::Value {
    serde_json::json!({
        "bucket": bucket,
        "key": item.key,
        "file": file.map(|f| f.display().to_string()),
        "size": receipt.size_bytes,
        "manifest": item.object.manifest.to_string(),
        "at_ms": item.at_ms,
    })
}

/// Lists the objects under a prefix: one line each (size, time written,
/// key) and a total; with --json an array of {key, size, manifest, at_ms}.
pub fn ls(client: &NodeClient, args: LsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let LsArgs { bucket, prefix } = args;
    let prefix = prefix.unwrap_or_default();
    let items = bucket::list(client, &bucket, &prefix)
        .map_err(|err| object_error(err, &format!("listing {prefix:?} in {bucket}")))?;
    if json {
        let items: Vec<serde_json::Value> = items.iter().map(item_json).collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(ExitCode::SUCCESS);
    }
    let under = if prefix.is_empty() {
        String::new()
    } else {
        format!(" under {prefix:?}")
    };
    if items.is_empty() {
        println!("no objects{under} in {bucket}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut total: u64 = 0;
    for item in &items {
        total = total.saturating_add(item.object.size);
        println!(
            "{:>10}  {}  {}",
            display::bytes(item.object.size),
            display::utc(item.at_ms),
            item.key
        );
    }
    let count = match items.len() {
        1 => "1 object".to_owned(),
        n => format!("{n} objects"),
    };
    println!(
        "{count}{under}, {} ({total} bytes) in {bucket}",
        display::bytes(total)
    );
    Ok(ExitCode::SUCCESS)
}

/// Removes the object under a key (a tombstone the owner signs) and prints
/// what it named.
pub fn rm(
    client: &NodeClient,
    data_dir: &Path,
    args: KeyArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let KeyArgs { bucket, key } = args;
    let wallet = load_wallet(data_dir)?;
    let removed = bucket::delete(client, &wallet, &bucket, &key)
        .map_err(|err| object_error(err, &format!("removing {key:?} from {bucket}")))?;
    print_item("removed", &bucket, &removed, json);
    Ok(ExitCode::SUCCESS)
}

/// Prints what a key names now: its size, manifest and when it was written.
pub fn head(client: &NodeClient, args: KeyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let KeyArgs { bucket, key } = args;
    let item = bucket::head(client, &bucket, &key)
        .map_err(|err| object_error(err, &format!("looking up {key:?} in {bucket}")))?;
    print_item("key", &bucket, &item, json);
    Ok(ExitCode::SUCCESS)
}

/// One object as JSON: {key, size, manifest, inline, at_ms}.
fn item_json(item: &ObjectItem) -> serde_json::Value {
    serde_json::json!({
        "key": item.key,
        "size": item.object.size,
        "manifest": item.object.manifest.to_string(),
        "inline": item.object.inline,
        "at_ms": item.at_ms,
    })
}

/// An object, its first line headed by `label` (`key`, `removed`).
fn print_item(label: &str, bucket: &BucketId, item: &ObjectItem, json: bool) {
    if json {
        let mut value = item_json(item);
        value["bucket"] = serde_json::json!(bucket);
        println!("{value}");
        return;
    }
    println!("{label:<8} {} in {bucket}", item.key);
    println!(
        "size     {} ({} bytes)",
        display::bytes(item.object.size),
        item.object.size
    );
    println!("manifest {}", item.object.manifest);
    println!(
        "written  {} ({})",
        display::utc(item.at_ms),
        display::relative_time(item.at_ms)
    );
}

/// The key a file is stored under when `--key` is not given: its name.
fn default_key(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == STDIO {
        bail!("standard input has no name to use as the key: pass --key KEY");
    }
    let name = file
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file to store: pass --key KEY", file.display()))?;
    name.to_str().map(str::to_owned).ok_or_else(|| {
        anyhow!("the file name {name:?} is not UTF-8, which a key must be: pass --key KEY")
    })
}

/// Where a get writes when `-o` is not given: the key's last path segment,
/// in the current directory.
fn default_output(key: &str) -> anyhow::Result<PathBuf> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.is_empty() || name == "." || name == ".." {
        bail!("the key {key:?} ends in no file name to write to: pass -o FILE");
    }
    Ok(PathBuf::from(name))
}

/// A failed object command, naming the bucket and the key (`what`) unless
/// the error's own message already names both.
pub(crate) fn object_error(err: BucketError, what: &str) -> anyhow::Error {
    match err {
        BucketError::Client(err) => explain(err).context(what.to_owned()),
        err @ BucketError::NotFound { .. } => anyhow::Error::new(err),
        err => anyhow::Error::new(err).context(what.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_stored_under_its_name_unless_a_key_is_given() {
        assert_eq!(
            default_key(Path::new("/tmp/photos/cat.jpg")).expect("a key"),
            "cat.jpg"
        );
        let err = default_key(Path::new("-")).expect_err("stdin has no name");
        assert!(err.to_string().contains("--key"), "{err}");
        let err = default_key(Path::new("/")).expect_err("the root has no name");
        assert!(err.to_string().contains("--key"), "{err}");
    }

    #[test]
    fn a_get_writes_the_keys_last_segment_unless_told_where() {
        assert_eq!(
            default_output("docs/2026/report.pdf").expect("a name"),
            PathBuf::from("report.pdf")
        );
        assert_eq!(
            default_output("notes").expect("a name"),
            PathBuf::from("notes")
        );
        for key in ["docs/", "a/..", "."] {
            let err = default_output(key).expect_err("no file name");
            assert!(err.to_string().contains("-o FILE"), "{key}: {err}");
        }
    }
}
