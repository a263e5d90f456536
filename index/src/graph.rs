//! The capacity graph: what nodes reported about their friends, per currency, and the directed
//! arcs a payment may use.
//!
//! A node reports, per (friend, currency), how much it can send to and receive from that friend
//! and the fee it charges for forwarding requests that arrive from that friend. An edge between
//! two nodes exists only when **both** report each other in that currency; its capacity in each
//! direction is the smaller of what the sender says it can send and what the receiver says it
//! can receive. This module never verifies signatures, never reads a clock and never does I/O:
//! the caller (`crate::state`) decides which reports are valid and when they expire.

use std::collections::HashMap;

use offst_proto::index::FeeRate;
use offst_proto::{Credits, Currency, PublicKey};

/// A compact node handle inside one [`CurrencyGraph`]. Valid only for that graph and only until
/// the node leaves it.
pub type NodeIx = u32;

/// What a node reported about one friend in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    /// How much the node can still send to the friend.
    pub send: Credits,
    /// How much the node can still receive from the friend.
    pub recv: Credits,
    /// The fee the node charges for forwarding requests that arrive from the friend.
    pub rate: FeeRate,
}

/// One side of an agreed edge, stored at the node that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// The friend at the other end.
    pub peer: NodeIx,
    /// Capacity of the arc owner → peer: `min(owner.send, peer.recv)`.
    pub send: u128,
    /// Capacity of the arc peer → owner: `min(peer.send, owner.recv)`.
    pub recv: u128,
    /// The fee the owner charges for requests that arrive from the peer.
    pub rate: FeeRate,
    /// The fee the peer charges for requests that arrive from the owner (the other side's
    /// `rate`, kept here so forward searches need no lookup).
    pub peer_rate: FeeRate,
}

/// Why the graph refused a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The graph already holds as many nodes as it may.
    #[error("the graph is full ({0} nodes)")]
    Full(usize),
}

#[derive(Debug, Default)]
struct Slot {
    key: Option<PublicKey>,
    reported: HashMap<PublicKey, Reported>,
    /// Position of each peer in `adjacency[slot]`, for O(1) edge updates at high degree.
    positions: HashMap<NodeIx, u32>,
}

/// The agreed edges of one currency, in a layout built for fast searches: node handles are
/// dense indexes and each node's neighbours sit in one vector.
#[derive(Debug, Default)]
pub struct CurrencyGraph {
    index: HashMap<PublicKey, NodeIx>,
    slots: Vec<Slot>,
    adjacency: Vec<Vec<Neighbour>>,
    free: Vec<NodeIx>,
    edges: usize,
    /// How many edge sides charge each rate: lets searches take the fast path when every
    /// mediator charges the same flat fee (then fees depend only on the hop count).
    rate_counts: HashMap<FeeRate, usize>,
}

impl CurrencyGraph {
    /// The handle of a node that reports in this currency.
    pub fn node(&self, key: &PublicKey) -> Option<NodeIx> {
        self.index.get(key).copied()
    }

    /// The public key behind a handle.
    pub fn key(&self, node: NodeIx) -> Option<&PublicKey> {
        self.slots
            .get(node as usize)
            .and_then(|slot| slot.key.as_ref())
    }

    /// The agreed neighbours of a node (empty for a stale handle).
    pub fn neighbours(&self, node: NodeIx) -> &[Neighbour] {
        self.adjacency.get(node as usize).map_or(&[], Vec::as_slice)
    }

    /// `owner`'s side of its edge to `peer`, if they are agreed friends.
    pub fn side(&self, owner: NodeIx, peer: NodeIx) -> Option<&Neighbour> {
        let position = *self.slot(owner)?.positions.get(&peer)?;
        self.adjacency.get(owner as usize)?.get(position as usize)
    }

