//! The secure-channel handshake, as a sans-I/O state machine (docs/PROTOCOL.md,
//! "Secure channel"). It takes the peer's bytes and the caller's RNG and returns the bytes to
//! send; framing, sockets, timeouts and access control are the caller's.
//!
//! ```text
//! initiator                                         responder
//!   Hello{minVersion, maxVersion, e_i}        ->
//!                                             <-    Accept{version, e_r, id_r, sig_r}  (or Reject)
//!   Finish{id_i, sig_i}                       ->
//!   ==== records, keys from HKDF(salt = H(transcript), ikm = X25519(e_i, e_r)) ====
//! ```
//!
//! `sig_r` signs the responder transcript (versions, both ephemeral keys, `id_r`) under the tag
//! `offst/v1/handshake/responder`; `sig_i` signs the same plus `sig_r` and `id_i` under
//! `offst/v1/handshake/initiator`. Each side thus proves its identity over a transcript bound
//! to the fresh ephemeral keys of this connection and, for the initiator, to the responder it
//! meant to reach. The states are types: each step consumes the previous state.

use offst_proto::canonical::{domain, CanonicalWriter};
use offst_proto::handshake::{Accept, Finish, HandshakeMessage, Hello, Reject, RejectReason};
use offst_proto::limits::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use offst_proto::{DecodeError, DhPublicKey, PublicKey, Signature, WireMessage};

use crate::dh::EphemeralSecret;
use crate::hash::sha512_256;
use crate::identity::{verify_signature, Identity};
use crate::kdf::derive_key;
use crate::record::{RecordReceiver, RecordSender, SecureChannel};
use crate::{CryptoError, SecureRngDyn};

const INFO_INITIATOR_TO_RESPONDER: &[u8] = b"offst/v1/key/initiator-to-responder";
const INFO_RESPONDER_TO_INITIATOR: &[u8] = b"offst/v1/key/responder-to-initiator";

/// The protocol versions a side speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// Lowest version spoken.
    pub min: u32,
    /// Highest version spoken.
    pub max: u32,
}

impl Default for VersionRange {
    fn default() -> Self {
        VersionRange {
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        }
    }
}

/// Why a handshake failed. The connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer's message did not decode.
    #[error("malformed handshake message: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent a message out of turn.
    #[error("unexpected handshake message: expected {expected}, got {got}")]
    UnexpectedMessage {
        /// What this state expects.
        expected: &'static str,
        /// What arrived.
        got: &'static str,
    },
    /// No protocol version in common.
    #[error(
        "incompatible protocol versions: we speak {local_min}..={local_max}, \
         the peer speaks {remote_min}..={remote_max}; upgrade the older side"
    )]
    IncompatibleVersion {
        /// Lowest version we speak.
        local_min: u32,
        /// Highest version we speak.
        local_max: u32,
        /// Lowest version the peer speaks.
        remote_min: u32,
        /// Highest version the peer speaks.
        remote_max: u32,
    },
    /// The responder is at its connection limit.
    #[error("the peer is busy (at its connection limit); retry later")]
    Busy,
    /// The responder is not the identity the initiator meant to reach.
    #[error("connected to {actual} but expected {expected}")]
    WrongPeer {
        /// The identity we dialled.
        expected: PublicKey,
        /// The identity that answered.
        actual: PublicKey,
    },
    /// A transcript signature did not verify: forged, or a man in the middle.
    #[error("handshake signature of {0} does not verify")]
    BadSignature(PublicKey),
    /// The peer's ephemeral key is of low order.
    #[error("peer sent a low-order ephemeral key")]
    WeakKey,
    /// The peer presented our own identity (a loop, or a stolen key).
    #[error("peer presented our own identity")]
    SelfConnection,
}

fn message_name(message: &HandshakeMessage) -> &'static str {
    match message {
        HandshakeMessage::Hello(_) => "hello",
        HandshakeMessage::Accept(_) => "accept",
        HandshakeMessage::Reject(_) => "reject",
        HandshakeMessage::Finish(_) => "finish",
    }
}

/// The result of a completed handshake.
pub struct Established {
    /// The authenticated identity of the peer.
    pub peer: PublicKey,
    /// The protocol version both sides will speak.
    pub version: u32,
    /// The record layer, keyed for this connection.
    pub channel: SecureChannel,
}

/// The fields both signatures and the key schedule cover, in canonical order.
struct Transcript {
    hello: Hello,
    version: u32,
    responder_ephemeral: DhPublicKey,
    responder: PublicKey,
}

impl Transcript {
    fn write(&self, writer: &mut CanonicalWriter) {
        writer
            .u32(self.hello.min_version)
            .u32(self.hello.max_version)
            .fixed(self.hello.ephemeral_key.as_bytes())
            .u32(self.version)
            .fixed(self.responder_ephemeral.as_bytes())
            .fixed(self.responder.as_bytes());
    }

    fn responder_signing_bytes(&self) -> Vec<u8> {
        let mut writer = CanonicalWriter::new(domain::HANDSHAKE_RESPONDER);
        self.write(&mut writer);
        writer.finish()
    }

