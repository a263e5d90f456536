//! The Offst mobile library, exported with uniffi to Kotlin (Android), Swift (iOS) and Python.
//!
//! A thin wrapper over [`offst_node::Node`]: every method maps one-to-one, values cross the
//! boundary in forms every language has (keys in base64url, amounts as decimal strings because
//! credits are 128-bit), and every failure is one flat [`OffstError`] whose message says what to
//! do. uniffi catches Rust panics at the boundary and raises them as internal errors, so a bug
//! here never kills the app; they are also logged.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::PathBuf;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use offst_credit::{CommandError, OperationError, PaymentStatus};
use offst_node::{FriendStatus, KeySecret, Node, NodeConfig, NodeError};
use offst_proto::card::FriendCard;
use offst_proto::relay::RelayCard;
use offst_proto::{Credits, Currency, PublicKey};

uniffi::setup_scaffolding!();

/// Every error the library reports. The message says what went wrong and what to do.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum OffstError {
    /// Bad input: a malformed key, amount, currency, name or card.
    #[error("{0}")]
    InvalidInput(String),
    /// No friend with that key.
    #[error("{0}")]
    UnknownFriend(String),
    /// The payment does not fit the credit the friend extends to us.
    #[error("{0}")]
    InsufficientCredit(String),
    /// The operation is not allowed in the current state (e.g. an inconsistent channel).
    #[error("{0}")]
    NotAllowed(String),
    /// No route to the payee: no index server answered, or none knows a route with capacity.
    #[error("{0}")]
    NoRoute(String),
    /// Another node uses the data directory.
    #[error("{0}")]
    DataDirInUse(String),
    /// The identity key could not be read (wrong secret, damaged file).
    #[error("{0}")]
    Key(String),
    /// The database could not be opened or written.
    #[error("{0}")]
    Storage(String),
    /// The node is stopped or closing.
    #[error("{0}")]
    NotRunning(String),
    /// A bug or an unexpected failure; the message has details for a report.
    #[error("{0}")]
    Internal(String),
}

impl From<NodeError> for OffstError {
    fn from(err: NodeError) -> Self {
        use offst_node::error::NodeError as E;
        let message = err.to_string();
        match err {
            E::InvalidInput(_) => OffstError::InvalidInput(message),
            E::DataDirInUse => OffstError::DataDirInUse(message),
            E::Key(_) => OffstError::Key(message),
            E::Store(_) => OffstError::Storage(message),
            E::NotRunning => OffstError::NotRunning(message),
            E::Routing(_) => OffstError::NoRoute(message),
            E::Internal(_) => OffstError::Internal(message),
            E::Command(command) => classify(&command, message),
        }
    }
}

/// Sorts a credit-layer refusal into the app's categories.
fn classify(error: &CommandError, message: String) -> OffstError {
    match error {
        CommandError::UnknownFriend(_) => OffstError::UnknownFriend(message),
        CommandError::Operation(OperationError::OverLimit { .. }) => {
            OffstError::InsufficientCredit(message)
        }
        CommandError::Operation(_)
        | CommandError::IsSelf
        | CommandError::FriendExists(_)
        | CommandError::TooManyFriends
        | CommandError::TooManyRelays
        | CommandError::InvalidInvoice(_)
        | CommandError::InvoiceExpired
        | CommandError::InvalidRoutes(_)
        | CommandError::PaymentExists => OffstError::InvalidInput(message),
        CommandError::FriendDisabled
        | CommandError::ChannelInconsistent
        | CommandError::QueueFull
        | CommandError::BalanceNotZero
        | CommandError::NoSuchResetTerms
        | CommandError::DuplicatePayment
        | CommandError::UnknownInvoice
        | CommandError::TooManyPayments => OffstError::NotAllowed(message),
    }
}

fn parse_key(text: &str) -> Result<PublicKey, OffstError> {
    text.parse()
        .map_err(|err| OffstError::InvalidInput(format!("invalid public key: {err}")))
}

fn parse_currency(text: &str) -> Result<Currency, OffstError> {
    Currency::new(text).map_err(|err| OffstError::InvalidInput(err.to_string()))
}

