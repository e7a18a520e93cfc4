//! Redis test helpers: the machine's Redis (or a printed skip), and a private redis-server.
#![allow(dead_code)]

use realtime_broker_redis::{RedisBroker, RedisConfig};
use std::time::Duration;

pub fn redis_url() -> String {
    std::env::var("REALTIME_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A config with a prefix of its own, so tests can share one Redis.
pub fn config() -> RedisConfig {
    RedisConfig {
        prefix: format!("rt-test-{}:", uuid::Uuid::new_v4().simple()),
        ..RedisConfig::default()
    }
}

/// Two nodes on the machine's Redis, or `None` with a printed reason (a panic instead
/// when `REALTIME_REQUIRE_SERVICES=1`).
pub async fn two_nodes(config: RedisConfig) -> Option<(RedisBroker, RedisBroker)> {
    let url = redis_url();
    match RedisBroker::connect(&url, config.clone()).await {
        Ok(a) => Some((
            a,
            RedisBroker::connect(&url, config)
                .await
                .expect("second node"),
        )),
        Err(e) => {
            if std::env::var("REALTIME_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!(
                    "Redis is required (REALTIME_REQUIRE_SERVICES=1) but {url} is unreachable: {e}"
                );
            }
            eprintln!(
                "SKIPPED: Redis not reachable at {url} ({e}); set REALTIME_TEST_REDIS_URL or start it"
            );
            None
        }
    }
}

/// A redis-server of the test's own on a spare loopback port; stopped (by its PID) on drop.
pub struct OwnRedis {
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    /// Start one, or `None` (printed) when `redis-server` is not installed.
    pub async fn start(port: Option<u16>) -> Option<OwnRedis> {
        let port = port.unwrap_or_else(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("spare port");
            l.local_addr().expect("addr").port()
        });
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("REALTIME_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                    panic!("redis-server is required for the fault test: {e}");
                }
                eprintln!("SKIPPED: cannot run redis-server ({e})");
                return None;
            }
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(OwnRedis {
                    port,
                    child: Some(child),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stop it (SIGKILL to our own child) and wait until the port is closed.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }
}
