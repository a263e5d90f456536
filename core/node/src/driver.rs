//! The driver: the one task that owns the credit state machine and the store. Each input is
//! one step: credit computes, the store commits (changes and events, one transaction), then
//! the step's messages go to the friend links. Nothing is sent that is not stored first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use offst_credit::{
    ChannelStatus, Command, CreditNode, Event, NodeState, Output, PayRoute, Timestamp,
};
use offst_crypto::Identity;
use offst_index::client::{ClientConfig, IndexClient, IndexServerAddress, QueryOptions};
use offst_net::{AllowList, RelayListener, SecureSender};
use offst_proto::index::{FeeRate, FriendCapacity, Route};
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{Credits, Currency, PaymentId, PublicKey, RelayAddress, WireMessage};
use offst_store::{Batch, EventQuery, NewEvent, SqliteStore, Store, StoredEvent};
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::events;
use crate::links::{self, LinkEvent, LINK_EVENT_QUEUE_LEN};
use crate::settings::{self, NetworkSettings, SharedSettings};
use crate::{
    now, AccountInfo, CurrencyInfo, FriendInfo, FriendStatus, NodeConfig, NodeError, PaymentInfo,
    ResetTermsInfo, MAX_PAYMENT_ROUTES, STOP_TIMEOUT,
};

/// Why a route query cannot be made.
const NO_INDEX: &str =
    "no index server configured, or the node is not started: add index servers and call start()";

/// The routes a payment of `invoice` takes: one route when one carries the whole amount, else
/// a split over up to `max_routes` (the same query `pay` makes, so a quote matches the fees).
async fn payment_routes(
    index: &IndexClient,
    invoice: &Invoice,
    max_routes: u32,
) -> Result<Vec<Route>, offst_index::client::ClientError> {
    let query = |max_routes| {
        index.request_routes(
            invoice.currency.clone(),
            invoice.seller,
            invoice.amount,
            QueryOptions {
                max_routes,
                ..QueryOptions::default()
            },
        )
    };
    match query(1).await {
        Ok(routes) => Ok(routes),
        Err(err) if max_routes <= 1 => Err(err),
        Err(_) => query(max_routes).await,
    }
}

