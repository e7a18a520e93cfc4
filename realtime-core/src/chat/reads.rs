//! Read pointers, unread counts and message history pages.

use crate::error::Result;
use crate::event::{Event, EventType};
use crate::hub::Hub;
use crate::message::MessageStatus;
use crate::store::HistoryPage;

impl Hub {
    /// Move `actor`'s read pointer in `room_id` to `seq` (the latest when `None`). Emits
    /// `event.message.read` when it moved. Returns the pointer, which never moves back.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound), [`Error::Forbidden`](crate::Error::Forbidden).
    pub async fn mark_read(&self, actor: &str, room_id: &str, seq: Option<u64>) -> Result<u64> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        let store = &self.inner.store;
        let latest = store.latest_seq(room_id).await?;
        let target = seq.unwrap_or(latest).min(latest);
        let before = store.read_pointer(room_id, actor).await?;
        let now = self.now();
        let after = store
            .advance_read_pointer(room_id, actor, target, now)
            .await?;
        if after > before {
            let ev = Event::at(
                EventType::MESSAGE_READ,
                serde_json::json!({ "room_id": room_id, "user_id": actor, "seq": after }),
                now,
            )
            .with_user(actor)
            .with_room(room_id);
            self.emit(vec![ev]).await;
        }
        Ok(after)
    }

    /// `actor` read message `message_id` (seed 000's `POST /messages/:id/read`): moves the
    /// read pointer to its `seq` and, when the reader is not the sender, advances the
    /// message status to `READ` (`event.message.status`, seed 002).
    ///
    /// # Errors
    /// As [`Hub::mark_read`].
    pub async fn read_message(&self, actor: &str, message_id: &str) -> Result<u64> {
        let mut msg = self.get_message(actor, message_id).await?;
        let pointer = self.mark_read(actor, &msg.room_id, Some(msg.seq)).await?;
        if msg.sender_id != actor
            && !msg.is_deleted()
            && msg.advance_status(MessageStatus::Read).unwrap_or(false)
        {
            self.inner.store.update_message(&msg).await?;
            let ev = Event::at(EventType::MESSAGE_STATUS, serde_json::json!({ "message_id": msg.id, "room_id": msg.room_id, "status": msg.status }), self.now())
                .with_user(actor)
                .with_room(msg.room_id.clone());
            self.emit(vec![ev]).await;
        }
        Ok(pointer)
    }

    /// Unread messages for `actor` in `room_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound), [`Error::Forbidden`](crate::Error::Forbidden).
    pub async fn unread_count(&self, actor: &str, room_id: &str) -> Result<u64> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        self.inner.store.unread_count(room_id, actor).await
    }

    /// A page of history (seed 004's `GET /messages?roomId&before&limit`), for members.
    /// `limit` is capped at [`HubConfig::max_page`](crate::HubConfig::max_page); 0 means 50.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound), [`Error::Forbidden`](crate::Error::Forbidden).
    pub async fn history(
        &self,
        actor: &str,
        room_id: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        let limit = if limit == 0 {
            50
        } else {
            limit.min(self.inner.config.max_page)
        };
        self.inner.store.history(room_id, before, limit).await
    }
}
