//! Load generator: opens many WebSocket connections on loopback from one process and
//! reports JSON (one object on stdout).
//!
//! ```sh
//! # W3 idle: server RSS with 0 and N idle authenticated connections
//! loadgen --workload w3 --clients 10000 --server-pid $PID --secret $JWT_SECRET
//! # W1 fan-out: one room of N subscribers, one publisher, at most K messages in flight
//! loadgen --workload w1 --clients 1000 --inflight 16 --seconds 10 --server-pid $PID --secret $JWT_SECRET
//! # W1 at a fixed rate (messages per second) instead of closed loop
//! loadgen --workload w1 --clients 10000 --rate 20 --seconds 10 --server-pid $PID --secret $JWT_SECRET
//! # W2 many rooms: 1,000 clients in rooms of 10, each publishing 20 msg/s to its room
//! loadgen --workload w2 --clients 1000 --room-size 10 --rate 20 --seconds 10 --server-pid $PID --secret $JWT_SECRET
//! # … and every 500 ms one stderr line: that window's deliveries, p50/p99/max µs, server CPU share
//! loadgen --workload w2 --rate 10 --timeline-ms 500 --server-pid $PID --secret $JWT_SECRET
//! ```
//!
//! Protocols (`--protocol`): the native dialect of `realtime-transport-ws` (tokens minted
//! locally with the server's HS256 secret), Engine.IO v4 / Socket.IO v5 text framing, or raw
//! text frames; the last two name the room in the URL (`?room=`). The payload carries
//! `n=<message number>;t=<send time µs>`; latency is receive time minus send time on the
//! same clock, kept in a log-linear histogram (≤ 1.6 % error). Server CPU time and RSS come
//! from `/proc/<pid>/stat` and `/proc/<pid>/status`; the generator's own CPU from
//! `/proc/self/stat`. `server_cpu_share` is the server's CPU time over the run's wall time
//! (cores): near 1.0 a server pinned to one core is saturated, and its latency is mostly
//! the queue it could not drain. `server_cpu_us_by_thread` splits the server's CPU time by
//! thread name (`/proc/<pid>/task`): chat-server's runtime against its SQLite threads.

mod histogram;
mod procfs;
mod pusher;
mod report;

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use histogram::Histogram;
use procfs::{ThreadsCpu, cpu_us, rss_kib, threads_cpu, threads_cpu_delta};
use realtime_core::{Claims, JwtAuthenticator};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    /// Fan-out: one room of `--clients` subscribers and one publisher, closed loop
    /// (`--inflight`) or at a fixed `--rate`.
    W1,
    /// Many rooms: `--clients` in rooms of `--room-size`, each client publishing to its
    /// room at `--rate` messages per second.
    W2,
    /// Idle: RSS with 0 and with `--clients` idle authenticated connections.
    W3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// realtime-transport-ws's native dialect (auth by token, `join`, `send`).
    Native,
    /// Engine.IO v4 / Socket.IO v5 text framing over a raw WebSocket (`40` connect,
    /// `42["message",…]` events, `2`/`3` heartbeats); the server puts each socket in the
    /// room named by the `room` query parameter (default `bench`).
    Socketio,
    /// Plain text frames, no protocol: the server forwards each to every socket of the
    /// room named by the `room` query parameter.
    Raw,
    /// Pusher protocol 7 (`/app/{key}`): the room is a channel; W1 publishes through the
    /// signed HTTP API, W2 as client events on private channels (signed subscriptions).
    Pusher,
}

