//! Presence: one status per user across all their connections and devices (seeds 000, 004).
//!
//! * The first connection of an offline user makes them `online` (`event.user.online`).
//! * When the last connection closes the user stays as they were for a grace period
//!   (default 5 s); a reconnect within it emits nothing. After it, `event.user.offline`
//!   with `last_seen`.
//! * A connected user may set `away` or `online` (`event.user.status.change`). A user with
//!   an open connection is never `offline`.
//!
//! Event data: `{ "user_id", "status": "online"|"away"|"offline", "last_seen" }`.

use crate::clock::{Timestamp, add};
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::ids::UserId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A user's status (seed 004: `'online' | 'offline' | 'away'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Connected and active.
    Online,
    /// Connected, marked away.
    Away,
    /// No connection.
    #[default]
    Offline,
}

impl UserStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Online => "online",
            UserStatus::Away => "away",
            UserStatus::Offline => "offline",
        }
    }

    /// Parse a lowercase name.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "online" => Ok(UserStatus::Online),
            "away" => Ok(UserStatus::Away),
            "offline" => Ok(UserStatus::Offline),
            _ => Err(Error::invalid("status", "must be online, away or offline")),
        }
    }
}

/// Presence settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// How long a user with no connection still counts as present (default 5 s).
    pub grace: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            grace: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
struct Entry {
    conns: HashMap<u64, Option<String>>,
    status: UserStatus,
    offline_at: Option<Timestamp>,
}

/// Tracks presence of all users of one node. Connection ids are any `u64` unique per node
/// (the Hub uses its session ids).
#[derive(Debug, Default)]
pub struct PresenceTracker {
    config: PresenceConfig,
    users: HashMap<UserId, Entry>,
}

impl PresenceTracker {
    /// An empty tracker.
    pub fn new(config: PresenceConfig) -> Self {
        PresenceTracker {
            config,
            users: HashMap::new(),
        }
    }

    fn event(
        ty: EventType,
        user: &str,
        status: UserStatus,
        last_seen: Timestamp,
        now: Timestamp,
    ) -> Event {
        Event::at(
            ty,
            serde_json::json!({ "user_id": user, "status": status, "last_seen": last_seen }),
            now,
        )
        .with_user(user)
    }

    /// Connection `conn` of `user` opened (on `device`, if known).
    pub fn connect(
        &mut self,
        user: &str,
        conn: u64,
        device: Option<String>,
        now: Timestamp,
    ) -> Vec<Event> {
        let entry = self.users.entry(user.to_owned()).or_insert_with(|| Entry {
            conns: HashMap::new(),
            status: UserStatus::Offline,
            offline_at: None,
        });
        entry.conns.insert(conn, device);
        entry.offline_at = None;
        if entry.status == UserStatus::Offline {
            entry.status = UserStatus::Online;
            vec![Self::event(
                EventType::USER_ONLINE,
                user,
                UserStatus::Online,
                now,
                now,
            )]
        } else {
            Vec::new()
        }
    }

    /// Connection `conn` of `user` closed. Starts the grace period when it was the last one;
    /// emits nothing (the offline event comes from [`PresenceTracker::tick`]), unless the
    /// grace period is zero.
    pub fn disconnect(&mut self, user: &str, conn: u64, now: Timestamp) -> Vec<Event> {
        let Some(entry) = self.users.get_mut(user) else {
            return Vec::new();
        };
        entry.conns.remove(&conn);
        if entry.conns.is_empty() && entry.offline_at.is_none() {
            entry.offline_at = Some(add(now, self.config.grace));
        }
        if self.config.grace.is_zero() {
            self.tick(now)
        } else {
            Vec::new()
        }
    }

    /// A connected user sets `online` or `away`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for `offline` (close the connections instead) and
    /// [`Error::Forbidden`] when the user has no open connection.
    pub fn set_status(
        &mut self,
        user: &str,
        status: UserStatus,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        if status == UserStatus::Offline {
            return Err(Error::invalid(
                "status",
                "offline is set by closing every connection",
            ));
        }
        let entry = self
            .users
            .get_mut(user)
            .filter(|e| !e.conns.is_empty())
            .ok_or_else(|| Error::forbidden("status can only be set while connected"))?;
        if entry.status == status {
            return Ok(Vec::new());
        }
        entry.status = status;
        Ok(vec![Self::event(
            EventType::USER_STATUS_CHANGE,
            user,
            status,
            now,
            now,
        )])
    }

    /// Emit `event.user.offline` for every user whose grace period ended by `now`.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        self.users.retain(|user, e| match e.offline_at {
            Some(at) if at <= now && e.conns.is_empty() => {
                out.push(Self::event(
                    EventType::USER_OFFLINE,
                    user,
                    UserStatus::Offline,
                    now,
                    now,
                ));
                false
            }
            _ => true,
        });
        out
    }

    /// The current status (`offline` for unknown users).
    pub fn status(&self, user: &str) -> UserStatus {
        self.users
            .get(user)
            .map_or(UserStatus::Offline, |e| e.status)
    }

    /// Open connections of `user`.
    pub fn connection_count(&self, user: &str) -> usize {
        self.users.get(user).map_or(0, |e| e.conns.len())
    }

    /// Users not offline, with their status.
    pub fn present(&self) -> Vec<(UserId, UserStatus)> {
        self.users
            .iter()
            .map(|(u, e)| (u.clone(), e.status))
            .collect()
    }

    /// The earliest pending grace deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.users.values().filter_map(|e| e.offline_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn two_connections_one_status_and_grace() {
        let clock = ManualClock::at_epoch();
        let mut p = PresenceTracker::new(PresenceConfig::default());
        let evs = p.connect("u", 1, Some("phone".into()), clock.now());
        assert_eq!(evs[0].event_type, EventType::USER_ONLINE);
        assert!(
            p.connect("u", 2, None, clock.now()).is_empty(),
            "second device emits nothing"
        );
        assert!(p.disconnect("u", 1, clock.now()).is_empty());
        assert_eq!(p.status("u"), UserStatus::Online);
        assert!(p.disconnect("u", 2, clock.now()).is_empty(), "grace period");
        clock.advance(Duration::from_secs(3));
        assert!(p.tick(clock.now()).is_empty());
        assert!(
            p.connect("u", 3, None, clock.now()).is_empty(),
            "quick reconnect emits nothing"
        );
        assert!(p.disconnect("u", 3, clock.now()).is_empty());
        clock.advance(Duration::from_secs(5));
        let evs = p.tick(clock.now());
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_type, EventType::USER_OFFLINE);
        assert_eq!(evs[0].data["status"], "offline");
        assert_eq!(p.status("u"), UserStatus::Offline);
    }

    #[test]
    fn away_and_bad_status() {
        let now = ManualClock::at_epoch().now();
        let mut p = PresenceTracker::new(PresenceConfig::default());
        assert_eq!(
            p.set_status("u", UserStatus::Away, now)
                .expect_err("not connected")
                .code(),
            "forbidden"
        );
        p.connect("u", 1, None, now);
        let evs = p.set_status("u", UserStatus::Away, now).expect("away");
        assert_eq!(evs[0].event_type, EventType::USER_STATUS_CHANGE);
        assert!(
            p.set_status("u", UserStatus::Away, now)
                .expect("same")
                .is_empty()
        );
        assert!(p.set_status("u", UserStatus::Offline, now).is_err());
        assert_eq!(p.status("u"), UserStatus::Away);
    }
}
