//! How `stctrl` shows things: tables with multi-line cells (like the original's `info
//! friends`), and the JSON forms scripts read. Amounts are decimal strings in JSON (they are
//! 128-bit), keys base64url.

use offst_proto::app::{
    AccountReport, CurrencyReport, FriendReport, FriendStatus, NodeEvent, PaymentState,
    PaymentStatus,
};
use offst_proto::index::Route;
use serde_json::{json, Value};

/// Draws a table: a header row, then rows whose cells may hold several lines.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate().take(columns) {
            for line in cell.lines() {
                widths[column] = widths[column].max(line.chars().count());
            }
        }
    }
    let rule = |fill: char| {
        let mut line = String::from("+");
        for width in &widths {
            line.extend(std::iter::repeat_n(fill, width + 2));
            line.push('+');
        }
        line.push('\n');
        line
    };
    let row_lines = |cells: Vec<Vec<&str>>| {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut out = String::new();
        for index in 0..height {
            out.push('|');
            for (column, width) in widths.iter().enumerate() {
                let text = cells
                    .get(column)
                    .and_then(|lines| lines.get(index))
                    .copied()
                    .unwrap_or("");
                let pad = width - text.chars().count();
                out.push(' ');
                out.push_str(text);
                out.extend(std::iter::repeat_n(' ', pad + 1));
                out.push('|');
            }
            out.push('\n');
        }
        out
    };
    let mut out = rule('-');
    out.push_str(&row_lines(header.iter().map(|h| vec![*h]).collect()));
    out.push_str(&rule('='));
    for row in rows {
        out.push_str(&row_lines(
            row.iter().map(|cell| cell.lines().collect()).collect(),
        ));
        out.push_str(&rule('-'));
    }
    out
}

/// The two-letter status of the original: `E`/`D` enabled or disabled, then `+` online,
/// `-` offline, `!` inconsistent (waiting for reset terms to be accepted).
pub(crate) fn status_code(status: FriendStatus) -> &'static str {
    match status {
        FriendStatus::Online => "E+",
        FriendStatus::Offline => "E-",
        FriendStatus::Inconsistent => "E!",
        FriendStatus::Disabled => "D",
    }
}

/// The status as a word.
pub(crate) fn status_name(status: FriendStatus) -> &'static str {
    match status {
        FriendStatus::Online => "online",
        FriendStatus::Offline => "offline",
        FriendStatus::Inconsistent => "inconsistent",
        FriendStatus::Disabled => "disabled",
    }
}

/// The balance cell of `info friends`: per currency, the balance, the limits both ways and
/// the credit frozen by payments in flight.
pub(crate) fn balance_cell(friend: &FriendReport) -> String {
    if let Some(terms) = &friend.reset_terms {
        let mut cell = String::from("reset terms offered:\n");
        for (currency, balance) in &terms.balances {
            cell.push_str(&format!("{currency}: B={balance}\n"));
        }
        return cell;
    }
    if friend.currencies.is_empty() {
        return "(no currency yet)".into();
    }
    let mut cell = String::new();
    for c in &friend.currencies {
        cell.push_str(&format!(
            "{}:{}\nB  ={}\nLMD={}\nRMD={}\nLPD={}\nRPD={}\n",
            c.currency,
            if c.is_open { "" } else { " (closed)" },
            c.balance,
            c.local_max_debt,
            c.remote_max_debt,
            c.local_pending_debt,
            c.remote_pending_debt
        ));
    }
    cell
}

/// The legend under `info friends`.
pub(crate) const FRIENDS_LEGEND: &str =
    "st: E enabled, D disabled; + online, - offline, ! inconsistent.
B: balance (positive: the friend owes us). LMD/RMD: local/remote max debt (the most we may \
owe the friend / the friend may owe us). LPD/RPD: local/remote pending debt (frozen by \
payments in flight).";

