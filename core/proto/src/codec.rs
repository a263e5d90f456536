//! Encoding and strict decoding of Cap'n Proto messages.
//!
//! Every wire message type implements [`WireMessage`]. Decoding is total: any byte string gives
//! either a fully validated value or a [`DecodeError`], never a panic, and the reader limits
//! ([`reader_options`]) bound the work a hostile message can cause.

use capnp::message::{Builder, HeapAllocator, ReaderOptions};

use crate::limits::{CAPNP_NESTING_LIMIT, CAPNP_TRAVERSAL_FACTOR, MAX_FRAME_LEN};
use crate::schema::common_capnp;
use crate::types::{Balance, Credits, NetAddress, PublicKey, RelayAddress, TypeError};

/// Why bytes from a peer are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is larger than a frame may be.
    #[error("message of {0} bytes exceeds the frame limit")]
    TooLarge(usize),
    /// The bytes are not a Cap'n Proto message within our reader limits.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A union discriminant or enum value this version does not know.
    #[error("unknown variant in field {0}")]
    UnknownVariant(&'static str),
    /// A field decoded but its value is invalid.
    #[error("invalid field {field}: {source}")]
    InvalidField {
        /// The field's wire name.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: TypeError,
    },
    /// A list longer than the protocol allows.
    #[error("field {field} has {len} items, more than the limit of {max}")]
    TooMany {
        /// The field's wire name.
        field: &'static str,
        /// The number of items received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value that violates a rule of the protocol beyond its type (e.g. min > max).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

impl From<capnp::Error> for DecodeError {
    fn from(err: capnp::Error) -> Self {
        DecodeError::Malformed(err.to_string())
    }
}

impl From<capnp::NotInSchema> for DecodeError {
    fn from(_: capnp::NotInSchema) -> Self {
        DecodeError::UnknownVariant("union or enum")
    }
}

/// A message that travels on the wire as one Cap'n Proto message in one frame.
pub trait WireMessage: Sized {
    /// Encodes the message (unpacked Cap'n Proto, single segment where it fits).
    fn encode(&self) -> Vec<u8>;

    /// Decodes and validates a message received from a peer.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Reader limits for a message of `len` bytes: the traversal budget is proportional to the
/// size, so a small message cannot cost more than a few passes over itself.
pub fn reader_options(len: usize) -> ReaderOptions {
    let words = (len / 8).saturating_add(1);
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(words.saturating_mul(CAPNP_TRAVERSAL_FACTOR).max(64)))
        .nesting_limit(CAPNP_NESTING_LIMIT);
    options
}

/// Decodes a Cap'n Proto message from `bytes` with the strict limits and hands its root to
/// `read`. The whole input must be one message: trailing bytes are an error.
pub fn decode_root<T, R>(
    bytes: &[u8],
    read: impl FnOnce(T::Reader<'_>) -> Result<R, DecodeError>,
) -> Result<R, DecodeError>
where
    T: capnp::traits::Owned,
{
    if bytes.len() > MAX_FRAME_LEN {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    if !bytes.len().is_multiple_of(8) {
        return Err(DecodeError::Malformed(
            "length is not a whole number of 8-byte words".into(),
        ));
    }
    // Cap'n Proto reads words in place and needs 8-byte alignment; bytes sliced out of a
    // receive buffer (after a 4-byte frame header, say) often are not aligned.
    let aligned_copy;
    let bytes = if bytes.as_ptr().align_offset(8) == 0 {
        bytes
    } else {
        let mut words = capnp::Word::allocate_zeroed_vec(bytes.len() / 8);
        capnp::Word::words_to_bytes_mut(&mut words).copy_from_slice(bytes);
        aligned_copy = words;
        capnp::Word::words_to_bytes(&aligned_copy)
    };
    let mut slice = bytes;
    let message = capnp::serialize::read_message_from_flat_slice_no_alloc(
        &mut slice,
        reader_options(bytes.len()),
    )?;
    if !slice.is_empty() {
        return Err(DecodeError::Invalid("trailing bytes after the message"));
    }
    let root = message.get_root::<T::Reader<'_>>()?;
    read(root)
}

/// Builds a message with `build` filling its root and returns the encoded bytes.
pub fn encode_root<T>(build: impl FnOnce(T::Builder<'_>)) -> Vec<u8>
where
    T: capnp::traits::Owned,
{
    let mut message = Builder::new(HeapAllocator::new());
    build(message.init_root::<T::Builder<'_>>());
    capnp::serialize::write_message_to_words(&message)
}

/// Reads a fixed-size byte field into its type, naming the field in the error.
pub fn read_fixed<T>(
    field: &'static str,
    data: capnp::Result<capnp::data::Reader<'_>>,
    parse: impl FnOnce(&[u8]) -> Result<T, TypeError>,
) -> Result<T, DecodeError> {
    parse(data?).map_err(|source| DecodeError::InvalidField { field, source })
}

/// Reads a text field and validates it with `parse`, naming the field in the error.
pub fn read_text<T>(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'_>>,
    parse: impl FnOnce(&str) -> Result<T, TypeError>,
) -> Result<T, DecodeError> {
    let text = text?
        .to_str()
        .map_err(|_| DecodeError::Malformed(format!("field {field} is not UTF-8")))?;
    parse(text).map_err(|source| DecodeError::InvalidField { field, source })
}

/// Checks a list length against its limit before reading the items.
pub fn check_len(field: &'static str, len: u32, max: usize) -> Result<usize, DecodeError> {
    let len = len as usize;
    if len > max {
        return Err(DecodeError::TooMany { field, len, max });
    }
    Ok(len)
}

/// Writes credits into a `UInt128`.
pub fn write_credits(mut builder: common_capnp::u_int128::Builder<'_>, value: Credits) {
    builder.set_hi((value.0 >> 64) as u64);
    builder.set_lo(value.0 as u64);
}

/// Reads credits from a `UInt128`; values above [`Credits::MAX`] are rejected.
pub fn read_credits(
    field: &'static str,
    reader: capnp::Result<common_capnp::u_int128::Reader<'_>>,
) -> Result<Credits, DecodeError> {
    let reader = reader?;
    let value = (u128::from(reader.get_hi()) << 64) | u128::from(reader.get_lo());
    if value > Credits::MAX.0 {
        return Err(DecodeError::InvalidField {
            field,
            source: TypeError::WrongLength {
                kind: "Credits (at most 2^127 - 1)",
                expected: 127,
                actual: 128,
            },
        });
    }
    Ok(Credits(value))
}

/// Writes a balance into an `Int128`.
pub fn write_balance(mut builder: common_capnp::int128::Builder<'_>, value: Balance) {
    let bits = value.0 as u128;
    builder.set_hi((bits >> 64) as u64);
    builder.set_lo(bits as u64);
}

/// Reads a balance from an `Int128`.
pub fn read_balance(
    reader: capnp::Result<common_capnp::int128::Reader<'_>>,
) -> Result<Balance, DecodeError> {
    let reader = reader?;
    let bits = (u128::from(reader.get_hi()) << 64) | u128::from(reader.get_lo());
    Ok(Balance(bits as i128))
}

/// Writes a relay address.
pub fn write_relay_address(
    mut builder: common_capnp::relay_address::Builder<'_>,
    relay: &RelayAddress,
) {
    builder.set_public_key(relay.public_key.as_bytes());
    builder.set_address(relay.address.as_str());
}

/// Reads and validates a relay address.
pub fn read_relay_address(
    reader: common_capnp::relay_address::Reader<'_>,
) -> Result<RelayAddress, DecodeError> {
    Ok(RelayAddress {
        public_key: read_fixed(
            "publicKey",
            reader.get_public_key(),
            PublicKey::try_from_slice,
        )?,
        address: read_text("address", reader.get_address(), NetAddress::new)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_round_trip_through_uint128() {
        for value in [0, 1, u64::MAX as u128, u64::MAX as u128 + 1, Credits::MAX.0] {
            let bytes =
                encode_root::<common_capnp::u_int128::Owned>(|b| write_credits(b, Credits(value)));
            let decoded = decode_root::<common_capnp::u_int128::Owned, _>(&bytes, |r| {
                read_credits("x", Ok(r))
            })
            .unwrap();
            assert_eq!(decoded, Credits(value));
        }
    }

    #[test]
    fn credits_above_max_are_rejected() {
        let bytes = encode_root::<common_capnp::u_int128::Owned>(|mut b| {
            b.set_hi(u64::MAX);
            b.set_lo(0);
        });
        let result =
            decode_root::<common_capnp::u_int128::Owned, _>(&bytes, |r| read_credits("x", Ok(r)));
        assert!(matches!(
            result,
            Err(DecodeError::InvalidField { field: "x", .. })
        ));
    }

    #[test]
    fn balances_round_trip_through_int128() {
        for value in [0, -1, i128::MIN, i128::MAX, -(1 << 70)] {
            let bytes =
                encode_root::<common_capnp::int128::Owned>(|b| write_balance(b, Balance(value)));
            let decoded =
                decode_root::<common_capnp::int128::Owned, _>(&bytes, |r| read_balance(Ok(r)))
                    .unwrap();
            assert_eq!(decoded, Balance(value));
        }
    }

    #[test]
    fn messages_at_unaligned_addresses_decode() {
        let bytes = encode_root::<common_capnp::int128::Owned>(|b| write_balance(b, Balance(-9)));
        let mut buffer = vec![0u8; bytes.len() + 1];
        for offset in 0..=1 {
            buffer[offset..offset + bytes.len()].copy_from_slice(&bytes);
            let slice = &buffer[offset..offset + bytes.len()];
            let decoded =
                decode_root::<common_capnp::int128::Owned, _>(slice, |r| read_balance(Ok(r)))
                    .unwrap();
            assert_eq!(decoded, Balance(-9));
        }
    }

    #[test]
    fn trailing_bytes_and_garbage_are_errors_not_panics() {
        let mut bytes =
            encode_root::<common_capnp::int128::Owned>(|b| write_balance(b, Balance(3)));
        bytes.extend_from_slice(&[0; 8]);
        let result = decode_root::<common_capnp::int128::Owned, _>(&bytes, |r| read_balance(Ok(r)));
        assert!(result.is_err());
        for garbage in [&[][..], &[1, 2, 3], &[0xff; 64]] {
            let result =
                decode_root::<common_capnp::int128::Owned, _>(garbage, |r| read_balance(Ok(r)));
            assert!(result.is_err());
        }
    }
}
