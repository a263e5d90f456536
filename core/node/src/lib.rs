//! The Offst node runtime.
//!
//! [`Node`] drives the sans-I/O credit state machine (`offst_credit`) with SQLite storage
//! (`offst_store`) and relay networking (`offst_net`) on a tokio runtime it owns, behind a
//! synchronous API that the FFI layer wraps one-to-one. The same operations are async on a
//! [`NodeHandle`] ([`Node::handle`]), for code that runs on a tokio runtime (the app server);
//! the synchronous methods are `block_on` over them.
//!
//! One task, the driver ([`driver`]), owns the credit state and the store: every input (a user
//! command, a friend's message, a link coming up or down, a timer) becomes one step whose
//! changes and events are committed in one transaction **before** the step's messages are
//! handed to the friend links (persist before send). Links to friends go through relays: the
//! node listens on its own relays, and for each friend the side with the greater public key
//! dials through the friend's relays, retrying with exponential backoff and jitter.
//!
//! Multi-hop payments (invoices, routes, fees) arrive with the payments issue; until then the
//! node pays friends directly ([`Node::transfer`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app_client;
pub mod app_server;
mod driver;
pub mod error;
mod events;
mod handle;
mod links;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use offst_credit::PaymentStatus;
use offst_credit::{CreditConfig, Timestamp};
use offst_crypto::keyfile::{self, KeyProtection};
use offst_crypto::Identity;
use offst_net::relay_client::RelayClientConfig;
use offst_proto::card::FriendCard;
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{
    Balance, Credits, Currency, InvoiceId, PaymentId, PublicKey, RelayAddress, Signature, Text,
};
use offst_store::{SqliteStore, Store};
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot, Notify};

pub use error::NodeError;
pub use handle::NodeHandle;
pub use offst_index::client::{IndexServerAddress, QueryOptions};
pub use offst_proto::index::FeeRate;
pub use offst_proto::index::Route;
pub use offst_store::{EventQuery, NewEvent, StoredEvent};
pub use settings::MAX_INDEX_SERVERS;

use crate::driver::{Driver, Request};

/// The identity key file in a node's data directory.
pub const KEY_FILE: &str = "node.key";
/// Requests from the API the driver may queue.
const REQUEST_QUEUE_LEN: usize = 256;
/// Longest `stop` and drop wait for the runtime's tasks.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// How the identity key is protected on disk.
#[derive(Clone, Default)]
pub enum KeySecret {
    /// Not encrypted (file permissions only): desktop nodes and tests.
    #[default]
    Plain,
    /// Encrypted with a passphrase.
    Passphrase(String),
    /// Encrypted with a secret the app keeps in the platform keystore (≥ 16 bytes).
    AppSecret(Vec<u8>),
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeySecret::Plain => "Plain",
            KeySecret::Passphrase(_) => "Passphrase(..)",
            KeySecret::AppSecret(_) => "AppSecret(..)",
        })
    }
}

/// What a node needs to open.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's data directory (key file, database); created if missing.
    pub data_dir: PathBuf,
    /// Relays this node listens on (published in its friend card).
    pub relays: Vec<RelayAddress>,
    /// Protection of the identity key.
    pub key_secret: KeySecret,
    /// Relay and secure-channel timing.
    pub relay_client: RelayClientConfig,
    /// Credit-layer policy (reset policy, retransmission).
    pub credit: CreditConfig,
    /// Index servers the node reports its capacities to and asks for routes, in order of
    /// preference (none: the node is not routable through indexes).
    pub index_servers: Vec<IndexServerAddress>,
    /// Whether relays and index servers stored by an earlier run (set with
    /// [`Node::set_relays`] / [`Node::set_index_servers`]) win over `relays` and
    /// `index_servers`, which then only seed a new node (a daemon whose users change them at
    /// runtime). When false the configuration's lists are used (an app that keeps its own);
    /// runtime changes are stored either way.
    pub prefer_stored_network: bool,
}

