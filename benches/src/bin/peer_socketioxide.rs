//! Peer for the comparison: socketioxide on axum, a single-threaded tokio runtime. Every
//! socket joins the room named by the `room` query parameter (default `bench`); a
//! `message` event is broadcast to that room, sender included.
//!
//! `peer_socketioxide 127.0.0.1:8091`

use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};

/// The `room` query parameter of the handshake, or `bench`.
fn room_of(s: &SocketRef) -> String {
    s.req_parts()
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("room=")))
        .unwrap_or("bench")
        .to_owned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    let (svc, io) = SocketIo::new_svc();
    io.ns("/", async |s: SocketRef| {
        let room = room_of(&s);
        s.join(room.clone());
        s.on(
            "message",
            async move |s: SocketRef, Data::<serde_json::Value>(msg)| {
                let _ = s.within(room.clone()).emit("message", &msg).await;
            },
        );
    });
    let app = axum::Router::new().fallback_service(svc);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    // TCP_NODELAY, as every server in the comparison.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serve");
}
