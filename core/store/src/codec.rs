//! The store's encoding of values that have no table of their own: the token channel state
//! (`channels.state`), relay lists and queued operations. Signed tokens and reset terms are
//! kept in their wire encoding (`offst_proto::friend`), so what is stored is exactly what was
//! signed and can be re-verified or handed to a third party as evidence.
//!
//! Layout: canonical bytes (`offst_proto::canonical`) under the tag `offst/v1/store/<kind>`,
//! read back by [`ByteReader`], which validates every field like a wire decoder does.

use std::collections::VecDeque;

use offst_credit::sheet::{PendingRequest, MAX_PENDING_REQUESTS_PER_FRIEND};
use offst_credit::{
    BalanceSheet, ChainPosition, ChannelStatus, CurrencyState, FeeRate, Forward, Inconsistency,
    OpenInvoice, Payment, PaymentAccount, PaymentRoute, PaymentStatus, ReceivedRequest, Side,
    TokenChannel, TokenHolder,
};
use offst_proto::canonical::CanonicalWriter;
use offst_proto::friend::{
    FriendMessage, FriendOperation, MoveToken, MoveTokenMessage, RequestSendFunds, ResetTerms,
};
use offst_proto::payment::Invoice;
use offst_proto::{
    Balance, Credits, Currency, NetAddress, PaymentId, PlainLock, PublicKey, RelayAddress,
    RequestId, Signature, WireMessage,
};

use crate::error::StoreError;

const CHANNEL_TAG: &[u8] = b"offst/v1/store/channel";
const RELAYS_TAG: &[u8] = b"offst/v1/store/relays";
const OPERATION_TAG: &[u8] = b"offst/v1/store/operation";

fn invalid(what: &str) -> StoreError {
    StoreError::InvalidData(what.to_owned())
}

/// Reads canonical bytes back, field by field; every read checks bounds.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], tag: &[u8]) -> Result<ByteReader<'a>, StoreError> {
        let mut reader = ByteReader { bytes };
        if reader.bytes_field()? != tag {
            return Err(invalid("unexpected record tag"));
        }
        Ok(reader)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < len {
            return Err(invalid("truncated record"));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid("bad boolean")),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn credits(&mut self) -> Result<Credits, StoreError> {
        let value = u128::from_be_bytes(self.array()?);
        if value > Credits::MAX.0 {
            return Err(invalid("amount out of range"));
        }
        Ok(Credits(value))
    }

    pub(crate) fn balance(&mut self) -> Result<Balance, StoreError> {
        Ok(Balance(i128::from_be_bytes(self.array()?)))
    }

    pub(crate) fn bytes_field(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(crate) fn text(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes_field()?).map_err(|_| invalid("text is not UTF-8"))
    }

    pub(crate) fn signature(&mut self) -> Result<Signature, StoreError> {
        Ok(Signature::from_bytes(self.array()?))
    }

    pub(crate) fn public_key(&mut self) -> Result<PublicKey, StoreError> {
        Ok(PublicKey::from_bytes(self.array()?))
    }

    /// Reads an optional field written by `CanonicalWriter::option`.
    pub(crate) fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if self.bool()? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn finish(self) -> Result<(), StoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(invalid("trailing bytes in record"))
        }
    }
}

fn encode_token(token: &MoveToken) -> Vec<u8> {
    FriendMessage::MoveToken(MoveTokenMessage {
        token: token.clone(),
        token_wanted: false,
    })
    .encode()
}

fn decode_token(bytes: &[u8]) -> Result<MoveToken, StoreError> {
    match FriendMessage::decode(bytes).map_err(|err| invalid(&err.to_string()))? {
        FriendMessage::MoveToken(message) => Ok(message.token),
        _ => Err(invalid("expected a move token")),
    }
}

fn encode_terms(terms: &ResetTerms) -> Vec<u8> {
    FriendMessage::ResetTerms(terms.clone()).encode()
}

