//! The SQLite store's mapping of credit changes and events to rows ([`Store`] for
//! [`SqliteStore`]).

use std::collections::{BTreeMap, VecDeque};

use offst_credit::{
    Change, ChannelStatus, CurrencyConfig, FeeRate, Forward, Friend, NodeState, OpenInvoice,
    Payment, PaymentBook, PaymentStatus,
};
use offst_proto::{Credits, Currency, InvoiceId, PaymentId, PublicKey, RequestId, Text};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::codec::{
    decode_account, decode_channel, decode_fee_rate, decode_forward, decode_invoice,
    decode_operation, decode_payment, decode_relays, encode_account, encode_channel,
    encode_fee_rate, encode_forward, encode_invoice, encode_operation, encode_payment,
    encode_relays,
};
use crate::events::{EventQuery, NewEvent, StoredEvent};
use crate::sqlite::SqliteStore;
use crate::{Batch, Store, StoreError, MAX_SETTING_VALUE_LEN};

fn invalid(what: impl Into<String>) -> StoreError {
    StoreError::InvalidData(what.into())
}

fn key_from_blob(blob: &[u8]) -> Result<PublicKey, StoreError> {
    PublicKey::try_from_slice(blob).map_err(|err| invalid(err.to_string()))
}

fn credits_from_blob(blob: &[u8]) -> Result<Credits, StoreError> {
    let bytes: [u8; 16] = blob
        .try_into()
        .map_err(|_| invalid("amount is not 16 bytes"))?;
    let value = u128::from_be_bytes(bytes);
    if value > Credits::MAX.0 {
        return Err(invalid("amount out of range"));
    }
    Ok(Credits(value))
}

fn expect_one_row(updated: usize, friend: &PublicKey) -> Result<(), StoreError> {
    if updated == 1 {
        Ok(())
    } else {
        Err(invalid(format!("change for unknown friend {friend}")))
    }
}

fn friend_exists(tx: &Transaction<'_>, friend: &PublicKey) -> Result<(), StoreError> {
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM friends WHERE public_key = ?1",
            [friend.as_bytes()],
            |row| row.get(0),
        )
        .optional()?;
    expect_one_row(exists.map_or(0, |_| 1), friend)
}

