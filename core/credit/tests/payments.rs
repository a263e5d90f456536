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

// ---- multi-hop payments on the simulated network ----

use offst_credit::{
    ChannelStatus, Command, CommandError, CreditConfig, Event, PayRoute, PaymentStatus,
};
use offst_proto::{PaymentId, PublicKey};
use offst_testkit::{NodeId, SimNetwork};

/// `creditor` lets `debtor` owe it `amount` FST (and accepts payments in FST).
fn set_limit(net: &mut SimNetwork, creditor: NodeId, debtor: NodeId, amount: u128) {
    let friend = net.public_key(debtor);
    net.command(
        creditor,
        Command::SetCurrencyLimit {
            friend,
            currency: fst(),
            remote_max_debt: Credits(amount),
        },
    )
    .unwrap();
}

/// A chain of `len` nodes, each a friend of the next, where every node lets the one before it
/// owe `limit` (credit flows from the first toward the last).
fn chain(seed: u64, len: usize, limit: u128) -> (SimNetwork, Vec<NodeId>) {
    let mut net = SimNetwork::new(seed);
    let nodes: Vec<NodeId> = (0..len)
        .map(|_| net.add_node(CreditConfig::default()))
        .collect();
    for pair in nodes.windows(2) {
        net.befriend(pair[0], pair[1]).unwrap();
    }
    net.settle().unwrap();
    for pair in nodes.windows(2) {
        set_limit(&mut net, pair[1], pair[0], limit);
        set_limit(&mut net, pair[0], pair[1], limit);
    }
    net.settle().unwrap();
    net.check_invariants().unwrap();
    (net, nodes)
}

fn invoice_of(net: &mut SimNetwork, seller: NodeId, amount: u128, expires_in: u64) -> Invoice {
    let expires_at = net.now().plus_ms(expires_in);
    net.command(
        seller,
        Command::CreateInvoice {
            currency: fst(),
            amount: Credits(amount),
            expires_at,
            description: Text::new("test").unwrap(),
            relays: Vec::new(),
        },
    )
    .unwrap();
    net.take_events(seller)
        .into_iter()
        .find_map(|event| match event {
            Event::InvoiceCreated { invoice } => Some(*invoice),
            _ => None,
        })
        .expect("an invoice")
}

fn keys(net: &SimNetwork, nodes: &[NodeId]) -> Vec<PublicKey> {
    nodes.iter().map(|node| net.public_key(*node)).collect()
}

fn pay(
    net: &mut SimNetwork,
    buyer: NodeId,
    invoice: &Invoice,
    routes: Vec<(Vec<NodeId>, u128)>,
    max_fees: u128,
) -> Result<PaymentId, CommandError> {
    let payment_id = PaymentId::from_bytes(net.random_bytes());
    let routes = routes
        .into_iter()
        .map(|(nodes, amount)| PayRoute {
            route: keys(net, &nodes),
            dest_payment: Credits(amount),
        })
        .collect();
    net.command(
        buyer,
        Command::Pay {
            payment_id,
            invoice: Box::new(invoice.clone()),
            routes,
            max_fees: Credits(max_fees),
        },
    )?;
    Ok(payment_id)
}

fn balance(net: &SimNetwork, of: NodeId, with: NodeId) -> i128 {
    net.node(of)
        .balance(&net.public_key(with), &fst())
        .map_or(0, |balance| balance.0)
}

/// Net position of a node over all its friends.
fn net_position(net: &SimNetwork, of: NodeId, friends: &[NodeId]) -> i128 {
    friends
        .iter()
        .filter(|friend| **friend != of)
        .map(|friend| balance(net, of, *friend))
        .sum()
}

fn payment_status(net: &SimNetwork, buyer: NodeId, payment_id: &PaymentId) -> PaymentStatus {
    net.node(buyer).state().payments.payments[payment_id].status
}

fn receipt_of(net: &mut SimNetwork, buyer: NodeId) -> Option<Receipt> {
    net.take_events(buyer)
        .into_iter()
        .find_map(|event| match event {
            Event::PaymentSucceeded { receipt, .. } => Some(*receipt),
            _ => None,
        })
}

/// Nothing is frozen anywhere: no pending request on any channel.
fn nothing_frozen(net: &SimNetwork, nodes: &[NodeId]) -> bool {
    nodes.iter().all(|node| {
        net.node(*node)
            .state()
            .friends
            .values()
            .all(|friend| match &friend.channel {
                ChannelStatus::Consistent(channel) => {
                    channel.sheet.requests().is_empty()
                        && channel.sheet.currencies().all(|(_, state)| {
                            state.local_pending_debt == Credits::ZERO
                                && state.remote_pending_debt == Credits::ZERO
                        })
                }
                ChannelStatus::Inconsistent(_) => false,
            })
    })
}

fn pays_over_a_chain(len: usize) {
    let (mut net, nodes) = chain(21, len, 1_000);
    let (buyer, seller) = (nodes[0], nodes[len - 1]);
    let invoice = invoice_of(&mut net, seller, 100, 3_600_000);
    let mediators = (len - 2) as i128;
    let payment_id = pay(&mut net, buyer, &invoice, vec![(nodes.clone(), 100)], 10).unwrap();
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::Succeeded
    );
    let receipt = receipt_of(&mut net, buyer).expect("a receipt");
    verify_receipt(&receipt).unwrap();
    // The buyer paid the amount plus exactly one credit per mediator; each mediator earned one.
    assert_eq!(net_position(&net, buyer, &nodes), -(100 + mediators));
    assert_eq!(net_position(&net, seller, &nodes), 100);
    for mediator in &nodes[1..len - 1] {
        assert_eq!(net_position(&net, *mediator, &nodes), 1);
        let account = net.node(*mediator).state().payments.accounts[&fst()];
        assert_eq!(account.fees_earned, Credits(1));
    }
    let account = net.node(buyer).state().payments.accounts[&fst()];
    assert_eq!(account.fees_paid, Credits(mediators as u128));
    assert_eq!(account.sent, Credits(100));
    assert!(nothing_frozen(&net, &nodes));
    net.check_agreement().unwrap();
}

#[test]
fn a_two_hop_payment_pays_the_seller_and_one_credit_to_the_mediator() {
    pays_over_a_chain(3);
}

#[test]
fn a_six_hop_payment_pays_one_credit_per_mediator() {
    pays_over_a_chain(7);
}