fn decode_terms(bytes: &[u8]) -> Result<ResetTerms, StoreError> {
    match FriendMessage::decode(bytes).map_err(|err| invalid(&err.to_string()))? {
        FriendMessage::ResetTerms(terms) => Ok(terms),
        _ => Err(invalid("expected reset terms")),
    }
}

fn read_currency_state(
    reader: &mut ByteReader<'_>,
) -> Result<(Currency, CurrencyState), StoreError> {
    let currency = Currency::new(reader.text()?).map_err(|err| invalid(&err.to_string()))?;
    let state = CurrencyState {
        balance: reader.balance()?,
        local_pending_debt: reader.credits()?,
        remote_pending_debt: reader.credits()?,
        local_max_debt: reader.credits()?,
        remote_max_debt: reader.credits()?,
        local_open: reader.bool()?,
        remote_open: reader.bool()?,
    };
    Ok((currency, state))
}

fn write_sheet(writer: &mut CanonicalWriter, sheet: &BalanceSheet) {
    writer.list_len(sheet.len());
    for (currency, state) in sheet.currencies() {
        state.write_canonical(currency, writer);
    }
    // Pending payment requests: who sent each, and the request as a wire operation.
    writer.list_len(sheet.requests().len());
    for pending in sheet.requests().values() {
        writer.bool(pending.sender == Side::Local);
        writer.bytes(&encode_operation(&FriendOperation::RequestSendFunds(
            Box::new(pending.request.clone()),
        )));
    }
}

fn read_sheet(reader: &mut ByteReader<'_>) -> Result<BalanceSheet, StoreError> {
    let count = reader.u32()? as usize;
    if count > offst_proto::limits::MAX_CURRENCIES_PER_FRIEND {
        return Err(invalid("too many currencies"));
    }
    let sheet = (0..count)
        .map(|_| read_currency_state(reader))
        .collect::<Result<BalanceSheet, StoreError>>()?;
    let count = reader.u32()? as usize;
    if count > 2 * MAX_PENDING_REQUESTS_PER_FRIEND {
        return Err(invalid("too many pending requests"));
    }
    let mut requests = Vec::with_capacity(count);
    for _ in 0..count {
        let sender = if reader.bool()? {
            Side::Local
        } else {
            Side::Remote
        };
        match decode_operation(reader.bytes_field()?)? {
            FriendOperation::RequestSendFunds(request) => requests.push(PendingRequest {
                sender,
                request: *request,
            }),
            _ => return Err(invalid("a pending request must be a request operation")),
        }
    }
    Ok(sheet.with_requests(requests))
}

/// Encodes a channel's whole state.
pub(crate) fn encode_channel(status: &ChannelStatus) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(CHANNEL_TAG);
    match status {
        ChannelStatus::Consistent(channel) => {
            writer.u8(0);
            write_sheet(&mut writer, &channel.sheet);
            write_sheet(&mut writer, &channel.previous_sheet);
            writer
                .u64(channel.position.inconsistency_counter)
                .u64(channel.position.move_token_counter)
                .fixed(channel.tip.as_bytes());
            match &channel.holder {
                TokenHolder::Local => {
                    writer.u8(0);
                }
                TokenHolder::Remote { last_outgoing } => {
                    writer.u8(1);
                    writer.option(last_outgoing.as_ref(), |w, t| {
                        w.bytes(&encode_token(t));
                    });
                }
            }
            writer.option(channel.last_incoming.as_ref(), |w, t| {
                w.bytes(&encode_token(t));
            });
            writer.list_len(channel.recent_incoming.len());
            for signature in &channel.recent_incoming {
                writer.fixed(signature.as_bytes());
            }
            writer.option(channel.own_reset_terms.as_ref(), |w, t| {
                w.bytes(&encode_terms(t));
            });
            writer.option(channel.accepted_reset_token.as_ref(), |w, t| {
                w.fixed(t.as_bytes());
            });
        }
        ChannelStatus::Inconsistent(inconsistency) => {
            writer.u8(1);
            writer.bytes(&encode_terms(&inconsistency.local_terms));
            writer.option(inconsistency.remote_terms.as_ref(), |w, t| {
                w.bytes(&encode_terms(t));
            });
            writer.option(inconsistency.last_incoming.as_ref(), |w, t| {
                w.bytes(&encode_token(t));
            });
            writer.option(inconsistency.previous_sheet.as_ref(), write_sheet);
            writer.u64(inconsistency.published_counter);
        }
    }
    writer.finish()
}

