//! Messages of the friend channel (schema `friend.capnp`): move tokens, their operations and
//! reset terms, with their canonical signing bytes. The state machine that uses them is
//! `offst_credit`; docs/PROTOCOL.md, "Friend channel", is the normative description.

use crate::canonical::{domain, CanonicalWriter};
use crate::codec::{
    check_len, decode_root, encode_root, read_balance, read_credits, read_fixed, read_text,
    write_balance, write_credits, DecodeError, WireMessage,
};
use std::collections::BTreeSet;

use crate::limits::{MAX_CURRENCIES_PER_FRIEND, MAX_OPERATIONS_IN_BATCH, MAX_ROUTE_LEN};
use crate::schema::friend_capnp::{
    currency_balance, friend_message, friend_operation, move_token, reset_terms,
};
use crate::types::{
    Balance, Credits, Currency, HashResult, HashedLock, InvoiceId, PaymentId, PlainLock, PublicKey,
    RandValue, RequestId, Signature,
};

/// One operation inside a move token. Operations are applied in order, all or nothing, to the
/// balance sheet of the pair; the sender applies them before signing, the receiver verifies
/// that applying them gives the sheet the sender signed.
///
/// Multi-hop payments use [`FriendOperation::RequestSendFunds`] (upstream to downstream),
/// [`FriendOperation::CancelSendFunds`] and [`FriendOperation::CollectSendFunds`] (downstream to
/// upstream); docs/PROTOCOL.md §14.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FriendOperation {
    /// Adds a currency to the shared sheet: balance 0, both limits 0, both sides closed.
    AddCurrency(Currency),
    /// Removes a currency whose balance and pending debts are all zero.
    RemoveCurrency(Currency),
    /// The sender lets the receiver owe it at most `max_debt` in `currency`.
    SetRemoteMaxDebt {
        /// The currency.
        currency: Currency,
        /// The new limit.
        max_debt: Credits,
    },
    /// Whether the sender accepts new incoming payments in `currency`.
    SetCurrencyOpen {
        /// The currency.
        currency: Currency,
        /// `true`: payments to the sender are accepted.
        open: bool,
    },
    /// The sender pays the receiver `amount` directly (a payment without mediators). The
    /// receiver accepts it only within the limit it set for the sender and if it is open.
    Transfer {
        /// The currency.
        currency: Currency,
        /// The amount, more than zero.
        amount: Credits,
        /// Chosen by the sender so both sides can name the transfer in events and history.
        transfer_id: PaymentId,
    },
    /// The sender asks the receiver to carry a payment toward the seller, freezing
    /// [`RequestSendFunds::frozen`] as its pending debt until the receiver releases it.
    RequestSendFunds(Box<RequestSendFunds>),
    /// The sender releases a request it received: nothing is paid.
    CancelSendFunds {
        /// The request's currency.
        currency: Currency,
        /// The request.
        request_id: RequestId,
    },
    /// The sender reveals the plain lock of a request it received and collects `amount` (at
    /// most what was frozen): the receiver now owes it `amount` more.
    CollectSendFunds {
        /// The request's currency.
        currency: Currency,
        /// The request.
        request_id: RequestId,
        /// The preimage of the request's hashed lock.
        plain_lock: PlainLock,
        /// What the receiver pays: the seller's amount plus the fees of the hops from the
        /// sender to the seller.
        amount: Credits,
    },
}

/// One route of a payment, as it travels from hop to hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSendFunds {
    /// Chosen by the buyer; names this route of the payment at every hop.
    pub request_id: RequestId,
    /// The currency.
    pub currency: Currency,
    /// The nodes from buyer to seller, 2 to [`MAX_ROUTE_LEN`], none twice.
    pub route: Vec<PublicKey>,
    /// What the seller receives over this route (more than zero).
    pub dest_payment: Credits,
    /// The invoice amount over all routes (at least `dest_payment`).
    pub total_dest_payment: Credits,
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// The invoice's hash lock.
    pub hashed_lock: HashedLock,
    /// The most the remaining mediators (the receiver first) may charge in total.
    pub left_fees: Credits,
    /// Unix ms after which the receiver must not carry the request on (lower at every hop).
    pub expires_at: u64,
}

