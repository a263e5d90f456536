//! The relay over real loopback TCP: tunnels with end-to-end encryption, the listener's
//! access control, refusals, limits, hostile clients, expiry and reconnection after a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use offst_crypto::Identity;
use offst_net::relay_client::{self, ListenEvent, RelayClientConfig, RelayError};
use offst_net::{secure, tcp, AllowList, BackoffPolicy, RelayListener, SecureConfig};
use offst_proto::relay::{InitConnection, RefuseReason, TunnelReply};
use offst_proto::{NetAddress, PublicKey, RelayAddress, WireMessage};
use offst_relay::{Limits, RelayConfig, RelayHandle, RelayServer};
use rand_core::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

fn identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

fn relay_identity() -> Identity {
    identity(200)
}

/// Short limits so the suite is fast, with margins so a loaded CI machine does not make the
/// honest flows (which need a few handshakes within the half-open timeout) flaky.
fn test_limits() -> Limits {
    Limits {
        half_open_timeout_ms: 3000,
        handshake_timeout_ms: 2000,
        first_message_timeout_ms: 1000,
        idle_timeout_secs: 5,
        tunnel_idle_timeout_secs: 5,
        ..Limits::default()
    }
}

async fn start_relay_at(listen: SocketAddr, limits: Limits) -> (RelayHandle, RelayAddress) {
    let _ = env_logger::builder().is_test(true).try_init();
    let config = RelayConfig {
        listen,
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        limits,
        ..RelayConfig::default()
    };
    let server = RelayServer::bind(&config, relay_identity()).await.unwrap();
    let address = RelayAddress {
        public_key: relay_identity().public_key(),
        address: NetAddress::new(&server.local_addr().unwrap().to_string()).unwrap(),
    };
    (server.spawn(), address)
}

async fn start_relay(limits: Limits) -> (RelayHandle, RelayAddress) {
    start_relay_at("127.0.0.1:0".parse().unwrap(), limits).await
}

fn client_config() -> RelayClientConfig {
    RelayClientConfig {
        secure: SecureConfig {
            handshake_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(1),
            ..SecureConfig::default()
        },
        backoff: BackoffPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        },
        dial_timeout: Duration::from_secs(1),
        tunnel_timeout: Duration::from_secs(4),
        local_address: None,
    }
}

async fn next_event(events: &mut mpsc::Receiver<ListenEvent>) -> ListenEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("listener alive")
}

/// Starts `listener` listening on `relays`, allowing `friends`, and waits until every relay is up.
async fn listen(
    listener: &Identity,
    relays: &[RelayAddress],
    friends: &[PublicKey],
) -> (RelayListener, mpsc::Receiver<ListenEvent>) {
    let (handle, mut events) = RelayListener::start(
        listener.clone(),
        relays.to_vec(),
        Arc::new(AllowList::new(friends.iter().copied())),
        client_config(),
    );
    for _ in relays {
        assert!(matches!(
            next_event(&mut events).await,
            ListenEvent::RelayUp { .. }
        ));
    }
    (handle, events)
}

async fn connected(events: &mut mpsc::Receiver<ListenEvent>) -> offst_net::SecureStream {
    loop {
        if let ListenEvent::Connected { stream, .. } = next_event(events).await {
            return *stream;
        }
    }
}

/// A raw relay session: handshake with the relay and a first message of our choosing.
async fn raw_session(
    relay: &RelayAddress,
    who: &Identity,
    init: InitConnection,
) -> offst_net::SecureStream {
    let stream = tcp::dial(relay.address.as_str(), WAIT).await.unwrap();
    let mut stream = secure::connect(
        stream,
        who,
        Some(relay.public_key),
        &client_config().secure,
        &mut OsRng,
    )
    .await
    .unwrap();
    stream.send(&init.encode()).await.unwrap();
    stream
}

async fn tunnel_reply(stream: &mut offst_net::SecureStream) -> TunnelReply {
    let bytes = stream.recv_without_keepalive().await.unwrap().unwrap();
    TunnelReply::decode(&bytes).unwrap()
}

