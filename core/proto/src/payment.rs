//! Invoices and receipts of multi-hop payments (docs/PROTOCOL.md §14).
//!
//! A seller creates an [`Invoice`]: what is to be paid (currency, amount), until when, to whom
//! (the seller's key and relays) and the seller's hash lock, all signed by the seller. It is
//! shared as an `offst:I1…` URI ([`crate::uri`]). The buyer pays it over routes of friends; the
//! seller reveals the plain lock only once it received the whole amount, and the buyer ends with
//! a [`Receipt`]: the signed invoice and the plain lock, which anyone can check offline
//! (`offst_credit::payment::verify_receipt`: the seller's signature, and that the plain lock
//! hashes to the invoice's lock).
//!
//! Signing bytes (domain tag `offst/v1/payment/invoice`): `invoice_id (32) | seller (32) |
//! relay count (u32) | per relay: key (32), address (u32 length + bytes) | currency (u32 length +
//! bytes) | amount (u128) | expires_at (u64) | description (u32 length + bytes) | hashed_lock
//! (32)`, all integers big-endian ([`crate::canonical`]).
//!
//! URI payload, version 1: `invoice_id (32) | seller (32) | currency (u8 length, ASCII) |
//! amount (u128 BE) | expires_at (u64 BE) | hashed_lock (32) | description (u8 length, UTF-8) |
//! relay count (u8) | per relay: key (32), address (u8 length, ASCII) | signature (64)`.
//!
//! Receipt bytes, version 1: `version (u8 = 1) | invoice URI payload | plain_lock (32)`.

use std::fmt;
use std::str::FromStr;

use crate::canonical::{domain, CanonicalWriter};
use crate::limits::{MAX_INVOICE_DESCRIPTION_LEN, MAX_RELAYS};
use crate::types::{
    Credits, Currency, HashedLock, InvoiceId, NetAddress, PlainLock, PublicKey, RelayAddress,
    Signature, Text, TypeError,
};
use crate::uri::{self, push_short_str, PayloadReader, UriError, UriKind};

/// The invoice format version this build writes and reads.
pub const INVOICE_VERSION: u8 = 1;

/// The receipt format version this build writes and reads.
pub const RECEIPT_VERSION: u8 = 1;

/// A seller's signed request to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// 32 random bytes chosen by the seller; names the invoice at every hop.
    pub invoice_id: InvoiceId,
    /// The seller's identity (the last node of every route).
    pub seller: PublicKey,
    /// Relays the seller listens on (0 to [`MAX_RELAYS`]): where a buyer's app may reach it.
    pub seller_relays: Vec<RelayAddress>,
    /// The currency to pay in.
    pub currency: Currency,
    /// What the seller must receive, fees excluded (more than zero).
    pub amount: Credits,
    /// Unix time in milliseconds after which the invoice must not be paid.
    pub expires_at: u64,
    /// Free text for the buyer (at most [`MAX_INVOICE_DESCRIPTION_LEN`] bytes).
    pub description: Text,
    /// `hash_lock(plain_lock)`: every payment request of the invoice locks on it.
    pub hashed_lock: HashedLock,
    /// The seller's signature over [`Invoice::signing_bytes`].
    pub signature: Signature,
}

/// Why invoice fields are not acceptable.
fn check_fields(invoice: &Invoice) -> Result<(), UriError> {
    if invoice.amount == Credits::ZERO {
        return Err(UriError::Invalid(
            "the amount must be more than zero".into(),
        ));
    }
    if invoice.description.as_str().len() > MAX_INVOICE_DESCRIPTION_LEN {
        return Err(UriError::Invalid(format!(
            "the description is longer than {MAX_INVOICE_DESCRIPTION_LEN} bytes"
        )));
    }
    if invoice.seller_relays.len() > MAX_RELAYS {
        return Err(UriError::Invalid(format!(
            "an invoice lists at most {MAX_RELAYS} relays"
        )));
    }
    Ok(())
}

impl Invoice {
    /// The bytes the seller signs (see the module documentation).
    pub fn signing_bytes(&self) -> Vec<u8> {
        Self::signing_bytes_of(
            &self.invoice_id,
            &self.seller,
            &self.seller_relays,
            &self.currency,
            self.amount,
            self.expires_at,
            &self.description,
            &self.hashed_lock,
        )
    }

    /// The signing bytes of an invoice not yet signed.
    #[allow(clippy::too_many_arguments)]
    pub fn signing_bytes_of(
        invoice_id: &InvoiceId,
        seller: &PublicKey,
        seller_relays: &[RelayAddress],
        currency: &Currency,
        amount: Credits,
        expires_at: u64,
        description: &Text,
        hashed_lock: &HashedLock,
    ) -> Vec<u8> {
        let mut writer = CanonicalWriter::new(domain::INVOICE);
        writer
            .fixed(invoice_id.as_bytes())
            .fixed(seller.as_bytes())
            .list_len(seller_relays.len());
        for relay in seller_relays {
            writer
                .fixed(relay.public_key.as_bytes())
                .text(relay.address.as_str());
        }
        writer
            .text(currency.as_str())
            .u128(amount.0)
            .u64(expires_at)
            .text(description.as_str())
            .fixed(hashed_lock.as_bytes());
        writer.finish()
    }

