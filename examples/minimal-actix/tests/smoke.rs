//! The example serves: see `examples/minimal-smoke.rs`.

#[path = "../../minimal-smoke.rs"]
mod smoke;

#[tokio::test]
async fn a_message_posted_over_rest_reaches_a_websocket() {
    smoke::run(env!("CARGO_BIN_EXE_minimal-actix")).await;
}
