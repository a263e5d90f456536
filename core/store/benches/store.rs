//! Store benchmark (release): transitions committed per second, one per transaction and
//! batched, on SQLite (WAL, synchronous=FULL) and in memory; and the cold-open time of a node
//! with 100 friends and 10,000 history rows (target ≤ 100 ms).
//!
//! `cargo bench -p offst-store --bench store` prints one table.

use std::time::{Duration, Instant};

use offst_credit::{
    Change, ChannelStatus, Command, CreditConfig, CreditNode, Friend, NodeState, Timestamp,
};
use offst_crypto::Identity;
use offst_proto::{Credits, Currency, PaymentId, PublicKey, Text};
use offst_store::{Batch, MemoryStore, NewEvent, SqliteStore, Store};
use rand_chacha::rand_core::SeedableRng;

const SINGLE_COMMITS: usize = 500;
const BATCHES: usize = 50;
const BATCH_SIZE: usize = 100;
const FRIENDS: usize = 100;
const HISTORY_ROWS: u64 = 10_000;
const OPEN_RUNS: usize = 20;

/// A realistic channel state: a friendship with one currency after a few transfers, taken
/// from two real credit nodes.
fn realistic_channel() -> (PublicKey, Friend) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let mut a = CreditNode::new(
        Identity::from_seed([1; 32]),
        CreditConfig::default(),
        NodeState::default(),
    );
    let mut b = CreditNode::new(
        Identity::from_seed([2; 32]),
        CreditConfig::default(),
        NodeState::default(),
    );
    let (ka, kb) = (a.public_key(), b.public_key());
    let now = Timestamp(1);
    let fst = Currency::new("FST").unwrap();
    let name = Text::new("friend").unwrap();
    let mut pending = Vec::new();
    pending.extend(
        a.handle_command(
            Command::AddFriend {
                public_key: kb,
                name: name.clone(),
                relays: vec![],
            },
            now,
            &mut rng,
        )
        .unwrap()
        .messages,
    );
    pending.extend(
        b.handle_command(
            Command::AddFriend {
                public_key: ka,
                name,
                relays: vec![],
            },
            now,
            &mut rng,
        )
        .unwrap()
        .messages,
    );
    pending.extend(a.handle_friend_online(&kb, now, &mut rng).messages);
    pending.extend(b.handle_friend_online(&ka, now, &mut rng).messages);
    let pump = |a: &mut CreditNode,
                b: &mut CreditNode,
                pending: &mut Vec<offst_credit::OutgoingMessage>,
                rng: &mut rand_chacha::ChaCha20Rng| {
        let mut rounds = 0;
        while let Some(message) = pending.pop() {
            rounds += 1;
            assert!(rounds < 10_000);
            let (to, from) = if message.to == ka {
                (&mut *a, kb)
            } else {
                (&mut *b, ka)
            };
            pending.extend(to.handle_message(&from, message.message, now, rng).messages);
        }
    };
    pump(&mut a, &mut b, &mut pending, &mut rng);
    pending.extend(
        b.handle_command(
            Command::SetCurrencyLimit {
                friend: ka,
                currency: fst.clone(),
                remote_max_debt: Credits(1_000),
            },
            now,
            &mut rng,
        )
        .unwrap()
        .messages,
    );
    pump(&mut a, &mut b, &mut pending, &mut rng);
    for i in 0..5u8 {
        pending.extend(
            a.handle_command(
                Command::Transfer {
                    friend: kb,
                    currency: fst.clone(),
                    amount: Credits(3),
                    transfer_id: PaymentId::from_bytes([i; 16]),
                },
                now,
                &mut rng,
            )
            .unwrap()
            .messages,
        );
        pump(&mut a, &mut b, &mut pending, &mut rng);
    }
    (ka, a.friend(&kb).unwrap().clone())
}

fn history_event(i: u64, friend: PublicKey) -> NewEvent {
    NewEvent {
        timestamp_ms: 1_700_000_000_000 + i,
        kind: "transfer_received".into(),
        friend: Some(friend),
        status: Some("succeeded".into()),
        payload: serde_json::json!({ "amount": "3", "currency": "FST", "id": i }),
    }
}

fn friend_with_key(template: &Friend, local: &PublicKey, seed: u32) -> Friend {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&seed.to_be_bytes());
    let key = Identity::from_seed(bytes).public_key();
    let mut friend = Friend::new(local, key, template.name.clone(), vec![]);
    friend.currency_configs = template.currency_configs.clone();
    friend.channel = template.channel.clone();
    friend
}

