//! `cargo run -p booking-server` — see `--help` for flags and their environment variables.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = booking_server::Config::parse();
    let runtime = realtime_transport_ws::server::runtime(config.worker_threads);
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(booking_server::serve(config)) {
        tracing::error!("booking-server failed: {e}");
        std::process::exit(1);
    }
}
