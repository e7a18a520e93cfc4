//! The one error type of `realtime-core`.
//!
//! Every fallible operation of the crate returns [`Error`]. Each variant is something a
//! caller can act on; [`Error::code`] gives a stable snake_case code for wire protocols
//! and REST bodies, and [`Error::is_temporary`] says whether retrying can succeed.

use std::borrow::Cow;
use std::fmt;

/// Result alias for `realtime-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `realtime-core` and in the backends behind its traits.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An event name that is not `event.<level>.<action>` (see [`crate::EventType`]).
    #[error("invalid event type {name:?}: {reason}")]
    InvalidEventType {
        /// The rejected name (truncated to 200 bytes).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A channel name that does not parse (see [`crate::Channel`]).
    #[error("invalid channel {name:?}: {reason}")]
    InvalidChannel {
        /// The rejected name (truncated to 200 bytes).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An input field failed validation (ids, emoji, names, limits, JSON shapes).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field that failed, e.g. `room_id`, `emoji`.
        field: &'static str,
        /// Why it failed.
        reason: Cow<'static, str>,
    },
    /// Message content longer than the configured limit.
    #[error("content is {len} bytes, the limit is {max} bytes")]
    ContentTooLong {
        /// Length of the rejected content in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// An event whose encoding is larger than the sessions that should receive it may
    /// queue ([`crate::HubConfig::max_event_bytes`]): refused when published, so it can
    /// never be mistaken for a slow consumer and close anyone.
    #[error("the event is {len} bytes, the limit is {max} bytes")]
    EventTooLarge {
        /// Bytes of the event's JSON.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The referenced entity does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// What was looked up: `user`, `room`, `message`, `invite`, `member`.
        kind: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The entity exists already (unique key taken).
    #[error("{kind} {id:?} already exists")]
    Conflict {
        /// What collided: `user`, `room`, `member`, `invite`.
        kind: &'static str,
        /// The colliding id.
        id: String,
    },
    /// The acting user is not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(Cow<'static, str>),
    /// No or bad credentials (missing token, bad signature, expired, wrong algorithm).
    #[error("unauthenticated: {0}")]
    Unauthenticated(Cow<'static, str>),
    /// A state machine refused a transition (e.g. `read` → `sent`, accepting a used invite).
    #[error("invalid transition of {entity} from {from} to {to}")]
    InvalidTransition {
        /// The entity kind: `message`, `invite`.
        entity: &'static str,
        /// The current state.
        from: String,
        /// The requested state.
        to: String,
    },
    /// Something that expires has expired (an invite).
    #[error("{0} has expired")]
    Expired(&'static str),
    /// Too many requests; retry after the given number of milliseconds.
    #[error("rate limited, retry after {retry_after_ms} ms")]
    RateLimited {
        /// Milliseconds until a retry can succeed.
        retry_after_ms: u64,
    },
    /// A session's outbound queue is full or closed (slow consumer or gone).
    #[error("session {0} is closed or cannot keep up")]
    SessionClosed(u64),
    /// A store backend failed (I/O, driver, constraint the caller cannot fix); the
    /// driver's own error, when there is one, is the [`std::error::Error::source`].
    #[error("store error: {0}")]
    Store(#[source] BackendError),
    /// A broker backend failed or is unreachable; publishing may succeed later.
    #[error("broker error: {0}")]
    Broker(#[source] BackendError),
    /// A JSON payload could not be (de)serialized.
    #[error("json error: {0}")]
    Json(String),
    /// A state the code does not expect, not caused by the request or a backend: the Hub
    /// stopped under a pending operation, an invariant broke. Worth a bug report.
    #[error("internal error: {0}")]
    Internal(Cow<'static, str>),
}

impl Error {
    /// A stable, snake_case code for wire protocols and REST bodies
    /// (`not_found`, `forbidden`, `rate_limited`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidEventType { .. } => "invalid_event_type",
            Error::InvalidChannel { .. } => "invalid_channel",
            Error::Invalid { .. } => "invalid",
            Error::ContentTooLong { .. } => "content_too_long",
            Error::EventTooLarge { .. } => "event_too_large",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Forbidden(_) => "forbidden",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::Expired(_) => "expired",
            Error::RateLimited { .. } => "rate_limited",
            Error::SessionClosed(_) => "session_closed",
            Error::Store(_) => "store_error",
            Error::Broker(_) => "broker_error",
            Error::Json(_) => "invalid_json",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Whether the same request may succeed later without change (rate limits, backends).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Store(_) | Error::Broker(_)
        )
    }

    /// The HTTP status that fits this error (400, 401, 403, 404, 409, 410, 413, 422, 429, 500, 503),
    /// following seed 004's REST error table.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidEventType { .. } | Error::InvalidChannel { .. } | Error::Json(_) => 400,
            Error::Invalid { .. } => 422,
            Error::ContentTooLong { .. } | Error::EventTooLarge { .. } => 413,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } | Error::InvalidTransition { .. } => 409,
            Error::Forbidden(_) => 403,
            Error::Unauthenticated(_) => 401,
            Error::Expired(_) => 410,
            Error::RateLimited { .. } => 429,
            Error::SessionClosed(_) => 410,
            Error::Store(_) | Error::Internal(_) => 500,
            Error::Broker(_) => 503,
        }
    }

    /// [`Error::Invalid`]: `field` of the request is refused for `reason`.
    pub fn invalid(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// [`Error::Forbidden`] for `reason`.
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Self {
        Error::Forbidden(reason.into())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e.to_string())
    }
}

/// Truncate untrusted input before putting it in an error message.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_owned();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A backend's failure ([`Error::Store`], [`Error::Broker`]): what happened, and the
/// backend's own error when there is one, kept as the [`std::error::Error::source`] (a
/// driver's error type, for logs and downcasting). Two are equal when their messages are.
#[derive(Clone)]
pub struct BackendError {
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl BackendError {
    /// A failure described by `message` alone.
    pub fn new(message: impl Into<String>) -> BackendError {
        BackendError {
            message: message.into(),
            source: None,
        }
    }

    /// A failure that is `source` (its message is `source`'s).
    pub fn from_source<E>(source: E) -> BackendError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        BackendError {
            message: source.to_string(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// `source` with `context` before its message (`"{context}: {source}"`).
    pub fn with_context<E>(context: &str, source: E) -> BackendError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        BackendError {
            message: format!("{context}: {source}"),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for BackendError {
    fn from(message: String) -> Self {
        BackendError::new(message)
    }
}

impl From<&str> for BackendError {
    fn from(message: &str) -> Self {
        BackendError::new(message)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{:?} (source: {source:?})", self.message),
            None => write!(f, "{:?}", self.message),
        }
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for BackendError {}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_backend_error_keeps_the_drivers_error_as_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::Store(BackendError::with_context("connecting", io));
        assert_eq!(err.to_string(), "store error: connecting: refused");
        assert_eq!((err.code(), err.http_status()), ("store_error", 500));
        let backend = err.source().expect("the backend error");
        let driver = backend.source().expect("the driver's error");
        let io = driver
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        // Equality and clones go by the message.
        assert_eq!(err.clone(), Error::Store("connecting: refused".into()));
        assert!(
            Error::Broker("down".into())
                .source()
                .expect("backend")
                .source()
                .is_none()
        );
        assert_eq!(Error::Internal("x".into()).code(), "internal_error");
    }
}
