//! The balance sheet of one friendship: per currency the balance, pending debts, both credit
//! limits and both open flags, always seen from the local side. This module owns the rules of
//! mutual credit (how each operation moves the sheet, and the limits it must respect) and the
//! canonical hash that every move token commits to. It never signs and never sends.

use std::collections::BTreeMap;

use offst_crypto::{hash_lock, sha512_256};
use offst_proto::canonical::{domain, CanonicalWriter};
use offst_proto::friend::{CurrencyBalance, FriendOperation, RequestSendFunds};
use offst_proto::limits::MAX_CURRENCIES_PER_FRIEND;
use offst_proto::{Balance, Credits, Currency, HashResult, PublicKey, RequestId};

/// Most payment requests one side of a friendship may have pending toward the other at once
/// (all currencies): a friend cannot freeze our channel with countless small requests.
pub const MAX_PENDING_REQUESTS_PER_FRIEND: usize = 64;

/// Why an operation cannot be applied to a balance sheet. The sheet is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// The currency is not part of this friendship.
    #[error("currency {0} is not active with this friend")]
    UnknownCurrency(Currency),
    /// `AddCurrency` for a currency already present.
    #[error("currency {0} is already active with this friend")]
    CurrencyExists(Currency),
    /// The friendship already has the maximum number of currencies.
    #[error("a friendship may have at most {MAX_CURRENCIES_PER_FRIEND} currencies")]
    TooManyCurrencies,
    /// A currency can only be removed when nothing is owed or pending in it.
    #[error("currency {0} still has a balance or pending debts")]
    CurrencyInUse(Currency),
    /// Transfers move a positive amount.
    #[error("the amount must be more than zero")]
    ZeroAmount,
    /// The receiver does not accept incoming payments in this currency.
    #[error("the receiver does not accept payments in {0}")]
    CurrencyClosed(Currency),
    /// The payer would owe more than the limit the receiver set.
    #[error("{amount} {currency} exceeds what the payer may still owe: {capacity}")]
    OverLimit {
        /// The currency.
        currency: Currency,
        /// The amount asked for.
        amount: Credits,
        /// What the payer could still pay at most.
        capacity: Credits,
    },
    /// A balance would leave the range of `i128`.
    #[error("the balance would overflow")]
    Overflow,
    /// A payment request with this id is already pending on this channel.
    #[error("a payment request with this id is already pending")]
    RequestExists,
    /// No pending request with this id was sent by the receiver of the operation in this
    /// currency (only the downstream side cancels or collects).
    #[error("no such pending payment request from the friend")]
    UnknownRequest,
    /// The plain lock does not open the request's hash lock.
    #[error("the plain lock does not open the request's hash lock")]
    WrongLock,
    /// A collected amount below the seller's amount or above what was frozen.
    #[error("the collected amount is outside [destPayment, frozen]")]
    BadCollectAmount,
    /// A payment request past its expiry is not sent.
    #[error("the payment request expired")]
    RequestExpired,
    /// Too many requests pending in one direction.
    #[error("at most {MAX_PENDING_REQUESTS_PER_FRIEND} payment requests may be pending")]
    TooManyRequests,
}

/// A payment request pending on the channel: the credit it froze stays frozen until the
/// downstream side (the receiver of the request) cancels or collects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    /// Who sent the request: [`Side::Local`] means we are upstream (we froze the credit).
    pub sender: Side,
    /// The request as it was sent.
    pub request: RequestSendFunds,
}

impl PendingRequest {
    /// The credit the request freezes.
    pub fn frozen(&self) -> Credits {
        self.request.frozen().unwrap_or(Credits::MAX)
    }

    fn flipped(&self) -> PendingRequest {
        PendingRequest {
            sender: self.sender.flipped(),
            request: self.request.clone(),
        }
    }
}

/// One currency of a friendship, seen from the local side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrencyState {
    /// Positive: the friend owes us.
    pub balance: Balance,
    /// Credit frozen by payments we sent and that are not settled yet (we may come to owe it).
    pub local_pending_debt: Credits,
    /// Credit frozen by payments the friend sent us that are not settled yet.
    pub remote_pending_debt: Credits,
    /// The most we may owe the friend: the limit the friend set for us.
    pub local_max_debt: Credits,
    /// The most the friend may owe us: the limit we set for the friend.
    pub remote_max_debt: Credits,
    /// We accept incoming payments in this currency.
    pub local_open: bool,
    /// The friend accepts incoming payments in this currency.
    pub remote_open: bool,
}

