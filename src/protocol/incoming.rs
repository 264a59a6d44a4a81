//! The receiving half of the protocol: bytes in, messages out.

use super::{Config, Message};
use crate::frame::{
    apply_mask_offset, parse_close_payload, FrameHeader, OpCode, Parsed, Role, MAX_HEADER_LEN,
};
use crate::utf8::Validator;
use crate::ProtocolError;

/// The outcome of one [`Incoming::receive`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// How many bytes of the input were used. The caller passes the rest
    /// (`&data[consumed..]`) to the next call.
    pub consumed: usize,
    /// A complete message or control frame, if one finished within those bytes.
    pub message: Option<Message>,
}

/// The frame being received.
#[derive(Debug)]
struct FrameState {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come. A claim of the peer's: bytes are only
    /// stored as they arrive.
    remaining: u64,
    /// Payload bytes received so far (the masking key offset).
    received: u64,
    /// The payload of a whole unfragmented text message arrived in one piece,
    /// so it is validated once at the end instead of piece by piece.
    validate_at_end: bool,
}

/// A data message being reassembled from one or more frames.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: Vec<u8>,
    utf8: Validator,
}

/// Decodes a byte stream into messages: frame headers, unmasking, limits,
/// fragment reassembly and incremental UTF-8 validation (RFC 6455 §5, §8.1).
///
/// It keeps at most a partial header (13 bytes), the control frame in progress
/// (125 bytes) and the data message in progress, which grows only with payload
/// bytes that actually arrived, never from a declared length, and never past
/// [`Config::max_message_size`].
///
/// It does not answer pings or close frames; [`Connection`](super::Connection)
/// does that with an [`Outgoing`](super::Outgoing).
#[derive(Debug)]
pub struct Incoming {
    role: Role,
    max_frame: u64,
    max_message: u64,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<FrameState>,
    message: Option<Partial>,
    control: Vec<u8>,
    close_received: bool,
    failed: Option<ProtocolError>,
}

impl Incoming {
    /// A decoder for the given role: a server expects masked frames, a client unmasked ones.
    pub fn new(role: Role, config: &Config) -> Incoming {
        Incoming {
            role,
            max_frame: config.max_frame_size as u64,
            max_message: config.max_message_size as u64,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            close_received: false,
            failed: None,
        }
    }

    /// Whether a close frame has been received. Bytes after it are ignored
    /// (RFC 6455 §5.5.1: nothing may follow a close frame).
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether a frame or a fragmented message is partly received.
    pub fn in_progress(&self) -> bool {
        self.header_len > 0 || self.frame.is_some() || self.message.is_some()
    }

