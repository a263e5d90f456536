//! Invoices and receipts: creating a signed invoice, checking one, and verifying a receipt
//! offline (docs/PROTOCOL.md §14). The wire types live in
//! [`offst_proto::payment`]; this module adds what needs keys and hashes.

use offst_crypto::{hash_lock, random_bytes, verify_signature, Identity, SecureRngDyn};
use offst_proto::limits::{MAX_INVOICE_DESCRIPTION_LEN, MAX_RELAYS};
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{
    Credits, Currency, HashedLock, InvoiceId, PlainLock, RelayAddress, Signature, Text,
};

use crate::node::Timestamp;

/// Why an invoice or a receipt is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentProofError {
    /// The amount is zero.
    #[error("the amount must be more than zero")]
    ZeroAmount,
    /// The description is too long for an invoice.
    #[error("the description is longer than {MAX_INVOICE_DESCRIPTION_LEN} bytes")]
    DescriptionTooLong,
    /// Too many relays.
    #[error("an invoice lists at most {MAX_RELAYS} relays")]
    TooManyRelays,
    /// The seller's signature does not verify: the invoice was forged or altered.
    #[error("the seller's signature does not match the invoice")]
    BadSignature,
    /// The plain lock does not hash to the invoice's lock: the seller never revealed it.
    #[error("the receipt's secret does not unlock the invoice")]
    WrongPlainLock,
}

/// What the seller asks for; [`create_invoice`] signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceTerms {
    /// The currency.
    pub currency: Currency,
    /// What the seller must receive, fees excluded.
    pub amount: Credits,
    /// Unix time in milliseconds after which the invoice must not be paid.
    pub expires_at: Timestamp,
    /// Free text for the buyer.
    pub description: Text,
    /// Relays the seller listens on.
    pub seller_relays: Vec<RelayAddress>,
}

/// Creates and signs an invoice; returns it with its plain lock, which the seller keeps secret
/// until it received the whole amount.
pub fn create_invoice(
    identity: &Identity,
    terms: InvoiceTerms,
    rng: &mut dyn SecureRngDyn,
) -> Result<(Invoice, PlainLock), PaymentProofError> {
    if terms.amount == Credits::ZERO {
        return Err(PaymentProofError::ZeroAmount);
    }
    if terms.description.as_str().len() > MAX_INVOICE_DESCRIPTION_LEN {
        return Err(PaymentProofError::DescriptionTooLong);
    }
    if terms.seller_relays.len() > MAX_RELAYS {
        return Err(PaymentProofError::TooManyRelays);
    }
    let invoice_id = InvoiceId::from_bytes(random_bytes(rng));
    let plain_lock = PlainLock::from_bytes(random_bytes(rng));
    let mut invoice = Invoice {
        invoice_id,
        seller: identity.public_key(),
        seller_relays: terms.seller_relays,
        currency: terms.currency,
        amount: terms.amount,
        expires_at: terms.expires_at.0,
        description: terms.description,
        hashed_lock: hash_lock(&plain_lock),
        signature: Signature::from_bytes([0; 64]),
    };
    invoice.signature = identity.sign(&invoice.signing_bytes());
    Ok((invoice, plain_lock))
}

/// Checks an invoice's bounds and the seller's signature (not its expiry: that needs `now`).
pub fn verify_invoice(invoice: &Invoice) -> Result<(), PaymentProofError> {
    if invoice.amount == Credits::ZERO {
        return Err(PaymentProofError::ZeroAmount);
    }
    if invoice.description.as_str().len() > MAX_INVOICE_DESCRIPTION_LEN {
        return Err(PaymentProofError::DescriptionTooLong);
    }
    if invoice.seller_relays.len() > MAX_RELAYS {
        return Err(PaymentProofError::TooManyRelays);
    }
    verify_signature(
        &invoice.seller,
        &invoice.signing_bytes(),
        &invoice.signature,
    )
    .map_err(|_| PaymentProofError::BadSignature)
}

/// Whether `plain_lock` opens `hashed_lock`.
pub fn unlocks(plain_lock: &PlainLock, hashed_lock: &HashedLock) -> bool {
    hash_lock(plain_lock) == *hashed_lock
}

