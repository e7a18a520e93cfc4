//! The smallest axum app with realtime: a Hub on SQLite, the WebSocket at `/ws?token=<JWT>`,
//! and two routes of its own that act through the Hub: `POST /rooms {"name"}` and `POST
//! /rooms/{id}/messages {"content"}` (every member's WebSocket gets the message). Tokens
//! are HS256 JWTs (`sub`: the user id). `JWT_SECRET=… cargo run -p minimal-axum`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Json, Router, routing::post};
use realtime_core::{CreateRoom, Hub, JwtAuthenticator, MemoryBroker, SendMessage};
use realtime_transport_ws::WsServer;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone)]
struct App {
    hub: Hub,
    auth: Arc<JwtAuthenticator>,
}

type Reply = Result<Json<Value>, (StatusCode, String)>;

fn failed(e: realtime_core::Error) -> (StatusCode, String) {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, e.to_string())
}

/// The caller's user id, from the bearer token (created in the store on first sight).
async fn caller(app: &App, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let who = app
        .auth
        .verify(&WsServer::token_from(None, h).unwrap_or_default());
    let who = who.map_err(failed)?;
    app.hub.ensure_user(&who).await.map_err(failed)?;
    Ok(who.user_id)
}

async fn create_room(State(app): State<App>, headers: HeaderMap, Json(b): Json<Value>) -> Reply {
    let me = caller(&app, &headers).await?;
    let name = b["name"].as_str().unwrap_or("General").to_owned();
    let req = CreateRoom::named(name);
    Ok(Json(json!(
        app.hub.create_room(&me, req).await.map_err(failed)?
    )))
}

async fn post_message(
    State(app): State<App>,
    headers: HeaderMap,
    Path(room_id): Path<String>,
    Json(b): Json<Value>,
) -> Reply {
    let me = caller(&app, &headers).await?;
    let content = b["content"].as_str().unwrap_or_default().to_owned();
    let req = SendMessage::text(room_id, content);
    Ok(Json(json!(
        app.hub.send_message(&me, req).await.map_err(failed)?
    )))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("JWT_SECRET").map_err(|_| "set JWT_SECRET (32 bytes or more)")?;
    let db = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://minimal.db".into());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let hub = Hub::new(
        realtime_store_sqlx::connect(&db).await?,
        Arc::new(MemoryBroker::new()),
    );
    let auth = Arc::new(JwtAuthenticator::hs256(secret.as_bytes()));
    let ws = WsServer::new(hub.clone(), auth.clone());
    let app = Router::new()
        .route("/ws", realtime_transport_ws::axum::route(ws))
        .route("/rooms", post(create_room))
        .route("/rooms/{id}/messages", post(post_message))
        .with_state(App { hub, auth });
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on {}", listener.local_addr()?);
    let stop = async { tokio::signal::ctrl_c().await.unwrap_or_default() };
    realtime_transport_ws::server::serve(listener, app, Default::default(), stop).await?;
    Ok(())
}
