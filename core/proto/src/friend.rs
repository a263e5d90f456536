//! Friend protocol messages (schema `friend.capnp`). Filled in by the issue that builds the friend protocol.
