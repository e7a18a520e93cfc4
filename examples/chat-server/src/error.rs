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
}

impl ApiError {
    /// An error with a status and a reason.
    pub fn new(status: StatusCode, kind: &'static str, details: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            details: details.into(),
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
        ApiError {
            status,
            kind: e.code(),
            details: e.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match r {
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "invalid_json", r.body_text())
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
        (self.status, Json(body)).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
