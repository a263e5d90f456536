//! App protocol messages (schema `app.capnp`; docs/PROTOCOL.md, "App protocol").
//!
//! Programs that control a node (stctrl, wallets, scripts) connect over TCP and the secure
//! channel with their own identity. The node answers with [`NodeToApp::Welcome`] (or
//! [`NodeToApp::Refused`] and closes), then streams [`NodeToApp::Report`]s and
//! [`NodeToApp::Event`]s to apps with the `info` permission; every [`AppToNode`] request gets
//! exactly one [`NodeToApp::Response`] with its `request_id`, in order.
//!
//! This module owns the types, their strict decoders and the permission each request needs
//! ([`AppRequest::is_permitted`]). Friend cards and invoices travel as their `offst:` URIs and
//! receipts as their canonical bytes, parsed with the one strict parser of each. Checking
//! permissions against a registration, and everything a request does, is the node's.
//!
//! Encoders never truncate: a message over [`MAX_APP_MESSAGE_LEN`] would be refused by the
//! receiver, so whoever builds a large report or history response checks the size
//! ([`NodeToApp::encode_checked`]).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use crate::card::FriendCard;
use crate::codec::{
    check_len, decode_root, encode_root, read_balance, read_credits, read_fixed,
    read_relay_address, read_text, write_balance, write_credits, write_relay_address, DecodeError,
    WireMessage,
};
use crate::index::{FeeRate, Route};
use crate::limits::{
    MAX_CARD_NAME_LEN, MAX_CURRENCIES_PER_FRIEND, MAX_INDEX_ROUTES, MAX_INVOICE_DESCRIPTION_LEN,
    MAX_RELAYS, MAX_ROUTE_LEN,
};
use crate::payment::{Invoice, Receipt};
use crate::schema::app_capnp;
use crate::schema::common_capnp;
use crate::types::{
    Balance, Credits, Currency, InvoiceId, PaymentId, PublicKey, RelayAddress, Signature, Text,
};

pub use crate::limits::{
    MAX_APP_ACCOUNTS, MAX_APP_ERROR_LEN, MAX_APP_EVENT_KIND_LEN, MAX_APP_EVENT_PAYLOAD_LEN,
    MAX_APP_HISTORY, MAX_APP_MESSAGE_LEN, MAX_APP_REPORT_FRIENDS,
};

// ---------------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------------

/// One thing an app may be allowed to do (schema `Permissions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Reports, events, history, payment status, the node's friend card.
    Info,
    /// Quote and pay invoices, payment status.
    Buy,
    /// Create and cancel invoices.
    Sell,
    /// Friends, limits, rates, currencies, relays, index servers, resets.
    Config,
    /// Ask index servers for routes.
    Routes,
}

impl Permission {
    /// Every permission, in the order of the schema (and of [`Permissions`]' text form).
    pub const ALL: [Permission; 5] = [
        Permission::Info,
        Permission::Buy,
        Permission::Sell,
        Permission::Config,
        Permission::Routes,
    ];

    /// The permission's word in the text form (`info`, `buy`, `sell`, `config`, `routes`).
    pub fn name(self) -> &'static str {
        match self {
            Permission::Info => "info",
            Permission::Buy => "buy",
            Permission::Sell => "sell",
            Permission::Config => "config",
            Permission::Routes => "routes",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an app registered with a node may do. The text form is a comma list of permission
/// words (`info,buy`), or `all`, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// Reports, events, history, payment status, the node's friend card.
    pub info: bool,
    /// Quote and pay invoices, payment status.
    pub buy: bool,
    /// Create and cancel invoices.
    pub sell: bool,
    /// Friends, limits, rates, currencies, relays, index servers, resets.
    pub config: bool,
    /// Ask index servers for routes.
    pub routes: bool,
}

impl Permissions {
    /// Every permission.
    pub const ALL: Permissions = Permissions {
        info: true,
        buy: true,
        sell: true,
        config: true,
        routes: true,
    };

    /// No permission at all (the default).
    pub const NONE: Permissions = Permissions {
        info: false,
        buy: false,
        sell: false,
        config: false,
        routes: false,
    };

    /// Whether `permission` is granted.
    pub fn allows(&self, permission: Permission) -> bool {
        match permission {
            Permission::Info => self.info,
            Permission::Buy => self.buy,
            Permission::Sell => self.sell,
            Permission::Config => self.config,
            Permission::Routes => self.routes,
        }
    }

    /// These permissions and `permission`.
    #[must_use]
    pub fn with(mut self, permission: Permission) -> Permissions {
        match permission {
            Permission::Info => self.info = true,
            Permission::Buy => self.buy = true,
            Permission::Sell => self.sell = true,
            Permission::Config => self.config = true,
            Permission::Routes => self.routes = true,
        }
        self
    }

    /// Whether no permission is granted.
    pub fn is_empty(&self) -> bool {
        *self == Permissions::NONE
    }
}

/// Why text is not a permission list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission {word:?}: use a comma-separated list of info, buy, sell, config, routes, \
     or \"all\" or \"none\""
)]
pub struct PermissionsParseError {
    /// The word that is not a permission (empty for a stray comma).
    pub word: String,
}

impl FromStr for Permissions {
    type Err = PermissionsParseError;

    /// Parses `info,buy,…`, `all` or `none` (words are case-insensitive, spaces around them
    /// are ignored).
    fn from_str(text: &str) -> Result<Self, PermissionsParseError> {
        let mut permissions = Permissions::NONE;
        for word in text.split(',').map(str::trim) {
            if word.eq_ignore_ascii_case("all") {
                permissions = Permissions::ALL;
            } else if word.eq_ignore_ascii_case("none") {
                // Adds nothing.
            } else if let Some(permission) = Permission::ALL
                .into_iter()
                .find(|permission| word.eq_ignore_ascii_case(permission.name()))
            {
                permissions = permissions.with(permission);
            } else {
                return Err(PermissionsParseError {
                    word: word.chars().take(32).collect(),
                });
            }
        }
        Ok(permissions)
    }
}

impl fmt::Display for Permissions {
    /// The comma list of granted permissions in schema order, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for permission in Permission::ALL {
            if self.allows(permission) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(permission.name())?;
                first = false;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Node → app values
// ---------------------------------------------------------------------------------------------

/// The node's greeting after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The node's identity.
    pub node_public_key: PublicKey,
    /// What this app may do.
    pub permissions: Permissions,
    /// The name the app was registered under.
    pub app_name: Text,
}

/// One currency of one friendship, seen from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyReport {
    /// The currency.
    pub currency: Currency,
    /// Positive: the friend owes us.
    pub balance: Balance,
    /// Most we may owe the friend (the friend's limit for us).
    pub local_max_debt: Credits,
    /// Most the friend may owe us (our limit for the friend).
    pub remote_max_debt: Credits,
    /// Frozen by requests we sent.
    pub local_pending_debt: Credits,
    /// Frozen by requests the friend sent.
    pub remote_pending_debt: Credits,
    /// What we charge for forwarding requests that arrive from this friend.
    pub rate: FeeRate,
    /// Whether we accept requests in this currency.
    pub is_open: bool,
}

/// The state of a friendship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FriendStatus {
    /// Disabled by the user: the node does not connect.
    Disabled,
    /// Enabled, not connected.
    Offline,
    /// Enabled and connected.
    Online,
    /// The two sides disagree about the channel; a reset is needed.
    Inconsistent,
}

/// The reset the friend proposes while the channel is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetTermsReport {
    /// Accept these terms by naming this token ([`AppRequest::AcceptResetTerms`]).
    pub reset_token: Signature,
    /// The balances the friend proposes, from our side (at most
    /// [`MAX_CURRENCIES_PER_FRIEND`], no currency twice).
    pub balances: Vec<(Currency, Balance)>,
}

/// One friend of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendReport {
    /// The friend's identity.
    pub public_key: PublicKey,
    /// Our name for the friend.
    pub name: Text,
    /// Relays the friend listens on (at most [`MAX_RELAYS`]).
    pub relays: Vec<RelayAddress>,
    /// The friendship's state.
    pub status: FriendStatus,
    /// The currencies of the friendship (at most [`MAX_CURRENCIES_PER_FRIEND`], no currency
    /// twice).
    pub currencies: Vec<CurrencyReport>,
    /// The friend's proposed reset, set while the channel is inconsistent.
    pub reset_terms: Option<ResetTermsReport>,
}

/// The node's totals in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReport {
    /// The currency.
    pub currency: Currency,
    /// Fees earned by forwarding payments.
    pub fees_earned: Credits,
    /// Fees paid to mediators.
    pub fees_paid: Credits,
    /// Received as a seller.
    pub received: Credits,
    /// Sent as a buyer (fees excluded).
    pub sent: Credits,
}

/// A full snapshot of the node (sent on connect, whenever it changes, and on request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node's identity.
    pub public_key: PublicKey,
    /// Relays the node listens on (at most [`MAX_RELAYS`]).
    pub relays: Vec<RelayAddress>,
    /// Index servers the node uses: identity and address (at most [`MAX_RELAYS`]).
    pub index_servers: Vec<RelayAddress>,
    /// The friends (at most [`MAX_APP_REPORT_FRIENDS`], no key twice).
    pub friends: Vec<FriendReport>,
    /// Per-currency totals (at most [`MAX_APP_ACCOUNTS`], no currency twice).
    pub accounts: Vec<AccountReport>,
}

/// What paying an invoice would cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The routes the payment would take (1 to [`MAX_INDEX_ROUTES`]); their amounts add up to
    /// the invoice's amount. `capacity` is not on the app wire and equals `amount`.
    pub routes: Vec<Route>,
    /// The fees over all routes.
    pub total_fees: Credits,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentState {
    /// Requests are on their way.
    InProgress,
    /// The seller revealed the lock: paid.
    Succeeded,
    /// Cancelled: nothing was paid.
    Cancelled,
}

/// A payment started by this node as a buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStatus {
    /// The payment.
    pub payment_id: PaymentId,
    /// The invoice it pays.
    pub invoice_id: InvoiceId,
    /// Where it stands.
    pub state: PaymentState,
    /// What the seller receives.
    pub amount: Credits,
    /// What the mediators charge.
    pub fees: Credits,
    /// The number of routes the payment uses.
    pub routes: u32,
    /// The receipt, once succeeded (only then).
    pub receipt: Option<Receipt>,
    /// When the payment started (unix milliseconds).
    pub started_at_ms: u64,
    /// When it succeeded or was cancelled (unix milliseconds); `None` while in progress.
    pub finished_at_ms: Option<u64>,
}

/// One entry of the node's history (docs/PROTOCOL.md lists the kinds and their payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// Increases with every event the node commits.
    pub id: u64,
    /// When the event was committed (unix milliseconds).
    pub timestamp_ms: u64,
    /// What happened: 1 to [`MAX_APP_EVENT_KIND_LEN`] bytes, no control characters.
    pub kind: String,
    /// The friend the event is about, if it is about one.
    pub friend: Option<PublicKey>,
    /// A short state (at most [`MAX_APP_EVENT_KIND_LEN`] bytes, no control characters).
    pub status: Option<String>,
    /// The details as JSON (at most [`MAX_APP_EVENT_PAYLOAD_LEN`] bytes; not parsed here).
    pub payload_json: String,
}

