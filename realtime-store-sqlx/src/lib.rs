//! `Store` for SQLite (embedded default) and PostgreSQL through sqlx.
//!
//! **Status:** not yet implemented; this crate is a placeholder in the workspace so the
//! crate family builds together. See the project issues for the plan.
