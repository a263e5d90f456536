//! The tokio index server: thin glue between sockets and [`IndexState`].
//!
//! Every connection runs the secure-channel handshake of `offst_net`. The authenticated key
//! decides the role: a key in the trusted server set is a federation peer (its
//! `forwardReports` are applied and it receives our flood), any other key is a client (a node
//! reporting about itself and asking for routes). Trusted servers with a configured address are
//! dialled and redialled with backoff; both ends send their full snapshot when a link comes up,
//! so a restarted or late server catches up. Duplicate links are harmless: a report already
//! held is refused as stale and never flooded again.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use offst_crypto::Identity;
use offst_net::{secure, tcp, AllowAll, Backoff, BackoffPolicy, SecureConfig, SecureSender};
use offst_proto::index::{
    IndexMessage, ReportRejection, RouteFailure, RouteResponse, SignedCapacityReport,
};
use offst_proto::limits::MAX_INDEX_FORWARD_BATCH;
use offst_proto::{PublicKey, WireMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::metrics::{GraphGauges, Metrics};
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::state::{IndexState, Sender, StateConfig};

/// Default most simultaneous connections (nodes and servers). Each costs two small tasks and a
/// few KiB of buffers; 10,000 fits comfortably in a small VM.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default most simultaneous connections from one IP address: enough for a NAT full of nodes,
/// far below the global limit, so one host cannot take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// Most clients whose rate-limit buckets are tracked at once (bounds the limiter's memory).
pub const MAX_RATE_LIMITED_CLIENTS: usize = 100_000;

/// Most bytes of reports in one `forwardReports` batch we send: half a frame, so a batch of
/// large reports always fits.
const MAX_FORWARD_BATCH_BYTES: usize = 512 * 1024;

/// Most simultaneous metrics scrapes; the endpoint is for one Prometheus, not the public.
const MAX_METRICS_CONNECTIONS: usize = 8;

/// How long a metrics client may take to send its request.
const METRICS_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Reports queued per federation link before the link counts as too slow and is dropped (it
/// then resynchronises from a snapshot). Sized for bursts: a second of reports from a
/// 100,000-node network refreshing every minute is about 1,700.
const LINK_QUEUE_LEN: usize = 4_096;

/// How often a dialler checks whether its link is still up.
const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// A trusted federation peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerServer {
    /// The peer's identity; its reports are accepted and it receives ours.
    pub public_key: PublicKey,
    /// Where to dial it (`host:port`); without one we wait for it to dial us.
    pub address: Option<String>,
}

/// Everything a server needs besides its identity.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to accept nodes and servers.
    pub listen: SocketAddr,
    /// Where to serve Prometheus metrics over HTTP, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The trusted servers.
    pub peers: Vec<PeerServer>,
    /// Most simultaneous connections; more are refused as busy.
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address; more are refused as busy.
    pub max_connections_per_ip: usize,
    /// Reports per client.
    pub report_limit: RateLimit,
    /// Route queries per client.
    pub query_limit: RateLimit,
    /// How often expired reports are dropped.
    pub expiry_interval: Duration,
    /// Limits of the state machine.
    pub state: StateConfig,
    /// Secure-channel timing.
    pub secure: SecureConfig,
    /// Redial backoff towards peers.
    pub reconnect: BackoffPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 7_400)),
            metrics_listen: None,
            peers: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            report_limit: RateLimit {
                per_second: 2.0,
                burst: 10.0,
            },
            query_limit: RateLimit {
                per_second: 20.0,
                burst: 50.0,
            },
            expiry_interval: Duration::from_secs(1),
            state: StateConfig::default(),
            secure: SecureConfig::default(),
            reconnect: BackoffPolicy::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
}

struct ServerLink {
    peer: PublicKey,
    /// Reports waiting for this link's forwarder.
    queue: mpsc::Sender<SignedCapacityReport>,
    /// Wakes the link's reader to close it (the peer did not keep up with the flood).
    kill: Arc<Notify>,
}

struct Shared {
    identity: Identity,
    config: ServerConfig,
    state: Mutex<IndexState>,
    report_limiter: Mutex<RateLimiter<PublicKey>>,
    query_limiter: Mutex<RateLimiter<PublicKey>>,
    links: Mutex<HashMap<u64, ServerLink>>,
    next_link: AtomicU64,
    metrics: Metrics,
}

/// Locks a mutex, recovering the data if a task panicked while holding it (the state stays
/// consistent: every mutation is a single call that completes or panics before changing it).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The current unix time in milliseconds.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A running index server. Dropping it without [`IndexServer::shutdown`] leaves the tasks
/// running until the runtime ends.
pub struct IndexServer {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for IndexServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexServer")
            .field("local_addr", &self.local_addr)
            .field("identity", &self.shared.identity.public_key())
            .finish_non_exhaustive()
    }
}

