//! Route search over one [`CurrencyGraph`]: fee-aware fewest-fee single routes, multi-route
//! splits, and the yardsticks the benchmark compares them with (plain BFS, widest path, max-flow).
//!
//! # Fees and capacity
//!
//! A route is `buyer = n₀ → n₁ → … → n_k = seller`. Mediator `nᵢ` (0 < i < k) charges the rate it
//! set for requests arriving from `nᵢ₋₁` on the amount it forwards to `nᵢ₊₁`. The amounts are
//! computed backwards from the seller: the last arc carries the payment amount, and the arc
//! entering a mediator carries what it forwards plus its fee. Every arc must have that much
//! capacity. Fees are monotone in the forwarded amount, so a backward label-setting search
//! (Dijkstra on "amount that must enter this arc") finds the route with the fewest fees
//! exactly; with the default rate (1 credit per mediator) that is the route with the fewest
//! mediators. A search that pays with hops over the caller's `max_hops` falls back to an exact
//! hop-bounded search.
//!
//! This module is pure: no clock, no I/O, no locks. A [`Router`] owns reusable search buffers,
//! so a query allocates little beyond its answer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use offst_proto::index::{FeeRate, Route};
use offst_proto::limits::{MAX_INDEX_ROUTES, MAX_ROUTE_LEN};
use offst_proto::{Credits, PublicKey};

use crate::graph::{CurrencyGraph, Neighbour, NodeIx};

/// The default and largest number of arcs a route may have (a route of [`MAX_ROUTE_LEN`]
/// nodes).
pub const MAX_HOPS: usize = MAX_ROUTE_LEN - 1;

/// Limits and exclusions of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraints {
    /// Most arcs a route may have, 1 ..= [`MAX_HOPS`].
    pub max_hops: usize,
    /// Nodes no route may pass through (the buyer and seller themselves cannot be excluded).
    pub exclude_nodes: Vec<PublicKey>,
    /// Directed arcs (from, to) no route may use.
    pub exclude_arcs: Vec<(PublicKey, PublicKey)>,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_hops: MAX_HOPS,
            exclude_nodes: Vec::new(),
            exclude_arcs: Vec::new(),
        }
    }
}

/// Why no route was returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The buyer has not reported in this currency (or has no agreed friend).
    #[error("the buyer is unknown to this index in this currency")]
    UnknownSource,
    /// The seller has not reported in this currency.
    #[error("the seller is unknown to this index in this currency")]
    UnknownDestination,
    /// Buyer and seller are the same node.
    #[error("the buyer and the seller are the same node")]
    SameEndpoints,
    /// The amount is zero.
    #[error("the amount must be positive")]
    ZeroAmount,
    /// No route (or set of routes) carries the amount and its fees within the constraints.
    #[error("no route carries the amount with its fees")]
    NoRoute,
}

const NONE: NodeIx = NodeIx::MAX;

/// Most arcs one query may scan in its exact searches (the relaxed pre-search is one pass and
/// not counted). About 40 full passes over the 200,000-arc Ripple graph, tens of milliseconds:
/// pathological queries (a cheapest route far longer than `max_hops`, fee-feasible routes much
/// longer than capacity-feasible ones) give up with "no route" instead of holding the index.
pub const MAX_SEARCH_WORK: usize = 8_000_000;

/// Scale of the fee in the (fee, hops) keys of the floor search: hops stay below it.
const HOP_SCALE: u128 = 1 << 16;

/// Largest fee budget (in credits) searched with buckets instead of a heap: one bucket per
/// credit, so this bounds that buffer (64 Ki small vectors).
const MAX_BUCKET_SPAN: u128 = 1 << 16;

/// Arc `from → to` in handles, for exclusions and residual capacities.
type Arc = (NodeIx, NodeIx);

/// Reusable search buffers. One per thread that runs queries; cheap to create.
#[derive(Debug, Default)]
pub struct Router {
    generation: u32,
    seen: Vec<u32>,
    label: Vec<u128>,
    hops: Vec<u32>,
    parent: Vec<NodeIx>,
    other_seen: Vec<u32>,
    relaxed_generation: u32,
    relaxed_forward: Vec<u32>,
    relaxed_backward: Vec<u32>,
    forward_parent: Vec<NodeIx>,
    relaxed_parent: Vec<NodeIx>,
    relaxed_depth: Vec<u32>,
    forward_cost: Vec<u128>,
    floor_done_forward: Vec<u32>,
    floor_done_backward: Vec<u32>,
    excluded: Vec<u32>,
    touched: Vec<u32>,
    excluded_arcs: Vec<Arc>,
    used: HashMap<Arc, u128>,
    heap: BinaryHeap<Reverse<(u128, u32, NodeIx)>>,
    heap_back: BinaryHeap<Reverse<(u128, u32, NodeIx)>>,
    buckets: Vec<Vec<(u32, NodeIx)>>,
    /// Arcs scanned by the current query's exact searches.
    work: usize,
    frontier: Vec<NodeIx>,
    next_frontier: Vec<NodeIx>,
    other_frontier: Vec<NodeIx>,
}

/// A prepared query: handles resolved, buffers reset.
struct Query {
    source: NodeIx,
    destination: NodeIx,
    amount: u128,
}

impl Router {
    /// A router with empty buffers (they grow to the graph size on first use).
    pub fn new() -> Router {
        Router::default()
    }

    /// The route with the fewest fees that carries `amount` to the seller, each arc carrying
    /// the amount plus the fees of every mediator after it. Exact: if no route is returned, no
    /// single route within the constraints carries the amount.
    pub fn fewest_fee_route(
        &mut self,
        graph: &CurrencyGraph,
        source: &PublicKey,
        destination: &PublicKey,
        amount: Credits,
        constraints: &Constraints,
    ) -> Result<Route, RouteError> {
        let query = self.prepare(graph, source, destination, amount, constraints)?;
        let nodes = self
            .single(graph, &query, constraints.max_hops)
            .ok_or(RouteError::NoRoute)?;
        self.finish_route(graph, &nodes, query.amount)
            .ok_or(RouteError::NoRoute)
    }

    /// Routes that together carry `amount`, all or nothing: the fewest-fee single route when
    /// one exists, otherwise up to `max_routes` (at most [`MAX_INDEX_ROUTES`]) routes found by
    /// successive fewest-fee searches on the remaining capacity, each taking as much of the
    /// rest as it can carry. Every route pays its own fees.
    pub fn multi_route(
        &mut self,
        graph: &CurrencyGraph,
        source: &PublicKey,
        destination: &PublicKey,
        amount: Credits,
        constraints: &Constraints,
        max_routes: usize,
    ) -> Result<Vec<Route>, RouteError> {
        let query = self.prepare(graph, source, destination, amount, constraints)?;
        if let Some(nodes) = self.single(graph, &query, constraints.max_hops) {
            let route = self
                .finish_route(graph, &nodes, query.amount)
                .ok_or(RouteError::NoRoute)?;
            return Ok(vec![route]);
        }
        let max_routes = max_routes.clamp(1, MAX_INDEX_ROUTES);
        if max_routes == 1 || !self.endpoints_can_carry(graph, &query) {
            return Err(RouteError::NoRoute);
        }
        let mut remaining = query.amount;
        let mut routes = Vec::new();
        while remaining > 0 && routes.len() < max_routes {
            let left = (max_routes - routes.len()) as u128;
            // With `left` routes to go, one of them must carry at least this much.
            let floor = remaining.div_ceil(left);
            let mut attempt = remaining;
            let found = loop {
                let part = Query {
                    amount: attempt,
                    ..query
                };
                self.begin(graph);
                self.mark_excluded(graph, constraints, (query.source, query.destination));
                if let Some(nodes) = self.single(graph, &part, constraints.max_hops) {
                    break Some(nodes);
                }
                if attempt == floor {
                    break None;
                }
                attempt = (attempt / 2).max(floor);
            };
            let Some(nodes) = found else {
                return Err(RouteError::NoRoute);
            };
            let capacity = self.path_capacity(graph, &nodes);
            let carried = remaining.min(capacity);
            if carried == 0 {
                return Err(RouteError::NoRoute);
            }
            let route = self
                .finish_route(graph, &nodes, carried)
                .ok_or(RouteError::NoRoute)?;
            self.consume(graph, &nodes, carried)
                .ok_or(RouteError::NoRoute)?;
            remaining -= carried;
            routes.push(route);
        }
        if remaining > 0 {
            return Err(RouteError::NoRoute);
        }
        Ok(routes)
    }

