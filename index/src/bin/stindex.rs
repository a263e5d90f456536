//! `stindex`: the Offst index server. Thin: flags and config file in, [`IndexServer`] out.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use offst_crypto::keyfile::{self, KeyProtection};
use offst_index::config::{FileConfig, PeerEntry};
use offst_index::server::IndexServer;

/// Offst index server: collects signed capacity reports from nodes, shares them with trusted
/// index servers and answers fee-aware route queries.
#[derive(Debug, Parser)]
#[command(name = "stindex", version)]
struct Cli {
    /// TOML configuration file; flags override its values.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Identity key file, created on first run [default: stindex.key].
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Address for nodes and servers [default: 0.0.0.0:7400].
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint (off unless set).
    #[arg(long, global = true)]
    metrics_listen: Option<SocketAddr>,
    /// A trusted index server, `KEY` or `KEY@HOST:PORT` (repeatable; adds to the file's).
    #[arg(long = "peer", global = true, value_name = "KEY[@ADDRESS]")]
    peers: Vec<String>,
    /// Most simultaneous connections.
    #[arg(long, global = true)]
    max_connections: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Print this server's card: the `[[peers]]` entry other index servers add to trust it,
    /// and what nodes configure to use it. Creates the key on first use.
    Card {
        /// The public address to advertise (`host:port`) [default: the listen address].
        #[arg(long)]
        address: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let mut file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    if cli.listen.is_some() {
        file.listen = cli.listen;
    }
    if cli.metrics_listen.is_some() {
        file.metrics_listen = cli.metrics_listen;
    }
    if cli.max_connections.is_some() {
        file.max_connections = cli.max_connections;
    }
    for peer in &cli.peers {
        let (key, address) = match peer.split_once('@') {
            Some((key, address)) => (key, Some(address.to_owned())),
            None => (peer.as_str(), None),
        };
        file.peers.push(PeerEntry {
            public_key: key.to_owned(),
            address,
        });
    }
    let key_file = cli
        .key_file
        .clone()
        .or_else(|| file.key_file.clone())
        .unwrap_or_else(|| PathBuf::from("stindex.key"));
    let config = file.server_config()?;
    let (identity, created) =
        keyfile::read_or_create(&key_file, KeyProtection::Plain, &mut rand_core::OsRng)
            .with_context(|| format!("identity key file {}", key_file.display()))?;
    if created {
        log::info!(
            "created a new identity {} in {}",
            identity.public_key(),
            key_file.display()
        );
    }

    match cli.command.unwrap_or(Command::Run) {
        Command::Card { address } => {
            let address = address.unwrap_or_else(|| config.listen.to_string());
            println!("# stindex card: add to another index server's configuration to federate,");
            println!("# or to a node's index server list.");
            println!("[[peers]]");
            println!("public_key = \"{}\"", identity.public_key());
            println!("address = \"{address}\"");
            Ok(())
        }
        Command::Run => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async move {
                let stop =
                    offst_net::shutdown::stop_signal().context("installing signal handlers")?;
                let server = IndexServer::start(identity, config).await?;
                if let Some(metrics) = server.metrics_addr() {
                    log::info!("metrics on http://{metrics}/metrics");
                }
                stop.await;
                server.shutdown().await;
                anyhow::Ok(())
            })
        }
    }
}
