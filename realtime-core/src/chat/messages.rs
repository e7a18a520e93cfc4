//! Messages after they are sent: system messages, reading one, editing, deleting and
//! reactions. Sending goes through the committer ([`crate::hub::commit`]).

use crate::chat::SendMessage;
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::hub::Hub;
use crate::ids::validate_id;
use crate::message::{Message, MessageKind, Reaction};
use crate::room::Member;

impl Hub {
    /// Post a SYSTEM message to a room (seed 004's "Direct chat started"), sender
    /// `system`. A server-side operation: the host decides who may cause it (no acting
    /// user).
    ///
    /// # Errors
    /// [`Error::NotFound`] (room); [`Error::ContentTooLong`].
    pub async fn send_system_message(&self, room_id: &str, content: String) -> Result<Message> {
        self.inner.config.limits.check_content(&content)?;
        self.insert_and_publish(
            "system",
            SendMessage {
                room_id: room_id.to_owned(),
                content,
                kind: MessageKind::System,
                client_id: None,
            },
        )
        .await
    }

    pub(crate) async fn message_and_member(
        &self,
        actor: &str,
        message_id: &str,
    ) -> Result<(Message, Option<Member>)> {
        validate_id("message_id", message_id)?;
        let store = &self.inner.store;
        let msg = store
            .get_message(message_id)
            .await?
            .ok_or_else(|| Error::not_found("message", message_id))?;
        let member = store.get_member(&msg.room_id, actor).await?;
        Ok((msg, member))
    }

    /// A message, for members of its room.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn get_message(&self, actor: &str, message_id: &str) -> Result<Message> {
        let (msg, member) = self.message_and_member(actor, message_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("not a member of this room"));
        }
        Ok(msg)
    }

    /// The sender edits a message. Emits `event.message.edit`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::InvalidTransition`] (deleted), content errors.
    pub async fn edit_message(
        &self,
        actor: &str,
        message_id: &str,
        content: String,
    ) -> Result<Message> {
        let (mut msg, member) = self.message_and_member(actor, message_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("not a member of this room"));
        }
        let ev = msg.edit(actor, content, &self.inner.config.limits, self.now())?;
        self.inner.store.update_message(&msg).await?;
        self.emit(vec![ev]).await;
        Ok(msg)
    }

    /// The sender or a room owner/admin deletes a message (tombstone). Emits `event.message.delete`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::InvalidTransition`] (already deleted).
    pub async fn delete_message(&self, actor: &str, message_id: &str) -> Result<Message> {
        let (mut msg, member) = self.message_and_member(actor, message_id).await?;
        let ev = msg.delete(actor, member.map(|m| m.role), self.now())?;
        self.inner.store.update_message(&msg).await?;
        self.emit(vec![ev]).await;
        Ok(msg)
    }

    /// Add (`add = true`) or remove a reaction; idempotent per `(user, emoji)`. Emits
    /// `event.message.reaction.add/remove` only when something changed. Returns whether it did.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Invalid`] (emoji), [`Error::InvalidTransition`] (deleted message).
    pub async fn react(
        &self,
        actor: &str,
        message_id: &str,
        emoji: &str,
        add: bool,
    ) -> Result<bool> {
        self.inner.config.limits.check_emoji(emoji)?;
        let (msg, member) = self.message_and_member(actor, message_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("not a member of this room"));
        }
        if msg.is_deleted() {
            return Err(Error::InvalidTransition {
                entity: "message",
                from: "deleted".into(),
                to: "reacted".into(),
            });
        }
        let now = self.now();
        let changed = if add {
            self.inner
                .store
                .add_reaction(&Reaction {
                    message_id: msg.id.clone(),
                    user_id: actor.to_owned(),
                    emoji: emoji.to_owned(),
                    created_at: now,
                })
                .await?
        } else {
            self.inner
                .store
                .remove_reaction(&msg.id, actor, emoji)
                .await?
        };
        if changed {
            let ty = if add {
                EventType::MESSAGE_REACTION_ADD
            } else {
                EventType::MESSAGE_REACTION_REMOVE
            };
            let ev = Event::at(ty, serde_json::json!({ "message_id": msg.id, "room_id": msg.room_id, "user_id": actor, "emoji": emoji }), now)
                .with_user(actor)
                .with_room(msg.room_id.clone());
            self.emit(vec![ev]).await;
        }
        Ok(changed)
    }
}
