//! The REST API of seed 000 under `/api/v1`, and the health endpoints.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, AuthUser, ClientAddr};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use realtime_core::{
    Channel, Claims, CreateRoom, Error, Event, EventType, MessageKind, Role, RoomPatch,
    SendMessage, SystemEvent, User, validate_id,
};
use serde::Deserialize;
use serde_json::{Value, json};

type Body<T> = Result<Json<T>, JsonRejection>;

/// A user as the API shows it: profile plus live presence; never the password hash.
fn user_json(state: &AppState, u: &User) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or_default();
    let live = state.hub.presence_of(&u.id);
    if live != realtime_core::UserStatus::Offline {
        v["status"] = json!(live);
    }
    v
}

// ---------------------------------------------------------------- health

/// `GET /health`: `{status, timestamp}` (seed 004's shape).
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok", "timestamp": chrono::Utc::now() }))
}

/// `GET /health/live`: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: the store answers and, with Redis, the pub/sub connection is up
/// (503 otherwise).
pub async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    if let Some(r) = &s.redis {
        let h = r.health();
        if !h.connected {
            let details = format!(
                "redis pub/sub down for {:?}",
                h.down_for.unwrap_or_default()
            );
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "details": details })),
            );
        }
    }
    match s.hub.store().list_users(0, 1).await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "sessions": s.hub.session_count() })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "details": e.to_string() })),
        ),
    }
}

// ---------------------------------------------------------------- users

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    /// Optional id (defaults to a UUID v7).
    #[serde(default)]
    pub id: Option<String>,
    /// Unique handle.
    pub username: String,
    /// Password (8+ bytes), hashed with argon2.
    #[serde(default)]
    pub password: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// `POST /api/v1/users`: register (open; no token needed). 201 with the user.
///
/// Field limits (422 beyond them): `id` and `username` 1–128 bytes of
/// `[A-Za-z0-9_\-=@,.;]`, `display_name` 1–200 bytes, `email` 254, `avatar` 2,048,
/// `password` 8–1,024. At most `REGISTRATIONS_PER_MINUTE` per client address (429).
pub async fn create_user(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Body<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    s.guard.registration(addr)?;
    let id = b.id.unwrap_or_else(realtime_core::ids::new_id);
    validate_id("id", &id)?;
    let mut u = User::new(id, b.username, chrono::Utc::now());
    u.display_name = b.display_name;
    u.email = b.email;
    u.avatar = b.avatar;
    s.hub.config().limits.check_profile(&u)?;
    if let Some(pw) = b.password {
        u.password_hash = Some(s.guard.hash_password(pw).await?);
    }
    s.hub.store().create_user(&u).await?;
    Ok((StatusCode::CREATED, Json(user_json(&s, &u))))
}

/// Paging query.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// Skip this many.
    #[serde(default)]
    pub offset: u32,
    /// At most this many (default 50, at most 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/users`: `{users, offset, limit}`.
pub async fn list_users(
    State(s): State<AppState>,
    _me: AuthUser,
    Query(p): Query<Page>,
) -> ApiResult<impl IntoResponse> {
    let limit = p.limit.unwrap_or(50).min(200);
    let users = s.hub.store().list_users(p.offset, limit).await?;
    let users: Vec<Value> = users.iter().map(|u| user_json(&s, u)).collect();
    Ok(Json(
        json!({ "users": users, "offset": p.offset, "limit": limit }),
    ))
}

/// `GET /api/v1/users/:id`.
pub async fn get_user(
    State(s): State<AppState>,
    _me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let u = s
        .hub
        .store()
        .get_user(&id)
        .await?
        .ok_or(Error::NotFound { kind: "user", id })?;
    Ok(Json(user_json(&s, &u)))
}

/// Body of `PUT /api/v1/users/:id`.
#[derive(Debug, Deserialize)]
pub struct UserPatch {
    /// New handle.
    #[serde(default)]
    pub username: Option<String>,
    /// New display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New email.
    #[serde(default)]
    pub email: Option<String>,
    /// New avatar.
    #[serde(default)]
    pub avatar: Option<String>,
    /// New password.
    #[serde(default)]
    pub password: Option<String>,
}

