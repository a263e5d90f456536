//! The relay server (docs/PROTOCOL.md, "Relay").
//!
//! Each accepted connection gets one task: the secure handshake (the relay is the responder
//! and accepts any node), then the first message decides its role:
//! - `Listen`: the node is registered as listening; the task forwards `IncomingConnection`
//!   announcements to it and reads its `RejectConnection`s.
//! - `Connect(target)`: the task registers a half-open tunnel, announces the caller to the
//!   target's listening connection and waits (bounded) for the target's `Accept` connection.
//!   When it comes, this task sends `Ready` on both legs and splices them.
//! - `Accept(caller)`: the task hands its connection to the waiting caller's task.
//!
//! Shared state is a map of listeners and a map of half-open tunnels under one mutex that is
//! never held across an await. Every map entry is tied to a live connection, and connections
//! are bounded by the limits, so the maps are bounded too.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use offst_crypto::handshake::VersionRange;
use offst_crypto::Identity;
use offst_net::secure::{self, SecureConfig, SecureStream};
use offst_net::{tcp, AllowAll};
use offst_proto::relay::{
    InitConnection, ListenerToRelay, RefuseReason, RelayCard, RelayToListener, TunnelReply,
};
use offst_proto::{NetAddress, PublicKey, RelayAddress, WireMessage};
use rand_core::OsRng;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Limits, RelayConfig};
use crate::metrics::{self, Metrics};
use crate::splice::{splice, SpliceEnd, SpliceLimits};

/// Refusals ("busy" frames to connections over a limit) being written at once. Each holds a
/// socket for at most a second; beyond this many, further excess connections are dropped
/// without a word, so a flood cannot pin descriptors through the refusal path.
pub const MAX_PENDING_REFUSALS: usize = 256;

/// Largest relay message accepted from a node. Relay messages are a key or two (under 100
/// bytes encoded); a node cannot make the relay buffer more than this per connection.
pub const MAX_RELAY_MESSAGE_LEN: usize = 512;

/// How long a graceful shutdown waits for connections to close before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayServerError {
    /// A listening socket could not be bound.
    #[error("binding {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The public address is not `host:port`.
    #[error("public address: {0}")]
    PublicAddress(#[from] offst_proto::TypeError),
}

/// A bound relay, ready to run.
pub struct RelayServer {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    card: RelayCard,
    shared: Arc<Shared>,
}

/// A relay running in the background (see [`RelayServer::spawn`]).
#[derive(Debug)]
pub struct RelayHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    metrics: Arc<Metrics>,
}

impl RelayHandle {
    /// The relay's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Shuts the relay down gracefully and waits until it has stopped.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

struct Shared {
    identity: Identity,
    limits: Limits,
    secure: SecureConfig,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    refusals: Arc<tokio::sync::Semaphore>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    open_connections: usize,
    connections_per_ip: HashMap<IpAddr, usize>,
    listeners: HashMap<PublicKey, Registered>,
    /// target → caller → the caller's waiting task.
    half_open: HashMap<PublicKey, HashMap<PublicKey, HalfOpen>>,
    half_open_per_caller: HashMap<PublicKey, usize>,
}

struct Registered {
    id: u64,
    sender: offst_net::SecureSender,
}

struct HalfOpen {
    id: u64,
    pairing: oneshot::Sender<Pairing>,
}

enum Pairing {
    Accepted(Box<SecureStream>, ConnectionSlot),
    Rejected,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Removes the half-open tunnel `caller → target`, whichever task owns it.
    fn take_half_open(&mut self, target: &PublicKey, caller: &PublicKey) -> Option<HalfOpen> {
        let callers = self.half_open.get_mut(target)?;
        let entry = callers.remove(caller)?;
        if callers.is_empty() {
            self.half_open.remove(target);
        }
        if let Some(count) = self.half_open_per_caller.get_mut(caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.half_open_per_caller.remove(caller);
            }
        }
        Some(entry)
    }

    /// Removes the half-open tunnel `caller → target` only if it is still entry `id`.
    fn remove_half_open(&mut self, target: &PublicKey, caller: &PublicKey, id: u64) {
        let ours = self
            .half_open
            .get(target)
            .and_then(|callers| callers.get(caller))
            .is_some_and(|entry| entry.id == id);
        if ours {
            self.take_half_open(target, caller);
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A counted connection; dropping it frees its place under the limits.
struct ConnectionSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.open_connections = state.open_connections.saturating_sub(1);
        if let Some(count) = state.connections_per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.connections_per_ip.remove(&self.ip);
            }
        }
        drop(state);
        self.shared.metrics.connections_open.dec();
    }
}