    /// The rate every edge side charges, when they all charge the same flat fee (no
    /// proportional part). `None` when rates differ or there are no edges.
    pub fn uniform_flat_rate(&self) -> Option<FeeRate> {
        let mut rates = self.rate_counts.keys();
        match (rates.next(), rates.next()) {
            (Some(rate), None) if rate.proportional_ppm == 0 => Some(*rate),
            _ => None,
        }
    }

    /// One more than the largest handle in use: the size search buffers must have.
    pub fn capacity_hint(&self) -> usize {
        self.slots.len()
    }

    /// Nodes that report in this currency.
    pub fn node_count(&self) -> usize {
        self.index.len()
    }

    /// Agreed (undirected) edges.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    /// Replaces everything `node` reported in this currency with `reported` (empty: the node
    /// leaves the currency) and recomputes its edges.
    pub fn set_reports(
        &mut self,
        node: PublicKey,
        reported: HashMap<PublicKey, Reported>,
        max_nodes: usize,
    ) -> Result<(), GraphError> {
        let ix = match self.index.get(&node) {
            Some(ix) => *ix,
            None if reported.is_empty() => return Ok(()),
            None => self.allocate(node, max_nodes)?,
        };
        let old = std::mem::take(&mut self.slot_mut(ix).reported);
        for friend in old.keys().filter(|friend| !reported.contains_key(*friend)) {
            if let Some(peer) = self.index.get(friend).copied() {
                self.remove_edge(ix, peer);
            }
        }
        for (friend, ours) in &reported {
            let Some(peer) = self.index.get(friend).copied() else {
                continue;
            };
            if peer == ix {
                continue; // a node cannot be its own friend
            }
            match self.slot(peer).and_then(|slot| slot.reported.get(&node)) {
                Some(theirs) => {
                    let ours_side = Neighbour {
                        peer,
                        send: ours.send.0.min(theirs.recv.0),
                        recv: theirs.send.0.min(ours.recv.0),
                        rate: ours.rate,
                        peer_rate: theirs.rate,
                    };
                    let their_side = Neighbour {
                        peer: ix,
                        send: ours_side.recv,
                        recv: ours_side.send,
                        rate: theirs.rate,
                        peer_rate: ours.rate,
                    };
                    self.upsert_half(ix, ours_side);
                    if self.upsert_half(peer, their_side) {
                        self.edges += 1;
                    }
                }
                None => self.remove_edge(ix, peer),
            }
        }
        if reported.is_empty() {
            self.release(ix);
        } else {
            self.slot_mut(ix).reported = reported;
        }
        Ok(())
    }

    fn slot(&self, ix: NodeIx) -> Option<&Slot> {
        self.slots.get(ix as usize)
    }

    fn slot_mut(&mut self, ix: NodeIx) -> &mut Slot {
        // Handles come only from `index`, which holds live slots.
        &mut self.slots[ix as usize]
    }

    fn allocate(&mut self, node: PublicKey, max_nodes: usize) -> Result<NodeIx, GraphError> {
        if self.index.len() >= max_nodes {
            return Err(GraphError::Full(max_nodes));
        }
        let ix = match self.free.pop() {
            Some(ix) => ix,
            None => {
                self.slots.push(Slot::default());
                self.adjacency.push(Vec::new());
                (self.slots.len() - 1) as NodeIx
            }
        };
        self.slot_mut(ix).key = Some(node);
        self.index.insert(node, ix);
        Ok(ix)
    }

    fn release(&mut self, ix: NodeIx) {
        let peers: Vec<NodeIx> = self.adjacency[ix as usize].iter().map(|n| n.peer).collect();
        for peer in peers {
            self.remove_edge(ix, peer);
        }
        let slot = std::mem::take(self.slot_mut(ix));
        if let Some(key) = slot.key {
            self.index.remove(&key);
        }
        self.adjacency[ix as usize] = Vec::new();
        self.free.push(ix);
    }

