//! The app side of the app protocol: connect to a node's app server with the app's identity,
//! send requests, and follow the node's reports and events (what `stctrl` uses).

use std::collections::VecDeque;
use std::time::Duration;

use offst_crypto::Identity;
use offst_net::{secure, NetError, SecureConfig, SecureReceiver, SecureSender};
use offst_proto::app::{
    AppError, AppErrorKind, AppRequest, AppResult, AppToNode, NodeEvent, NodeReport, NodeToApp,
    Welcome, MAX_APP_MESSAGE_LEN,
};
use offst_proto::{DecodeError, PublicKey, WireMessage};
use rand_core::OsRng;

/// Events kept while the app waits for a response; older ones are dropped beyond this.
const MAX_BUFFERED_EVENTS: usize = 1024;

/// Why talking to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum AppClientError {
    /// No TCP connection: the node is not running, or the address is wrong.
    #[error("cannot connect to the node at {address}: {source} (is stnode running? check the node ticket)")]
    Connect {
        /// Where we dialled.
        address: String,
        /// Why it failed.
        source: NetError,
    },
    /// The secure handshake failed (a wrong node key in the ticket, a node that is not an
    /// Offst node).
    #[error("secure handshake with the node at {address} failed: {source}")]
    Handshake {
        /// Where we dialled.
        address: String,
        /// Why it failed.
        source: NetError,
    },
    /// The node refused the app (an unregistered key).
    #[error("the node refused this app: {0}")]
    Refused(AppError),
    /// The node answered a request with an error.
    #[error("{0}")]
    Node(AppError),
    /// The connection broke.
    #[error("connection to the node lost: {0}")]
    Connection(NetError),
    /// The node closed the connection.
    #[error("the node closed the connection")]
    Closed,
    /// The node sent something this app does not understand.
    #[error("the node sent an invalid message: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("the node did not answer within {0:?}")]
    Timeout(Duration),
}

impl AppClientError {
    /// The node's error kind, when the node answered with an error.
    pub fn app_error_kind(&self) -> Option<AppErrorKind> {
        match self {
            AppClientError::Node(err) | AppClientError::Refused(err) => Some(err.kind),
            _ => None,
        }
    }
}

impl From<DecodeError> for AppClientError {
    fn from(err: DecodeError) -> Self {
        AppClientError::Protocol(err.to_string())
    }
}

/// Something the node pushed: a new report or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppUpdate {
    /// The node's full report changed.
    Report(Box<NodeReport>),
    /// A history event was committed.
    Event(NodeEvent),
}

/// A connection to a node's app server.
pub struct AppClient {
    receiver: SecureReceiver,
    sender: SecureSender,
    welcome: Welcome,
    report: Option<NodeReport>,
    updates: VecDeque<AppUpdate>,
    next_request_id: u64,
    timeout: Duration,
}

impl std::fmt::Debug for AppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppClient")
            .field("node", &self.welcome.node_public_key)
            .field("permissions", &self.welcome.permissions)
            .finish_non_exhaustive()
    }
}

impl AppClient {
    /// Connects to the node at `address` (`host:port`), checks that it is `node` (the key in
    /// the node ticket), authenticates as `identity` and reads the node's welcome. Every
    /// later step waits at most `timeout`.
    pub async fn connect(
        address: &str,
        node: PublicKey,
        identity: &Identity,
        timeout: Duration,
    ) -> Result<AppClient, AppClientError> {
        let tcp = offst_net::tcp::dial(address, timeout)
            .await
            .map_err(|source| AppClientError::Connect {
                address: address.to_owned(),
                source,
            })?;
        let config = SecureConfig {
            handshake_timeout: timeout,
            ..SecureConfig::default()
        };
        let mut stream = secure::connect(tcp, identity, Some(node), &config, &mut OsRng)
            .await
            .map_err(|source| AppClientError::Handshake {
                address: address.to_owned(),
                source,
            })?;
        stream.limit_message_len(MAX_APP_MESSAGE_LEN);
        let (mut receiver, sender) = stream.split();
        let first = recv_within(&mut receiver, timeout).await?;
        let welcome = match first {
            NodeToApp::Welcome(welcome) => welcome,
            NodeToApp::Refused(err) => return Err(AppClientError::Refused(err)),
            other => {
                return Err(AppClientError::Protocol(format!(
                    "expected the welcome, got {other:?}"
                )))
            }
        };
        Ok(AppClient {
            receiver,
            sender,
            welcome,
            report: None,
            updates: VecDeque::new(),
            next_request_id: 1,
            timeout,
        })
    }

