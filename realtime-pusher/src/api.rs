//! The Pusher HTTP API (Pusher Channels, *HTTP API reference*), what a Laravel backend's
//! pusher driver calls. Every request is signed ([`crate::sign`]): `auth_key` must be the
//! app's key, `auth_timestamp` within [`SIGNATURE_WINDOW_SECS`] of the server's clock,
//! `auth_version` `1.0` when given, `body_md5` the body's MD5 when there is a body, and
//! `auth_signature` the HMAC of the request; anything else gets 401 with the reason as
//! plain text. Mount the routes at the root: the signature covers the path as received.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /apps/{id}/events` | `{name, data, channels \| channel, socket_id?, info?}` | `{}`, or `{"channels": {name: {…}}}` with `info` |
//! | `POST /apps/{id}/batch_events` | `{batch: [{name, data, channel, socket_id?, info?}, …]}` | `{}`, or `{"batch": [{…}, …]}` with `info` |
//! | `GET /apps/{id}/channels` | `?filter_by_prefix=&info=user_count` | `{"channels": {name: {"user_count"?}}}` |
//! | `GET /apps/{id}/channels/{name}` | `?info=user_count,subscription_count` | `{"occupied", "user_count"?, "subscription_count"?}` |
//! | `GET /apps/{id}/channels/{name}/users` | – | `{"users": [{"id"}, …]}` (presence channels) |
//! | `POST /apps/{id}/users/{user_id}/terminate_connections` | – | `{}`; the signed-in user's connections close with 4009 on every node |
//!
//! An event's `data` is a string (Laravel sends the JSON of the event's public
//! properties); it reaches Pusher clients unchanged and Hub subscribers of other
//! dialects as the JSON it holds. Triggers go through [`Hub::publish`], so they reach
//! every node through the broker and every dialect.
//!
//! `occupied` and `subscription_count` count Pusher subscriptions on every node sharing
//! the app's [`realtime_core::SubscriptionCounts`]; presence `user_count` and the member
//! list are the cluster's ([`realtime_core::ChannelPresence`]). The channel listing
//! (`GET /apps/{id}/channels`) names the channels with subscribers on this node.

use crate::app::App;
use crate::dialect::pusher_channel;
use crate::encoder::channel_name;
use crate::sign;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use realtime_core::{Channel, Error, Event, EventData, Hub, SocketId, Visibility};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How far `auth_timestamp` may be from the server's clock, in seconds (Pusher's 600).
pub const SIGNATURE_WINDOW_SECS: u64 = 600;

/// One app and the Hub its events go to.
#[derive(Clone)]
pub(crate) struct AppHub {
    pub(crate) app: Arc<App>,
    pub(crate) hub: Hub,
    pub(crate) state: Arc<crate::state::AppState>,
}

/// The apps the API serves, found by id.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) apps: Arc<[AppHub]>,
}

/// An HTTP API refusal: a status and a plain-text reason.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
}

impl ApiError {
    fn new(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason: reason.into(),
        }
    }

    fn unauthorized(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, reason)
    }

    fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, reason)
    }

    fn from_hub(e: &Error) -> ApiError {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, self.reason).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The current Unix time in seconds.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Check a request's signature ([module](self)) at time `now` (Unix seconds).
///
/// # Errors
/// [`ApiError`] 401 with the reason.
pub fn verify_request(
    app: &App,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match get("auth_key") {
        None => return Err(ApiError::unauthorized("auth_key is missing")),
        Some(k) if k != app.key => {
            return Err(ApiError::unauthorized("auth_key is not this app's key"));
        }
        Some(_) => {}
    }
    let ts = get("auth_timestamp")
        .ok_or_else(|| ApiError::unauthorized("auth_timestamp is missing"))?
        .parse::<u64>()
        .map_err(|_| ApiError::unauthorized("auth_timestamp is not a number"))?;
    if ts.abs_diff(now) > SIGNATURE_WINDOW_SECS {
        return Err(ApiError::unauthorized(format!(
            "auth_timestamp is {} s from the server's time; the limit is {SIGNATURE_WINDOW_SECS} s",
            ts.abs_diff(now)
        )));
    }
    if get("auth_version").is_some_and(|v| v != "1.0") {
        return Err(ApiError::unauthorized("auth_version must be 1.0"));
    }
    if !body.is_empty() {
        match get("body_md5") {
            None => return Err(ApiError::unauthorized("body_md5 is missing")),
            Some(md5) if !md5.eq_ignore_ascii_case(&sign::body_md5(body)) => {
                return Err(ApiError::unauthorized("body_md5 does not match the body"));
            }
            Some(_) => {}
        }
    }
    let signature =
        get("auth_signature").ok_or_else(|| ApiError::unauthorized("auth_signature is missing"))?;
    let params = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !sign::verify_api_signature(&app.secret, method.as_str(), path, params, signature) {
        return Err(ApiError::unauthorized("invalid auth_signature"));
    }
    Ok(())
}

