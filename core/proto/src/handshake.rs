//! Messages of the secure-channel handshake (schema `handshake.capnp`; the state machine that
//! uses them is `offst_crypto::handshake`).

use crate::codec::{decode_root, encode_root, read_fixed, DecodeError, WireMessage};
use crate::schema::handshake_capnp::{handshake_message, RejectReason as WireRejectReason};
use crate::types::{DhPublicKey, PublicKey, Signature};

/// The initiator's opening message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Lowest protocol version the initiator speaks.
    pub min_version: u32,
    /// Highest protocol version the initiator speaks (≥ `min_version`).
    pub max_version: u32,
    /// The initiator's ephemeral X25519 key.
    pub ephemeral_key: DhPublicKey,
}

/// The responder's answer when it shares a version with the initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The chosen version: the highest both speak.
    pub version: u32,
    /// The responder's ephemeral X25519 key.
    pub ephemeral_key: DhPublicKey,
    /// The responder's identity.
    pub identity: PublicKey,
    /// The responder's signature over the responder transcript (docs/PROTOCOL.md).
    pub signature: Signature,
}

/// Why a responder refused a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No protocol version in common.
    IncompatibleVersion,
    /// The responder is at its connection limit; try later.
    Busy,
}

/// The responder's refusal; the connection closes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub reason: RejectReason,
    /// Lowest version the responder speaks.
    pub min_version: u32,
    /// Highest version the responder speaks.
    pub max_version: u32,
}

/// The initiator's proof of identity, the last handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The initiator's identity.
    pub identity: PublicKey,
    /// The initiator's signature over the initiator transcript (docs/PROTOCOL.md).
    pub signature: Signature,
}

/// One handshake message, as framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeMessage {
    /// Initiator → responder, first.
    Hello(Hello),
    /// Responder → initiator.
    Accept(Accept),
    /// Responder → initiator, instead of `Accept`.
    Reject(Reject),
    /// Initiator → responder, last.
    Finish(Finish),
}

impl WireMessage for HandshakeMessage {
    fn encode(&self) -> Vec<u8> {
        encode_root::<handshake_message::Owned>(|root| match self {
            HandshakeMessage::Hello(hello) => {
                let mut b = root.init_hello();
                b.set_min_version(hello.min_version);
                b.set_max_version(hello.max_version);
                b.set_ephemeral_key(hello.ephemeral_key.as_bytes());
            }
            HandshakeMessage::Accept(accept) => {
                let mut b = root.init_accept();
                b.set_version(accept.version);
                b.set_ephemeral_key(accept.ephemeral_key.as_bytes());
                b.set_identity(accept.identity.as_bytes());
                b.set_signature(accept.signature.as_bytes());
            }
            HandshakeMessage::Reject(reject) => {
                let mut b = root.init_reject();
                b.set_reason(match reject.reason {
                    RejectReason::IncompatibleVersion => WireRejectReason::IncompatibleVersion,
                    RejectReason::Busy => WireRejectReason::Busy,
                });
                b.set_min_version(reject.min_version);
                b.set_max_version(reject.max_version);
            }
            HandshakeMessage::Finish(finish) => {
                let mut b = root.init_finish();
                b.set_identity(finish.identity.as_bytes());
                b.set_signature(finish.signature.as_bytes());
            }
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_root::<handshake_message::Owned, _>(bytes, |root| {
            Ok(match root.which()? {
                handshake_message::Hello(hello) => {
                    let hello = hello?;
                    let (min_version, max_version) =
                        (hello.get_min_version(), hello.get_max_version());
                    if min_version > max_version {
                        return Err(DecodeError::Invalid("hello: minVersion > maxVersion"));
                    }
                    HandshakeMessage::Hello(Hello {
                        min_version,
                        max_version,
                        ephemeral_key: read_fixed(
                            "ephemeralKey",
                            hello.get_ephemeral_key(),
                            DhPublicKey::try_from_slice,
                        )?,
                    })
                }
                handshake_message::Accept(accept) => {
                    let accept = accept?;
                    HandshakeMessage::Accept(Accept {
                        version: accept.get_version(),
                        ephemeral_key: read_fixed(
                            "ephemeralKey",
                            accept.get_ephemeral_key(),
                            DhPublicKey::try_from_slice,
                        )?,
                        identity: read_fixed(
                            "identity",
                            accept.get_identity(),
                            PublicKey::try_from_slice,
                        )?,
                        signature: read_fixed(
                            "signature",
                            accept.get_signature(),
                            Signature::try_from_slice,
                        )?,
                    })
                }
                handshake_message::Reject(reject) => {
                    let reject = reject?;
                    HandshakeMessage::Reject(Reject {
                        reason: match reject.get_reason()? {
                            WireRejectReason::IncompatibleVersion => {
                                RejectReason::IncompatibleVersion
                            }
                            WireRejectReason::Busy => RejectReason::Busy,
                        },
                        min_version: reject.get_min_version(),
                        max_version: reject.get_max_version(),
                    })
                }
                handshake_message::Finish(finish) => {
                    let finish = finish?;
                    HandshakeMessage::Finish(Finish {
                        identity: read_fixed(
                            "identity",
                            finish.get_identity(),
                            PublicKey::try_from_slice,
                        )?,
                        signature: read_fixed(
                            "signature",
                            finish.get_signature(),
                            Signature::try_from_slice,
                        )?,
                    })
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<HandshakeMessage> {
        vec![
            HandshakeMessage::Hello(Hello {
                min_version: 1,
                max_version: 3,
                ephemeral_key: DhPublicKey::from_bytes([1; 32]),
            }),
            HandshakeMessage::Accept(Accept {
                version: 2,
                ephemeral_key: DhPublicKey::from_bytes([2; 32]),
                identity: PublicKey::from_bytes([3; 32]),
                signature: Signature::from_bytes([4; 64]),
            }),
            HandshakeMessage::Reject(Reject {
                reason: RejectReason::Busy,
                min_version: 1,
                max_version: 1,
            }),
            HandshakeMessage::Finish(Finish {
                identity: PublicKey::from_bytes([5; 32]),
                signature: Signature::from_bytes([6; 64]),
            }),
        ]
    }

    #[test]
    fn every_handshake_message_round_trips() {
        for message in samples() {
            assert_eq!(
                HandshakeMessage::decode(&message.encode()).unwrap(),
                message
            );
        }
    }

    #[test]
    fn inverted_version_range_is_rejected() {
        let message = HandshakeMessage::Hello(Hello {
            min_version: 4,
            max_version: 1,
            ephemeral_key: DhPublicKey::from_bytes([1; 32]),
        });
        assert_eq!(
            HandshakeMessage::decode(&message.encode()),
            Err(DecodeError::Invalid("hello: minVersion > maxVersion"))
        );
    }
}
