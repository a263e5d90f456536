//! Transport benchmark: handshakes per second and encrypted throughput through `SecureStream`
//! versus plain TCP, all over loopback. Bounded in time (about 15 s in total).
//!
//! Run: `cargo run --release -p offst-net --example bench_transport`

use std::time::{Duration, Instant};

use offst_crypto::Identity;
use offst_net::{secure, tcp, AllowAll, SecureConfig};
use rand_core::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long each measurement runs.
const PHASE: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut rows = Vec::new();
    rows.push(handshakes().await?);
    let plain = plain_tcp().await?;
    rows.push(("plain TCP, 64 KiB writes".to_owned(), plain, "MB/s"));
    for size in [64 * 1024, 1024] {
        let secure = secure_stream(size).await?;
        rows.push((
            format!("SecureStream, {} KiB messages", size / 1024),
            secure,
            "MB/s",
        ));
    }
    println!("| measurement (loopback TCP, release) | value | unit |");
    println!("|---|---:|---|");
    for (name, value, unit) in &rows {
        println!("| {name} | {value:.0} | {unit} |");
    }
    if let (Some(secure), true) = (rows.get(2), plain > 0.0) {
        println!(
            "| SecureStream 64 KiB / plain TCP | {:.0} | % |",
            100.0 * secure.1 / plain
        );
    }
    Ok(())
}

async fn handshakes() -> anyhow::Result<(String, f64, &'static str)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let server_identity = Identity::generate(&mut OsRng);
    let server_key = server_identity.public_key();
    let config = SecureConfig::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp::accept(&listener).await {
            let identity = server_identity.clone();
            tokio::spawn(async move {
                if let Ok(stream) =
                    secure::accept(stream, &identity, &config, &mut OsRng, &AllowAll).await
                {
                    stream.close().await;
                }
            });
        }
    });
    let client_identity = Identity::generate(&mut OsRng);
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < PHASE {
        let stream = tcp::dial(&address, config.handshake_timeout).await?;
        let stream = secure::connect(
            stream,
            &client_identity,
            Some(server_key),
            &config,
            &mut OsRng,
        )
        .await?;
        drop(stream);
        count += 1;
    }
    Ok((
        "handshakes, sequential (TCP connect + handshake)".to_owned(),
        count as f64 / started.elapsed().as_secs_f64(),
        "per s",
    ))
}

async fn plain_tcp() -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = tcp::accept(&listener).await?;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let started = Instant::now();
        loop {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            total += read as u64;
        }
        anyhow::Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
    });
    let mut stream = tcp::dial(&address, Duration::from_secs(1)).await?;
    let chunk = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    while started.elapsed() < PHASE {
        stream.write_all(&chunk).await?;
    }
    stream.shutdown().await?;
    receiver.await?
}

async fn secure_stream(message_len: usize) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let server_identity = Identity::generate(&mut OsRng);
    let server_key = server_identity.public_key();
    let config = SecureConfig::default();
    let receiver = tokio::spawn(async move {
        let (stream, _) = tcp::accept(&listener).await?;
        let mut stream =
            secure::accept(stream, &server_identity, &config, &mut OsRng, &AllowAll).await?;
        let mut total = 0u64;
        let started = Instant::now();
        while let Some(message) = stream.recv().await? {
            total += message.len() as u64;
        }
        anyhow::Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
    });
    let stream = tcp::dial(&address, Duration::from_secs(1)).await?;
    let client = Identity::generate(&mut OsRng);
    let mut stream =
        secure::connect(stream, &client, Some(server_key), &config, &mut OsRng).await?;
    let message = vec![0x5au8; message_len];
    let started = Instant::now();
    while started.elapsed() < PHASE {
        for _ in 0..16 {
            stream.send(&message).await?;
        }
    }
    stream.close().await;
    receiver.await?
}
