//! Index protocol messages (schema `index.capnp`; docs/PROTOCOL.md §11).
//!
//! Nodes send signed [`CapacityReport`]s to index servers; servers flood accepted reports to the
//! servers they trust ([`IndexMessage::ForwardReports`]); nodes ask for routes with
//! [`RouteRequest`] and get a [`RouteResponse`]. This module owns the types, their strict
//! decoders and their canonical signing bytes; signing and verification are the caller's
//! (`offst_crypto`), validation against state and time is the index server's.

use std::collections::HashSet;

use crate::canonical::{domain, CanonicalWriter};
use crate::codec::{
    check_len, decode_root, encode_root, read_credits, read_fixed, read_text, write_credits,
    DecodeError, WireMessage,
};
use crate::limits::{
    MAX_INDEX_EXCLUDED_ARCS, MAX_INDEX_EXCLUDED_NODES, MAX_INDEX_FORWARD_BATCH,
    MAX_INDEX_REPORT_ENTRIES, MAX_INDEX_ROUTES, MAX_ROUTE_LEN,
};
use crate::schema::index_capnp;
use crate::types::{Credits, Currency, PublicKey, RandValue, RequestId, Signature};

/// The parts per million in one whole: a proportional rate of `PPM_ONE` is 100 %.
pub const PPM_ONE: u32 = 1_000_000;

/// The fee a mediator charges for forwarding a payment: `flat + floor(amount × ppm / 10⁶)`,
/// where `amount` is what the mediator forwards to the next hop (all downstream fees included).
///
/// A node sets one rate per (friend, currency): the rate it charges for forwarding requests that
/// **arrive from** that friend (the convention of the original Offset funder). The default is
/// exactly 1 credit per mediator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeeRate {
    /// Credits charged per forwarded request, whatever its amount.
    pub flat: Credits,
    /// Proportional part in parts per million of the forwarded amount, at most [`PPM_ONE`].
    pub proportional_ppm: u32,
}

impl Default for FeeRate {
    fn default() -> Self {
        FeeRate::DEFAULT
    }
}

impl FeeRate {
    /// One credit per mediator, nothing proportional: the Offst default.
    pub const DEFAULT: FeeRate = FeeRate {
        flat: Credits(1),
        proportional_ppm: 0,
    };

    /// No fee at all.
    pub const FREE: FeeRate = FeeRate {
        flat: Credits(0),
        proportional_ppm: 0,
    };

    /// A rate, or `None` when the proportional part is above 100 % or the flat part above
    /// [`Credits::MAX`].
    pub fn new(flat: Credits, proportional_ppm: u32) -> Option<FeeRate> {
        (proportional_ppm <= PPM_ONE && flat <= Credits::MAX).then_some(FeeRate {
            flat,
            proportional_ppm,
        })
    }

    /// The fee for forwarding `forwarded` credits, or `None` past [`Credits::MAX`].
    pub fn fee(&self, forwarded: Credits) -> Option<Credits> {
        if self.proportional_ppm == 0 {
            return Some(self.flat); // the common case; no 128-bit division
        }
        if let Some(product) = u64::try_from(forwarded.0)
            .ok()
            .and_then(|amount| amount.checked_mul(u64::from(self.proportional_ppm.min(PPM_ONE))))
        {
            // Fits in 64 bits: avoid the slow 128-bit division.
            let proportional = Credits(u128::from(product / u64::from(PPM_ONE)));
            return proportional.checked_add(self.flat);
        }
        let ppm = u128::from(self.proportional_ppm.min(PPM_ONE));
        let one = u128::from(PPM_ONE);
        // Split to avoid overflow: (q·10⁶ + r)·p/10⁶ = q·p + r·p/10⁶, with p ≤ 10⁶.
        let (quotient, remainder) = (forwarded.0 / one, forwarded.0 % one);
        let proportional = quotient
            .checked_mul(ppm)?
            .checked_add(remainder * ppm / one)?;
        Credits(proportional).checked_add(self.flat)
    }

    /// What a mediator must receive to forward `forwarded` credits: `forwarded + fee`, or
    /// `None` past [`Credits::MAX`].
    pub fn incoming_for(&self, forwarded: Credits) -> Option<Credits> {
        forwarded.checked_add(self.fee(forwarded)?)
    }

