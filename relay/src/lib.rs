//! The Offst relay: a meeting point for nodes that cannot accept connections
//! (docs/PROTOCOL.md, "Relay"; docs/ARCHITECTURE.md).
//!
//! Nodes connect out to the relay over the secure channel. A node keeps a *listening*
//! connection; a friend sends `Connect(target)`; the relay announces the caller to the
//! listener, which (if it allows the caller) opens an `Accept(caller)` connection; the relay
//! then splices the two connections and copies bytes. Inside the tunnel the two nodes run
//! their own end-to-end secure channel, so the relay sees public keys and ciphertext only.
//!
//! This crate is the server library; `strelay` (src/bin) is a thin binary that only parses
//! flags and the config file. The node side of the protocol is `offst_net::relay_client`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

pub mod config;
pub mod metrics;
pub mod rate;
pub mod server;
pub mod splice;

pub use config::{Limits, RelayConfig};
pub use metrics::Metrics;
pub use server::{RelayHandle, RelayServer, RelayServerError};
