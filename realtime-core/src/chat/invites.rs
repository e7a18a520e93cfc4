//! Invites (create, accept, reject) and direct rooms between two users.

use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::ids::{UserId, validate_id};
use crate::room::{Invite, Member, Room, direct_room_id};

impl Hub {
    /// `actor` (owner/admin) creates an invite, for `invitee` only or for anyone holding
    /// the code, valid for [`HubConfig::invite_ttl`](crate::HubConfig::invite_ttl). Emits `event.room.invite.create`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn create_invite(
        &self,
        actor: &str,
        room_id: &str,
        invitee: Option<UserId>,
    ) -> Result<Invite> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        if let Some(u) = &invitee {
            self.require_user(u).await?;
        }
        let code = uuid::Uuid::new_v4().simple().to_string();
        let (invite, events) = room.create_invite(
            member.as_ref(),
            code,
            invitee,
            self.inner.config.invite_ttl,
            self.now(),
        )?;
        self.inner.store.create_invite(&invite).await?;
        self.emit(events).await;
        Ok(invite)
    }

    pub(crate) async fn invite_and_room(&self, code: &str) -> Result<(Invite, Room)> {
        validate_id("code", code)?;
        let store = &self.inner.store;
        let invite = store
            .get_invite(code)
            .await?
            .ok_or_else(|| Error::not_found("invite", code))?;
        let room = store
            .get_room(&invite.room_id)
            .await?
            .ok_or_else(|| Error::not_found("room", &invite.room_id))?;
        Ok((invite, room))
    }

    /// `actor` accepts invite `code` and becomes a member. Emits
    /// `event.room.invite.accept` and `event.room.join`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Expired`], [`Error::InvalidTransition`],
    /// [`Error::Forbidden`], [`Error::Conflict`].
    pub async fn accept_invite(&self, actor: &str, code: &str) -> Result<Member> {
        let (mut invite, room) = self.invite_and_room(code).await?;
        self.require_user(actor).await?;
        let existing = self.inner.store.get_member(&room.id, actor).await?;
        let (m, events) = invite.accept(actor, existing.as_ref(), &room, self.now())?;
        self.inner.store.answer_invite(&invite, Some(&m)).await?;
        self.subscribe_user(actor, &Channel::room(&room.id)?).await;
        let events = self.add_usernames(events).await;
        self.emit_to(events, &[actor]).await;
        Ok(m)
    }

    /// `actor` rejects invite `code`. Emits `event.room.invite.reject`.
    ///
    /// # Errors
    /// As [`Hub::accept_invite`].
    pub async fn reject_invite(&self, actor: &str, code: &str) -> Result<()> {
        let (mut invite, _room) = self.invite_and_room(code).await?;
        let events = invite.reject(actor, self.now())?;
        self.inner.store.answer_invite(&invite, None).await?;
        self.emit(events).await;
        Ok(())
    }

    /// The direct room of `actor` and `other`, created on first use (seed 004's
    /// `chat:start_direct`). Emits `event.room.create` to both users when created.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown `other`, [`Error::Invalid`] for `actor == other`.
    pub async fn start_direct(&self, actor: &str, other: &str) -> Result<Room> {
        let id = direct_room_id(actor, other)?;
        if let Some(r) = self.inner.store.get_room(&id).await? {
            return Ok(r);
        }
        self.require_user(other).await?;
        let (room, members, events) = Room::create_direct(actor, other, self.now())?;
        match self.inner.store.create_room(&room, &members).await {
            Ok(()) => {}
            Err(Error::Conflict { .. }) => {
                return self
                    .inner
                    .store
                    .get_room(&id)
                    .await?
                    .ok_or_else(|| Error::not_found("room", &id));
            }
            Err(e) => return Err(e),
        }
        let ch = Channel::room(&room.id)?;
        self.subscribe_user(actor, &ch).await;
        self.subscribe_user(other, &ch).await;
        self.emit_to(events, &[actor, other]).await;
        Ok(room)
    }
}
