//! WebSocket transport for the realtime crates: connection driver, wire dialects and
//! axum / actix-web glue.
//!
//! **Status:** not yet implemented; this crate is a placeholder in the workspace so the
//! crate family builds together. See the project issues for the plan.
