//! Peer for the comparison: socketioxide on axum, a single-threaded tokio runtime. Every
//! socket joins room `bench` on connect; a `message` event is broadcast to the room.
//!
//! `peer_socketioxide 127.0.0.1:8091`

use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    let (svc, io) = SocketIo::new_svc();
    io.ns("/", async |s: SocketRef| {
        s.join("bench");
        s.on(
            "message",
            async |s: SocketRef, Data::<serde_json::Value>(msg)| {
                let _ = s.within("bench").emit("message", &msg).await;
            },
        );
    });
    let app = axum::Router::new().fallback_service(svc);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
