//! How the CLI finds the node it talks to: `--node URL` (with `--token-file`),
//! or `--node-dir DIR` (the node's data directory, where a running node writes
//! `api.addr` and `api.token`), or by default the local devnet's first
//! provider, `<data-dir>/devnet/node-1`. Also the one place client errors get
//! the hint a user needs next.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use peercloud_api::{API_ADDR_FILE, ErrorCode, TOKEN_FILE};
use peercloud_client::{ClientError, NodeClient, read_api_addr, read_token_file};

use crate::paths;

/// Which node to talk to (global options).
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's API address, like http://127.0.0.1:7070 (default: read from --node-dir).
    #[arg(
        long = "node",
        value_name = "URL",
        global = true,
        env = "PEERCLOUD_NODE"
    )]
    pub node_url: Option<String>,
    /// File holding the node's API token (its data dir's api.token).
    #[arg(long, value_name = "FILE", global = true, env = "PEERCLOUD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The node's data directory; its api.addr and api.token say where it
    /// listens (default: <data-dir>/devnet/node-1).
    #[arg(long, value_name = "DIR", global = true, env = "PEERCLOUD_NODE_DIR")]
    pub node_dir: Option<PathBuf>,
}

impl NodeArgs {
    /// A client of the node these options name. `data_dir_flag` is the
    /// `--data-dir` flag, used only to find the default node directory.
    pub fn connect(&self, data_dir_flag: Option<&Path>) -> anyhow::Result<NodeClient> {
        let explicit_token = match &self.token_file {
            Some(file) => Some(read_token_file(file)?),
            None => None,
        };
        if let Some(url) = &self.node_url {
            let token = match (explicit_token, &self.node_dir) {
                (Some(token), _) => token,
                (None, Some(dir)) => read_token_file(&dir.join(TOKEN_FILE))?,
                // No token: the request goes out without one, the node then
                // says `unauthorized` and `explain` says which flag to add.
                // Another node's token is never sent to a URL the user typed.
                (None, None) => String::new(),
            };
            return Ok(NodeClient::new(url, token)?);
        }
        let dir = match &self.node_dir {
            Some(dir) => dir.clone(),
            None => paths::default_node_dir(&paths::data_dir_path(data_dir_flag)?),
        };
        // The address first: when the node never started there, that is what
        // the user needs to hear, not that its token is missing too.
        let addr = read_api_addr(&dir)?;
        let token = match explicit_token {
            Some(token) => token,
            None => read_token_file(&dir.join(TOKEN_FILE))?,
        };
        NodeClient::new(&addr, token)
            .with_context(|| format!("the address in {}", dir.join(API_ADDR_FILE).display()))
    }
}

/// A client error with what to do about it, for the user.
pub fn explain(err: ClientError) -> anyhow::Error {
    let hint = match err.api_code() {
        Some(ErrorCode::Unauthorized) => Some(
            "the node refused the API token: pass --token-file FILE (the node's api.token) \
             or --node-dir DIR (its data directory)",
        ),
        _ => None,
    };
    let err = anyhow::Error::new(err);
    match hint {
        Some(hint) => err.context(hint),
        None => err,
    }
}
