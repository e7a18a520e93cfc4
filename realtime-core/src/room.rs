//! Rooms: creation, membership with roles, invites and direct rooms (seeds 000, 004).
//!
//! Every transition is a pure function of the current state, the acting user's
//! membership and `now`; it returns the events it causes or a typed error. The
//! [`crate::hub::Hub`] loads the state from the [`crate::Store`], calls the transition and
//! writes the result back.
//!
//! Permissions:
//!
//! | action | owner | admin | member | non-member |
//! |---|---|---|---|---|
//! | read, post | yes | yes | yes | no |
//! | update room | yes | yes | no | no |
//! | delete room | yes | no | no | no |
//! | add member (as member) | yes | yes | no | no |
//! | add member (as admin) | yes | no | no | no |
//! | remove member | yes | members only | no | no |
//! | create invite | yes | yes | no | no |
//! | join | – | – | – | public group rooms only |
//! | leave | no (delete the room instead) | yes | yes | – |
//!
//! Direct rooms (seed 004) have exactly two members, both `member`, a deterministic id
//! ([`direct_room_id`]), and can be neither joined, left, updated nor given members.

use crate::clock::{Timestamp, add};
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::ids::{RoomId, UserId, validate_id};
use crate::message::Limits;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Group or direct (seed 004: `"GROUP" | "DIRECT"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoomKind {
    /// A named room with any number of members.
    #[default]
    Group,
    /// A one-to-one room between two users.
    Direct,
}

impl RoomKind {
    /// `GROUP` or `DIRECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "GROUP",
            RoomKind::Direct => "DIRECT",
        }
    }

    /// Parse `GROUP` / `DIRECT` (any case).
    ///
    /// # Errors
    /// [`Error::Invalid`] otherwise.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "GROUP" => Ok(RoomKind::Group),
            "DIRECT" => Ok(RoomKind::Direct),
            _ => Err(Error::invalid("type", "must be GROUP or DIRECT")),
        }
    }
}

/// A member's role, serialized lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May do everything, including deleting the room.
    Owner,
    /// May update the room, add and remove plain members, and invite.
    Admin,
    /// May read and post.
    Member,
}

impl Role {
    /// `owner`, `admin` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Parse a lowercase role name.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(Error::invalid("role", "must be owner, admin or member")),
        }
    }

    fn is_manager(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// The id.
    pub id: RoomId,
    /// Display name.
    pub name: String,
    /// Group or direct.
    #[serde(rename = "type")]
    pub kind: RoomKind,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Private rooms can be entered only by invite or by an admin adding you.
    #[serde(default)]
    pub is_private: bool,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// The history generation: a reconnecting client's `since.epoch` must match it for
    /// recovery. Set at creation (a UUID); changes only if a store loses the room's history.
    pub epoch: String,
}

/// A room membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The room.
    pub room_id: RoomId,
    /// The user.
    pub user_id: UserId,
    /// The role.
    pub role: Role,
    /// When the user joined.
    pub joined_at: Timestamp,
}

/// Changes to a room; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPatch {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New privacy.
    #[serde(default)]
    pub is_private: Option<bool>,
}

fn member_event(
    ty: EventType,
    room: &Room,
    user: &str,
    role: Role,
    actor: &str,
    now: Timestamp,
) -> Event {
    Event::at(
        ty,
        serde_json::json!({ "room_id": room.id, "user_id": user, "role": role }),
        now,
    )
    .with_user(actor)
    .with_room(room.id.clone())
}

fn require_member(actor: Option<&Member>) -> Result<Role> {
    actor
        .map(|m| m.role)
        .ok_or_else(|| Error::forbidden("not a member of this room"))
}

