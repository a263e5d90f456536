//! The app protocol end to end (docs/PROTOCOL.md §15): a node serves apps on loopback and
//! apps talk to it through `AppClient` — admission, permissions, reports and events, changes
//! made through the protocol, typed errors, the connection limit and garbage on the wire.
//!
//! Most nodes here are opened but not started and have no relay: every request is answered
//! from the node's own state, so each test is a few milliseconds of SQLite and loopback TCP.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Relay;
use offst_crypto::handshake::HandshakeError;
use offst_crypto::Identity;
use offst_net::{secure, NetError, SecureConfig};
use offst_node::app_client::{AppClient, AppClientError, AppUpdate};
use offst_node::app_server::{
    AppRegistry, AppServer, AppServerConfig, RegisteredApp, DEFAULT_MAX_APPS,
};
use offst_node::{
    AccountInfo, EventQuery, FeeRate, FriendInfo, FriendStatus, IndexServerAddress, Node,
    NodeConfig, StoredEvent,
};
use offst_proto::app::{
    AppError, AppErrorKind, AppRequest, AppResult, FriendStatus as AppFriendStatus, HistoryQuery,
    NodeEvent, NodeReport, NodeToApp, Permission, Permissions,
};
use offst_proto::card::FriendCard;
use offst_proto::payment::Invoice;
use offst_proto::{
    Credits, Currency, NetAddress, PaymentId, PublicKey, RelayAddress, Signature, Text, WireMessage,
};
use rand_core::OsRng;
use tempfile::TempDir;

/// How long an app waits for any one answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How soon a pushed report or event must arrive.
const PUSH_WITHIN: Duration = Duration::from_secs(2);

/// A node serving apps on `127.0.0.1:0`, with a runtime of its own for the apps (the node's
/// synchronous methods must not run inside a runtime, so the test thread drives apps with
/// `block_on` and inspects the node between calls).
struct TestNode {
    node: Node,
    server: Option<AppServer>,
    address: String,
    apps: tokio::runtime::Runtime,
    _dir: TempDir,
}

impl TestNode {
    fn start(apps: Vec<RegisteredApp>) -> TestNode {
        TestNode::with_registry(Arc::new(apps), DEFAULT_MAX_APPS)
    }

    fn with_registry(registry: Arc<dyn AppRegistry>, max_apps: usize) -> TestNode {
        TestNode::open(registry, max_apps, vec![])
    }

    fn open(
        registry: Arc<dyn AppRegistry>,
        max_apps: usize,
        relays: Vec<RelayAddress>,
    ) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(NodeConfig::new(dir.path(), relays)).unwrap();
        let server = node
            .serve_apps(
                AppServerConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    max_apps,
                    ..AppServerConfig::default()
                },
                registry,
            )
            .unwrap();
        let address = server.local_addr().to_string();
        // A worker thread, so that each connection's writer task keeps running between two
        // `block_on` calls of the test thread.
        let apps = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        TestNode {
            node,
            server: Some(server),
            address,
            apps,
            _dir: dir,
        }
    }

    fn connect(&self, seed: u8) -> Result<AppClient, AppClientError> {
        self.apps.block_on(AppClient::connect(
            &self.address,
            self.node.public_key(),
            &identity(seed),
            TIMEOUT,
        ))
    }

    fn request(
        &self,
        app: &mut AppClient,
        request: AppRequest,
    ) -> Result<AppResult, AppClientError> {
        self.apps.block_on(app.request(request))
    }

    /// The next report satisfying `check` within [`PUSH_WITHIN`], skipping events and other
    /// reports.
    fn report_where(
        &self,
        app: &mut AppClient,
        what: &str,
        check: impl Fn(&NodeReport) -> bool,
    ) -> NodeReport {
        self.report_within(app, PUSH_WITHIN, what, check)
    }

    fn report_within(
        &self,
        app: &mut AppClient,
        wait: Duration,
        what: &str,
        check: impl Fn(&NodeReport) -> bool,
    ) -> NodeReport {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.apps.block_on(app.next_update(left)).unwrap() {
                Some(AppUpdate::Report(report)) if check(&report) => return *report,
                Some(_) => {}
                None => panic!("no report with {what} within {wait:?}"),
            }
        }
    }

    /// The next event of `kind`, skipping reports and other events.
    fn event_of_kind(&self, app: &mut AppClient, kind: &str) -> NodeEvent {
        let deadline = Instant::now() + PUSH_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.apps.block_on(app.next_update(left)).unwrap() {
                Some(AppUpdate::Event(event)) if event.kind == kind => return event,
                Some(_) => {}
                None => panic!("no {kind} event within {PUSH_WITHIN:?}"),
            }
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.node.stop_apps(server);
        }
    }
}

