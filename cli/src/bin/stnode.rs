//! `stnode`: the Offst node as a daemon. It keeps its identity and SQLite database in a data
//! directory, links to friends through relays, reports to index servers, and serves apps
//! (`stctrl`, wallets, scripts) on a TCP port. Apps are registered with `stnode app add`,
//! which creates the app's identity and writes the node ticket it connects with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use offst_cli::apps::AppDirectory;
use offst_cli::ticket::NodeTicket;
use offst_crypto::keyfile::{self, KeyProtection};
use offst_crypto::Identity;
use offst_node::app_server::{AppServerConfig, DEFAULT_APP_PORT, DEFAULT_MAX_APPS};
use offst_node::{IndexServerAddress, Node, NodeConfig, KEY_FILE};
use offst_proto::app::Permissions;
use offst_proto::relay::RelayCard;
use offst_proto::{NetAddress, RelayAddress};
use rand_core::OsRng;
use serde::Deserialize;

/// The node ticket `stnode run` keeps up to date in the data directory.
const TICKET_FILE: &str = "node.ticket";
/// The registry of apps, in the data directory.
const APPS_DIR: &str = "apps";

/// Offst node daemon: mutual-credit payments with friends, controlled by apps.
#[derive(Debug, Parser)]
#[command(
    name = "stnode",
    version,
    after_help = "Quick start:
  stnode --data-dir node0 --relay offst-relay:KEY@relay.example.org:7500 run
  stnode --data-dir node0 app add ctrl --permissions all --out .
  stctrl -I ctrl.ident -T node.ticket info friends"
)]
struct Cli {
    /// TOML configuration file (flags override it); see stnode.toml in the repository.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// The node's data directory (identity key, database, app registrations)
    /// [default: stnode-data].
    #[arg(long, short = 'd', global = true)]
    data_dir: Option<PathBuf>,
    /// Where apps connect [default: 127.0.0.1:7600].
    #[arg(long, global = true)]
    app_listen: Option<SocketAddr>,
    /// `host:port` written in node tickets [default: the app listen address].
    #[arg(long, global = true)]
    app_address: Option<String>,
    /// A relay to listen on, as its card `offst-relay:KEY@host:port` (repeat for more).
    /// Seeds a new node; afterwards manage relays with `stctrl config`.
    #[arg(long = "relay", global = true, value_name = "CARD")]
    relays: Vec<String>,
    /// An index server, as `KEY@host:port` (repeat for more). Seeds a new node.
    #[arg(long = "index", global = true, value_name = "KEY@ADDRESS")]
    index_servers: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node until SIGINT or SIGTERM (the default).
    Run,
    /// Register, list or remove apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Print the node ticket apps connect with (creating the identity if needed).
    Ticket,
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Register an app: creates its identity file `<OUT>/<NAME>.ident` and writes the node
    /// ticket `<OUT>/node.ticket`. Works while the node runs.
    Add {
        /// The app's name (letters, digits, '-', '_').
        name: String,
        /// What the app may do: a comma list of info, buy, sell, config, routes, or "all".
        #[arg(long, short = 'p', default_value = "info")]
        permissions: Permissions,
        /// Directory for the app's identity file and the node ticket.
        #[arg(long, short = 'o', default_value = ".")]
        out: PathBuf,
    },
    /// List the registered apps and their permissions.
    List,
    /// Remove an app: it is refused from its next connection on.
    Remove {
        /// The app's name.
        name: String,
    },
}

/// The configuration file. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    app_listen: Option<SocketAddr>,
    app_address: Option<String>,
    max_apps: Option<usize>,
    relays: Vec<String>,
    index_servers: Vec<String>,
}

/// The configuration in force: the file, then the flags.
struct Config {
    data_dir: PathBuf,
    app_listen: SocketAddr,
    app_address: Option<String>,
    max_apps: usize,
    relays: Vec<RelayAddress>,
    index_servers: Vec<IndexServerAddress>,
}