impl RequestSendFunds {
    /// The credit the request freezes on the link: `dest_payment + left_fees` (`None` on
    /// overflow).
    pub fn frozen(&self) -> Option<Credits> {
        self.dest_payment.checked_add(self.left_fees)
    }

    /// Structural checks a decoder enforces: route length and no repeated node, amounts.
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.route.len() < 2 || self.route.len() > MAX_ROUTE_LEN {
            return Err(DecodeError::Invalid("a route has 2 to MAX_ROUTE_LEN nodes"));
        }
        let unique: BTreeSet<&PublicKey> = self.route.iter().collect();
        if unique.len() != self.route.len() {
            return Err(DecodeError::Invalid("a route visits a node twice"));
        }
        if self.dest_payment == Credits::ZERO || self.dest_payment > self.total_dest_payment {
            return Err(DecodeError::Invalid(
                "destPayment must be more than zero and at most totalDestPayment",
            ));
        }
        if self.frozen().is_none() {
            return Err(DecodeError::Invalid("destPayment + leftFees overflows"));
        }
        Ok(())
    }

    /// The node after `node` on the route, if `node` is on it and not the seller.
    pub fn next_hop(&self, node: &PublicKey) -> Option<&PublicKey> {
        let index = self.route.iter().position(|key| key == node)?;
        self.route.get(index.checked_add(1)?)
    }

    /// The seller: the last node of the route.
    pub fn seller(&self) -> Option<&PublicKey> {
        self.route.last()
    }

    /// Appends the canonical form (the fields in declaration order).
    pub fn write_canonical(&self, writer: &mut CanonicalWriter) {
        writer
            .fixed(self.request_id.as_bytes())
            .text(self.currency.as_str())
            .list_len(self.route.len());
        for node in &self.route {
            writer.fixed(node.as_bytes());
        }
        writer
            .u128(self.dest_payment.0)
            .u128(self.total_dest_payment.0)
            .fixed(self.invoice_id.as_bytes())
            .fixed(self.hashed_lock.as_bytes())
            .u128(self.left_fees.0)
            .u64(self.expires_at);
    }
}

impl FriendOperation {
    /// The currency the operation is about.
    pub fn currency(&self) -> &Currency {
        match self {
            FriendOperation::AddCurrency(currency) | FriendOperation::RemoveCurrency(currency) => {
                currency
            }
            FriendOperation::SetRemoteMaxDebt { currency, .. }
            | FriendOperation::SetCurrencyOpen { currency, .. }
            | FriendOperation::Transfer { currency, .. }
            | FriendOperation::CancelSendFunds { currency, .. }
            | FriendOperation::CollectSendFunds { currency, .. } => currency,
            FriendOperation::RequestSendFunds(request) => &request.currency,
        }
    }

    /// Appends the canonical form: a variant tag byte, then the fields in declaration order.
    pub fn write_canonical(&self, writer: &mut CanonicalWriter) {
        match self {
            FriendOperation::AddCurrency(currency) => {
                writer.u8(0).text(currency.as_str());
            }
            FriendOperation::RemoveCurrency(currency) => {
                writer.u8(1).text(currency.as_str());
            }
            FriendOperation::SetRemoteMaxDebt { currency, max_debt } => {
                writer.u8(2).text(currency.as_str()).u128(max_debt.0);
            }
            FriendOperation::SetCurrencyOpen { currency, open } => {
                writer.u8(3).text(currency.as_str()).bool(*open);
            }
            FriendOperation::Transfer {
                currency,
                amount,
                transfer_id,
            } => {
                writer
                    .u8(4)
                    .text(currency.as_str())
                    .u128(amount.0)
                    .fixed(transfer_id.as_bytes());
            }
            FriendOperation::RequestSendFunds(request) => {
                writer.u8(5);
                request.write_canonical(writer);
            }
            FriendOperation::CancelSendFunds {
                currency,
                request_id,
            } => {
                writer
                    .u8(6)
                    .text(currency.as_str())
                    .fixed(request_id.as_bytes());
            }
            FriendOperation::CollectSendFunds {
                currency,
                request_id,
                plain_lock,
                amount,
            } => {
                writer
                    .u8(7)
                    .text(currency.as_str())
                    .fixed(request_id.as_bytes())
                    .fixed(plain_lock.as_bytes())
                    .u128(amount.0);
            }
        }
    }
}

