//! Relay metrics: atomic counters and gauges, rendered in the Prometheus text format and
//! served over plain HTTP on a separate port.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use offst_proto::relay::RefuseReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Metrics requests served at once; more wait. Scrapers are few.
pub const MAX_METRICS_CONNECTIONS: usize = 8;

/// Longest a metrics client may take to send its request.
const METRICS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes of a metrics request read (and ignored): any request gets the metrics.
const METRICS_REQUEST_MAX: usize = 1024;

/// A counter or gauge.
#[derive(Debug, Default)]
pub struct Metric(AtomicU64);

impl Metric {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one (gauges).
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `amount`.
    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything the relay counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open TCP connections (gauge).
    pub connections_open: Metric,
    /// Connections accepted since start.
    pub connections_accepted: Metric,
    /// Connections refused at the total limit.
    pub rejected_total_limit: Metric,
    /// Connections refused at the per-IP limit.
    pub rejected_ip_limit: Metric,
    /// Handshakes that failed or timed out.
    pub handshake_failures: Metric,
    /// Connections closed for a protocol violation (bad or missing first message, garbage).
    pub protocol_errors: Metric,
    /// Listening nodes (gauge).
    pub listeners_open: Metric,
    /// Half-open tunnels waiting for an accept (gauge).
    pub tunnels_half_open: Metric,
    /// Spliced tunnels (gauge).
    pub tunnels_open: Metric,
    /// Tunnels spliced since start.
    pub tunnels_spliced: Metric,
    /// Tunnels closed for inactivity.
    pub tunnels_idle_closed: Metric,
    /// Bytes copied through tunnels.
    pub tunnel_bytes: Metric,
    /// Refusals: target not listening.
    pub refused_not_listening: Metric,
    /// Refusals: listener rejected the caller.
    pub refused_rejected: Metric,
    /// Refusals: half-open tunnel expired.
    pub refused_expired: Metric,
    /// Refusals: accept without a pending tunnel.
    pub refused_no_pending: Metric,
    /// Refusals: a limit was reached.
    pub refused_busy: Metric,
}

impl Metrics {
    /// Counts one tunnel refusal.
    pub fn refused(&self, reason: RefuseReason) {
        match reason {
            RefuseReason::NotListening => self.refused_not_listening.inc(),
            RefuseReason::Rejected => self.refused_rejected.inc(),
            RefuseReason::Expired => self.refused_expired.inc(),
            RefuseReason::NoPendingTunnel => self.refused_no_pending.inc(),
            RefuseReason::Busy => self.refused_busy.inc(),
        }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, &Metric)]| {
            let _ = writeln!(out, "# HELP strelay_{name} {help}");
            let _ = writeln!(out, "# TYPE strelay_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "strelay_{name}{labels} {}", value.get());
            }
        };
        metric(
            "connections_open",
            "gauge",
            "Open TCP connections.",
            &[("", &self.connections_open)],
        );
        metric(
            "connections_accepted_total",
            "counter",
            "Connections accepted.",
            &[("", &self.connections_accepted)],
        );
        metric(
            "connections_rejected_total",
            "counter",
            "Connections refused or closed early, by reason.",
            &[
                ("{reason=\"total_limit\"}", &self.rejected_total_limit),
                ("{reason=\"ip_limit\"}", &self.rejected_ip_limit),
                ("{reason=\"handshake\"}", &self.handshake_failures),
                ("{reason=\"protocol\"}", &self.protocol_errors),
            ],
        );
        metric(
            "listeners_open",
            "gauge",
            "Nodes listening.",
            &[("", &self.listeners_open)],
        );
        metric(
            "tunnels_half_open",
            "gauge",
            "Tunnels waiting for the listener's accept.",
            &[("", &self.tunnels_half_open)],
        );
        metric(
            "tunnels_open",
            "gauge",
            "Spliced tunnels.",
            &[("", &self.tunnels_open)],
        );
        metric(
            "tunnels_spliced_total",
            "counter",
            "Tunnels spliced.",
            &[("", &self.tunnels_spliced)],
        );
        metric(
            "tunnels_idle_closed_total",
            "counter",
            "Tunnels closed for inactivity.",
            &[("", &self.tunnels_idle_closed)],
        );
        metric(
            "tunnel_bytes_total",
            "counter",
            "Bytes copied through tunnels.",
            &[("", &self.tunnel_bytes)],
        );
        metric(
            "tunnels_refused_total",
            "counter",
            "Tunnel requests refused, by reason.",
            &[
                ("{reason=\"not_listening\"}", &self.refused_not_listening),
                ("{reason=\"rejected\"}", &self.refused_rejected),
                ("{reason=\"expired\"}", &self.refused_expired),
                ("{reason=\"no_pending_tunnel\"}", &self.refused_no_pending),
                ("{reason=\"busy\"}", &self.refused_busy),
            ],
        );
        out
    }
}

/// Serves `metrics` on `listener` until `shutdown` turns true: any HTTP request gets the
/// metrics page.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = [0u8; METRICS_REQUEST_MAX];
            let _ = tokio::time::timeout(METRICS_REQUEST_TIMEOUT, stream.read(&mut request)).await;
            let body = metrics.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(METRICS_REQUEST_TIMEOUT, async {
                stream.write_all(response.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_metric_with_help_and_type() {
        let metrics = Metrics::default();
        metrics.connections_open.inc();
        metrics.tunnel_bytes.add(42);
        metrics.refused(RefuseReason::Expired);
        let text = metrics.render();
        assert!(
            text.contains("# TYPE strelay_connections_open gauge\nstrelay_connections_open 1\n")
        );
        assert!(text.contains("strelay_tunnel_bytes_total 42\n"));
        assert!(text.contains("strelay_tunnels_refused_total{reason=\"expired\"} 1\n"));
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            assert!(line.starts_with("strelay_"), "{line}");
            assert!(line.rsplit(' ').next().unwrap().parse::<u64>().is_ok());
        }
    }
}
