//! The frame decoder: bytes in, frame headers and payload pieces out
//! (RFC 6455 §5.2). It knows frames, not messages: fragmentation, limits on
//! messages and UTF-8 are the [assembler](super::assembler)'s.

use crate::frame::ProtocolError;
use crate::frame::{apply_mask_offset, FrameHeader, OpCode, Parsed, Role, MAX_HEADER_LEN};

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameState {
    pub(crate) opcode: OpCode,
    pub(crate) fin: bool,
    /// RSV bits (RSV1 = 0b100) an extension claimed on this frame.
    pub(crate) rsv: u8,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come. A claim of the peer's: bytes are only
    /// stored as they arrive.
    pub(crate) remaining: u64,
    /// Payload bytes received so far (the masking key offset).
    received: u64,
}

/// Parses frame headers (carrying a header split across inputs), applies
/// every rule a header alone decides, and tracks the current frame's payload.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    role: Role,
    max_frame: u64,
    /// RSV bits that negotiated extensions give a meaning to.
    rsv_allowed: u8,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<FrameState>,
}

fn rsv_of(h: &FrameHeader) -> u8 {
    (u8::from(h.rsv1) << 2) | (u8::from(h.rsv2) << 1) | u8::from(h.rsv3)
}

impl FrameDecoder {
    pub(crate) fn new(role: Role, max_frame: usize) -> FrameDecoder {
        FrameDecoder {
            role,
            max_frame: max_frame as u64,
            rsv_allowed: 0,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
        }
    }

    /// Lets frames carry `bits` (a negotiated extension's RSV bits).
    pub(crate) fn allow_rsv(&mut self, bits: u8) {
        self.rsv_allowed |= bits;
    }

    /// The one set of header rules, used by every receive path. In order:
    ///
    /// - RFC 6455 §5.2: RSV1–3 MUST be 0 unless an extension was negotiated
    ///   that defines them; such bits are allowed only on the first frame of
    ///   a data message (RFC 7692 §6.1);
    /// - §5.5: control frames carry at most 125 bytes and are not fragmented;
    /// - §5.1: frames from a client are masked, frames from a server are not;
    /// - §5.4: a continuation frame continues a fragmented message, and a new
    ///   data frame may not start while one is in progress;
    /// - §10.4: a frame's declared length is within `max_frame_size`.
    ///
    /// Returns the RSV bits an extension claimed.
    #[inline]
    pub(crate) fn check(&self, h: &FrameHeader, in_message: bool) -> Result<u8, ProtocolError> {
        let rsv = rsv_of(h);
        let starts_message = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let claimed = if starts_message {
            rsv & self.rsv_allowed
        } else {
            0
        };
        if rsv != claimed {
            return Err(ProtocolError::ReservedBitsSet);
        }
        let bare = FrameHeader {
            rsv1: false,
            rsv2: false,
            rsv3: false,
            ..*h
        };
        bare.check(self.role)?;
        if !h.opcode.is_control() {
            match (h.opcode, in_message) {
                (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(ProtocolError::ExpectedContinuation)
                }
                _ => {}
            }
            if h.payload_len > self.max_frame {
                return Err(ProtocolError::FrameTooBig);
            }
        }
        Ok(claimed)
    }

    /// No header bytes carried and no frame in progress.
    #[inline]
    pub(crate) fn between_frames(&self) -> bool {
        self.header_len == 0 && self.frame.is_none()
    }

    /// Whether header bytes are carried or a frame is in progress.
    pub(crate) fn in_progress(&self) -> bool {
        !self.between_frames()
    }

    /// The frame whose payload is arriving.
    #[inline]
    pub(crate) fn frame(&self) -> Option<&FrameState> {
        self.frame.as_ref()
    }

    /// Parses (and checks) the next header from carried bytes plus `data`.
    /// `None` if incomplete: every byte of `data` is then carried.
    pub(crate) fn header(
        &mut self,
        data: &[u8],
        in_message: bool,
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let parsed = if self.header_len == 0 {
            match FrameHeader::parse(data)? {
                Parsed::Complete(h, n) => Some((h, n)),
                Parsed::Incomplete(_) => {
                    // Fewer than MAX_HEADER_LEN bytes, or parse would have completed.
                    self.header[..data.len()].copy_from_slice(data);
                    self.header_len = data.len();
                    None
                }
            }
        } else {
            let have = self.header_len;
            let take = (MAX_HEADER_LEN - have).min(data.len());
            self.header[have..have + take].copy_from_slice(&data[..take]);
            match FrameHeader::parse(&self.header[..have + take])? {
                Parsed::Complete(h, n) => {
                    self.header_len = 0;
                    Some((h, n - have))
                }
                Parsed::Incomplete(_) => {
                    self.header_len = have + take;
                    None
                }
            }
        };
        let Some((h, used)) = parsed else {
            return Ok(None);
        };
        let rsv = self.check(&h, in_message)?;
        self.frame = Some(FrameState {
            opcode: h.opcode,
            fin: h.fin,
            rsv,
            mask: h.mask,
            remaining: h.payload_len,
            received: 0,
        });
        Ok(Some((h, used)))
    }

    /// How many of `available` input bytes belong to the current frame.
    #[inline]
    pub(crate) fn take(&self, available: usize) -> usize {
        self.frame
            .as_ref()
            .map_or(0, |f| f.remaining.min(available as u64) as usize)
    }

    /// Takes in payload bytes copied to `buf` (masked as they came):
    /// unmasks them at the frame's key offset and counts them. Returns the
    /// frame once its whole payload has arrived.
    #[inline]
    pub(crate) fn payload(&mut self, buf: &mut [u8]) -> Option<FrameState> {
        let frame = self.frame.as_mut()?;
        let n = (buf.len() as u64).min(frame.remaining);
        if let Some(key) = frame.mask {
            apply_mask_offset(buf, key, frame.received as usize);
        }
        frame.remaining -= n;
        frame.received += n;
        if frame.remaining == 0 {
            return self.frame.take();
        }
        None
    }

    /// Forgets the frame in progress (after a final error).
    pub(crate) fn reset(&mut self) {
        self.frame = None;
    }
}
