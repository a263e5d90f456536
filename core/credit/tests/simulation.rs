//! Randomized simulation: several nodes, all friends, random transfers and limit changes under
//! random faults (drop, duplicate, reorder, partition, restart, crash between persisting and
//! sending). The invariants are checked after every step; after healing, every pair must agree
//! and every accepted transfer must be reflected exactly once.
//!
//! Reproduce one seed: `OFFST_SIM_SEED=<seed> cargo test -p offst-credit --test simulation`;
//! soak: `OFFST_SIM_SEEDS=10000 cargo test --release -p offst-credit --test simulation`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use offst_credit::{Command, CreditConfig, Event};
use offst_proto::{Credits, Currency, PaymentId};
use offst_testkit::{NodeId, SimError, SimNetwork};

/// Seeds per test run (the issue asks for at least 300).
const SEEDS: u64 = 300;

/// Random steps per seed before healing.
const STEPS: usize = 120;

fn currencies() -> [Currency; 2] {
    [Currency::new("FST").unwrap(), Currency::new("USD").unwrap()]
}

/// Expected balance of `.0` with `.1` in a currency, from the accepted transfers.
type Ledger = BTreeMap<(NodeId, NodeId, Currency), i128>;

struct Run {
    net: SimNetwork,
    nodes: Vec<NodeId>,
    ledger: Ledger,
    /// Transfers the nodes accepted (a run where every transfer is refused proves nothing).
    accepted: u64,
    limits: BTreeMap<(NodeId, NodeId, Currency), u128>,
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut net = SimNetwork::new(seed);
        let count = 3 + (seed % 3) as usize;
        let nodes: Vec<NodeId> = (0..count)
            .map(|_| net.add_node(CreditConfig::default()))
            .collect();
        for (index, &a) in nodes.iter().enumerate() {
            for &b in &nodes[index + 1..] {
                net.befriend(a, b).unwrap();
            }
        }
        let mut run = Run {
            net,
            nodes,
            ledger: Ledger::new(),
            accepted: 0,
            limits: BTreeMap::new(),
        };
        for a in run.nodes.clone() {
            for b in run.nodes.clone() {
                if a != b {
                    for currency in currencies() {
                        let limit = run.net.random_below(500) as u128;
                        run.set_limit(a, b, currency, limit);
                    }
                }
            }
        }
        run
    }

    fn pick_node(&mut self) -> NodeId {
        self.nodes[self.net.random_below(self.nodes.len() as u64) as usize]
    }

    fn pick_pair(&mut self) -> (NodeId, NodeId) {
        let a = self.pick_node();
        loop {
            let b = self.pick_node();
            if b != a {
                return (a, b);
            }
        }
    }

    fn pick_currency(&mut self) -> Currency {
        let [fst, usd] = currencies();
        if self.net.random_below(2) == 0 {
            fst
        } else {
            usd
        }
    }

    fn set_limit(&mut self, a: NodeId, b: NodeId, currency: Currency, limit: u128) {
        let friend = self.net.public_key(b);
        self.net
            .command(
                a,
                Command::SetCurrencyLimit {
                    friend,
                    currency: currency.clone(),
                    remote_max_debt: Credits(limit),
                },
            )
            .unwrap();
        self.limits.insert((a, b, currency), limit);
    }

    fn transfer(&mut self, crash: bool) {
        let (a, b) = self.pick_pair();
        let currency = self.pick_currency();
        let amount = 1 + self.net.random_below(150) as u128;
        let command = Command::Transfer {
            friend: self.net.public_key(b),
            currency: currency.clone(),
            amount: Credits(amount),
            transfer_id: PaymentId::from_bytes(self.net.random_bytes()),
        };
        let result = if crash {
            self.net.command_then_crash(a, command)
        } else {
            self.net.command(a, command)
        };
        // Refusals (over the limit, inconsistent) are fine; accepted transfers must arrive.
        if result.is_ok() {
            self.accepted += 1;
            *self.ledger.entry((a, b, currency.clone())).or_default() -= amount as i128;
            *self.ledger.entry((b, a, currency)).or_default() += amount as i128;
        }
    }

    fn step(&mut self) {
        let roll = self.net.random_below(100);
        let in_flight = self.net.in_flight().len() as u64;
        match roll {
            0..=24 => self.transfer(false),
            25..=27 => {
                // Limits only grow, so an accepted transfer always stays within them.
                let (a, b) = self.pick_pair();
                let currency = self.pick_currency();
                let old = self.limits[&(a, b, currency.clone())];
                let limit = old + self.net.random_below(300) as u128;
                self.set_limit(a, b, currency, limit);
            }
            28..=59 => {
                // Deliver one of the oldest few: mild reordering.
                let index = self.net.random_below(in_flight.min(4)) as usize;
                self.net.deliver(index);
            }
            60..=64 => {
                let index = self.net.random_below(in_flight) as usize;
                self.net.drop_message(index);
            }
            65..=69 => {
                let index = self.net.random_below(in_flight) as usize;
                self.net.duplicate_message(index);
            }
            70..=71 => self.net.reorder(),
            72..=76 => {
                let ms = self.net.random_below(3_000);
                self.net.advance(ms);
            }
            77..=79 => {
                let (a, b) = self.pick_pair();
                self.net.partition(a, b);
            }
            80..=83 => {
                let (a, b) = self.pick_pair();
                self.net.heal(a, b);
            }
            84..=86 => {
                let node = self.pick_node();
                self.net.restart(node);
            }
            87..=88 => self.transfer(true),
            89..=92 => {
                let (a, b) = self.pick_pair();
                self.net.disconnect(a, b);
                self.net.connect(a, b);
            }
            _ => {
                self.net.deliver_all(1_000);
            }
        }
    }

    /// Events that must never happen in a run without data loss.
    fn check_events(&mut self) -> Result<(), SimError> {
        for node in self.nodes.clone() {
            for event in self.net.take_events(node) {
                match event {
                    Event::ChannelInconsistent { friend, .. } => {
                        return Err(SimError(format!(
                            "{node}: channel with {friend} became inconsistent"
                        )))
                    }
                    Event::OperationDropped { error, .. } => {
                        return Err(SimError(format!(
                            "{node}: queued operation dropped: {error}"
                        )))
                    }
                    Event::MessageRejected { error, .. } if error.is_fatal() => {
                        return Err(SimError(format!("{node}: fatal rejection: {error}")))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_ledger(&self) -> Result<(), SimError> {
        for &a in &self.nodes {
            for &b in &self.nodes {
                if a == b {
                    continue;
                }
                for currency in currencies() {
                    let expected = self
                        .ledger
                        .get(&(a, b, currency.clone()))
                        .copied()
                        .unwrap_or(0);
                    let actual = self
                        .net
                        .node(a)
                        .balance(&self.net.public_key(b), &currency)
                        .map_or(0, |balance| balance.0);
                    if actual != expected {
                        return Err(SimError(format!(
                            "{a} with {b} in {currency}: balance {actual}, expected {expected}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn run_seed(seed: u64) -> Result<u64, SimError> {
    let mut run = Run::new(seed);
    run.net.settle()?;
    run.check_events()?;
    for step in 0..STEPS {
        run.step();
        run.net
            .check_invariants()
            .and_then(|()| run.check_events())
            .map_err(|error| SimError(format!("step {step}: {error}")))?;
    }
    run.net.settle()?;
    run.net.check_invariants()?;
    run.net.check_agreement()?;
    run.check_events()?;
    run.check_ledger()?;
    Ok(run.accepted)
}

/// The seeds to run: `OFFST_SIM_SEED=n` runs only seed n, `OFFST_SIM_SEEDS=n` runs seeds 0..n
/// (for long soak runs), otherwise seeds 0..`default`.
fn seeds(default: u64) -> Vec<u64> {
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|value| value.parse::<u64>().expect("a number"))
    };
    match (number("OFFST_SIM_SEED"), number("OFFST_SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (0..count).collect(),
        (None, None) => (0..default).collect(),
    }
}

#[test]
fn random_faults_never_break_the_invariants_and_friends_agree_after_healing() {
    let mut failures = Vec::new();
    let mut accepted = 0;
    let seeds = seeds(SEEDS);
    for &seed in &seeds {
        let outcome = catch_unwind(AssertUnwindSafe(|| run_seed(seed)));
        match outcome {
            Ok(Ok(count)) => accepted += count,
            Ok(Err(error)) => failures.push(format!("seed {seed}: {error}")),
            Err(_) => failures.push(format!("seed {seed}: panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed (rerun one with OFFST_SIM_SEED=<seed>):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // About a quarter of the steps are transfers; most must be accepted for the run to mean
    // anything.
    assert!(
        accepted >= seeds.len() as u64 * STEPS as u64 / 8,
        "only {accepted} transfers accepted"
    );
}

/// Seeds of the data-loss simulation (each run includes resets, which cost more messages).
const DATA_LOSS_SEEDS: u64 = 100;

/// Like the fault simulation, but nodes also lose their data (keeping their key) and add their
/// friends again; every node accepts its friends' reset terms automatically. Invariants hold
/// after every step and every pair agrees after healing (balances are whatever the accepted
/// terms said, so there is no ledger to compare).
fn run_data_loss_seed(seed: u64) -> Result<(), SimError> {
    let mut net = SimNetwork::new(seed);
    let config = CreditConfig {
        reset_policy: offst_credit::ResetPolicy::AcceptAlways,
        ..CreditConfig::default()
    };
    let nodes: Vec<NodeId> = (0..3).map(|_| net.add_node(config)).collect();
    for (index, &a) in nodes.iter().enumerate() {
        for &b in &nodes[index + 1..] {
            net.befriend(a, b).unwrap();
        }
    }
    let [fst, _] = currencies();
    for &a in &nodes {
        for &b in &nodes {
            if a != b {
                let friend = net.public_key(b);
                let command = Command::SetCurrencyLimit {
                    friend,
                    currency: fst.clone(),
                    remote_max_debt: Credits(1_000),
                };
                net.command(a, command).unwrap();
            }
        }
    }
    net.trace(std::env::var("OFFST_SIM_TRACE").is_ok());
    for step in 0..STEPS {
        if std::env::var("OFFST_SIM_TRACE").is_ok() {
            eprintln!("step {step}");
        }
        let pick = |net: &mut SimNetwork| nodes[net.random_below(nodes.len() as u64) as usize];
        let a = pick(&mut net);
        let b = pick(&mut net);
        let in_flight = net.in_flight().len() as u64;
        match net.random_below(100) {
            0..=29 if a != b => {
                let command = Command::Transfer {
                    friend: net.public_key(b),
                    currency: fst.clone(),
                    amount: Credits(1 + net.random_below(100) as u128),
                    transfer_id: PaymentId::from_bytes(net.random_bytes()),
                };
                let _ = net.command(a, command);
            }
            30..=64 => {
                let index = net.random_below(in_flight.min(4)) as usize;
                net.deliver(index);
            }
            65..=69 => {
                let index = net.random_below(in_flight) as usize;
                net.drop_message(index);
            }
            70..=74 => {
                let index = net.random_below(in_flight) as usize;
                net.duplicate_message(index);
            }
            75..=79 => {
                let ms = net.random_below(3_000);
                net.advance(ms);
            }
            80..=82 => net.restart(a),
            83..=84 => {
                // Data lost, key kept: the node adds its friends again and sets its limits.
                net.wipe(a);
                for &friend in &nodes {
                    if friend != a {
                        net.add_friend_one_way(a, friend).unwrap();
                    }
                }
            }
            85..=87 if a != b => {
                net.partition(a, b);
            }
            88..=90 if a != b => net.heal(a, b),
            _ => {
                net.deliver_all(1_000);
            }
        }
        net.check_invariants()
            .map_err(|error| SimError(format!("step {step}: {error}")))?;
        for &node in &nodes {
            net.take_events(node);
        }
    }
    net.trace(std::env::var("OFFST_SIM_TRACE").is_ok());
    net.settle()?;
    net.check_invariants()?;
    if std::env::var("OFFST_SIM_DEBUG").is_ok() {
        for &a in &nodes {
            for &b in &nodes {
                if a < b {
                    if let Some(f) = net.node(a).friend(&net.public_key(b)) {
                        eprintln!("{a}->{b}: {:#?}", f.channel);
                    }
                    if let Some(f) = net.node(b).friend(&net.public_key(a)) {
                        eprintln!("{b}->{a}: {:#?}", f.channel);
                    }
                }
            }
        }
    }
    net.check_agreement()
}

#[test]
fn nodes_that_lose_their_data_converge_with_their_friends_through_resets() {
    let mut failures = Vec::new();
    for seed in seeds(DATA_LOSS_SEEDS) {
        match catch_unwind(AssertUnwindSafe(|| run_data_loss_seed(seed))) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(format!("seed {seed}: {error}")),
            Err(_) => failures.push(format!("seed {seed}: panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed (rerun one with OFFST_SIM_SEED=<seed>):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
