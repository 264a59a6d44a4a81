//! The sending half of the protocol: messages in, bytes out, and the rules
//! about what may still be sent.

use super::extension::{ExtensionEncoder, Sharing};
use super::{Message, MessageRef, PreparedMessage};
use crate::error::{Error, Result, SendError};
use crate::frame::ProtocolError;
use crate::frame::{
    apply_mask, encode_close_payload, parse_close_payload, CloseCode, CloseFrame, EncodedHeader,
    FrameHeader, OpCode, Role,
};
use std::borrow::Cow;
use std::io;

/// Data frames with payloads at least this large are not copied into the
/// pending buffer: [`Outgoing::frame_data`] hands back the header and the
/// payload for one vectored write. Below it a copy is cheaper than the extra
/// system call it would cost to batch.
pub const DIRECT_WRITE: usize = 16 * 1024;

/// How [`Outgoing::frame_data`] framed a data frame.
#[derive(Debug)]
pub enum Framed<'a> {
    /// Encoded into the pending buffer.
    Queued,
    /// Large: to be written as `header` then `payload`, after the pending
    /// bytes. A client's payload still needs masking with the header's key
    /// ([`Framed::into_masked`]); the frame counts as sent already, so a
    /// failed write must be reported with [`Outgoing::on_io_error`].
    Direct {
        /// The frame header, with the mask key for a client.
        header: FrameHeader,
        /// The payload as it goes on the wire once masked.
        payload: Cow<'a, [u8]>,
    },
}

impl<'a> Framed<'a> {
    /// Masks a direct payload with its header's key (a client's), in place
    /// when the payload is owned. Done outside any lock by split writers.
    pub fn into_masked(self) -> Framed<'a> {
        match self {
            Framed::Direct {
                header,
                payload: Cow::Borrowed(p),
            } if header.mask.is_some() => Framed::Direct {
                header,
                payload: Cow::Owned(p.to_vec()),
            }
            .into_masked(),
            Framed::Direct {
                header,
                mut payload,
            } => {
                if let Some(key) = header.mask {
                    apply_mask(payload.to_mut(), key);
                }
                Framed::Direct { header, payload }
            }
            queued => queued,
        }
    }
}

/// Mask keys come from the operating system's CSPRNG (RFC 6455 §5.3: the key
/// "MUST be derived from a strong source of entropy"; §10.3 explains why a
/// predictable key lets an attacker poison intermediaries). They are fetched
/// in blocks so a client does not make one system call per frame.
#[derive(Debug)]
struct MaskSource {
    pool: [u8; 256],
    used: usize,
}

impl MaskSource {
    fn new() -> MaskSource {
        // Empty until the first frame: a server never pays for it.
        MaskSource {
            pool: [0; 256],
            used: 256,
        }
    }

    fn next_key(&mut self) -> io::Result<[u8; 4]> {
        if self.used + 4 > self.pool.len() {
            getrandom::fill(&mut self.pool).map_err(|e| io::Error::other(e.to_string()))?;
            self.used = 0;
        }
        let k = &self.pool[self.used..self.used + 4];
        self.used += 4;
        Ok([k[0], k[1], k[2], k[3]])
    }
}

/// Encodes outgoing frames into a buffer and enforces the sending rules:
/// fragment sequencing (RFC 6455 §5.4), control frame limits (§5.5), masking
/// by role (§5.1, §5.3), and nothing after a close frame (§5.5.1).
///
/// Encoded bytes accumulate in an internal buffer; a driver writes
/// [`pending`](Outgoing::pending) to the transport and calls
/// [`advance`](Outgoing::advance) with what was written.
#[derive(Debug)]
pub struct Outgoing {
    role: Role,
    masks: MaskSource,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    written: usize,
    fragmenting: bool,
    close_sent: bool,
    close_received: bool,
    failed: bool,
    extensions: Vec<Box<dyn ExtensionEncoder>>,
    /// The extension's output for the message being framed, kept to reuse
    /// its allocation.
    encoded: Vec<u8>,
}

