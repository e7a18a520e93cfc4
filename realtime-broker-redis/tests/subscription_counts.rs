//! Subscription counts on Redis, shared by two nodes: exactly one "first" and one
//! "empty" however the nodes interleave.

mod common;

use common::{config, two_nodes};
use realtime_core::{Channel, SubscriptionCounts};

#[tokio::test]
async fn counts_are_shared_by_the_nodes() {
    let Some((a, b)) = two_nodes(config()).await else {
        return;
    };
    let (ca, cb) = (a.subscription_counts(), b.subscription_counts());
    let ch = Channel::parse("news").expect("channel");
    assert_eq!(ca.add(&ch).await.expect("add"), 1);
    assert_eq!(cb.add(&ch).await.expect("add"), 2);
    assert_eq!(cb.count(&ch).await.expect("count"), 2);
    assert_eq!(ca.remove(&ch).await.expect("remove"), 1);
    assert_eq!(cb.remove(&ch).await.expect("remove"), 0);
    assert_eq!(cb.remove(&ch).await.expect("below zero"), 0);
    assert_eq!(ca.count(&ch).await.expect("count"), 0);
}

#[tokio::test]
async fn concurrent_changes_make_one_first_and_one_empty() {
    let Some((a, b)) = two_nodes(config()).await else {
        return;
    };
    let ch = Channel::parse("busy").expect("channel");
    let (ca, cb) = (a.subscription_counts(), b.subscription_counts());
    let adds = futures_util::future::join_all((0..20).map(|i| {
        let (ca, cb, ch) = (ca.clone(), cb.clone(), ch.clone());
        async move {
            if i % 2 == 0 {
                ca.add(&ch).await
            } else {
                cb.add(&ch).await
            }
        }
    }))
    .await;
    let firsts = adds.iter().filter(|r| matches!(r, Ok(1))).count();
    assert_eq!(firsts, 1);
    let removes = futures_util::future::join_all((0..20).map(|i| {
        let (ca, cb, ch) = (ca.clone(), cb.clone(), ch.clone());
        async move {
            if i % 2 == 0 {
                ca.remove(&ch).await
            } else {
                cb.remove(&ch).await
            }
        }
    }))
    .await;
    let empties = removes.iter().filter(|r| matches!(r, Ok(0))).count();
    assert_eq!(empties, 1);
}
