//! [`PusherAuthorizer`]: the Hub's [`ChannelAuthorizer`] for an app's private and presence
//! channels, checking the `auth` signature a client got from the app's auth endpoint
//! (Pusher Channels, *Authenticating channels*).

use crate::app::App;
use crate::sign;
use realtime_core::{
    AuthRequest, Authorization, ChannelAuthorizer, Error, PresenceMember, Result, Visibility,
};
use serde_json::Value;
use std::sync::Arc;

/// Checks `private-…` and `presence-…` subscriptions against the app's secret:
/// `auth` must be `"<key>:<hex HMAC-SHA256>"` of `"<socket_id>:<channel>"` (private) or
/// `"<socket_id>:<channel>:<channel_data>"` (presence), and a presence channel's
/// `channel_data` names the member: `{"user_id": string or number, "user_info"?: any}`.
/// `private-encrypted-…` channels are private channels: their payloads are relayed as
/// they come.
///
/// Install it on the app's Hub: `Hub::builder(store, broker).channel_authorizer(...)`.
#[derive(Debug, Clone)]
pub struct PusherAuthorizer {
    app: Arc<App>,
}

impl PusherAuthorizer {
    /// The authorizer of `app`.
    pub fn new(app: Arc<App>) -> PusherAuthorizer {
        PusherAuthorizer { app }
    }
}

/// The member a presence channel's `channel_data` names.
///
/// # Errors
/// [`Error::Invalid`] when it is not JSON `{"user_id": …}` with a string or integer id.
pub fn presence_member(channel_data: &str) -> Result<PresenceMember> {
    let bad = |reason: &str| Error::invalid("channel_data", reason.to_owned());
    let v: Value = serde_json::from_str(channel_data).map_err(|_| bad("is not JSON"))?;
    let user_id = match v.get("user_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return Err(bad("needs a string or integer user_id")),
    };
    Ok(PresenceMember {
        user_id,
        user_info: v.get("user_info").cloned().unwrap_or(Value::Null),
    })
}

#[async_trait::async_trait]
impl ChannelAuthorizer for PusherAuthorizer {
    async fn authorize(&self, request: &AuthRequest<'_>) -> Result<Authorization> {
        let channel = request.channel.to_string();
        let socket = request.socket_id.to_string();
        let Some(auth) = request
            .credentials
            .auth
            .as_deref()
            .filter(|a| !a.is_empty())
        else {
            return Err(Error::forbidden("this channel needs an auth signature"));
        };
        let presence = request.channel.visibility() == Visibility::Presence;
        let data = if presence {
            Some(
                request
                    .credentials
                    .channel_data
                    .as_deref()
                    .ok_or_else(|| Error::forbidden("a presence channel needs channel_data"))?,
            )
        } else {
            None
        };
        if !sign::verify_channel_auth(&self.app, &socket, &channel, data, auth) {
            return Err(Error::forbidden("invalid signature"));
        }
        match data {
            Some(d) => Ok(Authorization::Member(presence_member(d)?)),
            None => Ok(Authorization::Allow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime_core::{Channel, Credentials, SocketId};

    #[tokio::test]
    async fn signatures_decide() {
        let app = Arc::new(App::new("1", "key", "secret").expect("app"));
        let authz = PusherAuthorizer::new(app.clone());
        let socket: SocketId = "12.34".parse().expect("socket id");
        let private = Channel::parse("private-booking.7").expect("channel");
        let ask = |channel: &Channel, credentials: Credentials| {
            let authz = authz.clone();
            let channel = channel.clone();
            async move {
                authz
                    .authorize(&AuthRequest {
                        channel: &channel,
                        socket_id: socket,
                        user_id: None,
                        credentials: &credentials,
                    })
                    .await
            }
        };
        let good = sign::channel_auth(&app, "12.34", "private-booking.7", None);
        let creds = |auth: &str, data: Option<&str>| Credentials {
            auth: Some(auth.to_owned()),
            channel_data: data.map(str::to_owned),
        };
        assert_eq!(
            ask(&private, creds(&good, None)).await.ok(),
            Some(Authorization::Allow)
        );
        // Signed for another socket or another channel, or not at all.
        let other = sign::channel_auth(&app, "12.35", "private-booking.7", None);
        assert!(ask(&private, creds(&other, None)).await.is_err());
        let other = sign::channel_auth(&app, "12.34", "private-booking.8", None);
        assert!(ask(&private, creds(&other, None)).await.is_err());
        assert!(ask(&private, Credentials::NONE).await.is_err());
        // Presence: the signed channel_data names the member; numbers become strings.
        let lobby = Channel::parse("presence-lobby").expect("channel");
        let data = r#"{"user_id":7,"user_info":{"name":"Ana"}}"#;
        let auth = sign::channel_auth(&app, "12.34", "presence-lobby", Some(data));
        match ask(&lobby, creds(&auth, Some(data))).await {
            Ok(Authorization::Member(m)) => {
                assert_eq!(m.user_id, "7");
                assert_eq!(m.user_info["name"], "Ana");
            }
            other => panic!("{other:?}"),
        }
        let forged = r#"{"user_id":8,"user_info":{"name":"Ana"}}"#;
        assert!(ask(&lobby, creds(&auth, Some(forged))).await.is_err());
        assert!(ask(&lobby, creds(&auth, None)).await.is_err());
        let auth = sign::channel_auth(&app, "12.34", "presence-lobby", Some("[1]"));
        assert!(matches!(
            ask(&lobby, creds(&auth, Some("[1]"))).await,
            Err(Error::Invalid { .. })
        ));
    }
}