/// Polls `check` until it holds or `timeout` passes.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < timeout, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

fn app(seed: u8, name: &str, permissions: Permissions) -> RegisteredApp {
    RegisteredApp {
        name: name.to_owned(),
        public_key: identity(seed).public_key(),
        permissions,
    }
}

/// Every permission but `missing`.
fn all_but(missing: &[Permission]) -> Permissions {
    Permission::ALL
        .into_iter()
        .filter(|permission| !missing.contains(permission))
        .fold(Permissions::NONE, Permissions::with)
}

fn key(seed: u8) -> PublicKey {
    PublicKey::from_bytes([seed; 32])
}

fn text(text: &str) -> Text {
    Text::new(text).unwrap()
}

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

/// A relay address nobody listens on (the nodes here are not started: it is only stored).
fn fake_relay(seed: u8) -> RelayAddress {
    RelayAddress {
        public_key: key(seed),
        address: NetAddress::new(&format!("relay{seed}.example:443")).unwrap(),
    }
}

/// An index server address as the app protocol carries it.
fn fake_index(seed: u8) -> RelayAddress {
    RelayAddress {
        public_key: key(seed),
        address: NetAddress::new(&format!("index{seed}.example:4000")).unwrap(),
    }
}

fn as_index_server(address: &RelayAddress) -> IndexServerAddress {
    IndexServerAddress {
        public_key: address.public_key,
        address: address.address.as_str().to_owned(),
    }
}

fn friend(node: &Node, key: PublicKey) -> Option<FriendInfo> {
    node.friends()
        .unwrap()
        .into_iter()
        .find(|friend| friend.public_key == key)
}

/// Everything an app could change, to check that a refused request changed none of it.
#[derive(Debug, PartialEq)]
struct Snapshot {
    friends: Vec<FriendInfo>,
    relays: Vec<RelayAddress>,
    index_servers: Vec<IndexServerAddress>,
    history: Vec<StoredEvent>,
    accounts: Vec<AccountInfo>,
}

fn snapshot(node: &Node) -> Snapshot {
    Snapshot {
        friends: node.friends().unwrap(),
        relays: node.relays(),
        index_servers: node.index_servers(),
        history: node.history(EventQuery::default()).unwrap(),
        accounts: node.accounts().unwrap(),
    }
}