impl ApiState {
    /// The app `id`, after checking the request's signature.
    fn signed(
        &self,
        id: &str,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<&AppHub, ApiError> {
        let entry =
            self.apps.iter().find(|a| a.app.id == id).ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("no app with id {id}"))
            })?;
        verify_request(
            &entry.app,
            method,
            uri.path(),
            uri.query(),
            body,
            now_secs(),
        )?;
        Ok(entry)
    }
}

/// One event of a trigger or a batch.
#[derive(Debug, Deserialize)]
struct Trigger {
    name: String,
    data: Box<RawValue>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Batch {
    batch: Vec<Trigger>,
}

/// A trigger's `data` as event data: a string holding JSON becomes that JSON (kept as
/// its text), any other string stays a string, and non-string JSON is taken as it is.
/// Returns the data and its size as Pusher counts it (the string's length).
fn event_data(raw: &RawValue) -> Result<(EventData, usize), ApiError> {
    let text = raw.get();
    if text.starts_with('"') {
        let s: String =
            serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("data: {e}")))?;
        let len = s.len();
        let data = match serde_json::from_str::<EventData>(&s) {
            Ok(d) => d,
            Err(_) => serde_json::from_str::<EventData>(text)
                .map_err(|e| ApiError::bad_request(format!("data: {e}")))?,
        };
        return Ok((data, len));
    }
    let data = serde_json::from_str::<EventData>(text)
        .map_err(|e| ApiError::bad_request(format!("data: {e}")))?;
    Ok((data, text.len()))
}

/// `info` attributes asked for (`user_count`, `subscription_count`), checked.
fn info_fields(info: Option<&str>) -> Result<(bool, bool), ApiError> {
    let mut fields = (false, false);
    for f in info
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        match f {
            "user_count" => fields.0 = true,
            "subscription_count" => fields.1 = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown info attribute {other}"
                )));
            }
        }
    }
    Ok(fields)
}

/// A channel's attributes as `info` asks for them.
async fn channel_info(
    entry: &AppHub,
    channel: &Channel,
    (users, subs): (bool, bool),
) -> Result<Map<String, Value>, ApiError> {
    let hub = &entry.hub;
    let mut out = Map::new();
    if users {
        if channel.visibility() != Visibility::Presence {
            return Err(ApiError::bad_request(
                "user_count is only available for presence channels",
            ));
        }
        let members = hub
            .presence_members(channel)
            .await
            .map_err(|e| ApiError::from_hub(&e))?;
        out.insert("user_count".into(), json!(members.len()));
    }
    if subs {
        let n = entry
            .state
            .counts
            .count(channel)
            .await
            .map_err(|e| ApiError::from_hub(&e))?;
        out.insert("subscription_count".into(), json!(n));
    }
    Ok(out)
}

/// Publish one trigger; its channels' info when asked.
async fn publish(entry: &AppHub, t: Trigger) -> Result<Option<Map<String, Value>>, ApiError> {
    let limits = &entry.app.limits;
    let names: Vec<String> = match (t.channels, t.channel) {
        (Some(list), _) if !list.is_empty() => list,
        (_, Some(one)) => vec![one],
        _ => return Err(ApiError::bad_request("channels or channel is required")),
    };
    if names.len() > limits.max_trigger_channels {
        return Err(ApiError::bad_request(format!(
            "at most {} channels per event",
            limits.max_trigger_channels
        )));
    }
    if names.iter().any(|n| n == crate::state::CONTROL_CHANNEL) {
        return Err(ApiError::bad_request("this channel is reserved"));
    }
    let channels = names
        .iter()
        .map(|n| pusher_channel(n).map_err(|e| ApiError::bad_request(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let (data, len) = event_data(&t.data)?;
    if len > limits.max_event_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "data is {len} bytes; the limit is {}",
                limits.max_event_bytes
            ),
        ));
    }
    let fields = info_fields(t.info.as_deref())?;
    let mut event = Event::app(t.name, data).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(s) = t.socket_id.as_deref() {
        let socket: SocketId = s
            .parse()
            .map_err(|e: Error| ApiError::bad_request(e.to_string()))?;
        event = event.except(socket);
    }
    entry
        .hub
        .publish(&channels, event)
        .await
        .map_err(|e| ApiError::from_hub(&e))?;
    if t.info.is_none() {
        return Ok(None);
    }
    let mut info = Map::new();
    for c in &channels {
        info.insert(
            channel_name(c).into_owned(),
            Value::Object(channel_info(entry, c, fields).await?),
        );
    }
    Ok(Some(info))
}

