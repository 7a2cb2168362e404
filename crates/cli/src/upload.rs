//! `peercloud bucket put BUCKET DIR`: every file under a directory, stored
//! as objects whose keys are their paths under it (with `/` between parts,
//! after `--key PREFIX` when given). Small files go in batches
//! ([`bucket::put_many`]: what they replace read in one request, their
//! entries written in one index write of up to 1,000), so a directory of
//! many small files costs a few requests per thousand files, not two per
//! file; a large file goes alone, as `bucket put FILE` stores it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use peercloud_client::bucket::{self, NewObject};
use peercloud_client::{NodeClient, ObjectPut};
use peercloud_ledger::BucketId;
use peercloud_ledger::object_entry::INDEX_WRITE_ENTRIES_MAX;
use peercloud_types::Keypair;

use crate::display;
use crate::objects::object_error;
use crate::wallet::load_wallet;

/// Files up to this size go in batches; a larger one is stored alone.
const BATCH_FILE_BYTES_MAX: u64 = 1 << 20;
/// Bytes of file contents one batch holds in memory at most.
const BATCH_BYTES_MAX: u64 = 32 << 20;
/// Batches under way at once: the node sends what arrives together as one
/// index round, so a few overlap their round trips (at most this many
/// times [`BATCH_BYTES_MAX`] in memory).
const BATCHES_IN_FLIGHT: usize = 3;

/// A file found under the directory, with the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    path: PathBuf,
    key: String,
    size: u64,
}

/// Stores every file under `dir` in `bucket`; prints a line per file (or
/// one JSON object of them all) and the totals.
pub fn put_dir(
    client: &NodeClient,
    data_dir: &Path,
    bucket: BucketId,
    dir: &Path,
    prefix: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let what = format!("putting {} into {bucket}", dir.display());
    let files = files_under(dir, prefix.as_deref().unwrap_or(""))
        .with_context(|| format!("{what}: reading the directory"))?;
    if files.is_empty() {
        bail!("{what}: the directory holds no files");
    }
    let wallet = load_wallet(data_dir)?;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let stored = store_files(client, &wallet, &bucket, &files, false, &what)?;
    print_dir(&bucket, dir, &stored.puts, total_bytes, json);
    Ok(ExitCode::SUCCESS)
}

/// What [`store_files`] did.
pub(crate) struct Stored {
    /// The objects stored, in key order.
    pub puts: Vec<ObjectPut>,
    /// Files the bucket held already, byte for byte (when asked to skip them).
    pub unchanged: usize,
}

/// Stores `files` in `bucket`: small ones in batches, large ones alone,
/// streamed; with `skip_unchanged`, only the small ones the (public) bucket
/// does not hold already byte for byte under their key. Up to
/// [`BATCHES_IN_FLIGHT`] batches go at once; the first failure stops the
/// rest. `what` starts every error.
pub(crate) fn store_files(
    client: &NodeClient,
    wallet: &Keypair,
    bucket: &BucketId,
    files: &[Found],
    skip_unchanged: bool,
    what: &str,
) -> anyhow::Result<Stored> {
    let bar = files_bar(files.len() as u64)?;
    let batches = batches(files);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done: Mutex<Vec<(usize, Vec<ObjectPut>)>> = Mutex::new(Vec::new());
    let unchanged = AtomicUsize::new(0);
    let stored_so_far = AtomicUsize::new(0);
    let first_error = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..BATCHES_IN_FLIGHT.min(batches.len()))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(batch) = batches.get(i) else {
                            break;
                        };
                        let one = store_batch(client, wallet, bucket, batch, skip_unchanged, what);
                        let (puts, same) = match one {
                            Ok(stored) => stored,
                            Err(err) => {
                                failed.store(true, Ordering::Relaxed);
                                let so_far = stored_so_far.load(Ordering::Relaxed);
                                return Err(err.context(format!("{so_far} files stored so far")));
                            }
                        };
                        bar.inc((puts.len() + same) as u64);
                        unchanged.fetch_add(same, Ordering::Relaxed);
                        stored_so_far.fetch_add(puts.len(), Ordering::Relaxed);
                        done.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((i, puts));
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow!("{what}: an upload thread panicked")))
            })
            .find_map(Result::err)
    });
    bar.finish_and_clear();
    if let Some(err) = first_error {
        return Err(err);
    }
    let mut done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    done.sort_by_key(|(i, _)| *i);
    Ok(Stored {
        puts: done.into_iter().flat_map(|(_, puts)| puts).collect(),
        unchanged: unchanged.into_inner(),
    })
}

