//! Offst mutual credit: friends, the token channel and payments as a sans-I/O state machine.
//!
//! Two friends keep one hash-chained sequence of signed move tokens; each token carries a batch
//! of operations and commits to the full balance sheet of the pair, so the last token received
//! is a portable proof of what the friend agreed to. [`CreditNode`] is the whole credit layer of
//! a node: `(state, input, now, rng) -> (changes to persist, messages to send, events)`.
//!
//! Modules, from the inside out:
//! - [`sheet`]: the balance sheet of one friendship and the rules of mutual credit;
//! - [`channel`]: the token channel (chain, token holder, duplicates, reset terms);
//! - [`state`]: the persisted state and the changes that move it;
//! - [`node`]: the node state machine: commands, friend messages, timers;
//! - [`payment`]: invoices and offline-verifiable receipts.
//!
//! This crate never does I/O, never reads a clock and never draws OS randomness: time and a
//! secure RNG are arguments. docs/PROTOCOL.md, "Friend channel", is the wire specification.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod channel;
pub mod node;
mod pay;
pub mod payment;
pub mod sheet;
pub mod state;

pub use channel::{ChannelStatus, Inconsistency, ReceiveError, TokenChannel, TokenHolder};
pub use node::{
    Command, CommandError, CreditConfig, CreditNode, Event, OutgoingMessage, Output, PayRoute,
    ResetPolicy, Timestamp,
};
pub use sheet::{BalanceSheet, ChainPosition, CurrencyState, OperationError, Side};
pub use state::{
    Change, CurrencyConfig, FeeRate, Forward, Friend, NodeState, OpenInvoice, Payment,
    PaymentAccount, PaymentBook, PaymentRoute, PaymentStatus, ReceivedRequest,
};
