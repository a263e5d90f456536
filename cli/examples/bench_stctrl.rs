//! The original's own benchmark, done the same way: a chain of three nodes through one relay
//! with one index server, driven by the command line only. Each payment is two `stctrl`
//! processes: the seller's `create-invoice`, then the buyer's `pay` that waits for the
//! receipt. Prints one table: latencies, the original's figures, the node's idle memory and
//! how fast a new friend link comes up.
//!
//! `cargo run --release -p offst-cli --example bench_stctrl -- [--payments N]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{befriend, eventually, start_node, Servers, StNode};

fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn online(node: &StNode, friend: &str) -> bool {
    node.friend(friend)["status"] == "online"
}

fn main() {
    let mut payments = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--payments" => {
                payments = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=10_000).contains(n))
                    .expect("--payments takes a number from 1 to 10000")
            }
            other => panic!("unknown argument {other:?} (use --payments N)"),
        }
    }
    let base = tempfile::tempdir().expect("a temporary directory");
    // Each payment asks the index twice (stctrl's quote, then the payment's routes): lift the
    // per-client query limit (20/s by default) so it measures latency, not the limiter.
    let limits = "queries_per_second = 1000.0\nquery_burst = 1000\n";
    let servers = Servers::start_with(base.path(), limits);
    let (relay, index) = (&servers.relay_card, &servers.index);
    let (alice, alice_card) = start_node(base.path(), "alice", relay, index);
    let (bob, bob_card) = start_node(base.path(), "bob", relay, index);
    let (carol, carol_card) = start_node(base.path(), "carol", relay, index);
    let (dave, dave_card) = start_node(base.path(), "dave", relay, index);

    let linking = Instant::now();
    befriend(&alice, "alice", &alice_card, &bob, "bob", &bob_card);
    eventually("alice and bob to link", Duration::from_secs(20), || {
        online(&alice, "bob") && online(&bob, "alice")
    });
    let link_time = linking.elapsed();
    befriend(&bob, "bob", &bob_card, &carol, "carol", &carol_card);
    befriend(&bob, "bob", &bob_card, &dave, "dave", &dave_card);
    eventually("every link", Duration::from_secs(20), || {
        online(&bob, "carol") && online(&carol, "bob") && online(&bob, "dave")
    });

    let invoice = |amount: &str| {
        carol.json(&[
            "seller",
            "create-invoice",
            "--currency",
            "FST",
            "--amount",
            amount,
        ])["invoice"]
            .as_str()
            .expect("an invoice")
            .to_owned()
    };
    // Until the index has the capacities, the first payment finds no route.
    let first = invoice("1");
    eventually(
        "a route from alice to carol",
        Duration::from_secs(20),
        || alice.stctrl(&["buyer", "pay", &first]).status.success(),
    );

    let mut pay = Vec::with_capacity(payments);
    let mut invoice_to_receipt = Vec::with_capacity(payments);
    for _ in 0..payments {
        let started = Instant::now();
        let uri = invoice("2");
        let paying = Instant::now();
        let paid = alice.json(&["buyer", "pay", &uri]);
        assert_eq!(paid["state"], "succeeded", "{paid}");
        assert!(paid["receipt"].is_string());
        pay.push(paying.elapsed());
        invoice_to_receipt.push(started.elapsed());
    }
    std::thread::sleep(Duration::from_secs(2));
    let bob_pid = bob.process.as_ref().expect("bob runs").child.id();
    let rss = rss_kib(bob_pid);

    println!("stnode + stctrl, 3-node chain (alice -> bob -> carol) through one relay, {payments} payments, release build");
    println!();
    println!("| what | p50 | p90 | p99 | original p50 (p90) | speed-up at p50 |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| pay: `stctrl buyer pay` until the receipt | {:.1} ms | {:.1} ms | {:.1} ms | 65 ms | {:.1}x |",
        percentile(&pay, 0.5),
        percentile(&pay, 0.9),
        percentile(&pay, 0.99),
        65.0 / percentile(&pay, 0.5)
    );
    println!(
        "| invoice -> receipt: `create-invoice` + `pay` | {:.1} ms | {:.1} ms | {:.1} ms | 122 ms (180 ms) | {:.1}x |",
        percentile(&invoice_to_receipt, 0.5),
        percentile(&invoice_to_receipt, 0.9),
        percentile(&invoice_to_receipt, 0.99),
        122.0 / percentile(&invoice_to_receipt, 0.5)
    );
    println!(
        "| new friend link online (both add the card, until both see it online) | {:.0} ms | | | 7,700 ms | {:.0}x |",
        link_time.as_secs_f64() * 1e3,
        7700.0 / (link_time.as_secs_f64() * 1e3)
    );
    println!(
        "| stnode idle RSS, 3 friends (bob) | {:.1} MiB | | | 8-10 MiB | |",
        rss as f64 / 1024.0
    );
    for node in [alice, bob, carol, dave] {
        if let Some(process) = node.process {
            process.terminate();
        }
    }
}