/// Stores one batch: the objects stored, and how many were unchanged.
fn store_batch(
    client: &NodeClient,
    wallet: &Keypair,
    bucket: &BucketId,
    batch: &[Found],
    skip_unchanged: bool,
    what: &str,
) -> anyhow::Result<(Vec<ObjectPut>, usize)> {
    // A large file goes alone, streamed from its file (never whole in
    // memory; a deploy sends it again even when unchanged).
    if let [one] = batch
        && one.size > BATCH_FILE_BYTES_MAX
    {
        let reader = File::open(&one.path)
            .with_context(|| format!("{what}: opening {}", one.path.display()))?;
        let put = bucket::put(client, wallet, bucket, &one.key, reader)
            .map_err(|err| object_error(err, &format!("putting {:?} into {bucket}", one.key)))?;
        return Ok((vec![put], 0));
    }
    let mut contents = Vec::with_capacity(batch.len());
    for file in batch {
        let mut bytes = Vec::with_capacity(usize::try_from(file.size).unwrap_or(0));
        File::open(&file.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| format!("{what}: reading {}", file.path.display()))?;
        contents.push(bytes);
    }
    let mut objects: Vec<NewObject<'_>> = batch
        .iter()
        .zip(&contents)
        .map(|(file, bytes)| NewObject {
            key: &file.key,
            bytes,
        })
        .collect();
    let mut same_count = 0;
    if skip_unchanged {
        let same = bucket::unchanged(client, bucket, &objects)
            .map_err(|err| object_error(err, &format!("{what}: comparing")))?;
        let before = objects.len();
        objects = objects
            .into_iter()
            .zip(same)
            .filter_map(|(object, same)| (!same).then_some(object))
            .collect();
        same_count = before - objects.len();
    }
    if objects.is_empty() {
        return Ok((Vec::new(), same_count));
    }
    let puts = bucket::put_many(client, wallet, bucket, &objects)
        .map_err(|err| object_error(err, what))?;
    Ok((puts, same_count))
}

/// Every regular file under `dir` (symbolic links and other kinds are
/// skipped), in key order, keyed `prefix` + its path under `dir`.
pub(crate) fn files_under(dir: &Path, prefix: &str) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in
            std::fs::read_dir(&next).with_context(|| format!("listing {}", next.display()))?
        {
            let entry = entry.with_context(|| format!("listing {}", next.display()))?;
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", entry.path().display()))?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let mut key = prefix.to_owned();
                for (i, part) in relative.components().enumerate() {
                    let part = part.as_os_str().to_str().ok_or_else(|| {
                        anyhow!(
                            "{} has a name that is not UTF-8, which a key must be",
                            path.display()
                        )
                    })?;
                    if i > 0 {
                        key.push('/');
                    }
                    key.push_str(part);
                }
                let size = entry
                    .metadata()
                    .with_context(|| format!("reading the size of {}", path.display()))?
                    .len();
                found.push(Found { path, key, size });
            }
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

/// The files cut into what goes together: runs of small files of at most
/// [`INDEX_WRITE_ENTRIES_MAX`] files and [`BATCH_BYTES_MAX`] bytes, and
/// each large file alone.
fn batches(files: &[Found]) -> Vec<&[Found]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, file) in files.iter().enumerate() {
        let large = file.size > BATCH_FILE_BYTES_MAX;
        let full = i - start == INDEX_WRITE_ENTRIES_MAX || bytes + file.size > BATCH_BYTES_MAX;
        if i > start && (large || full) {
            out.push(&files[start..i]);
            start = i;
            bytes = 0;
        }
        if large {
            out.push(&files[i..=i]);
            start = i + 1;
        } else {
            bytes += file.size;
        }
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
}