    /// What the node said on connecting: its key and this app's permissions.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends `request` and waits for its response; reports and events arriving meanwhile
    /// are kept (see [`AppClient::next_update`]). An error response is
    /// [`AppClientError::Node`].
    pub async fn request(&mut self, request: AppRequest) -> Result<AppResult, AppClientError> {
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.sender
            .send(
                AppToNode {
                    request_id,
                    request,
                }
                .encode(),
            )
            .await
            .map_err(AppClientError::Connection)?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match recv_within(&mut self.receiver, left).await {
                Ok(NodeToApp::Response {
                    request_id: id,
                    result,
                }) if id == request_id => {
                    return match result {
                        AppResult::Error(err) => Err(AppClientError::Node(err)),
                        result => Ok(result),
                    };
                }
                Ok(NodeToApp::Response { request_id: id, .. }) => {
                    return Err(AppClientError::Protocol(format!(
                        "a response to request {id}, expected {request_id}"
                    )));
                }
                Ok(message) => self.keep(message)?,
                Err(AppClientError::Timeout(_)) => {
                    return Err(AppClientError::Timeout(self.timeout))
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The node's full report: the last one pushed, or (when none came yet) one asked for.
    /// Needs the `info` permission.
    pub async fn report(&mut self) -> Result<NodeReport, AppClientError> {
        if let Some(report) = &self.report {
            return Ok(report.clone());
        }
        match self.request(AppRequest::Report).await? {
            AppResult::Report(report) => {
                self.report = Some((*report).clone());
                Ok(*report)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The next report or event the node pushes, waiting at most `wait` (`None` then).
    pub async fn next_update(
        &mut self,
        wait: Duration,
    ) -> Result<Option<AppUpdate>, AppClientError> {
        if let Some(update) = self.updates.pop_front() {
            return Ok(Some(update));
        }
        match recv_within(&mut self.receiver, wait).await {
            Ok(message) => {
                self.keep(message)?;
                Ok(self.updates.pop_front())
            }
            Err(AppClientError::Timeout(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn keep(&mut self, message: NodeToApp) -> Result<(), AppClientError> {
        let update = match message {
            NodeToApp::Report(report) => {
                self.report = Some((*report).clone());
                AppUpdate::Report(report)
            }
            NodeToApp::Event(event) => AppUpdate::Event(event),
            NodeToApp::Refused(err) => return Err(AppClientError::Refused(err)),
            other => {
                return Err(AppClientError::Protocol(format!(
                    "unexpected message {other:?}"
                )))
            }
        };
        if self.updates.len() == MAX_BUFFERED_EVENTS {
            self.updates.pop_front();
        }
        self.updates.push_back(update);
        Ok(())
    }

    /// Closes the connection (after the queued requests are written).
    pub async fn close(self) {
        let AppClient {
            receiver, sender, ..
        } = self;
        drop(sender);
        drop(receiver);
    }
}

/// The error for a response of the wrong kind.
pub fn unexpected(result: &AppResult) -> AppClientError {
    AppClientError::Protocol(format!("unexpected response {result:?}"))
}

async fn recv_within(
    stream: &mut SecureReceiver,
    wait: Duration,
) -> Result<NodeToApp, AppClientError> {
    match tokio::time::timeout(wait, stream.recv()).await {
        Err(_) => Err(AppClientError::Timeout(wait)),
        Ok(Err(err)) => Err(AppClientError::Connection(err)),
        Ok(Ok(None)) => Err(AppClientError::Closed),
        Ok(Ok(Some(bytes))) => Ok(NodeToApp::decode(&bytes)?),
    }
}
