//! Channel authorization with a dialect's context, and presence channels' member lists
//! across nodes.

mod common;

use common::*;
use realtime_core::*;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// Allows `presence-…` as the member the client's channel data names, `private-…` when
/// `auth` is `"ok"`, and records every request's socket id.
#[derive(Default)]
struct Rules {
    seen: Mutex<Vec<SocketId>>,
}

#[async_trait::async_trait]
impl ChannelAuthorizer for Rules {
    async fn authorize(&self, r: &AuthRequest<'_>) -> Result<Authorization> {
        self.seen.lock().expect("lock").push(r.socket_id);
        if r.credentials.auth.as_deref() == Some("boom") {
            return Err(Error::Broker("authorizer down".into()));
        }
        let name = r.channel.to_string();
        Ok(if name.starts_with("presence-") {
            match &r.credentials.channel_data {
                Some(data) => Authorization::Member(serde_json::from_str(data)?),
                None => Authorization::Allow,
            }
        } else if r.credentials.auth.as_deref() == Some("ok") {
            Authorization::Allow
        } else {
            Authorization::Deny
        })
    }
}

fn as_member(user: &str) -> Credentials {
    Credentials {
        auth: Some("sig".into()),
        channel_data: Some(json!({"user_id": user, "user_info": {"name": user}}).to_string()),
    }
}

fn ids(members: &[PresenceMember]) -> Vec<&str> {
    members.iter().map(|m| m.user_id.as_str()).collect()
}

#[tokio::test]
async fn presence_members_across_two_nodes() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let presence: Arc<dyn ChannelPresence> = Arc::new(MemoryChannelPresence::new());
    let rules = Arc::new(Rules::default());
    let node = || {
        Hub::builder(store.clone(), Arc::new(bus.node()))
            .channel_authorizer(rules.clone())
            .channel_presence(presence.clone())
            .build()
    };
    let (node_a, node_b) = (node(), node());
    let channel = Channel::parse("presence-room.1").expect("channel");
    let anon = || ConnectOptions::anonymous();

    let mut a = node_a.connect(anon()).await.expect("a");
    let joined = node_a
        .subscribe(a.id(), &channel, &as_member("u1"))
        .await
        .expect("a joins");
    let Subscribed::Presence { me, members } = joined else {
        panic!("{joined:?}")
    };
    assert_eq!((me.user_id.as_str(), ids(&members)), ("u1", vec!["u1"]));
    assert_eq!(me.user_info, json!({"name": "u1"}));
    assert_eq!(
        rules.seen.lock().expect("lock").last(),
        Some(&a.socket_id())
    );

    let mut b = node_b.connect(anon()).await.expect("b");
    let joined = node_b
        .subscribe(b.id(), &channel, &as_member("u2"))
        .await
        .expect("b joins");
    let Subscribed::Presence { members, .. } = joined else {
        panic!("{joined:?}")
    };
    assert_eq!(ids(&members), ["u1", "u2"]);
    let added = next(&mut a).await;
    assert_eq!(added.event_type, EventType::CHANNEL_MEMBER_ADD);
    assert_eq!(added.data["user_id"], "u2");
    assert_eq!(added.data["user_info"]["name"], "u2");
    assert!(quiet(&mut b).await, "no member_added to the joining socket");

    // u1's second socket, on the other node: already a member, nothing announced.
    let mut c = node_b.connect(anon()).await.expect("c");
    node_b
        .subscribe(c.id(), &channel, &as_member("u1"))
        .await
        .expect("c joins");
    assert!(quiet(&mut a).await && quiet(&mut b).await);
    assert_eq!(
        ids(&node_a.presence_members(&channel).await.expect("list")),
        ["u1", "u2"]
    );

    // u1 leaves with one socket: still a member through the other.
    node_a.unsubscribe(a.id(), &channel).await.expect("leave");
    assert!(quiet(&mut b).await && quiet(&mut c).await);
    // ... and with the last one (a disconnect): removed, announced on both nodes.
    drop(c);
    let removed = next(&mut b).await;
    assert_eq!(removed.event_type, EventType::CHANNEL_MEMBER_REMOVE);
    assert_eq!(removed.data["user_id"], "u1");
    assert_eq!(
        ids(&node_b.presence_members(&channel).await.expect("list")),
        ["u2"]
    );
    assert!(quiet(&mut a).await, "a left the channel: it hears nothing");
}

#[tokio::test]
async fn authorization_answers_and_errors() {
    let rules = Arc::new(Rules::default());
    let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .channel_authorizer(rules.clone())
        .build();
    let anon = hub
        .connect(ConnectOptions::anonymous())
        .await
        .expect("anonymous");
    let user = hub
        .connect(ConnectOptions::user(who("ann")))
        .await
        .expect("user");
    let private = Channel::parse("private-orders").expect("channel");
    let presence = Channel::parse("presence-lobby").expect("channel");

    // A signature the authorizer accepts opens a private channel, to anyone.
    let ok = Credentials {
        auth: Some("ok".into()),
        channel_data: None,
    };
    assert_eq!(
        hub.subscribe(anon.id(), &private, &ok).await.expect("ok"),
        Subscribed::Channel
    );
    let err = hub
        .subscribe(user.id(), &private, &Credentials::NONE)
        .await
        .expect_err("denied");
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    // The authorizer's own error refuses with that error.
    let boom = Credentials {
        auth: Some("boom".into()),
        channel_data: None,
    };
    let err = hub
        .subscribe(user.id(), &private, &boom)
        .await
        .expect_err("authorizer error");
    assert!(matches!(err, Error::Broker(_)), "{err:?}");

    // `Allow` on a presence channel joins the session's own user, with no info ...
    let Subscribed::Presence { me, members } = hub
        .subscribe(user.id(), &presence, &Credentials::NONE)
        .await
        .expect("allowed")
    else {
        panic!("not presence")
    };
    assert_eq!(
        me,
        PresenceMember {
            user_id: "ann".into(),
            user_info: serde_json::Value::Null
        }
    );
    assert_eq!(ids(&members), ["ann"]);
    // ... and is refused for an anonymous session, which has none.
    let err = hub
        .subscribe(anon.id(), &presence, &Credentials::NONE)
        .await
        .expect_err("no member");
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    // A member id that is not a valid id is refused.
    let bad = Credentials {
        auth: None,
        channel_data: Some(json!({"user_id": "a b"}).to_string()),
    };
    let err = hub
        .subscribe(anon.id(), &presence, &bad)
        .await
        .expect_err("bad id");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    assert_eq!(
        ids(&hub.presence_members(&presence).await.expect("list")),
        ["ann"]
    );
}

#[tokio::test]
async fn memory_channel_presence_counts_sockets_per_user() {
    let p = MemoryChannelPresence::new();
    let ch = Channel::parse("presence-x").expect("channel");
    let m = PresenceMember {
        user_id: "u".into(),
        user_info: json!(1),
    };
    let (s1, s2) = (SocketId::new(1, 1), SocketId::new(2, 1));
    assert!(p.join(&ch, s1, &m).await.expect("join"));
    assert!(
        !p.join(&ch, s1, &m).await.expect("again"),
        "same socket twice"
    );
    assert!(!p.join(&ch, s2, &m).await.expect("second socket"));
    assert_eq!(p.leave(&ch, s1).await.expect("leave"), None);
    assert_eq!(p.leave(&ch, s1).await.expect("unknown"), None);
    assert_eq!(p.leave(&ch, s2).await.expect("last"), Some(m));
    assert!(p.members(&ch).await.expect("list").is_empty());
}
