//! The node's web gateway: public buckets served as websites to anyone,
//! without the API's token, on an address of its own (`web`, loopback by
//! default; `0.0.0.0:8080` serves other machines). Reads only: a site is
//! written through the owner's API ([`crate::api`]), read here.
//!
//! ```text
//!   GET|HEAD http://<web>/<bucket id>/<path>              (path-style)
//!   GET|HEAD http://<site label>.<any domain>/<path>      (virtual host, site_label)
//!     ─► the bucket on the ledger (public?) ─► index get (quorum, owner-signed entry)
//!     ─► the object's chunks, verified, streamed (inline: from the index answer)
//! ```
//!
//! A key's lookup is kept for a second and a small object's bytes (by
//! manifest CID, so never stale) within a memory budget ([`cache`]): a
//! popular page costs no index read and no chunk read most of the time.

use std::path::Path;
use std::sync::Arc;

use peercloud_api::WEB_ADDR_FILE;

use crate::api::server::{Limits, serve_with};
use crate::daemon::{Inner, StartError, io_error};

mod cache;
pub mod site;

pub use cache::LOOKUP_FRESH;
pub use site::{site_label, site_of_label};

/// Binds the web gateway on the node's `web` address, writes its URL to
/// [`WEB_ADDR_FILE`] in `dir`, and serves it in the background.
pub async fn listen(inner: &Arc<Inner>, dir: &Path) -> Result<std::net::SocketAddr, StartError> {
    let what = Path::new("web listener");
    let listener = tokio::net::TcpListener::bind(inner.config.web)
        .await
        .map_err(io_error(what))?;
    let web = listener.local_addr().map_err(io_error(what))?;
    let addr_file = dir.join(WEB_ADDR_FILE);
    let url = format!("http://{web}");
    std::fs::write(&addr_file, format!("{url}\n")).map_err(io_error(&addr_file))?;
    let _ = inner.web_url.set(url);
    let app = axum::Router::new()
        .fallback(site::serve)
        .with_state(Arc::new(site::Gateway::new(inner.clone())));
    tokio::spawn(serve_with(listener, app, Limits::default()));
    Ok(web)
}