    /// The original Offset search, kept as a baseline: plain BFS for the fewest hops over arcs
    /// whose capacity is at least `amount`, ignoring fees. The route it returns may not carry
    /// the amount once fees are added (its `capacity` then is below `amount`).
    pub fn bfs_route(
        &mut self,
        graph: &CurrencyGraph,
        source: &PublicKey,
        destination: &PublicKey,
        amount: Credits,
        constraints: &Constraints,
    ) -> Result<Route, RouteError> {
        let query = self.prepare(graph, source, destination, amount, constraints)?;
        let generation = self.generation;
        self.frontier.clear();
        self.frontier.push(query.source);
        self.seen[query.source as usize] = generation;
        self.parent[query.source as usize] = NONE;
        let mut head = 0;
        let mut found = false;
        while let Some(&node) = self.frontier.get(head) {
            head += 1;
            if node == query.destination {
                found = true;
                break;
            }
            for side in graph.neighbours(node) {
                let next = side.peer;
                if side.send < query.amount
                    || self.seen[next as usize] == generation
                    || self.is_excluded(node, next)
                {
                    continue;
                }
                self.seen[next as usize] = generation;
                self.parent[next as usize] = node;
                self.frontier.push(next);
            }
        }
        if !found {
            return Err(RouteError::NoRoute);
        }
        let mut nodes = vec![query.destination];
        while let Some(&last) = nodes.last() {
            let up = self.parent[last as usize];
            if up == NONE {
                break;
            }
            nodes.push(up);
        }
        nodes.reverse();
        if nodes.len() > constraints.max_hops + 1 {
            return Err(RouteError::NoRoute);
        }
        let capacity = self.path_capacity(graph, &nodes);
        let fees = path_needs(graph, &nodes, query.amount)
            .and_then(|needs| needs.first().copied())
            .map_or(0, |first| first - query.amount);
        Ok(Route {
            nodes: resolve(graph, &nodes),
            amount,
            fees: Credits(fees),
            capacity: Credits(capacity),
        })
    }

    /// The largest bottleneck capacity of any path from buyer to seller, ignoring fees and
    /// hop limits: an upper bound on what one route can carry (the "widest path").
    pub fn widest_path(
        &mut self,
        graph: &CurrencyGraph,
        source: &PublicKey,
        destination: &PublicKey,
    ) -> Result<Credits, RouteError> {
        let query = self.prepare(
            graph,
            source,
            destination,
            Credits(1),
            &Constraints::default(),
        )?;
        let generation = self.generation;
        let mut heap: BinaryHeap<(u128, NodeIx)> = BinaryHeap::new();
        self.label[query.source as usize] = u128::MAX;
        self.seen[query.source as usize] = generation;
        heap.push((u128::MAX, query.source));
        while let Some((width, node)) = heap.pop() {
            if width < self.label[node as usize] || self.other_seen[node as usize] == generation {
                continue;
            }
            self.other_seen[node as usize] = generation;
            if node == query.destination {
                return Ok(Credits(width.min(Credits::MAX.0)));
            }
            for side in graph.neighbours(node) {
                let next = side.peer as usize;
                let through = width.min(side.send);
                if through > 0 && (self.seen[next] != generation || through > self.label[next]) {
                    self.seen[next] = generation;
                    self.label[next] = through;
                    heap.push((through, side.peer));
                }
            }
        }
        Ok(Credits::ZERO)
    }

    /// Maximum flow from buyer to seller ignoring fees (Dinic), stopping once `limit` is
    /// reached: an upper bound on what any set of routes can carry. Costs milliseconds on
    /// large graphs; meant for benchmarks and diagnostics, not for every query.
    pub fn max_flow(
        &mut self,
        graph: &CurrencyGraph,
        source: &PublicKey,
        destination: &PublicKey,
        limit: Credits,
    ) -> Result<Credits, RouteError> {
        let query = self.prepare(graph, source, destination, limit, &Constraints::default())?;
        let size = graph.capacity_hint();
        // Net flow per undirected edge, oriented from the smaller handle to the larger.
        let mut flow: HashMap<Arc, i128> = HashMap::new();
        let residual = |flow: &HashMap<Arc, i128>, from: NodeIx, side: &Neighbour| -> u128 {
            let (key, sign) = if from < side.peer {
                ((from, side.peer), 1i128)
            } else {
                ((side.peer, from), -1)
            };
            let net = flow.get(&key).copied().unwrap_or(0) * sign;
            if net >= 0 {
                side.send.saturating_sub(net.unsigned_abs())
            } else {
                side.send.saturating_add(net.unsigned_abs())
            }
        };
        let mut total: u128 = 0;
        let mut level = vec![u32::MAX; size];
        let mut cursor = vec![0usize; size];
        while total < query.amount {
            level.iter_mut().for_each(|l| *l = u32::MAX);
            level[query.source as usize] = 0;
            let mut queue = vec![query.source];
            let mut head = 0;
            while let Some(&node) = queue.get(head) {
                head += 1;
                if node == query.destination {
                    break;
                }
                for side in graph.neighbours(node) {
                    if level[side.peer as usize] == u32::MAX && residual(&flow, node, side) > 0 {
                        level[side.peer as usize] = level[node as usize] + 1;
                        queue.push(side.peer);
                    }
                }
            }
            if level[query.destination as usize] == u32::MAX {
                break;
            }
            cursor.iter_mut().for_each(|c| *c = 0);
            // Blocking flow by repeated advance/retreat from the source.
            let mut stack: Vec<NodeIx> = vec![query.source];
            while total < query.amount {
                let Some(&node) = stack.last() else { break };
                if node == query.destination {
                    // Augment along the stack by its bottleneck.
                    let mut bottleneck = query.amount - total;
                    for pair in stack.windows(2) {
                        let side = side_between(graph, pair[0], pair[1]);
                        bottleneck = bottleneck.min(residual(&flow, pair[0], &side));
                    }
                    for pair in stack.windows(2) {
                        let (key, sign) = if pair[0] < pair[1] {
                            ((pair[0], pair[1]), 1i128)
                        } else {
                            ((pair[1], pair[0]), -1)
                        };
                        let delta = i128::try_from(bottleneck).unwrap_or(i128::MAX);
                        let entry = flow.entry(key).or_insert(0);
                        *entry = entry.saturating_add(delta * sign);
                    }
                    total += bottleneck;
                    stack.truncate(1);
                    continue;
                }
                let sides = graph.neighbours(node);
                let mut advanced = false;
                while let Some(side) = sides.get(cursor[node as usize]) {
                    if level[side.peer as usize] == level[node as usize] + 1
                        && residual(&flow, node, side) > 0
                    {
                        stack.push(side.peer);
                        advanced = true;
                        break;
                    }
                    cursor[node as usize] += 1;
                }
                if !advanced {
                    level[node as usize] = u32::MAX; // dead end for this phase
                    stack.pop();
                    if let Some(&up) = stack.last() {
                        cursor[up as usize] += 1;
                    }
                }
            }
        }
        Ok(Credits(total.min(query.amount)))
    }

    // ---- internals -------------------------------------------------------------------------

    fn prepare(
        &mut self,
        graph: &CurrencyGraph,
        source: &PublicKey,
        destination: &PublicKey,
        amount: Credits,
        constraints: &Constraints,
    ) -> Result<Query, RouteError> {
        if amount.0 == 0 {
            return Err(RouteError::ZeroAmount);
        }
        if source == destination {
            return Err(RouteError::SameEndpoints);
        }
        let source = graph.node(source).ok_or(RouteError::UnknownSource)?;
        let destination = graph
            .node(destination)
            .ok_or(RouteError::UnknownDestination)?;
        self.used.clear();
        self.work = 0;
        self.begin(graph);
        self.mark_excluded(graph, constraints, (source, destination));
        Ok(Query {
            source,
            destination,
            amount: amount.0.min(Credits::MAX.0),
        })
    }

