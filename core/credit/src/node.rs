//! [`CreditNode`]: the credit layer of one node as a state machine. Inputs are user commands,
//! friend messages, connectivity changes and timeouts, each with the current time and a secure
//! RNG; every input returns an [`Output`]: changes to persist, messages to send, events for the
//! application. It decides what to send and when; it never does I/O, never reads a clock and
//! never draws OS randomness.
//!
//! Contract for the runtime (docs/ARCHITECTURE.md, "The credit layer"): apply `Output::changes` to the
//! store in one transaction and make it durable, only then send `Output::messages`, then hand
//! `Output::events` to the application. After a restart, build the node from the stored
//! [`NodeState`] and report every friend that comes online: the node retransmits what is needed.

use std::collections::{BTreeMap, BTreeSet};

use offst_crypto::{Identity, SecureRngDyn};
use offst_proto::friend::{
    FriendMessage, FriendOperation, MoveToken, MoveTokenMessage, ResetTerms,
};
use offst_proto::limits::{MAX_CURRENCIES_PER_FRIEND, MAX_OPERATIONS_IN_BATCH, MAX_RELAYS};
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{
    Balance, Credits, Currency, InvoiceId, PaymentId, PublicKey, RelayAddress, Signature, Text,
    WireMessage,
};

use crate::channel::{
    new_reset_terms, ChannelStatus, Inconsistency, ReceiveError, TokenHolder, TokenOutcome,
};
use crate::payment::PaymentProofError;
use crate::sheet::{BalanceSheet, OperationError, Side};
use crate::state::{Change, CurrencyConfig, FeeRate, Friend, NodeState};

/// Most friends per node. Friends are added by the user only; the bound keeps a mistaken
/// script from growing the state without limit. Mediating nodes have tens to hundreds.
pub const MAX_FRIENDS: usize = 4096;

/// Most user operations waiting for the token per friend. One token carries
/// `MAX_OPERATIONS_IN_BATCH` (64); 1024 is sixteen round trips of backlog.
pub const MAX_QUEUED_OPERATIONS: usize = 1024;

/// Default time after which an unanswered message is sent again (ms). Connections are reliable
/// while they last, so this only matters for messages lost across reconnects.
pub const DEFAULT_RETRANSMIT_AFTER_MS: u64 = 2_000;

/// The fee a mediator charges per request when no rate is set for the friend it comes from.
pub const DEFAULT_FEE: Credits = Credits(1);

/// How much earlier each hop's request expires than the one it received (ms): a hop that
/// waits to pass a request on gives up before the hop before it does.
pub const HOP_EXPIRY_DELTA_MS: u64 = 5_000;

/// How long the seller waits for every route of a payment once the buyer sent it (ms), on top
/// of [`HOP_EXPIRY_DELTA_MS`] per mediator.
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;

/// Most invoices a seller keeps (open and finished); finished ones are forgotten first.
pub const MAX_INVOICES: usize = 1024;

/// Most payment records a buyer keeps; finished ones are forgotten first.
pub const MAX_PAYMENTS: usize = 4096;

/// Most routes of one payment.
pub const MAX_PAYMENT_ROUTES: usize = offst_proto::limits::MAX_INDEX_ROUTES;

/// A point in time in milliseconds, on any monotonic clock the runtime chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + ms`, saturating.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// What to do when the friend publishes reset terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetPolicy {
    /// Wait for [`Command::AcceptResetTerms`].
    Manual,
    /// Accept automatically when the friend's terms give every currency the same balance as
    /// ours (nothing is owed differently; only the chain broke). Otherwise wait for the user.
    AcceptSameBalances,
    /// Accept whatever the friend proposes (for friends fully trusted, e.g. one's own nodes).
    AcceptAlways,
}

/// Configuration of the credit layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditConfig {
    /// How to answer a friend's reset terms.
    pub reset_policy: ResetPolicy,
    /// Time after which an unanswered token or reset terms are sent again (ms).
    pub retransmit_after_ms: u64,
}

impl Default for CreditConfig {
    fn default() -> Self {
        CreditConfig {
            reset_policy: ResetPolicy::AcceptSameBalances,
            retransmit_after_ms: DEFAULT_RETRANSMIT_AFTER_MS,
        }
    }
}

