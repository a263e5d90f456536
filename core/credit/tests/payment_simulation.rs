//! Randomized simulation of multi-hop payments: several nodes, all friends, random invoices
//! paid over one or two random routes with random fee budgets, random limit changes, under
//! random faults (drop, duplicate, reorder, partition, restart, crash between persisting and
//! sending, time jumps past expiries). The invariants are checked after every step; after
//! healing, every payment must have ended (succeeded with a valid receipt, or cancelled with
//! all frozen credit released), the payment accounts must sum to zero, and every node's
//! balances must equal what its payment account promises (nobody ends poorer than promised).
//!
//! Reproduce one seed: `OFFST_SIM_SEED=<seed> cargo test -p offst-credit --test
//! payment_simulation`; soak: `OFFST_SIM_SEEDS=10000 cargo test --release -p offst-credit
//! --test payment_simulation`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use offst_credit::payment::verify_receipt;
use offst_credit::{Command, CreditConfig, Event, PayRoute, PaymentStatus};
use offst_proto::payment::Invoice;
use offst_proto::{Credits, Currency, PaymentId, Text};
use offst_testkit::{NodeId, SimError, SimNetwork};

/// Seeds per test run (the issue asks for at least 300).
const SEEDS: u64 = 300;

/// Random steps per seed before healing.
const STEPS: usize = 80;

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

struct Run {
    net: SimNetwork,
    nodes: Vec<NodeId>,
    /// Invoices not paid yet, with their seller.
    invoices: Vec<(NodeId, Invoice)>,
    payments: u64,
    succeeded: u64,
}

