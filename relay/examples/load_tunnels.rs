//! Load test: holds many concurrent idle tunnels through one relay and reports the relay's
//! memory. The relay runs in a child process (this program re-executed with `--relay-child`)
//! so its RSS is its own; this process plays all the nodes. Bounded: at most `--tunnels`
//! tunnels (default 10,000) and a setup deadline of 120 s.
//!
//! Run: `cargo run --release -p offst-relay --example load_tunnels [-- --tunnels 10000]`
//!
//! Each tunnel costs the relay two sockets and this process two more; the program raises its
//! open-file limit by re-executing itself under `sh -c 'ulimit -n …'` when needed (root, or a
//! high enough hard limit, is required for 10,000 tunnels).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use offst_crypto::Identity;
use offst_net::relay_client::{self, ListenEvent, RelayClientConfig};
use offst_net::{AllowList, RelayListener, SecureConfig, SecureStream};
use offst_proto::{NetAddress, PublicKey, RelayAddress};
use offst_relay::{Limits, RelayConfig, RelayServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// Listening nodes; tunnels are spread over them. Few, because every listening connection
/// takes a file descriptor from the same per-process budget as the tunnels.
const LISTENERS: usize = 10;
/// Descriptors each process needs besides tunnel sockets and listening connections (stdio,
/// epoll, the relay's listening and metrics sockets, transient setup connections).
const FD_RESERVE: u64 = 100;
/// Tunnels being set up at once.
const SETUP_CONCURRENCY: usize = 64;
/// Longest the whole setup may take.
const SETUP_DEADLINE: Duration = Duration::from_secs(120);
/// How long the tunnels are held idle before memory is measured.
const HOLD: Duration = Duration::from_secs(3);
/// Tunnels probed with a round trip after the hold.
const PROBES: usize = 200;
/// Environment variable marking the re-executed process (avoids a re-exec loop).
const RAISED_MARK: &str = "OFFST_LOAD_FD_RAISED";

fn relay_identity() -> Identity {
    Identity::from_seed([0xee; 32])
}

fn node(role: u8, index: usize) -> Identity {
    let mut seed = [role; 32];
    seed[..8].copy_from_slice(&(index as u64).to_be_bytes());
    Identity::from_seed(seed)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let tunnels = args
        .iter()
        .position(|arg| arg == "--tunnels")
        .and_then(|at| args.get(at + 1))
        .map(|count| count.parse::<usize>())
        .transpose()?
        .unwrap_or(10_000);
    let (soft, hard) = open_file_limits()?;
    let wanted_fds = 2 * tunnels as u64 + LISTENERS as u64 + FD_RESERVE;
    if soft < wanted_fds.min(hard) && std::env::var_os(RAISED_MARK).is_none() {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {} && exec \"$0\" \"$@\"",
                wanted_fds.min(hard)
            ))
            .args(&args)
            .env(RAISED_MARK, "1")
            .status()
            .context("re-executing under a raised open-file limit")?;
        std::process::exit(status.code().unwrap_or(1));
    }
    // Each tunnel takes two descriptors in the relay and two in this process; a hard limit
    // that cannot be raised (no CAP_SYS_RESOURCE) caps the count.
    let (soft, _) = open_file_limits()?;
    let capacity = usize::try_from(soft.saturating_sub(LISTENERS as u64 + FD_RESERVE) / 2)
        .unwrap_or(usize::MAX);
    let capped = tunnels.min(capacity);
    if capped < tunnels {
        eprintln!(
            "open-file limit {soft} allows {capped} tunnels per process, not {tunnels}; \
             running with {capped}"
        );
    }
    let tunnels = capped;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if args.iter().any(|arg| arg == "--relay-child") {
        runtime.block_on(relay_child(tunnels))
    } else {
        runtime.block_on(drive(tunnels, &args[0]))
    }
}

