//! Route query benchmark (DESIGN.md §6): loads the Ripple credit graph and the Lightning
//! snapshots from `../shared/data` (relative to the repository root; override with
//! `OFFST_DATA_DIR`) and prints one table of query latency and success ratio for random pairs
//! at several amounts, for the fee-aware single route, multi-route, the plain BFS baseline of
//! the original Offset, and the exact bounds they are checked against.
//!
//! Run: `cargo bench -p offst-index --bench routing` (release profile). Set `OFFST_BENCH_QUICK=1`
//! for a smaller run.
//!
//! Capacities: Ripple limits are USD floats; 1 credit = 1 US cent, clamped to 10³⁰ credits
//! ("unlimited"). Lightning channels are split between the two directions uniformly at random
//! (the "random" balance assumption), seeded; 1 credit = 1 satoshi. Every node charges the
//! default fee, exactly 1 credit per mediator.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use offst_index::graph::{CapacityGraph, CurrencyGraph, NodeIx, Reported};
use offst_index::route::{Constraints, Router, MAX_HOPS};
use offst_proto::index::FeeRate;
use offst_proto::{Credits, Currency, PublicKey};

/// "Unlimited" Ripple lines are clamped here (about 10²⁸ USD).
const CLAMP_CREDITS: f64 = 1e30;
/// Seed of the pair generator and the Lightning balance split.
const SEED: u64 = 0x0ff5_71de;
/// Wall-clock budget per measured row, so the whole run stays well under two minutes.
const ROW_BUDGET: Duration = Duration::from_secs(3);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn key(id: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&id.to_be_bytes());
    PublicKey::from_bytes(bytes)
}

fn currency() -> Currency {
    Currency::new("BENCH").unwrap()
}

/// Directed capacities `(from, to) -> capacity` into a graph where every node reports every
/// friend with the default rate.
/// The default rate everywhere.
fn default_rate(_node: u32) -> FeeRate {
    FeeRate::DEFAULT
}

/// Seeded mixed rates: about 30 % of nodes charge 0–4 credits flat plus 0–0.2 % of the
/// forwarded amount; the rest charge the default. Exercises the general (Dijkstra) search.
fn mixed_rate(node: u32) -> FeeRate {
    let mut rng = Rng(SEED ^ (u64::from(node) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    if rng.below(10) < 3 {
        FeeRate::new(Credits(u128::from(rng.below(5))), rng.below(2_001) as u32).unwrap()
    } else {
        FeeRate::DEFAULT
    }
}

fn build(arcs: &HashMap<(u32, u32), u128>, rate_of: fn(u32) -> FeeRate) -> CapacityGraph {
    // Ordered, so node handles (and therefore the sampled pairs) are the same on every run.
    let mut reports: BTreeMap<u32, Vec<(Currency, PublicKey, Reported)>> = BTreeMap::new();
    let mut pairs: Vec<(u32, u32)> = arcs.keys().map(|&(a, b)| (a.min(b), a.max(b))).collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (a, b) in pairs {
        let ab = arcs.get(&(a, b)).copied().unwrap_or(0);
        let ba = arcs.get(&(b, a)).copied().unwrap_or(0);
        for (owner, friend, send, recv) in [(a, b, ab, ba), (b, a, ba, ab)] {
            reports.entry(owner).or_default().push((
                currency(),
                key(friend),
                Reported {
                    send: Credits(send),
                    recv: Credits(recv),
                    rate: rate_of(owner),
                },
            ));
        }
    }
    let mut graph = CapacityGraph::new(usize::MAX);
    for (node, entries) in reports {
        graph.set_node(key(node), entries).unwrap();
    }
    graph
}

/// Reads a data file or exits with a message saying where it was expected.
fn read_data(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| {
        eprintln!(
            "cannot read {}: {err}\nthe benchmark expects the data sets in ../shared/data \
             (beside the repository root); set OFFST_DATA_DIR to use another directory",
            path.display()
        );
        std::process::exit(2);
    })
}

fn to_credits(value: f64, scale: f64) -> u128 {
    let scaled = (value * scale).floor();
    if scaled.is_nan() || scaled <= 0.0 {
        0
    } else {
        scaled.min(CLAMP_CREDITS) as u128
    }
}

fn load_ripple(path: &Path) -> HashMap<(u32, u32), u128> {
    let text = read_data(path);
    let mut arcs = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [a, b, lo, v, hi] = fields[..] else {
            continue;
        };
        let (Ok(a), Ok(b), Ok(lo), Ok(v), Ok(hi)) = (
            a.parse::<u32>(),
            b.parse::<u32>(),
            lo.parse::<f64>(),
            v.parse::<f64>(),
            hi.parse::<f64>(),
        ) else {
            continue;
        };
        // 1 credit = 1 US cent.
        arcs.insert((a, b), to_credits(hi - v, 100.0));
        arcs.insert((b, a), to_credits(v - lo, 100.0));
    }
    arcs
}

