//! The store's error type.

use std::path::PathBuf;

/// Why the store cannot open, read or commit. Every error leaves the database as it was: a
/// failed commit is rolled back, a failed open writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another `SqliteStore` in this one) has the data directory open.
    #[error("data directory {0} is in use by another Offst process; stop it first")]
    Locked(PathBuf),
    /// The data directory or a file in it could not be created, opened or written.
    #[error("cannot use data directory {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an SQLite database, or is damaged.
    #[error("{path} is not a usable Offst database ({reason}); restore it from a backup")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite or our checks said.
        reason: String,
    },
    /// An SQLite database, but not one of Offst's (no or a foreign application id).
    #[error("{0} is an SQLite database of another program, not an Offst node database")]
    Foreign(PathBuf),
    /// The database was written by a newer Offst; opening it could lose data.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         upgrade Offst to open it"
    )]
    NewerSchema {
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The disk is full; nothing of the failed transaction was written.
    #[error("disk full: the change was not saved; free space and retry")]
    DiskFull,
    /// The database or its directory is read-only.
    #[error("{0} is read-only; Offst needs to write its database")]
    ReadOnly(PathBuf),
    /// A stored value does not decode: the database was modified outside Offst or is damaged.
    #[error("stored data is invalid ({0}); the database was modified outside Offst or is damaged")]
    InvalidData(String),
    /// Another SQLite error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Classifies an SQLite error met while using `path`.
    pub(crate) fn from_sqlite(path: &std::path::Path, err: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::ReadOnly) | Some(ErrorCode::CannotOpen) if is_read_only(path) => {
                StoreError::ReadOnly(path.to_owned())
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(path.to_owned()),
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path: path.to_owned(),
                    reason: err.to_string(),
                }
            }
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                StoreError::Locked(path.to_owned())
            }
            _ => StoreError::Sqlite(err),
        }
    }
}

fn is_read_only(path: &std::path::Path) -> bool {
    let dir = path.parent().unwrap_or(path);
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
}
