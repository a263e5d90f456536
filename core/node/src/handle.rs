//! [`NodeHandle`]: the node's API as async methods, for callers that run on a tokio runtime
//! (the app server). Each operation is one request to the driver; the synchronous [`Node`]
//! API is a thin `block_on` over these methods.
//!
//! [`Node`]: crate::Node

use std::time::Duration;

use offst_credit::{Command, PaymentStatus, Timestamp};
use offst_proto::card::FriendCard;
use offst_proto::payment::Invoice;
use offst_proto::{
    Credits, Currency, InvoiceId, PaymentId, PublicKey, RelayAddress, Signature, Text,
};
use rand_core::{OsRng, RngCore};
use tokio::sync::futures::Notified;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::driver::Request;
use crate::settings::{self, SharedSettings};
use crate::{
    now, parse_invoice, AccountInfo, EventQuery, FeeRate, FriendInfo, IndexServerAddress,
    NodeError, PaymentInfo, QueryOptions, Quote, Route, StoredEvent,
};
use std::sync::Arc;

/// An async, cloneable handle on a node: every operation of [`crate::Node`], awaitable from a
/// tokio runtime (run it on the node's own, see [`crate::Node::spawn`]). Cheap to clone; all
/// clones talk to the same driver. Once the node is dropped, operations fail with
/// [`NodeError::NotRunning`]. The waiting methods (`wait_next_event`, `wait_payment`) need a
/// runtime with the time driver enabled (the node's has it).
#[derive(Clone)]
pub struct NodeHandle {
    public_key: PublicKey,
    requests: mpsc::Sender<Request>,
    events_changed: Arc<Notify>,
    settings: SharedSettings,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("public_key", &self.public_key)
            .finish()
    }
}

impl NodeHandle {
    pub(crate) fn new(
        public_key: PublicKey,
        requests: mpsc::Sender<Request>,
        events_changed: Arc<Notify>,
        settings: SharedSettings,
    ) -> NodeHandle {
        NodeHandle {
            public_key,
            requests,
            events_changed,
            settings,
        }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, NodeError> {
        let (reply, response) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| NodeError::NotRunning)?;
        response.await.map_err(|_| NodeError::NotRunning)
    }

    async fn command(&self, command: Command) -> Result<(), NodeError> {
        self.call(|reply| Request::Command(command, reply)).await?
    }

    /// Starts networking: listens on the node's relays and links to every enabled friend.
    pub async fn start(&self) -> Result<(), NodeError> {
        self.call(Request::Start).await
    }

    /// Stops networking (returns within [`crate::STOP_TIMEOUT`]); the state stays open and
    /// usable.
    pub async fn stop(&self) -> Result<(), NodeError> {
        self.call(Request::Stop).await
    }

