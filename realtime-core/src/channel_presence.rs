//! Presence channel membership (`presence-…`): who is on each presence channel, one
//! member per user, across every node of a cluster.
//!
//! A user's first socket on a channel adds them and their last one removes them; the
//! Hub publishes `event.channel.member.add` / `.remove` on the channel at those moments,
//! and returns the whole list to a session when it subscribes (what Pusher's
//! `pusher_internal:subscription_succeeded`, `member_added` and `member_removed` carry).
//!
//! [`ChannelPresence`] is a backend trait, outside the `runtime` feature.
//! [`MemoryChannelPresence`] keeps the lists in the process: enough for one node, or for
//! several Hubs in one process that share it; a cluster shares one in Redis
//! (`realtime-broker-redis`).

use crate::authorizer::PresenceMember;
use crate::channel::Channel;
use crate::error::Result;
use crate::ids::SocketId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Membership of presence channels, shared by every node.
#[async_trait::async_trait]
pub trait ChannelPresence: Send + Sync + 'static {
    /// Record that `socket` is on `channel` as `member`. Returns `true` when it is the
    /// member's first socket there (they were not a member before). Adding a socket
    /// twice changes nothing and returns `false`.
    ///
    /// # Errors
    /// Backend errors ([`crate::Error::Broker`]).
    async fn join(
        &self,
        channel: &Channel,
        socket: SocketId,
        member: &PresenceMember,
    ) -> Result<bool>;

    /// Record that `socket` left `channel`. Returns the member when it was their last
    /// socket there (they are no longer a member); `None` otherwise, or when the socket
    /// was not on the channel.
    ///
    /// # Errors
    /// Backend errors.
    async fn leave(&self, channel: &Channel, socket: SocketId) -> Result<Option<PresenceMember>>;

    /// The members of `channel`, one per user, ordered by user id.
    ///
    /// # Errors
    /// Backend errors.
    async fn members(&self, channel: &Channel) -> Result<Vec<PresenceMember>>;
}

/// One channel's sockets and members.
#[derive(Default)]
struct Roster {
    /// Each socket's user.
    sockets: HashMap<SocketId, String>,
    /// Each user's member entry and how many of their sockets are on the channel.
    members: HashMap<String, (PresenceMember, usize)>,
}

/// [`ChannelPresence`] in this process's memory.
#[derive(Default)]
pub struct MemoryChannelPresence {
    channels: Mutex<HashMap<Channel, Roster>>,
}

impl MemoryChannelPresence {
    /// An empty registry.
    pub fn new() -> MemoryChannelPresence {
        MemoryChannelPresence::default()
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Channel, Roster>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for MemoryChannelPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryChannelPresence")
            .field("channels", &self.channels().len())
            .finish()
    }
}

#[async_trait::async_trait]
impl ChannelPresence for MemoryChannelPresence {
    async fn join(
        &self,
        channel: &Channel,
        socket: SocketId,
        member: &PresenceMember,
    ) -> Result<bool> {
        let mut channels = self.channels();
        let roster = channels.entry(channel.clone()).or_default();
        if roster.sockets.contains_key(&socket) {
            return Ok(false);
        }
        roster.sockets.insert(socket, member.user_id.clone());
        let entry = roster
            .members
            .entry(member.user_id.clone())
            .or_insert_with(|| (member.clone(), 0));
        entry.1 += 1;
        Ok(entry.1 == 1)
    }

    async fn leave(&self, channel: &Channel, socket: SocketId) -> Result<Option<PresenceMember>> {
        let mut channels = self.channels();
        let Some(roster) = channels.get_mut(channel) else {
            return Ok(None);
        };
        let Some(user) = roster.sockets.remove(&socket) else {
            return Ok(None);
        };
        let mut gone = None;
        if let Some((member, count)) = roster.members.get_mut(&user) {
            *count -= 1;
            if *count == 0 {
                gone = Some(member.clone());
                roster.members.remove(&user);
            }
        }
        if roster.sockets.is_empty() {
            channels.remove(channel);
        }
        Ok(gone)
    }

    async fn members(&self, channel: &Channel) -> Result<Vec<PresenceMember>> {
        let mut members: Vec<PresenceMember> = self
            .channels()
            .get(channel)
            .map(|r| r.members.values().map(|(m, _)| m.clone()).collect())
            .unwrap_or_default();
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(members)
    }
}
