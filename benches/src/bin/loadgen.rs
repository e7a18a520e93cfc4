//! Load generator: opens many WebSocket connections on loopback from one process and
//! reports JSON (one object on stdout).
//!
//! ```sh
//! # W3 idle: server RSS with 0 and N idle authenticated connections
//! loadgen --workload w3 --clients 10000 --server-pid $PID --secret $JWT_SECRET
//! # W1 fan-out: one room of N subscribers, one publisher, at most K messages in flight
//! loadgen --workload w1 --clients 1000 --inflight 16 --seconds 10 --server-pid $PID --secret $JWT_SECRET
//! ```
//!
//! Protocol: the native dialect of `realtime-transport-ws` (tokens minted locally with the
//! server's HS256 secret). The payload carries `n=<message number>;t=<send time µs>`;
//! latency is receive time minus send time on the same clock. Server CPU time and RSS come
//! from `/proc/<pid>/stat` and `/proc/<pid>/status`; the generator's own CPU from
//! `/proc/self/stat`.

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use realtime_core::{Claims, JwtAuthenticator};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    /// Fan-out: one room of `--clients` subscribers, one publisher, closed loop.
    W1,
    /// Idle: RSS with 0 and with `--clients` idle authenticated connections.
    W3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// realtime-transport-ws's native dialect (auth by token, `join`, `send`).
    Native,
    /// Engine.IO v4 / Socket.IO v5 text framing over a raw WebSocket (`40` connect,
    /// `42["message",…]` events, `2`/`3` heartbeats); the server puts sockets in one room.
    Socketio,
    /// Plain text frames, no protocol: the server forwards each to everyone.
    Raw,
}

#[derive(Parser, Debug)]
struct Args {
    /// The wire protocol the server speaks.
    #[arg(long, value_enum, default_value = "native")]
    protocol: Protocol,
    /// The server's HTTP base.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's JWT_SECRET (HS256), to mint one token per client.
    #[arg(long, env = "JWT_SECRET")]
    secret: String,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// W1: messages in flight (sent, not yet received by every subscriber).
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// W1: publishing time.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server's PID, for CPU time and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// W1: seconds allowed for connecting and joining every client.
    #[arg(long, default_value_t = 120)]
    setup_timeout: u64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// (utime + stime) in microseconds for a /proc stat file.
fn cpu_us(path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000) // CLK_TCK = 100 on Linux
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Gen {
    args: Args,
    auth: JwtAuthenticator,
    ws_base: String,
}

impl Gen {
    fn token(&self, user: &str) -> String {
        self.auth.issue(&Claims::new(user, 3600)).expect("token")
    }

    async fn connect(&self, user: &str) -> Ws {
        let url = match self.args.protocol {
            Protocol::Native => format!("{}/ws?token={}", self.ws_base, self.token(user)),
            Protocol::Socketio => format!("{}/socket.io/?EIO=4&transport=websocket", self.ws_base),
            Protocol::Raw => format!("{}/", self.ws_base),
        };
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        match self.args.protocol {
            Protocol::Native => loop {
                match ws.next().await.expect("open").expect("frame") {
                    Message::Text(t) if t.as_str().contains("\"auth\"") => return ws,
                    Message::Text(_) => continue,
                    other => panic!("unexpected {other:?}"),
                }
            },
            Protocol::Socketio => {
                // Engine.IO open packet, then connect to the main namespace.
                loop {
                    if let Message::Text(t) = ws.next().await.expect("open").expect("frame")
                        && t.as_str().starts_with('0')
                    {
                        break;
                    }
                }
                ws.send(Message::Text("40".into()))
                    .await
                    .expect("connect ns");
                loop {
                    if let Message::Text(t) = ws.next().await.expect("open").expect("frame")
                        && t.as_str().starts_with("40")
                    {
                        return ws;
                    }
                }
            }
            Protocol::Raw => ws,
        }
    }

