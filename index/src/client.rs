//! The node side of the index protocol: keeps the node's signed capacity report current on one
//! of several index servers (failing over to the next when a server is unreachable) and asks
//! for routes.
//!
//! One task owns the connection. [`IndexClient::set_capacities`] replaces the node's snapshot
//! and sends it at once, or, when the previous report left less than `min_report_spacing` ago,
//! as soon as that spacing has passed (changes in between are coalesced); the task also re-sends
//! it every `report_interval` so the index never lets it expire while the node is up. Each report gets the next counter of this client's
//! session (a random id drawn at start), signed over the canonical bytes. Queries in flight
//! when a connection drops are re-sent on the next server.

use std::collections::HashMap;
use std::time::Duration;

use offst_crypto::{random_bytes, Identity};
use offst_net::{secure, tcp, Backoff, BackoffPolicy, SecureConfig};
use offst_proto::index::{
    CapacityReport, FriendCapacity, IndexMessage, Route, RouteFailure, RouteRequest,
    SignedCapacityReport,
};
use offst_proto::limits::{MAX_INDEX_REPORT_ENTRIES, MAX_INDEX_REPORT_TTL_SECS, MAX_ROUTE_LEN};
use offst_proto::{Credits, Currency, PublicKey, RandValue, RequestId, WireMessage};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::server::unix_now_ms;

/// Commands queued for the client task before callers wait.
const COMMAND_QUEUE_LEN: usize = 64;

/// Most route queries in flight at once; more wait in the command queue. The original allowed 8.
pub const MAX_PENDING_QUERIES: usize = 32;

/// An index server the client may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexServerAddress {
    /// The server's identity, checked in the handshake.
    pub public_key: PublicKey,
    /// Where to dial it, `host:port`.
    pub address: String,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Servers in order of preference; the client moves to the next when one fails.
    pub servers: Vec<IndexServerAddress>,
    /// How often the report is re-sent when nothing changed.
    pub report_interval: Duration,
    /// Least time between two reports: changes arriving faster (every payment changes a
    /// capacity) are coalesced into one report, so a busy node stays within the index's
    /// per-client report limit (by default 2 per second).
    pub min_report_spacing: Duration,
    /// How long each report lives at the index (at most 600 s); the node disappears from the
    /// index this long after it stops reporting.
    pub report_ttl: Duration,
    /// How long a route query may take, reconnections included.
    pub request_timeout: Duration,
    /// Secure-channel timing.
    pub secure: SecureConfig,
    /// Backoff between failed connection attempts.
    pub reconnect: BackoffPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            servers: Vec::new(),
            report_interval: Duration::from_secs(60),
            min_report_spacing: Duration::from_secs(1),
            report_ttl: Duration::from_secs(180),
            request_timeout: Duration::from_secs(10),
            secure: SecureConfig::default(),
            reconnect: BackoffPolicy::default(),
        }
    }
}

/// Options of a route query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// Most arcs per route.
    pub max_hops: u32,
    /// Most routes; 1 asks for a single route.
    pub max_routes: u32,
    /// Nodes to avoid.
    pub exclude_nodes: Vec<PublicKey>,
    /// Directed arcs to avoid.
    pub exclude_arcs: Vec<(PublicKey, PublicKey)>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            max_hops: (MAX_ROUTE_LEN - 1) as u32,
            max_routes: 1,
            exclude_nodes: Vec::new(),
            exclude_arcs: Vec::new(),
        }
    }
}

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The client was shut down.
    #[error("the index client is stopped")]
    Stopped,
    /// No server answered in time.
    #[error("no index server answered within {0:?}")]
    Timeout(Duration),
    /// The index answered without routes.
    #[error("the index found no routes: {0:?}")]
    NoRoutes(RouteFailure),
    /// More friend entries than one report can carry.
    #[error("{0} channel entries exceed the limit of {MAX_INDEX_REPORT_ENTRIES} per report")]
    TooManyEntries(usize),
}

enum Command {
    SetCapacities(Vec<FriendCapacity>),
    Query {
        request: RouteRequest,
        reply: oneshot::Sender<Result<Vec<Route>, RouteFailure>>,
    },
}

