//! `stnet`: starts a complete local Offst network on this machine — a relay, an index server and
//! several nodes with their own SQLite files, over real loopback TCP — makes friends, sets limits
//! and sends multi-hop payments (DESIGN.md §5).
//!
//! The node runtime it needs arrives with the node-runtime issue; until then this program says
//! so plainly and points at what already runs.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|arg| arg == "--help" || arg == "-h") {
        println!("stnet: run a complete local Offst network (relay, index server, nodes) on loopback.");
        println!();
        println!("Usage: stnet");
        return ExitCode::SUCCESS;
    }
    println!("stnet: the local Offst network arrives with the node runtime (not built yet).");
    println!();
    println!("What runs today:");
    println!("  .ci/test                                   every test (handshake, records, decoders, fuzz smoke)");
    println!("  cargo run --release -p offst-relay --bin strelay -- --help   the relay server");
    println!("  cargo run --release -p offst-index --bin stindex -- --help   the index server");
    println!("See README.md for the benchmarks.");
    ExitCode::SUCCESS
}