    /// Starts a new search generation, growing the buffers to the graph.
    fn begin(&mut self, graph: &CurrencyGraph) {
        let size = graph.capacity_hint();
        if self.seen.len() < size {
            self.seen.resize(size, 0);
            self.label.resize(size, 0);
            self.hops.resize(size, 0);
            self.parent.resize(size, NONE);
            self.other_seen.resize(size, 0);
            self.relaxed_forward.resize(size, 0);
            self.relaxed_backward.resize(size, 0);
            self.forward_parent.resize(size, NONE);
            self.relaxed_parent.resize(size, NONE);
            self.relaxed_depth.resize(size, 0);
            self.forward_cost.resize(size, 0);
            self.floor_done_forward.resize(size, 0);
            self.floor_done_backward.resize(size, 0);
            self.excluded.resize(size, 0);
            self.touched.resize(size, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old stamps could collide, so clear them once every 2³² searches.
            for buffer in [
                &mut self.seen,
                &mut self.other_seen,
                &mut self.excluded,
                &mut self.touched,
            ] {
                buffer.iter_mut().for_each(|stamp| *stamp = 0);
            }
            self.generation = 1;
        }
    }

    fn mark_excluded(
        &mut self,
        graph: &CurrencyGraph,
        constraints: &Constraints,
        endpoints: (NodeIx, NodeIx),
    ) {
        let generation = self.generation;
        for key in &constraints.exclude_nodes {
            if let Some(node) = graph.node(key) {
                self.excluded[node as usize] = generation;
            }
        }
        // The buyer and the seller cannot be excluded from their own route.
        for endpoint in [endpoints.0, endpoints.1] {
            if let Some(stamp) = self.excluded.get_mut(endpoint as usize) {
                if *stamp == generation {
                    *stamp = 0;
                }
            }
        }
        self.excluded_arcs.clear();
        for (from, to) in &constraints.exclude_arcs {
            if let (Some(from), Some(to)) = (graph.node(from), graph.node(to)) {
                self.excluded_arcs.push((from, to));
            }
        }
        // Residual bookkeeping from an earlier round of a multi-route query.
        for (from, to) in self.used.keys() {
            self.touched[*from as usize] = generation;
            self.touched[*to as usize] = generation;
        }
    }

    fn is_excluded(&self, from: NodeIx, to: NodeIx) -> bool {
        self.excluded[to as usize] == self.generation
            || self.excluded[from as usize] == self.generation
            || (!self.excluded_arcs.is_empty() && self.excluded_arcs.contains(&(from, to)))
    }

    /// Capacity of `from → to` (the arc stored as `side` at `to`, i.e. `side.recv`), less
    /// what earlier routes of this query already use.
    fn arc_capacity_into(&self, to: NodeIx, side: &Neighbour) -> u128 {
        if self.touched[to as usize] == self.generation {
            if let Some(used) = self.used.get(&(side.peer, to)) {
                return side.recv.saturating_sub(*used);
            }
        }
        side.recv
    }

    /// Capacity of `from → to` (the arc stored as `side` at `from`, i.e. `side.send`), less
    /// what earlier routes of this query already use.
    fn arc_capacity_out(&self, from: NodeIx, side: &Neighbour) -> u128 {
        if self.touched[from as usize] == self.generation {
            if let Some(used) = self.used.get(&(from, side.peer)) {
                return side.send.saturating_sub(*used);
            }
        }
        side.send
    }

    /// Cheap necessary condition for multi-route: the buyer's outgoing and the seller's
    /// incoming capacity must each add up to the amount.
    fn endpoints_can_carry(&self, graph: &CurrencyGraph, query: &Query) -> bool {
        let out: u128 = graph
            .neighbours(query.source)
            .iter()
            .filter(|side| !self.is_excluded(query.source, side.peer))
            .fold(0u128, |sum, side| sum.saturating_add(side.send));
        let into: u128 = graph
            .neighbours(query.destination)
            .iter()
            .filter(|side| !self.is_excluded(side.peer, query.destination))
            .fold(0u128, |sum, side| sum.saturating_add(side.recv));
        out >= query.amount && into >= query.amount
    }

    /// The exact fewest-fee search; returns the node handles buyer → seller.
    fn single(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
        max_hops: usize,
    ) -> Option<Vec<NodeIx>> {
        let max_hops = max_hops.clamp(1, MAX_HOPS);
        let uniform = graph.uniform_flat_rate();
        // What the buyer would send over a known usable route: no cheaper route needs more.
        let mut bound = None;
        {
            let relaxed = self.relaxed_shortest_path(graph, query)?;
            if relaxed.len() <= max_hops + 1 && self.path_capacity(graph, &relaxed) >= query.amount
            {
                // With one flat fee everywhere, fees grow with hops only: the fewest-hop
                // route is the cheapest.
                if uniform.is_some() {
                    return Some(relaxed);
                }
                bound = path_needs(graph, &relaxed, query.amount)
                    .and_then(|needs| needs.first().copied());
            }
        }
        if let Some(rate) = uniform {
            // Fees depend only on the hop count: the level search is exact and bounded.
            return self.bidirectional_levels(graph, query, rate.flat.0, max_hops);
        }
        // Each fee is at least the fee on the bare amount. The route cheapest under those
        // floors (a bidirectional search, floors need no downstream amounts) is optimal when
        // its real fees equal its floors — always so for flat rates.
        if let Some((nodes, key)) = self.cheapest_floor_route(graph, query) {
            if let Some(total) = path_needs(graph, &nodes, query.amount)
                .and_then(|needs| needs.first().copied())
                .filter(|_| self.path_capacity(graph, &nodes) >= query.amount)
            {
                let floor = key / HOP_SCALE;
                let exact = (nodes.len() as u128) < HOP_SCALE && total - query.amount == floor;
                if exact && nodes.len() <= max_hops + 1 {
                    return Some(nodes);
                }
                bound = Some(bound.map_or(total, |known| known.min(total)));
            }
        }
        let nodes = match bound {
            Some(total) if total - query.amount <= MAX_BUCKET_SPAN => {
                self.backward_buckets(graph, query, total)?
            }
            _ => self.backward_dijkstra(graph, query, bound)?,
        };
        if nodes.len() <= max_hops + 1 {
            return Some(nodes);
        }
        self.hop_bounded(graph, query, max_hops)
    }

    /// Bidirectional BFS over arcs of capacity ≥ amount, a full level at a time on the cheaper
    /// side: the fewest-hop route among those whose every arc carries at least the amount
    /// (fees ignored). No route at all means no route with fees either — most failing queries
    /// end here after touching a handful of nodes — and its hop count is a lower bound.
    fn relaxed_shortest_path(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
    ) -> Option<Vec<NodeIx>> {
        let generation = self.next_relaxed_stamp();
        let excluded_generation = self.generation;
        let threshold = query.amount;
        let mut forward = std::mem::take(&mut self.frontier);
        let mut backward = std::mem::take(&mut self.other_frontier);
        let mut next = std::mem::take(&mut self.next_frontier);
        forward.clear();
        backward.clear();
        forward.push(query.source);
        backward.push(query.destination);
        self.relaxed_forward[query.source as usize] = generation;
        self.relaxed_backward[query.destination as usize] = generation;
        self.forward_parent[query.source as usize] = NONE;
        self.relaxed_parent[query.destination as usize] = NONE;
        self.relaxed_depth[query.source as usize] = 0;
        self.relaxed_depth[query.destination as usize] = 0;
        let cost = |frontier: &[NodeIx]| -> usize {
            frontier.iter().map(|n| graph.neighbours(*n).len()).sum()
        };
        // The best meeting: arc (a → b), a reached forward, b backward, and the route length.
        let mut best: Option<(NodeIx, NodeIx, u32)> = None;
        while best.is_none() && !forward.is_empty() && !backward.is_empty() {
            next.clear();
            let expand_forward = cost(&forward) <= cost(&backward);
            let frontier = if expand_forward { &forward } else { &backward };
            for &node in frontier.iter() {
                let depth = self.relaxed_depth[node as usize];
                for side in graph.neighbours(node) {
                    let (capacity, from, to) = if expand_forward {
                        (self.arc_capacity_out(node, side), node, side.peer)
                    } else {
                        (self.arc_capacity_into(node, side), side.peer, node)
                    };
                    let peer = side.peer as usize;
                    let (mine, theirs) = if expand_forward {
                        (&self.relaxed_forward, &self.relaxed_backward)
                    } else {
                        (&self.relaxed_backward, &self.relaxed_forward)
                    };
                    if capacity < threshold
                        || mine[peer] == generation
                        || self.excluded[peer] == excluded_generation
                        || (!self.excluded_arcs.is_empty()
                            && self.excluded_arcs.contains(&(from, to)))
                    {
                        continue;
                    }
                    if theirs[peer] == generation {
                        // Complete the level: another meeting in it may be shorter.
                        let length = depth + 1 + self.relaxed_depth[peer];
                        if best.is_none_or(|(_, _, shortest)| length < shortest) {
                            best = Some((from, to, length));
                        }
                        continue;
                    }
                    if expand_forward {
                        self.relaxed_forward[peer] = generation;
                        self.forward_parent[peer] = node;
                    } else {
                        self.relaxed_backward[peer] = generation;
                        self.relaxed_parent[peer] = node;
                    }
                    self.relaxed_depth[peer] = depth + 1;
                    next.push(side.peer);
                }
            }
            if expand_forward {
                std::mem::swap(&mut forward, &mut next);
            } else {
                std::mem::swap(&mut backward, &mut next);
            }
        }
        self.frontier = forward;
        self.other_frontier = backward;
        self.next_frontier = next;
        let (from, to, _) = best?;
        join_route(&self.forward_parent, from, &self.relaxed_parent, to, query)
    }

    /// Exact bidirectional search when every mediator charges the same flat fee `flat`.
    ///
    /// On a route of `H` arcs, the arc into a node `d` hops before the seller carries
    /// `amount + d·flat`, so the backward side's thresholds do not depend on `H`: its BFS
    /// levels (each node first reached at its least demanding depth) are computed once and
    /// extended on demand. The forward side's thresholds do (`amount + (H − 1 − k)·flat` for
    /// the `k`-th arc), so it is redone for `H = 1, 2, …`: once no route shorter than `H`
    /// exists, a node's first forward depth is its depth on every route of exactly `H` arcs
    /// (a deeper occurrence would give a shorter valid route), so plain BFS marking stays
    /// exact. The first `H` at which the two sides meet is the fewest-hop, fewest-fee route.
    /// Each round grows whichever side is cheaper, so on small-world graphs both stay small.
    fn bidirectional_levels(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
        flat: u128,
        max_hops: usize,
    ) -> Option<Vec<NodeIx>> {
        let generation = self.generation;
        let mut backward = std::mem::take(&mut self.other_frontier);
        let mut next = std::mem::take(&mut self.next_frontier);
        let mut forward = std::mem::take(&mut self.frontier);
        backward.clear();
        backward.push(query.destination);
        self.seen[query.destination as usize] = generation;
        self.hops[query.destination as usize] = 0;
        self.parent[query.destination as usize] = NONE;
        let mut backward_depth = 0usize;
        let mut forward_cost = graph.neighbours(query.source).len();
        let mut meeting = None;
        'rounds: for total in 1..=max_hops {
            // Grow the backward side by one level when it is the cheaper side (or must).
            let backward_cost: usize = backward.iter().map(|n| graph.neighbours(*n).len()).sum();
            if backward_depth < total
                && (backward_cost <= forward_cost || backward_depth + 1 == total)
            {
                let Some(needed) = amount_plus_fees(query.amount, flat, backward_depth) else {
                    break;
                };
                next.clear();
                for &node in backward.iter() {
                    if self.over_budget(graph.neighbours(node).len()) {
                        break 'rounds;
                    }
                    for side in graph.neighbours(node) {
                        let previous = side.peer;
                        if self.seen[previous as usize] == generation
                            || needed > self.arc_capacity_into(node, side)
                            || self.is_excluded(previous, node)
                        {
                            continue;
                        }
                        self.seen[previous as usize] = generation;
                        self.hops[previous as usize] = (backward_depth + 1) as u32;
                        self.parent[previous as usize] = node;
                        if previous == query.source {
                            meeting = Some((query.source, NONE));
                            break 'rounds;
                        }
                        next.push(previous);
                    }
                }
                std::mem::swap(&mut backward, &mut next);
                backward_depth += 1;
                if backward.is_empty() {
                    break; // every node that could reach the seller is known: no route
                }
            }
            // Redo the forward side for exactly `total` arcs.
            let forward_depth = total - backward_depth;
            if forward_depth == 0 {
                continue;
            }
            let stamp = self.next_relaxed_stamp();
            forward.clear();
            forward.push(query.source);
            self.relaxed_forward[query.source as usize] = stamp;
            self.forward_parent[query.source as usize] = NONE;
            for depth in 0..forward_depth {
                // What growing the forward side once more would cost next round.
                forward_cost = forward.iter().map(|n| graph.neighbours(*n).len()).sum();
                let Some(needed) = amount_plus_fees(query.amount, flat, total - 1 - depth) else {
                    break 'rounds;
                };
                next.clear();
                for &node in forward.iter() {
                    if self.over_budget(graph.neighbours(node).len()) {
                        break 'rounds;
                    }
                    for side in graph.neighbours(node) {
                        let peer = side.peer;
                        if self.relaxed_forward[peer as usize] == stamp
                            || needed > self.arc_capacity_out(node, side)
                            || self.is_excluded(node, peer)
                        {
                            continue;
                        }
                        self.relaxed_forward[peer as usize] = stamp;
                        self.forward_parent[peer as usize] = node;
                        if self.seen[peer as usize] == generation
                            && self.hops[peer as usize] as usize <= total - 1 - depth
                        {
                            meeting = Some((peer, node));
                            break 'rounds;
                        }
                        next.push(peer);
                    }
                }
                std::mem::swap(&mut forward, &mut next);
                if forward.is_empty() {
                    break;
                }
            }
        }
        self.frontier = forward;
        self.other_frontier = backward;
        self.next_frontier = next;
        let (meet, _) = meeting?;
        // Buyer … (node before meet) along forward parents, then meet … seller backward.
        let before_meet = if meet == query.source {
            NONE
        } else {
            self.forward_parent[meet as usize]
        };
        join_route(&self.forward_parent, before_meet, &self.parent, meet, query)
    }