impl NodeConfig {
    /// A configuration with defaults for everything but the directory and relays.
    pub fn new(data_dir: impl Into<PathBuf>, relays: Vec<RelayAddress>) -> NodeConfig {
        NodeConfig {
            data_dir: data_dir.into(),
            relays,
            key_secret: KeySecret::Plain,
            relay_client: RelayClientConfig::default(),
            credit: CreditConfig::default(),
            index_servers: Vec::new(),
            prefer_stored_network: false,
        }
    }
}

/// The relays and index servers a node opens with: the configuration's, or the stored ones
/// when the configuration prefers them and a previous run stored them.
fn network_settings(
    config: &NodeConfig,
    store: &SqliteStore,
) -> Result<settings::NetworkSettings, NodeError> {
    let mut network = settings::NetworkSettings {
        relays: config.relays.clone(),
        index_servers: config.index_servers.clone(),
    };
    if config.prefer_stored_network {
        if let Some(bytes) = store.setting(settings::RELAYS_KEY)? {
            network.relays = settings::decode_relays(&bytes)?;
        }
        if let Some(bytes) = store.setting(settings::INDEX_SERVERS_KEY)? {
            network.index_servers = settings::decode_index_servers(&bytes)?;
        }
    }
    Ok(network)
}

/// One currency with one friend, from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyInfo {
    /// The currency.
    pub currency: Currency,
    /// Positive: the friend owes us.
    pub balance: Balance,
    /// The most we may owe the friend (the friend's limit for us).
    pub local_max_debt: Credits,
    /// The most the friend may owe us (our limit for the friend).
    pub remote_max_debt: Credits,
    /// Credit frozen by payments we sent.
    pub local_pending_debt: Credits,
    /// Credit frozen by payments the friend sent.
    pub remote_pending_debt: Credits,
    /// Our fee for forwarding payments that arrive from this friend in this currency
    /// ([`FeeRate::DEFAULT`] unless set with [`Node::set_fee_rate`]).
    pub rate: FeeRate,
    /// Whether we accept payments towards us in this currency: what we last asked for with
    /// [`Node::set_currency_open`] / [`Node::set_limit`] (the friend learns it with the next
    /// token), else what the channel's last token says.
    pub is_open: bool,
}

/// Reset terms a friend proposed for an inconsistent channel, for the user to check and
/// accept ([`Node::accept_reset_terms`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetTermsInfo {
    /// Names these terms; pass it to [`Node::accept_reset_terms`].
    pub reset_token: Signature,
    /// The balance per currency the channel restarts with if accepted, **from our side** like
    /// [`CurrencyInfo::balance`] (positive: the friend owes us; the friend wrote its terms
    /// from its side, so these are its balances negated).
    pub balances: Vec<(Currency, Balance)>,
}

/// The state of the channel with a friend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendStatus {
    /// Disabled by the user: not contacted.
    Disabled,
    /// Enabled, no link right now.
    Offline,
    /// Linked and consistent.
    Online,
    /// The channel needs reset terms accepted.
    Inconsistent,
}

/// A friend as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendInfo {
    /// The friend's identity.
    pub public_key: PublicKey,
    /// The name we gave it.
    pub name: Text,
    /// The friend's relays.
    pub relays: Vec<RelayAddress>,
    /// Link and channel status.
    pub status: FriendStatus,
    /// Per-currency balances and limits (from the last token both signed; none while
    /// inconsistent).
    pub currencies: Vec<CurrencyInfo>,
    /// While the channel is inconsistent and the friend's reset terms have arrived: those
    /// terms, for the user to accept.
    pub reset_terms: Option<ResetTermsInfo>,
}

