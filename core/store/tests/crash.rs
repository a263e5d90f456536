//! Crash test: a real process applies token-channel transitions between two nodes, each with
//! its own SQLite database, and is killed with SIGKILL at random moments. After every kill the
//! databases must pass `PRAGMA integrity_check`, no transition the worker reported committed may
//! be missing, and after the two nodes reconnect they must agree on their balance.
//!
//! `cargo test -p offst-store --test crash` runs 100 iterations (`OFFST_CRASH_ITERATIONS`
//! overrides). The binary re-executes itself with `--worker <dir>` to be the victim process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use offst_credit::{Command, CreditConfig, CreditNode, Output, Timestamp};
use offst_crypto::Identity;
use offst_proto::friend::FriendMessage;
use offst_proto::{Balance, Credits, Currency, PaymentId, Text};
use offst_store::{Batch, SqliteStore, Store};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const TRANSFERS_KEY: &str = "crash-test/transfers";
/// A worker stops by itself after this long, so a lost parent never leaves it running.
const WORKER_LIFETIME: Duration = Duration::from_secs(20);
/// Bound on message rounds when delivering until quiet.
const MAX_ROUNDS: usize = 10_000;

fn currency() -> Currency {
    Currency::new("FST").unwrap()
}

/// Two nodes in one process, each committing its outputs before its messages are delivered.
struct Pair {
    nodes: [CreditNode; 2],
    stores: [SqliteStore; 2],
    rng: ChaCha20Rng,
    clock: u64,
}

impl Pair {
    fn open(dir: &Path, seed: u64) -> Pair {
        let stores = [dir.join("a"), dir.join("b")].map(|d| SqliteStore::open(&d).unwrap());
        let nodes = [0usize, 1].map(|i| {
            CreditNode::new(
                Identity::from_seed([i as u8 + 1; 32]),
                CreditConfig::default(),
                stores[i].load().unwrap(),
            )
        });
        let mut pair = Pair {
            nodes,
            stores,
            rng: ChaCha20Rng::seed_from_u64(seed),
            clock: 0,
        };
        let keys = [pair.nodes[0].public_key(), pair.nodes[1].public_key()];
        for side in 0..2 {
            if pair.nodes[side].friend(&keys[1 - side]).is_none() {
                let name = Text::new("peer").unwrap();
                pair.command(
                    side,
                    Command::AddFriend {
                        public_key: keys[1 - side],
                        name,
                        relays: vec![],
                    },
                    vec![],
                );
                pair.command(
                    side,
                    Command::SetCurrencyLimit {
                        friend: keys[1 - side],
                        currency: currency(),
                        remote_max_debt: Credits(1_000_000),
                    },
                    vec![],
                );
            }
        }
        // Both ends learn of the connection before any message crosses it, as on a real link.
        let now = pair.now();
        let mut in_flight = VecDeque::new();
        for side in 0..2 {
            let output = pair.nodes[side].handle_friend_online(&keys[1 - side], now, &mut pair.rng);
            pair.commit(side, output, vec![], &mut in_flight);
        }
        pair.deliver_all(in_flight);
        pair
    }

    fn now(&mut self) -> Timestamp {
        self.clock += 1;
        Timestamp(self.clock)
    }

    fn command(&mut self, side: usize, command: Command, settings: Vec<(String, Option<Vec<u8>>)>) {
        let now = self.now();
        let output = self.nodes[side]
            .handle_command(command, now, &mut self.rng)
            .unwrap();
        self.deliver(side, output, settings);
    }

    /// Commits `output` the moment it is produced, then delivers its messages (persist before
    /// send), committing each reply as it is produced, until quiet.
    fn deliver(&mut self, side: usize, output: Output, settings: Vec<(String, Option<Vec<u8>>)>) {
        let mut in_flight = VecDeque::new();
        self.commit(side, output, settings, &mut in_flight);
        self.deliver_all(in_flight);
    }

    fn commit(
        &mut self,
        from: usize,
        output: Output,
        settings: Vec<(String, Option<Vec<u8>>)>,
        in_flight: &mut VecDeque<(usize, FriendMessage)>,
    ) {
        self.stores[from]
            .commit(&Batch {
                changes: output.changes,
                settings,
                ..Batch::default()
            })
            .unwrap();
        in_flight.extend(output.messages.into_iter().map(|m| (from, m.message)));
    }

