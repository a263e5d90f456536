//! `stctrl`: control an Offst node (`stnode`) as an app, from the terminal or a script.
//!
//! The app authenticates with its own identity (`-I`, written by `stnode app add`) and
//! reaches the node through its ticket (`-T`). Every command prints a human answer, or one
//! JSON object with `--json`, and exits with a code scripts can rely on (`stctrl --help`).

mod commands;
mod render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use offst_cli::exit;
use offst_cli::ticket::NodeTicket;
use offst_crypto::keyfile::{self, KeyProtection};
use offst_node::app_client::{AppClient, AppClientError};
use offst_proto::app::AppErrorKind;
use serde::Deserialize;

/// Control an Offst node: friends, limits, invoices, payments, receipts.
#[derive(Debug, Parser)]
#[command(name = "stctrl", version, after_help = offst_cli::exit::HELP)]
struct Cli {
    /// The app's identity file (written by `stnode app add`).
    #[arg(long, short = 'I', global = true, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// The node ticket (written by `stnode`): the node's key and app address.
    #[arg(long, short = 'T', global = true, value_name = "FILE")]
    ticket: Option<PathBuf>,
    /// A TOML file with `identity` and `ticket` paths (relative to the file).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Longest wait for the node to answer one request, in seconds.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: commands::Command,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    identity: Option<PathBuf>,
    ticket: Option<PathBuf>,
}

/// A failure with its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// See `offst_cli::exit`.
    pub(crate) code: u8,
    /// For people.
    pub(crate) message: String,
}

impl Failure {
    /// A failure with `code`.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Bad input from the user: nothing was sent.
    pub(crate) fn input(message: impl Into<String>) -> Failure {
        Failure::new(exit::BAD_INPUT, message)
    }
}

impl From<AppClientError> for Failure {
    fn from(err: AppClientError) -> Failure {
        let code = match &err {
            AppClientError::Connect { .. } | AppClientError::Handshake { .. } => {
                exit::NODE_UNREACHABLE
            }
            AppClientError::Refused(_) => exit::NOT_PERMITTED,
            AppClientError::Node(err) => match err.kind {
                AppErrorKind::PermissionDenied | AppErrorKind::NotRegistered => exit::NOT_PERMITTED,
                AppErrorKind::Internal => exit::FAILURE,
                _ => exit::REFUSED,
            },
            _ => exit::FAILURE,
        };
        Failure::new(code, err.to_string())
    }
}

/// What a command produced: text for people, JSON for scripts.
pub(crate) struct Outcome {
    /// Printed without `--json`.
    pub(crate) text: String,
    /// Printed with `--json`.
    pub(crate) json: serde_json::Value,
    /// The exit code (0 unless the command reports a failed outcome, e.g. a cancelled payment).
    pub(crate) code: u8,
}

/// How to reach the node, from the flags or the config file.
pub(crate) struct Connection {
    identity: Option<PathBuf>,
    ticket: Option<PathBuf>,
    timeout: Duration,
}

impl Connection {
    /// Connects as the app.
    pub(crate) async fn connect(&self) -> Result<AppClient, Failure> {
        let identity_path = self.identity.as_ref().ok_or_else(|| {
            Failure::input("this command talks to the node: give the app identity with -I FILE")
        })?;
        let ticket_path = self.ticket.as_ref().ok_or_else(|| {
            Failure::input("this command talks to the node: give the node ticket with -T FILE")
        })?;
        let identity = keyfile::read(identity_path, KeyProtection::Plain).map_err(|err| {
            Failure::input(format!(
                "the app identity {}: {err}",
                identity_path.display()
            ))
        })?;
        let ticket = NodeTicket::read(ticket_path).map_err(Failure::input)?;
        Ok(AppClient::connect(
            ticket.address.as_str(),
            ticket.public_key,
            &identity,
            self.timeout,
        )
        .await?)
    }

    /// The longest wait for one answer.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn resolve(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

fn connection(cli: &Cli) -> Result<Connection, Failure> {
    let mut identity = cli.identity.clone();
    let mut ticket = cli.ticket.clone();
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Failure::input(format!("cannot read the config {}: {err}", path.display()))
        })?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|err| Failure::input(format!("the config {}: {err}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        identity = identity.or(file.identity.map(|p| resolve(base, p)));
        ticket = ticket.or(file.ticket.map(|p| resolve(base, p)));
    }
    Ok(Connection {
        identity,
        ticket,
        timeout: Duration::from_secs(cli.timeout.max(1)),
    })
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let cli = Cli::parse();
    let json = cli.json;
    let result = connection(&cli).and_then(|connection| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| Failure::new(exit::FAILURE, format!("starting the runtime: {err}")))?;
        runtime.block_on(commands::run(cli.command, &connection))
    });
    match result {
        Ok(outcome) => {
            if json {
                println!("{}", outcome.json);
            } else if !outcome.text.is_empty() {
                println!("{}", outcome.text.trim_end());
            }
            ExitCode::from(outcome.code)
        }
        Err(failure) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": failure.message, "exit_code": failure.code})
                );
            }
            eprintln!("stctrl: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
