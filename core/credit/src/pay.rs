//! Multi-hop payments inside [`CreditNode`]: the buyer's `Pay`, the mediators' forwarding with
//! fees, the seller's automatic collection, cancellation, expiry and accounting
//! (docs/PROTOCOL.md §14).
//!
//! Safety rule: a pending request is released only by its receiver (the downstream side),
//! through the signed channel: by cancelling it, or by collecting it with the plain lock. A
//! mediator cancels upstream only after its downstream request was cancelled (or never sent),
//! and collects upstream after it was collected downstream, so no hop can lose money whatever
//! the clocks say. Expiries only decide when honest nodes give up: a request still waiting to
//! be sent when it expires is dropped (and cancelled upstream), and the seller cancels what it
//! received for an invoice whose requests expire before the whole amount arrived.

use offst_proto::friend::{FriendOperation, RequestSendFunds};
use offst_proto::payment::{Invoice, Receipt};
use offst_proto::{
    Credits, Currency, InvoiceId, PaymentId, PlainLock, PublicKey, RelayAddress, RequestId, Text,
};

use offst_crypto::{random_bytes, SecureRngDyn};

use crate::channel::ChannelStatus;
use crate::node::{
    CommandError, CreditNode, Event, Output, PayRoute, Timestamp, DEFAULT_FEE, HOP_EXPIRY_DELTA_MS,
    MAX_INVOICES, MAX_PAYMENTS, MAX_PAYMENT_ROUTES, REQUEST_TIMEOUT_MS,
};
use crate::payment::{create_invoice, verify_invoice, InvoiceTerms};
use crate::sheet::Side;
use crate::state::{
    Change, FeeRate, Forward, OpenInvoice, Payment, PaymentAccount, PaymentRoute, PaymentStatus,
    ReceivedRequest,
};

/// What a rate charges for paying `x` downstream (`None` on overflow). Non-decreasing in `x`.
pub(crate) fn fee_for(rate: Option<&FeeRate>, x: Credits) -> Option<Credits> {
    match rate {
        None => Some(DEFAULT_FEE),
        Some(rate) => {
            let proportional = x.0.checked_mul(u128::from(rate.per_million))? / 1_000_000;
            rate.flat.checked_add(Credits(proportional))
        }
    }
}

impl CreditNode {
    // ---- commands ----

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_invoice(
        &mut self,
        currency: Currency,
        amount: Credits,
        expires_at: Timestamp,
        description: Text,
        relays: Vec<RelayAddress>,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        if expires_at <= now {
            return Err(CommandError::InvoiceExpired);
        }
        self.make_room_for_invoice(out)?;
        let (invoice, plain_lock) = create_invoice(
            &self.identity,
            InvoiceTerms {
                currency,
                amount,
                expires_at,
                description,
                seller_relays: relays,
            },
            rng,
        )?;
        let record = OpenInvoice {
            invoice: invoice.clone(),
            plain_lock,
            status: PaymentStatus::InProgress,
            received: Vec::new(),
            created_at: now.0,
            finished_at: None,
        };
        self.set_invoice(record, out);
        out.events.push(Event::InvoiceCreated {
            invoice: Box::new(invoice),
        });
        Ok(())
    }

    fn make_room_for_invoice(&mut self, out: &mut Output) -> Result<(), CommandError> {
        if self.state.payments.invoices.len() < MAX_INVOICES {
            return Ok(());
        }
        let oldest = self
            .state
            .payments
            .invoices
            .values()
            .filter(|record| record.status != PaymentStatus::InProgress)
            .min_by_key(|record| record.finished_at)
            .map(|record| record.invoice.invoice_id);
        let Some(invoice_id) = oldest else {
            return Err(CommandError::TooManyPayments);
        };
        self.change(
            Change::SetInvoice {
                invoice_id,
                invoice: None,
            },
            out,
        );
        Ok(())
    }