    fn deliver_all(&mut self, mut in_flight: VecDeque<(usize, FriendMessage)>) {
        let mut rounds = 0;
        while let Some((from, message)) = in_flight.pop_front() {
            rounds += 1;
            assert!(rounds < MAX_ROUNDS, "message exchange does not settle");
            let to = 1 - from;
            let sender = self.nodes[from].public_key();
            let now = self.now();
            let reply = self.nodes[to].handle_message(&sender, message, now, &mut self.rng);
            self.commit(to, reply, vec![], &mut in_flight);
        }
    }

    fn balance(&self, side: usize) -> Balance {
        let friend = self.nodes[1 - side].public_key();
        self.nodes[side]
            .balance(&friend, &currency())
            .unwrap_or(Balance::ZERO)
    }
}

fn committed_transfers(store: &SqliteStore) -> u64 {
    store
        .setting(TRANSFERS_KEY)
        .unwrap()
        .map_or(0, |bytes| u64::from_be_bytes(bytes.try_into().unwrap()))
}

/// The victim: transfers 1 credit at a time from a to b, forever (bounded), printing the count
/// after each commit.
fn worker(dir: &Path) {
    let mut pair = Pair::open(dir, 1);
    let bob = pair.nodes[1].public_key();
    let mut count = committed_transfers(&pair.stores[0]);
    let started = Instant::now();
    while started.elapsed() < WORKER_LIFETIME {
        count += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&count.to_be_bytes());
        // The transfer and the counter commit in the same transaction.
        pair.command(
            0,
            Command::Transfer {
                friend: bob,
                currency: currency(),
                amount: Credits(1),
                transfer_id: PaymentId::from_bytes(id),
            },
            vec![(TRANSFERS_KEY.into(), Some(count.to_be_bytes().to_vec()))],
        );
        println!("committed {count}");
    }
}

fn run(iterations: u32, seed: u64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut total_reported = 0;
    for iteration in 0..iterations {
        let mut child = Process::new(&exe)
            .arg("--worker")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let reader = std::thread::spawn(move || {
            let mut last = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ") {
                    last = n.parse().unwrap_or(last);
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(5 + rng.next_u64() % 60));
        child.kill().map_err(|e| e.to_string())?; // SIGKILL
        child.wait().map_err(|e| e.to_string())?;
        let reported = reader.join().map_err(|_| "reader panicked")?;
        total_reported = total_reported.max(reported);

        let fail = |what: String| format!("iteration {iteration} (seed {seed}): {what}");
        let pair = Pair::open(dir.path(), 1000 + u64::from(iteration));
        for store in &pair.stores {
            store.integrity_check().map_err(|e| fail(e.to_string()))?;
        }
        let stored = committed_transfers(&pair.stores[0]);
        if stored < total_reported {
            return Err(fail(format!(
                "lost committed transfers: worker reported {total_reported}, store has {stored}"
            )));
        }
        let paid = pair.balance(0);
        if pair.balance(1).checked_neg() != Some(paid) {
            return Err(fail(format!(
                "friends disagree after reconnect: {} vs {}",
                paid,
                pair.balance(1)
            )));
        }
        if paid != Balance(-(stored as i128)) {
            return Err(fail(format!(
                "after reconnect a paid {} but committed {stored} transfers",
                paid
            )));
        }
    }
    println!(
        "crash test: {iterations} SIGKILLs survived; {total_reported} transfers committed and delivered"
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--worker") {
        let dir = PathBuf::from(&args[position + 1]);
        worker(&dir);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test -- --list`: no libtest here
    }
    let iterations = std::env::var("OFFST_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed = std::env::var("OFFST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0ff5);
    match run(iterations, seed) {
        Ok(()) => println!("test result: ok. 1 passed; 0 failed; 0 ignored"),
        Err(err) => {
            eprintln!("crash test FAILED: {err}");
            eprintln!("rerun with OFFST_CRASH_SEED={seed}");
            std::process::exit(1);
        }
    }
}
