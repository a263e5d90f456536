//! Friend cards: what two people exchange (by QR code or link) to become friends — a node's
//! public key, the relays it can be reached through and a suggested name — as an `offst:F1…`
//! URI ([`crate::uri`]).
//!
//! Payload, version 1: `public key (32) | name (u8 length, UTF-8) | relay count (u8) |
//! per relay: public key (32) | address (u8 length, ASCII host:port)`.

use std::fmt;
use std::str::FromStr;

use crate::limits::{MAX_CARD_NAME_LEN, MAX_RELAYS};
use crate::types::{NetAddress, PublicKey, RelayAddress, Text};
use crate::uri::{self, push_short_str, PayloadReader, UriError, UriKind};

/// The card format version this build writes and reads.
pub const FRIEND_CARD_VERSION: u8 = 1;

/// A node's friend card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendCard {
    /// The node's identity.
    pub public_key: PublicKey,
    /// The name the node suggests for itself (at most [`MAX_CARD_NAME_LEN`] bytes).
    pub name: Text,
    /// Relays the node listens on (1 to [`MAX_RELAYS`]).
    pub relays: Vec<RelayAddress>,
}

impl FriendCard {
    /// A card; checks the name length and the relay count.
    pub fn new(
        public_key: PublicKey,
        name: Text,
        relays: Vec<RelayAddress>,
    ) -> Result<FriendCard, UriError> {
        if name.as_str().len() > MAX_CARD_NAME_LEN {
            return Err(UriError::Invalid(format!(
                "the name is longer than {MAX_CARD_NAME_LEN} bytes"
            )));
        }
        if relays.is_empty() || relays.len() > MAX_RELAYS {
            return Err(UriError::Invalid(format!(
                "a card lists 1 to {MAX_RELAYS} relays"
            )));
        }
        Ok(FriendCard {
            public_key,
            name,
            relays,
        })
    }

    /// The `offst:F1…` URI.
    pub fn to_uri(&self) -> String {
        let mut payload = Vec::with_capacity(64 + self.relays.len() * 64);
        payload.extend_from_slice(self.public_key.as_bytes());
        push_short_str(&mut payload, self.name.as_str());
        payload.push(self.relays.len() as u8);
        for relay in &self.relays {
            payload.extend_from_slice(relay.public_key.as_bytes());
            push_short_str(&mut payload, relay.address.as_str());
        }
        uri::encode(UriKind::FriendCard, FRIEND_CARD_VERSION, &payload)
    }

    /// Parses an `offst:F1…` URI strictly.
    pub fn from_uri(text: &str) -> Result<FriendCard, UriError> {
        let (version, payload) = uri::decode(text, UriKind::FriendCard)?;
        if version != FRIEND_CARD_VERSION {
            return Err(UriError::UnsupportedVersion(char::from(b'0' + version)));
        }
        let invalid = |err: crate::types::TypeError| UriError::Invalid(err.to_string());
        let mut reader = PayloadReader::new(&payload);
        let public_key = PublicKey::try_from_slice(reader.take(32)?).map_err(invalid)?;
        let name = Text::new(reader.short_str()?).map_err(invalid)?;
        let count = usize::from(reader.u8()?);
        let mut relays = Vec::with_capacity(count.min(MAX_RELAYS));
        for _ in 0..count {
            let key = PublicKey::try_from_slice(reader.take(32)?).map_err(invalid)?;
            let address = NetAddress::new(reader.short_str()?).map_err(invalid)?;
            relays.push(RelayAddress {
                public_key: key,
                address,
            });
        }
        reader.finish()?;
        FriendCard::new(public_key, name, relays)
    }
}

impl fmt::Display for FriendCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

impl FromStr for FriendCard {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        FriendCard::from_uri(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> FriendCard {
        FriendCard::new(
            PublicKey::from_bytes([7; 32]),
            Text::new("Alice").unwrap(),
            vec![RelayAddress {
                public_key: PublicKey::from_bytes([9; 32]),
                address: NetAddress::new("relay.example.org:4000").unwrap(),
            }],
        )
        .unwrap()
    }

    #[test]
    fn a_card_round_trips_through_its_uri() {
        let uri = card().to_uri();
        assert!(uri.starts_with("offst:F1"));
        assert_eq!(uri.parse::<FriendCard>().unwrap(), card());
    }

    #[test]
    fn a_one_relay_card_fits_a_small_qr_code() {
        // QR version 10 at error correction M holds 311 alphanumeric characters.
        let uri = card().to_uri();
        assert!(uri.len() < 180, "{} characters: {uri}", uri.len());
        let full = FriendCard::new(
            PublicKey::from_bytes([7; 32]),
            Text::new(&"n".repeat(MAX_CARD_NAME_LEN)).unwrap(),
            vec![card().relays[0].clone(); 3],
        )
        .unwrap();
        assert!(full.to_uri().len() < 500);
    }

    #[test]
    fn a_damaged_card_is_rejected_never_misread() {
        let uri = card().to_uri();
        let mut bytes = uri.into_bytes();
        let last = bytes.len() - 5;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(bytes).unwrap();
        assert_eq!(damaged.parse::<FriendCard>(), Err(UriError::Checksum));
    }

    #[test]
    fn cards_without_relays_or_with_long_names_are_refused() {
        assert!(FriendCard::new(
            PublicKey::from_bytes([1; 32]),
            Text::new("x").unwrap(),
            vec![]
        )
        .is_err());
        assert!(FriendCard::new(
            PublicKey::from_bytes([1; 32]),
            Text::new(&"n".repeat(MAX_CARD_NAME_LEN + 1)).unwrap(),
            card().relays
        )
        .is_err());
    }
}
