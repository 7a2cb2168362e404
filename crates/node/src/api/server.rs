//! The HTTP API server: axum on a loopback listener, every route behind the
//! bearer token. Handlers only translate: path and body in, a [`Service`]
//! call, JSON out. Every refusal, axum's own included (bad JSON, a body too
//! large, a wrong method or route), leaves as `{code, message}` with the
//! status [`ErrorCode::http_status`] gives it, decided in [`Failure`] alone.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use peercloud_api::*;
use peercloud_net::protocol::CHUNK_MESSAGE_BYTES_MAX;
use peercloud_types::{AccountId, ContentId, JobId};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::service::Service;
use crate::daemon::Inner;

/// An API refusal, answered as `{code, message}` with its code's status.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

/// The code for one of axum's own refusals, by its status.
fn rejection(status: StatusCode, text: String) -> Failure {
    Failure(ApiError::new(
        ErrorCode::from_http_status(status.as_u16()),
        text,
    ))
}

/// A JSON body whose refusal (not JSON, wrong fields, too large, wrong
/// content type) is an [`ApiError`] like every other.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(e @ JsonRejection::JsonDataError(_)) => {
                Err(Failure(ApiError::bad_request(e.body_text())))
            }
            Err(e) => Err(rejection(e.status(), e.body_text())),
        }
    }
}

/// Raw bytes (a chunk) whose refusal is an [`ApiError`].
struct Raw(Bytes);

impl<S: Send + Sync> FromRequest<S> for Raw {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        Bytes::from_request(request, state)
            .await
            .map(Raw)
            .map_err(|e: BytesRejection| rejection(e.status(), e.body_text()))
    }
}

type Shared = Service;
type Answer<T> = Result<axum::Json<T>, Failure>;

/// Serves the API until the process ends.
pub async fn serve(inner: Arc<Inner>, listener: tokio::net::TcpListener) {
    let app = router(Service::new(inner));
    // Request/response traffic: never wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(%e, "cannot set TCP_NODELAY");
        }
    });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(%e, "API server stopped");
    }
}

/// The routes.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/ledger", get(ledger))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/tx", post(submit_tx))
        .route("/v1/chunks/{cid}", put(put_chunk).get(get_chunk))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/jobs/{id}/offers", post(offers))
        .route("/v1/jobs/{id}/dispatch", post(dispatch))
        .fallback(|| async { Failure(ApiError::not_found("no such route")) })
        .method_not_allowed_fallback(|| async {
            Failure(ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            ))
        })
        .layer(DefaultBodyLimit::max(CHUNK_MESSAGE_BYTES_MAX))
        .layer(middleware::from_fn_with_state(service.clone(), authorize))
        .layer(middleware::from_fn(trace))
        .with_state(service)
}

/// One span per request, named by method and path (which carries the job id
/// or CID), with its status and time logged when it ends.
async fn trace(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    response
}

async fn authorize(
    State(service): State<Shared>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|t| {
        let (a, b) = (t.as_bytes(), service.inner().token().as_bytes());
        // Length first, then every byte, so the time does not leak a prefix.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if !ok {
        return Failure(ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "missing or wrong bearer token (it is in the node's data directory, file {TOKEN_FILE})"
            ),
        ))
        .into_response();
    }
    next.run(request).await
}

/// Parses a path segment, naming what it should have been.
fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Failure>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| {
        Failure(ApiError::bad_request(format!(
            "{text:?} is not {what}: {e}"
        )))
    })
}

async fn status(State(service): State<Shared>) -> Answer<StatusView> {
    Ok(axum::Json(service.status().await))
}

async fn ledger(State(service): State<Shared>) -> Answer<LedgerView> {
    Ok(axum::Json(service.ledger()?))
}

async fn account(State(service): State<Shared>, Path(id): Path<String>) -> Answer<AccountView> {
    let account: AccountId = parse(&id, "an account id")?;
    Ok(axum::Json(service.account(&account)))
}

async fn submit_tx(State(service): State<Shared>, Body(body): Body<SubmitTx>) -> Answer<TxReceipt> {
    Ok(axum::Json(service.submit(body.tx.0, body.wait).await?))
}

async fn put_chunk(
    State(service): State<Shared>,
    Path(cid): Path<String>,
    Raw(body): Raw,
) -> Result<StatusCode, Failure> {
    let cid: ContentId = parse(&cid, "a CID")?;
    service.put_chunk(cid, body.to_vec()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_chunk(
    State(service): State<Shared>,
    Path(cid): Path<String>,
) -> Result<Response, Failure> {
    let cid: ContentId = parse(&cid, "a CID")?;
    let bytes = service.get_chunk(cid).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn job(
    State(service): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<JobView> {
    let job: JobId = parse(&id, "a job id")?;
    let Query(wait) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    Ok(axum::Json(service.job(&job, wait).await?))
}

async fn offers(
    State(service): State<Shared>,
    Path(id): Path<String>,
    Body(body): Body<OffersRequest>,
) -> Answer<OffersResponse> {
    let job: JobId = parse(&id, "a job id")?;
    Ok(axum::Json(service.offers(&job, &body).await?))
}

async fn dispatch(
    State(service): State<Shared>,
    Path(id): Path<String>,
    Body(body): Body<DispatchRequest>,
) -> Answer<DispatchResponse> {
    let job: JobId = parse(&id, "a job id")?;
    Ok(axum::Json(service.dispatch(&job, &body).await?))
}
