//! Offst test kit: a deterministic simulated network of credit nodes.
//!
//! [`SimNetwork`] runs N [`CreditNode`]s with a manual clock and one seeded RNG. Messages travel
//! as encoded bytes through an explicit in-flight list that tests (or the randomized driver)
//! deliver, drop, duplicate and reorder; links can be partitioned; a node can restart from its
//! persisted state, which the kit rebuilds only from the [`Change`]s the node emitted (never from
//! the node's memory), so a change the node forgot to emit shows up as a failed invariant.
//!
//! Nothing here touches a socket, a clock or the OS RNG: a run is a function of its seed.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use offst_credit::{
    Change, ChannelStatus, Command, CommandError, CreditConfig, CreditNode, Event, NodeState,
    Output, PaymentStatus, Timestamp,
};
use offst_crypto::Identity;
use offst_proto::friend::FriendMessage;
use offst_proto::{Credits, Currency, PublicKey, Text, WireMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Most messages a simulation keeps in flight. A correct protocol sends a bounded number per
/// step; hitting this limit means a message storm, which the kit reports as an error.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// Most deliveries [`SimNetwork::settle`] performs before declaring the network unable to
/// settle (a livelock).
pub const MAX_SETTLE_DELIVERIES: usize = 100_000;

/// A node's index in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// A manual clock: time moves only when the test says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManualClock {
    now: Timestamp,
}

impl ManualClock {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Moves time forward.
    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
    }
}

/// A message on the simulated wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The encoded friend message.
    pub bytes: Vec<u8>,
}

/// Why a simulation step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError(pub String);

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

/// One simulated node: its identity, the running state machine, and the state the "store"
/// holds (built only from emitted changes).
#[derive(Debug)]
struct SimNode {
    identity: Identity,
    config: CreditConfig,
    node: CreditNode,
    persisted: NodeState,
    events: Vec<Event>,
}

/// A deterministic network of credit nodes.
#[derive(Debug)]
pub struct SimNetwork {
    rng: ChaCha20Rng,
    clock: ManualClock,
    nodes: Vec<SimNode>,
    in_flight: Vec<Envelope>,
    /// Links currently cut (pairs stored with the smaller id first).
    partitions: BTreeSet<(NodeId, NodeId)>,
    /// Node pairs that are friends (smaller id first): connected when not partitioned.
    links: BTreeSet<(NodeId, NodeId)>,
    /// Keep every event (tests) or drop them (long randomized runs).
    keep_events: bool,
    /// Print deliveries.
    trace: bool,
    /// Set when a node produced more messages than [`MAX_IN_FLIGHT`] allows.
    storm: bool,
    /// The first step that increased a debt past its limit (reported by the invariants).
    limit_violation: Option<String>,
}

/// One side's debt toward a friend in one currency, counting pending debts, and its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exposure {
    debt: Option<i128>,
    limit: Credits,
}

/// Per currency: (our exposure, the friend's exposure), from one channel.
type Exposures = BTreeMap<Currency, (Exposure, Exposure)>;

fn exposures(channel: Option<&ChannelStatus>) -> Exposures {
    let mut map = Exposures::new();
    if let Some(ChannelStatus::Consistent(channel)) = channel {
        for (currency, state) in channel.sheet.currencies() {
            map.insert(
                currency.clone(),
                (
                    Exposure {
                        debt: state.local_exposure(),
                        limit: state.local_max_debt,
                    },
                    Exposure {
                        debt: state.remote_exposure(),
                        limit: state.remote_max_debt,
                    },
                ),
            );
        }
    }
    map
}