    /// Checks the field bounds a decoder enforces (the signature is checked by
    /// `offst_credit::payment::verify_invoice`, which needs the crypto crate).
    pub fn check(&self) -> Result<(), UriError> {
        check_fields(self)
    }

    fn write_payload(&self, payload: &mut Vec<u8>) {
        payload.extend_from_slice(self.invoice_id.as_bytes());
        payload.extend_from_slice(self.seller.as_bytes());
        push_short_str(payload, self.currency.as_str());
        payload.extend_from_slice(&self.amount.0.to_be_bytes());
        payload.extend_from_slice(&self.expires_at.to_be_bytes());
        payload.extend_from_slice(self.hashed_lock.as_bytes());
        push_short_str(payload, self.description.as_str());
        // At most MAX_RELAYS (checked on construction and decode), far below 256.
        payload.push(u8::try_from(self.seller_relays.len()).unwrap_or(u8::MAX));
        for relay in &self.seller_relays {
            payload.extend_from_slice(relay.public_key.as_bytes());
            push_short_str(payload, relay.address.as_str());
        }
        payload.extend_from_slice(self.signature.as_bytes());
    }

    fn read_payload(reader: &mut PayloadReader<'_>) -> Result<Invoice, UriError> {
        let invalid = |err: TypeError| UriError::Invalid(err.to_string());
        let invoice_id = InvoiceId::try_from_slice(reader.take(32)?).map_err(invalid)?;
        let seller = PublicKey::try_from_slice(reader.take(32)?).map_err(invalid)?;
        let currency = Currency::new(reader.short_str()?).map_err(invalid)?;
        let amount = Credits(u128::from_be_bytes(array(reader.take(16)?)?));
        let expires_at = u64::from_be_bytes(array(reader.take(8)?)?);
        let hashed_lock = HashedLock::try_from_slice(reader.take(32)?).map_err(invalid)?;
        let description = Text::new(reader.short_str()?).map_err(invalid)?;
        let count = usize::from(reader.u8()?);
        if count > MAX_RELAYS {
            return Err(UriError::Invalid(format!(
                "an invoice lists at most {MAX_RELAYS} relays"
            )));
        }
        let mut seller_relays = Vec::with_capacity(count);
        for _ in 0..count {
            let public_key = PublicKey::try_from_slice(reader.take(32)?).map_err(invalid)?;
            let address = NetAddress::new(reader.short_str()?).map_err(invalid)?;
            seller_relays.push(RelayAddress {
                public_key,
                address,
            });
        }
        let signature = Signature::try_from_slice(reader.take(64)?).map_err(invalid)?;
        let invoice = Invoice {
            invoice_id,
            seller,
            seller_relays,
            currency,
            amount,
            expires_at,
            description,
            hashed_lock,
            signature,
        };
        check_fields(&invoice)?;
        Ok(invoice)
    }

    /// The `offst:I1…` URI.
    pub fn to_uri(&self) -> String {
        let mut payload = Vec::with_capacity(256);
        self.write_payload(&mut payload);
        uri::encode(UriKind::Invoice, INVOICE_VERSION, &payload)
    }

    /// Parses an `offst:I1…` URI strictly (the signature is not checked here).
    pub fn from_uri(text: &str) -> Result<Invoice, UriError> {
        let (version, payload) = uri::decode(text, UriKind::Invoice)?;
        if version != INVOICE_VERSION {
            return Err(UriError::UnsupportedVersion(char::from(b'0' + version)));
        }
        let mut reader = PayloadReader::new(&payload);
        let invoice = Invoice::read_payload(&mut reader)?;
        reader.finish()?;
        Ok(invoice)
    }
}

fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], UriError> {
    bytes
        .try_into()
        .map_err(|_| UriError::Invalid("truncated".into()))
}

impl fmt::Display for Invoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

impl FromStr for Invoice {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        Invoice::from_uri(text)
    }
}

/// Proof that an invoice was paid: the seller's signed invoice and the plain lock the seller
/// revealed only after receiving the whole amount. Verifiable offline by anyone
/// (`offst_credit::payment::verify_receipt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The invoice, with the seller's signature.
    pub invoice: Invoice,
    /// The preimage of `invoice.hashed_lock`.
    pub plain_lock: PlainLock,
}

