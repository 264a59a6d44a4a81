//! The message assembler: frame payloads in, messages out (RFC 6455 §5.4,
//! §5.5, §8.1). It reassembles fragments, passes a message through the
//! extension that claimed it, applies the message size limit to what the
//! application would receive, and validates text as UTF-8 as it grows.

use super::decoder::FrameState;
use super::extension::ExtensionDecoder;
use super::Message;
use crate::frame::ProtocolError;
use crate::frame::{parse_close_payload, FrameHeader, OpCode};
use crate::utf8::Validator;

/// A data message being reassembled from one or more frames.
#[derive(Debug)]
struct Partial {
    text: bool,
    /// What the application receives (decoded, if an extension claimed it).
    data: Vec<u8>,
    utf8: Validator,
    /// The extension decoding this message, by index.
    decoder: Option<usize>,
    /// A whole unfragmented, untransformed text message arrived in one
    /// piece: validated once at the end instead of piece by piece.
    validate_at_end: bool,
    /// Delivered in pieces as it arrives (`data` holds only the latest
    /// piece), not whole; the message size limit does not apply.
    streamed: bool,
}

/// Where a frame's payload bytes go as they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// The control frame buffer (at most 125 bytes).
    Control,
    /// Straight into the message: no extension claimed it.
    Message,
    /// Into the wire buffer, for the extension to decode.
    Wire,
}

#[derive(Debug)]
pub(crate) struct Assembler {
    max_message: u64,
    message: Option<Partial>,
    control: Vec<u8>,
    /// Wire bytes of an extension-claimed message not decoded yet.
    wire: Vec<u8>,
    extensions: Vec<Box<dyn ExtensionDecoder>>,
    /// The last piece of a streamed message that has ended.
    ended_piece: Vec<u8>,
}

impl Assembler {
    pub(crate) fn new(max_message: usize) -> Assembler {
        Assembler {
            max_message: max_message as u64,
            message: None,
            control: Vec::new(),
            wire: Vec::new(),
            extensions: Vec::new(),
            ended_piece: Vec::new(),
        }
    }

    pub(crate) fn add_extension(&mut self, extension: Box<dyn ExtensionDecoder>) {
        self.extensions.push(extension);
    }

