//! The SQL schema and its migrations. `PRAGMA user_version` holds the schema version; each
//! migration moves it up by one inside one transaction. A database with a newer version is
//! refused (`StoreError::NewerSchema`), never "upgraded down".
//!
//! Amounts are stored as 16-byte big-endian BLOBs (`u128`/`i128` two's complement): SQLite has
//! no 128-bit integers, and text would invite locale and parsing bugs.

/// Marks a database as Offst's (`PRAGMA application_id`, "OFST").
pub const APPLICATION_ID: i32 = 0x4f46_5354;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migration `i` moves the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: identity and settings, friends, channels, balances, queued operations, events.
    r#"
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) STRICT;

    CREATE TABLE friends (
        public_key   BLOB PRIMARY KEY NOT NULL CHECK (length(public_key) = 32),
        name         TEXT NOT NULL,
        enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        relays       BLOB NOT NULL,
        previous_key BLOB CHECK (previous_key IS NULL OR length(previous_key) = 32),
        added_at     INTEGER NOT NULL DEFAULT (unixepoch())
    ) STRICT;

    CREATE TABLE currency_configs (
        friend          BLOB NOT NULL REFERENCES friends (public_key) ON DELETE CASCADE,
        currency        TEXT NOT NULL,
        remote_max_debt BLOB NOT NULL CHECK (length(remote_max_debt) = 16),
        open            INTEGER NOT NULL CHECK (open IN (0, 1)),
        PRIMARY KEY (friend, currency)
    ) STRICT;

    -- The token channel with one friend: its status and the last signed tokens.
    CREATE TABLE channels (
        friend  BLOB PRIMARY KEY NOT NULL REFERENCES friends (public_key) ON DELETE CASCADE,
        status  TEXT NOT NULL CHECK (status IN ('consistent', 'inconsistent')),
        state   BLOB NOT NULL
    ) STRICT;

    -- The signed balance sheet per currency (a projection of channels.state, for queries).
    CREATE TABLE channel_currencies (
        friend              BLOB NOT NULL REFERENCES friends (public_key) ON DELETE CASCADE,
        currency            TEXT NOT NULL,
        balance             BLOB NOT NULL CHECK (length(balance) = 16),
        local_max_debt      BLOB NOT NULL CHECK (length(local_max_debt) = 16),
        remote_max_debt     BLOB NOT NULL CHECK (length(remote_max_debt) = 16),
        local_pending_debt  BLOB NOT NULL CHECK (length(local_pending_debt) = 16),
        remote_pending_debt BLOB NOT NULL CHECK (length(remote_pending_debt) = 16),
        PRIMARY KEY (friend, currency)
    ) STRICT;

    -- Operations the user asked for, waiting for the token.
    CREATE TABLE queued_operations (
        friend    BLOB NOT NULL REFERENCES friends (public_key) ON DELETE CASCADE,
        position  INTEGER NOT NULL,
        operation BLOB NOT NULL,
        PRIMARY KEY (friend, position)
    ) STRICT;

    -- Append-only history of what happened (payments, friend and channel events), and the
    -- queue of events not yet handled by the app.
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        timestamp_ms INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        friend       BLOB CHECK (friend IS NULL OR length(friend) = 32),
        status       TEXT,
        payload      TEXT NOT NULL,
        handled      INTEGER NOT NULL DEFAULT 0 CHECK (handled IN (0, 1))
    ) STRICT;
    CREATE INDEX events_by_time ON events (timestamp_ms);
    CREATE INDEX events_by_friend ON events (friend, timestamp_ms);
    CREATE INDEX events_by_status ON events (status, timestamp_ms);
    CREATE INDEX events_unhandled ON events (id) WHERE handled = 0;
    "#,
];