/// (soft, hard) open-file limits of this process.
fn open_file_limits() -> anyhow::Result<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .context("no open-file limit in /proc/self/limits")?;
    let mut fields = line.split_whitespace().skip(3);
    let mut next = || {
        fields
            .next()
            .map(|value| value.parse().unwrap_or(u64::MAX))
            .context("malformed limits")
    };
    Ok((next()?, next()?))
}

/// The relay process: serves until its stdin closes.
async fn relay_child(tunnels: usize) -> anyhow::Result<()> {
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        metrics: Some("127.0.0.1:0".parse()?),
        limits: Limits {
            max_connections: 2 * tunnels + 2 * LISTENERS + 100,
            max_connections_per_ip: 2 * tunnels + 2 * LISTENERS + 100,
            max_half_open_per_key: 1000,
            tunnel_idle_timeout_secs: 600,
            idle_timeout_secs: 600,
            ..Limits::default()
        },
        ..RelayConfig::default()
    };
    let server = RelayServer::bind(&config, relay_identity()).await?;
    let port = server.local_addr().context("relay address")?.port();
    let metrics_port = server.metrics_addr().context("metrics address")?.port();
    println!("READY {port} {metrics_port}");
    std::io::stdout().flush()?;
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

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

async fn metric(metrics_port: u16, name: &str) -> anyhow::Result<u64> {
    let mut http = tokio::net::TcpStream::connect(("127.0.0.1", metrics_port)).await?;
    http.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await?;
    let mut text = String::new();
    http.read_to_string(&mut text).await?;
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .context("metric missing")
}

struct RelayChild(Child);

impl Drop for RelayChild {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

async fn drive(tunnels: usize, program: &str) -> anyhow::Result<()> {
    let mut child = Command::new(program)
        .args(["--relay-child", "--tunnels", &tunnels.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the relay process")?;
    let mut ready = String::new();
    BufReader::new(child.stdout.take().context("relay stdout")?).read_line(&mut ready)?;
    let child = RelayChild(child);
    let mut parts = ready.split_whitespace().skip(1);
    let port: u16 = parts.next().context("relay port")?.parse()?;
    let metrics_port: u16 = parts.next().context("metrics port")?.parse()?;
    let relay = RelayAddress {
        public_key: relay_identity().public_key(),
        address: NetAddress::new(&format!("127.0.0.1:{port}"))?,
    };
    let rss_idle = rss_kib(child.0.id(), "VmRSS:");

    let callers_count = tunnels.div_ceil(LISTENERS);
    let callers: Vec<Identity> = (0..callers_count).map(|i| node(1, i)).collect();
    let listeners: Vec<Identity> = (0..LISTENERS).map(|i| node(2, i)).collect();
    let friends = AllowList::new(callers.iter().map(Identity::public_key));
    let secure = SecureConfig {
        idle_timeout: Duration::from_secs(600),
        ..SecureConfig::default()
    };
    let listener_config = RelayClientConfig {
        secure,
        local_address: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))),
        ..RelayClientConfig::default()
    };
    let caller_config = RelayClientConfig {
        secure,
        local_address: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        ..RelayClientConfig::default()
    };

