//! Reference chat server for seed 000.
//!
//! **Status:** not yet implemented: the server arrives with the transport crate.

fn main() {
    eprintln!("chat-server is not implemented yet; see the project issues");
    std::process::exit(2);
}