    /// The most a mediator can forward when it receives at most `incoming` credits: the largest
    /// `x` with `x + fee(x) ≤ incoming`, or `None` when not even 0 fits (the flat fee exceeds
    /// `incoming`).
    pub fn max_forwardable(&self, incoming: Credits) -> Option<Credits> {
        let budget = incoming.checked_sub(self.flat)?;
        // x + floor(x·p/10⁶) is strictly increasing in x: binary search the largest fit.
        let (mut low, mut high) = (0u128, budget.0);
        while low < high {
            let mid = low + (high - low).div_ceil(2);
            match self.incoming_for(Credits(mid)) {
                Some(needed) if needed <= incoming => low = mid,
                _ => high = mid - 1,
            }
        }
        Some(Credits(low))
    }
}

/// One route of a route answer: the nodes from buyer to seller and what paying over it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Buyer first, seller last, at least two nodes, no node twice.
    pub nodes: Vec<PublicKey>,
    /// What the seller receives over this route.
    pub amount: Credits,
    /// What the mediators charge in total for `amount` (the buyer sends `amount + fees`).
    pub fees: Credits,
    /// The most the seller could receive over this route at the time of the answer, fees
    /// accounted for (at least `amount`).
    pub capacity: Credits,
}

/// What a node can do with one friend in one currency, as reported to index servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendCapacity {
    /// The friend.
    pub friend: PublicKey,
    /// The currency of this channel.
    pub currency: Currency,
    /// How much the node can still send to the friend.
    pub send: Credits,
    /// How much the node can still receive from the friend.
    pub recv: Credits,
    /// The fee the node charges for forwarding requests that arrive from the friend.
    pub rate: FeeRate,
}

/// A full snapshot of a node's channels. The node signs [`CapacityReport::signing_bytes`];
/// an index keeps only the newest report per node: same session and a higher counter, or a
/// new session issued later. A report past `expires_at_ms` is void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityReport {
    /// The reporting node.
    pub node: PublicKey,
    /// Random per reporting session (a node start); counters restart with each session.
    pub session_id: RandValue,
    /// Increases by one per report within a session.
    pub counter: u64,
    /// When the node made the report (unix milliseconds, the node's clock).
    pub issued_at_ms: u64,
    /// When the report stops counting (unix milliseconds).
    pub expires_at_ms: u64,
    /// At most [`MAX_INDEX_REPORT_ENTRIES`] entries, no (friend, currency) twice.
    pub friends: Vec<FriendCapacity>,
}

impl CapacityReport {
    /// The bytes the node signs: tag `offst/v1/index/capacity-report`, then node, session id,
    /// counter, issued-at, expires-at, the entry count and each entry (friend, currency,
    /// send, recv, flat fee, proportional ppm) in report order.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut writer = CanonicalWriter::new(domain::INDEX_CAPACITY_REPORT);
        writer
            .fixed(self.node.as_bytes())
            .fixed(self.session_id.as_bytes())
            .u64(self.counter)
            .u64(self.issued_at_ms)
            .u64(self.expires_at_ms)
            .list_len(self.friends.len());
        for entry in &self.friends {
            writer
                .fixed(entry.friend.as_bytes())
                .text(entry.currency.as_str())
                .u128(entry.send.0)
                .u128(entry.recv.0)
                .u128(entry.rate.flat.0)
                .u32(entry.rate.proportional_ppm);
        }
        writer.finish()
    }
}

/// A capacity report with the node's signature over its signing bytes. Decoding checks the
/// shape only; the index verifies the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCapacityReport {
    /// The report.
    pub report: CapacityReport,
    /// The node's Ed25519 signature over `report.signing_bytes()`.
    pub signature: Signature,
}

/// A query for routes from a buyer to a seller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// Chosen by the asker, echoed in the response.
    pub request_id: RequestId,
    /// The currency to pay in.
    pub currency: Currency,
    /// What the seller must receive (positive).
    pub amount: Credits,
    /// The buyer.
    pub source: PublicKey,
    /// The seller.
    pub destination: PublicKey,
    /// Most arcs per route, 1 ..= `MAX_ROUTE_LEN - 1`.
    pub max_hops: u32,
    /// Most routes in the answer, 1 ..= [`MAX_INDEX_ROUTES`]; 1 asks for a single route.
    pub max_routes: u32,
    /// Nodes no route may pass through.
    pub exclude_nodes: Vec<PublicKey>,
    /// Directed arcs (from, to) no route may use.
    pub exclude_arcs: Vec<(PublicKey, PublicKey)>,
}