fn write_channel(
    tx: &Transaction<'_>,
    friend: &PublicKey,
    channel: &ChannelStatus,
) -> Result<(), StoreError> {
    let status = match channel {
        ChannelStatus::Consistent(_) => "consistent",
        ChannelStatus::Inconsistent(_) => "inconsistent",
    };
    tx.execute(
        "INSERT INTO channels (friend, status, state) VALUES (?1, ?2, ?3)
         ON CONFLICT (friend) DO UPDATE SET status = excluded.status, state = excluded.state",
        params![friend.as_bytes(), status, encode_channel(channel)],
    )?;
    tx.execute(
        "DELETE FROM channel_currencies WHERE friend = ?1",
        [friend.as_bytes()],
    )?;
    if let ChannelStatus::Consistent(channel) = channel {
        let mut insert = tx.prepare_cached(
            "INSERT INTO channel_currencies (friend, currency, balance, local_max_debt,
                 remote_max_debt, local_pending_debt, remote_pending_debt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (currency, state) in channel.sheet.currencies() {
            insert.execute(params![
                friend.as_bytes(),
                currency.as_str(),
                state.balance.0.to_be_bytes(),
                state.local_max_debt.0.to_be_bytes(),
                state.remote_max_debt.0.to_be_bytes(),
                state.local_pending_debt.0.to_be_bytes(),
                state.remote_pending_debt.0.to_be_bytes(),
            ])?;
        }
    }
    Ok(())
}

fn write_currency_config(
    tx: &Transaction<'_>,
    friend: &PublicKey,
    currency: &Currency,
    config: Option<&CurrencyConfig>,
) -> Result<(), StoreError> {
    match config {
        Some(config) => tx.execute(
            "INSERT INTO currency_configs (friend, currency, remote_max_debt, open)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (friend, currency) DO UPDATE
             SET remote_max_debt = excluded.remote_max_debt, open = excluded.open",
            params![
                friend.as_bytes(),
                currency.as_str(),
                config.remote_max_debt.0.to_be_bytes(),
                config.open
            ],
        )?,
        None => tx.execute(
            "DELETE FROM currency_configs WHERE friend = ?1 AND currency = ?2",
            params![friend.as_bytes(), currency.as_str()],
        )?,
    };
    Ok(())
}

fn apply_change(tx: &Transaction<'_>, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::AddFriend(friend) => {
            let key = friend.public_key;
            tx.execute(
                "DELETE FROM friends WHERE public_key = ?1",
                [key.as_bytes()],
            )?;
            tx.execute(
                "INSERT INTO friends (public_key, name, enabled, relays, previous_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key.as_bytes(),
                    friend.name.as_str(),
                    friend.enabled,
                    encode_relays(&friend.relays),
                    friend.previous_key.map(|k| k.as_bytes().to_vec()),
                ],
            )?;
            for (currency, config) in &friend.currency_configs {
                write_currency_config(tx, &key, currency, Some(config))?;
            }
            write_channel(tx, &key, &friend.channel)?;
            for (position, operation) in friend.queued.iter().enumerate() {
                tx.execute(
                    "INSERT INTO queued_operations (friend, position, operation)
                     VALUES (?1, ?2, ?3)",
                    params![key.as_bytes(), position as i64, encode_operation(operation)],
                )?;
            }
        }
        Change::RemoveFriend(friend) => {
            let removed = tx.execute(
                "DELETE FROM friends WHERE public_key = ?1",
                [friend.as_bytes()],
            )?;
            expect_one_row(removed, friend)?;
        }
        Change::SetFriendName { friend, name } => {
            let updated = tx.execute(
                "UPDATE friends SET name = ?2 WHERE public_key = ?1",
                params![friend.as_bytes(), name.as_str()],
            )?;
            expect_one_row(updated, friend)?;
        }
        Change::SetFriendRelays { friend, relays } => {
            let updated = tx.execute(
                "UPDATE friends SET relays = ?2 WHERE public_key = ?1",
                params![friend.as_bytes(), encode_relays(relays)],
            )?;
            expect_one_row(updated, friend)?;
        }
        Change::SetFriendEnabled { friend, enabled } => {
            let updated = tx.execute(
                "UPDATE friends SET enabled = ?2 WHERE public_key = ?1",
                params![friend.as_bytes(), enabled],
            )?;
            expect_one_row(updated, friend)?;
        }
        Change::SetCurrencyConfig {
            friend,
            currency,
            config,
        } => {
            friend_exists(tx, friend)?;
            write_currency_config(tx, friend, currency, config.as_ref())?;
        }
        Change::SetChannel { friend, channel } => {
            friend_exists(tx, friend)?;
            write_channel(tx, friend, channel)?;
        }
        Change::QueueOperation { friend, operation } => {
            friend_exists(tx, friend)?;
            tx.execute(
                "INSERT INTO queued_operations (friend, position, operation)
                 VALUES (?1, (SELECT coalesce(max(position) + 1, 0) FROM queued_operations
                              WHERE friend = ?1), ?2)",
                params![friend.as_bytes(), encode_operation(operation)],
            )?;
        }
        Change::DequeueOperations { friend, count } => {
            friend_exists(tx, friend)?;
            tx.execute(
                "DELETE FROM queued_operations WHERE friend = ?1 AND position IN
                 (SELECT position FROM queued_operations WHERE friend = ?1
                  ORDER BY position LIMIT ?2)",
                params![friend.as_bytes(), *count as i64],
            )?;
        }
        Change::SetInvoice {
            invoice_id,
            invoice,
        } => write_invoice(tx, invoice_id, invoice.as_deref())?,
        Change::SetPayment {
            payment_id,
            payment,
        } => write_payment(tx, payment_id, payment.as_deref())?,
        Change::SetForward {
            request_id,
            forward,
        } => write_forward(tx, request_id, forward.as_deref())?,
        Change::SetFeeRate {
            friend,
            currency,
            rate,
        } => write_fee_rate(tx, friend, currency, rate.as_ref())?,
        Change::SetAccount { currency, account } => {
            tx.execute(
                "INSERT INTO accounts (currency, record) VALUES (?1, ?2)
                 ON CONFLICT (currency) DO UPDATE SET record = excluded.record",
                params![currency.as_str(), encode_account(account)],
            )?;
        }
    }
    Ok(())
}

fn invoice_status(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::InProgress => "open",
        PaymentStatus::Succeeded => "paid",
        PaymentStatus::Cancelled => "cancelled",
    }
}

fn payment_status(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::InProgress => "in_progress",
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Cancelled => "cancelled",
    }
}

