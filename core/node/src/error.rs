//! The node's error type: one flat enum whose messages say what to do.

use offst_credit::CommandError;
use offst_crypto::keyfile::KeyFileError;
use offst_store::StoreError;

/// Why a node operation failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Another process (or `Node`) has the data directory open.
    #[error("the data directory is in use by another Offst node; stop it first")]
    DataDirInUse,
    /// The identity key file could not be read or created.
    #[error("identity key: {0} (check the key secret, or restore the key file the app kept)")]
    Key(#[from] KeyFileError),
    /// The database could not be opened or written.
    #[error("storage: {0} (check the data directory's free space and permissions)")]
    Store(StoreError),
    /// The credit layer refused the command (unknown friend, over a limit, …).
    #[error("{0}")]
    Command(#[from] CommandError),
    /// The input is invalid (a name, currency or amount).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The node is stopped or shutting down.
    #[error("the node is not running; call start() first")]
    NotRunning,
    /// No index server is configured, or none could answer the route query.
    #[error(
        "routing: {0} (check the index servers and that the node is started; a route needs friends with enough credit)"
    )]
    Routing(String),
    /// An internal task failed; the node must be reopened.
    #[error("internal error: {0}; close and reopen the node, and report it if it happens again")]
    Internal(String),
}

impl From<StoreError> for NodeError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Locked(_) => NodeError::DataDirInUse,
            other => NodeError::Store(other),
        }
    }
}