/// A bar of files stored, on a terminal only.
fn files_bar(total: u64) -> anyhow::Result<ProgressBar> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(total).with_prefix("storing");
    bar.set_style(ProgressStyle::with_template(
        "{prefix} {bar:30} {pos}/{len} files {per_sec} eta {eta}",
    )?);
    Ok(bar)
}

fn print_dir(bucket: &BucketId, dir: &Path, puts: &[ObjectPut], total_bytes: u64, json: bool) {
    let inline = puts.iter().filter(|p| p.inline).count();
    let bucket_bytes = puts.iter().map(|p| p.bucket_bytes).max().unwrap_or(0);
    if json {
        let objects: Vec<_> = puts
            .iter()
            .map(|put| {
                serde_json::json!({
                    "key": put.key,
                    "size": put.receipt.size_bytes,
                    "manifest": put.receipt.manifest_cid.to_string(),
                    "inline": put.inline,
                    "index_replicas": put.replicas,
                })
            })
            .collect();
        let value = serde_json::json!({
            "bucket": bucket,
            "directory": dir.display().to_string(),
            "files": puts.len(),
            "bytes": total_bytes,
            "inline": inline,
            "bucket_bytes": bucket_bytes,
            "objects": objects,
        });
        println!("{value}");
        return;
    }
    for put in puts {
        let kept = if put.inline {
            "inline"
        } else {
            "on the cluster"
        };
        println!(
            "stored   {} ({}, {kept})",
            put.key,
            display::bytes(put.receipt.size_bytes)
        );
    }
    println!(
        "stored   {} files, {} from {} into {bucket} ({inline} kept inline in the index)",
        puts.len(),
        display::bytes(total_bytes),
        dir.display()
    );
    println!(
        "bucket   {} ({bucket_bytes} bytes) stored now",
        display::bytes(bucket_bytes)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(key: &str, size: u64) -> Found {
        Found {
            path: PathBuf::from(key),
            key: key.to_owned(),
            size,
        }
    }

    #[test]
    fn small_files_go_in_batches_and_a_large_one_alone() {
        let files = vec![
            found("a", 10),
            found("b", 10),
            found("big", BATCH_FILE_BYTES_MAX + 1),
            found("c", 10),
        ];
        let cut: Vec<Vec<&str>> = batches(&files)
            .iter()
            .map(|b| b.iter().map(|f| f.key.as_str()).collect())
            .collect();
        assert_eq!(cut, [vec!["a", "b"], vec!["big"], vec!["c"]]);

        let many: Vec<Found> = (0..INDEX_WRITE_ENTRIES_MAX + 1)
            .map(|i| found(&format!("k{i:05}"), 1))
            .collect();
        let sizes: Vec<usize> = batches(&many).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [INDEX_WRITE_ENTRIES_MAX, 1]);

        let heavy: Vec<Found> = (0..40)
            .map(|i| found(&format!("h{i}"), BATCH_FILE_BYTES_MAX))
            .collect();
        let cut = batches(&heavy);
        assert!(
            cut.iter()
                .all(|b| b.iter().map(|f| f.size).sum::<u64>() <= BATCH_BYTES_MAX)
        );
        assert_eq!(cut.iter().map(|b| b.len()).sum::<usize>(), 40);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn a_directory_s_files_are_keyed_by_their_path_under_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("css/deep")).expect("dirs");
        std::fs::write(dir.path().join("index.html"), b"<p>hi</p>").expect("write");
        std::fs::write(dir.path().join("css/deep/a.css"), b"p{}").expect("write");
        std::fs::create_dir(dir.path().join("empty")).expect("dir");
        let files = files_under(dir.path(), "site/").expect("files");
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["site/css/deep/a.css", "site/index.html"]);
        assert_eq!(files[1].size, 9);
        let files = files_under(dir.path(), "").expect("files");
        assert_eq!(files[0].key, "css/deep/a.css");
    }
}