    /// Bidirectional Dijkstra over arcs of capacity ≥ amount where entering a mediator costs
    /// its fee on the bare amount (a floor of its real fee, which is charged on the amount
    /// plus downstream fees), ties broken by hops. Returns the cheapest route under these
    /// floors and its key `floor total × HOP_SCALE + hops`; no route costs less than the floor
    /// total.
    fn cheapest_floor_route(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
    ) -> Option<(Vec<NodeIx>, u128)> {
        let stamp = self.next_relaxed_stamp();
        let amount = Credits(query.amount);
        let (source, destination) = (query.source, query.destination);
        let mut forward = std::mem::take(&mut self.heap);
        let mut backward = std::mem::take(&mut self.heap_back);
        forward.clear();
        backward.clear();
        self.relaxed_forward[source as usize] = stamp;
        self.forward_cost[source as usize] = 0;
        self.forward_parent[source as usize] = NONE;
        forward.push(Reverse((0, 0, source)));
        self.relaxed_backward[destination as usize] = stamp;
        self.label[destination as usize] = 0;
        self.relaxed_parent[destination as usize] = NONE;
        backward.push(Reverse((0, 0, destination)));
        // The best meeting so far: (floor total, node reached from both sides).
        let mut best: Option<(u128, NodeIx)> = None;
        loop {
            let top = |heap: &BinaryHeap<Reverse<(u128, u32, NodeIx)>>| {
                heap.peek().map(|Reverse((cost, _, _))| *cost)
            };
            let (top_forward, top_backward) = (top(&forward), top(&backward));
            if top_forward.is_none() && top_backward.is_none() {
                break;
            }
            // An exhausted side counts as infinitely far: the other may still meet it.
            let (f, b) = (
                top_forward.unwrap_or(u128::MAX),
                top_backward.unwrap_or(u128::MAX),
            );
            if best.is_some_and(|(total, _)| f.saturating_add(b) >= total) {
                break; // no meeting can beat the best any more
            }
            let expand_forward = top_forward.is_some()
                && (top_backward.is_none() || forward.len() <= backward.len());
            let heap = if expand_forward {
                &mut forward
            } else {
                &mut backward
            };
            let Some(Reverse((cost, _, node))) = heap.pop() else {
                break;
            };
            let at = node as usize;
            let (done, costs) = if expand_forward {
                (&mut self.floor_done_forward, &self.forward_cost)
            } else {
                (&mut self.floor_done_backward, &self.label)
            };
            if done[at] == stamp || costs[at] != cost {
                continue;
            }
            done[at] = stamp;
            if self.over_budget(graph.neighbours(node).len()) {
                break;
            }
            // Neither end is a mediator: the seller does not forward, the buyer is not re-entered.
            if (expand_forward && node == destination) || (!expand_forward && node == source) {
                continue;
            }
            for side in graph.neighbours(node) {
                let other = side.peer;
                let (from, to) = if expand_forward {
                    (node, other)
                } else {
                    (other, node)
                };
                let capacity = if expand_forward {
                    self.arc_capacity_out(node, side)
                } else {
                    self.arc_capacity_into(node, side)
                };
                if capacity < query.amount || self.is_excluded(from, to) {
                    continue;
                }
                // The fee of `to` for requests from `from`, on the bare amount.
                let fee = if to == destination {
                    Some(Credits::ZERO)
                } else if expand_forward {
                    side.peer_rate.fee(amount)
                } else {
                    side.rate.fee(amount)
                };
                let Some(fee) = fee else { continue };
                // Lexicographic (fee, hops) in one number: ties go to fewer hops.
                let through =
                    cost.saturating_add(fee.0.saturating_mul(HOP_SCALE).saturating_add(1));
                let at_other = other as usize;
                let (seen, costs, parents, heap) = if expand_forward {
                    (
                        &mut self.relaxed_forward,
                        &mut self.forward_cost,
                        &mut self.forward_parent,
                        &mut forward,
                    )
                } else {
                    (
                        &mut self.relaxed_backward,
                        &mut self.label,
                        &mut self.relaxed_parent,
                        &mut backward,
                    )
                };
                if seen[at_other] != stamp || through < costs[at_other] {
                    seen[at_other] = stamp;
                    costs[at_other] = through;
                    parents[at_other] = node;
                    heap.push(Reverse((through, 0, other)));
                }
                // A node seen from both sides closes a route: forward part + backward part.
                if self.relaxed_forward[at_other] == stamp
                    && self.relaxed_backward[at_other] == stamp
                {
                    let total = self.forward_cost[at_other].saturating_add(self.label[at_other]);
                    if best.is_none_or(|(known, _)| total < known) {
                        best = Some((total, other));
                    }
                }
            }
        }
        self.heap = forward;
        self.heap_back = backward;
        let (total, meet) = best?;
        let mut nodes = Vec::new();
        let mut at = meet;
        while at != NONE && nodes.len() <= MAX_HOPS + 1 {
            nodes.push(at);
            at = self.forward_parent[at as usize];
        }
        nodes.reverse();
        let mut at = self.relaxed_parent[meet as usize];
        while at != NONE && nodes.len() <= 2 * MAX_HOPS + 2 {
            nodes.push(at);
            at = self.relaxed_parent[at as usize];
        }
        let valid = nodes.first() == Some(&source)
            && nodes.last() == Some(&destination)
            && nodes.iter().collect::<HashSet<_>>().len() == nodes.len();
        valid.then_some((nodes, total))
    }

