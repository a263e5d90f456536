//! Multi-hop payment throughput and simulated latency vs route length, in-process: every
//! message is encoded, decoded, signed and verified, and every change is applied to a
//! simulated store.
//!
//! - payments/s: sequential payments over a chain of nodes (invoice creation, requests, the
//!   seller's collection and the settlement back to the buyer), wall clock.
//! - latency: the number of one-way network delays from `Pay` until the buyer holds the
//!   receipt, delivering every message in flight once per delay; shown also as time at an
//!   assumed 50 ms per delay.
//!
//! Run: `cargo bench -p offst-credit --bench payments` (release profile). Prints one table.

use std::time::Instant;

use offst_credit::{Command, CreditConfig, Event, PayRoute};
use offst_proto::payment::Invoice;
use offst_proto::{Credits, Currency, PaymentId, Text};
use offst_testkit::{NodeId, SimNetwork};

/// Assumed one-way delay between two friends (relay included), for the latency column.
const ONE_WAY_MS: u64 = 50;

fn fst() -> Currency {
    Currency::new("FST").expect("currency")
}

fn chain(len: usize) -> (SimNetwork, Vec<NodeId>) {
    let mut net = SimNetwork::new(len as u64);
    net.keep_events(true);
    let nodes: Vec<NodeId> = (0..len)
        .map(|_| net.add_node(CreditConfig::default()))
        .collect();
    for pair in nodes.windows(2) {
        net.befriend(pair[0], pair[1]).expect("befriend");
    }
    for pair in nodes.windows(2) {
        for (creditor, debtor) in [(pair[1], pair[0]), (pair[0], pair[1])] {
            let friend = net.public_key(debtor);
            net.command(
                creditor,
                Command::SetCurrencyLimit {
                    friend,
                    currency: fst(),
                    remote_max_debt: Credits(u64::MAX as u128),
                },
            )
            .expect("limit");
        }
    }
    net.settle().expect("settle");
    (net, nodes)
}

fn invoice(net: &mut SimNetwork, seller: NodeId) -> Invoice {
    let expires_at = net.now().plus_ms(3_600_000);
    net.command(
        seller,
        Command::CreateInvoice {
            currency: fst(),
            amount: Credits(10),
            expires_at,
            description: Text::new("bench").expect("text"),
            relays: Vec::new(),
        },
    )
    .expect("invoice");
    net.take_events(seller)
        .into_iter()
        .find_map(|event| match event {
            Event::InvoiceCreated { invoice } => Some(*invoice),
            _ => None,
        })
        .expect("invoice event")
}

fn pay(net: &mut SimNetwork, nodes: &[NodeId], invoice: Invoice) {
    let route = nodes.iter().map(|node| net.public_key(*node)).collect();
    let payment_id = PaymentId::from_bytes(net.random_bytes());
    net.command(
        nodes[0],
        Command::Pay {
            payment_id,
            invoice: Box::new(invoice),
            routes: vec![PayRoute {
                route,
                dest_payment: Credits(10),
            }],
            max_fees: Credits(nodes.len() as u128),
        },
    )
    .expect("pay");
}

fn succeeded(net: &mut SimNetwork, buyer: NodeId) -> bool {
    net.take_events(buyer)
        .iter()
        .any(|event| matches!(event, Event::PaymentSucceeded { .. }))
}

/// One-way delays until the buyer has its receipt.
fn latency(len: usize) -> u64 {
    let (mut net, nodes) = chain(len);
    let invoice = invoice(&mut net, nodes[len - 1]);
    net.take_events(nodes[0]);
    pay(&mut net, &nodes, invoice);
    let mut delays = 0;
    while !succeeded(&mut net, nodes[0]) {
        let wave = net.in_flight().len();
        assert!(wave > 0, "stalled");
        for _ in 0..wave {
            net.deliver(0);
        }
        delays += 1;
    }
    delays
}

/// Sequential payments per second over a chain of `len` nodes.
fn throughput(len: usize, payments: usize) -> f64 {
    let (mut net, nodes) = chain(len);
    let invoices: Vec<Invoice> = (0..payments)
        .map(|_| invoice(&mut net, nodes[len - 1]))
        .collect();
    let start = Instant::now();
    for invoice in invoices {
        pay(&mut net, &nodes, invoice);
        net.settle().expect("settle");
    }
    let seconds = start.elapsed().as_secs_f64();
    net.check_agreement().expect("agreement");
    payments as f64 / seconds
}

fn main() {
    println!("multi-hop payments, in-process (signing, verification, encoding included)");
    println!(
        "{:>6} {:>10} {:>12} {:>14} {:>16}",
        "nodes", "mediators", "payments/s", "one-way delays", "latency @50ms"
    );
    for len in [2usize, 3, 4, 5, 7, 9] {
        let payments = 200;
        let rate = throughput(len, payments);
        let delays = latency(len);
        println!(
            "{:>6} {:>10} {:>12.0} {:>14} {:>13} ms",
            len,
            len - 2,
            rate,
            delays,
            delays * ONE_WAY_MS
        );
    }
}
