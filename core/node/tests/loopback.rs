//! Real nodes over loopback TCP through a real relay, each with its own SQLite database.

mod common;

use std::time::{Duration, Instant};

use common::Relay;
use offst_crypto::Identity;
use offst_node::{FriendStatus, Node, NodeConfig, NodeError};
use offst_proto::{Balance, Credits, Currency, PublicKey};

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

fn open(dir: &std::path::Path, relay: &Relay) -> Node {
    let node = Node::open(NodeConfig::new(dir, vec![relay.address.clone()])).unwrap();
    node.start().unwrap();
    node
}

/// Two nodes exchange friend cards, as two people scanning each other's QR codes.
fn befriend(a: &Node, b: &Node, name_of_b: &str, name_of_a: &str) {
    let card_of_b = b.friend_card(name_of_b).unwrap().to_uri();
    let card_of_a = a.friend_card(name_of_a).unwrap().to_uri();
    assert_eq!(
        a.add_friend_from_card(&card_of_b, None).unwrap(),
        b.public_key()
    );
    assert_eq!(
        b.add_friend_from_card(&card_of_a, None).unwrap(),
        a.public_key()
    );
}

/// Polls `check` until it holds or `timeout` passes.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < timeout, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

fn status_of(node: &Node, friend: PublicKey) -> Option<FriendStatus> {
    node.friends()
        .unwrap()
        .into_iter()
        .find(|f| f.public_key == friend)
        .map(|f| f.status)
}

/// Whether `node` knows that `friend` lets it owe `limit` FST.
fn knows_limit(node: &Node, friend: PublicKey, limit: u128) -> bool {
    node.friends()
        .unwrap()
        .iter()
        .filter(|f| f.public_key == friend)
        .flat_map(|f| f.currencies.iter())
        .any(|c| c.local_max_debt == Credits(limit))
}

fn balance(node: &Node, friend: PublicKey) -> Balance {
    node.friends()
        .unwrap()
        .into_iter()
        .find(|f| f.public_key == friend)
        .and_then(|f| f.currencies.into_iter().find(|c| c.currency == fst()))
        .map_or(Balance::ZERO, |c| c.balance)
}