impl Config {
    fn from(cli: &Cli) -> anyhow::Result<Config> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the configuration {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("in the configuration {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let relays = file
            .relays
            .iter()
            .chain(&cli.relays)
            .map(|card| {
                card.parse::<RelayCard>()
                    .map(|card| card.0)
                    .map_err(|err| anyhow::anyhow!("relay {card:?}: {err}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let index_servers = file
            .index_servers
            .iter()
            .chain(&cli.index_servers)
            .map(|text| parse_index_server(text))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Config {
            data_dir: cli
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("stnode-data")),
            app_listen: cli
                .app_listen
                .or(file.app_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], DEFAULT_APP_PORT))),
            app_address: cli.app_address.clone().or(file.app_address),
            max_apps: file.max_apps.unwrap_or(DEFAULT_MAX_APPS),
            relays,
            index_servers,
        })
    }

    fn apps(&self) -> AppDirectory {
        AppDirectory::new(self.data_dir.join(APPS_DIR))
    }

    /// The ticket for apps, with the address they dial.
    fn ticket(&self, identity: &Identity, bound: Option<SocketAddr>) -> anyhow::Result<NodeTicket> {
        let address = match &self.app_address {
            Some(address) => address.clone(),
            None => bound.unwrap_or(self.app_listen).to_string(),
        };
        Ok(NodeTicket {
            public_key: identity.public_key(),
            address: NetAddress::new(&address)
                .with_context(|| format!("the app address {address:?}"))?,
        })
    }

    /// The node's identity, created on first use (as the node itself would).
    fn identity(&self) -> anyhow::Result<Identity> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let path = self.data_dir.join(KEY_FILE);
        let (identity, created) = keyfile::read_or_create(&path, KeyProtection::Plain, &mut OsRng)
            .with_context(|| format!("the node's key file {}", path.display()))?;
        if created {
            log::info!("created the node identity {}", identity.public_key());
        }
        Ok(identity)
    }
}

/// `KEY@host:port`, optionally prefixed `offst-index:`.
fn parse_index_server(text: &str) -> anyhow::Result<IndexServerAddress> {
    let trimmed = text.trim();
    let rest = trimmed.strip_prefix("offst-index:").unwrap_or(trimmed);
    let Some((key, address)) = rest.split_once('@') else {
        bail!("index server {text:?}: expected KEY@host:port");
    };
    Ok(IndexServerAddress {
        public_key: key
            .parse()
            .map_err(|err| anyhow::anyhow!("index server {text:?}: {err}"))?,
        address: NetAddress::new(address)
            .map_err(|err| anyhow::anyhow!("index server {text:?}: {err}"))?
            .as_str()
            .to_owned(),
    })
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stnode: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from(&cli)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run_node(&config),
        Command::Ticket => {
            let identity = config.identity()?;
            println!("{}", config.ticket(&identity, None)?);
            Ok(())
        }
        Command::App { command } => match command {
            AppCommand::Add {
                name,
                permissions,
                out,
            } => add_app(&config, &name, permissions, &out),
            AppCommand::List => {
                let apps = config.apps().list().map_err(anyhow::Error::msg)?;
                if apps.is_empty() {
                    println!("no apps registered (add one with `stnode app add NAME`)");
                }
                for app in apps {
                    println!(
                        "{:<20} {:<28} {}",
                        app.name, app.permissions, app.public_key
                    );
                }
                Ok(())
            }
            AppCommand::Remove { name } => {
                config.apps().remove(&name).map_err(anyhow::Error::msg)?;
                println!("removed the app {name:?}; it is refused from its next connection");
                Ok(())
            }
        },
    }
}