#[derive(Parser, Debug)]
struct Args {
    /// The wire protocol the server speaks.
    #[arg(long, value_enum, default_value = "native")]
    protocol: Protocol,
    /// The server's HTTP base.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's JWT_SECRET (HS256), to mint one token per client (native protocol).
    #[arg(long, env = "JWT_SECRET", default_value = "")]
    secret: String,
    /// Pusher: the app id (HTTP API path).
    #[arg(long, default_value = "app-id")]
    app_id: String,
    /// Pusher: the app key.
    #[arg(long, default_value = "app-key")]
    app_key: String,
    /// Pusher: the app secret (signatures).
    #[arg(long, default_value = "app-secret")]
    app_secret: String,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// W1 closed loop: messages in flight (sent, not yet received by every subscriber).
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Messages per second: W1 at a fixed rate (instead of closed loop); W2 per client
    /// (default 20).
    #[arg(long)]
    rate: Option<f64>,
    /// W2: clients per room.
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Publishing time, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server's PID, for CPU time and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds allowed for connecting and joining every client.
    #[arg(long, default_value_t = 120)]
    setup_timeout: u64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// W1 and W2: every this many ms while publishing, print one line to stderr with the
    /// window's deliveries, latency p50 / p99 / max (µs, by receive time), the server's CPU
    /// share and the wall clock at its end (`unix_ms`, to line it up with the server's logs
    /// or a `perf` trace): where the tail comes from (steady, or a few stalls). 0: off.
    #[arg(long, default_value_t = 0)]
    timeline_ms: u64,
    /// Native protocol only: every `send` carries an `id` (the message number), so the
    /// server answers each with an `ack` holding the stored message, as the web client's
    /// sends are answered. Acks are counted in the report (`acks`), not as deliveries.
    #[arg(long)]
    send_ids: bool,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

struct Gen {
    args: Args,
    auth: JwtAuthenticator,
    ws_base: String,
    http: reqwest::Client,
}

/// Next text frame, or an error for a closed or broken connection.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(c))) => return Err(format!("closed: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

impl Gen {
    fn token(&self, user: &str) -> String {
        self.auth.issue(&Claims::new(user, 3600)).expect("token")
    }

    fn protocol(&self) -> String {
        format!("{:?}", self.args.protocol).to_lowercase()
    }

    /// Open a connection for `user`, in `room` for the protocols whose servers take the
    /// room from the URL.
    async fn connect(&self, user: &str, room: &str) -> Result<Ws, String> {
        let url = match self.args.protocol {
            Protocol::Native => format!("{}/ws?token={}", self.ws_base, self.token(user)),
            Protocol::Socketio => {
                format!(
                    "{}/socket.io/?EIO=4&transport=websocket&room={room}",
                    self.ws_base
                )
            }
            Protocol::Raw => format!("{}/?room={room}", self.ws_base),
            Protocol::Pusher => format!(
                "{}/app/{}?protocol=7&client=js&version=8.6.0",
                self.ws_base, self.args.app_key
            ),
        };
        // TCP_NODELAY: a client's small frames go out at once, as a browser's do. A 16 KiB
        // read buffer, not tungstenite's default 128 KiB: it zero-fills the buffer's free
        // space before every read, which costs 40 % of the generator's CPU.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(16 * 1024);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), true)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        match self.args.protocol {
            Protocol::Native => while !next_text(&mut ws).await?.contains("\"auth\"") {},
            Protocol::Socketio => {
                // Engine.IO open packet, then connect to the main namespace.
                while !next_text(&mut ws).await?.starts_with('0') {}
                ws.send(Message::Text("40".into()))
                    .await
                    .map_err(|e| e.to_string())?;
                while !next_text(&mut ws).await?.starts_with("40") {}
            }
            Protocol::Raw => {}
            Protocol::Pusher => pusher::open(self, &mut ws, room).await?,
        }
        Ok(ws)
    }

