//! The token channel of one friendship: the hash-chained sequence of signed move tokens, who
//! holds the token, duplicate and replay detection, and inconsistency with its reset terms
//! (docs/PROTOCOL.md, "Friend channel"). This module decides what an incoming token means and
//! builds outgoing tokens; it never chooses what to send (that is [`crate::node`]) and never
//! reads a clock.

use std::collections::VecDeque;

use offst_crypto::{random_bytes, sha512_256, verify_signature, Identity, SecureRngDyn};
use offst_proto::canonical::{domain, CanonicalWriter};
use offst_proto::friend::{FriendOperation, MoveToken, ResetTerms};
use offst_proto::{DecodeError, PublicKey, RandValue, Signature};

use crate::sheet::{sheet_hash, BalanceSheet, ChainPosition, OperationError, Side};

/// How many of the friend's most recent token signatures a channel remembers, to recognise a
/// late duplicate (a retransmission overtaken by newer tokens) without treating it as a broken
/// chain. Retransmissions are at most a few tokens old; 32 leaves a wide margin for 2 KiB.
pub const RECENT_INCOMING_TOKENS: usize = 32;

/// Why a message from a friend was not accepted. [`ReceiveError::is_fatal`] tells which ones
/// break the channel (it becomes inconsistent and both sides publish reset terms); the others
/// are ignored and change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// The sender is not a friend.
    #[error("message from {0}, who is not a friend")]
    UnknownFriend(PublicKey),
    /// The friend is disabled: its messages are ignored.
    #[error("the friend is disabled")]
    FriendDisabled,
    /// The bytes are not a friend message.
    #[error("malformed friend message: {0}")]
    Malformed(#[from] DecodeError),
    /// The signature does not verify with the friend's key.
    #[error("the move token's signature does not verify with the friend's key")]
    InvalidSignature,
    /// The token does not continue the chain (not chained on our last token, not a duplicate).
    #[error("the move token does not continue the token chain")]
    ChainMismatch,
    /// The token is chained correctly but its counters are not the next ones.
    #[error("move token counters {received:?}, expected {expected:?}")]
    WrongCounter {
        /// The position the next token must have.
        expected: ChainPosition,
        /// The position in the token.
        received: ChainPosition,
    },
    /// An operation of the batch is invalid (over a limit, unknown currency, ...).
    #[error("operation {index} of the move token is invalid: {error}")]
    Operation {
        /// Its index in the batch.
        index: usize,
        /// Why it is invalid.
        error: OperationError,
    },
    /// The balance sheet hash in the token is not the one the operations lead to.
    #[error("the move token commits to a balance sheet we do not agree with")]
    BalanceHashMismatch,
    /// A token that claims to accept our reset terms but does not match them.
    #[error("invalid reset token: {0}")]
    InvalidReset(&'static str),
    /// An older token of the chain, already processed (a replay); ignored.
    #[error("an old move token was replayed; ignored")]
    Replayed,
    /// An unknown token older than our position (a forgotten duplicate, or a friend that lost
    /// its data); ignored, and the friend is shown our last token.
    #[error("an unknown move token older than our chain position; ignored")]
    Outdated,
    /// A move token while the channel is inconsistent that does not accept our terms; ignored.
    #[error("the channel is inconsistent; the move token does not accept our reset terms")]
    NotConsistent,
    /// Reset terms of an inconsistency that is already resolved; ignored.
    #[error("reset terms of an earlier inconsistency; ignored")]
    StaleResetTerms,
}

impl ReceiveError {
    /// Whether the error breaks the channel. Non-fatal errors leave the state unchanged.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ReceiveError::InvalidSignature
                | ReceiveError::ChainMismatch
                | ReceiveError::WrongCounter { .. }
                | ReceiveError::Operation { .. }
                | ReceiveError::BalanceHashMismatch
        )
    }
}

/// Who may send the next move token.
// One per friend: boxing the token would only add an allocation per move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    /// We hold the token: we may send the next move token.
    Local,
    /// The friend holds the token; we keep our last token to retransmit it until the friend
    /// answers (`None` only at genesis, where the first token is the friend's).
    Remote {
        /// Our last signed token.
        last_outgoing: Option<MoveToken>,
    },
}

