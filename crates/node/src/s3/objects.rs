//! Object operations: a put streams the request body into the bucket flow
//! (sealed to the key's wallet, chunked, stored on the bucket's cluster)
//! while its MD5 is taken; a get streams the object back through a bounded
//! channel, reading only the chunks that hold the range asked for (awscli
//! downloads a large object as many ranges at once).
//!
//! A body that does not match its `Content-MD5` or its `Content-Length` is
//! refused before the object gets its name: the check runs as the last
//! bytes are read, and an error there fails the put, which releases what it
//! stored. Conditional requests (`If-Match`, `If-None-Match`,
//! `If-Modified-Since`, `If-Unmodified-Since`) are checked against the
//! object's ETag and write time.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use peercloud_client::bucket::{self as flows, BucketError, ObjectItem};
use peercloud_ledger::object_entry::{KeyError, check_key};
use peercloud_types::ContentId;
use s3s::crypto::{Checksum, Md5};
use s3s::dto::{ETag, ETagCondition, Range, StreamingBlob, Timestamp};
use s3s::{S3Error, S3Result, s3_error};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::buckets::{Resolved, timestamp};
use super::{Gateway, internal};

/// Pieces of a get in flight between the reading thread and the response.
const GET_QUEUE: usize = 8;

/// What a put stored.
#[derive(Debug)]
pub(super) struct Stored {
    pub etag: String,
    pub size: u64,
    pub manifest: ContentId,
}

/// What a get or head found: the object and how S3 names its version.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub item: ObjectItem,
    pub etag: String,
}

impl Found {
    pub fn last_modified(&self) -> Timestamp {
        timestamp(self.item.at_ms)
    }
}

/// A body as a blocking reader, for the bucket flows (made on the runtime,
/// read on a blocking thread).
pub(super) fn body_reader(body: StreamingBlob) -> impl Read + Send + 'static {
    SyncIoBridge::new(StreamReader::new(body.map_err(io::Error::other)))
}

/// Reads a body through, taking its MD5 and length; at its end, a length or
/// MD5 other than the one announced is an error instead of the end, so the
/// put it feeds fails.
pub(super) struct Checked<R> {
    inner: R,
    md5: Option<Md5>,
    read: u64,
    expected_len: Option<u64>,
    expected_md5: Option<[u8; 16]>,
    digest: Option<[u8; 16]>,
}

impl<R: Read> Checked<R> {
    pub fn new(inner: R, expected_len: Option<u64>, expected_md5: Option<[u8; 16]>) -> Self {
        Checked {
            inner,
            md5: Some(Md5::new()),
            read: 0,
            expected_len,
            expected_md5,
            digest: None,
        }
    }

    /// The MD5 of what was read, once read to its end.
    pub fn digest(&self) -> Option<[u8; 16]> {
        self.digest
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.read += n as u64;
            if let Some(md5) = &mut self.md5 {
                md5.update(&buf[..n]);
            }
            if self.expected_len.is_some_and(|len| self.read > len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the body is longer than its Content-Length {}",
                        self.expected_len.unwrap_or(0)
                    ),
                ));
            }
            return Ok(n);
        }
        if let Some(md5) = self.md5.take() {
            let digest: [u8; 16] = md5.finalize();
            self.digest = Some(digest);
            if let Some(len) = self.expected_len.filter(|len| *len != self.read) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the body ended after {} of its {len} bytes", self.read),
                ));
            }
            if self.expected_md5.is_some_and(|md5| md5 != digest) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, BAD_DIGEST));
            }
        }
        Ok(0)
    }
}

/// How a put refused for its Content-MD5 says so.
const BAD_DIGEST: &str = "the body does not match its Content-MD5";

/// A `Content-MD5` header's digest.
pub(super) fn content_md5(header: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(text) = header else {
        return Ok(None);
    };
    data_encoding::BASE64
        .decode(text.trim().as_bytes())
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            s3_error!(
                InvalidDigest,
                "Content-MD5 {text:?} is not the base64 of 16 bytes"
            )
        })
}

/// An object key S3 sent, checked as the index checks it.
pub(super) fn checked_key(key: &str) -> S3Result<()> {
    check_key(key).map_err(|e| match e {
        KeyError::TooLong { .. } => s3_error!(KeyTooLongError, "{e}"),
        _ => s3_error!(InvalidArgument, "{e}"),
    })
}