    /// Connect `user` and, in the native dialect, join `room` (waiting for the reply)
    /// unless `member` already; the other protocols' servers put the socket in the room.
    async fn connect_and_join(&self, user: &str, room: &str, member: bool) -> Result<Ws, String> {
        let mut ws = self.connect(user, room).await?;
        if self.args.protocol == Protocol::Native && !member {
            let join = json!({"type": "join", "id": 1, "data": {"room_id": room}}).to_string();
            ws.send(Message::Text(join.into()))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let t = next_text(&mut ws).await?;
                if t.contains("\"ack\"") {
                    break;
                }
                if t.contains("\"error\"") && t.contains("\"id\":1") {
                    return Err(format!("join refused: {t}"));
                }
            }
        }
        Ok(ws)
    }

    /// A room for the run: created over REST by `owner` in the native dialect; a name
    /// otherwise.
    async fn make_room(&self, owner: &str, name: &str) -> Result<String, String> {
        if self.args.protocol != Protocol::Native {
            return Ok(name.to_owned());
        }
        let room: serde_json::Value = self
            .http
            .post(format!("{}/api/v1/rooms", self.args.server))
            .bearer_auth(self.token(owner))
            .json(&json!({"name": name}))
            .send()
            .await
            .map_err(|e| format!("create room: {e}"))?
            .json()
            .await
            .map_err(|e| format!("create room: {e}"))?;
        room["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("create room: no id in {room}"))
    }

    /// One published message in this protocol.
    /// The frame that publishes `content` to `room_id`; message number `n` is the `id` of a
    /// native send with `--send-ids`.
    fn publish_frame(&self, room_id: &str, content: &str, n: u64) -> Message {
        match self.args.protocol {
            Protocol::Native if self.args.send_ids => Message::Text(
                json!({"type": "send", "id": n, "data": {"room_id": room_id, "content": content}})
                    .to_string()
                    .into(),
            ),
            Protocol::Native => Message::Text(
                json!({"type": "send", "data": {"room_id": room_id, "content": content}})
                    .to_string()
                    .into(),
            ),
            Protocol::Socketio => Message::Text(format!("42[\"message\",\"{content}\"]").into()),
            Protocol::Raw => Message::Text(content.to_owned().into()),
            Protocol::Pusher => pusher::client_event(self, room_id, content),
        }
    }
}

/// What the readers share.
struct Stats {
    delivered: AtomicU64,
    /// Native `ack` frames received (`--send-ids`).
    acks: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    stop: AtomicBool,
    latency: Histogram,
    /// The current `--timeline-ms` window's latencies (recorded only when it is on).
    window: Option<Histogram>,
}

impl Stats {
    fn new(g: &Gen) -> Self {
        Stats {
            delivered: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
            stop: AtomicBool::new(false),
            latency: Histogram::default(),
            window: (g.args.timeline_ms > 0).then(Histogram::default),
        }
    }

