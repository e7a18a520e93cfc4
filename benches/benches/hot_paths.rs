//! Hot paths, measured with criterion (release):
//!
//! ```sh
//! cargo bench -p realtime-benches --bench hot_paths
//! ```

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use realtime_core::*;
use realtime_transport_ws::native;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sample_event() -> Event {
    Event::new(EventType::MESSAGE_SEND, serde_json::json!({
        "message_id": "0190a3b4-0000-7000-8000-000000000000", "room_id": "room-1", "seq": 42,
        "sender_id": "user-1", "content": "Hello everyone! A typical chat line.", "type": "TEXT", "status": "SENT"
    }))
    .with_user("user-1")
    .with_room("room-1")
}

fn codecs(c: &mut Criterion) {
    let ev = sample_event();
    let json = ev.to_json_bytes();
    c.bench_function("event/encode_json", |b| {
        b.iter(|| black_box(&ev).to_json_bytes())
    });
    c.bench_function("event/decode_json", |b| {
        b.iter(|| Event::from_json_bytes(black_box(&json)))
    });
    c.bench_function("native/encode_push", |b| {
        b.iter(|| native::encode_event(black_box(&ev)))
    });
    let cmd = br#"{"type":"send","id":17,"data":{"room_id":"room-1","content":"Hello everyone!","client_id":"c-1"}}"#;
    c.bench_function("native/parse_command", |b| {
        b.iter(|| native::parse(black_box(cmd)))
    });
    c.bench_function("event_type/parse", |b| {
        b.iter(|| EventType::parse(black_box("event.message.reaction.add")))
    });
    c.bench_function("channel/parse", |b| {
        b.iter(|| Channel::parse(black_box("room:0190a3b4-0000-7000-8000-000000000000")))
    });
}

fn router(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    let mut r = EventRouter::new();
    for p in [
        "event.user.*",
        "event.room.*",
        "event.system.*",
        "event.message.edit",
        "event.message.delete",
        "event.*.send",
        "event.message.*",
    ] {
        r.on(p, |_| async { Ok(()) }).expect("route");
    }
    r.layer(RequireUser);
    let ev = Arc::new(sample_event());
    c.bench_function("router/dispatch_7_routes_1_layer", |b| {
        b.iter(|| rt.block_on(r.dispatch(ev.clone())))
    });
}

fn fan_out(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let mut g = c.benchmark_group("hub/fan_out");
    for n in [10usize, 1_000, 10_000] {
        let config = HubConfig {
            session_queue_frames: 4,
            max_sessions_per_user: usize::MAX,
            ..HubConfig::default()
        };
        let (hub, mut sessions) = rt.block_on(async {
            let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
                .config(config)
                .build();
            let dialect = hub.register_dialect(Arc::new(realtime_transport_ws::NativeEncoder));
            let mut sessions = Vec::with_capacity(n);
            for i in 0..n {
                let id = Identity {
                    user_id: format!("u{i}"),
                    username: None,
                    claims: serde_json::Value::Null,
                };
                sessions.push(
                    hub.connect(ConnectOptions::chat(id.clone()).dialect(dialect))
                        .await
                        .expect("connect"),
                );
            }
            for s in &mut sessions {
                while s.try_recv().is_some() {}
            }
            (hub, sessions)
        });
        let ev = sample_event();
        g.bench_function(format!("{n}_sessions"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let e = ev.clone();
                    let t = Instant::now();
                    rt.block_on(hub.publish(&[Channel::Global], e))
                        .expect("publish");
                    total += t.elapsed();
                    for s in &mut sessions {
                        while s.try_recv().is_some() {}
                    }
                }
                total
            })
        });
    }
    g.finish();
}

fn state_machines(c: &mut Criterion) {
    let clock = ManualClock::at_epoch();
    let now = clock.now();
    c.bench_function("presence/connect_disconnect_tick", |b| {
        let mut p = PresenceTracker::new(PresenceConfig {
            grace: Duration::ZERO,
        });
        b.iter(|| {
            p.connect("u", 1, None, now);
            p.disconnect("u", 1, now)
        })
    });
    c.bench_function("typing/start_stop", |b| {
        let mut t = TypingTracker::default();
        b.iter(|| {
            t.start("r", "u", now);
            t.stop("r", "u", now)
        })
    });
    c.bench_function("message/advance_status", |b| {
        let new = NewMessage {
            id: "m".into(),
            room_id: "r".into(),
            sender_id: "u".into(),
            client_id: None,
            content: "x".into(),
            kind: MessageKind::Text,
            created_at: now,
        };
        b.iter_batched(
            || Message::from_new(new.clone(), 1),
            |mut m| {
                m.advance_status(MessageStatus::Delivered).ok();
                m.advance_status(MessageStatus::Read).ok();
                m
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("reactions/add_remove", |b| {
        let mut s = ReactionSet::default();
        b.iter(|| {
            s.add("u", "👍");
            s.remove("u", "👍")
        })
    });
    c.bench_function("room/join_check", |b| {
        let (room, _, _) = Room::create_group(
            "r".into(),
            "General".into(),
            "o",
            false,
            &Limits::default(),
            now,
        )
        .expect("room");
        b.iter(|| room.join(black_box("u"), None, now))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = codecs, router, fan_out, state_machines
}
criterion_main!(benches);
