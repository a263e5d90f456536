//! The persisted state of the credit layer ([`NodeState`]) and the changes that move it
//! ([`Change`]). The node emits changes; the store applies them in one transaction before any
//! message of the same step is sent, and rebuilds the state after a restart by applying them in
//! order. `NodeState` holds nothing that is not persisted: what lives only in memory (who is
//! online, retransmission timers) is in [`crate::node`].

use std::collections::{BTreeMap, VecDeque};

use offst_proto::friend::FriendOperation;
use offst_proto::{Credits, Currency, PublicKey, RelayAddress, Text};

use crate::channel::{ChannelStatus, TokenChannel};

/// What we want for one currency with one friend. The node announces it through the token
/// channel whenever the channel's sheet differs (when it holds the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyConfig {
    /// The most the friend may owe us (our credit limit for the friend).
    pub remote_max_debt: Credits,
    /// Whether we accept incoming payments in this currency.
    pub open: bool,
}

/// One friend: what the user configured and the shared token channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friend {
    /// The friend's identity.
    pub public_key: PublicKey,
    /// A name chosen by the user.
    pub name: Text,
    /// Relays the friend listens on (at most `offst_proto::limits::MAX_RELAYS`).
    pub relays: Vec<RelayAddress>,
    /// A disabled friend is not contacted and its messages are ignored.
    pub enabled: bool,
    /// What we want per currency.
    pub currency_configs: BTreeMap<Currency, CurrencyConfig>,
    /// The token channel.
    pub channel: ChannelStatus,
    /// Operations requested by the user, waiting for the token (oldest first, at most
    /// [`crate::node::MAX_QUEUED_OPERATIONS`]).
    pub queued: VecDeque<FriendOperation>,
    /// The key this friend had before a confirmed key replacement, if any.
    pub previous_key: Option<PublicKey>,
}

impl Friend {
    /// A new friend with a genesis channel.
    pub fn new(
        local: &PublicKey,
        public_key: PublicKey,
        name: Text,
        relays: Vec<RelayAddress>,
    ) -> Friend {
        Friend {
            public_key,
            name,
            relays,
            enabled: true,
            currency_configs: BTreeMap::new(),
            channel: ChannelStatus::Consistent(TokenChannel::genesis(local, &public_key)),
            queued: VecDeque::new(),
            previous_key: None,
        }
    }
}

/// Everything the credit layer persists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeState {
    /// Friends by public key.
    pub friends: BTreeMap<PublicKey, Friend>,
}

/// One persisted state change. Applying the changes of a step, in order, to the state before
/// the step gives the state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A friend was added (or re-created under a new key).
    AddFriend(Box<Friend>),
    /// A friend and everything about it was removed.
    RemoveFriend(PublicKey),
    /// The friend's name changed.
    SetFriendName {
        /// The friend.
        friend: PublicKey,
        /// The new name.
        name: Text,
    },
    /// The friend's relays changed.
    SetFriendRelays {
        /// The friend.
        friend: PublicKey,
        /// The new relays.
        relays: Vec<RelayAddress>,
    },
    /// The friend was enabled or disabled.
    SetFriendEnabled {
        /// The friend.
        friend: PublicKey,
        /// Enabled?
        enabled: bool,
    },
    /// Our wish for a currency changed (`None`: removed).
    SetCurrencyConfig {
        /// The friend.
        friend: PublicKey,
        /// The currency.
        currency: Currency,
        /// The new configuration.
        config: Option<CurrencyConfig>,
    },
    /// The token channel moved (a token sent or received, an inconsistency, a reset).
    SetChannel {
        /// The friend.
        friend: PublicKey,
        /// The whole new channel state (small: the sheet, the last tokens, reset terms).
        channel: Box<ChannelStatus>,
    },
    /// A user operation joined the end of the friend's queue.
    QueueOperation {
        /// The friend.
        friend: PublicKey,
        /// The operation.
        operation: FriendOperation,
    },
    /// The first `count` queued operations left the queue (sent or dropped).
    DequeueOperations {
        /// The friend.
        friend: PublicKey,
        /// How many.
        count: usize,
    },
}

impl NodeState {
    /// Applies one change. Changes about a friend that does not exist are ignored (they cannot
    /// come from a node; the store may still replay them after a crash).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::AddFriend(friend) => {
                self.friends
                    .insert(friend.public_key, friend.as_ref().clone());
            }
            Change::RemoveFriend(friend) => {
                self.friends.remove(friend);
            }
            Change::SetFriendName { friend, name } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.name = name.clone();
                }
            }
            Change::SetFriendRelays { friend, relays } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.relays = relays.clone();
                }
            }
            Change::SetFriendEnabled { friend, enabled } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.enabled = *enabled;
                }
            }
            Change::SetCurrencyConfig {
                friend,
                currency,
                config,
            } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    match config {
                        Some(config) => {
                            entry.currency_configs.insert(currency.clone(), *config);
                        }
                        None => {
                            entry.currency_configs.remove(currency);
                        }
                    }
                }
            }
            Change::SetChannel { friend, channel } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.channel = channel.as_ref().clone();
                }
            }
            Change::QueueOperation { friend, operation } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    entry.queued.push_back(operation.clone());
                }
            }
            Change::DequeueOperations { friend, count } => {
                if let Some(entry) = self.friends.get_mut(friend) {
                    let count = (*count).min(entry.queued.len());
                    entry.queued.drain(..count);
                }
            }
        }
    }
}