/// Why an index answered a route request without routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteFailure {
    /// No route (or allowed set of routes) carries the amount with its fees.
    NoRoute,
    /// The buyer is unknown in this currency.
    UnknownSource,
    /// The seller is unknown in this currency.
    UnknownDestination,
    /// The request breaks a rule (zero amount, buyer = seller, limits).
    InvalidRequest,
    /// The asker sent too many requests; retry later.
    RateLimited,
}

/// The answer to a [`RouteRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteResponse {
    /// The request's id.
    pub request_id: RequestId,
    /// One to [`MAX_INDEX_ROUTES`] routes whose amounts add up to the requested amount, or why
    /// there are none.
    pub result: Result<Vec<Route>, RouteFailure>,
}

/// Why an index refused a capacity report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportRejection {
    /// The signature does not verify.
    BadSignature,
    /// Replayed, or not newer than the report the index holds.
    Stale,
    /// Already expired.
    Expired,
    /// Issued too far ahead of the index's clock, or living longer than allowed.
    FromTheFuture,
    /// A client may only report about itself.
    NotOwnReport,
    /// Forwarded by a server this index does not trust.
    UntrustedServer,
    /// The index holds as many nodes as it may.
    Full,
    /// The sender reports too often.
    RateLimited,
}

/// One message of the index protocol (one per frame, inside the secure channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexMessage {
    /// Node → index: the node's current capacities.
    Report(SignedCapacityReport),
    /// Index → node: the report with this (node, session, counter) was accepted.
    ReportAccepted {
        /// The reporting node.
        node: PublicKey,
        /// The report's session.
        session_id: RandValue,
        /// The report's counter.
        counter: u64,
    },
    /// Index → node or server: the report was refused.
    ReportRejected {
        /// The reporting node.
        node: PublicKey,
        /// The report's session.
        session_id: RandValue,
        /// The report's counter.
        counter: u64,
        /// Why.
        reason: ReportRejection,
    },
    /// Node → index: a route query.
    RequestRoutes(RouteRequest),
    /// Index → node: the answer.
    ResponseRoutes(RouteResponse),
    /// Index → trusted index: reports it accepted, at most [`MAX_INDEX_FORWARD_BATCH`].
    ForwardReports(Vec<SignedCapacityReport>),
}

fn write_rate(mut builder: index_capnp::fee_rate::Builder<'_>, rate: &FeeRate) {
    write_credits(builder.reborrow().init_flat(), rate.flat);
    builder.set_proportional_ppm(rate.proportional_ppm);
}

fn read_rate(reader: index_capnp::fee_rate::Reader<'_>) -> Result<FeeRate, DecodeError> {
    let flat = read_credits("flat", reader.get_flat())?;
    FeeRate::new(flat, reader.get_proportional_ppm()).ok_or(DecodeError::Invalid(
        "fee rate: proportionalPpm above 1000000",
    ))
}

fn write_report(
    mut builder: index_capnp::capacity_report::Builder<'_>,
    signed: &SignedCapacityReport,
) {
    let report = &signed.report;
    builder.set_node(report.node.as_bytes());
    builder.set_session_id(report.session_id.as_bytes());
    builder.set_counter(report.counter);
    builder.set_issued_at(report.issued_at_ms);
    builder.set_expires_at(report.expires_at_ms);
    builder.set_signature(signed.signature.as_bytes());
    let mut list = builder.init_friends(report.friends.len() as u32);
    for (index, entry) in report.friends.iter().enumerate() {
        let mut item = list.reborrow().get(index as u32);
        item.set_friend(entry.friend.as_bytes());
        item.set_currency(entry.currency.as_str());
        write_credits(item.reborrow().init_send_capacity(), entry.send);
        write_credits(item.reborrow().init_recv_capacity(), entry.recv);
        write_rate(item.init_rate(), &entry.rate);
    }
}

