//! The index server's state machine: which reports it accepts, which it forwards, when nodes
//! expire, and how route queries are answered (docs/PROTOCOL.md §11).
//!
//! Pure: time is an argument (`now_ms`, unix milliseconds), nothing here touches a socket or a
//! clock, and every map keyed by remote input is bounded. The tokio server
//! (`crate::server`) feeds it messages and carries out what it returns.
//!
//! # Acceptance of a capacity report
//!
//! In this order (cheap checks first, the signature last):
//! 1. the sender may send it: a client only about itself, a server only if trusted;
//! 2. it is not expired, not issued more than the allowed clock skew in the future, and lives
//!    at most [`MAX_INDEX_REPORT_TTL_SECS`];
//! 3. it is newer than what the index holds for the node: the same session with a higher
//!    counter, or another session issued strictly later (so an old session's report cannot be
//!    replayed after a new session started);
//! 4. the node's signature verifies over the canonical bytes.
//!
//! An accepted report replaces the node's previous one entirely and is flooded to every
//! trusted server except the one it came from. A report already held is "stale" and is never
//! flooded again, which is what stops loops and duplicates.

use std::collections::HashMap;

use offst_crypto::verify_signature;
use offst_proto::index::{
    ReportRejection, Route, RouteFailure, RouteRequest, RouteResponse, SignedCapacityReport,
};
use offst_proto::limits::MAX_INDEX_REPORT_TTL_SECS;
use offst_proto::PublicKey;

use crate::graph::{CapacityGraph, GraphError, Reported};
use crate::route::{Constraints, RouteError, Router};

/// Default bound on the nodes an index tracks (reporting nodes, all currencies). About 1 KiB of
/// graph and bookkeeping per channel entry keeps a full index within a few GiB.
pub const DEFAULT_MAX_NODES: usize = 1_000_000;

/// Default bound on the (friend, currency) entries held over all live reports. Each costs a
/// few hundred bytes across the stored report, the graph's raw entries and its adjacency, so
/// 4 million keep a full index under about 2 GiB however the entries are spread over nodes.
pub const DEFAULT_MAX_ENTRIES: usize = 4_000_000;

/// Default tolerance for nodes whose clock runs ahead of ours.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// Where a message came from, as authenticated by the secure channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// A node (or anyone not in the trusted server set).
    Client(PublicKey),
    /// Another index server, trusted or not.
    Server(PublicKey),
}

/// Limits of an [`IndexState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Most nodes tracked at once; further new nodes are refused with `Full`.
    pub max_nodes: usize,
    /// Most (friend, currency) entries over all live reports; a report that would pass it is
    /// refused with `Full`.
    pub max_entries: usize,
    /// How far in the future a report's `issuedAt` may be.
    pub max_clock_skew_ms: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            max_nodes: DEFAULT_MAX_NODES,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
        }
    }
}

/// What the index remembers per node.
#[derive(Debug)]
struct NodeRecord {
    /// The newest accepted report; `None` once it expired (the ratchet stays until
    /// `forget_at_ms`, so the expired report cannot be replayed).
    current: Option<SignedCapacityReport>,
    session_id: offst_proto::RandValue,
    counter: u64,
    issued_at_ms: u64,
    expires_at_ms: u64,
    forget_at_ms: u64,
}

/// Counters for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateCounters {
    /// Reports accepted.
    pub reports_accepted: u64,
    /// Reports refused, any reason.
    pub reports_rejected: u64,
    /// Reports refused because the signature did not verify.
    pub bad_signatures: u64,
    /// Reports refused as replayed or not newer.
    pub stale_reports: u64,
    /// Reports refused because a server we do not trust forwarded them.
    pub untrusted_forwards: u64,
    /// Nodes dropped because their report expired.
    pub nodes_expired: u64,
    /// Route queries answered (with or without routes).
    pub queries: u64,
    /// Route queries answered with routes.
    pub queries_with_routes: u64,
}

