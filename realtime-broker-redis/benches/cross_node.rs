//! Cross-node delivery through one Redis on loopback: throughput and latency.
//!
//! ```sh
//! cargo bench -p realtime-broker-redis --bench cross_node
//! cargo test  -p realtime-broker-redis --bench cross_node -- --quick   # smoke run
//! ```
//!
//! Two brokers (node A, node B) in one process share one Redis. Node A publishes ~100-byte
//! events; node B's handler records each arrival. Throughput: `--events` events over
//! `--channels` room channels with up to `--window` publishes in flight. Latency: a fixed
//! `--rate` events/s for `--seconds`, send time carried in the payload.

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use realtime_broker_redis::{RedisBroker, RedisConfig};
use realtime_core::{Channel, DeliveryHandler, Event, EventType, Publisher, Subscriber};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    url: String,
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    #[arg(long, default_value_t = 8)]
    channels: usize,
    #[arg(long, default_value_t = 256)]
    window: usize,
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long)]
    quick: bool,
    #[arg(long, hide = true)]
    bench: bool,
}

struct Recorder {
    start: Instant,
    count: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

impl DeliveryHandler for Recorder {
    fn deliver(&self, _c: &Channel, e: Arc<Event>) {
        let now = self.start.elapsed().as_nanos() as u64;
        if let Some(t) = e.data.get("t").and_then(|v| v.as_u64()) {
            self.latencies
                .lock()
                .expect("lock")
                .push(now.saturating_sub(t));
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

fn event(rec: &Recorder, i: u64) -> Arc<Event> {
    let t = rec.start.elapsed().as_nanos() as u64;
    Arc::new(Event::new(
        EventType::MESSAGE_SEND,
        serde_json::json!({"t": t, "i": i, "content": "a chat line of about forty bytes long"}),
    ))
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut a = Args::parse();
    if a.quick {
        a.events = a.events.min(2_000);
        a.seconds = 1;
        a.rate = a.rate.min(1_000);
    }
    let config = RedisConfig {
        prefix: format!("rt-bench-{}:", std::process::id()),
        ..RedisConfig::default()
    };
    let (node_a, node_b) = match (
        RedisBroker::connect(&a.url, config.clone()).await,
        RedisBroker::connect(&a.url, config).await,
    ) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            println!("skipped: Redis at {} unreachable ({e})", a.url);
            return;
        }
    };
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        count: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
    });
    node_b.set_handler(rec.clone());
    let channels: Vec<Channel> = (0..a.channels)
        .map(|i| Channel::room(&format!("bench-{i}")).expect("channel"))
        .collect();
    for c in &channels {
        node_b.subscribe(c).await.expect("subscribe");
    }

    // Throughput with a window of publishes in flight.
    let t = Instant::now();
    let mut inflight: FuturesUnordered<
        futures_util::future::BoxFuture<'static, realtime_core::Result<()>>,
    > = FuturesUnordered::new();
    for i in 0..a.events {
        if inflight.len() >= a.window {
            inflight.next().await.expect("slot").expect("publish");
        }
        let c = channels[i as usize % channels.len()].clone();
        let ev = event(&rec, i);
        let na = node_a.clone();
        inflight.push(Box::pin(async move { na.publish(&c, ev).await }));
    }
    while let Some(r) = inflight.next().await {
        r.expect("publish");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rec.count.load(Ordering::Relaxed) < a.events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = rec.count.load(Ordering::Relaxed);
    let rate = got as f64 / t.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *rec.latencies.lock().expect("lock"));
    lat.sort_unstable();
    println!(
        "| throughput | {} events, {} channels, window {} | {rate:.0} deliveries/s | lost {} | p50 {:.0} µs | p99 {:.0} µs |",
        a.events,
        a.channels,
        a.window,
        a.events - got,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    // Latency at a fixed rate, paced every millisecond.
    rec.count.store(0, Ordering::Relaxed);
    let total = a.rate * a.seconds;
    let per_ms = (a.rate as f64 / 1000.0).max(1.0);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0u64;
    let mut owed = 0.0;
    let mut inflight: FuturesUnordered<
        futures_util::future::BoxFuture<'static, realtime_core::Result<()>>,
    > = FuturesUnordered::new();
    while sent < total {
        tick.tick().await;
        owed += per_ms;
        while owed >= 1.0 && sent < total {
            let c = channels[sent as usize % channels.len()].clone();
            let ev = event(&rec, sent);
            let na = node_a.clone();
            inflight.push(Box::pin(async move { na.publish(&c, ev).await }));
            sent += 1;
            owed -= 1.0;
        }
        while let Some(Some(r)) = futures_util::FutureExt::now_or_never(inflight.next()) {
            r.expect("publish");
        }
    }
    while let Some(r) = inflight.next().await {
        r.expect("publish");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.count.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = rec.count.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *rec.latencies.lock().expect("lock"));
    lat.sort_unstable();
    println!(
        "| fixed rate | {} events/s for {} s | {got} delivered | lost {} | p50 {:.0} µs | p99 {:.0} µs | max {:.0} µs |",
        a.rate,
        a.seconds,
        total - got,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
}
