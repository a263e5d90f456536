//! The record layer of the secure channel (docs/PROTOCOL.md, "Records").
//!
//! After the handshake each direction has its own ChaCha20-Poly1305 key. A record is the payload
//! of one frame: `ciphertext(header || payload) || tag`. The nonce is the record counter of that
//! direction (96 bits: 4 zero bytes, then the u64 counter little-endian), never sent: the
//! receiver expects exactly the next counter, so a forged, tampered, replayed, dropped or
//! reordered record fails authentication and the connection must close.
//!
//! Rekeying: the sender sets the key-update bit in a record's header and switches to the next key
//! right after it; the receiver switches after opening that record. The next key is
//! `HKDF(salt = "", ikm = current key, info = "offst/v1/rekey")` and counters restart at 0.
//! The sender rekeys on its own after [`REKEY_AFTER_RECORDS`] records; the transport also asks
//! for a rekey every [`REKEY_INTERVAL`](offst_proto::limits) of wall time.

use offst_proto::limits::MAX_FRAME_LEN;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroizing;

use crate::kdf::derive_key;

/// Records a key may protect before the sender rekeys by itself (2^20): far inside the
/// ChaCha20-Poly1305 bounds and short enough that a leaked key exposes little.
pub const REKEY_AFTER_RECORDS: u64 = 1 << 20;

/// Bytes of record header (kind and flags) inside the ciphertext.
pub const RECORD_HEADER_LEN: usize = 1;

/// Bytes of authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;

/// Largest payload of one record: a frame minus header and tag.
pub const MAX_RECORD_PAYLOAD: usize = MAX_FRAME_LEN - RECORD_HEADER_LEN - TAG_LEN;

const KEY_UPDATE_FLAG: u8 = 0x80;
const KIND_MASK: u8 = 0x7f;
const REKEY_INFO: &[u8] = b"offst/v1/rekey";

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Application bytes: one message of the protocol running inside the channel.
    Data,
    /// No content; proves the peer is alive (sent when the sender has been idle).
    Keepalive,
}

impl RecordKind {
    fn to_byte(self) -> u8 {
        match self {
            RecordKind::Data => 0,
            RecordKind::Keepalive => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte & KIND_MASK {
            0 => Some(RecordKind::Data),
            1 => Some(RecordKind::Keepalive),
            _ => None,
        }
    }
}

/// Why a record could not be sealed or opened. Every opening error is fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The payload does not fit in one frame.
    #[error("record payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The record is shorter than a tag and header: not a record.
    #[error("record of {0} bytes is too short")]
    TooShort(usize),
    /// Authentication failed: the record was forged, tampered with, replayed or reordered.
    #[error("record failed authentication (forged, tampered, replayed or out of order)")]
    Authentication,
    /// The record decrypted but its kind is unknown.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
}

struct DirectionKey {
    aead: LessSafeKey,
    secret: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl DirectionKey {
    fn new(secret: Zeroizing<[u8; 32]>) -> DirectionKey {
        let aead = match UnboundKey::new(&CHACHA20_POLY1305, &secret[..]) {
            Ok(key) => LessSafeKey::new(key),
            Err(_) => unreachable!("a 32-byte key is always a valid ChaCha20-Poly1305 key"),
        };
        DirectionKey {
            aead,
            secret,
            counter: 0,
        }
    }

    fn nonce(&self) -> Nonce {
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce[4..].copy_from_slice(&self.counter.to_le_bytes());
        Nonce::assume_unique_for_key(nonce)
    }

    fn ratchet(&mut self) {
        *self = DirectionKey::new(derive_key(&[], &self.secret[..], REKEY_INFO));
    }
}

/// The sending half of a secure channel.
pub struct RecordSender {
    key: DirectionKey,
    rekey_requested: bool,
}

impl RecordSender {
    pub(crate) fn new(secret: Zeroizing<[u8; 32]>) -> RecordSender {
        RecordSender {
            key: DirectionKey::new(secret),
            rekey_requested: false,
        }
    }

    /// Asks for a key update with the next record (the transport calls this periodically).
    pub fn request_rekey(&mut self) {
        self.rekey_requested = true;
    }