/// The sans-I/O heart of an index server.
#[derive(Debug)]
pub struct IndexState {
    config: StateConfig,
    graph: CapacityGraph,
    nodes: HashMap<PublicKey, NodeRecord>,
    trusted: Vec<PublicKey>,
    router: Router,
    counters: StateCounters,
    /// Entries over all live reports (bounded by `max_entries`).
    entries: usize,
}

impl IndexState {
    /// An empty index that trusts the servers in `trusted`.
    pub fn new(config: StateConfig, trusted: impl IntoIterator<Item = PublicKey>) -> IndexState {
        IndexState {
            graph: CapacityGraph::new(config.max_nodes),
            config,
            nodes: HashMap::new(),
            trusted: trusted.into_iter().collect(),
            router: Router::new(),
            counters: StateCounters::default(),
            entries: 0,
        }
    }

    /// Whether `server` is one this index trusts.
    pub fn trusts(&self, server: &PublicKey) -> bool {
        self.trusted.contains(server)
    }

    /// The trusted servers.
    pub fn trusted(&self) -> &[PublicKey] {
        &self.trusted
    }

    /// The capacity graph (read-only).
    pub fn graph(&self) -> &CapacityGraph {
        &self.graph
    }

    /// Nodes with a live report.
    pub fn live_nodes(&self) -> usize {
        self.nodes.values().filter(|r| r.current.is_some()).count()
    }

    /// Counters since start.
    pub fn counters(&self) -> StateCounters {
        self.counters
    }

    /// Whether the index holds a live report of `node`.
    pub fn knows(&self, node: &PublicKey) -> bool {
        self.nodes.get(node).is_some_and(|r| r.current.is_some())
    }

    /// Handles one report from `sender`. `Ok` means accepted: the caller floods it to every
    /// trusted server except `sender`.
    pub fn handle_report(
        &mut self,
        sender: Sender,
        signed: &SignedCapacityReport,
        now_ms: u64,
    ) -> Result<(), ReportRejection> {
        let result = self.check_and_apply(sender, signed, now_ms);
        match result {
            Ok(()) => self.counters.reports_accepted += 1,
            Err(reason) => {
                self.counters.reports_rejected += 1;
                match reason {
                    ReportRejection::BadSignature => self.counters.bad_signatures += 1,
                    ReportRejection::Stale => self.counters.stale_reports += 1,
                    ReportRejection::UntrustedServer => self.counters.untrusted_forwards += 1,
                    _ => {}
                }
            }
        }
        result
    }

    fn check_and_apply(
        &mut self,
        sender: Sender,
        signed: &SignedCapacityReport,
        now_ms: u64,
    ) -> Result<(), ReportRejection> {
        let report = &signed.report;
        match sender {
            Sender::Client(peer) if peer != report.node => {
                return Err(ReportRejection::NotOwnReport)
            }
            Sender::Server(server) if !self.trusts(&server) => {
                return Err(ReportRejection::UntrustedServer)
            }
            _ => {}
        }
        if report.expires_at_ms <= now_ms {
            return Err(ReportRejection::Expired);
        }
        let max_ttl_ms = MAX_INDEX_REPORT_TTL_SECS * 1_000;
        if report.issued_at_ms > now_ms.saturating_add(self.config.max_clock_skew_ms)
            || report.expires_at_ms - report.issued_at_ms > max_ttl_ms
        {
            return Err(ReportRejection::FromTheFuture);
        }
        let held = self
            .nodes
            .get(&report.node)
            .and_then(|record| record.current.as_ref())
            .map_or(0, |current| current.report.friends.len());
        if self.entries - held + report.friends.len() > self.config.max_entries {
            return Err(ReportRejection::Full);
        }
        if let Some(known) = self.nodes.get(&report.node) {
            let newer = if known.session_id == report.session_id {
                report.counter > known.counter
            } else {
                report.issued_at_ms > known.issued_at_ms
            };
            if !newer {
                return Err(ReportRejection::Stale);
            }
        } else if self.nodes.len() >= self.config.max_nodes {
            return Err(ReportRejection::Full);
        }
        verify_signature(&report.node, &report.signing_bytes(), &signed.signature)
            .map_err(|_| ReportRejection::BadSignature)?;

        let entries = report.friends.iter().map(|entry| {
            (
                entry.currency.clone(),
                entry.friend,
                Reported {
                    send: entry.send,
                    recv: entry.recv,
                    rate: entry.rate,
                },
            )
        });
        if let Err(GraphError::Full(_)) = self.graph.set_node(report.node, entries) {
            self.graph.remove_node(&report.node);
            self.nodes.remove(&report.node);
            self.entries -= held;
            return Err(ReportRejection::Full);
        }
        self.entries = self.entries - held + report.friends.len();
        self.nodes.insert(
            report.node,
            NodeRecord {
                current: Some(signed.clone()),
                session_id: report.session_id,
                counter: report.counter,
                issued_at_ms: report.issued_at_ms,
                expires_at_ms: report.expires_at_ms,
                // Any report older than this one expires by then, so it cannot be replayed.
                forget_at_ms: report
                    .issued_at_ms
                    .saturating_add(max_ttl_ms)
                    .max(report.expires_at_ms),
            },
        );
        Ok(())
    }