/// A consistent token channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChannel {
    /// The balance sheet after the last token (ours or the friend's).
    pub sheet: BalanceSheet,
    /// The sheet before our last token while the friend holds the token (the friend may yet
    /// reject that token); equal to `sheet` while we hold it. Both are states we signed.
    pub previous_sheet: BalanceSheet,
    /// The position of the last token.
    pub position: ChainPosition,
    /// `new_token` of the last token: the `old_token` of the next one.
    pub tip: Signature,
    /// Who sends next.
    pub holder: TokenHolder,
    /// The friend's last token: its signed statement of the sheet, our proof of what it agreed.
    pub last_incoming: Option<MoveToken>,
    /// Signatures of the friend's recent tokens, newest last, at most
    /// [`RECENT_INCOMING_TOKENS`].
    pub recent_incoming: VecDeque<Signature>,
    /// Our reset terms of the last reset, kept to settle a race where both sides accepted.
    pub own_reset_terms: Option<ResetTerms>,
    /// The reset token of the friend's terms we accepted in the last reset: the same terms
    /// arriving late are stale.
    pub accepted_reset_token: Option<Signature>,
}

/// An inconsistent channel: both sides publish reset terms until one side accepts the other's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency {
    /// Our terms: our view of the sheet when the inconsistency was detected.
    pub local_terms: ResetTerms,
    /// The counter our terms are published with: at least that of `local_terms`, raised above
    /// the friend's epoch when the friend turns out to be in a later one (else it would take
    /// them for stale). The reset token stays the same, so an acceptance of an earlier
    /// publication stays valid.
    pub published_counter: u64,
    /// The friend's terms, once received.
    pub remote_terms: Option<ResetTerms>,
    /// The friend's last token before the inconsistency (evidence for a dispute).
    pub last_incoming: Option<MoveToken>,
    /// The sheet before our last token, if the friend may have rejected that token: terms
    /// equal to it are also terms we signed.
    pub previous_sheet: Option<BalanceSheet>,
}

impl TokenChannel {
    /// The inconsistency this channel turns into, with `local_terms` as our terms.
    pub(crate) fn to_inconsistency(
        &self,
        local_terms: ResetTerms,
        remote_terms: Option<ResetTerms>,
    ) -> Inconsistency {
        Inconsistency {
            published_counter: local_terms.inconsistency_counter,
            local_terms,
            remote_terms,
            last_incoming: self.last_incoming.clone(),
            previous_sheet: (self.previous_sheet != self.sheet)
                .then(|| self.previous_sheet.clone()),
        }
    }
}

/// The state of a friendship's token channel.
// One per friend, and mostly consistent: boxing the larger variant would only add an
// allocation to every channel.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Tokens flow.
    Consistent(TokenChannel),
    /// Waiting for one side to accept the other's reset terms.
    Inconsistent(Inconsistency),
}

/// What a received token meant, when it was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    /// A new token: its operations were applied and we now hold the token.
    Applied(Vec<FriendOperation>),
    /// The friend's last token again: nothing changes.
    Duplicate,
    /// The friend's token before our last one: the friend missed our last token; resend it.
    Retransmit,
    /// The friend accepted our reset terms: the channel is consistent again and we hold the token.
    ResetAccepted,
    /// An unknown token older than our position: nothing changes; the friend should see our
    /// last token (retransmitted, or a new empty one if we hold the token).
    Outdated,
}

/// The link the first token of a friendship chains on: 64 bytes derived from both public keys,
/// so both sides compute it without talking. `SHA-512/256(tag, low key, high key, 0) ||
/// SHA-512/256(tag, low key, high key, 1)` with tag `offst/v1/friend/genesis`.
pub fn genesis_link(a: &PublicKey, b: &PublicKey) -> Signature {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let half = |index: u8| {
        let mut writer = CanonicalWriter::new(domain::CHANNEL_GENESIS);
        writer
            .fixed(low.as_bytes())
            .fixed(high.as_bytes())
            .u8(index);
        sha512_256(&writer.finish())
    };
    let mut bytes = [0u8; 64];
    let (first, second) = bytes.split_at_mut(32);
    first.copy_from_slice(half(0).as_bytes());
    second.copy_from_slice(half(1).as_bytes());
    Signature::from_bytes(bytes)
}