impl Room {
    /// Create a group room with `creator` as owner.
    /// Returns the room, the owner's membership and `event.room.create`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad id or name.
    pub fn create_group(
        id: RoomId,
        name: String,
        creator: &str,
        is_private: bool,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<(Room, Member, Vec<Event>)> {
        validate_id("room_id", &id)?;
        validate_id("user_id", creator)?;
        limits.check_name("name", &name)?;
        let room = Room {
            id,
            name,
            kind: RoomKind::Group,
            description: None,
            is_private,
            created_by: creator.to_owned(),
            created_at: now,
            updated_at: now,
            epoch: uuid::Uuid::new_v4().simple().to_string(),
        };
        let owner = Member {
            room_id: room.id.clone(),
            user_id: creator.to_owned(),
            role: Role::Owner,
            joined_at: now,
        };
        let ev = room.event(EventType::ROOM_CREATE, creator, now);
        Ok((room, owner, vec![ev]))
    }

    /// Create the direct room of `a` and `b` (id from [`direct_room_id`]), both members.
    ///
    /// # Errors
    /// [`Error::Invalid`] for bad ids or `a == b`.
    pub fn create_direct(
        a: &str,
        b: &str,
        now: Timestamp,
    ) -> Result<(Room, [Member; 2], Vec<Event>)> {
        let id = direct_room_id(a, b)?;
        let room = Room {
            id: id.clone(),
            name: format!("{a}, {b}"),
            kind: RoomKind::Direct,
            description: None,
            is_private: true,
            created_by: a.to_owned(),
            created_at: now,
            updated_at: now,
            epoch: uuid::Uuid::new_v4().simple().to_string(),
        };
        let m = |u: &str| Member {
            room_id: id.clone(),
            user_id: u.to_owned(),
            role: Role::Member,
            joined_at: now,
        };
        let ev = room.event(EventType::ROOM_CREATE, a, now);
        Ok((room, [m(a), m(b)], vec![ev]))
    }

    /// Check that `actor` may read the room's history or subscribe to it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for non-members.
    pub fn check_read(&self, actor: Option<&Member>) -> Result<()> {
        require_member(actor).map(drop)
    }

    /// Check that `actor` may post.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for non-members.
    pub fn check_post(&self, actor: Option<&Member>) -> Result<()> {
        require_member(actor).map(drop)
    }

    /// Apply `patch`. Returns `event.room.update`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless owner/admin of a group room; [`Error::Invalid`] for a bad name.
    pub fn update(
        &mut self,
        actor: Option<&Member>,
        patch: RoomPatch,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let role = require_member(actor)?;
        if self.kind == RoomKind::Direct || !role.is_manager() {
            return Err(Error::forbidden(
                "only a group room's owner or admin can update it",
            ));
        }
        if let Some(name) = &patch.name {
            limits.check_name("name", name)?;
        }
        if let Some(d) = &patch.description {
            Limits::check_text("description", d, limits.max_description_bytes)?;
        }
        if let Some(n) = patch.name {
            self.name = n;
        }
        if let Some(d) = patch.description {
            self.description = Some(d);
        }
        if let Some(p) = patch.is_private {
            self.is_private = p;
        }
        self.updated_at = now;
        let actor_id = actor.map(|m| m.user_id.as_str()).unwrap_or_default();
        Ok(vec![self.event(EventType::ROOM_UPDATE, actor_id, now)])
    }

    /// Delete the room. Returns `event.room.delete`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the owner of a group room.
    pub fn delete(&self, actor: Option<&Member>, now: Timestamp) -> Result<Vec<Event>> {
        let role = require_member(actor)?;
        if self.kind == RoomKind::Direct || role != Role::Owner {
            return Err(Error::forbidden("only a group room's owner can delete it"));
        }
        let actor_id = actor.map(|m| m.user_id.as_str()).unwrap_or_default();
        Ok(vec![self.event(EventType::ROOM_DELETE, actor_id, now)])
    }

    /// `user` joins by themselves. `existing` is their current membership.
    /// Returns the new membership and `event.room.join`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when already a member; [`Error::Forbidden`] for private or direct rooms.
    pub fn join(
        &self,
        user: &str,
        existing: Option<&Member>,
        now: Timestamp,
    ) -> Result<(Member, Vec<Event>)> {
        validate_id("user_id", user)?;
        if existing.is_some() {
            return Err(Error::Conflict {
                kind: "member",
                id: user.to_owned(),
            });
        }
        if self.kind == RoomKind::Direct || self.is_private {
            return Err(Error::forbidden("this room can only be entered by invite"));
        }
        let m = Member {
            room_id: self.id.clone(),
            user_id: user.to_owned(),
            role: Role::Member,
            joined_at: now,
        };
        let ev = member_event(EventType::ROOM_JOIN, self, user, m.role, user, now);
        Ok((m, vec![ev]))
    }

    /// `member` leaves by themselves. Returns `event.room.leave`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when not a member; [`Error::Forbidden`] for the owner or a direct room.
    pub fn leave(&self, member: Option<&Member>, now: Timestamp) -> Result<Vec<Event>> {
        let m = member.ok_or_else(|| Error::not_found("member", "(acting user)"))?;
        if self.kind == RoomKind::Direct {
            return Err(Error::forbidden("a direct room cannot be left"));
        }
        if m.role == Role::Owner {
            return Err(Error::forbidden(
                "the owner cannot leave; delete the room instead",
            ));
        }
        Ok(vec![member_event(
            EventType::ROOM_LEAVE,
            self,
            &m.user_id,
            m.role,
            &m.user_id,
            now,
        )])
    }

    /// `actor` adds `target` with `role`. Returns the membership and `event.room.member.add`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] per the table above (nobody can add an owner);
    /// [`Error::Conflict`] when `target` is already a member.
    pub fn add_member(
        &self,
        actor: Option<&Member>,
        target: &str,
        target_existing: Option<&Member>,
        role: Role,
        now: Timestamp,
    ) -> Result<(Member, Vec<Event>)> {
        validate_id("user_id", target)?;
        let actor_role = require_member(actor)?;
        let allowed = self.kind == RoomKind::Group
            && match (actor_role, role) {
                (_, Role::Owner) => false,
                (Role::Owner, _) => true,
                (Role::Admin, Role::Member) => true,
                _ => false,
            };
        if !allowed {
            return Err(Error::forbidden(
                "not allowed to add members with this role",
            ));
        }
        if target_existing.is_some() {
            return Err(Error::Conflict {
                kind: "member",
                id: target.to_owned(),
            });
        }
        let m = Member {
            room_id: self.id.clone(),
            user_id: target.to_owned(),
            role,
            joined_at: now,
        };
        let actor_id = actor.map(|a| a.user_id.as_str()).unwrap_or_default();
        let ev = member_event(
            EventType::ROOM_MEMBER_ADD,
            self,
            target,
            role,
            actor_id,
            now,
        );
        Ok((m, vec![ev]))
    }

    /// `actor` removes `target`. Returns `event.room.member.remove`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `target` is not a member; [`Error::Forbidden`] per the table
    /// (the owner cannot be removed; admins remove plain members only).
    pub fn remove_member(
        &self,
        actor: Option<&Member>,
        target: Option<&Member>,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let actor_role = require_member(actor)?;
        let t = target.ok_or_else(|| Error::not_found("member", "(target)"))?;
        let allowed = self.kind == RoomKind::Group
            && match (actor_role, t.role) {
                (_, Role::Owner) => false,
                (Role::Owner, _) => true,
                (Role::Admin, Role::Member) => true,
                _ => false,
            };
        if !allowed {
            return Err(Error::forbidden("not allowed to remove this member"));
        }
        let actor_id = actor.map(|a| a.user_id.as_str()).unwrap_or_default();
        Ok(vec![member_event(
            EventType::ROOM_MEMBER_REMOVE,
            self,
            &t.user_id,
            t.role,
            actor_id,
            now,
        )])
    }

    /// `actor` creates an invite with `code`, valid for `ttl`, optionally for one `invitee`.
    /// Returns the invite and `event.room.invite.create`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless owner/admin of a group room; [`Error::Invalid`] for a bad code.
    pub fn create_invite(
        &self,
        actor: Option<&Member>,
        code: String,
        invitee: Option<UserId>,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(Invite, Vec<Event>)> {
        validate_id("code", &code)?;
        if let Some(i) = &invitee {
            validate_id("invitee", i)?;
        }
        let role = require_member(actor)?;
        if self.kind == RoomKind::Direct || !role.is_manager() {
            return Err(Error::forbidden(
                "only a group room's owner or admin can invite",
            ));
        }
        let actor_id = actor.map(|a| a.user_id.clone()).unwrap_or_default();
        let invite = Invite {
            code,
            room_id: self.id.clone(),
            created_by: actor_id.clone(),
            invitee,
            created_at: now,
            expires_at: add(now, ttl),
            state: InviteState::Pending,
            responded_by: None,
            responded_at: None,
        };
        let ev = invite.event(EventType::ROOM_INVITE_CREATE, &actor_id, now);
        Ok((invite, vec![ev]))
    }

    /// The room as event data.
    pub fn event(&self, ty: EventType, actor: &str, now: Timestamp) -> Event {
        Event::at(ty, serde_json::to_value(self).unwrap_or_default(), now)
            .with_user(actor)
            .with_room(self.id.clone())
    }
}

/// Where an invite stands. `Expired` is never stored: it is derived from `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InviteState {
    /// Waiting for an answer.
    Pending,
    /// Accepted; the user became a member.
    Accepted,
    /// Rejected.
    Rejected,
    /// Past `expires_at` while pending (derived).
    Expired,
}

impl InviteState {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            InviteState::Pending => "pending",
            InviteState::Accepted => "accepted",
            InviteState::Rejected => "rejected",
            InviteState::Expired => "expired",
        }
    }

    /// Parse a lowercase name.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown state.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(InviteState::Pending),
            "accepted" => Ok(InviteState::Accepted),
            "rejected" => Ok(InviteState::Rejected),
            "expired" => Ok(InviteState::Expired),
            _ => Err(Error::invalid("state", "unknown invite state")),
        }
    }
}

