//! A public bucket served as a website: a request names the bucket (its
//! site label as the host's first label, or its id as the path's first
//! segment) and a key (the rest of the path; a path ending in `/` names its
//! `index.html`). The key's entry is read by quorum from the bucket's index
//! and must be signed by the bucket's owner; the object's chunks are read
//! and verified against their CIDs as any reader's are, and streamed.
//!
//! What a browser and a cache expect: the content type by the key's
//! extension, `ETag` (the object's manifest CID: the same bytes, the same
//! tag) and `If-None-Match` (304), one `Range` (206, or 416 when outside),
//! `Cache-Control`, a directory without its slash redirected to it, and the
//! site's own `404.html` (with status 404) for a key it lacks.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use data_encoding::BASE32_NOPAD;
use peercloud_ledger::object_entry::check_key;
use peercloud_ledger::{BucketId, InlineIndex};
use peercloud_store::{ChunkStore, MemChunkStore, get_public_object};
use peercloud_types::{AccountId, ContentId, Hash32};
use percent_encoding::percent_decode_str;
use tokio::sync::mpsc;

use super::cache::{CACHED_OBJECT_BYTES_MAX, Found, SiteCache};
use crate::daemon::{Inner, NetStore};

/// The key a path ending in `/` names under it.
pub const INDEX_DOCUMENT: &str = "index.html";
/// The key a site answers with (status 404) for a key it lacks.
pub const NOT_FOUND_DOCUMENT: &str = "404.html";
/// What a served object tells caches: keep it a minute, then ask again
/// (an `If-None-Match` answered 304 when it did not change).
pub const CACHE_CONTROL: &str = "public, max-age=60";
/// Pieces of an object on their way to the visitor at once: the read
/// waits when the visitor is slower than the holders.
const STREAM_PIECES_IN_FLIGHT: usize = 4;

/// The host label that names `bucket`'s site: its id in lowercase base32
/// (52 characters, within a DNS label's 63), e.g.
/// `http://<label>.sites.example.org/`.
pub fn site_label(bucket: &BucketId) -> String {
    BASE32_NOPAD.encode(&bucket.0.0).to_ascii_lowercase()
}

/// The bucket whose site label is `label`, if it is one.
pub fn site_of_label(label: &str) -> Option<BucketId> {
    let bytes = BASE32_NOPAD
        .decode(label.to_ascii_uppercase().as_bytes())
        .ok()?;
    Some(BucketId(Hash32(bytes.try_into().ok()?)))
}

/// The bucket and key a request names; `Err` says why it names none.
fn target(host: Option<&str>, path: &str) -> Result<(BucketId, String), String> {
    let by_host = host
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _port)| name))
        .and_then(|h| h.split_once('.'))
        .and_then(|(label, _)| site_of_label(label));
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, rest) = match by_host {
        Some(bucket) => (bucket, path),
        None => {
            let (first, rest) = path.split_once('/').unwrap_or((path, ""));
            let bucket = first.parse::<BucketId>().map_err(|e| {
                format!(
                    "this address names no site: the path starts with a bucket id, or the host with a site label ({e})"
                )
            })?;
            (bucket, rest)
        }
    };
    let mut key = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| "the path is not UTF-8 once decoded".to_owned())?
        .into_owned();
    if key.is_empty() || key.ends_with('/') {
        key.push_str(INDEX_DOCUMENT);
    }
    Ok((bucket, key))
}

/// The gateway: the node it reads through, and what it keeps in memory.
#[derive(Debug)]
pub struct Gateway {
    inner: Arc<Inner>,
    cache: Arc<SiteCache>,
}

impl Gateway {
    /// A gateway reading through `inner`.
    pub fn new(inner: Arc<Inner>) -> Gateway {
        Gateway {
            inner,
            cache: Arc::default(),
        }
    }
}

/// What `key` of `bucket` names now (an owner-signed entry a quorum of its
/// index replicas answered), if anything.
async fn find(
    gateway: &Gateway,
    bucket: BucketId,
    owner: &AccountId,
    key: &str,
) -> Result<Option<Found>, String> {
    if let Some(found) = gateway.cache.lookup(&bucket, key) {
        return Ok(Some(found));
    }
    let read = match gateway.inner.index_get(bucket, key.to_owned()).await {
        Ok(read) => read,
        // Stale if error: what the key named when the index last answered
        // (its bytes are content-addressed, so they are that version's).
        Err(e) => match gateway.cache.lookup_stale(&bucket, key) {
            Some(found) => {
                tracing::warn!(%bucket, key, %e, "the site's index did not answer: serving its last answer");
                return Ok(Some(found));
            }
            None => return Err(format!("the site's index did not answer: {e}")),
        },
    };
    let Some(entry) = read.entries.iter().find(|e| e.body.key == key) else {
        return Ok(None);
    };
    if entry.signer != *owner.key() || entry.verify().is_err() {
        tracing::warn!(%bucket, key, "an index answer not signed by the bucket's owner");
        return Ok(None);
    }
    let Some(object) = entry.body.object else {
        return Ok(None);
    };
    let inline = if object.inline {
        let carried = InlineIndex::new(&read.inline).of(&entry.body).cloned();
        Some(carried.ok_or_else(|| format!("no index replica answered with {key:?}'s bytes"))?)
    } else {
        None
    };
    let found = Found { object, inline };
    gateway.cache.remember(bucket, key.to_owned(), &found);
    Ok(Some(found))
}

