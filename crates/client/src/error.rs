//! [`ClientError`]: everything that can go wrong talking to a node's HTTP API,
//! split the way a user acts on it — the node is not there (start it), it
//! answered no (read its reason), it answered nonsense (a version mismatch or
//! a bug), or a local file is missing.

use std::path::PathBuf;

use peercloud_api::{ApiError, ErrorCode};
use peercloud_types::ContentId;

/// A call to a node's HTTP API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API address is not a usable URL.
    #[error("{url:?} is not a node API address: {reason}")]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made: nothing listens there, or the host is unreachable.
    #[error("node not reachable at {url} ({reason}): is `peercloud node` running?")]
    Unreachable {
        /// The node's API address.
        url: String,
        /// The operating system's or HTTP stack's reason.
        reason: String,
    },
    /// Connected, but the exchange broke off (connection reset, body cut short).
    #[error("the connection to the node at {url} failed: {reason}")]
    Transport {
        /// The request's URL.
        url: String,
        /// The HTTP stack's reason.
        reason: String,
    },
    /// The node did not answer in time.
    #[error("the node at {url} did not answer within {timeout_secs} s")]
    Timeout {
        /// The request's URL.
        url: String,
        /// The bound that ran out.
        timeout_secs: u64,
    },
    /// The node answered with an error (its `ApiError` body, or the HTTP status
    /// when the body was not one).
    #[error("{message} (node answered HTTP {status}, {code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable machine code.
        code: ErrorCode,
        /// The node's sentence.
        message: String,
    },
    /// The node's answer did not decode as the expected JSON.
    #[error("the node's answer to {url} does not decode: {reason}")]
    Decode {
        /// The request's URL.
        url: String,
        /// The decoder's error.
        reason: String,
    },
    /// The node's answer is larger than any valid answer to this call.
    #[error("the node's answer to {url} exceeds {limit_bytes} bytes")]
    TooLarge {
        /// The request's URL.
        url: String,
        /// The bound.
        limit_bytes: u64,
    },
    /// A chunk came back whose bytes do not hash to the CID asked for.
    #[error("the node returned bytes for chunk {cid} that hash to {actual}")]
    ChunkMismatch {
        /// The CID asked for.
        cid: ContentId,
        /// What the bytes hash to.
        actual: ContentId,
    },
    /// The node's data directory has no API address: the node never started there.
    #[error(
        "no {} (is `peercloud node` running with data dir {}? or pass --node URL)",
        path.display(),
        dir.display()
    )]
    NoApiAddress {
        /// The address file looked for.
        path: PathBuf,
        /// The node data directory.
        dir: PathBuf,
    },
    /// A local file could not be read (the OS error is the source, so a
    /// `{:#}` chain prints it once).
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ClientError {
    /// Whether the node answered that the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ClientError::Api {
                code: ErrorCode::NotFound,
                ..
            }
        )
    }

    /// The API error code, when the node answered with one.
    pub fn api_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<ApiError> for ClientError {
    /// A refusal from a node reached in process: what HTTP would have carried.
    fn from(e: ApiError) -> Self {
        ClientError::Api {
            status: e.code.http_status(),
            code: e.code,
            message: e.message,
        }
    }
}