    /// The node's identity.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// A future that completes the next time the driver commits anything: new events (a
    /// payment ending, a message arriving, a link going up or down… each records one) or a
    /// change of state (a limit, a balance).
    ///
    /// Create it **before** checking for what you wait for, then await it only if the check
    /// found nothing: a commit between the check and the await then still wakes you.
    ///
    /// ```ignore
    /// loop {
    ///     let changed = handle.events_changed();
    ///     if let Some(event) = handle.next_event().await? {
    ///         break event;
    ///     }
    ///     changed.await;
    /// }
    /// ```
    pub fn events_changed(&self) -> Notified<'_> {
        self.events_changed.notified()
    }

    /// The relays the node listens on (published in its friend card and invoices).
    pub fn relays(&self) -> Vec<RelayAddress> {
        settings::read(&self.settings).relays
    }

    /// Replaces the relays the node listens on, and stores them. On a started node the
    /// listener moves to the new relays at once; links to friends stay up. Friend cards and
    /// invoices made from now on list the new relays (friends that have the old card still
    /// dial the old relays). At most [`offst_proto::limits::MAX_RELAYS`], each relay key
    /// once: otherwise [`NodeError::InvalidInput`] and nothing changes.
    pub async fn set_relays(&self, relays: Vec<RelayAddress>) -> Result<(), NodeError> {
        settings::check_relays(&relays)?;
        self.call(|reply| Request::SetRelays(relays, reply)).await?
    }

    /// The index servers the node reports its capacities to and asks for routes, in order of
    /// preference.
    pub fn index_servers(&self) -> Vec<IndexServerAddress> {
        settings::read(&self.settings).index_servers
    }

    /// Replaces the index servers, and stores them. On a started node the index client is
    /// restarted with them and the capacities are reported again at once. At most
    /// [`crate::MAX_INDEX_SERVERS`], each key once, addresses `host:port`: otherwise
    /// [`NodeError::InvalidInput`] and nothing changes.
    pub async fn set_index_servers(
        &self,
        index_servers: Vec<IndexServerAddress>,
    ) -> Result<(), NodeError> {
        settings::check_index_servers(&index_servers)?;
        self.call(|reply| Request::SetIndexServers(index_servers, reply))
            .await?
    }

    /// The node's friend card (key and relays, with a suggested `name`), for a QR code or link.
    pub fn friend_card(&self, name: &str) -> Result<FriendCard, NodeError> {
        let name = Text::new(name).map_err(|err| NodeError::InvalidInput(err.to_string()))?;
        let relays = self.relays();
        if relays.is_empty() {
            return Err(NodeError::InvalidInput(
                "the node listens on no relay, so friends could not reach it: add a relay first"
                    .into(),
            ));
        }
        FriendCard::new(self.public_key, name, relays)
            .map_err(|err| NodeError::InvalidInput(err.to_string()))
    }

    /// Adds a friend from its card (an `offst:F1…` URI); `name` overrides the card's name.
    pub async fn add_friend_from_card(
        &self,
        card: &str,
        name: Option<&str>,
    ) -> Result<PublicKey, NodeError> {
        let card: FriendCard = card
            .parse()
            .map_err(|err: offst_proto::uri::UriError| NodeError::InvalidInput(err.to_string()))?;
        let name = name.unwrap_or(card.name.as_str()).to_owned();
        self.add_friend(card.public_key, &name, card.relays).await?;
        Ok(card.public_key)
    }

    /// Adds a friend (from its card: key and relays).
    pub async fn add_friend(
        &self,
        public_key: PublicKey,
        name: &str,
        relays: Vec<RelayAddress>,
    ) -> Result<(), NodeError> {
        let name = text(name)?;
        self.command(Command::AddFriend {
            public_key,
            name,
            relays,
        })
        .await
    }

    /// Renames a friend.
    pub async fn set_friend_name(&self, friend: PublicKey, name: &str) -> Result<(), NodeError> {
        let name = text(name)?;
        self.command(Command::SetFriendName { friend, name }).await
    }

    /// Removes a friend; without `force` only when nothing is owed either way.
    pub async fn remove_friend(&self, friend: PublicKey, force: bool) -> Result<(), NodeError> {
        self.command(Command::RemoveFriend { friend, force }).await
    }

    /// Enables or disables a friend.
    pub async fn set_friend_enabled(
        &self,
        friend: PublicKey,
        enabled: bool,
    ) -> Result<(), NodeError> {
        self.command(Command::SetFriendEnabled { friend, enabled })
            .await
    }

    /// Sets how much `friend` may owe us in `currency` (adds the currency, open, if new).
    pub async fn set_limit(
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
        .await
    }

    /// Opens or closes `currency` with `friend` for payments towards us (adds the currency,
    /// limit 0, if new). The friend learns it with the next token.
    pub async fn set_currency_open(
        &self,
        friend: PublicKey,
        currency: &Currency,
        open: bool,
    ) -> Result<(), NodeError> {
        self.command(Command::SetCurrencyOpen {
            friend,
            currency: currency.clone(),
            open,
        })
        .await
    }

    /// Stops using `currency` with `friend`; refused while it has a balance or pending
    /// payments.
    pub async fn remove_currency(
        &self,
        friend: PublicKey,
        currency: &Currency,
    ) -> Result<(), NodeError> {
        self.command(Command::RemoveCurrency {
            friend,
            currency: currency.clone(),
        })
        .await
    }

    /// Accepts the reset terms `friend` proposed for an inconsistent channel (shown in
    /// [`FriendInfo::reset_terms`]); `reset_token` names the terms the user saw, so newer
    /// terms are not accepted by mistake. The channel restarts with the friend's balances.
    pub async fn accept_reset_terms(
        &self,
        friend: PublicKey,
        reset_token: Signature,
    ) -> Result<(), NodeError> {
        self.command(Command::AcceptResetTerms {
            friend,
            reset_token,
        })
        .await
    }

    /// Sets the fee we charge for forwarding requests that arrive from `friend` in `currency`
    /// (`None`: back to the default, [`FeeRate::DEFAULT`]). Index servers learn it with the
    /// next capacity report, so quotes and routes include it.
    pub async fn set_fee_rate(
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
        .await
    }

    /// Cancels one of our open invoices: payments for it are refused from now on (any in
    /// flight are cancelled, nothing is collected).
    pub async fn cancel_invoice(&self, invoice_id: InvoiceId) -> Result<(), NodeError> {
        self.command(Command::CancelInvoice { invoice_id }).await
    }

    /// What paying `invoice` (its `offst:I1…` URI) would take, without paying: the routes
    /// [`NodeHandle::pay`] would use (one route, or a split over up to `max_routes`) and the
    /// fees. Capacities change, so a later `pay` may route differently.
    pub async fn quote(&self, invoice: &str, max_routes: u32) -> Result<Quote, NodeError> {
        let invoice = parse_invoice(invoice)?;
        if max_routes == 0 {
            return Err(NodeError::InvalidInput(
                "max_routes must be at least 1".into(),
            ));
        }
        let routes = self
            .call(|reply| Request::Quote {
                invoice: Box::new(invoice),
                max_routes,
                reply,
            })
            .await??;
        let total_fees = routes
            .iter()
            .try_fold(Credits::ZERO, |sum, route| sum.checked_add(route.fees))
            .ok_or_else(|| NodeError::Routing("the route fees overflow".into()))?;
        Ok(Quote { routes, total_fees })
    }

    /// The node's history: stored events matching `query`, handled or not, oldest first.
    pub async fn history(&self, query: EventQuery) -> Result<Vec<StoredEvent>, NodeError> {
        self.call(|reply| Request::History(query, reply)).await?
    }

    /// Pays a friend directly. Returns the transfer's id; the friend's acceptance arrives as an
    /// event. Fails at once (nothing changed) when the amount is zero or over what the friend
    /// lets us owe.
    pub async fn transfer(
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
        let transfer_id = random_payment_id();
        self.command(Command::Transfer {
            friend,
            currency: currency.clone(),
            amount,
            transfer_id,
        })
        .await?;
        Ok(transfer_id)
    }

    /// Every friend with status, balances, limits, rates and any reset terms to accept.
    pub async fn friends(&self) -> Result<Vec<FriendInfo>, NodeError> {
        self.call(Request::Friends).await
    }

    /// Asks the index servers for routes from this node to `destination` carrying `amount` in
    /// `currency` (fees on top), cheapest first. Needs a started node with index servers.
    pub async fn find_routes(
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
        })
        .await?
    }

    /// Creates and signs an invoice for `amount` of `currency`, payable for `valid_for`. Share
    /// its URI (`invoice.to_uri()`, an `offst:I1…` code); the node collects by itself once the
    /// whole amount arrives (a `payment_received` event).
    pub async fn create_invoice(
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
        let description = text(description)?;
        let valid_ms = u64::try_from(valid_for.as_millis()).unwrap_or(u64::MAX);
        let command = Command::CreateInvoice {
            currency: currency.clone(),
            amount,
            expires_at: Timestamp(now().0.saturating_add(valid_ms)),
            description,
            relays: self.relays(),
        };
        self.call(|reply| Request::CreateInvoice { command, reply })
            .await?
    }

    /// Pays an invoice (its `offst:I1…` URI) in one action: asks the index servers for routes
    /// (split over up to [`crate::MAX_PAYMENT_ROUTES`] when no single route carries it) and
    /// sends the payment, paying at most `max_fees` in fees. Returns the payment's id at once;
    /// the outcome arrives as a `payment_succeeded` (with the receipt) or `payment_failed`
    /// event, and in [`NodeHandle::payment`].
    pub async fn pay(&self, invoice: &str, max_fees: Credits) -> Result<PaymentId, NodeError> {
        let invoice = parse_invoice(invoice)?;
        let payment_id = random_payment_id();
        self.call(|reply| Request::Pay {
            payment_id,
            invoice: Box::new(invoice),
            max_fees,
            reply,
        })
        .await??;
        Ok(payment_id)
    }

    /// Where a payment stands.
    pub async fn payment(&self, payment_id: PaymentId) -> Result<Option<PaymentInfo>, NodeError> {
        self.call(|reply| Request::Payment(payment_id, reply)).await
    }

    /// Totals per currency: fees earned and paid, amounts received and sent.
    pub async fn accounts(&self) -> Result<Vec<AccountInfo>, NodeError> {
        self.call(Request::Accounts).await
    }

    /// The oldest event the app has not marked handled, if any.
    pub async fn next_event(&self) -> Result<Option<StoredEvent>, NodeError> {
        self.call(Request::NextEvent).await?
    }

    /// Waits up to `timeout` for an unhandled event.
    pub async fn wait_next_event(
        &self,
        timeout: Duration,
    ) -> Result<Option<StoredEvent>, NodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.events_changed();
            if let Some(event) = self.next_event().await? {
                return Ok(Some(event));
            }
            if !sleep_until_changed(changed, deadline).await {
                return Ok(None);
            }
        }
    }

    /// Waits up to `timeout` for a payment to end; returns its last state either way (still
    /// `InProgress` after a timeout). `None` for an unknown payment.
    pub async fn wait_payment(
        &self,
        payment_id: PaymentId,
        timeout: Duration,
    ) -> Result<Option<PaymentInfo>, NodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.events_changed();
            let last = self.payment(payment_id).await?;
            let ended = last
                .as_ref()
                .is_some_and(|info| info.status != PaymentStatus::InProgress);
            if ended || !sleep_until_changed(changed, deadline).await {
                return Ok(last);
            }
        }
    }

    /// Marks an event handled: it leaves the queue (and stays in the history).
    pub async fn event_handled(&self, id: u64) -> Result<bool, NodeError> {
        self.call(|reply| Request::EventHandled(id, reply)).await?
    }

    /// Writes a consistent backup of the node's database to `path` (which must not exist);
    /// see [`crate::Node::backup`].
    pub async fn backup(&self, path: std::path::PathBuf) -> Result<(), NodeError> {
        self.call(|reply| Request::Backup(path, reply)).await?
    }
}

/// Sleeps until `changed` completes or `deadline` passes; false when the deadline had
/// already passed (the caller has made its last check).
async fn sleep_until_changed(changed: Notified<'_>, deadline: tokio::time::Instant) -> bool {
    if tokio::time::Instant::now() >= deadline {
        return false;
    }
    let _ = tokio::time::timeout_at(deadline, changed).await;
    true
}

fn text(text: &str) -> Result<Text, NodeError> {
    Text::new(text).map_err(|err| NodeError::InvalidInput(err.to_string()))
}

fn random_payment_id() -> PaymentId {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    PaymentId::from_bytes(id)
}