impl CurrencyState {
    /// Appends `currency` and this state in canonical order (name, balance, local and remote
    /// pending debt, local and remote max debt, local and remote open): the layout of the sheet
    /// hash (docs/PROTOCOL.md §10.3) and of stored channels.
    pub fn write_canonical(&self, currency: &Currency, writer: &mut CanonicalWriter) {
        writer
            .text(currency.as_str())
            .i128(self.balance.0)
            .u128(self.local_pending_debt.0)
            .u128(self.remote_pending_debt.0)
            .u128(self.local_max_debt.0)
            .u128(self.remote_max_debt.0)
            .bool(self.local_open)
            .bool(self.remote_open);
    }

    /// The same currency seen from the friend's side.
    pub fn flipped(&self) -> Option<CurrencyState> {
        Some(CurrencyState {
            balance: self.balance.checked_neg()?,
            local_pending_debt: self.remote_pending_debt,
            remote_pending_debt: self.local_pending_debt,
            local_max_debt: self.remote_max_debt,
            remote_max_debt: self.local_max_debt,
            local_open: self.remote_open,
            remote_open: self.local_open,
        })
    }

    /// Nothing is owed and nothing is pending: the currency may be removed.
    pub fn is_idle(&self) -> bool {
        self.balance == Balance::ZERO
            && self.local_pending_debt == Credits::ZERO
            && self.remote_pending_debt == Credits::ZERO
    }

    /// The most we could pay the friend now: `local_max_debt + balance - local_pending_debt`,
    /// at least zero.
    pub fn send_capacity(&self) -> Credits {
        capacity(self.local_max_debt, self.balance, self.local_pending_debt)
    }

    /// The most the friend could pay us now (its send capacity).
    pub fn receive_capacity(&self) -> Credits {
        let negated = self.balance.checked_neg().unwrap_or(Balance(i128::MAX));
        capacity(self.remote_max_debt, negated, self.remote_pending_debt)
    }

    /// Our debt including what we froze: `local_pending_debt - balance`, may be negative;
    /// `None` only on overflow.
    pub fn local_exposure(&self) -> Option<i128> {
        let pending = i128::try_from(self.local_pending_debt.0).ok()?;
        pending.checked_sub(self.balance.0)
    }

    /// The friend's debt including what it froze: `remote_pending_debt + balance`, may be
    /// negative; `None` only on overflow.
    pub fn remote_exposure(&self) -> Option<i128> {
        let pending = i128::try_from(self.remote_pending_debt.0).ok()?;
        pending.checked_add(self.balance.0)
    }

    /// Neither side owes more than the limit set for it, counting pending debts.
    pub fn within_limits(&self) -> bool {
        let fits = |exposure: Option<i128>, limit: Credits| {
            exposure.is_some_and(|exposure| exposure <= 0 || (exposure as u128) <= limit.0)
        };
        fits(self.local_exposure(), self.local_max_debt)
            && fits(self.remote_exposure(), self.remote_max_debt)
    }
}

/// `max_debt + balance - pending`, clamped to `0..=Credits::MAX`.
fn capacity(max_debt: Credits, balance: Balance, pending: Credits) -> Credits {
    let total = i128::try_from(max_debt.0)
        .ok()
        .and_then(|max| max.checked_add(balance.0))
        .and_then(|sum| sum.checked_sub(i128::try_from(pending.0).ok()?));
    match total {
        Some(total) if total > 0 => Credits(total as u128),
        Some(_) => Credits::ZERO,
        // Only positive overflow is possible with a valid sheet: more capacity than representable.
        None => Credits::MAX,
    }
}

/// Which side of the friendship sent an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This node.
    Local,
    /// The friend.
    Remote,
}

impl Side {
    /// The other side.
    pub fn flipped(self) -> Side {
        match self {
            Side::Local => Side::Remote,
            Side::Remote => Side::Local,
        }
    }
}

/// All currencies of one friendship, seen from the local side, sorted by currency name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BalanceSheet {
    currencies: BTreeMap<Currency, CurrencyState>,
    /// Pending payment requests by id (at most [`MAX_PENDING_REQUESTS_PER_FRIEND`] per side).
    requests: BTreeMap<RequestId, PendingRequest>,
}

