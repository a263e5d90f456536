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

#[test]
fn a_limit_exceeded_mid_route_cancels_the_payment_and_releases_every_frozen_credit() {
    let (mut net, nodes) = chain(22, 4, 1_000);
    let (buyer, m1, m2, seller) = (nodes[0], nodes[1], nodes[2], nodes[3]);
    // The seller lets the second mediator owe only 50.
    set_limit(&mut net, seller, m2, 50);
    net.settle().unwrap();
    let invoice = invoice_of(&mut net, seller, 100, 3_600_000);
    let payment_id = pay(&mut net, buyer, &invoice, vec![(nodes.clone(), 100)], 10).unwrap();
    while net.deliver(0) {
        net.check_invariants().unwrap();
    }
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::Cancelled
    );
    assert!(net
        .take_events(buyer)
        .iter()
        .any(|event| matches!(event, Event::PaymentFailed { .. })));
    assert!(nothing_frozen(&net, &nodes));
    for node in [buyer, m1, m2, seller] {
        assert_eq!(net_position(&net, node, &nodes), 0);
    }
    assert!(net.node(m1).state().payments.forwards.is_empty());
    // The buyer may try again after a failure (e.g. over another route).
    set_limit(&mut net, seller, m2, 1_000);
    net.settle().unwrap();
    let retry = pay(&mut net, buyer, &invoice, vec![(nodes.clone(), 100)], 10).unwrap();
    net.settle().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &retry),
        PaymentStatus::Succeeded
    );
}

#[test]
fn a_seller_offline_past_the_expiry_cancels_when_back_and_every_credit_is_released() {
    let (mut net, nodes) = chain(23, 3, 1_000);
    let (buyer, mediator, seller) = (nodes[0], nodes[1], nodes[2]);
    let invoice = invoice_of(&mut net, seller, 40, 3_600_000);
    // The request reaches the mediator, which passes it on; the seller goes offline and the
    // token carrying the request is lost.
    let payment_id = pay(&mut net, buyer, &invoice, vec![(nodes.clone(), 40)], 5).unwrap();
    let to_seller = |net: &SimNetwork| {
        net.in_flight()
            .iter()
            .any(|envelope| envelope.from == mediator && envelope.to == seller)
    };
    let mut steps = 0;
    while !to_seller(&net) && net.deliver(0) {
        steps += 1;
        assert!(steps < 100);
    }
    assert!(net.node(mediator).state().payments.forwards.len() == 1);
    net.partition(mediator, seller);
    net.deliver_all(1_000);
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::InProgress
    );
    // Long after every expiry, the seller comes back.
    net.advance(10 * 60_000);
    net.heal(mediator, seller);
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::Cancelled
    );
    assert!(nothing_frozen(&net, &nodes));
    for node in &nodes {
        assert_eq!(net_position(&net, *node, &nodes), 0);
    }
}

#[test]
fn a_request_for_an_offline_next_hop_is_cancelled_upstream_at_once() {
    let (mut net, nodes) = chain(24, 3, 1_000);
    let (buyer, mediator, seller) = (nodes[0], nodes[1], nodes[2]);
    let invoice = invoice_of(&mut net, seller, 40, 3_600_000);
    net.partition(mediator, seller);
    let payment_id = pay(&mut net, buyer, &invoice, vec![(nodes.clone(), 40)], 5).unwrap();
    while net.deliver(0) {
        net.check_invariants().unwrap();
    }
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::Cancelled
    );
    assert!(nothing_frozen(&net, &[buyer, mediator]));
    assert!(net.node(mediator).state().payments.forwards.is_empty());
}

