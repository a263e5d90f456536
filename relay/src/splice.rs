//! Splicing a tunnel: after the switch-over (docs/PROTOCOL.md, "Relay") the relay copies raw
//! bytes between the two legs. It never decrypts them: they are the nodes' own end-to-end
//! secure channel.
//!
//! Memory: a direction holds a copy buffer only while bytes are flowing (it waits for
//! readability without a buffer), so an idle tunnel costs two sockets and one small task.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

use crate::metrics::Metric;
use crate::rate::TokenBucket;

/// Copy buffer of one busy direction: large enough for full-speed loopback transfers.
pub const COPY_BUFFER_LEN: usize = 64 * 1024;

/// Limits of one spliced tunnel.
#[derive(Debug, Clone, Copy)]
pub struct SpliceLimits {
    /// The tunnel closes after this long without a byte in either direction.
    pub idle_timeout: Duration,
    /// Bytes per second each leg may send (0: unlimited).
    pub bytes_per_second: u64,
    /// Burst allowance of each leg.
    pub burst_bytes: u64,
}

/// How a spliced tunnel ended.
#[derive(Debug)]
pub enum SpliceEnd {
    /// Both legs closed their sending side.
    Closed,
    /// No byte in either direction for the idle timeout.
    Idle,
    /// A socket failed.
    Failed(io::Error),
}

/// Milliseconds since the tunnel started at which a byte last moved.
struct Activity {
    start: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_millis.load(Ordering::Relaxed))
    }
}

/// Copies bytes between `a` and `b` until both directions end, the tunnel is idle for the
/// limit, or a socket fails. `a_pending` (bytes already read from `a` beyond the last record)
/// is delivered to `b` first, and `b_pending` to `a`.
pub async fn splice(
    a: TcpStream,
    a_pending: Vec<u8>,
    b: TcpStream,
    b_pending: Vec<u8>,
    limits: SpliceLimits,
    bytes: &Metric,
) -> SpliceEnd {
    let activity = Activity {
        start: Instant::now(),
        last_millis: AtomicU64::new(0),
    };
    let (a_read, a_write) = a.into_split();
    let (b_read, b_write) = b.into_split();
    let a_to_b = pump(a_read, b_write, a_pending, limits, &activity, bytes);
    let b_to_a = pump(b_read, a_write, b_pending, limits, &activity, bytes);
    let watchdog = async {
        loop {
            let deadline = activity.last() + limits.idle_timeout;
            sleep_until(deadline).await;
            if activity.last() + limits.idle_timeout <= Instant::now() {
                return;
            }
        }
    };
    tokio::select! {
        result = async { tokio::try_join!(a_to_b, b_to_a) } => match result {
            Ok(_) => SpliceEnd::Closed,
            Err(err) => SpliceEnd::Failed(err),
        },
        () = watchdog => SpliceEnd::Idle,
    }
}

async fn pump(
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    pending: Vec<u8>,
    limits: SpliceLimits,
    activity: &Activity,
    bytes: &Metric,
) -> io::Result<()> {
    let mut bucket = (limits.bytes_per_second > 0)
        .then(|| TokenBucket::new(limits.bytes_per_second, limits.burst_bytes, Instant::now()));
    if !pending.is_empty() {
        to.write_all(&pending).await?;
        bytes.add(pending.len() as u64);
    }
    drop(pending);
    loop {
        from.readable().await?;
        // Uninitialised capacity: `try_read_buf` fills it without zeroing it first.
        let mut buffer = Vec::with_capacity(COPY_BUFFER_LEN);
        loop {
            buffer.clear();
            let read = match from.try_read_buf(&mut buffer) {
                Ok(0) => {
                    let _ = to.shutdown().await;
                    return Ok(());
                }
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(err),
            };
            activity.touch();
            if let Some(bucket) = bucket.as_mut() {
                let wait = bucket.take(read, Instant::now());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            to.write_all(&buffer).await?;
            bytes.add(read as u64);
        }
    }
}