fn load_lightning(path: &Path, rng: &mut Rng) -> HashMap<(u32, u32), u128> {
    let text = read_data(path);
    let mut arcs = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(u), Some(v), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let digits: String = rest
            .trim_start_matches("{'capacity': ")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let (Ok(u), Ok(v), Ok(capacity)) =
            (u.parse::<u32>(), v.parse::<u32>(), digits.parse::<u64>())
        else {
            continue;
        };
        let split = if capacity == 0 {
            0
        } else {
            rng.below(capacity + 1)
        };
        arcs.insert((u, v), u128::from(split));
        arcs.insert((v, u), u128::from(capacity - split));
    }
    arcs
}

/// Independent exact check for the uniform default rate (1 credit per mediator): backward BFS
/// from the seller where the arc into a node at distance `d` from the seller must carry
/// `amount + d` (that node and the `d - 1` mediators after it each take 1 credit; the seller
/// takes nothing). BFS reaches each node first at its least demanding level, so this is exact.
fn exact_uniform_fee_optimum(
    graph: &CurrencyGraph,
    source: NodeIx,
    destination: NodeIx,
    amount: u128,
    seen: &mut [u32],
    stamp: u32,
) -> Option<usize> {
    let mut frontier = vec![destination];
    seen[destination as usize] = stamp;
    let mut level = 0usize;
    while !frontier.is_empty() && level < MAX_HOPS {
        let needed = amount + level as u128;
        let mut next = Vec::new();
        for &node in &frontier {
            for side in graph.neighbours(node) {
                let peer = side.peer as usize;
                if seen[peer] == stamp || side.recv < needed {
                    continue;
                }
                if side.peer == source {
                    return Some(level + 1);
                }
                seen[peer] = stamp;
                next.push(side.peer);
            }
        }
        frontier = next;
        level += 1;
    }
    None
}

#[derive(Default)]
struct Row {
    tried: usize,
    ok: usize,
    latencies: Vec<Duration>,
    hops: usize,
    extra: String,
}

impl Row {
    fn record(&mut self, elapsed: Duration, success: bool) {
        self.tried += 1;
        self.latencies.push(elapsed);
        if success {
            self.ok += 1;
        }
    }

    fn percentile(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1e6
    }

    fn print(&mut self, graph: &str, amount: &str, method: &str) {
        let (p50, p99, max) = (
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(1.0),
        );
        let ratio = if self.tried == 0 {
            0.0
        } else {
            self.ok as f64 / self.tried as f64
        };
        let hops = if self.ok == 0 {
            0.0
        } else {
            self.hops as f64 / self.ok as f64
        };
        let timing = if self.latencies.is_empty() {
            format!("{:>9} | {:>9} | {:>9}", "-", "-", "-")
        } else {
            format!("{p50:>9.1} | {p99:>9.1} | {max:>9.1}")
        };
        println!(
            "| {graph:<12} | {amount:>9} | {method:<27} | {:>5} | {ratio:>6.3} | {timing} | {hops:>4.2} | {} |",
            self.tried, self.extra
        );
    }
}

fn pairs(graph: &CurrencyGraph, count: usize, rng: &mut Rng) -> Vec<(PublicKey, PublicKey)> {
    let nodes: Vec<PublicKey> = (0..graph.capacity_hint() as NodeIx)
        .filter(|n| !graph.neighbours(*n).is_empty())
        .filter_map(|n| graph.key(n).copied())
        .collect();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let a = nodes[rng.below(nodes.len() as u64) as usize];
        let b = nodes[rng.below(nodes.len() as u64) as usize];
        if a != b {
            out.push((a, b));
        }
    }
    out
}

