//! Receiving in pieces: the data messages a [`Streaming`] policy selects
//! come out as a start, pieces of their payload as the bytes arrive, and an
//! end, so memory holds one piece, not the message.

use super::{Incoming, Located, Out};
use crate::frame::{OpCode, ProtocolError};
use crate::protocol::MessageRef;

impl Incoming {
    /// Like [`receive_located`](Incoming::receive_located), delivering data
    /// messages that `streaming` selects in pieces as their bytes arrive
    /// (a [`PieceAt::Start`], [`PieceAt::Data`] pieces, a [`PieceAt::End`])
    /// instead of whole; everything else as before. Look at what it found
    /// with [`view_piece`](Incoming::view_piece).
    ///
    /// A streamed message costs no more memory than one piece, whatever its
    /// size: [`SizeLimits::max_message_size`](crate::protocol::SizeLimits::max_message_size) does not apply to it (bound what
    /// you keep yourself), except that what an extension (permessage-deflate)
    /// decodes from one piece of wire bytes may not exceed it (a decompression
    /// bomb fails with 1009); `max_frame_size` still applies, and text is
    /// still validated as UTF-8 as it arrives (a bad byte fails with 1007).
    /// Once a message has started streaming, go on with `receive_piece`
    /// until its end.
    pub fn receive_piece(
        &mut self,
        data: &mut [u8],
        streaming: Streaming,
    ) -> Result<(usize, Option<PieceAt>), ProtocolError> {
        self.held = None;
        if !self.end_pending && !self.piece_pending && !self.assembler.in_message() {
            if let Some((opcode, start, end)) = self.whole_frame_at_start(data, streaming) {
                return Ok((
                    end,
                    Some(PieceAt::Message(Located::Input { opcode, start, end })),
                ));
            }
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.step(data, streaming);
        let (consumed, out) = self.sticky(result)?;
        let at = match out {
            Out::Nothing => None,
            Out::Message(message) => {
                self.held = Some(message);
                Some(PieceAt::Message(Located::Held))
            }
            Out::Start(opcode) => Some(PieceAt::Start(opcode)),
            Out::Piece => Some(PieceAt::Data),
            Out::End => Some(PieceAt::End),
        };
        Ok((consumed, at))
    }

    /// What [`receive_piece`](Incoming::receive_piece) found; `input` and
    /// `base` as for [`view`](Incoming::view).
    pub fn view_piece<'a>(
        &'a mut self,
        input: &'a [u8],
        at: PieceAt,
        base: usize,
    ) -> Result<Piece<'a>, ProtocolError> {
        Ok(match at {
            PieceAt::Message(located) => Piece::Message(self.view(input, located, base)?),
            PieceAt::Start(opcode) => Piece::Start(opcode),
            PieceAt::Data => Piece::Data(self.assembler.piece()),
            PieceAt::End => Piece::End,
        })
    }
}

/// Which data messages are delivered in pieces as they arrive (see
/// [`Incoming::receive_piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    /// None: every message is delivered whole.
    Never,
    /// Every data message.
    Always,
    /// Messages larger than this many bytes: those whose first frame
    /// declares more, and fragmented ones once they grow past it (what
    /// arrived so far is then their first piece). Smaller ones whole, so
    /// memory is bounded by about this much plus one piece.
    Above(usize),
}

impl Streaming {
    pub(super) fn applies(self, len: u64) -> bool {
        match self {
            Streaming::Never => false,
            Streaming::Always => true,
            Streaming::Above(n) => len > n as u64,
        }
    }
}

/// Where [`Incoming::receive_piece`] found what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceAt {
    /// A whole message or control frame, where [`Located`] says.
    Message(Located),
    /// A streamed data message starts (text or binary).
    Start(OpCode),
    /// The next bytes of the streamed message, held by the decoder.
    Data,
    /// The streamed message is complete.
    End,
}

/// What [`Incoming::receive_piece`] found, borrowed (see
/// [`Incoming::view_piece`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole message or control frame.
    Message(MessageRef<'a>),
    /// A streamed data message starts: [`OpCode::Text`] or [`OpCode::Binary`].
    Start(OpCode),
    /// The next bytes of the streamed message (for text, valid UTF-8 so far;
    /// a code point may be split between pieces).
    Data(&'a [u8]),
    /// The streamed message is complete (and, for text, valid UTF-8).
    End,
}