impl IndexServer {
    /// Binds the listeners and starts serving on the current tokio runtime.
    pub async fn start(
        identity: Identity,
        config: ServerConfig,
    ) -> Result<IndexServer, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    address: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: config.listen,
            source,
        })?;
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| ServerError::Bind { address, source })?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        let trusted = config.peers.iter().map(|peer| peer.public_key);
        let shared = Arc::new(Shared {
            state: Mutex::new(IndexState::new(config.state.clone(), trusted)),
            report_limiter: Mutex::new(RateLimiter::new(
                config.report_limit,
                MAX_RATE_LIMITED_CLIENTS,
            )),
            query_limiter: Mutex::new(RateLimiter::new(
                config.query_limit,
                MAX_RATE_LIMITED_CLIENTS,
            )),
            links: Mutex::new(HashMap::new()),
            next_link: AtomicU64::new(0),
            metrics: Metrics::default(),
            identity,
            config,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(shared.clone(), listener, shutdown_rx.clone()));
        tasks.spawn(expiry_loop(shared.clone(), shutdown_rx.clone()));
        if let Some(listener) = metrics_listener {
            tasks.spawn(metrics_loop(shared.clone(), listener, shutdown_rx.clone()));
        }
        for peer in shared.config.peers.clone() {
            if let Some(address) = peer.address {
                tasks.spawn(dial_loop(
                    shared.clone(),
                    peer.public_key,
                    address,
                    shutdown_rx.clone(),
                ));
            }
        }
        let mut stop = shutdown_rx;
        let supervisor = tokio::spawn(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            tasks.shutdown().await;
        });
        log::info!(
            "index server {} listening on {local_addr}",
            shared.identity.public_key()
        );
        Ok(IndexServer {
            local_addr,
            metrics_addr,
            shared,
            shutdown,
            supervisor,
        })
    }

    /// The address nodes and servers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The metrics endpoint's address, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The server's identity.
    pub fn public_key(&self) -> PublicKey {
        self.shared.identity.public_key()
    }

    /// Runs `read` on the state (for tests and diagnostics).
    pub fn inspect<R>(&self, read: impl FnOnce(&IndexState) -> R) -> R {
        read(&lock(&self.shared.state))
    }

    /// How many distinct trusted servers are linked right now.
    pub fn connected_servers(&self) -> usize {
        let mut peers: Vec<PublicKey> = lock(&self.shared.links).values().map(|l| l.peer).collect();
        peers.sort();
        peers.dedup();
        peers.len()
    }

    /// The metrics text, as the endpoint serves it.
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.shared)
    }

    /// Stops accepting, closes every connection and waits for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.supervisor.await;
        log::info!("index server {} stopped", self.shared.identity.public_key());
    }
}

fn render_metrics(shared: &Shared) -> String {
    let (counters, mut gauges) = {
        let state = lock(&shared.state);
        (
            state.counters(),
            GraphGauges {
                live_nodes: state.live_nodes(),
                edges: state.graph().edge_count(),
                servers_connected: 0,
            },
        )
    };
    let mut peers: Vec<PublicKey> = lock(&shared.links).values().map(|l| l.peer).collect();
    peers.sort();
    peers.dedup();
    gauges.servers_connected = peers.len();
    shared.metrics.render(&counters, &gauges)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let per_ip_counts: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = tcp::accept(&listener) => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                log::warn!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let per_ip = PerIpSlot::take(
            &per_ip_counts,
            address.ip(),
            shared.config.max_connections_per_ip,
        );
        let (Ok(permit), Some(per_ip)) = (permits.clone().try_acquire_owned(), per_ip) else {
            Metrics::bump(&shared.metrics.connections_refused);
            log::warn!("refusing {address}: at the connection limit");
            connections.spawn(secure::refuse_busy(stream, shared.config.secure.versions));
            continue;
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _per_ip = per_ip;
            let accepted = secure::accept(
                stream,
                &shared.identity,
                &shared.config.secure,
                &mut rand_core::OsRng,
                &AllowAll,
            )
            .await;
            match accepted {
                Ok(stream) => serve(shared, stream).await,
                Err(err) => log::debug!("handshake with {address} failed: {err}"),
            }
        });
    }
    connections.shutdown().await;
}

