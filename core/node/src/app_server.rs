//! The app server: programs (`stctrl`, wallets, scripts) control a node over TCP, the secure
//! channel and the app protocol (`offst_proto::app`, docs/PROTOCOL.md "App protocol").
//!
//! Each app has its own Ed25519 identity. After the handshake the server looks the app's key
//! up in an [`AppRegistry`] (re-read on every connection, so registering or removing an app
//! needs no restart): an unknown key gets `refused` and the connection closes. A registered
//! app gets `welcome` with its permissions; with the `info` permission it then gets the full
//! report, a new report whenever it changes (at most every [`REPORT_SPACING`]), and every
//! history event as it is committed. Requests are answered in order, one response each; a
//! request the app's permissions do not cover is refused with `permissionDenied` and changes
//! nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offst_crypto::Identity;
use offst_net::{secure, AllowAll, SecureConfig, SecureReceiver, SecureSender};
use offst_proto::app::{
    AccountReport, AppError, AppErrorKind, AppRequest, AppResult, AppToNode, CurrencyReport,
    FriendReport, FriendStatus as AppFriendStatus, HistoryQuery, NodeEvent, NodeReport, NodeToApp,
    PaymentState, PaymentStatus as AppPaymentStatus, Permissions, Quote as AppQuote,
    ResetTermsReport, Welcome, MAX_APP_EVENT_PAYLOAD_LEN, MAX_APP_HISTORY, MAX_APP_MESSAGE_LEN,
};
use offst_proto::{PublicKey, RelayAddress, Text, WireMessage};
use offst_store::{EventQuery, StoredEvent};
use rand_core::OsRng;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::{
    now, FriendInfo, FriendStatus, IndexServerAddress, NodeError, NodeHandle, PaymentInfo,
    QueryOptions,
};

/// The default TCP port apps connect to.
pub const DEFAULT_APP_PORT: u16 = 7600;

/// Most apps connected at once, by default.
pub const DEFAULT_MAX_APPS: usize = 16;

/// Least time between two reports pushed to one app: a burst of payments changes balances
/// hundreds of times a second, the app sees the state at most this often (and always the
/// last state).
pub const REPORT_SPACING: Duration = Duration::from_millis(100);

/// Events pushed to an app per batch (the rest follow in the next batches).
const EVENT_BATCH: usize = 256;

/// Longest time between an event's timestamp and its commit (a step is committed within
/// milliseconds of being computed; this is a wide margin).
const EVENT_STAMP_SLACK_MS: u64 = 2_000;

/// An app the node knows: its name, key and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredApp {
    /// The name it was registered under (for logs and the app's `welcome`).
    pub name: String,
    /// The app's identity.
    pub public_key: PublicKey,
    /// What it may do.
    pub permissions: Permissions,
}

/// Where the app server looks up connecting apps. Consulted on every connection.
pub trait AppRegistry: Send + Sync + 'static {
    /// The app registered with `key`, if any. An error (an unreadable registry) refuses the
    /// connection with its message.
    fn lookup(&self, key: &PublicKey) -> Result<Option<RegisteredApp>, String>;
}

/// A fixed list of apps (for embedding and tests).
impl AppRegistry for Vec<RegisteredApp> {
    fn lookup(&self, key: &PublicKey) -> Result<Option<RegisteredApp>, String> {
        Ok(self.iter().find(|app| &app.public_key == key).cloned())
    }
}

/// How the app server listens.
#[derive(Debug, Clone)]
pub struct AppServerConfig {
    /// Where apps connect (keep it on loopback unless apps run on other machines).
    pub listen: SocketAddr,
    /// Most apps connected at once; more are refused as busy.
    pub max_apps: usize,
    /// Secure-channel timing.
    pub secure: SecureConfig,
}

impl Default for AppServerConfig {
    fn default() -> Self {
        AppServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_APP_PORT)),
            max_apps: DEFAULT_MAX_APPS,
            secure: SecureConfig::default(),
        }
    }
}

