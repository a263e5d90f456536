//! The secure channel over frames (docs/PROTOCOL.md, "Transport"): the handshake of
//! `offst_crypto::handshake` driven over a socket with a timeout, then records of
//! `offst_crypto::record`, one per frame, with keepalive, idle timeout and periodic rekey.
//!
//! - [`connect`] (initiator) and [`accept`] (responder, with an [`AccessControl`] hook applied
//!   to the authenticated peer) return a [`SecureStream`].
//! - [`SecureStream::send`] / [`SecureStream::recv`] suit one task doing request/response;
//!   `recv` sends keepalives while it waits.
//! - [`SecureStream::split`] gives a [`SecureReceiver`] for a reader task and a cloneable
//!   [`SecureSender`] whose messages a spawned writer task seals and sends, adding keepalives
//!   when the connection is idle.
//!
//! Every failure is a typed [`NetError`] and is logged once (with the peer) where it happens.

use std::net::SocketAddr;
use std::time::Duration;

use offst_crypto::handshake::{Initiator, Refusal, Responder, VersionRange};
use offst_crypto::record::{RecordKind, RecordReceiver, RecordSender, MAX_RECORD_PAYLOAD};
use offst_crypto::{Identity, SecureRngDyn};
use offst_proto::limits::{
    HANDSHAKE_TIMEOUT_SECS, IDLE_TIMEOUT_SECS, KEEPALIVE_INTERVAL_SECS, REKEY_INTERVAL_SECS,
};
use offst_proto::PublicKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

use crate::framed::{FrameReader, FrameWriter, Framed};
use crate::{AccessControl, NetError};

/// Messages a [`SecureSender`] may queue for the writer task before `send` waits. Small: the
/// queue only smooths bursts; back-pressure should reach the producer quickly.
pub const SEND_QUEUE_LEN: usize = 64;

/// Largest frame accepted during the handshake. Handshake messages are under 300 bytes; a
/// small limit keeps an unauthenticated peer from making us buffer large frames.
pub const MAX_HANDSHAKE_FRAME_LEN: usize = 1024;

/// How long a refusal (e.g. "busy") may take to write before the socket is simply dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Timing and version parameters of a secure connection. The defaults are the protocol's
/// (docs/PROTOCOL.md, "Transport"); tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureConfig {
    /// Longest time from the start of the handshake to its end.
    pub handshake_timeout: Duration,
    /// Send a keepalive record after this long without sending anything.
    pub keepalive_interval: Duration,
    /// Close with [`NetError::IdleTimeout`] after this long without receiving anything.
    pub idle_timeout: Duration,
    /// Request a key update after this long under one key.
    pub rekey_interval: Duration,
    /// Close with [`NetError::WriteTimeout`] when one write is not accepted for this long.
    pub write_timeout: Duration,
    /// Protocol versions offered or accepted.
    pub versions: VersionRange,
}

impl Default for SecureConfig {
    fn default() -> Self {
        SecureConfig {
            handshake_timeout: Duration::from_secs(HANDSHAKE_TIMEOUT_SECS),
            keepalive_interval: Duration::from_secs(KEEPALIVE_INTERVAL_SECS),
            idle_timeout: Duration::from_secs(IDLE_TIMEOUT_SECS),
            rekey_interval: Duration::from_secs(REKEY_INTERVAL_SECS),
            write_timeout: Duration::from_secs(IDLE_TIMEOUT_SECS),
            versions: VersionRange::default(),
        }
    }
}

/// Runs the handshake as initiator over `stream` (a `TcpStream` or a [`Framed`] carrying
/// bytes already read). With `expected_peer`, any other responder identity fails with
/// [`HandshakeError::WrongPeer`](offst_crypto::handshake::HandshakeError::WrongPeer).
pub async fn connect(
    stream: impl Into<Framed>,
    identity: &Identity,
    expected_peer: Option<PublicKey>,
    config: &SecureConfig,
    rng: &mut (dyn SecureRngDyn + Send),
) -> Result<SecureStream, NetError> {
    let mut framed = stream.into();
    let peer_addr = framed.peer_addr();
    framed.reader.set_max_len(MAX_HANDSHAKE_FRAME_LEN);
    let result = timeout(
        config.handshake_timeout,
        initiator_handshake(&mut framed, identity, expected_peer, config, rng),
    )
    .await
    .unwrap_or(Err(NetError::HandshakeTimeout(config.handshake_timeout)));
    match result {
        Ok(established) => Ok(SecureStream::new(
            framed,
            established.channel.sender,
            established.channel.receiver,
            established.peer,
            established.version,
            peer_addr,
            config,
        )),
        Err(err) => {
            log::warn!("secure connect to {}: {err}", show_addr(peer_addr));
            Err(err)
        }
    }
}

