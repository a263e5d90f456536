//! Offst networking on tokio: the I/O edge under every Offst connection.
//!
//! This crate owns sockets, timers and tasks; the protocol logic it drives (handshake, records)
//! lives in `offst_crypto` as sans-I/O state machines, and the wire types in `offst_proto`.
//! docs/PROTOCOL.md ("Transport", "Relay") is the normative description.
//!
//! Layers, bottom up:
//! - [`tcp`]: dialling and accepting TCP with `TCP_NODELAY` always on.
//! - [`framed`]: length-prefixed frames (`u32` big-endian length, at most
//!   [`MAX_FRAME_LEN`](offst_proto::limits::MAX_FRAME_LEN), checked before allocating).
//! - [`secure`]: the authenticated, encrypted channel over frames: handshake with a timeout,
//!   [`SecureStream`] for request/response use and its split halves ([`SecureReceiver`],
//!   [`SecureSender`]) for a reader task and many writers; keepalive, idle timeout, periodic
//!   rekey and access control by identity.
//! - [`backoff`]: exponential backoff with jitter for every reconnecting client.
//! - [`relay_client`]: reaching and being reached by friends through relays.
//!
//! A typical client:
//! ```no_run
//! # async fn example(identity: offst_crypto::Identity, server: offst_proto::PublicKey) -> Result<(), offst_net::NetError> {
//! use offst_net::{secure, tcp, SecureConfig};
//! let config = SecureConfig::default();
//! let tcp = tcp::dial("127.0.0.1:7000", config.handshake_timeout).await?;
//! let mut stream = secure::connect(tcp, &identity, Some(server), &config, &mut rand_core::OsRng).await?;
//! stream.send(b"request").await?;
//! let reply = stream.recv().await?;
//! # Ok(()) }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

pub mod access;
pub mod backoff;
mod error;
pub mod framed;
pub mod relay_client;
pub mod secure;
pub mod shutdown;
pub mod tcp;

pub use access::{AccessControl, AllowAll, AllowList};
pub use backoff::{Backoff, BackoffPolicy};
pub use error::NetError;
pub use framed::Framed;
pub use relay_client::{ListenEvent, RelayClientConfig, RelayError, RelayListener};
pub use secure::{SecureConfig, SecureReceiver, SecureSender, SecureStream};
