//! The node's network settings at runtime (relays, index servers, their persistence), the
//! friend and currency settings the app protocol needs, and the async `NodeHandle`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Relay;
use offst_node::{
    FeeRate, FriendStatus, IndexServerAddress, Node, NodeConfig, NodeError, MAX_INDEX_SERVERS,
};
use offst_proto::limits::MAX_RELAYS;
use offst_proto::{Balance, Credits, Currency, NetAddress, PublicKey, RelayAddress};

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

/// A relay address nobody listens on (for settings that are only stored).
fn fake_relay(seed: u8) -> RelayAddress {
    RelayAddress {
        public_key: PublicKey::from_bytes([seed; 32]),
        address: NetAddress::new(&format!("relay{seed}.example:443")).unwrap(),
    }
}

fn fake_index(seed: u8) -> IndexServerAddress {
    IndexServerAddress {
        public_key: PublicKey::from_bytes([seed; 32]),
        address: format!("index{seed}.example:4000"),
    }
}

fn config(dir: &Path, relays: Vec<RelayAddress>, prefer_stored_network: bool) -> NodeConfig {
    let mut config = NodeConfig::new(dir, relays);
    config.prefer_stored_network = prefer_stored_network;
    config
}

fn started(dir: &Path, relay: &Relay) -> Node {
    let node = Node::open(NodeConfig::new(dir, vec![relay.address.clone()])).unwrap();
    node.start().unwrap();
    node
}

fn befriend(a: &Node, b: &Node) {
    a.add_friend_from_card(&b.friend_card("b").unwrap().to_uri(), None)
        .unwrap();
    b.add_friend_from_card(&a.friend_card("a").unwrap().to_uri(), None)
        .unwrap();
}

fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < timeout, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn friend(node: &Node, key: PublicKey) -> offst_node::FriendInfo {
    node.friends()
        .unwrap()
        .into_iter()
        .find(|f| f.public_key == key)
        .unwrap()
}

fn online(node: &Node, key: PublicKey) -> bool {
    friend(node, key).status == FriendStatus::Online
}

fn balance(node: &Node, key: PublicKey) -> Balance {
    friend(node, key)
        .currencies
        .into_iter()
        .find(|c| c.currency == fst())
        .map_or(Balance::ZERO, |c| c.balance)
}

fn kinds_about(node: &Node, key: PublicKey) -> Vec<String> {
    node.history(offst_node::EventQuery::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.event.friend == Some(key))
        .map(|e| e.event.kind)
        .collect()
}

#[test]
fn a_started_node_moves_to_new_relays_and_keeps_its_links() {
    let old_relay = Relay::start_with_seed(200);
    let new_relay = Relay::start_with_seed(201);
    // Alice moves; her friends must dial her (the greater key dials) so that the new link
    // goes through her new listener: she is the smaller key of two, and carol is drawn until
    // her key is greater.
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let first = started(dirs[0].path(), &old_relay);
    let second = started(dirs[1].path(), &old_relay);
    let (alice, bob) = if first.public_key() < second.public_key() {
        (first, second)
    } else {
        (second, first)
    };
    befriend(&alice, &bob);
    eventually(Duration::from_secs(10), "alice and bob linked", || {
        online(&alice, bob.public_key()) && online(&bob, alice.public_key())
    });

    alice.set_relays(vec![new_relay.address.clone()]).unwrap();
    assert_eq!(alice.relays(), vec![new_relay.address.clone()]);
    let card = alice.friend_card("alice").unwrap();
    assert_eq!(card.relays, vec![new_relay.address.clone()]);

    let carol_dir = tempfile::tempdir().unwrap();
    let carol = (0..256)
        .map(|i| {
            let dir = carol_dir.path().join(i.to_string());
            Node::open(NodeConfig::new(dir, vec![old_relay.address.clone()])).unwrap()
        })
        .find(|node| node.public_key() > alice.public_key())
        .unwrap();
    carol.start().unwrap();
    carol
        .add_friend_from_card(&card.to_uri(), Some("alice"))
        .unwrap();
    alice
        .add_friend_from_card(&carol.friend_card("carol").unwrap().to_uri(), None)
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "carol linked via the new relay",
        || online(&carol, alice.public_key()) && online(&alice, carol.public_key()),
    );
    alice
        .set_limit(carol.public_key(), &fst(), Credits(100))
        .unwrap();
    eventually(Duration::from_secs(5), "carol knows her limit", || {
        friend(&carol, alice.public_key())
            .currencies
            .iter()
            .any(|c| c.local_max_debt == Credits(100))
    });
    carol
        .transfer(alice.public_key(), &fst(), Credits(25))
        .unwrap();
    eventually(Duration::from_secs(5), "the transfer arrives", || {
        balance(&alice, carol.public_key()) == Balance(25)
    });

    // Bob's link never went down.
    assert!(online(&alice, bob.public_key()));
    assert!(!kinds_about(&alice, bob.public_key()).contains(&"friend_offline".to_string()));
}