    /// With `--timeline-ms`, print each window's figures to stderr until `stop` is set.
    fn spawn_timeline(self: &Arc<Self>, g: &Arc<Gen>) {
        let ms = g.args.timeline_ms;
        if ms == 0 {
            return;
        }
        let (stats, g) = (self.clone(), g.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(ms));
            tick.tick().await;
            let mut cpu = server_cpu(&g);
            while !stats.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let Some(w) = &stats.window else { return };
                let (n, p50, p99, max) = (
                    w.count(),
                    w.quantile(0.5),
                    w.quantile(0.99),
                    w.quantile(1.0),
                );
                w.clear();
                let now = server_cpu(&g);
                let share = cpu.zip(now).map(|(a, b)| (b - a) as f64 / 1e3 / ms as f64);
                cpu = now;
                // `unix_ms`: the wall clock, to line windows up with the server's logs.
                let unix_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                eprintln!(
                    "loadgen: t={:.2}s n={n} p50={p50} p99={p99} max={max} server_cpu={} unix_ms={unix_ms}",
                    t0.elapsed().as_secs_f64(),
                    share.map_or("-".into(), |s| format!("{s:.2}")),
                );
            }
        });
    }

    fn fail(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().expect("lock").get_or_insert(e);
    }

    /// Wait until every client connected or failed, or the set-up time ran out; the
    /// set-up time in seconds.
    async fn wait_setup(&self, g: &Gen) -> Result<f64, String> {
        let took = self
            .wait_connected(g.args.clients, Duration::from_secs(g.args.setup_timeout))
            .await?;
        eprintln!("loadgen: set-up done in {took:.1} s");
        Ok(took)
    }

    async fn wait_connected(&self, clients: usize, timeout: Duration) -> Result<f64, String> {
        let t = Instant::now();
        loop {
            let (ok, bad) = (
                self.connected.load(Ordering::Relaxed),
                self.failed.load(Ordering::Relaxed),
            );
            if bad > 0 {
                let e = self.first_error.lock().expect("lock").clone();
                return Err(format!("{bad} clients failed: {}", e.unwrap_or_default()));
            }
            if ok as usize >= clients {
                return Ok(t.elapsed().as_secs_f64());
            }
            if t.elapsed() > timeout {
                return Err("set-up did not finish in time".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether a frame is a native `ack` (its key order is `type`, `id`, `data`).
fn is_ack(s: &str) -> bool {
    s.starts_with(r#"{"type":"ack""#)
}

/// `n=<number>;t=<send time µs>` from a frame of any of the protocols.
fn parse_payload(s: &str) -> Option<(usize, u64)> {
    let rest = &s[s.find("n=")? + 2..];
    let semi = rest.find(';')?;
    let num = rest[..semi].parse().ok()?;
    let ts = rest[semi + 1..]
        .strip_prefix("t=")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((num, ts))
}

/// Read `ws` until stopped: count deliveries and their latency; answer Engine.IO pings
/// through `pong`. `on_message` sees each message number.
async fn read_loop(
    mut stream: futures_util::stream::SplitStream<Ws>,
    pong: tokio::sync::mpsc::Sender<Message>,
    stats: Arc<Stats>,
    on_message: impl Fn(usize),
) {
    while let Some(Ok(m)) = stream.next().await {
        if stats.stop.load(Ordering::Relaxed) {
            break;
        }
        let Message::Text(t) = m else { continue };
        let s = t.as_str();
        if s == "2" {
            let _ = pong.try_send(Message::Text("3".into())); // Engine.IO heartbeat
            continue;
        }
        if pusher::is_ping(s) {
            let _ = pong.try_send(pusher::pong());
            continue;
        }
        if is_ack(s) {
            // It holds the message's content too: an answer to the sender, not a delivery.
            stats.acks.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Some((num, ts)) = parse_payload(s) else {
            continue;
        };
        let latency = now_us().saturating_sub(ts);
        stats.latency.record(latency);
        if let Some(w) = &stats.window {
            w.record(latency);
        }
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        on_message(num);
    }
}

/// A connected client: its reader runs in a task; frames to send go through `tx`.
fn spawn_client(
    ws: Ws,
    stats: Arc<Stats>,
    on_message: impl Fn(usize) + Send + 'static,
) -> tokio::sync::mpsc::Sender<Message> {
    let (mut sink, stream) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(64);
    tokio::spawn(read_loop(stream, tx.clone(), stats, on_message));
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    tx
}

fn server_cpu(g: &Gen) -> Option<u64> {
    g.args
        .server_pid
        .and_then(|p| cpu_us(&format!("/proc/{p}/stat")))
}

fn server_threads_cpu(g: &Gen) -> Option<ThreadsCpu> {
    threads_cpu(g.args.server_pid?)
}

use report::{Measured, report, setup_failed};

async fn w3(g: Arc<Gen>) -> serde_json::Value {
    let pid = g.args.server_pid.expect("--server-pid is needed for W3");
    let before = rss_kib(pid).expect("rss");
    let t = Instant::now();
    let sem = Arc::new(Semaphore::new(g.args.connect_concurrency));
    let mut tasks = Vec::with_capacity(g.args.clients);
    for i in 0..g.args.clients {
        let (g, sem) = (g.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.expect("sem");
            g.connect(&format!("idle-{i}"), "idle").await
        }));
    }
    let mut conns = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(ws) => conns.push(ws),
            Err(_) => failed += 1,
        }
    }
    let connect_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid).expect("rss");
    drop(conns);
    json!({
        "workload": "w3", "protocol": g.protocol(), "clients": g.args.clients, "connect_seconds": connect_s,
        "failed": failed,
        "server_rss_kib_idle_0": before, "server_rss_kib_idle_n": after,
        "kib_per_connection": (after.saturating_sub(before)) as f64 / (g.args.clients - failed).max(1) as f64,
    })
}

async fn w1(g: Arc<Gen>) -> serde_json::Value {
    let stats = Arc::new(Stats::new(&g));
    let room_id = match g.make_room("publisher", "bench").await {
        Ok(r) => r,
        Err(e) => return setup_failed(&g, &stats, e),
    };
    let n = g.args.clients as u32;
    const MAX_MSGS: usize = 4_000_000;
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..MAX_MSGS).map(|_| AtomicU32::new(0)).collect());
    let window = Arc::new(Semaphore::new(g.args.inflight));
    // Each subscriber reads from the moment it is connected (as a real client would), so
    // what the server sends during set-up never piles up unread.
    let sem = Arc::new(Semaphore::new(g.args.connect_concurrency));
    let mut clients = Vec::new();
    for i in 0..g.args.clients {
        let (g, sem, stats, room) = (g.clone(), sem.clone(), stats.clone(), room_id.clone());
        let (counts, window) = (counts.clone(), window.clone());
        clients.push(tokio::spawn(async move {
            let ws = {
                let _p = sem.acquire().await.expect("sem");
                g.connect_and_join(&format!("sub-{i}"), &room, false).await
            };
            match ws {
                Ok(ws) => {
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    Some(spawn_client(ws, stats, move |num| {
                        if let Some(c) = counts.get(num)
                            && c.fetch_add(1, Ordering::AcqRel) + 1 == n
                        {
                            window.add_permits(1);
                        }
                    }))
                }
                Err(e) => {
                    stats.fail(e);
                    None
                }
            }
        }));
    }
    let setup = match stats.wait_setup(&g).await {
        Ok(s) => s,
        Err(e) => return setup_failed(&g, &stats, e),
    };
    // The publisher is in the room too: drain what it receives so it is never a slow
    // consumer. Pusher publishes through the HTTP API instead.
    let publisher = if g.args.protocol == Protocol::Pusher {
        None
    } else {
        match g.connect("publisher", "bench").await {
            Ok(ws) => {
                let (publisher, mut pub_in) = ws.split();
                let drain =
                    tokio::spawn(async move { while let Some(Ok(_)) = pub_in.next().await {} });
                Some((publisher, drain))
            }
            Err(e) => return setup_failed(&g, &stats, e),
        }
    };
    let (mut publisher, drain) = publisher.unzip();
    let cpu0 = server_cpu(&g);
    let threads0 = server_threads_cpu(&g);
    let self0 = cpu_us("/proc/self/stat");
    stats.spawn_timeline(&g);
    let t0 = Instant::now();
    let mut sent = 0usize;
    let mut tick = g
        .args
        .rate
        .map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001))));
    while t0.elapsed() < Duration::from_secs(g.args.seconds) && sent < MAX_MSGS {
        if let Some(tick) = &mut tick {
            tick.tick().await;
        } else {
            match tokio::time::timeout(Duration::from_secs(5), window.acquire()).await {
                Ok(p) => p.expect("sem").forget(),
                Err(_) => break, // a message was never completed: counted as loss below
            }
        }
        let content = format!("n={sent};t={}", now_us());
        match &mut publisher {
            Some(p) => {
                if p.send(g.publish_frame(&room_id, &content, sent as u64))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            None => {
                let (g, room, stats) = (g.clone(), room_id.clone(), stats.clone());
                tokio::spawn(async move {
                    if let Err(e) = pusher::trigger(&g, &room, &content).await {
                        stats.fail(e);
                    }
                });
            }
        }
        sent += 1;
    }
    // Let the last ones arrive.
    let expected = sent as u64 * u64::from(n);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(server_cpu(&g)).map(|(a, b)| b - a);
    let threads = threads_cpu_delta(threads0, server_threads_cpu(&g));
    let gen_cpu = self0.zip(cpu_us("/proc/self/stat")).map(|(a, b)| b - a);
    stats.stop.store(true, Ordering::Relaxed);
    if let Some(d) = drain {
        d.abort();
    }
    let m = Measured {
        sent: sent as u64,
        expected,
        wall,
        server_cpu: cpu,
        server_threads_cpu: threads,
        generator_cpu: gen_cpu,
        setup,
    };
    let mut r = report(&g, &stats, m);
    r["inflight"] = match g.args.rate {
        Some(_) => serde_json::Value::Null,
        None => json!(g.args.inflight),
    };
    r["rate"] = json!(g.args.rate);
    drop(clients);
    r
}