#[test]
fn friends_link_through_a_relay_and_pay_each_other() {
    let relay = Relay::start();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let alice = open(dirs[0].path(), &relay);
    let bob = open(dirs[1].path(), &relay);
    let carol = open(dirs[2].path(), &relay);
    befriend(&alice, &bob, "bob", "alice");
    befriend(&bob, &carol, "carol", "bob");
    let linked = eventually(Duration::from_secs(10), "alice and bob online", || {
        status_of(&alice, bob.public_key()) == Some(FriendStatus::Online)
            && status_of(&bob, alice.public_key()) == Some(FriendStatus::Online)
    });
    assert!(
        linked < Duration::from_secs(2),
        "a new link took {linked:?}"
    );
    eventually(Duration::from_secs(10), "bob and carol online", || {
        status_of(&carol, bob.public_key()) == Some(FriendStatus::Online)
    });

    // Limits both ways: bob lets alice owe 100, carol lets bob owe 50.
    bob.set_limit(alice.public_key(), &fst(), Credits(100))
        .unwrap();
    carol
        .set_limit(bob.public_key(), &fst(), Credits(50))
        .unwrap();
    eventually(Duration::from_secs(5), "limits known on both sides", || {
        knows_limit(&alice, bob.public_key(), 100)
    });
    eventually(Duration::from_secs(5), "carol's limit known to bob", || {
        knows_limit(&bob, carol.public_key(), 50)
    });
    alice
        .transfer(bob.public_key(), &fst(), Credits(30))
        .unwrap();
    bob.transfer(carol.public_key(), &fst(), Credits(20))
        .unwrap();
    eventually(Duration::from_secs(5), "transfers applied", || {
        balance(&bob, alice.public_key()) == Balance(30)
            && balance(&carol, bob.public_key()) == Balance(20)
    });
    assert_eq!(balance(&alice, bob.public_key()), Balance(-30));
    eventually(
        Duration::from_secs(5),
        "bob sees carol's acceptance",
        || balance(&bob, carol.public_key()) == Balance(-20),
    );

    // A damaged card is refused with a clear error, and nothing changes.
    let mut damaged = alice.friend_card("alice").unwrap().to_uri();
    damaged.replace_range(20..21, if &damaged[20..21] == "A" { "B" } else { "A" });
    let err = carol.add_friend_from_card(&damaged, None).unwrap_err();
    assert!(matches!(err, NodeError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("damaged or mistyped"), "{err}");
    assert_eq!(carol.friends().unwrap().len(), 1);

    // Over the limit: refused at once, nothing changed.
    let err = alice
        .transfer(bob.public_key(), &fst(), Credits(71))
        .unwrap_err();
    assert!(matches!(err, NodeError::Command(_)), "{err}");
    assert!(matches!(
        alice.transfer(bob.public_key(), &fst(), Credits(0)),
        Err(NodeError::InvalidInput(_))
    ));
    assert_eq!(balance(&alice, bob.public_key()), Balance(-30));

    // Bob received a transfer: it waits in his event queue.
    let mut kinds = Vec::new();
    while let Some(event) = bob.next_event().unwrap() {
        kinds.push(event.event.kind.clone());
        assert!(bob.event_handled(event.id).unwrap());
    }
    assert!(
        kinds.contains(&"transfer_received".to_string()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"friend_online".to_string()), "{kinds:?}");
}

#[test]
fn a_restarted_node_keeps_its_balances_and_event_queue_and_relinks() {
    let relay = Relay::start();
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let alice = open(dirs[0].path(), &relay);
    let mut bob = open(dirs[1].path(), &relay);
    befriend(&alice, &bob, "bob", "alice");
    let bob_key = bob.public_key();
    bob.set_limit(alice.public_key(), &fst(), Credits(100))
        .unwrap();
    eventually(Duration::from_secs(10), "limit known", || {
        knows_limit(&alice, bob.public_key(), 100)
    });
    alice.transfer(bob_key, &fst(), Credits(42)).unwrap();
    eventually(Duration::from_secs(5), "transfer applied", || {
        balance(&bob, alice.public_key()) == Balance(42)
    });
    let queued = bob.next_event().unwrap().expect("bob has unhandled events");
    assert!(!queued.handled);

    // A second process may not open bob's directory while bob runs.
    assert!(matches!(
        Node::open(NodeConfig::new(dirs[1].path(), vec![])),
        Err(NodeError::DataDirInUse)
    ));

    let started = Instant::now();
    drop(bob);
    let stop = started.elapsed();
    assert!(stop < Duration::from_secs(2), "stopping took {stop:?}");
    bob = open(dirs[1].path(), &relay);
    assert_eq!(bob.public_key(), bob_key, "same identity after restart");
    assert_eq!(balance(&bob, alice.public_key()), Balance(42));
    assert_eq!(
        bob.next_event().unwrap().map(|e| e.id),
        Some(queued.id),
        "the event queue survived the restart"
    );
    eventually(Duration::from_secs(10), "relinked after restart", || {
        status_of(&alice, bob_key) == Some(FriendStatus::Online)
            && status_of(&bob, alice.public_key()) == Some(FriendStatus::Online)
    });
    alice.transfer(bob_key, &fst(), Credits(8)).unwrap();
    eventually(Duration::from_secs(5), "transfer after restart", || {
        balance(&bob, alice.public_key()) == Balance(50)
    });
}

#[test]
fn nodes_report_capacities_and_an_index_server_finds_routes_through_friends() {
    let network = Network::start();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let nodes = dirs.each_ref().map(|dir| network.open(dir.path()));
    let [alice, bob, carol] = &nodes;
    befriend(alice, bob, "bob", "alice");
    befriend(bob, carol, "carol", "bob");
    // Everyone lets each friend owe 100.
    for (a, b) in [(alice, bob), (bob, alice), (bob, carol), (carol, bob)] {
        a.set_limit(b.public_key(), &fst(), Credits(100)).unwrap();
    }
    let mut routes = Vec::new();
    eventually(
        Duration::from_secs(20),
        "a route alice -> bob -> carol",
        || {
            // Slowly: the index limits each client's queries (20 per second).
            std::thread::sleep(Duration::from_millis(100));
            routes = alice
                .find_routes(
                    carol.public_key(),
                    &fst(),
                    Credits(10),
                    offst_node::QueryOptions::default(),
                )
                .unwrap_or_default();
            !routes.is_empty()
        },
    );
    let route = &routes[0];
    assert_eq!(
        route.nodes,
        vec![alice.public_key(), bob.public_key(), carol.public_key()]
    );
    assert_eq!(route.amount, Credits(10));
    assert_eq!(route.fees, Credits(1), "one mediator, one credit");
    assert!(matches!(
        alice.find_routes(
            carol.public_key(),
            &fst(),
            Credits(1_000),
            offst_node::QueryOptions::default()
        ),
        Err(NodeError::Routing(_))
    ));
    drop(nodes);
}

/// A relay and an index server on one runtime, and nodes configured with both.
struct Network {
    relay: Relay,
    index: Option<offst_index::server::IndexServer>,
    index_address: offst_node::IndexServerAddress,
}

impl Network {
    fn start() -> Network {
        let relay = Relay::start();
        let index = relay
            .runtime
            .block_on(offst_index::server::IndexServer::start(
                Identity::from_seed([202; 32]),
                offst_index::server::ServerConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    ..Default::default()
                },
            ))
            .unwrap();
        let index_address = offst_node::IndexServerAddress {
            public_key: index.public_key(),
            address: index.local_addr().to_string(),
        };
        Network {
            relay,
            index: Some(index),
            index_address,
        }
    }

    fn open(&self, dir: &std::path::Path) -> Node {
        let mut config = NodeConfig::new(dir, vec![self.relay.address.clone()]);
        config.index_servers = vec![self.index_address.clone()];
        let node = Node::open(config).unwrap();
        node.start().unwrap();
        node
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some(index) = self.index.take() {
            self.relay.runtime.block_on(index.shutdown());
        }
    }
}

