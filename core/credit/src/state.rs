//! The persisted state of the credit layer ([`NodeState`]) and the changes that move it
//! ([`Change`]). The node emits changes; the store applies them in one transaction before any
//! message of the same step is sent, and rebuilds the state after a restart by applying them in
//! order. `NodeState` holds nothing that is not persisted: what lives only in memory (who is
//! online, retransmission timers) is in [`crate::node`].

use std::collections::{BTreeMap, VecDeque};

use offst_proto::friend::{FriendOperation, RequestSendFunds};
use offst_proto::payment::Invoice;
use offst_proto::{
    Credits, Currency, InvoiceId, PaymentId, PlainLock, PublicKey, RelayAddress, RequestId, Text,
};

use crate::channel::{ChannelStatus, TokenChannel};

/// What we want for one currency with one friend. The node announces it through the token
/// channel whenever the channel's sheet differs (when it holds the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyConfig {
    /// The most the friend may owe us (our credit limit for the friend).
    pub remote_max_debt: Credits,
    /// Whether we accept incoming payments in this currency.
    pub open: bool,
}

/// One friend: what the user configured and the shared token channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friend {
    /// The friend's identity.
    pub public_key: PublicKey,
    /// A name chosen by the user.
    pub name: Text,
    /// Relays the friend listens on (at most `offst_proto::limits::MAX_RELAYS`).
    pub relays: Vec<RelayAddress>,
    /// A disabled friend is not contacted and its messages are ignored.
    pub enabled: bool,
    /// What we want per currency.
    pub currency_configs: BTreeMap<Currency, CurrencyConfig>,
    /// The token channel.
    pub channel: ChannelStatus,
    /// Operations requested by the user, waiting for the token (oldest first, at most
    /// [`crate::node::MAX_QUEUED_OPERATIONS`]).
    pub queued: VecDeque<FriendOperation>,
    /// The key this friend had before a confirmed key replacement, if any.
    pub previous_key: Option<PublicKey>,
}

impl Friend {
    /// A new friend with a genesis channel.
    pub fn new(
        local: &PublicKey,
        public_key: PublicKey,
        name: Text,
        relays: Vec<RelayAddress>,
    ) -> Friend {
        Friend {
            public_key,
            name,
            relays,
            enabled: true,
            currency_configs: BTreeMap::new(),
            channel: ChannelStatus::Consistent(TokenChannel::genesis(local, &public_key)),
            queued: VecDeque::new(),
            previous_key: None,
        }
    }
}

/// Where a payment, a route of it or an invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Requests are on their way or waiting for the seller.
    InProgress,
    /// The seller collected: the buyer holds a receipt.
    Succeeded,
    /// Every request was cancelled: all frozen credit is released, nothing was paid.
    Cancelled,
}

/// One route of a buyer's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRoute {
    /// The request carrying this route.
    pub request_id: RequestId,
    /// The nodes from buyer to seller.
    pub route: Vec<PublicKey>,
    /// What the seller receives over this route.
    pub dest_payment: Credits,
    /// The most the mediators of this route may charge.
    pub max_fees: Credits,
    /// `InProgress` until the first hop collects (`Succeeded`) or cancels.
    pub status: PaymentStatus,
    /// What the first hop collected (the seller's amount plus the fees of this route).
    pub paid: Credits,
}

/// A buyer's payment of one invoice: the record the store keeps and the app lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Chosen by the buyer's app.
    pub payment_id: PaymentId,
    /// The seller's signed invoice.
    pub invoice: Invoice,
    /// The routes, each one request.
    pub routes: Vec<PaymentRoute>,
    /// The overall status.
    pub status: PaymentStatus,
    /// The seller's plain lock, once a route was collected: with the invoice, the receipt.
    pub plain_lock: Option<PlainLock>,
    /// Fees paid so far (collected minus the seller's amount, over collected routes).
    pub fees_paid: Credits,
    /// When the payment started (ms).
    pub started_at: u64,
    /// When it succeeded or was cancelled (ms).
    pub finished_at: Option<u64>,
}

