//! Value types that carry their invariants: a value of one of these types is already valid.
//! Parse, don't validate: constructors from untrusted input return [`TypeError`].

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::limits::{MAX_CURRENCY_LEN, MAX_NET_ADDRESS_LEN, MAX_TEXT_LEN};

/// Why a value from the outside is not a valid wire value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// A fixed-size field had the wrong number of bytes.
    #[error("{kind} must be {expected} bytes, got {actual}")]
    WrongLength {
        /// The type being decoded.
        kind: &'static str,
        /// The length the type requires.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// A text form (base64url) did not decode.
    #[error("{kind} is not valid base64url: {reason}")]
    BadEncoding {
        /// The type being decoded.
        kind: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A currency name outside the allowed alphabet or length.
    #[error("invalid currency {0:?}: use 1 to 16 characters from A-Z, a-z, 0-9, '_', '-', '.'")]
    InvalidCurrency(String),
    /// A network address that is not `host:port` within the limits.
    #[error("invalid address {0:?}: expected host:port (at most 255 bytes)")]
    InvalidAddress(String),
    /// A free-text field over its limit or with control characters.
    #[error("text field is longer than {MAX_TEXT_LEN} bytes or contains control characters")]
    InvalidText,
}

macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps exactly `LEN` bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            /// Takes a slice from the outside; its length must be exactly `LEN`.
            pub fn try_from_slice(bytes: &[u8]) -> Result<Self, TypeError> {
                <[u8; $len]>::try_from(bytes)
                    .map($name)
                    .map_err(|_| TypeError::WrongLength {
                        kind: stringify!($name),
                        expected: $len,
                        actual: bytes.len(),
                    })
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            /// base64url without padding, the text form used in cards, files and logs.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = TypeError;

            fn from_str(text: &str) -> Result<Self, TypeError> {
                let bytes = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .map_err(|err| TypeError::BadEncoding {
                        kind: stringify!($name),
                        reason: err.to_string(),
                    })?;
                Self::try_from_slice(&bytes)
            }
        }
    };
}

fixed_bytes!(
    /// An Ed25519 public key: the identity of a node, relay, index server or app.
    PublicKey,
    32
);
fixed_bytes!(
    /// An Ed25519 signature.
    Signature,
    64
);
fixed_bytes!(
    /// A SHA-512/256 digest.
    HashResult,
    32
);
fixed_bytes!(
    /// An X25519 public key (ephemeral, one per handshake).
    DhPublicKey,
    32
);
fixed_bytes!(
    /// 16 random bytes: nonces, reset tokens.
    RandValue,
    16
);
fixed_bytes!(
    /// Identifies one payment request (one route of a payment) along its route.
    RequestId,
    16
);
fixed_bytes!(
    /// Identifies one payment at the buyer.
    PaymentId,
    16
);
fixed_bytes!(
    /// Identifies an invoice; chosen randomly by the seller.
    InvoiceId,
    32
);
fixed_bytes!(
    /// The secret whose hash locks a payment; revealing it unlocks the payment.
    PlainLock,
    32
);
fixed_bytes!(
    /// The hash of a [`PlainLock`] (see `offst_crypto::hash_lock`).
    HashedLock,
    32
);

/// An amount of credit: never negative. All arithmetic is checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Credits(pub u128);

impl Credits {
    /// No credit.
    pub const ZERO: Credits = Credits(0);
    /// The largest amount: every balance, limit and amount fits in an i128, so that
    /// `balance ± amount` can be checked without overflow in the signed domain.
    pub const MAX: Credits = Credits(i128::MAX as u128);

    /// `self + other`, or `None` past [`Credits::MAX`].
    pub fn checked_add(self, other: Credits) -> Option<Credits> {
        self.0
            .checked_add(other.0)
            .filter(|sum| *sum <= Credits::MAX.0)
            .map(Credits)
    }

    /// `self - other`, or `None` below zero.
    pub fn checked_sub(self, other: Credits) -> Option<Credits> {
        self.0.checked_sub(other.0).map(Credits)
    }

    /// `self - other`, or zero.
    pub fn saturating_sub(self, other: Credits) -> Credits {
        Credits(self.0.saturating_sub(other.0))
    }

    /// The amount as a non-negative balance; `None` above [`Credits::MAX`].
    pub fn to_balance(self) -> Option<Balance> {
        i128::try_from(self.0).ok().map(Balance)
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credits({})", self.0)
    }
}

/// A signed balance between two friends: positive means the friend owes us.
/// balance(A→B) = −balance(B→A). All arithmetic is checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Balance(pub i128);

impl Balance {
    /// Nobody owes anybody.
    pub const ZERO: Balance = Balance(0);

    /// The same balance seen from the friend's side, or `None` for `i128::MIN` (which no
    /// valid state reaches: every amount is at most [`Credits::MAX`]).
    pub fn checked_neg(self) -> Option<Balance> {
        self.0.checked_neg().map(Balance)
    }

    /// `self + amount`, or `None` on overflow.
    pub fn checked_add_credits(self, amount: Credits) -> Option<Balance> {
        let amount = i128::try_from(amount.0).ok()?;
        self.0.checked_add(amount).map(Balance)
    }