    /// Inserts or overwrites `owner`'s side of an edge; true when it was new.
    fn upsert_half(&mut self, owner: NodeIx, side: Neighbour) -> bool {
        let list = &mut self.adjacency[owner as usize];
        let positions = &mut self.slots[owner as usize].positions;
        let (old_rate, new) = match positions.get(&side.peer) {
            Some(position) => {
                let old = std::mem::replace(&mut list[*position as usize], side);
                (Some(old.rate), false)
            }
            None => {
                positions.insert(side.peer, list.len() as u32);
                list.push(side);
                (None, true)
            }
        };
        if let Some(old_rate) = old_rate {
            self.forget_rate(old_rate);
        }
        *self.rate_counts.entry(side.rate).or_insert(0) += 1;
        new
    }

    fn forget_rate(&mut self, rate: FeeRate) {
        if let Some(count) = self.rate_counts.get_mut(&rate) {
            *count -= 1;
            if *count == 0 {
                self.rate_counts.remove(&rate);
            }
        }
    }

    /// Removes `owner`'s side of an edge; true when it existed.
    fn remove_half(&mut self, owner: NodeIx, peer: NodeIx) -> bool {
        let list = &mut self.adjacency[owner as usize];
        let positions = &mut self.slots[owner as usize].positions;
        let Some(position) = positions.remove(&peer) else {
            return false;
        };
        let removed = list.swap_remove(position as usize);
        if let Some(moved) = list.get(position as usize) {
            positions.insert(moved.peer, position);
        }
        self.forget_rate(removed.rate);
        true
    }

    fn remove_edge(&mut self, a: NodeIx, b: NodeIx) {
        let removed = self.remove_half(a, b);
        self.remove_half(b, a);
        if removed {
            self.edges -= 1;
        }
    }
}

/// Everything the index knows, one [`CurrencyGraph`] per currency.
#[derive(Debug)]
pub struct CapacityGraph {
    currencies: HashMap<Currency, CurrencyGraph>,
    max_nodes: usize,
}

impl CapacityGraph {
    /// An empty graph that holds at most `max_nodes` reporting nodes per currency.
    pub fn new(max_nodes: usize) -> CapacityGraph {
        CapacityGraph {
            currencies: HashMap::new(),
            max_nodes,
        }
    }

    /// The graph of one currency, if any node reports in it.
    pub fn currency(&self, currency: &Currency) -> Option<&CurrencyGraph> {
        self.currencies.get(currency)
    }

    /// The currencies somebody reports in.
    pub fn currencies(&self) -> impl Iterator<Item = &Currency> {
        self.currencies.keys()
    }

    /// Replaces everything `node` reported (in every currency) with `entries`.
    /// On [`GraphError::Full`] the currencies processed before the error keep the new state;
    /// the caller removes the node entirely in that case.
    pub fn set_node(
        &mut self,
        node: PublicKey,
        entries: impl IntoIterator<Item = (Currency, PublicKey, Reported)>,
    ) -> Result<(), GraphError> {
        let mut by_currency: HashMap<Currency, HashMap<PublicKey, Reported>> = HashMap::new();
        for (currency, friend, reported) in entries {
            by_currency
                .entry(currency)
                .or_default()
                .insert(friend, reported);
        }
        // Currencies the node no longer reports in.
        let stale: Vec<Currency> = self
            .currencies
            .iter()
            .filter(|(currency, graph)| {
                !by_currency.contains_key(*currency) && graph.node(&node).is_some()
            })
            .map(|(currency, _)| currency.clone())
            .collect();
        for currency in stale {
            by_currency.insert(currency, HashMap::new());
        }
        for (currency, reported) in by_currency {
            let graph = self.currencies.entry(currency.clone()).or_default();
            graph.set_reports(node, reported, self.max_nodes)?;
            if graph.node_count() == 0 {
                self.currencies.remove(&currency);
            }
        }
        Ok(())
    }