/// A request the seller received for one of its invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The friend it came from (the last mediator, or the buyer).
    pub from: PublicKey,
    /// Its id.
    pub request_id: RequestId,
    /// What it pays the seller.
    pub dest_payment: Credits,
    /// Its expiry (Unix ms).
    pub expires_at: u64,
    /// The route's length in nodes.
    pub route_len: usize,
}

/// An invoice the seller created, with its secret and what arrived for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    /// The signed invoice.
    pub invoice: Invoice,
    /// The secret, revealed only by collecting once the whole amount arrived.
    pub plain_lock: PlainLock,
    /// `InProgress` (open), `Succeeded` (paid) or `Cancelled` (expired or cancelled).
    pub status: PaymentStatus,
    /// Requests received and not yet collected or cancelled.
    pub received: Vec<ReceivedRequest>,
    /// When it was created (ms).
    pub created_at: u64,
    /// When it was paid or cancelled (ms).
    pub finished_at: Option<u64>,
}

/// A request this node carries on as a mediator: what came from upstream, to whom it went and
/// the fee it charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The friend the request came from.
    pub upstream: PublicKey,
    /// The friend it was passed to.
    pub downstream: PublicKey,
    /// The request as received from upstream.
    pub request: RequestSendFunds,
    /// Our rate for the upstream friend when the request arrived (`None`: the default).
    pub rate: Option<FeeRate>,
    /// The fee reserved from the buyer's budget: the fee on everything frozen upstream. We
    /// charge the fee on what we actually pay downstream, at most this.
    pub fee: Credits,
}

/// A mediator's price for requests arriving from one friend in one currency:
/// `fee(x) = flat + floor(x * per_million / 10^6)`, where `x` is what the mediator pays
/// downstream (the seller's amount plus the downstream fees), as the index servers compute it
/// (docs/PROTOCOL.md, "Fees").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRate {
    /// Proportional part, in millionths of the seller's amount.
    pub per_million: u32,
    /// Flat part.
    pub flat: Credits,
}

/// Per currency: what this node earned and paid in fees and received and sent as payments.
/// Over all nodes, `fees_earned - fees_paid + received - sent` sums to zero per currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaymentAccount {
    /// Fees earned as a mediator.
    pub fees_earned: Credits,
    /// Fees paid as a buyer.
    pub fees_paid: Credits,
    /// Invoice amounts received as a seller.
    pub received: Credits,
    /// Invoice amounts paid as a buyer (fees excluded).
    pub sent: Credits,
}

/// Everything about multi-hop payments that the node persists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentBook {
    /// The seller's invoices (at most `crate::node::MAX_INVOICES`).
    pub invoices: BTreeMap<InvoiceId, OpenInvoice>,
    /// The buyer's payments (at most `crate::node::MAX_PAYMENTS`).
    pub payments: BTreeMap<PaymentId, Payment>,
    /// Requests carried as a mediator, by request id (bounded by the per-friend request cap).
    pub forwards: BTreeMap<RequestId, Forward>,
    /// Fee rates per upstream friend and currency (absent: `crate::node::DEFAULT_FEE` flat).
    pub rates: BTreeMap<(PublicKey, Currency), FeeRate>,
    /// Accounting per currency.
    pub accounts: BTreeMap<Currency, PaymentAccount>,
}

/// Everything the credit layer persists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeState {
    /// Friends by public key.
    pub friends: BTreeMap<PublicKey, Friend>,
    /// Invoices, payments, forwarded requests, fee rates and accounts.
    pub payments: PaymentBook,
}

