//! Reconnect recovery: what a session missed in a room since the last `seq` it saw, read
//! consistently, and [`Hub::resume_room`], which subscribes a session to a room so that
//! the replay, its ack and the room's live messages reach it in that order (the reasons
//! are in the repository's `docs/design.md`, *Recovery without gaps*).

use super::{Hub, read};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::message::Message;
use crate::room::{Member, Room};
use crate::session::{CloseReason, Push, SessionId, SessionShared};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A reconnecting client's position: the last `seq` it saw and the room's `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    /// Last seen sequence number.
    pub seq: u64,
    /// The epoch it was seen in.
    pub epoch: String,
}

/// The result of [`Hub::recover`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Missed messages, oldest first (empty when not recovered).
    pub messages: Vec<Message>,
    /// `true`: `messages` is exactly what was missed. `false`: history cannot be replayed
    /// (epoch changed, or more than the recovery limit was missed); reload the room.
    pub recovered: bool,
    /// The room's current epoch.
    pub epoch: String,
    /// The room's latest `seq`.
    pub latest_seq: u64,
}

impl Hub {
    /// What `actor` missed in `room_id` since `since` (the reconnect contract): every
    /// message after `since.seq` in order with `recovered: true`, or `recovered: false`
    /// when the epoch differs or more than [`HubConfig::recovery_limit`](crate::HubConfig::recovery_limit) were missed.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn recover(&self, actor: &str, room_id: &str, since: &Since) -> Result<Recovery> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        self.recover_read(&room, since).await
    }

    /// [`Hub::recover`] of a room already read and checked. One read of the messages
    /// decides it all: a message committed while recovering is either in the replay (and
    /// `latest_seq` covers it) or after `latest_seq`, never counted without being sent.
    async fn recover_read(&self, room: &Room, since: &Since) -> Result<Recovery> {
        let store = &self.inner.store;
        let limit = self.inner.config.recovery_limit;
        let not_recovered = |latest_seq| Recovery {
            messages: Vec::new(),
            recovered: false,
            epoch: room.epoch.clone(),
            latest_seq,
        };
        if since.epoch != room.epoch {
            return Ok(not_recovered(store.latest_seq(&room.id).await?));
        }
        let messages = store
            .messages_after(&room.id, since.seq, limit.saturating_add(1))
            .await?;
        if messages.len() > limit as usize {
            return Ok(not_recovered(store.latest_seq(&room.id).await?));
        }
        if messages.is_empty() {
            // Nothing after `since.seq`: recovered, unless the client claims a seq the room
            // never reached (its history was lost, or the client is confused).
            let latest = store.latest_seq(&room.id).await?;
            if since.seq > latest {
                return Ok(not_recovered(latest));
            }
            return Ok(Recovery {
                messages,
                recovered: true,
                epoch: room.epoch.clone(),
                latest_seq: since.seq,
            });
        }
        // Seqs are gapless from 1 (deleted messages stay as tombstones): anything else
        // means history is missing.
        let gapless = messages
            .iter()
            .zip(since.seq + 1..)
            .all(|(m, want)| m.seq == want);
        let latest_seq = messages.last().map_or(since.seq, |m| m.seq);
        if !gapless {
            return Ok(not_recovered(latest_seq));
        }
        Ok(Recovery {
            messages,
            recovered: true,
            epoch: room.epoch.clone(),
            latest_seq,
        })
    }

    /// Subscribe session `id` to room `room_id` and replay what it missed since `since`,
    /// so that the session receives the room's live messages only after the replay:
    /// live frames of the room are held back from the moment the session is subscribed,
    /// the missed messages are read, and then the session's queue gets, in this order,
    /// the replay (as `event.message.send` events in `seq` order), the frame `ack` builds
    /// from the outcome, and the held frames, less the messages the replay already holds.
    /// A client that tracks the highest `seq` it has seen can therefore never skip one.
    ///
    /// Without `since`, nothing is replayed; `Recovery::latest_seq` is the room's latest
    /// `seq` and `recovered` is `false`. With `join`, a user who is not a member joins the
    /// room first ([`Hub::join_room`]: public group rooms only); otherwise only members
    /// may subscribe.
    ///
    /// The replay is bounded by [`HubConfig::recovery_limit`](crate::HubConfig::recovery_limit) messages and by the session
    /// queue's bytes; a replay the queue cannot take closes the session as a slow
    /// consumer (reconnect and recover from the last `seq` seen).
    ///
    /// # Errors
    /// [`Error::NotFound`] (room), [`Error::SessionClosed`], [`Error::Forbidden`],
    /// [`Error::Invalid`]; store and broker errors.
    pub async fn resume_room(
        &self,
        id: SessionId,
        room_id: &str,
        since: Option<&Since>,
        join: bool,
        ack: impl FnOnce(&Room, &Recovery) -> Option<Bytes>,
    ) -> Result<(Room, Recovery)> {
        let shared = read(&self.inner.sessions)
            .get(&id)
            .map(|e| e.shared.clone())
            .ok_or(Error::SessionClosed(id))?;
        let user = self.session_user(id)?;
        let (room, member) = self.room_and_member(&user, room_id).await?;
        let channel = Channel::room(room_id)?;
        shared.hold(&channel);
        let resumed = self
            .resume_held(&shared, &user, room, member, since, join)
            .await;
        let (room, recovery, replay) = match resumed {
            Ok(r) => r,
            Err(e) => {
                shared.release(&channel, &[], 0);
                return Err(e);
            }
        };
        let mut frames = replay;
        frames.extend(ack(&room, &recovery));
        if let Push::Overflow | Push::TooLarge =
            shared.release(&channel, &frames, recovery.latest_seq)
            && shared.close(false, CloseReason::SlowConsumer)
        {
            self.inner
                .metrics
                .record_slow_consumer(shared.queued_frames() as u64);
            tracing::warn!(session = id, user = %user, "recovery replay larger than the session queue");
        }
        Ok((room, recovery))
    }

    /// The part of [`Hub::resume_room`] that runs while the room's channel is held:
    /// subscribe (joining first if asked), read the missed messages, encode the replay.
    async fn resume_held(
        &self,
        shared: &SessionShared,
        user: &str,
        room: Room,
        member: Option<Member>,
        since: Option<&Since>,
        join: bool,
    ) -> Result<(Room, Recovery, Vec<Bytes>)> {
        let id = shared.id;
        let channel = &Channel::room(&room.id)?;
        let room = match member {
            Some(m) => {
                self.add_local(id, channel.clone()).await?;
                self.vouch(&room, Some(&m), user);
                room
            }
            None if join => self.join_read(user, room, None).await?.0,
            None => {
                room.check_read(None)?;
                room
            }
        };
        let Some(since) = since else {
            let latest_seq = self.inner.store.latest_seq(&room.id).await?;
            let recovery = Recovery {
                messages: Vec::new(),
                recovered: false,
                epoch: room.epoch.clone(),
                latest_seq,
            };
            return Ok((room, recovery, Vec::new()));
        };
        let recovery = self.recover_read(&room, since).await?;
        let encoder = read(&self.inner.dialects)
            .get(shared.dialect.0 as usize)
            .cloned()
            .ok_or(Error::SessionClosed(id))?;
        let replay = recovery
            .messages
            .iter()
            .filter_map(|m| {
                let ev = Event::at(EventType::MESSAGE_SEND, m.to_data(), m.created_at)
                    .with_user(m.sender_id.clone())
                    .with_room(m.room_id.clone());
                encoder.encode(channel, &ev)
            })
            .collect();
        Ok((room, recovery, replay))
    }
}