    /// `self - amount`, or `None` on overflow.
    pub fn checked_sub_credits(self, amount: Credits) -> Option<Balance> {
        let amount = i128::try_from(amount.0).ok()?;
        self.0.checked_sub(amount).map(Balance)
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Balance({})", self.0)
    }
}

/// A currency name, 1 to [`MAX_CURRENCY_LEN`] bytes from `A-Z a-z 0-9 _ - .`.
/// Names are case-sensitive and opaque: Offst does no exchange between currencies.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

impl Currency {
    /// Validates a currency name.
    pub fn new(name: &str) -> Result<Currency, TypeError> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if name.is_empty() || name.len() > MAX_CURRENCY_LEN || !name.chars().all(valid_char) {
            return Err(TypeError::InvalidCurrency(
                name.chars().take(MAX_CURRENCY_LEN + 4).collect(),
            ));
        }
        Ok(Currency(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = TypeError;

    fn from_str(name: &str) -> Result<Self, TypeError> {
        Currency::new(name)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.0)
    }
}

/// A TCP address `host:port`: a DNS name or IP literal (IPv6 in brackets) and a port.
/// Resolution happens in `core/net`; this type only guarantees the shape and the bound.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetAddress(String);

impl NetAddress {
    /// Validates an address.
    pub fn new(address: &str) -> Result<NetAddress, TypeError> {
        let invalid = || TypeError::InvalidAddress(address.chars().take(64).collect());
        if address.len() > MAX_NET_ADDRESS_LEN {
            return Err(invalid());
        }
        let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
        let host_ok = !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
            });
        let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
        if host_ok && port_ok {
            Ok(NetAddress(address.to_owned()))
        } else {
            Err(invalid())
        }
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetAddress {
    type Err = TypeError;

    fn from_str(address: &str) -> Result<Self, TypeError> {
        NetAddress::new(address)
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetAddress({})", self.0)
    }
}

/// A relay a node listens on: the relay's identity and address. This is what a friend card
/// lists and what a relay's own card prints.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayAddress {
    /// The relay's identity, checked during the handshake.
    pub public_key: PublicKey,
    /// Where to dial it.
    pub address: NetAddress,
}

/// Bounded free text (friend names, invoice descriptions): at most [`MAX_TEXT_LEN`] bytes,
/// no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text(String);

impl Text {
    /// Validates a text field.
    pub fn new(text: &str) -> Result<Text, TypeError> {
        if text.len() > MAX_TEXT_LEN || text.chars().any(char::is_control) {
            return Err(TypeError::InvalidText);
        }
        Ok(Text(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_form_round_trips() {
        let key = PublicKey::from_bytes([7; 32]);
        let text = key.to_string();
        assert_eq!(text.len(), 43);
        assert_eq!(text.parse::<PublicKey>().unwrap(), key);
    }

    #[test]
    fn wrong_length_is_rejected_with_both_lengths() {
        let err = PublicKey::try_from_slice(&[0; 31]).unwrap_err();
        assert_eq!(
            err,
            TypeError::WrongLength {
                kind: "PublicKey",
                expected: 32,
                actual: 31
            }
        );
    }

    #[test]
    fn currency_names_are_bounded_and_restricted() {
        assert!(Currency::new("FST").is_ok());
        assert!(Currency::new("usd-2.0_x").is_ok());
        assert!(Currency::new("").is_err());
        assert!(Currency::new("ABCDEFGHIJKLMNOPQ").is_err());
        assert!(Currency::new("a b").is_err());
        assert!(Currency::new("é").is_err());
    }

    #[test]
    fn net_addresses_need_host_and_port() {
        assert!(NetAddress::new("127.0.0.1:4000").is_ok());
        assert!(NetAddress::new("relay.example.org:443").is_ok());
        assert!(NetAddress::new("[::1]:80").is_ok());
        assert!(NetAddress::new("127.0.0.1").is_err());
        assert!(NetAddress::new(":80").is_err());
        assert!(NetAddress::new("host:0").is_err());
        assert!(NetAddress::new("host:99999").is_err());
        assert!(NetAddress::new(&format!("{}:1", "a".repeat(300))).is_err());
    }

    #[test]
    fn credits_arithmetic_is_checked_and_capped() {
        assert_eq!(Credits(2).checked_add(Credits(3)), Some(Credits(5)));
        assert_eq!(Credits::MAX.checked_add(Credits(1)), None);
        assert_eq!(Credits(2).checked_sub(Credits(3)), None);
        assert_eq!(Credits::MAX.to_balance(), Some(Balance(i128::MAX)));
        assert_eq!(Credits(u128::MAX).to_balance(), None);
    }

    #[test]
    fn balance_arithmetic_is_checked() {
        assert_eq!(
            Balance(5).checked_sub_credits(Credits(7)),
            Some(Balance(-2))
        );
        assert_eq!(Balance(i128::MAX).checked_add_credits(Credits(1)), None);
        assert_eq!(Balance(i128::MIN).checked_neg(), None);
        assert_eq!(Balance(-4).checked_neg(), Some(Balance(4)));
    }

    #[test]
    fn text_rejects_control_characters_and_long_input() {
        assert!(Text::new("Alice's café").is_ok());
        assert!(Text::new("line\nbreak").is_err());
        assert!(Text::new(&"x".repeat(257)).is_err());
    }
}
