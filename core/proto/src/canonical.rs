//! Canonical signing bytes.
//!
//! Signatures never cover Cap'n Proto bytes (their encoding is not unique). Every signed object
//! instead defines its signing bytes with a [`CanonicalWriter`]: a domain-separation tag that
//! names the object and the protocol version, followed by its fields in a fixed order, integers
//! big-endian, variable-length byte strings prefixed by their u32 length. The encoding is
//! injective per domain, so two different objects can never share signing bytes.
//! docs/PROTOCOL.md, "Canonical signing bytes", is the normative description.

/// Domain-separation tags. Each signed or hashed object has its own; a signature made for one
/// can never verify as another.
pub mod domain {
    /// The responder's handshake signature.
    pub const HANDSHAKE_RESPONDER: &[u8] = b"offst/v1/handshake/responder";
    /// The initiator's handshake signature.
    pub const HANDSHAKE_INITIATOR: &[u8] = b"offst/v1/handshake/initiator";
    /// The handshake transcript hash, the HKDF salt of the session keys.
    pub const HANDSHAKE_TRANSCRIPT: &[u8] = b"offst/v1/handshake/transcript";
    /// A hash lock: `HashedLock = SHA-512/256(tag || PlainLock)`.
    pub const HASH_LOCK: &[u8] = b"offst/v1/hash-lock";
    /// A move token of the friend channel: the sender's signature covers these bytes.
    pub const MOVE_TOKEN: &[u8] = b"offst/v1/friend/move-token";
    /// The balance sheet of a friend pair, hashed into every move token (`infoHash`).
    pub const BALANCE_SHEET: &[u8] = b"offst/v1/friend/balance-sheet";
    /// The deterministic genesis link of a friend channel, derived from the two public keys.
    pub const CHANNEL_GENESIS: &[u8] = b"offst/v1/friend/genesis";
    /// A node's signed capacity report to index servers (docs/PROTOCOL.md §11).
    pub const INDEX_CAPACITY_REPORT: &[u8] = b"offst/v1/index/capacity-report";
    /// A seller's signed invoice (docs/PROTOCOL.md §14).
    pub const INVOICE: &[u8] = b"offst/v1/payment/invoice";
}

/// Builds the canonical bytes of one object. Start with [`CanonicalWriter::new`] and a tag from
/// [`domain`], append fields in the order the spec gives, then [`CanonicalWriter::finish`].
#[derive(Debug, Clone)]
pub struct CanonicalWriter {
    bytes: Vec<u8>,
}

impl CanonicalWriter {
    /// Starts an object with its domain tag (length-prefixed, like every variable field).
    pub fn new(domain: &[u8]) -> Self {
        let mut writer = CanonicalWriter {
            bytes: Vec::with_capacity(256),
        };
        writer.bytes(domain);
        writer
    }

    /// Appends a fixed-size field (a key, a signature, a hash): raw bytes, no prefix. Only for
    /// fields whose length the spec fixes.
    pub fn fixed(&mut self, field: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(field);
        self
    }

    /// Appends a variable-length byte string: u32 big-endian length, then the bytes.
    ///
    /// Every variable field of the protocol is bounded far below 4 GiB; a longer one is a
    /// programming error, so the length saturates rather than wrapping (and can never collide
    /// with a real encoding, as such lengths are rejected on decode).
    pub fn bytes(&mut self, field: &[u8]) -> &mut Self {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(field);
        self
    }

    /// Appends a UTF-8 string as a variable-length byte string.
    pub fn text(&mut self, field: &str) -> &mut Self {
        self.bytes(field.as_bytes())
    }

    /// Appends a bool as one byte, 0 or 1.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.bytes.push(u8::from(value));
        self
    }

    /// Appends a u8.
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    /// Appends a u32, big-endian.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a u64, big-endian.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a u128, big-endian.
    pub fn u128(&mut self, value: u128) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends an i128, big-endian two's complement.
    pub fn i128(&mut self, value: i128) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a list length (u32, big-endian); the items follow, each written by the caller.
    pub fn list_len(&mut self, len: usize) -> &mut Self {
        self.u32(u32::try_from(len).unwrap_or(u32::MAX))
    }

    /// Appends an optional field: tag byte 0 for absent, or 1 followed by what `write` appends.
    pub fn option<T>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) -> &mut Self {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
                self
            }
        }
    }

    /// The finished canonical bytes.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_fields_are_length_prefixed_so_concatenations_differ() {
        let mut a = CanonicalWriter::new(b"d");
        a.bytes(b"ab").bytes(b"c");
        let mut b = CanonicalWriter::new(b"d");
        b.bytes(b"a").bytes(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn domains_separate_identical_fields() {
        let mut a = CanonicalWriter::new(domain::HANDSHAKE_INITIATOR);
        a.u32(7);
        let mut b = CanonicalWriter::new(domain::HANDSHAKE_RESPONDER);
        b.u32(7);
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn layout_is_exactly_as_specified() {
        let mut w = CanonicalWriter::new(b"x");
        w.u32(1).bool(true).option(Some(&5u8), |w, v| {
            w.u8(*v);
        });
        assert_eq!(w.finish(), vec![0, 0, 0, 1, b'x', 0, 0, 0, 1, 1, 1, 5]);
    }
}
