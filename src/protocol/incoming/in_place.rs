//! Receiving in place: a whole frame at the start of the input is unmasked
//! where it lies and lent out, with no allocation; anything else falls back
//! to [`Incoming::receive`] and is lent from the decoder.

use super::{Incoming, Streaming};
use crate::frame::{apply_mask, FrameHeader, OpCode, Parsed, ProtocolError};
use crate::protocol::{MessageRef, Received};

/// The outcome of one [`Incoming::receive_in_place`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRef<'a> {
    /// How many bytes of the input were used.
    pub consumed: usize,
    /// A complete message or control frame, borrowed from the input or the
    /// decoder.
    pub message: Option<MessageRef<'a>>,
}

/// Where [`Incoming::receive_located`] found a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// In the input, unmasked in place: its opcode and where its payload
    /// starts and ends.
    Input {
        /// The frame's opcode (text, binary, ping or pong).
        opcode: OpCode,
        /// Where the payload starts in the input.
        start: usize,
        /// Where it ends.
        end: usize,
    },
    /// Decoded into the decoder's own buffer (a fragmented message, a frame
    /// split across inputs, a close frame), lent out until the next call.
    Held,
}

impl Incoming {
    /// Like [`receive`](Incoming::receive), without allocating when it can:
    /// a whole unfragmented message or control frame at the start of `data`
    /// is unmasked in place and returned borrowed from `data`; anything else
    /// is decoded by `receive` and lent out from the decoder until the next
    /// call. `data` is modified (payloads are unmasked where they lie).
    pub fn receive_in_place<'a>(
        &'a mut self,
        data: &'a mut [u8],
    ) -> Result<ReceivedRef<'a>, ProtocolError> {
        let (consumed, located) = self.receive_located(data)?;
        let message = match located {
            Some(located) => Some(self.view(data, located, 0)?),
            None => None,
        };
        Ok(ReceivedRef { consumed, message })
    }

    /// [`receive_in_place`](Incoming::receive_in_place) without the borrow:
    /// says where the message is, for a driver that must let go of `data`
    /// before it looks (see [`view`](Incoming::view)).
    pub fn receive_located(
        &mut self,
        data: &mut [u8],
    ) -> Result<(usize, Option<Located>), ProtocolError> {
        self.held = None;
        if let Some((opcode, start, end)) = self.whole_frame_at_start(data, Streaming::Never) {
            return Ok((end, Some(Located::Input { opcode, start, end })));
        }
        let Received { consumed, message } = self.receive(data)?;
        let located = message.is_some().then_some(Located::Held);
        self.held = message;
        Ok((consumed, located))
    }

    /// Lets go of the message lent out by the last call, so that a large
    /// one does not stay in memory while the connection waits for the next.
    pub(crate) fn release_held(&mut self) {
        self.held = None;
    }

    /// The message [`receive_located`](Incoming::receive_located) found:
    /// `input` is the buffer whose bytes from `base` were passed to it. A
    /// text payload is checked as UTF-8 here (an error is final, as ever).
    pub fn view<'a>(
        &'a mut self,
        input: &'a [u8],
        located: Located,
        base: usize,
    ) -> Result<MessageRef<'a>, ProtocolError> {
        let (opcode, start, end) = match located {
            Located::Held => {
                return Ok(self
                    .held
                    .as_ref()
                    .map_or(MessageRef::Close(None), MessageRef::from))
            }
            Located::Input { opcode, start, end } => (opcode, base + start, base + end),
        };
        let payload = &input[start..end];
        Ok(match opcode {
            OpCode::Text => match std::str::from_utf8(payload) {
                Ok(text) => MessageRef::Text(text),
                Err(_) => return self.sticky(Err(ProtocolError::InvalidUtf8)),
            },
            OpCode::Binary => MessageRef::Binary(payload),
            OpCode::Ping => MessageRef::Ping(payload),
            _ => MessageRef::Pong(payload),
        })
    }

    /// If `data` starts with a whole frame that needs no state (a final text
    /// or binary frame outside a fragmented message and untouched by any
    /// extension, or a ping or pong) and passes the decoder's header rules
    /// and the message limit, unmasks its payload in place and returns its
    /// opcode and where its payload starts and ends. Anything else (errors
    /// included) is left to the general path, which reports it.
    #[inline]
    pub(super) fn whole_frame_at_start(
        &self,
        data: &mut [u8],
        streaming: Streaming,
    ) -> Option<(OpCode, usize, usize)> {
        if self.failed.is_some()
            || self.close_received
            || !self.decoder.between_frames()
            || self.direct.is_some()
        {
            return None;
        }
        let Ok(Parsed::Complete(h, used)) = FrameHeader::parse(data) else {
            return None;
        };
        let in_message = self.assembler.in_message();
        let data_frame = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let control = matches!(h.opcode, OpCode::Ping | OpCode::Pong);
        if !h.fin
            || !(data_frame || control)
            || self.decoder.check(&h, in_message) != Ok(0)
            || (data_frame && !self.assembler.fits_whole(h.payload_len))
            || (data_frame && streaming.applies(h.payload_len))
        {
            return None;
        }
        let end = used.checked_add(usize::try_from(h.payload_len).ok()?)?;
        let payload = data.get_mut(used..end)?;
        if let Some(key) = h.mask {
            apply_mask(payload, key);
        }
        Some((h.opcode, used, end))
    }
}