impl BalanceSheet {
    /// An empty sheet: no currencies (the genesis state of every friendship).
    pub fn new() -> Self {
        BalanceSheet::default()
    }

    /// One currency, if active.
    pub fn currency(&self, currency: &Currency) -> Option<&CurrencyState> {
        self.currencies.get(currency)
    }

    /// All currencies in name order.
    pub fn currencies(&self) -> impl Iterator<Item = (&Currency, &CurrencyState)> {
        self.currencies.iter()
    }

    /// Number of active currencies.
    pub fn len(&self) -> usize {
        self.currencies.len()
    }

    /// No currency is active.
    pub fn is_empty(&self) -> bool {
        self.currencies.is_empty()
    }

    /// Nothing is owed and nothing is pending in any currency.
    pub fn is_idle(&self) -> bool {
        self.currencies.values().all(CurrencyState::is_idle)
    }

    /// Pending payment requests by id.
    pub fn requests(&self) -> &BTreeMap<RequestId, PendingRequest> {
        &self.requests
    }

    /// One pending request.
    pub fn request(&self, request_id: &RequestId) -> Option<&PendingRequest> {
        self.requests.get(request_id)
    }

    /// Adds stored pending requests (used by `offst-store` to load a channel).
    pub fn with_requests(mut self, requests: impl IntoIterator<Item = PendingRequest>) -> Self {
        for pending in requests {
            self.requests.insert(pending.request.request_id, pending);
        }
        self
    }

    /// The sheet as the friend sees it.
    pub fn flipped(&self) -> Option<BalanceSheet> {
        let currencies = self
            .currencies
            .iter()
            .map(|(currency, state)| Some((currency.clone(), state.flipped()?)))
            .collect::<Option<_>>()?;
        let requests = self
            .requests
            .iter()
            .map(|(id, pending)| (*id, pending.flipped()))
            .collect();
        Some(BalanceSheet {
            currencies,
            requests,
        })
    }

    fn count_requests(&self, sender: Side) -> usize {
        self.requests
            .values()
            .filter(|pending| pending.sender == sender)
            .count()
    }

    /// Applies one operation sent by `sender`. All or nothing: on error the sheet is unchanged.
    pub fn apply(
        &mut self,
        operation: &FriendOperation,
        sender: Side,
    ) -> Result<(), OperationError> {
        match sender {
            Side::Local => self.apply_local(operation),
            Side::Remote => {
                // Apply in the sender's perspective, then flip back.
                let currency = operation.currency();
                let flip = |state: &CurrencyState| state.flipped().ok_or(OperationError::Overflow);
                let mut view = BalanceSheet::new();
                if let Some(state) = self.currencies.get(currency) {
                    view.currencies.insert(currency.clone(), flip(state)?);
                }
                for (id, pending) in &self.requests {
                    if pending.request.currency == *currency {
                        view.requests.insert(*id, pending.flipped());
                    }
                }
                let others = self.currencies.len().saturating_sub(view.currencies.len());
                // Requests the friend sent in other currencies (ours in the view's terms).
                let other_requests = self
                    .count_requests(Side::Remote)
                    .saturating_sub(view.count_requests(Side::Local));
                let all_ids: Vec<RequestId> = self.requests.keys().copied().collect();
                view.apply_with_room(operation, others, other_requests, &all_ids)?;
                match view.currencies.remove(currency) {
                    Some(state) => {
                        self.currencies.insert(currency.clone(), flip(&state)?);
                    }
                    None => {
                        self.currencies.remove(currency);
                    }
                }
                self.requests
                    .retain(|_, pending| pending.request.currency != *currency);
                for (id, pending) in view.requests {
                    self.requests.insert(id, pending.flipped());
                }
                Ok(())
            }
        }
    }

    fn apply_local(&mut self, operation: &FriendOperation) -> Result<(), OperationError> {
        self.apply_with_room(operation, 0, 0, &[])
    }

