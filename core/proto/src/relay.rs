//! Relay protocol messages (schema `relay.capnp`, docs/PROTOCOL.md "Relay") and the relay card,
//! the one-line text that names a relay.
//!
//! A node talks to a relay over the secure channel, one message per record. The first message
//! on a connection is an [`InitConnection`]: `Listen` keeps the connection open for
//! [`RelayToListener`] / [`ListenerToRelay`] messages; `Connect` and `Accept` each end with one
//! [`TunnelReply`], after which (on `Ready`) the connection carries raw tunnel bytes.

use std::fmt;
use std::str::FromStr;

use crate::codec::{decode_root, encode_root, read_fixed, DecodeError, WireMessage};
use crate::schema::relay_capnp::{
    init_connection, listener_to_relay, relay_to_listener, tunnel_reply,
    RefuseReason as WireRefuseReason,
};
use crate::types::{NetAddress, PublicKey, RelayAddress, TypeError};

/// The first message on a connection from a node to a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitConnection {
    /// Register as a listener: the relay announces callers on this connection.
    Listen,
    /// Ask for a tunnel to the listening node `target`.
    Connect {
        /// The node to reach.
        target: PublicKey,
    },
    /// Take the half-open tunnel that `caller` started towards this node.
    Accept {
        /// The caller, as announced by `IncomingConnection`.
        caller: PublicKey,
    },
}

/// Relay → listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayToListener {
    /// The first message on a listening connection: the relay has registered the listener,
    /// so callers can reach it from now on.
    Listening,
    /// `caller` asked for a tunnel; the listener answers with an `Accept{caller}` connection
    /// or [`ListenerToRelay::RejectConnection`].
    IncomingConnection {
        /// The caller's key (authenticated by the relay's handshake with it).
        caller: PublicKey,
    },
}

/// Listener → relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerToRelay {
    /// The listener refuses `caller`; the relay drops the half-open tunnel and tells the caller.
    RejectConnection {
        /// The refused caller.
        caller: PublicKey,
    },
}

/// Why the relay did not open a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// Connect: the target has no listening connection at this relay.
    NotListening,
    /// Connect: the listener refused the caller.
    Rejected,
    /// Connect: the listener did not accept in time.
    Expired,
    /// Accept: there is no half-open tunnel from that caller to this node.
    NoPendingTunnel,
    /// A relay limit (tunnels per key, listener queue) was reached.
    Busy,
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefuseReason::NotListening => "the target is not listening at this relay",
            RefuseReason::Rejected => "the target refused the connection",
            RefuseReason::Expired => "the target did not accept in time",
            RefuseReason::NoPendingTunnel => "no pending tunnel from that caller",
            RefuseReason::Busy => "the relay is at a limit",
        })
    }
}

/// Relay → connecting or accepting node: the last record on the relay's secure channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelReply {
    /// The tunnel is spliced: from the byte after this record's frame on, the connection
    /// carries the peer's bytes.
    Ready,
    /// No tunnel; the relay closes the connection.
    Refused(RefuseReason),
}

fn read_key(
    field: &'static str,
    data: capnp::Result<capnp::data::Reader<'_>>,
) -> Result<PublicKey, DecodeError> {
    read_fixed(field, data, PublicKey::try_from_slice)
}

