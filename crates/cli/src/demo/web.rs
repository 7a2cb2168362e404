//! The demo's web act, after storage: a small site deployed through node 1
//! to a public bucket, then fetched over plain HTTP from another node's web
//! gateway, as a visitor's browser would: the page byte-identical, again
//! with its ETag (304, nothing sent), and a missing page answered by the
//! site's own 404.html.
//!
//! ```text
//!  CreateBucket { public }, DepositBucket ─► bucket::put_many (3 files, one index write)
//!  GET http://<node-k web>/<bucket id>/ ─► 200 index.html; If-None-Match ─► 304; /missing ─► 404
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use peercloud_api::WEB_ADDR_FILE;
use peercloud_client::bucket::{self, NewObject};
use peercloud_ledger::BucketId;
use reqwest::StatusCode;
use reqwest::header;

use super::Stage;
use super::storage::{Out, create_bucket};

/// The site's pages: its front page, a style sheet, its page for a miss.
const SITE: [(&str, &str); 3] = [
    (
        "index.html",
        "<!doctype html><html><head><title>Peercloud</title>\
         <link rel=\"stylesheet\" href=\"style.css\"></head>\
         <body><h1>Served by a people's cloud</h1>\
         <p>This page lives in a public bucket, kept by the cluster's nodes.</p></body></html>\n",
    ),
    ("style.css", "body{font-family:sans-serif;color:#0a5}\n"),
    (
        "404.html",
        "<!doctype html><html><body><h1>Not here</h1></body></html>\n",
    ),
];
/// How long a visitor's request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// What the web act did.
pub(super) struct WebReport {
    bucket: BucketId,
    url: String,
    /// The node whose gateway served the visitor.
    served_by: usize,
    bytes: usize,
    first: Duration,
}

impl WebReport {
    /// The act's figures as JSON.
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "bucket": self.bucket.to_string(), "url": self.url,
            "served_by": format!("node-{}", self.served_by), "bytes": self.bytes,
            "first_fetch_ms": self.first.as_millis(), "identical": true,
            "not_modified": true, "not_found_page": true,
        })
    }
}

/// Runs the web act; `killed` is the provider the storage act stopped.
pub(super) fn run(stage: &Stage, killed: usize, json: bool) -> anyhow::Result<WebReport> {
    let out = Out { json };
    let cluster = stage
        .client
        .cluster(&stage.devnet.cluster)
        .context("reading the devnet's storage cluster")?;
    out.line("Web: a site deployed through node-1, fetched over HTTP from another node");
    let (bucket, _) = create_bucket(stage, &cluster, true, out)?;
    let objects: Vec<NewObject<'_>> = SITE
        .iter()
        .map(|(key, page)| NewObject {
            key,
            bytes: page.as_bytes(),
        })
        .collect();
    bucket::put_many(&stage.client, &stage.user, &bucket, &objects)
        .with_context(|| format!("deploying the site to {bucket}"))?;
    out.line(format_args!(
        "  deploy   {} files, {} bytes, one index write",
        objects.len(),
        objects.iter().map(|o| o.bytes.len()).sum::<usize>()
    ));

    // Any provider but node 1 (the deploying one) and the one killed.
    let (served_by, node) = stage
        .devnet
        .nodes
        .iter()
        .enumerate()
        .find(|(i, _)| *i >= 2 && *i != killed)
        .context("no other running provider to fetch the site from")?;
    let web_file = node.dir.join(WEB_ADDR_FILE);
    let web = std::fs::read_to_string(&web_file)
        .with_context(|| format!("reading {}", web_file.display()))?;
    let url = format!("{}/{}/", web.trim(), bucket.0);
    let http = reqwest::blocking::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .context("an HTTP client")?;
    let started = Instant::now();
    let page = http
        .get(&url)
        .send()
        .with_context(|| format!("fetching {url}"))?;
    ensure!(
        page.status() == StatusCode::OK,
        "{url} answered {}",
        page.status()
    );
    let etag = page
        .headers()
        .get(header::ETAG)
        .cloned()
        .context("the page came without an ETag")?;
    let content_type = page
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = page.bytes().with_context(|| format!("reading {url}"))?;
    let first = started.elapsed();
    ensure!(
        body.as_ref() == SITE[0].1.as_bytes(),
        "node-{served_by} served another page than the one deployed"
    );
    out.line(format_args!(
        "  fetched  {url} from node-{served_by}: 200 {content_type}, {} bytes in {} ms, identical",
        body.len(),
        first.as_millis()
    ));
    let again = http
        .get(&url)
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .with_context(|| format!("fetching {url} again"))?;
    ensure!(
        again.status() == StatusCode::NOT_MODIFIED,
        "{url} with its ETag answered {}",
        again.status()
    );
    let missing = http
        .get(format!("{url}missing.html"))
        .send()
        .context("fetching a missing page")?;
    ensure!(
        missing.status() == StatusCode::NOT_FOUND,
        "a missing page answered {}",
        missing.status()
    );
    let missing = missing.bytes().context("reading the 404 page")?;
    ensure!(
        missing.as_ref() == SITE[2].1.as_bytes(),
        "a missing page was not the site's 404.html"
    );
    out.line("  again    with its ETag: 304, nothing sent; /missing.html: the site's 404.html");
    Ok(WebReport {
        bucket,
        url,
        served_by,
        bytes: body.len(),
        first,
    })
}
