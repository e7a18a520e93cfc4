//! `Broker` over Redis pub/sub, for running many nodes.
//!
//! **Status:** not yet implemented; this crate is a placeholder in the workspace so the
//! crate family builds together. See the project issues for the plan.