    /// Applies an operation sent by the local side. `other_currencies` counts currencies not
    /// present in `self` that still use room, `other_requests` our requests not present, and
    /// `known_ids` every request id pending on the full sheet (used when applying on a
    /// one-currency view).
    fn apply_with_room(
        &mut self,
        operation: &FriendOperation,
        other_currencies: usize,
        other_requests: usize,
        known_ids: &[RequestId],
    ) -> Result<(), OperationError> {
        let currency = operation.currency();
        if let FriendOperation::AddCurrency(_) = operation {
            if self.currencies.contains_key(currency) {
                return Err(OperationError::CurrencyExists(currency.clone()));
            }
            if self.currencies.len().saturating_add(other_currencies) >= MAX_CURRENCIES_PER_FRIEND {
                return Err(OperationError::TooManyCurrencies);
            }
            self.currencies
                .insert(currency.clone(), CurrencyState::default());
            return Ok(());
        }
        let local_requests = self.count_requests(Side::Local);
        let state = self
            .currencies
            .get_mut(currency)
            .ok_or_else(|| OperationError::UnknownCurrency(currency.clone()))?;
        match operation {
            FriendOperation::AddCurrency(_) => Ok(()),
            FriendOperation::RemoveCurrency(_) => {
                if !state.is_idle() {
                    return Err(OperationError::CurrencyInUse(currency.clone()));
                }
                self.currencies.remove(currency);
                Ok(())
            }
            FriendOperation::SetRemoteMaxDebt { max_debt, .. } => {
                state.remote_max_debt = *max_debt;
                Ok(())
            }
            FriendOperation::SetCurrencyOpen { open, .. } => {
                state.local_open = *open;
                Ok(())
            }
            FriendOperation::Transfer { amount, .. } => {
                if *amount == Credits::ZERO {
                    return Err(OperationError::ZeroAmount);
                }
                if !state.remote_open {
                    return Err(OperationError::CurrencyClosed(currency.clone()));
                }
                let capacity = state.send_capacity();
                if *amount > capacity {
                    return Err(OperationError::OverLimit {
                        currency: currency.clone(),
                        amount: *amount,
                        capacity,
                    });
                }
                state.balance = state
                    .balance
                    .checked_sub_credits(*amount)
                    .ok_or(OperationError::Overflow)?;
                Ok(())
            }
            FriendOperation::RequestSendFunds(request) => {
                if self.requests.contains_key(&request.request_id)
                    || known_ids.contains(&request.request_id)
                {
                    return Err(OperationError::RequestExists);
                }
                if local_requests.saturating_add(other_requests) >= MAX_PENDING_REQUESTS_PER_FRIEND
                {
                    return Err(OperationError::TooManyRequests);
                }
                if !state.remote_open {
                    return Err(OperationError::CurrencyClosed(currency.clone()));
                }
                let frozen = request.frozen().ok_or(OperationError::Overflow)?;
                if frozen == Credits::ZERO {
                    return Err(OperationError::ZeroAmount);
                }
                let capacity = state.send_capacity();
                if frozen > capacity {
                    return Err(OperationError::OverLimit {
                        currency: currency.clone(),
                        amount: frozen,
                        capacity,
                    });
                }
                state.local_pending_debt = state
                    .local_pending_debt
                    .checked_add(frozen)
                    .ok_or(OperationError::Overflow)?;
                self.requests.insert(
                    request.request_id,
                    PendingRequest {
                        sender: Side::Local,
                        request: request.as_ref().clone(),
                    },
                );
                Ok(())
            }
            FriendOperation::CancelSendFunds { request_id, .. } => {
                let frozen = match self.requests.get(request_id) {
                    Some(pending)
                        if pending.sender == Side::Remote
                            && pending.request.currency == *currency =>
                    {
                        pending.frozen()
                    }
                    _ => return Err(OperationError::UnknownRequest),
                };
                state.remote_pending_debt = state
                    .remote_pending_debt
                    .checked_sub(frozen)
                    .ok_or(OperationError::Overflow)?;
                self.requests.remove(request_id);
                Ok(())
            }
            FriendOperation::CollectSendFunds {
                request_id,
                plain_lock,
                amount,
                ..
            } => {
                let pending = match self.requests.get(request_id) {
                    Some(pending)
                        if pending.sender == Side::Remote
                            && pending.request.currency == *currency =>
                    {
                        pending
                    }
                    _ => return Err(OperationError::UnknownRequest),
                };
                if hash_lock(plain_lock) != pending.request.hashed_lock {
                    return Err(OperationError::WrongLock);
                }
                let frozen = pending.frozen();
                if *amount < pending.request.dest_payment || *amount > frozen {
                    return Err(OperationError::BadCollectAmount);
                }
                let remote_pending_debt = state
                    .remote_pending_debt
                    .checked_sub(frozen)
                    .ok_or(OperationError::Overflow)?;
                let balance = state
                    .balance
                    .checked_add_credits(*amount)
                    .ok_or(OperationError::Overflow)?;
                state.remote_pending_debt = remote_pending_debt;
                state.balance = balance;
                self.requests.remove(request_id);
                Ok(())
            }
        }
    }

