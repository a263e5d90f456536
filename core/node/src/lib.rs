//! The Offst node runtime.
//!
//! [`Node`] drives the sans-I/O credit state machine (`offst_credit`) with SQLite storage
//! (`offst_store`) and relay networking (`offst_net`) on a tokio runtime it owns, behind a
//! synchronous API that the FFI layer wraps one-to-one.
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

mod driver;
pub mod error;
mod events;
mod links;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use offst_credit::PaymentStatus;
use offst_credit::{Command, CreditConfig, Timestamp};
use offst_crypto::keyfile::{self, KeyProtection};
use offst_crypto::Identity;
use offst_net::relay_client::RelayClientConfig;
use offst_proto::card::FriendCard;
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{
    Balance, Credits, Currency, InvoiceId, PaymentId, PublicKey, RelayAddress, Text,
};
use offst_store::{SqliteStore, Store};
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, oneshot, Notify};

pub use error::NodeError;
pub use offst_index::client::{IndexServerAddress, QueryOptions};
pub use offst_proto::index::FeeRate;
pub use offst_proto::index::Route;
pub use offst_store::{EventQuery, NewEvent, StoredEvent};

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
        }
    }
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
    /// Per-currency balances and limits (from the last token both signed).
    pub currencies: Vec<CurrencyInfo>,
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