    /// Records sealed under the current key.
    pub fn records_under_current_key(&self) -> u64 {
        self.key.counter
    }

    /// Seals one record and appends it (the frame payload) to `out`.
    pub fn seal_into(
        &mut self,
        kind: RecordKind,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        if payload.len() > MAX_RECORD_PAYLOAD {
            return Err(RecordError::TooLarge(payload.len()));
        }
        let rekey = self.rekey_requested || self.key.counter + 1 >= REKEY_AFTER_RECORDS;
        let start = out.len();
        out.reserve(RECORD_HEADER_LEN + payload.len() + TAG_LEN);
        out.push(kind.to_byte() | if rekey { KEY_UPDATE_FLAG } else { 0 });
        out.extend_from_slice(payload);
        let plaintext = out
            .get_mut(start..)
            .ok_or(RecordError::TooLarge(payload.len()))?;
        let tag = self
            .key
            .aead
            .seal_in_place_separate_tag(self.key.nonce(), Aad::empty(), plaintext)
            .map_err(|_| RecordError::TooLarge(payload.len()))?;
        out.extend_from_slice(tag.as_ref());
        self.key.counter += 1;
        if rekey {
            self.key.ratchet();
            self.rekey_requested = false;
        }
        Ok(())
    }

    /// Seals one record into a new buffer.
    pub fn seal(&mut self, kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::new();
        self.seal_into(kind, payload, &mut out)?;
        Ok(out)
    }
}

/// The receiving half of a secure channel.
pub struct RecordReceiver {
    key: DirectionKey,
}

impl RecordReceiver {
    pub(crate) fn new(secret: Zeroizing<[u8; 32]>) -> RecordReceiver {
        RecordReceiver {
            key: DirectionKey::new(secret),
        }
    }

    /// Opens one record in place. On success returns its kind and payload (a sub-slice of
    /// `record`). Any error means the peer or the network misbehaved: close the connection.
    pub fn open_in_place<'a>(
        &mut self,
        record: &'a mut [u8],
    ) -> Result<(RecordKind, &'a [u8]), RecordError> {
        if record.len() < RECORD_HEADER_LEN + TAG_LEN {
            return Err(RecordError::TooShort(record.len()));
        }
        let plain = self
            .key
            .aead
            .open_in_place(self.key.nonce(), Aad::empty(), record)
            .map_err(|_| RecordError::Authentication)?;
        let (header, payload) = plain.split_first().ok_or(RecordError::TooShort(0))?;
        let kind = RecordKind::from_byte(*header).ok_or(RecordError::UnknownKind(*header))?;
        self.key.counter += 1;
        if header & KEY_UPDATE_FLAG != 0 {
            self.key.ratchet();
        }
        Ok((kind, payload))
    }

    /// Opens one record, copying its payload.
    pub fn open(&mut self, record: &[u8]) -> Result<(RecordKind, Vec<u8>), RecordError> {
        let mut buffer = record.to_vec();
        let (kind, payload) = self.open_in_place(&mut buffer)?;
        Ok((kind, payload.to_vec()))
    }
}

/// Both directions of an established secure channel. Split it to send and receive from
/// different tasks.
pub struct SecureChannel {
    /// Seals records to the peer.
    pub sender: RecordSender,
    /// Opens records from the peer.
    pub receiver: RecordReceiver,
}

