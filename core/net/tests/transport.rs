//! The secure transport over real loopback TCP: handshakes, refusals, hostile input,
//! keepalive and idle timeout.

use std::time::Duration;

use offst_crypto::handshake::{HandshakeError, VersionRange};
use offst_crypto::Identity;
use offst_net::{secure, tcp, AllowAll, NetError, SecureConfig, SecureStream};
use rand_core::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn identity(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

/// Short timeouts so the suite is fast, with margins (keepalive a fifth of the idle timeout,
/// seconds for handshakes) so a loaded CI machine does not make them flaky.
fn fast_config() -> SecureConfig {
    SecureConfig {
        handshake_timeout: Duration::from_secs(2),
        keepalive_interval: Duration::from_millis(80),
        idle_timeout: Duration::from_millis(400),
        write_timeout: Duration::from_secs(2),
        ..SecureConfig::default()
    }
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

/// A connected pair: (client stream, server stream), client = identity 1, server = identity 2.
async fn pair(config: SecureConfig) -> (SecureStream, SecureStream) {
    let _ = env_logger::builder().is_test(true).try_init();
    let (listener, address) = listener().await;
    let server = tokio::spawn(async move {
        let (stream, _) = tcp::accept(&listener).await.unwrap();
        secure::accept(stream, &identity(2), &config, &mut OsRng, &AllowAll).await
    });
    let stream = tcp::dial(&address, Duration::from_secs(1)).await.unwrap();
    let client = secure::connect(
        stream,
        &identity(1),
        Some(identity(2).public_key()),
        &config,
        &mut OsRng,
    )
    .await
    .unwrap();
    (client, server.await.unwrap().unwrap())
}

/// Runs the server side of one handshake against a raw client socket and returns its result.
async fn server_result_for(
    config: SecureConfig,
    client: impl FnOnce(TcpStream) -> tokio::task::JoinHandle<()>,
) -> Result<SecureStream, NetError> {
    let (listener, address) = listener().await;
    let raw = TcpStream::connect(&address).await.unwrap();
    let _client = client(raw);
    let (stream, _) = tcp::accept(&listener).await.unwrap();
    secure::accept(stream, &identity(2), &config, &mut OsRng, &AllowAll).await
}

#[tokio::test]
async fn handshake_authenticates_both_sides_and_messages_flow_both_ways() {
    let (mut client, mut server) = pair(fast_config()).await;
    assert_eq!(client.peer(), identity(2).public_key());
    assert_eq!(server.peer(), identity(1).public_key());
    assert_eq!(client.version(), server.version());
    client.send(b"ping").await.unwrap();
    assert_eq!(server.recv().await.unwrap().unwrap(), b"ping");
    server.send(b"pong").await.unwrap();
    assert_eq!(client.recv().await.unwrap().unwrap(), b"pong");
    let big = vec![7u8; 300_000];
    client.send(&big).await.unwrap();
    assert_eq!(server.recv().await.unwrap().unwrap(), big);
    client.close().await;
    assert_eq!(server.recv().await.unwrap(), None);
}

#[tokio::test]
async fn connecting_to_the_wrong_identity_is_refused() {
    let config = fast_config();
    let (listener, address) = listener().await;
    tokio::spawn(async move {
        let (stream, _) = tcp::accept(&listener).await.unwrap();
        let _ = secure::accept(stream, &identity(3), &config, &mut OsRng, &AllowAll).await;
    });
    let stream = tcp::dial(&address, Duration::from_secs(1)).await.unwrap();
    let result = secure::connect(
        stream,
        &identity(1),
        Some(identity(2).public_key()),
        &config,
        &mut OsRng,
    )
    .await;
    assert!(matches!(
        result,
        Err(NetError::Handshake(HandshakeError::WrongPeer { .. }))
    ));
}

#[tokio::test]
async fn acceptor_refuses_a_peer_its_access_control_does_not_allow() {
    let config = fast_config();
    let (listener, address) = listener().await;
    let server = tokio::spawn(async move {
        let (stream, _) = tcp::accept(&listener).await.unwrap();
        let only_identity_9 = |peer: &offst_proto::PublicKey| *peer == identity(9).public_key();
        secure::accept(stream, &identity(2), &config, &mut OsRng, &only_identity_9).await
    });
    let stream = tcp::dial(&address, Duration::from_secs(1)).await.unwrap();
    let mut client = secure::connect(stream, &identity(1), None, &config, &mut OsRng)
        .await
        .unwrap();
    let refused = server.await.unwrap();
    assert!(
        matches!(refused, Err(NetError::PeerRefused(peer)) if peer == identity(1).public_key())
    );
    assert!(matches!(
        client.recv().await,
        Ok(None) | Err(NetError::Io(_))
    ));
}

#[tokio::test]
async fn garbage_bytes_instead_of_a_hello_are_a_typed_error() {
    let result = server_result_for(fast_config(), |mut raw| {
        tokio::spawn(async move {
            let mut garbage = vec![0, 0, 0, 40];
            garbage.extend_from_slice(&[0xa5; 40]);
            let _ = raw.write_all(&garbage).await;
            let _ = raw.read(&mut [0; 64]).await;
        })
    })
    .await;
    assert!(matches!(
        result,
        Err(NetError::Handshake(HandshakeError::Decode(_)))
    ));
}

#[tokio::test]
async fn oversized_frame_length_is_refused_before_allocating() {
    let result = server_result_for(fast_config(), |mut raw| {
        tokio::spawn(async move {
            let _ = raw.write_all(&u32::MAX.to_be_bytes()).await;
            let _ = raw.read(&mut [0; 64]).await;
        })
    })
    .await;
    assert!(matches!(
        result,
        Err(NetError::FrameTooLarge { len, .. }) if len == u32::MAX as usize
    ));
}

#[tokio::test]
async fn truncated_frame_is_a_typed_error() {
    let result = server_result_for(fast_config(), |mut raw| {
        tokio::spawn(async move {
            let _ = raw.write_all(&[0, 0, 0, 100, 1, 2, 3]).await;
            let _ = raw.shutdown().await;
            let _ = raw.read(&mut [0; 64]).await;
        })
    })
    .await;
    assert!(matches!(
        result,
        Err(NetError::TruncatedFrame {
            received: 7,
            expected: 104
        })
    ));
}

#[tokio::test]
async fn silent_client_hits_the_handshake_timeout() {
    let result = server_result_for(
        SecureConfig {
            handshake_timeout: Duration::from_millis(300),
            ..fast_config()
        },
        |mut raw| {
            tokio::spawn(async move {
                let _ = raw.write_all(&[0, 0]).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            })
        },
    )
    .await;
    assert!(matches!(result, Err(NetError::HandshakeTimeout(_))));
}

#[tokio::test]
async fn incompatible_protocol_version_is_reported_to_both_sides() {
    let (listener, address) = listener().await;
    let server = tokio::spawn(async move {
        let (stream, _) = tcp::accept(&listener).await.unwrap();
        secure::accept(stream, &identity(2), &fast_config(), &mut OsRng, &AllowAll).await
    });
    let future = SecureConfig {
        versions: VersionRange { min: 90, max: 99 },
        ..fast_config()
    };
    let stream = tcp::dial(&address, Duration::from_secs(1)).await.unwrap();
    let client = secure::connect(stream, &identity(1), None, &future, &mut OsRng).await;
    assert!(matches!(
        client,
        Err(NetError::Handshake(HandshakeError::IncompatibleVersion {
            remote_min: 1,
            ..
        }))
    ));
    assert!(matches!(
        server.await.unwrap(),
        Err(NetError::Handshake(HandshakeError::IncompatibleVersion {
            remote_min: 90,
            ..
        }))
    ));
}

#[tokio::test]
async fn busy_server_refusal_reaches_the_client_as_busy() {
    let (listener, address) = listener().await;
    tokio::spawn(async move {
        let (stream, _) = tcp::accept(&listener).await.unwrap();
        secure::refuse_busy(stream, VersionRange::default()).await;
    });
    let stream = tcp::dial(&address, Duration::from_secs(1)).await.unwrap();
    let result = secure::connect(stream, &identity(1), None, &fast_config(), &mut OsRng).await;
    assert!(matches!(
        result,
        Err(NetError::Handshake(HandshakeError::Busy))
    ));
}

#[tokio::test]
async fn forged_record_after_the_handshake_closes_with_a_record_error() {
    let (client, mut server) = pair(fast_config()).await;
    let mut raw = client.into_framed();
    raw.writer.write_frame(&[0x42; 40]).await.unwrap();
    assert!(matches!(
        server.recv().await,
        Err(NetError::Record(
            offst_crypto::record::RecordError::Authentication
        ))
    ));
    assert!(matches!(server.recv().await, Err(NetError::Closed)));
}

#[tokio::test]
async fn keepalives_keep_an_idle_connection_up() {
    let config = fast_config();
    let (client, server) = pair(config).await;
    let (mut client_rx, client_tx) = client.split();
    let (mut server_rx, server_tx) = server.split();
    // Four idle timeouts pass with no application data in either direction.
    let idle = tokio::time::timeout(config.idle_timeout * 4, server_rx.recv()).await;
    assert!(idle.is_err(), "nothing but keepalives arrived: {idle:?}");
    client_tx.send(b"still here".to_vec()).await.unwrap();
    assert_eq!(server_rx.recv().await.unwrap().unwrap(), b"still here");
    server_tx.send(b"me too".to_vec()).await.unwrap();
    assert_eq!(client_rx.recv().await.unwrap().unwrap(), b"me too");
}

#[tokio::test]
async fn unsplit_stream_sends_keepalives_while_waiting_in_recv() {
    let config = fast_config();
    let (mut client, mut server) = pair(config).await;
    let waiting = tokio::spawn(async move {
        let message = client.recv().await;
        (client, message)
    });
    // The server also waits in `recv` (so it sends keepalives too) for three idle timeouts.
    let quiet = tokio::time::timeout(config.idle_timeout * 3, server.recv()).await;
    assert!(quiet.is_err(), "nothing but keepalives arrived: {quiet:?}");
    server.send(b"late").await.unwrap();
    let (_client, message) = waiting.await.unwrap();
    assert_eq!(message.unwrap().unwrap(), b"late");
}

#[tokio::test]
async fn silent_peer_is_closed_after_the_idle_timeout() {
    let config = fast_config();
    let (client, server) = pair(config).await;
    let _silent = client.into_framed();
    let (mut server_rx, _server_tx) = server.split();
    let started = std::time::Instant::now();
    assert!(matches!(
        server_rx.recv().await,
        Err(NetError::IdleTimeout(timeout)) if timeout == config.idle_timeout
    ));
    assert!(started.elapsed() >= config.idle_timeout);
}

#[tokio::test]
async fn periodic_rekey_keeps_both_directions_working() {
    let config = SecureConfig {
        rekey_interval: Duration::ZERO,
        ..fast_config()
    };
    let (mut client, mut server) = pair(config).await;
    for round in 0..20u8 {
        client.send(&[round; 10]).await.unwrap();
        assert_eq!(server.recv().await.unwrap().unwrap(), [round; 10]);
        server.send(&[round; 3]).await.unwrap();
        assert_eq!(client.recv().await.unwrap().unwrap(), [round; 3]);
    }
}

#[tokio::test]
async fn split_halves_carry_many_messages_from_several_senders() {
    let (client, server) = pair(fast_config()).await;
    let (_client_rx, client_tx) = client.split();
    let (mut server_rx, _server_tx) = server.split();
    let mut producers = Vec::new();
    for producer in 0..4u8 {
        let tx = client_tx.clone();
        producers.push(tokio::spawn(async move {
            for i in 0..100u8 {
                tx.send(vec![producer, i]).await.unwrap();
            }
        }));
    }
    let mut next = [0u8; 4];
    for _ in 0..400 {
        let message = server_rx.recv().await.unwrap().unwrap();
        let producer = message[0] as usize;
        assert_eq!(message[1], next[producer], "per-producer order is kept");
        next[producer] += 1;
    }
    for producer in producers {
        producer.await.unwrap();
    }
    assert!(matches!(
        client_tx.try_send(vec![0; offst_crypto::record::MAX_RECORD_PAYLOAD + 1]),
        Err(NetError::MessageTooLarge { .. })
    ));
}

#[tokio::test]
async fn handshake_accepts_only_small_frames() {
    let result = server_result_for(fast_config(), |mut raw| {
        tokio::spawn(async move {
            let _ = raw.write_all(&2000u32.to_be_bytes()).await;
            let _ = raw.read(&mut [0; 64]).await;
        })
    })
    .await;
    assert!(matches!(
        result,
        Err(NetError::FrameTooLarge {
            len: 2000,
            max: secure::MAX_HANDSHAKE_FRAME_LEN
        })
    ));
}

#[tokio::test]
async fn message_over_a_lowered_limit_ends_the_connection() {
    let (mut client, mut server) = pair(fast_config()).await;
    server.limit_message_len(100);
    client.send(&[0; 100]).await.unwrap();
    assert_eq!(server.recv().await.unwrap().unwrap(), [0; 100]);
    client.send(&[0; 101]).await.unwrap();
    assert!(matches!(
        server.recv().await,
        Err(NetError::FrameTooLarge { len: 118, .. })
    ));
}