/// A running app server. Dropping it (or [`AppServer::stop`]) closes the listener and every
/// app connection.
#[derive(Debug)]
pub struct AppServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl AppServer {
    /// Binds `config.listen` and serves apps for `node` on the current tokio runtime (the
    /// node's: see [`crate::Node::serve_apps`]).
    pub(crate) async fn start(
        node: NodeHandle,
        identity: Identity,
        config: AppServerConfig,
        registry: Arc<dyn AppRegistry>,
    ) -> Result<AppServer, NodeError> {
        let listener = TcpListener::bind(config.listen).await.map_err(|err| {
            NodeError::InvalidInput(format!(
                "cannot listen for apps on {}: {err} (is another stnode using it?)",
                config.listen
            ))
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|err| NodeError::Internal(format!("app listener address: {err}")))?;
        let (stop, stopped) = watch::channel(false);
        let server = Arc::new(Server {
            node,
            identity,
            config,
            registry,
            slots: Arc::new(Semaphore::new(0)),
            stopped,
        });
        server.slots.add_permits(server.config.max_apps);
        let task = tokio::spawn(server.accept_loop(listener));
        log::info!("listening for apps on {local_addr}");
        Ok(AppServer {
            local_addr,
            stop,
            task: Some(task),
        })
    }

    /// The address apps connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening and closes every app connection.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Server {
    node: NodeHandle,
    identity: Identity,
    config: AppServerConfig,
    registry: Arc<dyn AppRegistry>,
    slots: Arc<Semaphore>,
    stopped: watch::Receiver<bool>,
}

impl Server {
    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut stopped = self.stopped.clone();
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = until_stopped(&mut stopped) => break,
                accepted = offst_net::tcp::accept(&listener) => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let (stream, peer_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    log::warn!("accepting an app connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                log::warn!(
                    "refusing the app at {peer_addr}: {} apps connected",
                    self.config.max_apps
                );
                tokio::spawn(secure::refuse_busy(stream, self.config.secure.versions));
                continue;
            };
            let server = self.clone();
            connections.spawn(async move {
                let _slot = slot;
                server.serve(stream, peer_addr).await;
            });
        }
        connections.shutdown().await;
    }

    async fn serve(&self, stream: tokio::net::TcpStream, peer_addr: SocketAddr) {
        let Ok(mut stream) = secure::accept(
            stream,
            &self.identity,
            &self.config.secure,
            &mut OsRng,
            &AllowAll,
        )
        .await
        else {
            return; // logged by `accept`
        };
        stream.limit_message_len(MAX_APP_MESSAGE_LEN);
        let key = stream.peer();
        let refusal = match self.registry.lookup(&key) {
            Ok(Some(app)) => Ok(app),
            Ok(None) => {
                log::warn!("refused app {key} at {peer_addr}: not registered");
                Err(app_error(
                    AppErrorKind::NotRegistered,
                    format!(
                        "the app key {key} is not registered with this node: register the app \
                         with `stnode app add` and use the identity file it writes"
                    ),
                ))
            }
            Err(err) => {
                log::error!("app registry: {err}");
                Err(app_error(
                    AppErrorKind::Internal,
                    format!("the node cannot read its app registry: {err}"),
                ))
            }
        };
        let app = match refusal {
            Ok(app) => app,
            Err(refusal) => {
                // Written before closing (a split stream's writer could drop it).
                let _ = stream.send(&NodeToApp::Refused(refusal).encode()).await;
                stream.close().await;
                return;
            }
        };
        let (receiver, sender) = stream.split();
        log::info!(
            "app {:?} ({key}) connected from {peer_addr} with permissions {}",
            app.name,
            app.permissions
        );
        let mut connection = Connection {
            node: &self.node,
            app,
            sender,
            last_report: None,
            next_report_at: Instant::now(),
            last_event_id: None,
            window_ms: now().0.saturating_sub(EVENT_STAMP_SLACK_MS),
        };
        let result = connection.run(receiver, self.stopped.clone()).await;
        match result {
            Ok(()) => log::info!("app {:?} disconnected", connection.app.name),
            Err(reason) => log::info!("app {:?} disconnected: {reason}", connection.app.name),
        }
    }
}

