//! The practical ceiling: tokio-tungstenite with no protocol on top, a single-threaded
//! runtime. Every text frame a client sends is forwarded to every socket of its room (the
//! `room` query parameter of the upgrade request, default `bench`); each connection has a
//! bounded queue and a writer that flushes in batches.
//!
//! `peer_raw 127.0.0.1:8092`

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

type Rooms = Arc<Mutex<HashMap<String, Vec<(u64, mpsc::Sender<Message>)>>>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8092".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let rooms: Rooms = Arc::default();
    let mut next = 0u64;
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true); // as every server in the comparison
        next += 1;
        let (id, rooms) = (next, rooms.clone());
        tokio::spawn(async move {
            let mut room = String::from("bench");
            #[allow(clippy::result_large_err)] // tungstenite's callback signature
            let pick = |req: &Request, res: Response| {
                if let Some(r) = req
                    .uri()
                    .query()
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("room=")))
                {
                    room = r.to_owned();
                }
                Ok(res)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, pick).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::channel::<Message>(1024);
            rooms
                .lock()
                .expect("lock")
                .entry(room.clone())
                .or_default()
                .push((id, tx));
            let writer = tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.feed(m).await.is_err() {
                        return;
                    }
                    while let Ok(m) = rx.try_recv() {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(_) = m
                    && let Some(peers) = rooms.lock().expect("lock").get(&room)
                {
                    for (_, tx) in peers {
                        let _ = tx.try_send(m.clone());
                    }
                }
            }
            if let Some(peers) = rooms.lock().expect("lock").get_mut(&room) {
                peers.retain(|(i, _)| *i != id);
            }
            writer.abort();
        });
    }
}
