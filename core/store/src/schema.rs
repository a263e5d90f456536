//! The SQL schema and its migrations. `PRAGMA user_version` holds the schema version; each
//! migration moves it up by one inside one transaction. A database with a newer version is
//! refused (`StoreError::NewerSchema`), never "upgraded down".
//!
//! Amounts are stored as 16-byte big-endian BLOBs (`u128`/`i128` two's complement): SQLite has
//! no 128-bit integers, and text would invite locale and parsing bugs.

/// Marks a database as Offst's (`PRAGMA application_id`, "OFST").
pub const APPLICATION_ID: i32 = 0x4f46_5354;

use rusqlite::Transaction;

use crate::StoreError;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Moves data a migration's SQL cannot, inside the migration's transaction.
pub type DataMigration = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// One step of the schema: SQL, then (optionally) Rust that moves data the SQL cannot.
pub struct Migration {
    /// Statements run in the migration's transaction.
    pub sql: &'static str,
    /// Runs after `sql`, in the same transaction.
    pub data: Option<DataMigration>,
}

/// Migration `i` moves the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: VERSION_1,
        data: None,
    },
    Migration {
        sql: VERSION_2,
        data: Some(crate::ledger::move_payment_records_out_of_settings),
    },
];

/// 1: identity and settings, friends, channels, balances, queued operations, events.
const VERSION_1: &str = r#"
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
    "#;

/// 2: payments get tables of their own (version 1 kept them as rows of `settings`), with the
/// columns apps list them by.
const VERSION_2: &str = r#"
    -- The seller's invoices. `record` is the whole record (signed invoice, secret, requests).
    CREATE TABLE invoices (
        invoice_id  BLOB PRIMARY KEY NOT NULL CHECK (length(invoice_id) = 32),
        status      TEXT NOT NULL CHECK (status IN ('open', 'paid', 'cancelled')),
        currency    TEXT NOT NULL,
        amount      BLOB NOT NULL CHECK (length(amount) = 16),
        created_at  INTEGER NOT NULL,
        finished_at INTEGER,
        record      BLOB NOT NULL
    ) STRICT;
    CREATE INDEX invoices_by_time ON invoices (created_at);
    CREATE INDEX invoices_by_status ON invoices (status, created_at);

    -- The buyer's payments. `record` holds the routes and, once paid, the receipt's secret.
    CREATE TABLE payments (
        payment_id  BLOB PRIMARY KEY NOT NULL CHECK (length(payment_id) = 16),
        invoice_id  BLOB NOT NULL CHECK (length(invoice_id) = 32),
        seller      BLOB NOT NULL CHECK (length(seller) = 32),
        status      TEXT NOT NULL CHECK (status IN ('in_progress', 'succeeded', 'cancelled')),
        currency    TEXT NOT NULL,
        amount      BLOB NOT NULL CHECK (length(amount) = 16),
        fees        BLOB NOT NULL CHECK (length(fees) = 16),
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        record      BLOB NOT NULL
    ) STRICT;
    CREATE INDEX payments_by_time ON payments (started_at);
    CREATE INDEX payments_by_status ON payments (status, started_at);
    CREATE INDEX payments_by_seller ON payments (seller, started_at);
    CREATE INDEX payments_by_invoice ON payments (invoice_id);

    -- Requests carried as a mediator (pending requests themselves live in the channel state).
    CREATE TABLE forwards (
        request_id BLOB PRIMARY KEY NOT NULL CHECK (length(request_id) = 16),
        upstream   BLOB NOT NULL CHECK (length(upstream) = 32),
        downstream BLOB NOT NULL CHECK (length(downstream) = 32),
        record     BLOB NOT NULL
    ) STRICT;

    -- What this node charges for requests arriving from a friend.
    CREATE TABLE fee_rates (
        friend   BLOB NOT NULL CHECK (length(friend) = 32),
        currency TEXT NOT NULL,
        rate     BLOB NOT NULL,
        PRIMARY KEY (friend, currency)
    ) STRICT;

    -- Totals per currency: fees earned and paid, amounts received and sent.
    CREATE TABLE accounts (
        currency TEXT PRIMARY KEY NOT NULL,
        record   BLOB NOT NULL
    ) STRICT;
    "#;