impl TokenChannel {
    /// The channel of a new friendship: empty sheet, position 0, chained on the genesis link.
    /// The side with the lower public key holds the token first.
    pub fn genesis(local: &PublicKey, remote: &PublicKey) -> TokenChannel {
        let holder = if local < remote {
            TokenHolder::Local
        } else {
            TokenHolder::Remote {
                last_outgoing: None,
            }
        };
        TokenChannel {
            sheet: BalanceSheet::new(),
            previous_sheet: BalanceSheet::new(),
            position: ChainPosition::default(),
            tip: genesis_link(local, remote),
            holder,
            last_incoming: None,
            recent_incoming: VecDeque::new(),
            own_reset_terms: None,
            accepted_reset_token: None,
        }
    }

    /// No token was exchanged yet: the channel is as [`TokenChannel::genesis`] made it.
    pub fn is_at_genesis(&self) -> bool {
        self.position == ChainPosition::default()
            && self.last_incoming.is_none()
            && matches!(
                self.holder,
                TokenHolder::Local
                    | TokenHolder::Remote {
                        last_outgoing: None
                    }
            )
    }

    /// We may send the next token.
    pub fn holds_token(&self) -> bool {
        self.holder == TokenHolder::Local
    }

    /// Signs a token carrying `operations`, whose result is `sheet_after` (the caller applied
    /// them to a copy of [`TokenChannel::sheet`]), and passes the token to the friend.
    pub(crate) fn send(
        &mut self,
        identity: &Identity,
        remote: &PublicKey,
        operations: Vec<FriendOperation>,
        sheet_after: BalanceSheet,
        rng: &mut dyn SecureRngDyn,
    ) -> Result<MoveToken, OperationError> {
        let position = ChainPosition {
            inconsistency_counter: self.position.inconsistency_counter,
            move_token_counter: self
                .position
                .move_token_counter
                .checked_add(1)
                .ok_or(OperationError::Overflow)?,
        };
        let token = sign_token(
            identity,
            remote,
            self.tip,
            position,
            operations,
            &sheet_after,
            rng,
        )?;
        self.previous_sheet = std::mem::replace(&mut self.sheet, sheet_after);
        self.position = position;
        self.tip = token.new_token;
        self.holder = TokenHolder::Remote {
            last_outgoing: Some(token.clone()),
        };
        Ok(token)
    }

    /// Processes a token from the friend. On `Ok` the channel is updated; on a fatal error the
    /// caller must make the channel inconsistent; a non-fatal error changed nothing.
    pub(crate) fn receive(
        &mut self,
        local: &PublicKey,
        remote: &PublicKey,
        token: &MoveToken,
    ) -> Result<TokenOutcome, ReceiveError> {
        let is_last_incoming = self
            .last_incoming
            .as_ref()
            .is_some_and(|last| last.new_token == token.new_token);
        if let TokenHolder::Remote { last_outgoing } = &self.holder {
            if token.old_token == self.tip {
                return self.apply_incoming(local, remote, token);
            }
            if is_last_incoming {
                // The friend sent its last token again: it has not seen ours.
                return Ok(match last_outgoing {
                    Some(_) => TokenOutcome::Retransmit,
                    None => TokenOutcome::Duplicate,
                });
            }
        } else if is_last_incoming {
            return Ok(TokenOutcome::Duplicate);
        }
        if self.recent_incoming.contains(&token.new_token) {
            return Err(ReceiveError::Replayed);
        }
        if let Some(own_terms) = &self.own_reset_terms {
            if token.old_token == own_terms.reset_token {
                return self.settle_reset_race(local, remote, token);
            }
        }
        let received = ChainPosition {
            inconsistency_counter: token.inconsistency_counter,
            move_token_counter: token.move_token_counter,
        };
        if received < self.position {
            // Older than our position: a duplicate we no longer remember, or a friend that
            // lost its data and restarted its chain. Either way, showing it our last token
            // settles it: a friend on our chain takes it as a duplicate or the next token; a
            // friend on another chain detects the mismatch and publishes reset terms.
            return Ok(TokenOutcome::Outdated);
        }
        Err(ReceiveError::ChainMismatch)
    }