fn read_report(
    reader: index_capnp::capacity_report::Reader<'_>,
) -> Result<SignedCapacityReport, DecodeError> {
    let list = reader.get_friends()?;
    let len = check_len("friends", list.len(), MAX_INDEX_REPORT_ENTRIES)?;
    let mut friends = Vec::with_capacity(len);
    let mut keys = HashSet::with_capacity(len);
    for item in list.iter() {
        let entry = FriendCapacity {
            friend: read_fixed("friend", item.get_friend(), PublicKey::try_from_slice)?,
            currency: read_text("currency", item.get_currency(), Currency::new)?,
            send: read_credits("sendCapacity", item.get_send_capacity())?,
            recv: read_credits("recvCapacity", item.get_recv_capacity())?,
            rate: read_rate(item.get_rate()?)?,
        };
        if !keys.insert((entry.friend, entry.currency.clone())) {
            return Err(DecodeError::Invalid(
                "report lists a (friend, currency) twice",
            ));
        }
        friends.push(entry);
    }
    let report = CapacityReport {
        node: read_fixed("node", reader.get_node(), PublicKey::try_from_slice)?,
        session_id: read_fixed(
            "sessionId",
            reader.get_session_id(),
            RandValue::try_from_slice,
        )?,
        counter: reader.get_counter(),
        issued_at_ms: reader.get_issued_at(),
        expires_at_ms: reader.get_expires_at(),
        friends,
    };
    if report.expires_at_ms < report.issued_at_ms {
        return Err(DecodeError::Invalid("report expires before it is issued"));
    }
    if report
        .friends
        .iter()
        .any(|entry| entry.friend == report.node)
    {
        return Err(DecodeError::Invalid(
            "a node cannot report itself as its friend",
        ));
    }
    Ok(SignedCapacityReport {
        report,
        signature: read_fixed(
            "signature",
            reader.get_signature(),
            Signature::try_from_slice,
        )?,
    })
}

fn write_route(mut builder: index_capnp::route::Builder<'_>, route: &Route) {
    write_credits(builder.reborrow().init_amount(), route.amount);
    write_credits(builder.reborrow().init_fees(), route.fees);
    write_credits(builder.reborrow().init_capacity(), route.capacity);
    let mut nodes = builder.init_nodes(route.nodes.len() as u32);
    for (index, node) in route.nodes.iter().enumerate() {
        nodes.set(index as u32, node.as_bytes());
    }
}

fn read_route(reader: index_capnp::route::Reader<'_>) -> Result<Route, DecodeError> {
    let list = reader.get_nodes()?;
    let len = check_len("nodes", list.len(), MAX_ROUTE_LEN)?;
    if len < 2 {
        return Err(DecodeError::Invalid("a route has at least two nodes"));
    }
    let mut nodes = Vec::with_capacity(len);
    for node in list.iter() {
        nodes.push(read_fixed("nodes", node, PublicKey::try_from_slice)?);
    }
    if nodes.iter().collect::<HashSet<_>>().len() != nodes.len() {
        return Err(DecodeError::Invalid("a route visits a node twice"));
    }
    let route = Route {
        nodes,
        amount: read_credits("amount", reader.get_amount())?,
        fees: read_credits("fees", reader.get_fees())?,
        capacity: read_credits("capacity", reader.get_capacity())?,
    };
    if route.amount.0 == 0 {
        return Err(DecodeError::Invalid("a route carries a positive amount"));
    }
    Ok(route)
}

fn write_request(mut builder: index_capnp::route_request::Builder<'_>, request: &RouteRequest) {
    builder.set_request_id(request.request_id.as_bytes());
    builder.set_currency(request.currency.as_str());
    write_credits(builder.reborrow().init_amount(), request.amount);
    builder.set_source(request.source.as_bytes());
    builder.set_destination(request.destination.as_bytes());
    builder.set_max_hops(request.max_hops);
    builder.set_max_routes(request.max_routes);
    let mut nodes = builder
        .reborrow()
        .init_exclude_nodes(request.exclude_nodes.len() as u32);
    for (index, node) in request.exclude_nodes.iter().enumerate() {
        nodes.set(index as u32, node.as_bytes());
    }
    let mut arcs = builder.init_exclude_arcs(request.exclude_arcs.len() as u32);
    for (index, (from, to)) in request.exclude_arcs.iter().enumerate() {
        let mut arc = arcs.reborrow().get(index as u32);
        arc.set_from(from.as_bytes());
        arc.set_to(to.as_bytes());
    }
}