/// A user command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Adds a friend (from its friend card).
    AddFriend {
        /// The friend's identity.
        public_key: PublicKey,
        /// A name for it.
        name: Text,
        /// Its relays.
        relays: Vec<RelayAddress>,
    },
    /// Renames a friend.
    SetFriendName {
        /// The friend.
        friend: PublicKey,
        /// The new name.
        name: Text,
    },
    /// Replaces a friend's relays.
    SetFriendRelays {
        /// The friend.
        friend: PublicKey,
        /// The new relays.
        relays: Vec<RelayAddress>,
    },
    /// Enables or disables a friend.
    SetFriendEnabled {
        /// The friend.
        friend: PublicKey,
        /// Enabled?
        enabled: bool,
    },
    /// Removes a friend. Without `force`, only when nothing is owed either way.
    RemoveFriend {
        /// The friend.
        friend: PublicKey,
        /// Remove even with open balances (their record is lost).
        force: bool,
    },
    /// Sets how much the friend may owe us in a currency (adds the currency, open, if new).
    SetCurrencyLimit {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The limit.
        remote_max_debt: Credits,
    },
    /// Opens or closes a currency for incoming payments (adds it, limit 0, if new).
    SetCurrencyOpen {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// Open?
        open: bool,
    },
    /// Stops using a currency with the friend; it must have no balance.
    RemoveCurrency {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
    },
    /// Pays the friend directly.
    Transfer {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The amount.
        amount: Credits,
        /// An id for the transfer (random, chosen by the caller).
        transfer_id: PaymentId,
    },
    /// Accepts the friend's reset terms of an inconsistent channel.
    AcceptResetTerms {
        /// The friend.
        friend: PublicKey,
        /// The `reset_token` of the terms being accepted (so the user accepts what they saw).
        reset_token: Signature,
    },
    /// The friend lost its key and now uses `new_key` (the user checked this out of band).
    /// The friendship moves to the new key with our view of every balance and limit offered
    /// as reset terms; the friend's node accepts them to carry the balances over.
    ReplaceFriendKey {
        /// The friend's lost key.
        old_key: PublicKey,
        /// The friend's new key.
        new_key: PublicKey,
        /// The relays of the new node.
        relays: Vec<RelayAddress>,
    },
    /// Creates and signs an invoice (seller). The invoice comes back in
    /// [`Event::InvoiceCreated`]; the node collects by itself once the whole amount arrived.
    CreateInvoice {
        /// The currency.
        currency: Currency,
        /// What we must receive, fees excluded.
        amount: Credits,
        /// Unix ms after which the invoice must not be paid.
        expires_at: Timestamp,
        /// For the buyer.
        description: Text,
        /// Relays we listen on, for the buyer's app.
        relays: Vec<RelayAddress>,
    },
    /// Cancels one of our open invoices: requests waiting for it are cancelled.
    CancelInvoice {
        /// The invoice.
        invoice_id: InvoiceId,
    },
    /// Pays an invoice over the given routes at once (all or nothing).
    Pay {
        /// An id for the payment (random, chosen by the caller).
        payment_id: PaymentId,
        /// The seller's invoice.
        invoice: Box<Invoice>,
        /// The routes, each from us to the seller with what the seller receives over it; the
        /// amounts sum to the invoice amount.
        routes: Vec<PayRoute>,
        /// The most we pay in fees over all routes.
        max_fees: Credits,
    },
    /// Sets the fee we charge for carrying requests that arrive from a friend (`None`: the
    /// default of [`DEFAULT_FEE`] per request).
    SetFeeRate {
        /// The upstream friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The rate.
        rate: Option<FeeRate>,
    },
}

/// One route of [`Command::Pay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRoute {
    /// The nodes from us (first) to the seller (last).
    pub route: Vec<PublicKey>,
    /// What the seller receives over this route.
    pub dest_payment: Credits,
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No friend with this key.
    #[error("unknown friend {0}")]
    UnknownFriend(PublicKey),
    /// A friend with this key exists.
    #[error("{0} is already a friend")]
    FriendExists(PublicKey),
    /// Our own key.
    #[error("a node cannot be its own friend")]
    IsSelf,
    /// The friend table is full.
    #[error("a node may have at most {MAX_FRIENDS} friends")]
    TooManyFriends,
    /// Too many relays.
    #[error("at most {MAX_RELAYS} relays per friend")]
    TooManyRelays,
    /// The friend is disabled.
    #[error("the friend is disabled")]
    FriendDisabled,
    /// The channel is inconsistent: resolve it first (accept reset terms).
    #[error("the channel with this friend is inconsistent; accept reset terms first")]
    ChannelInconsistent,
    /// The operation is invalid on the current balance sheet.
    #[error(transparent)]
    Operation(#[from] OperationError),
    /// Too many operations already wait for the token.
    #[error("at most {MAX_QUEUED_OPERATIONS} operations may wait per friend")]
    QueueFull,
    /// Removing the friend would lose balances (use `force`).
    #[error("the friend still owes or is owed; remove with force to drop the record")]
    BalanceNotZero,
    /// No reset terms from the friend with this token.
    #[error("the friend has not published reset terms with this reset token")]
    NoSuchResetTerms,
    /// The invoice is malformed or not signed by its seller.
    #[error("invalid invoice: {0}")]
    InvalidInvoice(#[from] PaymentProofError),
    /// The invoice expired.
    #[error("the invoice expired")]
    InvoiceExpired,
    /// This invoice is already being paid or was paid.
    #[error("this invoice is already paid or being paid")]
    DuplicatePayment,
    /// A payment with this id exists.
    #[error("a payment with this id exists")]
    PaymentExists,
    /// The routes do not fit the invoice.
    #[error("invalid routes: {0}")]
    InvalidRoutes(&'static str),
    /// No open invoice with this id.
    #[error("no open invoice with this id")]
    UnknownInvoice,
    /// Too many invoices or payment records.
    #[error("too many open invoices or payments")]
    TooManyPayments,
}

/// A message to send to a friend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The friend.
    pub to: PublicKey,
    /// The message.
    pub message: FriendMessage,
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// We signed and sent a token carrying these operations (possibly none).
    TokenSent {
        /// The friend.
        friend: PublicKey,
        /// The operations.
        operations: Vec<FriendOperation>,
    },
    /// The friend's token with these operations was verified and applied.
    TokenReceived {
        /// The friend.
        friend: PublicKey,
        /// The operations.
        operations: Vec<FriendOperation>,
    },
    /// A queued user operation became invalid before it could be sent (e.g. the friend
    /// lowered its limit); it was dropped.
    OperationDropped {
        /// The friend.
        friend: PublicKey,
        /// The operation.
        operation: FriendOperation,
        /// Why.
        error: OperationError,
    },
    /// The channel is inconsistent (or the friend published new terms); the user or the
    /// policy must accept the friend's terms.
    ChannelInconsistent {
        /// The friend.
        friend: PublicKey,
        /// Our terms.
        local_terms: ResetTerms,
        /// The friend's terms, if received.
        remote_terms: Option<ResetTerms>,
    },
    /// The channel was restarted from reset terms and is consistent again.
    ChannelReset {
        /// The friend.
        friend: PublicKey,
    },
    /// A message from a friend was rejected (fatal errors also made the channel inconsistent).
    MessageRejected {
        /// The sender.
        friend: PublicKey,
        /// Why.
        error: ReceiveError,
    },
    /// We created an invoice (answer to [`Command::CreateInvoice`]): share `invoice.to_uri()`.
    InvoiceCreated {
        /// The signed invoice.
        invoice: Box<Invoice>,
    },
    /// The whole amount of one of our invoices arrived and we collected it.
    PaymentReceived {
        /// The invoice.
        invoice_id: InvoiceId,
        /// The currency.
        currency: Currency,
        /// The amount received.
        amount: Credits,
    },
    /// Our payment succeeded: the seller revealed its secret.
    PaymentSucceeded {
        /// The payment.
        payment_id: PaymentId,
        /// The receipt (verifiable offline with `payment::verify_receipt`).
        receipt: Box<Receipt>,
        /// Fees paid so far.
        fees: Credits,
    },
    /// Our payment failed: every request was cancelled and the frozen credit released.
    PaymentFailed {
        /// The payment.
        payment_id: PaymentId,
    },
}

/// What one input produced. Persist `changes` (one transaction) before sending `messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// State changes, in order.
    pub changes: Vec<Change>,
    /// Messages to friends.
    pub messages: Vec<OutgoingMessage>,
    /// Events for the application.
    pub events: Vec<Event>,
}