/// `PUT /api/v1/users/:id`: a user edits their own profile; publishes `event.user.profile.update`.
/// The fields' limits are those of `POST /api/v1/users` (422 beyond them).
pub async fn update_user(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    body: Body<UserPatch>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    if me.0.user_id != id {
        return Err(Error::Forbidden("users can only edit themselves".into()).into());
    }
    let store = s.hub.store();
    let mut u = store.get_user(&id).await?.ok_or(Error::NotFound {
        kind: "user",
        id: id.clone(),
    })?;
    if let Some(n) = b.username {
        u.username = n;
    }
    if b.display_name.is_some() {
        u.display_name = b.display_name;
    }
    if b.email.is_some() {
        u.email = b.email;
    }
    if b.avatar.is_some() {
        u.avatar = b.avatar;
    }
    s.hub.config().limits.check_profile(&u)?;
    if let Some(pw) = b.password {
        u.password_hash = Some(s.guard.hash_password(pw).await?);
    }
    u.updated_at = chrono::Utc::now();
    store.update_user(&u).await?;
    let ev = Event::new(EventType::USER_PROFILE_UPDATE, user_json(&s, &u)).with_user(id);
    s.hub.publish(&[Channel::Presence], ev).await?;
    Ok(Json(user_json(&s, &u)))
}

/// `DELETE /api/v1/users/:id`: a user deletes their own account. 204.
pub async fn delete_user(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    if me.0.user_id != id {
        return Err(Error::Forbidden("users can only delete themselves".into()).into());
    }
    if !s.hub.store().delete_user(&id).await? {
        return Err(Error::NotFound { kind: "user", id }.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize)]
pub struct Login {
    /// Handle.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/auth/login`: `{token, token_type, expires_in, user}`; 401 on bad credentials.
/// At most `LOGINS_PER_MINUTE` attempts per client address and per username (429 with
/// `Retry-After`).
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Body<Login>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    let bad = || ApiError::from(Error::Unauthenticated("wrong username or password".into()));
    if validate_id("username", &b.username).is_err() {
        return Err(bad());
    }
    s.guard.login_attempt(addr, &b.username)?;
    let u = s
        .hub
        .store()
        .get_user_by_username(&b.username)
        .await?
        .ok_or_else(bad)?;
    let ok = match u.password_hash.clone() {
        Some(h) => s.guard.verify_password(b.password, h).await?,
        None => false,
    };
    if !ok {
        return Err(bad());
    }
    let mut claims = Claims::new(u.id.clone(), s.config.token_ttl_secs);
    claims.username = Some(u.username.clone());
    let token = s
        .auth
        .issue(&claims)
        .map_err(|e| ApiError::new(StatusCode::NOT_IMPLEMENTED, "cannot_issue", e.to_string()))?;
    Ok(Json(
        json!({ "token": token, "token_type": "Bearer", "expires_in": s.config.token_ttl_secs, "user": user_json(&s, &u) }),
    ))
}

// ---------------------------------------------------------------- rooms

/// `POST /api/v1/rooms`: create a group room owned by the caller. 201.
pub async fn create_room(
    State(s): State<AppState>,
    me: AuthUser,
    body: Body<CreateRoom>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    let room = s.hub.create_room(&me.0.user_id, b).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// `GET /api/v1/rooms`: the caller's rooms with `unread_count`: `{rooms}`.
pub async fn list_rooms(
    State(s): State<AppState>,
    me: AuthUser,
    Query(p): Query<Page>,
) -> ApiResult<impl IntoResponse> {
    let me = &me.0.user_id;
    let rooms = s
        .hub
        .list_rooms(me, p.offset, p.limit.unwrap_or(100).min(100))
        .await?;
    let mut out = Vec::with_capacity(rooms.len());
    for r in rooms {
        let unread = s.hub.store().unread_count(&r.id, me).await?;
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["unread_count"] = json!(unread);
        out.push(v);
    }
    Ok(Json(json!({ "rooms": out })))
}

/// `GET /api/v1/rooms/:id`.
pub async fn get_room(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.hub.get_room(&me.0.user_id, &id).await?))
}

/// `PUT /api/v1/rooms/:id`: owner/admin.
pub async fn update_room(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    body: Body<RoomPatch>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    Ok(Json(s.hub.update_room(&me.0.user_id, &id, b).await?))
}