fn read_request(
    reader: index_capnp::route_request::Reader<'_>,
) -> Result<RouteRequest, DecodeError> {
    let node_list = reader.get_exclude_nodes()?;
    check_len("excludeNodes", node_list.len(), MAX_INDEX_EXCLUDED_NODES)?;
    let mut exclude_nodes = Vec::with_capacity(node_list.len() as usize);
    for node in node_list.iter() {
        exclude_nodes.push(read_fixed("excludeNodes", node, PublicKey::try_from_slice)?);
    }
    let arc_list = reader.get_exclude_arcs()?;
    check_len("excludeArcs", arc_list.len(), MAX_INDEX_EXCLUDED_ARCS)?;
    let mut exclude_arcs = Vec::with_capacity(arc_list.len() as usize);
    for arc in arc_list.iter() {
        exclude_arcs.push((
            read_fixed("from", arc.get_from(), PublicKey::try_from_slice)?,
            read_fixed("to", arc.get_to(), PublicKey::try_from_slice)?,
        ));
    }
    let request = RouteRequest {
        request_id: read_fixed(
            "requestId",
            reader.get_request_id(),
            RequestId::try_from_slice,
        )?,
        currency: read_text("currency", reader.get_currency(), Currency::new)?,
        amount: read_credits("amount", reader.get_amount())?,
        source: read_fixed("source", reader.get_source(), PublicKey::try_from_slice)?,
        destination: read_fixed(
            "destination",
            reader.get_destination(),
            PublicKey::try_from_slice,
        )?,
        max_hops: reader.get_max_hops(),
        max_routes: reader.get_max_routes(),
        exclude_nodes,
        exclude_arcs,
    };
    if request.max_hops == 0 || request.max_hops as usize >= MAX_ROUTE_LEN {
        return Err(DecodeError::Invalid("maxHops must be 1..31"));
    }
    if request.max_routes == 0 || request.max_routes as usize > MAX_INDEX_ROUTES {
        return Err(DecodeError::Invalid("maxRoutes must be 1..8"));
    }
    Ok(request)
}

fn failure_to_wire(failure: RouteFailure) -> index_capnp::RouteFailure {
    match failure {
        RouteFailure::NoRoute => index_capnp::RouteFailure::NoRoute,
        RouteFailure::UnknownSource => index_capnp::RouteFailure::UnknownSource,
        RouteFailure::UnknownDestination => index_capnp::RouteFailure::UnknownDestination,
        RouteFailure::InvalidRequest => index_capnp::RouteFailure::InvalidRequest,
        RouteFailure::RateLimited => index_capnp::RouteFailure::RateLimited,
    }
}

fn failure_from_wire(failure: index_capnp::RouteFailure) -> RouteFailure {
    match failure {
        index_capnp::RouteFailure::NoRoute => RouteFailure::NoRoute,
        index_capnp::RouteFailure::UnknownSource => RouteFailure::UnknownSource,
        index_capnp::RouteFailure::UnknownDestination => RouteFailure::UnknownDestination,
        index_capnp::RouteFailure::InvalidRequest => RouteFailure::InvalidRequest,
        index_capnp::RouteFailure::RateLimited => RouteFailure::RateLimited,
    }
}

fn rejection_to_wire(reason: ReportRejection) -> index_capnp::ReportRejection {
    use index_capnp::ReportRejection as Wire;
    match reason {
        ReportRejection::BadSignature => Wire::BadSignature,
        ReportRejection::Stale => Wire::Stale,
        ReportRejection::Expired => Wire::Expired,
        ReportRejection::FromTheFuture => Wire::FromTheFuture,
        ReportRejection::NotOwnReport => Wire::NotOwnReport,
        ReportRejection::UntrustedServer => Wire::UntrustedServer,
        ReportRejection::Full => Wire::Full,
        ReportRejection::RateLimited => Wire::RateLimited,
    }
}

fn rejection_from_wire(reason: index_capnp::ReportRejection) -> ReportRejection {
    use index_capnp::ReportRejection as Wire;
    match reason {
        Wire::BadSignature => ReportRejection::BadSignature,
        Wire::Stale => ReportRejection::Stale,
        Wire::Expired => ReportRejection::Expired,
        Wire::FromTheFuture => ReportRejection::FromTheFuture,
        Wire::NotOwnReport => ReportRejection::NotOwnReport,
        Wire::UntrustedServer => ReportRejection::UntrustedServer,
        Wire::Full => ReportRejection::Full,
        Wire::RateLimited => ReportRejection::RateLimited,
    }
}

