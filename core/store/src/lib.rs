//! Offst node storage.
//!
//! [`Store`] is what the node runtime needs from storage, shaped by `offst_credit`: commit the
//! changes of one step atomically (before any message of that step is sent — persist before
//! send), and load the state back at start-up. [`SqliteStore`] keeps it in one SQLite file per
//! node (WAL, `synchronous=FULL`, foreign keys, migrations, online backup); [`MemoryStore`]
//! keeps it in memory for tests and simulations. Both pass the same conformance suite
//! (`tests/conformance.rs`).
//!
//! This crate owns the database schema ([`schema`]) and never talks to the network.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod codec;
pub mod error;
mod events;
pub mod export;
mod ledger;
mod memory;
pub mod schema;
mod sqlite;

pub use error::StoreError;
pub use events::{EventQuery, NewEvent, StoredEvent, MAX_EVENT_KIND_LEN, MAX_EVENT_QUERY_LIMIT};
pub use memory::MemoryStore;
pub use sqlite::{SqliteStore, BUSY_TIMEOUT, DATABASE_FILE, LOCK_FILE};

use offst_credit::{Change, NodeState};

/// Most settings entries a batch may carry; settings are a handful of node-level values
/// (relays, index servers, preferences).
pub const MAX_SETTING_VALUE_LEN: usize = 64 * 1024;

/// Everything one step of the node persists, committed all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Credit-state changes, in the order the credit layer emitted them.
    pub changes: Vec<Change>,
    /// History and app events to append.
    pub events: Vec<NewEvent>,
    /// Node settings to set (`Some`) or delete (`None`).
    pub settings: Vec<(String, Option<Vec<u8>>)>,
}

impl Batch {
    /// A batch of credit changes only.
    pub fn changes(changes: Vec<Change>) -> Batch {
        Batch {
            changes,
            ..Batch::default()
        }
    }

    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.events.is_empty() && self.settings.is_empty()
    }
}

/// Node storage. Every method either completes or changes nothing.
pub trait Store {
    /// Commits one batch atomically. On error nothing of the batch is stored.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;

    /// The persisted credit state (friends, channels, queues), as the last commit left it.
    fn load(&self) -> Result<NodeState, StoreError>;

    /// A node setting.
    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Events matching `query`, oldest first.
    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;

    /// Marks an event handled (it leaves the app's queue but stays in the history). Returns
    /// whether the event existed and was unhandled.
    fn mark_event_handled(&mut self, id: u64) -> Result<bool, StoreError>;
}
