//! The broker suite: delivery to subscribed nodes, in order, once, and unsubscribe.

use super::uid;
use crate::broker::{Broker, DeliveryHandler};
use crate::channel::Channel;
use crate::event::{Event, EventType};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records deliveries for [`broker_suite`].
#[derive(Default)]
pub struct Collector {
    got: Mutex<Vec<(Channel, uuid::Uuid)>>,
}

impl DeliveryHandler for Collector {
    fn deliver(&self, channel: &Channel, event: Arc<Event>) {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((channel.clone(), event.id));
    }
}

impl Collector {
    /// Deliveries so far.
    pub fn all(&self) -> Vec<(Channel, uuid::Uuid)> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count(&self, id: uuid::Uuid) -> usize {
        self.all().iter().filter(|(_, e)| *e == id).count()
    }

    /// Wait up to 5 s until event `id` has arrived `n` times.
    pub async fn wait_for(&self, id: uuid::Uuid, n: usize) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if self.count(id) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}

fn ev(n: u64) -> Arc<Event> {
    Arc::new(Event::new(
        EventType::MESSAGE_SEND,
        serde_json::json!({ "n": n }),
    ))
}

/// Run every broker check. `a` and `b` must be two nodes on the same backend.
pub async fn broker_suite(a: Arc<dyn Broker>, b: Arc<dyn Broker>) {
    let (ca, cb) = (
        Arc::new(Collector::default()),
        Arc::new(Collector::default()),
    );
    a.set_handler(ca.clone());
    b.set_handler(cb.clone());
    let ch = Channel::room(&uid("room")).expect("channel");
    let other = Channel::room(&uid("room")).expect("channel");

    // Own publishes arrive exactly once.
    a.subscribe(&ch).await.expect("subscribe");
    a.subscribe(&ch).await.expect("subscribe is idempotent");
    let e1 = ev(1);
    a.publish(&ch, e1.clone()).await.expect("publish");
    assert!(
        ca.wait_for(e1.id, 1).await,
        "publisher's own subscription receives its event"
    );

    // A second node receives only after subscribing.
    b.subscribe(&ch).await.expect("subscribe b");
    let e2 = ev(2);
    a.publish(&ch, e2.clone()).await.expect("publish");
    assert!(cb.wait_for(e2.id, 1).await, "other node receives");
    assert!(ca.wait_for(e2.id, 1).await, "own node receives");
    let e3 = ev(3);
    b.publish(&ch, e3.clone()).await.expect("publish from b");
    assert!(
        ca.wait_for(e3.id, 1).await && cb.wait_for(e3.id, 1).await,
        "b's publish reaches both"
    );

    // Unsubscribed channels are not delivered; publishing to them is fine.
    let stray = ev(4);
    a.publish(&other, stray.clone())
        .await
        .expect("publish to channel nobody holds");

    // Order per channel.
    let batch: Vec<Arc<Event>> = (10..110).map(ev).collect();
    for e in &batch {
        a.publish(&ch, e.clone()).await.expect("publish");
    }
    let last = batch.last().map(|e| e.id).expect("last");
    assert!(cb.wait_for(last, 1).await, "batch arrives");
    let seen: Vec<uuid::Uuid> = cb
        .all()
        .into_iter()
        .filter(|(c, _)| *c == ch)
        .map(|(_, e)| e)
        .collect();
    let want: Vec<uuid::Uuid> = batch.iter().map(|e| e.id).collect();
    let got: Vec<uuid::Uuid> = seen.into_iter().filter(|id| want.contains(id)).collect();
    assert_eq!(got, want, "order preserved per channel");

    // Unsubscribe stops delivery.
    b.unsubscribe(&ch).await.expect("unsubscribe");
    b.unsubscribe(&ch).await.expect("unsubscribe is idempotent");
    let after = ev(5);
    a.publish(&ch, after.clone()).await.expect("publish");
    assert!(ca.wait_for(after.id, 1).await);
    // b is still subscribed to nothing; give a slow backend a moment, then check.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cb.count(after.id), 0, "unsubscribed node receives nothing");
    for c in [&ca, &cb] {
        assert_eq!(
            c.count(stray.id),
            0,
            "unsubscribed channel delivered nothing"
        );
        for (_, id) in c.all() {
            assert!(c.count(id) <= 1, "no event delivered twice to one node");
        }
    }
    a.unsubscribe(&ch).await.expect("unsubscribe a");
}