fn parse_amount(text: &str) -> Result<Credits, OffstError> {
    let value: u128 = text.trim().parse().map_err(|_| {
        OffstError::InvalidInput(format!(
            "invalid amount {text:?}: write a whole number of credits, like \"25\""
        ))
    })?;
    if value > Credits::MAX.0 {
        return Err(OffstError::InvalidInput("the amount is too large".into()));
    }
    Ok(Credits(value))
}

/// How to open a node.
#[derive(Debug, Clone, uniffi::Record)]
pub struct OffstConfig {
    /// The app-private directory for the node's key and database.
    pub data_dir: String,
    /// Relay cards (`offst-relay:<key>@host:port`) the node listens on.
    pub relays: Vec<String>,
    /// A secret from the platform keystore (≥ 16 bytes) that encrypts the identity key at rest;
    /// `None` stores it unencrypted (protected by the app sandbox only).
    pub key_secret: Option<Vec<u8>>,
    /// Index servers as `KEY@HOST:PORT`, in order of preference (routes for payments).
    pub index_servers: Vec<String>,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OffstPaymentStatus {
    /// On its way.
    InProgress,
    /// Paid: the receipt is available.
    Succeeded,
    /// Cancelled: nothing was paid and all frozen credit was released.
    Failed,
}

/// A payment, as the buyer sees it. Amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstPayment {
    /// The payment's id.
    pub payment_id: String,
    /// Its status.
    pub status: OffstPaymentStatus,
    /// What the seller receives.
    pub amount: String,
    /// Fees paid to mediators.
    pub fees: String,
    /// Number of routes the payment was split over.
    pub routes: u32,
    /// The receipt (base64url), once succeeded: proof of payment anyone can check with
    /// `verify_receipt`.
    pub receipt: Option<String>,
}

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstReceipt {
    /// The invoice paid (its `offst:I1…` URI).
    pub invoice: String,
    /// The seller's public key.
    pub seller: String,
    /// The currency.
    pub currency: String,
    /// The amount the seller received.
    pub amount: String,
    /// The invoice's description.
    pub description: String,
}

fn parse_index_server(text: &str) -> Result<offst_node::IndexServerAddress, OffstError> {
    let invalid = || {
        OffstError::InvalidInput(format!(
            "invalid index server {text:?}: write it as KEY@HOST:PORT (see `stindex card`)"
        ))
    };
    let (key, address) = text.trim().split_once('@').ok_or_else(invalid)?;
    let public_key = key.parse().map_err(|_| invalid())?;
    offst_proto::NetAddress::new(address).map_err(|_| invalid())?;
    Ok(offst_node::IndexServerAddress {
        public_key,
        address: address.to_owned(),
    })
}

fn payment_from(info: offst_node::PaymentInfo) -> OffstPayment {
    use base64::Engine as _;
    OffstPayment {
        payment_id: info.payment_id.to_string(),
        status: match info.status {
            PaymentStatus::InProgress => OffstPaymentStatus::InProgress,
            PaymentStatus::Succeeded => OffstPaymentStatus::Succeeded,
            PaymentStatus::Cancelled => OffstPaymentStatus::Failed,
        },
        amount: info.amount.to_string(),
        fees: info.fees.to_string(),
        routes: u32::try_from(info.routes).unwrap_or(u32::MAX),
        receipt: info.receipt.map(|receipt| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(receipt.to_bytes())
        }),
    }
}

/// Longest time `pay` waits for a payment to end (requests expire well before).
const PAY_TIMEOUT: Duration = Duration::from_secs(120);

/// A friend's channel state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OffstFriendStatus {
    /// Disabled by the user.
    Disabled,
    /// Not connected right now.
    Offline,
    /// Connected; payments flow.
    Online,
    /// The channel needs its reset terms accepted.
    Inconsistent,
}

