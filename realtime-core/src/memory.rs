//! In-process backends: [`MemoryStore`] and [`MemoryBroker`], so a Hub runs with nothing
//! else. Both pass the conformance suites in [`crate::testing`].
//!
//! `MemoryStore` keeps everything in one mutex-guarded map set (no lock is held across an
//! await). `MemoryBroker` delivers to its own handler; brokers made from one
//! [`MemoryBus`] act as the nodes of one cluster (the in-process stub for multi-node tests).

use crate::broker::{DeliveryHandler, LocalSubscriptions, Publisher, Subscriber};
use crate::channel::Channel;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::MessageId;
use crate::message::{Message, NewMessage, Reaction};
use crate::presence::UserStatus;
use crate::room::{Invite, InviteState, Member, Room};
use crate::store::{EventQuery, Favorite, HistoryPage, Inserted, Store, User};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock, Weak};

/// How many events [`MemoryStore`] keeps in its event history by default.
pub const DEFAULT_EVENT_HISTORY: usize = 10_000;

#[derive(Default)]
struct Data {
    users: BTreeMap<String, User>,
    rooms: BTreeMap<String, Room>,
    members: BTreeMap<(String, String), Member>,
    invites: HashMap<String, Invite>,
    messages: HashMap<String, Message>,
    room_messages: HashMap<String, Vec<String>>,
    client_ids: HashMap<(String, String, String), String>,
    reactions: BTreeMap<(String, String, String), Reaction>,
    read: HashMap<(String, String), u64>,
    favorites: BTreeMap<(String, String, &'static str), Favorite>,
    events: VecDeque<Event>,
}

/// A [`Store`] in memory. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
    event_capacity: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store keeping the last [`DEFAULT_EVENT_HISTORY`] events.
    pub fn new() -> Self {
        Self::with_event_capacity(DEFAULT_EVENT_HISTORY)
    }