/// Serves a request to the web gateway.
pub(super) async fn serve(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let mut refused = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "a site is read with GET or HEAD",
        );
        refused
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return refused;
    }
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let path = request.uri().path();
    let (bucket, key) = match target(host, path) {
        Ok(target) => target,
        Err(message) => return plain(StatusCode::NOT_FOUND, &message),
    };
    if let Err(err) = check_key(&key) {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("the path names no key: {err}"),
        );
    }
    let owner = {
        let chain = gateway.inner.chain();
        match chain.state().bucket(&bucket) {
            Some(record) if record.public => record.owner,
            Some(_) => {
                return plain(
                    StatusCode::NOT_FOUND,
                    &format!("{bucket} is private: its objects are not served"),
                );
            }
            None => return plain(StatusCode::NOT_FOUND, &format!("no {bucket} on the ledger")),
        }
    };
    let unavailable = |message: String| plain(StatusCode::SERVICE_UNAVAILABLE, &message);
    match find(&gateway, bucket, &owner, &key).await {
        Ok(Some(found)) => return object(&gateway, StatusCode::OK, &method, headers, &key, found),
        Ok(None) => {}
        Err(message) => return unavailable(message),
    }
    // A directory asked for without its slash: to it, so relative links work.
    let is_index = key
        .strip_suffix(INDEX_DOCUMENT)
        .is_some_and(|dir| dir.is_empty() || dir.ends_with('/'));
    if !is_index {
        match find(&gateway, bucket, &owner, &format!("{key}/{INDEX_DOCUMENT}")).await {
            Ok(Some(_)) => {
                let mut moved = plain(StatusCode::MOVED_PERMANENTLY, "a directory: see its index");
                if let Ok(location) = HeaderValue::from_str(&format!("{path}/")) {
                    moved.headers_mut().insert(header::LOCATION, location);
                }
                return moved;
            }
            Ok(None) => {}
            Err(message) => return unavailable(message),
        }
    }
    match find(&gateway, bucket, &owner, NOT_FOUND_DOCUMENT).await {
        Ok(Some(found)) => object(
            &gateway,
            StatusCode::NOT_FOUND,
            &method,
            headers,
            NOT_FOUND_DOCUMENT,
            found,
        ),
        Ok(None) => plain(StatusCode::NOT_FOUND, &format!("no {key:?} in this site")),
        Err(message) => unavailable(message),
    }
}

/// The answer carrying `found` (or the part a `Range` asks for, or 304).
fn object(
    gateway: &Gateway,
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
    key: &str,
    found: Found,
) -> Response {
    let size = found.object.size;
    let etag = format!("\"{}\"", found.object.manifest);
    let mut answer = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, CACHE_CONTROL)
        .header(header::ACCEPT_RANGES, "bytes");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    if status == StatusCode::OK && matches {
        return answer
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "an unbuildable answer"));
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| status == StatusCode::OK)
        .and_then(|v| byte_range(v, size));
    let (status, start, len) = match range {
        None => (status, 0, size),
        Some(Ok((start, end))) => {
            answer = answer.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        Some(Err(())) => {
            let mut refused = plain(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &format!("the range asked for is outside the {size} bytes of {key:?}"),
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return refused;
        }
    };
    let mut content_type = mime_guess::from_path(key)
        .first_or_octet_stream()
        .essence_str()
        .to_owned();
    if content_type.starts_with("text/") {
        content_type.push_str("; charset=utf-8");
    }
    let answer = answer
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len);
    let kept = gateway.cache.body(&found.object.manifest);
    let body = if *method == Method::HEAD || len == 0 {
        Body::empty()
    } else if let Some(bytes) = kept.filter(|b| b.len() as u64 == size) {
        let (start, end) = (start as usize, (start + len) as usize);
        Body::from(bytes.slice(start..end))
    } else {
        stream(gateway, found, start, len)
    };
    answer
        .body(body)
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "an unbuildable answer"))
}

/// The inclusive byte range one `Range: bytes=…` asks of `size` bytes:
/// `None` to send the whole object (no range, another unit, several
/// ranges, or one that does not parse: a server may ignore those),
/// `Err` when it lies outside the object.
fn byte_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            u64::MAX
        } else {
            last.parse().ok()?
        };
        if start > end {
            return None;
        }
        if start >= size {
            return Some(Err(()));
        }
        (start, end.min(size - 1))
    };
    Some(Ok(range))
}