    /// The sheet in the form of reset terms (pending debts are not part of terms: a reset
    /// cancels everything pending).
    pub fn to_terms(&self) -> Vec<CurrencyBalance> {
        self.currencies
            .iter()
            .map(|(currency, state)| CurrencyBalance {
                currency: currency.clone(),
                balance: state.balance,
                local_max_debt: state.local_max_debt,
                remote_max_debt: state.remote_max_debt,
                local_open: state.local_open,
                remote_open: state.remote_open,
            })
            .collect()
    }

    /// The sheet described by reset terms; `from_remote` flips terms the friend wrote. `None`
    /// if a balance cannot be negated (no valid terms contain one).
    pub fn from_terms(terms: &[CurrencyBalance], from_remote: bool) -> Option<BalanceSheet> {
        let mut sheet = BalanceSheet::new();
        for entry in terms {
            let state = CurrencyState {
                balance: entry.balance,
                local_pending_debt: Credits::ZERO,
                remote_pending_debt: Credits::ZERO,
                local_max_debt: entry.local_max_debt,
                remote_max_debt: entry.remote_max_debt,
                local_open: entry.local_open,
                remote_open: entry.remote_open,
            };
            let state = if from_remote { state.flipped()? } else { state };
            sheet.currencies.insert(entry.currency.clone(), state);
        }
        Some(sheet)
    }

    /// Balances only, per currency (for comparing reset terms).
    pub fn balances(&self) -> BTreeMap<Currency, Balance> {
        self.currencies
            .iter()
            .map(|(currency, state)| (currency.clone(), state.balance))
            .collect()
    }
}

/// The position of a balance sheet in the token chain, hashed together with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ChainPosition {
    /// The epoch: number of resets.
    pub inconsistency_counter: u64,
    /// Position within the epoch.
    pub move_token_counter: u64,
}

/// The hash every move token commits to (`infoHash`): SHA-512/256 over tag
/// `offst/v1/friend/balance-sheet`, the two public keys in byte order (lower first), both
/// counters, then per currency in name order: name, balance seen from the lower key, then the
/// lower key's pending debt, the higher key's pending debt, the lower key's max debt, the higher
/// key's max debt, the lower key's open flag, the higher key's open flag. The hash does not
/// depend on which side computes it.
pub fn sheet_hash(
    local: &PublicKey,
    remote: &PublicKey,
    position: ChainPosition,
    sheet: &BalanceSheet,
) -> Option<HashResult> {
    let local_is_low = local <= remote;
    let (low, high) = if local_is_low {
        (local, remote)
    } else {
        (remote, local)
    };
    let mut writer = CanonicalWriter::new(domain::BALANCE_SHEET);
    writer
        .fixed(low.as_bytes())
        .fixed(high.as_bytes())
        .u64(position.inconsistency_counter)
        .u64(position.move_token_counter)
        .list_len(sheet.currencies.len());
    for (currency, state) in &sheet.currencies {
        let state = if local_is_low {
            state.clone()
        } else {
            state.flipped()?
        };
        state.write_canonical(currency, &mut writer);
    }
    // Pending payment requests, only when there are any (so sheets without payments hash as
    // before): count, then per request in id order whether the lower key sent it and the
    // canonical request.
    if !sheet.requests.is_empty() {
        writer.list_len(sheet.requests.len());
        for pending in sheet.requests.values() {
            let sent_by_low = (pending.sender == Side::Local) == local_is_low;
            writer.bool(sent_by_low);
            pending.request.write_canonical(&mut writer);
        }
    }
    Some(sha512_256(&writer.finish()))
}