    /// An empty store keeping the last `capacity` events.
    pub fn with_event_capacity(capacity: usize) -> Self {
        MemoryStore {
            data: Arc::default(),
            event_capacity: capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn page<T: Clone>(items: impl Iterator<Item = T>, offset: u32, limit: u32) -> Vec<T> {
    items.skip(offset as usize).take(limit as usize).collect()
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<()> {
        let mut d = self.lock();
        if d.users.contains_key(&user.id) || d.users.values().any(|u| u.username == user.username) {
            return Err(Error::Conflict {
                kind: "user",
                id: user.id.clone(),
            });
        }
        d.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let mut d = self.lock();
        if d.users
            .values()
            .any(|u| u.username == user.username && u.id != user.id)
        {
            return Err(Error::Conflict {
                kind: "user",
                id: user.username.clone(),
            });
        }
        let u = d
            .users
            .get_mut(&user.id)
            .ok_or_else(|| Error::not_found("user", &user.id))?;
        let created_at = u.created_at;
        *u = user.clone();
        u.created_at = created_at;
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        Ok(self.lock().users.remove(id).is_some())
    }

    async fn list_users(&self, offset: u32, limit: u32) -> Result<Vec<User>> {
        Ok(page(self.lock().users.values().cloned(), offset, limit))
    }

    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        last_seen: Timestamp,
    ) -> Result<()> {
        let mut d = self.lock();
        let u = d
            .users
            .get_mut(id)
            .ok_or_else(|| Error::not_found("user", id))?;
        u.status = status;
        u.last_seen = Some(last_seen);
        Ok(())
    }

    async fn create_room(&self, room: &Room, members: &[Member]) -> Result<()> {
        let mut d = self.lock();
        if d.rooms.contains_key(&room.id) {
            return Err(Error::Conflict {
                kind: "room",
                id: room.id.clone(),
            });
        }
        d.rooms.insert(room.id.clone(), room.clone());
        for m in members {
            d.members
                .insert((m.room_id.clone(), m.user_id.clone()), m.clone());
        }
        Ok(())
    }

    async fn get_room(&self, id: &str) -> Result<Option<Room>> {
        Ok(self.lock().rooms.get(id).cloned())
    }

    async fn update_room(&self, room: &Room) -> Result<()> {
        let mut d = self.lock();
        let r = d
            .rooms
            .get_mut(&room.id)
            .ok_or_else(|| Error::not_found("room", &room.id))?;
        *r = room.clone();
        Ok(())
    }

    async fn delete_room(&self, id: &str) -> Result<bool> {
        let mut d = self.lock();
        if d.rooms.remove(id).is_none() {
            return Ok(false);
        }
        d.members.retain(|(r, _), _| r != id);
        d.invites.retain(|_, i| i.room_id != id);
        let ids: HashSet<String> = d
            .room_messages
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .collect();
        d.messages.retain(|k, _| !ids.contains(k));
        d.client_ids.retain(|(r, _, _), _| r != id);
        d.reactions.retain(|(m, _, _), _| !ids.contains(m));
        d.read.retain(|(r, _), _| r != id);
        d.favorites
            .retain(|(_, t, k), _| !(*k == "ROOM" && t == id));
        Ok(true)
    }

    async fn list_rooms(
        &self,
        member_of: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Room>> {
        let d = self.lock();
        let it = d.rooms.values().filter(|r| {
            member_of.is_none_or(|u| d.members.contains_key(&(r.id.clone(), u.to_owned())))
        });
        Ok(page(it.cloned(), offset, limit))
    }

    async fn add_member(&self, member: &Member) -> Result<()> {
        let mut d = self.lock();
        if !d.rooms.contains_key(&member.room_id) {
            return Err(Error::not_found("room", &member.room_id));
        }
        let key = (member.room_id.clone(), member.user_id.clone());
        if d.members.contains_key(&key) {
            return Err(Error::Conflict {
                kind: "member",
                id: member.user_id.clone(),
            });
        }
        d.members.insert(key, member.clone());
        Ok(())
    }

    async fn get_member(&self, room_id: &str, user_id: &str) -> Result<Option<Member>> {
        Ok(self
            .lock()
            .members
            .get(&(room_id.to_owned(), user_id.to_owned()))
            .cloned())
    }

    async fn remove_member(&self, room_id: &str, user_id: &str) -> Result<bool> {
        Ok(self
            .lock()
            .members
            .remove(&(room_id.to_owned(), user_id.to_owned()))
            .is_some())
    }

    async fn list_members(&self, room_id: &str) -> Result<Vec<Member>> {
        let d = self.lock();
        let mut v: Vec<Member> = d
            .members
            .values()
            .filter(|m| m.room_id == room_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.joined_at, &a.user_id).cmp(&(b.joined_at, &b.user_id)));
        Ok(v)
    }

    async fn count_members(&self, room_id: &str) -> Result<u64> {
        self.count_members_up_to(room_id, u64::MAX).await
    }

    async fn count_members_up_to(&self, room_id: &str, limit: u64) -> Result<u64> {
        let d = self.lock();
        let from = (room_id.to_owned(), String::new());
        Ok(d.members
            .range(from..)
            .take_while(|((r, _), _)| r == room_id)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .count() as u64)
    }

    async fn create_invite(&self, invite: &Invite) -> Result<()> {
        let mut d = self.lock();
        if !d.rooms.contains_key(&invite.room_id) {
            return Err(Error::not_found("room", &invite.room_id));
        }
        if d.invites.contains_key(&invite.code) {
            return Err(Error::Conflict {
                kind: "invite",
                id: invite.code.clone(),
            });
        }
        d.invites.insert(invite.code.clone(), invite.clone());
        Ok(())
    }

    async fn get_invite(&self, code: &str) -> Result<Option<Invite>> {
        Ok(self.lock().invites.get(code).cloned())
    }

    async fn answer_invite(&self, invite: &Invite, member: Option<&Member>) -> Result<()> {
        let mut d = self.lock();
        let stored = d
            .invites
            .get(&invite.code)
            .ok_or_else(|| Error::not_found("invite", &invite.code))?;
        if stored.state != InviteState::Pending {
            return Err(Error::Conflict {
                kind: "invite",
                id: invite.code.clone(),
            });
        }
        if let Some(m) = member {
            let key = (m.room_id.clone(), m.user_id.clone());
            if d.members.contains_key(&key) {
                return Err(Error::Conflict {
                    kind: "member",
                    id: m.user_id.clone(),
                });
            }
            d.members.insert(key, m.clone());
        }
        d.invites.insert(invite.code.clone(), invite.clone());
        Ok(())
    }

    async fn insert_message(&self, new: NewMessage) -> Result<Inserted> {
        self.insert_messages(vec![new])
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("empty insert result".into()))
    }

    async fn insert_messages(&self, batch: Vec<NewMessage>) -> Result<Vec<Inserted>> {
        let mut d = self.lock();
        // Check everything first so a failure stores nothing.
        let mut ids = HashSet::new();
        for new in &batch {
            if !d.rooms.contains_key(&new.room_id) {
                return Err(Error::not_found("room", &new.room_id));
            }
            if d.messages.contains_key(&new.id) || !ids.insert(new.id.as_str()) {
                return Err(Error::Conflict {
                    kind: "message",
                    id: new.id.clone(),
                });
            }
        }
        let mut out = Vec::with_capacity(batch.len());
        for new in batch {
            let key = new
                .client_id
                .as_ref()
                .map(|c| (new.room_id.clone(), new.sender_id.clone(), c.clone()));
            if let Some(k) = &key
                && let Some(id) = d.client_ids.get(k)
            {
                let message = d
                    .messages
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::Internal("dangling client id".into()))?;
                out.push(Inserted {
                    message,
                    created: false,
                });
                continue;
            }
            let list = d.room_messages.entry(new.room_id.clone()).or_default();
            let seq = list.len() as u64 + 1;
            list.push(new.id.clone());
            let message = Message::from_new(new, seq);
            if let Some(k) = key {
                d.client_ids.insert(k, message.id.clone());
            }
            d.messages.insert(message.id.clone(), message.clone());
            out.push(Inserted {
                message,
                created: true,
            });
        }
        Ok(out)
    }