/// `DELETE /api/v1/rooms/:id`: owner. 204.
pub async fn delete_room(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.hub.delete_room(&me.0.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/rooms/:id/join` (seed 000's room join flow): the membership.
pub async fn join_room(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.hub.join_room(&me.0.user_id, &id).await?))
}

/// `POST /api/v1/rooms/:id/leave`. 204.
pub async fn leave_room(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.hub.leave_room(&me.0.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/rooms/:id/members`: `{members}`.
pub async fn list_members(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(
        json!({ "members": s.hub.list_members(&me.0.user_id, &id).await? }),
    ))
}

/// Body of `POST /api/v1/rooms/:id/members`.
#[derive(Debug, Deserialize)]
pub struct AddMember {
    /// Who.
    pub user_id: String,
    /// `member` (default) or `admin`.
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /api/v1/rooms/:id/members`: owner/admin adds a member. 201.
pub async fn add_member(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    body: Body<AddMember>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    let role = match b.role.as_deref() {
        None => Role::Member,
        Some(r) => Role::parse(r)?,
    };
    let m = s
        .hub
        .add_member(&me.0.user_id, &id, &b.user_id, role)
        .await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// `DELETE /api/v1/rooms/:id/members/:user_id`. 204.
pub async fn remove_member(
    State(s): State<AppState>,
    me: AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    s.hub.remove_member(&me.0.user_id, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/rooms/:id/invites`.
#[derive(Debug, Default, Deserialize)]
pub struct NewInvite {
    /// Only this user may answer; anyone with the code when absent.
    #[serde(default)]
    pub invitee: Option<String>,
}

/// `POST /api/v1/rooms/:id/invites`: owner/admin. 201 with the invite (its `code`).
pub async fn create_invite(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    body: Option<Json<NewInvite>>,
) -> ApiResult<impl IntoResponse> {
    let b = body.map(|j| j.0).unwrap_or_default();
    let inv = s.hub.create_invite(&me.0.user_id, &id, b.invitee).await?;
    Ok((StatusCode::CREATED, Json(inv)))
}

/// `POST /api/v1/rooms/invites/:code/accept`: the membership.
pub async fn accept_invite(
    State(s): State<AppState>,
    me: AuthUser,
    Path(code): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.hub.accept_invite(&me.0.user_id, &code).await?))
}

/// `POST /api/v1/rooms/invites/:code/reject`. 204.
pub async fn reject_invite(
    State(s): State<AppState>,
    me: AuthUser,
    Path(code): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.hub.reject_invite(&me.0.user_id, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- messages

/// Body of `POST /api/v1/messages` (seed 000: `{room_id, content, type}`).
#[derive(Debug, Deserialize)]
pub struct NewMessageBody {
    /// Room.
    pub room_id: String,
    /// Content.
    pub content: String,
    /// `text` / `TEXT` (default), `file`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Idempotency key.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `POST /api/v1/messages` (seed 000's message flow): 201 with the stored message.
pub async fn send_message(
    State(s): State<AppState>,
    me: AuthUser,
    body: Body<NewMessageBody>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    let kind = match b.kind.as_deref() {
        None => MessageKind::Text,
        Some(k) => MessageKind::parse(k)?,
    };
    let req = SendMessage {
        room_id: b.room_id,
        content: b.content,
        kind,
        client_id: b.client_id,
    };
    let m = s.hub.send_message(&me.0.user_id, req).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// `GET /api/v1/messages/:id`: the message with its `reactions` grouped by emoji.
pub async fn get_message(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let m = s.hub.get_message(&me.0.user_id, &id).await?;
    let reactions = s.hub.store().list_reactions(&m.id).await?;
    let mut v = serde_json::to_value(&m).unwrap_or_default();
    v["reactions"] = json!(realtime_core::ReactionSet::from_reactions(&reactions).summary());
    Ok(Json(v))
}

/// Body of `PUT /api/v1/messages/:id`.
#[derive(Debug, Deserialize)]
pub struct EditBody {
    /// New content.
    pub content: String,
}

/// `PUT /api/v1/messages/:id`: the sender edits.
pub async fn edit_message(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    body: Body<EditBody>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    Ok(Json(
        s.hub.edit_message(&me.0.user_id, &id, b.content).await?,
    ))
}

/// `DELETE /api/v1/messages/:id`: the sender or a room owner/admin; the tombstone.
pub async fn delete_message(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.hub.delete_message(&me.0.user_id, &id).await?))
}

/// Body (or query) of the reaction endpoints.
#[derive(Debug, Deserialize)]
pub struct EmojiBody {
    /// The emoji.
    pub emoji: String,
}

/// `?emoji=` of the reaction removal.
#[derive(Debug, Deserialize)]
pub struct EmojiQuery {
    /// The emoji.
    #[serde(default)]
    pub emoji: Option<String>,
}

/// `POST /api/v1/messages/:id/reactions` `{emoji}`: `{changed}` (false when already there).
pub async fn add_reaction(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    body: Body<EmojiBody>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    Ok(Json(
        json!({ "changed": s.hub.react(&me.0.user_id, &id, &b.emoji, true).await? }),
    ))
}

/// `DELETE /api/v1/messages/:id/reactions` with `{emoji}` as body or `?emoji=`: `{changed}`.
pub async fn remove_reaction(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    Query(q): Query<EmojiQuery>,
    body: Option<Json<EmojiBody>>,
) -> ApiResult<impl IntoResponse> {
    let emoji = body.map(|b| b.0.emoji).or(q.emoji).ok_or_else(|| {
        ApiError::from(Error::Invalid {
            field: "emoji",
            reason: "give it in the body or as ?emoji=".into(),
        })
    })?;
    Ok(Json(
        json!({ "changed": s.hub.react(&me.0.user_id, &id, &emoji, false).await? }),
    ))
}

/// `POST /api/v1/messages/:id/read`: `{seq}`, the caller's read pointer in the room.
pub async fn read_message(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(
        json!({ "seq": s.hub.read_message(&me.0.user_id, &id).await? }),
    ))
}

/// Query of `GET /api/v1/rooms/:id/messages`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Messages before this `seq`.
    #[serde(default)]
    pub before: Option<u64>,
    /// Page size (default 50, at most 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/rooms/:id/messages?before&limit`: `{messages (oldest first), has_more}`.
pub async fn room_messages(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(
        s.hub
            .history(&me.0.user_id, &id, q.before, q.limit.unwrap_or(50))
            .await?,
    ))
}

