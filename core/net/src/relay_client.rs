//! The node side of relays (docs/PROTOCOL.md, "Relay"): being reachable through relays and
//! reaching friends through theirs.
//!
//! - [`RelayListener::start`] keeps one listening connection on each of the node's relays,
//!   reconnecting with exponential backoff and jitter, and reports liveness and incoming
//!   end-to-end connections as [`ListenEvent`]s. Callers the [`AccessControl`] does not allow
//!   (anyone who is not a friend) are rejected at the relay and again in the end-to-end
//!   handshake.
//! - [`connect_via_relay`], [`connect_via_any`] and [`connect_with_retry`] open a tunnel to a
//!   listening friend and run the end-to-end handshake inside it, expecting the friend's key.
//!
//! Either way the result is a [`SecureStream`] with the friend: the relay saw only the two
//! public keys and ciphertext.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use offst_crypto::Identity;
use offst_proto::relay::{
    InitConnection, ListenerToRelay, RefuseReason, RelayToListener, TunnelReply,
};
use offst_proto::{DecodeError, PublicKey, RelayAddress, WireMessage};
use rand_core::OsRng;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::backoff::{Backoff, BackoffPolicy};
use crate::framed::Framed;
use crate::secure::{self, SecureConfig, SecureStream};
use crate::{tcp, AccessControl, NetError};

/// Events a [`RelayListener`] may queue before its tasks wait for the node to take them.
pub const LISTEN_EVENT_QUEUE_LEN: usize = 64;

/// Tunnels a listener sets up at once through one relay; further callers are rejected until
/// one finishes, so a flood of announced callers cannot make the node open unbounded sockets.
pub const MAX_CONCURRENT_ACCEPTS_PER_RELAY: usize = 16;

/// Longest time to wait for the relay's answer to `Connect` by default: the relay's half-open
/// tunnel expiry (docs/PROTOCOL.md) plus a margin.
pub const DEFAULT_TUNNEL_TIMEOUT: Duration = Duration::from_secs(12);

/// How the node reaches relays.
#[derive(Debug, Clone)]
pub struct RelayClientConfig {
    /// Timing of both the node↔relay channels and the end-to-end channels in tunnels.
    pub secure: SecureConfig,
    /// Reconnection delays of listening connections and [`connect_with_retry`].
    pub backoff: BackoffPolicy,
    /// Longest TCP connect.
    pub dial_timeout: Duration,
    /// Longest wait for the relay's [`TunnelReply`].
    pub tunnel_timeout: Duration,
    /// Local IP to connect from (None: the system's choice).
    pub local_address: Option<IpAddr>,
}

impl Default for RelayClientConfig {
    fn default() -> Self {
        let secure = SecureConfig::default();
        RelayClientConfig {
            dial_timeout: secure.handshake_timeout,
            secure,
            backoff: BackoffPolicy::default(),
            tunnel_timeout: DEFAULT_TUNNEL_TIMEOUT,
            local_address: None,
        }
    }
}