/// A bucket flow's error as S3 says it (a put's body error as the body's).
pub(super) fn flow_error(e: BucketError, key: &str) -> S3Error {
    match &e {
        BucketError::NotFound { .. } => s3_error!(NoSuchKey, "no object {key:?}"),
        BucketError::ReadOnly { .. } => s3_error!(AccessDenied, "{e}"),
        BucketError::Key(_) => s3_error!(InvalidArgument, "{e}"),
        BucketError::NotOwner { .. } => s3_error!(AccessDenied, "{e}"),
        BucketError::Store(peercloud_store::StoreError::ObjectTooLarge { .. }) => {
            s3_error!(EntityTooLarge, "{e}")
        }
        // The node refused the request itself (a 4xx): the client's to fix.
        BucketError::Client(peercloud_client::ClientError::Api { status: 403, .. }) => {
            s3_error!(AccessDenied, "{e}")
        }
        BucketError::Client(peercloud_client::ClientError::Api { status, .. })
            if (400..500).contains(status) =>
        {
            s3_error!(InvalidRequest, "{e}")
        }
        _ => {
            let text = e.to_string();
            if text.contains(BAD_DIGEST) {
                s3_error!(BadDigest, "{BAD_DIGEST}")
            } else if text.contains("Content-Length") || text.contains("the body ended") {
                s3_error!(IncompleteBody, "{text}")
            } else {
                internal(e)
            }
        }
    }
}

/// The ETag of an object written some other way than through this gateway:
/// from its manifest CID, with a dash so that no client takes it for an
/// MD5 (as S3 does with a multipart object's).
fn manifest_etag(manifest: &ContentId) -> String {
    format!("{}-1", hex::encode(&manifest.digest()[..16]))
}

impl Gateway {
    /// The ETag S3 clients know this object by.
    pub(super) fn etag_of(&self, manifest: &ContentId) -> S3Result<String> {
        Ok(self
            .names
            .etag(manifest)
            .map_err(internal)?
            .unwrap_or_else(|| manifest_etag(manifest)))
    }

    /// Stores `reader` as `key` in `bucket`; records and returns its ETag.
    /// With `expected_md5` / `expected_len`, a body that differs is refused.
    pub(super) async fn store<R: Read + Send + 'static>(
        &self,
        bucket: &Resolved,
        key: &str,
        reader: R,
        expected_len: Option<u64>,
        expected_md5: Option<[u8; 16]>,
    ) -> S3Result<Stored> {
        checked_key(key)?;
        let (wallet, id, key_owned) = (bucket.wallet.clone(), bucket.id, key.to_owned());
        let names = self.names.clone();
        self.blocking(move |node| {
            let mut checked = Checked::new(reader, expected_len, expected_md5);
            let put = flows::put(node, &wallet, &id, &key_owned, &mut checked)
                .map_err(|e| flow_error(e, &key_owned))?;
            let digest = checked
                .digest()
                .ok_or_else(|| internal("the put ended before its body did"))?;
            let etag = hex::encode(digest);
            // Committed with the other puts' that finished meanwhile.
            names
                .set_etag(&put.receipt.manifest_cid, &etag)
                .map_err(internal)?;
            Ok(Stored {
                etag,
                size: put.receipt.size_bytes,
                manifest: put.receipt.manifest_cid,
            })
        })
        .await
    }

    /// What `key` names in `bucket`, with its ETag.
    pub(super) async fn find(&self, bucket: &Resolved, key: &str) -> S3Result<Found> {
        checked_key(key)?;
        let (id, key_owned) = (bucket.id, key.to_owned());
        let item = self
            .blocking(move |node| {
                flows::head(node, &id, &key_owned).map_err(|e| flow_error(e, &key_owned))
            })
            .await?;
        let etag = self.etag_of(&item.object.manifest)?;
        Ok(Found { item, etag })
    }

    /// Streams `found` (`key` of `bucket`) from byte `skip` on, `take`
    /// bytes: the object found, never one written over it since.
    pub(super) fn stream(
        &self,
        bucket: &Resolved,
        key: &str,
        found: &Found,
        skip: u64,
        take: u64,
    ) -> StreamingBlob {
        let (tx, rx) = mpsc::channel(GET_QUEUE);
        let (node, wallet, id, key) = (
            self.node.clone(),
            bucket.wallet.clone(),
            bucket.id,
            key.to_owned(),
        );
        let manifest = found.item.object.manifest;
        tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter { tx: tx.clone() };
            let range = skip..skip.saturating_add(take);
            let expect = Some(&manifest);
            if let Err(e) = flows::get_range(&node, &wallet, &id, &key, expect, range, &mut out) {
                // The answer has begun: the client sees its body cut short.
                tracing::warn!(%e, key, "an S3 get failed while streaming");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        });
        StreamingBlob::wrap(ChannelBody(rx))
    }
}