    fn initiator_signing_bytes(
        &self,
        responder_signature: &Signature,
        initiator: &PublicKey,
    ) -> Vec<u8> {
        let mut writer = CanonicalWriter::new(domain::HANDSHAKE_INITIATOR);
        self.write(&mut writer);
        writer
            .fixed(responder_signature.as_bytes())
            .fixed(initiator.as_bytes());
        writer.finish()
    }

    fn hash(
        &self,
        responder_signature: &Signature,
        initiator: &PublicKey,
        initiator_signature: &Signature,
    ) -> [u8; 32] {
        let mut writer = CanonicalWriter::new(domain::HANDSHAKE_TRANSCRIPT);
        self.write(&mut writer);
        writer
            .fixed(responder_signature.as_bytes())
            .fixed(initiator.as_bytes())
            .fixed(initiator_signature.as_bytes());
        *sha512_256(&writer.finish()).as_bytes()
    }
}

/// Derives `(initiator→responder, responder→initiator)` keys.
fn session_keys(
    secret: EphemeralSecret,
    peer_ephemeral: &DhPublicKey,
    transcript_hash: &[u8; 32],
) -> Result<(RecordKeyPair, RecordKeyPair), HandshakeError> {
    let shared = secret.agree(peer_ephemeral).map_err(|err| match err {
        CryptoError::WeakDhKey => HandshakeError::WeakKey,
        _ => HandshakeError::WeakKey,
    })?;
    let i2r = derive_key(transcript_hash, &shared.0[..], INFO_INITIATOR_TO_RESPONDER);
    let r2i = derive_key(transcript_hash, &shared.0[..], INFO_RESPONDER_TO_INITIATOR);
    Ok((RecordKeyPair(i2r), RecordKeyPair(r2i)))
}

struct RecordKeyPair(zeroize::Zeroizing<[u8; 32]>);

/// Chooses the highest version both ranges contain.
fn choose_version(local: VersionRange, hello: &Hello) -> Option<u32> {
    let high = local.max.min(hello.max_version);
    let low = local.min.max(hello.min_version);
    (high >= low).then_some(high)
}

/// The initiator after sending `Hello`, waiting for `Accept` or `Reject`.
pub struct Initiator {
    identity: Identity,
    expected_responder: Option<PublicKey>,
    versions: VersionRange,
    ephemeral: EphemeralSecret,
    hello: Hello,
}

impl Initiator {
    /// Starts a handshake: returns the state and the `Hello` to send. With
    /// `expected_responder`, a responder with any other identity is refused
    /// ([`HandshakeError::WrongPeer`]); without, any identity is accepted and reported.
    pub fn start(
        identity: Identity,
        expected_responder: Option<PublicKey>,
        versions: VersionRange,
        rng: &mut dyn SecureRngDyn,
    ) -> (Initiator, Vec<u8>) {
        let ephemeral = EphemeralSecret::generate(rng);
        let hello = Hello {
            min_version: versions.min,
            max_version: versions.max,
            ephemeral_key: ephemeral.public_key(),
        };
        let message = HandshakeMessage::Hello(hello.clone()).encode();
        let initiator = Initiator {
            identity,
            expected_responder,
            versions,
            ephemeral,
            hello,
        };
        (initiator, message)
    }

    /// Handles the responder's answer. On success returns the established channel and the
    /// `Finish` message to send before any record.
    pub fn handle_reply(self, bytes: &[u8]) -> Result<(Established, Vec<u8>), HandshakeError> {
        let accept = match HandshakeMessage::decode(bytes)? {
            HandshakeMessage::Accept(accept) => accept,
            HandshakeMessage::Reject(Reject {
                reason: RejectReason::IncompatibleVersion,
                min_version,
                max_version,
            }) => {
                return Err(HandshakeError::IncompatibleVersion {
                    local_min: self.versions.min,
                    local_max: self.versions.max,
                    remote_min: min_version,
                    remote_max: max_version,
                })
            }
            HandshakeMessage::Reject(Reject {
                reason: RejectReason::Busy,
                ..
            }) => return Err(HandshakeError::Busy),
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "accept",
                    got: message_name(&other),
                })
            }
        };
        if let Some(expected) = self.expected_responder {
            if expected != accept.identity {
                return Err(HandshakeError::WrongPeer {
                    expected,
                    actual: accept.identity,
                });
            }
        }
        if accept.identity == self.identity.public_key() {
            return Err(HandshakeError::SelfConnection);
        }
        if accept.version < self.versions.min.max(self.hello.min_version)
            || accept.version > self.versions.max
        {
            return Err(HandshakeError::IncompatibleVersion {
                local_min: self.versions.min,
                local_max: self.versions.max,
                remote_min: accept.version,
                remote_max: accept.version,
            });
        }
        let transcript = Transcript {
            hello: self.hello,
            version: accept.version,
            responder_ephemeral: accept.ephemeral_key,
            responder: accept.identity,
        };
        verify_signature(
            &accept.identity,
            &transcript.responder_signing_bytes(),
            &accept.signature,
        )
        .map_err(|_| HandshakeError::BadSignature(accept.identity))?;
        let initiator = self.identity.public_key();
        let signature = self
            .identity
            .sign(&transcript.initiator_signing_bytes(&accept.signature, &initiator));
        let transcript_hash = transcript.hash(&accept.signature, &initiator, &signature);
        let (i2r, r2i) = session_keys(self.ephemeral, &accept.ephemeral_key, &transcript_hash)?;
        let finish = HandshakeMessage::Finish(Finish {
            identity: initiator,
            signature,
        })
        .encode();
        let established = Established {
            peer: accept.identity,
            version: accept.version,
            channel: SecureChannel {
                sender: RecordSender::new(i2r.0),
                receiver: RecordReceiver::new(r2i.0),
            },
        };
        Ok((established, finish))
    }
}