/// An invite to a room, identified by its code (seed 000: `/rooms/invites/:code/accept`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The code a user presents.
    pub code: String,
    /// The room.
    pub room_id: RoomId,
    /// Who created it.
    pub created_by: UserId,
    /// If set, only this user may answer it; otherwise anyone with the code.
    pub invitee: Option<UserId>,
    /// When created.
    pub created_at: Timestamp,
    /// When it stops being valid.
    pub expires_at: Timestamp,
    /// Stored state (`pending`, `accepted`, `rejected`).
    pub state: InviteState,
    /// Who answered it.
    pub responded_by: Option<UserId>,
    /// When it was answered.
    pub responded_at: Option<Timestamp>,
}

impl Invite {
    /// The state at `now` (a pending invite past its expiry is `Expired`).
    pub fn state_at(&self, now: Timestamp) -> InviteState {
        if self.state == InviteState::Pending && now >= self.expires_at {
            InviteState::Expired
        } else {
            self.state
        }
    }

    fn answer(&mut self, user: &str, to: InviteState, now: Timestamp) -> Result<()> {
        validate_id("user_id", user)?;
        if let Some(i) = &self.invitee
            && i != user
        {
            return Err(Error::forbidden("this invite is for another user"));
        }
        match self.state_at(now) {
            InviteState::Pending => {}
            InviteState::Expired => return Err(Error::Expired("invite")),
            s => {
                return Err(Error::InvalidTransition {
                    entity: "invite",
                    from: s.as_str().into(),
                    to: to.as_str().into(),
                });
            }
        }
        self.state = to;
        self.responded_by = Some(user.to_owned());
        self.responded_at = Some(now);
        Ok(())
    }