/// A signed link of the token channel. Whoever sends a move token passes the token (the right
/// to send the next one) to the friend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveToken {
    /// `new_token` of the previous move token, or the genesis link, or the reset token of the
    /// accepted reset terms.
    pub old_token: Signature,
    /// The epoch: how many times the channel was reset (never decreases).
    pub inconsistency_counter: u64,
    /// Position in the chain within the epoch: the genesis link and a reset token have 0.
    pub move_token_counter: u64,
    /// At most [`MAX_OPERATIONS_IN_BATCH`] operations, applied in order.
    pub operations: Vec<FriendOperation>,
    /// SHA-512/256 of the canonical balance sheet after the operations (see
    /// `offst_credit::sheet::sheet_hash`).
    pub info_hash: HashResult,
    /// 16 random bytes. Signatures are deterministic and so is the genesis link: without the
    /// nonce, a node that lost its data would re-create, bit for bit, tokens it sent before,
    /// and its friend would take them for replays instead of detecting the divergence.
    pub rand_nonce: RandValue,
    /// The sender's Ed25519 signature over [`MoveToken::signing_bytes`].
    pub new_token: Signature,
}

impl MoveToken {
    /// The bytes the sender signs: tag `offst/v1/friend/move-token`, `old_token`, both counters,
    /// the operations (count, then each canonical operation), `info_hash`, `rand_nonce`. The
    /// pair's public keys are bound through `info_hash`, which covers them.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Self::signing_bytes_of(
            &self.old_token,
            self.inconsistency_counter,
            self.move_token_counter,
            &self.operations,
            &self.info_hash,
            &self.rand_nonce,
        )
    }

    /// The signing bytes of a token not yet signed.
    pub fn signing_bytes_of(
        old_token: &Signature,
        inconsistency_counter: u64,
        move_token_counter: u64,
        operations: &[FriendOperation],
        info_hash: &HashResult,
        rand_nonce: &RandValue,
    ) -> Vec<u8> {
        let mut writer = CanonicalWriter::new(domain::MOVE_TOKEN);
        writer
            .fixed(old_token.as_bytes())
            .u64(inconsistency_counter)
            .u64(move_token_counter)
            .list_len(operations.len());
        for operation in operations {
            operation.write_canonical(&mut writer);
        }
        writer
            .fixed(info_hash.as_bytes())
            .fixed(rand_nonce.as_bytes());
        writer.finish()
    }
}

/// One currency of a balance sheet as seen by the sender of the containing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyBalance {
    /// The currency.
    pub currency: Currency,
    /// Positive: the receiver owes the sender.
    pub balance: Balance,
    /// The most the sender may owe (the limit the receiver set).
    pub local_max_debt: Credits,
    /// The most the receiver may owe (the limit the sender set).
    pub remote_max_debt: Credits,
    /// The sender accepts incoming payments in this currency.
    pub local_open: bool,
    /// The receiver accepts incoming payments in this currency.
    pub remote_open: bool,
}

/// The terms on which the sender offers to restart an inconsistent channel: its view of every
/// balance and limit. The friend accepts them by sending a move token whose `old_token` is
/// `reset_token` and whose sheet is exactly these terms, seen from its side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetTerms {
    /// 64 random bytes naming these terms.
    pub reset_token: Signature,
    /// The epoch the reset starts (above every epoch the sender has seen).
    pub inconsistency_counter: u64,
    /// Strictly sorted by currency name, at most [`MAX_CURRENCIES_PER_FRIEND`].
    pub currencies: Vec<CurrencyBalance>,
}

/// A move token as sent: the token and whether the sender wants the token back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveTokenMessage {
    /// The token.
    pub token: MoveToken,
    /// The sender has more to send and asks the friend to pass the token back soon.
    pub token_wanted: bool,
}