    /// Counts `arcs` against [`MAX_SEARCH_WORK`]; true once the query is over it.
    fn over_budget(&mut self, arcs: usize) -> bool {
        self.work = self.work.saturating_add(arcs);
        self.work > MAX_SEARCH_WORK
    }

    /// A fresh stamp for the relaxed and forward buffers (cleared once every 2³² uses).
    fn next_relaxed_stamp(&mut self) -> u32 {
        self.relaxed_generation = self.relaxed_generation.wrapping_add(1);
        if self.relaxed_generation == 0 {
            self.relaxed_forward.iter_mut().for_each(|stamp| *stamp = 0);
            self.relaxed_backward
                .iter_mut()
                .for_each(|stamp| *stamp = 0);
            self.floor_done_forward
                .iter_mut()
                .for_each(|stamp| *stamp = 0);
            self.floor_done_backward
                .iter_mut()
                .for_each(|stamp| *stamp = 0);
            self.relaxed_generation = 1;
        }
        self.relaxed_generation
    }

    /// Backward Dijkstra from the seller on "amount that must enter the arc", lexicographic
    /// with hop count; stops when the buyer is settled.
    /// Labels above `bound` (the cost of a route already known) are never explored: labels only
    /// grow towards the buyer, so they cannot lead to a cheaper route.
    fn backward_dijkstra(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
        bound: Option<u128>,
    ) -> Option<Vec<NodeIx>> {
        let bound = bound.unwrap_or(u128::MAX);
        let generation = self.generation;
        let mut heap = std::mem::take(&mut self.heap);
        heap.clear();
        let destination = query.destination as usize;
        self.seen[destination] = generation;
        self.label[destination] = query.amount;
        self.hops[destination] = 0;
        self.parent[destination] = NONE;
        heap.push(Reverse((query.amount, 0, query.destination)));
        let mut found = false;
        while let Some(Reverse((label, hops, node))) = heap.pop() {
            let at = node as usize;
            if self.other_seen[at] == generation || label != self.label[at] || hops != self.hops[at]
            {
                continue; // settled already, or a stale entry
            }
            self.other_seen[at] = generation;
            if node == query.source {
                found = true;
                break;
            }
            // No hop cap here: the cheapest route may be long, and `single` then falls back to
            // the exact hop-bounded search.
            if self.over_budget(graph.neighbours(node).len()) {
                break;
            }
            for side in graph.neighbours(node) {
                let previous = side.peer;
                let before = previous as usize;
                if self.other_seen[before] == generation || self.is_excluded(previous, node) {
                    continue;
                }
                // What `previous` must send into `node`: the seller takes the amount as is,
                // a mediator adds the fee it charges for requests from `previous`.
                let needed = if node == query.destination {
                    Some(label)
                } else {
                    side.rate.incoming_for(Credits(label)).map(|c| c.0)
                };
                let Some(needed) = needed else { continue };
                if needed > bound || needed > self.arc_capacity_into(node, side) {
                    continue;
                }
                let better = self.seen[before] != generation
                    || needed < self.label[before]
                    || (needed == self.label[before] && hops + 1 < self.hops[before]);
                if better {
                    self.seen[before] = generation;
                    self.label[before] = needed;
                    self.hops[before] = hops + 1;
                    self.parent[before] = node;
                    heap.push(Reverse((needed, hops + 1, previous)));
                }
            }
        }
        self.heap = heap;
        if !found {
            return None;
        }
        let mut nodes = vec![query.source];
        while let Some(&last) = nodes.last() {
            let next = self.parent[last as usize];
            if next == NONE || nodes.len() > graph.capacity_hint() {
                break;
            }
            nodes.push(next);
        }
        (nodes.last() == Some(&query.destination)).then_some(nodes)
    }