    /// `user` accepts. `existing` is their current membership of `room`.
    /// Returns the new membership and `event.room.invite.accept` + `event.room.join`.
    ///
    /// # Errors
    /// [`Error::Expired`], [`Error::InvalidTransition`] (already answered),
    /// [`Error::Forbidden`] (invite for someone else), [`Error::Conflict`] (already a member).
    pub fn accept(
        &mut self,
        user: &str,
        existing: Option<&Member>,
        room: &Room,
        now: Timestamp,
    ) -> Result<(Member, Vec<Event>)> {
        if existing.is_some() {
            return Err(Error::Conflict {
                kind: "member",
                id: user.to_owned(),
            });
        }
        self.answer(user, InviteState::Accepted, now)?;
        let m = Member {
            room_id: room.id.clone(),
            user_id: user.to_owned(),
            role: Role::Member,
            joined_at: now,
        };
        let evs = vec![
            self.event(EventType::ROOM_INVITE_ACCEPT, user, now),
            member_event(EventType::ROOM_JOIN, room, user, m.role, user, now),
        ];
        Ok((m, evs))
    }

    /// `user` rejects. Returns `event.room.invite.reject`.
    ///
    /// # Errors
    /// As [`Invite::accept`], but no membership check.
    pub fn reject(&mut self, user: &str, now: Timestamp) -> Result<Vec<Event>> {
        self.answer(user, InviteState::Rejected, now)?;
        Ok(vec![self.event(EventType::ROOM_INVITE_REJECT, user, now)])
    }

    /// The invite as event data.
    pub fn event(&self, ty: EventType, actor: &str, now: Timestamp) -> Event {
        Event::at(ty, serde_json::to_value(self).unwrap_or_default(), now)
            .with_user(actor)
            .with_room(self.room_id.clone())
    }
}

