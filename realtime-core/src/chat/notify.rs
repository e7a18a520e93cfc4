//! Notifications to one user (seed 001's `notification`) and system broadcasts.

use crate::chat::Notification;
use crate::chat::SystemEvent;
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::hub::Hub;
use crate::ids::validate_id;

impl Hub {
    /// Send seed 001's notification to one user (`event.user.notification` on `user:{id}`,
    /// data `{type, title, message, data?, timestamp}`). A server-side operation: the host
    /// decides who may cause it (no acting user).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad kind or user id.
    pub async fn notify_user(&self, user: &str, n: Notification) -> Result<Event> {
        validate_id("user_id", user)?;
        if !matches!(n.kind.as_str(), "info" | "success" | "warning" | "error") {
            return Err(Error::invalid(
                "type",
                "must be info, success, warning or error",
            ));
        }
        let now = self.now();
        let mut data = serde_json::to_value(&n)?;
        data["timestamp"] = serde_json::to_value(now)?;
        let ev = Event::at(EventType::USER_NOTIFICATION, data, now).with_user(user);
        self.emit(vec![ev.clone()]).await;
        Ok(ev)
    }

    /// Publish a system event (seed 000's `POST /api/v1/events/system`). A server-side
    /// operation: the host decides who may cause it (no acting user).
    ///
    /// # Errors
    /// None today; `Result` for the event checks to come.
    pub async fn broadcast_system(
        &self,
        kind: SystemEvent,
        data: serde_json::Value,
    ) -> Result<Event> {
        let ty = match kind {
            SystemEvent::Maintenance => EventType::SYSTEM_MAINTENANCE,
            SystemEvent::Shutdown => EventType::SYSTEM_SHUTDOWN,
            SystemEvent::Broadcast => EventType::SYSTEM_BROADCAST,
        };
        let ev = Event::at(ty, data, self.now());
        self.emit(vec![ev.clone()]).await;
        Ok(ev)
    }
}
