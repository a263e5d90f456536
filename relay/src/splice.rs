//! Splicing a tunnel: after the switch-over (docs/PROTOCOL.md, "Relay") the relay copies raw
//! bytes between the two legs. It never decrypts them: they are the nodes' own end-to-end
//! secure channel.
//!
//! Memory: a direction holds a copy buffer (or, on Linux, a pipe for zero-copy `splice(2)`)
//! only while bytes are flowing; it waits for readability without one, so an idle tunnel
//! costs two sockets and one small task.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

use crate::metrics::Metric;
use crate::rate::TokenBucket;

/// Bytes one busy direction moves per step (copy buffer size, or splice length): large enough
/// for full-speed loopback transfers.
pub const COPY_BUFFER_LEN: usize = 64 * 1024;

/// Pipe size asked for while a direction moves bytes with `splice(2)` on Linux.
pub const ZERO_COPY_PIPE_LEN: usize = 256 * 1024;

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
    let a_to_b = pump(&a, &b, a_pending, limits, &activity, bytes);
    let b_to_a = pump(&b, &a, b_pending, limits, &activity, bytes);
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

/// What one burst of copying ended with.
enum Burst {
    /// The source has no more bytes for now.
    Drained,
    /// The source closed its sending side.
    End,
}

/// One direction: waits (without a buffer) until `from` is readable, then moves what is
/// there, until `from` ends.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    pending: Vec<u8>,
    limits: SpliceLimits,
    activity: &Activity,
    bytes: &Metric,
) -> io::Result<()> {
    let mut bucket = (limits.bytes_per_second > 0)
        .then(|| TokenBucket::new(limits.bytes_per_second, limits.burst_bytes, Instant::now()));
    if !pending.is_empty() {
        write_all(to, &pending).await?;
        bytes.add(pending.len() as u64);
    }
    drop(pending);
    let mut pipe: Option<Pipe> = None;
    loop {
        if pipe.is_some() {
            // Keep the pipe across bursts of a busy tunnel; release it once the tunnel rests.
            if let Ok(ready) = tokio::time::timeout(PIPE_RELEASE_AFTER, from.readable()).await {
                ready?;
            } else {
                pipe = None;
                from.readable().await?;
            }
        } else {
            from.readable().await?;
        }
        let mut direction = Direction {
            from,
            to,
            bucket: bucket.as_mut(),
            activity,
            bytes,
        };
        #[cfg(target_os = "linux")]
        let burst = direction.zero_copy_burst(&mut pipe).await?;
        #[cfg(not(target_os = "linux"))]
        let burst = direction.copy_burst().await?;
        if let Burst::End = burst {
            shutdown_write(to);
            return Ok(());
        }
    }
}

/// The two ends of a pipe a busy direction moves bytes through (Linux `splice(2)`).
struct Pipe {
    #[cfg(target_os = "linux")]
    pipe_out: std::os::fd::OwnedFd,
    #[cfg(target_os = "linux")]
    pipe_in: std::os::fd::OwnedFd,
}

/// A busy direction keeps its pipe until it has been idle this long, so a steady transfer
/// does not pay for a pipe per burst while an idle tunnel holds no pipe descriptors.
const PIPE_RELEASE_AFTER: Duration = Duration::from_secs(1);

struct Direction<'a> {
    from: &'a TcpStream,
    to: &'a TcpStream,
    bucket: Option<&'a mut TokenBucket>,
    activity: &'a Activity,
    bytes: &'a Metric,
}

impl Direction<'_> {
    /// Notes `moved` bytes and waits as long as the rate limit asks.
    async fn account(&mut self, moved: usize) {
        self.activity.touch();
        if let Some(bucket) = self.bucket.as_mut() {
            let wait = bucket.take(moved, Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Copies through a user-space buffer that exists only for this burst.
    async fn copy_burst(&mut self) -> io::Result<Burst> {
        // Uninitialised capacity: `try_read_buf` fills it without zeroing it first.
        let mut buffer = Vec::with_capacity(COPY_BUFFER_LEN);
        loop {
            buffer.clear();
            let read = match self.from.try_read_buf(&mut buffer) {
                Ok(0) => return Ok(Burst::End),
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(Burst::Drained),
                Err(err) => return Err(err),
            };
            self.account(read).await;
            write_all(self.to, &buffer).await?;
            self.bytes.add(read as u64);
        }
    }

    /// Moves bytes socket → pipe → socket with `splice(2)`, never through user space. The
    /// pipe exists only for this burst (an idle tunnel holds no pipe descriptors); if no pipe
    /// can be made (descriptor limit), falls back to copying.
    #[cfg(target_os = "linux")]
    async fn zero_copy_burst(&mut self, pipe: &mut Option<Pipe>) -> io::Result<Burst> {
        use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
        use tokio::io::Interest;

        if pipe.is_none() {
            if let Ok((pipe_out, pipe_in)) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC) {
                // A larger pipe moves more per system call; the default is kept if refused.
                let _ = rustix::pipe::fcntl_setpipe_size(&pipe_in, ZERO_COPY_PIPE_LEN);
                *pipe = Some(Pipe { pipe_out, pipe_in });
            }
        }
        let Some(Pipe { pipe_out, pipe_in }) = pipe.as_ref() else {
            return self.copy_burst().await;
        };
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        loop {
            let moved_in = self.from.try_io(Interest::READABLE, || {
                Ok(splice(
                    self.from,
                    None,
                    pipe_in,
                    None,
                    ZERO_COPY_PIPE_LEN,
                    flags,
                )?)
            });
            let mut in_pipe = match moved_in {
                Ok(0) => return Ok(Burst::End),
                Ok(moved) => moved,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(Burst::Drained),
                Err(err) => return Err(err),
            };
            self.account(in_pipe).await;
            while in_pipe > 0 {
                self.to.writable().await?;
                let moved_out = self.to.try_io(Interest::WRITABLE, || {
                    Ok(splice(pipe_out, None, self.to, None, in_pipe, flags)?)
                });
                match moved_out {
                    Ok(moved) => {
                        in_pipe -= moved;
                        self.bytes.add(moved as u64);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
}

async fn write_all(to: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(written) => data = &data[written..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Ends our sending direction towards `to` (the peer reads the end of the stream), keeping
/// the other direction open.
fn shutdown_write(to: &TcpStream) {
    #[cfg(unix)]
    {
        let _ = rustix::net::shutdown(to, rustix::net::Shutdown::Write);
    }
    #[cfg(not(unix))]
    {
        let _ = to;
    }
}