    #[inline]
    pub(crate) fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Bytes held for the data message being reassembled (decoded bytes,
    /// plus wire bytes waiting for the extension).
    pub(crate) fn buffered(&self) -> usize {
        self.message
            .as_ref()
            .map_or(0, |m| m.data.len() + self.wire.len())
    }

    /// Whether a message of `len` bytes could be taken whole, with no
    /// extension in the way: the in-place fast path's limit.
    #[inline]
    pub(crate) fn fits_whole(&self, len: u64) -> bool {
        len <= self.max_message
    }

    /// A frame (already checked by the decoder) starts: rules that need the
    /// message in progress, before any payload byte is stored.
    pub(crate) fn start_frame(
        &mut self,
        h: &FrameHeader,
        rsv: u8,
        available: usize,
        stream: bool,
    ) -> Result<Sink, ProtocolError> {
        if h.opcode.is_control() {
            self.control.clear();
            return Ok(Sink::Control);
        }
        if h.opcode != OpCode::Continuation {
            let decoder = (rsv != 0)
                .then(|| self.extensions.iter().position(|e| e.rsv_bits() & rsv != 0))
                .flatten();
            self.message = Some(Partial {
                text: h.opcode == OpCode::Text,
                data: Vec::new(),
                utf8: Validator::new(),
                decoder,
                streamed: stream,
                validate_at_end: !stream
                    && decoder.is_none()
                    && h.fin
                    && h.opcode == OpCode::Text
                    && h.payload_len <= available as u64,
            });
        }
        let so_far = self.buffered() as u64;
        let Some(m) = self.message.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if m.streamed && m.decoder.is_none() {
            // Handed out piece by piece: the caller bounds what it keeps.
            return Ok(Sink::Message);
        }
        if m.decoder.is_some() {
            // The limit applies to the decoded output as it grows (see
            // `take`); the wire bytes only have to fit the frame limit.
            self.wire
                .reserve(h.payload_len.min(available as u64) as usize);
            return Ok(Sink::Wire);
        }
        // RFC 6455 §10.4: limits are checked from the declared length,
        // before buffering anything.
        if so_far + h.payload_len > self.max_message {
            return Err(ProtocolError::MessageTooBig);
        }
        // Reserve only what is already here, never the declared length.
        m.data.reserve(h.payload_len.min(available as u64) as usize);
        Ok(Sink::Message)
    }

    /// The buffer a frame's payload bytes are copied into.
    #[inline]
    pub(crate) fn sink(&mut self, sink: Sink) -> &mut Vec<u8> {
        match (sink, self.message.as_mut()) {
            (Sink::Message, Some(m)) => &mut m.data,
            (Sink::Wire, _) => &mut self.wire,
            _ => &mut self.control,
        }
    }

    /// Payload bytes from `start` of the sink's buffer were added and
    /// unmasked: validate them (or decode them, for an extension).
    #[inline]
    pub(crate) fn take(&mut self, sink: Sink, start: usize) -> Result<(), ProtocolError> {
        match sink {
            Sink::Control => Ok(()),
            Sink::Message => {
                let Some(m) = self.message.as_mut() else {
                    return Ok(());
                };
                if m.text && !m.validate_at_end {
                    m.utf8
                        .feed(&m.data[start..])
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                Ok(())
            }
            Sink::Wire => self.decode(false),
        }
    }

    /// Turns the message in progress into a streamed one: what it holds so
    /// far becomes its first piece. Returns its opcode.
    pub(crate) fn stream_from_here(&mut self) -> Option<OpCode> {
        let m = self.message.as_mut()?;
        m.streamed = true;
        m.validate_at_end = false;
        Some(if m.text { OpCode::Text } else { OpCode::Binary })
    }

    /// Whether a streamed message is in progress.
    pub(crate) fn streaming(&self) -> bool {
        self.message.as_ref().is_some_and(|m| m.streamed)
    }

    /// The latest piece of a streamed message (decoded, validated).
    pub(crate) fn piece(&self) -> &[u8] {
        match &self.message {
            Some(m) if m.streamed => &m.data,
            _ => &self.ended_piece,
        }
    }

    /// Forgets the piece handed out, before the next one is taken in.
    pub(crate) fn clear_piece(&mut self) {
        // The last piece of a message that has ended: its buffer (up to a
        // read's worth) goes too, so a connection that goes idle after a
        // large streamed message does not keep it.
        self.ended_piece = Vec::new();
        if let Some(m) = self.message.as_mut() {
            if m.streamed {
                m.data.clear();
            }
        }
    }

    /// Passes the wire bytes held to the message's extension.
    fn decode(&mut self, fin: bool) -> Result<(), ProtocolError> {
        let Some(m) = self.message.as_mut() else {
            return Ok(());
        };
        let Some(index) = m.decoder else {
            return Ok(());
        };
        let start = m.data.len();
        let max = usize::try_from(self.max_message).unwrap_or(usize::MAX);
        self.extensions[index].decode(&self.wire, fin, &mut m.data, max)?;
        self.wire.clear();
        if m.data.len() > max {
            // An extension that broke its contract still cannot get past the limit.
            return Err(ProtocolError::MessageTooBig);
        }
        if m.text {
            m.utf8
                .feed(&m.data[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// Space for `step` more payload bytes at the end of an untransformed
    /// data message, for a driver that reads straight into it; returns
    /// where the space starts.
    pub(crate) fn grow_for_direct(&mut self, step: usize) -> Option<(usize, &mut [u8])> {
        let m = self.message.as_mut()?;
        if m.decoder.is_some() {
            return None;
        }
        let start = m.data.len();
        m.data.resize(start + step, 0);
        Some((start, &mut m.data[start..]))
    }

    /// Keeps `n` bytes of the space from `start` and drops the rest.
    pub(crate) fn truncate_direct(&mut self, start: usize, n: usize) -> usize {
        match self.message.as_mut() {
            Some(m) => {
                let n = n.min(m.data.len().saturating_sub(start));
                m.data.truncate(start + n);
                n
            }
            None => 0,
        }
    }

    /// The data message's buffer, for a driver reading straight into it.
    pub(crate) fn direct_slice(&mut self, start: usize) -> &mut [u8] {
        match self.message.as_mut() {
            Some(m) => &mut m.data[start..],
            None => &mut [],
        }
    }

    /// A frame's payload is complete: yield a control frame or a finished message.
    pub(crate) fn finish_frame(
        &mut self,
        frame: FrameState,
    ) -> Result<Option<Message>, ProtocolError> {
        match frame.opcode {
            OpCode::Ping => Ok(Some(Message::Ping(std::mem::take(&mut self.control)))),
            OpCode::Pong => Ok(Some(Message::Pong(std::mem::take(&mut self.control)))),
            OpCode::Close => Ok(Some(Message::Close(parse_close_payload(&self.control)?))),
            _ if !frame.fin => Ok(None),
            _ => {
                self.decode(true)?;
                if self.streaming() {
                    // The last piece stays readable until the next call;
                    // the message itself ends here.
                    let Some(m) = self.message.as_mut() else {
                        return Ok(None);
                    };
                    m.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    m.streamed = false;
                    self.ended_piece = std::mem::take(&mut m.data);
                    self.message = None;
                    return Ok(None);
                }
                let Some(m) = self.message.take() else {
                    return Ok(None);
                };
                if !m.text {
                    return Ok(Some(Message::Binary(m.data)));
                }
                m.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                String::from_utf8(m.data)
                    .map(|s| Some(Message::Text(s)))
                    .map_err(|_| ProtocolError::InvalidUtf8)
            }
        }
    }

    /// Drops what was buffered (a failed connection delivers nothing more).
    pub(crate) fn reset(&mut self) {
        self.message = None;
        self.wire = Vec::new();
    }
}