/// `POST /api/v1/rooms/:id/typing/start`. 204.
pub async fn typing_start(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.hub.typing(&me.0.user_id, &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/rooms/:id/typing/stop`. 204.
pub async fn typing_stop(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.hub.typing(&me.0.user_id, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- events

/// `GET /api/v1/events/metrics`: the Hub's counters plus `sessions`.
pub async fn metrics(State(s): State<AppState>, _me: AuthUser) -> impl IntoResponse {
    let mut v = serde_json::to_value(s.hub.metrics()).unwrap_or_default();
    v["sessions"] = json!(s.hub.session_count());
    Json(v)
}

/// Body of `POST /api/v1/events/system`.
#[derive(Debug, Deserialize)]
pub struct SystemBody {
    /// `maintenance`, `shutdown` or `broadcast`.
    #[serde(rename = "type")]
    pub kind: SystemEvent,
    /// Payload.
    #[serde(default)]
    pub data: Value,
}

/// `POST /api/v1/events/system`: admins publish a system event. 202 with the event.
pub async fn system_event(
    State(s): State<AppState>,
    me: AuthUser,
    body: Body<SystemBody>,
) -> ApiResult<impl IntoResponse> {
    let Json(b) = body?;
    if !s.is_admin(&me.0) {
        return Err(Error::Forbidden("only admins publish system events".into()).into());
    }
    let ev = s.hub.broadcast_system(b.kind, b.data).await?;
    Ok((StatusCode::ACCEPTED, Json(ev)))
}

/// Query of `GET /api/v1/events/history`.
#[derive(Debug, Deserialize)]
pub struct EventHistoryQuery {
    /// Event type prefix, e.g. `event.message.`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// At most this many (default and most 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /api/v1/events/history?type&limit`: `{events}`, newest first, of this node.
pub async fn event_history(
    State(s): State<AppState>,
    _me: AuthUser,
    Query(q): Query<EventHistoryQuery>,
) -> impl IntoResponse {
    let events = s
        .hub
        .event_history(q.kind.as_deref(), q.limit.unwrap_or(100).min(100));
    let events: Vec<&Event> = events.iter().map(|e| &**e).collect();
    Json(json!({ "events": events }))
}
