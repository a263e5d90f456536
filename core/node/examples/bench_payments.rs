//! Payment benchmark (release): real nodes with SQLite (WAL, synchronous=FULL) linked through a
//! real relay over loopback TCP, routes from a real index server. Prints one table:
//! - latency of payments over a chain of 4 nodes (2 mediators), one at a time: from `pay` to
//!   the buyer holding the receipt (the invoice was created before);
//! - throughput through one mediator with many payments in flight at once.
//!
//! `cargo run --release -p offst-node --example bench_payments [-- payments concurrent]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use offst_credit::PaymentStatus;
use offst_crypto::Identity;
use offst_index::ratelimit::RateLimit;
use offst_index::server::{IndexServer, ServerConfig};
use offst_node::{IndexServerAddress, Node, NodeConfig};
use offst_proto::{Credits, Currency};
use offst_relay::{RelayConfig, RelayServer};

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn knows_limit(node: &Node, friend: &Node) -> bool {
    node.friends().unwrap().iter().any(|f| {
        f.public_key == friend.public_key()
            && f.currencies
                .iter()
                .any(|c| c.local_max_debt > Credits::ZERO)
    })
}

fn chain(
    count: usize,
    base: &std::path::Path,
    config: &dyn Fn(&std::path::Path) -> NodeConfig,
) -> Vec<Node> {
    let nodes: Vec<Node> = (0..count)
        .map(|i| {
            let node = Node::open(config(&base.join(format!("n{i}")))).unwrap();
            node.start().unwrap();
            node
        })
        .collect();
    for pair in nodes.windows(2) {
        let card = pair[1].friend_card("next").unwrap().to_uri();
        pair[0].add_friend_from_card(&card, None).unwrap();
        let card = pair[0].friend_card("previous").unwrap().to_uri();
        pair[1].add_friend_from_card(&card, None).unwrap();
        for (a, b) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
            a.set_limit(b.public_key(), &fst(), Credits(1_000_000_000))
                .unwrap();
        }
    }
    for pair in nodes.windows(2) {
        wait("limits", || {
            knows_limit(&pair[0], &pair[1]) && knows_limit(&pair[1], &pair[0])
        });
    }
    nodes
}

fn pay_until_routable(buyer: &Node, uri: &str) -> offst_proto::PaymentId {
    let started = Instant::now();
    loop {
        match buyer.pay(uri, Credits(100)) {
            Ok(id) => return id,
            Err(err) if started.elapsed() < Duration::from_secs(30) => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("pay: {err}"),
        }
    }
}

fn ended(buyer: &Node, id: offst_proto::PaymentId) -> PaymentStatus {
    let payment = buyer
        .wait_payment(id, Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_ne!(
        payment.status,
        PaymentStatus::InProgress,
        "payment did not end in 60 s"
    );
    payment.status
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let latency_payments = args.first().copied().unwrap_or(200);
    let concurrent = args.get(1).copied().unwrap_or(500);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay_config = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        ..RelayConfig::default()
    };
    let relay = runtime
        .block_on(RelayServer::bind(
            &relay_config,
            Identity::from_seed([1; 32]),
        ))
        .unwrap();
    let relay_address = relay.card().0.clone();
    let relay = {
        let _guard = runtime.enter();
        relay.spawn()
    };
    let index = runtime
        .block_on(IndexServer::start(
            Identity::from_seed([2; 32]),
            ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                query_limit: RateLimit {
                    per_second: 100_000.0,
                    burst: 100_000.0,
                },
                ..ServerConfig::default()
            },
        ))
        .unwrap();
    let index_address = IndexServerAddress {
        public_key: index.public_key(),
        address: index.local_addr().to_string(),
    };
    let config = |dir: &std::path::Path| {
        let mut config = NodeConfig::new(dir, vec![relay_address.clone()]);
        config.index_servers = vec![index_address.clone()];
        config
    };
    let base = tempfile::tempdir().unwrap();

    // Latency: 4 nodes in a chain, one payment at a time.
    let nodes = chain(4, &base.path().join("chain"), &config);
    let (buyer, seller) = (&nodes[0], &nodes[3]);
    let warmup = seller
        .create_invoice(&fst(), Credits(1), "warm-up", Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        ended(buyer, pay_until_routable(buyer, &warmup.to_uri())),
        PaymentStatus::Succeeded
    );
    let mut latencies = Vec::with_capacity(latency_payments);
    let mut failed = 0;
    for i in 0..latency_payments {
        let invoice = seller
            .create_invoice(
                &fst(),
                Credits(1),
                &format!("p{i}"),
                Duration::from_secs(600),
            )
            .unwrap();
        let uri = invoice.to_uri();
        let started = Instant::now();
        let id = buyer.pay(&uri, Credits(100)).unwrap();
        if ended(buyer, id) == PaymentStatus::Succeeded {
            latencies.push(started.elapsed());
        } else {
            failed += 1;
        }
    }
    latencies.sort();
    drop(nodes);

    // Throughput: A -> B -> C with many payments in flight through B.
    let nodes: Arc<Vec<Node>> = Arc::new(chain(3, &base.path().join("through"), &config));
    let warmup = nodes[2]
        .create_invoice(&fst(), Credits(1), "warm-up", Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        ended(&nodes[0], pay_until_routable(&nodes[0], &warmup.to_uri())),
        PaymentStatus::Succeeded
    );
    let invoices: Vec<String> = (0..concurrent)
        .map(|i| {
            nodes[2]
                .create_invoice(
                    &fst(),
                    Credits(1),
                    &format!("t{i}"),
                    Duration::from_secs(600),
                )
                .unwrap()
                .to_uri()
        })
        .collect();
    // 8 threads, each keeping up to 6 payments in flight: 48 at once, under the mediator's cap
    // of 64 pending requests per friend.
    let started = Instant::now();
    let threads = 8;
    let window = 6;
    let chunks: Vec<Vec<String>> = (0..threads)
        .map(|t| invoices.iter().skip(t).step_by(threads).cloned().collect())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let nodes = nodes.clone();
            std::thread::spawn(move || {
                let mut in_flight = std::collections::VecDeque::new();
                let mut ok = 0usize;
                for uri in chunk {
                    if in_flight.len() >= window {
                        let id = in_flight.pop_front().unwrap();
                        ok += usize::from(ended(&nodes[0], id) == PaymentStatus::Succeeded);
                    }
                    in_flight.push_back(nodes[0].pay(&uri, Credits(100)).unwrap());
                }
                for id in in_flight {
                    ok += usize::from(ended(&nodes[0], id) == PaymentStatus::Succeeded);
                }
                ok
            })
        })
        .collect();
    let ok: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = started.elapsed();

    println!(
        "offst-node payment benchmark (release; relay + index + SQLite FULL sync on loopback)"
    );
    println!();
    println!("| what | value |");
    println!("|---|---|");
    println!(
        "| payments over 4 nodes (2 mediators), one at a time | {} ok, {failed} failed |",
        latencies.len()
    );
    println!(
        "| latency p50 (pay -> receipt at the buyer) | {:.2} ms |",
        percentile(&latencies, 0.50)
    );
    println!("| latency p99 | {:.2} ms |", percentile(&latencies, 0.99));
    println!("| payments through one mediator, 48 in flight from 8 threads | {ok} of {concurrent} ok in {:.2} s |", elapsed.as_secs_f64());
    println!(
        "| throughput through one mediator | {:.0} payments/s |",
        ok as f64 / elapsed.as_secs_f64()
    );
    drop(nodes);
    runtime.block_on(index.shutdown());
    runtime.block_on(relay.shutdown());
}
