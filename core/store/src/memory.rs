//! The in-memory store, for tests and simulations: the same contract as the SQLite store,
//! nothing durable.

use std::collections::BTreeMap;

use offst_credit::{Change, NodeState};

use crate::events::{EventQuery, StoredEvent};
use crate::{Batch, Store, StoreError, MAX_SETTING_VALUE_LEN};

/// A store that keeps everything in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: NodeState,
    settings: BTreeMap<String, Vec<u8>>,
    events: Vec<StoredEvent>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

/// Checks a change against the state like the SQL constraints do: a change about a friend
/// that does not exist is a bug in the caller.
pub(crate) fn check_change(state: &NodeState, change: &Change) -> Result<(), StoreError> {
    let friend = match change {
        Change::AddFriend(_)
        | Change::SetInvoice { .. }
        | Change::SetPayment { .. }
        | Change::SetForward { .. }
        | Change::SetAccount { .. } => return Ok(()),
        Change::SetFeeRate { friend, .. } => friend,
        Change::RemoveFriend(friend)
        | Change::SetFriendName { friend, .. }
        | Change::SetFriendRelays { friend, .. }
        | Change::SetFriendEnabled { friend, .. }
        | Change::SetCurrencyConfig { friend, .. }
        | Change::SetChannel { friend, .. }
        | Change::QueueOperation { friend, .. }
        | Change::DequeueOperations { friend, .. } => friend,
    };
    if state.friends.contains_key(friend) {
        Ok(())
    } else {
        Err(StoreError::InvalidData(format!(
            "change for unknown friend {friend}"
        )))
    }
}

impl Store for MemoryStore {
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let mut state = self.state.clone();
        for change in &batch.changes {
            check_change(&state, change)?;
            state.apply(change);
        }
        let first_id = self.events.last().map_or(1, |e| e.id + 1);
        let mut events = Vec::with_capacity(batch.events.len());
        for (id, event) in (first_id..).zip(&batch.events) {
            event.check()?;
            events.push(StoredEvent {
                id,
                event: event.clone(),
                handled: false,
            });
        }
        for (_, value) in &batch.settings {
            if value
                .as_ref()
                .is_some_and(|v| v.len() > MAX_SETTING_VALUE_LEN)
            {
                return Err(StoreError::InvalidData("setting value too large".into()));
            }
        }
        self.state = state;
        self.events.extend(events);
        for (key, value) in &batch.settings {
            match value {
                Some(value) => self.settings.insert(key.clone(), value.clone()),
                None => self.settings.remove(key),
            };
        }
        Ok(())
    }

    fn load(&self) -> Result<NodeState, StoreError> {
        Ok(self.state.clone())
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.settings.get(key).cloned())
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .events
            .iter()
            .filter(|e| query.matches(e))
            .take(query.effective_limit())
            .cloned()
            .collect())
    }

    fn mark_event_handled(&mut self, id: u64) -> Result<bool, StoreError> {
        Ok(match self.events.iter_mut().find(|e| e.id == id) {
            Some(event) if !event.handled => {
                event.handled = true;
                true
            }
            _ => false,
        })
    }
}
