//! `peercloud site deploy DIR --bucket ID`: a folder published as a website
//! from a public bucket. Only files that changed are sent (a public object
//! is content-addressed, so a file the bucket holds byte for byte under its
//! key makes the same manifest and is skipped; a file over 1 MiB is
//! streamed and sent every time); every node's web gateway
//! then serves the site, at `http://<web>/<bucket id>/` or under its site
//! label as the host (`http://<label>.<domain>/`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use peercloud_client::NodeClient;
use peercloud_ledger::BucketId;
use peercloud_node::web::site_label;

use crate::display;
use crate::node_api::{NodeArgs, explain};
use crate::upload::{files_under, store_files};
use crate::wallet::load_wallet;

/// `peercloud site …`.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Upload a folder to a public bucket (only what changed) and print the
    /// site's address: `index.html` answers a directory, `404.html` a
    /// missing page.
    Deploy {
        /// The folder: its files' paths under it are their URLs' paths.
        dir: PathBuf,
        /// The public bucket to serve it from (`bucket create --public`).
        #[arg(long)]
        bucket: BucketId,
    },
}

/// Runs a `site` command.
pub fn run(
    cmd: SiteCommand,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = node.connect(Some(data_dir))?;
    match cmd {
        SiteCommand::Deploy { dir, bucket } => deploy(&client, data_dir, &dir, bucket, json),
    }
}

fn deploy(
    client: &NodeClient,
    data_dir: &Path,
    dir: &Path,
    bucket: BucketId,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let what = format!("deploying {} to {bucket}", dir.display());
    let view = client.bucket(&bucket).map_err(explain)?;
    if !view.public {
        bail!(
            "{what}: the bucket is private, and a site is read by anyone: \
             deploy to a public one (`peercloud bucket create CLUSTER --public`)"
        );
    }
    let wallet = load_wallet(data_dir)?;
    if view.owner != wallet.account_id() {
        bail!("{what}: the bucket is {}'s, not this wallet's", view.owner);
    }
    let files = files_under(dir, "").with_context(|| format!("{what}: reading the folder"))?;
    if files.is_empty() {
        bail!("{what}: the folder holds no files");
    }
    let stored = store_files(client, &wallet, &bucket, &files, true, &what)?;
    let status = client.status().map_err(explain)?;
    let path_url = status
        .web
        .as_ref()
        .map(|web| format!("{web}/{}/", bucket.0));
    let label = site_label(&bucket);
    let sent: u64 = stored.puts.iter().map(|p| p.receipt.size_bytes).sum();
    if json {
        let value = serde_json::json!({
            "bucket": bucket,
            "files": files.len(),
            "uploaded": stored.puts.len(),
            "unchanged": stored.unchanged,
            "uploaded_bytes": sent,
            "url": path_url,
            "site_label": label,
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "deployed {} files from {}: {} uploaded ({}), {} unchanged",
        files.len(),
        dir.display(),
        stored.puts.len(),
        display::bytes(sent),
        stored.unchanged
    );
    match path_url {
        Some(url) => println!("site     {url}"),
        None => println!("site     this node serves no web gateway; any node's serves it"),
    }
    println!("host     {label}.<your domain> (virtual-host addressing, any node)");
    Ok(ExitCode::SUCCESS)
}