fn time(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn write_invoice(
    tx: &Transaction<'_>,
    invoice_id: &InvoiceId,
    record: Option<&OpenInvoice>,
) -> Result<(), StoreError> {
    match record {
        Some(record) => tx.execute(
            "INSERT INTO invoices (invoice_id, status, currency, amount, created_at, finished_at,
                                   record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (invoice_id) DO UPDATE SET status = excluded.status,
                 finished_at = excluded.finished_at, record = excluded.record",
            params![
                invoice_id.as_bytes(),
                invoice_status(record.status),
                record.invoice.currency.as_str(),
                record.invoice.amount.0.to_be_bytes(),
                time(record.created_at),
                record.finished_at.map(time),
                encode_invoice(record),
            ],
        )?,
        None => tx.execute(
            "DELETE FROM invoices WHERE invoice_id = ?1",
            [invoice_id.as_bytes()],
        )?,
    };
    Ok(())
}

fn write_payment(
    tx: &Transaction<'_>,
    payment_id: &PaymentId,
    payment: Option<&Payment>,
) -> Result<(), StoreError> {
    match payment {
        Some(payment) => tx.execute(
            "INSERT INTO payments (payment_id, invoice_id, seller, status, currency, amount, fees,
                                   started_at, finished_at, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status,
                 fees = excluded.fees, finished_at = excluded.finished_at,
                 record = excluded.record",
            params![
                payment_id.as_bytes(),
                payment.invoice.invoice_id.as_bytes(),
                payment.invoice.seller.as_bytes(),
                payment_status(payment.status),
                payment.invoice.currency.as_str(),
                payment.invoice.amount.0.to_be_bytes(),
                payment.fees_paid.0.to_be_bytes(),
                time(payment.started_at),
                payment.finished_at.map(time),
                encode_payment(payment),
            ],
        )?,
        None => tx.execute(
            "DELETE FROM payments WHERE payment_id = ?1",
            [payment_id.as_bytes()],
        )?,
    };
    Ok(())
}

fn write_forward(
    tx: &Transaction<'_>,
    request_id: &RequestId,
    forward: Option<&Forward>,
) -> Result<(), StoreError> {
    match forward {
        Some(forward) => tx.execute(
            "INSERT INTO forwards (request_id, upstream, downstream, record)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (request_id) DO UPDATE SET record = excluded.record",
            params![
                request_id.as_bytes(),
                forward.upstream.as_bytes(),
                forward.downstream.as_bytes(),
                encode_forward(forward),
            ],
        )?,
        None => tx.execute(
            "DELETE FROM forwards WHERE request_id = ?1",
            [request_id.as_bytes()],
        )?,
    };
    Ok(())
}

fn write_fee_rate(
    tx: &Transaction<'_>,
    friend: &PublicKey,
    currency: &Currency,
    rate: Option<&FeeRate>,
) -> Result<(), StoreError> {
    match rate {
        Some(rate) => tx.execute(
            "INSERT INTO fee_rates (friend, currency, rate) VALUES (?1, ?2, ?3)
             ON CONFLICT (friend, currency) DO UPDATE SET rate = excluded.rate",
            params![friend.as_bytes(), currency.as_str(), encode_fee_rate(rate)],
        )?,
        None => tx.execute(
            "DELETE FROM fee_rates WHERE friend = ?1 AND currency = ?2",
            params![friend.as_bytes(), currency.as_str()],
        )?,
    };
    Ok(())
}

fn load_payment_book(conn: &rusqlite::Connection) -> Result<PaymentBook, StoreError> {
    let mut book = PaymentBook::default();
    let mut statement = conn.prepare("SELECT record FROM invoices")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let record = decode_invoice(&row.get::<_, Vec<u8>>(0)?)?;
        book.invoices.insert(record.invoice.invoice_id, record);
    }
    let mut statement = conn.prepare("SELECT record FROM payments")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let payment = decode_payment(&row.get::<_, Vec<u8>>(0)?)?;
        book.payments.insert(payment.payment_id, payment);
    }
    let mut statement = conn.prepare("SELECT request_id, record FROM forwards")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id = RequestId::try_from_slice(&row.get::<_, Vec<u8>>(0)?)
            .map_err(|err| invalid(err.to_string()))?;
        book.forwards
            .insert(id, decode_forward(&row.get::<_, Vec<u8>>(1)?)?);
    }
    let mut statement = conn.prepare("SELECT friend, currency, rate FROM fee_rates")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let friend = key_from_blob(&row.get::<_, Vec<u8>>(0)?)?;
        let currency =
            Currency::new(&row.get::<_, String>(1)?).map_err(|e| invalid(e.to_string()))?;
        book.rates.insert(
            (friend, currency),
            decode_fee_rate(&row.get::<_, Vec<u8>>(2)?)?,
        );
    }
    let mut statement = conn.prepare("SELECT currency, record FROM accounts")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let currency =
            Currency::new(&row.get::<_, String>(0)?).map_err(|e| invalid(e.to_string()))?;
        book.accounts
            .insert(currency, decode_account(&row.get::<_, Vec<u8>>(1)?)?);
    }
    Ok(book)
}

