//! Links to friends: reader tasks that feed friend messages to the driver, dialers that keep
//! a link to each friend we dial, and the relay listener's forwarder.

use std::sync::Arc;

use offst_crypto::Identity;
use offst_net::backoff::{Backoff, BackoffPolicy};
use offst_net::relay_client::{self, ListenEvent, RelayClientConfig};
use offst_net::secure::{SecureReceiver, SecureStream};
use offst_proto::{PublicKey, RelayAddress};
use rand_core::OsRng;
use tokio::sync::{mpsc, Notify};

/// What the link tasks tell the driver.
pub(crate) enum LinkEvent {
    /// An authenticated end-to-end stream with `stream.peer()`.
    Connected(Box<SecureStream>),
    /// A message from a friend on link `generation`.
    Message {
        peer: PublicKey,
        generation: u64,
        bytes: Vec<u8>,
    },
    /// Link `generation` with `peer` closed.
    Closed { peer: PublicKey, generation: u64 },
}

/// Link events the tasks may queue before waiting for the driver.
pub(crate) const LINK_EVENT_QUEUE_LEN: usize = 1024;

/// Backoff of a dialer: quick first retries (a friend's node that is starting up is usually
/// reachable within a second), capped at a minute.
pub(crate) const DIAL_BACKOFF: BackoffPolicy = BackoffPolicy {
    initial: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_secs(60),
};

/// Reads messages from a friend until the link closes.
pub(crate) async fn read_link(
    mut receiver: SecureReceiver,
    peer: PublicKey,
    generation: u64,
    events: mpsc::Sender<LinkEvent>,
) {
    loop {
        match receiver.recv().await {
            Ok(Some(bytes)) => {
                let event = LinkEvent::Message {
                    peer,
                    generation,
                    bytes,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(err) => {
                log::info!("link with {peer} closed: {err}");
                break;
            }
        }
    }
    let _ = events.send(LinkEvent::Closed { peer, generation }).await;
}

/// Keeps a link to `friend` through its relays: dials, hands the stream to the driver, waits
/// until the driver says the link closed, and dials again with backoff.
pub(crate) async fn dial(
    identity: Identity,
    friend: PublicKey,
    relays: Vec<RelayAddress>,
    config: RelayClientConfig,
    closed: Arc<Notify>,
    events: mpsc::Sender<LinkEvent>,
) {
    let mut backoff = Backoff::new(DIAL_BACKOFF);
    loop {
        match relay_client::connect_via_any(&identity, &relays, friend, &config).await {
            Ok((stream, relay)) => {
                log::info!("linked to {friend} via {}", relay.address);
                backoff.reset();
                let notified = closed.notified();
                if events
                    .send(LinkEvent::Connected(Box::new(stream)))
                    .await
                    .is_err()
                {
                    return;
                }
                notified.await;
            }
            Err(err) => {
                let delay = backoff.next_delay(&mut OsRng);
                log::debug!("dialing {friend} failed ({err}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Forwards the relay listener's incoming streams to the driver.
pub(crate) async fn forward_listener(
    mut listen_events: mpsc::Receiver<ListenEvent>,
    events: mpsc::Sender<LinkEvent>,
) {
    while let Some(event) = listen_events.recv().await {
        match event {
            ListenEvent::Connected { stream, relay } => {
                log::info!("{} linked to us via {}", stream.peer(), relay.address);
                if events.send(LinkEvent::Connected(stream)).await.is_err() {
                    return;
                }
            }
            ListenEvent::RelayUp { relay } => log::info!("listening on relay {}", relay.address),
            ListenEvent::RelayDown {
                relay,
                error,
                retry_in,
            } => log::info!(
                "relay {} down ({error}); retry in {retry_in:?}",
                relay.address
            ),
            ListenEvent::CallerRejected { relay, caller } => {
                log::info!("rejected {caller} (not a friend) via {}", relay.address);
            }
        }
    }
}
