//! What the node records in its history and event queue, from what the credit layer reports.

use offst_credit::Event;
use offst_proto::friend::FriendOperation;
use offst_proto::PublicKey;
use offst_store::NewEvent;
use serde_json::json;

use crate::now;

fn new_event(
    kind: &str,
    friend: PublicKey,
    status: Option<&str>,
    payload: serde_json::Value,
) -> NewEvent {
    NewEvent {
        timestamp_ms: now().0,
        kind: kind.into(),
        friend: Some(friend),
        status: status.map(str::to_owned),
        payload,
    }
}

fn transfer_payload(operation: &FriendOperation) -> Option<serde_json::Value> {
    match operation {
        FriendOperation::Transfer {
            currency,
            amount,
            transfer_id,
        } => Some(json!({
            "currency": currency.as_str(),
            "amount": amount.0.to_string(),
            "transfer_id": transfer_id.to_string(),
        })),
        _ => None,
    }
}

/// The app-visible events of one credit event (transfers, channel trouble); token
/// bookkeeping without transfers records nothing.
pub(crate) fn from_credit(event: &Event) -> Vec<NewEvent> {
    match event {
        Event::TokenSent { friend, operations } => operations
            .iter()
            .filter_map(transfer_payload)
            .map(|payload| new_event("transfer_sent", *friend, Some("sent"), payload))
            .collect(),
        Event::TokenReceived { friend, operations } => operations
            .iter()
            .filter_map(transfer_payload)
            .map(|payload| new_event("transfer_received", *friend, Some("succeeded"), payload))
            .collect(),
        Event::OperationDropped {
            friend,
            operation,
            error,
        } => transfer_payload(operation)
            .map(|mut payload| {
                payload["error"] = json!(error.to_string());
                new_event("transfer_failed", *friend, Some("failed"), payload)
            })
            .into_iter()
            .collect(),
        Event::ChannelInconsistent {
            friend,
            local_terms,
            remote_terms,
        } => vec![new_event(
            "channel_inconsistent",
            *friend,
            None,
            json!({
                "local_reset_token": local_terms.reset_token.to_string(),
                "remote_reset_token": remote_terms.as_ref().map(|t| t.reset_token.to_string()),
            }),
        )],
        Event::ChannelReset { friend } => {
            vec![new_event("channel_reset", *friend, None, json!({}))]
        }
        Event::MessageRejected { friend, error } => {
            log::warn!("message from {friend} rejected: {error}");
            Vec::new()
        }
        Event::InvoiceCreated { invoice } => vec![payment_event(
            "invoice_created",
            None,
            json!({
                "invoice_id": invoice.invoice_id.to_string(),
                "invoice": invoice.to_uri(),
                "currency": invoice.currency.as_str(),
                "amount": invoice.amount.0.to_string(),
            }),
        )],
        Event::PaymentReceived {
            invoice_id,
            currency,
            amount,
        } => vec![payment_event(
            "payment_received",
            Some("succeeded"),
            json!({
                "invoice_id": invoice_id.to_string(),
                "currency": currency.as_str(),
                "amount": amount.0.to_string(),
            }),
        )],
        Event::PaymentSucceeded {
            payment_id,
            receipt,
            fees,
        } => vec![payment_event(
            "payment_succeeded",
            Some("succeeded"),
            json!({
                "payment_id": payment_id.to_string(),
                "invoice_id": receipt.invoice.invoice_id.to_string(),
                "currency": receipt.invoice.currency.as_str(),
                "amount": receipt.invoice.amount.0.to_string(),
                "fees": fees.0.to_string(),
                "receipt": receipt.to_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>(),
            }),
        )],
        Event::PaymentFailed { payment_id } => vec![payment_event(
            "payment_failed",
            Some("failed"),
            json!({ "payment_id": payment_id.to_string() }),
        )],
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    }
}

/// A payment event: about a payment, not one friend.
fn payment_event(kind: &str, status: Option<&str>, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        timestamp_ms: now().0,
        kind: kind.into(),
        friend: None,
        status: status.map(str::to_owned),
        payload,
    }
}

/// A friend link came up or went down.
pub(crate) fn link(friend: PublicKey, online: bool) -> NewEvent {
    new_event(
        if online {
            "friend_online"
        } else {
            "friend_offline"
        },
        friend,
        None,
        json!({}),
    )
}