async fn assert_messages_flow(a: &mut offst_net::SecureStream, b: &mut offst_net::SecureStream) {
    a.send(b"hello through the relay").await.unwrap();
    assert_eq!(b.recv().await.unwrap().unwrap(), b"hello through the relay");
    b.send(b"and back").await.unwrap();
    assert_eq!(a.recv().await.unwrap().unwrap(), b"and back");
}

#[tokio::test]
async fn two_nodes_reach_each_other_through_the_relay_end_to_end_encrypted() {
    let (relay, address) = start_relay(test_limits()).await;
    let (alice, bob) = (identity(1), identity(2));
    let (_listener, mut events) =
        listen(&bob, std::slice::from_ref(&address), &[alice.public_key()]).await;
    let mut at_alice =
        relay_client::connect_via_relay(&alice, &address, bob.public_key(), &client_config())
            .await
            .unwrap();
    let mut at_bob = connected(&mut events).await;
    // Each side authenticated the other end to end, not the relay.
    assert_eq!(at_alice.peer(), bob.public_key());
    assert_eq!(at_bob.peer(), alice.public_key());
    assert_messages_flow(&mut at_alice, &mut at_bob).await;
    let metrics = relay.metrics();
    assert_eq!(metrics.tunnels_open.get(), 1);
    assert!(metrics.tunnel_bytes.get() > 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_caller_the_listener_does_not_allow_is_refused() {
    let (relay, address) = start_relay(test_limits()).await;
    let (alice, bob, mallory) = (identity(1), identity(2), identity(3));
    let (_listener, mut events) =
        listen(&bob, std::slice::from_ref(&address), &[alice.public_key()]).await;
    let result =
        relay_client::connect_via_relay(&mallory, &address, bob.public_key(), &client_config())
            .await;
    assert!(matches!(
        result,
        Err(RelayError::Refused {
            reason: RefuseReason::Rejected,
            ..
        })
    ));
    assert!(matches!(
        next_event(&mut events).await,
        ListenEvent::CallerRejected { caller, .. } if caller == mallory.public_key()
    ));
    assert_eq!(relay.metrics().tunnels_open.get(), 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn connect_to_a_key_that_is_not_listening_is_refused() {
    let (relay, address) = start_relay(test_limits()).await;
    let result = relay_client::connect_via_relay(
        &identity(1),
        &address,
        identity(9).public_key(),
        &client_config(),
    )
    .await;
    assert!(matches!(
        result,
        Err(RelayError::Refused {
            reason: RefuseReason::NotListening,
            ..
        })
    ));
    relay.shutdown().await;
}

#[tokio::test]
async fn accept_without_a_pending_tunnel_is_refused() {
    let (relay, address) = start_relay(test_limits()).await;
    let mut stream = raw_session(
        &address,
        &identity(2),
        InitConnection::Accept {
            caller: identity(1).public_key(),
        },
    )
    .await;
    assert_eq!(
        tunnel_reply(&mut stream).await,
        TunnelReply::Refused(RefuseReason::NoPendingTunnel)
    );
    assert_eq!(relay.metrics().refused_no_pending.get(), 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn node_silent_after_the_handshake_is_closed_after_the_first_message_timeout() {
    let limits = test_limits();
    let (relay, address) = start_relay(limits).await;
    let stream = tcp::dial(address.address.as_str(), WAIT).await.unwrap();
    // Our own idle timeout is far longer than the relay's first-message timeout.
    let patient = SecureConfig {
        idle_timeout: WAIT,
        ..client_config().secure
    };
    let mut silent = secure::connect(
        stream,
        &identity(1),
        Some(address.public_key),
        &patient,
        &mut OsRng,
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let closed = tokio::time::timeout(WAIT, silent.recv_without_keepalive()).await;
    assert!(
        matches!(closed, Ok(Ok(None)) | Ok(Err(offst_net::NetError::Io(_)))),
        "{closed:?}"
    );
    assert!(started.elapsed() >= limits.first_message_timeout());
    assert_eq!(relay.metrics().protocol_errors.get(), 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn half_open_tunnel_expires_when_the_listener_never_accepts() {
    let limits = Limits {
        half_open_timeout_ms: 300,
        ..test_limits()
    };
    let (relay, address) = start_relay(limits).await;
    let (alice, bob) = (identity(1), identity(2));
    // Bob listens but ignores every announcement.
    let _silent_listener = raw_session(&address, &bob, InitConnection::Listen).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let result =
        relay_client::connect_via_relay(&alice, &address, bob.public_key(), &client_config()).await;
    assert!(matches!(
        result,
        Err(RelayError::Refused {
            reason: RefuseReason::Expired,
            ..
        })
    ));
    assert!(started.elapsed() >= limits.half_open_timeout());
    let metrics = relay.metrics();
    assert_eq!(metrics.tunnels_half_open.get(), 0);
    assert_eq!(metrics.refused_expired.get(), 1);
    // A late accept finds nothing to take.
    let mut late = raw_session(
        &address,
        &bob,
        InitConnection::Accept {
            caller: alice.public_key(),
        },
    )
    .await;
    assert_eq!(
        tunnel_reply(&mut late).await,
        TunnelReply::Refused(RefuseReason::NoPendingTunnel)
    );
    relay.shutdown().await;
}

async fn connect_from(ip: [u8; 4], relay: &RelayAddress) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((ip, 0)))?;
    socket
        .connect(relay.address.as_str().parse().unwrap())
        .await
}

#[tokio::test]
async fn hostile_clients_are_closed_and_honest_tunnels_are_unaffected() {
    let limits = Limits {
        max_connections_per_ip: 8,
        ..test_limits()
    };
    let (relay, address) = start_relay(limits).await;
    let (alice, bob) = (identity(1), identity(2));
    let (_listener, mut events) =
        listen(&bob, std::slice::from_ref(&address), &[alice.public_key()]).await;
    let at_alice =
        relay_client::connect_via_relay(&alice, &address, bob.public_key(), &client_config())
            .await
            .unwrap();
    let at_bob = connected(&mut events).await;
    // Split, so both ends keep the idle tunnel alive with keepalives meanwhile.
    let (mut alice_rx, alice_tx) = at_alice.split();
    let (mut bob_rx, bob_tx) = at_bob.split();

    // Garbage, an oversized frame header, a truncated frame, and a slow-loris that sends
    // half a header and waits: all from 127.0.0.3.
    let mut garbage = connect_from([127, 0, 0, 3], &address).await.unwrap();
    garbage
        .write_all(&[
            0, 0, 0, 16, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ])
        .await
        .unwrap();
    let mut oversized = connect_from([127, 0, 0, 3], &address).await.unwrap();
    oversized.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut truncated = connect_from([127, 0, 0, 3], &address).await.unwrap();
    truncated.write_all(&[0, 0, 1, 0, 9, 9]).await.unwrap();
    truncated.shutdown().await.unwrap();
    let mut slow_loris = connect_from([127, 0, 0, 3], &address).await.unwrap();
    slow_loris.write_all(&[0, 0]).await.unwrap();
    for stream in [
        &mut garbage,
        &mut oversized,
        &mut truncated,
        &mut slow_loris,
    ] {
        let mut buffer = [0u8; 64];
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the relay closes a hostile connection");
    }

    // A connection flood from 127.0.0.2: beyond the per-IP limit the relay refuses at once.
    let mut flood = Vec::new();
    for _ in 0..20 {
        if let Ok(stream) = connect_from([127, 0, 0, 2], &address).await {
            flood.push(stream);
        }
    }
    let mut refused = 0;
    for stream in &mut flood {
        let mut buffer = [0u8; 64];
        if let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await
        {
            if read > 0 {
                refused += 1; // the busy refusal frame
            }
        }
    }
    assert!(
        refused >= 12,
        "only {refused} of 20 flood connections were refused"
    );

    let metrics = relay.metrics();
    assert!(metrics.handshake_failures.get() >= 4);
    assert!(metrics.rejected_ip_limit.get() >= 12);

    // The honest tunnel still works, and a new one can be opened.
    alice_tx.send(b"still here".to_vec()).await.unwrap();
    assert_eq!(bob_rx.recv().await.unwrap().unwrap(), b"still here");
    bob_tx.send(b"me too".to_vec()).await.unwrap();
    assert_eq!(alice_rx.recv().await.unwrap().unwrap(), b"me too");
    let carol = identity(4);
    let (_carol_listener, mut carol_events) = listen(
        &carol,
        std::slice::from_ref(&address),
        &[alice.public_key()],
    )
    .await;
    let mut alice_to_carol =
        relay_client::connect_via_relay(&alice, &address, carol.public_key(), &client_config())
            .await
            .unwrap();
    let mut at_carol = connected(&mut carol_events).await;
    assert_messages_flow(&mut alice_to_carol, &mut at_carol).await;
    drop(flood);
    relay.shutdown().await;
}

#[tokio::test]
async fn tunnel_carries_bulk_data_intact_under_the_byte_rate_limit() {
    let limits = Limits {
        bytes_per_second: 2 * 1024 * 1024,
        burst_bytes: 256 * 1024,
        ..test_limits()
    };
    let (relay, address) = start_relay(limits).await;
    let (alice, bob) = (identity(1), identity(2));
    let (_listener, mut events) =
        listen(&bob, std::slice::from_ref(&address), &[alice.public_key()]).await;
    let at_alice =
        relay_client::connect_via_relay(&alice, &address, bob.public_key(), &client_config())
            .await
            .unwrap();
    let at_bob = connected(&mut events).await;
    let (_alice_rx, alice_tx) = at_alice.split();
    let (mut bob_rx, _bob_tx) = at_bob.split();
    let started = std::time::Instant::now();
    let sender = tokio::spawn(async move {
        for chunk in 0..16u8 {
            alice_tx.send(vec![chunk; 64 * 1024]).await.unwrap();
        }
        alice_tx
    });
    for chunk in 0..16u8 {
        let message = bob_rx.recv().await.unwrap().unwrap();
        assert_eq!(message, vec![chunk; 64 * 1024]);
    }
    let _alice_tx = sender.await.unwrap();
    // 1 MiB at 2 MiB/s with a 256 KiB burst cannot take less than about 0.37 s.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn a_restarted_relay_is_rejoined_automatically() {
    let (relay, address) = start_relay(test_limits()).await;
    let listen_at: SocketAddr = address.address.as_str().parse().unwrap();
    let (alice, bob) = (identity(1), identity(2));
    let (_listener, mut events) =
        listen(&bob, std::slice::from_ref(&address), &[alice.public_key()]).await;
    relay.shutdown().await;
    assert!(matches!(
        next_event(&mut events).await,
        ListenEvent::RelayDown { .. }
    ));
    let (relay, _) = start_relay_at(listen_at, test_limits()).await;
    loop {
        match next_event(&mut events).await {
            ListenEvent::RelayUp { .. } => break,
            ListenEvent::RelayDown { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut at_alice =
        relay_client::connect_via_relay(&alice, &address, bob.public_key(), &client_config())
            .await
            .unwrap();
    let mut at_bob = connected(&mut events).await;
    assert_messages_flow(&mut at_alice, &mut at_bob).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_node_listens_on_several_relays_and_friends_reach_it_through_any() {
    let (relay_one, one) = start_relay(test_limits()).await;
    let (relay_two, two) = start_relay(test_limits()).await;
    let (alice, bob) = (identity(1), identity(2));
    let (_listener, mut events) =
        listen(&bob, &[one.clone(), two.clone()], &[alice.public_key()]).await;
    // The first relay in Alice's list is gone; she gets through the second.
    relay_one.shutdown().await;
    let (mut at_alice, used) = relay_client::connect_with_retry(
        &alice,
        &[one.clone(), two.clone()],
        bob.public_key(),
        &client_config(),
        3,
    )
    .await
    .unwrap();
    assert_eq!(used, two);
    let mut at_bob = connected(&mut events).await;
    assert_messages_flow(&mut at_alice, &mut at_bob).await;
    relay_two.shutdown().await;
}

#[tokio::test]
async fn metrics_endpoint_serves_prometheus_text() {
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        limits: test_limits(),
        ..RelayConfig::default()
    };
    let server = RelayServer::bind(&config, relay_identity()).await.unwrap();
    let metrics_at = server.metrics_addr().unwrap();
    let relay = server.spawn();
    let mut http = TcpStream::connect(metrics_at).await.unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"));
    assert!(response.contains("# TYPE strelay_tunnels_open gauge"));
    assert!(response.contains("strelay_connections_rejected_total{reason=\"ip_limit\"} 0"));
    relay.shutdown().await;
}

#[tokio::test]
async fn silent_tunnel_is_closed_after_the_tunnel_idle_timeout() {
    let limits = Limits {
        tunnel_idle_timeout_secs: 1,
        ..test_limits()
    };
    let (relay, address) = start_relay(limits).await;
    let (alice, bob) = (identity(1), identity(2));
    let (_listener, mut events) =
        listen(&bob, std::slice::from_ref(&address), &[alice.public_key()]).await;
    // Neither end receives (so neither sends keepalives): the tunnel carries nothing.
    let at_alice =
        relay_client::connect_via_relay(&alice, &address, bob.public_key(), &client_config())
            .await
            .unwrap();
    let _at_bob = connected(&mut events).await;
    let metrics = relay.metrics().clone();
    assert_eq!(metrics.tunnels_open.get(), 1);
    let deadline = std::time::Instant::now() + WAIT;
    while metrics.tunnels_idle_closed.get() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metrics.tunnels_idle_closed.get(), 1);
    assert_eq!(metrics.tunnels_open.get(), 0);
    let mut raw = at_alice.into_framed();
    assert!(matches!(raw.reader.read_frame().await, Ok(None) | Err(_)));
    relay.shutdown().await;
}

#[tokio::test]
async fn half_open_tunnels_per_key_are_limited() {
    let limits = Limits {
        max_half_open_per_key: 1,
        ..test_limits()
    };
    let (relay, address) = start_relay(limits).await;
    let bob = identity(2);
    let _silent_listener = raw_session(&address, &bob, InitConnection::Listen).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _first = raw_session(
        &address,
        &identity(1),
        InitConnection::Connect {
            target: bob.public_key(),
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = raw_session(
        &address,
        &identity(3),
        InitConnection::Connect {
            target: bob.public_key(),
        },
    )
    .await;
    assert_eq!(
        tunnel_reply(&mut second).await,
        TunnelReply::Refused(RefuseReason::Busy)
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn connection_over_the_total_limit_is_told_the_relay_is_busy() {
    let limits = Limits {
        max_connections: 1,
        ..test_limits()
    };
    let (relay, address) = start_relay(limits).await;
    let _only = raw_session(&address, &identity(2), InitConnection::Listen).await;
    let stream = tcp::dial(address.address.as_str(), WAIT).await.unwrap();
    let refused = secure::connect(
        stream,
        &identity(1),
        Some(address.public_key),
        &client_config().secure,
        &mut OsRng,
    )
    .await;
    assert!(matches!(
        refused,
        Err(offst_net::NetError::Handshake(
            offst_crypto::handshake::HandshakeError::Busy
        ))
    ));
    assert_eq!(relay.metrics().rejected_total_limit.get(), 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn oversized_message_from_an_authenticated_node_is_refused() {
    let (relay, address) = start_relay(test_limits()).await;
    let stream = tcp::dial(address.address.as_str(), WAIT).await.unwrap();
    let mut node = secure::connect(
        stream,
        &identity(1),
        Some(address.public_key),
        &client_config().secure,
        &mut OsRng,
    )
    .await
    .unwrap();
    node.send(&vec![0; 64 * 1024]).await.unwrap();
    let closed = tokio::time::timeout(WAIT, node.recv_without_keepalive()).await;
    assert!(matches!(closed, Ok(Ok(None)) | Ok(Err(_))), "{closed:?}");
    assert_eq!(relay.metrics().protocol_errors.get(), 1);
    relay.shutdown().await;
}