/// Which history events an app asks for. Every field narrows the answer; `None` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Only events at or after this time (unix milliseconds).
    pub since_ms: Option<u64>,
    /// Only events with a larger id (to page through the history).
    pub after_id: Option<u64>,
    /// Only events about this friend.
    pub friend: Option<PublicKey>,
    /// At most this many events (1 to [`MAX_APP_HISTORY`]); `None`: as many as a response
    /// carries.
    pub limit: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// What an app asks the node to do (the union `AppToNode.request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRequest {
    /// The full [`NodeReport`]. Needs `info`.
    Report,
    /// History events. Needs `info`.
    History(HistoryQuery),
    /// The node's friend card with this suggested name (at most [`MAX_CARD_NAME_LEN`] bytes).
    /// Needs `info`.
    FriendCard {
        /// The name written into the card.
        name: Text,
    },
    /// The status of one payment. Needs `info` or `buy`.
    PaymentStatus(PaymentId),
    /// Adds a friend from their card. Needs `config`.
    AddFriend {
        /// The friend's card.
        card: FriendCard,
        /// Our name for the friend; `None`: the card's.
        name: Option<Text>,
    },
    /// Removes a friend. Needs `config`.
    RemoveFriend {
        /// The friend.
        friend: PublicKey,
        /// Remove even if balances or pending debts are not zero.
        force: bool,
    },
    /// Renames a friend. Needs `config`.
    SetFriendName {
        /// The friend.
        friend: PublicKey,
        /// The new name.
        name: Text,
    },
    /// Enables a friend (the node connects). Needs `config`.
    EnableFriend(PublicKey),
    /// Disables a friend (the node disconnects). Needs `config`.
    DisableFriend(PublicKey),
    /// Sets how much a friend may owe us in a currency. Needs `config`.
    SetLimit {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// Most the friend may owe us.
        remote_max_debt: Credits,
    },
    /// Sets the fee for forwarding requests that arrive from a friend. Needs `config`.
    SetRate {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The fee rate.
        rate: FeeRate,
    },
    /// Opens a currency with a friend (adding it if needed). Needs `config`.
    OpenCurrency {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
    },
    /// Closes a currency with a friend: no new requests. Needs `config`.
    CloseCurrency {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
    },
    /// Accepts the reset a friend proposed. Needs `config`.
    AcceptResetTerms {
        /// The friend.
        friend: PublicKey,
        /// The token of the terms being accepted ([`ResetTermsReport::reset_token`]).
        reset_token: Signature,
    },
    /// Listens on one more relay. Needs `config`.
    AddRelay(RelayAddress),
    /// Stops listening on a relay, named by its key. Needs `config`.
    RemoveRelay(PublicKey),
    /// Uses one more index server. Needs `config`.
    AddIndexServer(RelayAddress),
    /// Stops using an index server, named by its key. Needs `config`.
    RemoveIndexServer(PublicKey),
    /// Creates an invoice (answered with [`AppResult::Invoice`]). Needs `sell`.
    CreateInvoice {
        /// The currency to be paid in.
        currency: Currency,
        /// What we must receive (more than zero).
        amount: Credits,
        /// How long the invoice may be paid, in milliseconds (more than zero).
        valid_for_ms: u64,
        /// For the buyer (at most [`MAX_INVOICE_DESCRIPTION_LEN`] bytes).
        description: Text,
    },
    /// Cancels an open invoice. Needs `sell`.
    CancelInvoice(InvoiceId),
    /// What paying an invoice would cost (answered with [`AppResult::Quote`]). Needs `buy`.
    Quote {
        /// The invoice.
        invoice: Box<Invoice>,
        /// Most routes to split over (1 to [`MAX_INDEX_ROUTES`]).
        max_routes: u32,
    },
    /// Pays an invoice (answered with [`AppResult::Payment`] once started). Needs `buy`.
    Pay {
        /// The invoice.
        invoice: Box<Invoice>,
        /// Most the mediators may charge in total.
        max_fees: Credits,
    },
    /// Asks the index servers for routes to a node. Needs `routes`.
    Routes {
        /// The seller.
        destination: PublicKey,
        /// The currency.
        currency: Currency,
        /// What the seller must receive (more than zero).
        amount: Credits,
        /// Most routes to split over (1 to [`MAX_INDEX_ROUTES`]).
        max_routes: u32,
    },
}

impl AppRequest {
    /// The request's name in messages and logs (`set-limit`, …).
    pub fn name(&self) -> &'static str {
        match self {
            AppRequest::Report => "report",
            AppRequest::History(_) => "history",
            AppRequest::FriendCard { .. } => "friend-card",
            AppRequest::PaymentStatus(_) => "payment-status",
            AppRequest::AddFriend { .. } => "add-friend",
            AppRequest::RemoveFriend { .. } => "remove-friend",
            AppRequest::SetFriendName { .. } => "set-friend-name",
            AppRequest::EnableFriend(_) => "enable-friend",
            AppRequest::DisableFriend(_) => "disable-friend",
            AppRequest::SetLimit { .. } => "set-limit",
            AppRequest::SetRate { .. } => "set-rate",
            AppRequest::OpenCurrency { .. } => "open-currency",
            AppRequest::CloseCurrency { .. } => "close-currency",
            AppRequest::AcceptResetTerms { .. } => "accept-reset-terms",
            AppRequest::AddRelay(_) => "add-relay",
            AppRequest::RemoveRelay(_) => "remove-relay",
            AppRequest::AddIndexServer(_) => "add-index-server",
            AppRequest::RemoveIndexServer(_) => "remove-index-server",
            AppRequest::CreateInvoice { .. } => "create-invoice",
            AppRequest::CancelInvoice(_) => "cancel-invoice",
            AppRequest::Quote { .. } => "quote",
            AppRequest::Pay { .. } => "pay",
            AppRequest::Routes { .. } => "routes",
        }
    }

    /// The permissions that allow this request: any one of them suffices (schema comments).
    pub fn permissions(&self) -> &'static [Permission] {
        match self {
            AppRequest::Report | AppRequest::History(_) | AppRequest::FriendCard { .. } => {
                &[Permission::Info]
            }
            AppRequest::PaymentStatus(_) => &[Permission::Info, Permission::Buy],
            AppRequest::AddFriend { .. }
            | AppRequest::RemoveFriend { .. }
            | AppRequest::SetFriendName { .. }
            | AppRequest::EnableFriend(_)
            | AppRequest::DisableFriend(_)
            | AppRequest::SetLimit { .. }
            | AppRequest::SetRate { .. }
            | AppRequest::OpenCurrency { .. }
            | AppRequest::CloseCurrency { .. }
            | AppRequest::AcceptResetTerms { .. }
            | AppRequest::AddRelay(_)
            | AppRequest::RemoveRelay(_)
            | AppRequest::AddIndexServer(_)
            | AppRequest::RemoveIndexServer(_) => &[Permission::Config],
            AppRequest::CreateInvoice { .. } | AppRequest::CancelInvoice(_) => &[Permission::Sell],
            AppRequest::Quote { .. } | AppRequest::Pay { .. } => &[Permission::Buy],
            AppRequest::Routes { .. } => &[Permission::Routes],
        }
    }

    /// Whether an app with `permissions` may make this request.
    pub fn is_permitted(&self, permissions: &Permissions) -> bool {
        self.permissions()
            .iter()
            .any(|permission| permissions.allows(*permission))
    }

    /// The permission this request needs, for error messages (`config`, `info or buy`).
    pub fn required_permission(&self) -> &'static str {
        match self.permissions() {
            [only] => only.name(),
            // The one request open to two permissions.
            _ => "info or buy",
        }
    }
}

/// App → node: one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppToNode {
    /// Chosen by the app, echoed in the response.
    pub request_id: u64,
    /// The request.
    pub request: AppRequest,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Why a request failed or a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppErrorKind {
    /// The app's registration lacks the permission the request needs.
    PermissionDenied,
    /// Malformed or out-of-range input: fix the request.
    InvalidInput,
    /// The node refused (unknown friend, over a limit, not consistent…).
    Refused,
    /// No index server or no route.
    Routing,
    /// The node is stopping.
    NotRunning,
    /// The node could not store the change.
    Storage,
    /// A bug or an unexpected failure in the node.
    Internal,
    /// (In [`NodeToApp::Refused`]) the app's key is not registered with the node.
    NotRegistered,
}

impl AppErrorKind {
    /// The kind's name in messages and logs (`permission-denied`, …).
    pub fn name(self) -> &'static str {
        match self {
            AppErrorKind::PermissionDenied => "permission-denied",
            AppErrorKind::InvalidInput => "invalid-input",
            AppErrorKind::Refused => "refused",
            AppErrorKind::Routing => "routing",
            AppErrorKind::NotRunning => "not-running",
            AppErrorKind::Storage => "storage",
            AppErrorKind::Internal => "internal",
            AppErrorKind::NotRegistered => "not-registered",
        }
    }
}

/// An error the node reports to an app.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What kind of failure.
    pub kind: AppErrorKind,
    /// For people: what went wrong and what to do (at most [`MAX_APP_ERROR_LEN`] bytes).
    pub message: String,
}

impl AppError {
    /// An error whose message is cut (at a character boundary) to [`MAX_APP_ERROR_LEN`] bytes,
    /// so that it always encodes to a valid message.
    pub fn new(kind: AppErrorKind, message: impl Into<String>) -> AppError {
        let mut message = message.into();
        if message.len() > MAX_APP_ERROR_LEN {
            let mut end = MAX_APP_ERROR_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        AppError { kind, message }
    }
}

/// The outcome of one request.
// `Payment` is the large variant (a receipt holds a whole invoice). A result is built once and
// moved straight into `encode`, never stored in bulk, so boxing buys nothing but noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppResult {
    /// Done; nothing to return.
    Ok,
    /// Failed.
    Error(AppError),
    /// The answer to [`AppRequest::Report`].
    Report(Box<NodeReport>),
    /// The answer to [`AppRequest::History`] (at most [`MAX_APP_HISTORY`] events).
    History(Vec<NodeEvent>),
    /// The answer to [`AppRequest::FriendCard`].
    FriendCard(FriendCard),
    /// The answer to [`AppRequest::CreateInvoice`].
    Invoice(Box<Invoice>),
    /// The answer to [`AppRequest::Quote`].
    Quote(Quote),
    /// The answer to [`AppRequest::Pay`] and [`AppRequest::PaymentStatus`].
    Payment(PaymentStatus),
    /// The answer to [`AppRequest::Routes`] (at most [`MAX_INDEX_ROUTES`]; `capacity` equals
    /// `amount`).
    Routes(Vec<Route>),
}

/// Node → app: one message.
// Large because `Response` holds an [`AppResult`] (see there); the report is boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeToApp {
    /// The first message on an accepted connection.
    Welcome(Welcome),
    /// The connection is refused; the node closes it.
    Refused(AppError),
    /// The full report (on connect, then whenever it changes), to apps with `info`.
    Report(Box<NodeReport>),
    /// A history event as it is committed, to apps with `info`.
    Event(NodeEvent),
    /// The answer to one request.
    Response {
        /// The request's id.
        request_id: u64,
        /// The outcome.
        result: AppResult,
    },
}

/// An app message that does not fit [`MAX_APP_MESSAGE_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("app message of {len} bytes exceeds the limit of {MAX_APP_MESSAGE_LEN} bytes")]
pub struct MessageTooLarge {
    /// The encoded length.
    pub len: usize,
}