fn node_error(result: Result<AppResult, AppClientError>) -> AppError {
    match result {
        Err(AppClientError::Node(err)) => err,
        other => panic!("expected an error response, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Permissions: one test per request
// ---------------------------------------------------------------------------------------------

/// What the permission tests' requests refer to: a friend with an open currency, the node's
/// own relay, index server and invoice.
struct Fixture {
    bob: PublicKey,
    relay: RelayAddress,
    index_server: RelayAddress,
    invoice: Invoice,
}

fn fixture(node: &Node) -> Fixture {
    let bob = key(70);
    node.add_friend(bob, "bob", vec![fake_relay(71)]).unwrap();
    node.set_limit(bob, &fst(), Credits(100)).unwrap();
    let relay = fake_relay(72);
    node.set_relays(vec![relay.clone()]).unwrap();
    let index_server = fake_index(73);
    node.set_index_servers(vec![as_index_server(&index_server)])
        .unwrap();
    let invoice = node
        .create_invoice(&fst(), Credits(10), "tea", Duration::from_secs(600))
        .unwrap();
    Fixture {
        bob,
        relay,
        index_server,
        invoice,
    }
}

/// An app with every permission but the ones `request` needs is refused with
/// `permissionDenied`, a message naming the request and the permission, and no change; an
/// app with just one of those permissions is not refused for permission reasons.
fn refused_without_and_allowed_with(
    name: &str,
    needed: &[Permission],
    build: impl Fn(&Fixture) -> AppRequest,
) {
    let mut apps = vec![app(1, "lacking", all_but(needed))];
    for (index, permission) in (2..).zip(needed) {
        apps.push(app(index, "entitled", Permissions::NONE.with(*permission)));
    }
    let test = TestNode::start(apps);
    let request = build(&fixture(&test.node));
    assert_eq!(request.name(), name);

    let mut lacking = test.connect(1).unwrap();
    let before = snapshot(&test.node);
    let err = node_error(test.request(&mut lacking, request.clone()));
    assert_eq!(err.kind, AppErrorKind::PermissionDenied, "{name}: {err}");
    assert!(err.message.contains(name), "{}", err.message);
    for permission in needed {
        assert!(err.message.contains(permission.name()), "{}", err.message);
    }
    assert_eq!(
        snapshot(&test.node),
        before,
        "{name} changed the node although refused"
    );
    // The refusal does not end the session: the next request is answered.
    let next = test.request(&mut lacking, AppRequest::History(HistoryQuery::default()));
    assert!(
        matches!(next, Ok(_) | Err(AppClientError::Node(_))),
        "{next:?}"
    );

    for (index, permission) in (2..).zip(needed) {
        let mut entitled = test.connect(index).unwrap();
        match test.request(&mut entitled, request.clone()) {
            Ok(_) => {}
            Err(AppClientError::Node(err)) => assert_ne!(
                err.kind,
                AppErrorKind::PermissionDenied,
                "{name} with {permission}: {err}"
            ),
            Err(err) => panic!("{name} with {permission}: {err}"),
        }
    }
}

macro_rules! permission_tests {
    ($($test:ident: $name:literal needs [$($permission:ident),+] |$fixture:ident| $request:expr;)+) => {
        $(
            #[test]
            fn $test() {
                refused_without_and_allowed_with(
                    $name,
                    &[$(Permission::$permission),+],
                    |$fixture: &Fixture| $request,
                );
            }
        )+
    };
}

permission_tests! {
    report_needs_info: "report" needs [Info] |_f| AppRequest::Report;
    history_needs_info: "history" needs [Info] |_f| AppRequest::History(HistoryQuery::default());
    friend_card_needs_info: "friend-card" needs [Info] |_f| AppRequest::FriendCard {
        name: text("me"),
    };
    payment_status_needs_info_or_buy: "payment-status" needs [Info, Buy]
        |_f| AppRequest::PaymentStatus(PaymentId::from_bytes([3; 16]));
    add_friend_needs_config: "add-friend" needs [Config] |_f| AppRequest::AddFriend {
        card: FriendCard::new(key(80), text("carol"), vec![fake_relay(81)]).unwrap(),
        name: None,
    };
    remove_friend_needs_config: "remove-friend" needs [Config] |f| AppRequest::RemoveFriend {
        friend: f.bob,
        force: false,
    };
    set_friend_name_needs_config: "set-friend-name" needs [Config]
        |f| AppRequest::SetFriendName {
            friend: f.bob,
            name: text("Bob B."),
        };
    enable_friend_needs_config: "enable-friend" needs [Config]
        |f| AppRequest::EnableFriend(f.bob);
    disable_friend_needs_config: "disable-friend" needs [Config]
        |f| AppRequest::DisableFriend(f.bob);
    set_limit_needs_config: "set-limit" needs [Config] |f| AppRequest::SetLimit {
        friend: f.bob,
        currency: fst(),
        remote_max_debt: Credits(500),
    };
    set_rate_needs_config: "set-rate" needs [Config] |f| AppRequest::SetRate {
        friend: f.bob,
        currency: fst(),
        rate: FeeRate {
            flat: Credits(1),
            proportional_ppm: 100,
        },
    };
    open_currency_needs_config: "open-currency" needs [Config] |f| AppRequest::OpenCurrency {
        friend: f.bob,
        currency: Currency::new("USD").unwrap(),
    };
    close_currency_needs_config: "close-currency" needs [Config]
        |f| AppRequest::CloseCurrency {
            friend: f.bob,
            currency: fst(),
        };
    accept_reset_terms_needs_config: "accept-reset-terms" needs [Config]
        |f| AppRequest::AcceptResetTerms {
            friend: f.bob,
            reset_token: Signature::from_bytes([5; 64]),
        };
    add_relay_needs_config: "add-relay" needs [Config] |_f| AppRequest::AddRelay(fake_relay(82));
    remove_relay_needs_config: "remove-relay" needs [Config]
        |f| AppRequest::RemoveRelay(f.relay.public_key);
    add_index_server_needs_config: "add-index-server" needs [Config]
        |_f| AppRequest::AddIndexServer(fake_index(83));
    remove_index_server_needs_config: "remove-index-server" needs [Config]
        |f| AppRequest::RemoveIndexServer(f.index_server.public_key);
    create_invoice_needs_sell: "create-invoice" needs [Sell] |_f| AppRequest::CreateInvoice {
        currency: fst(),
        amount: Credits(25),
        valid_for_ms: 60_000,
        description: text("two teas"),
    };
    cancel_invoice_needs_sell: "cancel-invoice" needs [Sell]
        |f| AppRequest::CancelInvoice(f.invoice.invoice_id);
    quote_needs_buy: "quote" needs [Buy] |f| AppRequest::Quote {
        invoice: Box::new(f.invoice.clone()),
        max_routes: 1,
    };
    pay_needs_buy: "pay" needs [Buy] |f| AppRequest::Pay {
        invoice: Box::new(f.invoice.clone()),
        max_fees: Credits(5),
    };
    routes_needs_routes: "routes" needs [Routes] |_f| AppRequest::Routes {
        destination: key(84),
        currency: fst(),
        amount: Credits(5),
        max_routes: 1,
    };
}

// ---------------------------------------------------------------------------------------------
// Admission
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unregistered_app_is_refused_at_connect() {
    let test = TestNode::start(vec![app(1, "wallet", Permissions::ALL)]);
    match test.connect(2) {
        Err(AppClientError::Refused(err)) => {
            assert_eq!(err.kind, AppErrorKind::NotRegistered);
            assert!(
                err.message.contains(&identity(2).public_key().to_string()),
                "{}",
                err.message
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The registered app is let in all the same.
    test.connect(1).unwrap();
}

/// A registry that cannot be read (a file system error, say).
struct BrokenRegistry;

impl AppRegistry for BrokenRegistry {
    fn lookup(&self, _key: &PublicKey) -> Result<Option<RegisteredApp>, String> {
        Err("apps directory unreadable".to_owned())
    }
}

#[test]
fn a_registry_error_refuses_the_app() {
    let test = TestNode::with_registry(Arc::new(BrokenRegistry), DEFAULT_MAX_APPS);
    match test.connect(1) {
        Err(AppClientError::Refused(err)) => {
            assert_eq!(err.kind, AppErrorKind::Internal);
            assert!(
                err.message.contains("apps directory unreadable"),
                "{}",
                err.message
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_welcome_names_the_node_the_app_and_its_permissions() {
    let permissions = Permissions::NONE
        .with(Permission::Info)
        .with(Permission::Sell);
    let test = TestNode::start(vec![
        app(1, "till", permissions),
        app(2, "stctrl", Permissions::ALL),
    ]);
    let till = test.connect(1).unwrap();
    let welcome = till.welcome();
    assert_eq!(welcome.node_public_key, test.node.public_key());
    assert_eq!(welcome.app_name.as_str(), "till");
    assert_eq!(welcome.permissions, permissions);
    let stctrl = test.connect(2).unwrap();
    assert_eq!(stctrl.welcome().app_name.as_str(), "stctrl");
    assert_eq!(stctrl.welcome().permissions, Permissions::ALL);
}

// ---------------------------------------------------------------------------------------------
// Reports and events
// ---------------------------------------------------------------------------------------------

#[test]
fn an_info_app_gets_the_report_then_every_change_and_new_events() {
    let test = TestNode::start(vec![
        app(1, "watcher", Permissions::NONE.with(Permission::Info)),
        app(2, "admin", Permissions::NONE.with(Permission::Config)),
        app(3, "till", Permissions::NONE.with(Permission::Sell)),
    ]);
    // Committed before the watcher connects: in the history, never pushed.
    let old = test
        .node
        .create_invoice(&fst(), Credits(1), "old", Duration::from_secs(600))
        .unwrap();

    let mut watcher = test.connect(1).unwrap();
    match test
        .apps
        .block_on(watcher.next_update(PUSH_WITHIN))
        .unwrap()
    {
        Some(AppUpdate::Report(report)) => {
            assert_eq!(report.public_key, test.node.public_key());
            assert!(report.friends.is_empty());
            assert!(report.relays.is_empty());
        }
        other => panic!("the first update must be the report, got {other:?}"),
    }

    let mut admin = test.connect(2).unwrap();
    let carol = key(80);
    let card = FriendCard::new(carol, text("carol"), vec![fake_relay(81)]).unwrap();
    test.request(&mut admin, AppRequest::AddFriend { card, name: None })
        .unwrap();
    let report = test.report_where(&mut watcher, "carol", |report| {
        report.friends.iter().any(|f| f.public_key == carol)
    });
    let reported = &report.friends[0];
    assert_eq!(reported.name.as_str(), "carol");
    assert_eq!(reported.relays, vec![fake_relay(81)]);
    assert_eq!(reported.status, AppFriendStatus::Offline);

    test.request(
        &mut admin,
        AppRequest::SetFriendName {
            friend: carol,
            name: text("Carol C."),
        },
    )
    .unwrap();
    test.report_where(&mut watcher, "carol renamed", |report| {
        report.friends.iter().any(|f| f.name.as_str() == "Carol C.")
    });
    test.request(&mut admin, AppRequest::DisableFriend(carol))
        .unwrap();
    test.report_where(&mut watcher, "carol disabled", |report| {
        report
            .friends
            .iter()
            .any(|f| f.status == AppFriendStatus::Disabled)
    });

    let mut till = test.connect(3).unwrap();
    let invoice = match test
        .request(
            &mut till,
            AppRequest::CreateInvoice {
                currency: fst(),
                amount: Credits(25),
                valid_for_ms: 60_000,
                description: text("two teas"),
            },
        )
        .unwrap()
    {
        AppResult::Invoice(invoice) => invoice,
        other => panic!("{other:?}"),
    };
    let event = test.event_of_kind(&mut watcher, "invoice_created");
    assert!(
        event.payload_json.contains(&invoice.invoice_id.to_string()),
        "{event:?}"
    );
    assert!(
        !event.payload_json.contains(&old.invoice_id.to_string()),
        "an event committed before connecting was pushed: {event:?}"
    );
}

#[test]
fn an_info_app_is_pushed_each_event_once_in_commit_order() {
    let test = TestNode::start(vec![
        app(1, "watcher", Permissions::NONE.with(Permission::Info)),
        app(2, "till", Permissions::NONE.with(Permission::Sell)),
    ]);
    let mut watcher = test.connect(1).unwrap();
    let mut till = test.connect(2).unwrap();
    let mut created = Vec::new();
    for amount in 1..=5 {
        match test.request(
            &mut till,
            AppRequest::CreateInvoice {
                currency: fst(),
                amount: Credits(amount),
                valid_for_ms: 60_000,
                description: text("tea"),
            },
        ) {
            Ok(AppResult::Invoice(invoice)) => created.push(invoice.invoice_id.to_string()),
            other => panic!("{other:?}"),
        }
    }
    let pushed: Vec<NodeEvent> = (0..5)
        .map(|_| test.event_of_kind(&mut watcher, "invoice_created"))
        .collect();
    for (event, invoice_id) in pushed.iter().zip(&created) {
        assert!(
            event.payload_json.contains(invoice_id.as_str()),
            "{event:?}"
        );
    }
    assert!(pushed.windows(2).all(|pair| pair[0].id < pair[1].id));
    // Nothing more: no event twice.
    while let Some(update) = test
        .apps
        .block_on(watcher.next_update(Duration::from_millis(300)))
        .unwrap()
    {
        assert!(matches!(update, AppUpdate::Report(_)), "{update:?}");
    }
}

/// docs/PROTOCOL.md §15.1: a new report "whenever the report changed" — relays and index
/// servers are part of it.
#[test]
fn an_info_app_gets_a_new_report_when_relays_or_index_servers_change() {
    let test = TestNode::start(vec![
        app(1, "watcher", Permissions::NONE.with(Permission::Info)),
        app(2, "admin", Permissions::NONE.with(Permission::Config)),
    ]);
    let mut watcher = test.connect(1).unwrap();
    test.report_where(&mut watcher, "the first report", |_| true);
    let mut admin = test.connect(2).unwrap();
    test.request(&mut admin, AppRequest::AddRelay(fake_relay(90)))
        .unwrap();
    test.report_where(&mut watcher, "the new relay", |report| {
        report.relays == vec![fake_relay(90)]
    });
    test.request(&mut admin, AppRequest::AddIndexServer(fake_index(91)))
        .unwrap();
    test.report_where(&mut watcher, "the new index server", |report| {
        report.index_servers == vec![fake_index(91)]
    });
}

#[test]
fn an_app_without_info_gets_only_responses() {
    let test = TestNode::start(vec![app(
        1,
        "everything but info",
        all_but(&[Permission::Info]),
    )]);
    let mut app = test.connect(1).unwrap();
    let card = FriendCard::new(key(80), text("carol"), vec![fake_relay(81)]).unwrap();
    test.request(&mut app, AppRequest::AddFriend { card, name: None })
        .unwrap();
    test.request(
        &mut app,
        AppRequest::CreateInvoice {
            currency: fst(),
            amount: Credits(5),
            valid_for_ms: 60_000,
            description: text("tea"),
        },
    )
    .unwrap();
    // Something happened the node reports (a friend) and records (an invoice), yet nothing
    // was pushed: neither while waiting for the responses nor after.
    assert!(friend(&test.node, key(80)).is_some());
    assert_eq!(
        test.apps
            .block_on(app.next_update(Duration::from_millis(300)))
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Changes through the protocol
// ---------------------------------------------------------------------------------------------

#[test]
fn a_config_app_changes_friends_relays_and_index_servers() {
    let test = TestNode::start(vec![app(
        1,
        "admin",
        Permissions::NONE.with(Permission::Config),
    )]);
    let mut admin = test.connect(1).unwrap();
    let ok = |result: Result<AppResult, AppClientError>| {
        assert!(matches!(result, Ok(AppResult::Ok)), "{result:?}");
    };

    // A friend from a card, under our own name for them.
    let carol = key(80);
    let card = FriendCard::new(carol, text("carol"), vec![fake_relay(81)]).unwrap();
    ok(test.request(
        &mut admin,
        AppRequest::AddFriend {
            card,
            name: Some(text("Carol from work")),
        },
    ));
    let added = friend(&test.node, carol).unwrap();
    assert_eq!(added.name.as_str(), "Carol from work");
    assert_eq!(added.relays, vec![fake_relay(81)]);
    assert_eq!(added.status, FriendStatus::Offline);

    // A second friend keeps the card's name.
    let dave = key(82);
    let card = FriendCard::new(dave, text("dave"), vec![fake_relay(83)]).unwrap();
    ok(test.request(&mut admin, AppRequest::AddFriend { card, name: None }));
    assert_eq!(friend(&test.node, dave).unwrap().name.as_str(), "dave");

    ok(test.request(
        &mut admin,
        AppRequest::SetFriendName {
            friend: carol,
            name: text("Carol C."),
        },
    ));
    assert_eq!(friend(&test.node, carol).unwrap().name.as_str(), "Carol C.");
    ok(test.request(&mut admin, AppRequest::DisableFriend(carol)));
    assert_eq!(
        friend(&test.node, carol).unwrap().status,
        FriendStatus::Disabled
    );
    ok(test.request(&mut admin, AppRequest::EnableFriend(carol)));
    assert_eq!(
        friend(&test.node, carol).unwrap().status,
        FriendStatus::Offline
    );

    // Relays: added, refused twice, removed, unknown ones refused.
    ok(test.request(&mut admin, AppRequest::AddRelay(fake_relay(90))));
    ok(test.request(&mut admin, AppRequest::AddRelay(fake_relay(91))));
    assert_eq!(test.node.relays(), vec![fake_relay(90), fake_relay(91)]);
    let err = node_error(test.request(&mut admin, AppRequest::AddRelay(fake_relay(90))));
    assert_eq!(err.kind, AppErrorKind::InvalidInput, "{err}");
    ok(test.request(&mut admin, AppRequest::RemoveRelay(key(90))));
    assert_eq!(test.node.relays(), vec![fake_relay(91)]);
    let err = node_error(test.request(&mut admin, AppRequest::RemoveRelay(key(90))));
    assert_eq!(err.kind, AppErrorKind::InvalidInput, "{err}");
    assert_eq!(test.node.relays(), vec![fake_relay(91)]);

    // Index servers likewise.
    ok(test.request(&mut admin, AppRequest::AddIndexServer(fake_index(92))));
    assert_eq!(
        test.node.index_servers(),
        vec![as_index_server(&fake_index(92))]
    );
    let err = node_error(test.request(&mut admin, AppRequest::AddIndexServer(fake_index(92))));
    assert_eq!(err.kind, AppErrorKind::InvalidInput, "{err}");
    ok(test.request(&mut admin, AppRequest::RemoveIndexServer(key(92))));
    assert_eq!(test.node.index_servers(), Vec::new());
    let err = node_error(test.request(&mut admin, AppRequest::RemoveIndexServer(key(92))));
    assert_eq!(err.kind, AppErrorKind::InvalidInput, "{err}");

    // Removing a friend.
    ok(test.request(
        &mut admin,
        AppRequest::RemoveFriend {
            friend: dave,
            force: false,
        },
    ));
    assert!(friend(&test.node, dave).is_none());
    assert!(friend(&test.node, carol).is_some());
}

/// Limits, rates and open currencies live in the channel: they show once the friend is
/// linked, to the node, to its info apps and (the limit) to the friend.
#[test]
fn a_config_app_sets_limits_and_rates_that_the_node_its_apps_and_the_friend_see() {
    let relay = Relay::start();
    let test = TestNode::open(
        Arc::new(vec![
            app(1, "watcher", Permissions::NONE.with(Permission::Info)),
            app(2, "admin", Permissions::NONE.with(Permission::Config)),
        ]),
        DEFAULT_MAX_APPS,
        vec![relay.address.clone()],
    );
    test.node.start().unwrap();
    let bob_dir = tempfile::tempdir().unwrap();
    let bob = Node::open(NodeConfig::new(bob_dir.path(), vec![relay.address.clone()])).unwrap();
    bob.start().unwrap();
    let alice = test.node.public_key();

    let mut watcher = test.connect(1).unwrap();
    let mut admin = test.connect(2).unwrap();
    let card = bob.friend_card("bob").unwrap();
    let ok = |result: Result<AppResult, AppClientError>| {
        assert!(matches!(result, Ok(AppResult::Ok)), "{result:?}");
    };
    ok(test.request(&mut admin, AppRequest::AddFriend { card, name: None }));
    bob.add_friend_from_card(&test.node.friend_card("alice").unwrap().to_uri(), None)
        .unwrap();
    test.report_within(
        &mut watcher,
        Duration::from_secs(10),
        "bob online",
        |report| {
            report
                .friends
                .iter()
                .any(|f| f.status == AppFriendStatus::Online)
        },
    );

    ok(test.request(
        &mut admin,
        AppRequest::SetLimit {
            friend: bob.public_key(),
            currency: fst(),
            remote_max_debt: Credits(100),
        },
    ));
    let currency_of = |report: &NodeReport| {
        report
            .friends
            .iter()
            .flat_map(|f| f.currencies.iter())
            .find(|c| c.currency == fst())
            .cloned()
    };
    test.report_where(&mut watcher, "the limit", |report| {
        currency_of(report).is_some_and(|c| c.remote_max_debt == Credits(100) && c.is_open)
    });
    eventually(Duration::from_secs(5), "bob knows his limit", || {
        friend(&bob, alice)
            .unwrap()
            .currencies
            .iter()
            .any(|c| c.local_max_debt == Credits(100))
    });

    let rate = FeeRate {
        flat: Credits(2),
        proportional_ppm: 1000,
    };
    ok(test.request(
        &mut admin,
        AppRequest::SetRate {
            friend: bob.public_key(),
            currency: fst(),
            rate,
        },
    ));
    test.report_where(&mut watcher, "the rate", |report| {
        currency_of(report).is_some_and(|c| c.rate == rate)
    });
    ok(test.request(
        &mut admin,
        AppRequest::CloseCurrency {
            friend: bob.public_key(),
            currency: fst(),
        },
    ));
    test.report_where(&mut watcher, "the currency closed", |report| {
        currency_of(report).is_some_and(|c| !c.is_open)
    });
    ok(test.request(
        &mut admin,
        AppRequest::OpenCurrency {
            friend: bob.public_key(),
            currency: fst(),
        },
    ));
    test.report_where(&mut watcher, "the currency open again", |report| {
        currency_of(report).is_some_and(|c| c.is_open)
    });
    let currency = friend(&test.node, bob.public_key())
        .unwrap()
        .currencies
        .into_iter()
        .find(|c| c.currency == fst())
        .unwrap();
    assert_eq!(currency.remote_max_debt, Credits(100));
    assert_eq!(currency.rate, rate);
    assert!(currency.is_open);
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_requests_get_typed_errors_and_change_nothing() {
    let test = TestNode::start(vec![app(1, "stctrl", Permissions::ALL)]);
    test.node.start().unwrap();
    let invoice = test
        .node
        .create_invoice(&fst(), Credits(10), "tea", Duration::from_secs(600))
        .unwrap();
    let mut stctrl = test.connect(1).unwrap();
    let before = snapshot(&test.node);
    let cases = [
        (
            AppRequest::SetLimit {
                friend: key(99),
                currency: fst(),
                remote_max_debt: Credits(10),
            },
            AppErrorKind::Refused,
        ),
        (
            AppRequest::PaymentStatus(PaymentId::from_bytes([9; 16])),
            AppErrorKind::InvalidInput,
        ),
        (
            AppRequest::Quote {
                invoice: Box::new(invoice.clone()),
                max_routes: 1,
            },
            AppErrorKind::Routing,
        ),
        (
            AppRequest::Routes {
                destination: key(99),
                currency: fst(),
                amount: Credits(10),
                max_routes: 1,
            },
            AppErrorKind::Routing,
        ),
        (
            AppRequest::Pay {
                invoice: Box::new(invoice),
                max_fees: Credits(1),
            },
            AppErrorKind::Routing,
        ),
        (AppRequest::RemoveRelay(key(99)), AppErrorKind::InvalidInput),
    ];
    for (request, kind) in cases {
        let name = request.name();
        let err = node_error(test.request(&mut stctrl, request));
        assert_eq!(err.kind, kind, "{name}: {err}");
        assert!(!err.message.is_empty());
    }
    assert_eq!(snapshot(&test.node), before);
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

#[test]
fn apps_over_max_apps_are_refused_busy_until_one_leaves() {
    let test = TestNode::with_registry(
        Arc::new(vec![
            app(1, "first", Permissions::ALL),
            app(2, "second", Permissions::ALL),
        ]),
        1,
    );
    let first = test.connect(1).unwrap();
    match test.connect(2) {
        Err(AppClientError::Handshake {
            source: NetError::Handshake(HandshakeError::Busy),
            ..
        }) => {}
        other => panic!("expected busy, got {other:?}"),
    }
    test.apps.block_on(first.close());
    // The slot frees once the node sees the first app go.
    let started = Instant::now();
    let mut second = loop {
        match test.connect(2) {
            Ok(app) => break app,
            Err(err) => {
                assert!(started.elapsed() < PUSH_WITHIN, "still refused: {err}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert!(matches!(
        test.request(&mut second, AppRequest::Report),
        Ok(AppResult::Report(_))
    ));
}

#[test]
fn garbage_after_the_handshake_closes_that_connection_only() {
    let test = TestNode::start(vec![
        app(1, "watcher", Permissions::NONE.with(Permission::Info)),
        app(2, "broken", Permissions::ALL),
        app(3, "admin", Permissions::NONE.with(Permission::Config)),
    ]);
    let mut watcher = test.connect(1).unwrap();
    test.report_where(&mut watcher, "the first report", |_| true);

    let node_key = test.node.public_key();
    test.apps.block_on(async {
        let tcp = offst_net::tcp::dial(&test.address, TIMEOUT).await.unwrap();
        let mut stream = secure::connect(
            tcp,
            &identity(2),
            Some(node_key),
            &SecureConfig::default(),
            &mut OsRng,
        )
        .await
        .unwrap();
        let first = stream.recv().await.unwrap().unwrap();
        assert!(matches!(
            NodeToApp::decode(&first),
            Ok(NodeToApp::Welcome(_))
        ));
        stream.send(b"garbage").await.unwrap();
        // Reports may precede the close; a response never comes.
        loop {
            match tokio::time::timeout(TIMEOUT, stream.recv()).await {
                Ok(Ok(Some(bytes))) => assert!(
                    matches!(NodeToApp::decode(&bytes), Ok(NodeToApp::Report(_))),
                    "{:?}",
                    NodeToApp::decode(&bytes)
                ),
                Ok(Ok(None) | Err(_)) => break,
                Err(_) => panic!("the node kept a connection that sent garbage"),
            }
        }
    });

    // The other apps carry on.
    assert!(matches!(
        test.request(&mut watcher, AppRequest::Report),
        Ok(AppResult::Report(_))
    ));
    let mut admin = test.connect(3).unwrap();
    let card = FriendCard::new(key(80), text("carol"), vec![fake_relay(81)]).unwrap();
    test.request(&mut admin, AppRequest::AddFriend { card, name: None })
        .unwrap();
    test.report_where(&mut watcher, "carol", |report| report.friends.len() == 1);
    // And the garbage sender may come back.
    test.connect(2).unwrap();
}