impl Run {
    fn new(seed: u64) -> Run {
        let mut net = SimNetwork::new(seed);
        net.keep_events(true);
        let count = 4 + (seed % 3) as usize;
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
            invoices: Vec::new(),
            payments: 0,
            succeeded: 0,
        };
        for a in run.nodes.clone() {
            for b in run.nodes.clone() {
                if a != b {
                    let limit = 20 + run.net.random_below(200) as u128;
                    run.set_limit(a, b, limit);
                }
            }
        }
        run
    }

    fn pick_node(&mut self) -> NodeId {
        let index = self.net.random_below(self.nodes.len() as u64) as usize;
        self.nodes[index]
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

    fn set_limit(&mut self, creditor: NodeId, debtor: NodeId, limit: u128) {
        let friend = self.net.public_key(debtor);
        let _ = self.net.command(
            creditor,
            Command::SetCurrencyLimit {
                friend,
                currency: fst(),
                remote_max_debt: Credits(limit),
            },
        );
    }

    fn create_invoice(&mut self) {
        let seller = self.pick_node();
        let amount = 1 + self.net.random_below(60) as u128;
        let expires_at = self
            .net
            .now()
            .plus_ms(5_000 + self.net.random_below(300_000));
        let created = self.net.command(
            seller,
            Command::CreateInvoice {
                currency: fst(),
                amount: Credits(amount),
                expires_at,
                description: Text::new("sim").unwrap(),
                relays: Vec::new(),
            },
        );
        if created.is_err() {
            return;
        }
        for event in self.net.take_events(seller) {
            if let Event::InvoiceCreated { invoice } = event {
                self.invoices.push((seller, *invoice));
            }
        }
    }

    /// A random route from `buyer` to `seller` through 0 to 2 other nodes.
    fn random_route(&mut self, buyer: NodeId, seller: NodeId) -> Vec<NodeId> {
        let mut route = vec![buyer];
        let mediators = self.net.random_below(3);
        for _ in 0..mediators {
            let node = self.pick_node();
            if !route.contains(&node) && node != seller {
                route.push(node);
            }
        }
        route.push(seller);
        route
    }

    fn pay(&mut self, crash: bool) {
        if self.invoices.is_empty() {
            return;
        }
        let index = self.net.random_below(self.invoices.len() as u64) as usize;
        let (seller, invoice) = self.invoices.swap_remove(index);
        let buyer = loop {
            let node = self.pick_node();
            if node != seller {
                break node;
            }
        };
        let amount = invoice.amount.0;
        let split = amount > 1 && self.net.random_below(3) == 0;
        let mut routes = Vec::new();
        let shares = if split {
            let first = 1 + self.net.random_below(amount as u64 - 1) as u128;
            vec![first, amount - first]
        } else {
            vec![amount]
        };
        for share in shares {
            let nodes = self.random_route(buyer, seller);
            routes.push(PayRoute {
                route: nodes
                    .iter()
                    .map(|node| self.net.public_key(*node))
                    .collect(),
                dest_payment: Credits(share),
            });
        }
        let max_fees = Credits(self.net.random_below(6) as u128);
        let payment_id = PaymentId::from_bytes(self.net.random_bytes());
        let command = Command::Pay {
            payment_id,
            invoice: Box::new(invoice),
            routes,
            max_fees,
        };
        let result = if crash {
            self.net.command_then_crash(buyer, command)
        } else {
            self.net.command(buyer, command)
        };
        if result.is_ok() {
            self.payments += 1;
        }
    }

    fn step(&mut self) {
        let roll = self.net.random_below(100);
        let in_flight = self.net.in_flight().len() as u64;
        match roll {
            0..=9 => self.create_invoice(),
            10..=21 => self.pay(false),
            22..=23 => self.pay(true),
            24..=26 => {
                // Limits go up and down (a lowered limit never breaks a pending payment).
                let (a, b) = self.pick_pair();
                let limit = self.net.random_below(250) as u128;
                self.set_limit(a, b, limit);
            }
            27..=59 => {
                let index = self.net.random_below(in_flight.min(4)) as usize;
                self.net.deliver(index);
            }
            60..=63 => {
                let index = self.net.random_below(in_flight) as usize;
                self.net.drop_message(index);
            }
            64..=67 => {
                let index = self.net.random_below(in_flight) as usize;
                self.net.duplicate_message(index);
            }
            68..=69 => self.net.reorder(),
            70..=75 => {
                let ms = match self.net.random_below(4) {
                    0 => 90_000,
                    _ => self.net.random_below(5_000),
                };
                self.net.advance(ms);
            }
            76..=78 => {
                let (a, b) = self.pick_pair();
                self.net.partition(a, b);
            }
            79..=82 => {
                let (a, b) = self.pick_pair();
                self.net.heal(a, b);
            }
            83..=85 => {
                let node = self.pick_node();
                self.net.restart(node);
            }
            86..=89 => {
                let (a, b) = self.pick_pair();
                self.net.disconnect(a, b);
                self.net.connect(a, b);
            }
            _ => {
                self.net.deliver_all(1_000);
            }
        }
    }

    /// Events that must never happen, and receipts that must verify.
    fn check_events(&mut self) -> Result<(), SimError> {
        for node in self.nodes.clone() {
            for event in self.net.take_events(node) {
                match event {
                    Event::ChannelInconsistent { friend, .. } => {
                        return Err(SimError(format!(
                            "{node}: channel with {friend} became inconsistent"
                        )))
                    }
                    Event::MessageRejected { error, .. } if error.is_fatal() => {
                        return Err(SimError(format!("{node}: fatal rejection: {error}")))
                    }
                    Event::PaymentSucceeded { receipt, .. } => {
                        verify_receipt(&receipt)
                            .map_err(|error| SimError(format!("{node}: bad receipt: {error}")))?;
                        self.succeeded += 1;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_records(&self) -> Result<(), SimError> {
        for &node in &self.nodes {
            for payment in self.net.node(node).state().payments.payments.values() {
                if payment.status == PaymentStatus::Succeeded && payment.plain_lock.is_none() {
                    return Err(SimError(format!("{node}: success without a secret")));
                }
            }
        }
        Ok(())
    }
}

fn run_seed(seed: u64) -> Result<(u64, u64), SimError> {
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
    run.check_records()?;
    run.net.check_nobody_poorer(&BTreeMap::new())?;
    Ok((run.payments, run.succeeded))
}

/// The seeds to run: `OFFST_SIM_SEED=n` runs only seed n, `OFFST_SIM_SEEDS=n` runs seeds 0..n,
/// otherwise seeds 0..`default`.
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
fn random_payments_under_faults_all_end_and_nobody_ends_poorer_than_promised() {
    let mut failures = Vec::new();
    let (mut payments, mut succeeded) = (0, 0);
    let seeds = seeds(SEEDS);
    for &seed in &seeds {
        let outcome = catch_unwind(AssertUnwindSafe(|| run_seed(seed)));
        match outcome {
            Ok(Ok((started, ok))) => {
                payments += started;
                succeeded += ok;
            }
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
    eprintln!("{payments} payments started, {succeeded} succeeded");
    // Enough payments must succeed for the run to mean anything.
    if seeds.len() as u64 >= SEEDS {
        assert!(
            succeeded >= seeds.len() as u64 / 2,
            "only {succeeded} payments succeeded"
        );
    }
}