pub(crate) async fn events(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> ApiResult {
    let entry = st.signed(&id, &method, &uri, &body)?;
    let t: Trigger = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    Ok(Json(match publish(entry, t).await? {
        Some(info) => json!({ "channels": info }),
        None => json!({}),
    }))
}

pub(crate) async fn batch_events(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> ApiResult {
    let entry = st.signed(&id, &method, &uri, &body)?;
    let b: Batch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    if b.batch.len() > entry.app.limits.max_batch_events {
        return Err(ApiError::bad_request(format!(
            "at most {} events per batch",
            entry.app.limits.max_batch_events
        )));
    }
    let with_info = b.batch.iter().any(|t| t.info.is_some());
    let mut infos = Vec::with_capacity(b.batch.len());
    for t in b.batch {
        infos.push(
            publish(entry, t)
                .await?
                .map_or_else(|| json!({}), Value::Object),
        );
    }
    Ok(Json(if with_info {
        json!({ "batch": infos })
    } else {
        json!({})
    }))
}

#[derive(Debug, Default, Deserialize)]
struct ChannelsQuery {
    #[serde(default)]
    filter_by_prefix: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

/// The query's fields as `T`.
///
/// # Errors
/// 400 when a field has the wrong shape.
fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

pub(crate) async fn channels(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
) -> ApiResult {
    let entry = st.signed(&id, &method, &uri, &[])?;
    let q: ChannelsQuery = query(&uri)?;
    let prefix = q.filter_by_prefix.unwrap_or_default();
    let (users, subs) = info_fields(q.info.as_deref())?;
    if subs {
        return Err(ApiError::bad_request(
            "subscription_count is available per channel only",
        ));
    }
    if users && !prefix.starts_with("presence-") {
        return Err(ApiError::bad_request(
            "user_count needs filter_by_prefix=presence-",
        ));
    }
    let mut listed: Vec<Channel> = entry
        .hub
        .local_channels()
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| matches!(c, Channel::Named(n) if n.starts_with(prefix.as_str()) && **n != *crate::state::CONTROL_CHANNEL))
        .collect();
    listed.sort_by_key(|c| c.to_string());
    let mut out = Map::new();
    for c in &listed {
        let info = channel_info(entry, c, (users, false)).await?;
        out.insert(channel_name(c).into_owned(), Value::Object(info));
    }
    Ok(Json(json!({ "channels": out })))
}

pub(crate) async fn channel(
    State(st): State<ApiState>,
    Path((id, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
) -> ApiResult {
    let entry = st.signed(&id, &method, &uri, &[])?;
    let channel = pusher_channel(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let q: ChannelsQuery = query(&uri)?;
    let fields = info_fields(q.info.as_deref())?;
    let occupied = if channel.visibility() == Visibility::Presence {
        !entry
            .hub
            .presence_members(&channel)
            .await
            .map_err(|e| ApiError::from_hub(&e))?
            .is_empty()
    } else {
        entry
            .state
            .counts
            .count(&channel)
            .await
            .map_err(|e| ApiError::from_hub(&e))?
            > 0
    };
    let mut out = channel_info(entry, &channel, fields).await?;
    out.insert("occupied".into(), json!(occupied));
    Ok(Json(Value::Object(out)))
}

pub(crate) async fn users(
    State(st): State<ApiState>,
    Path((id, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
) -> ApiResult {
    let entry = st.signed(&id, &method, &uri, &[])?;
    let channel = pusher_channel(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if channel.visibility() != Visibility::Presence {
        return Err(ApiError::bad_request(
            "users are listed for presence channels only",
        ));
    }
    let members = entry
        .hub
        .presence_members(&channel)
        .await
        .map_err(|e| ApiError::from_hub(&e))?;
    let users: Vec<Value> = members.iter().map(|m| json!({ "id": m.user_id })).collect();
    Ok(Json(json!({ "users": users })))
}

/// `POST /apps/{id}/users/{user_id}/terminate_connections`: close every connection of
/// signed-in user `user_id`, on every node, with 4009.
pub(crate) async fn terminate_connections(
    State(st): State<ApiState>,
    Path((id, user)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> ApiResult {
    let entry = st.signed(&id, &method, &uri, &body)?;
    crate::state::terminate(&entry.hub, &user)
        .await
        .map_err(|e| ApiError::from_hub(&e))?;
    Ok(Json(json!({})))
}
