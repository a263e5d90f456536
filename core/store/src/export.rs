//! Export of the history for users and accountants: JSON lines (one event per line) or CSV.

use std::io::Write;

use crate::events::{EventQuery, StoredEvent};
use crate::{Store, StoreError};

fn io(err: std::io::Error) -> StoreError {
    StoreError::Io {
        path: "<export>".into(),
        source: err,
    }
}

fn to_json(stored: &StoredEvent) -> serde_json::Value {
    serde_json::json!({
        "id": stored.id,
        "timestamp_ms": stored.event.timestamp_ms,
        "kind": stored.event.kind,
        "friend": stored.event.friend.map(|k| k.to_string()),
        "status": stored.event.status,
        "handled": stored.handled,
        "payload": stored.event.payload,
    })
}

/// Pages through all events matching `query` (ignoring its limit), oldest first.
fn for_each_event(
    store: &dyn Store,
    query: &EventQuery,
    mut write: impl FnMut(&StoredEvent) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut page = EventQuery {
        limit: None,
        ..query.clone()
    };
    loop {
        let events = store.events(&page)?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        page.after_id = Some(last.id);
        for event in &events {
            write(event)?;
        }
    }
}

/// Writes the matching events as JSON lines.
pub fn json_lines(
    store: &dyn Store,
    query: &EventQuery,
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    for_each_event(store, query, |event| {
        writeln!(out, "{}", to_json(event)).map_err(io)
    })
}

/// Quotes a CSV field (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Writes the matching events as CSV with a header row; the payload column holds JSON.
pub fn csv(store: &dyn Store, query: &EventQuery, out: &mut dyn Write) -> Result<(), StoreError> {
    writeln!(out, "id,timestamp_ms,kind,friend,status,handled,payload").map_err(io)?;
    for_each_event(store, query, |stored| {
        let event = &stored.event;
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            stored.id,
            event.timestamp_ms,
            csv_field(&event.kind),
            event.friend.map(|k| k.to_string()).unwrap_or_default(),
            csv_field(event.status.as_deref().unwrap_or("")),
            stored.handled,
            csv_field(&event.payload.to_string()),
        )
        .map_err(io)
    })
}