/// Why a relay operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Connecting, the handshake or the channel failed (with the relay or end to end).
    #[error(transparent)]
    Net(#[from] NetError),
    /// The relay answered but did not open the tunnel.
    #[error("relay {relay} refused the tunnel: {reason}")]
    Refused {
        /// The relay's key.
        relay: PublicKey,
        /// Why.
        reason: RefuseReason,
    },
    /// The relay sent something that is not a valid relay message.
    #[error("relay sent an invalid message: {0}")]
    Protocol(#[from] DecodeError),
    /// The relay closed the connection.
    #[error("relay closed the connection")]
    RelayClosed,
    /// The relay did not answer in time.
    #[error("relay did not answer within {0:?}")]
    Timeout(Duration),
    /// There was no relay to try.
    #[error("the friend lists no relays")]
    NoRelays,
}

/// What a [`RelayListener`] reports.
#[derive(Debug)]
pub enum ListenEvent {
    /// The relay confirmed our listening connection: friends can reach us through it.
    RelayUp {
        /// The relay.
        relay: RelayAddress,
    },
    /// The listening connection to this relay is down; the next attempt is in `retry_in`.
    RelayDown {
        /// The relay.
        relay: RelayAddress,
        /// What went wrong, for logs and status displays.
        error: String,
        /// When the listener tries again.
        retry_in: Duration,
    },
    /// A friend reached us: an end-to-end secure stream, authenticated as `stream.peer()`.
    Connected {
        /// The relay the tunnel goes through.
        relay: RelayAddress,
        /// The end-to-end channel (boxed: it is far larger than the other events).
        stream: Box<SecureStream>,
    },
    /// A caller our access control does not allow was rejected.
    CallerRejected {
        /// The relay that announced it.
        relay: RelayAddress,
        /// The rejected key.
        caller: PublicKey,
    },
}

struct ListenContext {
    identity: Identity,
    access: Arc<dyn AccessControl>,
    config: RelayClientConfig,
    events: mpsc::Sender<ListenEvent>,
}

/// Keeps the node listening on its relays. Dropping it (or [`RelayListener::stop`]) stops
/// every listening connection; streams already handed out stay open.
#[derive(Debug)]
pub struct RelayListener {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RelayListener {
    /// Starts listening on every relay in `relays` as `identity`, letting through callers
    /// that `access` allows. Returns the listener and its event queue.
    pub fn start(
        identity: Identity,
        relays: Vec<RelayAddress>,
        access: Arc<dyn AccessControl>,
        config: RelayClientConfig,
    ) -> (RelayListener, mpsc::Receiver<ListenEvent>) {
        let (events, receiver) = mpsc::channel(LISTEN_EVENT_QUEUE_LEN);
        let (shutdown, _) = watch::channel(false);
        let context = Arc::new(ListenContext {
            identity,
            access,
            config,
            events,
        });
        let tasks = relays
            .into_iter()
            .map(|relay| tokio::spawn(listen_on(relay, context.clone(), shutdown.subscribe())))
            .collect();
        (RelayListener { shutdown, tasks }, receiver)
    }

    /// Stops listening and waits for the listening tasks to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for RelayListener {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn listen_on(
    relay: RelayAddress,
    context: Arc<ListenContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(context.config.backoff);
    loop {
        let error = tokio::select! {
            error = listen_session(&relay, &context, &mut backoff) => error,
            _ = shutdown.changed() => return,
        };
        let retry_in = backoff.next_delay(&mut OsRng);
        log::info!(
            "listening on relay {} at {}: {error}; retrying in {retry_in:?}",
            relay.public_key,
            relay.address
        );
        let down = ListenEvent::RelayDown {
            relay: relay.clone(),
            error: error.to_string(),
            retry_in,
        };
        if context.events.send(down).await.is_err() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(retry_in) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One listening connection, from dialling to its end. Returns why it ended.
async fn listen_session(
    relay: &RelayAddress,
    context: &Arc<ListenContext>,
    backoff: &mut Backoff,
) -> RelayError {
    let stream = match open(
        &context.identity,
        relay,
        &context.config,
        InitConnection::Listen,
    )
    .await
    {
        Ok(stream) => stream,
        Err(err) => return err,
    };
    let (mut receiver, sender) = stream.split();
    let accepts = Arc::new(Semaphore::new(MAX_CONCURRENT_ACCEPTS_PER_RELAY));
    let registration = context.config.tunnel_timeout;
    let mut up = false;
    loop {
        let message = if up {
            receiver.recv().await
        } else {
            // Until the relay confirms the registration, wait no longer than for a tunnel.
            match tokio::time::timeout(registration, receiver.recv()).await {
                Ok(message) => message,
                Err(_) => return RelayError::Timeout(registration),
            }
        };
        let message = match message {
            Ok(Some(message)) => message,
            Ok(None) => return RelayError::RelayClosed,
            Err(err) => return err.into(),
        };
        let caller = match RelayToListener::decode(&message) {
            Ok(RelayToListener::Listening) => {
                if !up {
                    up = true;
                    backoff.reset();
                    let _ = context
                        .events
                        .send(ListenEvent::RelayUp {
                            relay: relay.clone(),
                        })
                        .await;
                }
                continue;
            }
            Ok(RelayToListener::IncomingConnection { caller }) => caller,
            Err(err) => return err.into(),
        };
        let permit = if context.access.allows(&caller) {
            accepts.clone().try_acquire_owned().ok()
        } else {
            None
        };
        match permit {
            Some(permit) => {
                let (relay, context) = (relay.clone(), context.clone());
                tokio::spawn(async move {
                    match accept_tunnel(&relay, caller, &context).await {
                        Ok(stream) => {
                            let _ = context
                                .events
                                .send(ListenEvent::Connected {
                                    relay,
                                    stream: Box::new(stream),
                                })
                                .await;
                        }
                        Err(err) => log::info!("tunnel from {caller} via {}: {err}", relay.address),
                    }
                    drop(permit);
                });
            }
            None => {
                let reject = ListenerToRelay::RejectConnection { caller }.encode();
                match sender.try_send(reject) {
                    // A full queue drops the rejection: the half-open tunnel expires instead.
                    Ok(()) | Err(NetError::SendQueueFull) => {}
                    Err(err) => return err.into(),
                }
                let _ = context.events.try_send(ListenEvent::CallerRejected {
                    relay: relay.clone(),
                    caller,
                });
            }
        }
    }
}

/// Opens the tunnel `caller` asked for and runs the end-to-end handshake as responder,
/// accepting only `caller` (and only while the access control still allows it).
async fn accept_tunnel(
    relay: &RelayAddress,
    caller: PublicKey,
    context: &ListenContext,
) -> Result<SecureStream, RelayError> {
    let stream = open(
        &context.identity,
        relay,
        &context.config,
        InitConnection::Accept { caller },
    )
    .await?;
    let tunnel = await_ready(relay, stream, context.config.tunnel_timeout).await?;
    let only_the_caller = |peer: &PublicKey| *peer == caller && context.access.allows(peer);
    Ok(secure::accept(
        tunnel,
        &context.identity,
        &context.config.secure,
        &mut OsRng,
        &only_the_caller,
    )
    .await?)
}

/// Dials a relay, authenticates it and sends the connection's first message.
async fn open(
    identity: &Identity,
    relay: &RelayAddress,
    config: &RelayClientConfig,
    init: InitConnection,
) -> Result<SecureStream, RelayError> {
    let tcp = tcp::dial_from(
        relay.address.as_str(),
        config.local_address,
        config.dial_timeout,
    )
    .await?;
    let mut stream = secure::connect(
        tcp,
        identity,
        Some(relay.public_key),
        &config.secure,
        &mut OsRng,
    )
    .await?;
    stream.send(&init.encode()).await?;
    Ok(stream)
}

/// Waits for the relay's [`TunnelReply`]; on `Ready` returns the connection past the
/// switch-over point, carrying the peer's bytes.
async fn await_ready(
    relay: &RelayAddress,
    mut stream: SecureStream,
    wait: Duration,
) -> Result<Framed, RelayError> {
    let reply = tokio::time::timeout(wait, stream.recv_without_keepalive())
        .await
        .map_err(|_| RelayError::Timeout(wait))??
        .ok_or(RelayError::RelayClosed)?;
    match TunnelReply::decode(&reply)? {
        TunnelReply::Ready => Ok(stream.into_framed()),
        TunnelReply::Refused(reason) => Err(RelayError::Refused {
            relay: relay.public_key,
            reason,
        }),
    }
}

/// Opens a tunnel through `relay` to the listening node `target` and runs the end-to-end
/// handshake in it, expecting `target`'s key.
pub async fn connect_via_relay(
    identity: &Identity,
    relay: &RelayAddress,
    target: PublicKey,
    config: &RelayClientConfig,
) -> Result<SecureStream, RelayError> {
    let stream = open(identity, relay, config, InitConnection::Connect { target }).await?;
    let tunnel = await_ready(relay, stream, config.tunnel_timeout).await?;
    Ok(secure::connect(tunnel, identity, Some(target), &config.secure, &mut OsRng).await?)
}

/// Tries `relays` (a friend's list) in order until one gives a tunnel to `target`. Returns
/// the stream and the relay used, or the last error.
pub async fn connect_via_any(
    identity: &Identity,
    relays: &[RelayAddress],
    target: PublicKey,
    config: &RelayClientConfig,
) -> Result<(SecureStream, RelayAddress), RelayError> {
    let mut last_error = RelayError::NoRelays;
    for relay in relays {
        match connect_via_relay(identity, relay, target, config).await {
            Ok(stream) => return Ok((stream, relay.clone())),
            Err(err) => {
                log::info!("reaching {target} via {}: {err}", relay.address);
                last_error = err;
            }
        }
    }
    Err(last_error)
}

/// [`connect_via_any`] up to `attempts` times, waiting the configured backoff (with jitter)
/// between rounds.
pub async fn connect_with_retry(
    identity: &Identity,
    relays: &[RelayAddress],
    target: PublicKey,
    config: &RelayClientConfig,
    attempts: u32,
) -> Result<(SecureStream, RelayAddress), RelayError> {
    let mut backoff = Backoff::new(config.backoff);
    let mut last_error = RelayError::NoRelays;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff.next_delay(&mut OsRng)).await;
        }
        match connect_via_any(identity, relays, target, config).await {
            Ok(connected) => return Ok(connected),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}
