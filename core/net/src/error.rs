//! The one error type of this crate.

use std::time::Duration;

use offst_crypto::handshake::HandshakeError;
use offst_crypto::record::RecordError;
use offst_proto::PublicKey;

/// Why a connection failed. Every variant except [`NetError::Io`] describes something the peer
/// (or the network) did; the connection is closed after any error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A socket operation failed.
    #[error("network I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame larger than allowed; nothing was allocated for it.
    #[error("peer announced a frame of {len} bytes, over the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced payload length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("connection closed in the middle of a frame ({received} of {expected} bytes)")]
    TruncatedFrame {
        /// Bytes of the frame (header included) that arrived.
        received: usize,
        /// Bytes the frame needed (header included; 4 while the header itself is incomplete).
        expected: usize,
    },
    /// The connection closed before the handshake finished.
    #[error("peer closed the connection during the handshake")]
    ClosedDuringHandshake,
    /// The handshake failed: malformed message, wrong peer identity, forged signature,
    /// incompatible protocol version, busy responder.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The handshake did not finish in time (a slow or silent peer).
    #[error("handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// A record failed to open: forged, tampered with, replayed or reordered.
    #[error("bad record from peer: {0}")]
    Record(#[from] RecordError),
    /// Nothing (not even a keepalive) arrived from the peer for the idle timeout.
    #[error("no data or keepalive from the peer for {0:?}")]
    IdleTimeout(Duration),
    /// A write did not complete in time: the peer stopped reading.
    #[error("peer did not accept data for {0:?}")]
    WriteTimeout(Duration),
    /// Our access control refused the authenticated peer.
    #[error("peer {0} is not allowed to connect")]
    PeerRefused(PublicKey),
    /// A message to send is larger than one record can carry.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message length.
        len: usize,
        /// The largest message a record carries.
        max: usize,
    },
    /// A [`SecureSender::try_send`](crate::SecureSender::try_send) found the queue full: the
    /// peer is not keeping up.
    #[error("send queue is full; the peer is not keeping up")]
    SendQueueFull,
    /// The connection is closed (by us, by the peer, or after an earlier error).
    #[error("connection closed")]
    Closed,
}
