//! The demo's S3 act, when awscli is installed: an access key made for the
//! user's wallet at node 1 (as `peercloud s3 key create` makes it), then
//! `aws s3 mb`, `aws s3 cp` up and back down through node 1's S3 gateway,
//! the file compared byte for byte.
//!
//! ```text
//!  S3Key (node-1/s3.keys) ─► aws s3 mb ─► CreateBucket + DepositBucket
//!  aws s3 cp FILE s3://… ─► bucket put (sealed to the wallet) ─► aws s3 cp s3://… BACK ─► identical
//! ```

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, ensure};
use peercloud_api::S3_ADDR_FILE;
use peercloud_node::s3::keys::{S3_KEYS_FILE, S3Key, S3Keys};
use peercloud_types::Amount;

use super::Stage;
use super::storage::Out;

/// The demo's file: small enough for the index to keep inline, so the act
/// works with the provider the storage act killed still down.
const NOTE: &str = "Stored through the S3 gateway: sealed to the wallet, kept by the cluster.\n";

/// What the S3 act did.
pub(super) enum S3Report {
    /// awscli is not installed.
    Skipped,
    /// The round trip.
    Done { endpoint: String, bytes: usize },
}

impl S3Report {
    /// The act's figures as JSON.
    pub(super) fn json(&self) -> serde_json::Value {
        match self {
            S3Report::Skipped => serde_json::json!({ "skipped": "awscli is not installed" }),
            S3Report::Done { endpoint, bytes } => serde_json::json!({
                "endpoint": endpoint, "bytes": bytes, "identical": true,
            }),
        }
    }
}

fn aws_present() -> bool {
    Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the S3 act in `scratch`.
pub(super) fn run(stage: &Stage, scratch: &Path, json: bool) -> anyhow::Result<S3Report> {
    let out = Out { json };
    if !aws_present() {
        out.line("S3: awscli is not installed, so no `aws s3 cp` round trip (pip install awscli)");
        return Ok(S3Report::Skipped);
    }
    out.line("S3: awscli through node-1's S3 gateway");
    let node = &stage.devnet.nodes[1].dir;
    let key = S3Key::generate(&stage.user, stage.devnet.cluster, Amount::from_tokens(2))?;
    let keys_file = node.join(S3_KEYS_FILE);
    let mut keys = S3Keys::load(&keys_file)?;
    keys.keys.push(key.clone());
    keys.save(&keys_file)?;
    let endpoint = std::fs::read_to_string(node.join(S3_ADDR_FILE))
        .context("reading node-1's S3 address")?
        .trim()
        .to_owned();
    let aws = |args: &[&str]| -> anyhow::Result<Output> {
        let output = peercloud_devnet::awscli::command(&endpoint, &key.access_key, &key.secret_key)
            .args(args)
            .output()
            .context("running awscli")?;
        ensure!(
            output.status.success(),
            "aws {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(output)
    };
    let up = scratch.join("s3-note.txt");
    let back = scratch.join("s3-note-back.txt");
    std::fs::write(&up, NOTE).context("writing the demo's file")?;
    aws(&["s3", "mb", "s3://demo-notes"])?;
    out.line(format_args!(
        "  key      {} for {}",
        key.access_key,
        stage.user.account_id()
    ));
    out.line(format_args!(
        "  aws s3 mb s3://demo-notes            at {endpoint}"
    ));
    let (up_text, back_text) = (up.to_string_lossy(), back.to_string_lossy());
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        &up_text,
        "s3://demo-notes/note.txt",
    ])?;
    aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        "s3://demo-notes/note.txt",
        &back_text,
    ])?;
    let got = std::fs::read(&back).context("reading the file back")?;
    ensure!(
        got == NOTE.as_bytes(),
        "the file came back different through S3"
    );
    out.line(format_args!(
        "  aws s3 cp up and back: {} bytes, identical",
        got.len()
    ));
    Ok(S3Report::Done {
        endpoint,
        bytes: got.len(),
    })
}