fn add_app(
    config: &Config,
    name: &str,
    permissions: Permissions,
    out: &Path,
) -> anyhow::Result<()> {
    offst_cli::apps::check_name(name).map_err(anyhow::Error::msg)?;
    let node_identity = config.identity()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ident_path = out.join(format!("{name}.ident"));
    if ident_path.exists() {
        bail!(
            "{} exists already: choose another name or directory",
            ident_path.display()
        );
    }
    let app_identity = Identity::generate(&mut OsRng);
    config
        .apps()
        .register(name, app_identity.public_key(), permissions)
        .map_err(anyhow::Error::msg)?;
    if let Err(err) = keyfile::write(&ident_path, &app_identity, KeyProtection::Plain, &mut OsRng) {
        let _ = config.apps().remove(name);
        return Err(err).with_context(|| format!("writing {}", ident_path.display()));
    }
    let ticket_path = out.join(TICKET_FILE);
    // The running node's ticket has the address it really listens on.
    let running = NodeTicket::read(&config.data_dir.join(TICKET_FILE))
        .ok()
        .filter(|ticket| ticket.public_key == node_identity.public_key())
        .filter(|_| config.app_address.is_none());
    let ticket = match running {
        Some(ticket) => Some(ticket),
        // Port 0: the port is chosen when the node starts, the ticket is written then.
        None if config.app_address.is_none() && config.app_listen.port() == 0 => None,
        None => Some(config.ticket(&node_identity, None)?),
    };
    match ticket {
        Some(ticket) => ticket.write(&ticket_path).map_err(anyhow::Error::msg)?,
        None => println!(
            "the app port is chosen when the node starts: use {} once it runs",
            config.data_dir.join(TICKET_FILE).display()
        ),
    }
    println!("registered the app {name:?} with permissions {permissions}");
    println!("app identity: {}", ident_path.display());
    println!("node ticket:  {}", ticket_path.display());
    println!(
        "use: stctrl -I {} -T {} info friends",
        ident_path.display(),
        ticket_path.display()
    );
    Ok(())
}

fn run_node(config: &Config) -> anyhow::Result<()> {
    let mut node_config = NodeConfig::new(&config.data_dir, config.relays.clone());
    node_config.index_servers = config.index_servers.clone();
    node_config.prefer_stored_network = true;
    let node = Node::open(node_config)
        .with_context(|| format!("opening the node in {}", config.data_dir.display()))?;
    node.start().context("starting the node")?;
    let registry = Arc::new(config.apps());
    let server = node
        .serve_apps(
            AppServerConfig {
                listen: config.app_listen,
                max_apps: config.max_apps,
                ..AppServerConfig::default()
            },
            registry,
        )
        .context("starting the app server")?;
    let identity_key = node.public_key();
    let ticket = NodeTicket {
        public_key: identity_key,
        address: NetAddress::new(
            &config
                .app_address
                .clone()
                .unwrap_or_else(|| server.local_addr().to_string()),
        )
        .context("the app address")?,
    };
    ticket
        .write(&config.data_dir.join(TICKET_FILE))
        .map_err(anyhow::Error::msg)?;
    log::info!(
        "node {identity_key} running; data in {}",
        config.data_dir.display()
    );
    println!("node: {identity_key}");
    println!("ticket: {ticket}");
    match node.friend_card("stnode") {
        Ok(card) => println!("card: {}", card.to_uri()),
        Err(err) => log::warn!("no friend card: {err} (--relay, or `stctrl config add-relay`)"),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    runtime.block_on(async {
        let stop = offst_net::shutdown::stop_signal().context("installing signal handlers")?;
        println!("ready");
        stop.await;
        anyhow::Ok(())
    })?;
    log::info!("stopping");
    node.stop_apps(server);
    node.stop().context("stopping the node")?;
    drop(node);
    log::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_example_configuration_parses() {
        let text = include_str!("../../stnode.toml");
        let file: super::FileConfig = toml::from_str(text).unwrap();
        assert_eq!(file.app_listen, Some("127.0.0.1:7600".parse().unwrap()));
    }
}
