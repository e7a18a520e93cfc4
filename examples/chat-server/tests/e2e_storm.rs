//! A reconnect storm over real WebSockets: 200 clients in one room, a steady publisher,
//! and every connection cut twice — the second time right after its rejoin. Each client
//! tracks the highest `seq` it has seen, as the native protocol says to, and must end
//! with every message exactly once and in order (or an honest `recovered: false`).

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 200;
const MESSAGES: u64 = 300;

/// One client's record: message seqs in arrival order, and recoveries refused.
#[derive(Debug, Default)]
struct Log {
    seqs: Vec<u64>,
    refused: usize,
}

struct Client {
    user: String,
    room: String,
    epoch: String,
    high: u64,
    log: Log,
}

impl Client {
    async fn connect(&self, addr: std::net::SocketAddr) -> Ws {
        let url = format!("ws://{addr}/ws?resume=1&token={}", token(&self.user));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let auth = next_json(&mut ws).await;
        assert_eq!(auth["type"], "auth");
        let since = json!({"seq": self.high, "epoch": self.epoch});
        let join =
            json!({"type": "join", "id": "j", "data": {"room_id": self.room, "since": since}});
        ws.send(Message::Text(join.to_string().into()))
            .await
            .expect("join");
        ws
    }

    /// Take one frame; `false` when the connection ended.
    async fn read(&mut self, ws: &mut Ws, wait: Duration) -> Option<bool> {
        let m = match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return None,
            Ok(None) | Ok(Some(Err(_))) => return Some(false),
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(t) = m else {
            return Some(true);
        };
        let f: Value = serde_json::from_str(t.as_str()).expect("json");
        match f["type"].as_str() {
            Some("event.message.send") if f["data"]["room_id"] == self.room.as_str() => {
                let seq = f["data"]["seq"].as_u64().expect("seq");
                self.log.seqs.push(seq);
                self.high = self.high.max(seq);
            }
            Some("ack") if f["id"] == "j" && f["data"]["recovered"] == false => {
                self.log.refused += 1;
                self.high = f["data"]["latest_seq"].as_u64().expect("latest");
            }
            Some("error") => panic!("{}: {f}", self.user),
            _ => {}
        }
        Some(true)
    }

    async fn run(mut self, addr: std::net::SocketAddr, first_cut_ms: u64) -> Log {
        // First connection: cut after a while, mid-stream.
        let mut ws = self.connect(addr).await;
        let cut = tokio::time::Instant::now() + Duration::from_millis(first_cut_ms);
        while tokio::time::Instant::now() < cut {
            if self.read(&mut ws, Duration::from_millis(20)).await == Some(false) {
                break;
            }
        }
        drop(ws);
        // Second: cut right after the rejoin, with at most a frame or two read.
        let mut ws = self.connect(addr).await;
        for _ in 0..(first_cut_ms % 3) {
            if self.read(&mut ws, Duration::from_millis(5)).await == Some(false) {
                break;
            }
        }
        drop(ws);
        // Third: stay until every message is in.
        let mut ws = self.connect(addr).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.high < MESSAGES {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: stuck at {}",
                self.user,
                self.high
            );
            if self.read(&mut ws, Duration::from_secs(5)).await == Some(false) {
                ws = self.connect(addr).await;
            }
        }
        self.log
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_of_a_reconnect_storm_gets_every_seq_once_in_order() {
    let s = start(|c| c.max_connections = Some(4 * CLIENTS)).await;
    let users: Vec<String> = (0..CLIENTS).map(|i| format!("storm-{i}")).collect();
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    let room = s.room("publisher", &members).await;
    let (_, r) = s.get("publisher", &format!("/api/v1/rooms/{room}")).await;
    let epoch = r["epoch"].as_str().expect("epoch").to_owned();
    let publisher = {
        let http = s.http.clone();
        let url = s.url("/api/v1/messages");
        let room = room.clone();
        tokio::spawn(async move {
            for i in 0..MESSAGES {
                let r = http
                    .post(&url)
                    .bearer_auth(token("publisher"))
                    .json(&json!({"room_id": room, "content": format!("m{i}")}))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 201);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for (i, user) in users.into_iter().enumerate() {
        let c = Client {
            user,
            room: room.clone(),
            epoch: epoch.clone(),
            high: 0,
            log: Log::default(),
        };
        clients.push(tokio::spawn(c.run(s.addr, 100 + (i as u64 * 7) % 900)));
    }
    publisher.await.expect("publisher");
    let mut refused = 0;
    for (i, c) in clients.into_iter().enumerate() {
        let log = c.await.expect("client");
        refused += log.refused;
        if log.refused == 0 {
            let want: Vec<u64> = (1..=MESSAGES).collect();
            assert_eq!(log.seqs, want, "client {i}: every seq once, in order");
        } else {
            let mut seen = log.seqs.clone();
            seen.dedup();
            assert_eq!(seen, log.seqs, "client {i}: no duplicates");
            assert!(
                log.seqs.windows(2).all(|w| w[0] < w[1]),
                "client {i}: in order"
            );
        }
    }
    assert_eq!(
        refused, 0,
        "the recovery limit is far above what a client missed"
    );
    assert_eq!(panics(), 0);
}