/// A running (or stopped) Offst node. Methods block the calling thread briefly; call them from
/// any thread but not from inside a tokio runtime.
pub struct Node {
    public_key: PublicKey,
    relays: Vec<RelayAddress>,
    requests: mpsc::Sender<Request>,
    events_changed: Arc<Notify>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("public_key", &self.public_key)
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("offst-node")
            .enable_all()
            .build()
            .map_err(|err| NodeError::Internal(format!("starting the runtime: {err}")))?;
        let events_changed = Arc::new(Notify::new());
        let (requests, receiver) = mpsc::channel(REQUEST_QUEUE_LEN);
        let public_key = identity.public_key();
        let relays = config.relays.clone();
        let driver = Driver::new(
            identity,
            config,
            store,
            state,
            events_changed.clone(),
            requests.clone(),
        );
        runtime.spawn(driver.run(receiver));
        Ok(Node {
            public_key,
            relays,
            requests,
            events_changed,
            runtime: Some(runtime),
        })
    }

    fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, NodeError> {
        let (reply, response) = oneshot::channel();
        self.requests
            .blocking_send(make(reply))
            .map_err(|_| NodeError::NotRunning)?;
        response.blocking_recv().map_err(|_| NodeError::NotRunning)
    }

    /// Starts networking: listens on the node's relays and links to every enabled friend.
    pub fn start(&self) -> Result<(), NodeError> {
        self.call(Request::Start)
    }

    /// Stops networking (returns within [`STOP_TIMEOUT`]); the state stays open and usable.
    pub fn stop(&self) -> Result<(), NodeError> {
        self.call(Request::Stop)
    }

    /// The node's identity.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The relays the node listens on.
    pub fn relays(&self) -> &[RelayAddress] {
        &self.relays
    }

    /// The node's friend card (key and relays, with a suggested `name`), for a QR code or link.
    pub fn friend_card(&self, name: &str) -> Result<FriendCard, NodeError> {
        let name = Text::new(name).map_err(|err| NodeError::InvalidInput(err.to_string()))?;
        FriendCard::new(self.public_key, name, self.relays.clone())
            .map_err(|err| NodeError::InvalidInput(err.to_string()))
    }

    /// Adds a friend from its card (an `offst:F1…` URI); `name` overrides the card's name.
    pub fn add_friend_from_card(
        &self,
        card: &str,
        name: Option<&str>,
    ) -> Result<PublicKey, NodeError> {
        let card: FriendCard = card
            .parse()
            .map_err(|err: offst_proto::uri::UriError| NodeError::InvalidInput(err.to_string()))?;
        let name = name.unwrap_or(card.name.as_str()).to_owned();
        self.add_friend(card.public_key, &name, card.relays)?;
        Ok(card.public_key)
    }

    fn command(&self, command: Command) -> Result<(), NodeError> {
        self.call(|reply| Request::Command(command, reply))?
    }

    /// Adds a friend (from its card: key and relays).
    pub fn add_friend(
        &self,
        public_key: PublicKey,
        name: &str,
        relays: Vec<RelayAddress>,
    ) -> Result<(), NodeError> {
        let name = Text::new(name).map_err(|err| NodeError::InvalidInput(err.to_string()))?;
        self.command(Command::AddFriend {
            public_key,
            name,
            relays,
        })
    }

    /// Removes a friend; without `force` only when nothing is owed either way.
    pub fn remove_friend(&self, friend: PublicKey, force: bool) -> Result<(), NodeError> {
        self.command(Command::RemoveFriend { friend, force })
    }

    /// Enables or disables a friend.
    pub fn set_friend_enabled(&self, friend: PublicKey, enabled: bool) -> Result<(), NodeError> {
        self.command(Command::SetFriendEnabled { friend, enabled })
    }

    /// Sets how much `friend` may owe us in `currency` (adds the currency if new).
    pub fn set_limit(
        &self,
        friend: PublicKey,
        currency: &Currency,
        remote_max_debt: Credits,
    ) -> Result<(), NodeError> {
        self.command(Command::SetCurrencyLimit {
            friend,
            currency: currency.clone(),
            remote_max_debt,
        })
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
        if let Some(rate) = rate {
            if rate.proportional_ppm > offst_proto::index::PPM_ONE {
                return Err(NodeError::InvalidInput(format!(
                    "the proportional fee must be at most {} parts per million (100%)",
                    offst_proto::index::PPM_ONE
                )));
            }
        }
        self.command(Command::SetFeeRate {
            friend,
            currency: currency.clone(),
            rate: rate.map(|rate| offst_credit::FeeRate {
                per_million: rate.proportional_ppm,
                flat: rate.flat,
            }),
        })
    }

    /// Cancels one of our open invoices: payments for it are refused from now on (any in
    /// flight are cancelled, nothing is collected).
    pub fn cancel_invoice(&self, invoice_id: InvoiceId) -> Result<(), NodeError> {
        self.command(Command::CancelInvoice { invoice_id })
    }

    /// What paying `invoice` (its `offst:I1…` URI) would take, without paying: the routes
    /// [`Node::pay`] would use (one route, or a split over up to `max_routes`) and the fees.
    /// Capacities change, so a later `pay` may route differently.
    pub fn quote(&self, invoice: &str, max_routes: u32) -> Result<Quote, NodeError> {
        let invoice = parse_invoice(invoice)?;
        if max_routes == 0 {
            return Err(NodeError::InvalidInput(
                "max_routes must be at least 1".into(),
            ));
        }
        let routes = self.call(|reply| Request::Quote {
            invoice: Box::new(invoice),
            max_routes,
            reply,
        })??;
        let total_fees = routes
            .iter()
            .try_fold(Credits::ZERO, |sum, route| sum.checked_add(route.fees))
            .ok_or_else(|| NodeError::Routing("the route fees overflow".into()))?;
        Ok(Quote { routes, total_fees })
    }

    /// The node's history: stored events matching `query`, handled or not, oldest first.
    pub fn history(&self, query: EventQuery) -> Result<Vec<StoredEvent>, NodeError> {
        self.call(|reply| Request::History(query, reply))?
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
        if amount == Credits::ZERO {
            return Err(NodeError::InvalidInput(
                "the amount must be more than 0".into(),
            ));
        }
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let transfer_id = PaymentId::from_bytes(id);
        self.command(Command::Transfer {
            friend,
            currency: currency.clone(),
            amount,
            transfer_id,
        })?;
        Ok(transfer_id)
    }

    /// Every friend with status, balances and limits.
    pub fn friends(&self) -> Result<Vec<FriendInfo>, NodeError> {
        self.call(Request::Friends)
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
        self.call(|reply| Request::Routes {
            destination,
            currency: currency.clone(),
            amount,
            options,
            reply,
        })?
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
        if amount == Credits::ZERO {
            return Err(NodeError::InvalidInput(
                "the amount must be more than 0".into(),
            ));
        }
        let description =
            Text::new(description).map_err(|err| NodeError::InvalidInput(err.to_string()))?;
        let valid_ms = u64::try_from(valid_for.as_millis()).unwrap_or(u64::MAX);
        self.call(|reply| Request::CreateInvoice {
            command: Command::CreateInvoice {
                currency: currency.clone(),
                amount,
                expires_at: Timestamp(now().0.saturating_add(valid_ms)),
                description,
                relays: self.relays.clone(),
            },
            reply,
        })?
    }

    /// Pays an invoice (its `offst:I1…` URI) in one action: asks the index servers for routes
    /// (split over up to [`MAX_PAYMENT_ROUTES`] when no single route carries it) and sends the
    /// payment, paying at most `max_fees` in fees. Returns the payment's id at once; the outcome
    /// arrives as a `payment_succeeded` (with the receipt) or `payment_failed` event, and in
    /// [`Node::payment`].
    pub fn pay(&self, invoice: &str, max_fees: Credits) -> Result<PaymentId, NodeError> {
        let invoice = parse_invoice(invoice)?;
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let payment_id = PaymentId::from_bytes(id);
        self.call(|reply| Request::Pay {
            payment_id,
            invoice: Box::new(invoice),
            max_fees,
            reply,
        })??;
        Ok(payment_id)
    }

    /// Where a payment stands.
    pub fn payment(&self, payment_id: PaymentId) -> Result<Option<PaymentInfo>, NodeError> {
        self.call(|reply| Request::Payment(payment_id, reply))
    }

    /// Totals per currency: fees earned and paid, amounts received and sent.
    pub fn accounts(&self) -> Result<Vec<AccountInfo>, NodeError> {
        self.call(Request::Accounts)
    }

    /// The oldest event the app has not marked handled, if any.
    pub fn next_event(&self) -> Result<Option<StoredEvent>, NodeError> {
        self.call(Request::NextEvent)?
    }

    /// Waits up to `timeout` for an unhandled event.
    pub fn wait_next_event(&self, timeout: Duration) -> Result<Option<StoredEvent>, NodeError> {
        self.wait_for(timeout, || self.next_event())
    }

    /// Waits up to `timeout` for a payment to end; returns its last state either way (still
    /// `InProgress` after a timeout). `None` for an unknown payment.
    pub fn wait_payment(
        &self,
        payment_id: PaymentId,
        timeout: Duration,
    ) -> Result<Option<PaymentInfo>, NodeError> {
        let mut last = None;
        self.wait_for(timeout, || {
            last = self.payment(payment_id)?;
            Ok(last
                .as_ref()
                .filter(|info| info.status != PaymentStatus::InProgress)
                .map(|_| ()))
        })?;
        Ok(last)
    }

    /// Calls `check` until it gives a value or `timeout` passes, sleeping between calls until
    /// the driver commits new events (a payment ending, a message arriving… always records one).
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Result<Option<T>, NodeError>,
    ) -> Result<Option<T>, NodeError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a commit between the two is not missed.
            let notified = self.events_changed.notified();
            if let Some(value) = check()? {
                return Ok(Some(value));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let runtime = self.runtime.as_ref().ok_or(NodeError::NotRunning)?;
            // The timer must be created inside the runtime (it needs its time driver).
            let _ = runtime.block_on(async { tokio::time::timeout(left, notified).await });
        }
    }

    /// Marks an event handled: it leaves the queue (and stays in the history).
    pub fn event_handled(&self, id: u64) -> Result<bool, NodeError> {
        self.call(|reply| Request::EventHandled(id, reply))?
    }

    /// Writes a consistent backup of the node's database to `path` (which must not exist).
    ///
    /// The backup holds the database only, not the identity key ([`KEY_FILE`] in the data
    /// directory): keeping the key is the app's job (on mobile it is protected by the platform
    /// keystore). [`Node::restore`] needs both.
    pub fn backup(&self, path: PathBuf) -> Result<(), NodeError> {
        self.call(|reply| Request::Backup(path, reply))?
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
