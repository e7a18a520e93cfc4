//! Benches and the load generator for the realtime crates.
//!
//! **Status:** not yet implemented; placeholder so the workspace builds.