#[cfg(test)]
pub(crate) fn channel_pair() -> (SecureChannel, SecureChannel) {
    let a_to_b = Zeroizing::new([1u8; 32]);
    let b_to_a = Zeroizing::new([2u8; 32]);
    (
        SecureChannel {
            sender: RecordSender::new(a_to_b.clone()),
            receiver: RecordReceiver::new(b_to_a.clone()),
        },
        SecureChannel {
            sender: RecordSender::new(b_to_a),
            receiver: RecordReceiver::new(a_to_b),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_order() {
        let (mut a, mut b) = channel_pair();
        for i in 0..10u8 {
            let record = a.sender.seal(RecordKind::Data, &[i; 5]).unwrap();
            assert_eq!(
                b.receiver.open(&record).unwrap(),
                (RecordKind::Data, vec![i; 5])
            );
        }
        let keepalive = b.sender.seal(RecordKind::Keepalive, &[]).unwrap();
        assert_eq!(
            a.receiver.open(&keepalive).unwrap(),
            (RecordKind::Keepalive, vec![])
        );
    }

    #[test]
    fn tampered_record_is_rejected() {
        let (mut a, mut b) = channel_pair();
        let mut record = a.sender.seal(RecordKind::Data, b"pay 10").unwrap();
        record[3] ^= 1;
        assert_eq!(b.receiver.open(&record), Err(RecordError::Authentication));
    }

    #[test]
    fn replayed_record_is_rejected() {
        let (mut a, mut b) = channel_pair();
        let record = a.sender.seal(RecordKind::Data, b"pay 10").unwrap();
        b.receiver.open(&record).unwrap();
        assert_eq!(b.receiver.open(&record), Err(RecordError::Authentication));
    }

    #[test]
    fn reordered_records_are_rejected() {
        let (mut a, mut b) = channel_pair();
        let first = a.sender.seal(RecordKind::Data, b"1").unwrap();
        let second = a.sender.seal(RecordKind::Data, b"2").unwrap();
        assert_eq!(b.receiver.open(&second), Err(RecordError::Authentication));
        drop(first);
    }

    #[test]
    fn record_from_the_wrong_direction_is_rejected() {
        let (mut a, _b) = channel_pair();
        let record = a.sender.seal(RecordKind::Data, b"echo").unwrap();
        assert_eq!(a.receiver.open(&record), Err(RecordError::Authentication));
    }

    #[test]
    fn requested_rekey_switches_keys_on_both_sides() {
        let (mut a, mut b) = channel_pair();
        a.sender
            .seal(RecordKind::Data, b"x")
            .map(|r| b.receiver.open(&r).unwrap())
            .unwrap();
        a.sender.request_rekey();
        let with_update = a
            .sender
            .seal(RecordKind::Data, b"last under old key")
            .unwrap();
        assert_eq!(a.sender.records_under_current_key(), 0);
        let after = a
            .sender
            .seal(RecordKind::Data, b"first under new key")
            .unwrap();
        assert_eq!(
            b.receiver.open(&with_update).unwrap().1,
            b"last under old key"
        );
        assert_eq!(b.receiver.open(&after).unwrap().1, b"first under new key");
    }

    #[test]
    fn record_after_a_rekey_does_not_open_under_the_old_key() {
        let (mut a, mut b) = channel_pair();
        a.sender.request_rekey();
        let _lost_update = a.sender.seal(RecordKind::Data, b"update").unwrap();
        let after = a.sender.seal(RecordKind::Data, b"new").unwrap();
        assert_eq!(b.receiver.open(&after), Err(RecordError::Authentication));
    }

    #[test]
    fn sender_rekeys_by_itself_at_the_record_limit() {
        let (mut a, mut b) = channel_pair();
        a.sender.key.counter = REKEY_AFTER_RECORDS - 1;
        b.receiver.key.counter = REKEY_AFTER_RECORDS - 1;
        let last_old = a.sender.seal(RecordKind::Data, b"a").unwrap();
        assert_eq!(
            a.sender.records_under_current_key(),
            0,
            "rekeyed at the boundary"
        );
        let first_new = a.sender.seal(RecordKind::Data, b"b").unwrap();
        assert_eq!(b.receiver.open(&last_old).unwrap().1, b"a");
        assert_eq!(b.receiver.open(&first_new).unwrap().1, b"b");
    }

    #[test]
    fn oversized_and_short_records_are_errors() {
        let (mut a, mut b) = channel_pair();
        assert_eq!(
            a.sender
                .seal(RecordKind::Data, &vec![0; MAX_RECORD_PAYLOAD + 1]),
            Err(RecordError::TooLarge(MAX_RECORD_PAYLOAD + 1))
        );
        assert_eq!(b.receiver.open(&[0; 5]), Err(RecordError::TooShort(5)));
    }
}