/// The deterministic id of the direct room of two users (seed 004: "generated based on both
/// users' IDs to ensure a unique, consistent room"): `dm-` followed by the UUID v5 of the
/// sorted pair. The same pair in either order gives the same id.
///
/// # Errors
/// [`Error::Invalid`] for invalid ids or when `a == b`.
pub fn direct_room_id(a: &str, b: &str) -> Result<RoomId> {
    validate_id("user_id", a)?;
    validate_id("user_id", b)?;
    if a == b {
        return Err(Error::invalid(
            "user_id",
            "a direct room needs two different users",
        ));
    }
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    let key = format!("{x}\n{y}");
    Ok(format!(
        "dm-{}",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).simple()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn group(private: bool) -> (Room, Member) {
        let (r, o, evs) = Room::create_group(
            "r1".into(),
            "General".into(),
            "owner",
            private,
            &Limits::default(),
            Utc::now(),
        )
        .expect("create");
        assert_eq!(evs[0].event_type, EventType::ROOM_CREATE);
        (r, o)
    }

    #[test]
    fn join_leave_and_roles() {
        let now = Utc::now();
        let (room, owner) = group(false);
        let (alice, evs) = room.join("alice", None, now).expect("join");
        assert_eq!(evs[0].event_type, EventType::ROOM_JOIN);
        assert_eq!(
            room.join("alice", Some(&alice), now)
                .expect_err("twice")
                .code(),
            "conflict"
        );
        assert!(room.leave(Some(&owner), now).is_err(), "owner cannot leave");
        assert_eq!(
            room.leave(Some(&alice), now).expect("leave")[0].event_type,
            EventType::ROOM_LEAVE
        );
        let (admin, _) = room
            .add_member(Some(&owner), "adm", None, Role::Admin, now)
            .expect("owner adds admin");
        assert!(
            room.add_member(Some(&admin), "x", None, Role::Admin, now)
                .is_err()
        );
        assert!(
            room.add_member(Some(&owner), "x", None, Role::Owner, now)
                .is_err()
        );
        assert!(
            room.add_member(Some(&alice), "x", None, Role::Member, now)
                .is_err()
        );
        assert!(room.add_member(None, "x", None, Role::Member, now).is_err());
        let (bob, _) = room
            .add_member(Some(&admin), "bob", None, Role::Member, now)
            .expect("admin adds member");
        assert!(room.remove_member(Some(&admin), Some(&owner), now).is_err());
        assert!(room.remove_member(Some(&bob), Some(&alice), now).is_err());
        assert!(room.remove_member(Some(&admin), Some(&bob), now).is_ok());
        assert!(room.remove_member(Some(&owner), Some(&admin), now).is_ok());
        assert!(room.delete(Some(&admin), now).is_err());
        assert!(room.delete(Some(&owner), now).is_ok());
        assert!(room.check_post(None).is_err());
        assert!(room.check_read(Some(&bob)).is_ok());
    }

    #[test]
    fn private_rooms_need_invites_which_expire() {
        let now = Utc::now();
        let (room, owner) = group(true);
        assert_eq!(
            room.join("alice", None, now).expect_err("private").code(),
            "forbidden"
        );
        let (mut inv, _) = room
            .create_invite(
                Some(&owner),
                "CODE1".into(),
                Some("alice".into()),
                Duration::from_secs(60),
                now,
            )
            .expect("invite");
        assert!(
            inv.clone().accept("mallory", None, &room, now).is_err(),
            "someone else"
        );
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(
            inv.clone()
                .accept("alice", None, &room, later)
                .expect_err("late")
                .code(),
            "expired"
        );
        let (m, evs) = inv.accept("alice", None, &room, now).expect("accept");
        assert_eq!(m.role, Role::Member);
        assert_eq!(evs[0].event_type, EventType::ROOM_INVITE_ACCEPT);
        assert_eq!(
            inv.reject("alice", now).expect_err("answered").code(),
            "invalid_transition"
        );
    }

    #[test]
    fn direct_rooms() {
        let a = direct_room_id("alice", "bob").expect("id");
        assert_eq!(a, direct_room_id("bob", "alice").expect("id"));
        assert_ne!(a, direct_room_id("alice", "carol").expect("id"));
        assert!(direct_room_id("alice", "alice").is_err());
        crate::ids::validate_id("room_id", &a).expect("valid room id");
        let (room, [m1, _], _) = Room::create_direct("alice", "bob", Utc::now()).expect("direct");
        assert_eq!(room.id, a);
        assert!(room.join("carol", None, Utc::now()).is_err());
        assert!(room.leave(Some(&m1), Utc::now()).is_err());
    }
}
