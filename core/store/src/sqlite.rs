//! The SQLite store: one database file per node in its data directory, WAL journal with
//! `synchronous=FULL` (a committed transition survives power loss), foreign keys on, one
//! writer (an exclusive lock file held while open), each commit one `BEGIN IMMEDIATE`
//! transaction.

use std::fs::{self, File, TryLockError};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::StoreError;
use crate::schema::{APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION};

/// The database file inside a node's data directory.
pub const DATABASE_FILE: &str = "node.sqlite";
/// The lock file inside a node's data directory; held exclusively while the store is open.
pub const LOCK_FILE: &str = "node.lock";
/// How long a statement waits for a lock held by a reader (backups) before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// An open node database. Dropping it closes the database and releases the directory lock.
pub struct SqliteStore {
    pub(crate) conn: Connection,
    path: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (or creates) the node database in `dir`, taking the directory lock, checking that
    /// the file is an Offst database of a version this build reads, and migrating it to the
    /// current schema. On any error nothing in the directory is overwritten.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly(dir.to_owned())
            }
            _ => StoreError::Io {
                path: dir.to_owned(),
                source,
            },
        })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                    StoreError::ReadOnly(dir.to_owned())
                }
                _ => io(&lock_path)(source),
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.to_owned())),
            Err(TryLockError::Error(source)) => return Err(io(&lock_path)(source)),
        }
        let path = dir.join(DATABASE_FILE);
        check_header(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|err| StoreError::from_sqlite(&path, err))?;
        let mut store = SqliteStore {
            conn,
            path,
            _lock: lock,
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |err| StoreError::from_sqlite(&self.path, err)
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(self.sqlite_err())?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(self.sqlite_err())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::ReadOnly(self.path.clone()));
        }
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(self.sqlite_err())?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let (application_id, version, tables): (i32, i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id),
                        (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_schema)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .map_err(self.sqlite_err())?;
        let fresh = application_id == 0 && version == 0 && tables == 0;
        if !fresh && application_id != APPLICATION_ID {
            return Err(StoreError::Foreign(self.path.clone()));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let next = index as i64 + 1;
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|err| StoreError::from_sqlite(&self.path, err))?;
            tx.execute_batch(migration.sql)
                .map_err(|err| StoreError::from_sqlite(&self.path, err))?;
            if let Some(move_data) = migration.data {
                move_data(&tx)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .and_then(|()| tx.pragma_update(None, "user_version", next))
                .and_then(|()| tx.commit())
                .map_err(|err| StoreError::from_sqlite(&self.path, err))?;
            log::info!("database {} migrated to schema {next}", self.path.display());
        }
        Ok(())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(self.sqlite_err())
    }

    /// Runs `PRAGMA integrity_check`; `Ok` when SQLite reports "ok".
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(self.sqlite_err())?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: result,
            })
        }
    }

    /// Reads one pragma's value as text (for checks and diagnostics).
    pub fn pragma(&self, name: &str) -> Result<String, StoreError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(StoreError::InvalidData(format!(
                "not a pragma name: {name:?}"
            )));
        }
        self.conn
            .query_row(&format!("SELECT * FROM pragma_{name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|value| match value {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .map_err(self.sqlite_err())
    }

    /// Writes a consistent copy of the database to `target` with SQLite's online backup API,
    /// while the store stays open. `target` must not exist.
    pub fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        if target.exists() {
            return Err(StoreError::Io {
                path: target.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "refusing to overwrite an existing file",
                ),
            });
        }
        let mut destination =
            Connection::open(target).map_err(|err| StoreError::from_sqlite(target, err))?;
        {
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut destination)
                .map_err(|err| StoreError::from_sqlite(target, err))?;
            backup
                .run_to_completion(256, Duration::from_millis(0), None)
                .map_err(|err| StoreError::from_sqlite(target, err))?;
        }
        destination
            .pragma_update(None, "journal_mode", "DELETE")
            .map_err(|err| StoreError::from_sqlite(target, err))?;
        Ok(())
    }

    /// Restores a node's data directory from a backup file made by [`SqliteStore::backup_to`]:
    /// checks the backup (an Offst database, a schema this build reads, integrity), then
    /// installs it as the directory's database. Refuses when the directory already has a
    /// database, so nothing is overwritten.
    pub fn restore(backup: &Path, dir: &Path) -> Result<SqliteStore, StoreError> {
        let target = dir.join(DATABASE_FILE);
        if target.exists() {
            return Err(StoreError::Io {
                path: target,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the data directory already has a database; restore into an empty one",
                ),
            });
        }
        check_header(backup)?;
        {
            let source = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|err| StoreError::from_sqlite(backup, err))?;
            let (application_id, version, check): (i32, i64, String) = source
                .query_row(
                    "SELECT (SELECT application_id FROM pragma_application_id),
                            (SELECT user_version FROM pragma_user_version),
                            (SELECT integrity_check FROM pragma_integrity_check)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .map_err(|err| StoreError::from_sqlite(backup, err))?;
            if application_id != APPLICATION_ID {
                return Err(StoreError::Foreign(backup.to_owned()));
            }
            if version > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            if check != "ok" {
                return Err(StoreError::Corrupt {
                    path: backup.to_owned(),
                    reason: check,
                });
            }
        }
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let partial = dir.join(format!("{DATABASE_FILE}.restoring"));
        fs::copy(backup, &partial).map_err(|source| StoreError::Io {
            path: partial.clone(),
            source,
        })?;
        File::open(&partial)
            .and_then(|file| file.sync_all())
            .and_then(|()| fs::rename(&partial, &target))
            .map_err(|source| StoreError::Io {
                path: target.clone(),
                source,
            })?;
        SqliteStore::open(dir)
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`: takes the write lock up front, so a
    /// transition never fails half-way for lack of it).
    pub(crate) fn begin(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(move |err| StoreError::from_sqlite(&path, err))
    }
}

/// Refuses a file that exists but is not an SQLite database, before SQLite touches it.
fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    if read == 0 {
        return Ok(()); // an empty file: SQLite treats it as a new database
    }
    if read < header.len() || &header != SQLITE_HEADER {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: "not an SQLite database".into(),
        });
    }
    Ok(())
}