/// A debt may pass its limit only if it did before and did not grow: lowering a limit below
/// what a friend owes is legitimate (the friend cannot borrow more, repaying still works).
fn debt_step_allowed(before: Option<Exposure>, after: Exposure) -> bool {
    let Some(debt) = after.debt else {
        return false;
    };
    if debt <= 0 || (debt as u128) <= after.limit.0 {
        return true;
    }
    before
        .and_then(|before| before.debt)
        .is_some_and(|previous| debt <= previous)
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl SimNetwork {
    /// An empty network whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> SimNetwork {
        SimNetwork {
            rng: ChaCha20Rng::seed_from_u64(seed),
            clock: ManualClock::default(),
            nodes: Vec::new(),
            in_flight: Vec::new(),
            partitions: BTreeSet::new(),
            links: BTreeSet::new(),
            keep_events: true,
            trace: false,
            storm: false,
            limit_violation: None,
        }
    }

    /// Whether nodes' events are kept for [`SimNetwork::take_events`] (default) or dropped.
    pub fn keep_events(&mut self, keep: bool) {
        self.keep_events = keep;
    }

    /// A random number below `bound` (0 if `bound` is 0), from the simulation's RNG.
    pub fn random_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }

    /// Random bytes from the simulation's RNG.
    pub fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut bytes = [0u8; N];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    /// Adds a node with a fresh identity.
    pub fn add_node(&mut self, config: CreditConfig) -> NodeId {
        let identity = Identity::from_seed(self.random_bytes());
        let id = NodeId(self.nodes.len());
        self.nodes.push(SimNode {
            node: CreditNode::new(identity.clone(), config, NodeState::default()),
            identity,
            config,
            persisted: NodeState::default(),
            events: Vec::new(),
        });
        id
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// No nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn sim(&self, id: NodeId) -> &SimNode {
        &self.nodes[id.0]
    }

    /// A node's public key.
    pub fn public_key(&self, id: NodeId) -> PublicKey {
        self.sim(id).identity.public_key()
    }

    /// A node's identity (for tests that sign by hand).
    pub fn identity(&self, id: NodeId) -> &Identity {
        &self.sim(id).identity
    }

    /// The running node.
    pub fn node(&self, id: NodeId) -> &CreditNode {
        &self.sim(id).node
    }

    /// What the node's store holds.
    pub fn persisted(&self, id: NodeId) -> &NodeState {
        &self.sim(id).persisted
    }

    fn id_of(&self, key: &PublicKey) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|sim| sim.identity.public_key() == *key)
            .map(NodeId)
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Messages in flight, oldest first.
    pub fn in_flight(&self) -> &[Envelope] {
        &self.in_flight
    }

    /// Takes the events a node emitted since the last call.
    pub fn take_events(&mut self, id: NodeId) -> Vec<Event> {
        std::mem::take(&mut self.nodes[id.0].events)
    }

    /// Persists a node's output (its store applies the changes), then queues its messages.
    fn route(&mut self, from: NodeId, output: Output) -> Result<(), SimError> {
        self.route_with(from, output, true)
    }

    fn route_with(&mut self, from: NodeId, output: Output, send: bool) -> Result<(), SimError> {
        let keep_events = self.keep_events;
        let sim = &mut self.nodes[from.0];
        for change in &output.changes {
            // Each channel change is one token sent or received: no single token may grow a
            // debt past its limit (its limit is set by the other side, in other tokens).
            let Change::SetChannel { friend, channel } = change else {
                sim.persisted.apply(change);
                continue;
            };
            let before = exposures(sim.persisted.friends.get(friend).map(|f| &f.channel));
            sim.persisted.apply(change);
            if self.limit_violation.is_some() {
                continue;
            }
            for (currency, (local, remote)) in exposures(Some(channel)) {
                let previous = before.get(&currency);
                let local_ok = debt_step_allowed(previous.map(|p| p.0), local);
                let remote_ok = debt_step_allowed(previous.map(|p| p.1), remote);
                if !(local_ok && remote_ok) {
                    self.limit_violation = Some(format!(
                        "{from} with {friend}: {currency}: a debt grew past its limit: \
                         before {previous:?}, after ({local:?}, {remote:?})"
                    ));
                    break;
                }
            }
        }
        if keep_events {
            sim.events.extend(output.events);
        }
        if !send {
            return Ok(());
        }
        for message in output.messages {
            let Some(to) = self.id_of(&message.to) else {
                continue;
            };
            if self.partitions.contains(&pair(from, to)) {
                continue;
            }
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                self.storm = true;
                return Err(SimError(format!(
                    "more than {MAX_IN_FLIGHT} messages in flight: message storm"
                )));
            }
            self.in_flight.push(Envelope {
                from,
                to,
                bytes: message.message.encode(),
            });
        }
        Ok(())
    }

    /// Runs a user command on a node.
    pub fn command(&mut self, id: NodeId, command: Command) -> Result<(), CommandError> {
        let now = self.now();
        let sim = &mut self.nodes[id.0];
        let output = sim.node.handle_command(command, now, &mut self.rng)?;
        // Routing only fails on a message storm, which later invariant checks report.
        let _ = self.route(id, output);
        Ok(())
    }

    /// Runs a command whose messages are lost because the node crashes right after
    /// persisting its changes, then restarts the node (persist-before-send, worst case).
    pub fn command_then_crash(&mut self, id: NodeId, command: Command) -> Result<(), CommandError> {
        let now = self.now();
        let sim = &mut self.nodes[id.0];
        let output = sim.node.handle_command(command, now, &mut self.rng)?;
        let _ = self.route_with(id, output, false);
        self.restart(id);
        Ok(())
    }

    /// Makes two nodes friends (each adds the other) and connects them.
    pub fn befriend(&mut self, a: NodeId, b: NodeId) -> Result<(), CommandError> {
        for (from, to) in [(a, b), (b, a)] {
            let public_key = self.public_key(to);
            let name = Text::new(&to.to_string()).unwrap_or_default();
            self.command(
                from,
                Command::AddFriend {
                    public_key,
                    name,
                    relays: Vec::new(),
                },
            )?;
        }
        self.links.insert(pair(a, b));
        self.connect(a, b);
        Ok(())
    }

    /// Adds `to` as a friend of `from` only (the other side may not know `from` yet).
    pub fn add_friend_one_way(&mut self, from: NodeId, to: NodeId) -> Result<(), CommandError> {
        let public_key = self.public_key(to);
        let name = Text::new(&to.to_string()).unwrap_or_default();
        self.command(
            from,
            Command::AddFriend {
                public_key,
                name,
                relays: Vec::new(),
            },
        )?;
        self.links.insert(pair(from, to));
        self.connect(from, to);
        Ok(())
    }

    /// Reports the link between two nodes up on both sides (a new connection): each node
    /// retransmits what the other may have missed. Nothing happens across a partition.
    pub fn connect(&mut self, a: NodeId, b: NodeId) {
        if self.partitions.contains(&pair(a, b)) {
            return;
        }
        let now = self.now();
        for (from, to) in [(a, b), (b, a)] {
            let key = self.public_key(to);
            let output = self.nodes[from.0]
                .node
                .handle_friend_online(&key, now, &mut self.rng);
            let _ = self.route(from, output);
        }
    }

    /// Reports the link between two nodes down on both sides.
    pub fn disconnect(&mut self, a: NodeId, b: NodeId) {
        for (from, to) in [(a, b), (b, a)] {
            let key = self.public_key(to);
            self.nodes[from.0].node.handle_friend_offline(&key);
        }
    }

    /// Cuts the link between two nodes: both see it go down and messages in flight between
    /// them are lost.
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        self.partitions.insert(pair(a, b));
        self.disconnect(a, b);
        self.in_flight
            .retain(|envelope| pair(envelope.from, envelope.to) != pair(a, b));
    }

    /// Restores a cut link and reconnects it.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.partitions.remove(&pair(a, b));
        self.connect(a, b);
    }

    /// Whether the link is cut.
    pub fn is_partitioned(&self, a: NodeId, b: NodeId) -> bool {
        self.partitions.contains(&pair(a, b))
    }

    /// Delivers the in-flight message at `index`; `false` if there is none.
    pub fn deliver(&mut self, index: usize) -> bool {
        if index >= self.in_flight.len() {
            return false;
        }
        let envelope = self.in_flight.remove(index);
        if self.trace {
            eprintln!("deliver {}", self.describe(&envelope));
        }
        let from_key = self.public_key(envelope.from);
        let now = self.now();
        let sim = &mut self.nodes[envelope.to.0];
        let output = sim
            .node
            .handle_message_bytes(&from_key, &envelope.bytes, now, &mut self.rng);
        if self.trace {
            for event in &output.events {
                eprintln!("    {} event {:?}", envelope.to, short_event(event));
            }
            let sent: Vec<String> = output
                .messages
                .iter()
                .filter_map(|message| {
                    let to = self.id_of(&message.to)?;
                    Some(self.describe(&Envelope {
                        from: envelope.to,
                        to,
                        bytes: message.message.encode(),
                    }))
                })
                .collect();
            eprintln!("    sends {sent:?}");
        }
        let _ = self.route(envelope.to, output);
        true
    }

    /// Injects raw bytes as if `from` had sent them to `to` (for adversarial tests).
    pub fn inject(&mut self, from: NodeId, to: NodeId, bytes: Vec<u8>) {
        self.in_flight.push(Envelope { from, to, bytes });
    }

    /// Delivers messages oldest first until none is in flight (at most `max` deliveries);
    /// returns how many were delivered.
    pub fn deliver_all(&mut self, max: usize) -> usize {
        let mut delivered = 0;
        while delivered < max && self.deliver(0) {
            delivered += 1;
        }
        delivered
    }

    /// Loses the in-flight message at `index`.
    pub fn drop_message(&mut self, index: usize) -> Option<Envelope> {
        (index < self.in_flight.len()).then(|| self.in_flight.remove(index))
    }

    /// Duplicates the in-flight message at `index` (the copy goes last).
    pub fn duplicate_message(&mut self, index: usize) {
        if let Some(envelope) = self.in_flight.get(index).cloned() {
            self.in_flight.push(envelope);
        }
    }

    /// Shuffles the messages in flight.
    pub fn reorder(&mut self) {
        for index in (1..self.in_flight.len()).rev() {
            let other = self.random_below(index as u64 + 1) as usize;
            self.in_flight.swap(index, other);
        }
    }

    /// Moves the clock forward and lets every node handle its due timeouts.
    pub fn advance(&mut self, ms: u64) {
        self.clock.advance(ms);
        let now = self.now();
        for index in 0..self.nodes.len() {
            let output = self.nodes[index].node.handle_timeout(now, &mut self.rng);
            let _ = self.route(NodeId(index), output);
        }
    }

    /// Restarts a node from its store: the running state machine is rebuilt from the
    /// persisted state only, and its links come back up.
    pub fn restart(&mut self, id: NodeId) {
        let sim = &mut self.nodes[id.0];
        sim.node = CreditNode::new(sim.identity.clone(), sim.config, sim.persisted.clone());
        self.reconnect_all_of(id);
    }

    /// The node loses all its data but keeps its key (a wiped phone restored from a key
    /// backup): it restarts with an empty state.
    pub fn wipe(&mut self, id: NodeId) {
        let sim = &mut self.nodes[id.0];
        sim.persisted = NodeState::default();
        sim.node = CreditNode::new(sim.identity.clone(), sim.config, NodeState::default());
    }

    fn reconnect_all_of(&mut self, id: NodeId) {
        let peers: Vec<(NodeId, NodeId)> = self
            .links
            .iter()
            .filter(|(a, b)| *a == id || *b == id)
            .copied()
            .collect();
        for (a, b) in peers {
            self.connect(a, b);
        }
    }

    /// Heals every partition, reconnects every link, then delivers and advances time until
    /// nothing is in flight and no node waits for an answer.
    pub fn settle(&mut self) -> Result<(), SimError> {
        self.partitions.clear();
        let links: Vec<_> = self.links.iter().copied().collect();
        for (a, b) in links {
            self.connect(a, b);
        }
        let mut deliveries = 0;
        loop {
            while self.deliver(0) {
                deliveries += 1;
                if deliveries > MAX_SETTLE_DELIVERIES {
                    return Err(SimError(format!(
                        "no quiescence after {MAX_SETTLE_DELIVERIES} deliveries; in flight: {}",
                        self.describe_in_flight()
                    )));
                }
            }
            let next = self
                .nodes
                .iter()
                .filter_map(|sim| sim.node.poll_timeout())
                .min();
            let Some(next) = next else {
                return Ok(());
            };
            // Let the timers fire; if the retransmissions change no store, the network is
            // as settled as it gets (e.g. an inconsistency waiting for a user).
            let before: Vec<NodeState> =
                self.nodes.iter().map(|sim| sim.persisted.clone()).collect();
            let wait = next.0.saturating_sub(self.now().0).max(1);
            self.advance(wait);
            while self.deliver(0) {
                deliveries += 1;
                if deliveries > MAX_SETTLE_DELIVERIES {
                    return Err(SimError(format!(
                        "no quiescence after {MAX_SETTLE_DELIVERIES} deliveries; in flight: {}",
                        self.describe_in_flight()
                    )));
                }
            }
            let unchanged = self
                .nodes
                .iter()
                .zip(&before)
                .all(|(sim, before)| sim.persisted == *before);
            if unchanged {
                return Ok(());
            }
        }
    }

    /// A short description of the messages in flight (for failure reports).
    pub fn describe_in_flight(&self) -> String {
        self.in_flight
            .iter()
            .take(8)
            .map(|envelope| self.describe(envelope))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn describe(&self, envelope: &Envelope) -> String {
        let what = match FriendMessage::decode(&envelope.bytes) {
            Ok(FriendMessage::MoveToken(message)) => format!(
                "token({}, {}, {} ops, wanted {})",
                message.token.inconsistency_counter,
                message.token.move_token_counter,
                message.token.operations.len(),
                message.token_wanted
            ),
            Ok(FriendMessage::TokenWanted) => "token wanted".to_owned(),
            Ok(FriendMessage::ResetTerms(terms)) => {
                format!("reset terms({})", terms.inconsistency_counter)
            }
            Err(_) => "garbage".to_owned(),
        };
        format!("{}->{}: {what}", envelope.from, envelope.to)
    }

    /// Prints every delivery to stderr (debugging a failing seed).
    pub fn trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// Invariants that hold after every step:
    /// - no message storm happened;
    /// - every node's store equals its live state (the emitted changes are complete);
    /// - no step increased a debt past its limit, counting pending debts (a debt may stay
    ///   above a limit the creditor lowered, and shrink);
    /// - two friends at the same chain link have mirrored sheets (balance(A→B) = −balance(B→A),
    ///   limits and flags swapped) and exactly one of them holds the token.
    pub fn check_invariants(&self) -> Result<(), SimError> {
        if self.storm {
            return Err(SimError(format!(
                "more than {MAX_IN_FLIGHT} messages were in flight: message storm"
            )));
        }
        if let Some(violation) = &self.limit_violation {
            return Err(SimError(violation.clone()));
        }
        for (index, sim) in self.nodes.iter().enumerate() {
            if *sim.node.state() != sim.persisted {
                return Err(SimError(format!(
                    "node{index}: live state differs from the state rebuilt from its changes"
                )));
            }
        }
        for &(a, b) in &self.links {
            self.check_pair(a, b, false)?;
        }
        Ok(())
    }

    /// After [`SimNetwork::settle`]: every pair of friends is consistent, at the same link,
    /// with mirrored sheets, and every payment ended (see [`SimNetwork::check_payments_ended`]).
    pub fn check_agreement(&self) -> Result<(), SimError> {
        for &(a, b) in &self.links {
            self.check_pair(a, b, true)?;
        }
        self.check_payments_ended()
    }

    /// Once the network healed and settled, every payment ended: no buyer's payment or route
    /// is in progress, no seller waits on a request, no mediator carries one, no credit is
    /// frozen on any channel; and the payment accounts balance: per currency, the sum over all
    /// nodes of `fees_earned - fees_paid + received - sent` is zero.
    pub fn check_payments_ended(&self) -> Result<(), SimError> {
        let mut totals: BTreeMap<Currency, i128> = BTreeMap::new();
        for (index, sim) in self.nodes.iter().enumerate() {
            let book = &sim.persisted.payments;
            for payment in book.payments.values() {
                let open = payment.status == PaymentStatus::InProgress
                    || payment
                        .routes
                        .iter()
                        .any(|route| route.status == PaymentStatus::InProgress);
                if open {
                    return Err(SimError(format!(
                        "node{index}: payment {} did not end",
                        payment.payment_id
                    )));
                }
            }
            if let Some(record) = book.invoices.values().find(|r| !r.received.is_empty()) {
                return Err(SimError(format!(
                    "node{index}: invoice {} still waits on {} requests",
                    record.invoice.invoice_id,
                    record.received.len()
                )));
            }
            if !book.forwards.is_empty() {
                return Err(SimError(format!(
                    "node{index}: still carries {} requests",
                    book.forwards.len()
                )));
            }
            for (key, friend) in &sim.persisted.friends {
                if let ChannelStatus::Consistent(channel) = &friend.channel {
                    if !channel.sheet.requests().is_empty() {
                        return Err(SimError(format!(
                            "node{index} with {key}: {} requests still pending",
                            channel.sheet.requests().len()
                        )));
                    }
                }
            }
            for (currency, account) in &book.accounts {
                let signed = |credits: Credits| i128::try_from(credits.0).unwrap_or(i128::MAX);
                let net = signed(account.fees_earned)
                    .saturating_sub(signed(account.fees_paid))
                    .saturating_add(signed(account.received))
                    .saturating_sub(signed(account.sent));
                let total = totals.entry(currency.clone()).or_default();
                *total = total.saturating_add(net);
            }
        }
        if let Some((currency, total)) = totals.iter().find(|(_, total)| **total != 0) {
            return Err(SimError(format!(
                "{currency}: fees earned - fees paid + received - sent sums to {total}, not 0"
            )));
        }
        Ok(())
    }

    /// Nobody ends poorer than the protocol promises: for every node, the sum of its balances
    /// with all friends equals `direct transfers + fees_earned - fees_paid + received - sent`
    /// (a mediator never pays more downstream than it collects upstream). `transfers` gives
    /// each node's net direct transfers (received minus sent) per currency, which the caller
    /// tracks. Meaningful when no reset changed a balance.
    pub fn check_nobody_poorer(
        &self,
        transfers: &BTreeMap<(NodeId, Currency), i128>,
    ) -> Result<(), SimError> {
        for (index, sim) in self.nodes.iter().enumerate() {
            let mut balances: BTreeMap<Currency, i128> = BTreeMap::new();
            for friend in sim.persisted.friends.values() {
                if let ChannelStatus::Consistent(channel) = &friend.channel {
                    for (currency, state) in channel.sheet.currencies() {
                        let entry = balances.entry(currency.clone()).or_default();
                        *entry = entry.saturating_add(state.balance.0);
                    }
                }
            }
            let book = &sim.persisted.payments;
            let currencies: BTreeSet<Currency> = balances
                .keys()
                .chain(book.accounts.keys())
                .cloned()
                .collect();
            for currency in currencies {
                let account = book.accounts.get(&currency).copied().unwrap_or_default();
                let signed = |credits: Credits| i128::try_from(credits.0).unwrap_or(i128::MAX);
                let promised = transfers
                    .get(&(NodeId(index), currency.clone()))
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(signed(account.fees_earned))
                    .saturating_sub(signed(account.fees_paid))
                    .saturating_add(signed(account.received))
                    .saturating_sub(signed(account.sent));
                let actual = balances.get(&currency).copied().unwrap_or(0);
                if actual != promised {
                    return Err(SimError(format!(
                        "node{index}: {currency} balances sum to {actual}, the protocol promised \
                         {promised} ({account:?})"
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_pair(&self, a: NodeId, b: NodeId, require_agreement: bool) -> Result<(), SimError> {
        let (key_a, key_b) = (self.public_key(a), self.public_key(b));
        let friend_a = self.sim(a).persisted.friends.get(&key_b);
        let friend_b = self.sim(b).persisted.friends.get(&key_a);
        let (Some(friend_a), Some(friend_b)) = (friend_a, friend_b) else {
            return if require_agreement {
                Err(SimError(format!("{a} and {b} are not friends both ways")))
            } else {
                Ok(())
            };
        };
        match (&friend_a.channel, &friend_b.channel) {
            (ChannelStatus::Consistent(ca), ChannelStatus::Consistent(cb)) => {
                if ca.tip == cb.tip {
                    if Some(&cb.sheet) != ca.sheet.flipped().as_ref() {
                        return Err(SimError(format!(
                            "{a} and {b} share a chain link but disagree: {:?} vs {:?}",
                            ca.sheet, cb.sheet
                        )));
                    }
                    if ca.position != cb.position {
                        return Err(SimError(format!(
                            "{a} and {b} share a chain link at different positions"
                        )));
                    }
                    if ca.holds_token() == cb.holds_token() {
                        return Err(SimError(format!(
                            "{a} and {b}: {} hold the token",
                            if ca.holds_token() { "both" } else { "neither" }
                        )));
                    }
                } else if require_agreement {
                    return Err(SimError(format!(
                        "{a} and {b} did not converge: positions {:?} and {:?}",
                        ca.position, cb.position
                    )));
                }
                Ok(())
            }
            _ if require_agreement => Err(SimError(format!(
                "{a} and {b}: channel still inconsistent after settling"
            ))),
            _ => Ok(()),
        }
    }

    /// The number of changes a node emitted is not tracked; this applies extra changes to a
    /// node's store only (to model a store that lost or corrupted data in adversarial tests).
    pub fn tamper_store(&mut self, id: NodeId, change: &Change) {
        let sim = &mut self.nodes[id.0];
        sim.persisted.apply(change);
        sim.node = CreditNode::new(sim.identity.clone(), sim.config, sim.persisted.clone());
    }
}

fn short_event(event: &Event) -> String {
    match event {
        Event::TokenSent { operations, .. } => format!("token sent ({} ops)", operations.len()),
        Event::TokenReceived { operations, .. } => {
            format!("token received ({} ops)", operations.len())
        }
        Event::OperationDropped { error, .. } => format!("operation dropped: {error}"),
        Event::ChannelInconsistent {
            local_terms,
            remote_terms,
            ..
        } => format!(
            "inconsistent: local {} remote {:?}",
            local_terms.inconsistency_counter,
            remote_terms
                .as_ref()
                .map(|terms| terms.inconsistency_counter)
        ),
        Event::ChannelReset { .. } => "reset".to_owned(),
        Event::MessageRejected { error, .. } => format!("rejected: {error:?}"),
        Event::InvoiceCreated { .. } => "invoice created".to_owned(),
        Event::PaymentReceived { amount, .. } => format!("payment received ({amount})"),
        Event::PaymentSucceeded { fees, .. } => format!("payment succeeded (fees {fees})"),
        Event::PaymentFailed { .. } => "payment failed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(net: &mut SimNetwork, from: NodeId, to: NodeId) {
        let friend = net.public_key(to);
        net.command(
            from,
            Command::SetCurrencyLimit {
                friend,
                currency: Currency::new("FST").unwrap(),
                remote_max_debt: Credits(10),
            },
        )
        .unwrap();
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let run = |seed| {
            let mut net = SimNetwork::new(seed);
            let a = net.add_node(CreditConfig::default());
            let b = net.add_node(CreditConfig::default());
            net.befriend(a, b).unwrap();
            limit(&mut net, a, b);
            net.settle().unwrap();
            (net.persisted(a).clone(), net.persisted(b).clone())
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn a_partition_loses_the_messages_in_flight_and_blocks_new_ones() {
        let mut net = SimNetwork::new(1);
        let a = net.add_node(CreditConfig::default());
        let b = net.add_node(CreditConfig::default());
        net.befriend(a, b).unwrap();
        net.settle().unwrap();
        limit(&mut net, a, b);
        net.partition(a, b);
        assert!(net.in_flight().is_empty());
        limit(&mut net, b, a);
        assert!(net.in_flight().is_empty());
        assert!(net.is_partitioned(a, b));
        net.heal(a, b);
        net.settle().unwrap();
        net.check_agreement().unwrap();
    }

    #[test]
    fn a_restarted_node_keeps_exactly_what_it_persisted() {
        let mut net = SimNetwork::new(2);
        let a = net.add_node(CreditConfig::default());
        let b = net.add_node(CreditConfig::default());
        net.befriend(a, b).unwrap();
        limit(&mut net, a, b);
        net.settle().unwrap();
        let before = net.persisted(a).clone();
        net.restart(a);
        assert_eq!(*net.node(a).state(), before);
        net.wipe(b);
        assert!(net.node(b).state().friends.is_empty());
        assert!(net.persisted(b).friends.is_empty());
    }

    #[test]
    fn the_clock_moves_only_when_told() {
        let mut net = SimNetwork::new(3);
        assert_eq!(net.now(), Timestamp(0));
        net.advance(250);
        net.advance(250);
        assert_eq!(net.now(), Timestamp(500));
    }
}
