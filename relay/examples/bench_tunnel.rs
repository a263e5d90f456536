//! Tunnel throughput benchmark: bytes through a relay tunnel versus plain loopback TCP, both
//! as raw bytes (what the relay itself can copy) and as the nodes' end-to-end `SecureStream`
//! (what a node gets). The relay runs in a child process (this program re-executed with
//! `--relay-child`), as it would on its own machine, with its byte-rate limit off. The four
//! measurements are interleaved over several rounds and the medians reported, so background
//! load on a shared machine skews them alike. Bounded: about 25 s in total.
//!
//! Run: `cargo run --release -p offst-relay --example bench_tunnel`

use std::sync::Arc;
use std::time::{Duration, Instant};

use offst_crypto::Identity;
use offst_net::relay_client::{self, ListenEvent, RelayClientConfig};
use offst_net::{secure, tcp, AllowAll, AllowList, RelayListener, SecureConfig, SecureStream};
use offst_proto::{NetAddress, RelayAddress};
use offst_relay::{Limits, RelayConfig, RelayServer};
use rand_core::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long each measurement sends.
const PHASE: Duration = Duration::from_millis(1500);
/// Rounds of the four measurements.
const ROUNDS: usize = 4;
/// Size of each write (raw) or message (secure).
const CHUNK: usize = 64 * 1024;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if std::env::args().any(|arg| arg == "--relay-child") {
        runtime.block_on(relay_child())
    } else {
        runtime.block_on(measure())
    }
}

fn relay_identity() -> Identity {
    Identity::from_seed([0xbe; 32])
}

/// The relay process: serves until its stdin closes.
async fn relay_child() -> anyhow::Result<()> {
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        metrics: None,
        limits: Limits {
            bytes_per_second: 0,
            ..Limits::default()
        },
        ..RelayConfig::default()
    };
    let server = RelayServer::bind(&config, relay_identity()).await?;
    let port = server
        .local_addr()
        .map(|address| address.port())
        .unwrap_or(0);
    println!("READY {port}");
    std::io::Write::flush(&mut std::io::stdout())?;
    server
        .run(async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut byte = [0u8; 1];
                let _ = std::io::Read::read(&mut std::io::stdin(), &mut byte);
            })
            .await;
        })
        .await;
    Ok(())
}

async fn measure() -> anyhow::Result<()> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--relay-child")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut ready = String::new();
    if let Some(stdout) = child.stdout.take() {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready)?;
    }
    let port: u16 = ready.split_whitespace().nth(1).unwrap_or("0").parse()?;
    let relay = RelayAddress {
        public_key: relay_identity().public_key(),
        address: NetAddress::new(&format!("127.0.0.1:{port}"))?,
    };
    let mut samples = [const { Vec::new() }; 4];
    for _ in 0..ROUNDS {
        samples[0].push(raw_rate(direct_tcp_pair().await?).await?);
        let (a, b) = tunnel_pair(&relay).await?;
        samples[1].push(raw_rate(into_raw(a, b)?).await?);
        let (a, b) = direct_secure_pair().await?;
        samples[2].push(secure_rate(a, b).await?);
        let (a, b) = tunnel_pair(&relay).await?;
        samples[3].push(secure_rate(a, b).await?);
    }
    let [plain_raw, tunnel_raw, plain_secure, tunnel_secure] = samples.map(median);
    drop(child.stdin.take());
    let _ = child.wait();

    println!(
        "| throughput (loopback, release, 2 cores, 64 KiB writes, median of {ROUNDS}) | MB/s | vs direct |"
    );
    println!("|---|---:|---:|");
    println!("| raw bytes, direct TCP | {plain_raw:.0} | 100 % |");
    println!(
        "| raw bytes, through the relay tunnel | {tunnel_raw:.0} | {:.0} % |",
        100.0 * tunnel_raw / plain_raw
    );
    println!("| SecureStream, direct TCP | {plain_secure:.0} | 100 % |");
    println!(
        "| SecureStream end to end, through the relay tunnel | {tunnel_secure:.0} | {:.0} % |",
        100.0 * tunnel_secure / plain_secure
    );
    Ok(())
}