/// One currency with one friend, seen from our side. Amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstCurrencyBalance {
    /// The currency.
    pub currency: String,
    /// Positive: the friend owes us; negative: we owe the friend.
    pub balance: String,
    /// The most we may owe the friend (the friend's limit for us).
    pub local_max_debt: String,
    /// The most the friend may owe us (our limit for the friend).
    pub remote_max_debt: String,
    /// Credit frozen by our payments in flight.
    pub local_pending_debt: String,
    /// Credit frozen by the friend's payments in flight.
    pub remote_pending_debt: String,
}

/// A friend.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstFriend {
    /// The friend's public key (base64url).
    pub public_key: String,
    /// The name we gave it.
    pub name: String,
    /// Connection and channel state.
    pub status: OffstFriendStatus,
    /// Balances and limits per currency.
    pub currencies: Vec<OffstCurrencyBalance>,
}

/// An event from the node's persisted queue (it stays until marked handled).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstEvent {
    /// Pass to `event_handled` once processed.
    pub id: u64,
    /// When, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// `transfer_received`, `transfer_sent`, `transfer_failed`, `payment_succeeded`,
    /// `payment_failed`, `payment_received`, `friend_online`, `friend_offline`,
    /// `channel_inconsistent`, `channel_reset`, ….
    pub kind: String,
    /// The friend concerned, if any.
    pub friend: Option<String>,
    /// A status, if any (`succeeded`, `sent`, `failed`).
    pub status: Option<String>,
    /// Details as a JSON object (amounts as strings).
    pub payload_json: String,
}

/// A parsed friend card.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstFriendCard {
    /// The node's public key.
    pub public_key: String,
    /// The name it suggests.
    pub name: String,
    /// Its relays, as relay cards.
    pub relays: Vec<String>,
}

fn event_from(stored: offst_node::StoredEvent) -> OffstEvent {
    OffstEvent {
        id: stored.id,
        timestamp_ms: stored.event.timestamp_ms,
        kind: stored.event.kind,
        friend: stored.event.friend.map(|key| key.to_string()),
        status: stored.event.status,
        payload_json: stored.event.payload.to_string(),
    }
}

/// An Offst node inside the app.
#[derive(uniffi::Object)]
pub struct OffstNode {
    node: Arc<Node>,
}