async fn initiator_handshake(
    framed: &mut Framed,
    identity: &Identity,
    expected_peer: Option<PublicKey>,
    config: &SecureConfig,
    rng: &mut (dyn SecureRngDyn + Send),
) -> Result<offst_crypto::handshake::Established, NetError> {
    let (initiator, hello) =
        Initiator::start(identity.clone(), expected_peer, config.versions, rng);
    framed.writer.write_frame(&hello).await?;
    let reply = read_handshake_frame(&mut framed.reader).await?;
    let (established, finish) = initiator.handle_reply(&reply)?;
    framed.writer.write_frame(&finish).await?;
    Ok(established)
}

/// Runs the handshake as responder over `stream`, then asks `access` about the authenticated
/// peer; a refused peer is disconnected with [`NetError::PeerRefused`].
pub async fn accept(
    stream: impl Into<Framed>,
    identity: &Identity,
    config: &SecureConfig,
    rng: &mut (dyn SecureRngDyn + Send),
    access: &dyn AccessControl,
) -> Result<SecureStream, NetError> {
    let mut framed = stream.into();
    let peer_addr = framed.peer_addr();
    framed.reader.set_max_len(MAX_HANDSHAKE_FRAME_LEN);
    let result = timeout(
        config.handshake_timeout,
        responder_handshake(&mut framed, identity, config, rng),
    )
    .await
    .unwrap_or(Err(NetError::HandshakeTimeout(config.handshake_timeout)))
    .and_then(|established| {
        if access.allows(&established.peer) {
            Ok(established)
        } else {
            Err(NetError::PeerRefused(established.peer))
        }
    });
    match result {
        Ok(established) => Ok(SecureStream::new(
            framed,
            established.channel.sender,
            established.channel.receiver,
            established.peer,
            established.version,
            peer_addr,
            config,
        )),
        Err(err) => {
            log::warn!("secure accept from {}: {err}", show_addr(peer_addr));
            let _ = timeout(REFUSAL_WRITE_TIMEOUT, framed.writer.shutdown()).await;
            Err(err)
        }
    }
}

async fn responder_handshake(
    framed: &mut Framed,
    identity: &Identity,
    config: &SecureConfig,
    rng: &mut (dyn SecureRngDyn + Send),
) -> Result<offst_crypto::handshake::Established, NetError> {
    let hello = read_handshake_frame(&mut framed.reader).await?;
    let (waiting, reply) =
        match Responder::new(identity.clone(), config.versions).handle_hello(&hello, rng) {
            Ok(next) => next,
            Err(Refusal { error, reply }) => {
                if let Some(reply) = reply {
                    framed.writer.write_frame(&reply).await?;
                }
                return Err(error.into());
            }
        };
    framed.writer.write_frame(&reply).await?;
    let finish = read_handshake_frame(&mut framed.reader).await?;
    Ok(waiting.handle_finish(&finish)?)
}

/// Reads one handshake message, copied out of the read buffer (handshake messages are at
/// most [`MAX_HANDSHAKE_FRAME_LEN`] bytes) so it outlives the next read.
async fn read_handshake_frame(reader: &mut FrameReader) -> Result<Vec<u8>, NetError> {
    reader
        .read_frame()
        .await?
        .map(|payload| payload.to_vec())
        .ok_or(NetError::ClosedDuringHandshake)
}

/// Answers a connection the server cannot take (at its connection limit) with the
/// handshake's `Reject{busy}` and closes it, without reading anything: the initiator reads
/// the refusal as the reply to its `Hello` and reports [`HandshakeError::Busy`](offst_crypto::handshake::HandshakeError::Busy).
pub async fn refuse_busy(mut stream: TcpStream, versions: VersionRange) {
    let mut frame = Vec::new();
    if offst_proto::frame::encode(&Responder::busy_reply(versions), &mut frame).is_ok() {
        let _ = timeout(REFUSAL_WRITE_TIMEOUT, async {
            stream.write_all(&frame).await?;
            stream.shutdown().await
        })
        .await;
    }
}