/// A handle to the client task. Cheap to clone; the task stops on [`IndexClient::shutdown`] or
/// when every handle is dropped.
#[derive(Debug, Clone)]
pub struct IndexClient {
    commands: mpsc::Sender<Command>,
    connected: watch::Receiver<Option<PublicKey>>,
    stop: watch::Sender<bool>,
    identity: PublicKey,
    request_timeout: Duration,
}

impl IndexClient {
    /// Starts the client task on the current tokio runtime.
    pub fn start(identity: Identity, config: ClientConfig) -> IndexClient {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE_LEN);
        let (connected_tx, connected) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let client = IndexClient {
            commands,
            connected,
            stop,
            identity: identity.public_key(),
            request_timeout: config.request_timeout,
        };
        tokio::spawn(run(identity, config, command_rx, connected_tx, stop_rx));
        client
    }

    /// The server the client is connected to right now, if any.
    pub fn connected_server(&self) -> Option<PublicKey> {
        *self.connected.borrow()
    }

    /// Waits until the client is connected to some server.
    pub async fn wait_connected(&self) -> Result<PublicKey, ClientError> {
        let mut connected = self.connected.clone();
        let server = connected
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ClientError::Stopped)?;
        server.ok_or(ClientError::Stopped)
    }

    /// Replaces the node's channel snapshot and reports it at once.
    pub async fn set_capacities(&self, friends: Vec<FriendCapacity>) -> Result<(), ClientError> {
        if friends.len() > MAX_INDEX_REPORT_ENTRIES {
            return Err(ClientError::TooManyEntries(friends.len()));
        }
        self.commands
            .send(Command::SetCapacities(friends))
            .await
            .map_err(|_| ClientError::Stopped)
    }

    /// Routes from this node to `destination` that carry `amount` (fees on top).
    pub async fn request_routes(
        &self,
        currency: Currency,
        destination: PublicKey,
        amount: Credits,
        options: QueryOptions,
    ) -> Result<Vec<Route>, ClientError> {
        let request = RouteRequest {
            request_id: RequestId::from_bytes(random_bytes(&mut rand_core::OsRng)),
            currency,
            amount,
            source: self.identity,
            destination,
            max_hops: options.max_hops,
            max_routes: options.max_routes,
            exclude_nodes: options.exclude_nodes,
            exclude_arcs: options.exclude_arcs,
        };
        let (reply, answer) = oneshot::channel();
        let ask = async {
            self.commands
                .send(Command::Query { request, reply })
                .await
                .map_err(|_| ClientError::Stopped)?;
            answer.await.map_err(|_| ClientError::Stopped)
        };
        match tokio::time::timeout(self.request_timeout, ask).await {
            Err(_) => Err(ClientError::Timeout(self.request_timeout)),
            Ok(Err(err)) => Err(err),
            Ok(Ok(result)) => result.map_err(ClientError::NoRoutes),
        }
    }

    /// Stops the client task; the index forgets the node once its last report expires.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

/// Completes when the stop flag is raised or every handle is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The next report of this session.
struct Reporter {
    identity: Identity,
    session_id: RandValue,
    counter: u64,
    ttl_ms: u64,
    friends: Vec<FriendCapacity>,
}

impl Reporter {
    fn next(&mut self) -> Vec<u8> {
        let now = unix_now_ms();
        let report = CapacityReport {
            node: self.identity.public_key(),
            session_id: self.session_id,
            counter: self.counter,
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(self.ttl_ms),
            friends: self.friends.clone(),
        };
        self.counter += 1;
        let signature = self.identity.sign(&report.signing_bytes());
        IndexMessage::Report(SignedCapacityReport { report, signature }).encode()
    }
}

type Pending = HashMap<
    RequestId,
    (
        RouteRequest,
        oneshot::Sender<Result<Vec<Route>, RouteFailure>>,
    ),
>;

