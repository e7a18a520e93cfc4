//! Benches and the load generator for the realtime crates: `benches/hot_paths.rs` (criterion) and `src/bin/loadgen.rs`.
