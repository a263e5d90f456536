//! `offst:` URIs: the shareable, QR-friendly text form of friend cards (and, later, invoices).
//!
//! ```text
//! offst:<kind><version><BASE32(payload || crc32(kind, version, payload))>
//! ```
//!
//! `kind` is one uppercase letter (`F` friend card, `I` invoice), `version` one digit. The body
//! is RFC 4648 base32 without padding, uppercase, so everything after `offst:` fits the QR
//! alphanumeric mode (5.5 bits per character, denser than base64 in byte mode). Decoding is
//! case-insensitive. The CRC-32 (IEEE) over kind, version and payload rejects mistyped or
//! damaged codes: a random error passes it with probability 2^-32, and the payload must then
//! still parse strictly. docs/PROTOCOL.md, "Friend cards and URIs", is the normative description.

use crate::limits::MAX_URI_LEN;

/// The URI scheme, with its colon.
pub const SCHEME: &str = "offst:";

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why text is not a valid `offst:` URI of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not an `offst:` URI.
    #[error("not an Offst code: it should start with \"offst:\"")]
    NotOffst,
    /// An Offst URI of another kind (e.g. an invoice where a friend card was expected).
    #[error("this Offst code is {found}, not {expected}")]
    WrongKind {
        /// What the caller wanted.
        expected: &'static str,
        /// What the text is.
        found: &'static str,
    },
    /// A version this build does not read.
    #[error("this Offst code has version {0}, which this app does not read; update the app")]
    UnsupportedVersion(char),
    /// Characters outside base32.
    #[error("the code contains characters that cannot appear in an Offst code")]
    BadCharacter,
    /// The checksum does not match: the code was mistyped or damaged.
    #[error("the code is damaged or mistyped (checksum mismatch); scan or copy it again")]
    Checksum,
    /// Longer than any valid code.
    #[error("the code is too long")]
    TooLong,
    /// The checksum matched but the content is malformed.
    #[error("the code's content is invalid: {0}")]
    Invalid(String),
}

/// What an `offst:` URI holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriKind {
    /// A friend card.
    FriendCard,
    /// An invoice.
    Invoice,
}

impl UriKind {
    fn letter(self) -> char {
        match self {
            UriKind::FriendCard => 'F',
            UriKind::Invoice => 'I',
        }
    }

    fn from_letter(letter: char) -> Option<UriKind> {
        match letter.to_ascii_uppercase() {
            'F' => Some(UriKind::FriendCard),
            'I' => Some(UriKind::Invoice),
            _ => None,
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            UriKind::FriendCard => "a friend card",
            UriKind::Invoice => "an invoice",
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib).
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }
    !crc
}

/// The base32 digit for the low 5 bits of `value`.
fn digit(value: u32) -> char {
    // The mask keeps the index below 32, the alphabet's length.
    ALPHABET
        .get((value & 31) as usize)
        .map_or('A', |byte| char::from(*byte))
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer = 0u32;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(digit(buffer >> bits));
        }
    }
    if bits > 0 {
        out.push(digit(buffer << (5 - bits)));
    }
    out
}

fn base32_decode(text: &str) -> Result<Vec<u8>, UriError> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(UriError::BadCharacter),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    // Leftover bits must be zero padding (a canonical encoding has fewer than 5 of them).
    if bits >= 5 || buffer & ((1 << bits) - 1) != 0 {
        return Err(UriError::Checksum);
    }
    Ok(out)
}

/// Encodes a payload as an `offst:` URI.
pub fn encode(kind: UriKind, version: u8, payload: &[u8]) -> String {
    let letter = kind.letter();
    let digit = char::from(b'0' + version.min(9));
    let crc = crc32(&[&[letter as u8, digit as u8], payload]);
    let mut body = payload.to_vec();
    body.extend_from_slice(&crc.to_be_bytes());
    format!("{SCHEME}{letter}{digit}{}", base32_encode(&body))
}

