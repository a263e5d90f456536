//! Scenario tests of invoices, receipts and multi-hop payments. Each test is named after the
//! behaviour it shows.

use offst_credit::payment::{
    create_invoice, verify_invoice, verify_receipt, InvoiceTerms, PaymentProofError,
};
use offst_credit::Timestamp;
use offst_crypto::Identity;
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{Credits, Currency, PlainLock, Text};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

fn terms(amount: u128) -> InvoiceTerms {
    InvoiceTerms {
        currency: fst(),
        amount: Credits(amount),
        expires_at: Timestamp(3_600_000),
        description: Text::new("bicycle repair").unwrap(),
        seller_relays: Vec::new(),
    }
}

#[test]
fn a_receipt_verifies_and_a_tampered_one_does_not() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let seller = Identity::from_seed([3; 32]);
    let (invoice, plain_lock) = create_invoice(&seller, terms(40), &mut rng).unwrap();
    let receipt = Receipt {
        invoice: invoice.clone(),
        plain_lock,
    };
    verify_receipt(&receipt).unwrap();
    // Through its bytes, as a buyer would keep it.
    verify_receipt(&Receipt::from_bytes(&receipt.to_bytes()).unwrap()).unwrap();

    let mut wrong_secret = receipt.clone();
    wrong_secret.plain_lock = PlainLock::from_bytes([0; 32]);
    assert_eq!(
        verify_receipt(&wrong_secret),
        Err(PaymentProofError::WrongPlainLock)
    );
    let mut cheaper = receipt.clone();
    cheaper.invoice.amount = Credits(4);
    assert_eq!(
        verify_receipt(&cheaper),
        Err(PaymentProofError::BadSignature)
    );
    let other_seller = Identity::from_seed([4; 32]);
    let mut reassigned = receipt.clone();
    reassigned.invoice.seller = other_seller.public_key();
    assert_eq!(
        verify_receipt(&reassigned),
        Err(PaymentProofError::BadSignature)
    );
    // A receipt for another invoice of the same seller does not transfer.
    let (other, _) = create_invoice(&seller, terms(40), &mut rng).unwrap();
    let mut swapped = receipt;
    swapped.invoice = other;
    assert_eq!(
        verify_receipt(&swapped),
        Err(PaymentProofError::WrongPlainLock)
    );
}

#[test]
fn an_invoice_uri_carries_a_verifiable_signature() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let seller = Identity::from_seed([3; 32]);
    let (invoice, _) = create_invoice(&seller, terms(7), &mut rng).unwrap();
    let parsed: Invoice = invoice.to_uri().parse().unwrap();
    assert_eq!(parsed, invoice);
    verify_invoice(&parsed).unwrap();
}