#[test]
fn a_payment_over_two_routes_succeeds_when_both_arrive() {
    let mut net = SimNetwork::new(25);
    let nodes: Vec<NodeId> = (0..4)
        .map(|_| net.add_node(CreditConfig::default()))
        .collect();
    let (buyer, m1, m2, seller) = (nodes[0], nodes[1], nodes[2], nodes[3]);
    for (a, b) in [(buyer, m1), (m1, seller), (buyer, m2), (m2, seller)] {
        net.befriend(a, b).unwrap();
    }
    net.settle().unwrap();
    for (creditor, debtor) in [(m1, buyer), (seller, m1), (m2, buyer), (seller, m2)] {
        set_limit(&mut net, creditor, debtor, 60);
    }
    net.settle().unwrap();
    let invoice = invoice_of(&mut net, seller, 100, 3_600_000);
    // Neither route alone could carry 100.
    let payment_id = pay(
        &mut net,
        buyer,
        &invoice,
        vec![(vec![buyer, m1, seller], 50), (vec![buyer, m2, seller], 50)],
        4,
    )
    .unwrap();
    while net.deliver(0) {
        net.check_invariants().unwrap();
    }
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::Succeeded
    );
    verify_receipt(&receipt_of(&mut net, buyer).unwrap()).unwrap();
    assert_eq!(net_position(&net, seller, &nodes), 100);
    assert_eq!(net_position(&net, buyer, &nodes), -102);
    assert_eq!(net_position(&net, m1, &nodes), 1);
    assert_eq!(net_position(&net, m2, &nodes), 1);
    assert!(nothing_frozen(&net, &nodes));
}

#[test]
fn a_payment_over_two_routes_pays_nothing_when_one_route_fails() {
    let mut net = SimNetwork::new(26);
    let nodes: Vec<NodeId> = (0..4)
        .map(|_| net.add_node(CreditConfig::default()))
        .collect();
    let (buyer, m1, m2, seller) = (nodes[0], nodes[1], nodes[2], nodes[3]);
    for (a, b) in [(buyer, m1), (m1, seller), (buyer, m2), (m2, seller)] {
        net.befriend(a, b).unwrap();
    }
    net.settle().unwrap();
    for (creditor, debtor) in [(m1, buyer), (seller, m1), (m2, buyer)] {
        set_limit(&mut net, creditor, debtor, 60);
    }
    // The seller lets m2 owe only 10: the second route fails at m2.
    set_limit(&mut net, seller, m2, 10);
    net.settle().unwrap();
    let invoice = invoice_of(&mut net, seller, 100, 3_600_000);
    let payment_id = pay(
        &mut net,
        buyer,
        &invoice,
        vec![(vec![buyer, m1, seller], 50), (vec![buyer, m2, seller], 50)],
        4,
    )
    .unwrap();
    while net.deliver(0) {
        net.check_invariants().unwrap();
    }
    // The first route waits at the seller, which never reveals its secret for half the amount.
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::InProgress
    );
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::Cancelled
    );
    assert!(nothing_frozen(&net, &nodes));
    for node in &nodes {
        assert_eq!(net_position(&net, *node, &nodes), 0);
    }
    let seller_record = &net.node(seller).state().payments.invoices[&invoice.invoice_id];
    assert!(seller_record.received.is_empty());
}

#[test]
fn paying_the_same_invoice_twice_is_refused() {
    let (mut net, nodes) = chain(27, 3, 1_000);
    let invoice = invoice_of(&mut net, nodes[2], 10, 3_600_000);
    pay(&mut net, nodes[0], &invoice, vec![(nodes.clone(), 10)], 2).unwrap();
    assert_eq!(
        pay(&mut net, nodes[0], &invoice, vec![(nodes.clone(), 10)], 2),
        Err(CommandError::DuplicatePayment)
    );
    net.settle().unwrap();
    assert_eq!(
        pay(&mut net, nodes[0], &invoice, vec![(nodes.clone(), 10)], 2),
        Err(CommandError::DuplicatePayment)
    );
    // Paid once only.
    assert_eq!(net_position(&net, nodes[2], &nodes), 10);
}

#[test]
fn an_expired_invoice_is_refused() {
    let (mut net, nodes) = chain(28, 3, 1_000);
    let invoice = invoice_of(&mut net, nodes[2], 10, 1_000);
    net.advance(1_000);
    assert_eq!(
        pay(&mut net, nodes[0], &invoice, vec![(nodes.clone(), 10)], 2),
        Err(CommandError::InvoiceExpired)
    );
    let mut forged = invoice_of(&mut net, nodes[2], 10, 60_000);
    forged.amount = Credits(1);
    assert!(matches!(
        pay(&mut net, nodes[0], &forged, vec![(nodes.clone(), 1)], 2),
        Err(CommandError::InvalidInvoice(
            PaymentProofError::BadSignature
        ))
    ));
}