/// One app's session.
struct Connection<'a> {
    node: &'a NodeHandle,
    app: RegisteredApp,
    sender: SecureSender,
    /// The report the app saw last (info apps only).
    last_report: Option<NodeReport>,
    /// No report is pushed before this.
    next_report_at: Instant,
    /// The last event committed before the app connected, then the last one pushed; `None`
    /// while no event stamped after `window_ms` exists.
    last_event_id: Option<u64>,
    /// Events are stamped before they are committed: every event committed after the app
    /// connected is stamped after this.
    window_ms: u64,
}

impl Connection<'_> {
    async fn run(
        &mut self,
        mut receiver: SecureReceiver,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let welcome = Welcome {
            node_public_key: self.node.public_key(),
            permissions: self.app.permissions,
            app_name: Text::new(&self.app.name).unwrap_or_default(),
        };
        self.send(NodeToApp::Welcome(welcome)).await?;
        if self.app.permissions.info {
            self.skip_past_events().await?;
        }
        let changed = self.node.clone();
        loop {
            // Registered before the check, so a commit in between is not missed.
            let notified = changed.events_changed();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let report_wait = if self.app.permissions.info {
                self.push_updates().await?
            } else {
                None
            };
            let report_due = async {
                match report_wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = until_stopped(&mut stopped) => return Ok(()),
                message = receiver.recv() => match message {
                    Ok(Some(bytes)) => self.handle_message(&bytes).await?,
                    Ok(None) => return Ok(()),
                    Err(err) => return Err(err.to_string()),
                },
                () = &mut notified => {}
                () = report_due => {}
            }
        }
    }

    async fn send(&self, message: NodeToApp) -> Result<(), String> {
        let bytes = message.encode();
        if bytes.len() > MAX_APP_MESSAGE_LEN {
            return Err(format!(
                "a message of {} bytes is over the app protocol's limit",
                bytes.len()
            ));
        }
        self.sender.send(bytes).await.map_err(|err| err.to_string())
    }

    /// Finds the last event committed before now, so that exactly the later ones are pushed
    /// (ids are in commit order; timestamps are taken before the commit).
    async fn skip_past_events(&mut self) -> Result<(), String> {
        while self.next_events().await?.len() == EVENT_BATCH {}
        Ok(())
    }

    /// The next batch of events after the last one seen (or in the window, before the first),
    /// moving past them.
    async fn next_events(&mut self) -> Result<Vec<StoredEvent>, String> {
        let query = EventQuery {
            since_ms: self.last_event_id.is_none().then_some(self.window_ms),
            after_id: self.last_event_id,
            limit: Some(EVENT_BATCH),
            ..EventQuery::default()
        };
        let events = self
            .node
            .history(query)
            .await
            .map_err(|err| err.to_string())?;
        if let Some(last) = events.last() {
            self.last_event_id = Some(last.id);
        }
        Ok(events)
    }

    /// Pushes new events, and the report when it changed and is due. Returns how long until
    /// a changed report may be pushed, when it is held back by [`REPORT_SPACING`].
    async fn push_updates(&mut self) -> Result<Option<Duration>, String> {
        loop {
            let events = self.next_events().await?;
            let full = events.len() == EVENT_BATCH;
            for stored in &events {
                self.send(NodeToApp::Event(node_event(stored))).await?;
            }
            if !full {
                break;
            }
        }
        let wait = self
            .next_report_at
            .saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            return Ok(Some(wait));
        }
        let report = node_report(self.node)
            .await
            .map_err(|err| err.to_string())?;
        if self.last_report.as_ref() != Some(&report) {
            self.send(NodeToApp::Report(Box::new(report.clone())))
                .await?;
            self.last_report = Some(report);
            self.next_report_at = Instant::now() + REPORT_SPACING;
        }
        Ok(None)
    }

    async fn handle_message(&mut self, bytes: &[u8]) -> Result<(), String> {
        let message = AppToNode::decode(bytes)
            .map_err(|err| format!("undecodable request (connection closed): {err}"))?;
        let result = if message.request.is_permitted(&self.app.permissions) {
            match self.handle_request(message.request).await {
                Ok(result) => result,
                Err(err) => AppResult::Error(error_from(err)),
            }
        } else {
            log::info!(
                "app {:?}: {} refused, it needs the {} permission",
                self.app.name,
                message.request.name(),
                message.request.required_permission()
            );
            AppResult::Error(app_error(
                AppErrorKind::PermissionDenied,
                format!(
                    "{} needs the {} permission, which the app {:?} does not have (register \
                     the app again with it: `stnode app add`)",
                    message.request.name(),
                    message.request.required_permission(),
                    self.app.name
                ),
            ))
        };
        let response = NodeToApp::Response {
            request_id: message.request_id,
            result,
        };
        if response.encode().len() > MAX_APP_MESSAGE_LEN {
            let result = AppResult::Error(app_error(
                AppErrorKind::Internal,
                "the answer is too large for one app message".into(),
            ));
            return self
                .send(NodeToApp::Response {
                    request_id: message.request_id,
                    result,
                })
                .await;
        }
        self.send(response).await
    }

    async fn handle_request(&mut self, request: AppRequest) -> Result<AppResult, NodeError> {
        let node = self.node;
        Ok(match request {
            AppRequest::Report => AppResult::Report(Box::new(node_report(node).await?)),
            AppRequest::History(query) => AppResult::History(history(node, query).await?),
            AppRequest::FriendCard { name } => {
                AppResult::FriendCard(node.friend_card(name.as_str())?)
            }
            AppRequest::PaymentStatus(payment_id) => match node.payment(payment_id).await? {
                Some(info) => AppResult::Payment(payment_status(info)),
                None => {
                    return Err(NodeError::InvalidInput(format!(
                        "no payment {payment_id} on this node"
                    )))
                }
            },
            AppRequest::AddFriend { card, name } => {
                let name = name.unwrap_or_else(|| card.name.clone());
                node.add_friend(card.public_key, name.as_str(), card.relays)
                    .await?;
                AppResult::Ok
            }
            AppRequest::RemoveFriend { friend, force } => {
                node.remove_friend(friend, force).await?;
                AppResult::Ok
            }
            AppRequest::SetFriendName { friend, name } => {
                node.set_friend_name(friend, name.as_str()).await?;
                AppResult::Ok
            }
            AppRequest::EnableFriend(friend) => {
                node.set_friend_enabled(friend, true).await?;
                AppResult::Ok
            }
            AppRequest::DisableFriend(friend) => {
                node.set_friend_enabled(friend, false).await?;
                AppResult::Ok
            }
            AppRequest::SetLimit {
                friend,
                currency,
                remote_max_debt,
            } => {
                node.set_limit(friend, &currency, remote_max_debt).await?;
                AppResult::Ok
            }
            AppRequest::SetRate {
                friend,
                currency,
                rate,
            } => {
                node.set_fee_rate(friend, &currency, Some(rate)).await?;
                AppResult::Ok
            }
            AppRequest::OpenCurrency { friend, currency } => {
                node.set_currency_open(friend, &currency, true).await?;
                AppResult::Ok
            }
            AppRequest::CloseCurrency { friend, currency } => {
                node.set_currency_open(friend, &currency, false).await?;
                AppResult::Ok
            }
            AppRequest::AcceptResetTerms {
                friend,
                reset_token,
            } => {
                node.accept_reset_terms(friend, reset_token).await?;
                AppResult::Ok
            }
            AppRequest::AddRelay(relay) => {
                let relays = with_added(node.relays(), relay, |r| r.public_key, "relay")?;
                node.set_relays(relays).await?;
                AppResult::Ok
            }
            AppRequest::RemoveRelay(key) => {
                let relays = without(node.relays(), key, |r| r.public_key, "relay")?;
                node.set_relays(relays).await?;
                AppResult::Ok
            }
            AppRequest::AddIndexServer(server) => {
                let server = IndexServerAddress {
                    public_key: server.public_key,
                    address: server.address.as_str().to_owned(),
                };
                let servers = with_added(
                    node.index_servers(),
                    server,
                    |s| s.public_key,
                    "index server",
                )?;
                node.set_index_servers(servers).await?;
                AppResult::Ok
            }
            AppRequest::RemoveIndexServer(key) => {
                let servers = without(node.index_servers(), key, |s| s.public_key, "index server")?;
                node.set_index_servers(servers).await?;
                AppResult::Ok
            }
            AppRequest::CreateInvoice {
                currency,
                amount,
                valid_for_ms,
                description,
            } => {
                let valid_for = Duration::from_millis(valid_for_ms);
                let invoice = node
                    .create_invoice(&currency, amount, description.as_str(), valid_for)
                    .await?;
                AppResult::Invoice(Box::new(invoice))
            }
            AppRequest::CancelInvoice(invoice_id) => {
                node.cancel_invoice(invoice_id).await?;
                AppResult::Ok
            }
            AppRequest::Quote {
                invoice,
                max_routes,
            } => {
                let quote = node.quote(&invoice.to_uri(), max_routes).await?;
                AppResult::Quote(AppQuote {
                    routes: quote.routes,
                    total_fees: quote.total_fees,
                })
            }
            AppRequest::Pay { invoice, max_fees } => {
                let payment_id = node.pay(&invoice.to_uri(), max_fees).await?;
                let info = node
                    .payment(payment_id)
                    .await?
                    .ok_or_else(|| NodeError::Internal(format!("payment {payment_id} vanished")))?;
                AppResult::Payment(payment_status(info))
            }
            AppRequest::Routes {
                destination,
                currency,
                amount,
                max_routes,
            } => {
                let options = QueryOptions {
                    max_routes: max_routes.max(1),
                    ..QueryOptions::default()
                };
                AppResult::Routes(
                    node.find_routes(destination, &currency, amount, options)
                        .await?,
                )
            }
        })
    }
}