    /// Drops the edges of nodes whose report expired and forgets ratchets that can no longer
    /// be replayed. Returns the nodes dropped from the graph.
    pub fn expire(&mut self, now_ms: u64) -> Vec<PublicKey> {
        let mut dropped = Vec::new();
        for (node, record) in &mut self.nodes {
            if record.expires_at_ms <= now_ms {
                if let Some(expired) = record.current.take() {
                    self.entries -= expired.report.friends.len();
                    dropped.push(*node);
                }
            }
        }
        for node in &dropped {
            self.graph.remove_node(node);
        }
        self.counters.nodes_expired += dropped.len() as u64;
        self.nodes
            .retain(|_, record| record.current.is_some() || record.forget_at_ms > now_ms);
        dropped
    }

    /// Every live report, for bringing a newly connected server up to date.
    pub fn snapshot(&self) -> Vec<SignedCapacityReport> {
        self.nodes
            .values()
            .filter_map(|record| record.current.clone())
            .collect()
    }

    /// Answers a route query: the fewest-fee single route, or (when `max_routes > 1` and no
    /// single route suffices) a multi-route split.
    pub fn route(&mut self, request: &RouteRequest) -> RouteResponse {
        self.counters.queries += 1;
        let result = self.find_routes(request);
        if result.is_ok() {
            self.counters.queries_with_routes += 1;
        }
        RouteResponse {
            request_id: request.request_id,
            result,
        }
    }

    fn find_routes(&mut self, request: &RouteRequest) -> Result<Vec<Route>, RouteFailure> {
        let graph =
            self.graph
                .currency(&request.currency)
                .ok_or(if self.knows(&request.source) {
                    RouteFailure::NoRoute
                } else {
                    RouteFailure::UnknownSource
                })?;
        let constraints = Constraints {
            max_hops: request.max_hops as usize,
            exclude_nodes: request.exclude_nodes.clone(),
            exclude_arcs: request.exclude_arcs.clone(),
        };
        let result = if request.max_routes <= 1 {
            self.router
                .fewest_fee_route(
                    graph,
                    &request.source,
                    &request.destination,
                    request.amount,
                    &constraints,
                )
                .map(|route| vec![route])
        } else {
            self.router.multi_route(
                graph,
                &request.source,
                &request.destination,
                request.amount,
                &constraints,
                request.max_routes as usize,
            )
        };
        result.map_err(|err| match err {
            RouteError::UnknownSource => RouteFailure::UnknownSource,
            RouteError::UnknownDestination => RouteFailure::UnknownDestination,
            RouteError::SameEndpoints | RouteError::ZeroAmount => RouteFailure::InvalidRequest,
            RouteError::NoRoute => RouteFailure::NoRoute,
        })
    }
}

