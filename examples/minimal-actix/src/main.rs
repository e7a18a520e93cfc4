//! The smallest actix-web app with realtime: a Hub on SQLite, the WebSocket at `/ws?token=<JWT>`,
//! and two routes of its own that act through the Hub: `POST /rooms {"name"}` and `POST
//! /rooms/{id}/messages {"content"}` (every member's WebSocket gets the message). Tokens
//! are HS256 JWTs (`sub`: the user id). `JWT_SECRET=… cargo run -p minimal-actix`.

use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use realtime_core::{CreateRoom, Hub, JwtAuthenticator, MemoryBroker, SendMessage};
use realtime_transport_ws::WsServer;
use serde_json::{Value, json};
use std::sync::Arc;

struct State {
    hub: Hub,
    auth: Arc<JwtAuthenticator>,
}

fn failed(e: realtime_core::Error) -> HttpResponse {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({ "error": e.to_string() }))
}

/// The caller's user id, from the bearer token (created in the store on first sight).
async fn caller(st: &State, req: &HttpRequest) -> Result<String, realtime_core::Error> {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let who = st
        .auth
        .verify(&WsServer::token_from(None, h).unwrap_or_default())?;
    st.hub.ensure_user(&who).await?;
    Ok(who.user_id)
}

async fn create_room(st: web::Data<State>, req: HttpRequest, b: web::Json<Value>) -> HttpResponse {
    let name = b["name"].as_str().unwrap_or("General").to_owned();
    let room = async {
        let me = caller(&st, &req).await?;
        st.hub.create_room(&me, CreateRoom::named(name)).await
    };
    room.await
        .map_or_else(failed, |r| HttpResponse::Ok().json(r))
}

async fn post_message(
    st: web::Data<State>,
    req: HttpRequest,
    room_id: web::Path<String>,
    b: web::Json<Value>,
) -> HttpResponse {
    let room_id = room_id.into_inner();
    let content = b["content"].as_str().unwrap_or_default().to_owned();
    let sent = async {
        let me = caller(&st, &req).await?;
        st.hub
            .send_message(&me, SendMessage::text(room_id, content))
            .await
    };
    sent.await
        .map_or_else(failed, |m| HttpResponse::Ok().json(m))
}

#[actix_web::main]
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
    let state = web::Data::new(State { hub, auth });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(ws.clone()))
            .app_data(state.clone())
            .route("/ws", web::get().to(realtime_transport_ws::actix::handler))
            .route("/rooms", web::post().to(create_room))
            .route("/rooms/{id}/messages", web::post().to(post_message))
    })
    .bind(&bind)?;
    println!("listening on {}", server.addrs()[0]);
    server.run().await?;
    Ok(())
}