#[test]
fn an_invoice_is_paid_over_a_mediator_with_fees_and_a_verifiable_receipt() {
    let network = Network::start();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let nodes = dirs.each_ref().map(|dir| network.open(dir.path()));
    let [alice, bob, carol] = &nodes;
    befriend(alice, bob, "bob", "alice");
    befriend(bob, carol, "carol", "bob");
    for (a, b) in [(alice, bob), (bob, alice), (bob, carol), (carol, bob)] {
        a.set_limit(b.public_key(), &fst(), Credits(100)).unwrap();
    }
    eventually(
        Duration::from_secs(20),
        "the index knows alice -> bob -> carol",
        || {
            // Slowly: the index limits each client's queries (20 per second).
            std::thread::sleep(Duration::from_millis(100));
            alice
                .find_routes(
                    carol.public_key(),
                    &fst(),
                    Credits(10),
                    offst_node::QueryOptions::default(),
                )
                .is_ok_and(|routes| !routes.is_empty())
        },
    );

    let invoice = carol
        .create_invoice(&fst(), Credits(10), "two coffees", Duration::from_secs(60))
        .unwrap();
    let uri = invoice.to_uri();
    assert!(uri.starts_with("offst:I1"), "{uri}");
    let payment_id = alice.pay(&uri, Credits(5)).unwrap();
    let mut done = None;
    eventually(Duration::from_secs(20), "the payment ends", || {
        done = alice
            .payment(payment_id)
            .unwrap()
            .filter(|p| p.status != offst_credit::PaymentStatus::InProgress);
        done.is_some()
    });
    let payment = done.unwrap();
    assert_eq!(payment.status, offst_credit::PaymentStatus::Succeeded);
    assert_eq!(payment.fees, Credits(1), "one mediator, one credit");
    let receipt = payment.receipt.expect("a receipt");
    offst_credit::payment::verify_receipt(&receipt).unwrap();
    let mut forged = receipt.clone();
    forged.invoice.amount = Credits(1_000);
    assert!(offst_credit::payment::verify_receipt(&forged).is_err());

    eventually(
        Duration::from_secs(10),
        "balances settled on every hop",
        || {
            balance(alice, bob.public_key()) == Balance(-11)
                && balance(bob, alice.public_key()) == Balance(11)
                && balance(bob, carol.public_key()) == Balance(-10)
                && balance(carol, bob.public_key()) == Balance(10)
        },
    );
    let earned = |node: &Node| {
        node.accounts()
            .unwrap()
            .into_iter()
            .find(|a| a.currency == fst())
            .map(|a| (a.fees_earned, a.fees_paid, a.received, a.sent))
    };
    assert_eq!(
        earned(bob).map(|a| a.0),
        Some(Credits(1)),
        "bob earned the fee"
    );
    assert_eq!(
        earned(alice).map(|a| (a.1, a.3)),
        Some((Credits(1), Credits(10)))
    );
    assert_eq!(earned(carol).map(|a| a.2), Some(Credits(10)));

    // Paying the same invoice twice is refused; so is a damaged invoice.
    assert!(alice.pay(&uri, Credits(5)).is_err());
    let mut damaged = uri.clone();
    damaged.replace_range(30..31, if &uri[30..31] == "A" { "B" } else { "A" });
    assert!(matches!(
        alice.pay(&damaged, Credits(5)),
        Err(NodeError::InvalidInput(_))
    ));
}

