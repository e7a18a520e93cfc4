//! Start the server on an ephemeral port and talk to it over real sockets.
#![allow(dead_code)]

use chat_server::Config;
use futures_util::{SinkExt, StreamExt};
use realtime_core::{Claims, Hub, JwtAuthenticator};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const SECRET: &str = "test-secret-test-secret-test-secret!!";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Server {
    pub addr: SocketAddr,
    /// The engine, for servers started in this process (`None` for other processes).
    hub_handle: Option<Hub>,
    pub http: reqwest::Client,
}

static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static HOOK: std::sync::Once = std::sync::Once::new();

/// Count every panic in this test process (server tasks included), keeping the default report.
fn watch_panics() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Panics seen so far in this process (a server task panicking does not fail a test by itself).
pub fn panics() -> usize {
    PANICS.load(std::sync::atomic::Ordering::SeqCst)
}

pub async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    watch_panics();
    let mut config = Config::for_tests();
    config.jwt_secret = Some(SECRET.into());
    tweak(&mut config);
    let serve_settings = config.clone();
    let app = chat_server::build(config).await.expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(realtime_transport_ws::server::serve(
        listener,
        app.router,
        chat_server::serve_config(&serve_settings),
        std::future::pending(),
    ));
    Server {
        addr,
        hub_handle: Some(app.hub),
        http: reqwest::Client::new(),
    }
}

pub fn token(sub: &str) -> String {
    let mut c = Claims::new(sub, 3600);
    c.username = Some(format!("{sub}-name"));
    JwtAuthenticator::hs256(SECRET.as_bytes())
        .issue(&c)
        .expect("token")
}

impl Server {
    /// A server running in another process.
    pub fn remote(addr: SocketAddr) -> Server {
        Server {
            addr,
            hub_handle: None,
            http: reqwest::Client::new(),
        }
    }

    /// The in-process engine.
    pub fn hub(&self) -> &Hub {
        self.hub_handle.as_ref().expect("an in-process server")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token(user))
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, user: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token(user))
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Create a room owned by `owner` with `members`; returns its id.
    pub async fn room(&self, owner: &str, members: &[&str]) -> String {
        for m in members {
            self.get(m, "/api/v1/users").await; // a valid token creates the user
        }
        let (s, r) = self
            .post(
                owner,
                "/api/v1/rooms",
                json!({"name": "General", "members": members}),
            )
            .await;
        assert_eq!(s, 201, "{r}");
        r["id"].as_str().expect("id").to_owned()
    }

    /// A WebSocket for `user`, past the `auth` frame.
    pub async fn ws(&self, user: &str) -> Ws {
        let url = format!("ws://{}/ws?token={}", self.addr, token(user));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let auth = next_json(&mut ws).await;
        assert_eq!(auth["type"], "auth", "{auth}");
        assert_eq!(auth["data"]["status"], "connected");
        assert_eq!(auth["data"]["user_id"], user);
        ws
    }
}

/// The next JSON text frame (pings and pongs skipped), within 5 s.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s");
        match m.expect("open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Frames until one has `type == ty`; returns it.
pub async fn until(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// Frames arriving within `d`.
pub async fn within(ws: &mut Ws, d: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = m {
            out.push(serde_json::from_str(t.as_str()).expect("json"));
        }
    }
    out
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The close code the server ends the connection with (frames before it are skipped).
pub async fn close_code(ws: &mut Ws, within_secs: u64) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(within_secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(c)))) => return c.map(|c| u16::from(c.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return None,
            Err(_) => panic!("no close within {within_secs} s"),
        }
    }
}

/// Whether tests must fail, not skip, when a service is missing (`.ci/run` sets it).
pub fn require() -> bool {
    std::env::var("REALTIME_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A PostgreSQL URL with a schema of the test's own (dropped by the guard), or `None`
/// (printed as skipped) when PostgreSQL is not reachable.
pub async fn pg_schema() -> Option<(String, Schema)> {
    use sqlx::postgres::PgPoolOptions;
    let base = std::env::var("REALTIME_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&base)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            assert!(
                !require(),
                "PostgreSQL is required (REALTIME_REQUIRE_SERVICES=1) but {base} is unreachable: {e}"
            );
            eprintln!("SKIPPED: PostgreSQL not reachable at {base} ({e})");
            return None;
        }
    };
    let name = format!("rt_e2e_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&pool)
        .await
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((
        format!("{base}{sep}options=-c%20search_path%3D{name}"),
        Schema { base, name },
    ))
}

/// A PostgreSQL schema of a test's own, dropped with it.
pub struct Schema {
    base: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async {
                if let Ok(p) = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&base)
                    .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&p)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A free TCP port on loopback.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A chat-server process of the test's own; killed (by its PID, via the child handle) on drop.
pub struct Node {
    pub server: Server,
    pub child: tokio::process::Child,
}

impl std::ops::Deref for Node {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Node {
    /// Start the chat-server binary on a spare port with the test secret and `env`, and
    /// wait until it answers `/health/live`.
    pub async fn spawn(env: &[(&str, &str)]) -> Node {
        let port = spare_port();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"));
        cmd.env("BIND", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chat-server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("http://{addr}/health/live"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Node {
            server: Server::remote(addr),
            child,
        }
    }
}