    async fn get_message(&self, id: &str) -> Result<Option<Message>> {
        Ok(self.lock().messages.get(id).cloned())
    }

    async fn update_message(&self, message: &Message) -> Result<()> {
        let mut d = self.lock();
        let m = d
            .messages
            .get_mut(&message.id)
            .ok_or_else(|| Error::not_found("message", &message.id))?;
        m.content.clone_from(&message.content);
        m.status = message.status;
        m.edited_at = message.edited_at;
        m.deleted_at = message.deleted_at;
        Ok(())
    }

    async fn history(&self, room_id: &str, before: Option<u64>, limit: u32) -> Result<HistoryPage> {
        let d = self.lock();
        let Some(list) = d.room_messages.get(room_id) else {
            return Ok(HistoryPage {
                messages: Vec::new(),
                has_more: false,
            });
        };
        let end = before.map_or(list.len(), |b| {
            (b.saturating_sub(1) as usize).min(list.len())
        });
        let start = end.saturating_sub(limit as usize);
        let messages = list[start..end]
            .iter()
            .filter_map(|id| d.messages.get(id).cloned())
            .collect();
        Ok(HistoryPage {
            messages,
            has_more: start > 0,
        })
    }

    async fn messages_after(&self, room_id: &str, after: u64, limit: u32) -> Result<Vec<Message>> {
        let d = self.lock();
        let Some(list) = d.room_messages.get(room_id) else {
            return Ok(Vec::new());
        };
        let start = (after as usize).min(list.len());
        Ok(list[start..]
            .iter()
            .take(limit as usize)
            .filter_map(|id| d.messages.get(id).cloned())
            .collect())
    }

    async fn latest_seq(&self, room_id: &str) -> Result<u64> {
        Ok(self
            .lock()
            .room_messages
            .get(room_id)
            .map_or(0, |l| l.len() as u64))
    }

    async fn add_reaction(&self, reaction: &Reaction) -> Result<bool> {
        let mut d = self.lock();
        if !d.messages.contains_key(&reaction.message_id) {
            return Err(Error::not_found("message", &reaction.message_id));
        }
        let key = (
            reaction.message_id.clone(),
            reaction.user_id.clone(),
            reaction.emoji.clone(),
        );
        if d.reactions.contains_key(&key) {
            return Ok(false);
        }
        d.reactions.insert(key, reaction.clone());
        Ok(true)
    }

    async fn remove_reaction(&self, message_id: &str, user_id: &str, emoji: &str) -> Result<bool> {
        Ok(self
            .lock()
            .reactions
            .remove(&(message_id.to_owned(), user_id.to_owned(), emoji.to_owned()))
            .is_some())
    }

    async fn list_reactions(&self, message_id: &MessageId) -> Result<Vec<Reaction>> {
        let d = self.lock();
        let mut v: Vec<Reaction> = d
            .reactions
            .values()
            .filter(|r| &r.message_id == message_id)
            .cloned()
            .collect();
        v.sort_by_key(|a| a.created_at);
        Ok(v)
    }

    async fn advance_read_pointer(
        &self,
        room_id: &str,
        user_id: &str,
        seq: u64,
        _now: Timestamp,
    ) -> Result<u64> {
        let mut d = self.lock();
        let p = d
            .read
            .entry((room_id.to_owned(), user_id.to_owned()))
            .or_default();
        *p = (*p).max(seq);
        Ok(*p)
    }