    /// The same search as [`Router::backward_dijkstra`] when a known route bounds the fees by a
    /// small integer: labels are `amount + k` for `k ≤ span`, so a bucket per `k` (Dial's
    /// algorithm) replaces the heap over fees; within a bucket a small heap takes entries
    /// fewest hops first, so equal-fee ties prefer fewer hops as in the heap version.
    fn backward_buckets(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
        bound: u128,
    ) -> Option<Vec<NodeIx>> {
        let generation = self.generation;
        let span = (bound - query.amount) as usize;
        let mut buckets = std::mem::take(&mut self.buckets);
        buckets.iter_mut().take(span + 1).for_each(Vec::clear);
        if buckets.len() <= span {
            buckets.resize_with(span + 1, Vec::new);
        }
        let destination = query.destination as usize;
        self.seen[destination] = generation;
        self.label[destination] = query.amount;
        self.hops[destination] = 0;
        self.parent[destination] = NONE;
        buckets[0].push((0, query.destination));
        let mut found = false;
        // Within one bucket (equal fees), entries are taken fewest hops first.
        let mut current: BinaryHeap<Reverse<(u32, NodeIx)>> = BinaryHeap::new();
        'buckets: for offset in 0..=span {
            let label = query.amount + offset as u128;
            current.clear();
            current.extend(buckets[offset].drain(..).map(Reverse));
            while let Some(Reverse((hops, node))) = current.pop() {
                let at = node as usize;
                if self.other_seen[at] == generation
                    || self.label[at] != label
                    || self.hops[at] != hops
                {
                    continue; // settled already, or a stale entry
                }
                self.other_seen[at] = generation;
                if node == query.source {
                    found = true;
                    break 'buckets;
                }
                if self.over_budget(graph.neighbours(node).len()) {
                    break 'buckets;
                }
                for side in graph.neighbours(node) {
                    let previous = side.peer;
                    let before = previous as usize;
                    if self.other_seen[before] == generation || self.is_excluded(previous, node) {
                        continue;
                    }
                    let needed = if node == query.destination {
                        Some(label)
                    } else {
                        side.rate.incoming_for(Credits(label)).map(|c| c.0)
                    };
                    let Some(needed) = needed else { continue };
                    if needed > bound || needed > self.arc_capacity_into(node, side) {
                        continue;
                    }
                    let better = self.seen[before] != generation
                        || needed < self.label[before]
                        || (needed == self.label[before] && hops + 1 < self.hops[before]);
                    if better {
                        self.seen[before] = generation;
                        self.label[before] = needed;
                        self.hops[before] = hops + 1;
                        self.parent[before] = node;
                        if needed == label {
                            current.push(Reverse((hops + 1, previous)));
                        } else {
                            buckets[(needed - query.amount) as usize].push((hops + 1, previous));
                        }
                    }
                }
            }
        }
        self.buckets = buckets;
        if !found {
            return None;
        }
        let mut nodes = vec![query.source];
        while let Some(&last) = nodes.last() {
            let next = self.parent[last as usize];
            if next == NONE || nodes.len() > graph.capacity_hint() {
                break;
            }
            nodes.push(next);
        }
        (nodes.last() == Some(&query.destination)).then_some(nodes)
    }

    /// Exact fewest-fee search among routes of at most `max_hops` arcs: Bellman–Ford by
    /// layers over the nodes whose label improved in the previous layer. Only used when the
    /// unconstrained fewest-fee route is too long.
    fn hop_bounded(
        &mut self,
        graph: &CurrencyGraph,
        query: &Query,
        max_hops: usize,
    ) -> Option<Vec<NodeIx>> {
        // history[node] = (layer, label, next) in increasing layer order.
        let mut history: HashMap<NodeIx, Vec<(usize, u128, NodeIx)>> = HashMap::new();
        let mut best: HashMap<NodeIx, u128> = HashMap::new();
        best.insert(query.destination, query.amount);
        history.insert(query.destination, vec![(0, query.amount, NONE)]);
        let mut active = vec![query.destination];
        for layer in 1..=max_hops {
            let mut improved: HashMap<NodeIx, (u128, NodeIx)> = HashMap::new();
            for &node in &active {
                if node == query.source {
                    continue; // the buyer does not forward
                }
                let label = best.get(&node).copied().unwrap_or(u128::MAX);
                if self.over_budget(graph.neighbours(node).len()) {
                    return None;
                }
                for side in graph.neighbours(node) {
                    let previous = side.peer;
                    if previous == query.destination || self.is_excluded(previous, node) {
                        continue;
                    }
                    let needed = if node == query.destination {
                        Some(label)
                    } else {
                        side.rate.incoming_for(Credits(label)).map(|c| c.0)
                    };
                    let Some(needed) = needed else { continue };
                    if needed > self.arc_capacity_into(node, side) {
                        continue;
                    }
                    let current = improved
                        .get(&previous)
                        .map(|(l, _)| *l)
                        .or_else(|| best.get(&previous).copied())
                        .unwrap_or(u128::MAX);
                    if needed < current {
                        improved.insert(previous, (needed, node));
                    }
                }
            }
            if improved.is_empty() {
                break;
            }
            active.clear();
            for (node, (label, next)) in improved {
                best.insert(node, label);
                history.entry(node).or_default().push((layer, label, next));
                active.push(node);
            }
        }
        best.get(&query.source)?;
        // Walk forward: at each step use the entry of the latest layer that fits the budget.
        let mut nodes = vec![query.source];
        let mut visited = HashSet::from([query.source]);
        let mut budget = max_hops;
        while let Some(&last) = nodes.last() {
            if last == query.destination {
                return Some(nodes);
            }
            let entry = history
                .get(&last)?
                .iter()
                .rev()
                .find(|(layer, _, _)| *layer <= budget)?;
            let (layer, _, next) = *entry;
            if next == NONE || !visited.insert(next) || layer == 0 {
                return None;
            }
            budget = layer - 1;
            nodes.push(next);
        }
        None
    }

    /// The most the seller can receive over `nodes` given current (residual) capacities.
    fn path_capacity(&self, graph: &CurrencyGraph, nodes: &[NodeIx]) -> u128 {
        let mut carried = u128::MAX;
        for (index, pair) in nodes.windows(2).enumerate() {
            let side = side_between(graph, pair[1], pair[0]);
            let capacity = self.arc_capacity_into(pair[1], &side);
            carried = if index == 0 {
                capacity
            } else {
                // The mediator pair[0] keeps its fee for requests from nodes[index - 1].
                let rate = side_between(graph, pair[0], nodes[index - 1]).rate;
                match rate.max_forwardable(Credits(carried)) {
                    Some(forwardable) => forwardable.0.min(capacity),
                    None => 0,
                }
            };
        }
        carried.min(Credits::MAX.0)
    }

    /// Subtracts what sending `amount` over `nodes` uses from the residual capacities.
    fn consume(&mut self, graph: &CurrencyGraph, nodes: &[NodeIx], amount: u128) -> Option<()> {
        let needs = path_needs(graph, nodes, amount)?;
        for (pair, need) in nodes.windows(2).zip(needs) {
            let used = self.used.entry((pair[0], pair[1])).or_insert(0);
            *used = used.checked_add(need)?;
        }
        Some(())
    }

    fn finish_route(&self, graph: &CurrencyGraph, nodes: &[NodeIx], amount: u128) -> Option<Route> {
        let needs = path_needs(graph, nodes, amount)?;
        let total = *needs.first()?;
        Some(Route {
            nodes: resolve(graph, nodes),
            amount: Credits(amount),
            fees: Credits(total - amount),
            capacity: Credits(self.path_capacity(graph, nodes).max(amount)),
        })
    }
}

/// `amount + depth·flat`, or `None` past [`Credits::MAX`].
fn amount_plus_fees(amount: u128, flat: u128, depth: usize) -> Option<u128> {
    flat.checked_mul(depth as u128)
        .and_then(|fees| fees.checked_add(amount))
        .filter(|total| *total <= Credits::MAX.0)
}

/// Joins the two halves of a bidirectional search: the buyer … `from` part read backwards along
/// `forward_parent` (empty when `from` is `NONE`), then `to` … seller along `backward_parent`.
/// `None` unless the result runs from the query's source to its destination without repeats.
fn join_route(
    forward_parent: &[NodeIx],
    from: NodeIx,
    backward_parent: &[NodeIx],
    to: NodeIx,
    query: &Query,
) -> Option<Vec<NodeIx>> {
    let mut nodes = Vec::new();
    let mut at = from;
    while at != NONE && nodes.len() <= MAX_HOPS {
        nodes.push(at);
        at = forward_parent[at as usize];
    }
    nodes.reverse();
    let mut at = to;
    while at != NONE && nodes.len() <= MAX_HOPS + 1 {
        nodes.push(at);
        at = backward_parent[at as usize];
    }
    let valid = nodes.first() == Some(&query.source)
        && nodes.last() == Some(&query.destination)
        && nodes.iter().collect::<HashSet<_>>().len() == nodes.len();
    valid.then_some(nodes)
}

/// The amount on each arc of `nodes` when the seller receives `amount`: computed backwards,
/// each mediator adding the fee it charges for requests from its predecessor.
fn path_needs(graph: &CurrencyGraph, nodes: &[NodeIx], amount: u128) -> Option<Vec<u128>> {
    let arcs = nodes.len().checked_sub(1)?;
    let mut needs = vec![0u128; arcs];
    let mut carried = amount;
    for index in (0..arcs).rev() {
        if index + 1 < arcs {
            // nodes[index + 1] is a mediator; it charges for requests from nodes[index].
            let mediator = nodes[index + 1];
            let rate: FeeRate = side_between(graph, mediator, nodes[index]).rate;
            carried = rate.incoming_for(Credits(carried))?.0;
        }
        needs[index] = carried;
    }
    Some(needs)
}

/// `owner`'s side of the edge to `peer`. Routes are built from existing edges, so the edge is
/// there; an impossible miss yields a zero-capacity side, which no route can use.
fn side_between(graph: &CurrencyGraph, owner: NodeIx, peer: NodeIx) -> Neighbour {
    graph.side(owner, peer).copied().unwrap_or(Neighbour {
        peer,
        send: 0,
        recv: 0,
        rate: FeeRate::DEFAULT,
        peer_rate: FeeRate::DEFAULT,
    })
}