    // Listening side: every accepted stream is kept, keyed by (listener, caller).
    let accepted: Arc<Mutex<HashMap<(PublicKey, PublicKey), SecureStream>>> = Arc::default();
    let mut listener_handles = Vec::new();
    for listener in &listeners {
        let (handle, mut events) = RelayListener::start(
            listener.clone(),
            vec![relay.clone()],
            Arc::new(friends.clone()),
            listener_config.clone(),
        );
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(ListenEvent::RelayUp { .. })) => {}
            other => bail!("listener did not come up: {other:?}"),
        }
        let accepted = accepted.clone();
        let me = listener.public_key();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let ListenEvent::Connected { stream, .. } = event {
                    let peer = stream.peer();
                    if let Ok(mut map) = accepted.lock() {
                        map.insert((me, peer), *stream);
                    }
                }
            }
        });
        listener_handles.push(handle);
    }

    // Calling side.
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut setups = Vec::with_capacity(tunnels);
    'outer: for caller in &callers {
        for listener in &listeners {
            if setups.len() == tunnels {
                break 'outer;
            }
            let permit = slots.clone().acquire_owned().await?;
            if started.elapsed() > SETUP_DEADLINE {
                break 'outer;
            }
            let (caller, target, config, relay) = (
                caller.clone(),
                listener.public_key(),
                caller_config.clone(),
                relay.clone(),
            );
            setups.push(tokio::spawn(async move {
                let mut result =
                    relay_client::connect_via_relay(&caller, &relay, target, &config).await;
                if result.is_err() {
                    result =
                        relay_client::connect_via_relay(&caller, &relay, target, &config).await;
                }
                drop(permit);
                result.map(|stream| (caller.public_key(), target, stream))
            }));
        }
    }
    let mut calling = Vec::with_capacity(tunnels);
    let mut failures = 0usize;
    let mut first_error = None;
    for setup in setups {
        match setup.await? {
            Ok(stream) => calling.push(stream),
            Err(err) => {
                failures += 1;
                first_error.get_or_insert(err.to_string());
            }
        }
    }
    let setup_time = started.elapsed();
    tokio::time::sleep(HOLD).await;

    let relay_pid = child.0.id();
    let rss_held = rss_kib(relay_pid, "VmRSS:");
    let rss_peak = rss_kib(relay_pid, "VmHWM:");
    let tunnels_open = metric(metrics_port, "strelay_tunnels_open").await?;
    let connections_open = metric(metrics_port, "strelay_connections_open").await?;

    // Probe a sample of the held tunnels with a round trip.
    let mut probes_ok = 0;
    let step = (calling.len() / PROBES).max(1);
    for (caller, target, stream) in calling.iter_mut().step_by(step).take(PROBES) {
        if stream.send(b"ping").await.is_err() {
            continue;
        }
        let key = (*target, *caller);
        let other = accepted.lock().ok().and_then(|mut map| map.remove(&key));
        if let Some(mut other) = other {
            if let Ok(Ok(Some(message))) =
                tokio::time::timeout(Duration::from_secs(5), other.recv()).await
            {
                if message == b"ping" {
                    probes_ok += 1;
                }
            }
            if let Ok(mut map) = accepted.lock() {
                map.insert(key, other);
            }
        }
    }
    let probes = calling.len().min(PROBES).min(calling.len().div_ceil(step));
    let own_rss = rss_kib(std::process::id(), "VmRSS:");

    println!("| relay load test (release, loopback, 2 cores) | value |");
    println!("|---|---:|");
    println!("| tunnels requested (after the fd-limit cap) | {tunnels} |");
    println!("| tunnels established (client side) | {} |", calling.len());
    println!("| tunnels open at the relay (metrics) | {tunnels_open} |");
    println!("| relay connections open (metrics) | {connections_open} |");
    println!("| setup failures | {failures} |");
    println!(
        "| setup time | {:.1} s ({:.0} tunnels/s) |",
        setup_time.as_secs_f64(),
        calling.len() as f64 / setup_time.as_secs_f64()
    );
    println!(
        "| relay RSS before load | {:.1} MB |",
        rss_idle as f64 / 1024.0
    );
    println!(
        "| relay RSS holding the tunnels | {:.1} MB |",
        rss_held as f64 / 1024.0
    );
    println!(
        "| relay peak RSS (VmHWM) | {:.1} MB |",
        rss_peak as f64 / 1024.0
    );
    println!(
        "| relay RSS per tunnel | {:.1} KB |",
        (rss_held.saturating_sub(rss_idle)) as f64 / calling.len().max(1) as f64
    );
    println!("| round-trip probes ok | {probes_ok} / {probes} |");
    println!(
        "| load-test process RSS (all nodes) | {:.0} MB |",
        own_rss as f64 / 1024.0
    );
    if let Some(error) = first_error {
        println!("\nfirst setup error: {error}");
    }
    drop(listener_handles);
    drop(child);
    Ok(())
}