/// One message of the friend channel, as framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FriendMessage {
    /// A signed move token, new or retransmitted.
    MoveToken(MoveTokenMessage),
    /// The sender has something to send but no signed token of its own to retransmit.
    TokenWanted,
    /// The channel is inconsistent; the sender's terms to restart it.
    ResetTerms(ResetTerms),
}

fn write_operation(mut builder: friend_operation::Builder<'_>, operation: &FriendOperation) {
    match operation {
        FriendOperation::AddCurrency(currency) => builder.set_add_currency(currency.as_str()),
        FriendOperation::RemoveCurrency(currency) => {
            builder.set_remove_currency(currency.as_str());
        }
        FriendOperation::SetRemoteMaxDebt { currency, max_debt } => {
            let mut b = builder.init_set_remote_max_debt();
            b.set_currency(currency.as_str());
            write_credits(b.init_max_debt(), *max_debt);
        }
        FriendOperation::SetCurrencyOpen { currency, open } => {
            let mut b = builder.init_set_currency_open();
            b.set_currency(currency.as_str());
            b.set_open(*open);
        }
        FriendOperation::Transfer {
            currency,
            amount,
            transfer_id,
        } => {
            let mut b = builder.init_transfer();
            b.set_currency(currency.as_str());
            write_credits(b.reborrow().init_amount(), *amount);
            b.set_transfer_id(transfer_id.as_bytes());
        }
        FriendOperation::RequestSendFunds(request) => {
            let mut b = builder.init_request_send_funds();
            b.set_request_id(request.request_id.as_bytes());
            b.set_currency(request.currency.as_str());
            let len = u32::try_from(request.route.len()).unwrap_or(u32::MAX);
            let mut route = b.reborrow().init_route(len);
            for (index, node) in (0..len).zip(&request.route) {
                route.set(index, node.as_bytes());
            }
            write_credits(b.reborrow().init_dest_payment(), request.dest_payment);
            write_credits(
                b.reborrow().init_total_dest_payment(),
                request.total_dest_payment,
            );
            b.set_invoice_id(request.invoice_id.as_bytes());
            b.set_hashed_lock(request.hashed_lock.as_bytes());
            write_credits(b.reborrow().init_left_fees(), request.left_fees);
            b.set_expires_at(request.expires_at);
        }
        FriendOperation::CancelSendFunds {
            currency,
            request_id,
        } => {
            let mut b = builder.init_cancel_send_funds();
            b.set_currency(currency.as_str());
            b.set_request_id(request_id.as_bytes());
        }
        FriendOperation::CollectSendFunds {
            currency,
            request_id,
            plain_lock,
            amount,
        } => {
            let mut b = builder.init_collect_send_funds();
            b.set_currency(currency.as_str());
            b.set_request_id(request_id.as_bytes());
            b.set_plain_lock(plain_lock.as_bytes());
            write_credits(b.init_amount(), *amount);
        }
    }
}

