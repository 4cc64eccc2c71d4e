//! Length-prefixed framing: every Kafka request and response is an `i32` byte count followed by
//! that many bytes.

/// Why a frame cannot be accepted. Each is the peer's fault; the connection must be closed
/// because the byte stream can no longer be trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix is negative.
    #[error("frame length {0} is negative")]
    NegativeLength(i32),
    /// The length prefix is over `socket.request.max.bytes`.
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    /// The frame is too short to hold a request header.
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
}

/// Size of the length prefix.
pub const LENGTH_PREFIX: usize = 4;
/// The smallest request: api key, api version and correlation id.
pub const MIN_REQUEST: usize = 8;

/// Reads the length prefix at the start of `buf`.
///
/// Returns `Ok(None)` while fewer than four bytes have arrived (an ordinary "incomplete", not an
/// error), otherwise the body length, checked against `max`.
pub fn body_length(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX) else {
        return Ok(None);
    };
    let mut len = [0u8; 4];
    len.copy_from_slice(prefix);
    let len = i32::from_be_bytes(len);
    let size = usize::try_from(len).map_err(|_| FrameError::NegativeLength(len))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if size < MIN_REQUEST {
        return Err(FrameError::TooShort(size));
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_prefix_is_not_an_error() {
        assert_eq!(body_length(&[0, 0, 1], 100), Ok(None));
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(body_length(&[0, 0, 0, 20, 9], 100), Ok(Some(20)));
        assert_eq!(
            body_length(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::NegativeLength(-1))
        );
        assert_eq!(
            body_length(&[0x7f, 0xff, 0xff, 0xff], 100),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: 100
            })
        );
        assert_eq!(
            body_length(&[0, 0, 0, 3], 100),
            Err(FrameError::TooShort(3))
        );
    }
}
