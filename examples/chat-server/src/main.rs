//! `cargo run --release -p chat-server` — see `--help` for flags and their environment variables.

/// jemalloc serves every allocation of the process, Rust's and SQLite's (feature `jemalloc`,
/// on by default). Against glibc's allocator it took 4–9 % less server CPU per delivery at
/// W2 10 msg/s and 7–9 % less at W1 C = 10,000, with idle memory 7.5 → 7.6–7.7 KiB per
/// connection (`benches/run.sh` cells and alternating pairs on the benchmark machine).
/// Build with `--no-default-features` for the system allocator.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let config = chat_server::Config::parse();
    let runtime = realtime_transport_ws::server::runtime(config.worker_threads);
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(chat_server::serve(config)) {
        tracing::error!("chat-server failed: {e}");
        std::process::exit(1);
    }
}