fn show_addr(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "an unknown address".to_owned(), |addr| addr.to_string())
}

/// The timing part of [`SecureConfig`] a live connection needs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    keepalive_interval: Duration,
    rekey_interval: Duration,
    write_timeout: Duration,
}

impl From<&SecureConfig> for Timing {
    fn from(config: &SecureConfig) -> Timing {
        Timing {
            keepalive_interval: config.keepalive_interval,
            rekey_interval: config.rekey_interval,
            write_timeout: config.write_timeout,
        }
    }
}

/// The sending state: frames out, records sealed, keepalive and rekey clocks.
struct SendSide {
    writer: FrameWriter,
    sender: RecordSender,
    last_sent: Instant,
    last_rekey: Instant,
    timing: Timing,
}

impl SendSide {
    async fn send_record(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), NetError> {
        if payload.len() > MAX_RECORD_PAYLOAD {
            return Err(NetError::MessageTooLarge {
                len: payload.len(),
                max: MAX_RECORD_PAYLOAD,
            });
        }
        let now = Instant::now();
        if now.duration_since(self.last_rekey) >= self.timing.rekey_interval {
            self.sender.request_rekey();
            self.last_rekey = now;
        }
        let Self { writer, sender, .. } = self;
        let write = writer.write_frame_with(|buffer| Ok(sender.seal_into(kind, payload, buffer)?));
        timeout(self.timing.write_timeout, write)
            .await
            .map_err(|_| NetError::WriteTimeout(self.timing.write_timeout))??;
        self.last_sent = Instant::now();
        Ok(())
    }

    fn keepalive_due(&self) -> Instant {
        self.last_sent + self.timing.keepalive_interval
    }
}

/// The receiving state: frames in, records opened, idle clock.
struct ReceiveSide {
    reader: FrameReader,
    receiver: RecordReceiver,
    last_received: Instant,
    idle_timeout: Duration,
}

impl ReceiveSide {
    /// Opens the next record. `Ok(None)`: the peer closed the connection.
    async fn next_record(&mut self) -> Result<Option<(RecordKind, Vec<u8>)>, NetError> {
        let Some(frame) = self.reader.read_frame().await? else {
            return Ok(None);
        };
        let (kind, payload) = self.receiver.open_in_place(frame)?;
        self.last_received = Instant::now();
        Ok(Some((kind, payload.to_vec())))
    }

    /// The next data message, skipping keepalives; fails with [`NetError::IdleTimeout`] when
    /// nothing at all arrived for the idle timeout. Cancel safe (as `next_record`).
    async fn next_message(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        loop {
            let idle_deadline = self.idle_deadline();
            let record = tokio::select! {
                biased;
                record = self.next_record() => record,
                () = sleep_until(idle_deadline) => Err(NetError::IdleTimeout(self.idle_timeout)),
            };
            match record? {
                Some((RecordKind::Keepalive, _)) => continue,
                Some((RecordKind::Data, message)) => return Ok(Some(message)),
                None => return Ok(None),
            }
        }
    }

    fn idle_deadline(&self) -> Instant {
        self.last_received + self.idle_timeout
    }
}

/// An established secure connection: authenticated peer, encrypted records.
pub struct SecureStream {
    send: SendSide,
    receive: ReceiveSide,
    peer: PublicKey,
    version: u32,
    peer_addr: Option<SocketAddr>,
    failed: bool,
}