/// Rebuilds a sheet from stored currency states (used by `offst-store` to load a channel).
impl FromIterator<(Currency, CurrencyState)> for BalanceSheet {
    fn from_iter<I: IntoIterator<Item = (Currency, CurrencyState)>>(iter: I) -> Self {
        BalanceSheet {
            currencies: iter.into_iter().collect(),
            requests: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offst_proto::PaymentId;

    fn fst() -> Currency {
        Currency::new("FST").unwrap()
    }

    fn transfer(amount: u128) -> FriendOperation {
        FriendOperation::Transfer {
            currency: fst(),
            amount: Credits(amount),
            transfer_id: PaymentId::from_bytes([1; 16]),
        }
    }

    /// A sheet where the friend lets us owe `local_max` and accepts payments.
    fn open_sheet(local_max: u128) -> BalanceSheet {
        let mut sheet = BalanceSheet::new();
        sheet
            .apply(&FriendOperation::AddCurrency(fst()), Side::Remote)
            .unwrap();
        sheet
            .apply(
                &FriendOperation::SetRemoteMaxDebt {
                    currency: fst(),
                    max_debt: Credits(local_max),
                },
                Side::Remote,
            )
            .unwrap();
        sheet
            .apply(
                &FriendOperation::SetCurrencyOpen {
                    currency: fst(),
                    open: true,
                },
                Side::Remote,
            )
            .unwrap();
        sheet
    }

    fn request(id: u8, dest: u128, fees: u128, lock: &offst_proto::PlainLock) -> FriendOperation {
        FriendOperation::RequestSendFunds(Box::new(RequestSendFunds {
            request_id: RequestId::from_bytes([id; 16]),
            currency: fst(),
            route: vec![
                PublicKey::from_bytes([1; 32]),
                PublicKey::from_bytes([2; 32]),
            ],
            dest_payment: Credits(dest),
            total_dest_payment: Credits(dest),
            invoice_id: offst_proto::InvoiceId::from_bytes([7; 32]),
            hashed_lock: hash_lock(lock),
            left_fees: Credits(fees),
            expires_at: 1_000,
        }))
    }

    #[test]
    fn a_request_freezes_credit_until_the_receiver_cancels_or_collects_it() {
        let lock = offst_proto::PlainLock::from_bytes([9; 32]);
        let mut sheet = open_sheet(100);
        sheet
            .apply(&request(1, 50, 10, &lock), Side::Local)
            .unwrap();
        assert_eq!(
            sheet.currency(&fst()).unwrap().local_pending_debt,
            Credits(60)
        );
        // 41 more do not fit beside the 60 frozen.
        assert!(matches!(
            sheet.apply(&request(2, 41, 0, &lock), Side::Local),
            Err(OperationError::OverLimit { .. })
        ));
        // Only the receiver (the friend) releases it.
        let cancel = FriendOperation::CancelSendFunds {
            currency: fst(),
            request_id: RequestId::from_bytes([1; 16]),
        };
        assert_eq!(
            sheet.clone().apply(&cancel, Side::Local),
            Err(OperationError::UnknownRequest)
        );
        let mut cancelled = sheet.clone();
        cancelled.apply(&cancel, Side::Remote).unwrap();
        assert!(cancelled.is_idle() && cancelled.requests().is_empty());
        // A wrong secret or an amount above what was frozen cannot collect.
        let collect = |plain_lock, amount| FriendOperation::CollectSendFunds {
            currency: fst(),
            request_id: RequestId::from_bytes([1; 16]),
            plain_lock,
            amount: Credits(amount),
        };
        let wrong = offst_proto::PlainLock::from_bytes([8; 32]);
        assert_eq!(
            sheet.clone().apply(&collect(wrong, 55), Side::Remote),
            Err(OperationError::WrongLock)
        );
        assert_eq!(
            sheet.clone().apply(&collect(lock, 61), Side::Remote),
            Err(OperationError::BadCollectAmount)
        );
        sheet.apply(&collect(lock, 55), Side::Remote).unwrap();
        let state = sheet.currency(&fst()).unwrap();
        assert_eq!(state.balance, Balance(-55));
        assert_eq!(state.local_pending_debt, Credits::ZERO);
        assert!(sheet.requests().is_empty());
    }

    #[test]
    fn pending_requests_change_the_sheet_hash_and_flip_with_the_sheet() {
        let lock = offst_proto::PlainLock::from_bytes([9; 32]);
        let (a, b) = (
            PublicKey::from_bytes([1; 32]),
            PublicKey::from_bytes([2; 32]),
        );
        let mut sheet = open_sheet(100);
        let before = sheet_hash(&a, &b, ChainPosition::default(), &sheet);
        sheet.apply(&request(1, 5, 1, &lock), Side::Local).unwrap();
        let after = sheet_hash(&a, &b, ChainPosition::default(), &sheet);
        assert_ne!(before, after);
        let flipped = sheet.flipped().unwrap();
        assert_eq!(
            sheet_hash(&b, &a, ChainPosition::default(), &flipped),
            after
        );
        assert_eq!(
            flipped
                .request(&RequestId::from_bytes([1; 16]))
                .unwrap()
                .sender,
            Side::Remote
        );
    }

    #[test]
    fn a_remote_limit_announcement_sets_our_max_debt() {
        let sheet = open_sheet(100);
        let state = sheet.currency(&fst()).unwrap();
        assert_eq!(state.local_max_debt, Credits(100));
        assert_eq!(state.remote_max_debt, Credits(0));
        assert!(state.remote_open && !state.local_open);
    }

    #[test]
    fn a_transfer_within_the_limit_moves_the_balance_and_one_past_it_is_refused() {
        let mut sheet = open_sheet(100);
        sheet.apply(&transfer(60), Side::Local).unwrap();
        assert_eq!(sheet.currency(&fst()).unwrap().balance, Balance(-60));
        let before = sheet.clone();
        assert_eq!(
            sheet.apply(&transfer(41), Side::Local),
            Err(OperationError::OverLimit {
                currency: fst(),
                amount: Credits(41),
                capacity: Credits(40)
            })
        );
        assert_eq!(sheet, before);
        sheet.apply(&transfer(40), Side::Local).unwrap();
        assert!(sheet.currency(&fst()).unwrap().within_limits());
    }

    #[test]
    fn an_incoming_transfer_is_checked_against_the_limit_we_set() {
        let mut sheet = open_sheet(0);
        // We never opened the currency: the friend may not pay us.
        assert_eq!(
            sheet.apply(&transfer(1), Side::Remote),
            Err(OperationError::CurrencyClosed(fst()))
        );
        sheet
            .apply(
                &FriendOperation::SetCurrencyOpen {
                    currency: fst(),
                    open: true,
                },
                Side::Local,
            )
            .unwrap();
        sheet
            .apply(
                &FriendOperation::SetRemoteMaxDebt {
                    currency: fst(),
                    max_debt: Credits(10),
                },
                Side::Local,
            )
            .unwrap();
        assert!(matches!(
            sheet.apply(&transfer(11), Side::Remote),
            Err(OperationError::OverLimit { .. })
        ));
        sheet.apply(&transfer(10), Side::Remote).unwrap();
        assert_eq!(sheet.currency(&fst()).unwrap().balance, Balance(10));
    }

    #[test]
    fn unknown_currency_zero_amount_and_busy_removal_are_refused() {
        let mut sheet = open_sheet(10);
        let usd = Currency::new("USD").unwrap();
        assert_eq!(
            sheet.apply(&FriendOperation::RemoveCurrency(usd.clone()), Side::Local),
            Err(OperationError::UnknownCurrency(usd))
        );
        assert_eq!(
            sheet.apply(&transfer(0), Side::Local),
            Err(OperationError::ZeroAmount)
        );
        sheet.apply(&transfer(5), Side::Local).unwrap();
        assert_eq!(
            sheet.apply(&FriendOperation::RemoveCurrency(fst()), Side::Remote),
            Err(OperationError::CurrencyInUse(fst()))
        );
        assert_eq!(
            sheet.apply(&FriendOperation::AddCurrency(fst()), Side::Remote),
            Err(OperationError::CurrencyExists(fst()))
        );
    }

    #[test]
    fn currencies_per_friend_are_bounded_from_either_side() {
        let mut sheet = BalanceSheet::new();
        for index in 0..MAX_CURRENCIES_PER_FRIEND {
            let side = if index % 2 == 0 {
                Side::Local
            } else {
                Side::Remote
            };
            let currency = Currency::new(&format!("C{index}")).unwrap();
            sheet
                .apply(&FriendOperation::AddCurrency(currency), side)
                .unwrap();
        }
        for side in [Side::Local, Side::Remote] {
            assert_eq!(
                sheet.apply(
                    &FriendOperation::AddCurrency(Currency::new("ONE_MORE").unwrap()),
                    side
                ),
                Err(OperationError::TooManyCurrencies)
            );
        }
    }

    #[test]
    fn huge_limits_never_overflow() {
        let mut sheet = open_sheet(Credits::MAX.0);
        sheet.apply(&transfer(Credits::MAX.0), Side::Local).unwrap();
        assert_eq!(sheet.currency(&fst()).unwrap().balance, Balance(-i128::MAX));
        assert!(matches!(
            sheet.apply(&transfer(1), Side::Local),
            Err(OperationError::OverLimit { .. })
        ));
        // The friend can be paid back all of it.
        assert_eq!(
            sheet.currency(&fst()).unwrap().receive_capacity(),
            Credits::MAX
        );
    }

    #[test]
    fn both_sides_compute_the_same_hash_for_mirrored_sheets() {
        let a = PublicKey::from_bytes([1; 32]);
        let b = PublicKey::from_bytes([2; 32]);
        let mut sheet = open_sheet(50);
        sheet.apply(&transfer(7), Side::Local).unwrap();
        let position = ChainPosition {
            inconsistency_counter: 1,
            move_token_counter: 9,
        };
        let ours = sheet_hash(&a, &b, position, &sheet).unwrap();
        let theirs = sheet_hash(&b, &a, position, &sheet.flipped().unwrap()).unwrap();
        assert_eq!(ours, theirs);
        let later = ChainPosition {
            move_token_counter: 10,
            ..position
        };
        assert_ne!(sheet_hash(&a, &b, later, &sheet).unwrap(), ours);
        assert_ne!(sheet_hash(&b, &a, position, &sheet).unwrap(), ours);
    }

    #[test]
    fn random_operations_keep_both_views_mirrored_and_within_limits() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::{RngCore, SeedableRng};
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let names = ["A", "B", "C"];
        for _ in 0..50 {
            // `ours` is one side's view, `theirs` the other's; every operation is applied as
            // sent by one side on both views, and both must accept or refuse it alike.
            let (mut ours, mut theirs) = (BalanceSheet::new(), BalanceSheet::new());
            for _ in 0..200 {
                let currency = Currency::new(names[(rng.next_u32() % 3) as usize]).unwrap();
                let amount = Credits(u128::from(rng.next_u32() % 50));
                let operation = match rng.next_u32() % 6 {
                    0 => FriendOperation::AddCurrency(currency),
                    1 => FriendOperation::RemoveCurrency(currency),
                    2 => FriendOperation::SetRemoteMaxDebt {
                        currency,
                        max_debt: amount,
                    },
                    3 => FriendOperation::SetCurrencyOpen {
                        currency,
                        open: rng.next_u32() % 4 != 0,
                    },
                    _ => FriendOperation::Transfer {
                        currency,
                        amount,
                        transfer_id: PaymentId::from_bytes([0; 16]),
                    },
                };
                let sender_is_ours = rng.next_u32() % 2 == 0;
                let (sender, receiver) = if sender_is_ours {
                    (&mut ours, &mut theirs)
                } else {
                    (&mut theirs, &mut ours)
                };
                let sent = sender.apply(&operation, Side::Local);
                let received = receiver.apply(&operation, Side::Remote);
                assert_eq!(sent, received, "{operation:?}");
                assert_eq!(theirs, ours.flipped().unwrap());
                if let (FriendOperation::Transfer { currency, .. }, Ok(())) = (&operation, &sent) {
                    // The payer never owes more than the limit the receiver set.
                    let payer = if sender_is_ours { &ours } else { &theirs };
                    let state = payer.currency(currency).unwrap();
                    assert!(-state.balance.0 <= state.local_max_debt.0 as i128);
                }
            }
        }
    }

    #[test]
    fn terms_round_trip_through_both_perspectives() {
        let mut sheet = open_sheet(50);
        sheet.apply(&transfer(7), Side::Local).unwrap();
        let terms = sheet.to_terms();
        assert_eq!(BalanceSheet::from_terms(&terms, false).unwrap(), sheet);
        assert_eq!(
            BalanceSheet::from_terms(&terms, true).unwrap(),
            sheet.flipped().unwrap()
        );
    }
}