    /// Removes everything `node` reported.
    pub fn remove_node(&mut self, node: &PublicKey) {
        // Emptying never allocates, so it cannot fail.
        let _ = self.set_node(*node, std::iter::empty());
    }

    /// Reporting nodes summed over currencies.
    pub fn node_count(&self) -> usize {
        self.currencies
            .values()
            .map(CurrencyGraph::node_count)
            .sum()
    }

    /// Agreed edges summed over currencies.
    pub fn edge_count(&self) -> usize {
        self.currencies
            .values()
            .map(CurrencyGraph::edge_count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn usd() -> Currency {
        Currency::new("USD").unwrap()
    }

    fn reported(send: u128, recv: u128) -> Reported {
        Reported {
            send: Credits(send),
            recv: Credits(recv),
            rate: FeeRate::DEFAULT,
        }
    }

    #[test]
    fn an_edge_counts_only_when_both_ends_report_it() {
        let mut graph = CapacityGraph::new(100);
        graph
            .set_node(key(1), [(usd(), key(2), reported(10, 20))])
            .unwrap();
        assert_eq!(graph.edge_count(), 0);
        graph
            .set_node(key(2), [(usd(), key(1), reported(15, 7))])
            .unwrap();
        assert_eq!(graph.edge_count(), 1);
        let g = graph.currency(&usd()).unwrap();
        let a = g.node(&key(1)).unwrap();
        let side = g.neighbours(a)[0];
        // 1 → 2: min(1 can send 10, 2 can receive 7); 2 → 1: min(2 can send 15, 1 can receive 20).
        assert_eq!((side.send, side.recv), (7, 15));
        graph.set_node(key(2), []).unwrap();
        assert_eq!(graph.edge_count(), 0);
        assert!(graph.currency(&usd()).unwrap().neighbours(a).is_empty());
    }

    #[test]
    fn removing_a_node_frees_its_slot_and_edges() {
        let mut graph = CapacityGraph::new(2);
        graph
            .set_node(key(1), [(usd(), key(2), reported(1, 1))])
            .unwrap();
        graph
            .set_node(
                key(2),
                [
                    (usd(), key(1), reported(1, 1)),
                    (usd(), key(3), reported(1, 1)),
                ],
            )
            .unwrap();
        assert_eq!(
            graph.set_node(key(3), [(usd(), key(1), reported(1, 1))]),
            Err(GraphError::Full(2))
        );
        graph.remove_node(&key(1));
        assert_eq!(graph.edge_count(), 0);
        graph
            .set_node(key(3), [(usd(), key(2), reported(1, 1))])
            .unwrap();
        assert_eq!(graph.edge_count(), 1);
        graph.remove_node(&key(2));
        graph.remove_node(&key(3));
        assert!(graph.currency(&usd()).is_none());
        assert_eq!(graph.node_count(), 0);
    }

    #[test]
    fn high_degree_updates_keep_positions_consistent() {
        let mut graph = CapacityGraph::new(1_000);
        let hub = PublicKey::from_bytes([0xff; 32]);
        let spoke = |n: u32| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            PublicKey::from_bytes(bytes)
        };
        for n in 0..300 {
            graph
                .set_node(spoke(n), [(usd(), hub, reported(1, 1))])
                .unwrap();
        }
        graph
            .set_node(hub, (0..300).map(|n| (usd(), spoke(n), reported(5, 5))))
            .unwrap();
        assert_eq!(graph.edge_count(), 300);
        for n in (0..300).step_by(3) {
            graph.remove_node(&spoke(n));
        }
        assert_eq!(graph.edge_count(), 200);
        let g = graph.currency(&usd()).unwrap();
        let hub_ix = g.node(&hub).unwrap();
        assert_eq!(g.neighbours(hub_ix).len(), 200);
        for side in g.neighbours(hub_ix) {
            let back = g.neighbours(side.peer);
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].peer, hub_ix);
        }
    }
}