/// One persisted state change. Applying the changes of a step, in order, to the state before
/// the step gives the state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A friend was added (or re-created under a new key).
    AddFriend(Box<Friend>),
    /// A friend and everything about it was removed.
    RemoveFriend(PublicKey),
    /// The friend's name changed.
    SetFriendName {
        /// The friend.
        friend: PublicKey,
        /// The new name.
        name: Text,
    },
    /// The friend's relays changed.
    SetFriendRelays {
        /// The friend.
        friend: PublicKey,
        /// The new relays.
        relays: Vec<RelayAddress>,
    },
    /// The friend was enabled or disabled.
    SetFriendEnabled {
        /// The friend.
        friend: PublicKey,
        /// Enabled?
        enabled: bool,
    },
    /// Our wish for a currency changed (`None`: removed).
    SetCurrencyConfig {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The new configuration.
        config: Option<CurrencyConfig>,
    },
    /// The token channel moved (a token sent or received, an inconsistency, a reset).
    SetChannel {
        /// The friend.
        friend: PublicKey,
        /// The whole new channel state (small: the sheet, the last tokens, reset terms).
        channel: Box<ChannelStatus>,
    },
    /// A user operation joined the end of the friend's queue.
    QueueOperation {
        /// The friend.
        friend: PublicKey,
        /// The operation.
        operation: FriendOperation,
    },
    /// The first `count` queued operations left the queue (sent or dropped).
    DequeueOperations {
        /// The friend.
        friend: PublicKey,
        /// How many.
        count: usize,
    },
    /// A seller's invoice was created or changed (`None`: forgotten).
    SetInvoice {
        /// The invoice.
        invoice_id: InvoiceId,
        /// Its new record.
        invoice: Option<Box<OpenInvoice>>,
    },
    /// A buyer's payment record was created or changed (`None`: forgotten).
    SetPayment {
        /// The payment.
        payment_id: PaymentId,
        /// Its new record.
        payment: Option<Box<Payment>>,
    },
    /// A mediator started (`Some`) or finished (`None`) carrying a request.
    SetForward {
        /// The request.
        request_id: RequestId,
        /// The forward.
        forward: Option<Box<Forward>>,
    },
    /// The fee rate for requests from a friend (`None`: the default).
    SetFeeRate {
        /// The upstream friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The rate.
        rate: Option<FeeRate>,
    },
    /// The payment account of a currency changed.
    SetAccount {
        /// The currency.
        currency: Currency,
        /// The new totals.
        account: PaymentAccount,
    },
}

impl NodeState {
    /// Applies one change. Changes about a friend that does not exist are ignored (they cannot
    /// come from a node; the store may still replay them after a crash).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::AddFriend(friend) => {
                self.friends
                    .insert(friend.public_key, friend.as_ref().clone());
            }
            Change::RemoveFriend(friend) => {
                self.friends.remove(friend);
            }
            Change::SetFriendName { friend, name } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.name = name.clone();
                }
            }
            Change::SetFriendRelays { friend, relays } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.relays = relays.clone();
                }
            }
            Change::SetFriendEnabled { friend, enabled } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.enabled = *enabled;
                }
            }
            Change::SetCurrencyConfig {
                friend,
                currency,
                config,
            } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    match config {
                        Some(config) => {
                            entry.currency_configs.insert(currency.clone(), *config);
                        }
                        None => {
                            entry.currency_configs.remove(currency);
                        }
                    }
                }
            }
            Change::SetChannel { friend, channel } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.channel = channel.as_ref().clone();
                }
            }
            Change::QueueOperation { friend, operation } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.queued.push_back(operation.clone());
                }
            }
            Change::DequeueOperations { friend, count } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    let count = (*count).min(entry.queued.len());
                    entry.queued.drain(..count);
                }
            }
            Change::SetInvoice {
                invoice_id,
                invoice,
            } => match invoice {
                Some(invoice) => {
                    self.payments
                        .invoices
                        .insert(*invoice_id, invoice.as_ref().clone());
                }
                None => {
                    self.payments.invoices.remove(invoice_id);
                }
            },
            Change::SetPayment {
                payment_id,
                payment,
            } => match payment {
                Some(payment) => {
                    self.payments
                        .payments
                        .insert(*payment_id, payment.as_ref().clone());
                }
                None => {
                    self.payments.payments.remove(payment_id);
                }
            },
            Change::SetForward {
                request_id,
                forward,
            } => match forward {
                Some(forward) => {
                    self.payments
                        .forwards
                        .insert(*request_id, forward.as_ref().clone());
                }
                None => {
                    self.payments.forwards.remove(request_id);
                }
            },
            Change::SetFeeRate {
                friend,
                currency,
                rate,
            } => match rate {
                Some(rate) => {
                    self.payments
                        .rates
                        .insert((*friend, currency.clone()), *rate);
                }
                None => {
                    self.payments.rates.remove(&(*friend, currency.clone()));
                }
            },
            Change::SetAccount { currency, account } => {
                self.payments.accounts.insert(currency.clone(), *account);
            }
        }
    }
}