async fn run(
    identity: Identity,
    config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    connected: watch::Sender<Option<PublicKey>>,
    mut stop: watch::Receiver<bool>,
) {
    let ttl = config
        .report_ttl
        .min(Duration::from_secs(MAX_INDEX_REPORT_TTL_SECS));
    let mut reporter = Reporter {
        session_id: RandValue::from_bytes(random_bytes(&mut rand_core::OsRng)),
        identity: identity.clone(),
        counter: 0,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        friends: Vec::new(),
    };
    let mut pending: Pending = HashMap::new();
    let mut backoff = Backoff::new(config.reconnect);
    let mut next_server = 0usize;
    if config.servers.is_empty() {
        log::warn!("index client has no servers configured");
    }
    loop {
        let Some(server) = config
            .servers
            .get(next_server % config.servers.len().max(1))
            .cloned()
        else {
            stopped(&mut stop).await;
            return;
        };
        let attempt = async {
            let stream = tcp::dial(&server.address, config.secure.handshake_timeout).await?;
            secure::connect(
                stream,
                &identity,
                Some(server.public_key),
                &config.secure,
                &mut rand_core::OsRng,
            )
            .await
        };
        let stream = tokio::select! {
            () = stopped(&mut stop) => return,
            stream = attempt => stream,
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                log::debug!(
                    "index {} at {} unreachable: {err}",
                    server.public_key,
                    server.address
                );
                next_server += 1;
                let delay = backoff.next_delay(&mut rand_core::OsRng);
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        backoff.reset();
        log::info!(
            "connected to index {} at {}",
            server.public_key,
            server.address
        );
        let (mut receiver, sender) = stream.split();
        let _ = connected.send(Some(server.public_key));
        let mut healthy = sender.send(reporter.next()).await.is_ok();
        for (request, _) in pending.values() {
            healthy &= sender
                .send(IndexMessage::RequestRoutes(request.clone()).encode())
                .await
                .is_ok();
        }
        let mut ticker = tokio::time::interval(config.report_interval);
        ticker.tick().await; // the first tick is immediate; we just reported
        let mut last_report = Instant::now();
        // A change arrived too soon after the last report; send it at `last_report + spacing`.
        let mut changed = false;
        while healthy {
            let next_allowed = last_report + config.min_report_spacing;
            tokio::select! {
                () = stopped(&mut stop) => return,
                _ = ticker.tick() => {
                    healthy = sender.send(reporter.next()).await.is_ok();
                    (last_report, changed) = (Instant::now(), false);
                }
                () = tokio::time::sleep_until(next_allowed), if changed => {
                    healthy = sender.send(reporter.next()).await.is_ok();
                    (last_report, changed) = (Instant::now(), false);
                }
                command = commands.recv(), if pending.len() < MAX_PENDING_QUERIES => {
                    let Some(command) = command else { return };
                    healthy = match command {
                        Command::SetCapacities(friends) => {
                            reporter.friends = friends;
                            if Instant::now() >= next_allowed {
                                (last_report, changed) = (Instant::now(), false);
                                sender.send(reporter.next()).await.is_ok()
                            } else {
                                changed = true; // coalesced with later changes
                                true
                            }
                        }
                        Command::Query { request, reply } => {
                            let message = IndexMessage::RequestRoutes(request.clone()).encode();
                            pending.insert(request.request_id, (request, reply));
                            sender.send(message).await.is_ok()
                        }
                    };
                }
                received = receiver.recv() => {
                    let Ok(Some(bytes)) = received else {
                        healthy = false;
                        continue;
                    };
                    match IndexMessage::decode(&bytes) {
                        Ok(IndexMessage::ResponseRoutes(response)) => {
                            if let Some((_, reply)) = pending.remove(&response.request_id) {
                                let _ = reply.send(response.result);
                            }
                        }
                        Ok(IndexMessage::ReportRejected { reason, counter, .. }) => {
                            log::warn!("index {} refused report {counter}: {reason:?}", server.public_key);
                        }
                        Ok(_) => {}
                        Err(err) => {
                            log::warn!("malformed message from index {}: {err}", server.public_key);
                            healthy = false;
                        }
                    }
                }
            }
            pending.retain(|_, (_, reply)| !reply.is_closed());
        }
        let _ = connected.send(None);
        log::info!("lost index {}; trying the next server", server.public_key);
        next_server += 1;
    }
}