    fn apply_incoming(
        &mut self,
        local: &PublicKey,
        remote: &PublicKey,
        token: &MoveToken,
    ) -> Result<TokenOutcome, ReceiveError> {
        let expected = ChainPosition {
            inconsistency_counter: self.position.inconsistency_counter,
            move_token_counter: self.position.move_token_counter.saturating_add(1),
        };
        let received = ChainPosition {
            inconsistency_counter: token.inconsistency_counter,
            move_token_counter: token.move_token_counter,
        };
        if received != expected || expected.move_token_counter == u64::MAX {
            return Err(ReceiveError::WrongCounter { expected, received });
        }
        verify_signature(remote, &token.signing_bytes(), &token.new_token)
            .map_err(|_| ReceiveError::InvalidSignature)?;
        let mut sheet = self.sheet.clone();
        for (index, operation) in token.operations.iter().enumerate() {
            sheet
                .apply(operation, Side::Remote)
                .map_err(|error| ReceiveError::Operation { index, error })?;
        }
        if sheet_hash(local, remote, expected, &sheet) != Some(token.info_hash) {
            return Err(ReceiveError::BalanceHashMismatch);
        }
        self.previous_sheet = sheet.clone();
        self.sheet = sheet;
        self.position = expected;
        self.accept_incoming(token);
        Ok(TokenOutcome::Applied(token.operations.clone()))
    }

    fn accept_incoming(&mut self, token: &MoveToken) {
        self.tip = token.new_token;
        self.holder = TokenHolder::Local;
        if self.recent_incoming.len() >= RECENT_INCOMING_TOKENS {
            self.recent_incoming.pop_front();
        }
        self.recent_incoming.push_back(token.new_token);
        self.last_incoming = Some(token.clone());
    }

    /// Both sides accepted each other's terms at the same time. The acceptance in the later
    /// epoch wins; in the same epoch, the one signed by the side with the lower public key. The
    /// losing side drops its own acceptance and takes the friend's; the winning side ignores
    /// the friend's (the friend will take ours, which we keep retransmitting).
    fn settle_reset_race(
        &mut self,
        local: &PublicKey,
        remote: &PublicKey,
        token: &MoveToken,
    ) -> Result<TokenOutcome, ReceiveError> {
        let ours_pending = match &self.holder {
            TokenHolder::Remote {
                last_outgoing: Some(last),
            } if last.move_token_counter == 0 => Some(last.inconsistency_counter),
            _ => None,
        };
        let theirs_wins = ours_pending.is_some_and(|ours| {
            token.inconsistency_counter > ours
                || (token.inconsistency_counter == ours && local > remote)
        });
        match &self.own_reset_terms {
            Some(own_terms) if theirs_wins => {
                *self = accept_reset_token(local, remote, own_terms, token)?;
                Ok(TokenOutcome::ResetAccepted)
            }
            _ => Err(ReceiveError::Replayed),
        }
    }

    /// Our reset terms for a new inconsistency: our current sheet. The epoch is
    /// above every epoch we know of (ours and `seen_counter`, the highest the friend showed).
    pub(crate) fn reset_terms(&self, seen_counter: u64, rng: &mut dyn SecureRngDyn) -> ResetTerms {
        new_reset_terms(
            &self.sheet,
            self.position.inconsistency_counter.max(seen_counter),
            rng,
        )
    }
}

/// Fresh reset terms for `sheet`, in the epoch after `counter`.
pub(crate) fn new_reset_terms(
    sheet: &BalanceSheet,
    counter: u64,
    rng: &mut dyn SecureRngDyn,
) -> ResetTerms {
    ResetTerms {
        reset_token: Signature::from_bytes(random_bytes::<64>(rng)),
        inconsistency_counter: counter.saturating_add(1),
        currencies: sheet.to_terms(),
    }
}

fn sign_token(
    identity: &Identity,
    remote: &PublicKey,
    old_token: Signature,
    position: ChainPosition,
    operations: Vec<FriendOperation>,
    sheet_after: &BalanceSheet,
    rng: &mut dyn SecureRngDyn,
) -> Result<MoveToken, OperationError> {
    let info_hash = sheet_hash(&identity.public_key(), remote, position, sheet_after)
        .ok_or(OperationError::Overflow)?;
    let rand_nonce = RandValue::from_bytes(random_bytes::<16>(rng));
    let signing_bytes = MoveToken::signing_bytes_of(
        &old_token,
        position.inconsistency_counter,
        position.move_token_counter,
        &operations,
        &info_hash,
        &rand_nonce,
    );
    Ok(MoveToken {
        old_token,
        inconsistency_counter: position.inconsistency_counter,
        move_token_counter: position.move_token_counter,
        operations,
        info_hash,
        rand_nonce,
        new_token: identity.sign(&signing_bytes),
    })
}

