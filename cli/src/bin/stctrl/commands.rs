//! The commands of `stctrl`: `info`, `config`, `seller`, `buyer`, `routes` talk to the node;
//! `verify-receipt` and `qr` work offline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Subcommand;
use offst_cli::exit;
use offst_cli::ticket::{meaningful_line, read_small_text};
use offst_node::app_client::{unexpected, AppClient};
use offst_proto::app::{
    AppRequest, AppResult, FriendReport, HistoryQuery, NodeReport, PaymentState, PaymentStatus,
};
use offst_proto::card::FriendCard;
use offst_proto::index::FeeRate;
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::relay::RelayCard;
use offst_proto::{Credits, Currency, InvoiceId, PaymentId, PublicKey, RelayAddress, Text};
use serde_json::json;

use crate::render::{self, table};
use crate::{Connection, Failure, Outcome};

/// Largest card, invoice or receipt file read.
const MAX_INPUT_FILE_LEN: u64 = 16 * 1024;

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the node's state (needs the info permission).
    #[command(subcommand)]
    Info(Info),
    /// Change the node's friends, limits, rates, relays and index servers (config permission).
    #[command(subcommand)]
    Config(Config),
    /// Create and cancel invoices (sell permission).
    #[command(subcommand)]
    Seller(Seller),
    /// Quote and pay invoices, follow payments (buy permission).
    #[command(subcommand)]
    Buyer(Buyer),
    /// Ask the node's index servers for routes to a node (routes permission).
    Routes {
        /// The destination's public key.
        destination: String,
        /// The currency.
        currency: String,
        /// What the destination should receive.
        amount: String,
        /// Most routes to split over.
        #[arg(long, default_value_t = 1)]
        max_routes: u32,
    },
    /// Check a receipt offline (no node needed): the seller's signature and the revealed
    /// lock; with --invoice, also that it is the receipt of that invoice.
    VerifyReceipt {
        /// The receipt, or a file holding it.
        receipt: String,
        /// The invoice (`offst:I1…`) or a file holding it.
        #[arg(long)]
        invoice: Option<String>,
    },
    /// Draw a text (a friend card, an invoice) as a QR code in the terminal.
    Qr {
        /// The text, or a file holding it.
        text: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Info {
    /// Friends: status, balances, limits and pending debts, per currency.
    Friends,
    /// The relays the node listens on.
    Relays,
    /// The index servers the node uses.
    Index,
    /// The node's payments (sent and received) from its history.
    Payments {
        /// Most entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The node's history of events.
    History {
        /// Most entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only events about this friend (name or key).
        #[arg(long)]
        friend: Option<String>,
    },
    /// The node's friend card, to give to friends (with a QR code).
    Card {
        /// The name the card suggests for this node.
        #[arg(long, default_value = "stnode")]
        name: String,
        /// Print the card without the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// The node: identity, counts, and totals of fees and payments per currency.
    Node,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Config {
    /// Listen on another relay (its card `offst-relay:KEY@host:port`).
    AddRelay { card: String },
    /// Stop listening on a relay (its key or card).
    RemoveRelay { relay: String },
    /// Use another index server (`KEY@host:port`).
    AddIndex { server: String },
    /// Stop using an index server (its key).
    RemoveIndex { server: String },
    /// Add a friend from its card (`offst:F1…` or a file holding it).
    AddFriend {
        card: String,
        /// The name to give it [default: the card's].
        #[arg(long, short = 'n')]
        name: Option<String>,
    },
    /// Remove a friend (only when nothing is owed either way, unless --force).
    RemoveFriend {
        friend: String,
        /// Remove even with open balances (their record is lost).
        #[arg(long)]
        force: bool,
    },
    /// Rename a friend.
    RenameFriend { friend: String, name: String },
    /// Set how much a friend may owe us in a currency (opens the currency if new).
    SetLimit {
        friend: String,
        currency: String,
        amount: String,
    },
    /// Set what we charge for forwarding payments that come from a friend.
    SetRate {
        friend: String,
        currency: String,
        /// Proportional part, parts per million of the forwarded amount.
        #[arg(long, default_value_t = 0)]
        ppm: u32,
        /// Flat part per forwarded payment.
        #[arg(long, default_value = "0")]
        flat: String,
    },
    /// Enable a friend (the node links to it).
    EnableFriend { friend: String },
    /// Disable a friend (the node stops linking to it).
    DisableFriend { friend: String },
    /// Accept payments in a currency with a friend.
    OpenCurrency { friend: String, currency: String },
    /// Refuse new payments in a currency with a friend.
    CloseCurrency { friend: String, currency: String },
    /// Accept the reset terms a friend offers for an inconsistent channel (see `info friends`).
    AcceptReset { friend: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Seller {
    /// Create an invoice and print it (`offst:I1…`) with a QR code.
    CreateInvoice {
        /// The currency.
        #[arg(long)]
        currency: String,
        /// What the buyer pays (fees are on top, paid by the buyer).
        #[arg(long, short = 'a')]
        amount: String,
        /// Text for the buyer.
        #[arg(long, short = 'd', default_value = "")]
        description: String,
        /// Seconds the invoice stays payable.
        #[arg(long, default_value_t = 3600)]
        valid_for: u64,
        /// Also write the invoice to this file.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Print the invoice without the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Cancel an open invoice (the invoice, a file holding it, or its id).
    CancelInvoice { invoice: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Buyer {
    /// What paying an invoice would cost: routes and fees.
    Quote {
        /// The invoice (`offst:I1…`) or a file holding it.
        invoice: String,
    },
    /// Pay an invoice and wait for the receipt.
    Pay {
        /// The invoice (`offst:I1…`) or a file holding it.
        invoice: String,
        /// Most fees to pay [default: what a quote just before paying says].
        #[arg(long)]
        max_fees: Option<String>,
        /// Write the receipt to this file.
        #[arg(long, short = 'r')]
        receipt: Option<PathBuf>,
        /// Longest wait for the payment to end, in seconds (0: return at once).
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// Where a payment stands (its receipt once it succeeded).
    PaymentStatus {
        /// The payment id `pay` printed.
        payment_id: String,
        /// Write the receipt to this file once the payment succeeded.
        #[arg(long, short = 'r')]
        receipt: Option<PathBuf>,
    },
}

/// Runs one command.
pub(crate) async fn run(command: Command, connection: &Connection) -> Result<Outcome, Failure> {
    match command {
        Command::VerifyReceipt { receipt, invoice } => verify_receipt(&receipt, invoice.as_deref()),
        Command::Qr { text } => {
            let text = argument_text(&text)?;
            let drawn = offst_cli::qr::render(&text).map_err(Failure::input)?;
            Ok(done(drawn, json!({ "text": text })))
        }
        Command::Info(info) => {
            let mut client = connection.connect().await?;
            run_info(info, &mut client).await
        }
        Command::Config(config) => {
            let mut client = connection.connect().await?;
            run_config(config, &mut client).await
        }
        Command::Seller(seller) => {
            let mut client = connection.connect().await?;
            run_seller(seller, &mut client).await
        }
        Command::Buyer(buyer) => {
            let mut client = connection.connect().await?;
            run_buyer(buyer, &mut client, connection.timeout()).await
        }
        Command::Routes {
            destination,
            currency,
            amount,
            max_routes,
        } => {
            let mut client = connection.connect().await?;
            let request = AppRequest::Routes {
                destination: parse_key(&destination, "the destination")?,
                currency: parse_currency(&currency)?,
                amount: parse_amount(&amount)?,
                max_routes,
            };
            let AppResult::Routes(routes) = client.request(request).await? else {
                return Err(unexpected_failure());
            };
            let text = routes
                .iter()
                .map(|route| {
                    format!(
                        "{} (amount {}, fees {})",
                        route
                            .nodes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" -> "),
                        route.amount,
                        route.fees
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(done(
                text,
                json!({"routes": routes.iter().map(render::route_json).collect::<Vec<_>>()}),
            ))
        }
    }
}

fn done(text: String, json: serde_json::Value) -> Outcome {
    Outcome {
        text,
        json,
        code: exit::OK,
    }
}

fn unexpected_failure() -> Failure {
    Failure::new(
        exit::FAILURE,
        "the node answered with an unexpected response",
    )
}

async fn report(client: &mut AppClient) -> Result<NodeReport, Failure> {
    Ok(client.report().await?)
}

async fn run_info(info: Info, client: &mut AppClient) -> Result<Outcome, Failure> {
    match info {
        Info::Friends => {
            let report = report(client).await?;
            let rows: Vec<Vec<String>> = report
                .friends
                .iter()
                .map(|friend| {
                    vec![
                        render::status_code(friend.status).to_owned(),
                        friend.name.as_str().to_owned(),
                        render::balance_cell(friend),
                    ]
                })
                .collect();
            let text = if rows.is_empty() {
                "no friends yet (add one with `stctrl config add-friend CARD`)".to_owned()
            } else {
                format!(
                    "{}{}",
                    table(&["st", "name", "balance"], &rows),
                    render::FRIENDS_LEGEND
                )
            };
            Ok(done(
                text,
                json!({"friends": report.friends.iter().map(render::friend_json).collect::<Vec<_>>()}),
            ))
        }
        Info::Relays => {
            let report = report(client).await?;
            let cards: Vec<String> = report
                .relays
                .iter()
                .map(|relay| RelayCard(relay.clone()).to_string())
                .collect();
            let text = if cards.is_empty() {
                "no relays: friends cannot reach this node (stctrl config add-relay CARD)".into()
            } else {
                cards.join("\n")
            };
            Ok(done(text, json!({ "relays": cards })))
        }
        Info::Index => {
            let report = report(client).await?;
            let servers: Vec<String> = report
                .index_servers
                .iter()
                .map(|server| format!("{}@{}", server.public_key, server.address))
                .collect();
            let text = if servers.is_empty() {
                "no index servers: the node cannot find routes (stctrl config add-index KEY@ADDRESS)"
                    .into()
            } else {
                servers.join("\n")
            };
            Ok(done(text, json!({ "index_servers": servers })))
        }
        Info::Payments { limit } => {
            let events = history(client, None, u32::MAX).await?;
            let payments: Vec<_> = events
                .into_iter()
                .filter(|event| {
                    event.kind.starts_with("payment_") || event.kind.starts_with("transfer_")
                })
                .collect();
            let skip = payments.len().saturating_sub(limit as usize);
            let payments = &payments[skip..];
            let rows: Vec<Vec<String>> = payments
                .iter()
                .map(|event| {
                    let payload: serde_json::Value =
                        serde_json::from_str(&event.payload_json).unwrap_or_default();
                    let field = |name: &str| {
                        payload
                            .get(name)
                            .map(|value| value.as_str().map_or(value.to_string(), str::to_owned))
                            .unwrap_or_default()
                    };
                    vec![
                        time_text(event.timestamp_ms),
                        event.kind.clone(),
                        field("currency"),
                        field("amount"),
                        field("fees"),
                        field("payment_id"),
                    ]
                })
                .collect();
            let text = if rows.is_empty() {
                "no payments yet".to_owned()
            } else {
                table(
                    &["time", "what", "currency", "amount", "fees", "payment"],
                    &rows,
                )
            };
            Ok(done(
                text,
                json!({"payments": payments.iter().map(render::event_json).collect::<Vec<_>>()}),
            ))
        }
        Info::History { limit, friend } => {
            let friend = match friend {
                Some(friend) => Some(resolve_friend(client, &friend).await?),
                None => None,
            };
            let events = history(client, friend, limit).await?;
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|event| {
                    vec![
                        event.id.to_string(),
                        time_text(event.timestamp_ms),
                        event.kind.clone(),
                        event.status.clone().unwrap_or_default(),
                        event.payload_json.clone(),
                    ]
                })
                .collect();
            let text = if rows.is_empty() {
                "no events".to_owned()
            } else {
                table(&["id", "time", "kind", "status", "details"], &rows)
            };
            Ok(done(
                text,
                json!({"events": events.iter().map(render::event_json).collect::<Vec<_>>()}),
            ))
        }
        Info::Card { name, no_qr } => {
            let name =
                Text::new(&name).map_err(|err| Failure::input(format!("the name: {err}")))?;
            let AppResult::FriendCard(card) =
                client.request(AppRequest::FriendCard { name }).await?
            else {
                return Err(unexpected_failure());
            };
            let uri = card.to_uri();
            Ok(done(with_qr(&uri, no_qr)?, json!({ "card": uri })))
        }
        Info::Node => {
            let report = report(client).await?;
            let rows: Vec<Vec<String>> = report
                .accounts
                .iter()
                .map(|account| {
                    vec![
                        account.currency.as_str().to_owned(),
                        account.fees_earned.to_string(),
                        account.fees_paid.to_string(),
                        account.received.to_string(),
                        account.sent.to_string(),
                    ]
                })
                .collect();
            let mut text = format!(
                "node {}\n{} friends, {} relays, {} index servers\n",
                report.public_key,
                report.friends.len(),
                report.relays.len(),
                report.index_servers.len()
            );
            if !rows.is_empty() {
                text.push_str(&table(
                    &["currency", "fees earned", "fees paid", "received", "sent"],
                    &rows,
                ));
            }
            Ok(done(
                text,
                json!({
                    "public_key": report.public_key.to_string(),
                    "friends": report.friends.len(),
                    "relays": report.relays.len(),
                    "index_servers": report.index_servers.len(),
                    "accounts": report.accounts.iter().map(render::account_json).collect::<Vec<_>>(),
                }),
            ))
        }
    }
}

/// Events, oldest first; `limit` newest ones when there are more.
async fn history(
    client: &mut AppClient,
    friend: Option<PublicKey>,
    limit: u32,
) -> Result<Vec<offst_proto::app::NodeEvent>, Failure> {
    let mut events = Vec::new();
    let mut after_id = None;
    loop {
        let query = HistoryQuery {
            since_ms: None,
            after_id,
            friend,
            limit: None,
        };
        let AppResult::History(page) = client.request(AppRequest::History(query)).await? else {
            return Err(unexpected_failure());
        };
        let Some(last) = page.last() else { break };
        after_id = Some(last.id);
        events.extend(page);
        // Bounded: at most 100,000 events are read (100 pages).
        if events.len() >= 100_000 {
            break;
        }
    }
    let skip = events.len().saturating_sub(limit as usize);
    Ok(events.split_off(skip))
}

fn time_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn with_qr(text: &str, no_qr: bool) -> Result<String, Failure> {
    if no_qr {
        return Ok(text.to_owned());
    }
    let drawn = offst_cli::qr::render(text).map_err(Failure::input)?;
    Ok(format!("{drawn}\n{text}"))
}

async fn run_config(config: Config, client: &mut AppClient) -> Result<Outcome, Failure> {
    let (request, said) = match config {
        Config::AddRelay { card } => {
            let relay = parse_relay(&card)?;
            let said = format!("the node now also listens on {}", RelayCard(relay.clone()));
            (AppRequest::AddRelay(relay), said)
        }
        Config::RemoveRelay { relay } => {
            let key = match parse_relay(&relay) {
                Ok(relay) => relay.public_key,
                Err(_) => parse_key(&relay, "the relay")?,
            };
            (
                AppRequest::RemoveRelay(key),
                format!("removed the relay {key}"),
            )
        }
        Config::AddIndex { server } => {
            let server = parse_index_server(&server)?;
            let said = format!(
                "the node now also uses the index server {}",
                server.public_key
            );
            (AppRequest::AddIndexServer(server), said)
        }
        Config::RemoveIndex { server } => {
            let key = match parse_index_server(&server) {
                Ok(server) => server.public_key,
                Err(_) => parse_key(&server, "the index server")?,
            };
            (
                AppRequest::RemoveIndexServer(key),
                format!("removed the index server {key}"),
            )
        }
        Config::AddFriend { card, name } => {
            let card = parse_card(&card)?;
            let name = name
                .map(|name| {
                    Text::new(&name).map_err(|err| Failure::input(format!("the name: {err}")))
                })
                .transpose()?;
            let said = format!(
                "added the friend {:?} ({})",
                name.as_ref().unwrap_or(&card.name).as_str(),
                card.public_key
            );
            (AppRequest::AddFriend { card, name }, said)
        }
        Config::RemoveFriend { friend, force } => {
            let key = resolve_friend(client, &friend).await?;
            (
                AppRequest::RemoveFriend { friend: key, force },
                format!("removed the friend {friend}"),
            )
        }
        Config::RenameFriend { friend, name } => {
            let key = resolve_friend(client, &friend).await?;
            let text =
                Text::new(&name).map_err(|err| Failure::input(format!("the name: {err}")))?;
            (
                AppRequest::SetFriendName {
                    friend: key,
                    name: text,
                },
                format!("renamed {friend} to {name}"),
            )
        }
        Config::SetLimit {
            friend,
            currency,
            amount,
        } => {
            let key = resolve_friend(client, &friend).await?;
            let currency = parse_currency(&currency)?;
            let amount = parse_amount_or_zero(&amount)?;
            let said = format!("{friend} may now owe us up to {amount} {currency}");
            (
                AppRequest::SetLimit {
                    friend: key,
                    currency,
                    remote_max_debt: amount,
                },
                said,
            )
        }
        Config::SetRate {
            friend,
            currency,
            ppm,
            flat,
        } => {
            let key = resolve_friend(client, &friend).await?;
            let currency = parse_currency(&currency)?;
            let rate = FeeRate {
                flat: parse_amount_or_zero(&flat)?,
                proportional_ppm: ppm,
            };
            let said = format!(
                "forwarding from {friend} in {currency} now costs {} + {} ppm",
                rate.flat, rate.proportional_ppm
            );
            (
                AppRequest::SetRate {
                    friend: key,
                    currency,
                    rate,
                },
                said,
            )
        }
        Config::EnableFriend { friend } => {
            let key = resolve_friend(client, &friend).await?;
            (AppRequest::EnableFriend(key), format!("enabled {friend}"))
        }
        Config::DisableFriend { friend } => {
            let key = resolve_friend(client, &friend).await?;
            (AppRequest::DisableFriend(key), format!("disabled {friend}"))
        }
        Config::OpenCurrency { friend, currency } => {
            let key = resolve_friend(client, &friend).await?;
            let currency = parse_currency(&currency)?;
            let said = format!("opened {currency} with {friend}");
            (
                AppRequest::OpenCurrency {
                    friend: key,
                    currency,
                },
                said,
            )
        }
        Config::CloseCurrency { friend, currency } => {
            let key = resolve_friend(client, &friend).await?;
            let currency = parse_currency(&currency)?;
            let said = format!("closed {currency} with {friend}");
            (
                AppRequest::CloseCurrency {
                    friend: key,
                    currency,
                },
                said,
            )
        }
        Config::AcceptReset { friend } => {
            let found = find_friend(client, &friend).await?;
            let terms = found.reset_terms.ok_or_else(|| {
                Failure::new(
                    exit::REFUSED,
                    format!("{friend} offers no reset terms (its channel is not inconsistent, or its terms have not arrived)"),
                )
            })?;
            (
                AppRequest::AcceptResetTerms {
                    friend: found.public_key,
                    reset_token: terms.reset_token,
                },
                format!("accepted the reset terms of {friend}"),
            )
        }
    };
    match client.request(request).await? {
        AppResult::Ok => Ok(done(said.clone(), json!({ "ok": true, "done": said }))),
        other => Err(Failure::new(exit::FAILURE, unexpected(&other).to_string())),
    }
}

async fn run_seller(seller: Seller, client: &mut AppClient) -> Result<Outcome, Failure> {
    match seller {
        Seller::CreateInvoice {
            currency,
            amount,
            description,
            valid_for,
            out,
            no_qr,
        } => {
            let request = AppRequest::CreateInvoice {
                currency: parse_currency(&currency)?,
                amount: parse_amount(&amount)?,
                valid_for_ms: valid_for.max(1).saturating_mul(1000),
                description: Text::new(&description)
                    .map_err(|err| Failure::input(format!("the description: {err}")))?,
            };
            let AppResult::Invoice(invoice) = client.request(request).await? else {
                return Err(unexpected_failure());
            };
            let uri = invoice.to_uri();
            if let Some(out) = &out {
                write_file(out, &uri)?;
            }
            Ok(done(
                with_qr(&uri, no_qr)?,
                json!({
                    "invoice": uri,
                    "invoice_id": invoice.invoice_id.to_string(),
                    "currency": invoice.currency.as_str(),
                    "amount": invoice.amount.to_string(),
                    "expires_at_ms": invoice.expires_at,
                }),
            ))
        }
        Seller::CancelInvoice { invoice } => {
            let invoice_id = match parse_invoice(&invoice) {
                Ok(invoice) => invoice.invoice_id,
                Err(failure) => invoice.trim().parse::<InvoiceId>().map_err(|_| failure)?,
            };
            match client
                .request(AppRequest::CancelInvoice(invoice_id))
                .await?
            {
                AppResult::Ok => Ok(done(
                    format!("cancelled the invoice {invoice_id}"),
                    json!({"ok": true, "invoice_id": invoice_id.to_string()}),
                )),
                _ => Err(unexpected_failure()),
            }
        }
    }
}

async fn quote(
    client: &mut AppClient,
    invoice: &Invoice,
) -> Result<offst_proto::app::Quote, Failure> {
    let request = AppRequest::Quote {
        invoice: Box::new(invoice.clone()),
        max_routes: offst_node::MAX_PAYMENT_ROUTES,
    };
    match client.request(request).await? {
        AppResult::Quote(quote) => Ok(quote),
        _ => Err(unexpected_failure()),
    }
}

async fn run_buyer(
    buyer: Buyer,
    client: &mut AppClient,
    timeout: Duration,
) -> Result<Outcome, Failure> {
    match buyer {
        Buyer::Quote { invoice } => {
            let invoice = parse_invoice(&invoice)?;
            let quote = quote(client, &invoice).await?;
            let mut text = format!(
                "paying {} {} to {} costs {} in fees over {} route(s):\n",
                invoice.amount,
                invoice.currency,
                invoice.seller,
                quote.total_fees,
                quote.routes.len()
            );
            for route in &quote.routes {
                text.push_str(&format!(
                    "  {} hops, amount {}, fees {}\n",
                    route.nodes.len().saturating_sub(1),
                    route.amount,
                    route.fees
                ));
            }
            Ok(done(
                text,
                json!({
                    "total_fees": quote.total_fees.to_string(),
                    "routes": quote.routes.iter().map(render::route_json).collect::<Vec<_>>(),
                }),
            ))
        }
        Buyer::Pay {
            invoice,
            max_fees,
            receipt,
            wait,
        } => {
            let invoice = parse_invoice(&invoice)?;
            let max_fees = match max_fees {
                Some(max_fees) => parse_amount_or_zero(&max_fees)?,
                None => quote(client, &invoice).await?.total_fees,
            };
            let request = AppRequest::Pay {
                invoice: Box::new(invoice),
                max_fees,
            };
            let AppResult::Payment(started) = client.request(request).await? else {
                return Err(unexpected_failure());
            };
            let status = wait_payment(client, started, Duration::from_secs(wait), timeout).await?;
            payment_outcome(&status, receipt.as_deref())
        }
        Buyer::PaymentStatus {
            payment_id,
            receipt,
        } => {
            let payment_id: PaymentId = payment_id
                .trim()
                .parse()
                .map_err(|err| Failure::input(format!("the payment id: {err}")))?;
            let AppResult::Payment(status) = client
                .request(AppRequest::PaymentStatus(payment_id))
                .await?
            else {
                return Err(unexpected_failure());
            };
            payment_outcome(&status, receipt.as_deref())
        }
    }
}

/// Follows a payment until it ends or `wait` passes: woken by the node's events when the app
/// may read them, else asking every 20 ms.
async fn wait_payment(
    client: &mut AppClient,
    mut status: PaymentStatus,
    wait: Duration,
    timeout: Duration,
) -> Result<PaymentStatus, Failure> {
    let deadline = Instant::now() + wait;
    let pushes = client.welcome().permissions.info;
    while status.state == PaymentState::InProgress {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let nap = if pushes {
            left.min(timeout)
        } else {
            left.min(Duration::from_millis(20))
        };
        if pushes {
            // Any update may be the payment's end; drain what came, then ask.
            let _ = client.next_update(nap).await?;
        } else {
            tokio::time::sleep(nap).await;
        }
        let AppResult::Payment(now) = client
            .request(AppRequest::PaymentStatus(status.payment_id))
            .await?
        else {
            return Err(unexpected_failure());
        };
        status = now;
    }
    Ok(status)
}

fn payment_outcome(
    status: &PaymentStatus,
    receipt_path: Option<&Path>,
) -> Result<Outcome, Failure> {
    let mut text = format!(
        "payment {}: {} (amount {}, fees {}, {} route(s))",
        status.payment_id,
        render::state_name(status.state),
        status.amount,
        status.fees,
        status.routes
    );
    let code = match status.state {
        PaymentState::Succeeded => exit::OK,
        PaymentState::Cancelled | PaymentState::InProgress => exit::PAYMENT_FAILED,
    };
    if let Some(receipt) = &status.receipt {
        let encoded = render::receipt_text(receipt);
        match receipt_path {
            Some(path) => {
                write_file(path, &encoded)?;
                text.push_str(&format!("\nreceipt written to {}", path.display()));
            }
            None => text.push_str(&format!("\nreceipt: {encoded}")),
        }
    }
    Ok(Outcome {
        text,
        json: render::payment_json(status),
        code,
    })
}

fn verify_receipt(receipt: &str, invoice: Option<&str>) -> Result<Outcome, Failure> {
    use base64::Engine as _;
    let text = argument_text(receipt)?;
    let invalid = |message: String| Failure::new(exit::RECEIPT_INVALID, message);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|err| invalid(format!("not a receipt (expected base64url): {err}")))?;
    let receipt =
        Receipt::from_bytes(&bytes).map_err(|err| invalid(format!("not a receipt: {err}")))?;
    offst_credit::payment::verify_receipt(&receipt)
        .map_err(|err| invalid(format!("the receipt does not verify: {err}")))?;
    if let Some(invoice) = invoice {
        let invoice = parse_invoice(invoice)?;
        if invoice != receipt.invoice {
            return Err(invalid(format!(
                "the receipt is for the invoice {}, not {}",
                receipt.invoice.invoice_id, invoice.invoice_id
            )));
        }
    }
    let paid = &receipt.invoice;
    Ok(done(
        format!(
            "valid receipt: {} {} paid to {} for invoice {}{}",
            paid.amount,
            paid.currency,
            paid.seller,
            paid.invoice_id,
            if paid.description.as_str().is_empty() {
                String::new()
            } else {
                format!(" ({:?})", paid.description.as_str())
            }
        ),
        json!({
            "valid": true,
            "invoice_id": paid.invoice_id.to_string(),
            "seller": paid.seller.to_string(),
            "currency": paid.currency.as_str(),
            "amount": paid.amount.to_string(),
            "description": paid.description.as_str(),
        }),
    ))
}

// ---- input ----

/// The argument itself, or when it names a file, the file's first meaningful line.
fn argument_text(argument: &str) -> Result<String, Failure> {
    let trimmed = argument.trim();
    if trimmed.starts_with("offst:") || !Path::new(trimmed).is_file() {
        return Ok(trimmed.to_owned());
    }
    let text = read_small_text(Path::new(trimmed), MAX_INPUT_FILE_LEN).map_err(Failure::input)?;
    meaningful_line(&text)
        .map(str::to_owned)
        .ok_or_else(|| Failure::input(format!("{trimmed} is empty")))
}

fn parse_card(argument: &str) -> Result<FriendCard, Failure> {
    let text = argument_text(argument)?;
    FriendCard::from_uri(&text).map_err(|err| Failure::input(format!("not a friend card: {err}")))
}

fn parse_invoice(argument: &str) -> Result<Invoice, Failure> {
    let text = argument_text(argument)?;
    Invoice::from_uri(&text).map_err(|err| Failure::input(format!("not an invoice: {err}")))
}

fn parse_relay(text: &str) -> Result<RelayAddress, Failure> {
    text.parse::<RelayCard>().map(|card| card.0).map_err(|err| {
        Failure::input(format!(
            "not a relay card (offst-relay:KEY@host:port): {err}"
        ))
    })
}

fn parse_index_server(text: &str) -> Result<RelayAddress, Failure> {
    let trimmed = text.trim();
    let rest = trimmed.strip_prefix("offst-index:").unwrap_or(trimmed);
    let (key, address) = rest
        .split_once('@')
        .ok_or_else(|| Failure::input("an index server is KEY@host:port"))?;
    Ok(RelayAddress {
        public_key: parse_key(key, "the index server")?,
        address: offst_proto::NetAddress::new(address)
            .map_err(|err| Failure::input(format!("the index server's address: {err}")))?,
    })
}

fn parse_key(text: &str, what: &str) -> Result<PublicKey, Failure> {
    text.trim()
        .parse()
        .map_err(|err| Failure::input(format!("{what}: not a public key: {err}")))
}

fn parse_currency(text: &str) -> Result<Currency, Failure> {
    Currency::new(text).map_err(|err| Failure::input(format!("the currency {text:?}: {err}")))
}

fn parse_amount_or_zero(text: &str) -> Result<Credits, Failure> {
    text.trim()
        .parse::<u128>()
        .map(Credits)
        .map_err(|_| Failure::input(format!("{text:?} is not an amount (a whole number ≥ 0)")))
}

fn parse_amount(text: &str) -> Result<Credits, Failure> {
    let amount = parse_amount_or_zero(text)?;
    if amount == Credits::ZERO {
        return Err(Failure::input("the amount must be more than 0"));
    }
    Ok(amount)
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, format!("{text}\n"))
        .map_err(|err| Failure::new(exit::FAILURE, format!("writing {}: {err}", path.display())))
}

/// The friend named `name` (or with that key), from the node's report.
async fn find_friend(client: &mut AppClient, name: &str) -> Result<FriendReport, Failure> {
    let report = report(client).await.map_err(|failure| {
        if failure.code == exit::NOT_PERMITTED {
            Failure::new(
                exit::NOT_PERMITTED,
                format!("naming friends needs the info permission: give the friend's public key instead ({})", failure.message),
            )
        } else {
            failure
        }
    })?;
    let key = name.trim().parse::<PublicKey>().ok();
    report
        .friends
        .iter()
        .find(|friend| friend.name.as_str() == name || Some(friend.public_key) == key)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = report.friends.iter().map(|f| f.name.as_str()).collect();
            Failure::input(format!(
                "no friend named {name:?} (friends: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
}

/// A friend's key from its name, or the key itself (without the info permission only a key
/// works).
async fn resolve_friend(client: &mut AppClient, name: &str) -> Result<PublicKey, Failure> {
    if !client.welcome().permissions.info {
        return parse_key(
            name,
            "the friend (naming friends needs the info permission)",
        );
    }
    Ok(find_friend(client, name).await?.public_key)
}
