//! Token channel throughput between two in-process nodes, signing and verification included.
//! Every message is encoded and decoded, and every change is applied to a simulated store.
//!
//! Run: `cargo bench -p offst-credit --bench channel` (release profile). Prints one table.

use std::time::Instant;

use offst_credit::{Command, CreditConfig, Event};
use offst_proto::{Credits, Currency, PaymentId};
use offst_testkit::{NodeId, SimNetwork};

struct Row {
    scenario: &'static str,
    operations: u64,
    tokens: u64,
    seconds: f64,
}

fn setup() -> (SimNetwork, NodeId, NodeId, Currency) {
    let mut net = SimNetwork::new(1);
    let a = net.add_node(CreditConfig::default());
    let b = net.add_node(CreditConfig::default());
    net.befriend(a, b).expect("befriend");
    let currency = Currency::new("FST").expect("currency");
    for (from, to) in [(a, b), (b, a)] {
        let friend = net.public_key(to);
        net.command(
            from,
            Command::SetCurrencyLimit {
                friend,
                currency: currency.clone(),
                remote_max_debt: Credits(u64::MAX as u128),
            },
        )
        .expect("limit");
    }
    net.settle().expect("settle");
    (net, a, b, currency)
}

fn transfer(net: &mut SimNetwork, from: NodeId, to: NodeId, currency: &Currency, counter: u64) {
    let friend = net.public_key(to);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&counter.to_be_bytes());
    net.command(
        from,
        Command::Transfer {
            friend,
            currency: currency.clone(),
            amount: Credits(1),
            transfer_id: PaymentId::from_bytes(id),
        },
    )
    .expect("transfer");
}

fn tokens_sent(net: &mut SimNetwork, nodes: &[NodeId]) -> u64 {
    nodes
        .iter()
        .flat_map(|&id| net.take_events(id))
        .filter(|event| matches!(event, Event::TokenSent { .. }))
        .count() as u64
}

/// `rounds` rounds; each queues `batch` transfers on each sender, then delivers everything.
fn run(scenario: &'static str, rounds: u64, batch: u64, both_ways: bool) -> Row {
    let (mut net, a, b, currency) = setup();
    tokens_sent(&mut net, &[a, b]);
    let mut counter = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        for _ in 0..batch {
            counter += 1;
            transfer(&mut net, a, b, &currency, counter);
            if both_ways {
                transfer(&mut net, b, a, &currency, counter);
            }
        }
        net.deliver_all(usize::MAX);
    }
    let seconds = start.elapsed().as_secs_f64();
    net.check_agreement().expect("agreement");
    let operations = if both_ways { counter * 2 } else { counter };
    Row {
        scenario,
        operations,
        tokens: tokens_sent(&mut net, &[a, b]),
        seconds,
    }
}

/// The floor: one Ed25519 signature and one verification per token, nothing else.
fn crypto_floor(tokens: u64) -> Row {
    let identity = offst_crypto::Identity::from_seed([7; 32]);
    let message = [0u8; 200];
    let start = Instant::now();
    for _ in 0..tokens {
        let signature = identity.sign(&message);
        offst_crypto::verify_signature(&identity.public_key(), &message, &signature)
            .expect("verifies");
    }
    Row {
        scenario: "floor: sign + verify only",
        operations: 0,
        tokens,
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn main() {
    let rows = [
        crypto_floor(4_000),
        run("one transfer per token, one way", 2_000, 1, false),
        run("batches of 8, one way", 500, 8, false),
        run("batches of 64, one way", 200, 64, false),
        run("batches of 64, both ways", 100, 64, true),
    ];
    println!(
        "{:<34} {:>10} {:>8} {:>10} {:>13} {:>11}",
        "scenario", "transfers", "tokens", "seconds", "transfers/s", "tokens/s"
    );
    for row in rows {
        println!(
            "{:<34} {:>10} {:>8} {:>10.3} {:>13.0} {:>11.0}",
            row.scenario,
            row.operations,
            row.tokens,
            row.seconds,
            row.operations as f64 / row.seconds,
            row.tokens as f64 / row.seconds,
        );
    }
}
