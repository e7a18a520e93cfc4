//! Rooms and their members: create, read, list, update, delete, join, leave, add and
//! remove members, and the membership events that keep sessions subscribed.

use crate::channel::Channel;
use crate::chat::CreateRoom;
use crate::chat::MAX_INITIAL_MEMBERS;
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::hub::Hub;
use crate::hub::lock;
use crate::ids::{UserId, new_id, validate_id};
use crate::room::{Member, Role, Room, RoomPatch};
use crate::session::SessionId;
use crate::store::User;

impl Hub {
    /// Whether `room_id` is a large room ([`HubConfig::large_room_members`](crate::HubConfig::large_room_members)).
    pub(crate) async fn is_large(&self, room_id: &str) -> Result<bool> {
        let limit = self.inner.config.large_room_members;
        Ok(self.inner.store.count_members_up_to(room_id, limit).await? >= limit)
    }

    /// Emit membership events (`join`, `leave`, `member.add`, `member.remove`) about `user`:
    /// to the room and `user:{user}` as usual, or, in a large room, to `user:{user}` only.
    /// Every node follows both routes with its subscriptions (see `membership_change`).
    pub(crate) async fn emit_membership(&self, events: Vec<Event>, user: &str, large: bool) {
        if !large {
            let adds = events.iter().any(|e| {
                e.event_type == EventType::ROOM_JOIN || e.event_type == EventType::ROOM_MEMBER_ADD
            });
            return if adds {
                self.emit_to(events, &[user]).await
            } else {
                self.emit(events).await
            };
        }
        let Ok(ch) = Channel::user(user) else { return };
        for ev in events {
            // Logged inside: the membership is committed.
            let _ = self.record_and_publish(ev, std::slice::from_ref(&ch)).await;
        }
    }

    pub(crate) async fn add_usernames(&self, events: Vec<Event>) -> Vec<Event> {
        self.add_usernames_with(events, None).await
    }