/// Where a payment stands, as the buyer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInfo {
    /// The payment.
    pub payment_id: PaymentId,
    /// The invoice it pays.
    pub invoice_id: InvoiceId,
    /// In progress, succeeded (with a receipt) or cancelled.
    pub status: PaymentStatus,
    /// What the seller receives.
    pub amount: Credits,
    /// Fees paid to mediators.
    pub fees: Credits,
    /// Number of routes used.
    pub routes: usize,
    /// The receipt, once succeeded (verifiable offline with `offst_credit::payment::verify_receipt`).
    pub receipt: Option<Receipt>,
    /// Start and end, Unix ms.
    pub started_at: u64,
    /// When it succeeded or was cancelled.
    pub finished_at: Option<u64>,
}

/// Totals per currency: what the node paid, received and earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The currency.
    pub currency: Currency,
    /// Fees earned as a mediator.
    pub fees_earned: Credits,
    /// Fees paid as a buyer.
    pub fees_paid: Credits,
    /// Invoice amounts received as a seller.
    pub received: Credits,
    /// Invoice amounts paid as a buyer (fees excluded).
    pub sent: Credits,
}

/// How long an invoice stays payable by default.
pub const DEFAULT_INVOICE_VALIDITY: Duration = Duration::from_secs(3600);

/// Most routes a payment is split over when no single route carries it.
pub const MAX_PAYMENT_ROUTES: u32 = 8;

/// The current time as the credit layer sees it: Unix milliseconds.
pub(crate) fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp(ms)
}

/// A running (or stopped) Offst node: owns the tokio runtime the driver runs on.
///
/// Its methods are synchronous and block the calling thread briefly (each is
/// `block_on(handle.method())` on the node's runtime): call them from any thread **but not
/// from inside a tokio runtime** (that panics). Async code uses a [`NodeHandle`]
/// ([`Node::handle`]) instead, ideally on the node's runtime ([`Node::spawn`]).
pub struct Node {
    handle: NodeHandle,
    /// For the app server's handshakes (the driver has its own copy).
    identity: Identity,
    requests: mpsc::Sender<Request>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("public_key", &self.handle.public_key())
            .finish()
    }
}

