//! # realtime-transport-ws
//!
//! WebSocket connections for a [`realtime_core::Hub`]: the native wire dialect
//! ([`native`], seed 000's `{type, data}` frames), authentication at the upgrade or by a
//! first `auth` frame, heartbeats, size and rate limits, slow-consumer handling, reconnect
//! recovery, and glue for axum (feature `axum`, default) and actix-web (feature `actix`).
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | [`axum::route`]: a `GET` route that authenticates, checks the origin and upgrades; [`server::serve`]: an HTTP server with header timeouts and a connection cap |
//! | `actix` | no | `actix::handler`: the same for actix-web, through actix-ws |
//!
//! Close codes are in [`frame::close`]; the frames of the native dialect in [`native`].

mod ctl;
pub mod dialect;
pub mod driver;
pub mod frame;
#[cfg(feature = "axum")]
mod io;
pub mod native;
mod writer;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "axum")]
pub mod server;

pub use dialect::{AuthFrame, Closing, Dialect, Opening, Outbox};
pub use driver::{ConnInfo, WsConfig, WsServer};
pub use frame::{Frame, WsError};
#[cfg(feature = "axum")]
#[doc(hidden)]
pub use io::decode_client_bytes;
pub use native::{NativeDialect, NativeEncoder};