impl std::fmt::Debug for SecureStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureStream")
            .field("peer", &self.peer)
            .field("peer_addr", &self.peer_addr)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl SecureStream {
    fn new(
        framed: Framed,
        sender: RecordSender,
        receiver: RecordReceiver,
        peer: PublicKey,
        version: u32,
        peer_addr: Option<SocketAddr>,
        config: &SecureConfig,
    ) -> SecureStream {
        let now = Instant::now();
        let mut framed = framed;
        framed
            .reader
            .set_max_len(offst_proto::limits::MAX_FRAME_LEN);
        SecureStream {
            send: SendSide {
                writer: framed.writer,
                sender,
                last_sent: now,
                last_rekey: now,
                timing: Timing::from(config),
            },
            receive: ReceiveSide {
                reader: framed.reader,
                receiver,
                last_received: now,
                idle_timeout: config.idle_timeout,
            },
            peer,
            version,
            peer_addr,
            failed: false,
        }
    }

    /// The authenticated identity of the peer.
    pub fn peer(&self) -> PublicKey {
        self.peer
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The peer's socket address, when known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Lowers the largest message accepted from the peer (a frame larger than
    /// `max_message_len` plus the record overhead ends the connection with
    /// [`NetError::FrameTooLarge`]). For protocols whose messages are all small.
    pub fn limit_message_len(&mut self, max_message_len: usize) {
        self.receive
            .reader
            .set_max_len(max_message_len.saturating_add(
                offst_crypto::record::RECORD_HEADER_LEN + offst_crypto::record::TAG_LEN,
            ));
    }

    /// Sends one message (at most [`MAX_RECORD_PAYLOAD`] bytes) as one record.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), NetError> {
        if self.failed {
            return Err(NetError::Closed);
        }
        let result = self.send.send_record(RecordKind::Data, message).await;
        self.note(result)
    }

    /// Receives the next message. Keepalives are consumed silently; while waiting, this sends
    /// keepalives of its own. `Ok(None)`: the peer closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        if self.failed {
            return Err(NetError::Closed);
        }
        let result = self.recv_inner().await;
        self.note(result)
    }

    /// Receives the next message like [`SecureStream::recv`] but never sends anything while
    /// waiting. For the last message before a switch-over (docs/PROTOCOL.md, "Relay"): after
    /// its request, a side must not put another record on the wire, or the record would end
    /// up in the tunnel. Still fails with [`NetError::IdleTimeout`].
    pub async fn recv_without_keepalive(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        if self.failed {
            return Err(NetError::Closed);
        }
        let result = self.receive.next_message().await;
        self.note(result)
    }

    async fn recv_inner(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        loop {
            let idle_deadline = self.receive.idle_deadline();
            let keepalive_due = self.send.keepalive_due();
            // Checked first: a peer that streams records without pause must not starve our
            // keepalives (the read branch below always wins while records are waiting).
            if Instant::now() >= keepalive_due {
                self.send.send_record(RecordKind::Keepalive, &[]).await?;
                continue;
            }
            // Biased towards reading: records that arrived while nobody was receiving count
            // before the idle deadline is judged.
            tokio::select! {
                biased;
                record = self.receive.next_record() => match record? {
                    None => return Ok(None),
                    Some((RecordKind::Data, message)) => return Ok(Some(message)),
                    Some((RecordKind::Keepalive, _)) => {}
                },
                () = sleep_until(idle_deadline) => {
                    return Err(NetError::IdleTimeout(self.receive.idle_timeout));
                }
                () = sleep_until(keepalive_due) => {
                    self.send.send_record(RecordKind::Keepalive, &[]).await?;
                }
            }
        }
    }

    fn note<T>(&mut self, result: Result<T, NetError>) -> Result<T, NetError> {
        if let Err(err) = &result {
            self.failed = true;
            log_failure(&self.peer, self.peer_addr, err);
        }
        result
    }

    /// Closes the connection: flushes and ends our sending direction.
    pub async fn close(mut self) {
        let _ = timeout(REFUSAL_WRITE_TIMEOUT, self.send.writer.shutdown()).await;
    }

    /// Stops the record layer and returns the framed stream, with any bytes already read but
    /// not yet opened as records. Used at the relay's switch-over point (docs/PROTOCOL.md,
    /// "Relay"), where the connection stops carrying records of this channel.
    pub fn into_framed(self) -> Framed {
        Framed {
            reader: self.receive.reader,
            writer: self.send.writer,
        }
    }

    /// Splits into a receiver (for one reader task) and a sender handle (cloneable). A writer
    /// task is spawned on the current tokio runtime: it seals and sends queued messages, sends
    /// keepalives when idle and requests rekeys. It ends, closing our sending direction, when
    /// the receiver is dropped or every sender handle is dropped, or on a write error.
    pub fn split(self) -> (SecureReceiver, SecureSender) {
        let (queue, messages) = mpsc::channel(SEND_QUEUE_LEN);
        let (receiver_alive, receiver_gone) = oneshot::channel();
        tokio::spawn(write_task(
            self.send,
            messages,
            receiver_gone,
            self.peer,
            self.peer_addr,
        ));
        (
            SecureReceiver {
                receive: self.receive,
                peer: self.peer,
                peer_addr: self.peer_addr,
                failed: false,
                _receiver_alive: receiver_alive,
            },
            SecureSender {
                queue,
                peer: self.peer,
            },
        )
    }
}