#[cfg(test)]
mod tests {
    use offst_crypto::Identity;
    use offst_proto::index::{CapacityReport, FeeRate, FriendCapacity};
    use offst_proto::{Credits, Currency, PublicKey, RandValue, RequestId};

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn identity(n: u8) -> Identity {
        Identity::from_seed([n; 32])
    }

    fn report(
        node: &Identity,
        session: u8,
        counter: u64,
        issued: u64,
        friends: &[(&Identity, u128)],
    ) -> SignedCapacityReport {
        let report = CapacityReport {
            node: node.public_key(),
            session_id: RandValue::from_bytes([session; 16]),
            counter,
            issued_at_ms: issued,
            expires_at_ms: issued + 60_000,
            friends: friends
                .iter()
                .map(|(friend, capacity)| FriendCapacity {
                    friend: friend.public_key(),
                    currency: Currency::new("FST").unwrap(),
                    send: Credits(*capacity),
                    recv: Credits(*capacity),
                    rate: FeeRate::DEFAULT,
                })
                .collect(),
        };
        SignedCapacityReport {
            signature: node.sign(&report.signing_bytes()),
            report,
        }
    }

    fn client(node: &Identity) -> Sender {
        Sender::Client(node.public_key())
    }

    fn query(from: &Identity, to: &Identity, amount: u128) -> RouteRequest {
        RouteRequest {
            request_id: RequestId::from_bytes([1; 16]),
            currency: Currency::new("FST").unwrap(),
            amount: Credits(amount),
            source: from.public_key(),
            destination: to.public_key(),
            max_hops: 31,
            max_routes: 1,
            exclude_nodes: vec![],
            exclude_arcs: vec![],
        }
    }