    async fn read_pointer(&self, room_id: &str, user_id: &str) -> Result<u64> {
        Ok(self
            .lock()
            .read
            .get(&(room_id.to_owned(), user_id.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    async fn unread_count(&self, room_id: &str, user_id: &str) -> Result<u64> {
        let d = self.lock();
        let p = d
            .read
            .get(&(room_id.to_owned(), user_id.to_owned()))
            .copied()
            .unwrap_or(0);
        let Some(list) = d.room_messages.get(room_id) else {
            return Ok(0);
        };
        Ok(list
            .iter()
            .skip(p as usize)
            .filter_map(|id| d.messages.get(id))
            .filter(|m| m.sender_id != user_id && !m.is_deleted())
            .count() as u64)
    }

    async fn set_favorite(&self, favorite: &Favorite, on: bool) -> Result<bool> {
        let mut d = self.lock();
        let key = (
            favorite.user_id.clone(),
            favorite.target_id.clone(),
            favorite.kind.as_str(),
        );
        Ok(if on {
            match d.favorites.entry(key) {
                std::collections::btree_map::Entry::Occupied(_) => false,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(favorite.clone());
                    true
                }
            }
        } else {
            d.favorites.remove(&key).is_some()
        })
    }

    async fn list_favorites(&self, user_id: &str) -> Result<Vec<Favorite>> {
        let d = self.lock();
        let mut v: Vec<Favorite> = d
            .favorites
            .values()
            .filter(|f| f.user_id == user_id)
            .cloned()
            .collect();
        v.sort_by_key(|a| a.created_at);
        Ok(v)
    }

    async fn append_event(&self, event: &Event) -> Result<()> {
        let mut d = self.lock();
        if self.event_capacity == 0 {
            return Ok(());
        }
        while d.events.len() >= self.event_capacity {
            d.events.pop_front();
        }
        d.events.push_back(event.clone());
        Ok(())
    }

    async fn list_events(&self, q: &EventQuery) -> Result<Vec<Event>> {
        let d = self.lock();
        Ok(d.events
            .iter()
            .rev()
            .filter(|e| {
                q.type_prefix
                    .as_deref()
                    .is_none_or(|p| e.event_type.as_str().starts_with(p))
            })
            .filter(|e| q.room_id.is_none() || e.room_id == q.room_id)
            .filter(|e| q.user_id.is_none() || e.user_id == q.user_id)
            .take(q.limit.min(1000) as usize)
            .cloned()
            .collect())
    }
}

/// Connects [`MemoryBroker`]s as the nodes of one in-process cluster.
#[derive(Clone, Default)]
pub struct MemoryBus {
    nodes: Arc<RwLock<Vec<Weak<BrokerInner>>>>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBus")
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new node on this bus.
    pub fn node(&self) -> MemoryBroker {
        let b = MemoryBroker::new();
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|w| w.strong_count() > 0);
        nodes.push(Arc::downgrade(&b.inner));
        drop(nodes);
        *b.inner.bus.write().unwrap_or_else(|p| p.into_inner()) = Some(self.clone());
        b
    }
}

struct BrokerInner {
    local: LocalSubscriptions,
    bus: RwLock<Option<MemoryBus>>,
}

/// A [`crate::Broker`] inside one process. Alone it loops publishes back to its own
/// subscriptions; made by [`MemoryBus::node`] it also reaches the bus's other nodes.
/// Delivery is synchronous, inside `publish`.
#[derive(Clone)]
pub struct MemoryBroker {
    inner: Arc<BrokerInner>,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBroker")
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A standalone broker.
    pub fn new() -> Self {
        MemoryBroker {
            inner: Arc::new(BrokerInner {
                local: LocalSubscriptions::default(),
                bus: RwLock::new(None),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Publisher for MemoryBroker {
    async fn publish(&self, channel: &Channel, event: Arc<Event>) -> Result<()> {
        let bus = self
            .inner
            .bus
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match bus {
            None => self.inner.local.deliver(channel, event),
            Some(bus) => {
                let nodes: Vec<Arc<BrokerInner>> = bus
                    .nodes
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter_map(Weak::upgrade)
                    .collect();
                for n in nodes {
                    n.local.deliver(channel, event.clone());
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Subscriber for MemoryBroker {
    fn set_handler(&self, handler: Arc<dyn DeliveryHandler>) {
        self.inner.local.set_handler(handler);
    }

    async fn subscribe(&self, channel: &Channel) -> Result<()> {
        self.inner.local.add(channel);
        Ok(())
    }

    async fn unsubscribe(&self, channel: &Channel) -> Result<()> {
        self.inner.local.remove(channel);
        Ok(())
    }
}
