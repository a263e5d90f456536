//! Relay protocol messages (schema `relay.capnp`). Filled in by the issue that builds the relay protocol.