fn read_operation(reader: friend_operation::Reader<'_>) -> Result<FriendOperation, DecodeError> {
    Ok(match reader.which()? {
        friend_operation::AddCurrency(text) => {
            FriendOperation::AddCurrency(read_text("addCurrency", text, Currency::new)?)
        }
        friend_operation::RemoveCurrency(text) => {
            FriendOperation::RemoveCurrency(read_text("removeCurrency", text, Currency::new)?)
        }
        friend_operation::SetRemoteMaxDebt(op) => {
            let op = op?;
            FriendOperation::SetRemoteMaxDebt {
                currency: read_text("currency", op.get_currency(), Currency::new)?,
                max_debt: read_credits("maxDebt", op.get_max_debt())?,
            }
        }
        friend_operation::SetCurrencyOpen(op) => {
            let op = op?;
            FriendOperation::SetCurrencyOpen {
                currency: read_text("currency", op.get_currency(), Currency::new)?,
                open: op.get_open(),
            }
        }
        friend_operation::Transfer(op) => {
            let op = op?;
            FriendOperation::Transfer {
                currency: read_text("currency", op.get_currency(), Currency::new)?,
                amount: read_credits("amount", op.get_amount())?,
                transfer_id: read_fixed(
                    "transferId",
                    op.get_transfer_id(),
                    PaymentId::try_from_slice,
                )?,
            }
        }
        friend_operation::RequestSendFunds(op) => {
            let op = op?;
            let list = op.get_route()?;
            let len = check_len("route", list.len(), MAX_ROUTE_LEN)?;
            let mut route = Vec::with_capacity(len);
            for node in list.iter() {
                route.push(read_fixed("route", node, PublicKey::try_from_slice)?);
            }
            let request = RequestSendFunds {
                request_id: read_fixed(
                    "requestId",
                    op.get_request_id(),
                    RequestId::try_from_slice,
                )?,
                currency: read_text("currency", op.get_currency(), Currency::new)?,
                route,
                dest_payment: read_credits("destPayment", op.get_dest_payment())?,
                total_dest_payment: read_credits("totalDestPayment", op.get_total_dest_payment())?,
                invoice_id: read_fixed(
                    "invoiceId",
                    op.get_invoice_id(),
                    InvoiceId::try_from_slice,
                )?,
                hashed_lock: read_fixed(
                    "hashedLock",
                    op.get_hashed_lock(),
                    HashedLock::try_from_slice,
                )?,
                left_fees: read_credits("leftFees", op.get_left_fees())?,
                expires_at: op.get_expires_at(),
            };
            request.check()?;
            FriendOperation::RequestSendFunds(Box::new(request))
        }
        friend_operation::CancelSendFunds(op) => {
            let op = op?;
            FriendOperation::CancelSendFunds {
                currency: read_text("currency", op.get_currency(), Currency::new)?,
                request_id: read_fixed(
                    "requestId",
                    op.get_request_id(),
                    RequestId::try_from_slice,
                )?,
            }
        }
        friend_operation::CollectSendFunds(op) => {
            let op = op?;
            FriendOperation::CollectSendFunds {
                currency: read_text("currency", op.get_currency(), Currency::new)?,
                request_id: read_fixed(
                    "requestId",
                    op.get_request_id(),
                    RequestId::try_from_slice,
                )?,
                plain_lock: read_fixed(
                    "plainLock",
                    op.get_plain_lock(),
                    PlainLock::try_from_slice,
                )?,
                amount: read_credits("amount", op.get_amount())?,
            }
        }
    })
}

fn write_move_token(mut builder: move_token::Builder<'_>, token: &MoveToken) {
    builder.set_old_token(token.old_token.as_bytes());
    builder.set_inconsistency_counter(token.inconsistency_counter);
    builder.set_move_token_counter(token.move_token_counter);
    builder.set_info_hash(token.info_hash.as_bytes());
    builder.set_new_token(token.new_token.as_bytes());
    builder.set_rand_nonce(token.rand_nonce.as_bytes());
    let len = u32::try_from(token.operations.len()).unwrap_or(u32::MAX);
    let mut list = builder.init_operations(len);
    for (index, operation) in (0..len).zip(&token.operations) {
        write_operation(list.reborrow().get(index), operation);
    }
}

fn read_move_token(reader: move_token::Reader<'_>) -> Result<MoveToken, DecodeError> {
    let list = reader.get_operations()?;
    check_len("operations", list.len(), MAX_OPERATIONS_IN_BATCH)?;
    let operations = list
        .iter()
        .map(read_operation)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MoveToken {
        old_token: read_fixed(
            "oldToken",
            reader.get_old_token(),
            Signature::try_from_slice,
        )?,
        inconsistency_counter: reader.get_inconsistency_counter(),
        move_token_counter: reader.get_move_token_counter(),
        operations,
        info_hash: read_fixed(
            "infoHash",
            reader.get_info_hash(),
            HashResult::try_from_slice,
        )?,
        rand_nonce: read_fixed(
            "randNonce",
            reader.get_rand_nonce(),
            RandValue::try_from_slice,
        )?,
        new_token: read_fixed(
            "newToken",
            reader.get_new_token(),
            Signature::try_from_slice,
        )?,
    })
}

