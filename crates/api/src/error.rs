//! The one list of error codes: every refusal of the HTTP API and every
//! `Message::Error` between nodes names one, and [`ErrorCode::http_status`]
//! is the only place a code becomes an HTTP status (as garage's
//! `common_error.rs` does for S3).

use serde::{Deserialize, Serialize};

/// A stable machine code for what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: a bad id, field, body or spec.
    BadRequest,
    /// A signature does not verify.
    BadSignature,
    /// A sealed key does not open with this node's key.
    BadKey,
    /// The bearer token is missing or wrong.
    Unauthorized,
    /// The thing asked for does not exist.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The body is larger than the route takes.
    TooLarge,
    /// The body is not of the type the route takes.
    UnsupportedMediaType,
    /// The ledger refuses the transaction.
    TxRefused,
    /// The job is not awarded to the node asked to run it.
    NotAwarded,
    /// A node could not fetch or open a job's inputs.
    StagingFailed,
    /// The sandbox refused or stopped the run.
    RunFailed,
    /// Storing failed (outputs, a chunk).
    StoreFailed,
    /// A node could not put its result on the ledger.
    SubmitFailed,
    /// A dispatch to a node failed.
    DispatchFailed,
    /// Waiting ran out.
    Timeout,
    /// A peer or the validator cannot be reached.
    Unavailable,
    /// The node failed in a way that is not the caller's fault.
    Internal,
    /// The node's storage quota (or its disk) has no room for the chunk.
    StorageFull,
    /// Only nodes registered on the ledger may ask this (store a chunk).
    NotRegistered,
    /// This node is not among the chunk's placement candidates (not staked,
    /// or ranked too far from the chunk).
    NotPlaced,
    /// Every copy of the chunk found was corrupt; no good copy answered.
    ChunkCorrupt,
    /// Only a node that put the chunk may delete it.
    NotPutter,
    /// A bucket's index entry or usage is not signed by the bucket's owner.
    NotOwner,
    /// The bucket takes no writes now (read-only after its deposit ran
    /// out, or closed).
    BucketReadOnly,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::BadRequest,
        ErrorCode::BadSignature,
        ErrorCode::BadKey,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::TooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::TxRefused,
        ErrorCode::NotAwarded,
        ErrorCode::StagingFailed,
        ErrorCode::RunFailed,
        ErrorCode::StoreFailed,
        ErrorCode::SubmitFailed,
        ErrorCode::DispatchFailed,
        ErrorCode::Timeout,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::StorageFull,
        ErrorCode::NotRegistered,
        ErrorCode::NotPlaced,
        ErrorCode::ChunkCorrupt,
        ErrorCode::NotPutter,
        ErrorCode::NotOwner,
        ErrorCode::BucketReadOnly,
    ];

    /// The HTTP status the API answers this code with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::BadSignature | ErrorCode::BadKey => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotRegistered | ErrorCode::NotPutter | ErrorCode::NotOwner => 403,
            ErrorCode::NotPlaced => 421,
            ErrorCode::StorageFull => 507,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::NotAwarded | ErrorCode::BucketReadOnly => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::TxRefused => 422,
            ErrorCode::Internal => 500,
            ErrorCode::StagingFailed
            | ErrorCode::RunFailed
            | ErrorCode::StoreFailed
            | ErrorCode::SubmitFailed
            | ErrorCode::DispatchFailed
            | ErrorCode::ChunkCorrupt => 502,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The code a client assumes for an HTTP status that came without an
    /// [`ApiError`] body (a proxy, an older node).
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            400 | 422 => ErrorCode::BadRequest,
            401 | 403 => ErrorCode::Unauthorized,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::NotAwarded,
            413 => ErrorCode::TooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            421 => ErrorCode::NotPlaced,
            507 => ErrorCode::StorageFull,
            408 | 504 => ErrorCode::Timeout,
            502 | 503 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }

    /// The code as it reads in JSON (`tx_refused`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::BadKey => "bad_key",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::TxRefused => "tx_refused",
            ErrorCode::NotAwarded => "not_awarded",
            ErrorCode::StagingFailed => "staging_failed",
            ErrorCode::RunFailed => "run_failed",
            ErrorCode::StoreFailed => "store_failed",
            ErrorCode::SubmitFailed => "submit_failed",
            ErrorCode::DispatchFailed => "dispatch_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::NotPlaced => "not_placed",
            ErrorCode::ChunkCorrupt => "chunk_corrupt",
            ErrorCode::NotPutter => "not_putter",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::BucketReadOnly => "bucket_read_only",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Every error the API returns: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What went wrong, naming the thing that is wrong.
    pub message: String,
}

impl ApiError {
    /// An error of `code` saying `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// A failure on the node's side.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_as_its_name_and_back() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn every_code_has_an_error_status_a_client_maps_back_to_its_class() {
        for code in ErrorCode::ALL {
            let status = code.http_status();
            assert!((400..600).contains(&status), "{code}: {status}");
            let back = ErrorCode::from_http_status(status);
            // Statuses shared by several codes come back as the general one.
            assert_eq!(back.http_status() / 100, status / 100, "{code}");
        }
        assert_eq!(ErrorCode::TxRefused.http_status(), 422);
        assert_eq!(ErrorCode::from_http_status(404), ErrorCode::NotFound);
    }
}
