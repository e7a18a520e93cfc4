//! Presence channel members on Redis, shared by two nodes: one member per user, first
//! and last sockets told apart atomically.

mod common;

use common::{config, two_nodes};
use realtime_core::{Channel, ChannelPresence, PresenceMember, SocketId};
use serde_json::json;

fn member(user: &str) -> PresenceMember {
    PresenceMember {
        user_id: user.into(),
        user_info: json!({"name": user}),
    }
}

#[tokio::test]
async fn members_are_shared_by_the_nodes() {
    let Some((a, b)) = two_nodes(config()).await else {
        return;
    };
    let (pa, pb) = (a.channel_presence(), b.channel_presence());
    let ch = Channel::parse("presence-room.7").expect("channel");
    let (a1, a2, b1) = (
        SocketId::new(1, 1),
        SocketId::new(1, 2),
        SocketId::new(2, 1),
    );

    assert!(pa.join(&ch, a1, &member("u1")).await.expect("join"));
    assert!(!pa.join(&ch, a1, &member("u1")).await.expect("again"));
    assert!(!pb.join(&ch, b1, &member("u1")).await.expect("u1 on b"));
    assert!(pb.join(&ch, a2, &member("u2")).await.expect("u2"));
    let users: Vec<String> = pa
        .members(&ch)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(users, ["u1", "u2"]);
    assert_eq!(pb.members(&ch).await.expect("members")[0], member("u1"));

    assert_eq!(
        pa.leave(&ch, a1).await.expect("leave"),
        None,
        "u1 is still on b"
    );
    assert_eq!(pa.leave(&ch, a1).await.expect("unknown"), None);
    assert_eq!(pb.leave(&ch, b1).await.expect("last"), Some(member("u1")));
    assert_eq!(pa.leave(&ch, a2).await.expect("last"), Some(member("u2")));
    assert!(pb.members(&ch).await.expect("members").is_empty());
}

#[tokio::test]
async fn concurrent_sockets_of_one_user_make_one_first_and_one_last() {
    let Some((a, b)) = two_nodes(config()).await else {
        return;
    };
    let ch = Channel::parse("presence-busy").expect("channel");
    let joins = (0..20u64).map(|i| {
        let p = if i % 2 == 0 {
            a.channel_presence()
        } else {
            b.channel_presence()
        };
        let ch = ch.clone();
        tokio::spawn(async move { p.join(&ch, SocketId::new(9, i), &member("u")).await })
    });
    let mut firsts = 0;
    for j in joins {
        firsts += usize::from(j.await.expect("task").expect("join"));
    }
    assert_eq!(firsts, 1);
    let leaves = (0..20u64).map(|i| {
        let p = if i % 2 == 0 {
            b.channel_presence()
        } else {
            a.channel_presence()
        };
        let ch = ch.clone();
        tokio::spawn(async move { p.leave(&ch, SocketId::new(9, i)).await })
    });
    let mut lasts = 0;
    for l in leaves {
        lasts += usize::from(l.await.expect("task").expect("leave").is_some());
    }
    assert_eq!(lasts, 1);
}