fn bench_graph(
    name: &str,
    graph: &CapacityGraph,
    amounts: &[(u128, &str)],
    quick: bool,
    mixed: bool,
) {
    let g = graph.currency(&currency()).unwrap();
    // The same pairs for a graph with default and with mixed rates.
    let base_name = name.split(' ').next().unwrap_or(name);
    let mut rng = Rng(SEED ^ base_name.len() as u64);
    let single_pairs = if quick { 300 } else { 2_000 };
    let multi_pairs = if quick { 50 } else { 200 };
    let queries = pairs(g, single_pairs, &mut rng);
    let mut router = Router::new();
    let constraints = Constraints::default();
    let mut seen = vec![0u32; g.capacity_hint()];
    let mut stamp = 0u32;

    // Widest path does not depend on the amount: once per pair.
    let mut widths = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for (a, b) in &queries {
        if mixed || started.elapsed() > ROW_BUDGET {
            break;
        }
        widths.push(router.widest_path(g, a, b).unwrap().0);
    }

    for &(amount, label) in amounts {
        let mut single = Row::default();
        let mut exact = Row::default();
        let mut bfs = Row::default();
        let mut widest = Row::default();
        let mut mismatches = 0usize;
        let mut fees = 0u128;
        let mut bfs_fee_feasible = 0usize;
        let mut single_on_widest_pairs = 0usize;
        let started = Instant::now();
        for (index, (a, b)) in queries.iter().enumerate() {
            if started.elapsed() > ROW_BUDGET * 2 {
                break;
            }
            let t = Instant::now();
            let found = router.fewest_fee_route(g, a, b, Credits(amount), &constraints);
            single.record(t.elapsed(), found.is_ok());
            if let Ok(route) = &found {
                single.hops += route.nodes.len() - 1;
                fees += route.fees.0;
            }

            if mixed {
                let t = Instant::now();
                let baseline = router.bfs_route(g, a, b, Credits(amount), &constraints);
                bfs.record(t.elapsed(), baseline.is_ok());
                if let Ok(route) = &baseline {
                    bfs.hops += route.nodes.len() - 1;
                    if route.capacity.0 >= amount {
                        bfs_fee_feasible += 1;
                    }
                }
                continue;
            }
            stamp += 1;
            let t = Instant::now();
            let optimum = exact_uniform_fee_optimum(
                g,
                g.node(a).unwrap(),
                g.node(b).unwrap(),
                amount,
                &mut seen,
                stamp,
            );
            exact.record(t.elapsed(), optimum.is_some());
            if let Some(h) = optimum {
                exact.hops += h;
            }
            let same = match (&found, optimum) {
                (Ok(route), Some(h)) => route.nodes.len() - 1 == h,
                (Err(_), None) => true,
                _ => false,
            };
            if !same {
                mismatches += 1;
            }

            let t = Instant::now();
            let baseline = router.bfs_route(g, a, b, Credits(amount), &constraints);
            bfs.record(t.elapsed(), baseline.is_ok());
            if let Ok(route) = &baseline {
                bfs.hops += route.nodes.len() - 1;
                if route.capacity.0 >= amount {
                    bfs_fee_feasible += 1;
                }
            }

            if let Some(width) = widths.get(index) {
                widest.tried += 1;
                if *width >= amount {
                    widest.ok += 1;
                }
                if found.is_ok() {
                    single_on_widest_pairs += 1;
                }
            }
        }
        single.extra = format!(
            "fees/route {:.2}; differs from exact: {mismatches}",
            if single.ok == 0 {
                0.0
            } else {
                fees as f64 / single.ok as f64
            }
        );
        exact.extra = "level-filtered backward BFS (exact, uniform fee)".into();
        bfs.extra = format!(
            "routes that also carry the fees: {:.3}",
            bfs_fee_feasible as f64 / bfs.tried.max(1) as f64
        );
        widest.extra = format!(
            "bottleneck ≥ amount, fees ignored; fee-aware single on the same pairs: {:.3}",
            single_on_widest_pairs as f64 / widest.tried.max(1) as f64
        );

        let mut multi = Row::default();
        let mut flow = Row::default();
        let mut split = 0usize;
        let mut route_count = 0usize;
        let started = Instant::now();
        for (a, b) in queries.iter().take(multi_pairs) {
            if started.elapsed() > ROW_BUDGET * 2 {
                break;
            }
            let t = Instant::now();
            let found = router.multi_route(g, a, b, Credits(amount), &constraints, 8);
            multi.record(t.elapsed(), found.is_ok());
            if let Ok(routes) = &found {
                route_count += routes.len();
                multi.hops +=
                    routes.iter().map(|r| r.nodes.len() - 1).sum::<usize>() / routes.len();
                if routes.len() > 1 {
                    split += 1;
                }
            }
            if !mixed {
                let t = Instant::now();
                let max_flow = router.max_flow(g, a, b, Credits(amount)).unwrap();
                flow.record(t.elapsed(), max_flow.0 >= amount);
            }
        }
        multi.extra = format!(
            "split over >1 route: {split}; routes/answer {:.2}",
            route_count as f64 / multi.ok.max(1) as f64
        );
        flow.extra = "Dinic until amount, fees ignored (upper bound)".into();

        if mixed {
            single.extra =
                format!(
                "fees/route {:.2}; mixed rates: exactness checked by the brute-force property test",
                if single.ok == 0 { 0.0 } else { fees as f64 / single.ok as f64 }
            );
        }
        single.print(name, label, "fee-aware single route");
        if !mixed {
            exact.print(name, label, "exact single-path optimum");
            widest.latencies.clear();
            widest.print(name, label, "widest-path bound (no fees)");
        }
        bfs.print(name, label, "BFS baseline (orig. Offset)");
        multi.print(name, label, "fee-aware multi-route");
        if !mixed {
            flow.print(name, label, "max-flow bound (no fees)");
        }
    }
}

fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OFFST_DATA_DIR") {
        return PathBuf::from(dir);
    }
    // index/ is one level below the repository root; the data sits beside the repository.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn main() {
    // `cargo bench` passes `--bench`; other harness flags are ignored.
    let quick = std::env::var_os("OFFST_BENCH_QUICK").is_some();
    let dir = data_dir();
    let begin = Instant::now();
    println!(
        "| {:<12} | {:>9} | {:<27} | {:>5} | {:>6} | {:>9} | {:>9} | {:>9} | {:>4} | notes |",
        "graph", "amount", "method", "pairs", "ok", "p50 µs", "p99 µs", "max µs", "hops"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---|");

    let ripple_path = dir.join("ripple/ripple-lcc-nov2016.graph_CREDIT_LINKS");
    let t = Instant::now();
    let ripple_arcs = load_ripple(&ripple_path);
    let ripple = build(&ripple_arcs, default_rate);
    let load_ripple_time = t.elapsed();
    let ripple_amounts = [(100, "1 USD"), (10_000, "100 USD"), (1_000_000, "10k USD")];
    bench_graph("Ripple", &ripple, &ripple_amounts, quick, false);
    drop(ripple);
    let ripple_mixed = build(&ripple_arcs, mixed_rate);
    bench_graph(
        "Ripple mixed-fee",
        &ripple_mixed,
        &ripple_amounts,
        quick,
        true,
    );
    drop(ripple_mixed);

    let mut rng = Rng(SEED);
    for file in [
        "lnd_dec28_2018.edgelist",
        "lnd_july15_2019.edgelist",
        "clightning_oct5_2020.edgelist",
    ] {
        let graph = build(
            &load_lightning(&dir.join("lightning").join(file), &mut rng),
            default_rate,
        );
        let name = match file {
            "lnd_dec28_2018.edgelist" => "LN 2018-12",
            "lnd_july15_2019.edgelist" => "LN 2019-07",
            _ => "LN 2020-10",
        };
        bench_graph(
            name,
            &graph,
            &[
                (10_000, "1e4 sat"),
                (100_000, "1e5 sat"),
                (1_000_000, "1e6 sat"),
            ],
            quick,
            false,
        );
    }
    eprintln!(
        "Ripple graph built in {:.0} ms; whole run {:.1} s. Latencies are per query on one core.",
        load_ripple_time.as_secs_f64() * 1e3,
        begin.elapsed().as_secs_f64()
    );
}