    /// Bytes held for the data message being reassembled.
    pub fn buffered(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.len())
    }

    /// Decodes bytes until one message completes or the input runs out.
    ///
    /// Returns how much of `data` was used and the message, if any; call
    /// again with the rest. An error is final: every later call returns it
    /// again, and the connection must be failed with its close code.
    pub fn receive(&mut self, data: &[u8]) -> Result<Received, ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.receive_inner(data) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.failed = Some(e);
                // Drop what was buffered: a failed connection delivers nothing more.
                self.message = None;
                self.frame = None;
                Err(e)
            }
        }
    }

    fn receive_inner(&mut self, data: &[u8]) -> Result<Received, ProtocolError> {
        let mut pos = 0;
        loop {
            if self.close_received {
                return Ok(done(data.len()));
            }
            if self.frame.is_none() {
                if pos == data.len() {
                    return Ok(done(pos));
                }
                match self.read_header(&data[pos..])? {
                    Some((header, used)) => {
                        pos += used;
                        self.start_frame(header, data.len() - pos)?;
                    }
                    None => return Ok(done(data.len())),
                }
            }
            let Some(frame) = self.frame.as_mut() else {
                continue;
            };
            let avail = (data.len() - pos) as u64;
            let take = frame.remaining.min(avail) as usize;
            let chunk = &data[pos..pos + take];
            let offset = frame.received as usize;
            let dest = if frame.opcode.is_control() {
                &mut self.control
            } else {
                // A data frame always has a message (created in start_frame).
                match self.message.as_mut() {
                    Some(m) => &mut m.data,
                    None => return Err(ProtocolError::UnexpectedContinuation),
                }
            };
            let start = dest.len();
            dest.extend_from_slice(chunk);
            if let Some(key) = frame.mask {
                apply_mask_offset(&mut dest[start..], key, offset);
            }
            if !frame.opcode.is_control() && !frame.validate_at_end {
                if let Some(m) = self.message.as_mut() {
                    if m.text {
                        m.utf8
                            .feed(&m.data[start..])
                            .map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
                }
            }
            pos += take;
            frame.remaining -= take as u64;
            frame.received += take as u64;
            if frame.remaining > 0 {
                return Ok(done(pos));
            }
            if let Some(message) = self.finish_frame()? {
                return Ok(Received {
                    consumed: pos,
                    message: Some(message),
                });
            }
        }
    }

    /// Parses a header from carried bytes plus `data`; `None` if incomplete
    /// (every byte of `data` is then carried).
    fn read_header(&mut self, data: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        if self.header_len == 0 {
            return match FrameHeader::parse(data)? {
                Parsed::Complete(h, n) => Ok(Some((h, n))),
                Parsed::Incomplete(_) => {
                    // Fewer than MAX_HEADER_LEN bytes, or parse would have completed.
                    self.header[..data.len()].copy_from_slice(data);
                    self.header_len = data.len();
                    Ok(None)
                }
            };
        }
        let have = self.header_len;
        let take = (MAX_HEADER_LEN - have).min(data.len());
        self.header[have..have + take].copy_from_slice(&data[..take]);
        match FrameHeader::parse(&self.header[..have + take])? {
            Parsed::Complete(h, n) => {
                self.header_len = 0;
                Ok(Some((h, n - have)))
            }
            Parsed::Incomplete(_) => {
                self.header_len = have + take;
                Ok(None)
            }
        }
    }

    /// Applies every rule that the header alone decides, before any payload
    /// byte is stored.
    fn start_frame(&mut self, h: FrameHeader, available: usize) -> Result<(), ProtocolError> {
        h.check(self.role)?;
        if h.opcode.is_control() {
            self.control.clear();
        } else {
            match (h.opcode, self.message.is_some()) {
                (OpCode::Continuation, false) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(ProtocolError::ExpectedContinuation)
                }
                _ => {}
            }
            // RFC 6455 §10.4: limits are checked from the declared length,
            // before buffering anything.
            if h.payload_len > self.max_frame {
                return Err(ProtocolError::FrameTooBig);
            }
            let so_far = self.buffered() as u64;
            if so_far + h.payload_len > self.max_message {
                return Err(ProtocolError::MessageTooBig);
            }
            if h.opcode != OpCode::Continuation {
                self.message = Some(Partial {
                    text: h.opcode == OpCode::Text,
                    data: Vec::new(),
                    utf8: Validator::new(),
                });
            }
            if let Some(m) = self.message.as_mut() {
                // Reserve only what is already here, never the declared length.
                m.data.reserve(h.payload_len.min(available as u64) as usize);
            }
        }
        let whole_message_here =
            h.fin && h.opcode == OpCode::Text && h.payload_len <= available as u64;
        self.frame = Some(FrameState {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            remaining: h.payload_len,
            received: 0,
            validate_at_end: whole_message_here,
        });
        Ok(())
    }

    /// A frame's payload is complete: yield a control frame or a finished message.
    fn finish_frame(&mut self) -> Result<Option<Message>, ProtocolError> {
        let Some(frame) = self.frame.take() else {
            return Ok(None);
        };
        match frame.opcode {
            OpCode::Ping => Ok(Some(Message::Ping(std::mem::take(&mut self.control)))),
            OpCode::Pong => Ok(Some(Message::Pong(std::mem::take(&mut self.control)))),
            OpCode::Close => {
                let close = parse_close_payload(&self.control)?;
                self.close_received = true;
                Ok(Some(Message::Close(close)))
            }
            _ if !frame.fin => Ok(None),
            _ => {
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
}

fn done(consumed: usize) -> Received {
    Received {
        consumed,
        message: None,
    }
}