#[uniffi::export]
impl OffstNode {
    /// Opens the node in `config.data_dir` (creating its identity on first use). Fails with
    /// `DataDirInUse` if another node has the directory open.
    #[uniffi::constructor]
    pub fn open(config: OffstConfig) -> Result<Arc<OffstNode>, OffstError> {
        let relays = config
            .relays
            .iter()
            .map(|text| {
                text.parse::<RelayCard>()
                    .map(|card| card.0)
                    .map_err(|err| OffstError::InvalidInput(format!("invalid relay card: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let index_servers = config
            .index_servers
            .iter()
            .map(|text| parse_index_server(text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut node_config = NodeConfig::new(PathBuf::from(config.data_dir), relays);
        node_config.index_servers = index_servers;
        if let Some(secret) = config.key_secret {
            node_config.key_secret = KeySecret::AppSecret(secret);
        }
        let node = Node::open(node_config)?;
        Ok(Arc::new(OffstNode {
            node: Arc::new(node),
        }))
    }

    /// Starts networking (listening on relays, linking to friends). Quick.
    pub fn start(&self) -> Result<(), OffstError> {
        Ok(self.node.start()?)
    }

    /// Stops networking within a second; state stays open. Call when the app goes to the
    /// background.
    pub fn stop(&self) -> Result<(), OffstError> {
        Ok(self.node.stop()?)
    }

    /// The node's public key (base64url).
    pub fn public_key(&self) -> String {
        self.node.public_key().to_string()
    }

    /// The node's friend card as an `offst:` URI, for a QR code or a link.
    pub fn friend_card(&self, name: String) -> Result<String, OffstError> {
        Ok(self.node.friend_card(&name)?.to_uri())
    }

    /// Adds a friend from its card; `name` overrides the card's. Returns the friend's key.
    pub fn add_friend(&self, card: String, name: Option<String>) -> Result<String, OffstError> {
        Ok(self
            .node
            .add_friend_from_card(&card, name.as_deref())?
            .to_string())
    }

    /// Removes a friend; without `force`, only when nothing is owed either way.
    pub fn remove_friend(&self, friend: String, force: bool) -> Result<(), OffstError> {
        Ok(self.node.remove_friend(parse_key(&friend)?, force)?)
    }

    /// Enables or disables a friend.
    pub fn set_friend_enabled(&self, friend: String, enabled: bool) -> Result<(), OffstError> {
        Ok(self.node.set_friend_enabled(parse_key(&friend)?, enabled)?)
    }

    /// Sets how much `friend` may owe us in `currency` (a decimal amount).
    pub fn set_limit(
        &self,
        friend: String,
        currency: String,
        amount: String,
    ) -> Result<(), OffstError> {
        Ok(self.node.set_limit(
            parse_key(&friend)?,
            &parse_currency(&currency)?,
            parse_amount(&amount)?,
        )?)
    }

    /// Pays a friend directly; returns the transfer id. The friend's acceptance arrives as a
    /// `transfer_received` event on its side.
    pub fn transfer(
        &self,
        friend: String,
        currency: String,
        amount: String,
    ) -> Result<String, OffstError> {
        Ok(self
            .node
            .transfer(
                parse_key(&friend)?,
                &parse_currency(&currency)?,
                parse_amount(&amount)?,
            )?
            .to_string())
    }

    /// Creates an invoice for `amount` of `currency`, payable for `valid_for_secs` seconds;
    /// returns its `offst:I1…` URI for a QR code or link. The node collects by itself when the
    /// buyer pays (a `payment_received` event).
    pub fn create_invoice(
        &self,
        currency: String,
        amount: String,
        description: String,
        valid_for_secs: u64,
    ) -> Result<String, OffstError> {
        Ok(self
            .node
            .create_invoice(
                &parse_currency(&currency)?,
                parse_amount(&amount)?,
                &description,
                Duration::from_secs(valid_for_secs),
            )?
            .to_uri())
    }

    /// Pays an invoice (its `offst:I1…` URI) in one action — routes from the index servers,
    /// over mediators, at most `max_fees` in fees — and returns when the payment has ended
    /// (a suspend function in Kotlin, async in Swift and Python): `Succeeded` with a receipt,
    /// or `Failed` with nothing paid.
    pub async fn pay(&self, invoice: String, max_fees: String) -> Result<OffstPayment, OffstError> {
        let max_fees = parse_amount(&max_fees)?;
        let node = self.node.clone();
        let (reply, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("offst-pay".into())
            .spawn(move || {
                let outcome = (|| {
                    let payment_id = node.pay(&invoice, max_fees)?;
                    node.wait_payment(payment_id, PAY_TIMEOUT)?
                        .ok_or_else(|| NodeError::Internal("the payment record disappeared".into()))
                })();
                let _ = reply.send(outcome);
            })
            .map_err(|err| OffstError::Internal(format!("spawning the payment: {err}")))?;
        let info: Result<offst_node::PaymentInfo, NodeError> = result
            .await
            .map_err(|_| OffstError::Internal("the payment task stopped".into()))?;
        Ok(payment_from(info?))
    }

    /// Where a payment stands (`None` for an unknown id).
    pub fn payment(&self, payment_id: String) -> Result<Option<OffstPayment>, OffstError> {
        let id = payment_id
            .parse()
            .map_err(|err| OffstError::InvalidInput(format!("invalid payment id: {err}")))?;
        Ok(self.node.payment(id)?.map(payment_from))
    }

    /// Fees earned and paid, amounts received and sent, per currency, as
    /// `(currency, fees_earned, fees_paid, received, sent)` decimal strings.
    pub fn accounts(&self) -> Result<Vec<OffstAccount>, OffstError> {
        Ok(self
            .node
            .accounts()?
            .into_iter()
            .map(|a| OffstAccount {
                currency: a.currency.to_string(),
                fees_earned: a.fees_earned.to_string(),
                fees_paid: a.fees_paid.to_string(),
                received: a.received.to_string(),
                sent: a.sent.to_string(),
            })
            .collect())
    }

    /// Every friend with status, balances and limits.
    pub fn friends(&self) -> Result<Vec<OffstFriend>, OffstError> {
        Ok(self
            .node
            .friends()?
            .into_iter()
            .map(|friend| OffstFriend {
                public_key: friend.public_key.to_string(),
                name: friend.name.to_string(),
                status: match friend.status {
                    FriendStatus::Disabled => OffstFriendStatus::Disabled,
                    FriendStatus::Offline => OffstFriendStatus::Offline,
                    FriendStatus::Online => OffstFriendStatus::Online,
                    FriendStatus::Inconsistent => OffstFriendStatus::Inconsistent,
                },
                currencies: friend
                    .currencies
                    .into_iter()
                    .map(|c| OffstCurrencyBalance {
                        currency: c.currency.to_string(),
                        balance: c.balance.to_string(),
                        local_max_debt: c.local_max_debt.to_string(),
                        remote_max_debt: c.remote_max_debt.to_string(),
                        local_pending_debt: c.local_pending_debt.to_string(),
                        remote_pending_debt: c.remote_pending_debt.to_string(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// The oldest unhandled event, if any.
    pub fn next_event(&self) -> Result<Option<OffstEvent>, OffstError> {
        Ok(self.node.next_event()?.map(event_from))
    }

    /// Waits up to `timeout_ms` for an unhandled event (a suspend function in Kotlin, async in
    /// Swift and Python); the caller's thread is not blocked.
    pub async fn wait_next_event(&self, timeout_ms: u64) -> Result<Option<OffstEvent>, OffstError> {
        let node = self.node.clone();
        let (reply, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("offst-wait-event".into())
            .spawn(move || {
                let _ = reply.send(node.wait_next_event(Duration::from_millis(timeout_ms)));
            })
            .map_err(|err| OffstError::Internal(format!("spawning a waiter: {err}")))?;
        let event = result
            .await
            .map_err(|_| OffstError::Internal("the waiter stopped".into()))??;
        Ok(event.map(event_from))
    }

    /// Marks an event handled; returns whether it was unhandled.
    pub fn event_handled(&self, id: u64) -> Result<bool, OffstError> {
        Ok(self.node.event_handled(id)?)
    }

    /// Writes a backup of the node's database to `path` (which must not exist). The backup
    /// does not hold the identity key: keep the node's key file (`node.key` in the data
    /// directory, encrypted with the keystore secret) yourself; `restore_node` needs both.
    pub fn backup(&self, path: String) -> Result<(), OffstError> {
        Ok(self.node.backup(PathBuf::from(path))?)
    }

    /// Sets the fee we charge for forwarding payments that arrive from `friend` in `currency`:
    /// `flat` credits (a decimal amount) plus `proportional_ppm` millionths of the amount.
    pub fn set_fee_rate(
        &self,
        friend: String,
        currency: String,
        flat: String,
        proportional_ppm: u32,
    ) -> Result<(), OffstError> {
        Ok(self.node.set_fee_rate(
            parse_key(&friend)?,
            &parse_currency(&currency)?,
            Some(offst_node::FeeRate {
                flat: parse_amount(&flat)?,
                proportional_ppm,
            }),
        )?)
    }

    /// Puts the fee for payments arriving from `friend` in `currency` back to the default.
    pub fn clear_fee_rate(&self, friend: String, currency: String) -> Result<(), OffstError> {
        Ok(self
            .node
            .set_fee_rate(parse_key(&friend)?, &parse_currency(&currency)?, None)?)
    }

    /// Cancels one of our invoices (its `offst:I1…` URI or its id): payments for it fail from
    /// now on and nothing is collected.
    pub fn cancel_invoice(&self, invoice: String) -> Result<(), OffstError> {
        let text = invoice.trim();
        let invoice_id = if text.to_ascii_lowercase().starts_with("offst:") {
            text.parse::<offst_proto::payment::Invoice>()
                .map_err(|err| OffstError::InvalidInput(format!("invalid invoice: {err}")))?
                .invoice_id
        } else {
            text.parse().map_err(|err| {
                OffstError::InvalidInput(format!(
                    "invalid invoice id: {err}; pass the invoice's offst:I1… URI or its id"
                ))
            })?
        };
        Ok(self.node.cancel_invoice(invoice_id)?)
    }

    /// What paying `invoice` would take, without paying: the routes (split over several when
    /// one does not carry the amount) and the total fees. Async: it asks the index servers.
    pub async fn quote(&self, invoice: String) -> Result<OffstQuote, OffstError> {
        let node = self.node.clone();
        let (reply, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("offst-quote".into())
            .spawn(move || {
                let _ = reply.send(node.quote(&invoice, offst_node::MAX_PAYMENT_ROUTES));
            })
            .map_err(|err| OffstError::Internal(format!("spawning the quote: {err}")))?;
        let quote = result
            .await
            .map_err(|_| OffstError::Internal("the quote task stopped".into()))??;
        Ok(OffstQuote {
            routes: quote
                .routes
                .into_iter()
                .map(|route| OffstRoute {
                    nodes: route.nodes.iter().map(ToString::to_string).collect(),
                    amount: route.amount.to_string(),
                    fees: route.fees.to_string(),
                })
                .collect(),
            total_fees: quote.total_fees.to_string(),
        })
    }

    /// The node's history: stored events, handled or not, oldest first; only those at or after
    /// `since_ms` (Unix ms) if given, at most `limit` (0: as many as allowed).
    pub fn history(
        &self,
        since_ms: Option<u64>,
        limit: u32,
    ) -> Result<Vec<OffstEvent>, OffstError> {
        let query = offst_node::EventQuery {
            since_ms,
            limit: (limit > 0).then(|| usize::try_from(limit).unwrap_or(usize::MAX)),
            ..offst_node::EventQuery::default()
        };
        Ok(self
            .node
            .history(query)?
            .into_iter()
            .map(event_from)
            .collect())
    }
}

/// One route of a quote. Amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstRoute {
    /// Public keys from the buyer (first) to the seller (last).
    pub nodes: Vec<String>,
    /// What the seller receives over this route.
    pub amount: String,
    /// What the mediators on this route charge.
    pub fees: String,
}

/// What paying an invoice would take.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstQuote {
    /// The routes; their amounts add up to the invoice's.
    pub routes: Vec<OffstRoute>,
    /// The fees over all routes, paid on top of the invoice's amount.
    pub total_fees: String,
}

/// Restores a node into `data_dir` (missing or empty: nothing is overwritten) from a backup
/// made by `OffstNode.backup` and the node's key file the app kept (`key_file`; without it the
/// node gets a new identity). Then open it with `OffstNode.open`.
#[uniffi::export]
pub fn restore_node(
    backup_path: String,
    data_dir: String,
    key_file: Option<String>,
) -> Result<(), OffstError> {
    Ok(Node::restore(
        std::path::Path::new(&backup_path),
        std::path::Path::new(&data_dir),
        key_file.as_deref().map(std::path::Path::new),
    )?)
}

/// Totals of one currency. Amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OffstAccount {
    /// The currency.
    pub currency: String,
    /// Fees earned as a mediator.
    pub fees_earned: String,
    /// Fees paid as a buyer.
    pub fees_paid: String,
    /// Invoice amounts received as a seller.
    pub received: String,
    /// Invoice amounts paid as a buyer, fees excluded.
    pub sent: String,
}

/// Checks a receipt offline (no node needed): the seller's signature on the invoice and the
/// secret that only the seller could reveal. Returns what it proves, or `InvalidInput`.
#[uniffi::export]
pub fn verify_receipt(receipt: String) -> Result<OffstReceipt, OffstError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(receipt.trim())
        .map_err(|err| OffstError::InvalidInput(format!("the receipt is not base64url: {err}")))?;
    let receipt = offst_proto::payment::Receipt::from_bytes(&bytes)
        .map_err(|err| OffstError::InvalidInput(format!("not a receipt: {err}")))?;
    offst_credit::payment::verify_receipt(&receipt)
        .map_err(|err| OffstError::InvalidInput(format!("the receipt does not verify: {err}")))?;
    let invoice = &receipt.invoice;
    Ok(OffstReceipt {
        invoice: invoice.to_uri(),
        seller: invoice.seller.to_string(),
        currency: invoice.currency.to_string(),
        amount: invoice.amount.to_string(),
        description: invoice.description.to_string(),
    })
}

/// Parses a friend card without a node (e.g. to show who it is before adding).
#[uniffi::export]
pub fn parse_friend_card(card: String) -> Result<OffstFriendCard, OffstError> {
    let card: FriendCard = card
        .parse()
        .map_err(|err: offst_proto::uri::UriError| OffstError::InvalidInput(err.to_string()))?;
    Ok(OffstFriendCard {
        public_key: card.public_key.to_string(),
        name: card.name.to_string(),
        relays: card
            .relays
            .into_iter()
            .map(|relay| RelayCard(relay).to_string())
            .collect(),
    })
}

/// Receives the library's log records, for apps that route logs themselves (to `os_log` on iOS,
/// Timber on Android, a file…). Called from library threads; keep it quick and do not call back
/// into the node from it.
#[uniffi::export(callback_interface)]
pub trait OffstLogSink: Send + Sync {
    /// One record: `level` is `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`; `target` the Rust
    /// module that logged.
    fn log(&self, level: String, target: String, message: String);
}

static LOGGING: Once = Once::new();
static SINK: RwLock<Option<Box<dyn OffstLogSink>>> = RwLock::new(None);

thread_local! {
    /// Set while a record is being handed to the app's sink, so a sink that logs through the
    /// library does not recurse forever.
    static IN_SINK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The library's logger: the app's sink if it set one, else logcat (Android) or standard error.
struct Forwarder {
    fallback: Box<dyn log::Log>,
}

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || IN_SINK.with(std::cell::Cell::get) {
            return;
        }
        let guard = SINK
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.as_ref() {
            Some(sink) => {
                IN_SINK.with(|flag| flag.set(true));
                sink.log(
                    record.level().to_string(),
                    record.target().to_owned(),
                    record.args().to_string(),
                );
                IN_SINK.with(|flag| flag.set(false));
            }
            None => self.fallback.log(record),
        }
    }

    fn flush(&self) {
        self.fallback.flush();
    }
}

fn install_logger(level: log::LevelFilter) {
    LOGGING.call_once(|| {
        #[cfg(target_os = "android")]
        let fallback: Box<dyn log::Log> = Box::new(android_logger::AndroidLogger::new(
            android_logger::Config::default()
                .with_max_level(log::LevelFilter::Trace)
                .with_tag("offst"),
        ));
        #[cfg(not(target_os = "android"))]
        let fallback: Box<dyn log::Log> = Box::new(
            env_logger::Builder::new()
                .filter_level(log::LevelFilter::Trace)
                .build(),
        );
        if log::set_boxed_logger(Box::new(Forwarder { fallback })).is_ok() {
            log::set_max_level(level);
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            log::error!("panic in the Offst library: {info}");
            previous(info);
        }));
    });
}

fn parse_level(level: &str) -> log::LevelFilter {
    level.trim().parse().unwrap_or(log::LevelFilter::Info)
}

/// Sends the library's logs to logcat (Android) or standard error (elsewhere) at `level`
/// (`error`, `warn`, `info`, `debug`, `trace`; anything else means `info`), and logs Rust
/// panics. Call once at start-up; later calls only change the level.
#[uniffi::export]
pub fn init_logging(level: String) {
    let level = parse_level(&level);
    install_logger(level);
    log::set_max_level(level);
}

/// Sends the library's logs at `level` to the app's `sink` instead (replacing any earlier sink).
#[uniffi::export]
pub fn set_log_sink(level: String, sink: Box<dyn OffstLogSink>) {
    let level = parse_level(&level);
    install_logger(level);
    *SINK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    log::set_max_level(level);
}
