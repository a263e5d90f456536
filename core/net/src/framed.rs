//! Length-prefixed frames over a TCP stream (docs/PROTOCOL.md, "Frames"): `u32` big-endian
//! payload length, then the payload. The length is checked against the limit as soon as the
//! 4-byte header is in, before any buffer is grown for the payload. Parsing itself is the pure
//! [`offst_proto::frame`]; this module only moves bytes.

use offst_proto::frame;
use offst_proto::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::NetError;

/// Initial size of a connection's read buffer. Most messages are far smaller; the buffer grows
/// (up to one maximal frame) only when a frame header announces more.
pub const READ_BUFFER_LEN: usize = 16 * 1024;

/// A read buffer grown beyond this for one large frame is released once it is drained, so a
/// single large message does not pin memory for the life of the connection.
const SHRINK_BUFFER_ABOVE: usize = 256 * 1024;

/// The reading half: buffers bytes and yields whole frames.
#[derive(Debug)]
pub struct FrameReader {
    half: OwnedReadHalf,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    max_len: usize,
}

impl FrameReader {
    /// Reads frames of at most `max_len` bytes (capped at [`MAX_FRAME_LEN`]) from `half`,
    /// starting with the bytes in `prefix` (bytes already read from the stream by an earlier
    /// owner, e.g. across the relay's switch-over).
    pub fn new(half: OwnedReadHalf, prefix: Vec<u8>, max_len: usize) -> FrameReader {
        let end = prefix.len();
        let mut buffer = prefix;
        if buffer.len() < READ_BUFFER_LEN {
            buffer.resize(READ_BUFFER_LEN, 0);
        }
        FrameReader {
            half,
            buffer,
            start: 0,
            end,
            max_len: max_len.min(MAX_FRAME_LEN),
        }
    }

    /// Reads the next frame and returns its payload (in place, valid until the next call).
    /// Returns `Ok(None)` when the peer closed the connection at a frame boundary.
    ///
    /// Cancel safe: if the future is dropped, bytes already read stay buffered and the next
    /// call continues where this one stopped.
    pub async fn read_frame(&mut self) -> Result<Option<&mut [u8]>, NetError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buffer.len() > SHRINK_BUFFER_ABOVE {
                self.buffer = vec![0; READ_BUFFER_LEN];
            }
        }
        loop {
            let available = self.end - self.start;
            let needed = match self
                .buffer
                .get(self.start..self.end)
                .and_then(|bytes| bytes.first_chunk::<FRAME_HEADER_LEN>())
            {
                Some(header) => {
                    let len = frame::payload_len(*header, self.max_len).map_err(|err| {
                        let frame::FrameError::TooLarge { len, max } = err;
                        NetError::FrameTooLarge { len, max }
                    })?;
                    FRAME_HEADER_LEN + len
                }
                None => FRAME_HEADER_LEN,
            };
            if available >= needed {
                let payload_start = self.start + FRAME_HEADER_LEN;
                self.start += needed;
                return Ok(self.buffer.get_mut(payload_start..self.start));
            }
            self.make_room(needed);
            let read = self.half.read(&mut self.buffer[self.end..]).await?;
            if read == 0 {
                return if available == 0 {
                    Ok(None)
                } else {
                    Err(NetError::TruncatedFrame {
                        received: available,
                        expected: needed,
                    })
                };
            }
            self.end += read;
        }
    }

    /// Makes sure there is room to read towards `needed` bytes from `start`: buffered bytes
    /// move to the front, and the buffer grows geometrically (at most to `needed`, one frame
    /// within the limit), so memory follows the bytes that actually arrived rather than the
    /// length a peer announced.
    fn make_room(&mut self, needed: usize) {
        if self.buffer.len() - self.start >= needed {
            return;
        }
        self.buffer.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buffer.len() < needed && self.end == self.buffer.len() {
            let grown = self
                .buffer
                .len()
                .saturating_mul(2)
                .clamp(READ_BUFFER_LEN, needed);
            self.buffer.resize(grown, 0);
        }
    }

    /// Changes the largest frame accepted from now on (capped at [`MAX_FRAME_LEN`]). A
    /// handshake accepts only small frames; protocols with small messages (the relay's) may
    /// lower it for the whole connection.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.min(MAX_FRAME_LEN);
    }

    /// Returns the socket half and the bytes read but not yet consumed as frames.
    pub fn into_parts(self) -> (OwnedReadHalf, Vec<u8>) {
        let rest = self
            .buffer
            .get(self.start..self.end)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        (self.half, rest)
    }
}

/// The writing half: sends whole frames, each with one write call where possible.
#[derive(Debug)]
pub struct FrameWriter {
    half: OwnedWriteHalf,
    buffer: Vec<u8>,
}

impl FrameWriter {
    /// Writes frames to `half`.
    pub fn new(half: OwnedWriteHalf) -> FrameWriter {
        FrameWriter {
            half,
            buffer: Vec::new(),
        }
    }

    /// Sends one frame carrying `payload`.
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), NetError> {
        self.buffer.clear();
        frame::encode(payload, &mut self.buffer).map_err(|err| {
            let frame::FrameError::TooLarge { len, max } = err;
            NetError::MessageTooLarge { len, max }
        })?;
        self.half.write_all(&self.buffer).await?;
        Ok(())
    }

    /// Builds a frame in the internal buffer with `fill` (which appends the payload after the
    /// header) and sends it; avoids a copy for callers that produce the payload in place.
    pub(crate) async fn write_frame_with(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), NetError>,
    ) -> Result<(), NetError> {
        self.buffer.clear();
        self.buffer.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        fill(&mut self.buffer)?;
        let len = self.buffer.len() - FRAME_HEADER_LEN;
        if len > MAX_FRAME_LEN {
            return Err(NetError::MessageTooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        self.buffer[..FRAME_HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        self.half.write_all(&self.buffer).await?;
        if self.buffer.capacity() > SHRINK_BUFFER_ABOVE {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Flushes and closes the sending direction (the peer reads the end of the stream).
    pub async fn shutdown(&mut self) -> Result<(), NetError> {
        self.half.shutdown().await?;
        Ok(())
    }

    /// Returns the socket half.
    pub fn into_inner(self) -> OwnedWriteHalf {
        self.half
    }
}

/// A TCP stream carrying frames, both halves.
#[derive(Debug)]
pub struct Framed {
    /// The reading half.
    pub reader: FrameReader,
    /// The writing half.
    pub writer: FrameWriter,
}

impl Framed {
    /// Frames over `stream` with `bytes_already_read` as the start of the input (empty for a
    /// fresh connection).
    pub fn with_prefix(stream: TcpStream, bytes_already_read: Vec<u8>) -> Framed {
        let (read, write) = stream.into_split();
        Framed {
            reader: FrameReader::new(read, bytes_already_read, MAX_FRAME_LEN),
            writer: FrameWriter::new(write),
        }
    }

    /// The stream's peer address, for logs.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.writer.half.peer_addr().ok()
    }

    /// Stops framing: returns the TCP stream and the bytes read from it but not consumed as
    /// frames (they belong to whatever runs on the stream next).
    pub fn into_parts(self) -> Result<(TcpStream, Vec<u8>), NetError> {
        let (read, rest) = self.reader.into_parts();
        let stream = read
            .reunite(self.writer.half)
            .map_err(|_| NetError::Closed)?;
        Ok((stream, rest))
    }
}

impl From<TcpStream> for Framed {
    fn from(stream: TcpStream) -> Framed {
        Framed::with_prefix(stream, Vec::new())
    }
}
