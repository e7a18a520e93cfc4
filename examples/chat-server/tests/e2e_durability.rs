//! Durability: a real chat-server process stores messages sent over its WebSocket, is
//! killed with SIGKILL mid-stream, and is started again on the same database, three
//! times. Every message it acked is stored exactly once (resends of unacked messages
//! carry the same `client_id`), with gapless `seq`s — on SQLite and on PostgreSQL.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: usize = 600;
const ROUNDS: usize = 3;

/// Send the messages not acked yet (at most `in_flight` unanswered) until `kill_after`
/// more acks came in, then kill the process while sends are still in flight. Returns
/// the acks seen (client id → seq).
async fn stream_until_killed(
    node: &mut Node,
    room: &str,
    acked: &mut BTreeMap<usize, u64>,
    kill_after: usize,
) {
    let url = format!("ws://{}/ws?token={}", node.addr, token("writer"));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let todo: Vec<usize> = (0..MESSAGES).filter(|i| !acked.contains_key(i)).collect();
    let mut next = todo.iter();
    let mut unanswered = 0usize;
    let mut new_acks = 0usize;
    loop {
        while unanswered < 32 {
            let Some(&i) = next.next() else { break };
            let cmd = json!({"type": "send", "id": i, "data": {
                "room_id": room, "content": format!("message {i}"), "client_id": format!("c{i}")
            }});
            if tx
                .send(Message::Text(cmd.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            unanswered += 1;
        }
        if new_acks >= kill_after || unanswered == 0 {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let f: Value = serde_json::from_str(t.as_str()).expect("json");
                if f["type"] == "ack" {
                    let i = usize::try_from(f["id"].as_u64().expect("id")).expect("usize");
                    let seq = f["data"]["seq"].as_u64().expect("seq");
                    acked.insert(i, seq);
                    unanswered -= 1;
                    new_acks += 1;
                } else if f["type"] == "error" {
                    panic!("send refused: {f}");
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    // SIGKILL with sends still in flight: no shutdown, no flush.
    node.child.start_kill().expect("kill");
    let _ = node.child.wait().await;
}

/// Every message of `room`, oldest first, through the REST history (pages of 100).
async fn all_messages(node: &Node, room: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/rooms/{room}/messages?limit=100&before={b}"),
            None => format!("/api/v1/rooms/{room}/messages?limit=100"),
        };
        let (status, page) = node.get("writer", &path).await;
        assert_eq!(status, 200, "{page}");
        let msgs = page["messages"].as_array().expect("messages").clone();
        let Some(first) = msgs.first() else { break };
        before = first["seq"].as_u64();
        let more = page["has_more"] == true;
        out.splice(0..0, msgs);
        if !more {
            break;
        }
    }
    out
}

async fn durability(db: &str) {
    let env = [
        ("DATABASE_URL", db),
        ("RATE_PER_SECOND", "100000"),
        ("RATE_BURST", "100000"),
    ];
    let mut node = Node::spawn(&env).await;
    let room = node.room("writer", &[]).await;
    let mut acked = BTreeMap::new();
    for round in 0..ROUNDS {
        stream_until_killed(&mut node, &room, &mut acked, 50 + round * 40).await;
        node = Node::spawn(&env).await;
        let stored = all_messages(&node, &room).await;
        let ids: Vec<&str> = stored
            .iter()
            .map(|m| m["client_id"].as_str().expect("client_id"))
            .collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "round {round}: a message stored twice"
        );
        let seqs: Vec<u64> = stored
            .iter()
            .map(|m| m["seq"].as_u64().expect("seq"))
            .collect();
        let want: Vec<u64> = (1..=stored.len() as u64).collect();
        assert_eq!(seqs, want, "round {round}: seqs gapless from 1");
        for (i, seq) in &acked {
            let m = &stored[usize::try_from(*seq - 1).expect("index")];
            assert_eq!(
                m["client_id"],
                format!("c{i}"),
                "round {round}: acked {i} at seq {seq}"
            );
            assert_eq!(m["content"], format!("message {i}"));
        }
    }
    // The rest, resent with the same client ids, completes the set exactly once.
    stream_until_killed(&mut node, &room, &mut acked, usize::MAX).await;
    let node = Node::spawn(&env).await;
    let stored = all_messages(&node, &room).await;
    assert_eq!(acked.len(), MESSAGES);
    assert_eq!(stored.len(), MESSAGES, "every message exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_sigkill_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("rt-durability-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite://{}", dir.join("chat.db").display());
    durability(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_sigkill_on_postgres() {
    let Some((db, _schema)) = pg_schema().await else {
        return;
    };
    durability(&db).await;
}
