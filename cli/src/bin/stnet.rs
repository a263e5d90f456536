//! `stnet`: a complete local Offst network on this machine — a relay, an index server and
//! several nodes, each with its own SQLite database, over real loopback TCP — that makes
//! friends, sets limits, sends payments and prints balances and timings (DESIGN.md §5).
//!
//! Payments here go between direct friends; multi-hop payments over routes from an index
//! server join when the payments issue lands.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use offst_credit::payment::verify_receipt;
use offst_credit::PaymentStatus;
use offst_crypto::Identity;
use offst_index::ratelimit::RateLimit;
use offst_index::server::{IndexServer, ServerConfig};
use offst_node::{FriendStatus, IndexServerAddress, Node, NodeConfig, QueryOptions};
use offst_proto::{Credits, Currency, RelayAddress};
use offst_relay::{RelayConfig, RelayHandle, RelayServer};
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Run a complete local Offst network: a relay and N nodes on loopback, friends in a chain
/// plus cross links, credit limits, and M payments; print balances and latencies.
#[derive(Parser, Debug)]
#[command(name = "stnet", version)]
struct Args {
    /// Number of nodes (2 to 64).
    #[arg(long, default_value_t = 6)]
    nodes: usize,
    /// Number of payments to send.
    #[arg(long, default_value_t = 100)]
    payments: usize,
    /// Credit limit every node gives each of its friends.
    #[arg(long, default_value_t = 1_000)]
    limit: u128,
    /// Currency name.
    #[arg(long, default_value = "FST")]
    currency: String,
    /// Directory for the nodes' data (default: a temporary directory, removed at exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Most fees a buyer pays per payment.
    #[arg(long, default_value_t = 20)]
    max_fees: u128,
    /// Seed for the choice of payers, payees and amounts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Keep the network running after the payments until Ctrl-C.
    #[arg(long)]
    keep: bool,
}

/// The servers of the local network, on their own runtime: a relay and an index server.
struct Relay {
    runtime: tokio::runtime::Runtime,
    handle: Option<RelayHandle>,
    address: RelayAddress,
    index: Option<IndexServer>,
}

impl Relay {
    fn start() -> Result<Relay> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let config = RelayConfig {
            listen: "127.0.0.1:0".parse()?,
            metrics: None,
            ..RelayConfig::default()
        };
        let identity = Identity::generate(&mut rand_core::OsRng);
        let server = runtime.block_on(RelayServer::bind(&config, identity))?;
        let address = server.card().0.clone();
        let handle = {
            let _guard = runtime.enter();
            server.spawn()
        };
        let index = runtime.block_on(IndexServer::start(
            Identity::generate(&mut rand_core::OsRng),
            ServerConfig {
                listen: "127.0.0.1:0".parse()?,
                // A local network asks far more often than a real node would.
                query_limit: RateLimit {
                    per_second: 10_000.0,
                    burst: 10_000.0,
                },
                ..ServerConfig::default()
            },
        ))?;
        Ok(Relay {
            runtime,
            handle: Some(handle),
            address,
            index: Some(index),
        })
    }
}

impl Relay {
    fn index_address(&self) -> Vec<IndexServerAddress> {
        self.index
            .iter()
            .map(|index| IndexServerAddress {
                public_key: index.public_key(),
                address: index.local_addr().to_string(),
            })
            .collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(index) = self.index.take() {
            self.runtime.block_on(index.shutdown());
        }
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ok: u64,
    failed: u64,
    received: u64,
}

fn total_balance(node: &Node, currency: &Currency) -> Result<i128> {
    let mut total = 0i128;
    for friend in node.friends()? {
        for entry in friend.currencies.iter().filter(|c| &c.currency == currency) {
            total = total
                .checked_add(entry.balance.0)
                .context("balance overflow")?;
        }
    }
    Ok(total)
}

fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(false)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    if !(2..=64).contains(&args.nodes) {
        bail!("--nodes must be between 2 and 64");
    }
    let currency = Currency::new(&args.currency)?;
    let temp = tempfile::tempdir()?;
    let base = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    let say = |text: &str| {
        if !args.json {
            eprintln!("{text}");
        }
    };

    let started = Instant::now();
    let relay = Relay::start().context("starting the relay")?;
    say(&format!(
        "relay listening on {}, index server on {}",
        relay.address.address,
        relay.index_address()[0].address
    ));