impl Receipt {
    /// The receipt's bytes (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![RECEIPT_VERSION];
        self.invoice.write_payload(&mut bytes);
        bytes.extend_from_slice(self.plain_lock.as_bytes());
        bytes
    }

    /// Parses receipt bytes strictly (nothing is verified here).
    pub fn from_bytes(bytes: &[u8]) -> Result<Receipt, UriError> {
        let mut reader = PayloadReader::new(bytes);
        let version = reader.u8()?;
        if version != RECEIPT_VERSION {
            return Err(UriError::UnsupportedVersion(char::from(
                b'0'.saturating_add(version.min(9)),
            )));
        }
        let invoice = Invoice::read_payload(&mut reader)?;
        let plain_lock = PlainLock::try_from_slice(reader.take(32)?)
            .map_err(|err| UriError::Invalid(err.to_string()))?;
        reader.finish()?;
        Ok(Receipt {
            invoice,
            plain_lock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice() -> Invoice {
        Invoice {
            invoice_id: InvoiceId::from_bytes([1; 32]),
            seller: PublicKey::from_bytes([2; 32]),
            seller_relays: vec![RelayAddress {
                public_key: PublicKey::from_bytes([3; 32]),
                address: NetAddress::new("relay.example.org:4000").unwrap(),
            }],
            currency: Currency::new("FST").unwrap(),
            amount: Credits(1_250),
            expires_at: 1_800_000_000_000,
            description: Text::new("Two coffees").unwrap(),
            hashed_lock: HashedLock::from_bytes([4; 32]),
            signature: Signature::from_bytes([5; 64]),
        }
    }

    #[test]
    fn an_invoice_round_trips_through_its_uri() {
        let uri = invoice().to_uri();
        assert!(uri.starts_with("offst:I1"), "{uri}");
        assert_eq!(uri.parse::<Invoice>().unwrap(), invoice());
    }

    #[test]
    fn an_invoice_fits_a_qr_code_comfortably() {
        // QR version 25 at error correction M holds 1,076 alphanumeric characters.
        let uri = invoice().to_uri();
        assert!(uri.len() < 450, "{} characters: {uri}", uri.len());
        let mut full = invoice();
        full.description = Text::new(&"d".repeat(MAX_INVOICE_DESCRIPTION_LEN)).unwrap();
        full.seller_relays = vec![invoice().seller_relays[0].clone(); 3];
        assert!(full.to_uri().len() < 1_000, "{}", full.to_uri().len());
    }

    #[test]
    fn a_damaged_invoice_is_rejected_never_misread() {
        let mut bytes = invoice().to_uri().into_bytes();
        let last = bytes.len() - 7;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(bytes).unwrap();
        assert_eq!(damaged.parse::<Invoice>(), Err(UriError::Checksum));
    }

    #[test]
    fn a_friend_card_is_not_an_invoice() {
        let card = uri::encode(UriKind::FriendCard, 1, b"x");
        assert!(matches!(
            card.parse::<Invoice>(),
            Err(UriError::WrongKind { .. })
        ));
    }

    #[test]
    fn invoices_with_zero_amount_or_long_descriptions_are_refused() {
        let mut zero = invoice();
        zero.amount = Credits::ZERO;
        assert!(Invoice::from_uri(&zero.to_uri()).is_err());
        let mut long = invoice();
        long.description = Text::new(&"d".repeat(MAX_INVOICE_DESCRIPTION_LEN + 1)).unwrap();
        assert!(Invoice::from_uri(&long.to_uri()).is_err());
    }

    #[test]
    fn signing_bytes_cover_every_field() {
        let base = invoice().signing_bytes();
        let mut changed = invoice();
        changed.amount = Credits(1_251);
        assert_ne!(changed.signing_bytes(), base);
        let mut changed = invoice();
        changed.expires_at += 1;
        assert_ne!(changed.signing_bytes(), base);
        let mut changed = invoice();
        changed.hashed_lock = HashedLock::from_bytes([9; 32]);
        assert_ne!(changed.signing_bytes(), base);
        let mut changed = invoice();
        changed.signature = Signature::from_bytes([0; 64]);
        assert_eq!(changed.signing_bytes(), base);
    }

    #[test]
    fn a_receipt_round_trips_through_its_bytes() {
        let receipt = Receipt {
            invoice: invoice(),
            plain_lock: PlainLock::from_bytes([6; 32]),
        };
        let bytes = receipt.to_bytes();
        assert_eq!(Receipt::from_bytes(&bytes).unwrap(), receipt);
        assert!(Receipt::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Receipt::from_bytes(&longer).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_invoices_and_receipts_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            text in "\\PC{0,300}",
        ) {
            let _ = Receipt::from_bytes(&bytes);
            let _ = Invoice::from_uri(&text);
            let _ = Invoice::from_uri(&format!("offst:I1{text}"));
        }

        #[test]
        fn a_bit_flipped_receipt_never_decodes_to_the_same_receipt(
            index in 0usize..400,
            bit in 0u8..8,
        ) {
            let receipt = Receipt {
                invoice: invoice(),
                plain_lock: PlainLock::from_bytes([6; 32]),
            };
            let mut bytes = receipt.to_bytes();
            let index = index % bytes.len();
            bytes[index] ^= 1 << bit;
            if let Ok(decoded) = Receipt::from_bytes(&bytes) {
                proptest::prop_assert_ne!(decoded, receipt);
            }
        }
    }
}