#[test]
fn waiting_for_an_event_times_out_quietly_when_none_comes() {
    let relay = Relay::start();
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), &relay);
    while let Some(event) = node.next_event().unwrap() {
        node.event_handled(event.id).unwrap();
    }
    let started = Instant::now();
    assert_eq!(
        node.wait_next_event(Duration::from_millis(200)).unwrap(),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// Waits until `payment` at `buyer` has ended and returns it.
fn ended(buyer: &Node, payment: offst_proto::PaymentId) -> offst_node::PaymentInfo {
    let mut done = None;
    eventually(Duration::from_secs(30), "the payment ends", || {
        done = buyer
            .payment(payment)
            .unwrap()
            .filter(|p| p.status != offst_credit::PaymentStatus::InProgress);
        done.is_some()
    });
    done.unwrap()
}

/// Pays `uri` from `buyer`, retrying while the index has not heard every report yet.
fn pay_when_routable(buyer: &Node, uri: &str, max_fees: u128) -> offst_proto::PaymentId {
    let started = Instant::now();
    loop {
        match buyer.pay(uri, Credits(max_fees)) {
            Ok(id) => return id,
            Err(NodeError::Routing(_)) if started.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => panic!("pay failed: {err}"),
        }
    }
}

fn pending(node: &Node, friend: PublicKey) -> (Credits, Credits) {
    node.friends()
        .unwrap()
        .into_iter()
        .find(|f| f.public_key == friend)
        .and_then(|f| f.currencies.into_iter().find(|c| c.currency == fst()))
        .map_or((Credits::ZERO, Credits::ZERO), |c| {
            (c.local_pending_debt, c.remote_pending_debt)
        })
}

fn chain(network: &Network, dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let nodes: Vec<Node> = dirs.iter().map(|dir| network.open(dir.path())).collect();
    for pair in nodes.windows(2) {
        befriend(&pair[0], &pair[1], "next", "previous");
        pair[0]
            .set_limit(pair[1].public_key(), &fst(), Credits(100))
            .unwrap();
        pair[1]
            .set_limit(pair[0].public_key(), &fst(), Credits(100))
            .unwrap();
    }
    for pair in nodes.windows(2) {
        eventually(Duration::from_secs(10), "limits known both ways", || {
            knows_limit(&pair[0], pair[1].public_key(), 100)
                && knows_limit(&pair[1], pair[0].public_key(), 100)
        });
    }
    nodes
}

#[test]
fn an_invoice_is_paid_over_two_mediators_and_every_node_is_settled() {
    let network = Network::start();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = chain(&network, &dirs);
    let [alice, bob, carol, dave] = [&nodes[0], &nodes[1], &nodes[2], &nodes[3]];
    let invoice = dave
        .create_invoice(&fst(), Credits(20), "a book", Duration::from_secs(60))
        .unwrap();
    let payment = ended(alice, pay_when_routable(alice, &invoice.to_uri(), 10));
    assert_eq!(payment.status, offst_credit::PaymentStatus::Succeeded);
    assert_eq!(payment.fees, Credits(2), "two mediators, one credit each");
    offst_credit::payment::verify_receipt(&payment.receipt.unwrap()).unwrap();
    // alice paid 22 to bob; bob kept 1 and paid 21 to carol; carol kept 1 and paid 20 to dave.
    eventually(Duration::from_secs(10), "every hop settled", || {
        balance(alice, bob.public_key()) == Balance(-22)
            && balance(bob, alice.public_key()) == Balance(22)
            && balance(bob, carol.public_key()) == Balance(-21)
            && balance(carol, bob.public_key()) == Balance(21)
            && balance(carol, dave.public_key()) == Balance(-20)
            && balance(dave, carol.public_key()) == Balance(20)
    });
    for (node, earned) in [(bob, 1), (carol, 1)] {
        let account = node.accounts().unwrap();
        assert_eq!(account[0].fees_earned, Credits(earned));
    }
    assert_eq!(dave.accounts().unwrap()[0].received, Credits(20));
    for pair in nodes.windows(2) {
        assert_eq!(
            pending(&pair[0], pair[1].public_key()),
            (Credits::ZERO, Credits::ZERO),
            "nothing left frozen"
        );
    }
}

#[test]
fn a_payment_ends_when_its_mediator_restarts_mid_payment() {
    let network = Network::start();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = chain(&network, &dirs);
    let invoice = nodes[2]
        .create_invoice(&fst(), Credits(10), "restart", Duration::from_secs(60))
        .unwrap();
    let payment = pay_when_routable(&nodes[0], &invoice.to_uri(), 5);
    // Kill the mediator right away (the payment is on its way) and bring it back.
    let mediator_key = nodes[1].public_key();
    drop(nodes.remove(1));
    nodes.insert(1, network.open(dirs[1].path()));
    assert_eq!(nodes[1].public_key(), mediator_key);
    let payment = ended(&nodes[0], payment);
    // Either way, everything frozen is released and the friends agree.
    eventually(
        Duration::from_secs(20),
        "balances agree and nothing frozen",
        || {
            nodes.windows(2).all(|pair| {
                let ab = balance(&pair[0], pair[1].public_key());
                let ba = balance(&pair[1], pair[0].public_key());
                ab.checked_neg() == Some(ba)
                    && pending(&pair[0], pair[1].public_key()) == (Credits::ZERO, Credits::ZERO)
            })
        },
    );
    match payment.status {
        offst_credit::PaymentStatus::Succeeded => {
            assert_eq!(balance(&nodes[0], mediator_key), Balance(-11));
            assert_eq!(balance(&nodes[2], mediator_key), Balance(10));
        }
        _ => {
            assert_eq!(balance(&nodes[0], mediator_key), Balance::ZERO);
            assert_eq!(balance(&nodes[2], mediator_key), Balance::ZERO);
        }
    }
}
