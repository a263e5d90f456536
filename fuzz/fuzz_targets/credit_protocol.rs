//! The whole friend-channel protocol under a fuzzer-chosen schedule: three nodes in a triangle
//! of friendships; the input picks commands (limits, transfers, invoices and multi-hop
//! payments), deliveries, drops,
//! duplicates, reorders, partitions, restarts, forged bytes and time. The invariants of the
//! simulated network must hold after every step, and after healing every pair must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_credit::{Command, CreditConfig, Event, PayRoute, Timestamp};
use offst_proto::payment::Invoice;
use offst_proto::{Credits, Currency, PaymentId, Text};
use offst_testkit::{NodeId, SimNetwork};

const NODES: usize = 3;

fuzz_target!(|data: &[u8]| {
    let mut sim = SimNetwork::new(u64::from(data.first().copied().unwrap_or(0)));
    let nodes: Vec<NodeId> = (0..NODES).map(|_| sim.add_node(CreditConfig::default())).collect();
    for i in 0..NODES {
        for j in i + 1..NODES {
            sim.befriend(nodes[i], nodes[j]).expect("fresh friends");
            sim.connect(nodes[i], nodes[j]);
        }
    }
    let currency = Currency::new("FST").expect("valid currency");
    let mut transfers = 0u32;
    let mut invoices: Vec<(NodeId, Invoice)> = Vec::new();
    for chunk in data.chunks(3).take(400) {
        let [op, x, y] = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let a = nodes[usize::from(x) % NODES];
        let b = nodes[(usize::from(x) / NODES + 1 + usize::from(x) % NODES) % NODES];
        let in_flight = sim.in_flight().len();
        match op % 14 {
            0 => {
                let _ = sim.command(
                    a,
                    Command::SetCurrencyLimit {
                        friend: sim.public_key(b),
                        currency: currency.clone(),
                        remote_max_debt: Credits(u128::from(y) * 10),
                    },
                );
            }
            1 | 2 => {
                transfers += 1;
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&transfers.to_be_bytes());
                let _ = sim.command(
                    a,
                    Command::Transfer {
                        friend: sim.public_key(b),
                        currency: currency.clone(),
                        amount: Credits(u128::from(y % 50) + 1),
                        transfer_id: PaymentId::from_bytes(id),
                    },
                );
            }
            3 | 4 if in_flight > 0 => {
                sim.deliver(usize::from(y) % in_flight);
            }
            5 if in_flight > 0 => {
                sim.drop_message(usize::from(y) % in_flight);
            }
            6 if in_flight > 0 => sim.duplicate_message(usize::from(y) % in_flight),
            7 => sim.reorder(),
            8 => {
                if sim.is_partitioned(a, b) {
                    sim.heal(a, b);
                } else {
                    sim.partition(a, b);
                }
            }
            9 => sim.restart(a),
            10 => sim.inject(a, b, chunk.to_vec()),
            11 => sim.advance(u64::from(y) * 100),
            12 => {
                let expires_at = Timestamp(sim.now().0 + 1_000 + u64::from(y) * 1_000);
                let created = sim.command(
                    a,
                    Command::CreateInvoice {
                        currency: currency.clone(),
                        amount: Credits(u128::from(y % 40) + 1),
                        expires_at,
                        description: Text::new("fuzz").expect("text"),
                        relays: Vec::new(),
                    },
                );
                if created.is_ok() {
                    for event in sim.take_events(a) {
                        if let Event::InvoiceCreated { invoice } = event {
                            invoices.push((a, *invoice));
                        }
                    }
                }
            }
            13 => {
                if let Some((seller, invoice)) = invoices.pop() {
                    let buyer = if seller == a { b } else { a };
                    let mediator = nodes
                        .iter()
                        .copied()
                        .find(|node| *node != seller && *node != buyer);
                    let mut route = vec![sim.public_key(buyer)];
                    if let (true, Some(mediator)) = (y % 2 == 1, mediator) {
                        route.push(sim.public_key(mediator));
                    }
                    route.push(sim.public_key(seller));
                    transfers += 1;
                    let mut id = [0u8; 16];
                    id[..4].copy_from_slice(&transfers.to_be_bytes());
                    id[15] = 1;
                    let _ = sim.command(
                        buyer,
                        Command::Pay {
                            payment_id: PaymentId::from_bytes(id),
                            routes: vec![PayRoute {
                                route,
                                dest_payment: invoice.amount,
                            }],
                            invoice: Box::new(invoice),
                            max_fees: Credits(u128::from(y % 3)),
                        },
                    );
                }
            }
            _ => {
                sim.deliver_all(4);
            }
        }
        if let Err(err) = sim.check_invariants() {
            panic!("invariant broken: {err:?}");
        }
    }
    for i in 0..NODES {
        for j in i + 1..NODES {
            sim.heal(nodes[i], nodes[j]);
        }
    }
    sim.settle().expect("the network settles after healing");
    sim.check_agreement().expect("friends agree after healing");
});
