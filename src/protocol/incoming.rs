//! The receiving half of the protocol: bytes in, messages out.

use super::{Config, Message, MessageRef};
use crate::frame::{
    apply_mask, apply_mask_offset, parse_close_payload, FrameHeader, OpCode, Parsed, Role,
    MAX_HEADER_LEN,
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

/// The outcome of one [`Incoming::receive_in_place`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRef<'a> {
    /// How many bytes of the input were used.
    pub consumed: usize,
    /// A complete message or control frame, borrowed from the input or the
    /// decoder.
    pub message: Option<MessageRef<'a>>,
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
    /// Where the slice handed out by `payload_space` starts in the message
    /// buffer, until `payload_filled` takes it in.
    direct: Option<usize>,
    /// The last message `receive_in_place` decoded the slow way, which it
    /// lends out until the next call.
    held: Option<Message>,
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
            direct: None,
            held: None,
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
        // Not counting a `payload_space` slice that is not filled yet.
        self.message
            .as_ref()
            .map_or(0, |m| self.direct.unwrap_or(m.data.len()))
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
        let result = self.receive_inner(data);
        self.sticky(result)
    }

    /// Makes an error final: it is remembered, returned by every later call,
    /// and what was buffered is dropped (a failed connection delivers
    /// nothing more).
    fn sticky<T>(&mut self, result: Result<T, ProtocolError>) -> Result<T, ProtocolError> {
        if let Err(e) = &result {
            self.failed = Some(*e);
            self.message = None;
            self.frame = None;
        }
        result
    }

    /// Like [`receive`](Incoming::receive), without allocating when it can:
    /// a whole unfragmented message or control frame at the start of `data`
    /// is unmasked in place and returned borrowed from `data`; anything else
    /// is decoded by `receive` and lent out from the decoder until the next
    /// call. `data` is modified (payloads are unmasked where they lie).
    ///
    /// Why: `receive` copies each payload into a new allocation. Decoding a
    /// stream of 20-byte masked text frames, profiles showed malloc/free at
    /// ~18% of the time, the copy of a 40-byte `Result` ~14% and the
    /// out-of-line masking call ~12%; this path has none of them.
    pub fn receive_in_place<'a>(
        &'a mut self,
        data: &'a mut [u8],
    ) -> Result<ReceivedRef<'a>, ProtocolError> {
        self.held = None;
        if let Some((opcode, start, end)) = self.whole_frame_at_start(data) {
            return self.borrow_fast(opcode, &data[start..end], end);
        }
        let Received { consumed, message } = self.receive(data)?;
        self.held = message;
        Ok(ReceivedRef {
            consumed,
            message: self.held.as_ref().map(MessageRef::from),
        })
    }

    /// If `data` starts with a whole frame that needs no state (a final text
    /// or binary frame outside a fragmented message, or a ping or pong),
    /// passes every header rule and limit, unmasks its payload in place and
    /// returns its opcode and where its payload starts and ends. Anything
    /// unusual (errors included) is left to the general path, which reports it.
    #[inline]
    fn whole_frame_at_start(&self, data: &mut [u8]) -> Option<(OpCode, usize, usize)> {
        if self.failed.is_some()
            || self.close_received
            || self.header_len > 0
            || self.frame.is_some()
            || self.direct.is_some()
        {
            return None;
        }
        let Ok(Parsed::Complete(h, used)) = FrameHeader::parse(data) else {
            return None;
        };
        let data_frame = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let control = matches!(h.opcode, OpCode::Ping | OpCode::Pong);
        if !(h.fin && (control || (data_frame && self.message.is_none())))
            || h.payload_len > self.max_frame
            || h.payload_len > self.max_message
            || h.check(self.role).is_err()
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

    fn borrow_fast<'a>(
        &mut self,
        opcode: OpCode,
        payload: &'a [u8],
        consumed: usize,
    ) -> Result<ReceivedRef<'a>, ProtocolError> {
        let message = match opcode {
            OpCode::Text => match std::str::from_utf8(payload) {
                Ok(text) => MessageRef::Text(text),
                Err(_) => return self.sticky(Err(ProtocolError::InvalidUtf8)),
            },
            OpCode::Binary => MessageRef::Binary(payload),
            OpCode::Ping => MessageRef::Ping(payload),
            _ => MessageRef::Pong(payload),
        };
        Ok(ReceivedRef {
            consumed,
            message: Some(message),
        })
    }

    /// Space to read the current data frame's payload into directly, when at
    /// least `min` payload bytes of it are still to come; `None` otherwise.
    ///
    /// For large messages this saves a copy: a driver reads from the socket
    /// straight into the message buffer instead of into its read buffer and
    /// from there into the message (on the 10 × 1 MiB echo benchmark that
    /// copy was 31% of all CPU time, the largest item). Fill a prefix of the
    /// slice, then call [`payload_filled`](Incoming::payload_filled) with how
    /// many bytes were written. Nothing else may be received in between
    /// (a frame's payload is contiguous on the wire).
    ///
    /// The slice never extends past the frame's declared end, and the buffer
    /// grows at most by `max(64 KiB, bytes of the message already here)` per
    /// call, so a peer that declares a huge length and sends nothing costs
    /// 64 KiB, not its claim (RFC 6455 §10.4).
    pub fn payload_space(&mut self, min: usize) -> Option<&mut [u8]> {
        self.discard_unfilled();
        if self.failed.is_some() || self.close_received {
            return None;
        }
        let frame = self.frame.as_ref()?;
        if frame.opcode.is_control() || frame.remaining < min.max(1) as u64 {
            return None;
        }
        let m = self.message.as_mut()?;
        let start = m.data.len();
        let step = frame.remaining.min(start.max(64 * 1024) as u64) as usize;
        m.data.resize(start + step, 0);
        self.direct = Some(start);
        Some(&mut m.data[start..])
    }

    /// Takes in `n` payload bytes written at the start of the slice that
    /// [`payload_space`](Incoming::payload_space) returned: unmasks and
    /// validates them, and returns the message if the frame completed it.
    /// `consumed` is always 0 (no bytes of an input slice were used).
    pub fn payload_filled(&mut self, n: usize) -> Result<Received, ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some(start) = self.direct.take() else {
            return Ok(done(0));
        };
        let result = self.payload_filled_inner(start, n);
        self.sticky(result)
    }

    fn payload_filled_inner(&mut self, start: usize, n: usize) -> Result<Received, ProtocolError> {
        let (Some(frame), Some(m)) = (self.frame.as_mut(), self.message.as_mut()) else {
            return Ok(done(0));
        };
        let n = n.min(m.data.len() - start);
        m.data.truncate(start + n);
        if let Some(key) = frame.mask {
            apply_mask_offset(&mut m.data[start..], key, frame.received as usize);
        }
        if m.text {
            m.utf8
                .feed(&m.data[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        frame.remaining -= n as u64;
        frame.received += n as u64;
        if frame.remaining > 0 {
            return Ok(done(0));
        }
        let message = self.finish_frame()?;
        Ok(Received {
            consumed: 0,
            message,
        })
    }

    /// Drops the zeroed tail a [`payload_space`](Incoming::payload_space)
    /// left that was never filled.
    fn discard_unfilled(&mut self) {
        if let Some(start) = self.direct.take() {
            if let Some(m) = self.message.as_mut() {
                m.data.truncate(start);
            }
        }
    }

    fn receive_inner(&mut self, data: &[u8]) -> Result<Received, ProtocolError> {
        self.discard_unfilled();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::apply_mask;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut header =
            FrameHeader::new(OpCode::from_u4(first & 0x0F).unwrap(), payload.len() as u64);
        header.fin = first & 0x80 != 0;
        header.mask = Some(KEY);
        let mut wire = header.encode().as_bytes().to_vec();
        let start = wire.len();
        wire.extend_from_slice(payload);
        apply_mask(&mut wire[start..], KEY);
        wire
    }

    fn server() -> Incoming {
        Incoming::new(Role::Server, &Config::default())
    }

    #[test]
    fn in_place_borrows_whole_frames_from_the_input() {
        let mut wire = masked(0x81, b"Hello");
        wire.extend(masked(0x89, b"ping"));
        wire.extend(masked(0x82, &[1, 2, 3]));
        let mut rx = server();
        let r = rx.receive_in_place(&mut wire).unwrap();
        assert_eq!(
            (r.consumed, r.message),
            (11, Some(MessageRef::Text("Hello")))
        );
        let r = rx.receive_in_place(&mut wire[11..]).unwrap();
        assert_eq!(r.message, Some(MessageRef::Ping(b"ping")));
        let r = rx.receive_in_place(&mut wire[21..]).unwrap();
        assert_eq!(r.message, Some(MessageRef::Binary(&[1, 2, 3])));
    }

    #[test]
    fn in_place_falls_back_for_fragments_split_frames_and_close() {
        let mut wire = masked(0x01, b"Hel");
        wire.extend(masked(0x80, b"lo"));
        wire.extend(masked(0x88, &[0x03, 0xe8]));
        let mut rx = server();
        let mut pos = 0;
        let mut got = Vec::new();
        // Byte by byte: every frame is split across calls.
        let mut pending = Vec::new();
        while pos < wire.len() {
            pending.push(wire[pos]);
            pos += 1;
            let len = pending.len();
            let r = rx.receive_in_place(&mut pending).unwrap();
            assert_eq!(r.consumed, len);
            if let Some(m) = r.message {
                got.push(m.to_message());
            }
            pending.clear();
        }
        assert_eq!(
            got,
            [
                Message::Text("Hello".into()),
                Message::Close(Some(crate::CloseFrame::new(crate::CloseCode::NORMAL)))
            ]
        );
    }

    #[test]
    fn in_place_rejects_invalid_utf8_and_stays_failed() {
        let mut wire = masked(0x81, b"ok \xC0");
        let mut rx = server();
        assert_eq!(
            rx.receive_in_place(&mut wire),
            Err(ProtocolError::InvalidUtf8)
        );
        let mut more = masked(0x81, b"fine");
        assert_eq!(
            rx.receive_in_place(&mut more),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn in_place_applies_the_header_rules() {
        let mut rx = server();
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(
            rx.receive_in_place(&mut unmasked),
            Err(ProtocolError::UnmaskedFrameFromClient)
        );
        let mut rx = Incoming::new(Role::Server, &Config::default().max_frame_size(3));
        let mut big = masked(0x82, &[0; 4]);
        assert_eq!(
            rx.receive_in_place(&mut big),
            Err(ProtocolError::FrameTooBig)
        );
    }

    #[test]
    fn direct_payload_reads_match_the_buffered_path() {
        let text: String = "κόσμε-".repeat(30_000);
        let wire = masked(0x81, text.as_bytes());
        let mut rx = server();
        // The header and the first bytes arrive through `receive`...
        let r = rx.receive(&wire[..100]).unwrap();
        assert_eq!((r.consumed, r.message), (100, None));
        let mut pos = 100;
        let mut message = None;
        // ... the rest straight into the message, in odd-sized pieces.
        while message.is_none() {
            let buffered = rx.buffered();
            let space = rx.payload_space(1).expect("payload space");
            assert!(space.len() <= 64 * 1024 + buffered);
            let n = space.len().min(7777).min(wire.len() - pos);
            space[..n].copy_from_slice(&wire[pos..pos + n]);
            pos += n;
            message = rx.payload_filled(n).unwrap().message;
        }
        assert_eq!(pos, wire.len());
        assert_eq!(message, Some(Message::Text(text)));
        assert!(rx.payload_space(1).is_none());
    }

    #[test]
    fn unfilled_payload_space_is_discarded() {
        let payload = vec![7u8; 100_000];
        let wire = masked(0x82, &payload);
        let mut rx = server();
        rx.receive(&wire[..50]).unwrap();
        let before = rx.buffered();
        assert!(rx.payload_space(1).is_some());
        assert_eq!(rx.buffered(), before);
        // Not filled: the bytes come through `receive` after all.
        let r = rx.receive(&wire[50..]).unwrap();
        assert_eq!(r.message, Some(Message::Binary(payload)));
    }

    #[test]
    fn a_declared_length_alone_reserves_at_most_64_kib() {
        let mut header = FrameHeader::new(OpCode::Binary, 10 << 20);
        header.mask = Some(KEY);
        let mut rx = server();
        rx.receive(header.encode().as_bytes()).unwrap();
        assert_eq!(rx.payload_space(1).map(|s| s.len()), Some(64 * 1024));
    }
}