/// Schema 1 kept payment records as rows of `settings` under `credit/…` keys; schema 2 has
/// tables for them. Moves every such row (decoding it, so a damaged one stops the migration
/// and changes nothing) and deletes it from `settings`.
pub(crate) fn move_payment_records_out_of_settings(tx: &Transaction<'_>) -> Result<(), StoreError> {
    const INVOICE_PREFIX: &str = "credit/invoice/";
    const PAYMENT_PREFIX: &str = "credit/payment/";
    const FORWARD_PREFIX: &str = "credit/forward/";
    const FEE_RATE_PREFIX: &str = "credit/fee-rate/";
    const ACCOUNT_PREFIX: &str = "credit/account/";
    let rows: Vec<(String, Vec<u8>)> = {
        let mut statement =
            tx.prepare("SELECT key, value FROM settings WHERE key LIKE 'credit/%'")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (key, value) in &rows {
        if key.starts_with(INVOICE_PREFIX) {
            let record = decode_invoice(value)?;
            write_invoice(tx, &record.invoice.invoice_id.clone(), Some(&record))?;
        } else if key.starts_with(PAYMENT_PREFIX) {
            let payment = decode_payment(value)?;
            write_payment(tx, &payment.payment_id.clone(), Some(&payment))?;
        } else if let Some(id) = key.strip_prefix(FORWARD_PREFIX) {
            let id = RequestId::from_bytes(unhex(id)?);
            write_forward(tx, &id, Some(&decode_forward(value)?))?;
        } else if let Some(rest) = key.strip_prefix(FEE_RATE_PREFIX) {
            let (friend, currency) = rest
                .split_once('/')
                .ok_or_else(|| invalid("bad fee rate key"))?;
            let friend = PublicKey::from_bytes(unhex(friend)?);
            let currency = Currency::new(currency).map_err(|e| invalid(e.to_string()))?;
            write_fee_rate(tx, &friend, &currency, Some(&decode_fee_rate(value)?))?;
        } else if let Some(currency) = key.strip_prefix(ACCOUNT_PREFIX) {
            Currency::new(currency).map_err(|e| invalid(e.to_string()))?;
            decode_account(value)?;
            tx.execute(
                "INSERT INTO accounts (currency, record) VALUES (?1, ?2)",
                params![currency, value],
            )?;
        } else {
            return Err(invalid(format!("unknown record {key:?} in settings")));
        }
    }
    tx.execute("DELETE FROM settings WHERE key LIKE 'credit/%'", [])?;
    Ok(())
}

fn unhex<const N: usize>(text: &str) -> Result<[u8; N], StoreError> {
    let mut out = [0u8; N];
    if text.len() != 2 * N || !text.is_ascii() {
        return Err(invalid("bad record key"));
    }
    for (index, byte) in out.iter_mut().enumerate() {
        let pair = text
            .get(2 * index..2 * index + 2)
            .ok_or_else(|| invalid("bad record key"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid("bad record key"))?;
    }
    Ok(out)
}

fn insert_event(tx: &Transaction<'_>, event: &NewEvent) -> Result<(), StoreError> {
    event.check()?;
    tx.prepare_cached(
        "INSERT INTO events (timestamp_ms, kind, friend, status, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.timestamp_ms as i64,
        event.kind,
        event.friend.map(|k| k.as_bytes().to_vec()),
        event.status,
        event.payload.to_string(),
    ])?;
    Ok(())
}

impl Store for SqliteStore {
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let path = self.path().to_owned();
        let classify = |err: StoreError| match err {
            StoreError::Sqlite(err) => StoreError::from_sqlite(&path, err),
            other => other,
        };
        let tx = self.begin()?;
        for change in &batch.changes {
            apply_change(&tx, change).map_err(classify)?;
        }
        for event in &batch.events {
            insert_event(&tx, event).map_err(classify)?;
        }
        for (key, value) in &batch.settings {
            match value {
                Some(value) if value.len() > MAX_SETTING_VALUE_LEN => {
                    return Err(invalid("setting value too large"))
                }
                Some(value) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                ),
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [key]),
            }
            .map_err(|err| classify(err.into()))?;
        }
        tx.commit().map_err(|err| classify(err.into()))
    }

    fn load(&self) -> Result<NodeState, StoreError> {
        let mut friends = BTreeMap::new();
        let mut statement = self.conn.prepare(
            "SELECT f.public_key, f.name, f.enabled, f.relays, f.previous_key, c.state
             FROM friends f JOIN channels c ON c.friend = f.public_key",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let key = key_from_blob(&row.get::<_, Vec<u8>>(0)?)?;
            let name = Text::new(&row.get::<_, String>(1)?).map_err(|e| invalid(e.to_string()))?;
            let previous_key = row
                .get::<_, Option<Vec<u8>>>(4)?
                .map(|blob| key_from_blob(&blob))
                .transpose()?;
            friends.insert(
                key,
                Friend {
                    public_key: key,
                    name,
                    relays: decode_relays(&row.get::<_, Vec<u8>>(3)?)?,
                    enabled: row.get(2)?,
                    currency_configs: BTreeMap::new(),
                    channel: decode_channel(&row.get::<_, Vec<u8>>(5)?)?,
                    queued: VecDeque::new(),
                    previous_key,
                },
            );
        }
        let mut statement = self
            .conn
            .prepare("SELECT friend, currency, remote_max_debt, open FROM currency_configs")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let key = key_from_blob(&row.get::<_, Vec<u8>>(0)?)?;
            let currency =
                Currency::new(&row.get::<_, String>(1)?).map_err(|e| invalid(e.to_string()))?;
            let config = CurrencyConfig {
                remote_max_debt: credits_from_blob(&row.get::<_, Vec<u8>>(2)?)?,
                open: row.get(3)?,
            };
            friends
                .get_mut(&key)
                .ok_or_else(|| invalid("currency config of an unknown friend"))?
                .currency_configs
                .insert(currency, config);
        }
        let mut statement = self
            .conn
            .prepare("SELECT friend, operation FROM queued_operations ORDER BY friend, position")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let key = key_from_blob(&row.get::<_, Vec<u8>>(0)?)?;
            let operation = decode_operation(&row.get::<_, Vec<u8>>(1)?)?;
            friends
                .get_mut(&key)
                .ok_or_else(|| invalid("queued operation of an unknown friend"))?
                .queued
                .push_back(operation);
        }
        Ok(NodeState {
            friends,
            payments: load_payment_book(&self.conn)?,
        })
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, timestamp_ms, kind, friend, status, payload, handled FROM events
             WHERE (?1 IS NULL OR timestamp_ms >= ?1)
               AND (?2 IS NULL OR timestamp_ms < ?2)
               AND (?3 IS NULL OR friend = ?3)
               AND (?4 IS NULL OR status = ?4)
               AND (?5 = 0 OR handled = 0)
               AND (?6 IS NULL OR id > ?6)
             ORDER BY id LIMIT ?7",
        )?;
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut rows = statement.query(params![
            query.since_ms.map(to_i64),
            query.until_ms.map(to_i64),
            query.friend.map(|k| k.as_bytes().to_vec()),
            query.status,
            query.unhandled_only,
            query.after_id.map(to_i64),
            query.effective_limit() as i64,
        ])?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            let payload: String = row.get(5)?;
            events.push(StoredEvent {
                id: u64::try_from(row.get::<_, i64>(0)?).map_err(|_| invalid("event id"))?,
                event: NewEvent {
                    timestamp_ms: u64::try_from(row.get::<_, i64>(1)?)
                        .map_err(|_| invalid("event time"))?,
                    kind: row.get(2)?,
                    friend: row
                        .get::<_, Option<Vec<u8>>>(3)?
                        .map(|blob| key_from_blob(&blob))
                        .transpose()?,
                    status: row.get(4)?,
                    payload: serde_json::from_str(&payload)
                        .map_err(|err| invalid(format!("event payload: {err}")))?,
                },
                handled: row.get(6)?,
            });
        }
        Ok(events)
    }

    fn mark_event_handled(&mut self, id: u64) -> Result<bool, StoreError> {
        let id = i64::try_from(id).map_err(|_| invalid("event id out of range"))?;
        let updated = self.conn.execute(
            "UPDATE events SET handled = 1 WHERE id = ?1 AND handled = 0",
            [id],
        )?;
        Ok(updated == 1)
    }
}