impl Node {
    /// Opens the node in `config.data_dir`: reads (or, on first use, creates) the identity
    /// key, opens the database (refusing a directory another node uses) and loads the state.
    /// The node does not touch the network until [`Node::start`].
    pub fn open(config: NodeConfig) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| {
            NodeError::Store(offst_store::StoreError::Io {
                path: config.data_dir.clone(),
                source,
            })
        })?;
        // The store first: its lock keeps a second process away from the key file too.
        let store = SqliteStore::open(&config.data_dir)?;
        let protection = match &config.key_secret {
            KeySecret::Plain => KeyProtection::Plain,
            KeySecret::Passphrase(passphrase) => KeyProtection::Passphrase(passphrase),
            KeySecret::AppSecret(secret) => KeyProtection::AppSecret(secret),
        };
        let (identity, created) =
            keyfile::read_or_create(&config.data_dir.join(KEY_FILE), protection, &mut OsRng)?;
        if created {
            log::info!("created node identity {}", identity.public_key());
        }
        let state = store.load()?;
        let network = network_settings(&config, &store)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("offst-node")
            .enable_all()
            .build()
            .map_err(|err| NodeError::Internal(format!("starting the runtime: {err}")))?;
        let events_changed = Arc::new(Notify::new());
        let settings = Arc::new(std::sync::RwLock::new(network));
        let (requests, receiver) = mpsc::channel(REQUEST_QUEUE_LEN);
        let public_key = identity.public_key();
        let driver = Driver::new(
            identity.clone(),
            config,
            store,
            state,
            events_changed.clone(),
            settings.clone(),
            requests.clone(),
        );
        runtime.spawn(driver.run(receiver));
        Ok(Node {
            handle: NodeHandle::new(public_key, requests.clone(), events_changed, settings),
            identity,
            requests,
            runtime: Some(runtime),
        })
    }

    /// Serves apps (the app protocol, docs/PROTOCOL.md §15) on `config.listen`, on the
    /// node's runtime, admitting the apps `registry` knows with their permissions. Runs until
    /// [`Node::stop_apps`] or until the returned server is dropped.
    pub fn serve_apps(
        &self,
        config: app_server::AppServerConfig,
        registry: Arc<dyn app_server::AppRegistry>,
    ) -> Result<app_server::AppServer, NodeError> {
        let runtime = self.runtime.as_ref().ok_or(NodeError::NotRunning)?;
        runtime.block_on(app_server::AppServer::start(
            self.handle.clone(),
            self.identity.clone(),
            config,
            registry,
        ))
    }

    /// Stops an app server: no new apps, every app connection closed.
    pub fn stop_apps(&self, server: app_server::AppServer) {
        if let Some(runtime) = self.runtime.as_ref() {
            runtime.block_on(server.stop());
        }
    }

    /// Runs `future` to completion on the node's runtime, blocking this thread.
    fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, NodeError>>,
    ) -> Result<T, NodeError> {
        self.runtime
            .as_ref()
            .ok_or(NodeError::NotRunning)?
            .block_on(future)
    }

    /// An async handle on this node, for code running on a tokio runtime. It stays valid
    /// while the node lives; after the node is dropped its operations fail with
    /// [`NodeError::NotRunning`].
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Spawns `future` on the node's runtime (e.g. an app server's listener). It runs until
    /// it ends or the node is dropped, whichever comes first.
    pub fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(future);
        }
    }

    /// The node's runtime, for callers that need more than [`Node::spawn`] (binding a listener
    /// inside it, `JoinHandle`s). Do not `block_on` it from inside a runtime.
    pub fn runtime_handle(&self) -> Result<tokio::runtime::Handle, NodeError> {
        self.runtime
            .as_ref()
            .map(|runtime| runtime.handle().clone())
            .ok_or(NodeError::NotRunning)
    }

    /// Starts networking: listens on the node's relays and links to every enabled friend.
    pub fn start(&self) -> Result<(), NodeError> {
        self.block_on(self.handle.start())
    }

    /// Stops networking (returns within [`STOP_TIMEOUT`]); the state stays open and usable.
    pub fn stop(&self) -> Result<(), NodeError> {
        self.block_on(self.handle.stop())
    }

    /// The node's identity.
    pub fn public_key(&self) -> PublicKey {
        self.handle.public_key()
    }

    /// The relays the node listens on.
    pub fn relays(&self) -> Vec<RelayAddress> {
        self.handle.relays()
    }

    /// Replaces the relays the node listens on; see [`NodeHandle::set_relays`].
    pub fn set_relays(&self, relays: Vec<RelayAddress>) -> Result<(), NodeError> {
        self.block_on(self.handle.set_relays(relays))
    }

    /// The index servers the node uses, in order of preference.
    pub fn index_servers(&self) -> Vec<IndexServerAddress> {
        self.handle.index_servers()
    }

    /// Replaces the index servers; see [`NodeHandle::set_index_servers`].
    pub fn set_index_servers(
        &self,
        index_servers: Vec<IndexServerAddress>,
    ) -> Result<(), NodeError> {
        self.block_on(self.handle.set_index_servers(index_servers))
    }

    /// The node's friend card (key and relays, with a suggested `name`), for a QR code or link.
    pub fn friend_card(&self, name: &str) -> Result<FriendCard, NodeError> {
        self.handle.friend_card(name)
    }

    /// Adds a friend from its card (an `offst:F1…` URI); `name` overrides the card's name.
    pub fn add_friend_from_card(
        &self,
        card: &str,
        name: Option<&str>,
    ) -> Result<PublicKey, NodeError> {
        self.block_on(self.handle.add_friend_from_card(card, name))
    }

    /// Adds a friend (from its card: key and relays).
    pub fn add_friend(
        &self,
        public_key: PublicKey,
        name: &str,
        relays: Vec<RelayAddress>,
    ) -> Result<(), NodeError> {
        self.block_on(self.handle.add_friend(public_key, name, relays))
    }

    /// Renames a friend.
    pub fn set_friend_name(&self, friend: PublicKey, name: &str) -> Result<(), NodeError> {
        self.block_on(self.handle.set_friend_name(friend, name))
    }

    /// Removes a friend; without `force` only when nothing is owed either way.
    pub fn remove_friend(&self, friend: PublicKey, force: bool) -> Result<(), NodeError> {
        self.block_on(self.handle.remove_friend(friend, force))
    }

    /// Enables or disables a friend.
    pub fn set_friend_enabled(&self, friend: PublicKey, enabled: bool) -> Result<(), NodeError> {
        self.block_on(self.handle.set_friend_enabled(friend, enabled))
    }

    /// Sets how much `friend` may owe us in `currency` (adds the currency if new).
    pub fn set_limit(
        &self,
        friend: PublicKey,
        currency: &Currency,
        remote_max_debt: Credits,
    ) -> Result<(), NodeError> {
        self.block_on(self.handle.set_limit(friend, currency, remote_max_debt))
    }

    /// Opens or closes `currency` with `friend`; see [`NodeHandle::set_currency_open`].
    pub fn set_currency_open(
        &self,
        friend: PublicKey,
        currency: &Currency,
        open: bool,
    ) -> Result<(), NodeError> {
        self.block_on(self.handle.set_currency_open(friend, currency, open))
    }

    /// Stops using `currency` with `friend`; see [`NodeHandle::remove_currency`].
    pub fn remove_currency(&self, friend: PublicKey, currency: &Currency) -> Result<(), NodeError> {
        self.block_on(self.handle.remove_currency(friend, currency))
    }

    /// Accepts a friend's reset terms; see [`NodeHandle::accept_reset_terms`].
    pub fn accept_reset_terms(
        &self,
        friend: PublicKey,
        reset_token: Signature,
    ) -> Result<(), NodeError> {
        self.block_on(self.handle.accept_reset_terms(friend, reset_token))
    }

    /// Sets the fee we charge for forwarding requests that arrive from `friend` in `currency`
    /// (`None`: back to the default, [`FeeRate::DEFAULT`]). Index servers learn it with the
    /// next capacity report, so quotes and routes include it.
    pub fn set_fee_rate(
        &self,
        friend: PublicKey,
        currency: &Currency,
        rate: Option<FeeRate>,
    ) -> Result<(), NodeError> {
        self.block_on(self.handle.set_fee_rate(friend, currency, rate))
    }

    /// Cancels one of our open invoices: payments for it are refused from now on (any in
    /// flight are cancelled, nothing is collected).
    pub fn cancel_invoice(&self, invoice_id: InvoiceId) -> Result<(), NodeError> {
        self.block_on(self.handle.cancel_invoice(invoice_id))
    }

    /// What paying `invoice` (its `offst:I1…` URI) would take, without paying: the routes
    /// [`Node::pay`] would use (one route, or a split over up to `max_routes`) and the fees.
    /// Capacities change, so a later `pay` may route differently.
    pub fn quote(&self, invoice: &str, max_routes: u32) -> Result<Quote, NodeError> {
        self.block_on(self.handle.quote(invoice, max_routes))
    }

    /// The node's history: stored events matching `query`, handled or not, oldest first.
    pub fn history(&self, query: EventQuery) -> Result<Vec<StoredEvent>, NodeError> {
        self.block_on(self.handle.history(query))
    }

    /// Pays a friend directly. Returns the transfer's id; the friend's acceptance arrives as an
    /// event. Fails at once (nothing changed) when the amount is zero or over what the friend
    /// lets us owe.
    pub fn transfer(
        &self,
        friend: PublicKey,
        currency: &Currency,
        amount: Credits,
    ) -> Result<PaymentId, NodeError> {
        self.block_on(self.handle.transfer(friend, currency, amount))
    }

    /// Every friend with status, balances, limits, rates and any reset terms to accept.
    pub fn friends(&self) -> Result<Vec<FriendInfo>, NodeError> {
        self.block_on(self.handle.friends())
    }

    /// Asks the index servers for routes from this node to `destination` carrying `amount` in
    /// `currency` (fees on top), cheapest first. Needs a started node with index servers.
    pub fn find_routes(
        &self,
        destination: PublicKey,
        currency: &Currency,
        amount: Credits,
        options: QueryOptions,
    ) -> Result<Vec<Route>, NodeError> {
        self.block_on(
            self.handle
                .find_routes(destination, currency, amount, options),
        )
    }

    /// Creates and signs an invoice for `amount` of `currency`, payable for `valid_for`. Share
    /// its URI (`invoice.to_uri()`, an `offst:I1…` code); the node collects by itself once the
    /// whole amount arrives (a `payment_received` event).
    pub fn create_invoice(
        &self,
        currency: &Currency,
        amount: Credits,
        description: &str,
        valid_for: Duration,
    ) -> Result<Invoice, NodeError> {
        self.block_on(
            self.handle
                .create_invoice(currency, amount, description, valid_for),
        )
    }

    /// Pays an invoice (its `offst:I1…` URI) in one action: asks the index servers for routes
    /// (split over up to [`MAX_PAYMENT_ROUTES`] when no single route carries it) and sends the
    /// payment, paying at most `max_fees` in fees. Returns the payment's id at once; the outcome
    /// arrives as a `payment_succeeded` (with the receipt) or `payment_failed` event, and in
    /// [`Node::payment`].
    pub fn pay(&self, invoice: &str, max_fees: Credits) -> Result<PaymentId, NodeError> {
        self.block_on(self.handle.pay(invoice, max_fees))
    }

    /// Where a payment stands.
    pub fn payment(&self, payment_id: PaymentId) -> Result<Option<PaymentInfo>, NodeError> {
        self.block_on(self.handle.payment(payment_id))
    }

    /// Totals per currency: fees earned and paid, amounts received and sent.
    pub fn accounts(&self) -> Result<Vec<AccountInfo>, NodeError> {
        self.block_on(self.handle.accounts())
    }

    /// The oldest event the app has not marked handled, if any.
    pub fn next_event(&self) -> Result<Option<StoredEvent>, NodeError> {
        self.block_on(self.handle.next_event())
    }

    /// Waits up to `timeout` for an unhandled event.
    pub fn wait_next_event(&self, timeout: Duration) -> Result<Option<StoredEvent>, NodeError> {
        self.block_on(self.handle.wait_next_event(timeout))
    }

    /// Waits up to `timeout` for a payment to end; returns its last state either way (still
    /// `InProgress` after a timeout). `None` for an unknown payment.
    pub fn wait_payment(
        &self,
        payment_id: PaymentId,
        timeout: Duration,
    ) -> Result<Option<PaymentInfo>, NodeError> {
        self.block_on(self.handle.wait_payment(payment_id, timeout))
    }

    /// Marks an event handled: it leaves the queue (and stays in the history).
    pub fn event_handled(&self, id: u64) -> Result<bool, NodeError> {
        self.block_on(self.handle.event_handled(id))
    }

    /// Writes a consistent backup of the node's database to `path` (which must not exist).
    ///
    /// The backup holds the database only, not the identity key ([`KEY_FILE`] in the data
    /// directory): keeping the key is the app's job (on mobile it is protected by the platform
    /// keystore). [`Node::restore`] needs both.
    pub fn backup(&self, path: PathBuf) -> Result<(), NodeError> {
        self.block_on(self.handle.backup(path))
    }

    /// Restores a node into `data_dir` from a database `backup` made by [`Node::backup`] and,
    /// if given, the identity `key_file` (a copy of the old [`KEY_FILE`]; without it the node
    /// gets a new identity when opened, so friends will not recognise it). `data_dir` must be
    /// missing or empty: nothing is ever overwritten, and on failure nothing is left behind.
    /// Open the node with [`Node::open`] afterwards.
    pub fn restore(
        backup: &Path,
        data_dir: &Path,
        key_file: Option<&Path>,
    ) -> Result<(), NodeError> {
        let io_error = |path: &Path, source: std::io::Error| {
            NodeError::Store(offst_store::StoreError::Io {
                path: path.to_owned(),
                source,
            })
        };
        if !backup.is_file() {
            return Err(NodeError::InvalidInput(format!(
                "no backup file at {}: pass the path of a file made by backup()",
                backup.display()
            )));
        }
        if let Some(key_file) = key_file {
            if !key_file.is_file() {
                return Err(NodeError::InvalidInput(format!(
                    "no key file at {}: pass the copy of the node's {KEY_FILE}",
                    key_file.display()
                )));
            }
        }
        std::fs::create_dir_all(data_dir).map_err(|err| io_error(data_dir, err))?;
        let mut entries = std::fs::read_dir(data_dir).map_err(|err| io_error(data_dir, err))?;
        if entries.next().is_some() {
            return Err(NodeError::InvalidInput(format!(
                "{} is not empty: restore into a new, empty directory",
                data_dir.display()
            )));
        }
        let key_target = data_dir.join(KEY_FILE);
        let result = (|| {
            if let Some(key_file) = key_file {
                let key = std::fs::read(key_file).map_err(|err| io_error(key_file, err))?;
                write_new_private(&key_target, &key).map_err(|err| io_error(&key_target, err))?;
            }
            drop(SqliteStore::restore(backup, data_dir)?);
            Ok(())
        })();
        if result.is_err() {
            // Leave the directory as it was: empty.
            if let Ok(entries) = std::fs::read_dir(data_dir) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        result
    }
}