fn currency_json(c: &CurrencyReport) -> Value {
    json!({
        "currency": c.currency.as_str(),
        "balance": c.balance.to_string(),
        "local_max_debt": c.local_max_debt.to_string(),
        "remote_max_debt": c.remote_max_debt.to_string(),
        "local_pending_debt": c.local_pending_debt.to_string(),
        "remote_pending_debt": c.remote_pending_debt.to_string(),
        "rate": {"proportional_ppm": c.rate.proportional_ppm, "flat": c.rate.flat.to_string()},
        "open": c.is_open,
    })
}

/// A friend for scripts.
pub(crate) fn friend_json(friend: &FriendReport) -> Value {
    json!({
        "name": friend.name.as_str(),
        "public_key": friend.public_key.to_string(),
        "status": status_name(friend.status),
        "relays": friend.relays.iter().map(|r| offst_proto::relay::RelayCard(r.clone()).to_string()).collect::<Vec<_>>(),
        "currencies": friend.currencies.iter().map(currency_json).collect::<Vec<_>>(),
        "reset_terms": friend.reset_terms.as_ref().map(|terms| json!({
            "reset_token": terms.reset_token.to_string(),
            "balances": terms.balances.iter().map(|(currency, balance)| json!({
                "currency": currency.as_str(), "balance": balance.to_string()
            })).collect::<Vec<_>>(),
        })),
    })
}

/// An account line for scripts.
pub(crate) fn account_json(account: &AccountReport) -> Value {
    json!({
        "currency": account.currency.as_str(),
        "fees_earned": account.fees_earned.to_string(),
        "fees_paid": account.fees_paid.to_string(),
        "received": account.received.to_string(),
        "sent": account.sent.to_string(),
    })
}

/// A payment state as a word.
pub(crate) fn state_name(state: PaymentState) -> &'static str {
    match state {
        PaymentState::InProgress => "in_progress",
        PaymentState::Succeeded => "succeeded",
        PaymentState::Cancelled => "cancelled",
    }
}

/// A receipt as text: base64url of its bytes (what `verify-receipt` reads).
pub(crate) fn receipt_text(receipt: &offst_proto::payment::Receipt) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(receipt.to_bytes())
}

/// A payment for scripts.
pub(crate) fn payment_json(payment: &PaymentStatus) -> Value {
    json!({
        "payment_id": payment.payment_id.to_string(),
        "invoice_id": payment.invoice_id.to_string(),
        "state": state_name(payment.state),
        "amount": payment.amount.to_string(),
        "fees": payment.fees.to_string(),
        "routes": payment.routes,
        "receipt": payment.receipt.as_ref().map(receipt_text),
        "started_at_ms": payment.started_at_ms,
        "finished_at_ms": payment.finished_at_ms,
    })
}

/// A route for scripts.
pub(crate) fn route_json(route: &Route) -> Value {
    json!({
        "nodes": route.nodes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "amount": route.amount.to_string(),
        "fees": route.fees.to_string(),
    })
}

/// An event for scripts (its payload parsed back into JSON).
pub(crate) fn event_json(event: &NodeEvent) -> Value {
    json!({
        "id": event.id,
        "timestamp_ms": event.timestamp_ms,
        "kind": event.kind,
        "friend": event.friend.map(|key| key.to_string()),
        "status": event.status,
        "payload": serde_json::from_str::<Value>(&event.payload_json).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_multi_line_cells() {
        let drawn = table(
            &["st", "name", "balance"],
            &[vec![
                "E+".into(),
                "node1".into(),
                "FST:\nB  =100\nLMD=150".into(),
            ]],
        );
        let lines: Vec<&str> = drawn.lines().collect();
        assert_eq!(lines[0], "+----+-------+---------+");
        assert_eq!(lines[1], "| st | name  | balance |");
        assert_eq!(lines[2], "+====+=======+=========+");
        assert_eq!(lines[3], "| E+ | node1 | FST:    |");
        assert_eq!(lines[4], "|    |       | B  =100 |");
        assert_eq!(lines[5], "|    |       | LMD=150 |");
        assert_eq!(lines[6], "+----+-------+---------+");
    }
}