/// Verifies a receipt offline: the invoice carries the seller's valid signature and the plain
/// lock hashes to the invoice's lock. A valid receipt proves the seller revealed its secret,
/// which an honest seller does only after receiving the whole invoice amount.
pub fn verify_receipt(receipt: &Receipt) -> Result<(), PaymentProofError> {
    verify_invoice(&receipt.invoice)?;
    if !unlocks(&receipt.plain_lock, &receipt.invoice.hashed_lock) {
        return Err(PaymentProofError::WrongPlainLock);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn terms() -> InvoiceTerms {
        InvoiceTerms {
            currency: Currency::new("FST").unwrap(),
            amount: Credits(100),
            expires_at: Timestamp(60_000),
            description: Text::new("a book").unwrap(),
            seller_relays: Vec::new(),
        }
    }

    #[test]
    fn a_created_invoice_verifies_and_survives_its_uri() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let seller = Identity::from_seed([1; 32]);
        let (invoice, plain_lock) = create_invoice(&seller, terms(), &mut rng).unwrap();
        verify_invoice(&invoice).unwrap();
        let parsed: Invoice = invoice.to_uri().parse().unwrap();
        verify_invoice(&parsed).unwrap();
        assert!(unlocks(&plain_lock, &parsed.hashed_lock));
    }

    #[test]
    fn an_altered_invoice_fails_verification() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let seller = Identity::from_seed([1; 32]);
        let (mut invoice, _) = create_invoice(&seller, terms(), &mut rng).unwrap();
        invoice.amount = Credits(1);
        assert_eq!(
            verify_invoice(&invoice),
            Err(PaymentProofError::BadSignature)
        );
    }

    #[test]
    fn zero_amount_invoices_are_not_created() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let seller = Identity::from_seed([1; 32]);
        let mut zero = terms();
        zero.amount = Credits::ZERO;
        assert_eq!(
            create_invoice(&seller, zero, &mut rng),
            Err(PaymentProofError::ZeroAmount)
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// A fixed invoice: seller seed 0x01 x 32, id 0x02 x 32, plain lock 0x03 x 32, no relays,
    /// 100 FST, expires at 1 700 000 000 000, description "tea".
    fn vector_invoice() -> (Invoice, PlainLock) {
        let seller = Identity::from_seed([1; 32]);
        let plain_lock = PlainLock::from_bytes([3; 32]);
        let mut invoice = Invoice {
            invoice_id: InvoiceId::from_bytes([2; 32]),
            seller: seller.public_key(),
            seller_relays: Vec::new(),
            currency: Currency::new("FST").unwrap(),
            amount: Credits(100),
            expires_at: 1_700_000_000_000,
            description: Text::new("tea").unwrap(),
            hashed_lock: hash_lock(&plain_lock),
            signature: Signature::from_bytes([0; 64]),
        };
        invoice.signature = seller.sign(&invoice.signing_bytes());
        (invoice, plain_lock)
    }

    #[test]
    fn invoice_vectors_are_stable() {
        let (invoice, plain_lock) = vector_invoice();
        assert_eq!(
            hex(&invoice.signing_bytes()),
            "000000186f666673742f76312f7061796d656e742f696e766f69636502020202020202020202020202\
             020202020202020202020202020202020202028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94\
             121bf3748801b40f6f5c000000000000000346535400000000000000000000000000000064000001\
             8bcfe568000000000374656129a5dcf0b0ac3bf3de1d0bb3222a222844178938b8877aff6e09763d\
             4adaaa79"
        );
        assert_eq!(
            hex(invoice.hashed_lock.as_bytes()),
            "29a5dcf0b0ac3bf3de1d0bb3222a222844178938b8877aff6e09763d4adaaa79"
        );
        assert_eq!(
            hex(invoice.signature.as_bytes()),
            "5263f5b6383ecd9bf54e219806c4424d91799d367599218b7479a911d0f7f286\
             06356cf5d31e9d645fa03b9344dca2ad06a61981172e51f6a33f77b7c44ee000"
        );
        assert_eq!(
            invoice.to_uri(),
            "offst:I1AIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBIVCHD3V2AT4MV7VJNWLJ4XJOXF\
             STHBG7R3FASDPZXJCABWQHW6XADIZJVIAAAAAAAAAAAAAAAAAAAAAAAAZAAAAAYXT7FNAACTJO46CYKYO7T3YO\
             QXMZCFIRCQRAXRE4LRB3275XAS5R5JLNKU6IDORSWCACSMP23MOB6ZWN7KTRBTADMIQSNSF4Z2NTVTEQYW5DZV\
             EI5B57SQYDDK3HV2MPJ2ZC7UA5ZGRG4UKWQNJQZQELS4UPWUM7XPN6EJ3QABWF3CHMQ"
        );
        verify_receipt(&Receipt {
            invoice,
            plain_lock,
        })
        .unwrap();
    }
}