/// The object's bytes `start..start + len`, read and verified on a blocking
/// thread and streamed as they come.
fn stream(gateway: &Gateway, found: Found, start: u64, len: u64) -> Body {
    let (tx, rx) = mpsc::channel(STREAM_PIECES_IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    let inner = gateway.inner.clone();
    let size = found.object.size;
    // A whole small object read is kept for the next visitor.
    let whole = start == 0 && len == size && size <= CACHED_OBJECT_BYTES_MAX;
    let keep = whole.then(|| gateway.cache.clone());
    tokio::task::spawn_blocking(move || {
        let mut out = RangeWriter {
            tx,
            skip: start,
            left: len,
            fill: keep.as_ref().map(|_| Vec::with_capacity(len as usize)),
        };
        let manifest = found.object.manifest;
        let read = match &found.inline {
            Some(object) => {
                let memory = MemChunkStore::new();
                object
                    .chunks
                    .iter()
                    .try_for_each(|chunk| memory.put(&ContentId::of(chunk), chunk))
                    .and_then(|()| get_public_object(&memory, &manifest, &mut out))
            }
            None => get_public_object(&NetStore::for_visitors(inner, runtime), &manifest, &mut out),
        };
        match read {
            Err(err) if out.left > 0 => {
                tracing::warn!(%manifest, %err, "a site's object could not be read to the end");
                let _ = out.tx.blocking_send(Err(io::Error::other(err.to_string())));
            }
            _ => {
                if let (Some(cache), Some(bytes)) = (keep, out.fill.take())
                    && bytes.len() as u64 == size
                {
                    cache.keep(manifest, Bytes::from(bytes));
                }
            }
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Passes on the bytes of one range of what is written through it.
struct RangeWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    /// Bytes still to skip before the range.
    skip: u64,
    /// Bytes of the range still to send.
    left: u64,
    /// Every byte sent, when the object is to be kept.
    fill: Option<Vec<u8>>,
}

impl Write for RangeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let skip = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.skip -= skip as u64;
        let part = &buf[skip..];
        let take = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(part.len());
        if take > 0 {
            if let Some(fill) = &mut self.fill {
                fill.extend_from_slice(&part[..take]);
            }
            self.tx
                .blocking_send(Ok(Bytes::copy_from_slice(&part[..take])))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the visitor left"))?;
            self.left -= take as u64;
        }
        if take < part.len() {
            // Past the range: the read stops here.
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the range is sent",
            ));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A short plain-text answer that no cache keeps.
fn plain(status: StatusCode, message: &str) -> Response {
    let mut answer = (status, format!("{message}\n")).into_response();
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_s_site_label_fits_a_dns_label_and_names_it_back() {
        let bucket = BucketId(Hash32([7; 32]));
        let label = site_label(&bucket);
        assert_eq!(label.len(), 52);
        assert!(
            label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(site_of_label(&label), Some(bucket));
        assert_eq!(site_of_label(&label.to_ascii_uppercase()), Some(bucket));
        assert_eq!(site_of_label("www"), None);
        assert_eq!(site_of_label(&label[..50]), None);
    }

    #[test]
    fn a_request_names_its_bucket_by_host_or_by_path_and_a_directory_its_index() {
        let bucket = BucketId(Hash32([7; 32]));
        let hex = bucket.0.to_string();
        let host = format!("{}.sites.localhost:8080", site_label(&bucket));
        assert_eq!(
            target(Some(&host), "/docs/a%20b.html"),
            Ok((bucket, "docs/a b.html".to_owned()))
        );
        assert_eq!(
            target(Some(&host), "/"),
            Ok((bucket, INDEX_DOCUMENT.to_owned()))
        );
        assert_eq!(
            target(Some("127.0.0.1:8080"), &format!("/{hex}/css/")),
            Ok((bucket, format!("css/{INDEX_DOCUMENT}")))
        );
        assert_eq!(
            target(None, &format!("/bucket:{hex}")),
            Ok((bucket, INDEX_DOCUMENT.to_owned()))
        );
        let err = target(Some("localhost"), "/favicon.ico").unwrap_err();
        assert!(err.contains("names no site"), "{err}");
        let err = target(None, &format!("/{hex}/%FF")).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn a_range_is_one_span_inside_the_object_or_refused() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-500", 100), Some(Ok((0, 99))));
        assert_eq!(byte_range("bytes=50-5000", 100), Some(Ok((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), None, "several: the whole");
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=9-1", 100), None);
        assert_eq!(byte_range("bytes=x-1", 100), None);
    }

    #[test]
    fn the_range_writer_passes_on_only_its_span_and_stops_after_it() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut out = RangeWriter {
            tx,
            skip: 3,
            left: 4,
            fill: Some(Vec::new()),
        };
        assert_eq!(out.write(b"01").expect("skipped"), 2);
        assert_eq!(out.write(b"2345").expect("in the range"), 4);
        assert!(out.write(b"6789").is_err(), "past the range");
        assert_eq!(out.fill.take().expect("filled"), b"3456");
        drop(out);
        let mut got = Vec::new();
        while let Ok(Ok(bytes)) = rx.try_recv() {
            got.extend_from_slice(&bytes);
        }
        assert_eq!(got, b"3456");
    }
}