#[test]
fn network_settings_set_at_runtime_survive_a_restart_when_preferred() {
    let dir = tempfile::tempdir().unwrap();
    let seed = vec![fake_relay(1)];
    let relays = vec![fake_relay(2), fake_relay(3)];
    let index_servers = vec![fake_index(4)];

    // A new node preferring stored settings starts with the configuration's.
    let node = Node::open(config(dir.path(), seed.clone(), true)).unwrap();
    assert_eq!(node.relays(), seed);
    assert_eq!(node.index_servers(), Vec::new());
    node.set_relays(relays.clone()).unwrap();
    node.set_index_servers(index_servers.clone()).unwrap();
    assert_eq!(node.relays(), relays);
    assert_eq!(node.index_servers(), index_servers);
    drop(node);

    let node = Node::open(config(dir.path(), seed.clone(), true)).unwrap();
    assert_eq!(node.relays(), relays);
    assert_eq!(node.index_servers(), index_servers);
    assert_eq!(node.friend_card("me").unwrap().relays, relays);
    drop(node);

    // Not preferred: the configuration's lists, as an app that keeps its own.
    let node = Node::open(config(dir.path(), seed.clone(), false)).unwrap();
    assert_eq!(node.relays(), seed);
    assert_eq!(node.index_servers(), Vec::new());
    // Changes are stored all the same.
    node.set_relays(vec![fake_relay(5)]).unwrap();
    drop(node);
    let node = Node::open(config(dir.path(), seed, true)).unwrap();
    assert_eq!(node.relays(), vec![fake_relay(5)]);
    // Both lists are stored together: the index servers are the ones in use at the change.
    assert_eq!(node.index_servers(), Vec::new());
}

#[test]
fn bad_network_settings_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = vec![fake_relay(1)];
    let node = Node::open(config(dir.path(), seed.clone(), true)).unwrap();
    let too_many: Vec<_> = (10..).take(MAX_RELAYS + 1).map(fake_relay).collect();
    let duplicate = vec![fake_relay(2), fake_relay(2)];
    for relays in [too_many, duplicate] {
        let err = node.set_relays(relays).unwrap_err();
        assert!(matches!(err, NodeError::InvalidInput(_)), "{err}");
    }
    let too_many: Vec<_> = (10..).take(MAX_INDEX_SERVERS + 1).map(fake_index).collect();
    let duplicate = vec![fake_index(2), fake_index(2)];
    let bad_address = vec![IndexServerAddress {
        address: "no port".into(),
        ..fake_index(3)
    }];
    for servers in [too_many, duplicate, bad_address] {
        let err = node.set_index_servers(servers).unwrap_err();
        assert!(matches!(err, NodeError::InvalidInput(_)), "{err}");
    }
    assert_eq!(node.relays(), seed);
    assert_eq!(node.index_servers(), Vec::new());
    drop(node);
    // Nothing was stored: the configuration still seeds the node.
    let node = Node::open(config(dir.path(), vec![fake_relay(9)], true)).unwrap();
    assert_eq!(node.relays(), vec![fake_relay(9)]);
}

#[test]
fn friend_names_open_currencies_and_rates_show_in_friends() {
    let relay = Relay::start_with_seed(200);
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let alice = started(dirs[0].path(), &relay);
    let bob = started(dirs[1].path(), &relay);
    befriend(&alice, &bob);
    alice.set_friend_name(bob.public_key(), "Bob B.").unwrap();
    assert_eq!(friend(&alice, bob.public_key()).name.as_str(), "Bob B.");
    assert!(friend(&alice, bob.public_key()).reset_terms.is_none());

    alice
        .set_limit(bob.public_key(), &fst(), Credits(10))
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the currency is in the channel",
        || !friend(&alice, bob.public_key()).currencies.is_empty(),
    );
    let currency = friend(&alice, bob.public_key()).currencies[0].clone();
    assert!(currency.is_open);
    assert_eq!(currency.rate, FeeRate::DEFAULT);

    alice
        .set_currency_open(bob.public_key(), &fst(), false)
        .unwrap();
    let rate = FeeRate {
        flat: Credits(2),
        proportional_ppm: 1000,
    };
    alice
        .set_fee_rate(bob.public_key(), &fst(), Some(rate))
        .unwrap();
    let currency = friend(&alice, bob.public_key()).currencies[0].clone();
    assert!(!currency.is_open);
    assert_eq!(currency.rate, rate);

    // Removing the currency: refused for an unknown one, then done for FST (no balance).
    let usd = Currency::new("USD").unwrap();
    assert!(alice.remove_currency(bob.public_key(), &usd).is_err());
    alice.remove_currency(bob.public_key(), &fst()).unwrap();
    eventually(Duration::from_secs(10), "the currency is gone", || {
        friend(&alice, bob.public_key()).currencies.is_empty()
    });
}

#[test]
fn the_async_handle_works_from_inside_the_nodes_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(NodeConfig::new(dir.path(), vec![fake_relay(1)])).unwrap();
    let handle = node.handle();
    let friend_key = PublicKey::from_bytes([7; 32]);
    let (results, received) = std::sync::mpsc::channel();
    node.spawn(async move {
        let outcome = async {
            handle
                .add_friend(friend_key, "dave", vec![fake_relay(2)])
                .await?;
            // Nothing happens: the wait times out quietly.
            let none = handle.wait_next_event(Duration::from_millis(50)).await?;
            handle.set_friend_name(friend_key, "Dave").await?;
            let friends = handle.friends().await?;
            Ok::<_, NodeError>((none, friends))
        }
        .await;
        results.send(outcome).unwrap();
    });
    let (none, friends) = received
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(none.is_none());
    assert_eq!(friends.len(), 1);
    assert_eq!(friends[0].name.as_str(), "Dave");
    assert_eq!(friends[0].status, FriendStatus::Offline);
    // The same state through the sync API.
    assert_eq!(node.friends().unwrap(), friends);

    // Once the node is dropped, a leftover handle says so instead of hanging.
    let handle = node.handle();
    drop(node);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime.block_on(handle.friends()).unwrap_err();
    assert!(matches!(err, NodeError::NotRunning), "{err}");
}