/// Parses and checks an invoice URI: a valid seller signature, not expired.
fn parse_invoice(invoice: &str) -> Result<Invoice, NodeError> {
    let invoice: Invoice = invoice
        .parse()
        .map_err(|err: offst_proto::uri::UriError| NodeError::InvalidInput(err.to_string()))?;
    offst_credit::payment::verify_invoice(&invoice)
        .map_err(|err| NodeError::InvalidInput(err.to_string()))?;
    if invoice.expires_at <= now().0 {
        return Err(NodeError::InvalidInput(
            "the invoice has expired: ask the seller for a new one".into(),
        ));
    }
    Ok(invoice)
}

/// Creates `path` (failing if it exists) readable by its owner only, with `bytes`.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What paying an invoice would take (see [`Node::quote`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The routes, cheapest first; their amounts add up to the invoice's.
    pub routes: Vec<Route>,
    /// The fees over all routes: what the buyer pays on top of the invoice's amount.
    pub total_fees: Credits,
}

impl Drop for Node {
    fn drop(&mut self) {
        let (reply, _) = oneshot::channel();
        let _ = self.requests.try_send(Request::Shutdown(reply));
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(STOP_TIMEOUT);
        }
    }
}

/// Checks that `identity` is the key in `data_dir` (for tools that inspect a stopped node).
pub fn read_identity(
    data_dir: &std::path::Path,
    secret: &KeySecret,
) -> Result<Identity, NodeError> {
    let protection = match secret {
        KeySecret::Plain => KeyProtection::Plain,
        KeySecret::Passphrase(passphrase) => KeyProtection::Passphrase(passphrase),
        KeySecret::AppSecret(secret) => KeyProtection::AppSecret(secret),
    };
    Ok(keyfile::read(&data_dir.join(KEY_FILE), protection)?)
}
