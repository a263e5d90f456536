//! The store contract, run against every store: what one commit writes, another load reads;
//! batches are all or nothing; events and settings behave the same everywhere.

use std::collections::VecDeque;

use offst_credit::{Change, Command, CreditConfig, CreditNode, NodeState, Output, Timestamp};
use offst_crypto::Identity;
use offst_proto::{Credits, Currency, PaymentId, PublicKey, Text};
use offst_store::{Batch, EventQuery, MemoryStore, NewEvent, SqliteStore, Store, StoreError};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Runs `test` against a fresh store of each kind.
fn each_store(test: impl Fn(&mut dyn Store, &str)) {
    test(&mut MemoryStore::new(), "memory");
    let dir = tempfile::tempdir().unwrap();
    test(&mut SqliteStore::open(dir.path()).unwrap(), "sqlite");
}

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

/// Two credit nodes whose every step is committed to its store before its messages are
/// delivered (persist before send), as the node runtime does.
struct Pair<'a> {
    nodes: [CreditNode; 2],
    stores: [&'a mut dyn Store; 2],
    rng: ChaCha20Rng,
    now: Timestamp,
}

impl<'a> Pair<'a> {
    fn new(a: &'a mut dyn Store, b: &'a mut dyn Store) -> Pair<'a> {
        let nodes = [1u8, 2].map(|seed| {
            CreditNode::new(
                Identity::from_seed([seed; 32]),
                CreditConfig::default(),
                NodeState::default(),
            )
        });
        let mut pair = Pair {
            nodes,
            stores: [a, b],
            rng: ChaCha20Rng::seed_from_u64(5),
            now: Timestamp(1_000),
        };
        let keys = [pair.nodes[0].public_key(), pair.nodes[1].public_key()];
        for side in 0..2 {
            pair.command(
                side,
                Command::AddFriend {
                    public_key: keys[1 - side],
                    name: Text::new(if side == 0 { "bob" } else { "alice" }).unwrap(),
                    relays: vec![],
                },
            );
        }
        // Both ends learn of the connection before any message crosses it, as on a real link.
        let now = pair.now;
        let mut in_flight = VecDeque::new();
        for side in 0..2 {
            let output = pair.nodes[side].handle_friend_online(&keys[1 - side], now, &mut pair.rng);
            pair.commit(side, output, &mut in_flight);
        }
        pair.deliver_all(in_flight);
        pair
    }

    fn key(&self, side: usize) -> PublicKey {
        self.nodes[side].public_key()
    }

    fn command(&mut self, side: usize, command: Command) {
        let output = self.nodes[side]
            .handle_command(command, self.now, &mut self.rng)
            .unwrap();
        self.deliver(side, output);
    }

    /// Commits `output` of `side` the moment it is produced, then delivers its messages,
    /// committing each reply as it is produced, until quiet.
    fn deliver(&mut self, side: usize, output: Output) {
        let mut in_flight = VecDeque::new();
        self.commit(side, output, &mut in_flight);
        self.deliver_all(in_flight);
    }

    /// Delivers messages in flight, committing every reply as it is produced, until quiet.
    fn deliver_all(
        &mut self,
        mut in_flight: VecDeque<(usize, offst_proto::friend::FriendMessage)>,
    ) {
        while let Some((from, message)) = in_flight.pop_front() {
            let to = 1 - from;
            let sender = self.key(from);
            let reply = self.nodes[to].handle_message(&sender, message, self.now, &mut self.rng);
            self.commit(to, reply, &mut in_flight);
        }
    }

    /// Commits one output, checks that the node's whole state is stored (persist before
    /// send), then releases its messages.
    fn commit(
        &mut self,
        from: usize,
        output: Output,
        in_flight: &mut VecDeque<(usize, offst_proto::friend::FriendMessage)>,
    ) {
        self.stores[from]
            .commit(&Batch::changes(output.changes))
            .unwrap();
        if !output.messages.is_empty() {
            // Persist before send: everything the sender knows when a message leaves is
            // already in its store, so a crash right after the send loses nothing the friend
            // has seen.
            assert_eq!(
                &self.stores[from].load().unwrap(),
                self.nodes[from].state(),
                "side {from} would send before its state is stored"
            );
        }
        for message in output.messages {
            assert_eq!(message.to, self.key(1 - from));
            in_flight.push_back((from, message.message));
        }
    }
}