/// Checks that `token` accepts `own_terms` (our published terms) and returns the restarted
/// channel, where we hold the token.
fn accept_reset_token(
    local: &PublicKey,
    remote: &PublicKey,
    own_terms: &ResetTerms,
    token: &MoveToken,
) -> Result<TokenChannel, ReceiveError> {
    if token.old_token != own_terms.reset_token {
        return Err(ReceiveError::NotConsistent);
    }
    if !token.operations.is_empty() {
        return Err(ReceiveError::InvalidReset(
            "a reset token carries no operations",
        ));
    }
    if token.move_token_counter != 0
        || token.inconsistency_counter < own_terms.inconsistency_counter
    {
        return Err(ReceiveError::InvalidReset("wrong counters"));
    }
    let sheet = BalanceSheet::from_terms(&own_terms.currencies, false)
        .ok_or(ReceiveError::InvalidReset("unrepresentable balance"))?;
    let position = ChainPosition {
        inconsistency_counter: token.inconsistency_counter,
        move_token_counter: 0,
    };
    if sheet_hash(local, remote, position, &sheet) != Some(token.info_hash) {
        return Err(ReceiveError::InvalidReset("the sheet is not our terms"));
    }
    verify_signature(remote, &token.signing_bytes(), &token.new_token)
        .map_err(|_| ReceiveError::InvalidSignature)?;
    let mut channel = TokenChannel {
        previous_sheet: sheet.clone(),
        sheet,
        position,
        tip: token.new_token,
        holder: TokenHolder::Local,
        last_incoming: None,
        recent_incoming: VecDeque::new(),
        own_reset_terms: Some(own_terms.clone()),
        accepted_reset_token: None,
    };
    channel.accept_incoming(token);
    Ok(channel)
}

impl Inconsistency {
    /// Our terms as we publish them (with [`Inconsistency::published_counter`]).
    pub fn published_terms(&self) -> ResetTerms {
        ResetTerms {
            inconsistency_counter: self.published_counter,
            ..self.local_terms.clone()
        }
    }

    /// A token while inconsistent: it restarts the channel only if it accepts our terms.
    pub(crate) fn receive(
        &self,
        local: &PublicKey,
        remote: &PublicKey,
        token: &MoveToken,
    ) -> Result<TokenChannel, ReceiveError> {
        accept_reset_token(local, remote, &self.local_terms, token)
    }

