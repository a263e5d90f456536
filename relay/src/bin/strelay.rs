//! `strelay`: the Offst relay server. Only flags, the config file, the key file and signals
//! live here; the server is the `offst_relay` library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use offst_crypto::keyfile::{self, KeyProtection};
use offst_relay::{RelayConfig, RelayServer};
use rand_core::OsRng;

/// Offst relay server: lets nodes behind NAT reach each other. Sees only public keys and
/// ciphertext.
#[derive(Debug, Parser)]
#[command(name = "strelay", version)]
struct Cli {
    /// TOML configuration file (flags override it).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address to accept nodes on [default: 0.0.0.0:7500].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// host:port nodes should dial, printed in the card [default: the listen address].
    #[arg(long)]
    public_address: Option<String>,
    /// Address of the Prometheus metrics endpoint [default: 127.0.0.1:9750].
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Disable the metrics endpoint.
    #[arg(long, conflicts_with = "metrics")]
    no_metrics: bool,
    /// Identity key file, created on first run [default: strelay.key].
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Most open connections in total.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most open connections from one IP address.
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Bytes per second each connection may send through a tunnel (0: unlimited).
    #[arg(long)]
    bytes_per_second: Option<u64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the relay's card (public key and address) on one line, creating the key file if
    /// needed, and exit.
    Card,
}

fn config_from(cli: &Cli) -> anyhow::Result<RelayConfig> {
    let mut config = match &cli.config {
        Some(path) => RelayConfig::load(path)?,
        None => RelayConfig::default(),
    };
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(address) = &cli.public_address {
        config.public_address = Some(address.clone());
    }
    if let Some(metrics) = cli.metrics {
        config.metrics = Some(metrics);
    }
    if cli.no_metrics {
        config.metrics = None;
    }
    if let Some(key_file) = &cli.key_file {
        config.key_file = key_file.clone();
    }
    if let Some(max) = cli.max_connections {
        config.limits.max_connections = max;
    }
    if let Some(max) = cli.max_connections_per_ip {
        config.limits.max_connections_per_ip = max;
    }
    if let Some(rate) = cli.bytes_per_second {
        config.limits.bytes_per_second = rate;
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let mut config = config_from(&cli)?;
    let (identity, created) =
        keyfile::read_or_create(&config.key_file, KeyProtection::Plain, &mut OsRng)
            .with_context(|| format!("key file {}", config.key_file.display()))?;
    if created {
        log::info!("created a new relay key in {}", config.key_file.display());
    }
    if let Some(Command::Card) = cli.command {
        // The card needs an address, not a port to bind: never bind here.
        config.metrics = None;
        let address = config
            .public_address
            .clone()
            .unwrap_or_else(|| config.listen.to_string());
        let card = offst_proto::relay::RelayCard(offst_proto::RelayAddress {
            public_key: identity.public_key(),
            address: offst_proto::NetAddress::new(&address)
                .with_context(|| format!("public address {address:?}"))?,
        });
        println!("{card}");
        return Ok(());
    }
    let server = RelayServer::bind(&config, identity).await?;
    if let Some(metrics) = server.metrics_addr() {
        log::info!("metrics on http://{metrics}/metrics");
    }
    // Handlers first, then the card (which tells scripts and tests that the relay is up).
    let stop = offst_net::shutdown::stop_signal().context("installing signal handlers")?;
    println!("{}", server.card());
    server.run(stop).await;
    Ok(())
}
