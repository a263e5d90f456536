//! Length-prefixed frames: `u32 big-endian length || payload`, payload at most
//! [`MAX_FRAME_LEN`] bytes. Pure functions over buffers (the socket side is `offst_net`); the
//! length is checked before anything is allocated.

use crate::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};

/// Why a frame is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced or given payload length exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Reads the payload length from a frame header and checks it against `max_len` (at most
/// [`MAX_FRAME_LEN`]). Call this before allocating the payload buffer.
pub fn payload_len(header: [u8; FRAME_HEADER_LEN], max_len: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    let max = max_len.min(MAX_FRAME_LEN);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Parses one frame from the front of `buf`. Returns `Ok(None)` when more bytes are needed,
/// or the payload and the number of bytes consumed.
pub fn parse(buf: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = payload_len(*header, max_len)?;
    let end = FRAME_HEADER_LEN + len;
    Ok(buf.get(FRAME_HEADER_LEN..end).map(|payload| (payload, end)))
}

/// Appends one frame carrying `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: MAX_FRAME_LEN,
        });
    }
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_report_consumed_bytes() {
        let mut out = Vec::new();
        encode(b"hello", &mut out).unwrap();
        encode(b"", &mut out).unwrap();
        let (first, used) = parse(&out, MAX_FRAME_LEN).unwrap().unwrap();
        assert_eq!(first, b"hello");
        let (second, used2) = parse(&out[used..], MAX_FRAME_LEN).unwrap().unwrap();
        assert_eq!(second, b"");
        assert_eq!(used + used2, out.len());
    }

    #[test]
    fn partial_frames_need_more_bytes() {
        let mut out = Vec::new();
        encode(b"hello", &mut out).unwrap();
        for cut in 0..out.len() {
            assert_eq!(parse(&out[..cut], MAX_FRAME_LEN).unwrap(), None);
        }
    }

    #[test]
    fn oversized_length_is_rejected_from_the_header_alone() {
        let header = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
        assert!(matches!(
            parse(&header, MAX_FRAME_LEN),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            payload_len([0, 0, 1, 0], 100),
            Err(FrameError::TooLarge { len: 256, max: 100 })
        ));
    }
}
