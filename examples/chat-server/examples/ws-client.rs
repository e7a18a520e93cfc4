//! A tiny WebSocket client for trying the server from a shell: prints every frame it
//! receives, one per line, and sends the frames given after the URL once connected.
//!
//! ```sh
//! cargo run -p chat-server --example ws-client -- "ws://localhost:8080/ws?token=$TOKEN" \
//!     '{"type":"typing_start","data":{"room_id":"…"}}' --seconds 5
//! ```

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// `ws://host:port/ws?token=…`
    url: String,
    /// JSON frames to send after connecting.
    frames: Vec<String>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let (mut ws, _) = match tokio_tungstenite::connect_async(&args.url).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("connect failed: {e}");
            std::process::exit(1);
        }
    };
    for f in args.frames {
        if let Err(e) = ws.send(Message::Text(f.into())).await {
            eprintln!("send failed: {e}");
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match m {
            Ok(Message::Text(t)) => println!("{t}"),
            Ok(Message::Close(c)) => {
                println!("closed: {c:?}");
                break;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
}