impl WireMessage for IndexMessage {
    fn encode(&self) -> Vec<u8> {
        encode_root::<index_capnp::index_message::Owned>(|root| match self {
            IndexMessage::Report(signed) => write_report(root.init_report(), signed),
            IndexMessage::ReportAccepted {
                node,
                session_id,
                counter,
            } => {
                let mut b = root.init_report_accepted();
                b.set_node(node.as_bytes());
                b.set_session_id(session_id.as_bytes());
                b.set_counter(*counter);
            }
            IndexMessage::ReportRejected {
                node,
                session_id,
                counter,
                reason,
            } => {
                let mut b = root.init_report_rejected();
                b.set_node(node.as_bytes());
                b.set_session_id(session_id.as_bytes());
                b.set_counter(*counter);
                b.set_reason(rejection_to_wire(*reason));
            }
            IndexMessage::RequestRoutes(request) => {
                write_request(root.init_request_routes(), request)
            }
            IndexMessage::ResponseRoutes(response) => {
                let mut b = root.init_response_routes();
                b.set_request_id(response.request_id.as_bytes());
                match &response.result {
                    Ok(routes) => {
                        let mut list = b.init_routes(routes.len() as u32);
                        for (index, route) in routes.iter().enumerate() {
                            write_route(list.reborrow().get(index as u32), route);
                        }
                    }
                    Err(failure) => b.set_failure(failure_to_wire(*failure)),
                }
            }
            IndexMessage::ForwardReports(reports) => {
                let mut list = root.init_forward_reports(reports.len() as u32);
                for (index, signed) in reports.iter().enumerate() {
                    write_report(list.reborrow().get(index as u32), signed);
                }
            }
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        use index_capnp::index_message;
        decode_root::<index_message::Owned, _>(bytes, |root| {
            Ok(match root.which()? {
                index_message::Report(report) => IndexMessage::Report(read_report(report?)?),
                index_message::ReportAccepted(ack) => {
                    let ack = ack?;
                    IndexMessage::ReportAccepted {
                        node: read_fixed("node", ack.get_node(), PublicKey::try_from_slice)?,
                        session_id: read_fixed(
                            "sessionId",
                            ack.get_session_id(),
                            RandValue::try_from_slice,
                        )?,
                        counter: ack.get_counter(),
                    }
                }
                index_message::ReportRejected(rejected) => {
                    let rejected = rejected?;
                    IndexMessage::ReportRejected {
                        node: read_fixed("node", rejected.get_node(), PublicKey::try_from_slice)?,
                        session_id: read_fixed(
                            "sessionId",
                            rejected.get_session_id(),
                            RandValue::try_from_slice,
                        )?,
                        counter: rejected.get_counter(),
                        reason: rejection_from_wire(rejected.get_reason()?),
                    }
                }
                index_message::RequestRoutes(request) => {
                    IndexMessage::RequestRoutes(read_request(request?)?)
                }
                index_message::ResponseRoutes(response) => {
                    use index_capnp::route_response;
                    let response = response?;
                    let request_id = read_fixed(
                        "requestId",
                        response.get_request_id(),
                        RequestId::try_from_slice,
                    )?;
                    let result = match response.which()? {
                        route_response::Routes(list) => {
                            let list = list?;
                            let len = check_len("routes", list.len(), MAX_INDEX_ROUTES)?;
                            if len == 0 {
                                return Err(DecodeError::Invalid(
                                    "an answer has at least one route",
                                ));
                            }
                            let mut routes = Vec::with_capacity(len);
                            for route in list.iter() {
                                routes.push(read_route(route)?);
                            }
                            Ok(routes)
                        }
                        route_response::Failure(failure) => Err(failure_from_wire(failure?)),
                    };
                    IndexMessage::ResponseRoutes(RouteResponse { request_id, result })
                }
                index_message::ForwardReports(list) => {
                    let list = list?;
                    let len = check_len("forwardReports", list.len(), MAX_INDEX_FORWARD_BATCH)?;
                    let mut reports = Vec::with_capacity(len);
                    for report in list.iter() {
                        reports.push(read_report(report)?);
                    }
                    IndexMessage::ForwardReports(reports)
                }
            })
        })
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn report() -> SignedCapacityReport {
        SignedCapacityReport {
            report: CapacityReport {
                node: key(1),
                session_id: RandValue::from_bytes([9; 16]),
                counter: 42,
                issued_at_ms: 1_700_000_000_000,
                expires_at_ms: 1_700_000_060_000,
                friends: vec![
                    FriendCapacity {
                        friend: key(2),
                        currency: Currency::new("FST").unwrap(),
                        send: Credits(100),
                        recv: Credits::MAX,
                        rate: FeeRate::DEFAULT,
                    },
                    FriendCapacity {
                        friend: key(3),
                        currency: Currency::new("USD").unwrap(),
                        send: Credits(0),
                        recv: Credits(5),
                        rate: FeeRate::new(Credits(3), 2_500).unwrap(),
                    },
                ],
            },
            signature: Signature::from_bytes([7; 64]),
        }
    }

    fn samples() -> Vec<IndexMessage> {
        let route = Route {
            nodes: vec![key(1), key(2), key(3)],
            amount: Credits(10),
            fees: Credits(1),
            capacity: Credits(20),
        };
        vec![
            IndexMessage::Report(report()),
            IndexMessage::ReportAccepted {
                node: key(1),
                session_id: RandValue::from_bytes([1; 16]),
                counter: 3,
            },
            IndexMessage::ReportRejected {
                node: key(1),
                session_id: RandValue::from_bytes([1; 16]),
                counter: 3,
                reason: ReportRejection::Stale,
            },
            IndexMessage::RequestRoutes(RouteRequest {
                request_id: RequestId::from_bytes([4; 16]),
                currency: Currency::new("FST").unwrap(),
                amount: Credits(1 << 90),
                source: key(1),
                destination: key(3),
                max_hops: 31,
                max_routes: 8,
                exclude_nodes: vec![key(5)],
                exclude_arcs: vec![(key(6), key(7))],
            }),
            IndexMessage::ResponseRoutes(RouteResponse {
                request_id: RequestId::from_bytes([4; 16]),
                result: Ok(vec![route.clone(), route]),
            }),
            IndexMessage::ResponseRoutes(RouteResponse {
                request_id: RequestId::from_bytes([4; 16]),
                result: Err(RouteFailure::RateLimited),
            }),
            IndexMessage::ForwardReports(vec![report(), report()]),
            IndexMessage::ForwardReports(vec![]),
        ]
    }

    #[test]
    fn every_index_message_round_trips() {
        for message in samples() {
            assert_eq!(IndexMessage::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn signing_bytes_cover_every_field_including_the_rate() {
        let base = report().report;
        let mut variants = Vec::new();
        let mut changed = base.clone();
        changed.friends[1].rate = FeeRate::new(Credits(3), 2_501).unwrap();
        variants.push(changed);
        let mut changed = base.clone();
        changed.friends[0].rate.flat = Credits(2);
        variants.push(changed);
        let mut changed = base.clone();
        changed.counter += 1;
        variants.push(changed);
        let mut changed = base.clone();
        changed.expires_at_ms += 1;
        variants.push(changed);
        let mut changed = base.clone();
        changed.friends[0].recv = Credits(1);
        variants.push(changed);
        let mut changed = base.clone();
        changed.friends.pop();
        variants.push(changed);
        for variant in variants {
            assert_ne!(variant.signing_bytes(), base.signing_bytes());
        }
        assert!(base.signing_bytes().starts_with(&[0, 0, 0, 30]));
    }

    #[test]
    fn signing_bytes_match_the_spec_vector() {
        // The field layout of docs/PROTOCOL.md §11.3.2, field by field.
        let report = CapacityReport {
            node: key(1),
            session_id: RandValue::from_bytes([2; 16]),
            counter: 3,
            issued_at_ms: 4,
            expires_at_ms: 5,
            friends: vec![FriendCapacity {
                friend: key(6),
                currency: Currency::new("FST").unwrap(),
                send: Credits(7),
                recv: Credits(8),
                rate: FeeRate::new(Credits(9), 10).unwrap(),
            }],
        };
        let mut expected = Vec::new();
        expected.extend_from_slice(&30u32.to_be_bytes());
        expected.extend_from_slice(b"offst/v1/index/capacity-report");
        expected.extend_from_slice(&[1; 32]);
        expected.extend_from_slice(&[2; 16]);
        for value in [3u64, 4, 5] {
            expected.extend_from_slice(&value.to_be_bytes());
        }
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(&[6; 32]);
        expected.extend_from_slice(&3u32.to_be_bytes());
        expected.extend_from_slice(b"FST");
        for value in [7u128, 8, 9] {
            expected.extend_from_slice(&value.to_be_bytes());
        }
        expected.extend_from_slice(&10u32.to_be_bytes());
        assert_eq!(report.signing_bytes(), expected);
        assert_eq!(expected.len(), 4 + 30 + 32 + 16 + 24 + 4 + 32 + 7 + 48 + 4);
    }

    #[test]
    fn duplicate_entries_and_bad_limits_are_rejected() {
        let mut twice = report();
        twice.report.friends[1].friend = key(2);
        twice.report.friends[1].currency = Currency::new("FST").unwrap();
        assert!(IndexMessage::decode(&IndexMessage::Report(twice).encode()).is_err());

        let mut itself = report();
        itself.report.friends[0].friend = key(1);
        assert!(IndexMessage::decode(&IndexMessage::Report(itself).encode()).is_err());

        let request = |max_hops, max_routes| {
            IndexMessage::RequestRoutes(RouteRequest {
                request_id: RequestId::from_bytes([4; 16]),
                currency: Currency::new("FST").unwrap(),
                amount: Credits(1),
                source: key(1),
                destination: key(3),
                max_hops,
                max_routes,
                exclude_nodes: vec![],
                exclude_arcs: vec![],
            })
        };
        for (hops, routes) in [(0, 1), (32, 1), (3, 0), (3, 9)] {
            assert!(IndexMessage::decode(&request(hops, routes).encode()).is_err());
        }
        let too_many = IndexMessage::ForwardReports(vec![report(); MAX_INDEX_FORWARD_BATCH + 1]);
        assert!(matches!(
            IndexMessage::decode(&too_many.encode()),
            Err(DecodeError::TooMany { .. })
        ));
    }

    #[test]
    fn truncated_and_corrupted_messages_never_panic() {
        for message in samples() {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                let _ = IndexMessage::decode(&bytes[..cut]);
            }
            for index in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[index] ^= 0x5a;
                let _ = IndexMessage::decode(&flipped);
            }
        }
    }
}

#[cfg(test)]
mod fee_tests {
    use super::*;

    #[test]
    fn default_rate_is_one_credit_per_mediator() {
        assert_eq!(FeeRate::default().fee(Credits(1_000)), Some(Credits(1)));
        assert_eq!(
            FeeRate::DEFAULT.incoming_for(Credits(10)),
            Some(Credits(11))
        );
    }

    #[test]
    fn proportional_fee_rounds_down_and_never_overflows() {
        let rate = FeeRate::new(Credits(2), 10_000).unwrap(); // 1 % + 2
        assert_eq!(rate.fee(Credits(1_000)), Some(Credits(12)));
        assert_eq!(rate.fee(Credits(99)), Some(Credits(2)));
        let full = FeeRate::new(Credits(0), PPM_ONE).unwrap();
        assert_eq!(full.fee(Credits::MAX), Some(Credits::MAX));
        assert_eq!(full.incoming_for(Credits::MAX), None);
        assert!(FeeRate::new(Credits(0), PPM_ONE + 1).is_none());
    }

    #[test]
    fn max_forwardable_inverts_incoming_for() {
        for rate in [
            FeeRate::DEFAULT,
            FeeRate::FREE,
            FeeRate::new(Credits(3), 2_500).unwrap(),
            FeeRate::new(Credits(0), PPM_ONE).unwrap(),
        ] {
            for incoming in [0u128, 1, 2, 5, 100, 12_345, 1 << 100] {
                let incoming = Credits(incoming);
                match rate.max_forwardable(incoming) {
                    None => assert!(rate.flat > incoming),
                    Some(x) => {
                        assert!(rate.incoming_for(x).unwrap() <= incoming);
                        let next = rate.incoming_for(Credits(x.0 + 1));
                        assert!(next.is_none_or(|next| next > incoming));
                    }
                }
            }
        }
    }
}