    fn make_room_for_payment(&mut self, out: &mut Output) -> Result<(), CommandError> {
        if self.state.payments.payments.len() < MAX_PAYMENTS {
            return Ok(());
        }
        let oldest = self
            .state
            .payments
            .payments
            .values()
            .filter(|record| record.status != PaymentStatus::InProgress)
            .filter(|record| {
                record
                    .routes
                    .iter()
                    .all(|route| route.status != PaymentStatus::InProgress)
            })
            .min_by_key(|record| record.finished_at)
            .map(|record| record.payment_id);
        let Some(payment_id) = oldest else {
            return Err(CommandError::TooManyPayments);
        };
        self.change(
            Change::SetPayment {
                payment_id,
                payment: None,
            },
            out,
        );
        Ok(())
    }

    pub(crate) fn cancel_invoice(
        &mut self,
        invoice_id: InvoiceId,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        let record = match self.state.payments.invoices.get(&invoice_id) {
            Some(record) if record.status == PaymentStatus::InProgress => record.clone(),
            _ => return Err(CommandError::UnknownInvoice),
        };
        self.seller_cancel_all(record, PaymentStatus::Cancelled, now, out);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pay(
        &mut self,
        payment_id: PaymentId,
        invoice: Invoice,
        routes: Vec<PayRoute>,
        max_fees: Credits,
        now: Timestamp,
        rng: &mut dyn SecureRngDyn,
        out: &mut Output,
    ) -> Result<(), CommandError> {
        verify_invoice(&invoice)?;
        if invoice.expires_at <= now.0 {
            return Err(CommandError::InvoiceExpired);
        }
        if self.state.payments.payments.contains_key(&payment_id) {
            return Err(CommandError::PaymentExists);
        }
        let duplicate = self.state.payments.payments.values().any(|payment| {
            payment.invoice.invoice_id == invoice.invoice_id
                && payment.status != PaymentStatus::Cancelled
        });
        if duplicate {
            return Err(CommandError::DuplicatePayment);
        }
        let me = self.public_key();
        if invoice.seller == me {
            return Err(CommandError::InvalidRoutes("we are the seller"));
        }
        if routes.is_empty() || routes.len() > MAX_PAYMENT_ROUTES {
            return Err(CommandError::InvalidRoutes(
                "1 to MAX_PAYMENT_ROUTES routes",
            ));
        }
        let mut total = Credits::ZERO;
        let mut mediators = 0usize;
        for route in &routes {
            if route.route.first() != Some(&me) || route.route.last() != Some(&invoice.seller) {
                return Err(CommandError::InvalidRoutes(
                    "every route goes from us to the seller",
                ));
            }
            if route.dest_payment == Credits::ZERO {
                return Err(CommandError::InvalidRoutes("every route carries an amount"));
            }
            total = total
                .checked_add(route.dest_payment)
                .ok_or(CommandError::InvalidRoutes("the amounts overflow"))?;
            mediators = mediators.saturating_add(route.route.len().saturating_sub(2));
        }
        if total != invoice.amount {
            return Err(CommandError::InvalidRoutes(
                "the route amounts must sum to the invoice amount",
            ));
        }
        // Split the fee budget over the routes by their number of mediators; the remainder
        // goes to the first route.
        let mut requests = Vec::with_capacity(routes.len());
        let mut budget_left = max_fees;
        for (index, route) in routes.iter().enumerate() {
            let route_mediators = route.route.len().saturating_sub(2);
            let share = if mediators == 0 {
                Credits::ZERO
            } else {
                Credits(
                    max_fees
                        .0
                        .checked_mul(route_mediators as u128)
                        .map_or(max_fees.0, |product| product / mediators as u128),
                )
            };
            budget_left = budget_left.saturating_sub(share);
            requests.push((index, share));
        }
        let mut payment_routes = Vec::with_capacity(routes.len());
        for ((index, share), route) in requests.into_iter().zip(&routes) {
            let share = if index == 0 {
                share.checked_add(budget_left).unwrap_or(share)
            } else {
                share
            };
            let request_id = RequestId::from_bytes(random_bytes(rng));
            let mediators = route.route.len().saturating_sub(2) as u64;
            let expires_at = now
                .0
                .saturating_add(REQUEST_TIMEOUT_MS)
                .saturating_add(HOP_EXPIRY_DELTA_MS.saturating_mul(mediators));
            let request = RequestSendFunds {
                request_id,
                currency: invoice.currency.clone(),
                route: route.route.clone(),
                dest_payment: route.dest_payment,
                total_dest_payment: invoice.amount,
                invoice_id: invoice.invoice_id,
                hashed_lock: invoice.hashed_lock,
                left_fees: share,
                expires_at,
            };
            request
                .check()
                .map_err(|_| CommandError::InvalidRoutes("malformed route"))?;
            payment_routes.push((
                PaymentRoute {
                    request_id,
                    route: route.route.clone(),
                    dest_payment: route.dest_payment,
                    max_fees: share,
                    status: PaymentStatus::InProgress,
                    paid: Credits::ZERO,
                },
                request,
            ));
        }
        // Every first hop must be able to take its request now (all or nothing).
        let mut per_friend: Vec<(PublicKey, Vec<FriendOperation>)> = Vec::new();
        for (route, request) in &payment_routes {
            let first_hop = *route
                .route
                .get(1)
                .ok_or(CommandError::InvalidRoutes("a route has two nodes or more"))?;
            let operation = FriendOperation::RequestSendFunds(Box::new(request.clone()));
            match per_friend
                .iter_mut()
                .find(|(friend, _)| *friend == first_hop)
            {
                Some((_, operations)) => operations.push(operation),
                None => per_friend.push((first_hop, vec![operation])),
            }
        }
        for (friend, operations) in &per_friend {
            self.check_can_queue(friend, operations)?;
        }
        self.make_room_for_payment(out)?;
        let payment = Payment {
            payment_id,
            invoice,
            routes: payment_routes
                .iter()
                .map(|(route, _)| route.clone())
                .collect(),
            status: PaymentStatus::InProgress,
            plain_lock: None,
            fees_paid: Credits::ZERO,
            started_at: now.0,
            finished_at: None,
        };
        self.set_payment(payment, out);
        for (friend, operations) in per_friend {
            for operation in operations {
                self.queue(friend, operation, out);
            }
        }
        Ok(())
    }

    /// Whether `operations` can join the friend's queue and apply after what waits there.
    fn check_can_queue(
        &self,
        friend: &PublicKey,
        operations: &[FriendOperation],
    ) -> Result<(), CommandError> {
        let entry = self
            .state
            .friends
            .get(friend)
            .ok_or(CommandError::UnknownFriend(*friend))?;
        if !entry.enabled {
            return Err(CommandError::FriendDisabled);
        }
        let ChannelStatus::Consistent(channel) = &entry.channel else {
            return Err(CommandError::ChannelInconsistent);
        };
        if entry.queued.len().saturating_add(operations.len()) > crate::node::MAX_QUEUED_OPERATIONS
        {
            return Err(CommandError::QueueFull);
        }
        let mut sheet = channel.sheet.clone();
        for operation in &entry.queued {
            let _ = sheet.apply(operation, Side::Local);
        }
        for operation in operations {
            sheet.apply(operation, Side::Local)?;
        }
        Ok(())
    }

    // ---- state helpers ----

    fn queue(&mut self, friend: PublicKey, operation: FriendOperation, out: &mut Output) {
        self.change(Change::QueueOperation { friend, operation }, out);
        self.touched.insert(friend);
    }

    fn set_payment(&mut self, payment: Payment, out: &mut Output) {
        self.change(
            Change::SetPayment {
                payment_id: payment.payment_id,
                payment: Some(Box::new(payment)),
            },
            out,
        );
    }

    fn set_invoice(&mut self, record: OpenInvoice, out: &mut Output) {
        self.change(
            Change::SetInvoice {
                invoice_id: record.invoice.invoice_id,
                invoice: Some(Box::new(record)),
            },
            out,
        );
    }

    fn update_account(
        &mut self,
        currency: &Currency,
        update: impl FnOnce(&mut PaymentAccount) -> Option<()>,
        out: &mut Output,
    ) {
        let mut account = self
            .state
            .payments
            .accounts
            .get(currency)
            .copied()
            .unwrap_or_default();
        // Totals saturate at Credits::MAX rather than fail: accounting never blocks a payment.
        if update(&mut account).is_none() {
            return;
        }
        self.change(
            Change::SetAccount {
                currency: currency.clone(),
                account,
            },
            out,
        );
    }

    fn cancel_request(
        &mut self,
        upstream: PublicKey,
        currency: &Currency,
        request_id: RequestId,
        out: &mut Output,
    ) {
        self.queue(
            upstream,
            FriendOperation::CancelSendFunds {
                currency: currency.clone(),
                request_id,
            },
            out,
        );
    }

    // ---- operations received ----

    /// Reacts to the payment operations of a token the friend sent us (already applied to
    /// the channel).
    pub(crate) fn payment_operations_received(
        &mut self,
        from: &PublicKey,
        operations: &[FriendOperation],
        now: Timestamp,
        out: &mut Output,
    ) {
        for operation in operations {
            match operation {
                FriendOperation::RequestSendFunds(request) => {
                    self.request_received(from, request, now, out);
                }
                FriendOperation::CancelSendFunds { request_id, .. } => {
                    self.request_released(from, request_id, None, now, out);
                }
                FriendOperation::CollectSendFunds {
                    request_id,
                    plain_lock,
                    amount,
                    ..
                } => {
                    self.request_released(from, request_id, Some((*plain_lock, *amount)), now, out);
                }
                _ => {}
            }
        }
    }

    /// Our queued request to `to` was dropped before it was sent: as if `to` cancelled it.
    pub(crate) fn request_not_sent(
        &mut self,
        to: &PublicKey,
        request: &RequestSendFunds,
        now: Timestamp,
        out: &mut Output,
    ) {
        self.request_released(to, &request.request_id, None, now, out);
    }

    fn request_received(
        &mut self,
        from: &PublicKey,
        request: &RequestSendFunds,
        now: Timestamp,
        out: &mut Output,
    ) {
        let me = self.public_key();
        let position = request.route.iter().position(|node| *node == me);
        let came_from_previous = position
            .and_then(|index| index.checked_sub(1))
            .and_then(|index| request.route.get(index))
            == Some(from);
        if !came_from_previous {
            self.cancel_request(*from, &request.currency, request.request_id, out);
            return;
        }
        match request.next_hop(&me).copied() {
            None => self.seller_received(from, request, now, out),
            Some(next) => self.forward(from, next, request, now, out),
        }
    }

    fn forward(
        &mut self,
        from: &PublicKey,
        next: PublicKey,
        request: &RequestSendFunds,
        now: Timestamp,
        out: &mut Output,
    ) {
        // Reserve the fee for the most we could pay downstream (all that is frozen upstream):
        // the fee is non-decreasing, so the fee on what is actually collected fits too.
        let rate = self
            .state
            .payments
            .rates
            .get(&(*from, request.currency.clone()))
            .copied();
        let fee = request
            .frozen()
            .and_then(|frozen| fee_for(rate.as_ref(), frozen));
        let left_fees = fee.and_then(|fee| request.left_fees.checked_sub(fee));
        let expires_at = request.expires_at.checked_sub(HOP_EXPIRY_DELTA_MS);
        let (Some(fee), Some(left_fees), Some(expires_at)) = (fee, left_fees, expires_at) else {
            // Our fee does not fit what the buyer allows, or no time is left.
            self.cancel_request(*from, &request.currency, request.request_id, out);
            return;
        };
        let downstream = RequestSendFunds {
            left_fees,
            expires_at,
            ..request.clone()
        };
        let operation = FriendOperation::RequestSendFunds(Box::new(downstream));
        let can_forward = expires_at > now.0
            && !self
                .state
                .payments
                .forwards
                .contains_key(&request.request_id)
            && self.is_online(&next)
            && self
                .check_can_queue(&next, std::slice::from_ref(&operation))
                .is_ok();
        if !can_forward {
            self.cancel_request(*from, &request.currency, request.request_id, out);
            return;
        }
        self.change(
            Change::SetForward {
                request_id: request.request_id,
                forward: Some(Box::new(Forward {
                    upstream: *from,
                    downstream: next,
                    request: request.clone(),
                    rate,
                    fee,
                })),
            },
            out,
        );
        self.queue(next, operation, out);
    }

    fn seller_received(
        &mut self,
        from: &PublicKey,
        request: &RequestSendFunds,
        now: Timestamp,
        out: &mut Output,
    ) {
        let record = self
            .state
            .payments
            .invoices
            .get(&request.invoice_id)
            .cloned();
        let Some(mut record) = record else {
            self.cancel_request(*from, &request.currency, request.request_id, out);
            return;
        };
        let invoice = &record.invoice;
        let received_so_far = record
            .received
            .iter()
            .try_fold(Credits::ZERO, |sum, received| {
                sum.checked_add(received.dest_payment)
            });
        let with_this = received_so_far.and_then(|sum| sum.checked_add(request.dest_payment));
        let acceptable = record.status == PaymentStatus::InProgress
            && request.currency == invoice.currency
            && request.hashed_lock == invoice.hashed_lock
            && request.total_dest_payment == invoice.amount
            && now.0 < invoice.expires_at
            && now.0 < request.expires_at
            && with_this.is_some_and(|sum| sum <= invoice.amount)
            // An honest buyer sends at most MAX_PAYMENT_ROUTES requests per payment.
            && record.received.len() < MAX_PAYMENT_ROUTES;
        if !acceptable {
            self.cancel_request(*from, &request.currency, request.request_id, out);
            return;
        }
        record.received.push(ReceivedRequest {
            from: *from,
            request_id: request.request_id,
            dest_payment: request.dest_payment,
            expires_at: request.expires_at,
            route_len: request.route.len(),
        });
        let all_alive = record
            .received
            .iter()
            .all(|received| now.0 < received.expires_at);
        if with_this == Some(invoice.amount) && !all_alive {
            // Part of the amount waited too long: give everything back rather than collect
            // after a deadline.
            self.seller_cancel_all(record, PaymentStatus::InProgress, now, out);
            return;
        }
        if with_this == Some(invoice.amount) {
            // The whole amount is frozen toward us: reveal the secret on every route.
            let currency = invoice.currency.clone();
            let amount = invoice.amount;
            for received in &record.received {
                self.queue(
                    received.from,
                    FriendOperation::CollectSendFunds {
                        currency: currency.clone(),
                        request_id: received.request_id,
                        plain_lock: record.plain_lock,
                        amount: received.dest_payment,
                    },
                    out,
                );
            }
            record.received.clear();
            record.status = PaymentStatus::Succeeded;
            record.finished_at = Some(now.0);
            let invoice_id = record.invoice.invoice_id;
            self.set_invoice(record, out);
            self.update_account(
                &currency,
                |account| {
                    account.received = account.received.checked_add(amount)?;
                    Some(())
                },
                out,
            );
            out.events.push(Event::PaymentReceived {
                invoice_id,
                currency,
                amount,
            });
        } else {
            self.set_invoice(record, out);
        }
    }

    /// The friend `downstream` released our request `request_id`: cancelled (`None`) or
    /// collected with the plain lock and amount.
    fn request_released(
        &mut self,
        downstream: &PublicKey,
        request_id: &RequestId,
        collected: Option<(PlainLock, Credits)>,
        now: Timestamp,
        out: &mut Output,
    ) {
        if let Some(forward) = self.state.payments.forwards.get(request_id).cloned() {
            if forward.downstream != *downstream {
                return;
            }
            self.change(
                Change::SetForward {
                    request_id: *request_id,
                    forward: None,
                },
                out,
            );
            let currency = forward.request.currency.clone();
            match collected {
                None => self.cancel_request(forward.upstream, &currency, *request_id, out),
                Some((plain_lock, amount)) => {
                    // Our fee on what we pay downstream, as the index computes it; never more
                    // than reserved, never past what is frozen upstream.
                    let frozen = forward.request.frozen().unwrap_or(Credits::MAX);
                    let fee = fee_for(forward.rate.as_ref(), amount)
                        .map_or(forward.fee, |fee| fee.min(forward.fee));
                    let upstream_amount = amount
                        .checked_add(fee)
                        .map_or(frozen, |sum| sum.min(frozen));
                    let earned = upstream_amount.saturating_sub(amount);
                    self.queue(
                        forward.upstream,
                        FriendOperation::CollectSendFunds {
                            currency: currency.clone(),
                            request_id: *request_id,
                            plain_lock,
                            amount: upstream_amount,
                        },
                        out,
                    );
                    self.update_account(
                        &currency,
                        |account| {
                            account.fees_earned = account.fees_earned.checked_add(earned)?;
                            Some(())
                        },
                        out,
                    );
                }
            }
            return;
        }
        let found = self.state.payments.payments.values().find_map(|payment| {
            let index = payment.routes.iter().position(|route| {
                route.request_id == *request_id && route.route.get(1) == Some(downstream)
            })?;
            Some((payment.clone(), index))
        });
        let Some((mut payment, index)) = found else {
            return;
        };
        let Some(route) = payment.routes.get_mut(index) else {
            return;
        };
        if route.status != PaymentStatus::InProgress {
            return;
        }
        let currency = payment.invoice.currency.clone();
        match collected {
            None => route.status = PaymentStatus::Cancelled,
            Some((plain_lock, amount)) => {
                route.status = PaymentStatus::Succeeded;
                route.paid = amount;
                let dest = route.dest_payment;
                let fees = amount.saturating_sub(dest);
                payment.plain_lock = Some(plain_lock);
                payment.fees_paid = payment.fees_paid.checked_add(fees).unwrap_or(Credits::MAX);
                self.update_account(
                    &currency,
                    |account| {
                        account.sent = account.sent.checked_add(dest)?;
                        account.fees_paid = account.fees_paid.checked_add(fees)?;
                        Some(())
                    },
                    out,
                );
            }
        }
        if payment.status == PaymentStatus::InProgress {
            if let Some(plain_lock) = payment.plain_lock {
                payment.status = PaymentStatus::Succeeded;
                payment.finished_at = Some(now.0);
                out.events.push(Event::PaymentSucceeded {
                    payment_id: payment.payment_id,
                    receipt: Box::new(Receipt {
                        invoice: payment.invoice.clone(),
                        plain_lock,
                    }),
                    fees: payment.fees_paid,
                });
            } else if payment
                .routes
                .iter()
                .all(|route| route.status == PaymentStatus::Cancelled)
            {
                payment.status = PaymentStatus::Cancelled;
                payment.finished_at = Some(now.0);
                out.events.push(Event::PaymentFailed {
                    payment_id: payment.payment_id,
                });
            }
        }
        self.set_payment(payment, out);
    }

    /// Cancels every request the seller received for an invoice and sets its status.
    fn seller_cancel_all(
        &mut self,
        mut record: OpenInvoice,
        status: PaymentStatus,
        now: Timestamp,
        out: &mut Output,
    ) {
        let currency = record.invoice.currency.clone();
        for received in std::mem::take(&mut record.received) {
            self.cancel_request(received.from, &currency, received.request_id, out);
        }
        if status != PaymentStatus::InProgress {
            record.status = status;
            record.finished_at = Some(now.0);
        }
        self.set_invoice(record, out);
    }

    // ---- timers ----

    /// The next time a payment deadline passes: the earliest expiry among requests a seller
    /// waits on, and among requests still queued for a friend.
    pub(crate) fn payment_deadline(&self) -> Option<Timestamp> {
        let seller = self
            .state
            .payments
            .invoices
            .values()
            .filter_map(|record| {
                let earliest = record.received.iter().map(|r| r.expires_at).min()?;
                Some(earliest.min(record.invoice.expires_at))
            })
            .min();
        // Queued requests matter only where the next flush sends a token (we hold it and the
        // friend is online): elsewhere the retransmission timer or the friend's token comes
        // first, and a past deadline would only make the runtime spin.
        let queued = self
            .state
            .friends
            .iter()
            .filter(|(key, friend)| {
                self.is_online(key)
                    && matches!(&friend.channel,
                        ChannelStatus::Consistent(channel) if channel.holds_token())
            })
            .flat_map(|(_, friend)| friend.queued.iter())
            .filter_map(|operation| match operation {
                FriendOperation::RequestSendFunds(request) => Some(request.expires_at),
                _ => None,
            })
            .min();
        match (seller, queued) {
            (Some(a), Some(b)) => Some(Timestamp(a.min(b))),
            (a, b) => a.or(b).map(Timestamp),
        }
    }

    /// Handles payment deadlines: the seller cancels what it waits on once a request or the
    /// invoice expired; friends with expired queued requests are flushed (the flush drops
    /// them and cancels upstream, or the friend is offline and they wait).
    pub(crate) fn payment_timeout(&mut self, now: Timestamp, out: &mut Output) {
        let due: Vec<OpenInvoice> = self
            .state
            .payments
            .invoices
            .values()
            .filter(|record| {
                record.received.iter().any(|r| r.expires_at <= now.0)
                    || (!record.received.is_empty() && record.invoice.expires_at <= now.0)
            })
            .cloned()
            .collect();
        for record in due {
            let status = if record.invoice.expires_at <= now.0 {
                PaymentStatus::Cancelled
            } else {
                PaymentStatus::InProgress
            };
            self.seller_cancel_all(record, status, now, out);
        }
        let expired_queues: Vec<PublicKey> = self
            .state
            .friends
            .iter()
            .filter(|(_, friend)| {
                friend.queued.iter().any(|operation| {
                    matches!(operation, FriendOperation::RequestSendFunds(request)
                        if request.expires_at <= now.0)
                })
            })
            .map(|(key, _)| *key)
            .collect();
        // A flush drops them and cancels upstream; a friend offline keeps them queued until
        // it is back (the queue is only consumed from its head), and they hold no credit on
        // its channel meanwhile.
        self.touched.extend(expired_queues);
    }

    // ---- resets ----

    /// A reset of the channel with `friend` cancelled every request pending on it.
    pub(crate) fn payments_after_reset(
        &mut self,
        friend: &PublicKey,
        now: Timestamp,
        out: &mut Output,
    ) {
        let forwards: Vec<(RequestId, Forward)> = self
            .state
            .payments
            .forwards
            .iter()
            .filter(|(_, forward)| forward.downstream == *friend || forward.upstream == *friend)
            .map(|(id, forward)| (*id, forward.clone()))
            .collect();
        for (request_id, forward) in forwards {
            if forward.downstream == *friend {
                // Our request downstream is gone: release the one upstream.
                self.request_released(friend, &request_id, None, now, out);
            } else {
                // The request upstream is gone; the one downstream stays pending until the
                // downstream side releases it (a reset can cost a mediator its fee and more:
                // see the spec, "Resets").
                self.change(
                    Change::SetForward {
                        request_id,
                        forward: None,
                    },
                    out,
                );
            }
        }
        let routes: Vec<RequestId> = self
            .state
            .payments
            .payments
            .values()
            .flat_map(|payment| payment.routes.iter())
            .filter(|route| {
                route.status == PaymentStatus::InProgress && route.route.get(1) == Some(friend)
            })
            .map(|route| route.request_id)
            .collect();
        for request_id in routes {
            self.request_released(friend, &request_id, None, now, out);
        }
        let invoices: Vec<OpenInvoice> = self
            .state
            .payments
            .invoices
            .values()
            .filter(|record| record.received.iter().any(|r| r.from == *friend))
            .cloned()
            .collect();
        for mut record in invoices {
            record.received.retain(|r| r.from != *friend);
            self.set_invoice(record, out);
        }
    }
}
