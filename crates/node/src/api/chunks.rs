//! The chunk calls of the API: a sealed chunk put, read and released by
//! CID, and an erasure group's pieces put in one body. `cluster=ID` in a
//! put's query places it on that cluster's members (a bucket's chunks).
//!
//! ```text
//!   PUT    /v1/chunks/{cid}[?cluster=ID]             ─► Service::put_chunk
//!   GET    /v1/chunks/{cid}                          ─► Service::get_chunk (x-peercloud-served-by)
//!   DELETE /v1/chunks/{cid}                          ─► Service::delete_chunk
//!   POST   /v1/chunk-groups?pieces=CID:BYTES,…[&cluster=ID] ─► Service::put_chunk_group
//! ```

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
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
pub(super) fn split_group(spec: &str, body: &[u8]) -> Result<Vec<(ContentId, Vec<u8>)>, Failure> {
    let listed: Vec<&str> = spec.split(',').filter(|s| !s.is_empty()).collect();
    if listed.is_empty() || listed.len() > GROUP_PIECES_MAX {
        return Err(Failure(ApiError::bad_request(format!(
            "a chunk group lists 1..={GROUP_PIECES_MAX} pieces, this one {}",
            listed.len()
        ))));
    }
    let mut pieces = Vec::with_capacity(listed.len());
    let mut rest = body;
    for (index, item) in listed.into_iter().enumerate() {
        let (cid, len) = item.split_once(':').ok_or_else(|| {
            Failure(ApiError::bad_request(format!(
                "piece {index} is {item:?}, not CID:BYTES"
            )))
        })?;
        let cid: ContentId = parse(cid, "a CID")?;
        let len: usize = len.parse().map_err(|_| {
            Failure(ApiError::bad_request(format!(
                "piece {index}'s length {len:?} is not a whole number"
            )))
        })?;
        if len > rest.len() {
            return Err(Failure(ApiError::bad_request(format!(
                "piece {index} is listed as {len} bytes but only {} bytes of the body are left",
                rest.len()
            ))));
        }
        let (bytes, after) = rest.split_at(len);
        pieces.push((cid, bytes.to_vec()));
        rest = after;
    }
    if !rest.is_empty() {
        return Err(Failure(ApiError::bad_request(format!(
            "the body holds {} bytes past the pieces listed",
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