/// `list` with `item` added; one with the same key there already is refused.
fn with_added<T>(
    mut list: Vec<T>,
    item: T,
    key_of: impl Fn(&T) -> PublicKey,
    what: &str,
) -> Result<Vec<T>, NodeError> {
    let key = key_of(&item);
    if list.iter().any(|entry| key_of(entry) == key) {
        return Err(NodeError::InvalidInput(format!(
            "the node already uses the {what} {key}"
        )));
    }
    list.push(item);
    Ok(list)
}

/// `list` without the entry with `key`; refused when there is none.
fn without<T>(
    mut list: Vec<T>,
    key: PublicKey,
    key_of: impl Fn(&T) -> PublicKey,
    what: &str,
) -> Result<Vec<T>, NodeError> {
    let before = list.len();
    list.retain(|entry| key_of(entry) != key);
    if list.len() == before {
        return Err(NodeError::InvalidInput(format!(
            "the node uses no {what} with the key {key}"
        )));
    }
    Ok(list)
}

/// Completes once the server is told to stop (or is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

fn app_error(kind: AppErrorKind, message: String) -> AppError {
    AppError::new(kind, message)
}

/// The app protocol's view of a node error.
fn error_from(err: NodeError) -> AppError {
    let kind = match &err {
        NodeError::InvalidInput(_) => AppErrorKind::InvalidInput,
        NodeError::Command(_) => AppErrorKind::Refused,
        NodeError::Routing(_) => AppErrorKind::Routing,
        NodeError::NotRunning => AppErrorKind::NotRunning,
        NodeError::Store(_) => AppErrorKind::Storage,
        NodeError::DataDirInUse | NodeError::Key(_) | NodeError::Internal(_) => {
            AppErrorKind::Internal
        }
    };
    app_error(kind, err.to_string())
}