async fn w2(g: Arc<Gen>) -> serde_json::Value {
    let stats = Arc::new(Stats::new(&g));
    let size = g.args.room_size.max(1);
    let rooms = g.args.clients.div_ceil(size);
    let rate = g.args.rate.unwrap_or(20.0).max(0.001);
    let mut room_ids = Vec::with_capacity(rooms);
    for k in 0..rooms {
        match g
            .make_room(&format!("w2-{}", k * size), &format!("r{k}"))
            .await
        {
            Ok(r) => room_ids.push(r),
            Err(e) => return setup_failed(&g, &stats, e),
        }
    }
    let sem = Arc::new(Semaphore::new(g.args.connect_concurrency));
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let sent = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / rate);
    for i in 0..g.args.clients {
        let (g, sem, stats, room) = (
            g.clone(),
            sem.clone(),
            stats.clone(),
            room_ids[i / size].clone(),
        );
        let (mut go, sent) = (go_rx.clone(), sent.clone());
        tokio::spawn(async move {
            let ws = {
                let _p = sem.acquire().await.expect("sem");
                g.connect_and_join(&format!("w2-{i}"), &room, i % size == 0)
                    .await
            };
            let tx = match ws {
                Ok(ws) => {
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    spawn_client(ws, stats.clone(), |_| {})
                }
                Err(e) => return stats.fail(e),
            };
            if go.wait_for(|go| *go).await.is_err() {
                return;
            }
            // Spread the clients' send times evenly over one period.
            let offset = period.mul_f64(i as f64 / g.args.clients as f64);
            let start = tokio::time::Instant::now() + offset;
            let mut tick = tokio::time::interval_at(start, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(g.args.seconds);
            let mut n = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let content = format!("n={n};t={}", now_us());
                if tx.send(g.publish_frame(&room, &content, n)).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        });
    }
    let setup = match stats.wait_setup(&g).await {
        Ok(s) => s,
        Err(e) => return setup_failed(&g, &stats, e),
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // set-up traffic settles
    stats.delivered.store(0, Ordering::Relaxed);
    stats.latency.clear();
    if let Some(w) = &stats.window {
        w.clear();
    }
    stats.spawn_timeline(&g);
    let cpu0 = server_cpu(&g);
    let threads0 = server_threads_cpu(&g);
    let self0 = cpu_us("/proc/self/stat");
    let t0 = Instant::now();
    let _ = go_tx.send(true);
    tokio::time::sleep(Duration::from_secs(g.args.seconds)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    // A Pusher client event is not echoed to its sender.
    let receivers = if g.args.protocol == Protocol::Pusher {
        size - 1
    } else {
        size
    } as u64;
    let expected = || sent.load(Ordering::Relaxed) * receivers;
    while stats.delivered.load(Ordering::Relaxed) < expected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(server_cpu(&g)).map(|(a, b)| b - a);
    let threads = threads_cpu_delta(threads0, server_threads_cpu(&g));
    let gen_cpu = self0.zip(cpu_us("/proc/self/stat")).map(|(a, b)| b - a);
    stats.stop.store(true, Ordering::Relaxed);
    let total = sent.load(Ordering::Relaxed);
    let m = Measured {
        sent: total,
        expected: expected(),
        wall,
        server_cpu: cpu,
        server_threads_cpu: threads,
        generator_cpu: gen_cpu,
        setup,
    };
    let mut r = report(&g, &stats, m);
    r["room_size"] = json!(size);
    r["rate_per_client"] = json!(rate);
    r["messages_per_second"] = json!(total as f64 / g.args.seconds as f64);
    r
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if args.send_ids && args.protocol != Protocol::Native {
        eprintln!("loadgen: --send-ids is for the native protocol only");
        std::process::exit(2);
    }
    let auth = JwtAuthenticator::hs256(args.secret.as_bytes());
    let ws_base = args.server.replacen("http", "ws", 1);
    let g = Arc::new(Gen {
        args,
        auth,
        ws_base,
        http: reqwest::Client::new(),
    });
    let report = match g.args.workload {
        Workload::W1 => w1(g.clone()).await,
        Workload::W2 => w2(g.clone()).await,
        Workload::W3 => w3(g.clone()).await,
    };
    println!("{report}");
}

#[cfg(test)]
mod tests;