fn checked(bytes: Vec<u8>) -> Result<Vec<u8>, MessageTooLarge> {
    if bytes.len() > MAX_APP_MESSAGE_LEN {
        return Err(MessageTooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

impl AppToNode {
    /// Encodes the message, or refuses when it is over [`MAX_APP_MESSAGE_LEN`].
    pub fn encode_checked(&self) -> Result<Vec<u8>, MessageTooLarge> {
        checked(self.encode())
    }
}

impl NodeToApp {
    /// Encodes the message, or refuses when it is over [`MAX_APP_MESSAGE_LEN`] (a report with
    /// very many friends, a history response with large payloads: send less).
    pub fn encode_checked(&self) -> Result<Vec<u8>, MessageTooLarge> {
        checked(self.encode())
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers
// ---------------------------------------------------------------------------------------------

fn read_key(
    field: &'static str,
    data: capnp::Result<capnp::data::Reader<'_>>,
) -> Result<PublicKey, DecodeError> {
    read_fixed(field, data, PublicKey::try_from_slice)
}

/// A key, or `None` for empty data.
fn read_optional_key(
    field: &'static str,
    data: capnp::Result<capnp::data::Reader<'_>>,
) -> Result<Option<PublicKey>, DecodeError> {
    let data = data?;
    if data.is_empty() {
        return Ok(None);
    }
    read_fixed(field, Ok(data), PublicKey::try_from_slice).map(Some)
}

fn read_currency(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<Currency, DecodeError> {
    read_text(field, text, Currency::new)
}

fn read_plain_text(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<Text, DecodeError> {
    read_text(field, text, Text::new)
}

fn read_str<'a>(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'a>>,
) -> Result<&'a str, DecodeError> {
    text?
        .to_str()
        .map_err(|_| DecodeError::Malformed(format!("field {field} is not UTF-8")))
}

/// Short text without control characters, at most `max` bytes.
fn read_short_str(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'_>>,
    max: usize,
    error: &'static str,
) -> Result<String, DecodeError> {
    let text = read_str(field, text)?;
    if text.len() > max || text.chars().any(char::is_control) {
        return Err(DecodeError::Invalid(error));
    }
    Ok(text.to_owned())
}

fn read_card(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<FriendCard, DecodeError> {
    FriendCard::from_uri(read_str(field, text)?)
        .map_err(|err| DecodeError::Malformed(format!("field {field}: {err}")))
}

fn read_invoice(
    field: &'static str,
    text: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<Box<Invoice>, DecodeError> {
    Invoice::from_uri(read_str(field, text)?)
        .map(Box::new)
        .map_err(|err| DecodeError::Malformed(format!("field {field}: {err}")))
}

fn read_positive(
    field: &'static str,
    reader: capnp::Result<common_capnp::u_int128::Reader<'_>>,
    error: &'static str,
) -> Result<Credits, DecodeError> {
    let amount = read_credits(field, reader)?;
    if amount == Credits::ZERO {
        return Err(DecodeError::Invalid(error));
    }
    Ok(amount)
}

fn read_max_routes(value: u32) -> Result<u32, DecodeError> {
    if value == 0 || value as usize > MAX_INDEX_ROUTES {
        return Err(DecodeError::Invalid("maxRoutes must be 1 to 8"));
    }
    Ok(value)
}

fn write_relays(
    mut list: capnp::struct_list::Builder<'_, common_capnp::relay_address::Owned>,
    relays: &[RelayAddress],
) {
    for (index, relay) in relays.iter().enumerate() {
        write_relay_address(list.reborrow().get(index as u32), relay);
    }
}

fn read_relays(
    field: &'static str,
    list: capnp::Result<capnp::struct_list::Reader<'_, common_capnp::relay_address::Owned>>,
) -> Result<Vec<RelayAddress>, DecodeError> {
    let list = list?;
    let len = check_len(field, list.len(), MAX_RELAYS)?;
    let mut relays = Vec::with_capacity(len);
    for relay in list.iter() {
        relays.push(read_relay_address(relay)?);
    }
    Ok(relays)
}

fn write_permissions(mut builder: app_capnp::permissions::Builder<'_>, permissions: &Permissions) {
    builder.set_info(permissions.info);
    builder.set_buy(permissions.buy);
    builder.set_sell(permissions.sell);
    builder.set_config(permissions.config);
    builder.set_routes(permissions.routes);
}

fn read_permissions(reader: app_capnp::permissions::Reader<'_>) -> Permissions {
    Permissions {
        info: reader.get_info(),
        buy: reader.get_buy(),
        sell: reader.get_sell(),
        config: reader.get_config(),
        routes: reader.get_routes(),
    }
}

fn write_rate(mut builder: app_capnp::fee_rate::Builder<'_>, rate: &FeeRate) {
    write_credits(builder.reborrow().init_flat(), rate.flat);
    builder.set_proportional_ppm(rate.proportional_ppm);
}

fn read_rate(
    reader: capnp::Result<app_capnp::fee_rate::Reader<'_>>,
) -> Result<FeeRate, DecodeError> {
    let reader = reader?;
    let flat = read_credits("flat", reader.get_flat())?;
    FeeRate::new(flat, reader.get_proportional_ppm()).ok_or(DecodeError::Invalid(
        "fee rate: proportionalPpm above 1000000",
    ))
}

fn write_route(mut builder: app_capnp::route::Builder<'_>, route: &Route) {
    write_credits(builder.reborrow().init_amount(), route.amount);
    write_credits(builder.reborrow().init_fees(), route.fees);
    let mut nodes = builder.init_nodes(route.nodes.len() as u32);
    for (index, node) in route.nodes.iter().enumerate() {
        nodes.set(index as u32, node.as_bytes());
    }
}

/// A route of the app wire; `capacity` is not on it and is set to `amount`.
fn read_route(reader: app_capnp::route::Reader<'_>) -> Result<Route, DecodeError> {
    let list = reader.get_nodes()?;
    let len = check_len("nodes", list.len(), MAX_ROUTE_LEN)?;
    if len < 2 {
        return Err(DecodeError::Invalid("a route has at least two nodes"));
    }
    let mut nodes = Vec::with_capacity(len);
    let mut seen = HashSet::with_capacity(len);
    for node in list.iter() {
        let node = read_key("nodes", node)?;
        if !seen.insert(node) {
            return Err(DecodeError::Invalid("a route visits a node twice"));
        }
        nodes.push(node);
    }
    let amount = read_positive(
        "amount",
        reader.get_amount(),
        "a route carries a positive amount",
    )?;
    Ok(Route {
        nodes,
        amount,
        fees: read_credits("fees", reader.get_fees())?,
        capacity: amount,
    })
}

fn write_routes(
    mut list: capnp::struct_list::Builder<'_, app_capnp::route::Owned>,
    routes: &[Route],
) {
    for (index, route) in routes.iter().enumerate() {
        write_route(list.reborrow().get(index as u32), route);
    }
}

fn read_routes(
    field: &'static str,
    list: capnp::Result<capnp::struct_list::Reader<'_, app_capnp::route::Owned>>,
) -> Result<Vec<Route>, DecodeError> {
    let list = list?;
    let len = check_len(field, list.len(), MAX_INDEX_ROUTES)?;
    let mut routes = Vec::with_capacity(len);
    for route in list.iter() {
        routes.push(read_route(route)?);
    }
    Ok(routes)
}

fn friend_status_to_wire(status: FriendStatus) -> app_capnp::FriendStatus {
    match status {
        FriendStatus::Disabled => app_capnp::FriendStatus::Disabled,
        FriendStatus::Offline => app_capnp::FriendStatus::Offline,
        FriendStatus::Online => app_capnp::FriendStatus::Online,
        FriendStatus::Inconsistent => app_capnp::FriendStatus::Inconsistent,
    }
}

fn friend_status_from_wire(status: app_capnp::FriendStatus) -> FriendStatus {
    match status {
        app_capnp::FriendStatus::Disabled => FriendStatus::Disabled,
        app_capnp::FriendStatus::Offline => FriendStatus::Offline,
        app_capnp::FriendStatus::Online => FriendStatus::Online,
        app_capnp::FriendStatus::Inconsistent => FriendStatus::Inconsistent,
    }
}

fn payment_state_to_wire(state: PaymentState) -> app_capnp::PaymentState {
    match state {
        PaymentState::InProgress => app_capnp::PaymentState::InProgress,
        PaymentState::Succeeded => app_capnp::PaymentState::Succeeded,
        PaymentState::Cancelled => app_capnp::PaymentState::Cancelled,
    }
}

fn payment_state_from_wire(state: app_capnp::PaymentState) -> PaymentState {
    match state {
        app_capnp::PaymentState::InProgress => PaymentState::InProgress,
        app_capnp::PaymentState::Succeeded => PaymentState::Succeeded,
        app_capnp::PaymentState::Cancelled => PaymentState::Cancelled,
    }
}

fn error_kind_to_wire(kind: AppErrorKind) -> app_capnp::AppErrorKind {
    use app_capnp::AppErrorKind as Wire;
    match kind {
        AppErrorKind::PermissionDenied => Wire::PermissionDenied,
        AppErrorKind::InvalidInput => Wire::InvalidInput,
        AppErrorKind::Refused => Wire::Refused,
        AppErrorKind::Routing => Wire::Routing,
        AppErrorKind::NotRunning => Wire::NotRunning,
        AppErrorKind::Storage => Wire::Storage,
        AppErrorKind::Internal => Wire::Internal,
        AppErrorKind::NotRegistered => Wire::NotRegistered,
    }
}

fn error_kind_from_wire(kind: app_capnp::AppErrorKind) -> AppErrorKind {
    use app_capnp::AppErrorKind as Wire;
    match kind {
        Wire::PermissionDenied => AppErrorKind::PermissionDenied,
        Wire::InvalidInput => AppErrorKind::InvalidInput,
        Wire::Refused => AppErrorKind::Refused,
        Wire::Routing => AppErrorKind::Routing,
        Wire::NotRunning => AppErrorKind::NotRunning,
        Wire::Storage => AppErrorKind::Storage,
        Wire::Internal => AppErrorKind::Internal,
        Wire::NotRegistered => AppErrorKind::NotRegistered,
    }
}

// ---------------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------------

fn write_welcome(mut builder: app_capnp::welcome::Builder<'_>, welcome: &Welcome) {
    builder.set_node_public_key(welcome.node_public_key.as_bytes());
    write_permissions(builder.reborrow().init_permissions(), &welcome.permissions);
    builder.set_app_name(welcome.app_name.as_str());
}

fn read_welcome(reader: app_capnp::welcome::Reader<'_>) -> Result<Welcome, DecodeError> {
    Ok(Welcome {
        node_public_key: read_key("nodePublicKey", reader.get_node_public_key())?,
        permissions: read_permissions(reader.get_permissions()?),
        app_name: read_plain_text("appName", reader.get_app_name())?,
    })
}

fn write_error(mut builder: app_capnp::app_error::Builder<'_>, error: &AppError) {
    builder.set_kind(error_kind_to_wire(error.kind));
    builder.set_message(error.message.as_str());
}

fn read_error(reader: app_capnp::app_error::Reader<'_>) -> Result<AppError, DecodeError> {
    let kind = reader
        .get_kind()
        .map_err(|_| DecodeError::UnknownVariant("AppError.kind"))?;
    let message = read_str("message", reader.get_message())?;
    if message.len() > MAX_APP_ERROR_LEN {
        return Err(DecodeError::Invalid(
            "an error message is at most 1024 bytes",
        ));
    }
    Ok(AppError {
        kind: error_kind_from_wire(kind),
        message: message.to_owned(),
    })
}

fn write_currency_report(
    mut builder: app_capnp::currency_report::Builder<'_>,
    report: &CurrencyReport,
) {
    builder.set_currency(report.currency.as_str());
    write_balance(builder.reborrow().init_balance(), report.balance);
    write_credits(
        builder.reborrow().init_local_max_debt(),
        report.local_max_debt,
    );
    write_credits(
        builder.reborrow().init_remote_max_debt(),
        report.remote_max_debt,
    );
    write_credits(
        builder.reborrow().init_local_pending_debt(),
        report.local_pending_debt,
    );
    write_credits(
        builder.reborrow().init_remote_pending_debt(),
        report.remote_pending_debt,
    );
    write_rate(builder.reborrow().init_rate(), &report.rate);
    builder.set_is_open(report.is_open);
}

fn read_currency_report(
    reader: app_capnp::currency_report::Reader<'_>,
) -> Result<CurrencyReport, DecodeError> {
    Ok(CurrencyReport {
        currency: read_currency("currency", reader.get_currency())?,
        balance: read_balance(reader.get_balance())?,
        local_max_debt: read_credits("localMaxDebt", reader.get_local_max_debt())?,
        remote_max_debt: read_credits("remoteMaxDebt", reader.get_remote_max_debt())?,
        local_pending_debt: read_credits("localPendingDebt", reader.get_local_pending_debt())?,
        remote_pending_debt: read_credits("remotePendingDebt", reader.get_remote_pending_debt())?,
        rate: read_rate(reader.get_rate())?,
        is_open: reader.get_is_open(),
    })
}

fn write_friend(mut builder: app_capnp::friend_report::Builder<'_>, friend: &FriendReport) {
    builder.set_public_key(friend.public_key.as_bytes());
    builder.set_name(friend.name.as_str());
    write_relays(
        builder.reborrow().init_relays(friend.relays.len() as u32),
        &friend.relays,
    );
    builder.set_status(friend_status_to_wire(friend.status));
    let mut currencies = builder
        .reborrow()
        .init_currencies(friend.currencies.len() as u32);
    for (index, report) in friend.currencies.iter().enumerate() {
        write_currency_report(currencies.reborrow().get(index as u32), report);
    }
    let mut reset = builder.init_reset_terms();
    match &friend.reset_terms {
        None => reset.set_none(()),
        Some(terms) => {
            let mut builder = reset.init_terms();
            builder.set_reset_token(terms.reset_token.as_bytes());
            let mut list = builder.init_balances(terms.balances.len() as u32);
            for (index, (currency, balance)) in terms.balances.iter().enumerate() {
                let mut item = list.reborrow().get(index as u32);
                item.set_currency(currency.as_str());
                write_balance(item.init_balance(), *balance);
            }
        }
    }
}

fn read_reset_terms(
    reader: app_capnp::reset_terms_report::Reader<'_>,
) -> Result<ResetTermsReport, DecodeError> {
    let list = reader.get_balances()?;
    let len = check_len("balances", list.len(), MAX_CURRENCIES_PER_FRIEND)?;
    let mut balances = Vec::with_capacity(len);
    let mut seen = HashSet::with_capacity(len);
    for item in list.iter() {
        let currency = read_currency("currency", item.get_currency())?;
        if !seen.insert(currency.clone()) {
            return Err(DecodeError::Invalid("reset terms list a currency twice"));
        }
        balances.push((currency, read_balance(item.get_balance())?));
    }
    Ok(ResetTermsReport {
        reset_token: read_fixed(
            "resetToken",
            reader.get_reset_token(),
            Signature::try_from_slice,
        )?,
        balances,
    })
}

fn read_friend(reader: app_capnp::friend_report::Reader<'_>) -> Result<FriendReport, DecodeError> {
    use app_capnp::friend_report::reset_terms;
    let list = reader.get_currencies()?;
    let len = check_len("currencies", list.len(), MAX_CURRENCIES_PER_FRIEND)?;
    let mut currencies = Vec::with_capacity(len);
    let mut seen = HashSet::with_capacity(len);
    for item in list.iter() {
        let report = read_currency_report(item)?;
        if !seen.insert(report.currency.clone()) {
            return Err(DecodeError::Invalid("a friend lists a currency twice"));
        }
        currencies.push(report);
    }
    let reset_terms = match reader
        .get_reset_terms()
        .which()
        .map_err(|_| DecodeError::UnknownVariant("FriendReport.resetTerms"))?
    {
        reset_terms::None(()) => None,
        reset_terms::Terms(terms) => Some(read_reset_terms(terms?)?),
    };
    Ok(FriendReport {
        public_key: read_key("publicKey", reader.get_public_key())?,
        name: read_plain_text("name", reader.get_name())?,
        relays: read_relays("relays", reader.get_relays())?,
        status: friend_status_from_wire(
            reader
                .get_status()
                .map_err(|_| DecodeError::UnknownVariant("FriendReport.status"))?,
        ),
        currencies,
        reset_terms,
    })
}

fn write_report(mut builder: app_capnp::node_report::Builder<'_>, report: &NodeReport) {
    builder.set_public_key(report.public_key.as_bytes());
    write_relays(
        builder.reborrow().init_relays(report.relays.len() as u32),
        &report.relays,
    );
    write_relays(
        builder
            .reborrow()
            .init_index_servers(report.index_servers.len() as u32),
        &report.index_servers,
    );
    let mut friends = builder.reborrow().init_friends(report.friends.len() as u32);
    for (index, friend) in report.friends.iter().enumerate() {
        write_friend(friends.reborrow().get(index as u32), friend);
    }
    let mut accounts = builder.init_accounts(report.accounts.len() as u32);
    for (index, account) in report.accounts.iter().enumerate() {
        let mut item = accounts.reborrow().get(index as u32);
        item.set_currency(account.currency.as_str());
        write_credits(item.reborrow().init_fees_earned(), account.fees_earned);
        write_credits(item.reborrow().init_fees_paid(), account.fees_paid);
        write_credits(item.reborrow().init_received(), account.received);
        write_credits(item.init_sent(), account.sent);
    }
}

fn read_report(reader: app_capnp::node_report::Reader<'_>) -> Result<NodeReport, DecodeError> {
    let list = reader.get_friends()?;
    let len = check_len("friends", list.len(), MAX_APP_REPORT_FRIENDS)?;
    let mut friends = Vec::with_capacity(len);
    let mut seen = HashSet::with_capacity(len);
    for item in list.iter() {
        let friend = read_friend(item)?;
        if !seen.insert(friend.public_key) {
            return Err(DecodeError::Invalid("a report lists a friend twice"));
        }
        friends.push(friend);
    }
    let list = reader.get_accounts()?;
    let len = check_len("accounts", list.len(), MAX_APP_ACCOUNTS)?;
    let mut accounts = Vec::with_capacity(len);
    let mut seen = HashSet::with_capacity(len);
    for item in list.iter() {
        let account = AccountReport {
            currency: read_currency("currency", item.get_currency())?,
            fees_earned: read_credits("feesEarned", item.get_fees_earned())?,
            fees_paid: read_credits("feesPaid", item.get_fees_paid())?,
            received: read_credits("received", item.get_received())?,
            sent: read_credits("sent", item.get_sent())?,
        };
        if !seen.insert(account.currency.clone()) {
            return Err(DecodeError::Invalid("a report lists an account twice"));
        }
        accounts.push(account);
    }
    Ok(NodeReport {
        public_key: read_key("publicKey", reader.get_public_key())?,
        relays: read_relays("relays", reader.get_relays())?,
        index_servers: read_relays("indexServers", reader.get_index_servers())?,
        friends,
        accounts,
    })
}

fn write_payment(mut builder: app_capnp::payment_status::Builder<'_>, payment: &PaymentStatus) {
    builder.set_payment_id(payment.payment_id.as_bytes());
    builder.set_invoice_id(payment.invoice_id.as_bytes());
    builder.set_state(payment_state_to_wire(payment.state));
    write_credits(builder.reborrow().init_amount(), payment.amount);
    write_credits(builder.reborrow().init_fees(), payment.fees);
    builder.set_routes(payment.routes);
    if let Some(receipt) = &payment.receipt {
        builder.set_receipt(receipt.to_bytes().as_slice());
    }
    builder.set_started_at_ms(payment.started_at_ms);
    builder.set_finished_at_ms(payment.finished_at_ms.unwrap_or(0));
}

fn read_payment(
    reader: app_capnp::payment_status::Reader<'_>,
) -> Result<PaymentStatus, DecodeError> {
    let state = payment_state_from_wire(
        reader
            .get_state()
            .map_err(|_| DecodeError::UnknownVariant("PaymentStatus.state"))?,
    );
    let receipt = reader.get_receipt()?;
    let receipt = if receipt.is_empty() {
        None
    } else {
        if state != PaymentState::Succeeded {
            return Err(DecodeError::Invalid(
                "only a succeeded payment has a receipt",
            ));
        }
        Some(
            Receipt::from_bytes(receipt)
                .map_err(|err| DecodeError::Malformed(format!("field receipt: {err}")))?,
        )
    };
    let finished = reader.get_finished_at_ms();
    Ok(PaymentStatus {
        payment_id: read_fixed(
            "paymentId",
            reader.get_payment_id(),
            PaymentId::try_from_slice,
        )?,
        invoice_id: read_fixed(
            "invoiceId",
            reader.get_invoice_id(),
            InvoiceId::try_from_slice,
        )?,
        state,
        amount: read_credits("amount", reader.get_amount())?,
        fees: read_credits("fees", reader.get_fees())?,
        routes: reader.get_routes(),
        receipt,
        started_at_ms: reader.get_started_at_ms(),
        finished_at_ms: (finished != 0).then_some(finished),
    })
}

fn write_event(mut builder: app_capnp::node_event::Builder<'_>, event: &NodeEvent) {
    builder.set_id(event.id);
    builder.set_timestamp_ms(event.timestamp_ms);
    builder.set_kind(event.kind.as_str());
    if let Some(friend) = &event.friend {
        builder.set_friend(friend.as_bytes());
    }
    builder.set_status(event.status.as_deref().unwrap_or(""));
    builder.set_payload_json(event.payload_json.as_str());
}

fn read_event(reader: app_capnp::node_event::Reader<'_>) -> Result<NodeEvent, DecodeError> {
    let kind = read_short_str(
        "kind",
        reader.get_kind(),
        MAX_APP_EVENT_KIND_LEN,
        "an event kind is 1 to 64 bytes without control characters",
    )?;
    if kind.is_empty() {
        return Err(DecodeError::Invalid(
            "an event kind is 1 to 64 bytes without control characters",
        ));
    }
    let status = read_short_str(
        "status",
        reader.get_status(),
        MAX_APP_EVENT_KIND_LEN,
        "an event status is at most 64 bytes without control characters",
    )?;
    let payload_json = read_str("payloadJson", reader.get_payload_json())?;
    if payload_json.len() > MAX_APP_EVENT_PAYLOAD_LEN {
        return Err(DecodeError::Invalid(
            "an event payload is at most 16384 bytes",
        ));
    }
    Ok(NodeEvent {
        id: reader.get_id(),
        timestamp_ms: reader.get_timestamp_ms(),
        kind,
        friend: read_optional_key("friend", reader.get_friend())?,
        status: (!status.is_empty()).then_some(status),
        payload_json: payload_json.to_owned(),
    })
}

fn write_query(mut builder: app_capnp::history_query::Builder<'_>, query: &HistoryQuery) {
    builder.set_since_ms(query.since_ms.unwrap_or(0));
    builder.set_after_id(query.after_id.unwrap_or(0));
    if let Some(friend) = &query.friend {
        builder.set_friend(friend.as_bytes());
    }
    builder.set_limit(query.limit.unwrap_or(0));
}

fn read_query(reader: app_capnp::history_query::Reader<'_>) -> Result<HistoryQuery, DecodeError> {
    let limit = reader.get_limit();
    if limit as usize > MAX_APP_HISTORY {
        return Err(DecodeError::Invalid(
            "a history limit is at most 1000 events (0: as many as a response carries)",
        ));
    }
    let since = reader.get_since_ms();
    let after = reader.get_after_id();
    Ok(HistoryQuery {
        since_ms: (since != 0).then_some(since),
        after_id: (after != 0).then_some(after),
        friend: read_optional_key("friend", reader.get_friend())?,
        limit: (limit != 0).then_some(limit),
    })
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn check_size(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() > MAX_APP_MESSAGE_LEN {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    Ok(())
}

impl WireMessage for AppToNode {
    fn encode(&self) -> Vec<u8> {
        encode_root::<app_capnp::app_to_node::Owned>(|mut root| {
            root.set_request_id(self.request_id);
            let mut request = root.init_request();
            match &self.request {
                AppRequest::Report => request.set_report(()),
                AppRequest::History(query) => write_query(request.init_history(), query),
                AppRequest::FriendCard { name } => request.set_friend_card(name.as_str()),
                AppRequest::PaymentStatus(id) => request.set_payment_status(id.as_bytes()),
                AppRequest::AddFriend { card, name } => {
                    let mut b = request.init_add_friend();
                    b.set_card(card.to_uri().as_str());
                    b.set_name(name.as_ref().map_or("", Text::as_str));
                }
                AppRequest::RemoveFriend { friend, force } => {
                    let mut b = request.init_remove_friend();
                    b.set_friend(friend.as_bytes());
                    b.set_force(*force);
                }
                AppRequest::SetFriendName { friend, name } => {
                    let mut b = request.init_set_friend_name();
                    b.set_friend(friend.as_bytes());
                    b.set_name(name.as_str());
                }
                AppRequest::EnableFriend(friend) => request.set_enable_friend(friend.as_bytes()),
                AppRequest::DisableFriend(friend) => request.set_disable_friend(friend.as_bytes()),
                AppRequest::SetLimit {
                    friend,
                    currency,
                    remote_max_debt,
                } => {
                    let mut b = request.init_set_limit();
                    b.set_friend(friend.as_bytes());
                    b.set_currency(currency.as_str());
                    write_credits(b.init_remote_max_debt(), *remote_max_debt);
                }
                AppRequest::SetRate {
                    friend,
                    currency,
                    rate,
                } => {
                    let mut b = request.init_set_rate();
                    b.set_friend(friend.as_bytes());
                    b.set_currency(currency.as_str());
                    write_rate(b.init_rate(), rate);
                }
                AppRequest::OpenCurrency { friend, currency } => {
                    let mut b = request.init_open_currency();
                    b.set_friend(friend.as_bytes());
                    b.set_currency(currency.as_str());
                }
                AppRequest::CloseCurrency { friend, currency } => {
                    let mut b = request.init_close_currency();
                    b.set_friend(friend.as_bytes());
                    b.set_currency(currency.as_str());
                }
                AppRequest::AcceptResetTerms {
                    friend,
                    reset_token,
                } => {
                    let mut b = request.init_accept_reset_terms();
                    b.set_friend(friend.as_bytes());
                    b.set_reset_token(reset_token.as_bytes());
                }
                AppRequest::AddRelay(relay) => write_relay_address(request.init_add_relay(), relay),
                AppRequest::RemoveRelay(key) => request.set_remove_relay(key.as_bytes()),
                AppRequest::AddIndexServer(server) => {
                    write_relay_address(request.init_add_index_server(), server)
                }
                AppRequest::RemoveIndexServer(key) => {
                    request.set_remove_index_server(key.as_bytes())
                }
                AppRequest::CreateInvoice {
                    currency,
                    amount,
                    valid_for_ms,
                    description,
                } => {
                    let mut b = request.init_create_invoice();
                    b.set_currency(currency.as_str());
                    write_credits(b.reborrow().init_amount(), *amount);
                    b.set_valid_for_ms(*valid_for_ms);
                    b.set_description(description.as_str());
                }
                AppRequest::CancelInvoice(id) => request.set_cancel_invoice(id.as_bytes()),
                AppRequest::Quote {
                    invoice,
                    max_routes,
                } => {
                    let mut b = request.init_quote();
                    b.set_invoice(invoice.to_uri().as_str());
                    b.set_max_routes(*max_routes);
                }
                AppRequest::Pay { invoice, max_fees } => {
                    let mut b = request.init_pay();
                    b.set_invoice(invoice.to_uri().as_str());
                    write_credits(b.init_max_fees(), *max_fees);
                }
                AppRequest::Routes {
                    destination,
                    currency,
                    amount,
                    max_routes,
                } => {
                    let mut b = request.init_routes();
                    b.set_destination(destination.as_bytes());
                    b.set_currency(currency.as_str());
                    write_credits(b.reborrow().init_amount(), *amount);
                    b.set_max_routes(*max_routes);
                }
            }
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        use app_capnp::app_to_node::request::Which as W;
        check_size(bytes)?;
        decode_root::<app_capnp::app_to_node::Owned, _>(bytes, |root| {
            let which = root
                .get_request()
                .which()
                .map_err(|_| DecodeError::UnknownVariant("AppToNode.request"))?;
            let request = match which {
                W::Report(()) => AppRequest::Report,
                W::History(query) => AppRequest::History(read_query(query?)?),
                W::FriendCard(name) => {
                    let name = read_plain_text("friendCard", name)?;
                    if name.as_str().len() > MAX_CARD_NAME_LEN {
                        return Err(DecodeError::Invalid(
                            "friendCard: a card's name is at most 64 bytes",
                        ));
                    }
                    AppRequest::FriendCard { name }
                }
                W::PaymentStatus(id) => AppRequest::PaymentStatus(read_fixed(
                    "paymentStatus",
                    id,
                    PaymentId::try_from_slice,
                )?),
                W::AddFriend(b) => {
                    let name = read_plain_text("name", b.get_name())?;
                    AppRequest::AddFriend {
                        card: read_card("card", b.get_card())?,
                        name: (!name.as_str().is_empty()).then_some(name),
                    }
                }
                W::RemoveFriend(b) => AppRequest::RemoveFriend {
                    friend: read_key("friend", b.get_friend())?,
                    force: b.get_force(),
                },
                W::SetFriendName(b) => AppRequest::SetFriendName {
                    friend: read_key("friend", b.get_friend())?,
                    name: read_plain_text("name", b.get_name())?,
                },
                W::EnableFriend(friend) => {
                    AppRequest::EnableFriend(read_key("enableFriend", friend)?)
                }
                W::DisableFriend(friend) => {
                    AppRequest::DisableFriend(read_key("disableFriend", friend)?)
                }
                W::SetLimit(b) => AppRequest::SetLimit {
                    friend: read_key("friend", b.get_friend())?,
                    currency: read_currency("currency", b.get_currency())?,
                    remote_max_debt: read_credits("remoteMaxDebt", b.get_remote_max_debt())?,
                },
                W::SetRate(b) => AppRequest::SetRate {
                    friend: read_key("friend", b.get_friend())?,
                    currency: read_currency("currency", b.get_currency())?,
                    rate: read_rate(b.get_rate())?,
                },
                W::OpenCurrency(b) => AppRequest::OpenCurrency {
                    friend: read_key("friend", b.get_friend())?,
                    currency: read_currency("currency", b.get_currency())?,
                },
                W::CloseCurrency(b) => AppRequest::CloseCurrency {
                    friend: read_key("friend", b.get_friend())?,
                    currency: read_currency("currency", b.get_currency())?,
                },
                W::AcceptResetTerms(b) => AppRequest::AcceptResetTerms {
                    friend: read_key("friend", b.get_friend())?,
                    reset_token: read_fixed(
                        "resetToken",
                        b.get_reset_token(),
                        Signature::try_from_slice,
                    )?,
                },
                W::AddRelay(relay) => AppRequest::AddRelay(read_relay_address(relay?)?),
                W::RemoveRelay(key) => AppRequest::RemoveRelay(read_key("removeRelay", key)?),
                W::AddIndexServer(server) => {
                    AppRequest::AddIndexServer(read_relay_address(server?)?)
                }
                W::RemoveIndexServer(key) => {
                    AppRequest::RemoveIndexServer(read_key("removeIndexServer", key)?)
                }
                W::CreateInvoice(b) => {
                    let description = read_plain_text("description", b.get_description())?;
                    if description.as_str().len() > MAX_INVOICE_DESCRIPTION_LEN {
                        return Err(DecodeError::Invalid(
                            "createInvoice: a description is at most 140 bytes",
                        ));
                    }
                    let valid_for_ms = b.get_valid_for_ms();
                    if valid_for_ms == 0 {
                        return Err(DecodeError::Invalid(
                            "createInvoice: validForMs must be more than zero",
                        ));
                    }
                    AppRequest::CreateInvoice {
                        currency: read_currency("currency", b.get_currency())?,
                        amount: read_positive(
                            "amount",
                            b.get_amount(),
                            "createInvoice: the amount must be more than zero",
                        )?,
                        valid_for_ms,
                        description,
                    }
                }
                W::CancelInvoice(id) => AppRequest::CancelInvoice(read_fixed(
                    "cancelInvoice",
                    id,
                    InvoiceId::try_from_slice,
                )?),
                W::Quote(b) => AppRequest::Quote {
                    invoice: read_invoice("invoice", b.get_invoice())?,
                    max_routes: read_max_routes(b.get_max_routes())?,
                },
                W::Pay(b) => AppRequest::Pay {
                    invoice: read_invoice("invoice", b.get_invoice())?,
                    max_fees: read_credits("maxFees", b.get_max_fees())?,
                },
                W::Routes(b) => AppRequest::Routes {
                    destination: read_key("destination", b.get_destination())?,
                    currency: read_currency("currency", b.get_currency())?,
                    amount: read_positive(
                        "amount",
                        b.get_amount(),
                        "routes: the amount must be more than zero",
                    )?,
                    max_routes: read_max_routes(b.get_max_routes())?,
                },
            };
            Ok(AppToNode {
                request_id: root.get_request_id(),
                request,
            })
        })
    }
}

impl WireMessage for NodeToApp {
    fn encode(&self) -> Vec<u8> {
        encode_root::<app_capnp::node_to_app::Owned>(|root| match self {
            NodeToApp::Welcome(welcome) => write_welcome(root.init_welcome(), welcome),
            NodeToApp::Refused(error) => write_error(root.init_refused(), error),
            NodeToApp::Report(report) => write_report(root.init_report(), report),
            NodeToApp::Event(event) => write_event(root.init_event(), event),
            NodeToApp::Response { request_id, result } => {
                let mut response = root.init_response();
                response.set_request_id(*request_id);
                let mut b = response.init_result();
                match result {
                    AppResult::Ok => b.set_ok(()),
                    AppResult::Error(error) => write_error(b.init_error(), error),
                    AppResult::Report(report) => write_report(b.init_report(), report),
                    AppResult::History(events) => {
                        let mut list = b.init_history(events.len() as u32);
                        for (index, event) in events.iter().enumerate() {
                            write_event(list.reborrow().get(index as u32), event);
                        }
                    }
                    AppResult::FriendCard(card) => b.set_friend_card(card.to_uri().as_str()),
                    AppResult::Invoice(invoice) => b.set_invoice(invoice.to_uri().as_str()),
                    AppResult::Quote(quote) => {
                        let mut q = b.init_quote();
                        write_routes(
                            q.reborrow().init_routes(quote.routes.len() as u32),
                            &quote.routes,
                        );
                        write_credits(q.init_total_fees(), quote.total_fees);
                    }
                    AppResult::Payment(payment) => write_payment(b.init_payment(), payment),
                    AppResult::Routes(routes) => {
                        write_routes(b.init_routes(routes.len() as u32), routes)
                    }
                }
            }
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        use app_capnp::node_to_app::response::result::Which as R;
        use app_capnp::node_to_app::Which as W;
        check_size(bytes)?;
        decode_root::<app_capnp::node_to_app::Owned, _>(bytes, |root| {
            let which = root
                .which()
                .map_err(|_| DecodeError::UnknownVariant("NodeToApp"))?;
            Ok(match which {
                W::Welcome(welcome) => NodeToApp::Welcome(read_welcome(welcome?)?),
                W::Refused(error) => NodeToApp::Refused(read_error(error?)?),
                W::Report(report) => NodeToApp::Report(Box::new(read_report(report?)?)),
                W::Event(event) => NodeToApp::Event(read_event(event?)?),
                W::Response(response) => {
                    let which = response
                        .get_result()
                        .which()
                        .map_err(|_| DecodeError::UnknownVariant("NodeToApp.response.result"))?;
                    let result = match which {
                        R::Ok(()) => AppResult::Ok,
                        R::Error(error) => AppResult::Error(read_error(error?)?),
                        R::Report(report) => AppResult::Report(Box::new(read_report(report?)?)),
                        R::History(list) => {
                            let list = list?;
                            let len = check_len("history", list.len(), MAX_APP_HISTORY)?;
                            let mut events = Vec::with_capacity(len);
                            for event in list.iter() {
                                events.push(read_event(event)?);
                            }
                            AppResult::History(events)
                        }
                        R::FriendCard(card) => {
                            AppResult::FriendCard(read_card("friendCard", card)?)
                        }
                        R::Invoice(invoice) => {
                            AppResult::Invoice(read_invoice("invoice", invoice)?)
                        }
                        R::Quote(quote) => {
                            let quote = quote?;
                            let routes = read_routes("routes", quote.get_routes())?;
                            if routes.is_empty() {
                                return Err(DecodeError::Invalid("a quote has at least one route"));
                            }
                            AppResult::Quote(Quote {
                                routes,
                                total_fees: read_credits("totalFees", quote.get_total_fees())?,
                            })
                        }
                        R::Payment(payment) => AppResult::Payment(read_payment(payment?)?),
                        R::Routes(routes) => AppResult::Routes(read_routes("routes", routes)?),
                    };
                    NodeToApp::Response {
                        request_id: response.get_request_id(),
                        result,
                    }
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::Invoice;
    use crate::types::{HashedLock, NetAddress, PlainLock};

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn currency(name: &str) -> Currency {
        Currency::new(name).unwrap()
    }

    fn relay(n: u8) -> RelayAddress {
        RelayAddress {
            public_key: key(n),
            address: NetAddress::new(&format!("relay{n}.example.org:4000")).unwrap(),
        }
    }

    fn card() -> FriendCard {
        FriendCard::new(key(7), Text::new("Alice").unwrap(), vec![relay(9)]).unwrap()
    }

    fn invoice() -> Invoice {
        Invoice {
            invoice_id: InvoiceId::from_bytes([1; 32]),
            seller: key(2),
            seller_relays: vec![relay(3)],
            currency: currency("FST"),
            amount: Credits(1_250),
            expires_at: 1_800_000_000_000,
            description: Text::new("Two coffees").unwrap(),
            hashed_lock: HashedLock::from_bytes([4; 32]),
            signature: Signature::from_bytes([5; 64]),
        }
    }

    fn receipt() -> Receipt {
        Receipt {
            invoice: invoice(),
            plain_lock: PlainLock::from_bytes([6; 32]),
        }
    }

    /// An app-wire route: its capacity is its amount.
    fn route(amount: u128) -> Route {
        Route {
            nodes: vec![key(1), key(4), key(2)],
            amount: Credits(amount),
            fees: Credits(1),
            capacity: Credits(amount),
        }
    }

    fn currency_report(name: &str) -> CurrencyReport {
        CurrencyReport {
            currency: currency(name),
            balance: Balance(-42),
            local_max_debt: Credits(100),
            remote_max_debt: Credits::MAX,
            local_pending_debt: Credits(3),
            remote_pending_debt: Credits(0),
            rate: FeeRate::new(Credits(2), 2_500).unwrap(),
            is_open: true,
        }
    }

    fn friend(n: u8) -> FriendReport {
        FriendReport {
            public_key: key(n),
            name: Text::new("Bob").unwrap(),
            relays: vec![relay(n.wrapping_add(100))],
            status: FriendStatus::Online,
            currencies: vec![currency_report("FST"), currency_report("USD")],
            reset_terms: None,
        }
    }

    fn report() -> NodeReport {
        let mut inconsistent = friend(11);
        inconsistent.status = FriendStatus::Inconsistent;
        inconsistent.reset_terms = Some(ResetTermsReport {
            reset_token: Signature::from_bytes([8; 64]),
            balances: vec![
                (currency("FST"), Balance(7)),
                (currency("USD"), Balance(-7)),
            ],
        });
        let mut disabled = friend(12);
        disabled.status = FriendStatus::Disabled;
        disabled.relays.clear();
        disabled.currencies.clear();
        NodeReport {
            public_key: key(1),
            relays: vec![relay(20), relay(21)],
            index_servers: vec![relay(30)],
            friends: vec![friend(10), inconsistent, disabled],
            accounts: vec![AccountReport {
                currency: currency("FST"),
                fees_earned: Credits(5),
                fees_paid: Credits(6),
                received: Credits(1_000),
                sent: Credits(2_000),
            }],
        }
    }

    fn event() -> NodeEvent {
        NodeEvent {
            id: 17,
            timestamp_ms: 1_700_000_000_000,
            kind: "payment-succeeded".into(),
            friend: Some(key(10)),
            status: Some("succeeded".into()),
            payload_json: r#"{"amount":"1250","fees":"2"}"#.into(),
        }
    }

    fn payment(state: PaymentState) -> PaymentStatus {
        let done = state != PaymentState::InProgress;
        PaymentStatus {
            payment_id: PaymentId::from_bytes([9; 16]),
            invoice_id: InvoiceId::from_bytes([1; 32]),
            state,
            amount: Credits(1_250),
            fees: Credits(2),
            routes: 2,
            receipt: (state == PaymentState::Succeeded).then(receipt),
            started_at_ms: 1_700_000_000_000,
            finished_at_ms: done.then_some(1_700_000_001_000),
        }
    }

    /// One request of every kind, with the permissions that allow it (written out here from
    /// the schema comments, independently of [`AppRequest::permissions`]).
    fn requests() -> Vec<(AppRequest, &'static str)> {
        vec![
            (AppRequest::Report, "info"),
            (AppRequest::History(HistoryQuery::default()), "info"),
            (
                AppRequest::History(HistoryQuery {
                    since_ms: Some(1),
                    after_id: Some(99),
                    friend: Some(key(3)),
                    limit: Some(MAX_APP_HISTORY as u32),
                }),
                "info",
            ),
            (
                AppRequest::FriendCard {
                    name: Text::new("Carol's shop").unwrap(),
                },
                "info",
            ),
            (
                AppRequest::PaymentStatus(PaymentId::from_bytes([3; 16])),
                "info or buy",
            ),
            (
                AppRequest::AddFriend {
                    card: card(),
                    name: None,
                },
                "config",
            ),
            (
                AppRequest::AddFriend {
                    card: card(),
                    name: Some(Text::new("Alice B.").unwrap()),
                },
                "config",
            ),
            (
                AppRequest::RemoveFriend {
                    friend: key(3),
                    force: true,
                },
                "config",
            ),
            (
                AppRequest::SetFriendName {
                    friend: key(3),
                    name: Text::new("Dave").unwrap(),
                },
                "config",
            ),
            (AppRequest::EnableFriend(key(3)), "config"),
            (AppRequest::DisableFriend(key(3)), "config"),
            (
                AppRequest::SetLimit {
                    friend: key(3),
                    currency: currency("FST"),
                    remote_max_debt: Credits(1 << 100),
                },
                "config",
            ),
            (
                AppRequest::SetRate {
                    friend: key(3),
                    currency: currency("FST"),
                    rate: FeeRate::new(Credits(0), 1_000_000).unwrap(),
                },
                "config",
            ),
            (
                AppRequest::OpenCurrency {
                    friend: key(3),
                    currency: currency("USD"),
                },
                "config",
            ),
            (
                AppRequest::CloseCurrency {
                    friend: key(3),
                    currency: currency("USD"),
                },
                "config",
            ),
            (
                AppRequest::AcceptResetTerms {
                    friend: key(3),
                    reset_token: Signature::from_bytes([8; 64]),
                },
                "config",
            ),
            (AppRequest::AddRelay(relay(5)), "config"),
            (AppRequest::RemoveRelay(key(5)), "config"),
            (AppRequest::AddIndexServer(relay(6)), "config"),
            (AppRequest::RemoveIndexServer(key(6)), "config"),
            (
                AppRequest::CreateInvoice {
                    currency: currency("FST"),
                    amount: Credits(1_250),
                    valid_for_ms: 3_600_000,
                    description: Text::new("Two coffees").unwrap(),
                },
                "sell",
            ),
            (
                AppRequest::CancelInvoice(InvoiceId::from_bytes([1; 32])),
                "sell",
            ),
            (
                AppRequest::Quote {
                    invoice: Box::new(invoice()),
                    max_routes: 8,
                },
                "buy",
            ),
            (
                AppRequest::Pay {
                    invoice: Box::new(invoice()),
                    max_fees: Credits(10),
                },
                "buy",
            ),
            (
                AppRequest::Routes {
                    destination: key(2),
                    currency: currency("FST"),
                    amount: Credits(1),
                    max_routes: 1,
                },
                "routes",
            ),
        ]
    }

    fn node_messages() -> Vec<NodeToApp> {
        let response = |result| NodeToApp::Response {
            request_id: u64::MAX,
            result,
        };
        vec![
            NodeToApp::Welcome(Welcome {
                node_public_key: key(1),
                permissions: Permissions::NONE
                    .with(Permission::Info)
                    .with(Permission::Sell),
                app_name: Text::new("wallet").unwrap(),
            }),
            NodeToApp::Refused(AppError::new(
                AppErrorKind::NotRegistered,
                "this app is not registered: run `stctrl app add`",
            )),
            NodeToApp::Report(Box::new(report())),
            NodeToApp::Event(event()),
            NodeToApp::Event(NodeEvent {
                friend: None,
                status: None,
                payload_json: String::new(),
                ..event()
            }),
            response(AppResult::Ok),
            response(AppResult::Error(AppError::new(
                AppErrorKind::PermissionDenied,
                "set-limit needs the config permission",
            ))),
            response(AppResult::Report(Box::new(report()))),
            response(AppResult::History(vec![event(), event()])),
            response(AppResult::History(vec![])),
            response(AppResult::FriendCard(card())),
            response(AppResult::Invoice(Box::new(invoice()))),
            response(AppResult::Quote(Quote {
                routes: vec![route(1_000), route(250)],
                total_fees: Credits(2),
            })),
            response(AppResult::Payment(payment(PaymentState::InProgress))),
            response(AppResult::Payment(payment(PaymentState::Succeeded))),
            response(AppResult::Payment(payment(PaymentState::Cancelled))),
            response(AppResult::Routes(vec![route(1)])),
            response(AppResult::Routes(vec![])),
        ]
    }

    fn app_samples() -> Vec<AppToNode> {
        requests()
            .into_iter()
            .enumerate()
            .map(|(index, (request, _))| AppToNode {
                request_id: index as u64 * 1_000_003,
                request,
            })
            .collect()
    }

    /// Raw `AppToNode` bytes built field by field (to make messages our encoder never writes).
    fn raw_request(build: impl FnOnce(app_capnp::app_to_node::request::Builder<'_>)) -> Vec<u8> {
        encode_root::<app_capnp::app_to_node::Owned>(|mut root| {
            root.set_request_id(1);
            build(root.init_request());
        })
    }

    /// Raw `NodeToApp` response bytes built field by field.
    fn raw_result(
        build: impl FnOnce(app_capnp::node_to_app::response::result::Builder<'_>),
    ) -> Vec<u8> {
        encode_root::<app_capnp::node_to_app::Owned>(|root| {
            let mut response = root.init_response();
            response.set_request_id(1);
            build(response.init_result());
        })
    }

    /// `a` with the one byte where it differs from `b` set to `value`: turns an enum value or
    /// union discriminant into one the schema does not have.
    fn with_differing_byte(a: &[u8], b: &[u8], value: u8) -> Vec<u8> {
        assert_eq!(a.len(), b.len());
        let differing: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(differing.len(), 1, "the two encodings differ in one byte");
        let mut patched = a.to_vec();
        patched[differing[0]] = value;
        patched
    }

    #[test]
    fn every_request_round_trips() {
        let samples = app_samples();
        let names: HashSet<_> = samples.iter().map(|m| m.request.name()).collect();
        assert_eq!(names.len(), 23, "one sample of each of the 23 requests");
        for message in samples {
            let bytes = message.encode();
            assert_eq!(AppToNode::decode(&bytes).unwrap(), message);
            assert_eq!(message.encode_checked().unwrap(), bytes);
        }
    }

    #[test]
    fn every_node_message_and_result_round_trips() {
        for message in node_messages() {
            let bytes = message.encode();
            assert_eq!(NodeToApp::decode(&bytes).unwrap(), message, "{message:?}");
            assert_eq!(message.encode_checked().unwrap(), bytes);
        }
    }

    #[test]
    fn app_routes_carry_no_capacity_and_decode_with_capacity_equal_to_amount() {
        let mut wide = route(10);
        wide.capacity = Credits(500);
        let bytes = NodeToApp::Response {
            request_id: 1,
            result: AppResult::Routes(vec![wide]),
        }
        .encode();
        let NodeToApp::Response {
            result: AppResult::Routes(routes),
            ..
        } = NodeToApp::decode(&bytes).unwrap()
        else {
            panic!("not a routes response");
        };
        assert_eq!(routes, vec![route(10)]);
    }

    #[test]
    fn wrong_key_and_id_lengths_are_rejected() {
        let cases = [
            raw_request(|mut r| r.set_enable_friend(&[1; 31][..])),
            raw_request(|mut r| r.set_remove_relay(&[1; 33][..])),
            raw_request(|mut r| r.set_payment_status(&[1; 32][..])),
            raw_request(|mut r| r.set_cancel_invoice(&[1; 16][..])),
            raw_request(|r| {
                let mut b = r.init_accept_reset_terms();
                b.set_friend(&[1; 32][..]);
                b.set_reset_token(&[1; 63][..]);
            }),
            raw_request(|r| r.init_history().set_friend(&[1; 5][..])),
        ];
        for bytes in cases {
            assert!(
                matches!(
                    AppToNode::decode(&bytes),
                    Err(DecodeError::InvalidField { .. })
                ),
                "{:?}",
                AppToNode::decode(&bytes)
            );
        }
        // An empty key is not "no key" where a key is required.
        let bytes = raw_request(|mut r| r.set_disable_friend(&[][..]));
        assert!(AppToNode::decode(&bytes).is_err());
        let bytes = raw_result(|r| {
            let mut list = r.init_routes(1);
            let mut route = list.reborrow().get(0);
            write_credits(route.reborrow().init_amount(), Credits(1));
            let mut nodes = route.init_nodes(2);
            nodes.set(0, &[1; 32][..]);
            nodes.set(1, &[2; 31][..]);
        });
        assert!(matches!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::InvalidField { field: "nodes", .. })
        ));
    }

    #[test]
    fn over_long_or_empty_texts_are_rejected() {
        let long_event = |change: fn(&mut NodeEvent)| {
            let mut event = event();
            change(&mut event);
            NodeToApp::Event(event).encode()
        };
        let cases = [
            long_event(|e| e.kind = "k".repeat(MAX_APP_EVENT_KIND_LEN + 1)),
            long_event(|e| e.kind = String::new()),
            long_event(|e| e.kind = "two\nlines".into()),
            long_event(|e| e.status = Some("s".repeat(MAX_APP_EVENT_KIND_LEN + 1))),
            long_event(|e| e.payload_json = "j".repeat(MAX_APP_EVENT_PAYLOAD_LEN + 1)),
            NodeToApp::Refused(AppError {
                kind: AppErrorKind::Internal,
                message: "m".repeat(MAX_APP_ERROR_LEN + 1),
            })
            .encode(),
            raw_result(|r| {
                let mut friend = r.init_report().init_friends(1).get(0);
                friend.set_public_key(&[1; 32][..]);
                friend.set_name("n".repeat(300).as_str());
            }),
        ];
        for bytes in cases {
            assert!(NodeToApp::decode(&bytes).is_err());
        }
        // At the limits, they are accepted.
        let at_limit = [
            long_event(|e| e.kind = "k".repeat(MAX_APP_EVENT_KIND_LEN)),
            long_event(|e| e.payload_json = "j".repeat(MAX_APP_EVENT_PAYLOAD_LEN)),
            NodeToApp::Refused(AppError::new(
                AppErrorKind::Internal,
                "é".repeat(MAX_APP_ERROR_LEN),
            ))
            .encode(),
        ];
        for bytes in at_limit {
            NodeToApp::decode(&bytes).unwrap();
        }
        let requests = [
            raw_request(|mut r| r.set_friend_card("n".repeat(MAX_CARD_NAME_LEN + 1).as_str())),
            raw_request(|r| {
                let mut b = r.init_create_invoice();
                b.set_currency("FST");
                write_credits(b.reborrow().init_amount(), Credits(1));
                b.set_valid_for_ms(1);
                b.set_description("d".repeat(MAX_INVOICE_DESCRIPTION_LEN + 1).as_str());
            }),
            raw_request(|r| {
                let mut b = r.init_set_limit();
                b.set_friend(&[1; 32][..]);
                b.set_currency("ABCDEFGHIJKLMNOPQ");
            }),
        ];
        for bytes in requests {
            assert!(AppToNode::decode(&bytes).is_err());
        }
    }

    #[test]
    fn app_error_new_cuts_long_messages_at_a_character_boundary() {
        let error = AppError::new(AppErrorKind::Internal, "é".repeat(MAX_APP_ERROR_LEN));
        assert_eq!(error.message.len(), MAX_APP_ERROR_LEN);
        let error = AppError::new(AppErrorKind::Internal, format!("x{}", "é".repeat(600)));
        assert_eq!(error.message.len(), MAX_APP_ERROR_LEN - 1);
        assert_eq!(error.to_string(), error.message);
    }

    #[test]
    fn lists_over_their_limits_are_rejected() {
        let mut many_friends = report();
        many_friends.friends = (0..=MAX_APP_REPORT_FRIENDS)
            .map(|n| FriendReport {
                public_key: PublicKey::from_bytes({
                    let mut bytes = [0; 32];
                    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
                    bytes
                }),
                name: Text::default(),
                relays: vec![],
                status: FriendStatus::Offline,
                currencies: vec![],
                reset_terms: None,
            })
            .collect();
        let bytes = NodeToApp::Report(Box::new(many_friends.clone())).encode();
        assert!(matches!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::TooMany {
                field: "friends",
                ..
            })
        ));
        many_friends.friends.pop();
        let bytes = NodeToApp::Report(Box::new(many_friends)).encode();
        NodeToApp::decode(&bytes).unwrap();

        let response = |result| {
            NodeToApp::Response {
                request_id: 1,
                result,
            }
            .encode()
        };
        let mut too_many_relays = report();
        too_many_relays.relays = (0..=MAX_RELAYS as u8).map(relay).collect();
        let mut too_many_currencies = report();
        too_many_currencies.friends[0].currencies = (0..=MAX_CURRENCIES_PER_FRIEND)
            .map(|n| currency_report(&format!("C{n}")))
            .collect();
        let mut duplicate_friend = report();
        duplicate_friend.friends[1].public_key = duplicate_friend.friends[0].public_key;
        let mut duplicate_currency = report();
        duplicate_currency.friends[0].currencies[1].currency = currency("FST");
        let mut long_route = route(1);
        long_route.nodes = (0..=MAX_ROUTE_LEN as u8).map(key).collect();
        let mut short_route = route(1);
        short_route.nodes.truncate(1);
        let mut looping_route = route(1);
        looping_route.nodes.push(key(1));
        let cases = [
            response(AppResult::Report(Box::new(too_many_relays))),
            response(AppResult::Report(Box::new(too_many_currencies))),
            response(AppResult::Report(Box::new(duplicate_friend))),
            response(AppResult::Report(Box::new(duplicate_currency))),
            response(AppResult::Routes(vec![route(1); MAX_INDEX_ROUTES + 1])),
            response(AppResult::Routes(vec![long_route])),
            response(AppResult::Routes(vec![short_route])),
            response(AppResult::Routes(vec![looping_route])),
            response(AppResult::Routes(vec![route(0)])),
            response(AppResult::Quote(Quote {
                routes: vec![],
                total_fees: Credits(0),
            })),
            response(AppResult::History(vec![event(); MAX_APP_HISTORY + 1])),
        ];
        for bytes in cases {
            assert!(NodeToApp::decode(&bytes).is_err());
        }
    }

    #[test]
    fn out_of_range_request_values_are_rejected() {
        let request = |request| {
            AppToNode {
                request_id: 1,
                request,
            }
            .encode()
        };
        let cases = [
            request(AppRequest::Quote {
                invoice: Box::new(invoice()),
                max_routes: 0,
            }),
            request(AppRequest::Routes {
                destination: key(2),
                currency: currency("FST"),
                amount: Credits(1),
                max_routes: MAX_INDEX_ROUTES as u32 + 1,
            }),
            request(AppRequest::Routes {
                destination: key(2),
                currency: currency("FST"),
                amount: Credits(0),
                max_routes: 1,
            }),
            request(AppRequest::CreateInvoice {
                currency: currency("FST"),
                amount: Credits(0),
                valid_for_ms: 1,
                description: Text::default(),
            }),
            request(AppRequest::CreateInvoice {
                currency: currency("FST"),
                amount: Credits(1),
                valid_for_ms: 0,
                description: Text::default(),
            }),
            request(AppRequest::History(HistoryQuery {
                limit: Some(MAX_APP_HISTORY as u32 + 1),
                ..HistoryQuery::default()
            })),
            raw_request(|r| {
                let mut b = r.init_set_rate();
                b.set_friend(&[1; 32][..]);
                b.set_currency("FST");
                b.init_rate().set_proportional_ppm(1_000_001);
            }),
            raw_request(|r| {
                let mut b = r.init_set_limit();
                b.set_friend(&[1; 32][..]);
                b.set_currency("FST");
                b.init_remote_max_debt().set_hi(u64::MAX);
            }),
        ];
        for bytes in cases {
            assert!(AppToNode::decode(&bytes).is_err());
        }
    }

    #[test]
    fn tampered_or_wrong_kind_uris_are_rejected() {
        let mut damaged = card().to_uri().into_bytes();
        let index = damaged.len() - 5;
        damaged[index] = if damaged[index] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        let add_friend = |uri: &str| {
            raw_request(|r| {
                let mut b = r.init_add_friend();
                b.set_card(uri);
            })
        };
        let result = AppToNode::decode(&add_friend(&damaged));
        assert!(
            matches!(&result, Err(DecodeError::Malformed(reason)) if reason.contains("checksum")),
            "{result:?}"
        );
        assert!(AppToNode::decode(&add_friend(&invoice().to_uri())).is_err());
        assert!(AppToNode::decode(&add_friend("")).is_err());
        AppToNode::decode(&add_friend(&card().to_uri())).unwrap();

        let pay = |uri: &str| {
            raw_request(|r| {
                let mut b = r.init_pay();
                b.set_invoice(uri);
            })
        };
        assert!(AppToNode::decode(&pay(&card().to_uri())).is_err());
        let mut damaged = invoice().to_uri().into_bytes();
        let index = damaged.len() - 7;
        damaged[index] = if damaged[index] == b'A' { b'B' } else { b'A' };
        assert!(AppToNode::decode(&pay(&String::from_utf8(damaged).unwrap())).is_err());
        assert!(NodeToApp::decode(&raw_result(|mut r| r.set_invoice(&*card().to_uri()))).is_err());
        assert!(
            NodeToApp::decode(&raw_result(|mut r| r.set_friend_card(&*invoice().to_uri())))
                .is_err()
        );
    }

    #[test]
    fn receipts_are_strict_and_only_for_succeeded_payments() {
        let mut early = payment(PaymentState::InProgress);
        early.receipt = Some(receipt());
        let response = |payment| {
            NodeToApp::Response {
                request_id: 1,
                result: AppResult::Payment(payment),
            }
            .encode()
        };
        assert!(NodeToApp::decode(&response(early)).is_err());
        let bytes = raw_result(|r| {
            let mut b = r.init_payment();
            b.set_payment_id(&[1; 16][..]);
            b.set_invoice_id(&[1; 32][..]);
            b.set_state(app_capnp::PaymentState::Succeeded);
            let mut receipt = receipt().to_bytes();
            receipt.pop();
            b.set_receipt(receipt.as_slice());
        });
        assert!(matches!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_enum_values_and_union_members_are_rejected() {
        let error = |kind| NodeToApp::Refused(AppError::new(kind, "x")).encode();
        let bytes = with_differing_byte(
            &error(AppErrorKind::NotRegistered),
            &error(AppErrorKind::PermissionDenied),
            200,
        );
        assert_eq!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::UnknownVariant("AppError.kind"))
        );

        let status = |status| {
            let mut report = report();
            report.friends[0].status = status;
            NodeToApp::Report(Box::new(report)).encode()
        };
        let bytes = with_differing_byte(
            &status(FriendStatus::Online),
            &status(FriendStatus::Disabled),
            9,
        );
        assert_eq!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::UnknownVariant("FriendReport.status"))
        );

        let state = |state| {
            let mut payment = payment(PaymentState::Cancelled);
            payment.state = state;
            NodeToApp::Response {
                request_id: 1,
                result: AppResult::Payment(payment),
            }
            .encode()
        };
        let bytes = with_differing_byte(
            &state(PaymentState::Cancelled),
            &state(PaymentState::InProgress),
            3,
        );
        assert_eq!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::UnknownVariant("PaymentStatus.state"))
        );

        let bytes = with_differing_byte(
            &raw_request(|mut r| r.set_enable_friend(&[1; 32][..])),
            &raw_request(|mut r| r.set_disable_friend(&[1; 32][..])),
            0xee,
        );
        assert_eq!(
            AppToNode::decode(&bytes),
            Err(DecodeError::UnknownVariant("AppToNode.request"))
        );

        let bytes = with_differing_byte(
            &raw_result(|mut r| r.set_friend_card("x")),
            &raw_result(|mut r| r.set_invoice("x")),
            0xee,
        );
        assert_eq!(
            NodeToApp::decode(&bytes),
            Err(DecodeError::UnknownVariant("NodeToApp.response.result"))
        );
    }

    #[test]
    fn oversized_truncated_and_corrupted_messages_are_errors_not_panics() {
        let too_large = vec![0u8; MAX_APP_MESSAGE_LEN + 8];
        assert_eq!(
            AppToNode::decode(&too_large),
            Err(DecodeError::TooLarge(MAX_APP_MESSAGE_LEN + 8))
        );
        assert_eq!(
            NodeToApp::decode(&too_large),
            Err(DecodeError::TooLarge(MAX_APP_MESSAGE_LEN + 8))
        );
        for message in app_samples() {
            let bytes = message.encode();
            for cut in (0..bytes.len()).step_by(8) {
                assert!(AppToNode::decode(&bytes[..cut]).is_err());
            }
            for index in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[index] ^= 0x5a;
                let _ = AppToNode::decode(&flipped);
            }
        }
        for message in node_messages() {
            let bytes = message.encode();
            for cut in (0..bytes.len()).step_by(8) {
                assert!(NodeToApp::decode(&bytes[..cut]).is_err());
            }
            for index in (0..bytes.len()).step_by(3) {
                let mut flipped = bytes.clone();
                flipped[index] ^= 0xa5;
                if let Ok(decoded) = NodeToApp::decode(&flipped) {
                    assert_eq!(NodeToApp::decode(&decoded.encode()).unwrap(), decoded);
                }
            }
        }
    }

    #[test]
    fn a_report_of_a_thousand_typical_friends_fits_one_message() {
        let mut big = report();
        big.friends = (0..1000u32)
            .map(|n| {
                let mut bytes = [0; 32];
                bytes[..4].copy_from_slice(&n.to_be_bytes());
                FriendReport {
                    public_key: PublicKey::from_bytes(bytes),
                    currencies: vec![currency_report("FST")],
                    ..friend(1)
                }
            })
            .collect();
        let message = NodeToApp::Report(Box::new(big));
        let bytes = message.encode_checked().unwrap();
        // About 400 bytes per friend with one relay and one currency: some 2,600 such friends
        // fit one message, so a node near MAX_APP_REPORT_FRIENDS must check the size.
        assert!(
            bytes.len() < MAX_APP_MESSAGE_LEN / 2,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn encode_checked_refuses_messages_over_the_limit() {
        let events = vec![
            NodeEvent {
                payload_json: "j".repeat(MAX_APP_EVENT_PAYLOAD_LEN),
                ..event()
            };
            MAX_APP_HISTORY
        ];
        let message = NodeToApp::Response {
            request_id: 1,
            result: AppResult::History(events),
        };
        let err = message.encode_checked().unwrap_err();
        assert!(err.len > MAX_APP_MESSAGE_LEN);
        assert_eq!(message.encode().len(), err.len);
    }

    #[test]
    fn permissions_parse_and_display_round_trip() {
        assert_eq!("all".parse::<Permissions>().unwrap(), Permissions::ALL);
        assert_eq!("none".parse::<Permissions>().unwrap(), Permissions::NONE);
        assert_eq!(
            "info,buy,sell,config,routes"
                .parse::<Permissions>()
                .unwrap(),
            Permissions::ALL
        );
        assert_eq!(
            " Info , buy ".parse::<Permissions>().unwrap(),
            Permissions {
                info: true,
                buy: true,
                ..Permissions::NONE
            }
        );
        assert_eq!(Permissions::ALL.to_string(), "info,buy,sell,config,routes");
        assert_eq!(Permissions::NONE.to_string(), "none");
        assert_eq!(Permissions::default(), Permissions::NONE);
        for bits in 0u8..32 {
            let permissions = Permission::ALL
                .into_iter()
                .enumerate()
                .filter(|(index, _)| bits & (1 << index) != 0)
                .fold(Permissions::NONE, |acc, (_, p)| acc.with(p));
            let text = permissions.to_string();
            assert_eq!(text.parse::<Permissions>().unwrap(), permissions, "{text}");
        }
        for bad in ["", "info,", "admin", "info,write"] {
            let err = bad.parse::<Permissions>().unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("info, buy, sell, config, routes"),
                "{message}"
            );
        }
        assert_eq!(
            "info,write".parse::<Permissions>().unwrap_err().word,
            "write"
        );
    }

    #[test]
    fn each_request_is_permitted_by_exactly_its_permissions() {
        for (request, expected) in requests() {
            let allowed: Vec<&str> = expected.split(" or ").collect();
            assert_eq!(
                request.required_permission(),
                expected,
                "{}",
                request.name()
            );
            assert!(
                !request.is_permitted(&Permissions::NONE),
                "{}",
                request.name()
            );
            assert!(
                request.is_permitted(&Permissions::ALL),
                "{}",
                request.name()
            );
            for permission in Permission::ALL {
                let only = Permissions::NONE.with(permission);
                assert_eq!(
                    request.is_permitted(&only),
                    allowed.contains(&permission.name()),
                    "{} with {only}",
                    request.name()
                );
                // Every other permission together is not enough unless one of them allows it.
                let all_but = Permission::ALL
                    .into_iter()
                    .filter(|p| *p != permission)
                    .fold(Permissions::NONE, |acc, p| acc.with(p));
                let still = allowed.iter().any(|name| *name != permission.name());
                assert_eq!(request.is_permitted(&all_but), still, "{}", request.name());
            }
        }
    }

    #[test]
    fn request_names_are_kebab_case_and_distinct() {
        let names: Vec<_> = requests().iter().map(|(r, _)| r.name()).collect();
        for name in &names {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        assert!(names.contains(&"set-limit"));
        assert!(names.contains(&"accept-reset-terms"));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics_and_decoded_messages_round_trip(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            if let Ok(message) = AppToNode::decode(&bytes) {
                proptest::prop_assert_eq!(AppToNode::decode(&message.encode()).unwrap(), message);
            }
            if let Ok(message) = NodeToApp::decode(&bytes) {
                proptest::prop_assert_eq!(NodeToApp::decode(&message.encode()).unwrap(), message);
            }
        }
    }
}
