//! REST errors in seed 004's shape: `{ "error": …, "details": …, "code": <HTTP status> }`,
//! plus `kind`, the stable code of [`realtime_core::Error::code`].

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use realtime_core::Error;

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code.
    pub kind: &'static str,
    /// Human explanation.
    pub details: String,
    /// Seconds a client should wait before retrying (`Retry-After`), for 429 and 503.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with a status and a reason.
    pub fn new(status: StatusCode, kind: &'static str, details: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            details: details.into(),
            retry_after_secs: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        let retry_after_secs = match e {
            Error::RateLimited { retry_after_ms } => Some(retry_after_ms.div_ceil(1000)),
            _ => None,
        };
        ApiError {
            status,
            kind: e.code(),
            details: e.to_string(),
            retry_after_secs,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        // axum's own statuses: 413 for a body over the limit, 415 without a JSON
        // content type, 422 for JSON of the wrong shape, 400 for JSON that does not parse.
        let status = r.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_json"
        };
        ApiError::new(status, kind, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "details": self.details,
            "code": self.status.as_u16(),
            "kind": self.kind,
        });
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