#[test]
fn a_mediator_whose_fee_does_not_fit_cancels() {
    let (mut net, nodes) = chain(29, 4, 1_000);
    let invoice = invoice_of(&mut net, nodes[3], 10, 3_600_000);
    // Two mediators, but the buyer allows one credit of fees.
    let payment_id = pay(&mut net, nodes[0], &invoice, vec![(nodes.clone(), 10)], 1).unwrap();
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, nodes[0], &payment_id),
        PaymentStatus::Cancelled
    );
    assert!(nothing_frozen(&net, &nodes));
}

#[test]
fn a_mediator_charges_its_rate_for_requests_from_a_friend() {
    let (mut net, nodes) = chain(30, 3, 10_000);
    let buyer_key = net.public_key(nodes[0]);
    net.command(
        nodes[1],
        Command::SetFeeRate {
            friend: buyer_key,
            currency: fst(),
            rate: Some(offst_credit::FeeRate {
                per_million: 10_000,
                flat: Credits(2),
            }),
        },
    )
    .unwrap();
    let invoice = invoice_of(&mut net, nodes[2], 1_000, 3_600_000);
    let payment_id = pay(
        &mut net,
        nodes[0],
        &invoice,
        vec![(nodes.clone(), 1_000)],
        50,
    )
    .unwrap();
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(
        payment_status(&net, nodes[0], &payment_id),
        PaymentStatus::Succeeded
    );
    // 2 flat + 1% of 1,000.
    assert_eq!(net_position(&net, nodes[1], &nodes), 12);
    assert_eq!(net_position(&net, nodes[0], &nodes), -1_012);
}

#[test]
fn a_reset_of_the_first_hop_ends_the_payment_and_releases_what_was_frozen() {
    use offst_credit::ResetPolicy;
    let mut net = SimNetwork::new(31);
    let config = CreditConfig {
        reset_policy: ResetPolicy::AcceptAlways,
        ..CreditConfig::default()
    };
    let nodes: Vec<NodeId> = (0..3).map(|_| net.add_node(config)).collect();
    let (buyer, mediator, seller) = (nodes[0], nodes[1], nodes[2]);
    net.befriend(buyer, mediator).unwrap();
    net.befriend(mediator, seller).unwrap();
    net.settle().unwrap();
    set_limit(&mut net, mediator, buyer, 1_000);
    set_limit(&mut net, seller, mediator, 1_000);
    net.settle().unwrap();
    let invoice = invoice_of(&mut net, seller, 40, 3_600_000);
    // The mediator is cut off from the seller, so the request stays pending on the
    // buyer's channel while the mediator waits... then the buyer's channel breaks.
    let payment_id = pay(&mut net, buyer, &invoice, vec![(nodes.clone(), 40)], 5).unwrap();
    let at_mediator = |net: &SimNetwork| !net.node(mediator).state().payments.forwards.is_empty();
    while !at_mediator(&net) && net.deliver(0) {}
    assert!(at_mediator(&net));
    net.partition(mediator, seller);
    net.partition(buyer, mediator);
    // The buyer's store loses track of its balance with the mediator: a reset follows.
    let key = net.public_key(mediator);
    let friend = net.persisted(buyer).friends[&key].clone();
    let ChannelStatus::Consistent(channel) = friend.channel else {
        panic!("inconsistent");
    };
    let mut terms = channel.sheet.to_terms();
    terms[0].balance = offst_proto::Balance(terms[0].balance.0 - 3);
    let mut corrupted = channel.clone();
    corrupted.sheet = offst_credit::BalanceSheet::from_terms(&terms, false).unwrap();
    net.tamper_store(
        buyer,
        &offst_credit::Change::SetChannel {
            friend: key,
            channel: Box::new(ChannelStatus::Consistent(corrupted)),
        },
    );
    net.settle().unwrap();
    net.check_invariants().unwrap();
    let reset = [buyer, mediator].iter().any(|node| {
        net.take_events(*node)
            .iter()
            .any(|event| matches!(event, Event::ChannelReset { .. }))
    });
    assert!(reset, "the channel was reset");
    // Whatever the reset decided, the payment ended and nothing stays frozen anywhere.
    assert_ne!(
        payment_status(&net, buyer, &payment_id),
        PaymentStatus::InProgress
    );
    assert!(nothing_frozen(&net, &nodes));
    assert!(net.node(mediator).state().payments.forwards.is_empty());
}