/// The full report: the node, its friends with balances and limits, its accounts.
pub(crate) async fn node_report(node: &NodeHandle) -> Result<NodeReport, NodeError> {
    let friends = node.friends().await?;
    let accounts = node.accounts().await?;
    Ok(NodeReport {
        public_key: node.public_key(),
        relays: node.relays(),
        index_servers: node
            .index_servers()
            .into_iter()
            .filter_map(|server| {
                Some(RelayAddress {
                    public_key: server.public_key,
                    address: offst_proto::NetAddress::new(&server.address).ok()?,
                })
            })
            .collect(),
        friends: friends.into_iter().map(friend_report).collect(),
        accounts: accounts
            .into_iter()
            .map(|account| AccountReport {
                currency: account.currency,
                fees_earned: account.fees_earned,
                fees_paid: account.fees_paid,
                received: account.received,
                sent: account.sent,
            })
            .collect(),
    })
}

fn friend_report(friend: FriendInfo) -> FriendReport {
    FriendReport {
        public_key: friend.public_key,
        name: friend.name,
        relays: friend.relays,
        status: match friend.status {
            FriendStatus::Disabled => AppFriendStatus::Disabled,
            FriendStatus::Offline => AppFriendStatus::Offline,
            FriendStatus::Online => AppFriendStatus::Online,
            FriendStatus::Inconsistent => AppFriendStatus::Inconsistent,
        },
        currencies: friend
            .currencies
            .into_iter()
            .map(|currency| CurrencyReport {
                currency: currency.currency,
                balance: currency.balance,
                local_max_debt: currency.local_max_debt,
                remote_max_debt: currency.remote_max_debt,
                local_pending_debt: currency.local_pending_debt,
                remote_pending_debt: currency.remote_pending_debt,
                rate: currency.rate,
                is_open: currency.is_open,
            })
            .collect(),
        reset_terms: friend.reset_terms.map(|terms| ResetTermsReport {
            reset_token: terms.reset_token,
            balances: terms.balances,
        }),
    }
}

