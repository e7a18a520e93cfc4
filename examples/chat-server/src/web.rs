//! The browser client (see `web/README.md`), embedded in the binary and served at `/`.

use axum::http::header;
use axum::response::IntoResponse;

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `GET /`
pub async fn index() -> impl IntoResponse {
    file(
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    )
}

/// `GET /app.js`
pub async fn app_js() -> impl IntoResponse {
    file(
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    )
}

/// `GET /realtime-client.js`
pub async fn client_js() -> impl IntoResponse {
    file(
        "text/javascript; charset=utf-8",
        include_str!("../web/realtime-client.js"),
    )
}

/// `GET /app.css`
pub async fn app_css() -> impl IntoResponse {
    file("text/css; charset=utf-8", include_str!("../web/app.css"))
}