impl RelayServer {
    /// Binds the relay's sockets (node port and metrics port) as `identity`.
    pub async fn bind(
        config: &RelayConfig,
        identity: Identity,
    ) -> Result<RelayServer, RelayServerError> {
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .map_err(|source| RelayServerError::Bind { address, source })
        };
        let listener = bind(config.listen).await?;
        let local = listener
            .local_addr()
            .map_err(|source| RelayServerError::Bind {
                address: config.listen,
                source,
            })?;
        let metrics_listener = match config.metrics {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let public_address = match &config.public_address {
            Some(address) => NetAddress::new(address)?,
            None => NetAddress::new(&local.to_string())?,
        };
        let card = RelayCard(RelayAddress {
            public_key: identity.public_key(),
            address: public_address,
        });
        let limits = config.limits;
        let defaults = SecureConfig::default();
        let secure = SecureConfig {
            handshake_timeout: limits.handshake_timeout(),
            // At least three keepalives per idle timeout, even if an operator shortens it.
            keepalive_interval: defaults.keepalive_interval.min(limits.idle_timeout() / 3),
            idle_timeout: limits.idle_timeout(),
            write_timeout: limits.idle_timeout(),
            ..defaults
        };
        Ok(RelayServer {
            listener,
            metrics_listener,
            card,
            shared: Arc::new(Shared {
                identity,
                limits,
                secure,
                metrics: Arc::new(Metrics::default()),
                state: Mutex::new(State::default()),
                refusals: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_REFUSALS)),
            }),
        })
    }

    /// The address nodes connect to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The address of the metrics endpoint.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The relay's card (its key and public address).
    pub fn card(&self) -> &RelayCard {
        &self.card
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Runs in a background task until [`RelayHandle::shutdown`].
    pub fn spawn(self) -> RelayHandle {
        let (shutdown, mut signal) = watch::channel(false);
        let metrics = self.metrics();
        let task = tokio::spawn(self.run(async move {
            let _ = signal.changed().await;
        }));
        RelayHandle {
            shutdown,
            task,
            metrics,
        }
    }

    /// Serves until `stop` completes, then shuts down gracefully: stops accepting, tells
    /// every connection task to close, and waits up to [`SHUTDOWN_GRACE`] for them.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let (shutdown, signal) = watch::channel(false);
        log::info!("relay {} listening", self.card);
        if let Some(listener) = self.metrics_listener {
            tokio::spawn(metrics::serve(
                listener,
                self.shared.metrics.clone(),
                signal.clone(),
            ));
        }
        tokio::pin!(stop);
        loop {
            let accepted = tokio::select! {
                () = &mut stop => break,
                accepted = tcp::accept(&self.listener) => accepted,
            };
            match accepted {
                Ok((stream, address)) => admit(&self.shared, stream, address, &signal),
                Err(err) => {
                    // Out of file descriptors or similar: back off briefly instead of spinning.
                    log::warn!("accepting a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.listener);
        let _ = shutdown.send(true);
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.shared.metrics.connections_open.get() > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        log::info!(
            "relay stopped ({} connections still open)",
            self.shared.metrics.connections_open.get()
        );
    }
}

/// Applies the connection limits and starts the connection's task.
fn admit(
    shared: &Arc<Shared>,
    stream: TcpStream,
    address: SocketAddr,
    signal: &watch::Receiver<bool>,
) {
    let ip = address.ip();
    let metrics = &shared.metrics;
    let verdict = {
        let mut state = shared.state();
        let from_ip = state.connections_per_ip.get(&ip).copied().unwrap_or(0);
        if state.open_connections >= shared.limits.max_connections {
            Err(true)
        } else if from_ip >= shared.limits.max_connections_per_ip {
            Err(false)
        } else {
            state.open_connections += 1;
            *state.connections_per_ip.entry(ip).or_insert(0) += 1;
            Ok(())
        }
    };
    match verdict {
        Err(total) => {
            if total {
                metrics.rejected_total_limit.inc();
            } else {
                metrics.rejected_ip_limit.inc();
            }
            log::debug!("refusing {address}: connection limit");
            // Refused connections are not counted; the refusal is one small write, bounded
            // by a short timeout and by MAX_PENDING_REFUSALS.
            if let Ok(permit) = shared.refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    secure::refuse_busy(stream, VersionRange::default()).await;
                    drop(permit);
                });
            }
        }
        Ok(()) => {
            metrics.connections_accepted.inc();
            metrics.connections_open.inc();
            let slot = ConnectionSlot {
                shared: shared.clone(),
                ip,
            };
            tokio::spawn(serve_connection(
                shared.clone(),
                stream,
                slot,
                signal.clone(),
            ));
        }
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    slot: ConnectionSlot,
    shutdown: watch::Receiver<bool>,
) {
    let metrics = &shared.metrics;
    let accepted = secure::accept(
        stream,
        &shared.identity,
        &shared.secure,
        &mut OsRng,
        &AllowAll,
    )
    .await;
    let mut stream = match accepted {
        Ok(stream) => stream,
        Err(_) => {
            // Logged by offst_net with the reason.
            metrics.handshake_failures.inc();
            return;
        }
    };
    stream.limit_message_len(MAX_RELAY_MESSAGE_LEN);
    let first = tokio::time::timeout(
        shared.limits.first_message_timeout(),
        stream.recv_without_keepalive(),
    )
    .await;
    let init = match first {
        Ok(Ok(Some(bytes))) => InitConnection::decode(&bytes).map_err(|err| err.to_string()),
        Ok(Ok(None)) => Err("closed before its first message".to_owned()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no first message in time".to_owned()),
    };
    let init = match init {
        Ok(init) => init,
        Err(reason) => {
            log::info!("relay: node {}: {reason}", stream.peer());
            metrics.protocol_errors.inc();
            return;
        }
    };
    match init {
        InitConnection::Listen => serve_listener(&shared, stream, shutdown).await,
        InitConnection::Connect { target } => {
            serve_caller(&shared, stream, target, slot, shutdown).await;
        }
        InitConnection::Accept { caller } => serve_acceptor(&shared, stream, caller, slot).await,
    }
}

async fn serve_listener(
    shared: &Arc<Shared>,
    stream: SecureStream,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = stream.peer();
    let (mut receiver, sender) = stream.split();
    let id = {
        let mut state = shared.state();
        let id = state.next_id();
        // A node that reconnects replaces its older listening connection (which then idles
        // out): the newest connection is the one that works.
        state.listeners.insert(
            listener,
            Registered {
                id,
                sender: sender.clone(),
            },
        );
        id
    };
    // The queue is fresh, so this cannot be full; the node reports itself reachable on it.
    let _ = sender.try_send(RelayToListener::Listening.encode());
    drop(sender);
    shared.metrics.listeners_open.inc();
    log::debug!("relay: {listener} listening");
    loop {
        let message = tokio::select! {
            message = receiver.recv() => message,
            _ = shutdown.changed() => break,
        };
        let bytes = match message {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(_) => break,
        };
        match ListenerToRelay::decode(&bytes) {
            Ok(ListenerToRelay::RejectConnection { caller }) => {
                let entry = shared.state().take_half_open(&listener, &caller);
                if let Some(entry) = entry {
                    let _ = entry.pairing.send(Pairing::Rejected);
                }
            }
            Err(err) => {
                log::info!("relay: listener {listener} sent an invalid message: {err}");
                shared.metrics.protocol_errors.inc();
                break;
            }
        }
    }
    {
        let mut state = shared.state();
        if state
            .listeners
            .get(&listener)
            .is_some_and(|registered| registered.id == id)
        {
            state.listeners.remove(&listener);
        }
    }
    shared.metrics.listeners_open.dec();
}

async fn refuse(shared: &Shared, mut stream: SecureStream, reason: RefuseReason) {
    shared.metrics.refused(reason);
    log::debug!("relay: refusing {}: {reason}", stream.peer());
    if stream
        .send(&TunnelReply::Refused(reason).encode())
        .await
        .is_ok()
    {
        stream.close().await;
    }
}

async fn serve_caller(
    shared: &Arc<Shared>,
    stream: SecureStream,
    target: PublicKey,
    slot: ConnectionSlot,
    mut shutdown: watch::Receiver<bool>,
) {
    let caller = stream.peer();
    let (pairing, paired) = oneshot::channel();
    let registered = {
        let mut state = shared.state();
        let limit = shared.limits.max_half_open_per_key;
        match state.listeners.get(&target).map(|r| r.sender.clone()) {
            None => Err(RefuseReason::NotListening),
            Some(listener) => {
                let to_target = state.half_open.get(&target);
                let replaces = to_target.is_some_and(|callers| callers.contains_key(&caller));
                let target_full = to_target.is_some_and(|callers| callers.len() >= limit);
                let caller_full = state
                    .half_open_per_caller
                    .get(&caller)
                    .copied()
                    .unwrap_or(0)
                    >= limit;
                if !replaces && (target_full || caller_full) {
                    Err(RefuseReason::Busy)
                } else {
                    // A caller that retries replaces its older half-open tunnel; the older
                    // task sees its pairing dropped and refuses its caller.
                    if replaces {
                        state.take_half_open(&target, &caller);
                    }
                    let id = state.next_id();
                    state
                        .half_open
                        .entry(target)
                        .or_default()
                        .insert(caller, HalfOpen { id, pairing });
                    *state.half_open_per_caller.entry(caller).or_insert(0) += 1;
                    Ok((id, listener))
                }
            }
        }
    };
    let (id, listener) = match registered {
        Ok(registered) => registered,
        Err(reason) => return refuse(shared, stream, reason).await,
    };
    shared.metrics.tunnels_half_open.inc();
    let announce = RelayToListener::IncomingConnection { caller }.encode();
    let outcome = if listener.try_send(announce).is_err() {
        Err(RefuseReason::Busy)
    } else {
        tokio::select! {
            paired = tokio::time::timeout(shared.limits.half_open_timeout(), paired) => {
                match paired {
                    Ok(Ok(Pairing::Accepted(acceptor, slot))) => Ok((*acceptor, slot)),
                    Ok(Ok(Pairing::Rejected)) => Err(RefuseReason::Rejected),
                    Ok(Err(_)) | Err(_) => Err(RefuseReason::Expired),
                }
            }
            _ = shutdown.changed() => Err(RefuseReason::Busy),
        }
    };
    shared.state().remove_half_open(&target, &caller, id);
    shared.metrics.tunnels_half_open.dec();
    match outcome {
        Ok((acceptor, acceptor_slot)) => {
            run_tunnel(shared, stream, acceptor, (slot, acceptor_slot), shutdown).await;
        }
        Err(reason) => refuse(shared, stream, reason).await,
    }
}

async fn serve_acceptor(
    shared: &Arc<Shared>,
    stream: SecureStream,
    caller: PublicKey,
    slot: ConnectionSlot,
) {
    let target = stream.peer();
    let entry = shared.state().take_half_open(&target, &caller);
    match entry {
        None => refuse(shared, stream, RefuseReason::NoPendingTunnel).await,
        Some(entry) => {
            if let Err(Pairing::Accepted(stream, _slot)) = entry
                .pairing
                .send(Pairing::Accepted(Box::new(stream), slot))
            {
                refuse(shared, *stream, RefuseReason::Expired).await;
            }
        }
    }
}

/// Sends `Ready` on both legs (the last record of each), then hands the raw sockets to a
/// task of their own that splices them. The splice task is separate so that a long-lived
/// tunnel holds only the splice state, not the (much larger) state of the handshake and
/// protocol phase that came before it.
async fn run_tunnel(
    shared: &Arc<Shared>,
    mut caller: SecureStream,
    mut acceptor: SecureStream,
    slots: (ConnectionSlot, ConnectionSlot),
    shutdown: watch::Receiver<bool>,
) {
    let ready = TunnelReply::Ready.encode();
    let (caller_key, target_key) = (caller.peer(), acceptor.peer());
    if caller.send(&ready).await.is_err() || acceptor.send(&ready).await.is_err() {
        return;
    }
    let legs = (
        caller.into_framed().into_parts(),
        acceptor.into_framed().into_parts(),
    );
    let ((a, a_pending), (b, b_pending)) = match legs {
        (Ok(a), Ok(b)) => (a, b),
        _ => return,
    };
    let limits = SpliceLimits {
        idle_timeout: shared.limits.tunnel_idle_timeout(),
        bytes_per_second: shared.limits.bytes_per_second,
        burst_bytes: shared.limits.burst_bytes,
    };
    let metrics = shared.metrics.clone();
    metrics.tunnels_open.inc();
    metrics.tunnels_spliced.inc();
    log::debug!("relay: tunnel {caller_key} -> {target_key} spliced");
    tokio::spawn(splice_task(
        a, a_pending, b, b_pending, limits, metrics, slots, shutdown,
    ));
}

#[allow(clippy::too_many_arguments)]
async fn splice_task(
    a: TcpStream,
    a_pending: Vec<u8>,
    b: TcpStream,
    b_pending: Vec<u8>,
    limits: SpliceLimits,
    metrics: Arc<Metrics>,
    slots: (ConnectionSlot, ConnectionSlot),
    mut shutdown: watch::Receiver<bool>,
) {
    let end = tokio::select! {
        end = splice(a, a_pending, b, b_pending, limits, &metrics.tunnel_bytes) => Some(end),
        _ = shutdown.changed() => None,
    };
    match end {
        Some(SpliceEnd::Idle) => metrics.tunnels_idle_closed.inc(),
        Some(SpliceEnd::Failed(err)) => log::debug!("relay: tunnel ended: {err}"),
        Some(SpliceEnd::Closed) | None => {}
    }
    metrics.tunnels_open.dec();
    drop(slots);
}
