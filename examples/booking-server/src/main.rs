//! `cargo run -p booking-server` — see `--help` for flags and their environment variables.

use clap::Parser;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = booking_server::Config::parse();
    if let Err(e) = booking_server::serve(config).await {
        tracing::error!("booking-server failed: {e}");
        std::process::exit(1);
    }
}