fn write_currency_balance(mut builder: currency_balance::Builder<'_>, entry: &CurrencyBalance) {
    builder.set_currency(entry.currency.as_str());
    write_balance(builder.reborrow().init_balance(), entry.balance);
    write_credits(
        builder.reborrow().init_local_max_debt(),
        entry.local_max_debt,
    );
    write_credits(
        builder.reborrow().init_remote_max_debt(),
        entry.remote_max_debt,
    );
    builder.set_local_open(entry.local_open);
    builder.set_remote_open(entry.remote_open);
}

fn read_currency_balance(
    reader: currency_balance::Reader<'_>,
) -> Result<CurrencyBalance, DecodeError> {
    Ok(CurrencyBalance {
        currency: read_text("currency", reader.get_currency(), Currency::new)?,
        balance: read_balance(reader.get_balance())?,
        local_max_debt: read_credits("localMaxDebt", reader.get_local_max_debt())?,
        remote_max_debt: read_credits("remoteMaxDebt", reader.get_remote_max_debt())?,
        local_open: reader.get_local_open(),
        remote_open: reader.get_remote_open(),
    })
}

fn write_reset_terms(mut builder: reset_terms::Builder<'_>, terms: &ResetTerms) {
    builder.set_reset_token(terms.reset_token.as_bytes());
    builder.set_inconsistency_counter(terms.inconsistency_counter);
    let len = u32::try_from(terms.currencies.len()).unwrap_or(u32::MAX);
    let mut list = builder.init_currencies(len);
    for (index, entry) in (0..len).zip(&terms.currencies) {
        write_currency_balance(list.reborrow().get(index), entry);
    }
}

fn read_reset_terms(reader: reset_terms::Reader<'_>) -> Result<ResetTerms, DecodeError> {
    let list = reader.get_currencies()?;
    check_len("currencies", list.len(), MAX_CURRENCIES_PER_FRIEND)?;
    let currencies = list
        .iter()
        .map(read_currency_balance)
        .collect::<Result<Vec<_>, _>>()?;
    if currencies
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if a.currency >= b.currency))
    {
        return Err(DecodeError::Invalid(
            "resetTerms: currencies not strictly sorted",
        ));
    }
    Ok(ResetTerms {
        reset_token: read_fixed(
            "resetToken",
            reader.get_reset_token(),
            Signature::try_from_slice,
        )?,
        inconsistency_counter: reader.get_inconsistency_counter(),
        currencies,
    })
}