/// Decodes an `offst:` URI of `kind`, checking the checksum; returns the version and payload.
/// Surrounding whitespace is ignored; letters may be in any case.
pub fn decode(text: &str, kind: UriKind) -> Result<(u8, Vec<u8>), UriError> {
    let text = text.trim();
    if text.len() > MAX_URI_LEN {
        return Err(UriError::TooLong);
    }
    let scheme = text.get(..SCHEME.len()).ok_or(UriError::NotOffst)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(UriError::NotOffst);
    }
    let rest = &text[SCHEME.len()..];
    let mut chars = rest.chars();
    let letter = chars.next().ok_or(UriError::NotOffst)?;
    let found = UriKind::from_letter(letter).ok_or(UriError::NotOffst)?;
    if found != kind {
        return Err(UriError::WrongKind {
            expected: kind.name(),
            found: found.name(),
        });
    }
    let digit = chars.next().ok_or(UriError::NotOffst)?;
    let version = digit
        .to_digit(10)
        .ok_or(UriError::UnsupportedVersion(digit))? as u8;
    let body = base32_decode(chars.as_str())?;
    if body.len() < 4 {
        return Err(UriError::Checksum);
    }
    let (payload, crc) = body.split_at(body.len() - 4);
    let expected = crc32(&[&[kind.letter() as u8, digit as u8], payload]);
    if crc != expected.to_be_bytes() {
        return Err(UriError::Checksum);
    }
    Ok((version, payload.to_vec()))
}

/// Reads a compact binary payload field by field; every read checks bounds.
pub(crate) struct PayloadReader<'a> {
    bytes: &'a [u8],
}

impl<'a> PayloadReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        PayloadReader { bytes }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], UriError> {
        if self.bytes.len() < len {
            return Err(UriError::Invalid("truncated".into()));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, UriError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    /// A string with a one-byte length prefix.
    pub(crate) fn short_str(&mut self) -> Result<&'a str, UriError> {
        let len = usize::from(self.u8()?);
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| UriError::Invalid("text is not UTF-8".into()))
    }

    pub(crate) fn finish(self) -> Result<(), UriError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(UriError::Invalid("trailing bytes".into()))
        }
    }
}

/// Appends a string with a one-byte length prefix (the caller bounds it to 255 bytes).
pub(crate) fn push_short_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let bytes = bytes.get(..255).unwrap_or(bytes);
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                base32_decode(&encoded.to_lowercase()).unwrap(),
                plain.as_bytes()
            );
        }
    }

    #[test]
    fn uris_round_trip_and_reject_the_wrong_kind() {
        let uri = encode(UriKind::FriendCard, 1, b"hello");
        assert!(uri.starts_with("offst:F1"));
        assert_eq!(
            decode(&uri, UriKind::FriendCard).unwrap(),
            (1, b"hello".to_vec())
        );
        assert_eq!(
            decode(&uri.to_uppercase(), UriKind::FriendCard).unwrap(),
            (1, b"hello".to_vec())
        );
        assert!(matches!(
            decode(&uri, UriKind::Invoice),
            Err(UriError::WrongKind { .. })
        ));
    }

    #[test]
    fn every_single_character_change_is_detected() {
        let uri = encode(
            UriKind::FriendCard,
            1,
            b"a payload of some length, like a card",
        );
        let prefix = SCHEME.len() + 2;
        for i in prefix..uri.len() {
            for replacement in ['A', 'Q', '7', '2'] {
                let mut damaged: Vec<char> = uri.chars().collect();
                if damaged[i] == replacement {
                    continue;
                }
                damaged[i] = replacement;
                let damaged: String = damaged.into_iter().collect();
                assert!(
                    decode(&damaged, UriKind::FriendCard).is_err(),
                    "change at {i} to {replacement} accepted"
                );
            }
        }
    }

    #[test]
    fn truncation_and_garbage_are_rejected() {
        let uri = encode(UriKind::FriendCard, 1, b"payload");
        for cut in 0..uri.len() {
            assert!(
                decode(&uri[..cut], UriKind::FriendCard).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            decode("https://x", UriKind::FriendCard),
            Err(UriError::NotOffst)
        );
        assert_eq!(
            decode("offst:F1!!", UriKind::FriendCard),
            Err(UriError::BadCharacter)
        );
        assert!(matches!(
            decode("offst:FX", UriKind::FriendCard),
            Err(UriError::UnsupportedVersion('X'))
        ));
    }
}