    let mut nodes = Vec::new();
    for index in 0..args.nodes {
        let dir = base.join(format!("node-{index}"));
        let mut config = NodeConfig::new(&dir, vec![relay.address.clone()]);
        config.index_servers = relay.index_address();
        let node = Node::open(config)
            .with_context(|| format!("opening node {index} in {}", dir.display()))?;
        node.start()?;
        nodes.push(node);
    }
    say(&format!(
        "started {} nodes with SQLite databases under {}",
        nodes.len(),
        base.display()
    ));

    // Friends: a chain, plus a cross link every third node.
    let mut links = Vec::new();
    for index in 1..nodes.len() {
        links.push((index - 1, index));
    }
    for index in (0..nodes.len().saturating_sub(2)).step_by(3) {
        links.push((index, index + 2));
    }
    for &(a, b) in &links {
        let (na, nb) = (&nodes[a], &nodes[b]);
        na.add_friend(nb.public_key(), &format!("node-{b}"), nb.relays().to_vec())?;
        nb.add_friend(na.public_key(), &format!("node-{a}"), na.relays().to_vec())?;
        na.set_limit(nb.public_key(), &currency, Credits(args.limit))?;
        nb.set_limit(na.public_key(), &currency, Credits(args.limit))?;
    }
    let link_started = Instant::now();
    let all_online = wait_until(Duration::from_secs(30), || {
        for &(a, b) in &links {
            let online = nodes[a]
                .friends()?
                .iter()
                .any(|f| f.public_key == nodes[b].public_key() && f.status == FriendStatus::Online);
            if !online {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if !all_online {
        bail!("friend links did not come online within 30 s");
    }
    let limits_known = wait_until(Duration::from_secs(30), || {
        for &(a, b) in &links {
            for (x, y) in [(a, b), (b, a)] {
                let known = nodes[x].friends()?.iter().any(|f| {
                    f.public_key == nodes[y].public_key()
                        && f.currencies.iter().any(|c| {
                            c.currency == currency && c.local_max_debt == Credits(args.limit)
                        })
                });
                if !known {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })?;
    if !limits_known {
        bail!("credit limits were not exchanged within 30 s");
    }
    let link_time = link_started.elapsed();
    say(&format!(
        "{} friendships online with limits of {} {} in {:.0} ms",
        links.len(),
        args.limit,
        currency,
        link_time.as_secs_f64() * 1e3
    ));

    // The index server learns the network from the nodes' signed capacity reports.
    let (first, last) = (0, nodes.len() - 1);
    let mut route_found = None;
    let routed = wait_until(Duration::from_secs(30), || {
        route_found = nodes[first]
            .find_routes(
                nodes[last].public_key(),
                &currency,
                Credits(1),
                QueryOptions::default(),
            )
            .ok()
            .and_then(|routes| routes.into_iter().next());
        Ok(route_found.is_some())
    })?;
    let index_route = route_found.filter(|_| routed).map(|route| {
        let names: Vec<String> = route
            .nodes
            .iter()
            .map(|key| {
                nodes
                    .iter()
                    .position(|n| n.public_key() == *key)
                    .map_or_else(|| key.to_string(), |i| format!("node-{i}"))
            })
            .collect();
        (names.join(" -> "), route.fees)
    });
    match &index_route {
        Some((path, fees)) => say(&format!(
            "index route node-{first} to node-{last}: {path} (fees {fees})"
        )),
        None => say("the index server found no route within 30 s"),
    }

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(args.seed);
    let mut tallies = vec![Tally::default(); nodes.len()];
    let mut latencies = Vec::with_capacity(args.payments);
    let mut hops = Vec::with_capacity(args.payments);
    for index in 0..args.payments {
        // Any two nodes: most pairs are not friends, so payments cross mediators.
        let buyer = rng.next_u64() as usize % nodes.len();
        let seller = (buyer + 1 + rng.next_u64() as usize % (nodes.len() - 1)) % nodes.len();
        let amount = Credits(u128::from(rng.next_u32() % 10 + 1));
        let started = Instant::now();
        let outcome = nodes[seller]
            .create_invoice(
                &currency,
                amount,
                &format!("stnet payment {index}"),
                Duration::from_secs(60),
            )
            .and_then(|invoice| nodes[buyer].pay(&invoice.to_uri(), Credits(args.max_fees)));
        let payment_id = match outcome {
            Ok(payment_id) => payment_id,
            Err(err) => {
                log::info!("payment {index} from node-{buyer} to node-{seller} refused: {err}");
                tallies[buyer].failed += 1;
                continue;
            }
        };
        let finished = nodes[buyer].wait_payment(payment_id, Duration::from_secs(30))?;
        match finished {
            Some(payment) if payment.status == PaymentStatus::Succeeded => {
                let receipt = payment
                    .receipt
                    .context("a succeeded payment has a receipt")?;
                verify_receipt(&receipt).context("the receipt verifies")?;
                latencies.push(started.elapsed());
                hops.push(payment.routes);
                tallies[buyer].ok += 1;
                tallies[seller].received += 1;
            }
            _ => tallies[buyer].failed += 1,
        }
        if !args.json && (index + 1) % 25 == 0 {
            eprintln!("  {} / {} payments", index + 1, args.payments);
        }
    }
    latencies.sort();

    // Let the last settlements reach every hop before reading balances.
    std::thread::sleep(Duration::from_millis(200));
    let mut balances = BTreeMap::new();
    let mut fees = BTreeMap::new();
    let mut sum = 0i128;
    let (mut earned_total, mut paid_total) = (0u128, 0u128);
    for (index, node) in nodes.iter().enumerate() {
        let balance = total_balance(node, &currency)?;
        sum = sum.checked_add(balance).context("balance overflow")?;
        balances.insert(index, balance);
        let account = node
            .accounts()?
            .into_iter()
            .find(|a| a.currency == currency);
        let (earned, paid) = account.map_or((0, 0), |a| (a.fees_earned.0, a.fees_paid.0));
        earned_total += earned;
        paid_total += paid;
        fees.insert(index, (earned, paid));
    }
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let total_ok: u64 = tallies.iter().map(|t| t.ok).sum();
    let total_failed: u64 = tallies.iter().map(|t| t.failed).sum();

    if args.json {
        let nodes_json: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                serde_json::json!({
                    "name": format!("node-{index}"),
                    "public_key": node.public_key().to_string(),
                    "balance": balances[&index].to_string(),
                    "fees_earned": fees[&index].0.to_string(),
                    "fees_paid": fees[&index].1.to_string(),
                    "payments_ok": tallies[index].ok,
                    "payments_failed": tallies[index].failed,
                    "payments_received": tallies[index].received,
                    "latency_p50_ms": p50,
                    "latency_p99_ms": p99,
                })
            })
            .collect();
        let report = serde_json::json!({
            "currency": currency.as_str(),
            "nodes": nodes_json,
            "friendships": links.len(),
            "payments_ok": total_ok,
            "payments_failed": total_failed,
            "balance_sum": sum.to_string(),
            "link_setup_ms": link_time.as_secs_f64() * 1e3,
            "index_route": index_route.as_ref().map(|(path, fees)| serde_json::json!({
                "path": path,
                "fees": fees.to_string(),
            })),
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "multi_hop": true,
            "fees_earned_total": earned_total.to_string(),
            "fees_paid_total": paid_total.to_string(),
        });
        println!("{report:#}");
    } else {
        println!();
        println!(
            "| node    | balance | fees earned | fees paid | payments ok | failed | received |"
        );
        println!(
            "|---------|--------:|------------:|----------:|------------:|-------:|---------:|"
        );
        for index in 0..nodes.len() {
            println!(
                "| node-{index:<2} | {:>7} | {:>11} | {:>9} | {:>11} | {:>6} | {:>8} |",
                balances[&index],
                fees[&index].0,
                fees[&index].1,
                tallies[index].ok,
                tallies[index].failed,
                tallies[index].received
            );
        }
        println!();
        println!(
            "{total_ok} payments ok, {total_failed} failed; latency p50 {p50:.2} ms, p99 {p99:.2} ms \
             (invoice created -> buyer holds a verified receipt; routes from the index, through \
             the relay, SQLite FULL sync)"
        );
        println!(
            "sum of all balances: {sum} (mutual credit: always 0); fees earned {earned_total} = \
             fees paid {paid_total}"
        );
        println!("total time {:.1} s", started.elapsed().as_secs_f64());
    }
    if sum != 0 {
        bail!("balances do not sum to zero: {sum}");
    }
    if earned_total != paid_total {
        bail!("fees earned ({earned_total}) differ from fees paid ({paid_total})");
    }

    if args.keep {
        eprintln!();
        eprintln!("network running; node data under {}", base.display());
        eprintln!(
            "relay: {}@{}",
            relay.address.public_key, relay.address.address
        );
        for (index, node) in nodes.iter().enumerate() {
            eprintln!("node-{index}: {}", node.public_key());
        }
        eprintln!("press Ctrl-C to stop");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(tokio::signal::ctrl_c())?;
    }
    drop(nodes);
    drop(relay);
    Ok(())
}