impl Outgoing {
    /// An encoder for the given role (a client masks every frame).
    pub fn new(role: Role) -> Outgoing {
        Outgoing {
            role,
            masks: MaskSource::new(),
            out: Vec::new(),
            written: 0,
            fragmenting: false,
            close_sent: false,
            close_received: false,
            failed: false,
            extensions: Vec::new(),
            encoded: Vec::new(),
        }
    }

    /// Adds the sending half of a negotiated extension: whole data messages
    /// pass through it and go out with the RSV bits it sets (see
    /// [`extension`](super::extension)). Fragments sent frame by frame with
    /// [`encode_frame`](Outgoing::encode_frame) are not transformed.
    pub fn add_extension(&mut self, extension: Box<dyn ExtensionEncoder>) {
        self.extensions.push(extension);
    }

    /// The role this encoder speaks for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Encoded bytes not yet written to the transport.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// Marks `n` bytes of [`pending`](Outgoing::pending) as written.
    pub fn advance(&mut self, n: usize) {
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
            // A large message must not pin a large buffer for the life of an
            // idle connection.
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            }
        }
    }

    /// Takes every pending byte, leaving the buffer empty.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.drain(..self.written);
        self.written = 0;
        out
    }

    /// Moves every pending byte into `buf` (cleared first) and keeps `buf`'s
    /// old allocation for later output, so a driver that writes outside its
    /// lock does not allocate a buffer per write.
    pub fn swap_pending(&mut self, buf: &mut Vec<u8>) {
        buf.clear();
        self.out.drain(..self.written);
        self.written = 0;
        std::mem::swap(&mut self.out, buf);
    }

    /// Queues the part of a [`Framed::Direct`] frame that a non-blocking
    /// write could not take (`rest`: the unwritten tail of its header and
    /// payload, as they go on the wire), to go out before anything queued
    /// later. Only for that: these bytes are not framed again.
    pub fn queue_unwritten(&mut self, rest: &[u8]) {
        self.out.extend_from_slice(rest);
    }

    /// Marks the connection broken after a failed write: part of a frame
    /// may be on the wire, so nothing more can be sent.
    pub fn on_io_error(&mut self) {
        self.failed = true;
    }

    /// Whether nothing more can be sent: a close frame was sent (queued) or
    /// the connection failed.
    pub fn send_closed(&self) -> bool {
        self.close_sent || self.failed
    }

    /// Whether a close frame was sent (queued).
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether a close frame was received.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether the connection was failed because of a protocol error.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// RFC 6455 §7.1.4: the close handshake is complete once a close frame
    /// was both sent and received (or the connection failed).
    pub fn is_closed(&self) -> bool {
        (self.close_sent && self.close_received) || self.failed
    }

    /// Checks the state and builds the header for a frame of `len` payload
    /// bytes, with a fresh mask key for a client. The caller sends the
    /// header, then the payload masked with the header's key (if any).
    ///
    /// This is the zero-copy path: a server can write the header and the
    /// caller's payload with one vectored write.
    pub fn frame_header(&mut self, opcode: OpCode, fin: bool, len: usize) -> Result<FrameHeader> {
        self.check_send(opcode, fin, len)?;
        self.header_for(opcode, fin, len, 0)
    }

    fn header_for(
        &mut self,
        opcode: OpCode,
        fin: bool,
        len: usize,
        rsv: u8,
    ) -> Result<FrameHeader> {
        let mut header = FrameHeader::new(opcode, len as u64);
        header.fin = fin;
        header.rsv1 = rsv & 0b100 != 0;
        header.rsv2 = rsv & 0b010 != 0;
        header.rsv3 = rsv & 0b001 != 0;
        if self.role == Role::Client {
            header.mask = Some(self.masks.next_key()?);
        }
        if !opcode.is_control() {
            self.fragmenting = !fin;
        }
        if opcode == OpCode::Close {
            self.close_sent = true;
        }
        Ok(header)
    }

    /// Encodes one frame (header and payload, masked for a client) into the
    /// pending buffer.
    pub fn encode_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Result<()> {
        if opcode == OpCode::Close && parse_close_payload(payload).is_err() {
            // §5.5.1 / §7.4.1: a close body is empty, or a code allowed on the
            // wire plus a UTF-8 reason; the frame-level API enforces it too.
            return Err(Error::InvalidSend(SendError::InvalidClosePayload));
        }
        let header = self.frame_header(opcode, fin, payload.len())?;
        self.push(header.encode(), header.mask, payload);
        Ok(())
    }

    /// Encodes a whole message: text and binary as one frame (through the
    /// negotiated extension, if any), ping and pong as control frames, close
    /// via [`Outgoing::close`].
    pub fn encode_message(&mut self, message: &Message) -> Result<()> {
        match message {
            Message::Close(frame) => self.close(frame.as_ref()),
            other => self.encode_message_ref(MessageRef::from(other)),
        }
    }

    /// [`encode_message`](Outgoing::encode_message) for a borrowed message
    /// (one just received, say, for an echo without a copy).
    pub fn encode_message_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        match message {
            MessageRef::Close(frame) => self.close(frame.as_ref()),
            // Nothing is direct below `usize::MAX`: all of it is queued.
            MessageRef::Text(_) | MessageRef::Binary(_) => self
                .frame_data(
                    message.opcode(),
                    true,
                    Cow::Borrowed(message.payload().unwrap_or_default()),
                    usize::MAX,
                )
                .map(drop),
            control => self.encode_frame(
                control.opcode(),
                true,
                control.payload().unwrap_or_default(),
            ),
        }
    }

    /// The one framing rule for a frame, used by every send path: a whole
    /// data message (`fin`, text or binary) passes through the negotiated
    /// extension (if it takes it), then a frame with fewer than `direct_at` payload bytes is
    /// encoded into the pending buffer ([`Framed::Queued`]), and a larger one
    /// is handed back to be written behind the pending bytes without a copy
    /// ([`Framed::Direct`]).
    pub fn frame_data<'a>(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: Cow<'a, [u8]>,
        direct_at: usize,
    ) -> Result<Framed<'a>> {
        self.check_send(opcode, fin, payload.len())?;
        let mut rsv = 0;
        let mut payload = payload;
        let whole_message = fin && matches!(opcode, OpCode::Text | OpCode::Binary);
        if let (true, Some(encoder)) = (whole_message, self.extensions.first_mut()) {
            self.encoded.clear();
            if let Some(bits) = encoder.encode(opcode, &payload, &mut self.encoded) {
                rsv = bits;
                payload = Cow::Owned(std::mem::take(&mut self.encoded));
            }
        }
        self.frame_checked(opcode, fin, rsv, payload, direct_at)
    }

    /// Frames a message prepared for many connections (a broadcast) by the
    /// rule of [`frame_data`](Outgoing::frame_data), sharing the
    /// extension's encoding with the other connections that send it where
    /// the extension allows ([`Sharing::Shared`]: made by the first of
    /// them, reused by the rest), and encoding it with this connection's
    /// own encoder where it does not ([`Sharing::Own`], e.g. a compressor
    /// that keeps its context). See [`PreparedMessage`].
    ///
    /// [`Sharing::Shared`]: super::extension::Sharing::Shared
    /// [`Sharing::Own`]: super::extension::Sharing::Own
    pub fn frame_prepared<'a>(
        &mut self,
        prepared: &'a PreparedMessage,
        direct_at: usize,
    ) -> Result<Framed<'a>> {
        let message = &**prepared.message();
        if let Message::Close(frame) = message {
            self.close(frame.as_ref())?;
            return Ok(Framed::Queued);
        }
        let (opcode, payload) = (message.opcode(), message.as_bytes());
        self.check_send(opcode, true, payload.len())?;
        let encoder = match self.extensions.first_mut() {
            Some(encoder) if message.is_data() => encoder,
            _ => return self.frame_checked(opcode, true, 0, Cow::Borrowed(payload), direct_at),
        };
        let key = match encoder.sharing(opcode, payload.len()) {
            Sharing::Shared(key) => key,
            Sharing::AsIs => {
                return self.frame_checked(opcode, true, 0, Cow::Borrowed(payload), direct_at)
            }
            Sharing::Own => {
                return self.frame_data(opcode, true, Cow::Borrowed(payload), direct_at)
            }
        };
        match prepared.encoded(key, |out| encoder.encode(opcode, payload, out)) {
            Some(encoded) if encoded.rsv != 0 => self.frame_checked(
                opcode,
                true,
                encoded.rsv,
                Cow::Borrowed(&encoded.payload),
                direct_at,
            ),
            Some(_) => self.frame_checked(opcode, true, 0, Cow::Borrowed(payload), direct_at),
            // More distinct settings than the message keeps: encode it here.
            None => self.frame_data(opcode, true, Cow::Borrowed(payload), direct_at),
        }
    }

    /// The end of every framing path, after [`check_send`](Self::check_send)
    /// and the extension: the header, then the payload queued or handed back.
    fn frame_checked<'a>(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: Cow<'a, [u8]>,
        direct_at: usize,
    ) -> Result<Framed<'a>> {
        let header = self.header_for(opcode, fin, payload.len(), rsv)?;
        if payload.len() >= direct_at {
            return Ok(Framed::Direct { header, payload });
        }
        self.push(header.encode(), header.mask, &payload);
        if let Cow::Owned(mut buf) = payload {
            if rsv != 0 {
                // Keep the extension's buffer for the next message.
                buf.clear();
                self.encoded = buf;
            }
        }
        Ok(Framed::Queued)
    }

    /// Queues a close frame, after which nothing else may be sent.
    ///
    /// RFC 6455 §7.4: codes 1005, 1006 and 1015 (and any code not valid on the
    /// wire) MUST NOT be sent; §5.5: the reason must fit in a 125-byte control
    /// payload after the 2-byte code.
    pub fn close(&mut self, frame: Option<&CloseFrame>) -> Result<()> {
        if let Some(f) = frame {
            if !f.code.is_valid_on_wire() {
                return Err(Error::InvalidSend(SendError::CloseCodeNotAllowed));
            }
            if f.reason.len() > 123 {
                return Err(Error::InvalidSend(SendError::CloseReasonTooLong));
            }
        }
        let mut payload = [0u8; 125];
        let mut body = Vec::new();
        encode_close_payload(frame, &mut body);
        payload[..body.len()].copy_from_slice(&body);
        self.encode_frame(OpCode::Close, true, &payload[..body.len()])
    }

    /// The one reaction path: what receiving something makes the
    /// connection send, for every driver (the sans-I/O
    /// [`Connection`](super::Connection), the blocking
    /// [`WebSocket`](crate::WebSocket) and its split halves).
    ///
    /// - a ping is answered with a pong carrying the same payload (§5.5.2);
    /// - a close frame is answered with a close frame echoing its status
    ///   code (§5.5.1);
    /// - a protocol error fails the connection: a close frame with the
    ///   error's code (§7.1.7), and nothing more is sent.
    ///
    /// Nothing is answered once our close frame was sent.
    pub fn react(&mut self, received: std::result::Result<&MessageRef<'_>, &ProtocolError>) {
        match received {
            Ok(MessageRef::Ping(data)) => {
                if !self.close_sent {
                    // Cannot fail: open, not fragmenting a control frame, ≤ 125 bytes.
                    let _ = self.encode_frame(OpCode::Pong, true, data);
                }
            }
            Ok(MessageRef::Close(frame)) => {
                self.close_received = true;
                if !self.close_sent {
                    let reply = frame.as_ref().map(|f| CloseFrame::new(f.code));
                    let _ = self.close(reply.as_ref());
                }
            }
            Ok(_) => {}
            Err(error) => self.fail(error),
        }
    }

    fn fail(&mut self, error: &ProtocolError) {
        if !self.close_sent {
            let frame = CloseFrame {
                code: error.close_code(),
                reason: error.reason().to_owned(),
            };
            let _ = self.close(Some(&frame));
        }
        self.failed = true;
    }

    /// Queues a close frame with `code` if none was sent: for a driver that
    /// must close on its own account (going away 1001, internal error 1011).
    pub fn close_with(&mut self, code: CloseCode, reason: &str) {
        if !self.close_sent {
            // Cut the reason at a char boundary so the payload fits the 125
            // bytes a control frame allows (§5.5); a close is never dropped
            // because its reason was too long.
            let mut end = reason.len().min(123);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            let frame = CloseFrame {
                code,
                reason: reason[..end].to_owned(),
            };
            if self.close(Some(&frame)).is_err() {
                // Only a code that may not go on the wire gets here.
                let _ = self.close(None);
            }
        }
    }

    /// The lifecycle state as far as sending tells it.
    pub fn state(&self) -> super::State {
        use super::State;
        if self.failed {
            State::Failed
        } else if self.is_closed() {
            State::Closed
        } else if self.close_sent {
            State::CloseSent
        } else {
            State::Open
        }
    }

    /// Before a whole text or binary frame encoded once for many connections
    /// (a hub's broadcast) is written on this one as is: `Ok(false)` when
    /// these bytes would be wrong here (a client masks every frame with its
    /// own key, RFC 6455 §5.3; an extension rewrites the payload), so the
    /// message must be framed by [`frame_data`](Outgoing::frame_data)
    /// instead; an error when no data message may be sent now.
    pub(crate) fn takes_shared_frame(&self, opcode: OpCode, len: usize) -> Result<bool> {
        self.check_send(opcode, true, len)?;
        Ok(self.role == Role::Server && self.extensions.is_empty())
    }

    fn check_send(&self, opcode: OpCode, fin: bool, len: usize) -> Result<()> {
        if self.close_sent || self.failed {
            return Err(Error::AlreadyClosed);
        }
        if opcode.is_control() {
            if len > 125 {
                return Err(Error::InvalidSend(SendError::ControlFrameTooBig));
            }
            if !fin {
                return Err(Error::InvalidSend(SendError::FragmentedControlFrame));
            }
        } else if opcode == OpCode::Continuation {
            if !self.fragmenting {
                return Err(Error::InvalidSend(SendError::NoMessageToContinue));
            }
        } else if self.fragmenting {
            return Err(Error::InvalidSend(SendError::MessageInProgress));
        }
        Ok(())
    }

    fn push(&mut self, header: EncodedHeader, mask: Option<[u8; 4]>, payload: &[u8]) {
        self.out.extend_from_slice(header.as_bytes());
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out[start..], key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_frames_go_only_to_a_server_without_extensions() {
        let server = Outgoing::new(Role::Server);
        assert!(server.takes_shared_frame(OpCode::Text, 5).unwrap());
        // A client masks every frame with a key of its own (RFC 6455 §5.3).
        let client = Outgoing::new(Role::Client);
        assert!(!client.takes_shared_frame(OpCode::Binary, 5).unwrap());
    }

    #[test]
    fn shared_frames_follow_the_sending_rules() {
        let mut fragmenting = Outgoing::new(Role::Server);
        fragmenting
            .encode_frame(OpCode::Text, false, b"he")
            .unwrap();
        assert!(matches!(
            fragmenting.takes_shared_frame(OpCode::Text, 5),
            Err(Error::InvalidSend(SendError::MessageInProgress))
        ));
        let mut closed = Outgoing::new(Role::Server);
        closed.close(None).unwrap();
        assert!(matches!(
            closed.takes_shared_frame(OpCode::Text, 5),
            Err(Error::AlreadyClosed)
        ));
    }
}
