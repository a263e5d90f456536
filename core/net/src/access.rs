//! Access control by identity: which authenticated peers a listener accepts. Applied after the
//! handshake proved the peer's key, before any of its messages are read.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use offst_proto::PublicKey;

/// Decides whether an authenticated peer may stay connected.
pub trait AccessControl: Send + Sync {
    /// Whether `peer` is allowed.
    fn allows(&self, peer: &PublicKey) -> bool;
}

impl<F> AccessControl for F
where
    F: Fn(&PublicKey) -> bool + Send + Sync,
{
    fn allows(&self, peer: &PublicKey) -> bool {
        self(peer)
    }
}

/// Accepts every peer (public servers: relays, index servers).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl AccessControl for AllowAll {
    fn allows(&self, _peer: &PublicKey) -> bool {
        true
    }
}

/// A shared, updatable set of allowed keys (a node's friends). Clones share the same set, so
/// the node can update it while listeners use it.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    keys: Arc<RwLock<HashSet<PublicKey>>>,
}

impl AllowList {
    /// An allow-list holding `keys`.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> AllowList {
        AllowList {
            keys: Arc::new(RwLock::new(keys.into_iter().collect())),
        }
    }

    /// Allows `key`.
    pub fn insert(&self, key: PublicKey) {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key);
    }

    /// Stops allowing `key` (already open connections are not affected).
    pub fn remove(&self, key: &PublicKey) {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    /// Replaces the whole set.
    pub fn replace(&self, keys: impl IntoIterator<Item = PublicKey>) {
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys.into_iter().collect();
    }
}

impl AccessControl for AllowList {
    fn allows(&self, peer: &PublicKey) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_allows_only_its_keys_and_follows_updates() {
        let friend = PublicKey::from_bytes([1; 32]);
        let stranger = PublicKey::from_bytes([2; 32]);
        let list = AllowList::new([friend]);
        let shared = list.clone();
        assert!(shared.allows(&friend));
        assert!(!shared.allows(&stranger));
        list.insert(stranger);
        assert!(shared.allows(&stranger));
        list.remove(&friend);
        assert!(!shared.allows(&friend));
        list.replace([]);
        assert!(!shared.allows(&stranger));
    }

    #[test]
    fn closures_are_access_control() {
        let only_ones = |peer: &PublicKey| peer.as_bytes()[0] == 1;
        assert!(only_ones.allows(&PublicKey::from_bytes([1; 32])));
        assert!(!only_ones.allows(&PublicKey::from_bytes([2; 32])));
    }
}