/// One connection's share of its IP address's limit; released on drop.
struct PerIpSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerIpSlot {
    /// Takes a slot for `ip`, or `None` when it already has `max` connections. The map holds
    /// only addresses with open connections, so it is bounded by the connection limit.
    fn take(
        counts: &Arc<Mutex<HashMap<IpAddr, usize>>>,
        ip: IpAddr,
        max: usize,
    ) -> Option<PerIpSlot> {
        let mut map = lock(counts);
        let count = map.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PerIpSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut map = lock(&self.counts);
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

async fn dial_loop(
    shared: Arc<Shared>,
    peer: PublicKey,
    address: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(shared.config.reconnect);
    loop {
        let connected = lock(&shared.links).values().any(|link| link.peer == peer);
        if connected {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = tokio::time::sleep(LINK_CHECK_INTERVAL) => continue,
            }
        }
        let attempt = async {
            let stream = tcp::dial(&address, shared.config.secure.handshake_timeout).await?;
            secure::connect(
                stream,
                &shared.identity,
                Some(peer),
                &shared.config.secure,
                &mut rand_core::OsRng,
            )
            .await
        };
        let outcome = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(stream) => {
                backoff.reset();
                log::info!("federation link to {peer} at {address} up");
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = serve(shared.clone(), stream) => {}
                }
                log::info!("federation link to {peer} at {address} down");
            }
            Err(err) => {
                let delay = backoff.next_delay(&mut rand_core::OsRng);
                log::debug!("dialling index {peer} at {address} failed: {err}; retry in {delay:?}");
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Serves one authenticated connection until it ends.
async fn serve(shared: Arc<Shared>, stream: offst_net::SecureStream) {
    let peer = stream.peer();
    let trusted = lock(&shared.state).trusts(&peer);
    let (mut receiver, sender) = stream.split();
    Metrics::bump(&shared.metrics.connections_accepted);
    shared
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    let link_id = shared.next_link.fetch_add(1, Ordering::Relaxed);
    let mut forwarder = None;
    let kill = Arc::new(Notify::new());
    if trusted {
        let (queue, pending) = mpsc::channel(LINK_QUEUE_LEN);
        lock(&shared.links).insert(
            link_id,
            ServerLink {
                peer,
                queue,
                kill: kill.clone(),
            },
        );
        // Taken after the link is registered: a report accepted meanwhile is in the snapshot
        // or queued (or both; the copy is refused as stale), never lost.
        let snapshot = lock(&shared.state).snapshot();
        forwarder = Some(tokio::spawn(forward_to_peer(
            sender.clone(),
            snapshot,
            pending,
        )));
    }
    loop {
        let received = tokio::select! {
            () = kill.notified() => break,
            received = receiver.recv() => received,
        };
        let Ok(Some(bytes)) = received else {
            break;
        };
        let message = match IndexMessage::decode(&bytes) {
            Ok(message) => message,
            Err(err) => {
                Metrics::bump(&shared.metrics.malformed_messages);
                log::info!("closing {peer}: malformed message: {err}");
                break;
            }
        };
        if handle_message(&shared, peer, trusted, &sender, message)
            .await
            .is_err()
        {
            break;
        }
    }
    if let Some(task) = forwarder {
        task.abort();
    }
    lock(&shared.links).remove(&link_id);
    shared
        .metrics
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
}

/// Splits reports into `forwardReports` messages within the count and size limits.
fn batches(reports: Vec<SignedCapacityReport>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut batch: Vec<SignedCapacityReport> = Vec::new();
    let mut bytes = 0usize;
    for report in reports {
        let size = report.report.friends.len() * 160 + 256;
        if !batch.is_empty()
            && (batch.len() >= MAX_INDEX_FORWARD_BATCH || bytes + size > MAX_FORWARD_BATCH_BYTES)
        {
            out.push(IndexMessage::ForwardReports(std::mem::take(&mut batch)).encode());
            bytes = 0;
        }
        bytes += size;
        batch.push(report);
    }
    if !batch.is_empty() {
        out.push(IndexMessage::ForwardReports(batch).encode());
    }
    out
}

/// Feeds one federation link: first the snapshot, then every report queued by [`flood`],
/// batched as the link allows. Waiting here only slows this link.
async fn forward_to_peer(
    sender: SecureSender,
    snapshot: Vec<SignedCapacityReport>,
    mut pending: mpsc::Receiver<SignedCapacityReport>,
) {
    for batch in batches(snapshot) {
        if sender.send(batch).await.is_err() {
            return;
        }
    }
    while let Some(first) = pending.recv().await {
        let mut reports = vec![first];
        while reports.len() < MAX_INDEX_FORWARD_BATCH {
            match pending.try_recv() {
                Ok(report) => reports.push(report),
                Err(_) => break,
            }
        }
        for batch in batches(reports) {
            if sender.send(batch).await.is_err() {
                return;
            }
        }
    }
}

/// Queues an accepted report for every trusted link except those to `source`.
fn flood(shared: &Shared, report: &SignedCapacityReport, source: Option<PublicKey>) {
    let links = lock(&shared.links);
    for link in links.values() {
        if Some(link.peer) == source {
            continue;
        }
        match link.queue.try_send(report.clone()) {
            Ok(()) => Metrics::bump(&shared.metrics.reports_flooded),
            Err(mpsc::error::TrySendError::Full(_)) => {
                // A peer that cannot keep up is dropped; it resynchronises from the snapshot
                // when the link comes back.
                log::warn!(
                    "dropping federation link to {}: it does not keep up",
                    link.peer
                );
                Metrics::bump(&shared.metrics.slow_servers_dropped);
                link.kill.notify_one();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Handles one message; `Err` closes the connection.
async fn handle_message(
    shared: &Shared,
    peer: PublicKey,
    trusted: bool,
    sender: &SecureSender,
    message: IndexMessage,
) -> Result<(), ()> {
    let now = unix_now_ms();
    let reply = match message {
        IndexMessage::Report(signed) => {
            let report = &signed.report;
            let result = if lock(&shared.report_limiter).allow(&peer, now) {
                lock(&shared.state).handle_report(Sender::Client(peer), &signed, now)
            } else {
                Metrics::bump(&shared.metrics.rate_limited);
                Err(ReportRejection::RateLimited)
            };
            if result.is_ok() {
                flood(shared, &signed, None);
            }
            Some(match result {
                Ok(()) => IndexMessage::ReportAccepted {
                    node: report.node,
                    session_id: report.session_id,
                    counter: report.counter,
                },
                Err(reason) => IndexMessage::ReportRejected {
                    node: report.node,
                    session_id: report.session_id,
                    counter: report.counter,
                    reason,
                },
            })
        }
        IndexMessage::ForwardReports(reports) => {
            let mut first_rejection = None;
            for signed in &reports {
                let result = lock(&shared.state).handle_report(Sender::Server(peer), signed, now);
                match result {
                    Ok(()) => flood(shared, signed, Some(peer)),
                    // Duplicates and stale copies are normal in a flood; only report real
                    // refusals, once per batch.
                    Err(ReportRejection::Stale) => {}
                    Err(reason) if first_rejection.is_none() => {
                        first_rejection = Some(IndexMessage::ReportRejected {
                            node: signed.report.node,
                            session_id: signed.report.session_id,
                            counter: signed.report.counter,
                            reason,
                        });
                    }
                    Err(_) => {}
                }
            }
            if !trusted {
                // Debug, not warn: a hostile peer must not be able to flood the log.
                log::debug!(
                    "{peer} is not a trusted index server; ignored its {} reports",
                    reports.len()
                );
            }
            first_rejection
        }
        IndexMessage::RequestRoutes(request) => {
            let allowed = lock(&shared.query_limiter).allow(&peer, now);
            let response = if allowed {
                lock(&shared.state).route(&request)
            } else {
                Metrics::bump(&shared.metrics.rate_limited);
                RouteResponse {
                    request_id: request.request_id,
                    result: Err(RouteFailure::RateLimited),
                }
            };
            Some(IndexMessage::ResponseRoutes(response))
        }
        // Answers are for clients; a server or node sending them to us is ignored.
        IndexMessage::ReportAccepted { .. }
        | IndexMessage::ReportRejected { .. }
        | IndexMessage::ResponseRoutes(_) => None,
    };
    if let Some(reply) = reply {
        sender.send(reply.encode()).await.map_err(|_| ())?;
    }
    Ok(())
}

async fn expiry_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(shared.config.expiry_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = ticker.tick() => {}
        }
        let dropped = lock(&shared.state).expire(unix_now_ms());
        for node in dropped {
            log::debug!("node {node} stopped reporting; dropped");
        }
    }
}

async fn metrics_loop(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS));
    let mut scrapes = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = listener.accept() => accepted,
            Some(_) = scrapes.join_next(), if !scrapes.is_empty() => continue,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let shared = shared.clone();
        scrapes.spawn(async move {
            let _permit = permit;
            let mut request = [0u8; 1024];
            let read = tokio::time::timeout(METRICS_READ_TIMEOUT, stream.read(&mut request)).await;
            let ok = matches!(read, Ok(Ok(n)) if request[..n].starts_with(b"GET "));
            let response = if ok {
                let body = render_metrics(&shared);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            };
            let _ = tokio::time::timeout(METRICS_READ_TIMEOUT, stream.write_all(response.as_bytes())).await;
            let _ = stream.shutdown().await;
        });
    }
    scrapes.shutdown().await;
}
