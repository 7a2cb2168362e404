//! The chunk calls of the API: a sealed chunk put, read and released by
//! CID, and an erasure group's pieces put in one body. `cluster=ID` in a
//! put's query places it on that cluster's members (a bucket's chunks).
//!
//! ```text
//!   PUT    /v1/chunks/{cid}[?cluster=ID]             ─► Service::put_chunk
//!   GET    /v1/chunks/{cid}                          ─► Service::get_chunk (x-peercloud-served-by)
//!   DELETE /v1/chunks/{cid}                          ─► Service::delete_chunk
//!   POST   /v1/chunk-groups?pieces=CID:BYTES,…[&cluster=ID] ─► Service::put_chunk_group
//!   POST   /v1/chunk-batches?chunks=CID:BYTES,…[&cluster=ID] ─► Service::put_chunks
//! ```
//!
//! A batch is a put's chunks in one body (up to [`CHUNK_BATCH_CHUNKS_MAX`]
//! chunks, [`peercloud_api::CHUNK_BATCH_BODY_BYTES_MAX`] bytes): each stored
//! on its replicas as a single put would be, with one request and one
//! commit per holder for all of its chunks.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use peercloud_api::CHUNK_BATCH_CHUNKS_MAX;
use peercloud_api::*;
use peercloud_ledger::ClusterId;
use peercloud_store::GROUP_PIECES_MAX;
use peercloud_types::ContentId;

use super::server::{Failure, Raw, parse, rejection};
use super::service::Service;

type Shared = Service;

/// The query of a chunk put: `cluster=ID` places it on that cluster's
/// members (a bucket's chunk) instead of network-wide.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ScopeQuery {
    cluster: Option<String>,
}

/// The cluster a put's query names, parsed.
fn scope(cluster: Option<&str>) -> Result<Option<ClusterId>, Failure> {
    cluster.map(|c| parse(c, "a cluster id")).transpose()
}

pub(super) async fn put_chunk(
    State(service): State<Shared>,
    Path(cid): Path<String>,
    query: Result<Query<ScopeQuery>, axum::extract::rejection::QueryRejection>,
    Raw(body): Raw,
) -> Result<StatusCode, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    let cid: ContentId = parse(&cid, "a CID")?;
    let cluster = scope(query.cluster.as_deref())?;
    // The body as it came, without a copy when it is one buffer.
    service.put_chunk(cid, Vec::from(body), cluster).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of [`CHUNK_GROUPS_ROUTE`]: `pieces=CID:BYTES,CID:BYTES,…`, the
/// group's pieces in order (data, then parity); the body is their bytes, one
/// after the other. `cluster=ID` places them on that cluster's members.
#[derive(Debug, serde::Deserialize)]
pub(super) struct GroupQuery {
    pieces: String,
    cluster: Option<String>,
}

pub(super) async fn put_chunk_group(
    State(service): State<Shared>,
    query: Result<Query<GroupQuery>, axum::extract::rejection::QueryRejection>,
    Raw(body): Raw,
) -> Result<StatusCode, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    let cluster = scope(query.cluster.as_deref())?;
    let pieces = split_group(&query.pieces, &body)?;
    service.put_chunk_group(pieces, cluster).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cuts a chunk-group body into its pieces as `spec` (`CID:BYTES,…`) lists them.
pub(super) fn split_group(spec: &str, body: &Bytes) -> Result<Vec<(ContentId, Bytes)>, Failure> {
    split_body(spec, body, GROUP_PIECES_MAX, "a chunk group", "piece")
}

/// The query of [`super::server::CHUNK_BATCHES_ROUTE`]: `chunks=CID:BYTES,…`,
/// the chunks in the body's order; `cluster=ID` places them on that
/// cluster's members.
#[derive(Debug, serde::Deserialize)]
pub(super) struct BatchQuery {
    chunks: String,
    cluster: Option<String>,
}

pub(super) async fn put_chunk_batch(
    State(service): State<Shared>,
    query: Result<Query<BatchQuery>, axum::extract::rejection::QueryRejection>,
    Raw(body): Raw,
) -> Result<StatusCode, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    let cluster = scope(query.cluster.as_deref())?;
    let chunks = split_body(
        &query.chunks,
        &body,
        CHUNK_BATCH_CHUNKS_MAX,
        "a chunk batch",
        "chunk",
    )?;
    service.put_chunks(chunks, cluster).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cuts a body into the items `spec` (`CID:BYTES,…`) lists, 1..=`max` of
/// them, every byte of the body in one: a chunk group's pieces, a batch's
/// chunks. `what` and `item` name them in a refusal.
fn split_body(
    spec: &str,
    body: &Bytes,
    max: usize,
    what: &str,
    item: &str,
) -> Result<Vec<(ContentId, Bytes)>, Failure> {
    let listed: Vec<&str> = spec.split(',').filter(|s| !s.is_empty()).collect();
    if listed.is_empty() || listed.len() > max {
        return Err(Failure(ApiError::bad_request(format!(
            "{what} lists 1..={max} {item}s, this one {}",
            listed.len()
        ))));
    }
    let mut pieces = Vec::with_capacity(listed.len());
    let mut rest = body.clone();
    for (index, listing) in listed.into_iter().enumerate() {
        let (cid, len) = listing.split_once(':').ok_or_else(|| {
            Failure(ApiError::bad_request(format!(
                "{item} {index} is {listing:?}, not CID:BYTES"
            )))
        })?;
        let cid: ContentId = parse(cid, "a CID")?;
        let len: usize = len.parse().map_err(|_| {
            Failure(ApiError::bad_request(format!(
                "{item} {index}'s length {len:?} is not a whole number"
            )))
        })?;
        if len > rest.len() {
            return Err(Failure(ApiError::bad_request(format!(
                "{item} {index} is listed as {len} bytes but only {} bytes of the body are left",
                rest.len()
            ))));
        }
        // A view of the body, not a copy.
        pieces.push((cid, rest.split_to(len)));
    }
    if !rest.is_empty() {
        return Err(Failure(ApiError::bad_request(format!(
            "the body holds {} bytes past the {item}s listed",
            rest.len()
        ))));
    }
    Ok(pieces)
}

pub(super) async fn delete_chunk(
    State(service): State<Shared>,
    Path(cid): Path<String>,
) -> Result<StatusCode, Failure> {
    let cid: ContentId = parse(&cid, "a CID")?;
    service.delete_chunk(cid).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn get_chunk(
    State(service): State<Shared>,
    Path(cid): Path<String>,
) -> Result<Response, Failure> {
    let cid: ContentId = parse(&cid, "a CID")?;
    let (bytes, served_by) = service.get_chunk(cid).await?;
    let served_by = axum::http::HeaderValue::from_str(&served_by.to_string())
        .map_err(|e| Failure(ApiError::new(ErrorCode::Internal, e.to_string())))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/octet-stream"),
            ),
            (header::HeaderName::from_static(SERVED_BY_HEADER), served_by),
        ],
        bytes,
    )
        .into_response())
}
