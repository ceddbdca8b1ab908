//! MLLP framing (`<VT> message <FS><CR>`) as a pure codec over bytes: no sockets here, so
//! the listener and the tests share exactly one implementation.

use std::fmt;

/// Start of block.
pub const VT: u8 = 0x0b;
/// End of block.
pub const FS: u8 = 0x1c;
pub const CR: u8 = 0x0d;

/// The largest frame the decoder buffers by default (16 MiB): a sender that never closes a
/// frame must not grow memory without bound.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Wraps one message in a frame.
pub fn encode_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(VT);
    out.extend_from_slice(message);
    out.push(FS);
    out.push(CR);
    out
}

/// A frame longer than the limit was dropped; the decoder has resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    pub limit: usize,
}

impl fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an MLLP frame exceeded {} bytes and was dropped", self.limit)
    }
}

impl std::error::Error for FrameTooLarge {}

/// Incremental decoder: feed it whatever each read returned, then take frames until it has
/// none. Bytes outside frames are discarded (and counted); a frame start inside an unclosed
/// frame abandons the unclosed one, since a sender that restarts has given up on it.
#[derive(Debug)]
pub struct MllpDecoder {
    buffer: Vec<u8>,
    /// Where unread bytes start in `buffer`; compacting lazily keeps `push` cheap.
    start: usize,
    max_frame: usize,
    discarded: u64,
    /// Dropping an oversized frame: skip until the next frame start.
    skipping: bool,
}

impl Default for MllpDecoder {
    fn default() -> Self {
        MllpDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl MllpDecoder {
    pub fn new(max_frame: usize) -> Self {
        MllpDecoder { buffer: Vec::new(), start: 0, max_frame: max_frame.max(1), discarded: 0, skipping: false }
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buffer.len() / 2 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes discarded so far because they were outside any frame or in an abandoned one.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Bytes held that do not yet form a complete frame.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The next complete frame's payload, `Ok(None)` when more bytes are needed, or an
    /// error once for each oversized frame dropped.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameTooLarge> {
        loop {
            let unread = &self.buffer[self.start..];
            let Some(vt) = unread.iter().position(|&b| b == VT) else {
                self.discard(unread.len());
                return Ok(None);
            };
            self.discard(vt);
            self.skipping = false;
            let body_start = self.start + 1;
            let body = &self.buffer[body_start..];
            match body.iter().position(|&b| b == FS || b == VT) {
                None => {
                    if body.len() > self.max_frame {
                        // Keep nothing of it: wait for the next start of block.
                        let len = self.buffer.len() - self.start;
                        self.discard(len);
                        self.skipping = true;
                        return Err(FrameTooLarge { limit: self.max_frame });
                    }
                    return Ok(None);
                }
                Some(end) if body[end] == VT => {
                    // Restarted: the unclosed frame is abandoned.
                    self.discard(end + 1);
                    continue;
                }
                Some(end) => {
                    // FS must be followed by CR; a sender that omits it still ended the frame,
                    // but when FS is the last byte read, the CR may be in the next read.
                    let after = body.get(end + 1).copied();
                    if after.is_none() {
                        return Ok(None);
                    }
                    if end > self.max_frame {
                        self.discard(end + 2);
                        return Err(FrameTooLarge { limit: self.max_frame });
                    }
                    let payload = body[..end].to_vec();
                    let consumed = 1 + end + 1 + usize::from(after == Some(CR));
                    self.start += consumed;
                    return Ok(Some(payload));
                }
            }
        }
    }

    fn discard(&mut self, n: usize) {
        let n = n.min(self.buffer.len() - self.start);
        if !self.skipping {
            self.discarded += n as u64;
        }
        self.start += n;
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(decoder: &mut MllpDecoder) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = decoder.next_frame() {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn one_frame_in_one_read() {
        let mut d = MllpDecoder::default();
        d.push(&encode_frame(b"MSH|^~\\&|A\r"));
        assert_eq!(drain(&mut d), vec![b"MSH|^~\\&|A\r".to_vec()]);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.discarded(), 0);
    }

    #[test]
    fn frames_split_across_reads_at_every_byte() {
        let mut stream = encode_frame(b"first");
        stream.extend(encode_frame(b"second"));
        for chunk in 1..=stream.len() {
            let mut d = MllpDecoder::default();
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                frames.extend(drain(&mut d));
            }
            assert_eq!(frames, vec![b"first".to_vec(), b"second".to_vec()], "chunk size {chunk}");
            assert_eq!(d.discarded(), 0);
        }
    }

    #[test]
    fn fs_then_cr_split_between_reads() {
        let mut d = MllpDecoder::default();
        d.push(b"\x0bmsg\x1c");
        assert_eq!(d.next_frame(), Ok(None));
        d.push(b"\r");
        assert_eq!(d.next_frame(), Ok(Some(b"msg".to_vec())));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn garbage_between_frames_is_skipped_and_counted() {
        let mut d = MllpDecoder::default();
        d.push(b"noise\r\n");
        d.push(&encode_frame(b"one"));
        d.push(b"\x00\xffjunk");
        d.push(&encode_frame(b"two"));
        assert_eq!(drain(&mut d), vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(d.discarded(), 7 + 6);
    }

    #[test]
    fn restarted_frame_abandons_the_unclosed_one() {
        let mut d = MllpDecoder::default();
        d.push(b"\x0bbroken");
        d.push(&encode_frame(b"whole"));
        assert_eq!(drain(&mut d), vec![b"whole".to_vec()]);
        assert_eq!(d.discarded(), 7);
    }

    #[test]
    fn missing_cr_after_fs_still_ends_the_frame() {
        let mut d = MllpDecoder::default();
        d.push(b"\x0bone\x1c\x0btwo\x1c\r");
        assert_eq!(drain(&mut d), vec![b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn oversized_frames_are_dropped_once_and_decoding_resumes() {
        let mut d = MllpDecoder::new(8);
        d.push(b"\x0b0123456789abcdef");
        assert_eq!(d.next_frame(), Err(FrameTooLarge { limit: 8 }));
        d.push(b"more of the same\x1c\r");
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&encode_frame(b"short"));
        assert_eq!(d.next_frame(), Ok(Some(b"short".to_vec())));
        // A whole oversized frame in one read is dropped too.
        d.push(&encode_frame(b"0123456789"));
        assert_eq!(d.next_frame(), Err(FrameTooLarge { limit: 8 }));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let mut d = MllpDecoder::new(64);
            for _ in 0..8 {
                let len = (next(&mut seed) % 40) as usize;
                let bytes: Vec<u8> = (0..len)
                    .map(|_| match next(&mut seed) % 6 {
                        0 => VT,
                        1 => FS,
                        2 => CR,
                        _ => next(&mut seed) as u8,
                    })
                    .collect();
                d.push(&bytes);
                for _ in 0..50 {
                    if let Ok(None) = d.next_frame() {
                        break;
                    }
                }
            }
            assert!(d.pending() <= 64 * 8 * 40, "round {round}");
        }
    }

    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }
}