/// Decodes a channel's state written by [`encode_channel`].
pub(crate) fn decode_channel(bytes: &[u8]) -> Result<ChannelStatus, StoreError> {
    let mut reader = ByteReader::new(bytes, CHANNEL_TAG)?;
    let status = match reader.u8()? {
        0 => {
            let sheet = read_sheet(&mut reader)?;
            let previous_sheet = read_sheet(&mut reader)?;
            let position = ChainPosition {
                inconsistency_counter: reader.u64()?,
                move_token_counter: reader.u64()?,
            };
            let tip = reader.signature()?;
            let holder = match reader.u8()? {
                0 => TokenHolder::Local,
                1 => TokenHolder::Remote {
                    last_outgoing: reader.option(|r| decode_token(r.bytes_field()?))?,
                },
                _ => return Err(invalid("bad token holder")),
            };
            let last_incoming = reader.option(|r| decode_token(r.bytes_field()?))?;
            let recent = reader.u32()? as usize;
            if recent > offst_credit::channel::RECENT_INCOMING_TOKENS {
                return Err(invalid("too many recent tokens"));
            }
            let recent_incoming = (0..recent)
                .map(|_| reader.signature())
                .collect::<Result<VecDeque<_>, _>>()?;
            let own_reset_terms = reader.option(|r| decode_terms(r.bytes_field()?))?;
            let accepted_reset_token = reader.option(ByteReader::signature)?;
            ChannelStatus::Consistent(TokenChannel {
                sheet,
                previous_sheet,
                position,
                tip,
                holder,
                last_incoming,
                recent_incoming,
                own_reset_terms,
                accepted_reset_token,
            })
        }
        1 => ChannelStatus::Inconsistent(Inconsistency {
            local_terms: decode_terms(reader.bytes_field()?)?,
            remote_terms: reader.option(|r| decode_terms(r.bytes_field()?))?,
            last_incoming: reader.option(|r| decode_token(r.bytes_field()?))?,
            previous_sheet: reader.option(read_sheet)?,
            published_counter: reader.u64()?,
        }),
        _ => return Err(invalid("bad channel status")),
    };
    reader.finish()?;
    Ok(status)
}

/// Encodes a relay list.
pub(crate) fn encode_relays(relays: &[RelayAddress]) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(RELAYS_TAG);
    writer.list_len(relays.len());
    for relay in relays {
        writer
            .fixed(relay.public_key.as_bytes())
            .text(relay.address.as_str());
    }
    writer.finish()
}