/// In-memory state of the link to one friend; lost on restart by design.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    online: bool,
    /// The friend asked for the token.
    friend_wants_token: bool,
    /// We asked the friend for the token and have not received a token since.
    asked_for_token: bool,
    /// When we last sent something that expects an answer.
    last_sent: Option<Timestamp>,
}

/// The credit layer of one node.
#[derive(Debug)]
pub struct CreditNode {
    pub(crate) identity: Identity,
    config: CreditConfig,
    pub(crate) state: NodeState,
    links: BTreeMap<PublicKey, Link>,
    /// Friends whose channel may have something to send after the current input.
    pub(crate) touched: BTreeSet<PublicKey>,
}

impl CreditNode {
    /// A node with the given persisted state (empty for a new node). Every friend starts
    /// offline.
    pub fn new(identity: Identity, config: CreditConfig, state: NodeState) -> CreditNode {
        CreditNode {
            identity,
            config,
            state,
            links: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// Our public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The state as persisted (exactly what applying every emitted change gives).
    pub fn state(&self) -> &NodeState {
        &self.state
    }

    /// One friend.
    pub fn friend(&self, friend: &PublicKey) -> Option<&Friend> {
        self.state.friends.get(friend)
    }

    /// Our balance with a friend in a currency, when the channel is consistent.
    pub fn balance(&self, friend: &PublicKey, currency: &Currency) -> Option<Balance> {
        match &self.friend(friend)?.channel {
            ChannelStatus::Consistent(channel) => {
                channel.sheet.currency(currency).map(|state| state.balance)
            }
            ChannelStatus::Inconsistent(_) => None,
        }
    }

    /// Whether the friend is reported online.
    pub fn is_online(&self, friend: &PublicKey) -> bool {
        self.links.get(friend).is_some_and(|link| link.online)
    }

    /// When [`CreditNode::handle_timeout`] should next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let retransmit = self
            .state
            .friends
            .iter()
            .filter(|(key, friend)| friend.enabled && self.is_online(key))
            .filter(|(_, friend)| Self::awaits_answer(friend))
            .map(|(key, _)| {
                // Never sent: due at once.
                self.links
                    .get(key)
                    .and_then(|link| link.last_sent)
                    .map_or(Timestamp(0), |sent| {
                        sent.plus_ms(self.config.retransmit_after_ms)
                    })
            })
            .min();
        match (retransmit, self.payment_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether we sent something the friend has not answered yet (a retransmission may help).
    fn awaits_answer(friend: &Friend) -> bool {
        match &friend.channel {
            // Terms are repeated until the channel is consistent again: the friend may not
            // have ours, and nothing else tells us.
            ChannelStatus::Inconsistent(_) => true,
            ChannelStatus::Consistent(channel) => match &channel.holder {
                TokenHolder::Local => false,
                // A reset token is answered by a token (the friend acknowledges the reset);
                // any other token needs no answer unless we want the token back.
                TokenHolder::Remote { last_outgoing } => {
                    last_outgoing
                        .as_ref()
                        .is_some_and(|token| token.move_token_counter == 0)
                        || Self::has_work(friend)
                }
            },
        }
    }

    /// Handles a user command.
    pub fn handle_command(
        &mut self,
        command: Command,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
    ) -> Result<Output, CommandError> {
        let mut out = Output::default();
        self.touched.clear();
        let touched = match self.command(command, now, rng, &mut out) {
            Ok(touched) => touched,
            Err(error) => {
                self.touched.clear();
                return Err(error);
            }
        };
        if let Some(friend) = touched {
            self.flush(&friend, now, rng, &mut out);
        }
        self.flush_touched(now, rng, &mut out);
        Ok(out)
    }

    /// Handles a friend message as bytes from the secure channel.
    pub fn handle_message_bytes(
        &mut self,
        from: &PublicKey,
        bytes: &[u8],
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
    ) -> Output {
        match FriendMessage::decode(bytes) {
            Ok(message) => self.handle_message(from, message, now, rng),
            Err(error) => Output {
                events: vec![Event::MessageRejected {
                    friend: *from,
                    error: ReceiveError::Malformed(error),
                }],
                ..Output::default()
            },
        }
    }

    /// Handles a message from a friend.
    pub fn handle_message(
        &mut self,
        from: &PublicKey,
        message: FriendMessage,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
    ) -> Output {
        let mut out = Output::default();
        let rejected = |error| Event::MessageRejected {
            friend: *from,
            error,
        };
        match self.state.friends.get(from) {
            None => {
                out.events
                    .push(rejected(ReceiveError::UnknownFriend(*from)));
                return out;
            }
            Some(friend) if !friend.enabled => {
                out.events.push(rejected(ReceiveError::FriendDisabled));
                return out;
            }
            Some(_) => {}
        }
        match message {
            FriendMessage::MoveToken(message) => {
                self.receive_token(from, message, now, rng, &mut out);
            }
            FriendMessage::TokenWanted => self.receive_token_wanted(from, now, &mut out),
            FriendMessage::ResetTerms(terms) => {
                self.receive_reset_terms(from, terms, now, rng, &mut out);
            }
        }
        self.flush(from, now, rng, &mut out);
        self.flush_touched(now, rng, &mut out);
        out
    }

    /// The friend is connected: we retransmit what it may have missed and send what waits.
    pub fn handle_friend_online(
        &mut self,
        friend: &PublicKey,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
    ) -> Output {
        let mut out = Output::default();
        if !self.state.friends.contains_key(friend) {
            return out;
        }
        let holds_token =
            self.state
                .friends
                .get(friend)
                .is_some_and(|entry| match &entry.channel {
                    ChannelStatus::Consistent(channel) => channel.holds_token(),
                    ChannelStatus::Inconsistent(_) => false,
                });
        let link = self.links.entry(*friend).or_default();
        link.online = true;
        link.asked_for_token = false;
        // Every new connection proves the chain: the holder passes the token (with whatever
        // waits, or empty) and the other side retransmits its last token. A friend that lost
        // its data, or a token that was lost with a crash, shows up now as a chain mismatch
        // instead of at the next payment. It costs one signature per friend and reconnect.
        link.friend_wants_token = holds_token;
        self.retransmit(friend, now, &mut out);
        self.flush(friend, now, rng, &mut out);
        self.flush_touched(now, rng, &mut out);
        out
    }

    /// The friend is disconnected: nothing is sent to it until it is online again.
    pub fn handle_friend_offline(&mut self, friend: &PublicKey) {
        if let Some(link) = self.links.get_mut(friend) {
            link.online = false;
        }
    }

    /// Time passed: retransmits unanswered messages whose time has come, and cancels payment
    /// requests whose deadline passed (the seller's, and requests still waiting to be sent).
    pub fn handle_timeout(&mut self, now: Timestamp, rng: &mut dyn SecureRngDyn) -> Output {
        let mut out = Output::default();
        self.payment_timeout(now, &mut out);
        let due: Vec<PublicKey> = self
            .state
            .friends
            .iter()
            .filter(|(key, friend)| friend.enabled && self.is_online(key))
            .filter(|(_, friend)| Self::awaits_answer(friend))
            .filter(|(key, _)| {
                self.links
                    .get(key)
                    .and_then(|link| link.last_sent)
                    .is_none_or(|sent| sent.plus_ms(self.config.retransmit_after_ms) <= now)
            })
            .map(|(key, _)| *key)
            .collect();
        for friend in due {
            self.retransmit(&friend, now, &mut out);
        }
        self.flush_touched(now, rng, &mut out);
        out
    }

    /// Flushes every friend a payment step queued operations for (each flush may touch
    /// others: a dropped request cancels upstream).
    fn flush_touched(&mut self, now: Timestamp, rng: &mut dyn SecureRngDyn, out: &mut Output) {
        // Each round flushes at least one friend; a flush touches at most the friends of
        // the requests it drops, so this ends; the bound is a guard.
        for _ in 0..MAX_FRIENDS {
            let Some(friend) = self.touched.pop_first() else {
                return;
            };
            self.flush(&friend, now, rng, out);
        }
    }

    pub(crate) fn friend_mut(&mut self, friend: &PublicKey) -> Result<&mut Friend, CommandError> {
        self.state
            .friends
            .get_mut(friend)
            .ok_or(CommandError::UnknownFriend(*friend))
    }

    /// Records a change: applies it to the live state and emits it for persistence.
    pub(crate) fn change(&mut self, change: Change, out: &mut Output) {
        self.state.apply(&change);
        out.changes.push(change);
    }

    fn set_channel(&mut self, friend: &PublicKey, channel: ChannelStatus, out: &mut Output) {
        self.change(
            Change::SetChannel {
                friend: *friend,
                channel: Box::new(channel),
            },
            out,
        );
    }

    fn send(&mut self, to: &PublicKey, message: FriendMessage, now: Timestamp, out: &mut Output) {
        let link = self.links.entry(*to).or_default();
        if !link.online {
            return;
        }
        link.last_sent = Some(now);
        out.messages.push(OutgoingMessage { to: *to, message });
    }

    /// Runs a command; returns the friend whose channel may now have something to send.
    fn command(
        &mut self,
        command: Command,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) -> Result<Option<PublicKey>, CommandError> {
        match command {
            Command::AddFriend {
                public_key,
                name,
                relays,
            } => {
                self.check_new_friend(&public_key, &relays)?;
                let friend = Friend::new(&self.public_key(), public_key, name, relays);
                self.change(Change::AddFriend(Box::new(friend)), out);
                Ok(Some(public_key))
            }
            Command::SetFriendName { friend, name } => {
                self.friend_mut(&friend)?;
                self.change(Change::SetFriendName { friend, name }, out);
                Ok(None)
            }
            Command::SetFriendRelays { friend, relays } => {
                self.friend_mut(&friend)?;
                if relays.len() > MAX_RELAYS {
                    return Err(CommandError::TooManyRelays);
                }
                self.change(Change::SetFriendRelays { friend, relays }, out);
                Ok(None)
            }
            Command::SetFriendEnabled { friend, enabled } => {
                self.friend_mut(&friend)?;
                self.change(Change::SetFriendEnabled { friend, enabled }, out);
                Ok(Some(friend))
            }
            Command::RemoveFriend { friend, force } => {
                let entry = self.friend_mut(&friend)?;
                let idle = match &entry.channel {
                    ChannelStatus::Consistent(channel) => channel.sheet.is_idle(),
                    ChannelStatus::Inconsistent(_) => false,
                };
                if !idle && !force {
                    return Err(CommandError::BalanceNotZero);
                }
                self.change(Change::RemoveFriend(friend), out);
                self.links.remove(&friend);
                Ok(None)
            }
            Command::SetCurrencyLimit {
                friend,
                currency,
                remote_max_debt,
            } => {
                let config = self.currency_config(&friend, &currency)?;
                let config = CurrencyConfig {
                    remote_max_debt,
                    ..config.unwrap_or(CurrencyConfig {
                        remote_max_debt,
                        open: true,
                    })
                };
                self.set_currency_config(friend, currency, config, out);
                Ok(Some(friend))
            }
            Command::SetCurrencyOpen {
                friend,
                currency,
                open,
            } => {
                let config = self.currency_config(&friend, &currency)?;
                let config = CurrencyConfig {
                    open,
                    ..config.unwrap_or(CurrencyConfig {
                        remote_max_debt: Credits::ZERO,
                        open,
                    })
                };
                self.set_currency_config(friend, currency, config, out);
                Ok(Some(friend))
            }
            Command::RemoveCurrency { friend, currency } => {
                self.remove_currency(friend, currency, out)?;
                Ok(Some(friend))
            }
            Command::Transfer {
                friend,
                currency,
                amount,
                transfer_id,
            } => {
                self.queue_transfer(friend, currency, amount, transfer_id, out)?;
                Ok(Some(friend))
            }
            Command::AcceptResetTerms {
                friend,
                reset_token,
            } => {
                let entry = self.friend_mut(&friend)?;
                let matches = match &entry.channel {
                    ChannelStatus::Inconsistent(inconsistency) => inconsistency
                        .remote_terms
                        .as_ref()
                        .is_some_and(|terms| terms.reset_token == reset_token),
                    ChannelStatus::Consistent(_) => false,
                };
                if !matches {
                    return Err(CommandError::NoSuchResetTerms);
                }
                self.accept_remote_terms(&friend, now, rng, out)?;
                Ok(Some(friend))
            }
            Command::ReplaceFriendKey {
                old_key,
                new_key,
                relays,
            } => {
                self.replace_friend_key(old_key, new_key, relays, rng, out)?;
                Ok(Some(new_key))
            }
            Command::CreateInvoice {
                currency,
                amount,
                expires_at,
                description,
                relays,
            } => {
                self.create_invoice(
                    currency,
                    amount,
                    expires_at,
                    description,
                    relays,
                    now,
                    rng,
                    out,
                )?;
                Ok(None)
            }
            Command::CancelInvoice { invoice_id } => {
                self.cancel_invoice(invoice_id, now, out)?;
                Ok(None)
            }
            Command::Pay {
                payment_id,
                invoice,
                routes,
                max_fees,
            } => {
                self.pay(payment_id, *invoice, routes, max_fees, now, rng, out)?;
                Ok(None)
            }
            Command::SetFeeRate {
                friend,
                currency,
                rate,
            } => {
                self.friend_mut(&friend)?;
                self.change(
                    Change::SetFeeRate {
                        friend,
                        currency,
                        rate,
                    },
                    out,
                );
                Ok(None)
            }
        }
    }

    fn check_new_friend(
        &self,
        public_key: &PublicKey,
        relays: &[RelayAddress],
    ) -> Result<(), CommandError> {
        if *public_key == self.public_key() {
            return Err(CommandError::IsSelf);
        }
        if self.state.friends.contains_key(public_key) {
            return Err(CommandError::FriendExists(*public_key));
        }
        if self.state.friends.len() >= MAX_FRIENDS {
            return Err(CommandError::TooManyFriends);
        }
        if relays.len() > MAX_RELAYS {
            return Err(CommandError::TooManyRelays);
        }
        Ok(())
    }

    fn currency_config(
        &mut self,
        friend: &PublicKey,
        currency: &Currency,
    ) -> Result<Option<CurrencyConfig>, CommandError> {
        let entry = self.friend_mut(friend)?;
        let existing = entry.currency_configs.get(currency).copied();
        if existing.is_none() && entry.currency_configs.len() >= MAX_CURRENCIES_PER_FRIEND {
            return Err(OperationError::TooManyCurrencies.into());
        }
        Ok(existing)
    }

    fn set_currency_config(
        &mut self,
        friend: PublicKey,
        currency: Currency,
        config: CurrencyConfig,
        out: &mut Output,
    ) {
        self.change(
            Change::SetCurrencyConfig {
                friend,
                currency,
                config: Some(config),
            },
            out,
        );
    }

    fn remove_currency(
        &mut self,
        friend: PublicKey,
        currency: Currency,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        let entry = self.friend_mut(&friend)?;
        let in_sheet = match &entry.channel {
            ChannelStatus::Consistent(channel) => match channel.sheet.currency(&currency) {
                Some(state) if !state.is_idle() => {
                    return Err(OperationError::CurrencyInUse(currency).into())
                }
                Some(_) => true,
                None => false,
            },
            ChannelStatus::Inconsistent(_) => return Err(CommandError::ChannelInconsistent),
        };
        if in_sheet && entry.queued.len() >= MAX_QUEUED_OPERATIONS {
            return Err(CommandError::QueueFull);
        }
        if !in_sheet && !entry.currency_configs.contains_key(&currency) {
            return Err(OperationError::UnknownCurrency(currency).into());
        }
        self.change(
            Change::SetCurrencyConfig {
                friend,
                currency: currency.clone(),
                config: None,
            },
            out,
        );
        if in_sheet {
            self.change(
                Change::QueueOperation {
                    friend,
                    operation: FriendOperation::RemoveCurrency(currency),
                },
                out,
            );
        }
        Ok(())
    }

    fn queue_transfer(
        &mut self,
        friend: PublicKey,
        currency: Currency,
        amount: Credits,
        transfer_id: PaymentId,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        let entry = self.friend_mut(&friend)?;
        if !entry.enabled {
            return Err(CommandError::FriendDisabled);
        }
        let ChannelStatus::Consistent(channel) = &entry.channel else {
            return Err(CommandError::ChannelInconsistent);
        };
        if entry.queued.len() >= MAX_QUEUED_OPERATIONS {
            return Err(CommandError::QueueFull);
        }
        // Check against the sheet as it will be once everything already queued is sent.
        let mut sheet = channel.sheet.clone();
        for operation in &entry.queued {
            // Queued operations that no longer apply will be dropped when sent.
            let _ = sheet.apply(operation, Side::Local);
        }
        let operation = FriendOperation::Transfer {
            currency,
            amount,
            transfer_id,
        };
        sheet.apply(&operation, Side::Local)?;
        self.change(Change::QueueOperation { friend, operation }, out);
        Ok(())
    }

    fn replace_friend_key(
        &mut self,
        old_key: PublicKey,
        new_key: PublicKey,
        relays: Vec<RelayAddress>,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        let old = self
            .state
            .friends
            .get(&old_key)
            .ok_or(CommandError::UnknownFriend(old_key))?
            .clone();
        if self.state.friends.contains_key(&new_key) {
            return Err(CommandError::FriendExists(new_key));
        }
        if new_key == self.public_key() {
            return Err(CommandError::IsSelf);
        }
        if relays.len() > MAX_RELAYS {
            return Err(CommandError::TooManyRelays);
        }
        // Our terms for the new key: our view of the old channel (the last sheet we agreed
        // to, or our terms if it was already inconsistent), in a new epoch.
        let local_terms = match &old.channel {
            ChannelStatus::Consistent(channel) => channel.reset_terms(0, rng),
            ChannelStatus::Inconsistent(inconsistency) => {
                let sheet = BalanceSheet::from_terms(&inconsistency.local_terms.currencies, false)
                    .unwrap_or_default();
                new_reset_terms(&sheet, inconsistency.local_terms.inconsistency_counter, rng)
            }
        };
        out.events.push(Event::ChannelInconsistent {
            friend: new_key,
            local_terms: local_terms.clone(),
            remote_terms: None,
        });
        let friend = Friend {
            public_key: new_key,
            relays,
            channel: ChannelStatus::Inconsistent(Inconsistency {
                published_counter: local_terms.inconsistency_counter,
                local_terms,
                remote_terms: None,
                last_incoming: None,
                previous_sheet: None,
            }),
            queued: Default::default(),
            previous_key: Some(old_key),
            ..old
        };
        self.change(Change::RemoveFriend(old_key), out);
        self.links.remove(&old_key);
        self.change(Change::AddFriend(Box::new(friend)), out);
        Ok(())
    }

    /// Whether we have operations for the friend: queued user operations, or configuration
    /// the channel does not reflect yet.
    fn has_work(friend: &Friend) -> bool {
        !friend.queued.is_empty()
            || match &friend.channel {
                ChannelStatus::Consistent(channel) => {
                    !sync_operations(friend, &channel.sheet).is_empty()
                }
                ChannelStatus::Inconsistent(_) => false,
            }
    }

    /// Sends what the friend should get now: a token if we hold it and have something to say
    /// (or the friend asked), or a request for the token.
    pub(crate) fn flush(
        &mut self,
        key: &PublicKey,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) {
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        if !friend.enabled || !self.is_online(key) {
            return;
        }
        let ChannelStatus::Consistent(channel) = &friend.channel else {
            return;
        };
        let has_work = Self::has_work(friend);
        let link = self.links.get(key).copied().unwrap_or_default();
        match &channel.holder {
            TokenHolder::Local => {
                if has_work || link.friend_wants_token {
                    self.send_token(key, now, rng, out);
                }
            }
            TokenHolder::Remote { last_outgoing } => {
                if has_work && !link.asked_for_token {
                    let message = token_request(last_outgoing.as_ref());
                    if let Some(link) = self.links.get_mut(key) {
                        link.asked_for_token = true;
                    }
                    self.send(key, message, now, out);
                }
            }
        }
    }

    /// Builds, signs and sends the next token (we hold it).
    fn send_token(
        &mut self,
        key: &PublicKey,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) {
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        let ChannelStatus::Consistent(channel) = &friend.channel else {
            return;
        };
        let mut sheet = channel.sheet.clone();
        let mut operations = Vec::new();
        for operation in sync_operations(friend, &channel.sheet) {
            if operations.len() >= MAX_OPERATIONS_IN_BATCH {
                break;
            }
            if sheet.apply(&operation, Side::Local).is_ok() {
                operations.push(operation);
            }
        }
        let mut dequeued = 0;
        let mut dropped_requests = Vec::new();
        for operation in &friend.queued {
            if operations.len() >= MAX_OPERATIONS_IN_BATCH {
                break;
            }
            dequeued += 1;
            let result = match operation {
                // A request past its expiry is not carried on: the hop after us would refuse
                // it, and the hop before us gets a cancel instead.
                FriendOperation::RequestSendFunds(request) if request.expires_at <= now.0 => {
                    Err(OperationError::RequestExpired)
                }
                _ => sheet.apply(operation, Side::Local),
            };
            match result {
                Ok(()) => operations.push(operation.clone()),
                Err(error) => {
                    if let FriendOperation::RequestSendFunds(request) = operation {
                        dropped_requests.push(request.as_ref().clone());
                    }
                    out.events.push(Event::OperationDropped {
                        friend: *key,
                        operation: operation.clone(),
                        error,
                    });
                }
            }
        }
        let more_queued = friend.queued.len() > dequeued;
        let mut channel = channel.clone();
        let token = match channel.send(&self.identity, key, operations.clone(), sheet, rng) {
            Ok(token) => token,
            // Only a counter at u64::MAX or an unrepresentable balance gets here; no valid
            // channel reaches either. Nothing is sent; the state is unchanged.
            Err(_) => return,
        };

        let more_sync = !sync_operations(friend, &channel.sheet).is_empty();
        if dequeued > 0 {
            self.change(
                Change::DequeueOperations {
                    friend: *key,
                    count: dequeued,
                },
                out,
            );
        }
        self.set_channel(key, ChannelStatus::Consistent(channel), out);
        if let Some(link) = self.links.get_mut(key) {
            link.friend_wants_token = false;
            link.asked_for_token = more_queued || more_sync;
        }
        let message = FriendMessage::MoveToken(MoveTokenMessage {
            token,
            token_wanted: more_queued || more_sync,
        });
        self.send(key, message, now, out);
        out.events.push(Event::TokenSent {
            friend: *key,
            operations,
        });
        for request in &dropped_requests {
            self.request_not_sent(key, request, now, out);
        }
    }

    /// Sends again what the friend may have missed.
    fn retransmit(&mut self, key: &PublicKey, now: Timestamp, out: &mut Output) {
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        if !friend.enabled {
            return;
        }
        let has_work = Self::has_work(friend);
        let message = match &friend.channel {
            ChannelStatus::Inconsistent(inconsistency) => {
                Some(FriendMessage::ResetTerms(inconsistency.published_terms()))
            }
            ChannelStatus::Consistent(channel) => match &channel.holder {
                TokenHolder::Local => None,
                TokenHolder::Remote {
                    last_outgoing: Some(token),
                } => Some(FriendMessage::MoveToken(MoveTokenMessage {
                    token: token.clone(),
                    token_wanted: has_work,
                })),
                TokenHolder::Remote {
                    last_outgoing: None,
                } => (has_work || channel.is_at_genesis()).then_some(FriendMessage::TokenWanted),
            },
        };
        if let Some(message) = message {
            if has_work {
                if let Some(link) = self.links.get_mut(key) {
                    link.asked_for_token = true;
                }
            }
            self.send(key, message, now, out);
        }
    }

    fn receive_token(
        &mut self,
        key: &PublicKey,
        message: MoveTokenMessage,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) {
        let local = self.public_key();
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        let token = message.token;
        match friend.channel.clone() {
            ChannelStatus::Consistent(mut channel) => match channel.receive(&local, key, &token) {
                Ok(TokenOutcome::Applied(operations)) => {
                    self.set_channel(key, ChannelStatus::Consistent(channel), out);
                    self.token_arrived(key, message.token_wanted);
                    self.payment_operations_received(key, &operations, now, out);
                    out.events.push(Event::TokenReceived {
                        friend: *key,
                        operations,
                    });
                }
                Ok(TokenOutcome::Duplicate) => {
                    if message.token_wanted && channel.holds_token() {
                        self.links.entry(*key).or_default().friend_wants_token = true;
                    }
                }
                Ok(TokenOutcome::Retransmit) => self.retransmit(key, now, out),
                Ok(TokenOutcome::Outdated) => {
                    out.events.push(Event::MessageRejected {
                        friend: *key,
                        error: ReceiveError::Outdated,
                    });
                    if channel.holds_token() {
                        self.links.entry(*key).or_default().friend_wants_token = true;
                    } else {
                        self.retransmit(key, now, out);
                    }
                }
                Ok(TokenOutcome::ResetAccepted) => {
                    self.set_channel(key, ChannelStatus::Consistent(channel), out);
                    // Pass the token back at once: it tells the friend the reset arrived.
                    self.token_arrived(key, true);
                    self.after_reset(key, now, out);
                }
                Err(error) if error.is_fatal() => {
                    let local_terms = channel.reset_terms(token.inconsistency_counter, rng);
                    let inconsistency = channel.to_inconsistency(local_terms.clone(), None);
                    self.set_channel(key, ChannelStatus::Inconsistent(inconsistency), out);
                    out.events.push(Event::MessageRejected {
                        friend: *key,
                        error,
                    });
                    out.events.push(Event::ChannelInconsistent {
                        friend: *key,
                        local_terms: local_terms.clone(),
                        remote_terms: None,
                    });
                    self.send(key, FriendMessage::ResetTerms(local_terms), now, out);
                }
                Err(error) => out.events.push(Event::MessageRejected {
                    friend: *key,
                    error,
                }),
            },
            ChannelStatus::Inconsistent(inconsistency) => {
                match inconsistency.receive(&local, key, &token) {
                    Ok(channel) => {
                        self.set_channel(key, ChannelStatus::Consistent(channel), out);
                        // Pass the token back at once: it tells the friend the reset arrived.
                        self.token_arrived(key, true);
                        self.after_reset(key, now, out);
                    }
                    Err(error) => {
                        out.events.push(Event::MessageRejected {
                            friend: *key,
                            error,
                        });
                        let mut inconsistency = inconsistency;
                        if token.inconsistency_counter >= inconsistency.published_counter {
                            // The friend is in a later epoch than our terms (we lost our data,
                            // or it reset since): terms at or below its epoch would look stale
                            // to it. Publish them again in the epoch after its.
                            inconsistency.published_counter =
                                token.inconsistency_counter.saturating_add(1);
                            self.set_channel(
                                key,
                                ChannelStatus::Inconsistent(inconsistency.clone()),
                                out,
                            );
                        }
                        // The friend may not know the channel is inconsistent.
                        let terms = inconsistency.published_terms();
                        self.send(key, FriendMessage::ResetTerms(terms), now, out);
                    }
                }
            }
        }
    }

    fn token_arrived(&mut self, key: &PublicKey, token_wanted: bool) {
        let link = self.links.entry(*key).or_default();
        link.asked_for_token = false;
        link.friend_wants_token = token_wanted;
    }

    fn receive_token_wanted(&mut self, key: &PublicKey, now: Timestamp, out: &mut Output) {
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        match &friend.channel {
            ChannelStatus::Consistent(channel) if channel.holds_token() => {
                self.links.entry(*key).or_default().friend_wants_token = true;
            }
            // The friend has no token and wants one: it missed ours, or the terms.
            _ => self.retransmit(key, now, out),
        }
    }

    fn receive_reset_terms(
        &mut self,
        key: &PublicKey,
        terms: ResetTerms,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) {
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        let inconsistency = match &friend.channel {
            ChannelStatus::Consistent(channel) => {
                if terms.inconsistency_counter <= channel.position.inconsistency_counter
                    || channel.accepted_reset_token == Some(terms.reset_token)
                {
                    out.events.push(Event::MessageRejected {
                        friend: *key,
                        error: ReceiveError::StaleResetTerms,
                    });
                    return;
                }
                let local_terms = channel.reset_terms(terms.inconsistency_counter, rng);
                channel.to_inconsistency(local_terms, Some(terms))
            }
            ChannelStatus::Inconsistent(inconsistency) => match &inconsistency.remote_terms {
                // A repetition (the friend's timer): ours go out on our own timer.
                Some(known) if *known == terms => return,
                // The same terms published again in a later epoch: accepting them must use it.
                Some(known) if known.reset_token == terms.reset_token => {
                    if terms.inconsistency_counter > known.inconsistency_counter {
                        let updated = Inconsistency {
                            remote_terms: Some(terms),
                            ..inconsistency.clone()
                        };
                        self.set_channel(key, ChannelStatus::Inconsistent(updated), out);
                    }
                    return;
                }
                Some(known) if known.inconsistency_counter > terms.inconsistency_counter => {
                    out.events.push(Event::MessageRejected {
                        friend: *key,
                        error: ReceiveError::StaleResetTerms,
                    });
                    return;
                }
                _ => Inconsistency {
                    remote_terms: Some(terms),
                    ..inconsistency.clone()
                },
            },
        };
        let local_terms = inconsistency.published_terms();
        out.events.push(Event::ChannelInconsistent {
            friend: *key,
            local_terms: local_terms.clone(),
            remote_terms: inconsistency.remote_terms.clone(),
        });
        let accept = match (&inconsistency.remote_terms, self.config.reset_policy) {
            (_, ResetPolicy::Manual) | (None, _) => false,
            (Some(_), ResetPolicy::AcceptAlways) => true,
            (Some(remote), ResetPolicy::AcceptSameBalances) => {
                same_balances(&local_terms, inconsistency.previous_sheet.as_ref(), remote)
            }
        };
        self.set_channel(key, ChannelStatus::Inconsistent(inconsistency), out);
        if accept {
            // Terms from the friend always convert; if not, we wait for the user.
            if self.accept_remote_terms(key, now, rng, out).is_ok() {
                return;
            }
        }
        self.send(key, FriendMessage::ResetTerms(local_terms), now, out);
    }

    /// Accepts the friend's stored terms: signs the reset token and restarts the channel.
    fn accept_remote_terms(
        &mut self,
        key: &PublicKey,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        let Some(friend) = self.state.friends.get(key) else {
            return Err(CommandError::UnknownFriend(*key));
        };
        let ChannelStatus::Inconsistent(inconsistency) = &friend.channel else {
            return Err(CommandError::NoSuchResetTerms);
        };
        let (channel, token) = inconsistency
            .accept_remote_terms(&self.identity, key, rng)
            .ok_or(CommandError::NoSuchResetTerms)??;
        self.set_channel(key, ChannelStatus::Consistent(channel), out);
        self.after_reset(key, now, out);
        let has_work = self.state.friends.get(key).is_some_and(Self::has_work);
        let message = FriendMessage::MoveToken(MoveTokenMessage {
            token,
            token_wanted: has_work,
        });
        self.token_arrived(key, false);
        if has_work {
            self.links.entry(*key).or_default().asked_for_token = true;
        }
        self.send(key, message, now, out);
        Ok(())
    }

    /// After a reset: currencies we have no wish for (e.g. after losing our data) keep the
    /// limits the reset restored, so they are not announced away.
    fn after_reset(&mut self, key: &PublicKey, now: Timestamp, out: &mut Output) {
        let Some(friend) = self.state.friends.get(key) else {
            return;
        };
        let ChannelStatus::Consistent(channel) = &friend.channel else {
            return;
        };
        let adopted: Vec<(Currency, CurrencyConfig)> = channel
            .sheet
            .currencies()
            .filter(|(currency, _)| !friend.currency_configs.contains_key(*currency))
            .map(|(currency, state)| {
                (
                    currency.clone(),
                    CurrencyConfig {
                        remote_max_debt: state.remote_max_debt,
                        open: state.local_open,
                    },
                )
            })
            .collect();
        for (currency, config) in adopted {
            self.set_currency_config(*key, currency, config, out);
        }
        // A reset cancels every pending request of the channel.
        self.payments_after_reset(key, now, out);
        out.events.push(Event::ChannelReset { friend: *key });
    }
}

/// The message that asks the friend for the token: our last token again (so a friend that
/// missed it gets it), or a bare request at genesis.
fn token_request(last_outgoing: Option<&MoveToken>) -> FriendMessage {
    match last_outgoing {
        Some(token) => FriendMessage::MoveToken(MoveTokenMessage {
            token: token.clone(),
            token_wanted: true,
        }),
        None => FriendMessage::TokenWanted,
    }
}

/// Operations that bring the channel's sheet in line with our configuration.
fn sync_operations(friend: &Friend, sheet: &BalanceSheet) -> Vec<FriendOperation> {
    let mut operations = Vec::new();
    for (currency, config) in &friend.currency_configs {
        let state = sheet.currency(currency);
        if state.is_none() {
            operations.push(FriendOperation::AddCurrency(currency.clone()));
        }
        if state.map_or(Credits::ZERO, |state| state.remote_max_debt) != config.remote_max_debt {
            operations.push(FriendOperation::SetRemoteMaxDebt {
                currency: currency.clone(),
                max_debt: config.remote_max_debt,
            });
        }
        if state.is_some_and(|state| state.local_open) != config.open {
            operations.push(FriendOperation::SetCurrencyOpen {
                currency: currency.clone(),
                open: config.open,
            });
        }
    }
    operations
}

/// The friend's terms give every currency the balance of our terms, or of the sheet before our
/// last token (a currency missing on one side counts as balance zero): a state we signed.
fn same_balances(
    local: &ResetTerms,
    previous_sheet: Option<&BalanceSheet>,
    remote: &ResetTerms,
) -> bool {
    let nonzero = |sheet: &BalanceSheet| {
        let mut balances = sheet.balances();
        balances.retain(|_, balance| *balance != Balance::ZERO);
        balances
    };
    let Some(theirs) = BalanceSheet::from_terms(&remote.currencies, true) else {
        return false;
    };
    let theirs = nonzero(&theirs);
    let ours = BalanceSheet::from_terms(&local.currencies, false);
    ours.is_some_and(|ours| nonzero(&ours) == theirs)
        || previous_sheet.is_some_and(|previous| nonzero(previous) == theirs)
}