fn payment_status(info: PaymentInfo) -> AppPaymentStatus {
    AppPaymentStatus {
        payment_id: info.payment_id,
        invoice_id: info.invoice_id,
        state: match info.status {
            offst_credit::PaymentStatus::InProgress => PaymentState::InProgress,
            offst_credit::PaymentStatus::Succeeded => PaymentState::Succeeded,
            offst_credit::PaymentStatus::Cancelled => PaymentState::Cancelled,
        },
        amount: info.amount,
        fees: info.fees,
        routes: u32::try_from(info.routes).unwrap_or(u32::MAX),
        receipt: info.receipt,
        started_at_ms: info.started_at,
        finished_at_ms: info.finished_at,
    }
}

async fn history(node: &NodeHandle, query: HistoryQuery) -> Result<Vec<NodeEvent>, NodeError> {
    let limit = query
        .limit
        .map_or(MAX_APP_HISTORY, |limit| {
            usize::try_from(limit).unwrap_or(MAX_APP_HISTORY)
        })
        .min(MAX_APP_HISTORY);
    let events = node
        .history(EventQuery {
            since_ms: query.since_ms,
            after_id: query.after_id,
            friend: query.friend,
            limit: Some(limit),
            ..EventQuery::default()
        })
        .await?;
    Ok(events.iter().map(node_event).collect())
}

/// A stored event as the app protocol carries it. A payload over the protocol's bound (none
/// the node writes is near it) is replaced by a note saying so.
fn node_event(stored: &StoredEvent) -> NodeEvent {
    let mut payload_json = stored.event.payload.to_string();
    if payload_json.len() > MAX_APP_EVENT_PAYLOAD_LEN {
        payload_json = r#"{"truncated":true}"#.to_owned();
    }
    NodeEvent {
        id: stored.id,
        timestamp_ms: stored.event.timestamp_ms,
        kind: stored.event.kind.clone(),
        friend: stored.event.friend,
        status: stored.event.status.clone(),
        payload_json,
    }
}