/// Decodes a relay list.
pub(crate) fn decode_relays(bytes: &[u8]) -> Result<Vec<RelayAddress>, StoreError> {
    let mut reader = ByteReader::new(bytes, RELAYS_TAG)?;
    let count = reader.u32()? as usize;
    if count > offst_proto::limits::MAX_RELAYS {
        return Err(invalid("too many relays"));
    }
    let relays = (0..count)
        .map(|_| {
            Ok(RelayAddress {
                public_key: reader.public_key()?,
                address: NetAddress::new(reader.text()?)
                    .map_err(|err| invalid(&err.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    reader.finish()?;
    Ok(relays)
}

/// Encodes a queued operation: the operation in a move-token envelope of the wire codec, so
/// there is one decoder for operations.
pub(crate) fn encode_operation(operation: &FriendOperation) -> Vec<u8> {
    let envelope = MoveToken {
        old_token: Signature::from_bytes([0; 64]),
        inconsistency_counter: 0,
        move_token_counter: 0,
        operations: vec![operation.clone()],
        info_hash: offst_proto::HashResult::from_bytes([0; 32]),
        rand_nonce: offst_proto::RandValue::from_bytes([0; 16]),
        new_token: Signature::from_bytes([0; 64]),
    };
    let mut writer = CanonicalWriter::new(OPERATION_TAG);
    writer.bytes(&encode_token(&envelope));
    writer.finish()
}

/// Decodes a queued operation.
pub(crate) fn decode_operation(bytes: &[u8]) -> Result<FriendOperation, StoreError> {
    let mut reader = ByteReader::new(bytes, OPERATION_TAG)?;
    let envelope = decode_token(reader.bytes_field()?)?;
    reader.finish()?;
    let mut operations = envelope.operations;
    match (operations.pop(), operations.is_empty()) {
        (Some(operation), true) => Ok(operation),
        _ => Err(invalid(
            "operation envelope must hold exactly one operation",
        )),
    }
}

// ---- payment records (settings rows under `credit/...`, see `ledger.rs`) ----

const PAYMENT_TAG: &[u8] = b"offst/v1/store/payment";
const INVOICE_TAG: &[u8] = b"offst/v1/store/invoice";
const FORWARD_TAG: &[u8] = b"offst/v1/store/forward";
const FEE_RATE_TAG: &[u8] = b"offst/v1/store/fee-rate";
const ACCOUNT_TAG: &[u8] = b"offst/v1/store/account";

/// Most routes or received requests one stored record may hold.
const MAX_STORED_ROUTES: usize = 1024;

fn write_status(writer: &mut CanonicalWriter, status: PaymentStatus) {
    writer.u8(match status {
        PaymentStatus::InProgress => 0,
        PaymentStatus::Succeeded => 1,
        PaymentStatus::Cancelled => 2,
    });
}

fn read_status(reader: &mut ByteReader<'_>) -> Result<PaymentStatus, StoreError> {
    match reader.u8()? {
        0 => Ok(PaymentStatus::InProgress),
        1 => Ok(PaymentStatus::Succeeded),
        2 => Ok(PaymentStatus::Cancelled),
        _ => Err(invalid("bad payment status")),
    }
}

fn read_invoice(reader: &mut ByteReader<'_>) -> Result<Invoice, StoreError> {
    Invoice::from_uri(reader.text()?).map_err(|err| invalid(&err.to_string()))
}

fn write_u64_option(writer: &mut CanonicalWriter, value: Option<u64>) {
    writer.option(value.as_ref(), |w, v| {
        w.u64(*v);
    });
}

fn request_from(bytes: &[u8]) -> Result<RequestSendFunds, StoreError> {
    match decode_operation(bytes)? {
        FriendOperation::RequestSendFunds(request) => Ok(*request),
        _ => Err(invalid("expected a payment request")),
    }
}

fn request_bytes(request: &RequestSendFunds) -> Vec<u8> {
    encode_operation(&FriendOperation::RequestSendFunds(Box::new(
        request.clone(),
    )))
}

fn read_key_list(reader: &mut ByteReader<'_>) -> Result<Vec<PublicKey>, StoreError> {
    let count = reader.u32()? as usize;
    if count > offst_proto::limits::MAX_ROUTE_LEN {
        return Err(invalid("route too long"));
    }
    (0..count).map(|_| reader.public_key()).collect()
}

/// Encodes a buyer's payment record.
pub(crate) fn encode_payment(payment: &Payment) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(PAYMENT_TAG);
    writer
        .fixed(payment.payment_id.as_bytes())
        .text(&payment.invoice.to_uri())
        .list_len(payment.routes.len());
    for route in &payment.routes {
        writer
            .fixed(route.request_id.as_bytes())
            .list_len(route.route.len());
        for node in &route.route {
            writer.fixed(node.as_bytes());
        }
        writer.u128(route.dest_payment.0).u128(route.max_fees.0);
        write_status(&mut writer, route.status);
        writer.u128(route.paid.0);
    }
    write_status(&mut writer, payment.status);
    writer.option(payment.plain_lock.as_ref(), |w, lock| {
        w.fixed(lock.as_bytes());
    });
    writer.u128(payment.fees_paid.0).u64(payment.started_at);
    write_u64_option(&mut writer, payment.finished_at);
    writer.finish()
}

/// Decodes a buyer's payment record.
pub(crate) fn decode_payment(bytes: &[u8]) -> Result<Payment, StoreError> {
    let mut reader = ByteReader::new(bytes, PAYMENT_TAG)?;
    let payment_id = PaymentId::from_bytes(reader.array()?);
    let invoice = read_invoice(&mut reader)?;
    let count = reader.u32()? as usize;
    if count > MAX_STORED_ROUTES {
        return Err(invalid("too many routes"));
    }
    let mut routes = Vec::with_capacity(count);
    for _ in 0..count {
        routes.push(PaymentRoute {
            request_id: RequestId::from_bytes(reader.array()?),
            route: read_key_list(&mut reader)?,
            dest_payment: reader.credits()?,
            max_fees: reader.credits()?,
            status: read_status(&mut reader)?,
            paid: reader.credits()?,
        });
    }
    let payment = Payment {
        payment_id,
        invoice,
        routes,
        status: read_status(&mut reader)?,
        plain_lock: reader.option(|r| Ok(PlainLock::from_bytes(r.array()?)))?,
        fees_paid: reader.credits()?,
        started_at: reader.u64()?,
        finished_at: reader.option(ByteReader::u64)?,
    };
    reader.finish()?;
    Ok(payment)
}

/// Encodes a seller's invoice record.
pub(crate) fn encode_invoice(record: &OpenInvoice) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(INVOICE_TAG);
    writer
        .text(&record.invoice.to_uri())
        .fixed(record.plain_lock.as_bytes());
    write_status(&mut writer, record.status);
    writer.list_len(record.received.len());
    for received in &record.received {
        writer
            .fixed(received.from.as_bytes())
            .fixed(received.request_id.as_bytes())
            .u128(received.dest_payment.0)
            .u64(received.expires_at)
            .u64(received.route_len as u64);
    }
    writer.u64(record.created_at);
    write_u64_option(&mut writer, record.finished_at);
    writer.finish()
}

/// Decodes a seller's invoice record.
pub(crate) fn decode_invoice(bytes: &[u8]) -> Result<OpenInvoice, StoreError> {
    let mut reader = ByteReader::new(bytes, INVOICE_TAG)?;
    let invoice = read_invoice(&mut reader)?;
    let plain_lock = PlainLock::from_bytes(reader.array()?);
    let status = read_status(&mut reader)?;
    let count = reader.u32()? as usize;
    if count > MAX_STORED_ROUTES {
        return Err(invalid("too many received requests"));
    }
    let mut received = Vec::with_capacity(count);
    for _ in 0..count {
        received.push(ReceivedRequest {
            from: reader.public_key()?,
            request_id: RequestId::from_bytes(reader.array()?),
            dest_payment: reader.credits()?,
            expires_at: reader.u64()?,
            route_len: usize::try_from(reader.u64()?).map_err(|_| invalid("route length"))?,
        });
    }
    let record = OpenInvoice {
        invoice,
        plain_lock,
        status,
        received,
        created_at: reader.u64()?,
        finished_at: reader.option(ByteReader::u64)?,
    };
    reader.finish()?;
    Ok(record)
}

/// Encodes a mediator's forward.
pub(crate) fn encode_forward(forward: &Forward) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(FORWARD_TAG);
    writer
        .fixed(forward.upstream.as_bytes())
        .fixed(forward.downstream.as_bytes())
        .bytes(&request_bytes(&forward.request))
        .option(forward.rate.as_ref(), |w, rate| {
            w.u32(rate.per_million).u128(rate.flat.0);
        })
        .u128(forward.fee.0);
    writer.finish()
}

/// Decodes a mediator's forward.
pub(crate) fn decode_forward(bytes: &[u8]) -> Result<Forward, StoreError> {
    let mut reader = ByteReader::new(bytes, FORWARD_TAG)?;
    let forward = Forward {
        upstream: reader.public_key()?,
        downstream: reader.public_key()?,
        request: request_from(reader.bytes_field()?)?,
        rate: reader.option(|r| {
            Ok(FeeRate {
                per_million: r.u32()?,
                flat: r.credits()?,
            })
        })?,
        fee: reader.credits()?,
    };
    reader.finish()?;
    Ok(forward)
}

/// Encodes a fee rate.
pub(crate) fn encode_fee_rate(rate: &FeeRate) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(FEE_RATE_TAG);
    writer.u32(rate.per_million).u128(rate.flat.0);
    writer.finish()
}

/// Decodes a fee rate.
pub(crate) fn decode_fee_rate(bytes: &[u8]) -> Result<FeeRate, StoreError> {
    let mut reader = ByteReader::new(bytes, FEE_RATE_TAG)?;
    let rate = FeeRate {
        per_million: reader.u32()?,
        flat: reader.credits()?,
    };
    reader.finish()?;
    Ok(rate)
}

/// Encodes a payment account.
pub(crate) fn encode_account(account: &PaymentAccount) -> Vec<u8> {
    let mut writer = CanonicalWriter::new(ACCOUNT_TAG);
    writer
        .u128(account.fees_earned.0)
        .u128(account.fees_paid.0)
        .u128(account.received.0)
        .u128(account.sent.0);
    writer.finish()
}

/// Decodes a payment account.
pub(crate) fn decode_account(bytes: &[u8]) -> Result<PaymentAccount, StoreError> {
    let mut reader = ByteReader::new(bytes, ACCOUNT_TAG)?;
    let account = PaymentAccount {
        fees_earned: reader.credits()?,
        fees_paid: reader.credits()?,
        received: reader.credits()?,
        sent: reader.credits()?,
    };
    reader.finish()?;
    Ok(account)
}

#[cfg(test)]
mod payment_record_tests {
    use super::*;

    #[test]
    fn forwards_rates_and_accounts_round_trip() {
        let request = RequestSendFunds {
            request_id: RequestId::from_bytes([1; 16]),
            currency: Currency::new("FST").unwrap(),
            route: vec![
                PublicKey::from_bytes([1; 32]),
                PublicKey::from_bytes([2; 32]),
                PublicKey::from_bytes([3; 32]),
            ],
            dest_payment: Credits(10),
            total_dest_payment: Credits(20),
            invoice_id: offst_proto::InvoiceId::from_bytes([4; 32]),
            hashed_lock: offst_proto::HashedLock::from_bytes([5; 32]),
            left_fees: Credits(3),
            expires_at: 77,
        };
        let forward = Forward {
            upstream: PublicKey::from_bytes([1; 32]),
            downstream: PublicKey::from_bytes([3; 32]),
            request,
            rate: Some(FeeRate {
                per_million: 7,
                flat: Credits(1),
            }),
            fee: Credits(1),
        };
        assert_eq!(decode_forward(&encode_forward(&forward)).unwrap(), forward);
        let rate = FeeRate {
            per_million: 12,
            flat: Credits(3),
        };
        assert_eq!(decode_fee_rate(&encode_fee_rate(&rate)).unwrap(), rate);
        let account = PaymentAccount {
            fees_earned: Credits(1),
            fees_paid: Credits(2),
            received: Credits(3),
            sent: Credits(4),
        };
        assert_eq!(decode_account(&encode_account(&account)).unwrap(), account);
        assert!(decode_forward(&encode_account(&account)).is_err());
    }
}