    /// Accepts the friend's terms: builds and signs the reset token and the restarted channel,
    /// where the friend holds the token. `None` if we have no terms from the friend.
    pub(crate) fn accept_remote_terms(
        &self,
        identity: &Identity,
        remote: &PublicKey,
        rng: &mut dyn SecureRngDyn,
    ) -> Option<Result<(TokenChannel, MoveToken), OperationError>> {
        let remote_terms = self.remote_terms.as_ref()?;
        Some((|| {
            let sheet = BalanceSheet::from_terms(&remote_terms.currencies, true)
                .ok_or(OperationError::Overflow)?;
            let position = ChainPosition {
                inconsistency_counter: self
                    .published_counter
                    .max(remote_terms.inconsistency_counter),
                move_token_counter: 0,
            };
            let token = sign_token(
                identity,
                remote,
                remote_terms.reset_token,
                position,
                Vec::new(),
                &sheet,
                rng,
            )?;
            let channel = TokenChannel {
                previous_sheet: sheet.clone(),
                sheet,
                position,
                tip: token.new_token,
                holder: TokenHolder::Remote {
                    last_outgoing: Some(token.clone()),
                },
                last_incoming: None,
                recent_incoming: VecDeque::new(),
                own_reset_terms: Some(self.local_terms.clone()),
                accepted_reset_token: Some(remote_terms.reset_token),
            };
            Ok((channel, token))
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_the_same_on_both_sides_and_exactly_one_side_holds_the_token() {
        let a = Identity::from_seed([1; 32]).public_key();
        let b = Identity::from_seed([2; 32]).public_key();
        let at_a = TokenChannel::genesis(&a, &b);
        let at_b = TokenChannel::genesis(&b, &a);
        assert_eq!(at_a.tip, at_b.tip);
        assert_ne!(at_a.holds_token(), at_b.holds_token());
        assert_eq!(at_a.holds_token(), a < b);
        let c = Identity::from_seed([3; 32]).public_key();
        assert_ne!(genesis_link(&a, &c), at_a.tip);
    }

    #[test]
    fn only_chain_breaking_errors_are_fatal() {
        assert!(ReceiveError::ChainMismatch.is_fatal());
        assert!(ReceiveError::InvalidSignature.is_fatal());
        assert!(ReceiveError::BalanceHashMismatch.is_fatal());
        assert!(!ReceiveError::Replayed.is_fatal());
        assert!(!ReceiveError::NotConsistent.is_fatal());
        assert!(!ReceiveError::StaleResetTerms.is_fatal());
    }
}

#[cfg(test)]
mod vectors {
    //! Test vectors for docs/PROTOCOL.md ("Friend channel"): a second implementation must
    //! produce the same bytes.

    use super::*;
    use crate::sheet::sheet_hash;
    use offst_proto::{Credits, Currency, PaymentId};

    fn keys() -> (Identity, Identity) {
        (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]))
    }

    #[test]
    fn friend_channel_vectors_are_stable() {
        let (a, b) = keys();
        let (pa, pb) = (a.public_key(), b.public_key());
        assert_eq!(
            pa.to_string(),
            "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w"
        );
        assert_eq!(
            pb.to_string(),
            "gTl3Dqh9F19Wo1Rmw0x-zMuNipG07jeiXfYPW4_Js5Q"
        );
        assert_eq!(
            genesis_link(&pa, &pb).to_string(),
            "7yy9qkq30gwpnkSC4VW8KnsveHnOjaaeJcm4XnhnIgi6vo5OAtKP5WY1U0I3TA3Utda2TJOL7NDdF8RuqFGQkA"
        );
        let fst = Currency::new("FST").unwrap();
        let mut sheet = BalanceSheet::new();
        for operation in [
            FriendOperation::AddCurrency(fst.clone()),
            FriendOperation::SetRemoteMaxDebt {
                currency: fst.clone(),
                max_debt: Credits(100),
            },
            FriendOperation::SetCurrencyOpen {
                currency: fst.clone(),
                open: true,
            },
        ] {
            sheet.apply(&operation, Side::Local).unwrap();
        }
        let position = ChainPosition {
            inconsistency_counter: 0,
            move_token_counter: 1,
        };
        let hash = sheet_hash(&pa, &pb, position, &sheet).unwrap();
        assert_eq!(
            hash.to_string(),
            "jqrAP1ccfwZXx5Jbxp_3_gMg0fw7q-vnorb0kRgWr1U"
        );
        // B computes the same hash from its mirrored view.
        assert_eq!(
            sheet_hash(&pb, &pa, position, &sheet.flipped().unwrap()),
            Some(hash)
        );
        let signing_bytes = MoveToken::signing_bytes_of(
            &genesis_link(&pa, &pb),
            0,
            1,
            &[FriendOperation::Transfer {
                currency: fst,
                amount: Credits(5),
                transfer_id: PaymentId::from_bytes([7; 16]),
            }],
            &hash,
            &RandValue::from_bytes([9; 16]),
        );
        assert_eq!(
            hex(&signing_bytes),
            "0000001a6f666673742f76312f667269656e642f6d6f76652d746f6b656e\
             ef2cbdaa4ab7d20c299e4482e155bc2a7b2f7879ce8da69e25c9b85e78672208\
             babe8e4e02d28fe566355342374c0dd4b5d6b64c938becd0dd17c46ea8519090\
             0000000000000000\
             0000000000000001\
             00000001\
             04000000034653540000000000000000000000000000000507070707070707070707070707070707\
             8eaac03f571c7f0657c7925bc69ff7fe0320d1fc3babebe7a2b6f4911816af55\
             09090909090909090909090909090909"
        );
        assert_eq!(
            a.sign(&signing_bytes).to_string(),
            "GX7K6MohPTzGtd2MaunY3tkUx5CqZg1JDb50UG8SUsSaKBabMj975Fs3Vg37VVbLDjXcYpbX87U4WvBDM7UZCg"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
