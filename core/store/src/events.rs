//! The append-only history of what happened, which doubles as the app's event queue
//! (unhandled events).

use offst_proto::PublicKey;

use crate::StoreError;

/// Longest event kind name.
pub const MAX_EVENT_KIND_LEN: usize = 64;
/// Most events one query returns.
pub const MAX_EVENT_QUERY_LIMIT: usize = 10_000;

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened, Unix milliseconds.
    pub timestamp_ms: u64,
    /// What kind of event (`transfer_received`, `channel_inconsistent`, …), at most
    /// [`MAX_EVENT_KIND_LEN`] bytes.
    pub kind: String,
    /// The friend it concerns, if any.
    pub friend: Option<PublicKey>,
    /// A status to query by (`succeeded`, `cancelled`, …), if any.
    pub status: Option<String>,
    /// Details, as JSON.
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.kind.is_empty() || self.kind.len() > MAX_EVENT_KIND_LEN {
            return Err(StoreError::InvalidData(format!(
                "event kind must be 1 to {MAX_EVENT_KIND_LEN} bytes"
            )));
        }
        if i64::try_from(self.timestamp_ms).is_err() {
            return Err(StoreError::InvalidData(
                "event timestamp out of range".into(),
            ));
        }
        Ok(())
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Increasing id: the order events were committed in.
    pub id: u64,
    /// The event.
    pub event: NewEvent,
    /// Whether the app has handled it.
    pub handled: bool,
}

/// Which events to read. The default reads the oldest [`MAX_EVENT_QUERY_LIMIT`] events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventQuery {
    /// Only events at or after this time (Unix ms).
    pub since_ms: Option<u64>,
    /// Only events before this time (Unix ms).
    pub until_ms: Option<u64>,
    /// Only events about this friend.
    pub friend: Option<PublicKey>,
    /// Only events with this status.
    pub status: Option<String>,
    /// Only events the app has not handled yet.
    pub unhandled_only: bool,
    /// Only events with an id above this (for paging).
    pub after_id: Option<u64>,
    /// At most this many (capped at [`MAX_EVENT_QUERY_LIMIT`]).
    pub limit: Option<usize>,
}

impl EventQuery {
    pub(crate) fn effective_limit(&self) -> usize {
        self.limit
            .unwrap_or(MAX_EVENT_QUERY_LIMIT)
            .min(MAX_EVENT_QUERY_LIMIT)
    }

    pub(crate) fn matches(&self, stored: &StoredEvent) -> bool {
        let event = &stored.event;
        self.since_ms.is_none_or(|t| event.timestamp_ms >= t)
            && self.until_ms.is_none_or(|t| event.timestamp_ms < t)
            && self.friend.is_none_or(|f| event.friend == Some(f))
            && self
                .status
                .as_ref()
                .is_none_or(|s| event.status.as_ref() == Some(s))
            && (!self.unhandled_only || !stored.handled)
            && self.after_id.is_none_or(|id| stored.id > id)
    }
}
