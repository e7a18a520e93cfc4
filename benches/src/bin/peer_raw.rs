//! The practical ceiling: tokio-tungstenite with no protocol on top, a single-threaded
//! runtime. Every text frame a client sends is forwarded to every connected client; each
//! connection has a bounded queue and a writer that flushes in batches.
//!
//! `peer_raw 127.0.0.1:8092`

use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Peers = Arc<Mutex<Vec<(u64, mpsc::Sender<Message>)>>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8092".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let peers: Peers = Arc::default();
    let mut next = 0u64;
    while let Ok((tcp, _)) = listener.accept().await {
        next += 1;
        let (id, peers) = (next, peers.clone());
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::channel::<Message>(1024);
            peers.lock().expect("lock").push((id, tx));
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
                if let Message::Text(_) = m {
                    for (_, tx) in peers.lock().expect("lock").iter() {
                        let _ = tx.try_send(m.clone());
                    }
                }
            }
            peers.lock().expect("lock").retain(|(i, _)| *i != id);
            writer.abort();
        });
    }
}