    /// Add `username` to each event's `data` that names a `user_id`, looked up in the store
    /// unless it is `known`'s (the caller has just read that user: one store round trip
    /// fewer per join and per connect).
    pub(crate) async fn add_usernames_with(
        &self,
        mut events: Vec<Event>,
        known: Option<&User>,
    ) -> Vec<Event> {
        for ev in &mut events {
            let Some(uid) = ev
                .data
                .get("user_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
            else {
                continue;
            };
            let username = match known {
                Some(u) if u.id == uid => Some(u.username.clone()),
                _ => match self.inner.store.get_user(&uid).await {
                    Ok(Some(u)) => Some(u.username),
                    _ => None,
                },
            };
            if let Some(username) = username {
                let mut data = ev.data.to_value();
                if let Some(obj) = data.as_object_mut() {
                    obj.insert("username".into(), username.into());
                    ev.data = data.into();
                }
            }
        }
        events
    }

    /// Subscribe session `id` to `room:{room_id}` as [`Hub::subscribe`] does, and return the
    /// room: one lookup of the room and of the session user's membership serves both the
    /// read check (members only) and the caller's reply (the native dialect answers `join`
    /// and `subscribe` with the room's `epoch`), instead of a second [`Hub::get_room`].
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown room, [`Error::SessionClosed`] for an unknown
    /// session, [`Error::Forbidden`] for non-members, [`Error::Invalid`] for a bad room id;
    /// broker errors.
    pub(crate) async fn subscribe_room(&self, id: SessionId, room_id: &str) -> Result<Room> {
        let user = self.session_user(id)?;
        let (room, member) = self.room_and_member(&user, room_id).await?;
        room.check_read(member.as_ref())?;
        self.add_local(id, Channel::room(room_id)?).await?;
        Ok(room)
    }

    pub(crate) async fn room_and_member(
        &self,
        actor: &str,
        room_id: &str,
    ) -> Result<(Room, Option<Member>)> {
        validate_id("room_id", room_id)?;
        let store = &self.inner.store;
        let room = store
            .get_room(room_id)
            .await?
            .ok_or_else(|| Error::not_found("room", room_id))?;
        let member = store.get_member(room_id, actor).await?;
        Ok((room, member))
    }

    pub(crate) async fn require_user(&self, user: &str) -> Result<User> {
        validate_id("user_id", user)?;
        self.inner
            .store
            .get_user(user)
            .await?
            .ok_or_else(|| Error::not_found("user", user))
    }

    /// Create a group room owned by `actor`, with `req.members` as plain members.
    /// Emits `event.room.create` (and `event.room.member.add` per extra member).
    ///
    /// # Errors
    /// [`Error::Invalid`] for bad ids/names, [`Error::NotFound`] for unknown members,
    /// [`Error::Conflict`] for a taken id.
    pub async fn create_room(&self, actor: &str, req: CreateRoom) -> Result<Room> {
        let now = self.now();
        let id = req.id.unwrap_or_else(new_id);
        let (mut room, owner, mut events) = Room::create_group(
            id,
            req.name,
            actor,
            req.is_private,
            &self.inner.config.limits,
            now,
        )?;
        if let Some(d) = req.description {
            room.update(
                Some(&owner),
                RoomPatch {
                    description: Some(d),
                    ..RoomPatch::default()
                },
                &self.inner.config.limits,
                now,
            )?;
        }
        if req.members.len() > MAX_INITIAL_MEMBERS {
            return Err(Error::invalid(
                "members",
                format!(
                    "{} users; a room starts with at most {MAX_INITIAL_MEMBERS} (add more with add_member)",
                    req.members.len()
                ),
            ));
        }
        let mut members = vec![owner.clone()];
        let mut extra: Vec<UserId> = req.members.into_iter().filter(|u| u != actor).collect();
        extra.sort();
        extra.dedup();
        for u in &extra {
            self.require_user(u).await?;
            let (m, evs) = room.add_member(Some(&owner), u, None, Role::Member, now)?;
            members.push(m);
            events.extend(evs);
        }
        self.inner.store.create_room(&room, &members).await?;
        let ch = Channel::room(&room.id)?;
        for m in &members {
            self.subscribe_user(&m.user_id, &ch).await;
        }
        let users: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
        self.emit_to(events, &users).await;
        Ok(room)
    }

    /// A room, if `actor` may see it (members always; anyone for public group rooms).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn get_room(&self, actor: &str, room_id: &str) -> Result<Room> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        if member.is_none() && (room.is_private || room.kind == crate::room::RoomKind::Direct) {
            return Err(Error::forbidden("not a member of this room"));
        }
        Ok(room)
    }

    /// Rooms `actor` is a member of, ordered by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_rooms(&self, actor: &str, offset: u32, limit: u32) -> Result<Vec<Room>> {
        self.inner
            .store
            .list_rooms(
                Some(actor),
                offset,
                limit.min(self.inner.config.max_page.max(1000)),
            )
            .await
    }

    /// Update a room (owner/admin). Emits `event.room.update`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Invalid`].
    pub async fn update_room(&self, actor: &str, room_id: &str, patch: RoomPatch) -> Result<Room> {
        let (mut room, member) = self.room_and_member(actor, room_id).await?;
        let events = room.update(
            member.as_ref(),
            patch,
            &self.inner.config.limits,
            self.now(),
        )?;
        self.inner.store.update_room(&room).await?;
        self.emit(events).await;
        Ok(room)
    }

    /// Delete a room (owner). Emits `event.room.delete`, then unsubscribes everyone.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn delete_room(&self, actor: &str, room_id: &str) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let events = room.delete(member.as_ref(), self.now())?;
        let members = self.inner.store.list_members(room_id).await?;
        self.inner.store.delete_room(room_id).await?;
        self.inner.forget_members(room_id, None);
        self.emit(events).await;
        let ch = Channel::room(room_id)?;
        for m in members {
            self.unsubscribe_user(&m.user_id, &ch).await;
        }
        Ok(())
    }

    /// `actor` joins a public group room (seed 000's room join flow). Emits
    /// `event.room.join` to the members and subscribes the actor's sessions. In a large
    /// room ([`HubConfig::large_room_members`](crate::HubConfig::large_room_members)) the event goes to `user:{actor}` only: the
    /// actor's other nodes subscribe on it, and the joining caller learns from the reply.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`] (private/direct), [`Error::Conflict`] (already a member).
    pub async fn join_room(&self, actor: &str, room_id: &str) -> Result<Member> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        self.join_read(actor, room, member).await.map(|(_, m)| m)
    }

    /// Cache (`HubConfig::membership_cache_ttl`) that `user` may post in `room`, just
    /// read or written as a member: a client sends right after it joins, and its first
    /// sends need no store lookup then (on a fresh node every sender's first message
    /// waited for one, in the committer's path).
    pub(crate) fn vouch(&self, room: &Room, member: Option<&Member>, user: &str) {
        if !self.inner.config.membership_cache_ttl.is_zero() && room.check_post(member).is_ok() {
            lock(&self.inner.may_post).insert(&room.id, user);
        }
    }

    /// [`Hub::join_room`] with the room and `actor`'s membership already read.
    pub(crate) async fn join_read(
        &self,
        actor: &str,
        room: Room,
        member: Option<Member>,
    ) -> Result<(Room, Member)> {
        let room_id = room.id.as_str();
        let user = self.require_user(actor).await?;
        let (m, events) = room.join(actor, member.as_ref(), self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.add_member(&m).await?;
        self.subscribe_user(actor, &Channel::room(room_id)?).await;
        self.vouch(&room, Some(&m), actor);
        let events = self.add_usernames_with(events, Some(&user)).await;
        self.emit_membership(events, actor, large).await;
        Ok((room, m))
    }

    /// `actor` leaves a room. Emits `event.room.leave` (the actor's sessions still get it),
    /// then unsubscribes the actor's sessions.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`] (owner, direct room).
    pub async fn leave_room(&self, actor: &str, room_id: &str) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let events = room.leave(member.as_ref(), self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.remove_member(room_id, actor).await?;
        self.inner.forget_members(room_id, Some(actor));
        let events = self.add_usernames(events).await;
        self.emit_membership(events, actor, large).await;
        self.unsubscribe_user(actor, &Channel::room(room_id)?).await;
        Ok(())
    }

    /// Members of a room, for members (and anyone for public group rooms).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn list_members(&self, actor: &str, room_id: &str) -> Result<Vec<Member>> {
        self.get_room(actor, room_id).await?;
        self.inner.store.list_members(room_id).await
    }

    /// `actor` adds `user` with `role`. Emits `event.room.member.add` to the room and the user.
    ///
    /// # Errors
    /// [`Error::NotFound`] (room, user), [`Error::Forbidden`], [`Error::Conflict`].
    pub async fn add_member(
        &self,
        actor: &str,
        room_id: &str,
        user: &str,
        role: Role,
    ) -> Result<Member> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        self.require_user(user).await?;
        let existing = self.inner.store.get_member(room_id, user).await?;
        let (m, events) =
            room.add_member(member.as_ref(), user, existing.as_ref(), role, self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.add_member(&m).await?;
        self.subscribe_user(user, &Channel::room(room_id)?).await;
        let events = self.add_usernames(events).await;
        self.emit_membership(events, user, large).await;
        Ok(m)
    }

    /// `actor` removes `user`. Emits `event.room.member.remove`, then unsubscribes the user.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn remove_member(&self, actor: &str, room_id: &str, user: &str) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let target = self.inner.store.get_member(room_id, user).await?;
        let events = room.remove_member(member.as_ref(), target.as_ref(), self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.remove_member(room_id, user).await?;
        self.inner.forget_members(room_id, Some(user));
        let events = self.add_usernames(events).await;
        self.emit_membership(events, user, large).await;
        self.unsubscribe_user(user, &Channel::room(room_id)?).await;
        Ok(())
    }
}
