//! Index protocol messages (schema `index.capnp`). Filled in by the issue that builds the index protocol.