impl WireMessage for FriendMessage {
    fn encode(&self) -> Vec<u8> {
        encode_root::<friend_message::Owned>(|mut root| match self {
            FriendMessage::MoveToken(message) => {
                let mut b = root.init_move_token();
                b.set_token_wanted(message.token_wanted);
                write_move_token(b.init_token(), &message.token);
            }
            FriendMessage::TokenWanted => root.set_token_wanted(()),
            FriendMessage::ResetTerms(terms) => write_reset_terms(root.init_reset_terms(), terms),
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_root::<friend_message::Owned, _>(bytes, |root| {
            Ok(match root.which()? {
                friend_message::MoveToken(message) => {
                    let message = message?;
                    FriendMessage::MoveToken(MoveTokenMessage {
                        token: read_move_token(message.get_token()?)?,
                        token_wanted: message.get_token_wanted(),
                    })
                }
                friend_message::TokenWanted(()) => FriendMessage::TokenWanted,
                friend_message::ResetTerms(terms) => {
                    FriendMessage::ResetTerms(read_reset_terms(terms?)?)
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::friend_capnp;

    fn currency(name: &str) -> Currency {
        Currency::new(name).unwrap()
    }

    fn all_operations() -> Vec<FriendOperation> {
        vec![
            FriendOperation::AddCurrency(currency("FST")),
            FriendOperation::RemoveCurrency(currency("USD")),
            FriendOperation::SetRemoteMaxDebt {
                currency: currency("FST"),
                max_debt: Credits::MAX,
            },
            FriendOperation::SetCurrencyOpen {
                currency: currency("FST"),
                open: true,
            },
            FriendOperation::Transfer {
                currency: currency("FST"),
                amount: Credits(u64::MAX as u128 + 7),
                transfer_id: PaymentId::from_bytes([9; 16]),
            },
            FriendOperation::RequestSendFunds(Box::new(sample_request())),
            FriendOperation::CancelSendFunds {
                currency: currency("FST"),
                request_id: RequestId::from_bytes([3; 16]),
            },
            FriendOperation::CollectSendFunds {
                currency: currency("FST"),
                request_id: RequestId::from_bytes([3; 16]),
                plain_lock: PlainLock::from_bytes([4; 32]),
                amount: Credits(12),
            },
        ]
    }

    fn sample_request() -> RequestSendFunds {
        RequestSendFunds {
            request_id: RequestId::from_bytes([3; 16]),
            currency: currency("FST"),
            route: vec![
                PublicKey::from_bytes([1; 32]),
                PublicKey::from_bytes([2; 32]),
                PublicKey::from_bytes([3; 32]),
            ],
            dest_payment: Credits(10),
            total_dest_payment: Credits(30),
            invoice_id: InvoiceId::from_bytes([5; 32]),
            hashed_lock: HashedLock::from_bytes([6; 32]),
            left_fees: Credits(2),
            expires_at: 99,
        }
    }

    #[test]
    fn malformed_payment_requests_are_rejected() {
        let mut looping = sample_request();
        looping.route.push(looping.route[0]);
        let mut zero = sample_request();
        zero.dest_payment = Credits::ZERO;
        let mut short = sample_request();
        short.route.truncate(1);
        let mut overflow = sample_request();
        overflow.dest_payment = Credits::MAX;
        overflow.total_dest_payment = Credits::MAX;
        for request in [looping, zero, short, overflow] {
            let message = FriendMessage::MoveToken(MoveTokenMessage {
                token: sample_token(vec![FriendOperation::RequestSendFunds(Box::new(request))]),
                token_wanted: false,
            });
            assert!(FriendMessage::decode(&message.encode()).is_err());
        }
        let request = sample_request();
        assert_eq!(request.next_hop(&request.route[1]), Some(&request.route[2]));
        assert_eq!(request.next_hop(&request.route[2]), None);
        assert_eq!(request.frozen(), Some(Credits(12)));
    }

    fn sample_token(operations: Vec<FriendOperation>) -> MoveToken {
        MoveToken {
            old_token: Signature::from_bytes([1; 64]),
            inconsistency_counter: 3,
            move_token_counter: u64::MAX,
            operations,
            info_hash: HashResult::from_bytes([2; 32]),
            rand_nonce: RandValue::from_bytes([6; 16]),
            new_token: Signature::from_bytes([3; 64]),
        }
    }

    fn sample_terms() -> ResetTerms {
        ResetTerms {
            reset_token: Signature::from_bytes([4; 64]),
            inconsistency_counter: 8,
            currencies: vec![
                CurrencyBalance {
                    currency: currency("A"),
                    balance: Balance(-5),
                    local_max_debt: Credits(10),
                    remote_max_debt: Credits(0),
                    local_open: true,
                    remote_open: false,
                },
                CurrencyBalance {
                    currency: currency("B"),
                    balance: Balance(i128::MAX),
                    local_max_debt: Credits::MAX,
                    remote_max_debt: Credits(1),
                    local_open: false,
                    remote_open: true,
                },
            ],
        }
    }

    #[test]
    fn every_friend_message_round_trips() {
        let messages = vec![
            FriendMessage::MoveToken(MoveTokenMessage {
                token: sample_token(all_operations()),
                token_wanted: true,
            }),
            FriendMessage::MoveToken(MoveTokenMessage {
                token: sample_token(Vec::new()),
                token_wanted: false,
            }),
            FriendMessage::TokenWanted,
            FriendMessage::ResetTerms(sample_terms()),
            FriendMessage::ResetTerms(ResetTerms {
                currencies: Vec::new(),
                ..sample_terms()
            }),
        ];
        for message in messages {
            assert_eq!(FriendMessage::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn a_batch_over_the_limit_is_rejected() {
        let operations =
            vec![FriendOperation::AddCurrency(currency("X")); MAX_OPERATIONS_IN_BATCH + 1];
        let message = FriendMessage::MoveToken(MoveTokenMessage {
            token: sample_token(operations),
            token_wanted: false,
        });
        assert!(matches!(
            FriendMessage::decode(&message.encode()),
            Err(DecodeError::TooMany {
                field: "operations",
                ..
            })
        ));
    }

    #[test]
    fn unsorted_or_duplicate_reset_currencies_are_rejected() {
        let mut terms = sample_terms();
        terms.currencies.reverse();
        let unsorted = FriendMessage::ResetTerms(terms.clone());
        assert_eq!(
            FriendMessage::decode(&unsorted.encode()),
            Err(DecodeError::Invalid(
                "resetTerms: currencies not strictly sorted"
            ))
        );
        let first = terms.currencies[1].clone();
        terms.currencies = vec![first.clone(), first];
        let duplicate = FriendMessage::ResetTerms(terms);
        assert!(FriendMessage::decode(&duplicate.encode()).is_err());
    }

    #[test]
    fn wrong_length_token_fields_and_bad_currencies_are_rejected() {
        let bytes = encode_root::<friend_capnp::friend_message::Owned>(|root| {
            let mut b = root.init_move_token();
            let mut token = b.reborrow().init_token();
            token.set_old_token(&[0; 63]);
            token.set_info_hash(&[0; 32]);
            token.set_rand_nonce(&[0; 16]);
            token.set_new_token(&[0; 64]);
        });
        assert!(matches!(
            FriendMessage::decode(&bytes),
            Err(DecodeError::InvalidField {
                field: "oldToken",
                ..
            })
        ));
        let bytes = encode_root::<friend_capnp::friend_message::Owned>(|root| {
            let mut b = root.init_move_token();
            let mut token = b.reborrow().init_token();
            token.set_old_token(&[0; 64]);
            token.set_info_hash(&[0; 32]);
            token.set_rand_nonce(&[0; 16]);
            token.set_new_token(&[0; 64]);
            let mut ops = token.init_operations(1);
            ops.reborrow().get(0).set_add_currency("no spaces");
        });
        assert!(matches!(
            FriendMessage::decode(&bytes),
            Err(DecodeError::InvalidField {
                field: "addCurrency",
                ..
            })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let valid = FriendMessage::MoveToken(MoveTokenMessage {
            token: sample_token(all_operations()),
            token_wanted: true,
        })
        .encode();
        for cut in 0..valid.len() {
            let _ = FriendMessage::decode(&valid[..cut]);
        }
        for index in 0..valid.len() {
            let mut flipped = valid.clone();
            flipped[index] ^= 0x5a;
            let _ = FriendMessage::decode(&flipped);
        }
    }

    #[test]
    fn signing_bytes_cover_every_field() {
        let base = sample_token(all_operations());
        let bytes = base.signing_bytes();
        let mut changed = base.clone();
        changed.inconsistency_counter += 1;
        assert_ne!(changed.signing_bytes(), bytes);
        let mut changed = base.clone();
        changed.move_token_counter -= 1;
        assert_ne!(changed.signing_bytes(), bytes);
        let mut changed = base.clone();
        changed.operations.pop();
        assert_ne!(changed.signing_bytes(), bytes);
        let mut changed = base.clone();
        changed.info_hash = HashResult::from_bytes([7; 32]);
        assert_ne!(changed.signing_bytes(), bytes);
        let mut changed = base.clone();
        changed.old_token = Signature::from_bytes([7; 64]);
        assert_ne!(changed.signing_bytes(), bytes);
        let mut changed = base.clone();
        changed.rand_nonce = RandValue::from_bytes([7; 16]);
        assert_ne!(changed.signing_bytes(), bytes);
        // The signature itself is not part of what it signs.
        let mut changed = base;
        changed.new_token = Signature::from_bytes([7; 64]);
        assert_eq!(changed.signing_bytes(), bytes);
    }
}