/// Evaluates a get's or head's conditions against what was found: `Ok`
/// to answer, `NotModified` or `PreconditionFailed` otherwise.
pub(super) fn check_conditions(
    found: &Found,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let etag = ETag::Strong(found.etag.clone());
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == etag.value(),
    };
    // Whole seconds, as HTTP dates carry them.
    let modified = found.item.at_ms / 1000;
    let secs = |t: &Timestamp| {
        u64::try_from(time::OffsetDateTime::from(t.clone()).unix_timestamp()).unwrap_or(0)
    };
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(
                PreconditionFailed,
                "If-Match: the object's ETag is {:?}",
                found.etag
            ));
        }
    } else if if_unmodified_since.is_some_and(|t| modified > secs(t)) {
        return Err(s3_error!(
            PreconditionFailed,
            "the object was modified since"
        ));
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(s3_error!(NotModified));
        }
    } else if if_modified_since.is_some_and(|t| modified <= secs(t)) {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

/// The bytes a get answers: all, or the range asked for.
pub(super) fn range_of(range: Option<&Range>, size: u64) -> S3Result<(u64, u64, Option<String>)> {
    match range {
        None => Ok((0, size, None)),
        Some(range) => {
            let r = range.check(size).map_err(|_| {
                s3_error!(
                    InvalidRange,
                    "the range is outside the object's {size} bytes"
                )
            })?;
            if r.is_empty() {
                // Nothing to cut (an empty object): the whole of it, 200.
                return Ok((0, 0, None));
            }
            let header = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
            Ok((r.start, r.end - r.start, Some(header)))
        }
    }
}

/// Writes into a channel, a piece per write.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            self.tx
                .blocking_send(Ok(Bytes::copy_from_slice(buf)))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body fed by a channel.
struct ChannelBody(mpsc::Receiver<io::Result<Bytes>>);

impl Stream for ChannelBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_the_client_can_act_on_are_not_internal_errors() {
        let api = |status| {
            BucketError::Client(peercloud_client::ClientError::Api {
                status,
                code: peercloud_api::ErrorCode::BadRequest,
                message: "refused".into(),
            })
        };
        let code = |e| flow_error(e, "k").code().clone();
        assert_eq!(code(api(400)), s3s::S3ErrorCode::InvalidRequest);
        assert_eq!(code(api(403)), s3s::S3ErrorCode::AccessDenied);
        assert_eq!(code(api(503)), s3s::S3ErrorCode::InternalError);
        let too_large = BucketError::Store(peercloud_store::StoreError::ObjectTooLarge {
            chunk_bytes: 1 << 20,
            chunks_max: 10,
        });
        assert_eq!(code(too_large), s3s::S3ErrorCode::EntityTooLarge);
        let wallet = peercloud_types::Keypair::from_seed(&[1; 32]).account_id();
        let owner = peercloud_types::Keypair::from_seed(&[2; 32]).account_id();
        let not_owner = BucketError::NotOwner {
            bucket: peercloud_ledger::BucketId::derive(&owner, 3),
            owner,
            wallet,
        };
        assert_eq!(code(not_owner), s3s::S3ErrorCode::AccessDenied);
    }

    #[test]
    fn a_body_that_is_not_what_it_announced_fails_at_its_end() {
        let body = b"hello world".to_vec();
        let md5: [u8; 16] = Md5::checksum(&body);
        let mut ok = Checked::new(&body[..], Some(11), Some(md5));
        let mut out = Vec::new();
        ok.read_to_end(&mut out).unwrap();
        assert_eq!(out, body);
        assert_eq!(ok.digest(), Some(md5));
        let mut other = md5;
        other[0] ^= 1;
        let err = Checked::new(&body[..], None, Some(other))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains(BAD_DIGEST));
        let err = Checked::new(&body[..], Some(12), None)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string().contains("after 11 of its 12 bytes"),
            "{err}"
        );
        let err = Checked::new(&body[..], Some(5), None)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("Content-Length"), "{err}");
        assert_eq!(content_md5(None).unwrap(), None);
        let header = data_encoding::BASE64.encode(&md5);
        assert_eq!(content_md5(Some(&header)).unwrap(), Some(md5));
        assert!(content_md5(Some("bm90IDE2")).is_err());
    }

    #[test]
    fn a_range_is_what_s3_answers_for_it() {
        let size = 100;
        assert_eq!(range_of(None, size).unwrap(), (0, 100, None));
        let r = Range::Int {
            first: 10,
            last: Some(19),
        };
        assert_eq!(
            range_of(Some(&r), size).unwrap(),
            (10, 10, Some("bytes 10-19/100".into()))
        );
        let r = Range::Suffix { length: 5 };
        assert_eq!(range_of(Some(&r), size).unwrap().0, 95);
        let r = Range::Int {
            first: 200,
            last: None,
        };
        assert!(range_of(Some(&r), size).is_err());
    }
}