fn assert_store_matches_nodes(pair: &Pair<'_>, kind: &str) {
    for side in 0..2 {
        assert_eq!(
            &pair.stores[side].load().unwrap(),
            pair.nodes[side].state(),
            "{kind}: store of side {side} differs from the node's state"
        );
    }
}

#[test]
fn an_empty_store_loads_an_empty_state() {
    each_store(|store, kind| {
        assert_eq!(store.load().unwrap(), NodeState::default(), "{kind}");
        assert_eq!(store.setting("relays").unwrap(), None, "{kind}");
        assert!(
            store.events(&EventQuery::default()).unwrap().is_empty(),
            "{kind}"
        );
    });
}

#[test]
fn what_a_channel_exchange_commits_loads_back_exactly() {
    let mut a_memory = MemoryStore::new();
    let mut b_memory = MemoryStore::new();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a_sqlite = SqliteStore::open(dir_a.path()).unwrap();
    let mut b_sqlite = SqliteStore::open(dir_b.path()).unwrap();
    let runs: [(&mut dyn Store, &mut dyn Store, &str); 2] = [
        (&mut a_memory, &mut b_memory, "memory"),
        (&mut a_sqlite, &mut b_sqlite, "sqlite"),
    ];
    for (a, b, kind) in runs {
        let mut pair = Pair::new(a, b);
        let (alice, bob) = (pair.key(0), pair.key(1));
        pair.command(
            0,
            Command::SetCurrencyLimit {
                friend: bob,
                currency: fst(),
                remote_max_debt: Credits(100),
            },
        );
        pair.command(
            1,
            Command::SetCurrencyLimit {
                friend: alice,
                currency: fst(),
                remote_max_debt: Credits(50),
            },
        );
        assert_store_matches_nodes(&pair, kind);
        for i in 0..5u8 {
            pair.command(
                0,
                Command::Transfer {
                    friend: bob,
                    currency: fst(),
                    amount: Credits(u128::from(i) + 1),
                    transfer_id: PaymentId::from_bytes([i; 16]),
                },
            );
        }
        pair.command(
            1,
            Command::SetFriendName {
                friend: alice,
                name: Text::new("Alice A.").unwrap(),
            },
        );
        assert_store_matches_nodes(&pair, kind);
        assert_eq!(
            pair.nodes[0].balance(&bob, &fst()),
            Some(offst_proto::Balance(-15)),
            "{kind}: alice paid 1+2+3+4+5"
        );
    }
}

#[test]
fn a_batch_that_fails_midway_leaves_nothing_behind() {
    each_store(|store, kind| {
        let me = Identity::from_seed([1; 32]).public_key();
        let friend = Identity::from_seed([2; 32]).public_key();
        let stranger = Identity::from_seed([3; 32]).public_key();
        let new_friend = offst_credit::Friend::new(&me, friend, Text::new("f").unwrap(), vec![]);
        let batch = Batch {
            changes: vec![
                Change::AddFriend(Box::new(new_friend)),
                Change::SetFriendName {
                    friend: stranger,
                    name: Text::new("nobody").unwrap(),
                },
            ],
            events: vec![NewEvent {
                timestamp_ms: 1,
                kind: "friend_added".into(),
                friend: Some(friend),
                status: None,
                payload: serde_json::json!({}),
            }],
            settings: vec![("relays".into(), Some(vec![1, 2, 3]))],
        };
        let err = store.commit(&batch).unwrap_err();
        assert!(matches!(err, StoreError::InvalidData(_)), "{kind}: {err}");
        assert_eq!(store.load().unwrap(), NodeState::default(), "{kind}");
        assert!(
            store.events(&EventQuery::default()).unwrap().is_empty(),
            "{kind}"
        );
        assert_eq!(store.setting("relays").unwrap(), None, "{kind}");
    });
}