fn transition(friend: &Friend, channel: &ChannelStatus, i: u64) -> Batch {
    Batch {
        changes: vec![Change::SetChannel {
            friend: friend.public_key,
            channel: Box::new(channel.clone()),
        }],
        events: vec![history_event(i, friend.public_key)],
        settings: vec![],
    }
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!("{:>10.0}", count as f64 / elapsed.as_secs_f64())
}

fn main() {
    let (local, template) = realistic_channel();
    let friend = friend_with_key(&template, &local, 0);
    let channel = friend.channel.clone();
    let mut rows: Vec<(String, String, String)> = Vec::new();

    for kind in ["sqlite", "memory"] {
        let dir = tempfile::tempdir().unwrap();
        let mut store: Box<dyn Store> = match kind {
            "sqlite" => Box::new(SqliteStore::open(dir.path()).unwrap()),
            _ => Box::new(MemoryStore::new()),
        };
        store
            .commit(&Batch::changes(vec![Change::AddFriend(Box::new(
                friend.clone(),
            ))]))
            .unwrap();
        let started = Instant::now();
        for i in 0..SINGLE_COMMITS {
            store
                .commit(&transition(&friend, &channel, i as u64))
                .unwrap();
        }
        let single = started.elapsed();
        rows.push((
            format!("{kind}: one transition per commit"),
            rate(SINGLE_COMMITS, single),
            format!(
                "{:.3} ms/commit",
                single.as_secs_f64() * 1e3 / SINGLE_COMMITS as f64
            ),
        ));
        let started = Instant::now();
        for b in 0..BATCHES {
            let mut batch = Batch::default();
            for i in 0..BATCH_SIZE {
                let one = transition(&friend, &channel, (b * BATCH_SIZE + i) as u64);
                batch.changes.extend(one.changes);
                batch.events.extend(one.events);
            }
            store.commit(&batch).unwrap();
        }
        let batched = started.elapsed();
        rows.push((
            format!("{kind}: {BATCH_SIZE} transitions per commit"),
            rate(BATCHES * BATCH_SIZE, batched),
            format!(
                "{:.3} ms/commit",
                batched.as_secs_f64() * 1e3 / BATCHES as f64
            ),
        ));
    }

    // Cold open: a node with FRIENDS friends and HISTORY_ROWS history rows.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let friends: Vec<Friend> = (0..FRIENDS as u32)
            .map(|i| friend_with_key(&template, &local, i + 1))
            .collect();
        store
            .commit(&Batch::changes(
                friends
                    .iter()
                    .map(|f| Change::AddFriend(Box::new(f.clone())))
                    .collect(),
            ))
            .unwrap();
        for chunk in 0..(HISTORY_ROWS / 1_000) {
            let events = (0..1_000)
                .map(|i| {
                    history_event(
                        chunk * 1_000 + i,
                        friends[(i as usize) % FRIENDS].public_key,
                    )
                })
                .collect();
            store
                .commit(&Batch {
                    events,
                    ..Batch::default()
                })
                .unwrap();
        }
    }
    let mut opens = Vec::new();
    for _ in 0..OPEN_RUNS {
        let started = Instant::now();
        let store = SqliteStore::open(dir.path()).unwrap();
        let state = store.load().unwrap();
        let unhandled = store
            .events(&offst_store::EventQuery {
                unhandled_only: true,
                limit: Some(100),
                ..Default::default()
            })
            .unwrap();
        opens.push(started.elapsed());
        assert_eq!(state.friends.len(), FRIENDS);
        assert_eq!(unhandled.len(), 100);
    }
    opens.sort();
    let median = opens[opens.len() / 2];
    let worst = opens[opens.len() - 1];

    println!(
        "offst-store benchmark (release, SQLite WAL + synchronous=FULL, {} on /tmp)",
        std::env::consts::OS
    );
    println!();
    println!("| {:<40} | {:>10} | {:<18} |", "what", "per second", "cost");
    println!("|{:-<42}|{:-<12}|{:-<20}|", "", "", "");
    for (what, per_second, cost) in &rows {
        println!("| {what:<40} | {per_second} | {cost:<18} |");
    }
    println!();
    println!(
        "| {:<40} | {:>10} | {:>10} |",
        "cold open (open + load + 100 events)", "median", "worst"
    );
    println!("|{:-<42}|{:-<12}|{:-<12}|", "", "", "");
    println!(
        "| {:<40} | {:>7.2} ms | {:>7.2} ms |",
        format!("{FRIENDS} friends, {HISTORY_ROWS} history rows"),
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    println!("(target: cold open ≤ 100 ms; {OPEN_RUNS} runs)");
}
