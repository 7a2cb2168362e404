//! The node's S3 gateway: a user's buckets behind the S3 protocol, for
//! unmodified clients (awscli, rclone, s3cmd, boto3), on an address of its
//! own (`s3`, loopback by default), written to [`S3_ADDR_FILE`].
//!
//! ```text
//!   S3 client ─SigV4─► s3s (routing, XML, signatures, presigned expiry)
//!      ─► Gateway (this module): the access key's wallet ([`keys`]), the
//!         bucket's name ([`names`]) ─► the client's bucket flows
//!         (`peercloud_client::bucket`) over this node's API in process
//!         ([`InProcessNode`]): sealed to the wallet, chunks on the
//!         bucket's cluster, the index written by quorum
//! ```
//!
//! Encryption stays on the user's side: the gateway is the user's own node,
//! which holds the wallet of every key it serves (`peercloud s3 key
//! create`), so what leaves it is sealed exactly as `peercloud bucket put`
//! seals it. A request that is not signed with a known key, or whose
//! signature or presigned URL is bad or expired, is refused by s3s with
//! S3's own error before anything is read or stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::error_handling::HandleError;
use peercloud_api::S3_ADDR_FILE;
use s3s::auth::{S3Auth, SecretKey};
use s3s::service::S3ServiceBuilder;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result, s3_error};

use crate::api::InProcessNode;
use crate::api::server::{Limits, serve_streaming};
use crate::daemon::{Inner, StartError, io_error};

mod buckets;
pub mod keys;
mod listing;
mod multipart;
mod names;
mod objects;
mod ops;

use keys::{KeyRing, S3_KEYS_FILE, S3Key};
use names::Names;

/// The gateway's own state in the node's data directory: bucket names and
/// multipart uploads (redb).
pub const S3_DB_FILE: &str = "s3.redb";
/// Where the parts of multipart uploads wait for their completion.
pub const S3_UPLOADS_DIR: &str = "s3-uploads";

/// What the S3 operations share.
pub struct Gateway {
    inner: Arc<Inner>,
    node: InProcessNode,
    keys: Arc<KeyRing>,
    names: Arc<Names>,
    uploads: PathBuf,
    /// Held by a bucket's creation (see `buckets::Gateway::create`).
    creating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("uploads", &self.uploads)
            .finish_non_exhaustive()
    }
}

/// The access keys as s3s asks for them.
struct Auth(Arc<KeyRing>);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.find(access_key) {
            Ok(Some(key)) => Ok(SecretKey::from(key.secret_key)),
            Ok(None) => Err(s3_error!(InvalidAccessKeyId)),
            Err(e) => Err(internal(e)),
        }
    }
}

/// Binds the S3 gateway on the node's `s3` address, writes its URL to
/// [`S3_ADDR_FILE`] in `dir`, and serves it in the background.
pub async fn listen(inner: &Arc<Inner>, dir: &Path) -> Result<std::net::SocketAddr, StartError> {
    let what = Path::new("s3 listener");
    let names = Names::open(&dir.join(S3_DB_FILE)).map_err(|e| StartError::Io {
        path: dir.join(S3_DB_FILE),
        source: std::io::Error::other(e.to_string()),
    })?;
    let uploads = dir.join(S3_UPLOADS_DIR);
    std::fs::create_dir_all(&uploads).map_err(io_error(&uploads))?;
    let listener = tokio::net::TcpListener::bind(inner.config.s3)
        .await
        .map_err(io_error(what))?;
    let s3 = listener.local_addr().map_err(io_error(what))?;
    let addr_file = dir.join(S3_ADDR_FILE);
    let url = format!("http://{s3}");
    std::fs::write(&addr_file, format!("{url}\n")).map_err(io_error(&addr_file))?;
    let _ = inner.s3_url.set(url);
    let keys = Arc::new(KeyRing::new(dir.join(S3_KEYS_FILE)));
    let gateway = Gateway {
        inner: inner.clone(),
        node: InProcessNode::new(
            crate::api::Service::new(inner.clone()),
            tokio::runtime::Handle::current(),
        ),
        keys: keys.clone(),
        names: Arc::new(names),
        uploads,
        creating: tokio::sync::Mutex::new(()),
    };
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth(Auth(keys));
    let service = HandleError::new(builder.build(), |e: s3s::HttpError| async move {
        tracing::error!(?e, "S3 request failed inside the gateway");
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the S3 gateway failed on this request",
        )
    });
    let app = axum::Router::new().fallback_service(service);
    tokio::spawn(serve_streaming(listener, app, Limits::default()));
    Ok(s3)
}

impl Gateway {
    /// The key a request was signed with (s3s has checked the signature).
    fn caller<T>(&self, req: &S3Request<T>) -> S3Result<S3Key> {
        let access_key = req
            .credentials
            .as_ref()
            .map(|c| c.access_key.as_str())
            .ok_or_else(|| s3_error!(AccessDenied, "the request is not signed"))?;
        self.keys
            .find(access_key)
            .map_err(internal)?
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))
    }

    /// Runs blocking client work (the bucket flows block on this node's
    /// runtime) on a blocking thread.
    async fn blocking<T, F>(&self, work: F) -> S3Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&InProcessNode) -> S3Result<T> + Send + 'static,
    {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || work(&node))
            .await
            .map_err(internal)?
    }
}

/// An error the client cannot act on, logged and answered `InternalError`.
fn internal(e: impl std::fmt::Display) -> S3Error {
    tracing::warn!(%e, "S3 gateway error");
    S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
}