async fn direct_tcp_pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let (dialled, accepted) = tokio::join!(
        tcp::dial(&address, Duration::from_secs(1)),
        tcp::accept(&listener)
    );
    Ok((dialled?, accepted?.0))
}

async fn direct_secure_pair() -> anyhow::Result<(SecureStream, SecureStream)> {
    let (a, b) = direct_tcp_pair().await?;
    let (alice, bob) = (
        Identity::generate(&mut OsRng),
        Identity::generate(&mut OsRng),
    );
    let config = SecureConfig::default();
    let (mut rng_a, mut rng_b) = (OsRng, OsRng);
    let (a, b) = tokio::join!(
        secure::connect(a, &alice, Some(bob.public_key()), &config, &mut rng_a),
        secure::accept(b, &bob, &config, &mut rng_b, &AllowAll)
    );
    Ok((a?, b?))
}

/// Alice reaches Bob through the relay; returns (Alice's stream, Bob's stream).
async fn tunnel_pair(relay: &RelayAddress) -> anyhow::Result<(SecureStream, SecureStream)> {
    let (alice, bob) = (
        Identity::generate(&mut OsRng),
        Identity::generate(&mut OsRng),
    );
    let config = RelayClientConfig::default();
    let (listener, mut events) = RelayListener::start(
        bob.clone(),
        vec![relay.clone()],
        Arc::new(AllowList::new([alice.public_key()])),
        config.clone(),
    );
    let Some(ListenEvent::RelayUp { .. }) = events.recv().await else {
        anyhow::bail!("listener did not come up");
    };
    let at_alice =
        relay_client::connect_via_relay(&alice, relay, bob.public_key(), &config).await?;
    let at_bob = loop {
        match events.recv().await {
            Some(ListenEvent::Connected { stream, .. }) => break *stream,
            Some(_) => continue,
            None => anyhow::bail!("listener stopped"),
        }
    };
    drop(listener);
    Ok((at_alice, at_bob))
}

/// Leaves the end-to-end channel and returns the tunnel's raw sockets.
fn into_raw(a: SecureStream, b: SecureStream) -> anyhow::Result<(TcpStream, TcpStream)> {
    let (a, rest_a) = a.into_framed().into_parts()?;
    let (b, rest_b) = b.into_framed().into_parts()?;
    anyhow::ensure!(rest_a.is_empty() && rest_b.is_empty());
    Ok((a, b))
}

async fn raw_rate((mut sender, mut receiver): (TcpStream, TcpStream)) -> anyhow::Result<f64> {
    let reading = tokio::spawn(async move {
        let mut buffer = vec![0u8; CHUNK];
        let mut total = 0u64;
        let started = Instant::now();
        loop {
            let read = receiver.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            total += read as u64;
        }
        anyhow::Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
    });
    let chunk = vec![0x5au8; CHUNK];
    let started = Instant::now();
    while started.elapsed() < PHASE {
        sender.write_all(&chunk).await?;
    }
    sender.shutdown().await?;
    reading.await?
}

async fn secure_rate(mut sender: SecureStream, mut receiver: SecureStream) -> anyhow::Result<f64> {
    let reading = tokio::spawn(async move {
        let mut total = 0u64;
        let started = Instant::now();
        while let Some(message) = receiver.recv().await? {
            total += message.len() as u64;
        }
        anyhow::Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
    });
    let message = vec![0x5au8; CHUNK];
    let started = Instant::now();
    while started.elapsed() < PHASE {
        for _ in 0..16 {
            sender.send(&message).await?;
        }
    }
    sender.close().await;
    reading.await?
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    match samples.len() {
        0 => 0.0,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}
