//! Metrics in the Prometheus text exposition format. Counters are atomics shared by the
//! connection tasks; [`Metrics::render`] writes them out with the state's own counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::StateCounters;

/// Counters the server glue keeps (the state machine keeps its own, [`StateCounters`]).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections accepted (after the handshake).
    pub connections_accepted: AtomicU64,
    /// Connections refused at the connection limit.
    pub connections_refused: AtomicU64,
    /// Connections currently open.
    pub connections_open: AtomicU64,
    /// Messages that did not decode.
    pub malformed_messages: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
    /// Reports forwarded to other servers (one per report and server).
    pub reports_flooded: AtomicU64,
    /// Server connections dropped because they did not keep up with the flood.
    pub slow_servers_dropped: AtomicU64,
}

/// A point-in-time view of the graph for gauges.
#[derive(Debug, Default, Clone, Copy)]
pub struct GraphGauges {
    /// Nodes with a live report.
    pub live_nodes: usize,
    /// Agreed edges over all currencies.
    pub edges: usize,
    /// Trusted servers currently connected.
    pub servers_connected: usize,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition text.
    pub fn render(&self, state: &StateCounters, gauges: &GraphGauges) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP offst_index_{name} {help}");
            let _ = writeln!(out, "# TYPE offst_index_{name} {kind}");
            let _ = writeln!(out, "offst_index_{name} {value}");
        };
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        line(
            "connections_accepted_total",
            "counter",
            "Connections accepted.",
            load(&self.connections_accepted),
        );
        line(
            "connections_refused_total",
            "counter",
            "Connections refused at the limit.",
            load(&self.connections_refused),
        );
        line(
            "connections_open",
            "gauge",
            "Connections open.",
            load(&self.connections_open),
        );
        line(
            "malformed_messages_total",
            "counter",
            "Messages that did not decode.",
            load(&self.malformed_messages),
        );
        line(
            "rate_limited_total",
            "counter",
            "Requests refused by a rate limit.",
            load(&self.rate_limited),
        );
        line(
            "reports_flooded_total",
            "counter",
            "Reports forwarded to trusted servers.",
            load(&self.reports_flooded),
        );
        line(
            "slow_servers_dropped_total",
            "counter",
            "Server links dropped for not keeping up.",
            load(&self.slow_servers_dropped),
        );
        line(
            "reports_accepted_total",
            "counter",
            "Capacity reports accepted.",
            state.reports_accepted,
        );
        line(
            "reports_rejected_total",
            "counter",
            "Capacity reports refused.",
            state.reports_rejected,
        );
        line(
            "reports_bad_signature_total",
            "counter",
            "Reports with a bad signature.",
            state.bad_signatures,
        );
        line(
            "reports_stale_total",
            "counter",
            "Replayed or outdated reports.",
            state.stale_reports,
        );
        line(
            "reports_untrusted_total",
            "counter",
            "Reports forwarded by untrusted servers.",
            state.untrusted_forwards,
        );
        line(
            "nodes_expired_total",
            "counter",
            "Nodes dropped after their report expired.",
            state.nodes_expired,
        );
        line(
            "route_queries_total",
            "counter",
            "Route queries answered.",
            state.queries,
        );
        line(
            "route_queries_found_total",
            "counter",
            "Route queries answered with routes.",
            state.queries_with_routes,
        );
        line(
            "nodes",
            "gauge",
            "Nodes with a live report.",
            gauges.live_nodes as u64,
        );
        line(
            "edges",
            "gauge",
            "Agreed edges over all currencies.",
            gauges.edges as u64,
        );
        line(
            "servers_connected",
            "gauge",
            "Trusted servers connected.",
            gauges.servers_connected as u64,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_help_type_and_value_for_each_metric() {
        let metrics = Metrics::default();
        Metrics::bump(&metrics.rate_limited);
        let text = metrics.render(&StateCounters::default(), &GraphGauges::default());
        assert!(text.contains(
            "# TYPE offst_index_rate_limited_total counter\noffst_index_rate_limited_total 1\n"
        ));
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP")).count(), 18);
    }
}