fn event(
    timestamp_ms: u64,
    kind: &str,
    friend: Option<PublicKey>,
    status: Option<&str>,
) -> NewEvent {
    NewEvent {
        timestamp_ms,
        kind: kind.into(),
        friend,
        status: status.map(str::to_owned),
        payload: serde_json::json!({ "amount": "12", "at": timestamp_ms }),
    }
}

#[test]
fn events_are_queried_by_time_friend_status_and_handled_flag() {
    each_store(|store, kind| {
        let f1 = Identity::from_seed([1; 32]).public_key();
        let f2 = Identity::from_seed([2; 32]).public_key();
        let batch = Batch {
            events: vec![
                event(100, "transfer_sent", Some(f1), Some("succeeded")),
                event(200, "transfer_received", Some(f2), Some("succeeded")),
                event(300, "channel_inconsistent", Some(f1), None),
                event(400, "transfer_sent", Some(f2), Some("cancelled")),
            ],
            ..Batch::default()
        };
        store.commit(&batch).unwrap();
        let all = store.events(&EventQuery::default()).unwrap();
        assert_eq!(all.len(), 4, "{kind}");
        assert!(
            all.windows(2).all(|w| w[0].id < w[1].id),
            "{kind}: ids increase"
        );
        assert_eq!(all[0].event, batch.events[0], "{kind}: payload round-trips");
        let by_friend = store
            .events(&EventQuery {
                friend: Some(f1),
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(
            by_friend
                .iter()
                .map(|e| e.event.timestamp_ms)
                .collect::<Vec<_>>(),
            [100, 300],
            "{kind}"
        );
        let by_status = store
            .events(&EventQuery {
                status: Some("succeeded".into()),
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(by_status.len(), 2, "{kind}");
        let by_time = store
            .events(&EventQuery {
                since_ms: Some(200),
                until_ms: Some(400),
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(
            by_time
                .iter()
                .map(|e| e.event.timestamp_ms)
                .collect::<Vec<_>>(),
            [200, 300],
            "{kind}"
        );
        assert!(store.mark_event_handled(all[1].id).unwrap(), "{kind}");
        assert!(
            !store.mark_event_handled(all[1].id).unwrap(),
            "{kind}: only once"
        );
        assert!(
            !store.mark_event_handled(9_999).unwrap(),
            "{kind}: unknown id"
        );
        let unhandled = store
            .events(&EventQuery {
                unhandled_only: true,
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(unhandled.len(), 3, "{kind}");
        let page = store
            .events(&EventQuery {
                after_id: Some(all[1].id),
                limit: Some(1),
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(page.len(), 1, "{kind}");
        assert_eq!(page[0].id, all[2].id, "{kind}");
    });
}

#[test]
fn settings_are_set_replaced_and_deleted() {
    each_store(|store, kind| {
        let set = |key: &str, value: Option<&[u8]>| Batch {
            settings: vec![(key.into(), value.map(<[u8]>::to_vec))],
            ..Batch::default()
        };
        store.commit(&set("relays", Some(b"one"))).unwrap();
        store.commit(&set("relays", Some(b"two"))).unwrap();
        assert_eq!(
            store.setting("relays").unwrap().as_deref(),
            Some(&b"two"[..]),
            "{kind}"
        );
        store.commit(&set("relays", None)).unwrap();
        assert_eq!(store.setting("relays").unwrap(), None, "{kind}");
    });
}

#[test]
fn invalid_events_are_refused() {
    each_store(|store, kind| {
        let bad = Batch {
            events: vec![event(1, "", None, None)],
            ..Batch::default()
        };
        assert!(store.commit(&bad).is_err(), "{kind}: empty kind");
        let bad = Batch {
            events: vec![event(u64::MAX, "x", None, None)],
            ..Batch::default()
        };
        assert!(
            store.commit(&bad).is_err(),
            "{kind}: timestamp out of range"
        );
        assert!(
            store.events(&EventQuery::default()).unwrap().is_empty(),
            "{kind}"
        );
    });
}

#[test]
fn sqlite_state_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (expected, events) = {
        let mut a = SqliteStore::open(dir.path()).unwrap();
        let mut b = SqliteStore::open(dir_b.path()).unwrap();
        let mut pair = Pair::new(&mut a, &mut b);
        let bob = pair.key(1);
        pair.command(
            1,
            Command::SetCurrencyLimit {
                friend: pair.key(0),
                currency: fst(),
                remote_max_debt: Credits(10),
            },
        );
        pair.command(
            0,
            Command::Transfer {
                friend: bob,
                currency: fst(),
                amount: Credits(7),
                transfer_id: PaymentId::from_bytes([9; 16]),
            },
        );
        let state = pair.nodes[0].state().clone();
        drop(pair);
        a.commit(&Batch {
            events: vec![event(5, "transfer_sent", Some(bob), Some("succeeded"))],
            ..Batch::default()
        })
        .unwrap();
        (state, a.events(&EventQuery::default()).unwrap())
    };
    let reopened = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(reopened.load().unwrap(), expected);
    assert_eq!(reopened.events(&EventQuery::default()).unwrap(), events);
    reopened.integrity_check().unwrap();
}

#[test]
fn payment_records_load_back_exactly() {
    let mut a_memory = MemoryStore::new();
    let mut b_memory = MemoryStore::new();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a_sqlite = SqliteStore::open(dir_a.path()).unwrap();
    let mut b_sqlite = SqliteStore::open(dir_b.path()).unwrap();
    let runs: [(&mut dyn Store, &mut dyn Store, &str); 2] = [
        (&mut a_memory, &mut b_memory, "memory"),
        (&mut a_sqlite, &mut b_sqlite, "sqlite"),
    ];
    for (a, b, kind) in runs {
        let mut pair = Pair::new(a, b);
        let (alice, bob) = (pair.key(0), pair.key(1));
        pair.command(
            0,
            Command::SetCurrencyLimit {
                friend: bob,
                currency: fst(),
                remote_max_debt: Credits(100),
            },
        );
        pair.command(
            0,
            Command::SetFeeRate {
                friend: bob,
                currency: fst(),
                rate: Some(offst_credit::FeeRate {
                    per_million: 5,
                    flat: Credits(2),
                }),
            },
        );
        // Alice sells twice; Bob pays the first invoice and a too large second one fails.
        let mut invoices = Vec::new();
        for amount in [30, 500] {
            let output = pair.nodes[0]
                .handle_command(
                    Command::CreateInvoice {
                        currency: fst(),
                        amount: Credits(amount),
                        expires_at: Timestamp(10_000_000),
                        description: Text::new("tea").unwrap(),
                        relays: vec![],
                    },
                    pair.now,
                    &mut pair.rng,
                )
                .unwrap();
            invoices.extend(output.events.iter().filter_map(|event| match event {
                offst_credit::Event::InvoiceCreated { invoice } => Some(invoice.clone()),
                _ => None,
            }));
            pair.deliver(0, output);
        }
        assert_store_matches_nodes(&pair, kind);
        pair.command(
            1,
            Command::Pay {
                payment_id: PaymentId::from_bytes([7; 16]),
                invoice: invoices[0].clone(),
                routes: vec![offst_credit::PayRoute {
                    route: vec![bob, alice],
                    dest_payment: Credits(30),
                }],
                max_fees: Credits(0),
            },
        );
        assert_store_matches_nodes(&pair, kind);
        assert_eq!(
            pair.nodes[1].balance(&alice, &fst()),
            Some(offst_proto::Balance(-30)),
            "{kind}: bob paid the invoice"
        );
        let state = pair.nodes[1].state();
        assert_eq!(
            state.payments.payments[&PaymentId::from_bytes([7; 16])].status,
            offst_credit::PaymentStatus::Succeeded
        );
        assert!(state.payments.accounts.contains_key(&fst()));
    }
}