/// What the API asks of the driver.
pub(crate) enum Request {
    Start(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
    Command(Command, oneshot::Sender<Result<(), NodeError>>),
    Friends(oneshot::Sender<Vec<FriendInfo>>),
    NextEvent(oneshot::Sender<Result<Option<StoredEvent>, NodeError>>),
    EventHandled(u64, oneshot::Sender<Result<bool, NodeError>>),
    Backup(PathBuf, oneshot::Sender<Result<(), NodeError>>),
    CreateInvoice {
        command: Command,
        reply: oneshot::Sender<Result<Invoice, NodeError>>,
    },
    Pay {
        payment_id: PaymentId,
        invoice: Box<Invoice>,
        max_fees: Credits,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// The second half of `Pay`, sent by the route-query task back to the driver.
    PayOverRoutes {
        payment_id: PaymentId,
        invoice: Box<Invoice>,
        routes: Vec<Route>,
        max_fees: Credits,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Payment(PaymentId, oneshot::Sender<Option<PaymentInfo>>),
    Accounts(oneshot::Sender<Vec<AccountInfo>>),
    /// Routes and fees for paying an invoice, without paying.
    Quote {
        invoice: Box<Invoice>,
        max_routes: u32,
        reply: oneshot::Sender<Result<Vec<Route>, NodeError>>,
    },
    /// Stored events (the history), handled or not.
    History(
        EventQuery,
        oneshot::Sender<Result<Vec<StoredEvent>, NodeError>>,
    ),
    Routes {
        destination: PublicKey,
        currency: Currency,
        amount: Credits,
        options: QueryOptions,
        reply: oneshot::Sender<Result<Vec<Route>, NodeError>>,
    },
    /// New relays to listen on (checked by the API), stored and applied.
    SetRelays(Vec<RelayAddress>, oneshot::Sender<Result<(), NodeError>>),
    /// New index servers (checked by the API), stored and applied.
    SetIndexServers(
        Vec<IndexServerAddress>,
        oneshot::Sender<Result<(), NodeError>>,
    ),
}

struct Link {
    generation: u64,
    sender: SecureSender,
    reader: JoinHandle<()>,
}

struct Dialer {
    task: JoinHandle<()>,
    closed: Arc<Notify>,
}

/// Networking, present while the node is started.
struct Network {
    /// Listens on our relays (`None` only while it is being replaced).
    listener: Option<RelayListener>,
    forwarder: JoinHandle<()>,
    access: Arc<AllowList>,
    dialers: HashMap<PublicKey, Dialer>,
    /// The index client, when index servers are configured.
    index: Option<Arc<IndexClient>>,
    /// The capacities last handed to the index client.
    reported: Vec<FriendCapacity>,
}

pub(crate) struct Driver {
    identity: Identity,
    config: NodeConfig,
    credit: CreditNode,
    store: SqliteStore,
    links: HashMap<PublicKey, Link>,
    next_generation: u64,
    link_events_tx: mpsc::Sender<LinkEvent>,
    link_events: mpsc::Receiver<LinkEvent>,
    network: Option<Network>,
    events_changed: Arc<Notify>,
    /// Our relays and index servers; the driver is the only writer.
    settings: SharedSettings,
    /// For tasks that finish a request on the driver (a payment after its route query).
    requests: mpsc::Sender<Request>,
}

impl Driver {
    pub(crate) fn new(
        identity: Identity,
        config: NodeConfig,
        store: SqliteStore,
        state: NodeState,
        events_changed: Arc<Notify>,
        settings: SharedSettings,
        requests: mpsc::Sender<Request>,
    ) -> Driver {
        let (link_events_tx, link_events) = mpsc::channel(LINK_EVENT_QUEUE_LEN);
        Driver {
            credit: CreditNode::new(identity.clone(), config.credit, state),
            identity,
            config,
            store,
            links: HashMap::new(),
            next_generation: 0,
            link_events_tx,
            link_events,
            network: None,
            events_changed,
            settings,
            requests,
        }
    }

    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        loop {
            let wake = self.credit.poll_timeout();
            let sleep = async {
                match wake {
                    Some(Timestamp(at)) => {
                        let wait = at.saturating_sub(now().0);
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                request = requests.recv() => match request {
                    Some(Request::Shutdown(reply)) => {
                        self.stop_network().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(request) => self.handle_request(request).await,
                    None => {
                        self.stop_network().await;
                        return;
                    }
                },
                Some(event) = self.link_events.recv() => self.handle_link_event(event),
                () = sleep => {
                    let output = self.credit.handle_timeout(now(), &mut OsRng);
                    self.step(output, Vec::new());
                }
            }
        }
    }

    /// Commits one step, then releases its messages. A failed commit sends nothing: the
    /// friend never sees a state we did not store (it will be recomputed and retransmitted).
    fn step(&mut self, output: Output, mut extra_events: Vec<NewEvent>) {
        let mut batch = Batch::changes(output.changes);
        batch.events = output.events.iter().flat_map(events::from_credit).collect();
        batch.events.append(&mut extra_events);
        if !batch.is_empty() {
            let committed = tokio::task::block_in_place(|| self.store.commit(&batch));
            if let Err(err) = committed {
                log::error!("storing a step failed, its messages are not sent: {err}");
                return;
            }
            // Waiters re-check: an event arrived, or the state apps report changed.
            self.events_changed.notify_waiters();
            // Capacities move only with stored changes or links coming and going (which
            // record events), never in an empty step.
            self.report_capacities();
        }
        for message in output.messages {
            match self.links.get(&message.to) {
                Some(link) => {
                    if let Err(err) = link.sender.try_send(message.message.encode()) {
                        // The credit layer retransmits when the link comes back.
                        log::info!("message to {} not sent: {err}", message.to);
                    }
                }
                None => log::debug!("{} is offline; message held for retransmission", message.to),
            }
        }
    }

    async fn handle_request(&mut self, request: Request) {
        match request {
            Request::Start(reply) => {
                self.start_network();
                let _ = reply.send(());
            }
            Request::Stop(reply) => {
                self.stop_network().await;
                let _ = reply.send(());
            }
            Request::Shutdown(reply) => {
                self.stop_network().await;
                let _ = reply.send(());
            }
            Request::Command(command, reply) => {
                let result = self.credit.handle_command(command, now(), &mut OsRng);
                match result {
                    Ok(output) => {
                        self.step(output, Vec::new());
                        self.sync_friends();
                        let _ = reply.send(Ok(()));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.into()));
                    }
                }
            }
            Request::Friends(reply) => {
                let _ = reply.send(self.friends());
            }
            Request::NextEvent(reply) => {
                let query = EventQuery {
                    unhandled_only: true,
                    limit: Some(1),
                    ..EventQuery::default()
                };
                let result = self
                    .store
                    .events(&query)
                    .map(|mut events| events.pop())
                    .map_err(NodeError::from);
                let _ = reply.send(result);
            }
            Request::EventHandled(id, reply) => {
                let _ = reply.send(self.store.mark_event_handled(id).map_err(NodeError::from));
            }
            Request::CreateInvoice { command, reply } => {
                match self.credit.handle_command(command, now(), &mut OsRng) {
                    Ok(output) => {
                        let invoice = output.events.iter().find_map(|event| match event {
                            Event::InvoiceCreated { invoice } => Some(invoice.as_ref().clone()),
                            _ => None,
                        });
                        self.step(output, Vec::new());
                        let _ = reply.send(invoice.ok_or_else(|| {
                            NodeError::Internal("the credit layer created no invoice".into())
                        }));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.into()));
                    }
                }
            }
            Request::Pay {
                payment_id,
                invoice,
                max_fees,
                reply,
            } => self.route_payment(payment_id, invoice, max_fees, reply),
            Request::PayOverRoutes {
                payment_id,
                invoice,
                routes,
                max_fees,
                reply,
            } => {
                let command = Command::Pay {
                    payment_id,
                    invoice,
                    routes: routes
                        .into_iter()
                        .map(|route| PayRoute {
                            route: route.nodes,
                            dest_payment: route.amount,
                        })
                        .collect(),
                    max_fees,
                };
                let result = self
                    .credit
                    .handle_command(command, now(), &mut OsRng)
                    .map(|output| self.step(output, Vec::new()))
                    .map_err(NodeError::from);
                let _ = reply.send(result);
            }
            Request::Payment(payment_id, reply) => {
                let info = self
                    .credit
                    .state()
                    .payments
                    .payments
                    .get(&payment_id)
                    .map(|payment| PaymentInfo {
                        payment_id,
                        invoice_id: payment.invoice.invoice_id,
                        status: payment.status,
                        amount: payment.invoice.amount,
                        fees: payment.fees_paid,
                        routes: payment.routes.len(),
                        receipt: payment.plain_lock.map(|plain_lock| Receipt {
                            invoice: payment.invoice.clone(),
                            plain_lock,
                        }),
                        started_at: payment.started_at,
                        finished_at: payment.finished_at,
                    });
                let _ = reply.send(info);
            }
            Request::Accounts(reply) => {
                let accounts = self
                    .credit
                    .state()
                    .payments
                    .accounts
                    .iter()
                    .map(|(currency, account)| AccountInfo {
                        currency: currency.clone(),
                        fees_earned: account.fees_earned,
                        fees_paid: account.fees_paid,
                        received: account.received,
                        sent: account.sent,
                    })
                    .collect();
                let _ = reply.send(accounts);
            }
            Request::Routes {
                destination,
                currency,
                amount,
                options,
                reply,
            } => {
                let index = self.network.as_ref().and_then(|n| n.index.clone());
                match index {
                    None => {
                        let _ = reply.send(Err(NodeError::Routing(NO_INDEX.into())));
                    }
                    Some(index) => {
                        tokio::spawn(async move {
                            let result = index
                                .request_routes(currency, destination, amount, options)
                                .await
                                .map_err(|err| NodeError::Routing(err.to_string()));
                            let _ = reply.send(result);
                        });
                    }
                }
            }
            Request::Quote {
                invoice,
                max_routes,
                reply,
            } => match self.network.as_ref().and_then(|n| n.index.clone()) {
                None => {
                    let _ = reply.send(Err(NodeError::Routing(NO_INDEX.into())));
                }
                Some(index) => {
                    tokio::spawn(async move {
                        let result =
                            payment_routes(&index, &invoice, max_routes)
                                .await
                                .map_err(|err| {
                                    NodeError::Routing(format!("no route to the seller: {err}"))
                                });
                        let _ = reply.send(result);
                    });
                }
            },
            Request::History(query, reply) => {
                let result = tokio::task::block_in_place(|| self.store.events(&query));
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Request::Backup(path, reply) => {
                let result = tokio::task::block_in_place(|| self.store.backup_to(&path));
                let _ = reply.send(result.map_err(NodeError::from));
            }
            Request::SetRelays(relays, reply) => {
                let _ = reply.send(self.set_relays(relays).await);
            }
            Request::SetIndexServers(index_servers, reply) => {
                let _ = reply.send(self.set_index_servers(index_servers));
            }
        }
    }

    /// Stores both lists of `network` in one commit, then makes them the current ones.
    fn store_network(&mut self, network: NetworkSettings) -> Result<(), NodeError> {
        let batch = Batch {
            settings: vec![
                (
                    settings::RELAYS_KEY.to_owned(),
                    Some(settings::encode_relays(&network.relays)),
                ),
                (
                    settings::INDEX_SERVERS_KEY.to_owned(),
                    Some(settings::encode_index_servers(&network.index_servers)),
                ),
            ],
            ..Batch::default()
        };
        tokio::task::block_in_place(|| self.store.commit(&batch))?;
        settings::write(&self.settings, network);
        // The report apps follow lists both: wake them as for any commit.
        self.events_changed.notify_waiters();
        Ok(())
    }

    /// Stores the new relays and, when started, moves the listener to them. Links to friends
    /// are streams of their own and stay up.
    async fn set_relays(&mut self, relays: Vec<RelayAddress>) -> Result<(), NodeError> {
        settings::check_relays(&relays)?;
        let mut network = settings::read(&self.settings);
        network.relays = relays;
        self.store_network(network)?;
        let Some(old) = self.network.as_mut().and_then(|n| n.listener.take()) else {
            return Ok(());
        };
        // Stopped first: a relay in both lists must not see us register twice. The old
        // forwarder ends by itself once the old listener's tasks are gone, after handing
        // over any stream already accepted.
        let _ = tokio::time::timeout(STOP_TIMEOUT / 2, old.stop()).await;
        if let Some(network) = self.network.as_ref() {
            let (listener, forwarder) = self.start_listener(network.access.clone());
            if let Some(network) = self.network.as_mut() {
                network.listener = Some(listener);
                network.forwarder = forwarder;
            }
        }
        Ok(())
    }

    /// Stores the new index servers and, when started, restarts the index client with them
    /// and reports the capacities to it at once.
    fn set_index_servers(
        &mut self,
        index_servers: Vec<IndexServerAddress>,
    ) -> Result<(), NodeError> {
        settings::check_index_servers(&index_servers)?;
        let mut network = settings::read(&self.settings);
        network.index_servers = index_servers;
        self.store_network(network)?;
        if self.network.is_none() {
            return Ok(());
        }
        let index = self.start_index_client();
        if let Some(network) = self.network.as_mut() {
            if let Some(old) = std::mem::replace(&mut network.index, index) {
                old.shutdown();
            }
            network.reported.clear();
        }
        self.report_capacities();
        Ok(())
    }

    /// Starts listening on our relays, with a task forwarding incoming links to the driver.
    fn start_listener(&self, access: Arc<AllowList>) -> (RelayListener, JoinHandle<()>) {
        let (listener, listen_events) = RelayListener::start(
            self.identity.clone(),
            settings::read(&self.settings).relays,
            access,
            self.config.relay_client.clone(),
        );
        let forwarder = tokio::spawn(links::forward_listener(
            listen_events,
            self.link_events_tx.clone(),
        ));
        (listener, forwarder)
    }

    /// An index client for our index servers, if there are any.
    fn start_index_client(&self) -> Option<Arc<IndexClient>> {
        let servers = settings::read(&self.settings).index_servers;
        (!servers.is_empty()).then(|| {
            Arc::new(IndexClient::start(
                self.identity.clone(),
                ClientConfig {
                    servers,
                    ..ClientConfig::default()
                },
            ))
        })
    }

    /// Asks the index for routes to the seller (one route, or a split over several when none
    /// carries the whole amount), then hands the payment back to the driver.
    fn route_payment(
        &mut self,
        payment_id: PaymentId,
        invoice: Box<Invoice>,
        max_fees: Credits,
        reply: oneshot::Sender<Result<(), NodeError>>,
    ) {
        let Some(index) = self.network.as_ref().and_then(|n| n.index.clone()) else {
            let _ = reply.send(Err(NodeError::Routing(NO_INDEX.into())));
            return;
        };
        let requests = self.requests.clone();
        tokio::spawn(async move {
            let routes = payment_routes(&index, &invoice, MAX_PAYMENT_ROUTES).await;
            match routes {
                Ok(routes) => {
                    let request = Request::PayOverRoutes {
                        payment_id,
                        invoice,
                        routes,
                        max_fees,
                        reply,
                    };
                    if let Err(mpsc::error::SendError(Request::PayOverRoutes { reply, .. })) =
                        requests.send(request).await
                    {
                        let _ = reply.send(Err(NodeError::NotRunning));
                    }
                }
                Err(err) => {
                    let _ = reply.send(Err(NodeError::Routing(format!(
                        "no route to the seller: {err}"
                    ))));
                }
            }
        });
    }

    /// What the node can send to and receive from each linked friend, per currency: the
    /// snapshot index servers route with. Handed to the index client when it changed (the
    /// client coalesces bursts and refreshes the report periodically).
    fn report_capacities(&mut self) {
        let Some(index) = self.network.as_ref().and_then(|n| n.index.clone()) else {
            return;
        };
        let mut snapshot = Vec::new();
        for friend in self.credit.state().friends.values() {
            if !friend.enabled || !self.links.contains_key(&friend.public_key) {
                continue;
            }
            let ChannelStatus::Consistent(channel) = &friend.channel else {
                continue;
            };
            for (currency, state) in channel.sheet.currencies() {
                snapshot.push(FriendCapacity {
                    friend: friend.public_key,
                    currency: currency.clone(),
                    send: state.send_capacity(),
                    recv: state.receive_capacity(),
                    rate: self.rate(&friend.public_key, currency),
                });
            }
        }
        let Some(network) = self.network.as_mut() else {
            return;
        };
        if snapshot == network.reported {
            return;
        }
        network.reported = snapshot.clone();
        tokio::spawn(async move {
            if let Err(err) = index.set_capacities(snapshot).await {
                log::warn!("capacity report not accepted by the index client: {err}");
            }
        });
    }

    /// Our fee for forwarding from `friend` in `currency`.
    fn rate(&self, friend: &PublicKey, currency: &Currency) -> FeeRate {
        self.credit
            .state()
            .payments
            .rates
            .get(&(*friend, currency.clone()))
            .map_or(FeeRate::DEFAULT, |rate| FeeRate {
                flat: rate.flat,
                proportional_ppm: rate.per_million,
            })
    }

    fn friends(&self) -> Vec<FriendInfo> {
        self.credit
            .state()
            .friends
            .values()
            .map(|friend| {
                let (status, currencies, reset_terms) = match &friend.channel {
                    ChannelStatus::Consistent(channel) => {
                        let status = if !friend.enabled {
                            FriendStatus::Disabled
                        } else if self.links.contains_key(&friend.public_key) {
                            FriendStatus::Online
                        } else {
                            FriendStatus::Offline
                        };
                        let currencies = channel
                            .sheet
                            .currencies()
                            .map(|(currency, state)| CurrencyInfo {
                                currency: currency.clone(),
                                balance: state.balance,
                                local_max_debt: state.local_max_debt,
                                remote_max_debt: state.remote_max_debt,
                                local_pending_debt: state.local_pending_debt,
                                remote_pending_debt: state.remote_pending_debt,
                                rate: self.rate(&friend.public_key, currency),
                                is_open: friend
                                    .currency_configs
                                    .get(currency)
                                    .map_or(state.local_open, |config| config.open),
                            })
                            .collect();
                        (status, currencies, None)
                    }
                    ChannelStatus::Inconsistent(inconsistency) => (
                        FriendStatus::Inconsistent,
                        Vec::new(),
                        inconsistency
                            .remote_terms
                            .as_ref()
                            .and_then(reset_terms_info),
                    ),
                };
                FriendInfo {
                    public_key: friend.public_key,
                    name: friend.name.clone(),
                    relays: friend.relays.clone(),
                    status,
                    currencies,
                    reset_terms,
                }
            })
            .collect()
    }

    fn start_network(&mut self) {
        if self.network.is_some() {
            return;
        }
        let access = Arc::new(AllowList::new(std::iter::empty()));
        let (listener, forwarder) = self.start_listener(access.clone());
        let index = self.start_index_client();
        self.network = Some(Network {
            listener: Some(listener),
            forwarder,
            access,
            dialers: HashMap::new(),
            index,
            reported: Vec::new(),
        });
        self.sync_friends();
    }

    async fn stop_network(&mut self) {
        let Some(network) = self.network.take() else {
            return;
        };
        for dialer in network.dialers.into_values() {
            dialer.task.abort();
        }
        network.forwarder.abort();
        if let Some(index) = &network.index {
            index.shutdown();
        }
        if let Some(listener) = network.listener {
            let _ = tokio::time::timeout(STOP_TIMEOUT / 2, listener.stop()).await;
        }
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            self.close_link(&peer);
        }
    }

    /// Brings access control and dialers in line with the friend list.
    fn sync_friends(&mut self) {
        let Some(network) = self.network.as_mut() else {
            return;
        };
        let local = self.identity.public_key();
        let enabled: Vec<_> = self
            .credit
            .state()
            .friends
            .values()
            .filter(|friend| friend.enabled)
            .map(|friend| (friend.public_key, friend.relays.clone()))
            .collect();
        network.access.replace(enabled.iter().map(|(key, _)| *key));
        network.dialers.retain(|key, dialer| {
            let keep = enabled.iter().any(|(k, _)| k == key);
            if !keep {
                dialer.task.abort();
            }
            keep
        });
        for (friend, relays) in enabled {
            // The side with the greater key dials; the other listens.
            if local > friend && !network.dialers.contains_key(&friend) {
                let closed = Arc::new(Notify::new());
                let task = tokio::spawn(links::dial(
                    self.identity.clone(),
                    friend,
                    relays,
                    self.config.relay_client.clone(),
                    closed.clone(),
                    self.link_events_tx.clone(),
                ));
                network.dialers.insert(friend, Dialer { task, closed });
            }
        }
        let stale: Vec<PublicKey> = self
            .links
            .keys()
            .filter(|key| {
                !self
                    .credit
                    .state()
                    .friends
                    .get(key)
                    .is_some_and(|friend| friend.enabled)
            })
            .copied()
            .collect();
        for peer in stale {
            self.close_link(&peer);
        }
    }

    fn close_link(&mut self, peer: &PublicKey) {
        if let Some(link) = self.links.remove(peer) {
            link.reader.abort();
            self.credit.handle_friend_offline(peer);
            self.step(Output::default(), vec![events::link(*peer, false)]);
            if let Some(dialer) = self.network.as_ref().and_then(|n| n.dialers.get(peer)) {
                dialer.closed.notify_one();
            }
        }
    }

    fn handle_link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected(stream) => {
                let peer = stream.peer();
                let is_friend = self
                    .credit
                    .state()
                    .friends
                    .get(&peer)
                    .is_some_and(|friend| friend.enabled);
                if self.network.is_none() || !is_friend {
                    log::info!("dropping a link with {peer}: not an enabled friend");
                    return;
                }
                if self.links.contains_key(&peer) {
                    self.close_link(&peer);
                }
                self.next_generation += 1;
                let generation = self.next_generation;
                let (receiver, sender) = stream.split();
                let reader = tokio::spawn(links::read_link(
                    receiver,
                    peer,
                    generation,
                    self.link_events_tx.clone(),
                ));
                self.links.insert(
                    peer,
                    Link {
                        generation,
                        sender,
                        reader,
                    },
                );
                let output = self.credit.handle_friend_online(&peer, now(), &mut OsRng);
                self.step(output, vec![events::link(peer, true)]);
            }
            LinkEvent::Message {
                peer,
                generation,
                bytes,
            } => {
                if self.links.get(&peer).map(|l| l.generation) != Some(generation) {
                    return; // from a link that was replaced
                }
                let output = self
                    .credit
                    .handle_message_bytes(&peer, &bytes, now(), &mut OsRng);
                self.step(output, Vec::new());
            }
            LinkEvent::Closed { peer, generation } => {
                if self.links.get(&peer).map(|l| l.generation) == Some(generation) {
                    self.close_link(&peer);
                }
            }
        }
    }
}

/// A friend's reset terms as the app sees them: balances from our side (the friend wrote them
/// from its side). `None` for terms with a balance that cannot be negated, which no valid
/// terms have and which could not be accepted anyway.
fn reset_terms_info(terms: &offst_proto::friend::ResetTerms) -> Option<ResetTermsInfo> {
    let balances = terms
        .currencies
        .iter()
        .map(|entry| Some((entry.currency.clone(), entry.balance.checked_neg()?)))
        .collect::<Option<Vec<_>>>()?;
    Some(ResetTermsInfo {
        reset_token: terms.reset_token,
        balances,
    })
}