/// A responder that has not yet received `Hello`.
pub struct Responder {
    identity: Identity,
    versions: VersionRange,
}

/// A refused `Hello`: the error, and the `Reject` to send (if any) before closing.
#[derive(Debug)]
pub struct Refusal {
    /// Why the handshake failed.
    pub error: HandshakeError,
    /// The message to send to the initiator before closing, if the protocol has one.
    pub reply: Option<Vec<u8>>,
}

impl From<HandshakeError> for Refusal {
    fn from(error: HandshakeError) -> Self {
        Refusal { error, reply: None }
    }
}

impl Responder {
    /// A responder for `identity` speaking `versions`.
    pub fn new(identity: Identity, versions: VersionRange) -> Responder {
        Responder { identity, versions }
    }

    /// The `Reject{busy}` a server at its connection limit sends instead of answering.
    pub fn busy_reply(versions: VersionRange) -> Vec<u8> {
        HandshakeMessage::Reject(Reject {
            reason: RejectReason::Busy,
            min_version: versions.min,
            max_version: versions.max,
        })
        .encode()
    }

    /// Handles the initiator's `Hello`: returns the state waiting for `Finish` and the
    /// `Accept` to send.
    pub fn handle_hello(
        self,
        bytes: &[u8],
        rng: &mut dyn SecureRngDyn,
    ) -> Result<(AwaitingFinish, Vec<u8>), Refusal> {
        let hello = match HandshakeMessage::decode(bytes).map_err(HandshakeError::from)? {
            HandshakeMessage::Hello(hello) => hello,
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "hello",
                    got: message_name(&other),
                }
                .into())
            }
        };
        let Some(version) = choose_version(self.versions, &hello) else {
            let reply = HandshakeMessage::Reject(Reject {
                reason: RejectReason::IncompatibleVersion,
                min_version: self.versions.min,
                max_version: self.versions.max,
            })
            .encode();
            return Err(Refusal {
                error: HandshakeError::IncompatibleVersion {
                    local_min: self.versions.min,
                    local_max: self.versions.max,
                    remote_min: hello.min_version,
                    remote_max: hello.max_version,
                },
                reply: Some(reply),
            });
        };
        let ephemeral = EphemeralSecret::generate(rng);
        let transcript = Transcript {
            hello,
            version,
            responder_ephemeral: ephemeral.public_key(),
            responder: self.identity.public_key(),
        };
        let signature = self.identity.sign(&transcript.responder_signing_bytes());
        let accept = HandshakeMessage::Accept(Accept {
            version,
            ephemeral_key: transcript.responder_ephemeral,
            identity: transcript.responder,
            signature,
        })
        .encode();
        let waiting = AwaitingFinish {
            identity: self.identity,
            ephemeral,
            transcript,
            signature,
        };
        Ok((waiting, accept))
    }
}

/// A responder that sent `Accept` and waits for the initiator's `Finish`.
pub struct AwaitingFinish {
    identity: Identity,
    ephemeral: EphemeralSecret,
    transcript: Transcript,
    signature: Signature,
}

impl AwaitingFinish {
    /// Handles `Finish`: verifies the initiator's identity and establishes the channel. The
    /// caller then applies its access control to [`Established::peer`].
    pub fn handle_finish(self, bytes: &[u8]) -> Result<Established, HandshakeError> {
        let finish = match HandshakeMessage::decode(bytes)? {
            HandshakeMessage::Finish(finish) => finish,
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "finish",
                    got: message_name(&other),
                })
            }
        };
        if finish.identity == self.identity.public_key() {
            return Err(HandshakeError::SelfConnection);
        }
        verify_signature(
            &finish.identity,
            &self
                .transcript
                .initiator_signing_bytes(&self.signature, &finish.identity),
            &finish.signature,
        )
        .map_err(|_| HandshakeError::BadSignature(finish.identity))?;
        let transcript_hash =
            self.transcript
                .hash(&self.signature, &finish.identity, &finish.signature);
        let (i2r, r2i) = session_keys(
            self.ephemeral,
            &self.transcript.hello.ephemeral_key,
            &transcript_hash,
        )?;
        Ok(Established {
            peer: finish.identity,
            version: self.transcript.version,
            channel: SecureChannel {
                sender: RecordSender::new(r2i.0),
                receiver: RecordReceiver::new(i2r.0),
            },
        })
    }
}