    /// The test vector of docs/PROTOCOL.md §11.3.2.
    #[test]
    fn the_spec_test_vector_signs_and_verifies() {
        let node = Identity::from_seed([1; 32]);
        let report = CapacityReport {
            node: node.public_key(),
            session_id: RandValue::from_bytes([2; 16]),
            counter: 3,
            issued_at_ms: 4,
            expires_at_ms: 5,
            friends: vec![FriendCapacity {
                friend: PublicKey::from_bytes([6; 32]),
                currency: Currency::new("FST").unwrap(),
                send: Credits(7),
                recv: Credits(8),
                rate: FeeRate::new(Credits(9), 10).unwrap(),
            }],
        };
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            node.public_key().to_string(),
            "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w"
        );
        assert_eq!(
            hex(&report.signing_bytes()),
            "0000001e6f666673742f76312f696e6465782f63617061636974792d7265706f7274\
             8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\
             02020202020202020202020202020202\
             000000000000000300000000000000040000000000000005\
             00000001\
             0606060606060606060606060606060606060606060606060606060606060606\
             00000003465354\
             00000000000000000000000000000007\
             00000000000000000000000000000008\
             00000000000000000000000000000009\
             0000000a"
        );
        let signature = node.sign(&report.signing_bytes());
        assert_eq!(
            hex(signature.as_bytes()),
            "3e5e02c75ee6497889d3fea02bc194f508df453f623888e8534068067876fa8f\
             1d467a2c04b28fb012e7add8dd49901dbb0ad1810a4d0da16d51e42304101005"
        );
        assert!(verify_signature(&node.public_key(), &report.signing_bytes(), &signature).is_ok());
    }

    #[test]
    fn a_forged_report_is_refused_and_changes_nothing() {
        let (a, b) = (identity(1), identity(2));
        let mut state = IndexState::new(StateConfig::default(), []);
        let mut forged = report(&a, 1, 0, NOW, &[(&b, 10)]);
        forged.report.friends[0].send = Credits(1_000_000);
        assert_eq!(
            state.handle_report(client(&a), &forged, NOW),
            Err(ReportRejection::BadSignature)
        );
        let mut rate_changed = report(&a, 1, 0, NOW, &[(&b, 10)]);
        rate_changed.report.friends[0].rate = FeeRate::FREE;
        assert_eq!(
            state.handle_report(client(&a), &rate_changed, NOW),
            Err(ReportRejection::BadSignature)
        );
        assert!(!state.knows(&a.public_key()));
        assert_eq!(state.counters().bad_signatures, 2);
    }

    #[test]
    fn replayed_and_older_reports_are_refused() {
        let (a, b) = (identity(1), identity(2));
        let mut state = IndexState::new(StateConfig::default(), []);
        let first = report(&a, 1, 5, NOW, &[(&b, 10)]);
        assert_eq!(state.handle_report(client(&a), &first, NOW), Ok(()));
        assert_eq!(
            state.handle_report(client(&a), &first, NOW),
            Err(ReportRejection::Stale)
        );
        let older = report(&a, 1, 4, NOW, &[(&b, 99)]);
        assert_eq!(
            state.handle_report(client(&a), &older, NOW),
            Err(ReportRejection::Stale)
        );
        // A new session must be issued later than the one it replaces.
        let new_session = report(&a, 2, 0, NOW + 1, &[(&b, 20)]);
        assert_eq!(
            state.handle_report(client(&a), &new_session, NOW + 1),
            Ok(())
        );
        let old_session_again = report(&a, 1, 6, NOW, &[(&b, 10)]);
        assert_eq!(
            state.handle_report(client(&a), &old_session_again, NOW + 2),
            Err(ReportRejection::Stale)
        );
    }

    #[test]
    fn reports_outside_their_lifetime_are_refused() {
        let (a, b) = (identity(1), identity(2));
        let mut state = IndexState::new(StateConfig::default(), []);
        let old = report(&a, 1, 0, NOW - 120_000, &[(&b, 10)]);
        assert_eq!(
            state.handle_report(client(&a), &old, NOW),
            Err(ReportRejection::Expired)
        );
        let future = report(&a, 1, 0, NOW + 3_600_000, &[(&b, 10)]);
        assert_eq!(
            state.handle_report(client(&a), &future, NOW),
            Err(ReportRejection::FromTheFuture)
        );
        let mut immortal = report(&a, 1, 0, NOW, &[(&b, 10)]);
        immortal.report.expires_at_ms = u64::MAX;
        immortal.signature = a.sign(&immortal.report.signing_bytes());
        assert_eq!(
            state.handle_report(client(&a), &immortal, NOW),
            Err(ReportRejection::FromTheFuture)
        );
    }

    #[test]
    fn clients_report_only_about_themselves_and_only_trusted_servers_forward() {
        let (a, b, trusted, stranger) = (identity(1), identity(2), identity(8), identity(9));
        let mut state = IndexState::new(StateConfig::default(), [trusted.public_key()]);
        let signed = report(&a, 1, 0, NOW, &[(&b, 10)]);
        assert_eq!(
            state.handle_report(client(&b), &signed, NOW),
            Err(ReportRejection::NotOwnReport)
        );
        assert_eq!(
            state.handle_report(Sender::Server(stranger.public_key()), &signed, NOW),
            Err(ReportRejection::UntrustedServer)
        );
        assert!(!state.knows(&a.public_key()));
        assert_eq!(
            state.handle_report(Sender::Server(trusted.public_key()), &signed, NOW),
            Ok(())
        );
        // The same report arriving over a second path is a duplicate: not flooded again.
        assert_eq!(
            state.handle_report(Sender::Server(trusted.public_key()), &signed, NOW),
            Err(ReportRejection::Stale)
        );
    }

    #[test]
    fn a_node_that_stops_reporting_disappears_and_cannot_be_replayed_back() {
        let (a, b) = (identity(1), identity(2));
        let mut state = IndexState::new(StateConfig::default(), []);
        let report_a = report(&a, 1, 0, NOW, &[(&b, 10)]);
        state.handle_report(client(&a), &report_a, NOW).unwrap();
        state
            .handle_report(client(&b), &report(&b, 1, 0, NOW, &[(&a, 10)]), NOW)
            .unwrap();
        assert!(state.route(&query(&a, &b, 5)).result.is_ok());
        assert!(state.expire(NOW + 59_999).is_empty());
        let dropped = state.expire(NOW + 60_000);
        assert_eq!(dropped.len(), 2);
        assert_eq!(
            state.route(&query(&a, &b, 5)).result,
            Err(RouteFailure::UnknownSource)
        );
        assert_eq!(state.graph().edge_count(), 0);
        assert_eq!(
            state.handle_report(client(&a), &report_a, NOW + 30_000),
            Err(ReportRejection::Stale)
        );
        state.expire(NOW + 10 * 3_600_000);
        assert_eq!(state.snapshot().len(), 0);
    }

    #[test]
    fn routes_need_both_ends_and_respect_fees() {
        let (a, b, c) = (identity(1), identity(2), identity(3));
        let mut state = IndexState::new(StateConfig::default(), []);
        state
            .handle_report(client(&a), &report(&a, 1, 0, NOW, &[(&b, 11)]), NOW)
            .unwrap();
        state
            .handle_report(
                client(&b),
                &report(&b, 1, 0, NOW, &[(&a, 11), (&c, 10)]),
                NOW,
            )
            .unwrap();
        assert_eq!(
            state.route(&query(&a, &c, 10)).result,
            Err(RouteFailure::UnknownDestination)
        );
        state
            .handle_report(client(&c), &report(&c, 1, 0, NOW, &[(&b, 10)]), NOW)
            .unwrap();
        let routes = state.route(&query(&a, &c, 10)).result.unwrap();
        assert_eq!(routes[0].fees, Credits(1));
        assert_eq!(
            state.route(&query(&a, &c, 11)).result,
            Err(RouteFailure::NoRoute)
        );
        assert_eq!(
            state.route(&query(&a, &c, u128::MAX >> 1)).result,
            Err(RouteFailure::NoRoute)
        );
        assert_eq!(
            state.route(&query(&a, &a, 1)).result,
            Err(RouteFailure::InvalidRequest)
        );
    }

    #[test]
    fn the_total_of_entries_is_bounded_and_freed_on_expiry() {
        let (a, b, c) = (identity(1), identity(2), identity(3));
        let config = StateConfig {
            max_entries: 2,
            ..StateConfig::default()
        };
        let mut state = IndexState::new(config, []);
        state
            .handle_report(client(&a), &report(&a, 1, 0, NOW, &[(&b, 1), (&c, 1)]), NOW)
            .unwrap();
        assert_eq!(
            state.handle_report(client(&b), &report(&b, 1, 0, NOW, &[(&a, 1)]), NOW),
            Err(ReportRejection::Full)
        );
        // Replacing a report counts only the difference.
        state
            .handle_report(client(&a), &report(&a, 1, 1, NOW, &[(&b, 1)]), NOW)
            .unwrap();
        state
            .handle_report(client(&b), &report(&b, 1, 0, NOW, &[(&a, 1)]), NOW)
            .unwrap();
        state.expire(NOW + 60_000);
        state
            .handle_report(
                client(&c),
                &report(&c, 1, 0, NOW + 60_000, &[(&a, 1), (&b, 1)]),
                NOW + 60_000,
            )
            .unwrap();
    }

    #[test]
    fn a_full_index_refuses_new_nodes_but_serves_known_ones() {
        let (a, b, c) = (identity(1), identity(2), identity(3));
        let config = StateConfig {
            max_nodes: 2,
            ..StateConfig::default()
        };
        let mut state = IndexState::new(config, []);
        state
            .handle_report(client(&a), &report(&a, 1, 0, NOW, &[(&b, 1)]), NOW)
            .unwrap();
        state
            .handle_report(client(&b), &report(&b, 1, 0, NOW, &[(&a, 1)]), NOW)
            .unwrap();
        assert_eq!(
            state.handle_report(client(&c), &report(&c, 1, 0, NOW, &[(&a, 1)]), NOW),
            Err(ReportRejection::Full)
        );
        assert_eq!(
            state.handle_report(client(&a), &report(&a, 1, 1, NOW, &[(&b, 2)]), NOW),
            Ok(())
        );
    }
}