impl WireMessage for InitConnection {
    fn encode(&self) -> Vec<u8> {
        encode_root::<init_connection::Owned>(|mut root| match self {
            InitConnection::Listen => root.set_listen(()),
            InitConnection::Connect { target } => root.set_connect(target.as_bytes()),
            InitConnection::Accept { caller } => root.set_accept(caller.as_bytes()),
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_root::<init_connection::Owned, _>(bytes, |root| {
            Ok(match root.which()? {
                init_connection::Listen(()) => InitConnection::Listen,
                init_connection::Connect(target) => InitConnection::Connect {
                    target: read_key("connect", target)?,
                },
                init_connection::Accept(caller) => InitConnection::Accept {
                    caller: read_key("accept", caller)?,
                },
            })
        })
    }
}

impl WireMessage for RelayToListener {
    fn encode(&self) -> Vec<u8> {
        encode_root::<relay_to_listener::Owned>(|mut root| match self {
            RelayToListener::Listening => root.set_listening(()),
            RelayToListener::IncomingConnection { caller } => {
                root.set_incoming_connection(caller.as_bytes())
            }
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_root::<relay_to_listener::Owned, _>(bytes, |root| {
            Ok(match root.which()? {
                relay_to_listener::Listening(()) => RelayToListener::Listening,
                relay_to_listener::IncomingConnection(caller) => {
                    RelayToListener::IncomingConnection {
                        caller: read_key("incomingConnection", caller)?,
                    }
                }
            })
        })
    }
}

impl WireMessage for ListenerToRelay {
    fn encode(&self) -> Vec<u8> {
        encode_root::<listener_to_relay::Owned>(|mut root| match self {
            ListenerToRelay::RejectConnection { caller } => {
                root.set_reject_connection(caller.as_bytes())
            }
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_root::<listener_to_relay::Owned, _>(bytes, |root| {
            Ok(ListenerToRelay::RejectConnection {
                caller: read_key("rejectConnection", root.get_reject_connection())?,
            })
        })
    }
}

impl WireMessage for TunnelReply {
    fn encode(&self) -> Vec<u8> {
        encode_root::<tunnel_reply::Owned>(|mut root| match self {
            TunnelReply::Ready => root.set_ready(()),
            TunnelReply::Refused(reason) => root.set_refused(match reason {
                RefuseReason::NotListening => WireRefuseReason::NotListening,
                RefuseReason::Rejected => WireRefuseReason::Rejected,
                RefuseReason::Expired => WireRefuseReason::Expired,
                RefuseReason::NoPendingTunnel => WireRefuseReason::NoPendingTunnel,
                RefuseReason::Busy => WireRefuseReason::Busy,
            }),
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_root::<tunnel_reply::Owned, _>(bytes, |root| {
            Ok(match root.which()? {
                tunnel_reply::Ready(()) => TunnelReply::Ready,
                tunnel_reply::Refused(reason) => TunnelReply::Refused(match reason? {
                    WireRefuseReason::NotListening => RefuseReason::NotListening,
                    WireRefuseReason::Rejected => RefuseReason::Rejected,
                    WireRefuseReason::Expired => RefuseReason::Expired,
                    WireRefuseReason::NoPendingTunnel => RefuseReason::NoPendingTunnel,
                    WireRefuseReason::Busy => RefuseReason::Busy,
                }),
            })
        })
    }
}

/// The scheme that starts every relay card.
pub const RELAY_CARD_PREFIX: &str = "offst-relay:";

/// Why a relay card does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayCardError {
    /// The text does not start with `offst-relay:`.
    #[error("a relay card starts with \"{RELAY_CARD_PREFIX}\"")]
    MissingPrefix,
    /// There is no `@` between the key and the address.
    #[error("a relay card reads offst-relay:<public key>@<host>:<port>")]
    MissingAddress,
    /// The key part is not a base64url Ed25519 public key.
    #[error("relay card key: {0}")]
    Key(TypeError),
    /// The address part is not `host:port`.
    #[error("relay card address: {0}")]
    Address(TypeError),
}

/// A relay's card: `offst-relay:<public key, base64url without padding>@<host>:<port>`, e.g.
/// `offst-relay:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@relay.example.org:7500`. One line,
/// no spaces, URI-safe, short enough for a QR code. It carries no checksum of its own: a
/// mistyped key cannot be accepted wrongly, because the handshake proves the relay's key and
/// fails with a wrong-peer error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayCard(pub RelayAddress);

impl fmt::Display for RelayCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{RELAY_CARD_PREFIX}{}@{}",
            self.0.public_key, self.0.address
        )
    }
}

impl FromStr for RelayCard {
    type Err = RelayCardError;

    fn from_str(text: &str) -> Result<Self, RelayCardError> {
        let rest = text
            .trim()
            .strip_prefix(RELAY_CARD_PREFIX)
            .ok_or(RelayCardError::MissingPrefix)?;
        let (key, address) = rest.split_once('@').ok_or(RelayCardError::MissingAddress)?;
        Ok(RelayCard(RelayAddress {
            public_key: PublicKey::from_str(key).map_err(RelayCardError::Key)?,
            address: NetAddress::new(address).map_err(RelayCardError::Address)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_bytes([byte; 32])
    }

    #[test]
    fn every_relay_message_round_trips() {
        for message in [
            InitConnection::Listen,
            InitConnection::Connect { target: key(1) },
            InitConnection::Accept { caller: key(2) },
        ] {
            assert_eq!(InitConnection::decode(&message.encode()).unwrap(), message);
        }
        for to_listener in [
            RelayToListener::Listening,
            RelayToListener::IncomingConnection { caller: key(3) },
        ] {
            assert_eq!(
                RelayToListener::decode(&to_listener.encode()).unwrap(),
                to_listener
            );
        }
        let reject = ListenerToRelay::RejectConnection { caller: key(4) };
        assert_eq!(ListenerToRelay::decode(&reject.encode()).unwrap(), reject);
        for reply in [
            TunnelReply::Ready,
            TunnelReply::Refused(RefuseReason::NotListening),
            TunnelReply::Refused(RefuseReason::Rejected),
            TunnelReply::Refused(RefuseReason::Expired),
            TunnelReply::Refused(RefuseReason::NoPendingTunnel),
            TunnelReply::Refused(RefuseReason::Busy),
        ] {
            assert_eq!(TunnelReply::decode(&reply.encode()).unwrap(), reply);
        }
    }

    #[test]
    fn short_key_in_connect_is_rejected() {
        let bytes = encode_root::<init_connection::Owned>(|mut root| root.set_connect(&[1; 31]));
        assert!(matches!(
            InitConnection::decode(&bytes),
            Err(DecodeError::InvalidField {
                field: "connect",
                ..
            })
        ));
    }

    #[test]
    fn truncated_and_garbage_relay_messages_are_errors_not_panics() {
        let bytes = InitConnection::Connect { target: key(9) }.encode();
        for cut in 0..bytes.len() {
            assert!(InitConnection::decode(&bytes[..cut]).is_err());
        }
        for garbage in [&[][..], &[0xff; 16], &[0; 64]] {
            let _ = InitConnection::decode(garbage);
            let _ = TunnelReply::decode(garbage);
            let _ = RelayToListener::decode(garbage);
            let _ = ListenerToRelay::decode(garbage);
        }
    }

    #[test]
    fn bit_flipped_relay_messages_decode_or_fail_but_never_panic() {
        let encoded = [
            InitConnection::Accept { caller: key(5) }.encode(),
            RelayToListener::IncomingConnection { caller: key(6) }.encode(),
            ListenerToRelay::RejectConnection { caller: key(7) }.encode(),
            TunnelReply::Refused(RefuseReason::Busy).encode(),
        ];
        for bytes in &encoded {
            for bit in 0..bytes.len() * 8 {
                let mut flipped = bytes.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                let _ = InitConnection::decode(&flipped);
                let _ = RelayToListener::decode(&flipped);
                let _ = ListenerToRelay::decode(&flipped);
                let _ = TunnelReply::decode(&flipped);
            }
        }
    }

    #[test]
    fn relay_card_round_trips_and_reads_as_documented() {
        let card = RelayCard(RelayAddress {
            public_key: key(7),
            address: NetAddress::new("relay.example.org:7500").unwrap(),
        });
        let text = card.to_string();
        assert!(text.starts_with("offst-relay:"));
        assert!(text.ends_with("@relay.example.org:7500"));
        assert_eq!(text.parse::<RelayCard>().unwrap(), card);
        assert_eq!(format!("  {text}\n").parse::<RelayCard>().unwrap(), card);
    }

    #[test]
    fn malformed_relay_cards_are_rejected_with_a_reason() {
        let good = RelayCard(RelayAddress {
            public_key: key(7),
            address: NetAddress::new("127.0.0.1:7500").unwrap(),
        })
        .to_string();
        let key_text = key(7).to_string();
        assert_eq!(
            "relay:abc@h:1".parse::<RelayCard>(),
            Err(RelayCardError::MissingPrefix)
        );
        assert_eq!(
            format!("offst-relay:{key_text}").parse::<RelayCard>(),
            Err(RelayCardError::MissingAddress)
        );
        assert!(matches!(
            format!("offst-relay:{}@h:1", &key_text[1..]).parse::<RelayCard>(),
            Err(RelayCardError::Key(_))
        ));
        assert!(matches!(
            format!("offst-relay:{key_text}@nohost").parse::<RelayCard>(),
            Err(RelayCardError::Address(_))
        ));
        assert!(good.parse::<RelayCard>().is_ok());
    }
}