fn log_failure(peer: &PublicKey, addr: Option<SocketAddr>, err: &NetError) {
    match err {
        NetError::Closed => {}
        NetError::IdleTimeout(_) | NetError::Io(_) => {
            log::info!("connection with {peer} at {}: {err}", show_addr(addr));
        }
        _ => log::warn!("connection with {peer} at {}: {err}", show_addr(addr)),
    }
}

async fn write_task(
    mut send: SendSide,
    mut messages: mpsc::Receiver<Vec<u8>>,
    mut receiver_gone: oneshot::Receiver<()>,
    peer: PublicKey,
    peer_addr: Option<SocketAddr>,
) {
    loop {
        let keepalive_due = send.keepalive_due();
        let result = tokio::select! {
            biased;
            _ = &mut receiver_gone => break,
            message = messages.recv() => match message {
                Some(message) => send.send_record(RecordKind::Data, &message).await,
                None => break,
            },
            () = sleep_until(keepalive_due) => send.send_record(RecordKind::Keepalive, &[]).await,
        };
        if let Err(err) = result {
            log_failure(&peer, peer_addr, &err);
            return;
        }
    }
    let _ = timeout(REFUSAL_WRITE_TIMEOUT, send.writer.shutdown()).await;
}

/// The receiving half of a split [`SecureStream`]. Dropping it ends the connection.
pub struct SecureReceiver {
    receive: ReceiveSide,
    peer: PublicKey,
    peer_addr: Option<SocketAddr>,
    failed: bool,
    _receiver_alive: oneshot::Sender<()>,
}

impl std::fmt::Debug for SecureReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureReceiver")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl SecureReceiver {
    /// The authenticated identity of the peer.
    pub fn peer(&self) -> PublicKey {
        self.peer
    }

    /// Receives the next message; keepalives are consumed silently. `Ok(None)`: the peer
    /// closed the connection. Fails with [`NetError::IdleTimeout`] when nothing arrived for
    /// the idle timeout. Cancel safe.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        if self.failed {
            return Err(NetError::Closed);
        }
        let result = self.receive.next_message().await;
        if let Err(err) = &result {
            self.failed = true;
            log_failure(&self.peer, self.peer_addr, err);
        }
        result
    }
}

/// A handle to the sending half of a split [`SecureStream`]; clone it for every producer.
#[derive(Debug, Clone)]
pub struct SecureSender {
    queue: mpsc::Sender<Vec<u8>>,
    peer: PublicKey,
}

impl SecureSender {
    /// The authenticated identity of the peer.
    pub fn peer(&self) -> PublicKey {
        self.peer
    }

    /// Queues one message, waiting while the queue is full. Fails with [`NetError::Closed`]
    /// once the connection is gone.
    pub async fn send(&self, message: Vec<u8>) -> Result<(), NetError> {
        check_message_len(&message)?;
        self.queue.send(message).await.map_err(|_| NetError::Closed)
    }

    /// Queues one message without waiting. Fails with [`NetError::SendQueueFull`] when the
    /// peer is not keeping up, [`NetError::Closed`] once the connection is gone.
    pub fn try_send(&self, message: Vec<u8>) -> Result<(), NetError> {
        check_message_len(&message)?;
        self.queue.try_send(message).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => NetError::SendQueueFull,
            mpsc::error::TrySendError::Closed(_) => NetError::Closed,
        })
    }

    /// Whether the connection's writer has ended.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Waits until the connection's writer has ended.
    pub async fn closed(&self) {
        self.queue.closed().await;
    }
}

fn check_message_len(message: &[u8]) -> Result<(), NetError> {
    if message.len() > MAX_RECORD_PAYLOAD {
        return Err(NetError::MessageTooLarge {
            len: message.len(),
            max: MAX_RECORD_PAYLOAD,
        });
    }
    Ok(())
}