fn resolve(graph: &CurrencyGraph, nodes: &[NodeIx]) -> Vec<PublicKey> {
    nodes
        .iter()
        .filter_map(|node| graph.key(*node).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use offst_proto::Currency;
    use proptest::prelude::*;

    use super::*;
    use crate::graph::{CapacityGraph, Reported};

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn usd() -> Currency {
        Currency::new("USD").unwrap()
    }

    /// Builds a graph from undirected edges `(a, b, cap a→b, cap b→a)`; every node charges
    /// `rates[node]` (default 1 flat) for requests from any friend.
    fn build(edges: &[(u8, u8, u128, u128)], rates: &HashMap<u8, FeeRate>) -> CapacityGraph {
        let mut reports: HashMap<u8, Vec<(Currency, PublicKey, Reported)>> = HashMap::new();
        let rate = |n: &u8| rates.get(n).copied().unwrap_or(FeeRate::DEFAULT);
        for &(a, b, ab, ba) in edges {
            reports.entry(a).or_default().push((
                usd(),
                key(b),
                Reported {
                    send: Credits(ab),
                    recv: Credits(ba),
                    rate: rate(&a),
                },
            ));
            reports.entry(b).or_default().push((
                usd(),
                key(a),
                Reported {
                    send: Credits(ba),
                    recv: Credits(ab),
                    rate: rate(&b),
                },
            ));
        }
        let mut graph = CapacityGraph::new(1_000);
        for (node, entries) in reports {
            graph.set_node(key(node), entries).unwrap();
        }
        graph
    }

    fn route(graph: &CapacityGraph, from: u8, to: u8, amount: u128) -> Result<Route, RouteError> {
        Router::new().fewest_fee_route(
            graph.currency(&usd()).unwrap(),
            &key(from),
            &key(to),
            Credits(amount),
            &Constraints::default(),
        )
    }

    #[test]
    fn each_mediator_fee_must_fit_in_the_capacity_it_forwards() {
        // 1 → 2 → 3 → 4: two mediators, so the first arc must carry amount + 2.
        let graph = build(
            &[(1, 2, 12, 0), (2, 3, 11, 0), (3, 4, 10, 0)],
            &HashMap::new(),
        );
        let found = route(&graph, 1, 4, 10).unwrap();
        assert_eq!(found.nodes, vec![key(1), key(2), key(3), key(4)]);
        assert_eq!((found.amount, found.fees), (Credits(10), Credits(2)));
        let tight = build(
            &[(1, 2, 11, 0), (2, 3, 11, 0), (3, 4, 10, 0)],
            &HashMap::new(),
        );
        assert_eq!(route(&tight, 1, 4, 10), Err(RouteError::NoRoute));
        // The original's BFS would have returned that route anyway.
        let bfs = Router::new()
            .bfs_route(
                tight.currency(&usd()).unwrap(),
                &key(1),
                &key(4),
                Credits(10),
                &Constraints::default(),
            )
            .unwrap();
        assert!(bfs.capacity < Credits(10));
    }

    #[test]
    fn the_cheaper_route_wins_over_the_shorter_one() {
        let rates = HashMap::from([(2, FeeRate::new(Credits(50), 0).unwrap())]);
        let edges = [
            (1, 2, 100, 0),
            (2, 9, 100, 0),
            (1, 3, 100, 0),
            (3, 4, 100, 0),
            (4, 9, 100, 0),
        ];
        let graph = build(&edges, &rates);
        let found = route(&graph, 1, 9, 10).unwrap();
        assert_eq!(found.nodes, vec![key(1), key(3), key(4), key(9)]);
        assert_eq!(found.fees, Credits(2));
    }

    #[test]
    fn among_equally_cheap_routes_the_shortest_wins() {
        // Free mediators everywhere except an unrelated node, so the general search runs.
        let rates = HashMap::from([
            (2, FeeRate::FREE),
            (3, FeeRate::FREE),
            (4, FeeRate::FREE),
            (5, FeeRate::FREE),
            (6, FeeRate::new(Credits(5), 0).unwrap()),
        ]);
        let edges = [
            (1, 3, 50, 0),
            (3, 4, 50, 0),
            (4, 5, 50, 0),
            (5, 9, 50, 0),
            (1, 2, 50, 0),
            (2, 9, 50, 0),
            (9, 6, 50, 50),
        ];
        let graph = build(&edges, &rates);
        let found = route(&graph, 1, 9, 10).unwrap();
        assert_eq!(found.fees, Credits(0));
        assert_eq!(found.nodes, vec![key(1), key(2), key(9)]);
    }

    #[test]
    fn the_rate_charged_is_the_mediators_rate_for_the_friend_the_request_comes_from() {
        // Node 2 charges 5 for requests from 1 but 0 for requests from 3.
        let mut graph = build(&[(1, 2, 100, 100), (2, 3, 100, 100)], &HashMap::new());
        graph
            .set_node(
                key(2),
                [
                    (
                        usd(),
                        key(1),
                        Reported {
                            send: Credits(100),
                            recv: Credits(100),
                            rate: FeeRate::new(Credits(5), 0).unwrap(),
                        },
                    ),
                    (
                        usd(),
                        key(3),
                        Reported {
                            send: Credits(100),
                            recv: Credits(100),
                            rate: FeeRate::FREE,
                        },
                    ),
                ],
            )
            .unwrap();
        assert_eq!(route(&graph, 1, 3, 10).unwrap().fees, Credits(5));
        assert_eq!(route(&graph, 3, 1, 10).unwrap().fees, Credits(0));
    }

    #[test]
    fn excluded_nodes_and_arcs_are_avoided_and_max_hops_is_respected() {
        let edges = [
            (1, 2, 50, 50),
            (2, 9, 50, 50),
            (1, 3, 50, 50),
            (3, 4, 50, 50),
            (4, 9, 50, 50),
        ];
        let graph = build(&edges, &HashMap::new());
        let g = graph.currency(&usd()).unwrap();
        let mut router = Router::new();
        let avoid_two = Constraints {
            exclude_nodes: vec![key(2)],
            ..Constraints::default()
        };
        let found = router
            .fewest_fee_route(g, &key(1), &key(9), Credits(5), &avoid_two)
            .unwrap();
        assert_eq!(found.nodes.len(), 4);
        let avoid_arc = Constraints {
            exclude_arcs: vec![(key(2), key(9))],
            ..Constraints::default()
        };
        let found = router
            .fewest_fee_route(g, &key(1), &key(9), Credits(5), &avoid_arc)
            .unwrap();
        assert_eq!(found.nodes[1], key(3));
        let endpoints_listed = Constraints {
            exclude_nodes: vec![key(1), key(9), key(2)],
            ..Constraints::default()
        };
        let found = router
            .fewest_fee_route(g, &key(1), &key(9), Credits(5), &endpoints_listed)
            .unwrap();
        assert_eq!(found.nodes[1], key(3), "endpoints are never excluded");
        let short = Constraints {
            max_hops: 2,
            ..avoid_two
        };
        assert_eq!(
            router.fewest_fee_route(g, &key(1), &key(9), Credits(5), &short),
            Err(RouteError::NoRoute)
        );
    }

    #[test]
    fn a_cheap_long_route_over_max_hops_falls_back_to_the_cheapest_short_one() {
        let rates = HashMap::from([
            (2, FeeRate::new(Credits(40), 0).unwrap()),
            (3, FeeRate::FREE),
            (4, FeeRate::FREE),
            (5, FeeRate::FREE),
        ]);
        let edges = [
            (1, 2, 99, 0),
            (2, 9, 99, 0),
            (1, 3, 99, 0),
            (3, 4, 99, 0),
            (4, 5, 99, 0),
            (5, 9, 99, 0),
        ];
        let graph = build(&edges, &rates);
        let g = graph.currency(&usd()).unwrap();
        let mut router = Router::new();
        let free = router
            .fewest_fee_route(g, &key(1), &key(9), Credits(10), &Constraints::default())
            .unwrap();
        assert_eq!((free.nodes.len(), free.fees), (5, Credits(0)));
        let limited = Constraints {
            max_hops: 3,
            ..Constraints::default()
        };
        let short = router
            .fewest_fee_route(g, &key(1), &key(9), Credits(10), &limited)
            .unwrap();
        assert_eq!((short.nodes.len(), short.fees), (3, Credits(40)));
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        let graph = build(&[(1, 2, 10, 10)], &HashMap::new());
        assert_eq!(route(&graph, 1, 1, 5), Err(RouteError::SameEndpoints));
        assert_eq!(route(&graph, 1, 2, 0), Err(RouteError::ZeroAmount));
        assert_eq!(route(&graph, 7, 2, 5), Err(RouteError::UnknownSource));
        assert_eq!(route(&graph, 1, 7, 5), Err(RouteError::UnknownDestination));
        assert_eq!(route(&graph, 1, 2, u128::MAX), Err(RouteError::NoRoute));
    }

    #[test]
    fn multi_route_splits_an_amount_no_single_route_carries() {
        // Two disjoint routes of 60 (incl. one mediator's fee) and 40; 90 needs both.
        let edges = [(1, 2, 61, 0), (2, 9, 60, 0), (1, 3, 41, 0), (3, 9, 40, 0)];
        let graph = build(&edges, &HashMap::new());
        let g = graph.currency(&usd()).unwrap();
        let mut router = Router::new();
        assert!(router
            .fewest_fee_route(g, &key(1), &key(9), Credits(90), &Constraints::default())
            .is_err());
        let routes = router
            .multi_route(g, &key(1), &key(9), Credits(90), &Constraints::default(), 8)
            .unwrap();
        assert_eq!(routes.len(), 2);
        let total: u128 = routes.iter().map(|r| r.amount.0).sum();
        assert_eq!(total, 90);
        assert_eq!(routes.iter().map(|r| r.fees.0).sum::<u128>(), 2);
        // Each route's first arc carries its amount plus its fee within capacity.
        for r in &routes {
            let cap = if r.nodes[1] == key(2) { 61 } else { 41 };
            assert!(r.amount.0 + r.fees.0 <= cap);
        }
        // 101 + fees does not fit in 61 + 41: all or nothing.
        assert_eq!(
            router.multi_route(
                g,
                &key(1),
                &key(9),
                Credits(101),
                &Constraints::default(),
                8
            ),
            Err(RouteError::NoRoute)
        );
        assert_eq!(
            router.max_flow(g, &key(1), &key(9), Credits(1_000)),
            Ok(Credits(100))
        );
    }

    #[test]
    fn multi_route_accounts_for_shared_arcs() {
        // Both routes share the arc 1 → 2; it cannot carry both parts.
        let edges = [
            (1, 2, 50, 0),
            (2, 3, 40, 0),
            (2, 4, 40, 0),
            (3, 9, 40, 0),
            (4, 9, 40, 0),
        ];
        let graph = build(&edges, &HashMap::new());
        let g = graph.currency(&usd()).unwrap();
        let mut router = Router::new();
        let routes = router
            .multi_route(g, &key(1), &key(9), Credits(46), &Constraints::default(), 8)
            .unwrap();
        let entering: u128 = routes.iter().map(|r| r.amount.0 + r.fees.0).sum();
        assert!(entering <= 50, "{routes:?}");
        assert_eq!(
            router.multi_route(g, &key(1), &key(9), Credits(49), &Constraints::default(), 8),
            Err(RouteError::NoRoute)
        );
    }

    #[test]
    fn widest_path_is_the_best_bottleneck() {
        let edges = [(1, 2, 5, 0), (2, 9, 50, 0), (1, 3, 30, 0), (3, 9, 20, 0)];
        let graph = build(&edges, &HashMap::new());
        let g = graph.currency(&usd()).unwrap();
        assert_eq!(
            Router::new().widest_path(g, &key(1), &key(9)),
            Ok(Credits(20))
        );
    }

    /// Every simple path's fees by brute force; the cheapest feasible one.
    /// Nodes (never the endpoints) and directed arcs a route may not use.
    struct Avoid {
        nodes: Vec<NodeIx>,
        arcs: Vec<(NodeIx, NodeIx)>,
    }

    fn brute_force(
        graph: &CurrencyGraph,
        source: NodeIx,
        destination: NodeIx,
        amount: u128,
        max_hops: usize,
        avoid: &Avoid,
    ) -> Option<(u128, usize)> {
        fn walk(
            graph: &CurrencyGraph,
            path: &mut Vec<NodeIx>,
            destination: NodeIx,
            amount: u128,
            max_hops: usize,
            avoid: &Avoid,
            best: &mut Option<(u128, usize)>,
        ) {
            let last = *path.last().unwrap();
            if last == destination {
                let needs = path_needs(graph, path, amount);
                if let Some(needs) = needs {
                    let fits = path
                        .windows(2)
                        .zip(&needs)
                        .all(|(pair, need)| graph.side(pair[0], pair[1]).unwrap().send >= *need);
                    if fits {
                        let candidate = (needs[0], path.len() - 1);
                        *best = Some(best.map_or(candidate, |known| known.min(candidate)));
                    }
                }
                return;
            }
            if path.len() > max_hops {
                return;
            }
            for side in graph.neighbours(last).to_vec() {
                let allowed = (side.peer == destination || !avoid.nodes.contains(&side.peer))
                    && !avoid.arcs.contains(&(last, side.peer));
                if allowed && !path.contains(&side.peer) {
                    path.push(side.peer);
                    walk(graph, path, destination, amount, max_hops, avoid, best);
                    path.pop();
                }
            }
        }
        let mut best = None;
        walk(
            graph,
            &mut vec![source],
            destination,
            amount,
            max_hops,
            avoid,
            &mut best,
        );
        best.map(|(total, hops)| (total - amount, hops))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn fewest_fee_route_matches_brute_force(
            edges in proptest::collection::vec((0u8..7, 0u8..7, 0u128..40, 0u128..40), 1..16),
            rates in proptest::collection::vec((0u128..4, 0u32..300_000), 7),
            amount in 1u128..30,
            max_hops in 1usize..6,
            uniform in proptest::option::of(0u128..3),
            excluded in proptest::collection::vec(0u8..7, 0..3),
            excluded_arcs in proptest::collection::vec((0u8..7, 0u8..7), 0..3),
        ) {
            let edges: Vec<_> = edges.into_iter().filter(|(a, b, _, _)| a != b).collect();
            let mut seen = HashSet::new();
            let edges: Vec<_> = edges
                .into_iter()
                .filter(|(a, b, _, _)| seen.insert((*a.min(b), *a.max(b))))
                .collect();
            let rates: HashMap<u8, FeeRate> = rates
                .iter()
                .enumerate()
                .map(|(n, (flat, ppm))| {
                    let rate = match uniform {
                        Some(flat) => FeeRate::new(Credits(flat), 0),
                        None => FeeRate::new(Credits(*flat), *ppm),
                    };
                    (n as u8, rate.unwrap())
                })
                .collect();
            let graph = build(&edges, &rates);
            let Some(g) = graph.currency(&usd()) else { return Ok(()) };
            let (Some(s), Some(d)) = (g.node(&key(0)), g.node(&key(1))) else { return Ok(()) };
            let avoid = Avoid {
                nodes: excluded.iter().filter_map(|n| g.node(&key(*n))).collect(),
                arcs: excluded_arcs
                    .iter()
                    .filter_map(|(a, b)| Some((g.node(&key(*a))?, g.node(&key(*b))?)))
                    .collect(),
            };
            let expected = brute_force(g, s, d, amount, max_hops, &avoid);
            let constraints = Constraints {
                max_hops,
                exclude_nodes: excluded.iter().map(|n| key(*n)).collect(),
                exclude_arcs: excluded_arcs.iter().map(|(a, b)| (key(*a), key(*b))).collect(),
            };
            let found = Router::new().fewest_fee_route(g, &key(0), &key(1), Credits(amount), &constraints);
            match (expected, found) {
                (None, Err(RouteError::NoRoute)) => {}
                (Some((fees, hops)), Ok(route)) => {
                    prop_assert_eq!(route.fees.0, fees);
                    // Among the cheapest routes, one with the fewest hops.
                    prop_assert_eq!(route.nodes.len() - 1, hops);
                }
                (expected, found) => prop_assert!(false, "expected {:?}, got {:?}", expected, found),
            }
        }

        #[test]
        fn multi_route_answers_fit_the_capacities_together(
            edges in proptest::collection::vec((0u8..7, 0u8..7, 0u128..40, 0u128..40), 1..18),
            amount in 1u128..80,
            uniform in proptest::bool::ANY,
        ) {
            let edges: Vec<_> = edges.into_iter().filter(|(a, b, _, _)| a != b).collect();
            let mut seen = HashSet::new();
            let edges: Vec<_> = edges
                .into_iter()
                .filter(|(a, b, _, _)| seen.insert((*a.min(b), *a.max(b))))
                .collect();
            let rates: HashMap<u8, FeeRate> = if uniform {
                HashMap::new()
            } else {
                (0..7).map(|n| (n, FeeRate::new(Credits(u128::from(n % 3)), 5_000).unwrap())).collect()
            };
            let graph = build(&edges, &rates);
            let Some(g) = graph.currency(&usd()) else { return Ok(()) };
            if g.node(&key(0)).is_none() || g.node(&key(1)).is_none() {
                return Ok(());
            }
            let mut router = Router::new();
            let flow = router.max_flow(g, &key(0), &key(1), Credits(amount)).unwrap();
            let routes = router.multi_route(
                g, &key(0), &key(1), Credits(amount), &Constraints::default(), MAX_INDEX_ROUTES,
            );
            let Ok(routes) = routes else { return Ok(()) };
            prop_assert!(flow.0 >= amount, "routes found beyond the max-flow bound");
            prop_assert!(!routes.is_empty() && routes.len() <= MAX_INDEX_ROUTES);
            prop_assert_eq!(routes.iter().map(|r| r.amount.0).sum::<u128>(), amount);
            // Together, the routes' per-arc amounts (fees included) fit every capacity.
            let mut used: HashMap<(PublicKey, PublicKey), u128> = HashMap::new();
            for route in &routes {
                let handles: Vec<NodeIx> = route.nodes.iter().map(|k| g.node(k).unwrap()).collect();
                prop_assert_eq!(handles.iter().collect::<HashSet<_>>().len(), handles.len());
                let needs = path_needs(g, &handles, route.amount.0).unwrap();
                prop_assert_eq!(needs[0] - route.amount.0, route.fees.0);
                for (pair, need) in route.nodes.windows(2).zip(needs) {
                    *used.entry((pair[0], pair[1])).or_insert(0) += need;
                }
            }
            for ((from, to), total) in used {
                let side = g.side(g.node(&from).unwrap(), g.node(&to).unwrap()).unwrap();
                prop_assert!(total <= side.send, "arc over capacity: {} > {}", total, side.send);
            }
        }
    }
}