    /// Connect `user` and, in the native dialect, join `room` (waiting for the ack); the
    /// other protocols' servers put every socket in the room themselves.
    async fn connect_and_join(&self, user: &str, room: &str) -> Ws {
        let mut ws = self.connect(user).await;
        if self.args.protocol == Protocol::Native {
            let join = json!({"type": "join", "id": 1, "data": {"room_id": room}}).to_string();
            ws.send(Message::Text(join.into())).await.expect("join");
            loop {
                if let Message::Text(t) = ws.next().await.expect("open").expect("frame")
                    && t.as_str().contains("\"ack\"")
                {
                    break;
                }
            }
        }
        ws
    }

    /// One published message in this protocol.
    fn publish_frame(&self, room_id: &str, content: &str) -> Message {
        match self.args.protocol {
            Protocol::Native => Message::Text(
                json!({"type": "send", "data": {"room_id": room_id, "content": content}})
                    .to_string()
                    .into(),
            ),
            Protocol::Socketio => Message::Text(format!("42[\"message\",\"{content}\"]").into()),
            Protocol::Raw => Message::Text(content.to_owned().into()),
        }
    }
}

async fn connect_many(g: &Arc<Gen>, n: usize, prefix: &str) -> Vec<Ws> {
    let sem = Arc::new(Semaphore::new(g.args.connect_concurrency));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (g, sem, user) = (g.clone(), sem.clone(), format!("{prefix}{i}"));
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.expect("sem");
            g.connect(&user).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

async fn w3(g: Arc<Gen>) -> serde_json::Value {
    let pid = g.args.server_pid.expect("--server-pid is needed for W3");
    let before = rss_kib(pid).expect("rss");
    let t = Instant::now();
    let conns = connect_many(&g, g.args.clients, "idle-").await;
    let connect_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid).expect("rss");
    drop(conns);
    json!({
        "workload": "w3", "protocol": format!("{:?}", g.args.protocol).to_lowercase(), "clients": g.args.clients, "connect_seconds": connect_s,
        "server_rss_kib_idle_0": before, "server_rss_kib_idle_n": after,
        "kib_per_connection": (after.saturating_sub(before)) as f64 / g.args.clients as f64,
    })
}

async fn w1(g: Arc<Gen>) -> serde_json::Value {
    let room_id = if g.args.protocol == Protocol::Native {
        let http = reqwest::Client::new();
        let room: serde_json::Value = http
            .post(format!("{}/api/v1/rooms", g.args.server))
            .bearer_auth(g.token("publisher"))
            .json(&json!({"name": "bench"}))
            .send()
            .await
            .expect("create room")
            .json()
            .await
            .expect("room json");
        room["id"].as_str().expect("room id").to_owned()
    } else {
        "bench".to_owned()
    };
    let n = g.args.clients as u32;
    const MAX_MSGS: usize = 4_000_000;
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..MAX_MSGS).map(|_| AtomicU32::new(0)).collect());
    let window = Arc::new(Semaphore::new(g.args.inflight));
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let lat: Arc<Mutex<Vec<u32>>> = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    // Each subscriber reads from the moment it is connected (as a real client would), so
    // what the server sends during set-up never piles up unread.
    let connected = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(Semaphore::new(g.args.connect_concurrency));
    for i in 0..g.args.clients {
        let (counts, window, delivered, stop, lat) = (
            counts.clone(),
            window.clone(),
            delivered.clone(),
            stop.clone(),
            lat.clone(),
        );
        let (g2, sem, connected, room) =
            (g.clone(), sem.clone(), connected.clone(), room_id.clone());
        readers.push(tokio::spawn(async move {
            let mut ws = {
                let _p = sem.acquire().await.expect("sem");
                g2.connect_and_join(&format!("sub-{i}"), &room).await
            };
            connected.fetch_add(1, Ordering::Relaxed);
            let mut mine = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
                let m = match next {
                    Ok(Some(Ok(m))) => m,
                    Ok(_) => break,
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => continue,
                };
                let Message::Text(t) = m else { continue };
                let s = t.as_str();
                if s == "2" {
                    let _ = ws.send(Message::Text("3".into())).await; // Engine.IO heartbeat
                    continue;
                }
                let Some(i) = s.find("n=") else { continue };
                let rest = &s[i + 2..];
                let Some(semi) = rest.find(';') else { continue };
                let Ok(num) = rest[..semi].parse::<usize>() else {
                    continue;
                };
                let Some(ts) = rest[semi + 1..]
                    .strip_prefix("t=")
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|d| d.parse::<u64>().ok())
                else {
                    continue;
                };
                mine.push(now_us().saturating_sub(ts).min(u64::from(u32::MAX)) as u32);
                delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(c) = counts.get(num)
                    && c.fetch_add(1, Ordering::AcqRel) + 1 == n
                {
                    window.add_permits(1);
                }
            }
            lat.lock().await.extend(mine);
        }));
    }
    // Bounded set-up: a server that cannot take the connections in time gets a report
    // saying so instead of a hang.
    let setup_deadline = Instant::now() + Duration::from_secs(g.args.setup_timeout);
    while connected.load(Ordering::Relaxed) < g.args.clients as u64 {
        if Instant::now() > setup_deadline {
            stop.store(true, Ordering::Relaxed);
            return json!({
                "workload": "w1", "protocol": format!("{:?}", g.args.protocol).to_lowercase(), "clients": g.args.clients,
                "error": "set-up did not finish in time", "connected": connected.load(Ordering::Relaxed),
                "setup_timeout_seconds": g.args.setup_timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The publisher is in the room too: drain what it receives so it is never a slow consumer.
    let (mut publisher, mut pub_in) = g.connect("publisher").await.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = pub_in.next().await {} });
    let pid = g.args.server_pid;
    let cpu0 = pid.and_then(|p| cpu_us(&format!("/proc/{p}/stat")));
    let self0 = cpu_us("/proc/self/stat");
    let t0 = Instant::now();
    let mut sent = 0usize;
    while t0.elapsed() < Duration::from_secs(g.args.seconds) && sent < MAX_MSGS {
        let p = match tokio::time::timeout(Duration::from_secs(5), window.acquire()).await {
            Ok(p) => p.expect("sem"),
            Err(_) => break, // a message was never completed: counted as loss below
        };
        p.forget();
        let content = format!("n={sent};t={}", now_us());
        publisher
            .send(g.publish_frame(&room_id, &content))
            .await
            .expect("publish");
        sent += 1;
    }
    // Let the last ones arrive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while delivered.load(Ordering::Relaxed) < (sent as u64) * u64::from(n)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = pid.and_then(|p| cpu_us(&format!("/proc/{p}/stat")));
    let self1 = cpu_us("/proc/self/stat");
    stop.store(true, Ordering::Relaxed);
    drain.abort();
    for r in readers {
        let _ = r.await;
    }
    let got = delivered.load(Ordering::Relaxed);
    let mut l = std::mem::take(&mut *lat.lock().await);
    l.sort_unstable();
    let pct = |p: f64| {
        if l.is_empty() {
            0
        } else {
            l[((l.len() - 1) as f64 * p) as usize]
        }
    };
    let server_cpu = cpu0.zip(cpu1).map(|(a, b)| b - a);
    json!({
        "workload": "w1", "protocol": format!("{:?}", g.args.protocol).to_lowercase(), "clients": n, "inflight": g.args.inflight, "seconds": wall,
        "messages_sent": sent, "deliveries": got, "deliveries_per_second": got as f64 / wall,
        "losses": (sent as u64 * u64::from(n)).saturating_sub(got),
        "latency_us": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "server_cpu_us": server_cpu,
        "server_cpu_us_per_delivery": server_cpu.map(|c| c as f64 / got.max(1) as f64),
        "server_rss_kib": pid.and_then(rss_kib),
        "generator_cpu_share": self0.zip(self1).map(|(a, b)| (b - a) as f64 / 1e6 / wall),
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let auth = JwtAuthenticator::hs256(args.secret.as_bytes());
    let ws_base = args.server.replacen("http", "ws", 1);
    let g = Arc::new(Gen {
        args,
        auth,
        ws_base,
    });
    let report = match g.args.workload {
        Workload::W1 => w1(g.clone()).await,
        Workload::W3 => w3(g.clone()).await,
    };
    println!("{report}");
}
